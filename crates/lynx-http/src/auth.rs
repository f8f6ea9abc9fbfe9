//! Bearer authentication for every route but `/healthz`: a missing, malformed, unknown or revoked
//! key is `401` before any handler runs. The authenticated caller rides in the request's extensions,
//! where the API handlers and the MCP handler find it.

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use lynx_governance::{Credential, identity::unauthenticated};

use crate::{AppState, error::ApiError};

pub async fn require_bearer(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let header = request.headers().get(header::AUTHORIZATION).ok_or_else(|| unauthenticated("no Authorization header"))?;
    let value = header.to_str().map_err(|_| unauthenticated("the Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <API key>`"))?;
    let who = state.pipeline.authenticate(&Credential::ApiKey(token.to_string())).await?;
    request.extensions_mut().insert(who);
    Ok(next.run(request).await)
}
