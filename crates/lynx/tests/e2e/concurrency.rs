//! Exactly once under concurrency: 32 concurrent executions of one approved draft over HTTP MCP, 16
//! concurrent draft creations with one request_id; and a server killed mid-execution, restarted,
//! cleared and retried.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

pub async fn thirty_two_concurrent_executions_succeed_exactly_once(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let id = approved_payment(&server, &agent, &approver_key, "42.00").await;

    let mut tasks = Vec::new();
    for i in 0..32 {
        let client = server.mcp(&agent_key).await;
        let args = json!({"draft_id": id, "request_id": format!("burst-{i}")});
        tasks.push(tokio::spawn(async move { call(&client, "vpm.cell.payment.execute", args).await }));
    }
    let mut succeeded = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.is_error == Some(true) {
            let code = r.structured_content.unwrap()["error"]["code"].as_str().unwrap().to_string();
            assert!(code == "ALREADY_EXECUTED" || code == "EXECUTION_IN_PROGRESS", "unexpected refusal {code}");
        } else {
            succeeded += 1;
        }
    }
    assert_eq!(succeeded, 1, "exactly one call executes");
    let d = format!("draft_id = '{id}'");
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_executions WHERE {d} AND status = 'SUCCEEDED' AND tool_id = 'vpm.cell.payment.execute'")).await, 1);
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_payments WHERE {d}")).await, 1);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM settlement_intents").await, 1);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED'").await, 0);
    assert!(sandbox.cli_ok(&["audit", "verify"]).contains("Audit trail verified."));
}

pub async fn sixteen_concurrent_creations_with_one_request_id_make_one_draft(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let mut args = payment_args("V-002", "99.99");
    args["request_id"] = json!("invoice-7781");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = server.mcp(&agent_key).await;
        let args = args.clone();
        tasks.push(tokio::spawn(async move { call_ok(&client, "vpm.cluster.payment.draft.create", args).await }));
    }
    let mut answers: Vec<Value> = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "16 identical answers");
    assert_eq!(answers[0]["risk_level"], "high", "V-002 carries a risk flag");
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts").await, 1, "one draft");

    let agent = server.mcp(&agent_key).await;
    let mut other = args.clone();
    other["amount"] = json!("100.00");
    let e = call_err(&agent, "vpm.cluster.payment.draft.create", other).await;
    assert_eq!(e["code"], "IDEMPOTENCY_CONFLICT");
    let e = call_err(&agent, "workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": [{"name": "s"}], "request_id": "invoice-7781"})).await;
    assert_eq!(e["code"], "IDEMPOTENCY_CONFLICT", "another tool with the same request_id");
    // Another tenant may use the same request_id.
    let (globex_key, _) = sandbox.create_key("tenant-456", "agent-456");
    let globex = server.mcp(&globex_key).await;
    call_ok(&globex, "workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": [{"name": "s"}], "request_id": "invoice-7781"})).await;
}

pub async fn a_crash_mid_execution_leaves_no_effect_and_the_retry_succeeds_once(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");

    // Some payments complete normally before the crash.
    let mut drafts = Vec::new();
    {
        let server = sandbox.serve();
        let agent = server.mcp(&agent_key).await;
        for i in 0..6 {
            drafts.push(approved_payment(&server, &agent, &approver_key, &format!("{}.00", 10 + i)).await);
        }
        for id in &drafts[..2] {
            call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
        }
    }

    // A burst of executions against a server that pauses between claim and commit, killed mid-way.
    sandbox.env.insert("LYNX_FAILPOINT_AFTER_CLAIM_MS".into(), "5000".into());
    {
        let mut server = sandbox.serve();
        for id in &drafts[2..] {
            let client = server.mcp(&agent_key).await;
            let args = json!({"draft_id": id});
            // These calls never get an answer: the server dies under them.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(20), try_call(&client, "vpm.cell.payment.execute", args)).await;
            });
        }
        // Wait until all four claims are in, then SIGKILL.
        for _ in 0..100 {
            if count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED'").await == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    }
    sandbox.env.remove("LYNX_FAILPOINT_AFTER_CLAIM_MS");

    // No effect without SUCCEEDED, no SUCCEEDED without its effects.
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED'").await, 4, "four stuck claims");
    let orphans = "SELECT COUNT(*) FROM lynx_payments p WHERE NOT EXISTS (SELECT 1 FROM lynx_executions e WHERE e.execution_id = p.execution_id AND e.status = 'SUCCEEDED')";
    let hollow = "SELECT COUNT(*) FROM lynx_executions e WHERE e.status = 'SUCCEEDED' AND e.tool_id = 'vpm.cell.payment.execute' \
                  AND NOT EXISTS (SELECT 1 FROM lynx_payments p WHERE p.execution_id = e.execution_id) \
                  OR (e.status = 'SUCCEEDED' AND e.tool_id = 'vpm.cell.payment.execute' AND NOT EXISTS (SELECT 1 FROM settlement_intents s JOIN lynx_payments p ON p.payment_id = s.payment_id WHERE p.execution_id = e.execution_id))";
    assert_eq!(count(&sandbox, orphans).await, 0);
    assert_eq!(count(&sandbox, hollow).await, 0);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_payments").await, 2);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts WHERE status = 'APPROVED'").await, 4, "the stuck drafts are untouched");

    // Restarted: the stuck claims block a retry until an operator clears them.
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": drafts[2]})).await;
    assert_eq!(e["code"], "EXECUTION_IN_PROGRESS");
    let v = call_ok(&agent, "system.domain.health.read", json!({})).await;
    assert_eq!(v["queues"]["stuck_executions"], 0, "not yet an hour old");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = sandbox.cli_ok(&["executions", "clear-stuck", "--older-than", "1s"]);
    assert!(out.contains("4 stuck execution(s) cleared"), "{out}");
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE status = 'FAILED' AND error_message = 'Manual intervention: execution stuck' AND completed_at IS NOT NULL").await, 4);

    // Each retry succeeds exactly once.
    for id in &drafts[2..] {
        call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
        let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
        assert_eq!(e["code"], "ALREADY_EXECUTED");
    }
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_payments").await, 6);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM (SELECT draft_id FROM lynx_payments GROUP BY draft_id HAVING COUNT(*) > 1) AS doubled").await, 0);
    assert_eq!(count(&sandbox, orphans).await, 0);
    assert!(sandbox.cli_ok(&["audit", "verify"]).contains("Audit trail verified."));
}
