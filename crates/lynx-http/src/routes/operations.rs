//! `/api/executions` and `/api/settlements`: what was executed, and the settlement queue an operator
//! moves along (`POST /api/settlements/{payment_id}` needs the Kernel's `settlement_manage`).

use std::collections::HashMap;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
};
use lynx_governance::{Authenticated, identity, operations};
use lynx_model::{
    ErrorCode, ExecutionId, PaymentId, Refusal,
    records::ExecutionFilter,
    vocab::{RunStatus, SettlementStatus},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{body, drafts::{cursor_of, parse_cursor}, query};
use crate::{AppState, error::ApiError};

/// `GET /api/executions?status=&draft_id=&tool_id=&limit=&cursor=`
pub async fn executions(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    query::known(&q, &["status", "draft_id", "tool_id", "limit", "cursor"])?;
    let status = query::param(&q, "status")
        .map(|s| RunStatus::parse(s).ok_or_else(|| Refusal::invalid_input("status", "must be STARTED, SUCCEEDED, FAILED or DENIED")))
        .transpose()?;
    let draft_id = query::param(&q, "draft_id")
        .map(|s| query::id("draft_id", s))
        .transpose()?;
    let limit = query::limit(&q, 50, 200)?;
    let before = query::param(&q, "cursor").map(parse_cursor).transpose()?;
    let filter = ExecutionFilter { status, draft_id, tool_id: query::tool_id(&q)?, before, limit };
    let rows = state.pipeline.services().store.executions(Some(who.tenant_id()), &filter).await?;
    let next_cursor = (rows.len() == limit as usize).then(|| rows.last().map(|e| cursor_of(e.created_at, e.execution_id))).flatten();
    Ok(Json(json!({"tenant_id": who.tenant_id(), "executions": rows, "next_cursor": next_cursor})))
}

/// `GET /api/executions/{id}`
pub async fn execution(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: ExecutionId = query::id("execution_id", &raw)?;
    let e = state
        .pipeline
        .services()
        .store
        .execution(Some(who.tenant_id()), id)
        .await
        ?
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("No execution {id} in tenant {}", who.tenant_id()), "List executions with GET /api/executions."))?;
    Ok(Json(json!(e)))
}

/// `GET /api/settlements?status=&limit=`
pub async fn settlements(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    query::known(&q, &["status", "limit"])?;
    let limit = query::limit(&q, 50, 500)?;
    let status = query::param(&q, "status")
        .map(|s| {
            SettlementStatus::parse(s)
                .ok_or_else(|| Refusal::invalid_input("status", "must be queued, processing, completed, failed or cancelled"))
        })
        .transpose()?;
    let rows = state
        .pipeline
        .services()
        .store
        .settlements(Some(who.tenant_id()), status, limit)
        .await
        ?;
    Ok(Json(json!({"tenant_id": who.tenant_id(), "settlements": rows})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettlementBody {
    status: String,
    note: Option<String>,
}

/// `POST /api/settlements/{payment_id}` with `{"status": "processing"|"completed"|"failed", "note"?}`
pub async fn mark_settlement(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let payment_id: PaymentId = query::id("payment_id", &raw)?;
    let body: SettlementBody = body::json(&bytes)?;
    let services = state.pipeline.services();
    identity::require_permission(
        services,
        &who,
        "settlement_manage",
        "settlement",
        "Settlements are moved by users whose role holds settlement_manage (for example finance_manager).",
    )
    .await?;
    let record = operations::mark_settlement(services, who.tenant_id(), payment_id, &body.status, who.user_id().as_str(), body.note).await?;
    Ok(Json(json!(record)))
}
