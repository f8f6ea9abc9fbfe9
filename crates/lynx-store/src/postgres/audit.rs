//! Audit appends on PostgreSQL: one statement, one round trip, no lock held across round trips.
//!
//! The chain must not fork, and with several instances on one database any of them may append to a
//! tenant at any moment. The unique `(tenant_id, seq)` index is what decides: a batch is linked after
//! the heads this instance believes in and inserted as one `INSERT … SELECT FROM UNNEST(…)` in its own
//! implicit transaction. If another instance appended meanwhile, the index refuses the whole statement
//! (nothing of it is written); the heads are read again and the batch is linked and inserted anew.
//!
//! Why a believed head is safe: it is either read from the table or the last row of this instance's
//! own committed insert, and audit rows are never changed or deleted (the database refuses both). So
//! row `seq = n` has exactly the hash we hold for it, and a row inserted at `n + 1` with that hash as
//! `prev_hash` continues the chain correctly — unless `n + 1` exists already, which the index refuses.
//! The heads held in memory are a cache, not a lock: losing them costs one read.
//!
//! Before this, an append took a per-tenant advisory lock and read the head inside a transaction —
//! `BEGIN`, lock, read, insert, `COMMIT`: five round trips per batch with the lock held across four
//! of them and the commit's flush.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    audit::NewAuditEvent,
    store::{StoreError, StoreResult},
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    error::map,
    ops::audit::{self, Heads, Linked},
};

/// The unique index that keeps each tenant's chain from forking.
const SEQ_INDEX: &str = "lynx_audit_events_tenant_seq_uq";

/// How often a batch is linked again after other writers appended first, before the append fails.
/// Each retry follows a fresh read of the heads, so it fails only while other writers keep winning
/// every race for the same tenant (with one writer per instance, practically never).
const ATTEMPTS: u32 = 100;

const INSERT: &str = "INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, \
    output_data, error_message, created_at, duration_ms, instance_id, seq, prev_hash, hash) \
    SELECT event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data::json, output_data::json, error_message, \
    created_at, duration_ms, instance_id, seq, prev_hash, hash \
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
    $10::text[], $11::timestamptz[], $12::int8[], $13::text[], $14::int8[], $15::text[], $16::text[]) \
    AS u(event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, input_data, output_data, error_message, \
    created_at, duration_ms, instance_id, seq, prev_hash, hash)";

/// The heads this instance last read or wrote, per tenant.
#[derive(Default)]
pub(super) struct KnownHeads(Mutex<HashMap<TenantId, (i64, String)>>);

impl KnownHeads {
    fn take(&self, events: &[NewAuditEvent]) -> Heads {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter_map(|e| known.get(&e.tenant_id).map(|h| (e.tenant_id.clone(), h.clone()))).collect()
    }
    fn keep(&self, heads: Heads) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(heads);
    }
    fn forget(&self, events: &[NewAuditEvent]) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for e in events {
            known.remove(&e.tenant_id);
        }
    }
}

pub(super) async fn append(pool: &PgPool, known: &KnownHeads, events: Vec<NewAuditEvent>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut heads = known.take(&events);
    for attempt in 1..=ATTEMPTS {
        for e in &events {
            if !heads.contains_key(&e.tenant_id) {
                let head = audit::head(&mut super::values::OnPool(pool), &e.tenant_id).await?;
                heads.insert(e.tenant_id.clone(), head);
            }
        }
        let mut moved = heads.clone();
        let rows = audit::link(&events, &mut moved)?;
        match insert(pool, &rows).await {
            Ok(()) => {
                known.keep(moved);
                return Ok(());
            }
            Err(sqlx::Error::Database(e)) if e.constraint() == Some(SEQ_INDEX) => {
                // Another writer appended first: read the heads again. A pause of random length,
                // growing with each loss (up to 5 ms), lets a writer that keeps losing the race fall
                // out of step with the others.
                known.forget(&events);
                heads.clear();
                tracing::debug!(attempt, "audit append raced another writer; linking again");
                let ceiling = (u64::from(attempt) * 200).min(5_000);
                tokio::time::sleep(Duration::from_micros(jitter(ceiling))).await;
            }
            Err(e) => {
                known.forget(&events);
                return Err(map(e));
            }
        }
    }
    Err(StoreError::Unavailable(format!("audit rows not appended: other instances appended first {ATTEMPTS} times in a row")))
}

/// A random number of microseconds below `ceiling` (the random bits of a v4 UUID: no other source needed).
fn jitter(ceiling: u64) -> u64 {
    (Uuid::new_v4().as_u128() as u64) % ceiling.max(1)
}

/// All rows in one statement: one prepared statement whatever the batch's size, and atomic — a
/// refused row writes none.
async fn insert(pool: &PgPool, rows: &[Linked<'_>]) -> Result<(), sqlx::Error> {
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
        .execute(pool)
        .await
        .map(drop)
}
