//! Every answer on `/mcp` is JSON-RPC: a refused key is `401` with a Bearer challenge and a JSON-RPC
//! error carrying code, message and hint; a body that is not one JSON-RPC 2.0 message gets a parse or
//! invalid-request error and is audited as the caller's refusal; a storage outage is a JSON-RPC error
//! too, never the API's `{"error": …}` shape.

use serde_json::{Value, json};

use crate::helpers::*;

const ACCEPT: &str = "application/json, text/event-stream";

/// POSTs raw bytes to `/mcp`; returns status, headers and the body as JSON.
async fn post_raw(server: &Server, key: Option<&str>, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = server.http().post(format!("{}/mcp", server.base)).body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("/mcp answered something that is not JSON ({status}): {text}"));
    (status, headers, body)
}

/// A JSON-RPC error response: checks its shape and returns `(code, data.error)`.
fn jsonrpc_error(body: &Value) -> (i64, Value) {
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body.get("result").is_none(), "{body}");
    let error = &body["error"];
    let data = error["data"]["error"].clone();
    assert!(data["code"].is_string() && data["message"].is_string(), "{body}");
    assert!(data["hint"].as_str().is_some_and(|h| !h.is_empty()), "the hint says what to do: {body}");
    assert!(error["message"].as_str().unwrap().contains(data["hint"].as_str().unwrap()), "clients that show only the message see the hint");
    (error["code"].as_i64().unwrap(), data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_keys_and_unreadable_bodies_get_jsonrpc_errors_and_are_audited() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let json_headers = [("Content-Type", "application/json"), ("Accept", ACCEPT)];
    let list = br#"{"jsonrpc":"2.0","id":41,"method":"tools/list"}"#.to_vec();

    // No key, a bad key: 401 with the challenge, and the error answers request 41.
    for key in [None, Some("lynx_not_a_real_key")] {
        let (status, headers, body) = post_raw(&server, key, &json_headers, list.clone()).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"lynx\"");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["id"], 41);
        let (code, error) = jsonrpc_error(&body);
        assert_eq!((code, error["code"].as_str().unwrap()), (-32001, "UNAUTHENTICATED"));
        assert_eq!(error["run_id"], Value::Null, "an unidentified caller has no tenant to audit in");
    }

    // Bodies rmcp cannot take: each is named, answered in JSON-RPC and audited as agent-001's refusal.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    // (what, body, headers, HTTP status, JSON-RPC code, words the message has)
    type Case<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], u16, i64, &'a str);
    let cases: Vec<Case> = vec![
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{\"x\":\"\xff\"}}".to_vec(), &json_headers, 400, -32700, "UTF-8"),
        ("a lone surrogate", br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"x":"\ud800"}}"#.to_vec(), &json_headers, 400, -32700, "not valid JSON"),
        ("1e400", br#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"x":1e400}}"#.to_vec(), &json_headers, 400, -32700, "out of range"),
        ("100k-deep nesting", deep, &json_headers, 400, -32700, "recursion limit"),
        ("jsonrpc 1.0", br#"{"jsonrpc":"1.0","id":5,"method":"tools/list"}"#.to_vec(), &json_headers, 400, -32600, "\"2.0\""),
        ("a batch", br#"[{"jsonrpc":"2.0","id":6,"method":"tools/list"}]"#.to_vec(), &json_headers, 400, -32600, "batch"),
        ("no method", br#"{"jsonrpc":"2.0","id":7}"#.to_vec(), &json_headers, 400, -32600, "neither a request"),
        ("text/plain", list.clone(), &[("Content-Type", "text/plain"), ("Accept", ACCEPT)], 415, -32600, "Content-Type"),
        ("no Accept", list.clone(), &[("Content-Type", "application/json")], 406, -32600, "accept"),
    ];
    for (label, body, headers, want_status, want_code, words) in cases {
        let id = lynx_mcp::jsonrpc::request_id(&body);
        let (status, _, answer) = post_raw(&server, Some(&key), headers, body).await;
        assert_eq!(status, want_status, "{label}: {answer}");
        assert_eq!(answer["id"], id, "{label}: the error answers the request it is about");
        let (code, error) = jsonrpc_error(&answer);
        assert_eq!(code, want_code, "{label}: {answer}");
        assert_eq!(error["code"], "INVALID_INPUT", "{label}");
        assert!(error["message"].as_str().unwrap().to_lowercase().contains(&words.to_lowercase()), "{label}: {error}");
        let run_id = error["run_id"].as_str().unwrap_or_else(|| panic!("{label}: the refusal is audited and names its run"));
        let refused = count(
            &sandbox,
            &format!("SELECT COUNT(*) FROM lynx_audit_events WHERE run_id = '{run_id}' AND tenant_id = 'tenant-123' AND actor_id = 'agent-001' AND event_type = 'refusal' AND status = 'DENIED'"),
        )
        .await;
        assert_eq!(refused, 1, "{label}: one refusal row for agent-001");
    }

    // A GET (a client looking for a stream) is answered in JSON-RPC too, and is not a refusal of a call.
    let resp = server.http().get(format!("{}/mcp", server.base)).bearer_auth(&key).header("Accept", "text/event-stream").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jsonrpc_error(&body).0, -32600);

    // The server still serves, and the chain holds.
    let client = server.mcp(&key).await;
    call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    assert!(sandbox.cli(&["audit", "verify"]).status.success());
}

/// PostgreSQL only (an outage a test can cause and end): the database refuses Lynx's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_is_a_jsonrpc_error_on_mcp() {
    let Some(engine) = Engine::postgres("a_storage_outage_is_a_jsonrpc_error_on_mcp") else { return };
    let sandbox = Sandbox::new(engine);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve_with(&[("LYNX_KEY_CACHE_MS", "3000"), ("LYNX_DB_POOL_SIZE", "2")]);
    let client = server.mcp(&key).await;
    call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    let cached_at = std::time::Instant::now();

    let database = sandbox.database_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let admin = sandbox.admin_url().unwrap();
    admin_sql(&admin, &format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")).await;
    admin_sql(&admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")).await;

    // The key is still cached: the call reaches the pipeline, which cannot audit it and refuses.
    let e = call_err(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(e["code"], "STORAGE_UNAVAILABLE", "{e}");
    assert!(cached_at.elapsed() < std::time::Duration::from_secs(3), "the refusal came from the pipeline, not the key check");

    // Once the cache has expired, the key cannot be checked: a JSON-RPC error, 503.
    tokio::time::sleep(std::time::Duration::from_secs(3).saturating_sub(cached_at.elapsed())).await;
    let list = br#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#.to_vec();
    let (status, _, body) = post_raw(&server, Some(&key), &[("Content-Type", "application/json"), ("Accept", ACCEPT)], list.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["id"], 9);
    let (code, error) = jsonrpc_error(&body);
    assert_eq!((code, error["code"].as_str().unwrap()), (-32000, "STORAGE_UNAVAILABLE"));
    let (status, health) = server.get("/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (503, Some("down")));

    admin_sql(&admin, &format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")).await;
    let mut recovered = false;
    for _ in 0..50 {
        let (status, _, _) = post_raw(&server, Some(&key), &[("Content-Type", "application/json"), ("Accept", ACCEPT)], list.clone()).await;
        if status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "Lynx serves again once the database takes connections");
    call_ok(&client, "tenant.domain.profile.read", json!({})).await;
}

async fn admin_sql(admin: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap();
}
