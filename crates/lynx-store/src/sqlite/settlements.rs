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
use rusqlite::{Connection, params};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::drafts::json as parse_json;
use super::row::{Columns, exec, query, ts};
use crate::error::{corrupt, map};

const SELECT: &str = "SELECT s.payment_id, s.tenant_id, s.status, s.provider, s.created_at, s.updated_at, s.metadata, \
    p.amount, p.currency, p.vendor_id, p.status AS payment_status \
    FROM settlement_intents s JOIN lynx_payments p ON p.payment_id = s.payment_id AND p.tenant_id = s.tenant_id";

fn from_row(r: &impl Columns) -> StoreResult<SettlementRecord> {
    Ok(SettlementRecord {
        payment_id: super::uuid(&r.text("payment_id")?)?,
        tenant_id: super::tenant(r.text("tenant_id")?)?,
        status: r.text("status")?,
        provider: r.text("provider")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        metadata: parse_json(&r.text("metadata")?)?,
        amount: r.text("amount")?.parse::<Decimal>().map_err(corrupt)?,
        currency: r.text("currency")?,
        vendor_id: r.text("vendor_id")?,
        payment_status: r.text("payment_status")?,
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

fn get_in(conn: &Connection, tenant: &TenantId, payment: Uuid) -> StoreResult<Option<SettlementRecord>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = ? AND s.payment_id = ?");
    Ok(query(conn, &sql, params![tenant.as_str(), payment.to_string()], |r| from_row(r))?.into_iter().next())
}

pub(super) fn set_status(
    conn: &Connection,
    tenant: &TenantId,
    payment: Uuid,
    to: &str,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<SettlementChange> {
    let Some(current) = get_in(conn, tenant, payment)? else {
        return Ok(SettlementChange::NotFound);
    };
    if !settlement_next(&current.status).contains(&to) {
        return Ok(SettlementChange::WrongStatus(current.status));
    }
    let entry = json!({"from": current.status, "to": to, "by": by, "at": at, "note": note});
    let (payment_text, at_text) = (payment.to_string(), ts(&at));
    exec(
        conn,
        "UPDATE settlement_intents SET status = ?, provider = 'manual', updated_at = ?, \
         metadata = json_set(metadata, '$.history', json_insert(COALESCE(json_extract(metadata, '$.history'), json('[]')), '$[#]', json(?))) \
         WHERE tenant_id = ? AND payment_id = ?",
        params![to, at_text, entry.to_string(), tenant.as_str(), payment_text],
    )?;
    let payment_status = match to {
        "completed" => Some("settled"),
        "failed" => Some("failed"),
        _ => None,
    };
    if let Some(ps) = payment_status {
        exec(
            conn,
            "UPDATE lynx_payments SET status = ?, updated_at = ? WHERE tenant_id = ? AND payment_id = ?",
            params![ps, at_text, tenant.as_str(), payment_text],
        )?;
    }
    let done = get_in(conn, tenant, payment)?.ok_or_else(|| corrupt("settlement vanished"))?;
    Ok(SettlementChange::Done(Box::new(done)))
}
