//! JSON-RPC errors for what the MCP surface refuses before a message reaches the handler: a missing or
//! bad key, storage that cannot check the key, a body that is not one JSON-RPC 2.0 message. On `/mcp`
//! every answer is JSON-RPC, so a client shows the code, message and hint instead of a bare HTTP status.
//! The `data.error` object is the same `ErrorBody` a refused tool call carries.

use lynx_model::{ErrorCode, Refusal, RunId, error::ErrorBody};
use serde_json::{Value, json};

/// JSON-RPC 2.0: the body is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: valid JSON, but not a JSON-RPC 2.0 message this server takes.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: the server failed.
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined (-32000 to -32099): the caller is not authenticated — the code MCP servers
/// conventionally use for "Unauthorized".
pub const UNAUTHENTICATED: i64 = -32001;
/// Implementation-defined: a dependency (storage, the Kernel) cannot answer now; retrying later may work.
pub const UNAVAILABLE: i64 = -32000;

/// The JSON-RPC code for a refusal given at the transport.
pub fn code_for(code: ErrorCode) -> i64 {
    match code {
        ErrorCode::Unauthenticated => UNAUTHENTICATED,
        ErrorCode::StorageUnavailable | ErrorCode::KernelUnavailable | ErrorCode::MaintenanceMode => UNAVAILABLE,
        ErrorCode::Internal => INTERNAL_ERROR,
        _ => INVALID_REQUEST,
    }
}

/// A JSON-RPC error response. `id` is the request's id when it could be read, else `null`.
pub fn error_response(id: Value, code: i64, refusal: &Refusal, run_id: Option<RunId>) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": code,
            // Some clients show only this line, so it carries the hint too.
            "message": format!("{} (what to do: {})", refusal.message, refusal.hint),
            "data": {"error": ErrorBody::new(refusal, run_id)},
        }
    })
}

/// The `id` of a JSON-RPC request body, so an error answers the request it is about; `null` when the
/// body has none or cannot be read.
pub fn request_id(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: Option<Value>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { id: Some(id @ (Value::String(_) | Value::Number(_))) }) => id,
        _ => Value::Null,
    }
}

/// Why a body is not one JSON-RPC 2.0 message: the JSON-RPC code and the rule it broke (in words for
/// the refusal). `None` when the body is a well-formed message and the reason lies elsewhere.
pub fn body_problem(body: &[u8]) -> Option<(i64, String)> {
    if let Err(e) = std::str::from_utf8(body) {
        return Some((PARSE_ERROR, format!("is not valid UTF-8 (byte {})", e.valid_up_to())));
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some((PARSE_ERROR, format!("is not valid JSON: {e}"))),
    };
    let obj = match value {
        Value::Array(_) => {
            return Some((
                INVALID_REQUEST,
                "is a JSON-RPC batch; MCP takes one message per request (batches were removed in protocol 2025-06-18)".into(),
            ));
        }
        Value::Object(obj) => obj,
        _ => return Some((INVALID_REQUEST, "is not a JSON-RPC message (a JSON object)".into())),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some((INVALID_REQUEST, "must say \"jsonrpc\": \"2.0\"".into()));
    }
    let is_request = obj.get("method").is_some_and(Value::is_string);
    let is_response = obj.contains_key("id") && (obj.contains_key("result") || obj.contains_key("error"));
    if !is_request && !is_response {
        return Some((INVALID_REQUEST, "is neither a request (`method` as a string) nor a response (`result` or `error`)".into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_one_message_are_named() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: [(&[u8], i64, &str); 8] = [
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":\"\xff\"}}", PARSE_ERROR, "UTF-8"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"\ud800"}}"#, PARSE_ERROR, "JSON"),
            (br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1e400}}"#, PARSE_ERROR, "out of range"),
            (deep.as_bytes(), PARSE_ERROR, "recursion limit"),
            (br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, INVALID_REQUEST, "2.0"),
            (br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#, INVALID_REQUEST, "batch"),
            (br#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST, "neither"),
            (b"42", INVALID_REQUEST, "object"),
        ];
        for (body, code, words) in cases {
            let (c, why) = body_problem(body).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&body[..40.min(body.len())])));
            assert_eq!(c, code, "{why}");
            assert!(why.contains(words), "{why}");
        }
        assert_eq!(body_problem(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), None);
    }

    #[test]
    fn the_request_id_is_found_when_there_is_one() {
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":7,"method":"x"}"#), json!(7));
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":"a","method":"x"}"#), json!("a"));
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","method":"x"}"#), Value::Null);
        assert_eq!(request_id(b"not json"), Value::Null);
    }
}
