//! Identity: no token, a bad token and a revoked token get 401 on HTTP and an error on stdio, and
//! nothing is served to them.

use std::process::Stdio;

use serde_json::json;

use crate::helpers::*;

pub async fn http_requires_a_valid_unrevoked_key(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, key_id) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();

    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "/healthz needs no key");

    for (label, key) in [("no key", None), ("bad key", Some("lynx_not_a_real_key"))] {
        let (status, body) = server.get("/api/status", key).await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{label}");
        assert!(body.get("tools_registered").is_none(), "{label}: nothing served");
        let mut req = server.http().post(format!("{}/mcp", server.base)).header("Accept", "application/json, text/event-stream").json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "tenant.domain.profile.read", "arguments": {}}}),
        );
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{label}: /mcp");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("Acme"), "{label}: no tenant data in a refusal");
    }

    let (status, _) = server.get("/api/status", Some(&key)).await;
    assert_eq!(status, 200);
    sandbox.cli_ok(&["keys", "revoke", &key_id]);
    // A verified key is trusted for LYNX_KEY_CACHE_MS (1 s by default) before the database is asked again.
    let revoked_at = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = server.get("/api/status", Some(&key)).await;
        if status == 401 || revoked_at.elapsed() > std::time::Duration::from_secs(3) {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status, 401, "a revoked key stops working");
    assert!(revoked_at.elapsed() < std::time::Duration::from_millis(1600), "within the key cache's second");
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"));

    let listed = sandbox.cli_ok(&["keys", "list", "--json"]);
    assert!(!listed.contains(&key), "keys list never shows a secret");
    assert!(listed.contains("revoked_at"));
}

pub async fn stdio_refuses_to_serve_without_a_valid_key(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, key_id) = sandbox.create_key("tenant-123", "agent-001");
    sandbox.cli_ok(&["keys", "revoke", &key_id]);
    for (label, key) in [("no key", None), ("bad key", Some("lynx_bogus")), ("revoked key", Some(key.as_str()))] {
        let mut cmd = sandbox.command();
        cmd.arg("mcp").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(k) = key {
            cmd.env("LYNX_API_KEY", k);
        }
        let out = cmd.spawn().unwrap().wait_with_output().unwrap();
        assert!(!out.status.success(), "{label}: must not serve");
        assert!(out.stdout.is_empty(), "{label}: nothing on the protocol channel");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("LYNX_API_KEY") || err.contains("UNAUTHENTICATED"), "{label}: {err}");
    }

    // Dev flags are refused outside dev mode.
    let mut cmd = sandbox.command();
    cmd.env("LYNX_MODE", "staging").args(["mcp", "--tenant", "tenant-123", "--user", "agent-001"]).stdin(Stdio::null());
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dev mode only"));
}

pub async fn a_key_revoked_during_a_stdio_session_stops_working(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, key_id) = sandbox.create_key("tenant-123", "agent-001");
    let client = mcp_stdio(&sandbox, &key).await;
    call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    sandbox.cli_ok(&["keys", "revoke", &key_id]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the key cache's second
    let e = call_err_unaudited(&client).await;
    assert_eq!(e["code"], "UNAUTHENTICATED");
    client.cancel().await.unwrap();
}

/// A call refused at identity has no run (nothing to audit it under).
async fn call_err_unaudited(client: &Client) -> serde_json::Value {
    let r = call(client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(r.is_error, Some(true));
    r.structured_content.unwrap()["error"].clone()
}

#[tokio::test]
async fn dev_flags_stand_in_for_a_key_in_dev_mode() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let mut cmd = tokio::process::Command::new(LYNX);
    cmd.env_clear().envs(&sandbox.env).args(["mcp", "--tenant", "tenant-456", "--user", "agent-456"]).current_dir(sandbox.dir.path());
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(cmd).stderr(Stdio::null()).spawn().unwrap();
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let v = call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["tenant_id"], "tenant-456");
    assert_eq!(v["tenant_name"], "Globex Logistics");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn first_serve_of_an_empty_dev_database_prints_working_demo_keys() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let server = sandbox.serve();
    let keys: Vec<String> = server
        .startup_output
        .iter()
        .filter(|l| l.contains("tenant-123 / "))
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 2, "agent and approver keys: {:?}", server.startup_output);
    let client = server.mcp(&keys[1]).await;
    let v = call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["user_role"], "approver");
    drop(server);
    let again = sandbox.serve();
    assert!(!again.startup_output.iter().any(|l| l.contains("tenant-123 / ")), "printed once only");
}
