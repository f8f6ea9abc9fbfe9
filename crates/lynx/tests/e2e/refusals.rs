//! Each refusal of the execution protocol (SPEC §4), with its code and the runbook's phrase, and the
//! human-approval rules: maker-checker, approver roles, maintenance mode, prod's explicit approval.

use serde_json::json;

use crate::helpers::*;

pub async fn the_execution_protocol_refuses_in_order_with_the_runbooks_phrases(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let (other_agent_key, _) = sandbox.create_key("tenant-123", "agent-002");
    let (admin_key, _) = sandbox.create_key("tenant-123", "admin-001");
    let (globex_key, _) = sandbox.create_key("tenant-456", "admin-456");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;

    // Not found — and another tenant's draft looks exactly the same.
    let missing = uuid_like();
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": missing})).await;
    assert_eq!(e["code"], "DRAFT_NOT_FOUND");
    assert_eq!(e["message"], format!("Draft not found or does not belong to tenant (draft_id: {missing}, tenant_id: tenant-123)"));
    let globex = server.mcp(&globex_key).await;
    let theirs = call_ok(&globex, "workflow.cluster.draft.create", json!({"workflow_kind": "fleet", "name": "Fuel", "steps": [{"name": "a"}]})).await;
    let theirs = theirs["draft_id"].as_str().unwrap();
    let e = call_err(&agent, "workflow.cell.draft.publish", json!({"draft_id": theirs})).await;
    assert_eq!(e["code"], "DRAFT_NOT_FOUND");
    assert_eq!(e["message"], format!("Draft not found or does not belong to tenant (draft_id: {theirs}, tenant_id: tenant-123)"));
    let (status, _) = server.get(&format!("/api/drafts/{theirs}"), Some(&agent_key)).await;
    assert_eq!(status, 404);
    let (status, _) = server.post(&format!("/api/drafts/{theirs}/approve"), &approver_key, json!({})).await;
    assert_eq!(status, 404, "approving another tenant's draft is as if it did not exist");

    // Wrong draft type.
    let pay = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "75.00")).await;
    let pay_id = pay["draft_id"].as_str().unwrap().to_string();
    let e = call_err(&agent, "workflow.cell.draft.publish", json!({"draft_id": pay_id})).await;
    assert_eq!(e["code"], "WRONG_DRAFT_TYPE");

    // Not approved: status draft, then submitted.
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id})).await;
    assert_eq!(e["code"], "DRAFT_NOT_APPROVED");
    assert!(e["message"].as_str().unwrap().starts_with("Draft is not approved (status: draft): draft "), "{e}");
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": pay_id})).await;
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id})).await;
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("Draft is not approved (status: submitted): draft {pay_id} must be APPROVED before vpm.cell.payment.execute")), "{message}");
    assert!(message.contains("; it has 0 of 1 approvals, due by "), "a not-yet says what is missing: {message}");
    let e = call_err(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": pay_id})).await;
    assert_eq!(e["code"], "ALREADY_SUBMITTED", "a draft is submitted once");
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("Draft is already submitted for approval (status: submitted): draft "), "{message}");
    assert!(!message.contains("executed"), "a second submit must not read as if the payment were made: {message}");
    assert!(e["hint"].as_str().unwrap().contains("waits for an approver"), "{e}");

    // Non-approver role, then the approver.
    let (status, body) = server.post(&format!("/api/drafts/{pay_id}/approve"), &other_agent_key, json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "PERMISSION_DENIED");
    assert!(body["error"]["message"].as_str().unwrap().contains("role agent"));
    server.approve(&approver_key, &pay_id).await;

    // Maker-checker: an admin (an approver role) cannot approve a draft they created.
    let admin = server.mcp(&admin_key).await;
    let own = call_ok(&admin, "vpm.cluster.payment.draft.create", payment_args("V-001", "80.00")).await;
    let own_id = own["draft_id"].as_str().unwrap();
    call_ok(&admin, "docs.cell.draft.submit_for_approval", json!({"draft_id": own_id})).await;
    let (status, body) = server.post(&format!("/api/drafts/{own_id}/approve"), &admin_key, json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "SELF_APPROVAL");
    let out = sandbox.cli(&["drafts", "approve", own_id, "--user", "admin-001"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("SELF_APPROVAL"), "the CLI obeys the same rule");

    // Cancelled.
    let c = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "5.00")).await;
    let c_id = c["draft_id"].as_str().unwrap();
    let (status, body) = server.post(&format!("/api/drafts/{c_id}/cancel"), &agent_key, json!({"reason": "typo"})).await;
    assert_eq!(status, 200, "the creator may cancel: {body}");
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": c_id})).await;
    assert_eq!(e["code"], "DRAFT_CANCELLED");
    let e = call_err(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": c_id})).await;
    assert_eq!(e["code"], "DRAFT_CANCELLED");

    // Maintenance mode: executions refused, reads and drafts go on; then resumed.
    sandbox.cli_ok(&["maintenance", "on"]);
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id})).await;
    assert_eq!(e["code"], "MAINTENANCE_MODE");
    call_ok(&agent, "tenant.domain.profile.read", json!({})).await;
    call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "6.00")).await;
    let v = call_ok(&agent, "system.domain.health.read", json!({})).await;
    assert_eq!(v["maintenance_mode"], true);
    assert!(sandbox.cli_ok(&["maintenance", "status"]).contains("ON"));
    sandbox.cli_ok(&["maintenance", "off"]);

    // Executed; then already executed, also with a new request_id.
    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id, "request_id": "r-1"})).await;
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id, "request_id": "r-2"})).await;
    assert_eq!(e["code"], "ALREADY_EXECUTED");
    assert_eq!(
        e["message"],
        format!("Draft has already been successfully executed by vpm.cell.payment.execute (execution_id: {})", paid["execution_id"].as_str().unwrap())
    );
    // The same request_id with other input is a conflict.
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": pay_id, "request_id": "r-1", "explicit_approval": true})).await;
    assert_eq!(e["code"], "IDEMPOTENCY_CONFLICT");
    assert!(e["message"].as_str().unwrap().contains("was already used for a different request"));

    // Inactive vendors and disabled modules are refused at drafting.
    let e = call_err(&agent, "vpm.cluster.payment.draft.create", payment_args("V-003", "10.00")).await;
    assert_eq!(e["code"], "VENDOR_INACTIVE");
    let e = call_err(&globex, "vpm.cluster.payment.draft.create", payment_args("V-101", "10.00")).await;
    assert_eq!(e["code"], "MODULE_DISABLED");
    // Approvers hold no drafting role gate.
    let approver = server.mcp(&approver_key).await;
    let e = call_err(&approver, "docs.cluster.draft.create", json!({"doc_type": "ADR", "title": "x"})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED");
}

fn uuid_like() -> String {
    "7f3e4b1a-0000-4000-8000-000000000001".into()
}

pub async fn prod_requires_explicit_approval_for_high_risk_execution(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    sandbox.env.insert("LYNX_MODE".into(), "prod".into());
    // The sandbox may itself live under the system's temporary directory, which prod refuses as a
    // store; for this process tree the temporary directory is elsewhere.
    sandbox.env.insert("TMPDIR".into(), "/nonexistent-lynx-test-tmp".into());
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    // Prod keeps signed audit checkpoints outside the database, or does not start.
    let refused = sandbox.cli(&["serve"]);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && why.contains("LYNX_AUDIT_SIGNING_KEY") && why.contains("lynx audit keygen"), "{why}");
    let key = sandbox.dir.path().join("audit.key");
    sandbox.cli_ok(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    sandbox.env.insert("LYNX_AUDIT_SIGNING_KEY".into(), key.display().to_string());
    let refused = sandbox.cli(&["serve"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("LYNX_AUDIT_CHECKPOINT_DIR"), "a key alone is not enough");
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_DIR".into(), sandbox.dir.path().join("checkpoints").display().to_string());
    let server = sandbox.serve();
    assert!(!server.startup_output.iter().any(|l| l.contains("demo API keys")), "no demo keys outside dev");
    let agent = server.mcp(&agent_key).await;
    let id = approved_payment(&server, &agent, &approver_key, "300.00").await;
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(e["code"], "EXPLICIT_APPROVAL_REQUIRED");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("High-risk action requires explicit approval") && message.contains("explicit approval required"), "{message}");
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id, "explicit_approval": false})).await;
    assert_eq!(e["code"], "EXPLICIT_APPROVAL_REQUIRED");
    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id, "explicit_approval": true})).await;
    assert_eq!(paid["status"], "pending_settlement");
    let (_, shown) = server.get(&format!("/api/executions?draft_id={id}&tool_id=vpm.cell.payment.execute"), Some(&approver_key)).await;
    assert_eq!(shown["executions"][0]["explicit_approval"], true);
}

pub async fn bad_input_on_every_write_tool_is_refused_and_changes_nothing(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let pay = |k: &str, v: serde_json::Value| {
        let mut a = payment_args("V-001", "10.00");
        a[k] = v;
        a
    };
    let steps: Vec<_> = (0..201).map(|i| json!({"name": format!("step {i}")})).collect();
    let cases = vec![
        ("vpm.cluster.payment.draft.create", pay("amount", json!(-5)), "amount: must be greater than 0"),
        ("vpm.cluster.payment.draft.create", pay("amount", json!("-5.00")), "amount: must be greater than 0"),
        ("vpm.cluster.payment.draft.create", pay("amount", json!(10.123)), "amount: must have at most 2 decimal places"),
        ("vpm.cluster.payment.draft.create", pay("currency", json!("DOLLARS")), "currency: must be an ISO 4217 currency code"),
        ("vpm.cluster.payment.draft.create", pay("currency", json!("XYZ")), "currency: must be an ISO 4217 currency code"),
        ("vpm.cluster.payment.draft.create", pay("due_date", json!("31/12/2026")), "due_date: must be an ISO 8601 date"),
        ("vpm.cluster.payment.draft.create", pay("vendor_id", json!("V-999")), "vendor_id: vendor V-999 is not known"),
        ("vpm.cluster.payment.draft.create", pay("memo", json!("hi")), "memo: unknown field"),
        ("vpm.cluster.payment.draft.create", pay("invoice_refs", json!((0..101).map(|i| format!("I{i}")).collect::<Vec<_>>())), "invoice_refs: must list at most 100"),
        ("docs.cluster.draft.create", json!({"doc_type": "PRD", "title": ""}), "title: must not be empty"),
        ("docs.cluster.draft.create", json!({"doc_type": "PRD", "title": "   "}), "title: must not be empty"),
        ("docs.cluster.draft.create", json!({"doc_type": "PRD", "title": "x".repeat(501)}), "title: must be at most 500 characters"),
        ("docs.cluster.draft.create", json!({"doc_type": "prd", "title": "x"}), "doc_type: must be upper-case"),
        ("docs.cluster.draft.create", json!({"doc_type": "PRD"}), "title: is required"),
        ("workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": steps}), "steps: must list 1 to 200 steps"),
        ("workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": []}), "steps: must list 1 to 200 steps"),
        ("workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": [{"name": "a", "who": "b"}]}), "steps[0].who: unknown field"),
        ("workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": [{"name": "a", "required_role": "pilot"}]}), "steps[0].required_role: \"pilot\" is not a role"),
        ("docs.cell.draft.submit_for_approval", json!({"draft_id": "not-a-uuid"}), "draft_id: must be a draft id"),
        ("docs.cell.draft.submit_for_approval", json!({"draft_id": "7f3e4b1a-0000-4000-8000-000000000001", "force": true}), "force: unknown field"),
        ("workflow.cell.draft.publish", json!({}), "draft_id: is required"),
        ("vpm.cell.payment.execute", json!({"draft_id": "7f3e4b1a-0000-4000-8000-000000000001", "explicit_approval": "yes"}), "explicit_approval: invalid type"),
        ("vpm.cell.payment.execute", json!({"draft_id": "7f3e4b1a-0000-4000-8000-000000000001", "request_id": "has spaces"}), "request_id: must be 1-128 characters"),
    ];
    for (tool, args, expected) in cases {
        let e = call_err(&agent, tool, args).await;
        assert_eq!(e["code"], "INVALID_INPUT", "{tool}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{tool}: {message:?} should start with {expected:?}");
    }
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts").await, 0, "nothing was drafted");
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_executions").await, 0, "nothing was executed");
    let denied = count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE event_type = 'refusal' AND error_message LIKE 'INVALID_INPUT%'").await;
    assert_eq!(denied, 23, "every refusal is audited");
}
