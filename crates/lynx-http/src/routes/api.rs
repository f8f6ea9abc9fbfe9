//! The JSON API: status, the tool registry and the audit trail, each scoped to the caller's tenant.

use std::collections::HashMap;

use axum::{
    Extension, Json,
    extract::{Query, State},
};
use lynx_governance::{Authenticated, health};
use lynx_model::{
    ErrorCode, Refusal, RunId,
    params::Since,
    store::AuditFilter,
    vocab::RunStatus,
};
use serde_json::{Value, json};

use super::query;
use crate::{AppState, error::ApiError};

pub async fn not_found() -> ApiError {
    ApiError(Refusal::new(ErrorCode::NotFound, "No such API route", "See the README for the routes under /api."))
}

/// `GET /api/status`: the operator status, with the caller's tenant's last runs and queues.
pub async fn status(State(state): State<AppState>, Extension(who): Extension<Authenticated>) -> Json<Value> {
    let p = &state.pipeline;
    let report = health::status(p.services(), p.registry(), Some(who.tenant_id())).await;
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    body["tenant_id"] = json!(who.tenant_id());
    body["healthy"] = json!(report.healthy());
    Json(body)
}

/// `GET /api/tools`: the registry with schemas, annotations, layers and risks.
pub async fn tools(State(state): State<AppState>) -> Json<Value> {
    let registry = state.pipeline.registry();
    Json(json!({
        "tools": registry.definitions(),
        "total": registry.len(),
        "version_hash": registry.version_hash(),
    }))
}


/// `GET /api/audit/events?run_id&tool_id&status&since&limit&cursor`: the caller's tenant's events,
/// newest first; `next_cursor` fetches the next page.
pub async fn audit_events(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    query::known(&q, &["run_id", "tool_id", "status", "since", "limit", "cursor"])?;
    let run_id = query::param(&q, "run_id")
        .map(|v| v.parse::<uuid::Uuid>().map(RunId).map_err(|_| Refusal::invalid_input("run_id", "must be a UUID")))
        .transpose()?;
    let status = query::param(&q, "status")
        .map(|v| RunStatus::parse(v).ok_or_else(|| Refusal::invalid_input("status", "must be STARTED, SUCCEEDED, FAILED or DENIED")))
        .transpose()?;
    let since = query::param(&q, "since").map(|v| Since::parse(v).map_err(|e| Refusal::invalid_input("since", e))).transpose()?;
    let limit = query::limit(&q, 50, 500)?;
    let before_seq = query::param(&q, "cursor")
        .map(|v| v.parse::<i64>().map_err(|_| Refusal::invalid_input("cursor", "must be the next_cursor of a previous page")))
        .transpose()?;
    let filter = AuditFilter {
        run_id,
        tool_id: query::tool_id(&q)?,
        status,
        since: since.map(|s| s.0),
        before_seq,
        limit,
    };
    let services = state.pipeline.services();
    let events = services
        .store
        .audit_events(who.tenant_id(), &filter)
        .await
        ?;
    let next_cursor = (events.len() == limit as usize).then(|| events.last().map(|e| e.seq)).flatten();
    let events: Vec<Value> = events.iter().map(lynx_governance::audit::event_json).collect();
    Ok(Json(json!({"tenant_id": who.tenant_id(), "events": events, "next_cursor": next_cursor})))
}
