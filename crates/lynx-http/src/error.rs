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
        let mut response =
            (status, Json(json!({"error": {"code": r.code, "message": r.message, "hint": r.hint}}))).into_response();
        if r.code == ErrorCode::Unauthenticated {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(crate::auth::BEARER_CHALLENGE));
        }
        response
    }
}
