//! The approval loop, as an agent and its approvers live it: the agent follows its draft through
//! MCP alone (the status tool, the draft resource and its subscription), approvers are told by
//! webhooks that a test receiver verifies with the official Standard Webhooks library, deliveries
//! survive a receiver that is down and a Lynx that is killed, several instances deliver each event
//! once, and nothing waits forever.

use std::time::Duration;

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, ClientConfig, ProtocolVersion, ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam,
        ServerNotification, SubscribeRequestParams, SubscriptionFilter,
    },
    service::{ClientLifecycleMode, ClientServiceExt, NotificationContext},
    transport::TokioChildProcess,
};
use serde_json::{Value, json};

use crate::{
    helpers::*,
    receiver::{Receiver, event_types, events_of},
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Lynx told to send every tenant's events to `receiver`, signed with `SECRET`, promptly.
fn notified(sandbox: &mut Sandbox, receiver: &Receiver) {
    sandbox.env.insert("LYNX_WEBHOOK_URL".into(), receiver.url("/all"));
    sandbox.env.insert("LYNX_WEBHOOK_SECRET".into(), SECRET.into());
    sandbox.env.insert("LYNX_WEBHOOK_POLL_MS".into(), "50".into());
    sandbox.env.insert("LYNX_WEBHOOK_RETRY_BASE_MS".into(), "100".into());
}

async fn status_of(client: &Client, id: &str) -> Value {
    let v = call_ok(client, "workflow.domain.status.read", json!({"draft_id": id, "include_events": false})).await;
    assert_eq!(v["drafts"].as_array().map(Vec::len), Some(1), "{v}");
    v["drafts"][0].clone()
}

pub async fn an_agent_follows_a_two_approval_payment_to_execution_through_mcp(engine: Engine) {
    let receiver = Receiver::start().await;
    let mut sandbox = Sandbox::new(engine);
    notified(&mut sandbox, &receiver);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (a1, _) = sandbox.create_key("tenant-123", "approver-001");
    let (a2, _) = sandbox.create_key("tenant-123", "approver-002");
    let (other_key, _) = sandbox.create_key("tenant-456", "agent-456");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;

    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "2500.00")).await;
    let id = draft["draft_id"].as_str().unwrap().to_string();
    assert!(draft["next_actions"].to_string().contains("workflow.domain.status.read"), "the cluster answer says how to wait: {draft}");
    let submitted = call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    assert_eq!(submitted["approvals_required"], 2);
    assert!(submitted["decision_due_at"].is_string(), "{submitted}");
    assert!(submitted["next_actions"].to_string().contains("workflow.domain.status.read"), "{submitted}");

    let s = status_of(&agent, &id).await;
    assert_eq!((s["status"].as_str(), s["approvals_recorded"].as_u64(), s["approvals_required"].as_u64()), (Some("SUBMITTED"), Some(0), Some(2)), "{s}");
    assert_eq!((s["can_execute"].as_bool(), s["risk_level"].as_str(), s["draft_type"].as_str()), (Some(false), Some("high"), Some("vpm_payment")));
    assert_eq!(s["expires_at"], submitted["decision_due_at"], "a submitted draft expires at its decision deadline");
    let next = s["next_actions"].to_string();
    assert!(next.contains("2 more approval(s) (0 of 2)") && next.contains("--user") && next.contains("Look again"), "{next}");

    server.approve(&a1, &id).await;
    let s = status_of(&agent, &id).await;
    assert_eq!((s["status"].as_str(), s["approvals_recorded"].as_u64(), s["can_execute"].as_bool()), (Some("SUBMITTED"), Some(1), Some(false)), "{s}");
    assert_eq!(s["decisions"][0]["approver_id"], "approver-001");
    assert_eq!((s["decisions"][0]["decision"].as_str(), s["decisions"][0]["notes"].as_str()), (Some("APPROVED"), Some("looks right")));
    // A premature execute says what is missing.
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert!(e["message"].as_str().unwrap().contains("1 of 2 approvals"), "{e}");

    server.approve(&a2, &id).await;
    let s = status_of(&agent, &id).await;
    assert_eq!((s["status"].as_str(), s["approvals_recorded"].as_u64(), s["can_execute"].as_bool()), (Some("APPROVED"), Some(2), Some(true)), "{s}");
    assert_eq!(s["execute_tool"], "vpm.cell.payment.execute");
    assert!(s["expires_at"].is_string(), "an approval is good until a time: {s}");

    let paid = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(paid["status"], "pending_settlement");
    let s = status_of(&agent, &id).await;
    assert_eq!((s["status"].as_str(), s["can_execute"].as_bool()), (Some("EXECUTED"), Some(false)));
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_executions WHERE draft_id = '{id}' AND tool_id = 'vpm.cell.payment.execute' AND status = 'SUCCEEDED'")).await, 1);

    // Another tenant polling the id learns nothing: the answer of an id that does not exist.
    let other = server.mcp(&other_key).await;
    let foreign = call_err(&other, "workflow.domain.status.read", json!({"draft_id": id})).await;
    let unknown_id = uuid::Uuid::new_v4().to_string();
    let unknown = call_err(&other, "workflow.domain.status.read", json!({"draft_id": unknown_id})).await;
    assert_eq!(foreign["code"], "DRAFT_NOT_FOUND");
    assert_eq!(foreign["message"].as_str().unwrap().replace(&id, "ID"), unknown["message"].as_str().unwrap().replace(&unknown_id, "ID"));
    let many = call_ok(&other, "workflow.domain.status.read", json!({"draft_ids": [id, unknown_id]})).await;
    assert_eq!((many["drafts"].as_array().unwrap().len(), many["not_found"].as_array().unwrap().len()), (0, 2), "{many}");

    // The approvers' side: every step arrived at the receiver, signed by the standard.
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| event_types(&events_of(got, &id)).iter().any(|t| t == "execution.succeeded"))
        .await;
    let mine = events_of(&got, &id);
    assert_eq!(event_types(&mine), ["draft.submitted", "draft.approved", "draft.approved", "execution.succeeded"], "in order");
    for r in &mine {
        r.verify(SECRET);
        assert_eq!(r.path, "/all");
        assert!(r.webhook_id().starts_with("msg_"));
    }
    let (first, second) = (mine[1].json(), mine[2].json());
    assert_eq!((first["data"]["approvals_recorded"].as_u64(), first["data"]["approvals_required"].as_u64(), first["data"]["status"].as_str()), (Some(1), Some(2), Some("SUBMITTED")));
    assert_eq!((second["data"]["approvals_recorded"].as_u64(), second["data"]["status"].as_str()), (Some(2), Some("APPROVED")));
    assert_eq!(first["data"]["decided_by"], "approver-001");
    let submitted_event = mine[0].json();
    assert_eq!((submitted_event["data"]["amount"].as_str(), submitted_event["data"]["vendor_id"].as_str()), (Some("2500.00"), Some("V-001")));
    assert_eq!(submitted_event["data"]["dashboard_path"], format!("/drafts/{id}"));
    // And the delivery log says so.
    let log: Value = serde_json::from_str(&sandbox.cli_ok(&["webhooks", "deliveries", "--status", "delivered", "--json"])).unwrap();
    assert!(log.as_array().unwrap().iter().filter(|d| d["webhook_id"] == "wh_env").count() >= 4, "{log}");
    agent.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

/// A client of a chosen protocol revision that records `notifications/resources/updated`.
#[derive(Clone)]
struct Watcher {
    version: ProtocolVersion,
    updates: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.protocol_version = self.version.clone();
        config
    }

    async fn on_resource_updated(&self, params: ResourceUpdatedNotificationParam, _context: NotificationContext<RoleClient>) {
        self.updates.lock().unwrap().push(params.uri);
    }
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// On each protocol revision's own mechanism — `resources/subscribe` on 2025-11-25,
/// `subscriptions/listen` on 2026-07-28 — a stdio client reads its draft as a resource and is told
/// when it moves.
pub async fn a_stdio_client_reads_and_subscribes_to_its_draft(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver, _) = sandbox.create_key("tenant-123", "approver-001");
    let server = sandbox.serve();
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let watcher = Watcher { version: version.clone(), updates: Default::default() };
        let mut cmd = tokio::process::Command::new(LYNX);
        cmd.env_clear().envs(&sandbox.env).env("LYNX_API_KEY", &agent_key).arg("mcp").current_dir(sandbox.dir.path());
        let (transport, _) = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::null()).spawn().unwrap();
        // 2025-11-25 starts with `initialize`, 2026-07-28 with `server/discover`.
        let client = if version == ProtocolVersion::V_2025_11_25 {
            watcher.clone().serve(transport).await.expect("stdio session")
        } else {
            let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![version.clone()] };
            watcher.clone().serve_with_lifecycle(transport, lifecycle).await.expect("stdio session")
        };
        let info = client.peer_info().unwrap();
        assert_eq!(info.protocol_version, version);
        assert_eq!(info.capabilities.resources.as_ref().and_then(|r| r.subscribe), Some(true), "{version}: stdio offers subscriptions");
        let templates = client.list_all_resource_templates().await.unwrap();
        assert_eq!(templates.iter().map(|t| t.uri_template.as_str()).collect::<Vec<_>>(), ["lynx://drafts/{draft_id}"]);

        let draft = client.call_tool(CallToolRequestParams::new("vpm.cluster.payment.draft.create").with_arguments(args(payment_args("V-001", "120.00")))).await.unwrap();
        let id = draft.structured_content.unwrap()["draft_id"].as_str().unwrap().to_string();
        let uri = format!("lynx://drafts/{id}");
        let read = client.read_resource(ReadResourceRequestParams::new(uri.clone())).await.unwrap();
        let ResourceContents::TextResourceContents { text, mime_type, .. } = &read.contents[0] else { panic!("text contents") };
        assert_eq!(mime_type.as_deref(), Some("application/json"));
        let state: Value = serde_json::from_str(text).unwrap();
        assert_eq!((state["draft_id"].as_str(), state["status"].as_str()), (Some(id.as_str()), Some("DRAFT")));
        // Reading a resource is a status tool call: gated and audited like one.
        let reads = format!("SELECT COUNT(*) FROM lynx_audit_events WHERE tool_id = 'workflow.domain.status.read' AND CAST(input_data AS TEXT) LIKE '%{id}%'");
        assert!(count(&sandbox, &reads).await >= 1);

        let submit = || client.call_tool(CallToolRequestParams::new("docs.cell.draft.submit_for_approval").with_arguments(args(json!({"draft_id": id}))));
        if version == ProtocolVersion::V_2025_11_25 {
            #[allow(deprecated)]
            client.subscribe(SubscribeRequestParams::new(uri.clone())).await.unwrap();
            assert_ne!(submit().await.unwrap().is_error, Some(true));
            wait_for(|| watcher.updates.lock().unwrap().len() == 1, "the submit to be told").await;
            server.approve(&approver, &id).await;
            wait_for(|| watcher.updates.lock().unwrap().len() == 2, "the approval to be told").await;
            assert!(watcher.updates.lock().unwrap().iter().all(|u| *u == uri));
        } else {
            let mut subscription = client.listen(SubscriptionFilter::builder().resource_subscription(uri.clone()).build()).await.unwrap();
            assert_eq!(subscription.acknowledged().resource_subscriptions.as_deref(), Some(&[uri.clone()][..]));
            assert_ne!(submit().await.unwrap().is_error, Some(true));
            let told = |n: Option<ServerNotification>| match n {
                Some(ServerNotification::ResourceUpdatedNotification(u)) => u.params.uri,
                other => panic!("expected resources/updated, got {other:?}"),
            };
            let next = tokio::time::timeout(Duration::from_secs(15), subscription.next()).await.expect("told of the submit").unwrap();
            assert_eq!(told(next), uri);
            server.approve(&approver, &id).await;
            let next = tokio::time::timeout(Duration::from_secs(15), subscription.next()).await.expect("told of the approval").unwrap();
            assert_eq!(told(next), uri);
        }

        // Unknown, foreign or malformed URIs are errors, not empty answers.
        let missing = client.read_resource(ReadResourceRequestParams::new(format!("lynx://drafts/{}", uuid::Uuid::new_v4()))).await.unwrap_err();
        assert!(missing.to_string().contains("Draft not found"), "{missing}");
        let bad = client.read_resource(ReadResourceRequestParams::new("file:///etc/passwd")).await.unwrap_err();
        assert!(bad.to_string().contains("is not a Lynx resource"), "{bad}");
        client.cancel().await.unwrap();
    }
}

async fn wait_for(done: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn deliveries_wait_out_a_dead_receiver_and_a_killed_lynx(engine: Engine) {
    let port = free_port();
    let mut sandbox = Sandbox::new(engine);
    sandbox.env.insert("LYNX_WEBHOOK_URL".into(), format!("http://127.0.0.1:{port}/hook"));
    sandbox.env.insert("LYNX_WEBHOOK_SECRET".into(), SECRET.into());
    sandbox.env.insert("LYNX_WEBHOOK_POLL_MS".into(), "50".into());
    sandbox.env.insert("LYNX_WEBHOOK_RETRY_BASE_MS".into(), "100".into());
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let mut server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "75.00")).await;
    let id = draft["draft_id"].as_str().unwrap().to_string();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;

    // Nobody listens: the delivery fails, is retried, and says why.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let failing = loop {
        let log: Value = serde_json::from_str(&sandbox.cli_ok(&["webhooks", "deliveries", "--status", "pending", "--json"])).unwrap();
        if let Some(d) = log.as_array().unwrap().iter().find(|d| d["attempts"].as_i64().unwrap_or(0) >= 2) {
            break d.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no retries recorded: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failing["last_error"].as_str().unwrap().contains("cannot reach the receiver"), "{failing}");
    let (_, metrics) = {
        let text = server.http().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
        ((), text)
    };
    assert!(metrics.contains("lynx_webhook_deliveries{state=\"failing\"} 1"), "{metrics}");

    // Lynx is killed before the event was ever delivered; an approval happens while it is down.
    agent.cancel().await.unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let out = sandbox.cli_ok(&["drafts", "approve", &id, "--user", "approver-001"]);
    assert!(out.contains("APPROVED"), "{out}");

    // The receiver comes back, then Lynx: both events arrive, the first with the webhook-id it had.
    let receiver = Receiver::start_on(port).await;
    let _server = sandbox.serve();
    let got = receiver.wait_until(Duration::from_secs(20), |got| events_of(got, &id).len() >= 2).await;
    let mine = events_of(&got, &id);
    // No order is promised across retries (the submitted event was waiting out its backoff); each
    // event says when it happened.
    let mut types = event_types(&mine);
    types.sort();
    assert_eq!(types, ["draft.approved", "draft.submitted"]);
    let submitted = mine.iter().find(|r| r.json()["type"] == "draft.submitted").unwrap();
    assert_eq!(submitted.webhook_id(), failing["event_id"].as_str().unwrap(), "the same webhook-id on every attempt");
    for r in &mine {
        r.verify(SECRET);
    }
}

/// The `draft.submitted` deliveries a path received.
fn submitted<'a>(got: &'a [crate::receiver::Received], path: &'a str) -> impl Iterator<Item = &'a crate::receiver::Received> {
    got.iter().filter(move |r| r.path == path && r.json()["type"] == "draft.submitted")
}

/// Three instances on one PostgreSQL database: every event reaches every subscription exactly once.
async fn three_instances_deliver_each_event_once_per_subscription(engine: Engine) {
    let receiver = Receiver::start().await;
    let mut sandbox = Sandbox::new(engine);
    notified(&mut sandbox, &receiver);
    sandbox.env.insert("LYNX_WEBHOOK_POLL_MS".into(), "10".into());
    // One key file for all instances, so a tenant's subscription is signed alike by each.
    let key_file = sandbox.dir.path().join("webhook.key");
    sandbox.cli_ok(&["webhooks", "keygen", "--out", key_file.to_str().unwrap()]);
    sandbox.env.insert("LYNX_WEBHOOK_KEY_FILE".into(), key_file.display().to_string());
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (admin_key, _) = sandbox.create_key("tenant-123", "admin-001");
    let servers: Vec<Server> = (0..3).map(|i| sandbox.serve_with(&[("LYNX_INSTANCE_ID", &format!("instance-{i}"))])).collect();

    // The tenant's own subscription, through the API; its secret is shown once.
    let (status, created) = servers[0].post("/api/webhooks", &admin_key, json!({"url": receiver.url("/tenant"), "event_types": ["draft.submitted"]})).await;
    assert_eq!(status, 201, "{created}");
    let tenant_secret = created["secret"].as_str().unwrap().to_string();
    assert!(tenant_secret.starts_with("whsec_"));
    let (_, listed) = servers[1].get("/api/webhooks", Some(&admin_key)).await;
    assert!(!listed.to_string().contains(&tenant_secret), "never shown again");
    let (status, _) = servers[1].post("/api/webhooks", &agent_key, json!({"url": receiver.url("/x")})).await;
    assert_eq!(status, 403, "an agent cannot subscribe");

    let mut ids = Vec::new();
    for i in 0..12 {
        let agent = servers[i % 3].mcp(&agent_key).await;
        let d = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "20.00")).await;
        let id = d["draft_id"].as_str().unwrap().to_string();
        call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
        ids.push(id);
        agent.cancel().await.unwrap();
    }
    receiver
        .wait_until(Duration::from_secs(30), |got| submitted(got, "/all").count() >= 12 && submitted(got, "/tenant").count() >= 12)
        .await;
    // Let a late duplicate show itself, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    for (path, secret, expected) in [("/all", SECRET, 12), ("/tenant", tenant_secret.as_str(), 12)] {
        let mine: Vec<_> = submitted(&got, path).collect();
        let mut seen: Vec<String> = mine.iter().map(|r| r.webhook_id()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!((mine.len(), seen.len()), (expected, expected), "{path}: each event exactly once");
        for r in mine {
            r.verify(secret);
        }
    }
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_webhook_deliveries WHERE status = 'delivered'").await, 24);
    drop(servers);
}

/// Check 9: however a draft became `APPROVED`, it executes only with as many approvals as the Kernel's
/// rule asks, and its creator's own approval is not one of them (maker-checker, re-checked at execution).
pub async fn the_creators_own_approval_never_counts(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "40.00")).await;
    let id = draft["draft_id"].as_str().unwrap().to_string();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    // Approved by its own creator, written past every surface (which refuse it) straight into the tables.
    let approve_as = |who: &str| {
        format!(
            "INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, notes, created_at) \
             SELECT draft_id, tenant_id, '{who}', 'APPROVED', NULL, updated_at FROM lynx_drafts WHERE draft_id = '{id}'"
        )
    };
    execute(&sandbox, &approve_as("agent-001")).await.unwrap();
    execute(&sandbox, &format!("UPDATE lynx_drafts SET status = 'APPROVED', approved_at = updated_at, approved_by = 'agent-001' WHERE draft_id = '{id}'")).await.unwrap();
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(e["code"], "POLICY_VIOLATION", "{e}");
    assert!(e["message"].as_str().unwrap().contains("requires 1 distinct approval(s) for this draft; it has 0"), "{e}");
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_payments WHERE draft_id = '{id}'")).await, 0);
    // One approval by someone else, and it executes.
    execute(&sandbox, &approve_as("approver-001")).await.unwrap();
    let done = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(done["draft_id"], id.as_str(), "{done}");
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_payments WHERE draft_id = '{id}'")).await, 1);
    agent.cancel().await.unwrap();
}

/// A Kernel file whose workflow drafts must be decided within `deadline_hours` and whose payment
/// approvals are good for `validity_hours`.
fn short_clock_kernel(sandbox: &mut Sandbox, deadline_hours: f64, validity_hours: f64) {
    let mut kernel = demo_kernel();
    for rule in kernel["tenants"][0]["policies"]["approval_rules"].as_array_mut().unwrap() {
        match rule["workflow_type"].as_str() {
            Some("workflow") => rule["decision_deadline_hours"] = json!(deadline_hours),
            Some("vpm_payment") => rule["approval_validity_hours"] = json!(validity_hours),
            _ => {}
        }
    }
    let path = sandbox.dir.path().join("kernel.json");
    std::fs::write(&path, kernel.to_string()).unwrap();
    sandbox.env.insert("LYNX_KERNEL_FILE".into(), path.display().to_string());
}

pub async fn nothing_waits_forever(engine: Engine) {
    let receiver = Receiver::start().await;
    let mut sandbox = Sandbox::new(engine);
    notified(&mut sandbox, &receiver);
    // 1.8 s to decide a workflow; a payment approval is good for 1.8 s.
    short_clock_kernel(&mut sandbox, 0.0005, 0.0005);
    sandbox.env.insert("LYNX_SWEEP_INTERVAL_MS".into(), "100".into());
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver, _) = sandbox.create_key("tenant-123", "approver-001");
    // Two instances sweep the same database.
    let server = sandbox.serve_with(&[("LYNX_INSTANCE_ID", "sweeper-1")]);
    let _second = sandbox.serve_with(&[("LYNX_INSTANCE_ID", "sweeper-2")]);
    let agent = server.mcp(&agent_key).await;

    let wf = call_ok(&agent, "workflow.cluster.draft.create", json!({"workflow_kind": "onboarding", "name": "Quick", "steps": [{"name": "One"}]})).await;
    let wf_id = wf["draft_id"].as_str().unwrap().to_string();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": wf_id})).await;
    let got = receiver.wait_until(Duration::from_secs(20), |got| event_types(&events_of(got, &wf_id)).iter().any(|t| t == "draft.expired")).await;
    let s = status_of(&agent, &wf_id).await;
    assert_eq!(s["status"], "REJECTED", "{s}");
    assert!(s["rejection_reason"].as_str().unwrap().starts_with("expired: no decision within"), "{s}");
    assert!(s["next_actions"].to_string().contains("Rejected by system"), "{s}");
    let out = sandbox.cli_ok(&["drafts", "show", &wf_id]);
    assert!(out.contains("rejected by system"), "{out}");
    // Once, however many instances swept.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_audit_events WHERE tool_id = 'lynx.drafts.expire' AND CAST(input_data AS TEXT) LIKE '%{wf_id}%'")).await, 1);
    let expired: Vec<_> = events_of(&receiver.received(), &wf_id).into_iter().filter(|r| r.json()["type"] == "draft.expired").map(|r| r.json()).collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    drop(got);

    // An approval older than its validity is not executed.
    let draft = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "30.00")).await;
    let id = draft["draft_id"].as_str().unwrap().to_string();
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await;
    server.approve(&approver, &id).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let s = status_of(&agent, &id).await;
    assert_eq!((s["status"].as_str(), s["can_execute"].as_bool()), (Some("APPROVED"), Some(false)), "{s}");
    assert!(s["next_actions"].to_string().contains("approval expired"), "{s}");
    let e = call_err(&agent, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
    assert_eq!(e["code"], "APPROVAL_EXPIRED", "{e}");
    assert!(e["hint"].as_str().unwrap().contains("submit a new draft"), "{e}");
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_executions WHERE draft_id = '{id}' AND tool_id = 'vpm.cell.payment.execute' AND status = 'SUCCEEDED'")).await, 0);
    agent.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_postgres_instances_deliver_each_event_once_per_subscription() {
    let Some(engine) = Engine::postgres("three_postgres_instances_deliver_each_event_once_per_subscription") else { return };
    three_instances_deliver_each_event_once_per_subscription(engine).await;
}

/// The other events — rejected, cancelled, a settlement moved, an execution failed — arrive too, and a
/// Slack subscription gets a message with the deep link.
pub async fn every_transition_is_told(engine: Engine) {
    let receiver = Receiver::start().await;
    let mut sandbox = Sandbox::new(engine);
    notified(&mut sandbox, &receiver);
    sandbox.env.insert("LYNX_PUBLIC_URL".into(), "https://lynx.example.com".into());
    sandbox.cli_ok(&["webhooks", "add", "--url", &receiver.url("/slack"), "--format", "slack", "--events", "draft.rejected"]);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver, _) = sandbox.create_key("tenant-123", "approver-001");
    sandbox.env.insert("LYNX_FAILPOINT_AFTER_CLAIM_MS".into(), "8000".into());
    let mut server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;

    let rejected = payment_draft(&agent, "11.00").await;
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": rejected})).await;
    let (status, _) = server.post(&format!("/api/drafts/{rejected}/reject"), &approver, json!({"reason": "duplicate invoice"})).await;
    assert_eq!(status, 200);
    let cancelled = payment_draft(&agent, "12.00").await;
    let (status, body) = server.post(&format!("/api/drafts/{cancelled}/cancel"), &agent_key, json!({"reason": "not needed"})).await;
    assert_eq!(status, 200, "{body}");
    // Executed while the server pauses after the claim — then killed: a stuck execution.
    let stuck = payment_draft(&agent, "13.00").await;
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": stuck})).await;
    server.approve(&approver, &stuck).await;
    let client = server.mcp(&agent_key).await;
    let args = json!({"draft_id": stuck});
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(20), try_call(&client, "vpm.cell.payment.execute", args)).await;
    });
    let started = format!("SELECT COUNT(*) FROM lynx_executions WHERE draft_id = '{stuck}' AND status = 'STARTED'");
    wait_until_count(&sandbox, &started, 1).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    agent.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sandbox.cli_ok(&["executions", "clear-stuck", "--older-than", "1s"]);
    sandbox.env.remove("LYNX_FAILPOINT_AFTER_CLAIM_MS");

    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    let paid = payment_draft(&agent, "14.00").await;
    call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": paid})).await;
    server.approve(&approver, &paid).await;
    let payment = call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": paid})).await;
    let payment_id = payment["payment_id"].as_str().unwrap().to_string();
    sandbox.cli_ok(&["settlements", "mark", &payment_id, "--tenant", "tenant-123", "--status", "processing"]);

    let has = |got: &[crate::receiver::Received], id: &str, t: &str| events_of(got, id).iter().any(|r| r.json()["type"] == t && r.path == "/all");
    let got = receiver
        .wait_until(Duration::from_secs(20), |got| {
            has(got, &rejected, "draft.rejected")
                && has(got, &cancelled, "draft.cancelled")
                && has(got, &stuck, "execution.failed")
                && got.iter().any(|r| r.json()["type"] == "settlement.updated")
                && got.iter().any(|r| r.path == "/slack")
        })
        .await;
    let one = |id: &str, t: &str| events_of(&got, id).into_iter().find(|r| r.json()["type"] == t && r.path == "/all").unwrap().json();
    assert_eq!(one(&rejected, "draft.rejected")["data"]["rejection_reason"], "duplicate invoice");
    assert_eq!(one(&cancelled, "draft.cancelled")["data"]["status"], "CANCELLED");
    assert_eq!(one(&stuck, "execution.failed")["data"]["error"], "Manual intervention: execution stuck");
    let settled = got.iter().find(|r| r.json()["type"] == "settlement.updated").unwrap().json();
    assert_eq!((settled["data"]["payment_id"].as_str(), settled["data"]["status"].as_str()), (Some(payment_id.as_str()), Some("processing")), "{settled}");
    for r in got.iter().filter(|r| r.path == "/all") {
        r.verify(SECRET);
    }
    // The Slack subscription asked for rejections only, and gets a message, not a signed event.
    let slack: Vec<_> = got.iter().filter(|r| r.path == "/slack").collect();
    assert_eq!(slack.len(), 1);
    assert!(slack[0].headers.get("webhook-signature").is_none());
    let text = slack[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("Draft rejected") && text.contains("11.00 USD to Northwind Supplies") && text.contains("duplicate invoice"), "{text}");
    assert!(text.contains(&format!("<https://lynx.example.com/drafts/{rejected}|")), "{text}");
    agent.cancel().await.unwrap();
}

async fn payment_draft(agent: &Client, amount: &str) -> String {
    call_ok(agent, "vpm.cluster.payment.draft.create", payment_args("V-001", amount)).await["draft_id"].as_str().unwrap().to_string()
}

async fn wait_until_count(sandbox: &Sandbox, sql: &str, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while count(sandbox, sql).await != n {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {sql} = {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
