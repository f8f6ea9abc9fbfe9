//! Money: an `Amount` that is positive with at most two decimals, and a `Currency` that is an active
//! ISO 4217 code. Exact decimal throughout; a JSON number is read through its shortest decimal form, so
//! `10.1` is ten point one, never a binary approximation.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The largest amount a single payment may carry.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

/// Written as money is written, with two decimals: `"1500.00"`, a string so it stays exact.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

impl Amount {
    pub fn parse(s: &str) -> Result<Self, String> {
        let d: Decimal = s.trim().parse().map_err(|_| format!("must be a decimal number such as 1250.00 (got {s:?})"))?;
        Self::new(d)
    }

    pub fn new(d: Decimal) -> Result<Self, String> {
        let d = d.normalize();
        if d <= Decimal::ZERO {
            return Err("must be greater than 0".into());
        }
        if d.scale() > 2 {
            return Err(format!("must have at most 2 decimal places (got {d})"));
        }
        if d > Decimal::from(MAX_AMOUNT) {
            return Err(format!("must be at most {MAX_AMOUNT}"));
        }
        Ok(Self(d))
    }

    /// The amount with two decimals, as money is kept (`500.00`, never `500`).
    pub fn value(self) -> Decimal {
        let mut d = self.0;
        d.rescale(2);
        d
    }

    /// Two decimals, as money is written: `1500.00`.
    pub fn display(self) -> String {
        format!("{:.2}", self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive amount with at most 2 decimals, as a number or a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
                Amount::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Amount::new(Decimal::from(v)).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                Amount::new(Decimal::from(v)).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
                if !v.is_finite() {
                    return Err(E::custom("must be a finite number"));
                }
                // Rust prints the shortest decimal that reads back as the same f64.
                Amount::parse(&format!("{v}")).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Amount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number"],
            "description": "A positive amount with at most 2 decimal places, for example \"1250.00\" (a string keeps it exact)",
            "pattern": "^[0-9]+(\\.[0-9]{1,2})?$"
        })
    }
}

/// Active ISO 4217 currency codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD \
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG \
HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT \
MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG \
SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD \
XCG XOF XPF YER ZAR ZMW ZWG";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 3 && ISO_4217.split_whitespace().any(|c| c == s) {
            Ok(Self(s.to_string()))
        } else {
            Err(format!("must be an ISO 4217 currency code such as USD or EUR (got {:?})", crate::params::truncate(s, 20)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self("USD".into())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[A-Z]{3}$", "default": "USD",
            "description": "ISO 4217 currency code"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_exact_and_two_decimal() {
        assert_eq!(serde_json::from_str::<Amount>("1500.5").unwrap().display(), "1500.50");
        assert_eq!(serde_json::from_str::<Amount>("\"0.10\"").unwrap().value().to_string(), "0.10", "money keeps two decimals");
        assert_eq!(serde_json::to_string(&Amount::parse("500").unwrap()).unwrap(), "\"500.00\"");
        assert_eq!(serde_json::from_str::<Amount>("10.1").unwrap().display(), "10.10");
        assert_eq!(serde_json::from_str::<Amount>("\"1.500\"").unwrap().display(), "1.50", "trailing zeros are not decimals");
        for (bad, why) in [("-5", "greater than 0"), ("0", "greater than 0"), ("1.234", "at most 2 decimal"), ("\"abc\"", "decimal number"), ("1e13", "at most")] {
            let e = serde_json::from_str::<Amount>(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert!(Currency::parse("USD").is_ok() && Currency::parse("EUR").is_ok());
        assert!(Currency::parse("usd").is_err() && Currency::parse("XYZ").is_err() && Currency::parse("DOLLARS").is_err());
    }
}
