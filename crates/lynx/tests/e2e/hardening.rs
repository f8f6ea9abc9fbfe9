//! The edges an adversarial sweep found loose, each held shut: a Kernel-inactive user refused on every
//! surface, money read from the digits the caller wrote, dates in a sane range, the published schemas'
//! lengths enforced, the bearer scheme case-insensitive, `Host` and `Origin` checked on `/mcp`, every
//! API error in the API's shape, and health that says when storage cannot be written.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;

pub async fn an_inactive_users_key_is_refused_on_every_surface(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let former = sandbox.key_of_deactivated_user("tenant-123", "former-001");
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();

    for path in ["/api/drafts", "/api/executions", "/api/settlements", "/api/audit/events", "/api/audit/export", "/api/tools"] {
        let (status, body) = server.get(path, Some(&former)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "PERMISSION_DENIED", "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("inactive"), "{path}: {body}");
        let (status, _) = server.get(path, Some(&agent)).await;
        assert_eq!(status, 200, "{path}: an active user's key still works");
    }
    let (status, _) = server.post("/api/drafts/00000000-0000-7000-8000-000000000000/approve", &former, json!({})).await;
    assert_eq!(status, 403);

    // MCP refuses it with the same code (a tool error, audited).
    let client = server.mcp(&former).await;
    let e = call_err(&client, "system.domain.health.read", json!({})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED");

    // (The dashboard's sign-in applies the same check: `identity::sign_in`, tested in browser.rs.)

    // And no new key is made for such a user, or for one the Kernel does not list.
    for user in ["former-001", "nobody-999"] {
        let out = sandbox.cli(&["keys", "create", "--tenant", "tenant-123", "--user", user]);
        assert!(!out.status.success(), "keys create {user} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("PERMISSION_DENIED"), "{user}: {err}");
    }
}

/// A raw `tools/call` on `/mcp`, its arguments written as `arguments` (JSON text, so numbers keep the
/// digits the test wrote). Returns the tool result.
async fn raw_call(server: &Server, key: &str, tool: &str, arguments: &str) -> Value {
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#);
    let resp = server
        .http()
        .post(format!("{}/mcp", server.base))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["result"].clone()
}

fn payment(amount: &str, due: &str) -> String {
    format!(r#"{{"vendor_id": "V-001", "amount": {amount}, "currency": "USD", "due_date": "{due}"}}"#)
}

pub async fn money_and_dates_are_read_as_written(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let tool = "vpm.cluster.payment.draft.create";
    let drafts_before = count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts").await;

    let refused = [
        ("100.10000000000000000000000001", "at most 2 decimal places (got 100.10000000000000000000000001)"),
        ("1000.004999999999999999", "(got 1000.004999999999999999)"),
        ("5e2", "no sign, exponent or spaces"),
        (r#""5e2""#, "no sign, exponent or spaces"),
        (r#""+500""#, "no sign, exponent or spaces"),
        (r#"" 500""#, "no sign, exponent or spaces"),
        (r#""500 ""#, "no sign, exponent or spaces"),
        (r#""1,500.00""#, "no sign, exponent or spaces"),
        (r#""-5.00""#, "greater than 0"),
    ];
    for (amount, why) in refused {
        let r = raw_call(&server, &agent, tool, &payment(amount, "2026-12-31")).await;
        assert_eq!(r["isError"], true, "{amount}: {r}");
        let e = &r["structuredContent"]["error"];
        assert_eq!(e["code"], "INVALID_INPUT", "{amount}: {r}");
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with("amount: ") && message.contains(why), "{amount}: {message}");
    }
    for due in ["0000-01-01", "1999-12-31", "2100-01-01", "9999-12-31T00:00:00Z"] {
        let r = raw_call(&server, &agent, tool, &payment(r#""10.00""#, due)).await;
        let message = r["structuredContent"]["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.starts_with("due_date: must be between 2000-01-01 and 2099-12-31"), "{due}: {r}");
    }
    let r = raw_call(&server, &agent, tool, r#"{"vendor_id": "V-001", "amount": "1500.50", "currency": "JPY", "due_date": "2026-12-31"}"#).await;
    assert!(r["structuredContent"]["error"]["message"].as_str().unwrap().contains("JPY has no minor units"), "{r}");
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts").await, drafts_before, "no refused amount made a draft");

    // Amounts an f64 holds exactly are still accepted as numbers, and strings as written.
    for (amount, stored) in [("100.10", "100.10"), ("1500", "1500.00"), (r#""0012.5""#, "12.50")] {
        let r = raw_call(&server, &agent, tool, &payment(amount, "2026-12-31")).await;
        assert_ne!(r["isError"], true, "{amount}: {r}");
        let preview = r["structuredContent"]["preview_markdown"].as_str().unwrap();
        assert!(preview.contains(&format!("| Amount | {stored} USD |")), "{amount}: {preview}");
    }

    // stdio reads the same digits.
    let mut child = sandbox.command().env("LYNX_API_KEY", &agent).arg("mcp").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdin = tokio::process::ChildStdin::from_std(child.stdin.take().unwrap()).unwrap();
    let mut stdout = BufReader::new(tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap()).lines();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let call = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{}}}}}"#, payment("100.10000000000000000000000001", "2026-12-31"));
    for line in [init, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, call.as_str()] {
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    let mut answer = Value::Null;
    while let Ok(Some(line)) = tokio::time::timeout(std::time::Duration::from_secs(20), stdout.next_line()).await.unwrap() {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["id"] == 1 {
            answer = v;
            break;
        }
    }
    let message = answer["result"]["structuredContent"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("(got 100.10000000000000000000000001)"), "{answer}");
    let _ = child.kill();
    let _ = child.wait();
}

pub async fn every_edge_is_answered_in_shape(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let http = server.http();
    let get = |path: &str, auth: Option<String>| {
        let mut req = http.get(format!("{}{path}", server.base));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.send()
    };

    // RFC 7235: the scheme is case-insensitive; whitespace around or inside the token is not a token.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = get("/api/drafts", Some(format!("{scheme} {agent}"))).await.unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    for auth in [format!("Bearer  {agent}"), format!("Bearer\t{agent}"), format!("Bearer {agent}x y"), format!("Basic {agent}")] {
        let resp = get("/api/drafts", Some(auth.clone())).await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
    }

    // Every 4xx from the API is {"error": {code, message, hint}}, axum's own rejections too.
    let shaped = |status: u16, body: &Value, code: &str| {
        assert!(body["error"]["message"].is_string() && body["error"]["hint"].is_string(), "{status}: {body}");
        assert_eq!(body["error"]["code"], code, "{status}: {body}");
    };
    for (path, status, code) in [
        ("/api/drafts/%ff", 400, "INVALID_INPUT"),
        ("/api/drafts?limit=%ff", 400, "INVALID_INPUT"),
        ("/api/settlements?status=garbage", 400, "INVALID_INPUT"),
        ("/api/executions?status=garbage", 400, "INVALID_INPUT"),
        ("/api/executions?tool_id=no%20such%20tool", 400, "INVALID_INPUT"),
        ("/api/audit/events?tool_id=%3Cscript%3E", 400, "INVALID_INPUT"),
        ("/api/audit/events?since=0000-01-01", 400, "INVALID_INPUT"),
        ("/api/nothing-here", 404, "NOT_FOUND"),
    ] {
        let resp = get(path, Some(format!("Bearer {agent}"))).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        shaped(status, &body, code);
    }
    let (admin, _) = sandbox.create_key("tenant-123", "admin-001");
    for path in ["/api/webhooks/deliveries?webhook_id=%3Cx%3E", "/api/webhooks/deliveries?status=garbage"] {
        let resp = get(path, Some(format!("Bearer {admin}"))).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        shaped(400, &resp.json().await.unwrap(), "INVALID_INPUT");
    }
    let resp = http.put(format!("{}/api/drafts", server.base)).bearer_auth(&agent).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers().get("allow").is_some(), "405 keeps its Allow header");
    shaped(405, &resp.json().await.unwrap(), "INVALID_INPUT");
    let resp = http.post(format!("{}/api/drafts/00000000-0000-7000-8000-000000000000/reject", server.base)).bearer_auth(&agent).body("{not json").send().await.unwrap();
    let status = resp.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    assert!(resp.json::<Value>().await.unwrap()["error"]["code"].is_string());

    // The published schemas' lengths hold, not only the 64 KiB cap.
    let client = server.mcp(&agent).await;
    let e = call_err(&client, "vpm.domain.vendor.read", json!({"vendor_id": "V".repeat(150)})).await;
    assert_eq!(e["code"], "INVALID_INPUT");
    assert_eq!(e["message"], "vendor_id: must be at most 100 characters (got 150)");
    let e = call_err(&client, "security.domain.permission.read", json!({"action": "a".repeat(201), "resource": "tool"})).await;
    assert!(e["message"].as_str().unwrap().starts_with("action: must be at most 200 characters"), "{e}");

    // /mcp: Host parsed as RFC 9110 writes it, a browser's Origin checked (DNS-rebinding guard).
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    for (host, origin) in [
        (format!("evil@127.0.0.1:{port}"), None),
        (format!("evil.example:{port}"), None),
        (format!("127.0.0.1:{port}"), Some("http://evil.example")),
        (format!("127.0.0.1:{port}"), Some("null")),
    ] {
        let mut req = http
            .post(format!("{}/mcp", server.base))
            .bearer_auth(&agent)
            .header("Host", host.clone())
            .header("Accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{host} {origin:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["data"]["error"]["code"], "PERMISSION_DENIED", "{body}");
    }
    let resp = http
        .post(format!("{}/mcp", server.base))
        .bearer_auth(&agent)
        .header("Origin", format!("http://localhost:{port}"))
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an Origin naming this server is served");
}

/// A small tmpfs for a database that can be filled or made read-only; `None` (said) where this
/// machine cannot mount one (not root, no CAP_SYS_ADMIN).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(under: &std::path::Path, size: &str) -> Option<Self> {
        let path = under.join("small-disk");
        std::fs::create_dir_all(&path).unwrap();
        let ok = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).status().is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the disk-full and read-only checks did not run");
            return None;
        }
        Some(Self { path })
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(&self.path).status().unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn healthz(server: &Server) -> (u16, Value) {
    let resp = server.http().get(format!("{}/healthz", server.base)).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Polls until `/healthz` answers `want` (the probe runs per request; a few tries absorb a batch in flight).
async fn wait_health(server: &Server, want: u16) -> Value {
    let mut last = Value::Null;
    for _ in 0..50 {
        let (status, body) = healthz(server).await;
        if status == want {
            return body;
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("/healthz never answered {want}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_down_when_storage_cannot_be_written_and_recovers_without_a_restart() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    let Some(disk) = SmallDisk::mount(sandbox.dir.path(), "6m") else {
        if std::env::var("LYNX_REQUIRE_TMPFS").as_deref() == Ok("1") {
            panic!("LYNX_REQUIRE_TMPFS=1 but no tmpfs could be mounted");
        }
        return;
    };
    let url = format!("sqlite://{}", disk.path.join("lynx.db").display());
    sandbox.env.insert("LYNX_DATABASE_URL".into(), url.clone());
    sandbox.database_url = url;
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_INTERVAL".into(), "off".into());
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let client = server.mcp(&agent).await;
    call_ok(&client, "system.domain.health.read", json!({})).await;
    assert_eq!(healthz(&server).await.0, 200);

    // Disk full: fill the tmpfs to its last byte.
    let filler = disk.path.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }
    // Calls that write fail closed until the disk has room: keep writing until one is refused (the
    // WAL may hold a few more rows in space it already had).
    let mut refused = None;
    for _ in 0..2000 {
        let r = call(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await;
        if r.is_error == Some(true) {
            refused = Some(r.structured_content.unwrap()["error"].clone());
            break;
        }
    }
    let refused = refused.expect("writes fail once the disk is full");
    assert_eq!(refused["code"], "STORAGE_UNAVAILABLE", "{refused}");
    let body = wait_health(&server, 503).await;
    assert_eq!(body["status"], "down", "{body}");
    let (status, api) = server.get("/api/status", Some(&agent)).await;
    assert!(status == 200 || status == 503, "{status}");
    if status == 200 {
        assert_eq!(api["healthy"], false, "{api}");
    }
    let r = call(&client, "system.domain.health.read", json!({})).await;
    if r.is_error != Some(true) {
        assert_eq!(r.structured_content.unwrap()["overall_status"], "down");
    }

    // Room again: health recovers and calls succeed, without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_health(&server, 200).await;
    call_ok(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await;

    // Read-only: SQLite refuses to start on a database it cannot write, saying so.
    drop(client);
    drop(server);
    disk.remount("ro");
    let out = sandbox.cli(&["serve"]);
    disk.remount("rw");
    assert!(!out.status.success(), "lynx serve must not start on a read-only database");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage unavailable") && err.contains("readonly"), "{err}");
}

/// PostgreSQL made read-only under a running Lynx (`default_transaction_read_only`, as a replica or a
/// full disk's emergency setting would): health says down, writes fail closed, and it recovers when the
/// database is writable again — without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_down_when_postgres_turns_read_only_and_recovers() {
    let Some(engine) = Engine::postgres("health_says_down_when_postgres_turns_read_only_and_recovers") else { return };
    let sandbox = Sandbox::new(engine);
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let client = server.mcp(&agent).await;
    call_ok(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await;
    let admin = sandbox.admin_url().unwrap();
    let db = sandbox.database_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let set_read_only = |on: bool| {
        let (admin, db) = (admin.clone(), db.clone());
        async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            let flag = if on { "on" } else { "off" };
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE \"{db}\" SET default_transaction_read_only = {flag}"))).execute(&mut c).await.unwrap();
            // Lynx's pooled sessions take the setting when they reconnect.
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"))).execute(&mut c).await.unwrap();
        }
    };
    set_read_only(true).await;
    let body = wait_health(&server, 503).await;
    assert_eq!(body["checks"]["storage"]["status"], "down", "{body}");
    let (_, status) = server.get("/api/status", Some(&agent)).await;
    assert_eq!(status["healthy"], false, "{status}");
    let mut refused = false;
    for _ in 0..5 {
        // Refused as a tool result, or as a JSON-RPC error when authentication's own lookup is what
        // storage refuses.
        match try_call(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await {
            Ok(r) if r.is_error == Some(true) => {
                assert_eq!(r.structured_content.unwrap()["error"]["code"], "STORAGE_UNAVAILABLE");
                refused = true;
                break;
            }
            Ok(_) => {}
            Err(rmcp::ServiceError::McpError(e)) => {
                assert_eq!(e.data.as_ref().map(|d| &d["error"]["code"]), Some(&json!("STORAGE_UNAVAILABLE")), "{e:?}");
                refused = true;
                break;
            }
            Err(e) => panic!("tools/call: {e}"),
        }
    }
    assert!(refused, "writes fail closed on a read-only database");
    let out = sandbox.cli(&["status"]);
    assert!(!out.status.success(), "lynx status exits non-zero: {}", String::from_utf8_lossy(&out.stdout));
    set_read_only(false).await;
    wait_health(&server, 200).await;
    // The database ended every session to apply the setting; a call may still meet one of those
    // connections (as a refusal, or as a JSON-RPC error when authentication's lookup does) before the
    // pool has replaced them.
    let mut recovered = false;
    for _ in 0..20 {
        let r = try_call(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await;
        if r.is_ok_and(|r| r.is_error != Some(true)) {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(recovered, "calls succeed again without a restart");
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_per_key_on_every_surface_and_per_tenant_across_instances() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    sandbox.env.insert("LYNX_RATE_LIMIT_KEY_PER_SECOND".into(), "5".into());
    sandbox.env.insert("LYNX_RATE_LIMIT_KEY_BURST".into(), "5".into());
    sandbox.env.insert("LYNX_RATE_LIMIT_TENANT_PER_MINUTE".into(), "0".into());
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let (other, _) = sandbox.create_key("tenant-123", "agent-002");
    let server = sandbox.serve();
    let http = server.http();
    let rows_before = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events").await;

    // Per key: the sixth call within a second is refused, saying when to retry, and writes no row.
    let burst = (0..12).map(|_| quick_call(&http, &server.base, &agent, "tenant.domain.profile.read"));
    let results: Vec<Value> = futures_util::future::join_all(burst).await.into_iter().map(Option::unwrap).collect();
    let refused: Vec<&Value> = results.iter().filter(|r| limited(r)).collect();
    assert!(refused.len() >= 5, "a burst of 12 at 5/s must be limited: {} refused", refused.len());
    let e = &refused[0]["structuredContent"]["error"];
    assert_eq!(refused[0]["isError"], true);
    assert!(e["message"].as_str().unwrap().starts_with("Rate limited: API key"), "{e}");
    assert!(e["retry_after_secs"].as_u64().is_some_and(|s| s >= 1), "{e}");
    assert!(e["run_id"].is_null(), "a refused call of a flood has no row of its own: {e}");
    crate::contract::check_result("tenant.domain.profile.read", &serde_json::from_value(refused[0].clone()).unwrap()).await;
    // Another key of the same tenant is not held back by this one.
    let r = quick_call(&http, &server.base, &other, "tenant.domain.profile.read").await.unwrap();
    assert!(!limited(&r), "{r}");
    // The API answers 429 with Retry-After.
    let mut saw_429 = false;
    let requests = (0..12).map(|_| http.get(format!("{}/api/drafts", server.base)).bearer_auth(&agent).send());
    for resp in futures_util::future::join_all(requests).await {
        let resp = resp.unwrap();
        if resp.status() == 429 {
            let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
            saw_429 = true;
            break;
        }
    }
    assert!(saw_429, "the API limits the same key");
    let admitted = results.len() - refused.len();
    // Two rows per admitted call; the refusals are written in aggregate within the flush round (5 s).
    tokio::time::sleep(std::time::Duration::from_millis(6_000)).await;
    let aggregate = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE tool_id = 'lynx.rate_limited'").await;
    assert!((1..=2).contains(&aggregate), "refusals are audited in aggregate, not one row each: {aggregate}");
    let rows = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events").await - rows_before;
    assert!(rows <= (admitted as i64 + 1) * 2 + 2 + aggregate, "no row per refused call: {rows} rows for {admitted} admitted calls");
    let metrics = http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.starts_with("lynx_rate_limited_total{limit=\"key\"}")).expect("metric");
    assert!(line.split(' ').nth(1).unwrap().parse::<u64>().unwrap() >= refused.len() as u64, "{line}");
    drop(server);

    // Per tenant, across instances: two instances on one database admit no more than the quota.
    let mut sandbox2 = Sandbox::new(Engine::Sqlite);
    sandbox2.env.insert("LYNX_RATE_LIMIT_KEY_PER_SECOND".into(), "0".into());
    sandbox2.env.insert("LYNX_RATE_LIMIT_TENANT_PER_MINUTE".into(), "30".into());
    let (agent, _) = sandbox2.create_key("tenant-123", "agent-001");
    let (b, _) = sandbox2.create_key("tenant-456", "agent-456");
    let (one, two) = (sandbox2.serve(), sandbox2.serve());
    // Stay inside one minute: the quota is per minute.
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if second > 40 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - second) as u64)).await;
    }
    let mut admitted = 0;
    for i in 0..50 {
        let base = if i % 2 == 0 { &one.base } else { &two.base };
        let r = quick_call(&http, base, &agent, "tenant.domain.profile.read").await.unwrap();
        if limited(&r) {
            assert!(r["structuredContent"]["error"]["message"].as_str().unwrap().contains("across every Lynx instance"), "{r}");
        } else {
            assert_ne!(r["isError"], true, "{r}");
            admitted += 1;
        }
    }
    assert_eq!(admitted, 30, "two instances together admit exactly the tenant's quota");
    let r = quick_call(&http, &one.base, &b, "tenant.domain.profile.read").await.unwrap();
    assert!(!limited(&r), "another tenant has its own quota: {r}");
}

/// Reads until the server closes the connection; how long that took (`None`: still open at `limit`).
fn closed_within(stream: &mut std::net::TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    use std::io::Read;
    let started = std::time::Instant::now();
    stream.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed_and_the_count_is_capped() {
    use std::io::Write;
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    sandbox.env.insert("LYNX_HTTP_HEADER_TIMEOUT_MS".into(), "1000".into());
    sandbox.env.insert("LYNX_HTTP_IDLE_TIMEOUT_MS".into(), "2000".into());
    sandbox.env.insert("LYNX_HTTP_MAX_CONNECTIONS".into(), "8".into());
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let addr = server.base.trim_start_matches("http://").to_string();
    let connect = || std::net::TcpStream::connect(&addr).unwrap();
    let limit = std::time::Duration::from_secs(8);

    let mut silent = connect();
    let t = closed_within(&mut silent, limit).expect("a connection that sends nothing is closed");
    assert!(t < std::time::Duration::from_secs(3), "{t:?}");

    let mut half_headers = connect();
    half_headers.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n").unwrap();
    assert!(closed_within(&mut half_headers, limit).is_some(), "half-sent headers are not waited for forever");

    let mut half_body = connect();
    let head = format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"no");
    half_body.write_all(head.as_bytes()).unwrap();
    let t = closed_within(&mut half_body, limit).expect("a body that stops half-way is dropped after twice the idle timeout");
    assert!(t >= std::time::Duration::from_millis(3500), "closed by the idle timeout, not before: {t:?}");

    let mut kept_alive = connect();
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    assert!(closed_within(&mut kept_alive, limit).is_some(), "an idle keep-alive connection is closed");

    // The cap: 8 open, the 9th is closed at once; served again once the others are gone.
    let mut open: Vec<_> = (0..8).map(|_| connect()).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut ninth = connect();
    let t = closed_within(&mut ninth, limit).expect("over the cap a connection is closed");
    assert!(t < std::time::Duration::from_millis(900), "closed at once, not by the timeout: {t:?}");
    for s in &mut open {
        closed_within(s, limit).expect("the idle ones time out");
    }
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "served again below the cap");
}

/// The demo Kernel with daily spend limits in USD for tenant-123.
fn kernel_with_spend_limits(sandbox: &mut Sandbox, agent_daily_drafts: &str, tenant_daily_executions: &str) {
    let mut kernel = demo_kernel();
    for t in kernel["tenants"].as_array_mut().unwrap().iter_mut().filter(|t| t["tenant_id"] == "tenant-123") {
        t["policies"]["spend_limits"] = json!({"USD": {"agent_daily_drafts": agent_daily_drafts, "tenant_daily_executions": tenant_daily_executions}});
    }
    let path = sandbox.dir.path().join("kernel-spend.json");
    std::fs::write(&path, kernel.to_string()).unwrap();
    sandbox.env.insert("LYNX_KERNEL_FILE".into(), path.display().to_string());
}

/// 32 concurrent payment drafts over three instances on one database, summing past the agent's daily
/// cap, create exactly what fits; three approved payments executed at once on three instances pass the
/// tenant's daily execution cap by none.
pub async fn spend_limits_hold_across_instances(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    kernel_with_spend_limits(&mut sandbox, "1000.00", "250.00");
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver, _) = sandbox.create_key("tenant-123", "approver-001");
    let servers = [sandbox.serve(), sandbox.serve(), sandbox.serve()];
    let mut clients = Vec::new();
    for s in &servers {
        clients.push(s.mcp(&agent).await);
    }
    let calls = (0..32).map(|i| call(&clients[i % 3], "vpm.cluster.payment.draft.create", payment_args("V-001", "100.00")));
    let results = futures_util::future::join_all(calls).await;
    let mut created = Vec::new();
    let mut refusals = Vec::new();
    for r in results {
        let content = r.structured_content.clone().unwrap();
        if r.is_error == Some(true) {
            refusals.push(content["error"].clone());
        } else {
            created.push(content["draft_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(created.len(), 10, "1000.00 of 100.00 drafts: exactly ten, whatever the interleaving");
    assert_eq!(refusals.len(), 22);
    for e in &refusals {
        assert_eq!(e["code"], "SPEND_LIMIT_EXCEEDED", "{e}");
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("user agent-001 may draft 1000.00 USD") && m.contains("0.00 USD left") && m.contains("resets at"), "{m}");
    }
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts WHERE created_by = 'agent-001'").await, 10);
    // A payment above the tenant's whole daily execution limit could never run: refused as a draft (by
    // another user, whose own draft total is untouched).
    let (agent2, _) = sandbox.create_key("tenant-123", "agent-002");
    let other = servers[2].mcp(&agent2).await;
    let e = call_err(&other, "vpm.cluster.payment.draft.create", payment_args("V-001", "300.00")).await;
    assert_eq!(e["code"], "SPEND_LIMIT_EXCEEDED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("the tenant may execute 250.00 USD of payments per day"), "{e}");

    // Execution: 250.00 a day for the tenant; three approved 100.00 payments at once, one per instance.
    for id in &created[..3] {
        call_ok(&clients[0], "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
        servers[1].approve(&approver, id).await;
    }
    let executions = created[..3].iter().enumerate().map(|(i, id)| call(&clients[i], "vpm.cell.payment.execute", json!({"draft_id": id})));
    let results = futures_util::future::join_all(executions).await;
    let paid = results.iter().filter(|r| r.is_error != Some(true)).count();
    assert_eq!(paid, 2, "250.00 a day fits two payments of 100.00");
    let refused = results.iter().find(|r| r.is_error == Some(true)).unwrap().structured_content.clone().unwrap();
    assert_eq!(refused["error"]["code"], "SPEND_LIMIT_EXCEEDED", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("the tenant may execute 250.00 USD of payments per day; 200.00 USD executed today, 50.00 USD left"), "{refused}");
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_payments").await, 2);
    // The refused payment's draft is still approved and its claim closed: it can run once the limit allows.
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts WHERE status = 'APPROVED'").await, 1);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE tool_id = 'vpm.cell.payment.execute' AND status = 'FAILED'").await, 1);
}
