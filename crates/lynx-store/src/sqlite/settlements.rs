//! `settlement_intents` joined with their payments, and the operator's status changes
//! (`queued → processing → completed | failed`), each recorded in the intent's metadata history.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    records::{SettlementChange, SettlementRecord},
    store::{StoreResult, settlement_next},
};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Row, SqliteConnection, SqlitePool, sqlite::SqliteRow};
use uuid::Uuid;

use super::drafts::json as parse_json;
use crate::error::{corrupt, map};

const SELECT: &str = "SELECT s.payment_id, s.tenant_id, s.status, s.provider, s.created_at, s.updated_at, s.metadata, \
    p.amount, p.currency, p.vendor_id, p.status AS payment_status \
    FROM settlement_intents s JOIN lynx_payments p ON p.payment_id = s.payment_id AND p.tenant_id = s.tenant_id";

fn from_row(r: &SqliteRow) -> StoreResult<SettlementRecord> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map);
    Ok(SettlementRecord {
        payment_id: super::uuid(&s("payment_id")?)?,
        tenant_id: super::tenant(s("tenant_id")?)?,
        status: s("status")?,
        provider: s("provider")?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
        metadata: parse_json(&s("metadata")?)?,
        amount: s("amount")?.parse::<Decimal>().map_err(corrupt)?,
        currency: s("currency")?,
        vendor_id: s("vendor_id")?,
        payment_status: s("payment_status")?,
    })
}

pub(super) async fn list(pool: &SqlitePool, tenant: Option<&TenantId>, status: Option<&str>, limit: u32) -> StoreResult<Vec<SettlementRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE (?1 IS NULL OR s.tenant_id = ?1) AND (?2 IS NULL OR s.status = ?2) ORDER BY s.created_at DESC LIMIT ?3"
    )))
    .bind(tenant.map(|t| t.as_str().to_string()))
    .bind(status)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

async fn get_in(conn: &mut SqliteConnection, tenant: &TenantId, payment: Uuid) -> StoreResult<Option<SettlementRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE s.tenant_id = ? AND s.payment_id = ?")))
        .bind(tenant.as_str())
        .bind(payment.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn set_status(
    tx: &mut SqliteConnection,
    tenant: &TenantId,
    payment: Uuid,
    to: &str,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<SettlementChange> {
    let Some(current) = get_in(&mut *tx, tenant, payment).await? else {
        return Ok(SettlementChange::NotFound);
    };
    if !settlement_next(&current.status).contains(&to) {
        return Ok(SettlementChange::WrongStatus(current.status));
    }
    let entry = json!({"from": current.status, "to": to, "by": by, "at": at, "note": note});
    sqlx::query(
        "UPDATE settlement_intents SET status = ?, provider = 'manual', updated_at = ?, \
         metadata = json_set(metadata, '$.history', json_insert(COALESCE(json_extract(metadata, '$.history'), json('[]')), '$[#]', json(?))) \
         WHERE tenant_id = ? AND payment_id = ?",
    )
    .bind(to)
    .bind(at)
    .bind(entry.to_string())
    .bind(tenant.as_str())
    .bind(payment.to_string())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    let payment_status = match to {
        "completed" => Some("settled"),
        "failed" => Some("failed"),
        _ => None,
    };
    if let Some(ps) = payment_status {
        sqlx::query("UPDATE lynx_payments SET status = ?, updated_at = ? WHERE tenant_id = ? AND payment_id = ?")
            .bind(ps)
            .bind(at)
            .bind(tenant.as_str())
            .bind(payment.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    let done = get_in(&mut *tx, tenant, payment).await?.ok_or_else(|| corrupt("settlement vanished"))?;
    Ok(SettlementChange::Done(Box::new(done)))
}
