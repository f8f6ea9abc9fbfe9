//! `lynx_audit_events` on PostgreSQL. Appenders of one tenant's chain take that tenant's advisory
//! lock for the transaction, so instances sharing the database append one after another and the
//! chain never forks; the unique (tenant_id, seq) index stands behind the lock.

use std::collections::{BTreeSet, HashMap};

use lynx_model::{
    RunId, TenantId,
    audit::{AuditEvent, EventType, GENESIS_HASH, NewAuditEvent, chain_hash},
    store::{ActivityEvent, AuditFilter, RunFilter, RunSummary, StoreResult},
    vocab::RunStatus,
};
use sqlx::{PgPool, Postgres, QueryBuilder, Row, postgres::PgRow};

use crate::error::{corrupt, map};

const COLUMNS: &str = "event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data::text AS input_data, \
    output_data::text AS output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash";

pub(super) async fn append(pool: &PgPool, events: &[NewAuditEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(map)?;
    // Lock every tenant the batch touches, in one order, so two batches cannot deadlock.
    let tenants: BTreeSet<&str> = events.iter().map(|e| e.tenant_id.as_str()).collect();
    for t in &tenants {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('lynx_audit:' || $1, 0))")
            .bind(*t)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    let mut heads: HashMap<&TenantId, (i64, String)> = HashMap::new();
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        if !heads.contains_key(&e.tenant_id) {
            let head: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM lynx_audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1")
                    .bind(e.tenant_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map)?;
            heads.insert(&e.tenant_id, head.unwrap_or((0, GENESIS_HASH.to_string())));
        }
        let head = heads.get_mut(&e.tenant_id).expect("head was just loaded");
        let seq = head.0 + 1;
        let hash = chain_hash(e, seq, &head.1);
        rows.push((e, seq, std::mem::replace(&mut head.1, hash.clone()), hash));
        head.0 = seq;
    }
    // Multi-row INSERTs of a few rows each: sqlx does not set TCP_NODELAY, and a statement larger than
    // its write buffer goes out in pieces, the last of which waits ~40 ms for a delayed ACK (Nagle).
    for chunk in rows.chunks(16) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, \
             output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash) ",
        );
        q.push_values(chunk, |mut b, (e, seq, prev, hash)| {
            b.push_bind(e.event_id)
                .push_bind(e.run_id.0)
                .push_bind(e.tenant_id.as_str())
                .push_bind(e.tool_id.as_str())
                .push_bind(e.event_type.as_str())
                .push_bind(e.status.as_str())
                .push_bind(e.actor_id.as_str())
                .push_bind(e.input_data.as_deref())
                .push_unseparated("::json")
                .push_bind(e.output_data.as_deref())
                .push_unseparated("::json")
                .push_bind(e.error_message.as_deref())
                .push_bind(e.created_at)
                .push_bind(e.duration_ms)
                .push_bind(e.instance_id.as_deref())
                .push_bind(*seq)
                .push_bind(prev.as_str())
                .push_bind(hash.as_str());
        });
        q.build().execute(&mut *tx).await.map_err(map)?;
    }
    tx.commit().await.map_err(map)
}

fn status(s: &str) -> StoreResult<RunStatus> {
    RunStatus::parse(s).ok_or_else(|| corrupt(format!("unknown status {s:?}")))
}

fn from_row(r: &PgRow) -> StoreResult<AuditEvent> {
    let get = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let event_type = get("event_type")?;
    Ok(AuditEvent {
        event: NewAuditEvent {
            event_id: r.try_get("event_id").map_err(map)?,
            run_id: RunId(r.try_get("run_id").map_err(map)?),
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

pub(super) async fn events(pool: &PgPool, tenant: &TenantId, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = "));
    q.push_bind(tenant.as_str().to_string());
    if let Some(run) = f.run_id {
        q.push(" AND run_id = ").push_bind(run.0);
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
    q.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn chain_page(pool: &PgPool, tenant: &TenantId, after: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )))
    .bind(tenant.as_str())
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn tenants(pool: &PgPool) -> StoreResult<Vec<TenantId>> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM lynx_audit_events ORDER BY tenant_id")
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.into_iter().map(super::tenant).collect()
}

/// As on SQLite: a run is its closing row joined with its STARTED row; `status = STARTED` lists runs in flight.
pub(super) async fn runs(pool: &PgPool, f: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)> {
    let in_flight = f.status == Some(RunStatus::Started);
    let push_where = |q: &mut QueryBuilder<Postgres>| {
        if in_flight {
            q.push(
                " WHERE c.event_type = 'tool_call' AND c.status = 'STARTED' AND NOT EXISTS (SELECT 1 FROM lynx_audit_events e \
                 WHERE e.tenant_id = c.tenant_id AND e.run_id = c.run_id AND e.status <> 'STARTED')",
            );
        } else {
            q.push(" WHERE c.event_type IN ('tool_call', 'refusal') AND c.status <> 'STARTED'");
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
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT c.run_id, c.tenant_id, c.actor_id, c.tool_id, c.status, c.error_message, c.created_at AS closed_at, \
         (SELECT s.created_at FROM lynx_audit_events s WHERE s.tenant_id = c.tenant_id AND s.run_id = c.run_id \
          AND s.status = 'STARTED' LIMIT 1) AS started_at FROM lynx_audit_events c",
    );
    push_where(&mut q);
    // Within a tenant, seq is creation order and has a unique index; across tenants, created_at does.
    q.push(if f.tenant.is_some() { " ORDER BY c.seq DESC LIMIT " } else { " ORDER BY c.created_at DESC LIMIT " }).push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    let runs = rows
        .iter()
        .map(|r| {
            let closed_at = r.try_get("closed_at").map_err(map)?;
            let started_at: Option<_> = r.try_get("started_at").map_err(map)?;
            Ok(RunSummary {
                run_id: RunId(r.try_get("run_id").map_err(map)?),
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
    let mut q = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM lynx_audit_events c");
    push_where(&mut q);
    let total: i64 = q.build_query_scalar().fetch_one(pool).await.map_err(map)?;
    Ok((runs, total))
}

pub(super) async fn draft_activity(pool: &PgPool, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>> {
    let rows = sqlx::query(
        "SELECT event_id, tool_id, event_type, actor_id, created_at, output_data::text AS output_data, input_data::text AS input_data \
         FROM lynx_audit_events WHERE tenant_id = $1 AND status = 'SUCCEEDED' \
         AND (event_type = 'human_action' OR tool_id LIKE '%.cluster.%' OR tool_id LIKE '%.cell.%') ORDER BY seq DESC LIMIT $2",
    )
    .bind(tenant.as_str())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter()
        .map(|r| {
            Ok(ActivityEvent {
                event_id: r.try_get("event_id").map_err(map)?,
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
