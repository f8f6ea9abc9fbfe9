//! The `/mcp` mount: rmcp's streamable-HTTP service behind Lynx's own front door, so that every answer on
//! `/mcp` is JSON-RPC. A missing or bad key is `401` with a `Bearer` challenge and a JSON-RPC error
//! naming the code and what to do; storage that cannot check the key is `503` the same way. A body rmcp
//! cannot take (not UTF-8, not JSON, not one JSON-RPC 2.0 message, headers it refuses) gets a JSON-RPC
//! parse or invalid-request error instead of rmcp's plain text, and — the caller being known — is
//! audited as that caller's refusal, like any refused call.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use lynx_governance::{Authenticated, Pipeline};
use lynx_mcp::jsonrpc;
use lynx_model::{ErrorCode, Refusal, RunId};
use serde_json::{Value, json};

use crate::{MAX_BODY_BYTES, auth};

/// How much of an unauthenticated request's body is read to find its JSON-RPC id.
const ID_PEEK_BYTES: usize = 64 * 1024;

type Inner = lynx_mcp::HttpService;

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
        let (inner, pipeline) = (inner.clone(), pipeline.clone());
        async move { Ok(handle(&inner, &pipeline, request).await) }
    })
}

async fn handle(inner: &Inner, pipeline: &Pipeline, request: Request) -> Response {
    let who = match auth::authenticate(pipeline, request.headers()).await {
        Ok(who) => who,
        Err(refusal) => {
            let id = match to_bytes(request.into_body(), ID_PEEK_BYTES).await {
                Ok(body) => jsonrpc::request_id(&body),
                Err(_) => Value::Null,
            };
            let status = StatusCode::from_u16(refusal.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            return jsonrpc_response(status, jsonrpc::error_response(id, jsonrpc::code_for(refusal.code), &refusal, None));
        }
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(who.clone());
    if parts.method != Method::POST {
        // GET and DELETE carry no message (a client probing for a stream, say): answered, not audited.
        let response = inner.handle(Request::from_parts(parts, body)).await.into_response();
        return match plain_refusal(response).await {
            Ok(response) => response,
            Err((status, text, allow)) => {
                let refusal = request_refusal("request", text);
                let mut response = jsonrpc_response(status, jsonrpc::error_response(Value::Null, jsonrpc::INVALID_REQUEST, &refusal, None));
                if let Some(allow) = allow {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
        };
    }
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let why = format!("is larger than the {} MiB a request may have", MAX_BODY_BYTES / (1024 * 1024));
            return refuse(pipeline, &who, &Bytes::new(), StatusCode::PAYLOAD_TOO_LARGE, jsonrpc::INVALID_REQUEST, "body", why).await;
        }
    };
    let response = inner.handle(Request::from_parts(parts, Body::from(bytes.clone()))).await.into_response();
    match plain_refusal(response).await {
        Ok(response) => response,
        // rmcp refused the message in plain text: say why in JSON-RPC, naming the body's own problem
        // when it has one (rmcp answers those with 415 too) and otherwise passing rmcp's words on.
        Err((status, text, _)) => match jsonrpc::body_problem(&bytes) {
            Some((code, why)) => refuse(pipeline, &who, &bytes, StatusCode::BAD_REQUEST, code, "body", why).await,
            None => refuse(pipeline, &who, &bytes, status, jsonrpc::INVALID_REQUEST, "request", text).await,
        },
    }
}

/// The response as it is when it is a success or already JSON; otherwise its status, text and `Allow`.
async fn plain_refusal(response: Response) -> Result<Response, (StatusCode, String, Option<HeaderValue>)> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if response.status().is_success() || is_json {
        return Ok(response);
    }
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = match to_bytes(response.into_body(), ID_PEEK_BYTES).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    Err((status, text, allow))
}

fn request_refusal(field: &str, why: impl Into<String>) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidInput,
        format!("{field}: {}", why.into()),
        "POST one JSON-RPC 2.0 message per request, as UTF-8 JSON, with `Content-Type: application/json` and \
         `Accept: application/json, text/event-stream`; nothing was done.",
    )
}

/// Refuses a message of an authenticated caller: audited (one STARTED and one refusal row, like any
/// refused call), then answered as a JSON-RPC error naming the run.
async fn refuse(pipeline: &Pipeline, who: &Authenticated, body: &Bytes, status: StatusCode, code: i64, field: &str, why: String) -> Response {
    let refusal = request_refusal(field, why);
    let preview = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
    let input = json!({"raw_body": preview, "bytes": body.len()});
    let run_id: Option<RunId> = match pipeline.record_transport_refusal(who, "mcp.request", &input, &refusal).await {
        Ok(run_id) => Some(run_id),
        Err(e) => {
            // The refusal stands; only its audit row is missing, and the log says so.
            tracing::error!(error = %e, "audit row for a refused /mcp request not written");
            None
        }
    };
    jsonrpc_response(status, jsonrpc::error_response(jsonrpc::request_id(body), code, &refusal, run_id))
}

fn jsonrpc_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(auth::BEARER_CHALLENGE));
    }
    response
}
