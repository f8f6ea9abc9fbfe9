//! Tool parameters that several tools share, as types that validate themselves while they are parsed,
//! so no tool repeats a range check and every violation names the rule.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A page size between 1 and `MAX`, `DEFAULT` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Limit<const MAX: u32, const DEFAULT: u32>(u32);

impl<const MAX: u32, const DEFAULT: u32> Limit<MAX, DEFAULT> {
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=i64::from(MAX)).contains(&n) {
            Ok(Self(n as u32))
        } else {
            Err(format!("must be between 1 and {MAX} (got {n})"))
        }
    }
}

impl<const MAX: u32, const DEFAULT: u32> Default for Limit<MAX, DEFAULT> {
    fn default() -> Self {
        Self(DEFAULT)
    }
}

impl<'de, const MAX: u32, const DEFAULT: u32> Deserialize<'de> for Limit<MAX, DEFAULT> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: u32>;
        impl<const MAX: u32> serde::de::Visitor<'_> for V<MAX> {
            type Value = i64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer between 1 and {MAX}")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
                Ok(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(v as i64)
                } else {
                    Err(E::custom(format!("must be an integer between 1 and {MAX} (got {v})")))
                }
            }
        }
        let n = d.deserialize_any(V::<MAX>)?;
        Self::new(n).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: u32, const DEFAULT: u32> schemars::JsonSchema for Limit<MAX, DEFAULT> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Limit1To{MAX}").into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "minimum": 1, "maximum": MAX, "default": DEFAULT})
    }
}

/// A lower time bound: an ISO 8601 date-time (with offset) or a date (midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Since(pub DateTime<Utc>);

impl Since {
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::parse_within(s, Self::YEARS)
    }

    /// Years a time bound may name: anything Lynx could have recorded, and no further than the
    /// databases' and clients' date types all agree on.
    pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=2199;

    fn parse_within(s: &str, years: std::ops::RangeInclusive<i32>) -> Result<Self, String> {
        use chrono::Datelike;
        let t = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            t.with_timezone(&Utc)
        } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
        } else {
            return Err(format!(
                "must be an ISO 8601 date or date-time such as 2026-01-27 or 2026-01-27T10:00:00Z (got {:?})",
                truncate(s, 40)
            ));
        };
        if !years.contains(&t.year()) {
            return Err(format!("must be between {}-01-01 and {}-12-31 (got {:?})", years.start(), years.end(), truncate(s, 40)));
        }
        Ok(Self(t))
    }
}

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Since {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Since".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "ISO 8601 date (2026-01-27) or date-time with offset (2026-01-27T10:00:00Z)"
        })
    }
}

/// Shortens user text for an error message, on a character boundary.
pub fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type L = Limit<100, 10>;

    #[test]
    fn limits_hold_their_range() {
        assert_eq!(serde_json::from_str::<L>("5").unwrap().get(), 5);
        assert_eq!(L::default().get(), 10);
        for bad in ["0", "101", "-1", "2.5", "\"x\""] {
            let e = serde_json::from_str::<L>(bad).unwrap_err().to_string();
            assert!(e.contains("between 1 and 100"), "{bad}: {e}");
        }
    }

    #[test]
    fn since_takes_dates_and_date_times() {
        assert!(Since::parse("2026-01-27").is_ok());
        assert!(Since::parse("2026-01-27T10:00:00Z").is_ok());
        assert!(Since::parse("2026-01-27T10:00:00+02:00").is_ok());
        assert!(Since::parse("yesterday").unwrap_err().contains("ISO 8601"));
    }
}

/// A caller-chosen idempotency key: 1–128 characters of `A-Z a-z 0-9 - _ . :`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            return Err(format!(
                "must be 1-128 characters of letters, digits, '-', '_', '.' or ':' (got {:?})",
                truncate(s, 40)
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for RequestId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RequestId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_.:-]+$",
            "description": "Idempotency key: repeating a call with the same request_id and input returns the original answer"
        })
    }
}

/// The id of a draft, as a tool argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DraftIdParam(pub crate::DraftId);

impl<'de> Deserialize<'de> for DraftIdParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::DraftId::parse(&s)
            .map(DraftIdParam)
            .map_err(|_| serde::de::Error::custom(format!("must be a draft id (a UUID) (got {:?})", truncate(&s, 40))))
    }
}

impl schemars::JsonSchema for DraftIdParam {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DraftId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "uuid", "description": "The draft's id, as a cluster tool returned it"})
    }
}

/// A required piece of text: trimmed length between `MIN` and `MAX` characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s.trim().chars().count();
        if n < MIN {
            return Err(if MIN == 1 { "must not be empty".into() } else { format!("must be at least {MIN} characters") });
        }
        if s.chars().count() > MAX {
            return Err(format!("must be at most {MAX} characters (got {})", s.chars().count()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: usize, const MAX: usize> schemars::JsonSchema for Text<MIN, MAX> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Text{MIN}To{MAX}").into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "minLength": MIN, "maxLength": MAX})
    }
}

#[cfg(test)]
mod write_param_tests {
    use super::*;

    #[test]
    fn request_ids_draft_ids_and_texts_validate_themselves() {
        assert!(RequestId::parse("req-1:a.b_c").is_ok());
        assert!(RequestId::parse("").is_err() && RequestId::parse("has space").is_err());
        let e = serde_json::from_str::<DraftIdParam>("\"nope\"").unwrap_err().to_string();
        assert!(e.contains("must be a draft id"), "{e}");
        assert_eq!(Text::<1, 5>::parse("   ").unwrap_err(), "must not be empty");
        assert!(Text::<1, 5>::parse("abcdef").unwrap_err().contains("at most 5"));
    }

    #[test]
    fn json_maps_serialise_with_sorted_keys() {
        // Fingerprints and the registry hash rely on this (serde_json without `preserve_order`).
        assert_eq!(serde_json::json!({"b": 1, "a": 2}).to_string(), r#"{"a":2,"b":1}"#);
    }
}

/// A due date: an ISO 8601 date (`2026-02-01`) or date-time with offset, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IsoDate(String);

impl IsoDate {
    pub fn parse(s: &str) -> Result<Self, String> {
        Since::parse_within(s, Self::YEARS).map(|_| Self(s.to_string()))
    }

    /// Years a due date may fall in: a payment due in year 0 or 9999 is a typo, not a plan.
    pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for IsoDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IsoDate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "ISO 8601 date (2026-02-01) or date-time with offset, in the years 2000 to 2099"})
    }
}
