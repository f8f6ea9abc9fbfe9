//! Query-string helpers: unknown parameters are refused, limits are bounded, empty values are absent.

use std::collections::HashMap;

use lynx_model::Refusal;

pub fn known(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), Refusal> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Refusal::invalid_input(unknown, format!("unknown query parameter (allowed: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

pub fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

pub fn limit(q: &HashMap<String, String>, default: u32, max: u32) -> Result<u32, Refusal> {
    match param(q, "limit") {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Refusal::invalid_input("limit", format!("must be an integer between 1 and {max}"))),
        },
    }
}

/// An id in a path or query: one of the vocabulary's UUID id types.
pub fn id<T: From<uuid::Uuid>>(field: &str, raw: &str) -> Result<T, Refusal> {
    uuid::Uuid::parse_str(raw).map(T::from).map_err(|_| Refusal::invalid_input(field, "must be a UUID"))
}

/// A `tool_id` filter: a tool or action id as Lynx writes them (`vpm.cell.payment.execute`,
/// `lynx.drafts.approve`), so a typo is an error rather than an empty page.
pub fn tool_id(q: &HashMap<String, String>) -> Result<Option<String>, Refusal> {
    match param(q, "tool_id") {
        None => Ok(None),
        Some(v) if v.len() <= 100 && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) => Ok(Some(v.to_string())),
        Some(_) => Err(Refusal::invalid_input("tool_id", "must be a tool id such as vpm.cell.payment.execute (lower-case letters, digits, dots)")),
    }
}
