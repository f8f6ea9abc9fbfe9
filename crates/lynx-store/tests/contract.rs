//! The storage contract: every rule the `Store` port promises, checked through the trait on each
//! engine — SQLite always, PostgreSQL when `LYNX_TEST_POSTGRES_URL` names a server (CI sets it).
//! The concurrency rules (one claim wins, one draft per request_id, one decision per approver, an
//! unforked audit chain) are exercised with real concurrent callers.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use lynx_model::{
    DraftId, ExecutionId, PaymentId, Risk, RunId, TenantId,
    money::Currency,
    params::IsoDate,
    payload::DraftPayload,
    vocab::{PaymentStatus, SettlementStatus},
    audit::{EventType, GENESIS_HASH, NewAuditEvent, chain_hash},
    draft::{DraftStatus, DraftType, Transition},
    records::{Claim, Completion, Decision, DecisionOutcome, DraftInsert, DraftRecord, Effect, ExecutionRecord, PaymentDetails, SettlementChange},
    store::{DeliveryFilter, Store},
    vocab::RunStatus,
    webhook::{Attempt, DeliveryCounts, DeliveryStatus, ENV_WEBHOOK_ID, WebhookEventType, WebhookFormat, WebhookRecord},
};
use serde_json::json;
use uuid::Uuid;

struct Engine {
    name: &'static str,
    store: Arc<dyn Store>,
    /// Where it is, so that a test can open more instances on the same database.
    url: lynx_store::DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the database, dropped after the store (fields drop in order).
    _db: Option<lynx_store::scratch::ScratchDatabase>,
}

async fn engines() -> Vec<Engine> {
    let dir = tempfile::tempdir().unwrap();
    let url = lynx_store::DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("contract.db").display())).unwrap();
    let sqlite = lynx_store::connect(&url, lynx_store::Pool::on_demand(4), None).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut all = vec![Engine { name: "sqlite", store: sqlite, url, _dir: Some(dir), _db: None }];
    if let Some(admin) = lynx_store::scratch::test_server("the storage contract") {
        let db = lynx_store::scratch::ScratchDatabase::create(&admin, "lynx_contract").await.expect("LYNX_TEST_POSTGRES_URL reachable");
        let url = lynx_store::DatabaseUrl::parse(db.url()).unwrap();
        let pg = lynx_store::connect(&url, lynx_store::Pool::on_demand(16), None).await.unwrap();
        pg.migrate().await.unwrap();
        all.push(Engine { name: "postgres", store: pg, url, _dir: None, _db: Some(db) });
    }
    all
}

fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

fn event(t: &TenantId, i: usize) -> NewAuditEvent {
    NewAuditEvent {
        event_id: Uuid::new_v4(),
        run_id: RunId::new(),
        tenant_id: t.clone(),
        tool_id: "x.domain.y.read".into(),
        event_type: EventType::ToolCall,
        status: RunStatus::Started,
        actor_id: format!("user-{i}"),
        input_data: Some(json!({"i": i, "text": "ünïcödé \"quoted\""}).to_string()),
        output_data: None,
        error_message: None,
        created_at: lynx_model::clock::Clock::now(&lynx_model::clock::SystemClock),
        duration_ms: Some(i as i64),
        instance_id: Some("contract".into()),
    }
}

fn draft(t: &TenantId, status: DraftStatus, request_id: Option<&str>) -> DraftRecord {
    let now = lynx_model::clock::Clock::now(&lynx_model::clock::SystemClock);
    DraftRecord {
        draft_id: DraftId::new(),
        tenant_id: t.clone(),
        draft_type: DraftType::VpmPayment,
        payload: DraftPayload::from_json(DraftType::VpmPayment, json!({"vendor_id": "V-001", "amount": "10.00", "currency": "USD", "due_date": "2026-12-31"})).unwrap(),
        status,
        risk_level: Risk::Medium,
        created_by: "agent-001".into(),
        created_at: now,
        updated_at: now,
        source_context: json!({}),
        recommended_approvers: vec!["approver".into()],
        preview_markdown: "p".into(),
        request_id: request_id.map(str::to_string),
        request_fingerprint: Some("fp".into()),
        response_payload: Some(json!({"draft_id": "original"})),
        submitted_at: None,
        submitted_by: None,
        decision_due_at: None,
        approved_at: None,
        approved_by: None,
        rejected_at: None,
        rejected_by: None,
        rejection_reason: None,
        cancelled_at: None,
        cancelled_by: None,
    }
}

fn claim(d: &DraftRecord, request_id: Option<&str>) -> ExecutionRecord {
    ExecutionRecord {
        execution_id: ExecutionId::new(),
        draft_id: d.draft_id,
        tool_id: "vpm.cell.payment.execute".into(),
        tenant_id: d.tenant_id.clone(),
        actor_id: "agent-001".into(),
        status: RunStatus::Started,
        result_payload: None,
        created_at: lynx_model::clock::Clock::now(&lynx_model::clock::SystemClock),
        completed_at: None,
        error_message: None,
        rollback_instructions: None,
        rolled_back_at: None,
        rolled_back_by: None,
        request_id: request_id.map(str::to_string),
        request_fingerprint: Some("fp".into()),
        explicit_approval: false,
        source_context: json!({}),
    }
}

fn pay() -> Effect {
    Effect::Pay(PaymentDetails {
        payment_id: PaymentId::new(),
        vendor_id: "V-001".into(),
        amount: "10.00".parse().unwrap(),
        currency: Currency::parse("USD").unwrap(),
        due_date: IsoDate::parse("2026-12-31").unwrap(),
    })
}

/// The tenant's chain holds `expected` rows, each event once, numbered 1, 2, 3…, each linked to the one
/// before and hashing back from its stored text.
async fn assert_one_chain(e: &Engine, t: &TenantId, expected: usize) {
    let rows = e.store.audit_chain_page(t, 0, 1000).await.unwrap();
    assert_eq!(rows.len(), expected, "{}: every append landed once", e.name);
    let mut prev = GENESIS_HASH.to_string();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1, "{}: contiguous sequence", e.name);
        assert_eq!(row.prev_hash, prev, "{}: linked", e.name);
        assert_eq!(chain_hash(&row.event, row.seq, &row.prev_hash), row.hash, "{}: stored text hashes back", e.name);
        prev = row.hash.clone();
    }
    let ids: std::collections::HashSet<_> = rows.iter().map(|r| r.event.event_id).collect();
    assert_eq!(ids.len(), rows.len(), "{}: no event appended twice", e.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_form_one_unbroken_chain_per_tenant() {
    for e in engines().await {
        let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (store, a, b) = (e.store.clone(), a.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..15 {
                    let batch = if i % 3 == 0 { vec![event(&a, w * 100 + i), event(&b, w * 100 + i)] } else { vec![event(&a, w * 100 + i)] };
                    store.append_audit(batch).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for (t, expected) in [(&a, 120), (&b, 40)] {
            assert_one_chain(&e, t, expected).await;
        }
        assert_eq!(e.store.audit_tenants().await.unwrap(), vec![a.clone(), b.clone()]);
    }
}

/// Several instances on one database append to the same tenants at once: every row lands once, and
/// each tenant's chain stays one unbroken line (on PostgreSQL each instance links after the heads it
/// last saw and the unique (tenant_id, seq) index turns a lost race into a re-read and a retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_instances_appending_at_once_keep_one_chain_per_tenant() {
    for e in engines().await {
        let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
        // The first instance starts a chain the others have never seen.
        e.store.append_audit(vec![event(&a, 0)]).await.unwrap();
        let mut instances = vec![e.store.clone()];
        for _ in 0..2 {
            instances.push(lynx_store::connect(&e.url, lynx_store::Pool::on_demand(8), None).await.unwrap());
        }
        let mut tasks = Vec::new();
        for (n, store) in instances.iter().enumerate() {
            for w in 0..4 {
                let (store, a, b) = (store.clone(), a.clone(), b.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..20 {
                        let k = 1 + n * 1000 + w * 100 + i;
                        let batch = match i % 4 {
                            0 => vec![event(&a, k), event(&b, k), event(&a, k + 50)],
                            1 => vec![event(&b, k)],
                            _ => vec![event(&a, k)],
                        };
                        store.append_audit(batch).await.unwrap();
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 12 writers × 20 batches: a gets 2 rows in every fourth batch and 1 in each of the two others.
        for (t, expected) in [(&a, 1 + 12 * (5 * 2 + 10)), (&b, 12 * 10)] {
            assert_one_chain(&e, t, expected).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_concurrent_claim_wins_and_effects_commit_with_success() {
    for e in engines().await {
        let t = tenant("tenant-a");
        let d = draft(&t, DraftStatus::Approved, None);
        e.store.insert_draft(d.clone(), None).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, c) = (e.store.clone(), claim(&d, None));
            tasks.push(tokio::spawn(async move { (store.claim_execution(&c).await.unwrap(), c) }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (Claim::Claimed, c) => winners.push(c),
                (Claim::Taken(live), _) => assert_eq!(live.status, RunStatus::Started),
                (other, _) => panic!("{}: unexpected {other:?}", e.name),
            }
        }
        assert_eq!(winners.len(), 1, "{}: one claim wins", e.name);
        let won = &winners[0];
        let now = Utc::now();
        let done = e.store.complete_execution(won, &pay(), &json!({"ok": true}), &json!({"action": "reverse_payment"}), None, now).await.unwrap();
        assert!(matches!(done, Completion::Succeeded(_)), "{}", e.name);
        assert_eq!(e.store.draft(Some(&t), d.draft_id).await.unwrap().unwrap().status, DraftStatus::Executed);
        assert_eq!(e.store.payments_in_status(&t, PaymentStatus::PendingSettlement, None).await.unwrap().len(), 1);
        assert_eq!(e.store.settlements(Some(&t), Some(SettlementStatus::Queued), 10).await.unwrap().len(), 1);
        // After success, a new claim is taken by the success.
        match e.store.claim_execution(&claim(&d, None)).await.unwrap() {
            Claim::Taken(live) => assert_eq!(live.status, RunStatus::Succeeded),
            other => panic!("{}: {other:?}", e.name),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cleared_claim_commits_nothing_and_a_moved_draft_commits_nothing() {
    for e in engines().await {
        let t = tenant("tenant-a");
        let d = draft(&t, DraftStatus::Approved, None);
        e.store.insert_draft(d.clone(), None).await.unwrap();
        let c = claim(&d, Some("req-1"));
        assert_eq!(e.store.claim_execution(&c).await.unwrap(), Claim::Claimed);
        let seen = e.store.claim_execution(&claim(&d, Some("req-1"))).await.unwrap();
        assert!(matches!(seen, Claim::RequestSeen(ref s) if s.execution_id == c.execution_id), "{}: request_id replay", e.name);
        // The execution checks' first read counts the tool's claims that count, and no other tool's.
        let read = e.store.draft_for_tool(&t, d.draft_id, &c.tool_id).await.unwrap().unwrap();
        assert_eq!((read.draft.draft_id, read.claims), (d.draft_id, 1), "{}: the claim counts", e.name);
        assert_eq!(e.store.draft_for_tool(&t, d.draft_id, "workflow.cell.draft.publish").await.unwrap().unwrap().claims, 0, "{}", e.name);
        assert_eq!(e.store.draft_for_tool(&tenant("tenant-b"), d.draft_id, &c.tool_id).await.unwrap(), None, "{}: other tenants see nothing", e.name);
        let cleared = e.store.clear_stuck(Utc::now() + TimeDelta::seconds(1), Utc::now()).await.unwrap();
        assert_eq!(cleared.len(), 1);
        assert_eq!(e.store.draft_for_tool(&t, d.draft_id, &c.tool_id).await.unwrap().unwrap().claims, 0, "{}: a FAILED claim does not count", e.name);
        assert_eq!(cleared[0].error_message.as_deref(), Some("Manual intervention: execution stuck"));
        let done = e.store.complete_execution(&c, &pay(), &json!({}), &json!({}), None, Utc::now()).await.unwrap();
        assert_eq!(done, Completion::ClaimLost(RunStatus::Failed), "{}", e.name);
        assert!(e.store.payments_in_status(&t, PaymentStatus::PendingSettlement, None).await.unwrap().is_empty(), "{}: no effect", e.name);
        assert_eq!(e.store.draft(Some(&t), d.draft_id).await.unwrap().unwrap().status, DraftStatus::Approved);

        // A draft that is not APPROVED when the effect commits: nothing is applied.
        let d2 = draft(&t, DraftStatus::Submitted, None);
        e.store.insert_draft(d2.clone(), None).await.unwrap();
        let c2 = claim(&d2, None);
        assert_eq!(e.store.claim_execution(&c2).await.unwrap(), Claim::Claimed);
        // The whole day's limit, counted against a draft that then turns out to have moved.
        let cap = lynx_model::records::SpendCap {
            subject: lynx_model::records::SpendSubject::Agent(lynx_model::UserId::parse("agent-001").unwrap()),
            currency: lynx_model::money::Currency::parse("USD").unwrap(),
            day: Utc::now().date_naive(),
            amount: rust_decimal::Decimal::new(1000, 2),
            cap: rust_decimal::Decimal::new(1000, 2),
        };
        let done = e.store.complete_execution(&c2, &pay(), &json!({}), &json!({}), Some(&cap), Utc::now()).await.unwrap();
        assert_eq!(done, Completion::DraftMoved(DraftStatus::Submitted), "{}", e.name);
        assert!(e.store.payments_in_status(&t, PaymentStatus::PendingSettlement, None).await.unwrap().is_empty());
        // Undone whole: the claim closed first is open again, and the limit counted nothing.
        let still = e.store.execution(Some(&t), c2.execution_id).await.unwrap().unwrap();
        assert_eq!((still.status, still.completed_at), (RunStatus::Started, None), "{}: the claim's close was undone", e.name);
        let d3 = draft(&t, DraftStatus::Approved, None);
        e.store.insert_draft(d3.clone(), None).await.unwrap();
        let c3 = claim(&d3, None);
        assert_eq!(e.store.claim_execution(&c3).await.unwrap(), Claim::Claimed);
        let done = e.store.complete_execution(&c3, &pay(), &json!({}), &json!({}), Some(&cap), Utc::now()).await.unwrap();
        assert!(matches!(done, Completion::Succeeded(_)), "{}: the undone spend left the day's limit whole: {done:?}", e.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_draft_per_request_id_and_one_decision_per_approver() {
    for e in engines().await {
        let t = tenant("tenant-a");
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, d) = (e.store.clone(), draft(&t, DraftStatus::Draft, Some("same-request")));
            tasks.push(tokio::spawn(async move { store.insert_draft(d.clone(), None).await.unwrap() }));
        }
        let mut inserted = 0;
        for task in tasks {
            match task.await.unwrap() {
                DraftInsert::Inserted => inserted += 1,
                DraftInsert::Existing(existing) => assert_eq!(existing.response_payload, Some(json!({"draft_id": "original"}))),
                DraftInsert::OverLimit(_) => panic!("no limit was given"),
            }
        }
        assert_eq!(inserted, 1, "{}: one draft per request_id", e.name);
        // The same request_id in another tenant is another draft.
        assert_eq!(e.store.insert_draft(draft(&tenant("tenant-b"), DraftStatus::Draft, Some("same-request")), None).await.unwrap(), DraftInsert::Inserted);

        let d = draft(&t, DraftStatus::Submitted, None);
        e.store.insert_draft(d.clone(), None).await.unwrap();
        assert_eq!(e.store.draft(Some(&tenant("tenant-b")), d.draft_id).await.unwrap(), None, "{}: other tenants see nothing", e.name);
        let mut tasks = Vec::new();
        for approver in ["ana", "bo", "ana", "bo"] {
            let store = e.store.clone();
            let t = t.clone();
            tasks.push(tokio::spawn(async move { store.decide(&t, d.draft_id, approver, Decision::Approved, None, 2, Utc::now()).await.unwrap() }));
        }
        let mut counted = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                DecisionOutcome::Recorded { approvals, .. } => counted.push(approvals),
                DecisionOutcome::AlreadyDecided | DecisionOutcome::WrongStatus(DraftStatus::Approved) => {}
                other => panic!("{}: {other:?}", e.name),
            }
        }
        counted.sort();
        assert_eq!(counted, vec![1, 2], "{}: one decision per approver, each counting those before it", e.name);
        let approved = e.store.draft(Some(&t), d.draft_id).await.unwrap().unwrap();
        assert_eq!(approved.status, DraftStatus::Approved);
        assert_eq!(e.store.approvals(&t, d.draft_id).await.unwrap().len(), 2);
        let read = e.store.draft_for_tool(&t, d.draft_id, "vpm.cell.payment.execute").await.unwrap().unwrap();
        assert_eq!(read.approvals, 2, "{}: the cell checks' read counts the approvals", e.name);

        // What check 9 counts: approvals, and none by the draft's own creator.
        let d2 = draft(&t, DraftStatus::Submitted, None);
        e.store.insert_draft(d2.clone(), None).await.unwrap();
        for approver in [d2.created_by.as_str(), "ana"] {
            e.store.decide(&t, d2.draft_id, approver, Decision::Approved, None, 3, Utc::now()).await.unwrap();
        }
        let read = e.store.draft_for_tool(&t, d2.draft_id, "vpm.cell.payment.execute").await.unwrap().unwrap();
        assert_eq!((read.draft.status, read.approvals), (DraftStatus::Submitted, 1), "{}: the creator's approval does not count", e.name);
        // A decision that records nothing says why.
        let decide = |tenant: TenantId, who: &'static str, decision: Decision| {
            let store = e.store.clone();
            async move { store.decide(&tenant, d2.draft_id, who, decision, Some("why"), 3, Utc::now()).await.unwrap() }
        };
        assert_eq!(decide(t.clone(), "ana", Decision::Approved).await, DecisionOutcome::AlreadyDecided, "{}", e.name);
        assert_eq!(decide(tenant("tenant-b"), "carl", Decision::Approved).await, DecisionOutcome::NotFound, "{}", e.name);
        assert!(matches!(decide(t.clone(), "bo", Decision::Rejected).await, DecisionOutcome::Recorded { .. }), "{}", e.name);
        assert_eq!(e.store.draft_for_tool(&t, d2.draft_id, "vpm.cell.payment.execute").await.unwrap().unwrap().approvals, 1, "{}: a rejection does not count", e.name);
        assert_eq!(decide(t.clone(), "dan", Decision::Approved).await, DecisionOutcome::WrongStatus(DraftStatus::Rejected), "{}", e.name);
        assert_eq!(e.store.approvals(&t, d2.draft_id).await.unwrap().len(), 3, "{}: refused decisions recorded nothing", e.name);

        // Cancel is guarded by the status it starts from.
        let out = e.store.transition_draft(&t, d.draft_id, Transition::Cancel, "ana", Utc::now()).await.unwrap();
        assert_eq!(out, lynx_model::records::TransitionOutcome::WrongStatus(DraftStatus::Approved));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_move_forward_only_and_settle_the_payment() {
    for e in engines().await {
        let t = tenant("tenant-a");
        let d = draft(&t, DraftStatus::Approved, None);
        e.store.insert_draft(d.clone(), None).await.unwrap();
        let c = claim(&d, None);
        e.store.claim_execution(&c).await.unwrap();
        let effect = pay();
        let Effect::Pay(p) = &effect else { unreachable!() };
        e.store.complete_execution(&c, &effect, &json!({}), &json!({}), None, Utc::now()).await.unwrap();
        let step = |to: SettlementStatus| {
            let (store, t, id) = (e.store.clone(), t.clone(), p.payment_id);
            async move { store.set_settlement_status(&t, id, to, "ops", Some("note"), Utc::now()).await.unwrap() }
        };
        assert_eq!(step(SettlementStatus::Completed).await, SettlementChange::WrongStatus(SettlementStatus::Queued), "{}", e.name);
        assert!(matches!(step(SettlementStatus::Processing).await, SettlementChange::Done(_)));
        match step(SettlementStatus::Completed).await {
            SettlementChange::Done(s) => {
                assert_eq!((s.status, s.provider.as_str(), s.payment_status), (SettlementStatus::Completed, "manual", PaymentStatus::Settled));
                assert_eq!(s.metadata["history"].as_array().unwrap().len(), 2, "{}: history kept", e.name);
                assert_eq!(s.amount.to_string(), "10.00");
            }
            other => panic!("{}: {other:?}", e.name),
        }
        assert_eq!(step(SettlementStatus::Failed).await, SettlementChange::WrongStatus(SettlementStatus::Completed));
    }
}

fn webhook(id: &str, t: Option<&TenantId>, types: Vec<WebhookEventType>) -> WebhookRecord {
    WebhookRecord {
        webhook_id: id.into(),
        tenant_id: t.cloned(),
        url: format!("http://127.0.0.1:9/{id}"),
        format: WebhookFormat::Standard,
        event_types: types,
        created_at: Utc::now(),
        created_by: "ops".into(),
        removed_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdue_draft_expires_once_with_its_event_in_the_outbox() {
    for e in engines().await {
        let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
        e.store.insert_webhook(&webhook("wh_a", Some(&a), vec![])).await.unwrap();
        e.store.insert_webhook(&webhook("wh_a_exec", Some(&a), vec![WebhookEventType::ExecutionSucceeded])).await.unwrap();
        e.store.insert_webhook(&webhook("wh_b", Some(&b), vec![])).await.unwrap();
        e.store.set_env_webhook(Some("http://127.0.0.1:9/env"), WebhookFormat::Slack, Utc::now()).await.unwrap();
        let now = Utc::now();
        let mut overdue = draft(&a, DraftStatus::Submitted, None);
        overdue.decision_due_at = Some(now - TimeDelta::seconds(1));
        let mut later = draft(&a, DraftStatus::Submitted, None);
        later.decision_due_at = Some(now + TimeDelta::hours(1));
        e.store.insert_draft(overdue.clone(), None).await.unwrap();
        e.store.insert_draft(later.clone(), None).await.unwrap();

        // Several instances sweep at once: the draft expires once.
        let sweeps: Vec<_> = (0..6).map(|_| { let s = e.store.clone(); tokio::spawn(async move { s.expire_drafts(now).await.unwrap() }) }).collect();
        let mut expired = Vec::new();
        for s in sweeps {
            expired.extend(s.await.unwrap());
        }
        assert_eq!(expired.len(), 1, "{}: expired once", e.name);
        let d = &expired[0];
        assert_eq!((d.draft_id, d.status, d.rejected_by.as_deref()), (overdue.draft_id, DraftStatus::Rejected, Some("system")));
        assert!(d.rejection_reason.as_deref().unwrap().starts_with("expired: no decision within"), "{}: {:?}", e.name, d.rejection_reason);
        assert_eq!(e.store.draft(Some(&a), later.draft_id).await.unwrap().unwrap().status, DraftStatus::Submitted);

        // The event went to the tenant's subscription that wants it and to the one for every tenant.
        let all = e.store.deliveries(None, &DeliveryFilter { limit: 50, ..Default::default() }).await.unwrap();
        let mut to: Vec<&str> = all.iter().map(|d| d.webhook_id.as_str()).collect();
        to.sort();
        assert_eq!(to, vec!["wh_a", ENV_WEBHOOK_ID], "{}", e.name);
        assert!(all.iter().all(|d| d.event_type == WebhookEventType::DraftExpired && d.status == DeliveryStatus::Pending && d.tenant_id == a));
        assert_eq!(all[0].event_id, all[1].event_id, "{}: one event, one delivery per subscription", e.name);
        assert!(e.store.deliveries(Some(&b), &DeliveryFilter { limit: 50, ..Default::default() }).await.unwrap().is_empty(), "{}: tenant b sees none", e.name);
        assert_eq!(e.store.delivery_counts().await.unwrap(), DeliveryCounts { queued: 2, failing: 0, dead: 0 });
    }
}

/// A decision and a completion learn whether anyone listens from their own statement: a tenant with no
/// subscription gets no event; one with its own, or one for every tenant, gets each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transitions_publish_to_the_subscriptions_that_cover_the_tenant_and_to_no_one_else() {
    for e in engines().await {
        let (quiet, loud) = (tenant("tenant-quiet"), tenant("tenant-loud"));
        let all = DeliveryFilter { limit: 50, ..Default::default() };
        let decide_and_pay = |t: TenantId| {
            let store = e.store.clone();
            async move {
                let d = draft(&t, DraftStatus::Submitted, None);
                store.insert_draft(d.clone(), None).await.unwrap();
                let decided = store.decide(&t, d.draft_id, "approver-1", Decision::Approved, None, 1, Utc::now()).await.unwrap();
                assert!(matches!(decided, DecisionOutcome::Recorded { .. }), "{decided:?}");
                let c = claim(&d, None);
                assert_eq!(store.claim_execution(&c).await.unwrap(), Claim::Claimed);
                let done = store.complete_execution(&c, &pay(), &json!({}), &json!({}), None, Utc::now()).await.unwrap();
                assert!(matches!(done, Completion::Succeeded(_)), "{done:?}");
            }
        };
        decide_and_pay(quiet.clone()).await;
        assert!(e.store.deliveries(None, &all).await.unwrap().is_empty(), "{}: no subscription, no event", e.name);

        e.store.insert_webhook(&webhook("wh_loud", Some(&loud), vec![])).await.unwrap();
        decide_and_pay(loud.clone()).await;
        decide_and_pay(quiet.clone()).await;
        let mut seen: Vec<(String, WebhookEventType)> =
            e.store.deliveries(None, &all).await.unwrap().into_iter().map(|d| (d.webhook_id, d.event_type)).collect();
        seen.sort_by_key(|(w, t)| (w.clone(), t.as_str()));
        let expected = vec![("wh_loud".to_string(), WebhookEventType::DraftApproved), ("wh_loud".to_string(), WebhookEventType::ExecutionSucceeded)];
        assert_eq!(seen, expected, "{}: the loud tenant's events only", e.name);

        // A subscription for every tenant covers the quiet one too.
        e.store.set_env_webhook(Some("http://127.0.0.1:9/env"), WebhookFormat::Slack, Utc::now()).await.unwrap();
        decide_and_pay(quiet.clone()).await;
        let to_env = e.store.deliveries(Some(&quiet), &all).await.unwrap();
        let mut types: Vec<&str> = to_env.iter().map(|d| d.event_type.as_str()).collect();
        types.sort();
        assert_eq!(types, vec!["draft.approved", "execution.succeeded"], "{}", e.name);
        assert!(to_env.iter().all(|d| d.webhook_id == ENV_WEBHOOK_ID));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_due_delivery_is_claimed_by_one_instance_and_attempts_move_it() {
    for e in engines().await {
        let a = tenant("tenant-a");
        e.store.insert_webhook(&webhook("wh_1", Some(&a), vec![])).await.unwrap();
        e.store.insert_webhook(&webhook("wh_2", None, vec![])).await.unwrap();
        let now = Utc::now();
        for _ in 0..10 {
            let mut d = draft(&a, DraftStatus::Submitted, None);
            d.decision_due_at = Some(now - TimeDelta::seconds(1));
            e.store.insert_draft(d.clone(), None).await.unwrap();
        }
        assert_eq!(e.store.expire_drafts(now).await.unwrap().len(), 10);

        // Eight instances claim at once, a few at a time: 20 deliveries, each taken once.
        let lease = now + TimeDelta::seconds(30);
        let claims: Vec<_> = (0..8).map(|_| { let s = e.store.clone(); tokio::spawn(async move { s.claim_deliveries(now, lease, 3).await.unwrap() }) }).collect();
        let mut taken = Vec::new();
        for c in claims {
            taken.extend(c.await.unwrap());
        }
        taken.extend(e.store.claim_deliveries(now, lease, 50).await.unwrap());
        let mut keys: Vec<_> = taken.iter().map(|d| (d.delivery.event_id.clone(), d.delivery.webhook_id.clone())).collect();
        keys.sort();
        keys.dedup();
        assert_eq!((taken.len(), keys.len()), (20, 20), "{}: every delivery claimed exactly once", e.name);
        assert!(e.store.claim_deliveries(now, lease, 50).await.unwrap().is_empty(), "{}: leased rows are not claimed again", e.name);
        let due = &taken[0];
        assert_eq!(due.payload["type"], "draft.expired");
        assert_eq!(due.payload["data"]["status"], "REJECTED");
        assert!(due.url.starts_with("http://127.0.0.1:9/"));

        // A lease that ran out (an instance died mid-send) is claimed again.
        let after = lease + TimeDelta::seconds(1);
        let reclaimed = e.store.claim_deliveries(after, after + TimeDelta::seconds(30), 50).await.unwrap();
        assert_eq!(reclaimed.len(), 20, "{}", e.name);

        let (ev, wh) = (due.delivery.event_id.as_str(), due.delivery.webhook_id.as_str());
        let retry = Attempt::Failed { status: Some(503), error: "the receiver answered HTTP 503".into(), retry_at: Some(after + TimeDelta::minutes(5)) };
        e.store.record_attempt(ev, wh, &retry, after).await.unwrap();
        let one = |status| DeliveryFilter { status: Some(status), webhook_id: Some(wh.to_string()), limit: 50 };
        let failing: Vec<_> = e.store.deliveries(None, &one(DeliveryStatus::Pending)).await.unwrap().into_iter().filter(|d| d.event_id == ev).collect();
        assert_eq!((failing[0].attempts, failing[0].last_status), (1, Some(503)), "{}", e.name);
        assert_eq!(e.store.delivery_counts().await.unwrap().failing, 1, "{}", e.name);
        // Not due before its retry time.
        let soon = after + TimeDelta::minutes(1);
        assert!(e.store.claim_deliveries(soon, soon + TimeDelta::seconds(30), 50).await.unwrap().iter().all(|d| (d.delivery.event_id.as_str(), d.delivery.webhook_id.as_str()) != (ev, wh)));

        let give_up = Attempt::Failed { status: None, error: "cannot reach the receiver".into(), retry_at: None };
        e.store.record_attempt(ev, wh, &give_up, after).await.unwrap();
        assert_eq!(e.store.delivery_counts().await.unwrap().dead, 1, "{}: dead-lettered", e.name);
        assert!(!e.store.redeliver(Some(&tenant("tenant-b")), ev, wh, after).await.unwrap(), "{}: not another tenant's", e.name);
        assert!(e.store.redeliver(Some(&a), ev, wh, after).await.unwrap());
        e.store.record_attempt(ev, wh, &Attempt::Delivered { status: 204 }, after).await.unwrap();
        let delivered = e.store.deliveries(None, &one(DeliveryStatus::Delivered)).await.unwrap();
        assert_eq!((delivered.len(), delivered[0].attempts, delivered[0].last_status), (1, 3, Some(204)), "{}", e.name);

        // Handed back unsent: due again later, no attempt counted.
        let other = taken.iter().find(|d| (d.delivery.event_id.as_str(), d.delivery.webhook_id.as_str()) != (ev, wh)).unwrap();
        let key = (other.delivery.event_id.clone(), other.delivery.webhook_id.clone());
        let claimed = e.store.claim_deliveries(after + TimeDelta::hours(2), after + TimeDelta::hours(3), 50).await.unwrap();
        assert!(claimed.iter().any(|d| (d.delivery.event_id.clone(), d.delivery.webhook_id.clone()) == key));
        let back_at = after + TimeDelta::hours(5);
        e.store.release_deliveries(std::slice::from_ref(&key), back_at).await.unwrap();
        let at = |t: chrono::DateTime<Utc>| e.store.claim_deliveries(t, t + TimeDelta::seconds(30), 50);
        assert!(at(after + TimeDelta::hours(4)).await.unwrap().iter().all(|d| (d.delivery.event_id.clone(), d.delivery.webhook_id.clone()) != key), "{}: not before", e.name);
        let again = at(back_at).await.unwrap();
        let again = again.iter().find(|d| (d.delivery.event_id.clone(), d.delivery.webhook_id.clone()) == key).expect("due again");
        assert_eq!(again.delivery.attempts, 0, "{}: releasing is not an attempt", e.name);

        // A removed subscription's deliveries stop; a tenant cannot remove one to every tenant.
        assert!(!e.store.remove_webhook(Some(&a), "wh_2", after).await.unwrap(), "{}", e.name);
        assert!(e.store.remove_webhook(None, "wh_2", after).await.unwrap());
        let later = after + TimeDelta::hours(6);
        let left = e.store.claim_deliveries(later, later + TimeDelta::seconds(30), 50).await.unwrap();
        assert!(!left.is_empty() && left.iter().all(|d| d.delivery.webhook_id == "wh_1"), "{}", e.name);
        assert_eq!(e.store.webhooks(None).await.unwrap().iter().map(|w| w.webhook_id.as_str()).collect::<Vec<_>>(), vec!["wh_1"]);
        let live_pending = e.store.deliveries(None, &DeliveryFilter { status: Some(DeliveryStatus::Pending), webhook_id: Some("wh_1".into()), limit: 100 }).await.unwrap().len() as i64;
        let counts = e.store.delivery_counts().await.unwrap();
        assert_eq!(counts.queued + counts.failing, live_pending, "{}: a removed subscription's deliveries are not waiting", e.name);
    }
}

/// A daily spend limit holds under concurrency on both engines: 32 drafts of 10.00 against a 95.00 cap
/// insert exactly nine; a replayed request_id counts nothing; the refusal reports the totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_limits_hold_under_concurrent_writes() {
    use lynx_model::records::{SpendCap, SpendSubject};
    use rust_decimal::Decimal;
    for e in engines().await {
        let t = tenant("tenant-spend");
        let cap = SpendCap {
            subject: SpendSubject::Agent(lynx_model::UserId::parse("agent-001").unwrap()),
            currency: lynx_model::money::Currency::parse("USD").unwrap(),
            day: Utc::now().date_naive(),
            amount: Decimal::new(1000, 2),
            cap: Decimal::new(9500, 2),
        };
        let mut tasks = Vec::new();
        for i in 0..32 {
            let (store, cap) = (e.store.clone(), cap.clone());
            let d = draft(&t, DraftStatus::Draft, Some(&format!("r-{i}")));
            tasks.push(tokio::spawn(async move { store.insert_draft(d.clone(), Some(&cap)).await.unwrap() }));
        }
        let (mut inserted, mut over) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                DraftInsert::Inserted => inserted += 1,
                DraftInsert::OverLimit(totals) => {
                    over += 1;
                    assert_eq!((totals.spent, totals.cap), (Decimal::new(9000, 2), Decimal::new(9500, 2)), "{}", e.name);
                }
                DraftInsert::Existing(_) => panic!("no request_id repeats"),
            }
        }
        assert_eq!((inserted, over), (9, 23), "{}: exactly what fits under the cap", e.name);
        // A replay of an inserted draft's request_id finds it and counts nothing.
        let replay = draft(&t, DraftStatus::Draft, Some("r-0"));
        let first = e.store.draft_by_request(&t, "r-0").await.unwrap();
        let again = e.store.insert_draft(replay.clone(), Some(&cap)).await.unwrap();
        match (first, again) {
            (Some(_), DraftInsert::Existing(_)) | (None, DraftInsert::OverLimit(_)) => {}
            other => panic!("{}: {other:?}", e.name),
        }
        let small = SpendCap { amount: Decimal::new(500, 2), ..cap.clone() };
        assert_eq!(e.store.insert_draft(draft(&t, DraftStatus::Draft, None), Some(&small)).await.unwrap(), DraftInsert::Inserted, "{}: 5.00 still fits", e.name);
        // Another user, another day: their own totals.
        let other = SpendCap { subject: SpendSubject::Agent(lynx_model::UserId::parse("agent-002").unwrap()), ..cap.clone() };
        assert_eq!(e.store.insert_draft(draft(&t, DraftStatus::Draft, None), Some(&other)).await.unwrap(), DraftInsert::Inserted);
    }
}
