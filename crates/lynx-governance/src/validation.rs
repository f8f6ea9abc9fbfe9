//! The input validation gate's mechanics: size guards, then a typed decode that rejects unknown
//! fields. Every error names the field (as a JSON path) and the rule; nothing here does I/O.

use lynx_model::Refusal;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// No tool has a text field that needs more; longer strings are refused, not truncated.
pub const MAX_STRING_CHARS: usize = 65_536;

pub(crate) fn decode<T: DeserializeOwned>(args: &Value) -> Result<T, Refusal> {
    guard_sizes(args, &mut String::new())?;
    serde_path_to_error::deserialize::<_, T>(args).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde names unknown and missing fields in the message, not the path.
        if let Some(field) = between(&message, "unknown field `", "`") {
            let allowed = message
                .split_once("expected ")
                .map(|(_, rest)| rest.trim_start_matches("one of ").replace('`', ""))
                .unwrap_or_default();
            // The path already ends at the unknown key.
            let field_path = if path == "." { field.to_string() } else { path.clone() };
            let rule = if allowed.is_empty() { "unknown field".to_string() } else { format!("unknown field (allowed: {allowed})") };
            return Refusal::invalid_input(&field_path, rule);
        }
        if let Some(field) = between(&message, "missing field `", "`") {
            let field_path = if path == "." { field.to_string() } else { format!("{path}.{field}") };
            return Refusal::invalid_input(&field_path, "is required");
        }
        Refusal::invalid_input(&path, message)
    })
}

/// The first way `args` breaks the published schema, as `field: rule`.
pub(crate) fn against_schema(validator: &jsonschema::Validator, args: &Value) -> Result<(), Refusal> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let Some(e) = validator.iter_errors(args).next() else { return Ok(()) };
    let field = e.instance_path().as_str().trim_start_matches('/').replace('/', ".");
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let rule = match e.kind() {
        Kind::MaxLength { limit } => format!("must be at most {limit} characters (got {})", chars(e.instance())),
        Kind::MinLength { limit } => format!("must be at least {limit} characters (got {})", chars(e.instance())),
        Kind::Pattern { pattern } => format!("must match the pattern {pattern}"),
        // Other rules are the typed decode's to name; should one get here, jsonschema's words (without the
        // value, which may be long) say which.
        _ => e.masked().to_string(),
    };
    Err(Refusal::invalid_input(&field, rule))
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.split_once(start)?.1;
    Some(rest.split_once(end)?.0)
}

fn guard_sizes(v: &Value, path: &mut String) -> Result<(), Refusal> {
    match v {
        Value::String(s) if s.len() > MAX_STRING_CHARS && s.chars().count() > MAX_STRING_CHARS => Err(Refusal::invalid_input(
            if path.is_empty() { "." } else { path },
            format!("must be at most {MAX_STRING_CHARS} characters (got {})", s.chars().count()),
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                guard_sizes(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                guard_sizes(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lynx_model::{ErrorCode, params::Limit};
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        #[serde(default)]
        limit: Limit<100, 10>,
        flag: Option<bool>,
        name: Option<String>,
        steps: Option<Vec<Step>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Step {
        name: String,
    }

    fn refuse(v: Value) -> Refusal {
        let r = decode::<Input>(&v).unwrap_err();
        assert_eq!(r.code, ErrorCode::InvalidInput);
        r
    }

    #[test]
    fn errors_name_the_field_and_the_rule() {
        assert!(decode::<Input>(&json!({})).is_ok());
        let r = refuse(json!({"bogus": 1}));
        assert!(r.message.starts_with("bogus: unknown field"), "{}", r.message);
        let r = refuse(json!({"limit": 500}));
        assert_eq!(r.message, "limit: must be between 1 and 100 (got 500)");
        let r = refuse(json!({"flag": "yes"}));
        assert!(r.message.starts_with("flag: invalid type"), "{}", r.message);
        let r = refuse(json!({"steps": [{"name": "a"}, {}]}));
        assert_eq!(r.message, "steps[1].name: is required");
        let r = refuse(json!({"steps": [{"name": "a", "x": 1}]}));
        assert!(r.message.starts_with("steps[0].x: unknown field"), "{}", r.message);
        let r = refuse(json!({"name": "x".repeat(5 * 1024 * 1024)}));
        assert!(r.message.starts_with("name: must be at most 65536 characters"), "{}", r.message);
    }
}
