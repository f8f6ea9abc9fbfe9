//! The audit trail: building events, recording human actions, and verifying every tenant's chain.

use lynx_model::{
    Refusal, RunId, TenantId,
    audit::{AuditEvent, EventType, GENESIS_HASH, NewAuditEvent, chain_hash},
    store::{Store, StoreError},
    vocab::RunStatus,
};
use serde::Serialize;
use serde_json::Value;

use crate::{services::Services};

/// Stored input beyond this size keeps only a preview: a refused oversized call must not bloat the trail.
const MAX_STORED_JSON: usize = 256 * 1024;

/// JSON text for an audit column: as given, unless it is enormous.
pub fn stored_json(v: &Value) -> String {
    let text = v.to_string();
    if fits(&text) { text } else { preview(&text) }
}

/// Whether JSON text is stored whole.
pub fn fits(text: &str) -> bool {
    text.len() <= MAX_STORED_JSON
}

/// What is stored instead of JSON text that does not fit: its size and its start.
pub fn preview(text: &str) -> String {
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
        event_id: lynx_model::ids::record_id(),
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
    services.audit.append(vec![e]).await?;
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

fn parse_json(text: &Option<String>) -> Value {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

/// An event as the JSON API and the JSON export show it (JSON columns as JSON, not text).
pub fn event_json(e: &AuditEvent) -> Value {
    let ev = &e.event;
    serde_json::json!({
        "event_id": ev.event_id, "run_id": ev.run_id, "tenant_id": ev.tenant_id, "tool_id": ev.tool_id,
        "event_type": ev.event_type, "status": ev.status, "actor_id": ev.actor_id,
        "input_data": parse_json(&ev.input_data), "output_data": parse_json(&ev.output_data),
        "error_message": ev.error_message, "created_at": ev.created_at, "duration_ms": ev.duration_ms,
        "instance_id": ev.instance_id, "seq": e.seq, "prev_hash": e.prev_hash, "hash": e.hash,
    })
}

/// The CSV export's header line.
pub const CSV_HEADER: &str =
    "seq,event_id,run_id,tenant_id,tool_id,event_type,status,actor_id,created_at,duration_ms,error_message,input_data,output_data,instance_id,prev_hash,hash\n";

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

/// One event as a CSV line (RFC 4180 quoting); the stored text of every column, so the export can be
/// verified against the hash chain offline.
pub fn csv_line(e: &AuditEvent) -> String {
    let ev = &e.event;
    let fields = [
        e.seq.to_string(),
        ev.event_id.to_string(),
        ev.run_id.to_string(),
        ev.tenant_id.to_string(),
        ev.tool_id.clone(),
        ev.event_type.as_str().to_string(),
        ev.status.to_string(),
        ev.actor_id.clone(),
        ev.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ev.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        ev.error_message.clone().unwrap_or_default(),
        ev.input_data.clone().unwrap_or_default(),
        ev.output_data.clone().unwrap_or_default(),
        ev.instance_id.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// Group commit for the audit trail: concurrent calls hand their rows to one writer, which appends
/// whatever has queued up in a single transaction and then tells every caller its rows are durable.
/// Under load one commit (one fsync) serves many calls; alone, a call waits for nothing but its own
/// commit. Each caller still returns only after its rows are committed. A store that group-commits
/// by itself (SQLite's writer thread) is called directly: a second queue in front of it would only add
/// a hop and a wait.
#[derive(Clone)]
pub struct AuditWriter(Route);

#[derive(Clone)]
enum Route {
    Batched(tokio::sync::mpsc::Sender<Pending>),
    Direct(std::sync::Arc<dyn Store>),
}

struct Pending {
    events: Vec<NewAuditEvent>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    /// When the call handed its rows over (for the batch log's `waited_us`).
    queued: std::time::Instant,
}

/// The most rows one transaction takes (a bound on how long one commit holds the write lock).
const MAX_BATCH_ROWS: usize = 2048;

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime (unless the store batches by itself).
    pub fn start(store: std::sync::Arc<dyn Store>) -> Self {
        if store.group_commits() {
            return Self(Route::Direct(store));
        }
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let mut rows = batch[0].events.len();
                while rows < MAX_BATCH_ROWS {
                    match rx.try_recv() {
                        Ok(p) => {
                            rows += p.events.len();
                            batch.push(p);
                        }
                        Err(_) => break,
                    }
                }
                let calls = batch.len();
                let waited = batch[0].queued.elapsed();
                let mut events = Vec::with_capacity(rows);
                let mut waiting = Vec::with_capacity(calls);
                for p in batch {
                    events.extend(p.events);
                    waiting.push(p.done);
                }
                let appending = std::time::Instant::now();
                let result = store.append_audit(events).await;
                // What an operator needs to tell a slow store (`took_us`) from a queue in front of it
                // (`waited_us`: how long the batch's oldest rows waited for the batch before).
                tracing::debug!(calls, rows, waited_us = waited.as_micros() as u64, took_us = appending.elapsed().as_micros() as u64, "audit batch");
                for done in waiting {
                    let _ = done.send(result.clone());
                }
            }
        });
        Self(Route::Batched(queue))
    }

    /// Appends rows and returns once they are committed.
    pub async fn append(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        let queue = match &self.0 {
            Route::Direct(store) => return store.append_audit(events).await,
            Route::Batched(queue) => queue,
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        queue
            .send(Pending { events, done, queued: std::time::Instant::now() })
            .await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        wait.await.map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?
    }
}
