//! Bearer authentication for every route but `/healthz`, `/metrics` and the dashboard: a missing,
//! malformed, unknown or revoked key is refused before any handler runs. The authenticated caller
//! rides in the request's extensions, where the API handlers and the MCP handler find it. `/api`
//! answers a refusal in the API's shape (`require_bearer`); `/mcp` answers it as JSON-RPC (`mcp.rs`).

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::Response,
};
use lynx_governance::{Authenticated, Credential, Pipeline, identity::unauthenticated};
use lynx_model::Refusal;

use crate::{AppState, error::ApiError};

/// The challenge a `401` carries (RFC 6750).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"lynx\"";

/// The caller a request's `Authorization: Bearer <key>` names.
pub async fn authenticate(pipeline: &Pipeline, headers: &HeaderMap) -> Result<Authenticated, Refusal> {
    let header = headers.get(header::AUTHORIZATION).ok_or_else(|| unauthenticated("no Authorization header"))?;
    let value = header.to_str().map_err(|_| unauthenticated("the Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <API key>`"))?;
    pipeline.authenticate(&Credential::ApiKey(token.into())).await
}

pub async fn require_bearer(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let who = authenticate(&state.pipeline, request.headers()).await?;
    request.extensions_mut().insert(who);
    Ok(next.run(request).await)
}
