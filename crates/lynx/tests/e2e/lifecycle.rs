//! The whole lifecycle through a real MCP client and the HTTP API: payment draft → submit → approve
//! (by someone who is not the creator) → execute → payment pending settlement with a queued intent;
//! a workflow draft → PUBLISHED; a docs draft submitted; settlement and rollback by operators.

use serde_json::json;

use crate::helpers::*;

pub async fn payment_workflow_and_docs_lifecycles(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let (finance_key, _) = sandbox.create_key("tenant-123", "finance-001");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;

    // Payment: draft.
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "500.00")).await;
    assert_eq!(draft["tenant_id"], "tenant-123");
    assert_eq!(draft["status"], "DRAFT");
    assert_eq!(draft["risk_level"], "medium");
    assert_eq!(draft["vendor_snapshot"]["vendor_name"], "Northwind Supplies");
    assert_eq!(draft["execution_readiness"], json!({"is_vendor_active": true, "bank_details_present": true, "amount_within_threshold": true, "requires_manual_review": false}));
    assert!(draft["recommended_approvers"].as_array().unwrap().contains(&json!("approver")));
    assert!(draft["preview_markdown"].as_str().unwrap().contains("500.00 USD"));
    let id = draft["draft_id"].as_str().unwrap().to_string();
    let (_, shown) = server.get(&format!("/api/drafts/{id}"), Some(&approver_key)).await;
    assert_eq!(shown["status"], "DRAFT");
    assert_eq!(shown["created_by"], "agent-001");
    assert_eq!(shown["payload"]["amount"], "500.00");

    // Submit, approve (not the creator), execute.
    let submitted = call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    assert_eq!(submitted["status"], "SUBMITTED");
    assert!(submitted["execution_id"].is_string());
    let decision = server.approve(&approver_key, &id).await;
    assert_eq!(decision["draft"]["status"], "APPROVED");
    assert_eq!(decision["draft"]["approved_by"], "approver-001");
    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id, "request_id": "pay-1"})).await;
    assert_eq!(paid["status"], "pending_settlement");
    assert_eq!(paid["settlement_intent"]["status"], "queued");
    assert_eq!(paid["settlement_intent"]["provider"], "none");
    assert_eq!(paid["amount"], "500.00");
    let payment_id = paid["payment_id"].as_str().unwrap().to_string();
    assert_eq!(paid["settlement_intent"]["payment_id"], payment_id.as_str());

    // The same request_id replays the stored answer; a new one is refused as already executed.
    let again = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id, "request_id": "pay-1"})).await;
    assert_eq!(again, paid);
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id, "request_id": "pay-2"})).await;
    assert_eq!(e["code"], "ALREADY_EXECUTED");
    assert!(e["message"].as_str().unwrap().starts_with("Draft has already been successfully executed by vpm.cell.payment.execute (execution_id: "));

    // Reads see it.
    let (_, shown) = server.get(&format!("/api/drafts/{id}"), Some(&approver_key)).await;
    assert_eq!(shown["status"], "EXECUTED");
    let statuses: Vec<&str> = shown["executions"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["SUCCEEDED", "SUCCEEDED"], "submit and execute");
    let v = call_ok(&agent, "vpm.domain.payment.status.read", json!({})).await;
    assert_eq!(v["payments"][0]["payment_id"], payment_id.as_str());
    assert_eq!(v["payments"][0]["status"], "pending_settlement");
    assert_eq!(v["total_pending_amount"], "500.00");
    let (_, s) = server.get("/api/settlements", Some(&approver_key)).await;
    assert_eq!(s["settlements"][0]["status"], "queued");
    assert_eq!(s["settlements"][0]["provider"], "none");
    let (_, x) = server.get(&format!("/api/executions?draft_id={id}&status=SUCCEEDED"), Some(&approver_key)).await;
    assert_eq!(x["executions"].as_array().unwrap().len(), 2);
    let exec = x["executions"].as_array().unwrap().iter().find(|e| e["tool_id"] == "vpm.cell.payment.execute").unwrap();
    assert_eq!(exec["rollback_instructions"]["action"], "reverse_payment");

    // Settlement: only settlement managers move it; completed settles the payment; rollback is then refused.
    let (status, body) = server.post(&format!("/api/settlements/{payment_id}"), &approver_key, json!({"status": "processing"})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.post(&format!("/api/settlements/{payment_id}"), &finance_key, json!({"status": "completed"})).await;
    assert_eq!(status, 409, "queued cannot jump to completed: {body}");
    let (status, _) = server.post(&format!("/api/settlements/{payment_id}"), &finance_key, json!({"status": "processing"})).await;
    assert_eq!(status, 200);
    let (status, body) = server.post(&format!("/api/settlements/{payment_id}"), &finance_key, json!({"status": "completed", "note": "wire ref 42"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "manual");
    assert_eq!(body["payment_status"], "settled");
    let v = call_ok(&agent, "vpm.domain.vendor.read", json!({"vendor_id": "V-001"})).await;
    assert_eq!(v["vendor"]["total_paid"], "500.00");
    let out = sandbox.cli(&["executions", "rollback", exec["execution_id"].as_str().unwrap()]);
    assert!(!out.status.success(), "a settled payment cannot be rolled back");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ROLLBACK_NOT_POSSIBLE"));

    // A second payment, rolled back while its settlement is still queued: the reversal.
    let id2 = approved_payment(&server, &agent, &approver_key, "120.50").await;
    let paid2 = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id2})).await;
    let exec2 = paid2["execution_id"].as_str().unwrap();
    let out = sandbox.cli_ok(&["executions", "rollback", exec2, "--json"]);
    let rolled: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(rolled["rolled_back_at"].is_string());
    let (_, s) = server.get("/api/settlements", Some(&approver_key)).await;
    let intent = s["settlements"].as_array().unwrap().iter().find(|s| s["payment_id"] == paid2["payment_id"]).unwrap();
    assert_eq!(intent["status"], "cancelled");
    assert_eq!(intent["payment_status"], "reversed");
    assert!(intent["metadata"]["reversal"]["reversed_by"].is_string());
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id2})).await;
    assert_eq!(e["code"], "ALREADY_EXECUTED", "a reversed payment's draft stays executed");

    // Workflow: draft → submit → approve (CLI) → publish.
    let wf = call_ok(&agent, "workflow.cluster.draft.create", json!({
        "workflow_kind": "onboarding", "name": "Vendor onboarding",
        "steps": [{"name": "Collect W-9", "required_role": "finance_manager"}, {"name": "Verify bank", "action": "call vendor"}],
        "linked_object": "vendor:V-005"
    })).await;
    assert_eq!(wf["risk_level"], "medium");
    assert!(wf["policy_snapshot"]["approval_rules"].is_array());
    let wf_id = wf["draft_id"].as_str().unwrap().to_string();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": wf_id})).await;
    let out = sandbox.cli_ok(&["drafts", "approve", &wf_id, "--user", "workflow-001", "--notes", "ok"]);
    assert!(out.contains("APPROVED"), "{out}");
    let published = call_ok(&agent, "workflow.cell.draft.publish", json!({"draft_id": wf_id})).await;
    assert_eq!(published["status"], "PUBLISHED");
    assert!(published["workflow_id"].is_string());
    let v = call_ok(&agent, "workflow.domain.status.read", json!({})).await;
    assert_eq!(v["active_workflows_count"], 1);
    let types: Vec<&str> = v["recent_events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert!(types.contains(&"workflow_published") && types.contains(&"draft_created"), "{types:?}");

    // Docs: draft → submitted.
    let doc = call_ok(&agent, "docs.cluster.draft.create", json!({"doc_type": "ADR", "title": "Use exact decimals", "content_outline": "Context\nDecision"})).await;
    assert_eq!(doc["risk_level"], "medium");
    assert!(doc["diff_summary"].as_str().unwrap().starts_with("New ADR document"));
    let doc_id = doc["draft_id"].as_str().unwrap();
    let s = call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": doc_id})).await;
    assert_eq!(s["status"], "SUBMITTED");
    let (_, list) = server.get("/api/drafts?status=SUBMITTED", Some(&approver_key)).await;
    assert_eq!(list["drafts"].as_array().unwrap().len(), 1);

    // Every step above was audited, and the chain holds.
    let out = sandbox.cli_ok(&["audit", "verify"]);
    assert!(out.contains("Audit trail verified."), "{out}");
    let (_, events) = server.get("/api/audit/events?tool_id=lynx.drafts.approve", Some(&approver_key)).await;
    let actors: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["actor_id"].as_str().unwrap()).collect();
    assert_eq!(actors, vec!["workflow-001", "approver-001", "approver-001"], "each decision is audited with who made it");
    agent.cancel().await.unwrap();
}

pub async fn policies_can_require_several_distinct_approvals(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (a1, _) = sandbox.create_key("tenant-123", "approver-001");
    let (a2, _) = sandbox.create_key("tenant-123", "approver-002");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    // Above the 1000.00 threshold: high risk, two approvals.
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "2500.00")).await;
    assert_eq!(draft["risk_level"], "high");
    assert_eq!(draft["required_approvals"], 2);
    assert_eq!(draft["execution_readiness"]["amount_within_threshold"], false);
    let id = draft["draft_id"].as_str().unwrap();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    let first = server.approve(&a1, id).await;
    assert_eq!(first["draft"]["status"], "SUBMITTED", "one of two approvals");
    assert_eq!(first["approvals"], 1);
    let (status, body) = server.post(&format!("/api/drafts/{id}/approve"), &a1, json!({})).await;
    assert_eq!(status, 409, "one decision per approver: {body}");
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert!(e["message"].as_str().unwrap().starts_with("Draft is not approved (status: submitted)"));
    let second = server.approve(&a2, id).await;
    assert_eq!(second["draft"]["status"], "APPROVED");
    assert_eq!(second["approvals"], 2);
    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(paid["status"], "pending_settlement");

    // A rejection needs a reason and ends the draft.
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "10.00")).await;
    let id = draft["draft_id"].as_str().unwrap();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    let (status, body) = server.post(&format!("/api/drafts/{id}/reject"), &a1, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_INPUT");
    let (status, body) = server.post(&format!("/api/drafts/{id}/reject"), &a1, json!({"reason": "duplicate invoice"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["draft"]["status"], "REJECTED");
    assert_eq!(body["draft"]["rejection_reason"], "duplicate invoice");
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert!(e["message"].as_str().unwrap().starts_with("Draft is not approved (status: rejected)"));
}
