//! Settings and read models on PostgreSQL; amounts are `NUMERIC`, read as exact decimals.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    store::{PaymentFilter, PaymentRecord, QueueCounts, StoreResult},
};
use sqlx::{PgPool, Postgres, QueryBuilder, Row, postgres::PgRow};

use crate::error::map;

pub(super) async fn setting(pool: &PgPool, key: &str) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT value FROM lynx_settings WHERE key = $1").bind(key).fetch_optional(pool).await.map_err(map)
}

pub(super) async fn put_setting(pool: &PgPool, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lynx_settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(key)
    .bind(value)
    .bind(at)
    .bind(by)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(())
}

pub(super) async fn queue_counts(pool: &PgPool, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts> {
    // Two spellings, so each can use its index: (tenant_id, status) for one tenant, (status) for all.
    let sql = match tenant {
        Some(_) => "SELECT \
           (SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = $1 AND status = 'SUBMITTED') AS pending, \
           (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND tenant_id = $1) AS queued, \
           (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < $2 AND tenant_id = $1) AS stuck",
        None => "SELECT \
           (SELECT COUNT(*) FROM lynx_drafts WHERE status = 'SUBMITTED' AND $1::text IS NULL) AS pending, \
           (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued') AS queued, \
           (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < $2) AS stuck",
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

pub(super) async fn count_drafts(pool: &PgPool, tenant: &TenantId, status: &str, draft_type: Option<&str>) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = $1 AND status = $2 AND ($3::text IS NULL OR draft_type = $3)")
        .bind(tenant.as_str())
        .bind(status)
        .bind(draft_type)
        .fetch_one(pool)
        .await
        .map_err(map)
}

pub(super) async fn active_workflow_count(pool: &PgPool, tenant: &TenantId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lynx_workflows WHERE tenant_id = $1 AND status = 'active'")
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await
        .map_err(map)
}

const PAYMENT_COLUMNS: &str =
    "payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at";

fn payment(r: &PgRow) -> StoreResult<PaymentRecord> {
    Ok(PaymentRecord {
        payment_id: r.try_get("payment_id").map_err(map)?,
        tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
        draft_id: r.try_get("draft_id").map_err(map)?,
        execution_id: r.try_get("execution_id").map_err(map)?,
        vendor_id: r.try_get("vendor_id").map_err(map)?,
        amount: r.try_get("amount").map_err(map)?,
        currency: r.try_get("currency").map_err(map)?,
        due_date: r.try_get("due_date").map_err(map)?,
        status: r.try_get("status").map_err(map)?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
    })
}

pub(super) async fn payments(pool: &PgPool, tenant: &TenantId, f: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = "));
    q.push_bind(tenant.as_str().to_string());
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

pub(super) async fn payments_in_status(pool: &PgPool, tenant: &TenantId, status: &str, vendor_id: Option<&str>) -> StoreResult<Vec<PaymentRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = $1 AND status = $2 AND ($3::text IS NULL OR vendor_id = $3)"
    )))
    .bind(tenant.as_str())
    .bind(status)
    .bind(vendor_id)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(payment).collect()
}
