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
use lynx_governance::{Authenticated, Credential, Pipeline, identity::{self, unauthenticated}};
use lynx_model::{ErrorCode, Refusal};

use crate::{AppState, error::ApiError};

/// The challenge a `401` carries (RFC 6750).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"lynx\"";

/// The caller a request's `Authorization: Bearer <key>` names.
pub async fn authenticate(pipeline: &Pipeline, headers: &HeaderMap) -> Result<Authenticated, Refusal> {
    let header = headers.get(header::AUTHORIZATION).ok_or_else(|| unauthenticated("no Authorization header"))?;
    let value = header.to_str().map_err(|_| unauthenticated("the Authorization header is not text"))?;
    let token = bearer_token(value).ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <API key>`"))?;
    pipeline.authenticate(&Credential::ApiKey(token.into())).await
}

/// The token of `Bearer <token>`: the scheme is case-insensitive (RFC 7235 §2.1), one space separates
/// it from the token, and the token is RFC 6750's `b64token` — no whitespace inside or around it.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.chars().all(b64token)).then_some(token)
}

/// `/api/*`: a valid key of a user the Kernel lists as active — the same rule the tools and the
/// dashboard apply (`identity::principal`). `/api/status` still answers while the Kernel is unreachable,
/// because reporting that outage is its job (as `system.domain.health.read` does).
pub async fn require_bearer(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let who = authenticate(&state.pipeline, request.headers()).await?;
    let outage_safe = request.uri().path() == "/api/status";
    match identity::principal(state.pipeline.services(), &who).await {
        Ok(_) => {}
        Err(r) if r.code == ErrorCode::KernelUnavailable && outage_safe => {}
        Err(r) => return Err(r.into()),
    }
    let services = state.pipeline.services();
    services.limits.admit(services, &who).await?;
    request.extensions_mut().insert(who);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_has_no_whitespace() {
        for ok in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR lynx_0f+/=~"] {
            assert_eq!(bearer_token(ok), Some(ok.split_once(' ').unwrap().1), "{ok}");
        }
        for bad in ["Bearer", "Bearer ", "Bearer  abc", "Bearer abc ", "Bearer a bc", "Bearer\tabc", "Basic abc", "Bearerabc", "Bearer ab\tc"] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }
}
