//! The `/mcp` mount: rmcp's streamable-HTTP service, behind a guard that refuses a body that is not
//! JSON with `INVALID_INPUT` — audited like any refusal, since the caller is already known — instead
//! of letting it vanish as a bare protocol error.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use lynx_governance::{Authenticated, Pipeline};
use lynx_model::Refusal;
use serde_json::json;

use crate::MAX_BODY_BYTES;

pub fn service(
    pipeline: Pipeline,
    allowed_hosts: Vec<String>,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone + Send + 'static {
    let mut config = lynx_mcp::HttpConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(MAX_BODY_BYTES);
    config = if allowed_hosts.is_empty() { config.disable_allowed_hosts() } else { config.with_allowed_hosts(allowed_hosts) };
    // Shared, not cloned per request: rmcp's `handle` borrows the service, and a clone copies its config.
    let inner = Arc::new(lynx_mcp::http_service(pipeline.clone(), config));
    let pipeline = Arc::new(pipeline);
    tower::service_fn(move |request: Request| {
        let inner = inner.clone();
        let pipeline = pipeline.clone();
        async move {
            if request.method() != Method::POST {
                return Ok(inner.handle(request).await.into_response());
            }
            let (parts, body) = request.into_parts();
            let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
                Ok(b) => b,
                Err(_) => return Ok((StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()),
            };
            // Validation only: IgnoredAny checks the syntax without building a value rmcp builds anyway.
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                return Ok(refuse_unparsable(&pipeline, &parts, &bytes, &e).await);
            }
            let request = Request::from_parts(parts, Body::from(bytes));
            Ok(inner.handle(request).await.into_response())
        }
    })
}

async fn refuse_unparsable(pipeline: &Pipeline, parts: &axum::http::request::Parts, bytes: &[u8], e: &serde_json::Error) -> Response {
    let refusal = Refusal::invalid_input(
        "body",
        format!("is not valid JSON ({} at line {} column {})", e.classify_name(), e.line(), e.column()),
    );
    let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).into_owned();
    let run_id = match parts.extensions.get::<Authenticated>() {
        Some(who) => pipeline.record_transport_refusal(who, "mcp.request", &json!({"raw_body": preview}), &refusal).await.ok(),
        None => None,
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32700,
            "message": format!("{}: {}", refusal.code, refusal.message),
            "data": {"error": {"code": refusal.code, "message": refusal.message, "run_id": run_id.map(|r| r.to_string()), "hint": refusal.hint}}
        }
    });
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}
