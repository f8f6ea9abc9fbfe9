//! The Kernel HTTP contract (KERNEL.md), served over any `Kernel` — `lynx kernel serve` serves a Kernel
//! file through it. It is the reference for anyone implementing the contract and how Lynx's Kernel
//! client is tested end to end.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use lynx_model::{
    TenantId, UserId,
    kernel::{Kernel, KernelError, PermissionRequest},
};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone)]
struct KernelState {
    kernel: Arc<dyn Kernel>,
    api_key: Option<String>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message.into()}}))).into_response()
}

fn kernel_error(e: KernelError) -> Response {
    match e {
        KernelError::NotFound(m) => error(StatusCode::NOT_FOUND, "NOT_FOUND", m),
        KernelError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", m),
    }
}

fn answer<T: serde::Serialize>(r: Result<T, KernelError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => kernel_error(e),
    }
}

/// The path's tenant, or the handler's answer. (The error is a whole `Response`, as handlers return: it
/// is built only for a bad path, so its size costs nothing worth boxing it for.)
#[allow(clippy::result_large_err)]
fn tenant(raw: &str) -> Result<TenantId, Response> {
    TenantId::parse(raw).map_err(|e| error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("tenant {raw:?} is not known to the Kernel ({e})")))
}

/// Bearer key check (when the server has a key) and `X-Tenant-Id` consistency with the path.
async fn guard(State(state): State<KernelState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let presented = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(key.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a valid Kernel API key is required (Authorization: Bearer <KERNEL_API_KEY>)");
        }
    }
    let header_tenant = request.headers().get("x-tenant-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let path_tenant = request.uri().path().strip_prefix("/tenants/").and_then(|p| p.split('/').next()).map(str::to_string);
    if let (Some(h), Some(p)) = (header_tenant, path_tenant)
        && h != p
    {
        return error(StatusCode::FORBIDDEN, "TENANT_MISMATCH", format!("X-Tenant-Id {h:?} does not match the tenant in the path {p:?}"));
    }
    next.run(request).await
}

async fn health(State(s): State<KernelState>) -> Response {
    answer(s.kernel.health().await)
}

async fn get_tenant(State(s): State<KernelState>, Path(t): Path<String>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.tenant(&t).await),
        Err(r) => r,
    }
}

async fn get_user(State(s): State<KernelState>, Path((t, u)): Path<(String, String)>) -> Response {
    let t = match tenant(&t) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match UserId::parse(u.as_str()) {
        Ok(u) => answer(s.kernel.user(&t, &u).await),
        Err(_) => error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("user {u:?} is not a user of tenant {t}")),
    }
}

async fn check_permission(State(s): State<KernelState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<PermissionRequest>(&body) {
        Ok(req) => answer(s.kernel.check_permission(&req).await),
        Err(e) => error(StatusCode::BAD_REQUEST, "INVALID_INPUT", format!("expected {{user_id, tenant_id, action, resource_type}}: {e}")),
    }
}

async fn policies(State(s): State<KernelState>, Path(t): Path<String>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.policies(&t).await),
        Err(r) => r,
    }
}

async fn vendors(State(s): State<KernelState>, Path(t): Path<String>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.vendors(&t).await),
        Err(r) => r,
    }
}

async fn vendor(State(s): State<KernelState>, Path((t, v)): Path<(String, String)>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.vendor(&t, &v).await),
        Err(r) => r,
    }
}

async fn documents(State(s): State<KernelState>, Path(t): Path<String>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.documents(&t).await),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct PeriodQuery {
    period: Option<String>,
}

async fn finance(State(s): State<KernelState>, Path(t): Path<String>, Query(q): Query<PeriodQuery>) -> Response {
    match tenant(&t) {
        Ok(t) => answer(s.kernel.finance_summary(&t, q.period.as_deref().unwrap_or("current_month")).await),
        Err(r) => r,
    }
}

/// The entity types of the contract, their JSON schema and a description.
fn entity(entity_type: &str) -> Option<(Value, &'static str)> {
    use lynx_model::kernel::*;
    let schema = |s: schemars::Schema| s.to_value();
    let g = || schemars::SchemaGenerator::default();
    Some(match entity_type {
        "tenant" => (schema(g().into_root_schema_for::<TenantRecord>()), "A tenant: modules, feature flags and settings."),
        "user" => (schema(g().into_root_schema_for::<UserRecord>()), "A user of a tenant, with role and scopes."),
        "vendor" => (schema(g().into_root_schema_for::<Vendor>()), "A vendor the tenant pays."),
        "document" => (schema(g().into_root_schema_for::<Document>()), "A registered document."),
        "policy" => (schema(g().into_root_schema_for::<Policies>()), "Approval rules, role gates and tool policies."),
        "finance_summary" => (schema(g().into_root_schema_for::<FinanceSummary>()), "Revenue, expenses and outstanding for a period."),
        _ => return None,
    })
}

const ENTITY_TYPES: &str = "tenant, user, vendor, document, policy, finance_summary";

async fn metadata(Path(entity_type): Path<String>) -> Response {
    match entity(&entity_type) {
        Some((schema, description)) => {
            let fields: Vec<String> = schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
            let required = schema["required"].clone();
            Json(json!({"entity_type": entity_type, "description": description, "fields": fields, "required": required, "source": "kernel"}))
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("unknown entity type {entity_type:?} (known: {ENTITY_TYPES})")),
    }
}

async fn schema(Path(entity_type): Path<String>) -> Response {
    match entity(&entity_type) {
        Some((schema, _)) => Json(schema).into_response(),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", format!("unknown entity type {entity_type:?} (known: {ENTITY_TYPES})")),
    }
}

/// The Kernel contract's routes over `kernel`; with `api_key`, every route but `/health` requires it.
pub fn kernel_router(kernel: Arc<dyn Kernel>, api_key: Option<String>) -> Router {
    let state = KernelState { kernel, api_key };
    let guarded = Router::new()
        .route("/tenants/{tenant_id}", get(get_tenant))
        .route("/tenants/{tenant_id}/users/{user_id}", get(get_user))
        .route("/permissions/check", post(check_permission))
        .route("/tenants/{tenant_id}/policies", get(policies))
        .route("/tenants/{tenant_id}/vendors", get(vendors))
        .route("/tenants/{tenant_id}/vendors/{vendor_id}", get(vendor))
        .route("/tenants/{tenant_id}/documents", get(documents))
        .route("/tenants/{tenant_id}/finance/summary", get(finance))
        .route("/metadata/{entity_type}", get(metadata))
        .route("/schema/{entity_type}", get(schema))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new().route("/health", get(health)).merge(guarded).with_state(state)
}
