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
    // Lynx checks Host and Origin itself (`origin_guard`), parsing them as RFC 9110 says; rmcp's check
    // took `evil@127.0.0.1` for 127.0.0.1.
    config = config.disable_allowed_hosts();
    let allowed_hosts: Arc<[String]> = allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    // Shared, not cloned per request: rmcp's `handle` borrows the service, and a clone copies its config.
    let inner = Arc::new(lynx_mcp::http_service(pipeline.clone(), config));
    let pipeline = Arc::new(pipeline);
    tower::service_fn(move |request: Request| {
        let (inner, pipeline, allowed_hosts) = (inner.clone(), pipeline.clone(), allowed_hosts.clone());
        async move {
            if let Err(refusal) = origin_guard(&allowed_hosts, request.headers()) {
                return Ok(jsonrpc_response(StatusCode::FORBIDDEN, jsonrpc::error_response(Value::Null, jsonrpc::INVALID_REQUEST, &refusal, None)));
            }
            Ok(handle(&inner, &pipeline, request).await)
        }
    })
}

/// The DNS-rebinding guard the MCP transport requires: the `Host` must name this server, and a browser's
/// `Origin`, when sent, must too. An empty list (`LYNX_ALLOWED_HOSTS=*`) accepts any.
fn origin_guard(allowed: &[String], headers: &axum::http::HeaderMap) -> Result<(), Refusal> {
    if allowed.is_empty() {
        return Ok(());
    }
    let refuse = |what: &str, value: &str| {
        Refusal::new(
            ErrorCode::PermissionDenied,
            format!("Forbidden {what}: {:?} is not a host this server answers to", lynx_model::params::truncate(value, 100)),
            "Connect to Lynx by a name in LYNX_ALLOWED_HOSTS (an operator can add one); browsers may call /mcp only from those hosts.",
        )
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !host_name(host).is_some_and(|h| allowed.contains(&h)) {
        return Err(refuse("Host", host));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let name = origin
            .split_once("://")
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            .and_then(|(_, authority)| host_name(authority));
        if !name.is_some_and(|h| allowed.contains(&h)) {
            return Err(refuse("Origin", origin));
        }
    }
    Ok(())
}

/// The host of an RFC 9110 `Host` value (`uri-host [":" port]`), lower-cased, or `None` when the value
/// is not one: no user info (`evil@127.0.0.1`), path, spaces or empty host.
fn host_name(value: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':')?),
        };
        (ip, port)
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5)
    {
        return None;
    }
    let reg_name = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if host.is_empty() || !(value.starts_with('[') || host.chars().all(reg_name)) {
        return None;
    }
    Some(host.trim_end_matches('.').to_ascii_lowercase())
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
    // Numbers in tool arguments reach the tools as written, not rounded through f64.
    let bytes = match lynx_mcp::exact_numbers::rewrite(&bytes) {
        Some(rewritten) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Bytes::from(rewritten)
        }
        None => bytes,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_rfc_9110_writes_them() {
        for (value, host) in [("127.0.0.1", "127.0.0.1"), ("localhost:8000", "localhost"), ("LocalHost.", "localhost"), ("[::1]:80", "::1"), ("[::1]", "::1")] {
            assert_eq!(host_name(value).as_deref(), Some(host), "{value}");
        }
        for bad in ["evil@127.0.0.1", "", ":80", "127.0.0.1:", "127.0.0.1:x", "a b", "127.0.0.1/x", "[::1]x", "[nope]", "localhost:123456"] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_origin_guard_refuses_foreign_hosts_and_origins() {
        let allowed: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(origin_guard(&allowed, &headers(&[("host", "127.0.0.1:8000")])).is_ok());
        assert!(origin_guard(&allowed, &headers(&[("host", "localhost"), ("origin", "http://localhost:3000")])).is_ok());
        for bad in [
            headers(&[("host", "evil@127.0.0.1")]),
            headers(&[("host", "evil.example")]),
            headers(&[]),
            headers(&[("host", "127.0.0.1"), ("origin", "http://evil.example")]),
            headers(&[("host", "127.0.0.1"), ("origin", "null")]),
            headers(&[("host", "127.0.0.1"), ("origin", "file://localhost")]),
        ] {
            assert_eq!(origin_guard(&allowed, &bad).unwrap_err().code, ErrorCode::PermissionDenied, "{bad:?}");
        }
        assert!(origin_guard(&[], &headers(&[("host", "evil.example")])).is_ok(), "`*` accepts any");
    }
}
