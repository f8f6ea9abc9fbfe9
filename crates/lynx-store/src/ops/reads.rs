//! Settings shared by every instance, and the read models over drafts, executions, payments and
//! workflows.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    draft::{DraftStatus, DraftType},
    money::Currency,
    params::IsoDate,
    store::{PaymentFilter, PaymentRecord, QueueCounts, StoreResult},
    vocab::PaymentStatus,
};

use crate::{
    db::{self, Db},
    error::corrupt,
    row::Row,
    sql::Query,
};

pub(crate) async fn setting(db: &mut dyn Db, key: &str) -> StoreResult<Option<String>> {
    db::text(db, Query::new("SELECT value FROM lynx_settings WHERE key = $1").bind(key)).await
}

pub(crate) async fn put_setting(db: &mut dyn Db, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    let q = Query::new(
        "INSERT INTO lynx_settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(key)
    .bind(value)
    .bind(at)
    .bind(by);
    db.execute(&q).await.map(drop)
}

pub(crate) async fn queue_counts(db: &mut dyn Db, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts> {
    // Two spellings, so each can use its index: (tenant_id, status) for one tenant, (status) for all.
    let q = match tenant {
        Some(t) => Query::new(
            "SELECT \
               (SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = $1 AND status = 'SUBMITTED') AS pending, \
               (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND tenant_id = $1) AS queued, \
               (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < $2 AND tenant_id = $1) AS stuck",
        )
        .bind(t),
        None => Query::new(
            "SELECT \
               (SELECT COUNT(*) FROM lynx_drafts WHERE status = 'SUBMITTED') AS pending, \
               (SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued') AS queued, \
               (SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED' AND created_at < $1) AS stuck",
        ),
    };
    let counts = db::fetch_one_as(db, q.bind(stuck_before), |mut r| {
        Ok(QueueCounts { pending_approvals: r.int("pending")?, queued_settlements: r.int("queued")?, stuck_executions: r.int("stuck")? })
    })
    .await?;
    Ok(counts.unwrap_or_default())
}

pub(crate) async fn count_drafts(db: &mut dyn Db, tenant: &TenantId, status: DraftStatus, draft_type: Option<DraftType>) -> StoreResult<i64> {
    let q = Query::new("SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = $1 AND status = $2 AND (CAST($3 AS TEXT) IS NULL OR draft_type = $3)")
        .bind(tenant)
        .bind(status)
        .bind(draft_type);
    db::count(db, q).await
}

pub(crate) async fn active_workflow_count(db: &mut dyn Db, tenant: &TenantId) -> StoreResult<i64> {
    db::count(db, Query::new("SELECT COUNT(*) FROM lynx_workflows WHERE tenant_id = $1 AND status = 'active'").bind(tenant)).await
}

const PAYMENT_COLUMNS: &str = "payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at";

fn payment(mut r: Row) -> StoreResult<PaymentRecord> {
    Ok(PaymentRecord {
        payment_id: r.id("payment_id")?,
        tenant_id: r.tenant("tenant_id")?,
        draft_id: r.id("draft_id")?,
        execution_id: r.id("execution_id")?,
        vendor_id: r.text("vendor_id")?,
        amount: r.decimal("amount")?,
        currency: Currency::parse(&r.text("currency")?).map_err(corrupt)?,
        due_date: IsoDate::parse(&r.text("due_date")?).map_err(corrupt)?,
        status: r.parsed("status", PaymentStatus::parse)?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) async fn payments(db: &mut dyn Db, tenant: &TenantId, f: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>> {
    let mut q = Query::new(format!("SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = $1")).bind(tenant);
    if let Some(v) = &f.vendor_id {
        q.push(" AND vendor_id = ").push_bind(v.as_str());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s);
    }
    if let Some(since) = f.since {
        q.push(" AND created_at >= ").push_bind(since);
    }
    q.push(" ORDER BY created_at DESC LIMIT ").push_bind(f.limit);
    db::fetch_all(db, q, payment).await
}

/// Every payment of a tenant in one status (for totals computed in exact decimal).
pub(crate) async fn payments_in_status(db: &mut dyn Db, tenant: &TenantId, status: PaymentStatus, vendor_id: Option<&str>) -> StoreResult<Vec<PaymentRecord>> {
    let q = Query::new(format!(
        "SELECT {PAYMENT_COLUMNS} FROM lynx_payments WHERE tenant_id = $1 AND status = $2 AND (CAST($3 AS TEXT) IS NULL OR vendor_id = $3)"
    ))
    .bind(tenant)
    .bind(status)
    .bind(vendor_id);
    db::fetch_all(db, q, payment).await
}
