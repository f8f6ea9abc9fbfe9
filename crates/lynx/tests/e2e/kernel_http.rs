//! Lynx pointed at the Kernel over HTTP (`lynx kernel serve`, the reference server): the tool suite
//! passes; with the Kernel stopped, permission-checked calls are refused `KERNEL_UNAVAILABLE` (none is
//! let through), health reports it, `lynx status` fails; and once the Kernel is back, calls succeed
//! again without restarting Lynx.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;

use crate::{domain_tools::check_all_domain_tools, helpers::*};

struct KernelServer(Child);

impl Drop for KernelServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_kernel(port: u16) -> KernelServer {
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kernel/demo.json");
    let mut child = Command::new(LYNX)
        .args(["kernel", "serve", "--file", file.to_str().unwrap(), "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("KERNEL_API_KEY", "kernel-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("serving") && line.contains("KERNEL_API_KEY required"), "{line}");
    KernelServer(child)
}

pub async fn the_kernel_over_http(engine: Engine) {
    let port = free_port();
    let mut kernel = Some(start_kernel(port));
    let mut sandbox = Sandbox::new(engine);
    sandbox.env.insert("KERNEL_API_URL".into(), format!("http://127.0.0.1:{port}"));
    sandbox.env.insert("KERNEL_API_KEY".into(), "kernel-secret".into());
    sandbox.env.insert("KERNEL_TIMEOUT_MS".into(), "1000".into());
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;

    // The whole domain suite, and a payment end to end, against the HTTP Kernel.
    check_all_domain_tools(&agent).await;
    let id = approved_payment(&server, &agent, &approver_key, "25.00").await;
    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(paid["status"], "pending_settlement");
    let status = sandbox.cli_ok(&["status"]);
    assert!(status.contains("Kernel API: ✅ Reachable") && status.contains(&format!("HTTP http://127.0.0.1:{port}")), "{status}");

    // The Kernel goes down.
    kernel.take();
    for (tool, args) in [
        ("tenant.domain.profile.read", json!({})),
        ("security.domain.permission.read", json!({"action": "vpm.cell.payment.execute"})),
        ("vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")),
        ("vpm.cell.payment.execute", json!({"draft_id": id})),
    ] {
        let e = call_err(&agent, tool, args).await;
        assert_eq!(e["code"], "KERNEL_UNAVAILABLE", "{tool} must be refused, not let through: {e}");
    }
    let v = call_ok(&agent, "system.domain.health.read", json!({})).await;
    assert_eq!(v["kernel_reachable"], false);
    assert_eq!(v["overall_status"], "degraded");
    assert_eq!(v["dependencies"]["kernel"]["status"], "down");
    let (code, health) = server.get("/healthz", None).await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["kernel"]["status"], "down");
    let out = sandbox.cli(&["status"]);
    assert!(!out.status.success(), "lynx status exits non-zero while the Kernel is down");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Kernel API: ❌ Unreachable"), "{text}");
    // An outage is a failure, not a rule saying no: FAILED wherever in the gates it struck.
    let failed = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE status = 'FAILED' AND error_message LIKE 'KERNEL_UNAVAILABLE%'").await;
    assert!(failed >= 4, "the refused calls are audited as failures");
    let denied = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE status = 'DENIED' AND error_message LIKE 'KERNEL_UNAVAILABLE%'").await;
    assert_eq!(denied, 0, "one rule decides FAILED or DENIED");

    // The Kernel comes back on the same address: Lynx recovers without a restart.
    let _kernel = start_kernel(port);
    let mut recovered = false;
    for _ in 0..50 {
        let r = call(&agent, "tenant.domain.profile.read", json!({})).await;
        if r.is_error != Some(true) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "calls succeed again once the Kernel is back");
    let v = call_ok(&agent, "system.domain.health.read", json!({})).await;
    assert_eq!(v["kernel_reachable"], true);
    assert!(sandbox.cli(&["status"]).status.success());
    agent.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_kernel_server_speaks_the_contract() {
    let port = free_port();
    let _kernel = start_kernel(port);
    let http = http_client();
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: &str, key: Option<&str>, tenant: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(t) = tenant {
            req = req.header("X-Tenant-Id", t);
        }
        req.send()
    };
    let health: serde_json::Value = get("/health", None, None).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(get("/tenants/tenant-123", None, None).await.unwrap().status(), 401, "the key is required");
    assert_eq!(get("/tenants/tenant-123", Some("wrong"), None).await.unwrap().status(), 401);
    let k = Some("kernel-secret");
    let tenant: serde_json::Value = get("/tenants/tenant-123", k, Some("tenant-123")).await.unwrap().json().await.unwrap();
    assert_eq!(tenant["name"], "Acme Manufacturing");
    assert_eq!(tenant["settings"]["approval_threshold"], "1000.00");
    assert_eq!(get("/tenants/tenant-999", k, None).await.unwrap().status(), 404, "an unknown tenant is 404");
    assert_eq!(get("/tenants/tenant-123", k, Some("tenant-456")).await.unwrap().status(), 403, "X-Tenant-Id must match");
    let user: serde_json::Value = get("/tenants/tenant-123/users/approver-001", k, None).await.unwrap().json().await.unwrap();
    assert_eq!(user["role"], "approver");
    let vendor: serde_json::Value = get("/tenants/tenant-123/vendors/V-003", k, None).await.unwrap().json().await.unwrap();
    assert_eq!(vendor["status"], "inactive");
    let docs: serde_json::Value = get("/tenants/tenant-123/documents", k, None).await.unwrap().json().await.unwrap();
    assert!(docs.as_array().unwrap().len() >= 5);
    let fin: serde_json::Value = get("/tenants/tenant-123/finance/summary?period=ytd", k, None).await.unwrap().json().await.unwrap();
    assert_eq!(fin["period"], "ytd");
    let pol: serde_json::Value = get("/tenants/tenant-123/policies", k, None).await.unwrap().json().await.unwrap();
    assert!(pol["tool_policies"].as_array().unwrap().len() >= 18);
    let meta: serde_json::Value = get("/metadata/vendor", k, None).await.unwrap().json().await.unwrap();
    assert!(meta["fields"].as_array().unwrap().contains(&json!("risk_flags")));
    let schema: serde_json::Value = get("/schema/tenant", k, None).await.unwrap().json().await.unwrap();
    assert!(schema["properties"]["enabled_modules"].is_object());
    let decision: serde_json::Value = http
        .post(format!("{base}/permissions/check"))
        .bearer_auth("kernel-secret")
        .json(&json!({"user_id": "approver-001", "tenant_id": "tenant-123", "action": "vpm.cluster.payment.draft.create", "resource_type": "tool"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(decision["allowed"], false);
    assert_eq!(decision["source"], "kernel");
}
