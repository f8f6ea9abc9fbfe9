//! The JSON API's error body: `{"error": {"code", "message", "hint"}}` with a status that fits the
//! code. Never a stack trace, a secret or a file path.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use lynx_model::{ErrorCode, Refusal};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Refusal);

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self(r)
    }
}

impl From<lynx_model::store::StoreError> for ApiError {
    fn from(e: lynx_model::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<lynx_model::kernel::KernelError> for ApiError {
    fn from(e: lynx_model::kernel::KernelError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let r = self.0;
        let status = StatusCode::from_u16(r.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({"error": {"code": r.code, "message": r.message, "hint": r.hint}});
        if let Some(secs) = r.retry_after_secs {
            body["error"]["retry_after_secs"] = json!(secs);
        }
        let mut response = (status, Json(body)).into_response();
        if r.code == ErrorCode::Unauthenticated {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(crate::auth::BEARER_CHALLENGE));
        }
        if let Some(secs) = r.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Every error `/api` answers is in the API's shape — axum's own rejections too (a path that is not
/// UTF-8, a method the route lacks, a body over the limit), which it writes as plain text. The status
/// stays as axum chose it; the text becomes the message.
pub async fn in_api_shape(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    let (code, hint) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "See the README for the routes under /api."),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::InvalidInput, "Use a method the Allow header lists."),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthenticated, "Send Authorization: Bearer <API key>."),
        s if s.is_server_error() => (ErrorCode::Internal, "Retry; if it persists, look in the server log."),
        _ => (ErrorCode::InvalidInput, "Correct the request and send it again; nothing was changed."),
    };
    let body = json!({"error": {"code": code, "message": text, "hint": hint}});
    let mut response = (status, Json(body)).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}
