//! Notifications: the events Lynx tells subscribers about, the subscriptions and their deliveries, and
//! the Standard Webhooks signature (https://www.standardwebhooks.com) every delivery carries, so
//! receivers verify it with the official `standardwebhooks` libraries.
//!
//! An event is written to the outbox in the same transaction as the transition it reports; a delivery
//! row per subscription is then claimed by one instance, sent, retried with backoff, and dead-lettered
//! past its maximum age. The event id is the `webhook-id` of every attempt, so receivers deduplicate.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{TenantId, draft::DraftStatus, payload::DraftPayload, records::DraftRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub enum WebhookEventType {
    #[serde(rename = "draft.submitted")]
    DraftSubmitted,
    /// An approval was recorded; the payload says how many of how many (`approvals_recorded` of
    /// `approvals_required`) and whether the draft is now `APPROVED`.
    #[serde(rename = "draft.approved")]
    DraftApproved,
    #[serde(rename = "draft.rejected")]
    DraftRejected,
    #[serde(rename = "draft.expired")]
    DraftExpired,
    #[serde(rename = "draft.cancelled")]
    DraftCancelled,
    #[serde(rename = "execution.succeeded")]
    ExecutionSucceeded,
    #[serde(rename = "execution.failed")]
    ExecutionFailed,
    #[serde(rename = "settlement.updated")]
    SettlementUpdated,
    /// A tenant's audit tree was checkpointed: the signed note, for a SIEM or a write-once bucket.
    #[serde(rename = "audit.checkpoint")]
    AuditCheckpoint,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 9] = [
        Self::DraftSubmitted,
        Self::DraftApproved,
        Self::DraftRejected,
        Self::DraftExpired,
        Self::DraftCancelled,
        Self::ExecutionSucceeded,
        Self::ExecutionFailed,
        Self::SettlementUpdated,
        Self::AuditCheckpoint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DraftSubmitted => "draft.submitted",
            Self::DraftApproved => "draft.approved",
            Self::DraftRejected => "draft.rejected",
            Self::DraftExpired => "draft.expired",
            Self::DraftCancelled => "draft.cancelled",
            Self::ExecutionSucceeded => "execution.succeeded",
            Self::ExecutionFailed => "execution.failed",
            Self::SettlementUpdated => "settlement.updated",
            Self::AuditCheckpoint => "audit.checkpoint",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a subscription receives: a signed Standard Webhooks JSON event, or a Slack-compatible
/// message for a Slack incoming webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    Standard,
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Slack => "slack",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Standard, Self::Slack].into_iter().find(|f| f.as_str() == s)
    }
}

/// The id of the subscription `LYNX_WEBHOOK_URL` configures (every tenant; its secret is
/// `LYNX_WEBHOOK_SECRET`, never stored).
pub const ENV_WEBHOOK_ID: &str = "wh_env";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRecord {
    pub webhook_id: String,
    /// `None`: every tenant.
    pub tenant_id: Option<TenantId>,
    pub url: String,
    pub format: WebhookFormat,
    /// The event types it receives; empty: all of them.
    pub event_types: Vec<WebhookEventType>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub removed_at: Option<DateTime<Utc>>,
}

impl WebhookRecord {
    /// Whether this subscription receives events of the type: the types it names, or (none named)
    /// all of them — except that a Slack channel gets audit checkpoints only when it asked for them.
    pub fn wants(&self, event_type: WebhookEventType) -> bool {
        if self.event_types.is_empty() {
            return !(self.format == WebhookFormat::Slack && event_type == WebhookEventType::AuditCheckpoint);
        }
        self.event_types.contains(&event_type)
    }
}

/// An event in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEvent {
    /// `msg_…`: the `webhook-id` of every delivery attempt.
    pub event_id: String,
    pub tenant_id: TenantId,
    pub event_type: WebhookEventType,
    /// The signed body: `{type, timestamp, data}`.
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

impl OutboxEvent {
    /// A new event about `data`, of the tenant, now.
    pub fn new(tenant_id: &TenantId, event_type: WebhookEventType, data: Value, at: DateTime<Utc>) -> Self {
        let event_id = format!("msg_{}", crate::ids::record_id().simple());
        let payload = json!({"type": event_type.as_str(), "timestamp": at, "data": data});
        Self { event_id, tenant_id: tenant_id.clone(), event_type, payload, created_at: at }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its first attempt, or for a retry.
    Pending,
    Delivered,
    /// Given up after its maximum age: dead-lettered; `lynx webhooks redeliver` sends it again.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead].into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub webhook_id: String,
    pub tenant_id: TenantId,
    pub event_type: WebhookEventType,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A delivery claimed for sending: where, in which form, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub delivery: DeliveryRecord,
    pub url: String,
    pub format: WebhookFormat,
    pub payload: Value,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered { status: u16 },
    /// Try again at `retry_at`, or (`retry_at: None`) give up: dead-letter.
    Failed { status: Option<u16>, error: String, retry_at: Option<DateTime<Utc>> },
}

/// Delivery counts, for `/metrics` and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DeliveryCounts {
    /// Waiting for their first attempt.
    pub queued: i64,
    /// Attempted and failed at least once, still being retried.
    pub failing: i64,
    pub dead: i64,
}

/// What the event about a draft says: the draft, its approvals, what it is about, where to decide.
pub fn draft_data(draft: &DraftRecord, approvals: Option<(u32, u32)>) -> Value {
    let mut data = json!({
        "tenant_id": draft.tenant_id,
        "draft_id": draft.draft_id,
        "draft_type": draft.draft_type,
        "status": draft.status,
        "risk_level": draft.risk_level,
        "created_by": draft.created_by,
        "dashboard_path": format!("/drafts/{}", draft.draft_id),
    });
    if let Some((recorded, required)) = approvals {
        data["approvals_recorded"] = json!(recorded);
        data["approvals_required"] = json!(required);
    }
    if let Some(due) = draft.decision_due_at.filter(|_| draft.status == DraftStatus::Submitted) {
        data["decision_due_at"] = json!(due);
    }
    if let Some(reason) = &draft.rejection_reason {
        data["rejection_reason"] = json!(reason);
    }
    if let DraftPayload::Payment(p) = &draft.payload {
        data["amount"] = json!(p.amount);
        data["currency"] = json!(p.currency);
        data["vendor_id"] = json!(p.vendor_id);
        data["vendor_name"] = json!(draft.vendor_name());
    }
    if let Some(title) = draft.payload.title() {
        data["title"] = json!(title);
    }
    data
}

type HmacSha256 = Hmac<Sha256>;

/// A subscription's signing secret, derived from the instance key and the subscription's id: nothing
/// secret is stored in the database, and every instance holding the key signs alike. `whsec_…`.
pub fn derived_secret(instance_key: &[u8], webhook_id: &str) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(instance_key).expect("HMAC takes a key of any length");
    mac.update(b"lynx webhook signing secret\n");
    mac.update(webhook_id.as_bytes());
    format!("whsec_{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The bytes of a `whsec_…` secret.
pub fn secret_bytes(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(bytes) if bytes.len() >= 16 => Ok(bytes),
        _ => Err("a webhook secret is `whsec_` followed by the base64 of at least 16 random bytes".to_string()),
    }
}

/// A URL a delivery can be sent to: http or https, a host, no spaces or control characters, at most
/// 2000 characters.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && url.len() <= 2000 && !url.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err("must be an http:// or https:// URL of at most 2000 characters"),
    }
}

/// The `webhook-signature` header of one attempt: `v1,` and the base64 HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}` under the secret's bytes.
pub fn signature(secret: &[u8], webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification: its secret, id, timestamp and body give its
    /// signature.
    #[test]
    fn signatures_match_the_specification() {
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn derived_secrets_differ_per_subscription_and_key() {
        let a = derived_secret(b"key-1", "wh_1");
        assert!(a.starts_with("whsec_") && secret_bytes(&a).unwrap().len() == 32);
        assert_eq!(a, derived_secret(b"key-1", "wh_1"));
        assert_ne!(a, derived_secret(b"key-1", "wh_2"));
        assert_ne!(a, derived_secret(b"key-2", "wh_1"));
        for t in WebhookEventType::ALL {
            assert_eq!(WebhookEventType::parse(t.as_str()), Some(t));
        }
    }
}
