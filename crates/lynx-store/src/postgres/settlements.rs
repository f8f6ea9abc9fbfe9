//! `settlement_intents` on PostgreSQL: status changes lock the intent and append to its history.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    records::{SettlementChange, SettlementRecord},
    store::{StoreResult, settlement_next},
};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row, postgres::PgRow, types::Json};
use uuid::Uuid;

use crate::error::{corrupt, map};

const SELECT: &str = "SELECT s.payment_id, s.tenant_id, s.status, s.provider, s.created_at, s.updated_at, s.metadata, \
    p.amount, p.currency, p.vendor_id, p.status AS payment_status \
    FROM settlement_intents s JOIN lynx_payments p ON p.payment_id = s.payment_id AND p.tenant_id = s.tenant_id";

fn from_row(r: &PgRow) -> StoreResult<SettlementRecord> {
    Ok(SettlementRecord {
        payment_id: r.try_get("payment_id").map_err(map)?,
        tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
        status: r.try_get("status").map_err(map)?,
        provider: r.try_get("provider").map_err(map)?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
        metadata: r.try_get::<Json<Value>, _>("metadata").map(|j| j.0).map_err(map)?,
        amount: r.try_get("amount").map_err(map)?,
        currency: r.try_get("currency").map_err(map)?,
        vendor_id: r.try_get("vendor_id").map_err(map)?,
        payment_status: r.try_get("payment_status").map_err(map)?,
    })
}

pub(super) async fn list(pool: &PgPool, tenant: Option<&TenantId>, status: Option<&str>, limit: u32) -> StoreResult<Vec<SettlementRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text IS NULL OR s.tenant_id = $1) AND ($2::text IS NULL OR s.status = $2) ORDER BY s.created_at DESC LIMIT $3"
    )))
    .bind(tenant.map(|t| t.as_str().to_string()))
    .bind(status)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

async fn get_in(conn: &mut PgConnection, tenant: &TenantId, payment: Uuid, lock: bool) -> StoreResult<Option<SettlementRecord>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.payment_id = $2{}", if lock { " FOR UPDATE OF s" } else { "" });
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).bind(payment).fetch_optional(&mut *conn).await.map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn set_status(
    pool: &PgPool,
    tenant: &TenantId,
    payment: Uuid,
    to: &str,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<SettlementChange> {
    let mut tx = super::tenant_tx(pool, tenant).await?;
    let Some(current) = get_in(&mut tx, tenant, payment, true).await? else {
        return Ok(SettlementChange::NotFound);
    };
    if !settlement_next(&current.status).contains(&to) {
        return Ok(SettlementChange::WrongStatus(current.status));
    }
    let entry = json!({"from": current.status, "to": to, "by": by, "at": at, "note": note});
    sqlx::query(
        "UPDATE settlement_intents SET status = $1, provider = 'manual', updated_at = $2, \
         metadata = jsonb_set(metadata, '{history}', COALESCE(metadata->'history', '[]'::jsonb) || jsonb_build_array($3::jsonb)) \
         WHERE tenant_id = $4 AND payment_id = $5",
    )
    .bind(to)
    .bind(at)
    .bind(Json(&entry))
    .bind(tenant.as_str())
    .bind(payment)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    let payment_status = match to {
        "completed" => Some("settled"),
        "failed" => Some("failed"),
        _ => None,
    };
    if let Some(ps) = payment_status {
        sqlx::query("UPDATE lynx_payments SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND payment_id = $4")
            .bind(ps)
            .bind(at)
            .bind(tenant.as_str())
            .bind(payment)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    let done = get_in(&mut tx, tenant, payment, false).await?.ok_or_else(|| corrupt("settlement vanished"))?;
    tx.commit().await.map_err(map)?;
    Ok(SettlementChange::Done(Box::new(done)))
}
