//! The HTTP surface: `/healthz`, `/metrics`, the JSON API under `/api`, MCP streamable HTTP at `/mcp`
//! (both behind bearer authentication; `/mcp` answers every refusal as JSON-RPC) and the approval dashboard at `/` (session sign-in). Routes that act call the governance pipeline; no
//! route touches SQL or a tool directly.

mod auth;
mod connections;
mod dashboard;
mod error;
mod kernel_api;
mod mcp;
mod routes;

use std::{sync::Arc, time::Duration};

use axum::{middleware, routing::{delete, get, post}};
use lynx_governance::Pipeline;
use tower_http::{limit::RequestBodyLimitLayer, trace::TraceLayer};

pub use axum::Router;
pub use connections::{ConnectionLimits, serve};
pub use error::ApiError;
pub use kernel_api::kernel_router;

/// The largest request body accepted anywhere (a 5 MB argument must reach validation and be refused there).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    ui: Arc<dashboard::Ui>,
}

/// What the HTTP surface needs besides the pipeline.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Host names `/mcp` accepts in the `Host` header (DNS-rebinding guard); empty disables the check.
    pub allowed_hosts: Vec<String>,
}

pub fn router(pipeline: Pipeline, options: &HttpOptions) -> Router {
    let state = AppState { pipeline: pipeline.clone(), ui: Arc::new(dashboard::Ui::default()) };
    let api = Router::new()
        .route("/status", get(routes::api::status))
        .route("/tools", get(routes::api::tools))
        .route("/audit/events", get(routes::api::audit_events))
        .route("/audit/export", get(routes::export::export))
        .route("/drafts", get(routes::drafts::list))
        .route("/drafts/{id}", get(routes::drafts::show))
        .route("/drafts/{id}/approve", post(routes::drafts::approve))
        .route("/drafts/{id}/reject", post(routes::drafts::reject))
        .route("/drafts/{id}/cancel", post(routes::drafts::cancel))
        .route("/executions", get(routes::operations::executions))
        .route("/executions/{id}", get(routes::operations::execution))
        .route("/settlements", get(routes::operations::settlements))
        .route("/settlements/{payment_id}", post(routes::operations::mark_settlement))
        .route("/webhooks", get(routes::webhooks::list).post(routes::webhooks::add))
        .route("/webhooks/{webhook_id}", delete(routes::webhooks::remove))
        .route("/webhooks/deliveries", get(routes::webhooks::deliveries))
        .route("/webhooks/deliveries/{event_id}/{webhook_id}/redeliver", post(routes::webhooks::redeliver))
        .fallback(routes::api::not_found);
    let api = Router::new()
        .nest("/api", api)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_bearer))
        .layer(middleware::from_fn(error::in_api_shape));
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/metrics", get(routes::metrics::metrics))
        .merge(dashboard::router())
        .merge(api)
        // /mcp authenticates itself, to answer even a refused key in JSON-RPC.
        .nest_service("/mcp", mcp::service(pipeline, options.allowed_hosts.clone()))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

