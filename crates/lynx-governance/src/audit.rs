//! The audit trail: building events, recording human actions, and verifying every tenant's chain.

use lynx_model::{
    Refusal, RunId, TenantId,
    audit::{AuditEvent, EventType, GENESIS_HASH, NewAuditEvent, chain_hash},
    store::{Store, StoreError},
    vocab::RunStatus,
};
use serde::Serialize;
use serde_json::Value;

use crate::{context::store_refusal, services::Services};

/// Stored input beyond this size keeps only a preview: a refused oversized call must not bloat the trail.
const MAX_STORED_JSON: usize = 256 * 1024;

/// JSON text for an audit column: as given, unless it is enormous.
pub fn stored_json(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= MAX_STORED_JSON {
        return text;
    }
    let preview: String = text.chars().take(1024).collect();
    serde_json::json!({"_truncated": true, "bytes": text.len(), "preview": preview}).to_string()
}

#[allow(clippy::too_many_arguments)]
pub fn event(
    services: &Services,
    run_id: RunId,
    tenant: &TenantId,
    tool_id: &str,
    event_type: EventType,
    status: RunStatus,
    actor: &str,
    input: Option<&Value>,
    output: Option<&Value>,
    error: Option<String>,
    duration_ms: Option<i64>,
) -> NewAuditEvent {
    NewAuditEvent {
        event_id: uuid::Uuid::new_v4(),
        run_id,
        tenant_id: tenant.clone(),
        tool_id: tool_id.to_string(),
        event_type,
        status,
        actor_id: actor.to_string(),
        input_data: input.map(stored_json),
        output_data: output.map(stored_json),
        error_message: error,
        created_at: services.clock.now(),
        duration_ms,
        instance_id: Some(services.runtime.instance_id.clone()),
    }
}

/// Records an operator's or approver's action as one `human_action` event; returns its run id.
#[allow(clippy::too_many_arguments)]
pub async fn human_action(
    services: &Services,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    status: RunStatus,
    input: Value,
    output: Value,
    error: Option<String>,
) -> Result<RunId, Refusal> {
    let run_id = RunId::new();
    let e = event(services, run_id, tenant, action, EventType::HumanAction, status, actor, Some(&input), Some(&output), error, None);
    services.store.append_audit(&[e]).await.map_err(store_refusal)?;
    Ok(run_id)
}

/// The first row where a tenant's chain does not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenRow {
    pub seq: i64,
    pub event_id: uuid::Uuid,
    pub run_id: RunId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub tenant_id: TenantId,
    pub events: i64,
    pub ok: bool,
    pub first_broken: Option<BrokenRow>,
}

/// Walks each tenant's chain in `seq` order and stops at the first row whose sequence, link or hash is wrong.
pub async fn verify(store: &dyn Store, mut progress: impl FnMut(&TenantId, i64)) -> Result<Vec<ChainReport>, StoreError> {
    let mut reports = Vec::new();
    for tenant in store.audit_tenants().await? {
        let (mut last_seq, mut last_hash, mut count) = (0i64, GENESIS_HASH.to_string(), 0i64);
        let mut first_broken = None;
        'chain: loop {
            let page = store.audit_chain_page(&tenant, last_seq, 1000).await?;
            if page.is_empty() {
                break;
            }
            for row in page {
                count += 1;
                if let Some(reason) = check_row(&row, last_seq, &last_hash) {
                    first_broken = Some(BrokenRow { seq: row.seq, event_id: row.event.event_id, run_id: row.event.run_id, reason });
                    break 'chain;
                }
                last_seq = row.seq;
                last_hash = row.hash;
            }
            progress(&tenant, count);
        }
        reports.push(ChainReport { tenant_id: tenant, events: count, ok: first_broken.is_none(), first_broken });
    }
    Ok(reports)
}

fn check_row(row: &AuditEvent, last_seq: i64, last_hash: &str) -> Option<String> {
    if row.seq != last_seq + 1 {
        return Some(format!("sequence gap: expected seq {} but found {}", last_seq + 1, row.seq));
    }
    if row.prev_hash != last_hash {
        return Some("prev_hash does not match the previous row's hash".into());
    }
    if chain_hash(&row.event, row.seq, &row.prev_hash) != row.hash {
        return Some("content does not match its hash (the row was modified)".into());
    }
    None
}
