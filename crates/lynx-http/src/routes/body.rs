//! Request bodies and query strings of the JSON API, decoded strictly: unknown fields are refused and
//! every error names the field, like tool input.

use axum::body::Bytes;
use lynx_model::Refusal;
use serde::de::DeserializeOwned;

/// Decodes a JSON body; an empty body reads as `{}`.
pub fn json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return Refusal::invalid_input("body", format!("is not valid JSON (line {} column {})", inner.line(), inner.column()));
        }
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        Refusal::invalid_input(if path == "." { "body" } else { &path }, message)
    })
}
