//! Audit appends on PostgreSQL: one statement and one round trip while an instance has a tenant's
//! chain to itself; a short lock, taken and read under in one round trip, while instances contend.
//!
//! The chain must not fork, and with several instances on one database any of them may append to a
//! tenant at any moment. The unique `(tenant_id, seq)` index is what decides.
//!
//! *Uncontended* (one instance, or instances serving different tenants): a batch is linked after the
//! heads this instance believes in and inserted as one `INSERT … SELECT FROM UNNEST(…)` in its own
//! implicit transaction. A believed head is either read from the table or the last row of this
//! instance's own committed insert, and audit rows are never changed or deleted (the database refuses
//! both): row `seq = n` has exactly the hash we hold, so a row at `n + 1` with it as `prev_hash`
//! continues the chain — unless `n + 1` exists already, which the index refuses, writing none of the
//! batch.
//!
//! *Contended*: such a refusal means another instance is appending to the same tenant. Guessing again
//! would lose again as long as it keeps appending, so for a while (`CONTENDED_FOR`) this instance
//! appends to that tenant under its advisory lock instead: `BEGIN`, the lock and the read of the head
//! go as one simple query (each statement of it takes its own snapshot, so the head is read after the
//! lock is granted), then the insert, then `COMMIT` — three round trips, the instances taking turns.
//! A locked append can still meet an uncontended one from an instance that has not noticed yet; the
//! index refuses it, and it is retried.
//!
//! Before this, every append took the lock and read the head in a transaction of its own: five round
//! trips per batch, with the lock held across four of them and the commit's flush.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    audit::{GENESIS_HASH, NewAuditEvent},
    store::{StoreError, StoreResult},
};
use sqlx::Row as _;
use uuid::Uuid;

use super::{lending::Lender, liveness::Liveness};
use crate::ops::audit::{self, Heads, Linked};

/// The unique index that keeps each tenant's chain from forking.
const SEQ_INDEX: &str = "lynx_audit_events_tenant_seq_uq";

/// How long a tenant is appended to under its lock after another instance was seen appending to it.
const CONTENDED_FOR: Duration = Duration::from_secs(2);

/// How often a batch is tried before the append fails. Every try after a refusal reads the heads
/// afresh (under the lock), so it fails only if other instances keep winning against a lock holder.
const ATTEMPTS: u32 = 100;

const INSERT: &str = "INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, \
    output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash) \
    SELECT event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data::json, output_data::json, error_message, \
    created_at, duration_ms, instance_id, seq, prev_hash, hash \
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
    $10::text[], $11::timestamptz[], $12::int8[], $13::text[], $14::int8[], $15::text[], $16::text[]) \
    AS u(event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, output_data, error_message, \
    created_at, duration_ms, instance_id, seq, prev_hash, hash)";

/// What this instance knows of each tenant's chain: the head it last read or wrote, and until when
/// another instance is taken to be appending to it too. A cache, not a lock: losing it costs a read.
#[derive(Default)]
pub(super) struct KnownHeads(Mutex<Known>);

#[derive(Default)]
struct Known {
    heads: HashMap<TenantId, (i64, String)>,
    contended_until: HashMap<TenantId, Instant>,
}

impl KnownHeads {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The heads of the batch's tenants, if every one is known and none is contended.
    fn uncontended(&self, events: &[NewAuditEvent]) -> Option<Heads> {
        let known = self.known();
        let now = Instant::now();
        events
            .iter()
            .map(|e| match known.contended_until.get(&e.tenant_id) {
                Some(until) if *until > now => None,
                _ => known.heads.get(&e.tenant_id).map(|h| (e.tenant_id.clone(), h.clone())),
            })
            .collect()
    }
    fn keep(&self, heads: Heads) {
        self.known().heads.extend(heads);
    }
    fn contended(&self, events: &[NewAuditEvent]) {
        let mut known = self.known();
        let until = Instant::now() + CONTENDED_FOR;
        for e in events {
            known.heads.remove(&e.tenant_id);
            known.contended_until.insert(e.tenant_id.clone(), until);
        }
    }
    fn forget(&self, events: &[NewAuditEvent]) {
        let mut known = self.known();
        for e in events {
            known.heads.remove(&e.tenant_id);
        }
    }
}

pub(super) async fn append(connections: &Lender, known: &KnownHeads, liveness: &Liveness, events: Vec<NewAuditEvent>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tenants: Vec<&TenantId> = events.iter().map(|e| &e.tenant_id).collect();
    tenants.sort();
    tenants.dedup();
    for attempt in 1..=ATTEMPTS {
        let tried = match known.uncontended(&events) {
            Some(heads) => append_after(connections, liveness, &events, heads).await,
            // A tenant this instance has not seen yet is read under the lock too: the first append
            // after a start is as likely as any to meet another instance's.
            None => append_locked(connections, liveness, &events, &tenants).await,
        };
        match tried {
            Ok(heads) => {
                known.keep(heads);
                return Ok(());
            }
            Err(Missed::Raced) => {
                known.contended(&events);
                tracing::debug!(attempt, "audit append met another instance's; appending under the tenant's lock for a while");
                if attempt > 1 {
                    // Still losing even under the lock: let the other writers' uncontended guesses
                    // run out before the next try.
                    let ceiling = (u64::from(attempt) * 200).min(5_000);
                    tokio::time::sleep(Duration::from_micros(jitter(ceiling))).await;
                }
            }
            Err(Missed::Database(e)) => {
                known.forget(&events);
                return Err(liveness.failed(e));
            }
            Err(Missed::Failed(e)) => {
                known.forget(&events);
                return Err(e);
            }
        }
    }
    Err(StoreError::Unavailable(format!("audit rows not appended: other instances appended first {ATTEMPTS} times in a row")))
}

/// Why one try appended nothing.
enum Missed {
    /// Another writer appended to one of the batch's tenants first (the unique index refused the batch).
    Raced,
    /// The database failed: kept as sqlx's error until `append` has shown it to `Liveness`.
    Database(sqlx::Error),
    Failed(StoreError),
}

impl From<sqlx::Error> for Missed {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.constraint() == Some(SEQ_INDEX) => Missed::Raced,
            _ => Missed::Database(e),
        }
    }
}

impl From<StoreError> for Missed {
    fn from(e: StoreError) -> Self {
        Missed::Failed(e)
    }
}

/// Links the batch after `heads` and inserts it in one statement; the heads after it.
async fn append_after(connections: &Lender, liveness: &Liveness, events: &[NewAuditEvent], mut heads: Heads) -> Result<Heads, Missed> {
    let rows = audit::link(events, &mut heads)?;
    let mut lent = connections.lend(liveness).await?;
    insert(lent.conn(), &rows).await?;
    lent.ended_well();
    Ok(heads)
}

/// Takes each tenant's advisory lock (in one order, so two batches cannot deadlock), reads the heads
/// under it, inserts and commits; the heads after it.
async fn append_locked(connections: &Lender, liveness: &Liveness, events: &[NewAuditEvent], tenants: &[&TenantId]) -> Result<Heads, Missed> {
    let mut lent = connections.lend(liveness).await?;
    let conn = lent.pooled();
    // A simple query takes no parameters: the tenant ids are written into the text. `TenantId` admits
    // only ASCII letters, digits and `-_.@:`, none of which can end a quoted literal.
    let mut sql = String::from("BEGIN;");
    for t in tenants {
        sql.push_str(&format!(" SELECT pg_advisory_xact_lock(hashtextextended('lynx_audit:{}', 0));", super::literal(t)));
    }
    for t in tenants {
        let t = super::literal(t);
        sql.push_str(&format!(" SELECT '{t}' AS tenant_id, seq, hash FROM lynx_audit_events WHERE tenant_id = '{t}' ORDER BY seq DESC LIMIT 1;"));
    }
    let result = async {
        let mut heads: Heads = tenants.iter().map(|t| ((*t).clone(), (0, GENESIS_HASH.to_string()))).collect();
        for row in sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_all(conn.as_mut()).await? {
            if let Ok(tenant) = row.try_get::<String, _>("tenant_id") {
                let head = (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?);
                if let Some(slot) = heads.iter_mut().find(|(t, _)| t.as_str() == tenant) {
                    *slot.1 = head;
                }
            }
        }
        let rows = audit::link(events, &mut heads)?;
        insert(conn.as_mut(), &rows).await?;
        sqlx::raw_sql("COMMIT").execute(conn.as_mut()).await?;
        Ok(heads)
    }
    .await;
    if result.is_err() && sqlx::raw_sql("ROLLBACK").execute(conn.as_mut()).await.is_err() {
        // Not known to be out of the transaction: the pool must not lend it again.
        conn.close_on_drop();
    }
    if result.is_ok() {
        lent.ended_well();
    }
    result
}

/// A random number of microseconds below `ceiling` (the random bits of a v4 UUID: no other source needed).
fn jitter(ceiling: u64) -> u64 {
    (Uuid::new_v4().as_u128() as u64) % ceiling.max(1)
}

/// All rows in one statement: one prepared statement whatever the batch's size, and atomic — a
/// refused row writes none.
async fn insert(conn: &mut sqlx::PgConnection, rows: &[Linked<'_>]) -> Result<(), sqlx::Error> {
    let texts = |f: fn(&Linked<'_>) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&Linked<'_>) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let event_ids: Vec<Uuid> = rows.iter().map(|r| r.event.event_id).collect();
    let run_ids: Vec<Uuid> = rows.iter().map(|r| r.event.run_id.0).collect();
    let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.event.created_at).collect();
    let durations: Vec<Option<i64>> = rows.iter().map(|r| r.event.duration_ms).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    sqlx::query(INSERT)
        .bind(event_ids)
        .bind(run_ids)
        .bind(texts(|r| r.event.tenant_id.to_string()))
        .bind(texts(|r| r.event.tool_id.clone()))
        .bind(texts(|r| r.event.event_type.as_str().to_string()))
        .bind(texts(|r| r.event.status.as_str().to_string()))
        .bind(texts(|r| r.event.actor_id.clone()))
        .bind(optional(|r| r.event.input_data.clone()))
        .bind(optional(|r| r.event.output_data.clone()))
        .bind(optional(|r| r.event.error_message.clone()))
        .bind(created)
        .bind(durations)
        .bind(optional(|r| r.event.instance_id.clone()))
        .bind(seqs)
        .bind(texts(|r| r.prev_hash.clone()))
        .bind(texts(|r| r.hash.clone()))
        .execute(conn)
        .await
        .map(drop)
}
