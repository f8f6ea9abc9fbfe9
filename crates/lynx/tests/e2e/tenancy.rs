//! Tenant absolutism: a caller of tenant A never sees tenant B's audit rows through any tool or route.

use serde_json::json;

use crate::helpers::*;

pub async fn tenants_never_see_each_others_audit_rows(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (acme, _) = sandbox.create_key("tenant-123", "agent-001");
    let (globex, _) = sandbox.create_key("tenant-456", "agent-456");
    let server = sandbox.serve();

    let a = server.mcp(&acme).await;
    let b = server.mcp(&globex).await;
    let mut acme_runs = Vec::new();
    for _ in 0..3 {
        let r = call(&a, "tenant.domain.profile.read", json!({})).await;
        acme_runs.push(run_id(&r).unwrap());
    }
    let r = call(&b, "featureflag.domain.status.read", json!({})).await;
    let globex_run = run_id(&r).unwrap();

    // Through the tool.
    let v = call_ok(&b, "audit.domain.run.read", json!({"limit": 100})).await;
    assert_eq!(v["tenant_id"], "tenant-456");
    let seen: Vec<&str> = v["runs"].as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(seen.contains(&globex_run.as_str()));
    assert!(acme_runs.iter().all(|r| !seen.contains(&r.as_str())), "tenant B sees none of A's runs");
    assert_eq!(v["total_count"], 1);
    let v = call_ok(&b, "audit.domain.run.read", json!({"tool_id": "tenant.domain.profile.read"})).await;
    assert_eq!(v["total_count"], 0);

    // Through the API, even when asking for A's run by id.
    let (_, body) = server.get("/api/audit/events?limit=500", Some(&globex)).await;
    let events = body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["tenant_id"] == "tenant-456"));
    let (_, body) = server.get(&format!("/api/audit/events?run_id={}", acme_runs[0]), Some(&globex)).await;
    assert_eq!(body["events"], json!([]));
    let (_, body) = server.get(&format!("/api/audit/events?run_id={}", acme_runs[0]), Some(&acme)).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 2);

    // The status API shows the caller's own runs only.
    let (_, status) = server.get("/api/status", Some(&globex)).await;
    assert!(status["last_runs"].as_array().unwrap().iter().all(|r| r["tenant_id"] == "tenant-456"));

    // A's data never leaks into B's answers.
    let v = call_ok(&b, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["tenant_name"], "Globex Logistics");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}
