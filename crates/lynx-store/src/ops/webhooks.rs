//! The outbox and its subscriptions: `lynx_webhooks`, `lynx_webhook_events`, `lynx_webhook_deliveries`.
//! `publish` is called by the transitions inside their own transaction, so an event exists exactly when
//! its transition committed; the delivery worker then claims due deliveries — `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, so several instances never take the same one — and records each attempt.

use chrono::{DateTime, Utc};
use lynx_model::{
    DraftId, TenantId,
    records::DraftRecord,
    store::{DeliveryFilter, StoreResult},
    webhook::{
        Attempt, DeliveryCounts, DeliveryRecord, DeliveryStatus, DueDelivery, ENV_WEBHOOK_ID, OutboxEvent, WebhookEventType,
        WebhookFormat, WebhookRecord, draft_data,
    },
};
use serde_json::Value;

use crate::{
    db::{self, Db},
    error::corrupt,
    ops::drafts,
    row::Row,
    sql::Query,
};

const COLUMNS: &str = "webhook_id, tenant_id, url, format, event_types, created_at, created_by, removed_at";

fn webhook(mut r: Row) -> StoreResult<WebhookRecord> {
    let tenant_id = r.opt_text("tenant_id")?.map(|t| TenantId::parse(t).map_err(corrupt)).transpose()?;
    let types: Vec<String> = serde_json::from_value(r.json("event_types")?).map_err(corrupt)?;
    Ok(WebhookRecord {
        webhook_id: r.text("webhook_id")?,
        tenant_id,
        url: r.text("url")?,
        format: r.parsed("format", WebhookFormat::parse)?,
        event_types: types.iter().map(|t| WebhookEventType::parse(t).ok_or_else(|| corrupt(format!("unknown event type {t:?}")))).collect::<StoreResult<_>>()?,
        created_at: r.time("created_at")?,
        created_by: r.text("created_by")?,
        removed_at: r.opt_time("removed_at")?,
    })
}

/// The live subscriptions a tenant's event of this type goes to.
async fn subscribers(db: &mut dyn Db, tenant: &TenantId, event_type: WebhookEventType) -> StoreResult<Vec<String>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_webhooks WHERE removed_at IS NULL AND (tenant_id IS NULL OR tenant_id = $1)")).bind(tenant);
    let all = db::fetch_all(db, q, webhook).await?;
    Ok(all.into_iter().filter(|w| w.wants(event_type)).map(|w| w.webhook_id).collect())
}

/// Whether anyone may be listening to a tenant's events, as a transition knows it when it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Not known: publishing looks the subscriptions up.
    Unknown,
    /// No live subscription covers the tenant: publishing reads and writes nothing.
    Nobody,
}

/// A `RETURNING` column for a statement that changes one of a tenant's rows in `table`: how many live
/// subscriptions cover that tenant (`audience` reads it). A transition learns whether anyone listens
/// from a statement it runs anyway, instead of from a look-up of its own: one round trip fewer per
/// transition while a tenant has no subscription, which is the usual case.
pub(crate) fn audience_column(table: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM lynx_webhooks w WHERE w.removed_at IS NULL AND (w.tenant_id IS NULL OR w.tenant_id = {table}.tenant_id)) AS audience"
    )
}

/// What `audience_column` says, taken out of the row.
pub(crate) fn audience(row: &mut Row) -> StoreResult<Audience> {
    Ok(if row.int("audience")? == 0 { Audience::Nobody } else { Audience::Unknown })
}

/// The draft an event is about: at hand, or to be read (only when someone subscribed).
pub(crate) enum About<'a> {
    Draft(&'a DraftRecord),
    Id(DraftId),
}

/// Writes an event about a draft — `draft_data` of the draft as it now is, its approvals, and `extra`
/// fields — with a pending delivery per subscriber, in the caller's transaction. Without subscribers
/// nothing is read or written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish_about(
    db: &mut dyn Db,
    tenant: &TenantId,
    audience: Audience,
    event_type: WebhookEventType,
    about: About<'_>,
    approvals: Option<(u32, u32)>,
    extra: Value,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if audience == Audience::Nobody {
        return Ok(());
    }
    let subscribers = subscribers(db, tenant, event_type).await?;
    if subscribers.is_empty() {
        return Ok(());
    }
    let read;
    let draft = match about {
        About::Draft(d) => d,
        About::Id(id) => {
            read = drafts::get(db, Some(tenant), id).await?.ok_or_else(|| corrupt("the event's draft vanished"))?;
            &read
        }
    };
    let mut data = draft_data(draft, approvals);
    if let (Value::Object(data), Value::Object(extra)) = (&mut data, extra) {
        data.extend(extra);
    }
    write(db, &subscribers, tenant, event_type, data, at).await
}

/// Writes an event with `data` (not about one draft: a settlement) and its deliveries, in the caller's
/// transaction.
pub(crate) async fn publish(db: &mut dyn Db, tenant: &TenantId, event_type: WebhookEventType, data: Value, at: DateTime<Utc>) -> StoreResult<()> {
    let subscribers = subscribers(db, tenant, event_type).await?;
    write(db, &subscribers, tenant, event_type, data, at).await
}

async fn write(db: &mut dyn Db, subscribers: &[String], tenant: &TenantId, event_type: WebhookEventType, data: Value, at: DateTime<Utc>) -> StoreResult<()> {
    if subscribers.is_empty() {
        return Ok(());
    }
    let event = OutboxEvent::new(tenant, event_type, data, at);
    let q = Query::new("INSERT INTO lynx_webhook_events (event_id, tenant_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(event.event_id.as_str())
        .bind(tenant)
        .bind(event_type.as_str())
        .bind(&event.payload)
        .bind(at);
    db.execute(&q).await?;
    for webhook_id in subscribers {
        let q = Query::new(
            "INSERT INTO lynx_webhook_deliveries (event_id, webhook_id, tenant_id, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
        )
        .bind(event.event_id.as_str())
        .bind(webhook_id.as_str())
        .bind(tenant)
        .bind(at);
        db.execute(&q).await?;
    }
    Ok(())
}

pub(crate) async fn insert(db: &mut dyn Db, w: &WebhookRecord) -> StoreResult<()> {
    let types: Vec<&str> = w.event_types.iter().map(|t| t.as_str()).collect();
    let q = Query::new(format!("INSERT INTO lynx_webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"))
        .bind(w.webhook_id.as_str())
        .bind(w.tenant_id.as_ref())
        .bind(w.url.as_str())
        .bind(w.format.as_str())
        .bind(serde_json::json!(types))
        .bind(w.created_at)
        .bind(w.created_by.as_str());
    db.execute(&q).await.map(drop)
}

pub(crate) async fn list(db: &mut dyn Db, tenant: Option<&TenantId>) -> StoreResult<Vec<WebhookRecord>> {
    let q = match tenant {
        Some(t) => Query::new(format!(
            "SELECT {COLUMNS} FROM lynx_webhooks WHERE removed_at IS NULL AND (tenant_id IS NULL OR tenant_id = $1) ORDER BY created_at, webhook_id"
        ))
        .bind(t),
        None => Query::new(format!("SELECT {COLUMNS} FROM lynx_webhooks WHERE removed_at IS NULL ORDER BY created_at, webhook_id")),
    };
    db::fetch_all(db, q, webhook).await
}

/// A tenant removes its own subscriptions only (a subscription to every tenant is the operator's).
pub(crate) async fn remove(db: &mut dyn Db, tenant: Option<&TenantId>, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let q = Query::new("UPDATE lynx_webhooks SET removed_at = $1 WHERE webhook_id = $2 AND removed_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR tenant_id = $3)")
        .bind(at)
        .bind(webhook_id)
        .bind(tenant);
    Ok(db.execute(&q).await? == 1)
}

pub(crate) async fn set_env(db: &mut dyn Db, url: Option<&str>, format: WebhookFormat, at: DateTime<Utc>) -> StoreResult<()> {
    let q = match url {
        Some(url) => Query::new(
            "INSERT INTO lynx_webhooks (webhook_id, tenant_id, url, format, event_types, created_at, created_by, removed_at) \
             VALUES ($1, NULL, $2, $3, $4, $5, 'LYNX_WEBHOOK_URL', NULL) \
             ON CONFLICT (webhook_id) DO UPDATE SET url = excluded.url, format = excluded.format, removed_at = NULL",
        )
        .bind(ENV_WEBHOOK_ID)
        .bind(url)
        .bind(format.as_str())
        .bind(serde_json::json!([]))
        .bind(at),
        None => Query::new("UPDATE lynx_webhooks SET removed_at = $1 WHERE webhook_id = $2 AND removed_at IS NULL").bind(at).bind(ENV_WEBHOOK_ID),
    };
    db.execute(&q).await.map(drop)
}

const DELIVERY_COLUMNS: &str = "d.event_id, d.webhook_id, d.tenant_id, e.event_type, d.status, d.attempts, d.next_attempt_at, d.last_status, \
    d.last_error, d.delivered_at, d.created_at";

fn delivery(r: &mut Row) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        event_id: r.text("event_id")?,
        webhook_id: r.text("webhook_id")?,
        tenant_id: r.tenant("tenant_id")?,
        event_type: r.parsed("event_type", WebhookEventType::parse)?,
        status: r.parsed("status", DeliveryStatus::parse)?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        last_status: r.opt_int("last_status")?,
        last_error: r.opt_text("last_error")?,
        delivered_at: r.opt_time("delivered_at")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) async fn deliveries(db: &mut dyn Db, tenant: Option<&TenantId>, f: &DeliveryFilter) -> StoreResult<Vec<DeliveryRecord>> {
    let mut q = Query::new(format!(
        "SELECT {DELIVERY_COLUMNS} FROM lynx_webhook_deliveries d JOIN lynx_webhook_events e ON e.event_id = d.event_id WHERE 1 = 1"
    ));
    if let Some(t) = tenant {
        q.push(" AND d.tenant_id = ").push_bind(t);
    }
    if let Some(s) = f.status {
        q.push(" AND d.status = ").push_bind(s.as_str());
    }
    if let Some(w) = &f.webhook_id {
        q.push(" AND d.webhook_id = ").push_bind(w.as_str());
    }
    q.push(" ORDER BY d.created_at DESC, d.event_id DESC LIMIT ").push_bind(f.limit);
    db::fetch_all(db, q, |mut r| delivery(&mut r)).await
}

pub(crate) async fn any_due(db: &mut dyn Db, now: DateTime<Utc>) -> StoreResult<bool> {
    let q = Query::new(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM lynx_webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $1) AND webhook_id IN (SELECT webhook_id FROM lynx_webhooks WHERE removed_at IS NULL) \
         LIMIT 1) AS due",
    )
    .bind(now);
    Ok(db::count(db, q).await? > 0)
}

/// Takes the due deliveries for this instance until `lease_until` (never those of a removed
/// subscription: they stop). The inner SELECT skips rows another
/// instance's claim has locked (PostgreSQL); the outer WHERE re-checks the lease, so a row claimed
/// meanwhile is not taken twice. On SQLite the writer's transaction is the lock.
pub(crate) async fn claim(db: &mut dyn Db, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DueDelivery>> {
    let q = Query::new(
        "UPDATE lynx_webhook_deliveries SET claimed_until = $1 \
         WHERE status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
         AND (event_id, webhook_id) IN (SELECT event_id, webhook_id FROM lynx_webhook_deliveries \
           WHERE status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
           AND webhook_id IN (SELECT webhook_id FROM lynx_webhooks WHERE removed_at IS NULL) \
           ORDER BY created_at, event_id LIMIT $3/*pg  FOR UPDATE SKIP LOCKED*/) \
         RETURNING event_id, webhook_id",
    )
    .bind(lease_until)
    .bind(now)
    .bind(limit);
    let claimed = db::fetch_all(db, q, |mut r| Ok((r.text("event_id")?, r.text("webhook_id")?))).await?;
    let mut due = Vec::with_capacity(claimed.len());
    for (event_id, webhook_id) in claimed {
        let q = Query::new(format!(
            "SELECT {DELIVERY_COLUMNS}, e.payload, w.url, w.format FROM lynx_webhook_deliveries d \
             JOIN lynx_webhook_events e ON e.event_id = d.event_id JOIN lynx_webhooks w ON w.webhook_id = d.webhook_id \
             WHERE d.event_id = $1 AND d.webhook_id = $2"
        ))
        .bind(event_id.as_str())
        .bind(webhook_id.as_str());
        let found = db::fetch_one_as(db, q, |mut r| {
            Ok(DueDelivery { delivery: delivery(&mut r)?, payload: r.json("payload")?, url: r.text("url")?, format: r.parsed("format", WebhookFormat::parse)? })
        })
        .await?;
        due.extend(found);
    }
    Ok(due)
}

pub(crate) async fn record_attempt(db: &mut dyn Db, event_id: &str, webhook_id: &str, attempt: &Attempt, at: DateTime<Utc>) -> StoreResult<()> {
    let q = match attempt {
        Attempt::Delivered { status } => Query::new(
            "UPDATE lynx_webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = $1, last_error = NULL, \
             delivered_at = $2, claimed_until = NULL WHERE event_id = $3 AND webhook_id = $4",
        )
        .bind(i64::from(*status))
        .bind(at),
        Attempt::Failed { status, error, retry_at } => Query::new(
            "UPDATE lynx_webhook_deliveries SET status = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
             next_attempt_at = $4, claimed_until = NULL WHERE event_id = $5 AND webhook_id = $6",
        )
        .bind(if retry_at.is_some() { "pending" } else { "dead" })
        .bind(status.map(i64::from))
        .bind(error.as_str())
        .bind(retry_at.unwrap_or(at)),
    };
    db.execute(&q.bind(event_id).bind(webhook_id)).await.map(drop)
}

pub(crate) async fn release(db: &mut dyn Db, deliveries: &[(String, String)], due_at: DateTime<Utc>) -> StoreResult<()> {
    for (event_id, webhook_id) in deliveries {
        let q = Query::new(
            "UPDATE lynx_webhook_deliveries SET claimed_until = NULL, next_attempt_at = $1 \
             WHERE event_id = $2 AND webhook_id = $3 AND status = 'pending'",
        )
        .bind(due_at)
        .bind(event_id.as_str())
        .bind(webhook_id.as_str());
        db.execute(&q).await?;
    }
    Ok(())
}

pub(crate) async fn redeliver(db: &mut dyn Db, tenant: Option<&TenantId>, event_id: &str, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let q = Query::new(
        "UPDATE lynx_webhook_deliveries SET status = 'pending', next_attempt_at = $1, claimed_until = NULL \
         WHERE event_id = $2 AND webhook_id = $3 AND (CAST($4 AS TEXT) IS NULL OR tenant_id = $4) \
         AND webhook_id IN (SELECT webhook_id FROM lynx_webhooks WHERE removed_at IS NULL)",
    )
    .bind(at)
    .bind(event_id)
    .bind(webhook_id)
    .bind(tenant);
    Ok(db.execute(&q).await? == 1)
}

pub(crate) async fn counts(db: &mut dyn Db) -> StoreResult<DeliveryCounts> {
    // A removed subscription's pending deliveries will never be sent: they are not counted as waiting.
    let q = Query::new(
        "SELECT \
           (SELECT COUNT(*) FROM lynx_webhook_deliveries WHERE status = 'pending' AND attempts = 0 AND webhook_id IN (SELECT webhook_id FROM lynx_webhooks WHERE removed_at IS NULL)) AS queued, \
           (SELECT COUNT(*) FROM lynx_webhook_deliveries WHERE status = 'pending' AND attempts > 0 AND webhook_id IN (SELECT webhook_id FROM lynx_webhooks WHERE removed_at IS NULL)) AS failing, \
           (SELECT COUNT(*) FROM lynx_webhook_deliveries WHERE status = 'dead') AS dead",
    );
    let counts = db::fetch_one_as(db, q, |mut r| Ok(DeliveryCounts { queued: r.int("queued")?, failing: r.int("failing")?, dead: r.int("dead")? })).await?;
    Ok(counts.unwrap_or_default())
}
