//! `lynx_audit_events`: appends at the head of each tenant's hash chain, and the read models over it
//! (runs, events, activity). Rows are never updated or deleted here.

use std::collections::HashMap;

use lynx_model::{
    RunId, TenantId,
    audit::{AuditEvent, EventType, GENESIS_HASH, NewAuditEvent, chain_hash},
    store::{ActivityEvent, AuditFilter, RunFilter, RunSummary, StoreResult},
    vocab::RunStatus,
};
use rusqlite::OptionalExtension;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, sqlite::SqliteRow};

use super::row::ts;
use crate::error::{corrupt, map, map_rusqlite};

const COLUMNS: &str = "event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, output_data, \
                       error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash";

const INSERT: &str = "INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, \
    input_data, output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Appends at the head of each tenant's chain. Runs on the writer thread inside `BEGIN IMMEDIATE`, which
/// takes the write lock before the heads are read, so no other writer (in this process or another) can
/// append between our read of a head and our insert after it.
pub(super) fn append(conn: &rusqlite::Connection, events: &[NewAuditEvent]) -> StoreResult<()> {
    let mut heads: HashMap<&TenantId, (i64, String)> = HashMap::new();
    let mut head_of = conn
        .prepare_cached("SELECT seq, hash FROM lynx_audit_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1")
        .map_err(map_rusqlite)?;
    // One prepared statement, executed per row: inside one transaction that costs about what a
    // multi-row INSERT does, without building a statement per batch size.
    let mut insert = conn.prepare_cached(INSERT).map_err(map_rusqlite)?;
    for e in events {
        if !heads.contains_key(&e.tenant_id) {
            let head = head_of
                .query_row([e.tenant_id.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .optional()
                .map_err(map_rusqlite)?;
            heads.insert(&e.tenant_id, head.unwrap_or((0, GENESIS_HASH.to_string())));
        }
        let head = heads.get_mut(&e.tenant_id).expect("head was just loaded");
        let seq = head.0 + 1;
        let hash = chain_hash(e, seq, &head.1);
        insert
            .execute(rusqlite::params![
                e.event_id.to_string(),
                e.run_id.to_string(),
                e.tenant_id.as_str(),
                e.tool_id,
                e.event_type.as_str(),
                e.status.as_str(),
                e.actor_id,
                e.input_data,
                e.output_data,
                e.error_message,
                ts(&e.created_at),
                e.duration_ms,
                e.instance_id,
                seq,
                head.1,
                hash,
            ])
            .map_err(map_rusqlite)?;
        *head = (seq, hash);
    }
    Ok(())
}

fn status(s: &str) -> StoreResult<RunStatus> {
    RunStatus::parse(s).ok_or_else(|| corrupt(format!("unknown status {s:?}")))
}

fn from_row(r: &SqliteRow) -> StoreResult<AuditEvent> {
    let get = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let event_type = get("event_type")?;
    Ok(AuditEvent {
        event: NewAuditEvent {
            event_id: super::uuid(&get("event_id")?)?,
            run_id: RunId(super::uuid(&get("run_id")?)?),
            tenant_id: super::tenant(get("tenant_id")?)?,
            tool_id: get("tool_id")?,
            event_type: EventType::parse(&event_type).ok_or_else(|| corrupt(format!("unknown event_type {event_type:?}")))?,
            status: status(&get("status")?)?,
            actor_id: get("actor_id")?,
            input_data: r.try_get("input_data").map_err(map)?,
            output_data: r.try_get("output_data").map_err(map)?,
            error_message: r.try_get("error_message").map_err(map)?,
            created_at: r.try_get("created_at").map_err(map)?,
            duration_ms: r.try_get("duration_ms").map_err(map)?,
            instance_id: r.try_get("instance_id").map_err(map)?,
        },
        seq: r.try_get("seq").map_err(map)?,
        prev_hash: get("prev_hash")?,
        hash: get("hash")?,
    })
}

/// Newest first across every tenant (`lynx status`). Within a tenant `seq` is creation order; across
/// tenants the rowid is: rows are only ever appended, so reading the table backwards finds the newest
/// without an index on `created_at` that every audit row would pay for (migration 4 dropped it).
pub(super) const ACROSS_TENANTS_ORDER: &str = " ORDER BY c.rowid DESC LIMIT ";

/// A run's closing rows. Every column it reads is in `lynx_audit_events_tenant_created_idx` (migration
/// 5), so a tenant's run count never reads the table.
pub(super) const CLOSED_RUNS: &str = " WHERE c.event_type IN ('tool_call', 'refusal') AND c.status <> 'STARTED'";

/// The order of one run's rows (see `events`).
pub(super) const RUN_ORDER: &str = " ORDER BY +seq DESC LIMIT ";

pub(super) async fn events(pool: &SqlitePool, tenant: &TenantId, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = "));
    q.push_bind(tenant.as_str());
    if let Some(run) = f.run_id {
        q.push(" AND run_id = ").push_bind(run.to_string());
    }
    if let Some(tool) = &f.tool_id {
        q.push(" AND tool_id = ").push_bind(tool.clone());
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
    // One run's rows: find them by (tenant_id, run_id) and sort those few; without the `+` SQLite would
    // walk the whole tenant's chain in seq order to skip the sort.
    q.push(if f.run_id.is_some() { RUN_ORDER } else { " ORDER BY seq DESC LIMIT " }).push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn chain_page(pool: &SqlitePool, tenant: &TenantId, after: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?"
    )))
    .bind(tenant.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn tenants(pool: &SqlitePool) -> StoreResult<Vec<TenantId>> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM lynx_audit_events ORDER BY tenant_id")
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.into_iter().map(super::tenant).collect()
}

/// A run is its closing row (SUCCEEDED, FAILED or a DENIED refusal) joined with its STARTED row; with
/// `status = STARTED` the runs still in flight (a start row and no closing row) are listed instead.
pub(super) async fn runs(pool: &SqlitePool, f: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)> {
    let in_flight = f.status == Some(RunStatus::Started);
    let push_where = |q: &mut QueryBuilder<Sqlite>| {
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
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT c.run_id, c.tenant_id, c.actor_id, c.tool_id, c.status, c.error_message, c.created_at AS closed_at, \
         (SELECT s.created_at FROM lynx_audit_events s WHERE s.tenant_id = c.tenant_id AND s.run_id = c.run_id \
          AND s.status = 'STARTED' LIMIT 1) AS started_at FROM lynx_audit_events c",
    );
    push_where(&mut q);
    q.push(if f.tenant.is_some() { " ORDER BY c.seq DESC LIMIT " } else { ACROSS_TENANTS_ORDER }).push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    let runs = rows
        .iter()
        .map(|r| {
            let closed_at = r.try_get("closed_at").map_err(map)?;
            let started_at: Option<_> = r.try_get("started_at").map_err(map)?;
            Ok(RunSummary {
                run_id: RunId(super::uuid(&r.try_get::<String, _>("run_id").map_err(map)?)?),
                tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
                actor_id: r.try_get("actor_id").map_err(map)?,
                tool_id: r.try_get("tool_id").map_err(map)?,
                status: status(&r.try_get::<String, _>("status").map_err(map)?)?,
                started_at: started_at.unwrap_or(closed_at),
                completed_at: (!in_flight).then_some(closed_at),
                error_message: r.try_get("error_message").map_err(map)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    if !f.count_total {
        return Ok((runs, 0));
    }
    let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM lynx_audit_events c");
    push_where(&mut q);
    let total: i64 = q.build_query_scalar().fetch_one(pool).await.map_err(map)?;
    Ok((runs, total))
}

pub(super) async fn draft_activity(pool: &SqlitePool, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>> {
    let rows = sqlx::query(
        "SELECT event_id, tool_id, event_type, actor_id, created_at, output_data, input_data FROM lynx_audit_events \
         WHERE tenant_id = ? AND status = 'SUCCEEDED' \
         AND (event_type = 'human_action' OR tool_id LIKE '%.cluster.%' OR tool_id LIKE '%.cell.%') \
         ORDER BY seq DESC LIMIT ?",
    )
    .bind(tenant.as_str())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter()
        .map(|r| {
            Ok(ActivityEvent {
                event_id: super::uuid(&r.try_get::<String, _>("event_id").map_err(map)?)?,
                tool_id: r.try_get("tool_id").map_err(map)?,
                event_type: r.try_get("event_type").map_err(map)?,
                actor_id: r.try_get("actor_id").map_err(map)?,
                created_at: r.try_get("created_at").map_err(map)?,
                output_data: r.try_get("output_data").map_err(map)?,
                input_data: r.try_get("input_data").map_err(map)?,
            })
        })
        .collect()
}
