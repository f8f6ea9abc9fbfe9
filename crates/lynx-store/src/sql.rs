//! Statements written once for both engines.
//!
//! A `Query` is SQL text with numbered placeholders (`$1`, `$2`, …, PostgreSQL's spelling) and its
//! arguments as typed `Arg`s. The few places the dialects differ are written inline as comments that
//! only one engine keeps: `/*pg FOR UPDATE*/` is live on PostgreSQL and a comment on SQLite, and
//! `/*sqlite +*/created_at` the other way round. For SQLite the placeholders become `?1`, `?2`, …
//! Each engine binds an `Arg` the way its schema stores the value (a UUID is `uuid` on PostgreSQL and
//! text on SQLite), so the protocols in `ops/` never see an engine's types.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One argument, typed as the schema means it; `None` is SQL `NULL` of that type.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    /// A `jsonb` value on PostgreSQL, JSON text on SQLite.
    Json(Option<Cow<'a, Value>>),
    /// `NUMERIC` on PostgreSQL, exact decimal text on SQLite.
    Decimal(Option<Decimal>),
}

macro_rules! arg_from {
    ($($t:ty => $variant:ident $(via $conv:expr)?),* $(,)?) => {$(
        impl<'a> From<$t> for Arg<'a> {
            fn from(v: $t) -> Self {
                Arg::$variant(Some(arg_from!(@conv v $(, $conv)?)))
            }
        }
        impl<'a> From<Option<$t>> for Arg<'a> {
            fn from(v: Option<$t>) -> Self {
                Arg::$variant(v.map(|v| arg_from!(@conv v $(, $conv)?)))
            }
        }
    )*};
    (@conv $v:ident) => { $v };
    (@conv $v:ident, $conv:expr) => { $conv($v) };
}

arg_from! {
    &'a str => Text via Cow::Borrowed,
    String => Text via Cow::Owned,
    &'a String => Text via |s: &'a String| Cow::Borrowed(s.as_str()),
    i64 => Int,
    u32 => Int via i64::from,
    f64 => Real,
    bool => Bool,
    Uuid => Uuid,
    DateTime<Utc> => Time,
    &'a Value => Json via Cow::Borrowed,
    Value => Json via Cow::Owned,
    Decimal => Decimal,
}

impl<'a> From<&'a lynx_model::TenantId> for Arg<'a> {
    fn from(t: &'a lynx_model::TenantId) -> Self {
        Arg::Text(Some(Cow::Borrowed(t.as_str())))
    }
}

impl<'a> From<Option<&'a lynx_model::TenantId>> for Arg<'a> {
    fn from(t: Option<&'a lynx_model::TenantId>) -> Self {
        Arg::Text(t.map(|t| Cow::Borrowed(t.as_str())))
    }
}

/// Ids are UUIDs; the vocabulary's enums and validated strings are their text.
macro_rules! arg_via {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl<'a> From<$t> for Arg<'a> {
            fn from($v: $t) -> Self {
                $e
            }
        }
    )*};
}

arg_via! {
    lynx_model::DraftId => |v| Arg::Uuid(Some(v.0)),
    lynx_model::ExecutionId => |v| Arg::Uuid(Some(v.0)),
    lynx_model::PaymentId => |v| Arg::Uuid(Some(v.0)),
    lynx_model::WorkflowId => |v| Arg::Uuid(Some(v.0)),
    lynx_model::RunId => |v| Arg::Uuid(Some(v.0)),
    lynx_model::vocab::PaymentStatus => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
    lynx_model::vocab::SettlementStatus => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
    lynx_model::draft::DraftStatus => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
    lynx_model::draft::DraftType => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
    Option<lynx_model::draft::DraftType> => |v| Arg::Text(v.map(|t| Cow::Borrowed(t.as_str()))),
    &'a lynx_model::money::Currency => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
    &'a lynx_model::params::IsoDate => |v| Arg::Text(Some(Cow::Borrowed(v.as_str()))),
}

/// SQL text and its arguments, in placeholder order.
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    sql: Cow<'a, str>,
    pub(crate) args: Vec<Arg<'a>>,
}

impl<'a> Query<'a> {
    pub fn new(sql: impl Into<Cow<'a, str>>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    /// The next argument (`$1` first).
    pub fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends text (for statements built from optional filters).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends a placeholder for `arg`.
    pub fn push_bind(&mut self, arg: impl Into<Arg<'a>>) -> &mut Self {
        self.args.push(arg.into());
        let n = self.args.len();
        self.sql.to_mut().push_str(&format!("${n}"));
        self
    }

    /// The text as `dialect` runs it.
    pub fn text(&self, dialect: Dialect) -> Cow<'_, str> {
        translate(&self.sql, dialect)
    }
}

/// Keeps the comment blocks of `dialect` live and drops the other's; on SQLite, `$n` becomes `?n`.
pub(crate) fn translate(sql: &str, dialect: Dialect) -> Cow<'_, str> {
    let (mine, theirs) = match dialect {
        Dialect::Postgres => ("/*pg ", "/*sqlite "),
        Dialect::Sqlite => ("/*sqlite ", "/*pg "),
    };
    let plain = !sql.contains("/*") && (dialect == Dialect::Postgres || !sql.contains('$'));
    if plain {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        let block = &rest[at..];
        let end = block.find("*/").map(|e| e + 2).unwrap_or(block.len());
        if let Some(body) = block.strip_prefix(mine) {
            out.push_str(&body[..end - 2 - mine.len()]);
        } else if !block.starts_with(theirs) {
            out.push_str(&block[..end]);
        }
        rest = &block[end..];
    }
    out.push_str(rest);
    if dialect == Dialect::Sqlite {
        out = dollars_to_question_marks(&out);
    }
    Cow::Owned(out)
}

fn dollars_to_question_marks(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    for (i, c) in sql.char_indices() {
        match c {
            '\'' => in_literal = !in_literal,
            '$' if !in_literal && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_gets_its_own_text() {
        let sql = "SELECT a FROM t WHERE x = $1 AND y = '$1' ORDER BY /*sqlite +*/b/*pg  FOR UPDATE*/ -- $2";
        assert_eq!(translate(sql, Dialect::Postgres), "SELECT a FROM t WHERE x = $1 AND y = '$1' ORDER BY b FOR UPDATE -- $2");
        assert_eq!(translate(sql, Dialect::Sqlite), "SELECT a FROM t WHERE x = ?1 AND y = '$1' ORDER BY +b -- ?2");
        assert!(matches!(translate("SELECT $1", Dialect::Postgres), Cow::Borrowed(_)));
        assert_eq!(translate("SELECT json_extract(x, '$.a')", Dialect::Sqlite), "SELECT json_extract(x, '$.a')");
    }

    #[test]
    fn built_queries_number_their_placeholders() {
        let mut q = Query::new("SELECT * FROM t WHERE tenant_id = $1").bind("t1");
        q.push(" AND status = ").push_bind("DRAFT");
        q.push(" LIMIT ").push_bind(10_i64);
        assert_eq!(q.text(Dialect::Postgres), "SELECT * FROM t WHERE tenant_id = $1 AND status = $2 LIMIT $3");
        assert_eq!(q.args.len(), 3);
    }
}
