//! Numbers in tool arguments read from their literal digits, never through binary floating point.
//!
//! rmcp parses each message into `serde_json::Value`, whose numbers are `f64` unless they are integers;
//! a JSON number like `100.10000000000000000000000001` would reach a tool as `100.1`, and a money field
//! would accept it. serde_json's `arbitrary_precision` keeps the digits but breaks serde's untagged enums,
//! which rmcp's JSON-RPC message types are. So both transports pass each incoming message through
//! `rewrite` first: a number in `params.arguments` of a `tools/call` whose literal an `f64` does not hold
//! exactly (or that is written with an exponent) is handed on as a string of its literal text. The
//! tool's typed input then judges the digits the caller wrote — an amount refuses `"1000.004999999999999999"`
//! by its own rule, and an integer field refuses a string — instead of a rounded neighbour.

use serde_json::value::RawValue;

/// The message with its lossy argument numbers as strings, or `None` when it needs no change (the
/// usual case, found by one scan without building anything).
pub fn rewrite(message: &[u8]) -> Option<Vec<u8>> {
    if !has_lossy_number(message) {
        return None;
    }
    // The members stay as raw text, so nothing but `arguments`' lossy numbers changes.
    type Members = std::collections::BTreeMap<String, Box<RawValue>>;
    let mut message: Members = serde_json::from_slice(message).ok()?;
    if message.get("method").map(|m| m.get()) != Some("\"tools/call\"") {
        return None;
    }
    let mut params: Members = serde_json::from_str(message.get("params")?.get()).ok()?;
    let arguments = quote_lossy(params.get("arguments")?.get());
    params.insert("arguments".into(), RawValue::from_string(arguments).ok()?);
    message.insert("params".into(), RawValue::from_string(serde_json::to_string(&params).ok()?).ok()?);
    serde_json::to_vec(&message).ok()
}

/// Copies newline-delimited messages (stdio's framing) from `input` to `output`, each through `rewrite`;
/// closes `output` when `input` ends.
pub async fn relay_lines(input: impl tokio::io::AsyncRead + Unpin, mut output: impl tokio::io::AsyncWrite + Unpin) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let message = line.strip_suffix(b"\n").unwrap_or(&line);
        let rewritten = rewrite(message);
        let message = rewritten.as_deref().unwrap_or(message);
        if output.write_all(message).await.is_err() || output.write_all(b"\n").await.is_err() {
            break;
        }
    }
    let _ = output.shutdown().await;
}

/// Whether any number literal outside strings would change on its way through `f64`.
fn has_lossy_number(json: &[u8]) -> bool {
    let mut found = false;
    scan(json, |token| {
        found |= is_lossy(token);
    });
    found
}

/// `json` with every lossy number literal replaced by a string of its text.
fn quote_lossy(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    let mut copied = 0;
    let bytes = json.as_bytes();
    let mut spans = Vec::new();
    scan(bytes, |token| {
        if is_lossy(token) {
            // `token` borrows from `bytes`: its offset is its address minus the start's.
            let start = token.as_ptr() as usize - bytes.as_ptr() as usize;
            spans.push((start, start + token.len()));
        }
    });
    for (start, end) in spans {
        out.push_str(&json[copied..start]);
        out.push('"');
        out.push_str(&json[start..end]);
        out.push('"');
        copied = end;
    }
    out.push_str(&json[copied..]);
    out
}

/// Calls `f` with each number literal of `json` that is not inside a string.
fn scan(json: &[u8], mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    let mut in_string = false;
    while i < json.len() {
        let c = json[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len() && matches!(json[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                f(&json[start..i]);
            }
            _ => i += 1,
        }
    }
}

/// A literal `f64` (or serde_json's exact integers) would not carry as written.
fn is_lossy(token: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(token) else { return true };
    if text.contains(['e', 'E']) {
        return true;
    }
    if !text.contains('.') {
        // serde_json keeps integers that fit in 64 bits exactly.
        return text.parse::<i64>().is_err() && text.parse::<u64>().is_err();
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => digits(text) != digits(&format!("{f}")),
        _ => true,
    }
}

/// A decimal literal's value as canonical text: sign, integer digits without leading zeros, fraction
/// digits without trailing zeros (`-0012.50` → `-12.5`).
fn digits(text: &str) -> String {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn call(arguments: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"t","arguments":{arguments}}}}}"#)
    }

    fn arguments(message: &[u8]) -> Value {
        serde_json::from_slice::<Value>(message).unwrap()["params"]["arguments"].clone()
    }

    #[test]
    fn numbers_an_f64_holds_pass_untouched() {
        for ok in [r#"{"amount": 100.10, "limit": 5}"#, r#"{"amount": 1500.5, "n": -3, "big": 18446744073709551615}"#, r#"{"s": "1e5 and 0.1000000000000000000001"}"#] {
            assert_eq!(rewrite(call(ok).as_bytes()), None, "{ok}");
        }
    }

    #[test]
    fn lossy_numbers_in_arguments_arrive_as_their_literal_text() {
        let m = rewrite(call(r#"{"amount": 100.10000000000000000000000001, "x": [1000.004999999999999999, 5e2], "ok": 2.5, "s": "a\"1e9"}"#).as_bytes()).unwrap();
        assert_eq!(
            arguments(&m),
            json!({"amount": "100.10000000000000000000000001", "x": ["1000.004999999999999999", "5e2"], "ok": 2.5, "s": "a\"1e9"})
        );
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!((v["id"].clone(), v["method"].clone(), v["params"]["name"].clone()), (json!(7), json!("tools/call"), json!("t")));
        let m = rewrite(call(r#"{"limit": 123456789012345678901234567890}"#).as_bytes()).unwrap();
        assert_eq!(arguments(&m), json!({"limit": "123456789012345678901234567890"}));
    }

    #[test]
    fn only_tool_call_arguments_are_touched() {
        let other = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x","n":0.10000000000000000000001}}"#;
        assert_eq!(rewrite(other.as_bytes()), None);
        assert_eq!(rewrite(b"not json 1e5"), None, "what is not JSON is left for rmcp to refuse");
    }
}
