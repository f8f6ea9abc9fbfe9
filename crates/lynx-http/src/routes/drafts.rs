//! `/api/drafts`: list and show the caller's tenant's drafts, and the human decisions — approve,
//! reject, cancel — through the same rules as every other surface (`lynx_governance::approvals`).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
};
use chrono::{DateTime, Utc};
use lynx_governance::{Authenticated, approvals, identity};
use lynx_model::{
    DraftId,
    Principal, Refusal,
    draft::{DraftStatus, DraftType},
    records::{Decision, DraftFilter, DraftRecord, ExecutionFilter},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::{body, query};
use crate::{AppState, error::ApiError};

async fn principal(state: &AppState, who: &Authenticated) -> Result<Principal, Refusal> {
    identity::principal(state.pipeline.services(), who).await
}

fn draft_id(raw: &str) -> Result<DraftId, Refusal> {
    query::id("draft_id", raw)
}

/// A page's cursor: the last row's time and id.
pub fn cursor_of(at: DateTime<Utc>, id: impl std::fmt::Display) -> String {
    format!("{}_{id}", at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub fn parse_cursor<T: From<uuid::Uuid>>(raw: &str) -> Result<(DateTime<Utc>, T), Refusal> {
    let bad = || Refusal::invalid_input("cursor", "must be the next_cursor of a previous page");
    let (at, id) = raw.split_once('_').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?.with_timezone(&Utc);
    Ok((at, uuid::Uuid::parse_str(id).map(T::from).map_err(|_| bad())?))
}

/// `GET /api/drafts?status=&type=&limit=&cursor=`
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    query::known(&q, &["status", "type", "limit", "cursor"])?;
    let status = query::param(&q, "status")
        .map(|s| DraftStatus::parse(s).ok_or_else(|| Refusal::invalid_input("status", "must be a draft status such as SUBMITTED")))
        .transpose()?;
    let draft_type = query::param(&q, "type")
        .map(|s| DraftType::parse(s).ok_or_else(|| Refusal::invalid_input("type", "must be docs, workflow or vpm_payment")))
        .transpose()?;
    let limit = query::limit(&q, 50, 200)?;
    let before = query::param(&q, "cursor").map(parse_cursor).transpose()?;
    let filter = DraftFilter { status, draft_type, before, limit };
    let drafts = state.pipeline.services().store.drafts(Some(who.tenant_id()), &filter).await?;
    let next_cursor = (drafts.len() == limit as usize).then(|| drafts.last().map(|d| cursor_of(d.created_at, d.draft_id))).flatten();
    Ok(Json(json!({"tenant_id": who.tenant_id(), "drafts": drafts, "next_cursor": next_cursor})))
}

/// One draft with its decisions and executions.
pub async fn view(state: &AppState, draft: &DraftRecord) -> Result<Value, Refusal> {
    let store = &state.pipeline.services().store;
    let approvals = store.approvals(&draft.tenant_id, draft.draft_id).await?;
    let filter = ExecutionFilter { draft_id: Some(draft.draft_id), limit: 100, ..Default::default() };
    let executions = store.executions(Some(&draft.tenant_id), &filter).await?;
    let mut v = serde_json::to_value(draft).unwrap_or_default();
    v["approvals"] = json!(approvals);
    v["executions"] = json!(executions);
    Ok(v)
}

/// `GET /api/drafts/{id}`
pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = draft_id(&raw)?;
    let draft = state
        .pipeline
        .services()
        .store
        .draft(Some(who.tenant_id()), id)
        .await
        ?
        .ok_or_else(|| lynx_governance::execution::draft_not_found(id, who.tenant_id()))?;
    Ok(Json(view(&state, &draft).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
}

/// `POST /api/drafts/{id}/approve` with `{"notes"?}`
pub async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = draft_id(&raw)?;
    let body: ApproveBody = body::json(&bytes)?;
    let who = principal(&state, &who).await?;
    let result = approvals::decide(state.pipeline.services(), &who, id, Decision::Approved, body.notes).await?;
    Ok(Json(json!(result)))
}

/// `POST /api/drafts/{id}/reject` with `{"reason"}`
pub async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = draft_id(&raw)?;
    let body: RejectBody = body::json(&bytes)?;
    let who = principal(&state, &who).await?;
    let result = approvals::decide(state.pipeline.services(), &who, id, Decision::Rejected, Some(body.reason)).await?;
    Ok(Json(json!(result)))
}

/// `POST /api/drafts/{id}/cancel` with `{"reason"?}`
pub async fn cancel(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Path(raw): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = draft_id(&raw)?;
    let body: CancelBody = body::json(&bytes)?;
    let who = principal(&state, &who).await?;
    let draft = approvals::cancel(state.pipeline.services(), &who, id, body.reason).await?;
    Ok(Json(json!({"draft": draft})))
}
