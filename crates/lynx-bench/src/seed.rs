//! `lynx-bench seed`: fills the database `LYNX_DATABASE_URL` names with audit events (valid hash chains,
//! appended through the store like Lynx appends them) and drafts, spread over tenants — the data-scale
//! check's starting point. `tenant-123` is always one of the tenants, so the demo keys work.

use std::time::Instant;

use chrono::{TimeDelta, Utc};
use lynx_model::{
    Risk, RunId, TenantId,
    audit::{EventType, NewAuditEvent},
    draft::{DraftStatus, DraftType},
    records::DraftRecord,
    vocab::RunStatus,
};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, default_value_t = 100_000)]
    drafts: usize,
    #[arg(long, default_value_t = 20)]
    tenants: usize,
}

pub fn tenants(n: usize) -> Vec<TenantId> {
    let mut out = vec![TenantId::parse("tenant-123").expect("id"), TenantId::parse("tenant-456").expect("id")];
    out.extend((out.len()..n).map(|i| TenantId::parse(format!("tenant-s{i:02}")).expect("id")));
    out.truncate(n.max(1));
    out
}

pub async fn seed(args: Args) -> Result<(), String> {
    let url = std::env::var("LYNX_DATABASE_URL").map_err(|_| "set LYNX_DATABASE_URL to the database to seed".to_string())?;
    let url = lynx_store::DatabaseUrl::parse(&url)?;
    let store = lynx_store::connect(&url, lynx_store::Pool::on_demand(8), None).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let tenants = tenants(args.tenants);
    let started = Instant::now();
    let now = Utc::now();
    let tools = ["tenant.domain.profile.read", "vpm.domain.vendor.read", "audit.domain.run.read", "vpm.cluster.payment.draft.create"];

    // Two rows per run, as Lynx writes them: STARTED, then SUCCEEDED (one in twenty DENIED). Tenants
    // take turns, run by run, as they do in real use: a tenant's rows lie spread through the table, the
    // hard case for any read that would walk them.
    let runs_per_tenant = args.events / tenants.len() / 2;
    let batch = 5000;
    let mut written = 0;
    let mut events = Vec::with_capacity(batch + 2 * tenants.len());
    for i in 0..runs_per_tenant {
        let at = now - TimeDelta::seconds((runs_per_tenant - i) as i64);
        let tool = tools[i % tools.len()];
        for tenant in &tenants {
            let run = RunId::new();
            for (k, status) in [RunStatus::Started, if i % 20 == 0 { RunStatus::Denied } else { RunStatus::Succeeded }].into_iter().enumerate() {
                events.push(NewAuditEvent {
                    event_id: lynx_model::ids::record_id(),
                    run_id: run,
                    tenant_id: tenant.clone(),
                    tool_id: tool.into(),
                    event_type: if status == RunStatus::Denied { EventType::Refusal } else { EventType::ToolCall },
                    status,
                    actor_id: format!("user-{:03}", i % 50),
                    input_data: (k == 0).then(|| json!({"seeded": true, "n": i}).to_string()),
                    output_data: (k == 1).then(|| json!({"tenant_id": tenant, "ok": status == RunStatus::Succeeded}).to_string()),
                    error_message: (status == RunStatus::Denied).then(|| "PERMISSION_DENIED: seeded refusal".to_string()),
                    created_at: at + TimeDelta::milliseconds(k as i64 * 3),
                    duration_ms: (k == 1).then_some(3),
                    instance_id: Some("seed".into()),
                });
            }
        }
        if events.len() >= batch || i + 1 == runs_per_tenant {
            written += events.len();
            store.append_audit(std::mem::take(&mut events)).await.map_err(|e| e.to_string())?;
            if written % 100_000 < batch {
                eprintln!("seed: {written} events, {:.0} s", started.elapsed().as_secs_f64());
            }
        }
    }

    let per_tenant = args.drafts / tenants.len();
    let statuses = [DraftStatus::Draft, DraftStatus::Submitted, DraftStatus::Approved, DraftStatus::Executed, DraftStatus::Rejected];
    for tenant in &tenants {
        let mut drafts = Vec::with_capacity(per_tenant);
        for i in 0..per_tenant {
            let at = now - TimeDelta::seconds((per_tenant - i) as i64 * 7);
            let status = statuses[i % statuses.len()];
            let submitted = status != DraftStatus::Draft;
            let approved = matches!(status, DraftStatus::Approved | DraftStatus::Executed);
            drafts.push(DraftRecord {
                draft_id: lynx_model::DraftId::new(),
                tenant_id: tenant.clone(),
                draft_type: DraftType::VpmPayment,
                payload: lynx_model::payload::DraftPayload::Payment(lynx_model::payload::PaymentPayload {
                    vendor_id: "V-001".into(),
                    amount: lynx_model::money::Amount::parse(&format!("{}.00", 10 + i % 900)).expect("a positive amount"),
                    currency: lynx_model::money::Currency::default(),
                    due_date: lynx_model::params::IsoDate::parse("2026-12-31").expect("a date"),
                    invoice_refs: Vec::new(),
                }),
                status,
                risk_level: if i % 9 == 0 { Risk::High } else { Risk::Medium },
                created_by: "agent-001".into(),
                created_at: at,
                updated_at: at,
                source_context: json!({"seeded": true}),
                recommended_approvers: vec!["approver".into()],
                preview_markdown: format!("### Payment draft {i}"),
                request_id: None,
                request_fingerprint: None,
                response_payload: None,
                submitted_at: submitted.then_some(at + TimeDelta::minutes(5)),
                submitted_by: submitted.then(|| "agent-001".into()),
                decision_due_at: None,
                approved_at: approved.then_some(at + TimeDelta::hours(2)),
                approved_by: approved.then(|| "approver-001".into()),
                rejected_at: None,
                rejected_by: None,
                rejection_reason: None,
                cancelled_at: None,
                cancelled_by: None,
            });
        }
        for chunk in drafts.chunks(5000) {
            store.import_drafts(chunk).await.map_err(|e| e.to_string())?;
        }
    }
    eprintln!("seed: done — {written} audit events and {} drafts over {} tenants in {:.0} s", per_tenant * tenants.len(), tenants.len(), started.elapsed().as_secs_f64());
    Ok(())
}
