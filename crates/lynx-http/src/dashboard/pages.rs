//! The dashboard's pages: overview (health and the runbook's monitoring), the approval queue, drafts,
//! executions, settlements, notifications and the audit trail — all of the signed-in user's tenant.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use lynx_governance::{approvals, draft_status, health, monitoring, webhooks};
use lynx_model::{
    DraftId, Refusal, Risk, RunId,
    draft::{DraftStatus, DraftType},
    payload::DraftPayload,
    records::{Decision, DraftFilter, DraftRecord, ExecutionFilter},
    store::{AuditFilter, DeliveryFilter},
    webhook::DeliveryStatus,
    vocab::{RunStatus, SettlementStatus},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    render::markdown,
    session::{SignedIn, csrf_refused, same, signed_in, to_login, to_login_then},
};
use crate::AppState;

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// What every signed-in page needs: the viewer, the current page and the queue size.
async fn base(state: &AppState, me: &SignedIn, page: &str) -> Map<String, Value> {
    let services = state.pipeline.services();
    let pending = services.store.count_drafts(&me.principal.tenant_id, DraftStatus::Submitted, None).await.unwrap_or(0);
    let mut ctx = Map::new();
    ctx.insert("session".into(), json!(me.viewer));
    ctx.insert("page".into(), json!(page));
    ctx.insert("pending".into(), json!(pending));
    ctx
}

fn refusal_json(r: &Refusal) -> Value {
    json!({"code": r.code, "message": r.message, "hint": r.hint})
}

fn failed(state: &AppState, ctx: Map<String, Value>, r: Refusal) -> Response {
    let mut ctx = ctx;
    ctx.insert("heading".into(), json!("Something went wrong"));
    ctx.insert("text".into(), json!(""));
    ctx.insert("error".into(), refusal_json(&r));
    state.ui.page(StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "message.html", ctx)
}

pub async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let services = state.pipeline.services();
    let mut ctx = base(&state, &me, "overview").await;
    let mut status = json!(health::status(services, state.pipeline.registry(), Some(&me.principal.tenant_id)).await);
    if let Some(runs) = status["last_runs"].as_array_mut() {
        for r in runs {
            if let Some(t) = r["started_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
                r["started_at"] = json!(time(t.with_timezone(&Utc)));
            }
        }
    }
    ctx.insert("status".into(), status);
    let anchor = lynx_governance::checkpoints::anchor_status(services.store.as_ref(), Some(&me.principal.tenant_id)).await.unwrap_or_default();
    ctx.insert(
        "anchor".into(),
        json!(anchor.first().map(|a| json!({
            "rows": a.rows, "checkpoint_size": a.checkpoint_size, "checkpoint_at": a.checkpoint_at.map(time),
            "verified_at": a.verified_at.map(time), "verified_checkpoint_size": a.verified_checkpoint_size,
        }))),
    );
    match monitoring::runbook_metrics(services, Some(&me.principal.tenant_id)).await {
        Ok(m) => {
            ctx.insert("metrics".into(), json!(m));
        }
        Err(r) => {
            ctx.insert("error".into(), refusal_json(&r));
        }
    }
    state.ui.page(StatusCode::OK, "overview.html", ctx)
}

/// What the drafts list, the queue and the draft page all show of a draft: what it is about (title,
/// amount, vendor), its risk and its decision deadline.
fn summary(d: &DraftRecord) -> Value {
    let payment = match &d.payload {
        DraftPayload::Payment(p) => Some(p),
        _ => None,
    };
    let due = d.decision_due_at.filter(|_| d.status == DraftStatus::Submitted);
    json!({
        "draft_id": d.draft_id, "draft_type": d.draft_type, "status": d.status, "risk_level": d.risk_level,
        "created_by": d.created_by, "created_at": time(d.created_at), "title": d.payload.title(),
        "amount": payment.map(|p| p.amount), "currency": payment.map(|p| p.currency.as_str()), "vendor_name": d.vendor_name(),
        "decision_due_at": due.map(time),
    })
}

/// A draft as the queue and the draft page show it to `viewer`: where it stands (the same account
/// the status tool gives agents), who decided, who else must, and whether the viewer may decide.
async fn draft_view(state: &AppState, d: &DraftRecord, viewer: &str) -> Value {
    let services = state.pipeline.services();
    let decisions = services.store.approvals(&d.tenant_id, d.draft_id).await.unwrap_or_default();
    let policies = services.kernel.policies(&d.tenant_id).await.unwrap_or_default();
    let standing = draft_status::state(d, &decisions, &policies, services.clock.now());
    let mine = decisions.iter().find(|a| a.approver_id == viewer);
    let missing = standing.approvals_required.saturating_sub(standing.approvals_recorded);
    let waiting_for = (d.status == DraftStatus::Submitted && missing > 0).then(|| {
        let roles = approvals::applicable_rule(&policies, d.draft_type, d.amount()).map(|r| r.required_role.join(", ")).unwrap_or_else(|| "approver".into());
        let mut not: Vec<&str> = vec![d.created_by.as_str()];
        not.extend(decisions.iter().map(|a| a.approver_id.as_str()));
        format!("{missing} more approval(s) needed from a user with role {roles}, other than {}.", not.join(", "))
    });
    let mut v = summary(d);
    v["vendor"] = json!(d.source_context.get("vendor"));
    v["recommended_approvers"] = json!(d.recommended_approvers);
    v["approvals"] = json!(standing.approvals_recorded);
    v["required_approvals"] = json!(standing.approvals_required);
    v["waiting_for"] = json!(waiting_for);
    v["expires_at"] = json!(standing.expires_at.map(time));
    v["viewer_decision"] = json!(mine.map(|a| json!({"decision": a.decision, "at": time(a.created_at)})));
    v["viewer_created"] = json!(d.created_by == viewer);
    v["viewer_may_decide"] = json!(d.status == DraftStatus::Submitted && d.created_by != viewer && mine.is_none());
    v["next_actions"] = json!(standing.next_actions);
    v["preview_html"] = json!(markdown(&d.preview_markdown));
    v
}

fn risk_of(s: &str) -> Option<Risk> {
    [Risk::Low, Risk::Medium, Risk::High].into_iter().find(|r| r.as_str() == s)
}

/// The approval queue: what waits for a decision, riskiest first and oldest first within a risk,
/// filtered by type and risk.
pub async fn approvals(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let mut ctx = base(&state, &me, "approvals").await;
    let draft_type = param(&q, "type").and_then(DraftType::parse);
    let risk = param(&q, "risk").and_then(risk_of);
    let filter = DraftFilter { status: Some(DraftStatus::Submitted), draft_type, limit: 200, ..Default::default() };
    let mut drafts = match state.pipeline.services().store.drafts(Some(&me.principal.tenant_id), &filter).await {
        Ok(d) => d,
        Err(e) => return failed(&state, ctx, Refusal::storage_unavailable(e)),
    };
    drafts.retain(|d| risk.is_none_or(|r| d.risk_level == r));
    drafts.sort_by_key(|d| (std::cmp::Reverse(d.risk_level), d.created_at, d.draft_id));
    let mut views = Vec::new();
    for d in &drafts {
        views.push(draft_view(&state, d, &me.viewer.user).await);
    }
    ctx.insert("drafts".into(), json!(views));
    ctx.insert("flash".into(), json!(done_message(&q)));
    ctx.insert("types".into(), json!(DraftType::ALL.map(|t| t.as_str())));
    ctx.insert("risks".into(), json!(["high", "medium", "low"]));
    ctx.insert("filter_type".into(), json!(draft_type.map(|t| t.as_str())));
    ctx.insert("filter_risk".into(), json!(risk.map(|r| r.as_str())));
    state.ui.page(StatusCode::OK, "approvals.html", ctx)
}

/// Fixed messages for `?done=…`, so nothing from the URL is echoed.
fn done_message(q: &HashMap<String, String>) -> Option<&'static str> {
    match param(q, "done")? {
        "approved" => Some("Your approval was recorded."),
        "rejected" => Some("The draft was rejected."),
        "redelivered" => Some("The delivery was queued again; it goes out within a few seconds."),
        _ => None,
    }
}

pub async fn drafts(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let mut ctx = base(&state, &me, "drafts").await;
    let status = param(&q, "status").and_then(DraftStatus::parse);
    let draft_type = param(&q, "type").and_then(DraftType::parse);
    let before = param(&q, "before").and_then(|c| crate::routes::drafts::parse_cursor(c).ok());
    let filter = DraftFilter { status, draft_type, before, limit: 50 };
    let rows = match state.pipeline.services().store.drafts(Some(&me.principal.tenant_id), &filter).await {
        Ok(d) => d,
        Err(e) => return failed(&state, ctx, Refusal::storage_unavailable(e)),
    };
    let next = (rows.len() == 50).then(|| rows.last()).flatten().map(|d| {
        let mut url = format!("/drafts?before={}", crate::routes::drafts::cursor_of(d.created_at, d.draft_id));
        if let Some(s) = status {
            url.push_str(&format!("&status={s}"));
        }
        if let Some(t) = draft_type {
            url.push_str(&format!("&type={t}"));
        }
        url
    });
    let list: Vec<Value> = rows.iter().map(summary).collect();
    ctx.insert("drafts".into(), json!(list));
    ctx.insert("next".into(), json!(next));
    ctx.insert("statuses".into(), json!(DraftStatus::ALL.map(|s| s.as_str())));
    ctx.insert("types".into(), json!(DraftType::ALL.map(|t| t.as_str())));
    ctx.insert("filter_status".into(), json!(status.map(|s| s.as_str())));
    ctx.insert("filter_type".into(), json!(draft_type.map(|t| t.as_str())));
    state.ui.page(StatusCode::OK, "drafts.html", ctx)
}

async fn draft_page(state: &AppState, me: &SignedIn, raw: &str, flash: Option<&str>, error: Option<Refusal>) -> Response {
    let mut ctx = base(state, me, "drafts").await;
    let services = state.pipeline.services();
    let tenant = &me.principal.tenant_id;
    let Ok(id) = DraftId::parse(raw) else {
        return failed(state, ctx, Refusal::invalid_input("draft_id", "must be a UUID"));
    };
    let draft = match services.store.draft(Some(tenant), id).await {
        Ok(Some(d)) => d,
        Ok(None) => return failed(state, ctx, lynx_governance::execution::draft_not_found(id, tenant)),
        Err(e) => return failed(state, ctx, Refusal::storage_unavailable(e)),
    };
    let decisions = services.store.approvals(tenant, id).await.unwrap_or_default();
    let executions = services.store.executions(Some(tenant), &ExecutionFilter { draft_id: Some(id), limit: 50, ..Default::default() }).await.unwrap_or_default();
    ctx.insert("d".into(), draft_view(state, &draft, &me.viewer.user).await);
    ctx.insert(
        "approvals".into(),
        json!(decisions.iter().map(|a| json!({"approver_id": a.approver_id, "decision": a.decision, "created_at": time(a.created_at), "notes": a.notes})).collect::<Vec<_>>()),
    );
    ctx.insert(
        "executions".into(),
        json!(executions.iter().map(|e| json!({"execution_id": e.execution_id, "tool_id": e.tool_id, "status": e.status, "created_at": time(e.created_at)})).collect::<Vec<_>>()),
    );
    ctx.insert("payload".into(), json!(serde_json::to_string_pretty(&draft.payload).unwrap_or_default()));
    ctx.insert("flash".into(), json!(flash));
    let status = match &error {
        Some(r) => StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        None => StatusCode::OK,
    };
    ctx.insert("error".into(), json!(error.as_ref().map(refusal_json)));
    state.ui.page(status, "draft.html", ctx)
}

/// `/drafts/{id}`: the link notifications carry; signed out, it comes back here after sign-in.
pub async fn draft(State(state): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else {
        return match DraftId::parse(&raw) {
            Ok(id) => to_login_then(&format!("/drafts/{id}")),
            Err(_) => to_login(),
        };
    };
    draft_page(&state, &me, &raw, done_message(&q), None).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    reason: String,
}

async fn decide(state: AppState, headers: HeaderMap, raw: String, form: DecisionForm, decision: Decision) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    if !same(&me.session.csrf_token, &form.csrf) {
        return csrf_refused(&state);
    }
    let Ok(id) = DraftId::parse(&raw) else {
        return draft_page(&state, &me, &raw, None, None).await;
    };
    let note = match decision {
        Decision::Approved => Some(form.notes),
        Decision::Rejected => Some(form.reason),
    };
    match approvals::decide(state.pipeline.services(), &me.principal, id, decision, note).await {
        Ok(_) => {
            let done = if decision == Decision::Approved { "approved" } else { "rejected" };
            Redirect::to(&format!("/drafts/{id}?done={done}")).into_response()
        }
        Err(r) => draft_page(&state, &me, &raw, None, Some(r)).await,
    }
}

pub async fn approve(State(state): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, Form(form): Form<DecisionForm>) -> Response {
    decide(state, headers, raw, form, Decision::Approved).await
}

pub async fn reject(State(state): State<AppState>, headers: HeaderMap, Path(raw): Path<String>, Form(form): Form<DecisionForm>) -> Response {
    decide(state, headers, raw, form, Decision::Rejected).await
}

pub async fn executions(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let mut ctx = base(&state, &me, "executions").await;
    let status = param(&q, "status").and_then(RunStatus::parse);
    let before = param(&q, "before").and_then(|c| crate::routes::drafts::parse_cursor(c).ok());
    let filter = ExecutionFilter { status, before, limit: 50, ..Default::default() };
    let rows = match state.pipeline.services().store.executions(Some(&me.principal.tenant_id), &filter).await {
        Ok(r) => r,
        Err(e) => return failed(&state, ctx, Refusal::storage_unavailable(e)),
    };
    let next = (rows.len() == 50).then(|| rows.last()).flatten().map(|e| {
        let s = status.map(|s| format!("&status={s}")).unwrap_or_default();
        format!("/executions?before={}{s}", crate::routes::drafts::cursor_of(e.created_at, e.execution_id))
    });
    let list: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({"execution_id": e.execution_id, "tool_id": e.tool_id, "status": e.status, "draft_id": e.draft_id, "created_at": time(e.created_at),
                   "error_message": e.error_message, "rolled_back_at": e.rolled_back_at, "rollback_instructions": e.rollback_instructions})
        })
        .collect();
    ctx.insert("executions".into(), json!(list));
    ctx.insert("next".into(), json!(next));
    ctx.insert("statuses".into(), json!(RunStatus::ALL.map(|s| s.as_str())));
    ctx.insert("filter_status".into(), json!(status.map(|s| s.as_str())));
    state.ui.page(StatusCode::OK, "executions.html", ctx)
}

pub async fn settlements(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let mut ctx = base(&state, &me, "settlements").await;
    let status = param(&q, "status").and_then(SettlementStatus::parse);
    let rows = match state.pipeline.services().store.settlements(Some(&me.principal.tenant_id), status, 200).await {
        Ok(r) => r,
        Err(e) => return failed(&state, ctx, Refusal::storage_unavailable(e)),
    };
    let list: Vec<Value> = rows
        .iter()
        .map(|s| json!({"payment_id": s.payment_id, "amount": s.amount, "currency": s.currency, "vendor_id": s.vendor_id, "status": s.status, "provider": s.provider, "payment_status": s.payment_status, "created_at": time(s.created_at)}))
        .collect();
    ctx.insert("settlements".into(), json!(list));
    ctx.insert("statuses".into(), json!(SettlementStatus::ALL.map(SettlementStatus::as_str)));
    ctx.insert("filter_status".into(), json!(status));
    state.ui.page(StatusCode::OK, "settlements.html", ctx)
}

pub async fn audit(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    let mut ctx = base(&state, &me, "audit").await;
    let run = param(&q, "run_id").and_then(|r| RunId::parse(r).ok());
    let status = param(&q, "status").and_then(RunStatus::parse);
    let tool = param(&q, "tool_id").map(|t| t.chars().take(200).collect::<String>());
    let before = param(&q, "before").and_then(|b| b.parse::<i64>().ok());
    let filter = AuditFilter { run_id: run, tool_id: tool.clone(), status, since: None, before_seq: before, limit: 100 };
    let rows = match state.pipeline.services().store.audit_events(&me.principal.tenant_id, &filter).await {
        Ok(r) => r,
        Err(e) => return failed(&state, ctx, Refusal::storage_unavailable(e)),
    };
    let next = (rows.len() == 100).then(|| rows.last()).flatten().map(|e| {
        let mut url = format!("/audit?before={}", e.seq);
        if let Some(r) = run {
            url.push_str(&format!("&run_id={r}"));
        }
        if let Some(s) = status {
            url.push_str(&format!("&status={s}"));
        }
        url
    });
    let list: Vec<Value> = rows
        .iter()
        .map(|e| {
            let ev = &e.event;
            json!({"seq": e.seq, "created_at": time(ev.created_at), "event_type": ev.event_type.as_str(), "status": ev.status, "tool_id": ev.tool_id,
                   "actor_id": ev.actor_id, "run_id": ev.run_id, "error_message": ev.error_message})
        })
        .collect();
    ctx.insert("events".into(), json!(list));
    ctx.insert("next".into(), json!(next));
    ctx.insert("statuses".into(), json!(RunStatus::ALL.map(|s| s.as_str())));
    ctx.insert("filter_status".into(), json!(status.map(|s| s.as_str())));
    ctx.insert("filter_run".into(), json!(run.map(|r| r.to_string())));
    ctx.insert("filter_tool".into(), json!(tool));
    state.ui.page(StatusCode::OK, "audit.html", ctx)
}

/// Notifications: the tenant's webhook subscriptions and how their deliveries went, for users whose
/// role holds `webhook_manage`; a dead-lettered delivery can be sent again from here.
pub async fn webhooks(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    webhooks_page(&state, &me, param(&q, "status").and_then(DeliveryStatus::parse), done_message(&q), None).await
}

async fn webhooks_page(state: &AppState, me: &SignedIn, status: Option<DeliveryStatus>, flash: Option<&str>, error: Option<Refusal>) -> Response {
    let mut ctx = base(state, me, "webhooks").await;
    let services = state.pipeline.services();
    let tenant = &me.principal.tenant_id;
    if let Err(r) = may_manage_webhooks(state, me).await {
        return failed(state, ctx, r);
    }
    let subscriptions = match webhooks::list(services, Some(tenant)).await {
        Ok(list) => list,
        Err(r) => return failed(state, ctx, r),
    };
    let filter = DeliveryFilter { status, webhook_id: None, limit: 100 };
    let deliveries = match webhooks::deliveries(services, Some(tenant), &filter).await {
        Ok(list) => list,
        Err(r) => return failed(state, ctx, r),
    };
    let subscriptions: Vec<Value> = subscriptions
        .iter()
        .map(|w| {
            let events = if w.event_types.is_empty() { "all".to_string() } else { w.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ") };
            json!({"webhook_id": w.webhook_id, "url": w.url, "format": w.format.as_str(), "events": events, "every_tenant": w.tenant_id.is_none(), "created_at": time(w.created_at), "created_by": w.created_by})
        })
        .collect();
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({"event_id": d.event_id, "webhook_id": d.webhook_id, "event_type": d.event_type.as_str(), "status": d.status.as_str(),
                   "failing": d.status == DeliveryStatus::Pending && d.attempts > 0, "attempts": d.attempts,
                   "next_attempt_at": (d.status == DeliveryStatus::Pending).then(|| time(d.next_attempt_at)),
                   "last": d.last_error.clone().or_else(|| d.last_status.map(|s| format!("HTTP {s}"))), "created_at": time(d.created_at)})
        })
        .collect();
    ctx.insert("subscriptions".into(), json!(subscriptions));
    ctx.insert("deliveries".into(), json!(deliveries));
    ctx.insert("statuses".into(), json!(["pending", "delivered", "dead"]));
    ctx.insert("filter_status".into(), json!(status.map(|s| s.as_str())));
    ctx.insert("flash".into(), json!(flash));
    ctx.insert("error".into(), json!(error.as_ref().map(refusal_json)));
    state.ui.page(StatusCode::OK, "webhooks.html", ctx)
}

async fn may_manage_webhooks(state: &AppState, me: &SignedIn) -> Result<(), Refusal> {
    lynx_governance::identity::require_permission(
        state.pipeline.services(),
        &me.session.who,
        "webhook_manage",
        "webhook",
        "Webhook subscriptions are managed by users whose role holds webhook_manage (for example admin).",
    )
    .await
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    #[serde(default)]
    csrf: String,
    event_id: String,
    webhook_id: String,
}

pub async fn redeliver(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<RedeliverForm>) -> Response {
    let Some(me) = signed_in(&state, &headers).await else { return to_login() };
    if !same(&me.session.csrf_token, &form.csrf) {
        return csrf_refused(&state);
    }
    let done = async {
        may_manage_webhooks(&state, &me).await?;
        webhooks::redeliver(state.pipeline.services(), me.viewer.user.as_str(), Some(&me.principal.tenant_id), &form.event_id, &form.webhook_id).await
    };
    match done.await {
        Ok(()) => Redirect::to("/webhooks?done=redelivered").into_response(),
        Err(r) => webhooks_page(&state, &me, None, None, Some(r)).await,
    }
}
