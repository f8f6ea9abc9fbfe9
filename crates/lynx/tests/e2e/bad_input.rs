//! Bad input — unknown field, wrong type, out-of-range limit, a 5 MB string, invalid JSON — gets
//! INVALID_INPUT naming the field, is audited as a refusal, and the server keeps serving.

use serde_json::{Value, json};

use crate::helpers::*;

async fn audited_refusal(server: &Server, key: &str, run_id: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/audit/events?run_id={run_id}"), Some(key)).await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "a start row and a closing row: {events:?}");
    assert_eq!(events[0]["event_type"], "refusal");
    assert_eq!(events[0]["status"], "DENIED");
    assert!(events[0]["error_message"].as_str().unwrap().starts_with("INVALID_INPUT"));
    assert_eq!(events[1]["status"], "STARTED");
    events
}

pub async fn bad_input_is_refused_naming_the_field_and_audited(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let client = server.mcp(&key).await;

    let cases = [
        ("tenant.domain.profile.read", json!({"include_modules": true, "colour": "blue"}), "colour: unknown field"),
        ("tenant.domain.profile.read", json!({"include_modules": "yes"}), "include_modules: invalid type"),
        ("audit.domain.run.read", json!({"limit": 500}), "limit: must be between 1 and 100"),
        ("audit.domain.run.read", json!({"limit": 0}), "limit: must be between 1 and 100"),
        ("audit.domain.run.read", json!({"since": "last tuesday"}), "since: must be an ISO 8601 date"),
        ("workflow.domain.status.read", json!({"event_limit": 51}), "event_limit: must be between 1 and 50"),
        ("finance.domain.health.read", json!({"period": "forever"}), "period: unknown variant"),
        ("security.domain.permission.read", json!({}), "action: is required"),
        ("security.domain.permission.read", json!({"action": "x".repeat(5 * 1024 * 1024)}), "action: must be at most 65536 characters"),
    ];
    for (tool, args, expected) in cases {
        let r = call(&client, tool, args).await;
        assert_eq!(r.is_error, Some(true), "{tool} {expected}");
        let error = &r.structured_content.as_ref().unwrap()["error"];
        assert_eq!(error["code"], "INVALID_INPUT", "{tool}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{tool}: {message:?} should start with {expected:?}");
        assert!(message.len() < 1000, "the message does not echo huge input");
        let run_id = run_id(&r).unwrap();
        let events = audited_refusal(&server, &key, &run_id).await;
        assert!(events[1]["input_data"].to_string().len() < 300_000, "huge input is not stored whole");
    }

    // A body that is not JSON at all.
    let resp = server
        .http()
        .post(format!("{}/mcp", server.base))
        .bearer_auth(&key)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    let error = &body["error"]["data"]["error"];
    assert_eq!(error["code"], "INVALID_INPUT");
    assert!(error["message"].as_str().unwrap().starts_with("body: is not valid JSON"), "{error}");
    audited_refusal(&server, &key, error["run_id"].as_str().unwrap()).await;

    // Still serving.
    let v = call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["tenant_id"], "tenant-123");
    let (status, _) = server.get("/api/audit/events?bogus=1", Some(&key)).await;
    assert_eq!(status, 400, "unknown query parameters are refused too");
    client.cancel().await.unwrap();
}
