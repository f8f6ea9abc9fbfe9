//! `/api/webhooks`: a tenant's notification subscriptions and their deliveries, managed by users whose
//! role holds the Kernel's `webhook_manage`. A tenant sees and changes its own subscriptions only (it
//! sees, but cannot remove, an operator's subscription to every tenant); the secret is in `POST`'s
//! answer only.

use std::collections::HashMap;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use lynx_governance::{
    Authenticated, identity,
    webhooks::{self, NewWebhook},
};
use lynx_model::{
    Refusal,
    store::DeliveryFilter,
    webhook::{DeliveryStatus, WebhookFormat},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{body, query};
use crate::{AppState, error::ApiError};

async fn allowed(state: &AppState, who: &Authenticated) -> Result<(), Refusal> {
    identity::require_permission(
        state.pipeline.services(),
        who,
        "webhook_manage",
        "webhook",
        "Webhook subscriptions are managed by users whose role holds webhook_manage (for example admin).",
    )
    .await
}

fn actor(who: &Authenticated) -> String {
    who.user_id().to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    url: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    event_types: Vec<String>,
}

/// `GET /api/webhooks`
pub async fn list(State(state): State<AppState>, Extension(who): Extension<Authenticated>) -> Result<Json<Value>, ApiError> {
    allowed(&state, &who).await?;
    let list = webhooks::list(state.pipeline.services(), Some(who.tenant_id())).await?;
    Ok(Json(json!({"tenant_id": who.tenant_id(), "webhooks": list})))
}

/// `POST /api/webhooks` with `{"url", "format"?: "standard"|"slack", "event_types"?: [...]}`; answers
/// `201` with the subscription and its `secret`, shown this once (`null` for Slack: not signed).
pub async fn add(State(state): State<AppState>, Extension(who): Extension<Authenticated>, bytes: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    allowed(&state, &who).await?;
    let body: AddBody = body::json(&bytes)?;
    let format = match body.format.as_deref() {
        None => WebhookFormat::Standard,
        Some(f) => WebhookFormat::parse(f).ok_or_else(|| Refusal::invalid_input("format", "must be standard or slack"))?,
    };
    let event_types = webhooks::parse_event_types(&body.event_types)?;
    let new = NewWebhook { tenant: Some(who.tenant_id().clone()), url: body.url, format, event_types };
    let (webhook, secret) = webhooks::add(state.pipeline.services(), &actor(&who), new).await?;
    let mut answer = json!(webhook);
    answer["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `DELETE /api/webhooks/{webhook_id}`
pub async fn remove(State(state): State<AppState>, Extension(who): Extension<Authenticated>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    allowed(&state, &who).await?;
    webhooks::remove(state.pipeline.services(), &actor(&who), Some(who.tenant_id()), &id).await?;
    Ok(Json(json!({"webhook_id": id, "removed": true})))
}

/// `GET /api/webhooks/deliveries?status=&webhook_id=&limit=`
pub async fn deliveries(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    allowed(&state, &who).await?;
    query::known(&q, &["status", "webhook_id", "limit"])?;
    let status = query::param(&q, "status")
        .map(|s| DeliveryStatus::parse(s).ok_or_else(|| Refusal::invalid_input("status", "must be pending, delivered or dead")))
        .transpose()?;
    let webhook_id = query::param(&q, "webhook_id")
        .map(|id| match id.strip_prefix("wh_").is_some_and(|rest| !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
            true => Ok(id.to_string()),
            false => Err(Refusal::invalid_input("webhook_id", "must be a subscription id such as wh_0192… (GET /api/webhooks lists them)")),
        })
        .transpose()?;
    let filter = DeliveryFilter { status, webhook_id, limit: query::limit(&q, 50, 500)? };
    let list = webhooks::deliveries(state.pipeline.services(), Some(who.tenant_id()), &filter).await?;
    Ok(Json(json!({"tenant_id": who.tenant_id(), "deliveries": list})))
}

/// `POST /api/webhooks/deliveries/{event_id}/{webhook_id}/redeliver`
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path((event_id, webhook_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    allowed(&state, &who).await?;
    webhooks::redeliver(state.pipeline.services(), &actor(&who), Some(who.tenant_id()), &event_id, &webhook_id).await?;
    Ok(Json(json!({"event_id": event_id, "webhook_id": webhook_id, "status": "pending"})))
}
