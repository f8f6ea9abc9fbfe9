//! Webhook subscriptions, managed by operators (`lynx webhooks`) and tenant administrators
//! (`/api/webhooks`), every change audited; and the secrets that sign their deliveries.
//!
//! No secret is stored in the database. A subscription's secret is derived from the instance key
//! (`LYNX_WEBHOOK_KEY_FILE`, the same file on every instance) and the subscription's id, shown once
//! when it is created, and derived again by whichever instance signs a delivery. The subscription
//! `LYNX_WEBHOOK_URL` configures is signed with `LYNX_WEBHOOK_SECRET`.

use lynx_model::{
    ErrorCode, Refusal, TenantId,
    store::DeliveryFilter,
    vocab::RunStatus,
    webhook::{DeliveryRecord, ENV_WEBHOOK_ID, WebhookEventType, WebhookFormat, WebhookRecord, check_url, derived_secret},
};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde_json::json;

use crate::{audit, operations::SYSTEM_TENANT, services::Services};

/// The keys that sign deliveries.
#[derive(Default)]
pub struct WebhookSecrets {
    /// The instance key subscriptions' secrets derive from; `None` when not configured.
    key: Option<SecretSlice<u8>>,
    /// `LYNX_WEBHOOK_SECRET`, for the subscription `LYNX_WEBHOOK_URL` configures.
    env_secret: Option<SecretString>,
}

impl WebhookSecrets {
    pub fn new(key: Option<Vec<u8>>, env_secret: Option<SecretString>) -> Self {
        Self { key: key.map(SecretSlice::from), env_secret }
    }

    /// The `whsec_…` secret that signs a subscription's deliveries.
    pub fn secret_for(&self, webhook_id: &str) -> Result<String, Refusal> {
        if webhook_id == ENV_WEBHOOK_ID {
            return self.env_secret.as_ref().map(|s| s.expose_secret().to_string()).ok_or_else(|| no_secret("LYNX_WEBHOOK_SECRET is not set"));
        }
        let key = self.key.as_ref().ok_or_else(|| no_secret("no webhook key is configured"))?;
        Ok(derived_secret(key.expose_secret(), webhook_id))
    }
}

fn no_secret(why: &str) -> Refusal {
    Refusal::new(
        ErrorCode::NotConfigured,
        format!("Cannot sign webhook deliveries: {why}"),
        "Create a key with `lynx webhooks keygen --out FILE`, give every instance LYNX_WEBHOOK_KEY_FILE=FILE (and LYNX_WEBHOOK_SECRET for LYNX_WEBHOOK_URL), and restart.",
    )
}

/// What `add` asks for.
pub struct NewWebhook {
    /// `None`: every tenant (operators only).
    pub tenant: Option<TenantId>,
    pub url: String,
    pub format: WebhookFormat,
    /// Empty: every event type.
    pub event_types: Vec<WebhookEventType>,
}

/// A new random `whsec_…` secret (32 bytes), as `lynx webhooks keygen --secret` prints.
pub fn new_secret() -> String {
    use base64::Engine as _;
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()))
}

/// A new random instance key (32 bytes), as `lynx webhooks keygen --out FILE` writes it, hex.
pub fn new_instance_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Parses an instance key file's text: hex of at least 32 bytes.
pub fn parse_instance_key(text: &str) -> Result<Vec<u8>, &'static str> {
    match hex::decode(text.trim()) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        _ => Err("a webhook key file holds the hex of at least 32 random bytes (create one with `lynx webhooks keygen --out FILE`)"),
    }
}

/// Parses `--events` / `"event_types"`: names from `WebhookEventType`.
pub fn parse_event_types(names: &[String]) -> Result<Vec<WebhookEventType>, Refusal> {
    names
        .iter()
        .map(|n| {
            WebhookEventType::parse(n.trim()).ok_or_else(|| {
                let known: Vec<&str> = WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
                Refusal::invalid_input("event_types", format!("{n:?} is not an event type (known: {})", known.join(", ")))
            })
        })
        .collect()
}

/// The tenant whose audit chain records a change: the subscription's, or the system's for one to
/// every tenant.
fn audit_tenant(tenant: Option<&TenantId>) -> TenantId {
    tenant.cloned().unwrap_or_else(|| TenantId::parse(SYSTEM_TENANT).expect("a valid id"))
}

/// Creates a subscription; returns it and its signing secret, which is shown this once (none for a
/// Slack subscription: Slack messages are not signed).
pub async fn add(services: &Services, actor: &str, new: NewWebhook) -> Result<(WebhookRecord, Option<String>), Refusal> {
    check_url(&new.url).map_err(|why| Refusal::invalid_input("url", why))?;
    let webhook = WebhookRecord {
        webhook_id: format!("wh_{}", lynx_model::ids::record_id().simple()),
        tenant_id: new.tenant,
        url: new.url,
        format: new.format,
        event_types: new.event_types,
        created_at: services.clock.now(),
        created_by: actor.to_string(),
        removed_at: None,
    };
    let secret = match webhook.format {
        WebhookFormat::Standard => Some(services.webhooks.secret_for(&webhook.webhook_id)?),
        WebhookFormat::Slack => None,
    };
    services.store.insert_webhook(&webhook).await?;
    let tenant = audit_tenant(webhook.tenant_id.as_ref());
    let input = json!({"webhook_id": webhook.webhook_id, "url": webhook.url, "format": webhook.format, "event_types": webhook.event_types});
    audit::human_action(services, &tenant, actor, "lynx.webhooks.add", RunStatus::Succeeded, input.clone(), input, None).await?;
    Ok((webhook, secret))
}

pub async fn list(services: &Services, tenant: Option<&TenantId>) -> Result<Vec<WebhookRecord>, Refusal> {
    Ok(services.store.webhooks(tenant).await?)
}

/// Removes a subscription (a tenant its own only); its pending deliveries stop.
pub async fn remove(services: &Services, actor: &str, tenant: Option<&TenantId>, webhook_id: &str) -> Result<(), Refusal> {
    if !services.store.remove_webhook(tenant, webhook_id, services.clock.now()).await? {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("No webhook subscription {webhook_id:?}{}", tenant.map(|t| format!(" in tenant {t}")).unwrap_or_default()),
            "List the subscriptions with `lynx webhooks list` or GET /api/webhooks.",
        ));
    }
    let input = json!({"webhook_id": webhook_id});
    audit::human_action(services, &audit_tenant(tenant), actor, "lynx.webhooks.remove", RunStatus::Succeeded, input.clone(), input, None).await?;
    Ok(())
}

pub async fn deliveries(services: &Services, tenant: Option<&TenantId>, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, Refusal> {
    Ok(services.store.deliveries(tenant, filter).await?)
}

/// Sends a delivered or dead-lettered event again, with the same `webhook-id`.
pub async fn redeliver(services: &Services, actor: &str, tenant: Option<&TenantId>, event_id: &str, webhook_id: &str) -> Result<(), Refusal> {
    if !services.store.redeliver(tenant, event_id, webhook_id, services.clock.now()).await? {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("No delivery of event {event_id:?} to webhook {webhook_id:?}"),
            "List deliveries with `lynx webhooks deliveries` or GET /api/webhooks/deliveries.",
        ));
    }
    let input = json!({"event_id": event_id, "webhook_id": webhook_id});
    audit::human_action(services, &audit_tenant(tenant), actor, "lynx.webhooks.redeliver", RunStatus::Succeeded, input.clone(), input, None).await?;
    Ok(())
}
