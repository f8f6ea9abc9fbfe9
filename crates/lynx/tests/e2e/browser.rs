//! The dashboard in a real browser: `dashboard/tests/dashboard.test.mjs` drives headless Chromium
//! (the system's, via playwright-core) against a Lynx this test starts and fills through MCP.
//! Screenshots land in `target/test-artifacts/dashboard/`. Without node, Chromium or the npm
//! packages the test says so and passes, unless `LYNX_REQUIRE_BROWSER=1` (CI sets it).

use std::{path::PathBuf, process::Command};

use serde_json::json;

use crate::helpers::*;

fn browser_missing() -> Option<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dashboard");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !PathBuf::from(&chromium).exists() {
        return Some(format!("{chromium} is not installed (Debian package chromium)"));
    }
    if !root.join("node_modules/playwright-core").exists() {
        return Some("dashboard/node_modules is missing (run `npm ci` in dashboard/)".into());
    }
    None
}

/// Creates a draft and submits it; returns its id.
async fn submitted(client: &Client, tool: &str, args: serde_json::Value) -> String {
    let d = call_ok(client, tool, args).await;
    let id = d["draft_id"].as_str().unwrap().to_string();
    call_ok(client, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_headless_chromium() {
    if let Some(why) = browser_missing() {
        assert!(std::env::var("LYNX_REQUIRE_BROWSER").as_deref() != Ok("1"), "browser tests required but {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let (admin_key, _) = sandbox.create_key("tenant-123", "admin-001");
    let (second_approver_key, _) = sandbox.create_key("tenant-123", "approver-002");
    let server = sandbox.serve_with(&[("LYNX_WEBHOOK_RETRY_BASE_MS", "60000"), ("LYNX_WEBHOOK_POLL_MS", "50")]);
    // A subscription nobody listens at, so the notifications page has failing deliveries to show.
    let (status, hook) = server.post("/api/webhooks", &admin_key, json!({"url": format!("http://127.0.0.1:{}/gone", free_port())})).await;
    assert_eq!(status, 201, "{hook}");
    let agent = server.mcp(&agent_key).await;
    let admin = server.mcp(&admin_key).await;
    let draft_id = submitted(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "250.00")).await;
    let own_id = submitted(&admin, "vpm.cluster.payment.draft.create", payment_args("V-001", "99.00")).await;
    let xss_id = submitted(
        &agent,
        "docs.cluster.draft.create",
        json!({"doc_type": "ADR", "title": "<script>alert('xss')</script><img src=x onerror=alert(1)>", "content_outline": "<b onmouseover=alert(2)>x</b>"}),
    )
    .await;
    // Created last, yet first in the queue: high risk, and it needs two approvals.
    let big_id = submitted(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "2500.00")).await;
    let workflow_id = submitted(&agent, "workflow.cluster.draft.create", json!({"workflow_kind": "onboarding", "name": "Vendor onboarding", "steps": [{"name": "Collect W-9"}]})).await;

    // The overview shows how far the audit is anchored.
    sandbox.cli_ok(&["audit", "checkpoint"]);

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts/dashboard");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dashboard");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/dashboard.test.mjs"])
        .current_dir(&root)
        .env("BASE_URL", &server.base)
        .env("APPROVER_KEY", &approver_key)
        .env("ADMIN_KEY", &admin_key)
        .env("DRAFT_ID", &draft_id)
        .env("OWN_ID", &own_id)
        .env("XSS_ID", &xss_id)
        .env("BIG_ID", &big_id)
        .env("WORKFLOW_ID", &workflow_id)
        .env("SECOND_APPROVER_KEY", &second_approver_key)
        .env("ARTIFACTS", &artifacts)
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser tests failed:\n{report}");
    for shot in ["approval-queue.png", "draft-approved.png", "approval-queue-phone.png", "draft-xss-inert.png", "draft-one-of-two.png", "notifications.png"] {
        assert!(artifacts.join(shot).exists(), "screenshot {shot} kept");
    }
    let (_, d) = server.get(&format!("/api/drafts/{draft_id}"), Some(&approver_key)).await;
    assert_eq!(d["status"], "APPROVED");
    let (_, d) = server.get(&format!("/api/drafts/{big_id}"), Some(&approver_key)).await;
    assert_eq!((d["status"].as_str(), d["approvals"].as_array().map(Vec::len)), (Some("APPROVED"), Some(2)), "{d}");
}
