//! `settlement_intents` joined with their payments, and the operator's status changes
//! (`queued → processing → completed | failed`), each recorded in the intent's metadata history.

use chrono::{DateTime, Utc};
use lynx_model::{
    PaymentId, TenantId,
    money::Currency,
    records::{SettlementChange, SettlementRecord},
    store::StoreResult,
    vocab::{PaymentStatus, SettlementStatus},
    webhook::WebhookEventType,
};
use serde_json::{Value, json};

use crate::{
    db::{self, Db},
    error::corrupt,
    ops::webhooks,
    row::Row,
    sql::Query,
};

const SELECT: &str = "SELECT s.payment_id, s.tenant_id, s.status, s.provider, s.created_at, s.updated_at, s.metadata, \
    p.amount, p.currency, p.vendor_id, p.status AS payment_status \
    FROM settlement_intents s JOIN lynx_payments p ON p.payment_id = s.payment_id AND p.tenant_id = s.tenant_id";

fn settlement(mut r: Row) -> StoreResult<SettlementRecord> {
    Ok(SettlementRecord {
        payment_id: r.id("payment_id")?,
        tenant_id: r.tenant("tenant_id")?,
        status: r.parsed("status", SettlementStatus::parse)?,
        provider: r.text("provider")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        metadata: r.json("metadata")?,
        amount: r.decimal("amount")?,
        currency: Currency::parse(&r.text("currency")?).map_err(corrupt)?,
        vendor_id: r.text("vendor_id")?,
        payment_status: r.parsed("payment_status", PaymentStatus::parse)?,
    })
}

pub(crate) async fn list(db: &mut dyn Db, tenant: Option<&TenantId>, status: Option<SettlementStatus>, limit: u32) -> StoreResult<Vec<SettlementRecord>> {
    let q = Query::new(format!(
        "{SELECT} WHERE (CAST($1 AS TEXT) IS NULL OR s.tenant_id = $1) AND (CAST($2 AS TEXT) IS NULL OR s.status = $2) \
         ORDER BY s.created_at DESC LIMIT $3"
    ))
    .bind(tenant)
    .bind(status.map(SettlementStatus::as_str))
    .bind(limit);
    db::fetch_all(db, q, settlement).await
}

async fn get_in(db: &mut dyn Db, tenant: &TenantId, payment: PaymentId, lock: bool) -> StoreResult<Option<SettlementRecord>> {
    let lock = if lock { "/*pg  FOR UPDATE OF s*/" } else { "" };
    let q = Query::new(format!("{SELECT} WHERE s.tenant_id = $1 AND s.payment_id = $2{lock}")).bind(tenant).bind(payment);
    db::fetch_one_as(db, q, settlement).await
}

/// Moves an intent along `SettlementStatus::next` (provider `manual`), and its payment along with it
/// (`SettlementStatus::payment_status`), in the same transaction. The intent is locked: its history is read, extended here
/// and written back whole.
pub(crate) async fn set_status(
    db: &mut dyn Db,
    tenant: &TenantId,
    payment: PaymentId,
    to: SettlementStatus,
    by: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<SettlementChange> {
    let Some(current) = get_in(db, tenant, payment, true).await? else {
        return Ok(SettlementChange::NotFound);
    };
    if !current.status.next().contains(&to) {
        return Ok(SettlementChange::WrongStatus(current.status));
    }
    let mut metadata = current.metadata.clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    let entry = json!({"from": current.status, "to": to, "by": by, "at": at, "note": note});
    match metadata.get_mut("history") {
        Some(Value::Array(history)) => history.push(entry),
        _ => metadata["history"] = json!([entry]),
    }
    let q = Query::new("UPDATE settlement_intents SET status = $1, provider = 'manual', updated_at = $2, metadata = $3 WHERE tenant_id = $4 AND payment_id = $5")
        .bind(to)
        .bind(at)
        .bind(metadata)
        .bind(tenant)
        .bind(payment);
    db.execute(&q).await?;
    if let Some(ps) = to.payment_status() {
        let q = Query::new("UPDATE lynx_payments SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND payment_id = $4").bind(ps).bind(at).bind(tenant).bind(payment);
        db.execute(&q).await?;
    }
    let done = get_in(db, tenant, payment, false).await?.ok_or_else(|| corrupt("settlement vanished"))?;
    let data = json!({
        "tenant_id": tenant, "payment_id": payment, "from": current.status, "status": done.status,
        "payment_status": done.payment_status, "amount": done.amount, "currency": done.currency, "vendor_id": done.vendor_id,
        "updated_by": by, "note": note,
    });
    webhooks::publish(db, tenant, WebhookEventType::SettlementUpdated, data, at).await?;
    Ok(SettlementChange::Done(Box::new(done)))
}
