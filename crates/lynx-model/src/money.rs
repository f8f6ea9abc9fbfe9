//! Money: an `Amount` that is positive with at most two decimals, and a `Currency` that is an active
//! ISO 4217 code. Exact decimal throughout: a string is read by the grammar `Amount::parse` states, and
//! a JSON number reaches it as its literal digits whenever an `f64` would not hold them exactly
//! (`lynx_mcp::exact_numbers`), so `10.1` is ten point one and `100.10000000000000000000000001` is refused.

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
    /// Money as written: digits, then optionally `.` and at most two more digits — no sign, exponent,
    /// spaces or separators (the published schema's pattern, applied to the literal).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(magnitude) = s.strip_prefix('-') {
            // Say what is wrong with `-5.00` (its sign), not that it is written oddly.
            if Self::parse(magnitude).is_ok() {
                return Err(format!("must be greater than 0 (got {})", crate::params::truncate(s, 40)));
            }
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) || s.len() > 40 {
            return Err(format!(
                "must be written as digits with an optional decimal point, such as 1250.00 — no sign, exponent or spaces (got {:?})",
                crate::params::truncate(s, 40)
            ));
        }
        if frac.len() > 2 {
            return Err(format!("must have at most 2 decimal places (got {})", crate::params::truncate(s, 40)));
        }
        let d: Decimal = s.parse().map_err(|_| format!("must be at most {MAX_AMOUNT}"))?;
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

    /// Whether the currency has the minor units the amount uses: a yen amount is whole (`1500.50 JPY`
    /// is refused). Currencies with three minor units still take at most two decimals here.
    pub fn fits(self, currency: &Currency) -> Result<(), String> {
        let used = self.0.normalize().scale();
        let allowed = currency.minor_units().min(2);
        if used > allowed {
            return Err(if allowed == 0 {
                format!("{currency} has no minor units: the amount must be a whole number (got {})", self.0.normalize())
            } else {
                format!("{currency} takes at most {allowed} decimal places (got {})", self.0.normalize())
            });
        }
        Ok(())
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

    /// ISO 4217's minor units: 0 for the yen and the other whole-number currencies, 3 for the dinars and
    /// rials that count in thousandths, 2 otherwise.
    pub fn minor_units(&self) -> u32 {
        const NONE: &str = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF";
        const THREE: &str = "BHD IQD JOD KWD LYD OMR TND";
        if NONE.split(' ').any(|c| c == self.0) {
            0
        } else if THREE.split(' ').any(|c| c == self.0) {
            3
        } else {
            2
        }
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
        assert_eq!(serde_json::from_str::<Amount>("1.500").unwrap().display(), "1.50", "a number's trailing zeros are not decimals");
        assert_eq!(serde_json::from_str::<Amount>("\"0012.5\"").unwrap().display(), "12.50");
        for (bad, why) in [
            ("-5", "greater than 0"),
            ("0", "greater than 0"),
            ("\"0.00\"", "greater than 0"),
            ("1.234", "at most 2 decimal"),
            ("\"1.500\"", "at most 2 decimal places (got 1.500)"),
            ("\"1000.004999999999999999\"", "(got 1000.004999999999999999)"),
            ("\"abc\"", "digits with an optional decimal point"),
            ("1e13", "at most"),
            ("\"9999999999999999999999999999999\"", "at most"),
        ] {
            let e = serde_json::from_str::<Amount>(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(Amount::parse("-5.00").unwrap_err().contains("greater than 0"));
        for written in ["5e2", "+500", " 500", "500 ", "1,000.00", "--5", "-5e2", "5.", ".5", "", "0x10", "١٢"] {
            let e = Amount::parse(written).unwrap_err();
            assert!(e.contains("no sign, exponent or spaces"), "{written:?}: {e}");
        }
    }

    #[test]
    fn an_amount_uses_no_more_minor_units_than_its_currency_has() {
        let c = |s: &str| Currency::parse(s).unwrap();
        assert!(Amount::parse("1500").unwrap().fits(&c("JPY")).is_ok());
        assert!(Amount::parse("1500.00").unwrap().fits(&c("JPY")).is_ok(), "zeros are not minor units");
        assert!(Amount::parse("1500.5").unwrap().fits(&c("JPY")).unwrap_err().contains("whole number"));
        assert!(Amount::parse("10.25").unwrap().fits(&c("USD")).is_ok() && Amount::parse("10.25").unwrap().fits(&c("KWD")).is_ok());
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert!(Currency::parse("USD").is_ok() && Currency::parse("EUR").is_ok());
        assert!(Currency::parse("usd").is_err() && Currency::parse("XYZ").is_err() && Currency::parse("DOLLARS").is_err());
    }
}
