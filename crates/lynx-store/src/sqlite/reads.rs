//! Settings and the read models over drafts, executions, payments, settlements and workflows.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    store::{PaymentFilter, PaymentRecord, QueueCounts, StoreResult},
};
use rust_decimal::Decimal;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, sqlite::SqliteRow};

use crate::error::{corrupt, map};

pub(super) async fn setting(pool: &SqlitePool, key: &str) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT value FROM lynx_settings WHERE key = ?")
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(map)
}

pub(super) fn put_setting(conn: &rusqlite::Connection, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    super::row::exec(
        conn,
        "INSERT INTO lynx_settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        rusqlite::params![key, value, super::row::ts(&at), by],
    )?;
    Ok(())
}

pub(super) async fn queue_counts(pool: &SqlitePool, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts> {
    // Two spellings, so each can use its index: (tenant_id, status) for one tenant, (status) for all.
    let sql = match tenant {
        Some(_) => "SELECT \
           (SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = ?1 AND status = 'SUBMITTED') AS pending, \
           (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND tenant_id = ?1) AS queued, \
           (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < ?2 AND tenant_id = ?1) AS stuck",
        None => "SELECT \
           (SELECT COUNT(*) FROM lynx_drafts WHERE status = 'SUBMITTED' AND ?1 IS NULL) AS pending, \
           (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued') AS queued, \
           (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < ?2) AS stuck",
    };
    let row = sqlx::query(sql)
        .bind(tenant.map(|t| t.as_str().to_string()))
        .bind(stuck_before)
        .fetch_one(pool)
        .await
        .map_err(map)?;
    Ok(QueueCounts {
        pending_approvals: row.try_get("pending").map_err(map)?,
        queued_settlements: row.try_get("queued").map_err(map)?,
        stuck_executions: row.try_get("stuck").map_err(map)?,
    })
}

pub(super) async fn count_drafts(pool: &SqlitePool, tenant: &TenantId, status: &str, draft_type: Option<&str>) -> StoreResult<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = ? AND status = ? AND (?3 IS NULL OR draft_type = ?3)",
    )
    .bind(tenant.as_str())
    .bind(status)
    .bind(draft_type)
    .fetch_one(pool)
    .await
    .map_err(map)
}

pub(super) async fn active_workflow_count(pool: &SqlitePool, tenant: &TenantId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lynx_workflows WHERE tenant_id = ? AND status = 'active'")
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .map_err(map)
}

const PAYMENT_COLUMNS: &str =
    "payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at";

fn payment(r: &SqliteRow) -> StoreResult<PaymentRecord> {
    let get = |c: &str| r.try_get::<String, _>(c).map_err(map);
    Ok(PaymentRecord {
        payment_id: super::uuid(&get("payment_id")?)?,
        tenant_id: super::tenant(get("tenant_id")?)?,
        draft_id: super::uuid(&get("draft_id")?)?,
        execution_id: super::uuid(&get("execution_id")?)?,
        vendor_id: get("vendor_id")?,
        amount: get("amount")?.parse::<Decimal>().map_err(corrupt)?,
        currency: get("currency")?,
        due_date: get("due_date")?,
        status: get("status")?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
    })
}

pub(super) async fn payments(pool: &SqlitePool, tenant: &TenantId, f: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = "));
    q.push_bind(tenant.as_str());
    if let Some(v) = &f.vendor_id {
        q.push(" AND vendor_id = ").push_bind(v.clone());
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(since) = f.since {
        q.push(" AND created_at >= ").push_bind(since);
    }
    q.push(" ORDER BY created_at DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(payment).collect()
}

pub(super) async fn payments_in_status(
    pool: &SqlitePool,
    tenant: &TenantId,
    status: &str,
    vendor_id: Option<&str>,
) -> StoreResult<Vec<PaymentRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = ? AND status = ? AND (?3 IS NULL OR vendor_id = ?3)"
    )))
    .bind(tenant.as_str())
    .bind(status)
    .bind(vendor_id)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(payment).collect()
}
