//! The operator's view: `/metrics` in Prometheus text format with counters that move, `lynx metrics`
//! raising ALERT on the runbook's thresholds, audit export (API and CLI) for large trails, and a
//! SIGTERM that lets every started call finish and be audited.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};

use crate::helpers::*;

async fn scrape(server: &Server) -> prometheus_parse::Scrape {
    let text = http_client().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text format")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

pub async fn metrics_parse_and_move(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let server = sandbox.serve();
    let before = scrape(&server).await;
    let ok = [("tool", "tenant.domain.profile.read"), ("layer", "domain"), ("outcome", "succeeded")];
    assert_eq!(value(&before, "lynx_tool_calls_total", &ok), 0.0);
    assert_eq!(value(&before, "lynx_storage_up", &[]), 1.0);
    assert_eq!(value(&before, "lynx_kernel_up", &[]), 1.0);

    let agent = server.mcp(&agent_key).await;
    for _ in 0..3 {
        call_ok(&agent, "tenant.domain.profile.read", json!({})).await;
    }
    call_err(&agent, "audit.domain.run.read", json!({"limit": 0})).await;
    let d = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "9.00")).await;
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": d["draft_id"]})).await;

    let after = scrape(&server).await;
    assert_eq!(value(&after, "lynx_tool_calls_total", &ok), 3.0, "counters move with calls");
    assert_eq!(value(&after, "lynx_tool_calls_total", &[("tool", "audit.domain.run.read"), ("outcome", "denied")]), 1.0);
    assert_eq!(value(&after, "lynx_pending_approvals", &[]), 1.0);
    let hist = after
        .samples
        .iter()
        .find(|s| s.metric == "lynx_tool_call_duration_seconds" && s.labels.get("tool") == Some("tenant.domain.profile.read"))
        .expect("a latency histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => assert_eq!(buckets.last().unwrap().count, 3.0),
        other => panic!("not a histogram: {other:?}"),
    }
    server.approve(&approver_key, d["draft_id"].as_str().unwrap()).await;
    call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": d["draft_id"]})).await;
    let last = scrape(&server).await;
    assert_eq!(value(&last, "lynx_executions", &[("status", "SUCCEEDED")]), 2.0);
    assert_eq!(value(&last, "lynx_queued_settlements", &[]), 1.0);
    assert_eq!(value(&last, "lynx_stuck_executions", &[]), 0.0);
    let text = http_client().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("Acme") && !text.contains("tenant-123"), "no tenant data in /metrics");
}

/// Drives an execution to FAILED the way production does: an operator clears its claim while it runs.
async fn failed_execution(sandbox: &mut Sandbox, agent_key: &str, approver_key: &str) {
    sandbox.env.insert("LYNX_FAILPOINT_AFTER_CLAIM_MS".into(), "1500".into());
    let server = sandbox.serve();
    let agent = server.mcp(agent_key).await;
    let id = approved_payment(&server, &agent, approver_key, "5.00").await;
    let task = tokio::spawn(async move { call(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    sandbox.cli_ok(&["executions", "clear-stuck", "--older-than", "0s"]);
    let r = task.await.unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(r.structured_content.unwrap()["error"]["code"], "EXECUTION_FAILED");
    sandbox.env.remove("LYNX_FAILPOINT_AFTER_CLAIM_MS");
}

pub async fn lynx_metrics_alerts_when_failures_pass_five_percent(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    {
        let server = sandbox.serve();
        let agent = server.mcp(&agent_key).await;
        let id = approved_payment(&server, &agent, &approver_key, "8.00").await;
        call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    }
    let out = sandbox.cli(&["metrics"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ALERT") && text.contains("OK"), "{text}");

    failed_execution(&mut sandbox, &agent_key, &approver_key).await;
    let out = sandbox.cli(&["metrics"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(2), "an alert exits 2: {text}");
    let failed = text.lines().find(|l| l.contains("Failed executions")).unwrap();
    assert!(failed.starts_with("ALERT"), "{text}");
    let success = text.lines().find(|l| l.contains("Execution success rate")).unwrap();
    assert!(success.starts_with("ALERT"), "success below 95 %: {text}");
    assert!(text.lines().find(|l| l.contains("Pending settlements")).unwrap().starts_with("OK"));
    let json: Value = serde_json::from_str(&String::from_utf8_lossy(&sandbox.cli(&["metrics", "--json"]).stdout)).unwrap();
    assert_eq!(json["alerting"], true);
}

pub async fn the_audit_trail_exports_whole_as_csv_and_json(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (globex_key, _) = sandbox.create_key("tenant-456", "agent-456");
    // 560 calls of one key in a few seconds pass the default key limit (100/s after a burst of 200)
    // once the store is fast enough, and refused calls are audited later, as one row per key every
    // 5 s — a row that could land between the count below and the exports. This test is about the
    // export, so the key limit is off.
    let server = sandbox.serve_with(&[("LYNX_RATE_LIMIT_KEY_PER_SECOND", "0")]);
    let agent = server.mcp(&agent_key).await;
    let globex = server.mcp(&globex_key).await;
    // More than one page (1000 rows) of trail.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = server.mcp(&agent_key).await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..70 {
                let r = call(&client, "featureflag.domain.status.read", json!({"note": "a,b \"quoted\""})).await;
                assert!(!limited(&serde_json::to_value(&r).unwrap()), "no call is rate limited here");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    call_ok(&agent, "tenant.domain.profile.read", json!({})).await;
    call_ok(&globex, "tenant.domain.profile.read", json!({})).await;
    let total = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE tenant_id = 'tenant-123'").await;
    assert!(total > 1000);

    let resp = http_client().get(format!("{}/api/audit/export?format=json", server.base)).bearer_auth(&agent_key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let events: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(events.len() as i64, total, "the whole trail");
    assert!(events.iter().all(|e| e["tenant_id"] == "tenant-123"), "only the caller's tenant");
    assert!(events.windows(2).all(|w| w[1]["seq"].as_i64() == Some(w[0]["seq"].as_i64().unwrap() + 1)), "in chain order");

    let csv = http_client().get(format!("{}/api/audit/export?format=csv", server.base)).bearer_auth(&agent_key).send().await.unwrap().text().await.unwrap();
    assert!(csv.starts_with("seq,event_id,run_id,tenant_id,tool_id"));
    assert!(csv.contains("\"{\"\"note\"\":\"\"a,b \\\"\"quoted\\\"\"\"\"}\""), "RFC 4180 quoting of stored JSON");
    let (status, _) = server.get("/api/audit/export?format=xml", Some(&agent_key)).await;
    assert_eq!(status, 400);

    let file = sandbox.dir.path().join("audit.csv");
    let out = sandbox.command().args(["audit", "export", "--tenant", "tenant-123", "--format", "csv", "--output", file.to_str().unwrap()]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("exported 1000 events") && progress.contains(&format!("done: {total} events")), "progress is shown: {progress}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, csv, "the CLI and the API export the same bytes");
    let all: Value = serde_json::from_slice(&sandbox.command().args(["audit", "export", "--format", "json"]).stdin(Stdio::null()).output().unwrap().stdout).unwrap();
    assert!(all.as_array().unwrap().iter().any(|e| e["tenant_id"] == "tenant-456"), "without --tenant, every tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_started_calls_finish_and_be_audited() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let mut server = sandbox.serve();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = server.mcp(&agent_key).await;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 15)).await;
            try_call(&client, "vpm.cluster.payment.draft.create", payment_args("V-001", "3.00")).await.ok()
        }));
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut answered = Vec::new();
    for t in tasks {
        if let Some(r) = t.await.unwrap() {
            answered.push(r);
        }
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "a clean exit after SIGTERM");
    assert!(!answered.is_empty(), "calls in flight when the signal came were finished");
    // Every call that started also ended, in the audit trail; every answered call has both rows.
    let dangling = count(
        &sandbox,
        "SELECT COUNT(*) FROM lynx_audit_events s WHERE s.status = 'STARTED' AND NOT EXISTS \
         (SELECT 1 FROM lynx_audit_events c WHERE c.run_id = s.run_id AND c.status <> 'STARTED')",
    )
    .await;
    assert_eq!(dangling, 0, "no call was cut off after it started");
    for r in &answered {
        let run = run_id(r).unwrap();
        assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_audit_events WHERE run_id = '{run}'")).await, 2);
    }
    let drafts = count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts").await;
    assert_eq!(drafts as usize, answered.iter().filter(|r| r.is_error != Some(true)).count(), "every effect was answered");
}
