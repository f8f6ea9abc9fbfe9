//! `lynx_audit_events`: appends at the head of each tenant's hash chain, and the read models over it
//! (events, the chain in order, runs, draft activity), and the signed checkpoints of each tenant's
//! Merkle tree over it (`lynx_audit_checkpoints`) and the verifications that passed. Rows are never
//! updated or deleted here.

use std::collections::HashMap;

use lynx_model::{
    RunId, TenantId,
    audit::{AuditEvent, CheckpointRecord, EventType, GENESIS_HASH, NewAuditEvent, VerificationRecord, chain_hash},
    store::{ActivityEvent, AuditFilter, RunFilter, RunSummary, StoreResult},
    vocab::RunStatus,
    webhook::WebhookEventType,
};

use crate::{
    db::{self, Db},
    error::corrupt,
    ops::webhooks,
    row::Row,
    sql::Query,
};

/// `input_data` and `output_data` read as their stored text (PostgreSQL keeps them as `json`, whose
/// text the chain hash covers byte for byte).
const COLUMNS: &str = "event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, CAST(input_data AS TEXT) AS input_data, \
    CAST(output_data AS TEXT) AS output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash";

/// Rows per INSERT: a few statements per batch instead of one per row.
const ROWS_PER_INSERT: usize = 16;

/// One event placed in its tenant's chain: its `seq`, the hash of the row before it and its own hash.
pub(crate) struct Linked<'a> {
    pub(crate) event: &'a NewAuditEvent,
    pub(crate) seq: i64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// Each tenant's chain head: the last row's `seq` and hash (`(0, GENESIS_HASH)` before the first).
pub(crate) type Heads = HashMap<TenantId, (i64, String)>;

/// A tenant's head as the table has it now.
async fn head(db: &mut dyn Db, tenant: &TenantId) -> StoreResult<(i64, String)> {
    let q = Query::new("SELECT seq, hash FROM lynx_audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1").bind(tenant);
    Ok(db::fetch_one_as(db, q, |mut r| Ok((r.int("seq")?, r.text("hash")?))).await?.unwrap_or((0, GENESIS_HASH.to_string())))
}

/// Places events after the heads (which must hold every tenant the events name) and moves the heads
/// past them. The one place a row's `seq`, `prev_hash` and `hash` are decided, for both engines.
pub(crate) fn link<'a>(events: &'a [NewAuditEvent], heads: &mut Heads) -> StoreResult<Vec<Linked<'a>>> {
    events
        .iter()
        .map(|event| {
            let head = heads.get_mut(&event.tenant_id).ok_or_else(|| corrupt(format!("no chain head for tenant {}", event.tenant_id)))?;
            let seq = head.0 + 1;
            let hash = chain_hash(event, seq, &head.1);
            let prev_hash = std::mem::replace(&mut head.1, hash.clone());
            head.0 = seq;
            Ok(Linked { event, seq, prev_hash, hash })
        })
        .collect()
}

/// Appends at the head of each tenant's chain, inside the caller's transaction, which must already
/// hold the right to append (SQLite: the writer's `BEGIN IMMEDIATE` holds the database's write lock).
/// PostgreSQL appends its own way (`postgres/audit.rs`); the unique `(tenant_id, seq)` index stands
/// behind both.
pub(crate) async fn append(db: &mut dyn Db, events: &[NewAuditEvent]) -> StoreResult<()> {
    let mut heads = Heads::new();
    for e in events {
        if !heads.contains_key(&e.tenant_id) {
            heads.insert(e.tenant_id.clone(), head(db, &e.tenant_id).await?);
        }
    }
    for chunk in link(events, &mut heads)?.chunks(ROWS_PER_INSERT) {
        let mut q = Query::new(
            "INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, \
             output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash) VALUES ",
        );
        for (i, Linked { event: e, seq, prev_hash, hash }) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            q.push_bind(e.event_id).push(", ").push_bind(e.run_id.0).push(", ").push_bind(&e.tenant_id).push(", ");
            q.push_bind(e.tool_id.as_str()).push(", ").push_bind(e.event_type.as_str()).push(", ").push_bind(e.status.as_str()).push(", ");
            q.push_bind(e.actor_id.as_str()).push(", ");
            q.push_bind(e.input_data.as_deref()).push(", ").push_bind(e.output_data.as_deref()).push(", ");
            q.push_bind(e.error_message.as_deref()).push(", ").push_bind(e.created_at).push(", ").push_bind(e.duration_ms).push(", ");
            q.push_bind(e.instance_id.as_deref()).push(", ").push_bind(*seq).push(", ").push_bind(prev_hash.as_str()).push(", ");
            q.push_bind(hash.as_str()).push(")");
        }
        db.execute(&q).await?;
    }
    Ok(())
}

fn event(mut r: Row) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        event: NewAuditEvent {
            event_id: r.uuid("event_id")?,
            run_id: RunId(r.uuid("run_id")?),
            tenant_id: r.tenant("tenant_id")?,
            tool_id: r.text("tool_id")?,
            event_type: r.parsed("event_type", EventType::parse)?,
            status: r.parsed("status", RunStatus::parse)?,
            actor_id: r.text("actor_id")?,
            input_data: r.opt_text("input_data")?,
            output_data: r.opt_text("output_data")?,
            error_message: r.opt_text("error_message")?,
            created_at: r.time("created_at")?,
            duration_ms: r.opt_int("duration_ms")?,
            instance_id: r.opt_text("instance_id")?,
        },
        seq: r.int("seq")?,
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

/// Newest first across every tenant (`lynx status`). Within a tenant `seq` is creation order. Across
/// tenants SQLite reads the table backwards by rowid: rows are only ever appended, so that finds the
/// newest without an index on `created_at` that every audit row would pay for (migration 4 dropped it
/// there); PostgreSQL has no such order and keeps the index.
pub(crate) const ACROSS_TENANTS_ORDER: &str = " ORDER BY /*sqlite c.rowid*//*pg c.created_at*/ DESC LIMIT ";

/// A run's closing rows. Every column it reads is in `lynx_audit_events_tenant_created_idx` (migration
/// 5), so a tenant's run count never reads the table.
pub(crate) const CLOSED_RUNS: &str = " WHERE c.event_type IN ('tool_call', 'refusal') AND c.status <> 'STARTED'";

/// The order of one run's rows: found by (tenant_id, run_id) and those few sorted; without the `+`
/// SQLite would walk the whole tenant's chain in seq order to skip the sort.
pub(crate) const RUN_ORDER: &str = " ORDER BY /*sqlite +*/seq DESC LIMIT ";

pub(crate) async fn events(db: &mut dyn Db, tenant: &TenantId, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    let mut q = Query::new(format!("SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = $1")).bind(tenant);
    if let Some(run) = f.run_id {
        q.push(" AND run_id = ").push_bind(run.0);
    }
    if let Some(tool) = &f.tool_id {
        q.push(" AND tool_id = ").push_bind(tool.as_str());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(since) = f.since {
        q.push(" AND created_at >= ").push_bind(since);
    }
    if let Some(before) = f.before_seq {
        q.push(" AND seq < ").push_bind(before);
    }
    q.push(if f.run_id.is_some() { RUN_ORDER } else { " ORDER BY seq DESC LIMIT " }).push_bind(f.limit);
    db::fetch_all(db, q, event).await
}

pub(crate) async fn chain_page(db: &mut dyn Db, tenant: &TenantId, after: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
        .bind(tenant)
        .bind(after)
        .bind(limit);
    db::fetch_all(db, q, event).await
}

pub(crate) async fn tenants(db: &mut dyn Db) -> StoreResult<Vec<TenantId>> {
    db::fetch_all(db, Query::new("SELECT DISTINCT tenant_id FROM lynx_audit_events ORDER BY tenant_id"), |mut r| r.tenant("tenant_id")).await
}

/// A run is its closing row (SUCCEEDED, FAILED or a DENIED refusal) joined with its STARTED row; with
/// `status = STARTED` the runs still in flight (a start row and no closing row) are listed instead.
pub(crate) async fn runs(db: &mut dyn Db, f: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)> {
    let in_flight = f.status == Some(RunStatus::Started);
    let filtered = |mut q: Query<'static>| {
        if in_flight {
            q.push(
                " WHERE c.event_type = 'tool_call' AND c.status = 'STARTED' AND NOT EXISTS (SELECT 1 FROM lynx_audit_events e \
                 WHERE e.tenant_id = c.tenant_id AND e.run_id = c.run_id AND e.status <> 'STARTED')",
            );
        } else {
            q.push(CLOSED_RUNS);
        }
        if let Some(t) = &f.tenant {
            q.push(" AND c.tenant_id = ").push_bind(t.as_str().to_string());
        }
        if let Some(s) = f.status.filter(|_| !in_flight) {
            q.push(" AND c.status = ").push_bind(s.as_str());
        }
        if let Some(tool) = &f.tool_id {
            q.push(" AND c.tool_id = ").push_bind(tool.clone());
        }
        if let Some(since) = f.since {
            q.push(" AND c.created_at >= ").push_bind(since);
        }
        q
    };
    let mut q = filtered(Query::new(
        "SELECT c.run_id, c.tenant_id, c.actor_id, c.tool_id, c.status, c.error_message, c.created_at AS closed_at, \
         (SELECT s.created_at FROM lynx_audit_events s WHERE s.tenant_id = c.tenant_id AND s.run_id = c.run_id \
          AND s.status = 'STARTED' LIMIT 1) AS started_at FROM lynx_audit_events c",
    ));
    q.push(if f.tenant.is_some() { " ORDER BY c.seq DESC LIMIT " } else { ACROSS_TENANTS_ORDER }).push_bind(f.limit);
    let runs = db::fetch_all(db, q, |mut r| {
        let closed_at = r.time("closed_at")?;
        let started_at = r.opt_time("started_at")?;
        Ok(RunSummary {
            run_id: RunId(r.uuid("run_id")?),
            tenant_id: r.tenant("tenant_id")?,
            actor_id: r.text("actor_id")?,
            tool_id: r.text("tool_id")?,
            status: r.parsed("status", RunStatus::parse)?,
            started_at: started_at.unwrap_or(closed_at),
            completed_at: (!in_flight).then_some(closed_at),
            error_message: r.opt_text("error_message")?,
        })
    })
    .await?;
    if !f.count_total {
        return Ok((runs, 0));
    }
    let total = db::count(db, filtered(Query::new("SELECT COUNT(*) FROM lynx_audit_events c"))).await?;
    Ok((runs, total))
}

pub(crate) async fn draft_activity(db: &mut dyn Db, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>> {
    let q = Query::new(
        "SELECT event_id, tool_id, event_type, actor_id, created_at, CAST(output_data AS TEXT) AS output_data, \
         CAST(input_data AS TEXT) AS input_data FROM lynx_audit_events WHERE tenant_id = $1 AND status = 'SUCCEEDED' \
         AND (event_type = 'human_action' OR tool_id LIKE '%.cluster.%' OR tool_id LIKE '%.cell.%') ORDER BY seq DESC LIMIT $2",
    )
    .bind(tenant)
    .bind(limit);
    db::fetch_all(db, q, |mut r| {
        Ok(ActivityEvent {
            event_id: r.uuid("event_id")?,
            tool_id: r.text("tool_id")?,
            event_type: r.text("event_type")?,
            actor_id: r.text("actor_id")?,
            created_at: r.time("created_at")?,
            output_data: r.opt_text("output_data")?,
            input_data: r.opt_text("input_data")?,
        })
    })
    .await
}

pub(crate) async fn heads(db: &mut dyn Db) -> StoreResult<Vec<(TenantId, i64)>> {
    let q = Query::new("SELECT tenant_id, MAX(seq) AS seq FROM lynx_audit_events GROUP BY tenant_id ORDER BY tenant_id");
    db::fetch_all(db, q, |mut r| Ok((r.tenant("tenant_id")?, r.int("seq")?))).await
}

/// A bounded range of `seq`, not `LIMIT`: with stale statistics (after a bulk load) PostgreSQL reads
/// and sorts every later row for each `LIMIT` page — quadratic over a million rows.
pub(crate) async fn leaves(db: &mut dyn Db, tenant: &TenantId, after: i64, limit: u32) -> StoreResult<Vec<(i64, String)>> {
    let q = Query::new("SELECT seq, hash FROM lynx_audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq")
        .bind(tenant)
        .bind(after)
        .bind(after.saturating_add(i64::from(limit)));
    db::fetch_all(db, q, |mut r| Ok((r.int("seq")?, r.text("hash")?))).await
}

const CHECKPOINT_COLUMNS: &str = "tenant_id, tree_size, root_hash, frontier, note, created_at, instance_id";

fn checkpoint(mut r: Row) -> StoreResult<CheckpointRecord> {
    Ok(CheckpointRecord {
        tenant_id: r.tenant("tenant_id")?,
        tree_size: r.int("tree_size")?,
        root_hash: r.text("root_hash")?,
        frontier: serde_json::from_value(r.json("frontier")?).map_err(corrupt)?,
        note: r.text("note")?,
        created_at: r.time("created_at")?,
        instance_id: r.opt_text("instance_id")?,
    })
}

pub(crate) async fn latest_checkpoint(db: &mut dyn Db, tenant: &TenantId) -> StoreResult<Option<CheckpointRecord>> {
    let q = Query::new(format!("SELECT {CHECKPOINT_COLUMNS} FROM lynx_audit_checkpoints WHERE tenant_id = $1 ORDER BY tree_size DESC LIMIT 1")).bind(tenant);
    db::fetch_one_as(db, q, checkpoint).await
}

pub(crate) async fn latest_checkpoints(db: &mut dyn Db) -> StoreResult<Vec<CheckpointRecord>> {
    let q = Query::new(format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM lynx_audit_checkpoints c \
         WHERE tree_size = (SELECT MAX(tree_size) FROM lynx_audit_checkpoints l WHERE l.tenant_id = c.tenant_id) ORDER BY tenant_id"
    ));
    db::fetch_all(db, q, checkpoint).await
}

/// Stores a checkpoint unless one of that size exists, with its `audit.checkpoint` event.
pub(crate) async fn insert_checkpoint(db: &mut dyn Db, c: &CheckpointRecord) -> StoreResult<bool> {
    let q = Query::new(format!("INSERT INTO lynx_audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"))
        .bind(&c.tenant_id)
        .bind(c.tree_size)
        .bind(c.root_hash.as_str())
        .bind(serde_json::json!(c.frontier))
        .bind(c.note.as_str())
        .bind(c.created_at)
        .bind(c.instance_id.as_deref());
    if db.execute(&q).await? == 0 {
        return Ok(false);
    }
    let data = serde_json::json!({"tenant_id": c.tenant_id, "tree_size": c.tree_size, "root_hash": c.root_hash, "note": c.note});
    webhooks::publish(db, &c.tenant_id, WebhookEventType::AuditCheckpoint, data, c.created_at).await?;
    Ok(true)
}

pub(crate) async fn record_verification(db: &mut dyn Db, v: &VerificationRecord) -> StoreResult<()> {
    let q = Query::new(
        "INSERT INTO lynx_audit_verifications (tenant_id, verified_at, events, checkpoint_size, verified_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&v.tenant_id)
    .bind(v.verified_at)
    .bind(v.events)
    .bind(v.checkpoint_size)
    .bind(v.verified_by.as_str());
    db.execute(&q).await.map(drop)
}

pub(crate) async fn latest_verifications(db: &mut dyn Db) -> StoreResult<Vec<VerificationRecord>> {
    let q = Query::new(
        "SELECT tenant_id, verified_at, events, checkpoint_size, verified_by FROM lynx_audit_verifications v \
         WHERE verified_at = (SELECT MAX(verified_at) FROM lynx_audit_verifications l WHERE l.tenant_id = v.tenant_id) ORDER BY tenant_id",
    );
    db::fetch_all(db, q, |mut r| {
        Ok(VerificationRecord {
            tenant_id: r.tenant("tenant_id")?,
            verified_at: r.time("verified_at")?,
            events: r.int("events")?,
            checkpoint_size: r.opt_int("checkpoint_size")?,
            verified_by: r.text("verified_by")?,
        })
    })
    .await
}
