//! Rows as the protocols read them, whichever engine (and library) produced them.
//!
//! Each engine turns its rows into `Row`s of `Cell`s — SQLite's storage classes (integer, real, text),
//! PostgreSQL's types (uuid, timestamptz, numeric, jsonb, …) — and the getters here read a cell as the
//! type a record needs, accepting either engine's spelling: a UUID is a `uuid` or its text, a time a
//! `timestamptz` or the text SQLite stores. One decoder per record then serves both engines.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use lynx_model::{TenantId, store::StoreResult};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::error::corrupt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Json(Value),
    Decimal(Decimal),
}

/// One result row: its cells by column name.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<[Box<str>]>,
    cells: Vec<Cell>,
}

impl Row {
    pub fn new(names: Arc<[Box<str>]>, cells: Vec<Cell>) -> Self {
        Self { names, cells }
    }

    /// Takes a column's cell out of the row (the decoders read each column once).
    fn take(&mut self, column: &str) -> StoreResult<Cell> {
        let i = self.names.iter().position(|n| &**n == column).ok_or_else(|| corrupt(format!("no column {column}")))?;
        Ok(std::mem::replace(&mut self.cells[i], Cell::Null))
    }

    /// The first column (for `SELECT COUNT(*)` and the like).
    pub fn first(&mut self) -> Cell {
        self.cells.first_mut().map(|c| std::mem::replace(c, Cell::Null)).unwrap_or(Cell::Null)
    }

    fn required<T>(column: &str, value: Option<T>) -> StoreResult<T> {
        value.ok_or_else(|| corrupt(format!("{column} is NULL")))
    }

    pub fn opt_text(&mut self, column: &str) -> StoreResult<Option<String>> {
        match self.take(column)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            Cell::Uuid(u) => Ok(Some(u.to_string())),
            Cell::Json(v) => Ok(Some(v.to_string())),
            Cell::Int(i) => Ok(Some(i.to_string())),
            other => Err(corrupt(format!("{column}: expected text, found {other:?}"))),
        }
    }
    pub fn text(&mut self, column: &str) -> StoreResult<String> {
        let v = self.opt_text(column)?;
        Self::required(column, v)
    }

    pub fn opt_int(&mut self, column: &str) -> StoreResult<Option<i64>> {
        cell_int(column, self.take(column)?)
    }
    pub fn int(&mut self, column: &str) -> StoreResult<i64> {
        let v = self.opt_int(column)?;
        Self::required(column, v)
    }

    pub fn opt_real(&mut self, column: &str) -> StoreResult<Option<f64>> {
        match self.take(column)? {
            Cell::Null => Ok(None),
            Cell::Real(r) => Ok(Some(r)),
            Cell::Int(i) => Ok(Some(i as f64)),
            other => Err(corrupt(format!("{column}: expected a number, found {other:?}"))),
        }
    }

    /// A boolean: PostgreSQL's `boolean`, SQLite's 0/1.
    pub fn flag(&mut self, column: &str) -> StoreResult<bool> {
        match self.take(column)? {
            Cell::Bool(b) => Ok(b),
            Cell::Int(i) => Ok(i != 0),
            Cell::Null => Ok(false),
            other => Err(corrupt(format!("{column}: expected a boolean, found {other:?}"))),
        }
    }

    pub fn opt_uuid(&mut self, column: &str) -> StoreResult<Option<Uuid>> {
        match self.take(column)? {
            Cell::Null => Ok(None),
            Cell::Uuid(u) => Ok(Some(u)),
            Cell::Text(s) => Uuid::parse_str(&s).map(Some).map_err(|e| corrupt(format!("{column}: {e}"))),
            other => Err(corrupt(format!("{column}: expected a uuid, found {other:?}"))),
        }
    }
    pub fn uuid(&mut self, column: &str) -> StoreResult<Uuid> {
        let v = self.opt_uuid(column)?;
        Self::required(column, v)
    }

    /// A UUID as one of the vocabulary's id types.
    pub fn id<T: From<Uuid>>(&mut self, column: &str) -> StoreResult<T> {
        self.uuid(column).map(T::from)
    }

    pub fn opt_time(&mut self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        match self.take(column)? {
            Cell::Null => Ok(None),
            Cell::Time(t) => Ok(Some(t)),
            Cell::Text(s) => parse_time(&s).map(Some),
            other => Err(corrupt(format!("{column}: expected a time, found {other:?}"))),
        }
    }
    pub fn time(&mut self, column: &str) -> StoreResult<DateTime<Utc>> {
        let v = self.opt_time(column)?;
        Self::required(column, v)
    }

    pub fn opt_json(&mut self, column: &str) -> StoreResult<Option<Value>> {
        match self.take(column)? {
            Cell::Null => Ok(None),
            Cell::Json(v) => Ok(Some(v)),
            Cell::Text(s) => serde_json::from_str(&s).map(Some).map_err(|e| corrupt(format!("{column}: {e}"))),
            other => Err(corrupt(format!("{column}: expected JSON, found {other:?}"))),
        }
    }
    pub fn json(&mut self, column: &str) -> StoreResult<Value> {
        let v = self.opt_json(column)?;
        Self::required(column, v)
    }

    pub fn decimal(&mut self, column: &str) -> StoreResult<Decimal> {
        match self.take(column)? {
            Cell::Decimal(d) => Ok(d),
            Cell::Text(s) => s.parse().map_err(|e| corrupt(format!("{column}: {e}"))),
            Cell::Int(i) => Ok(Decimal::from(i)),
            other => Err(corrupt(format!("{column}: expected a decimal, found {other:?}"))),
        }
    }

    pub fn tenant(&mut self, column: &str) -> StoreResult<TenantId> {
        TenantId::parse(self.text(column)?).map_err(corrupt)
    }

    /// A column parsed by one of the vocabulary's `parse` functions.
    pub fn parsed<T>(&mut self, column: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
        let text = self.text(column)?;
        parse(&text).ok_or_else(|| corrupt(format!("{column}: unknown value {text:?}")))
    }
}

pub(crate) fn cell_int(column: &str, cell: Cell) -> StoreResult<Option<i64>> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(i) => Ok(Some(i)),
        Cell::Bool(b) => Ok(Some(i64::from(b))),
        other => Err(corrupt(format!("{column}: expected an integer, found {other:?}"))),
    }
}

/// A time as SQLite stores it: the text sqlx has always written (RFC 3339, `+00:00`).
pub(crate) fn ts(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Reads what `ts` writes, and SQLite's own `datetime()` spelling (UTC without an offset), which an
/// operator's hand-written SQL may have stored.
pub(crate) fn parse_time(text: &str) -> StoreResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| corrupt(format!("{text:?} is not a time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_exactly() {
        let now = Utc::now();
        assert_eq!(parse_time(&ts(&now)).unwrap(), now);
        assert_eq!(parse_time("2026-11-26 05:00:01").unwrap().to_rfc3339(), "2026-11-26T05:00:01+00:00");
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn cells_read_as_either_engine_spells_them() {
        let id = Uuid::now_v7();
        let names: Arc<[Box<str>]> = ["a", "b", "c", "d"].into_iter().map(Box::from).collect();
        let mut sqlite = Row::new(names.clone(), vec![Cell::Text(id.to_string()), Cell::Int(1), Cell::Text("1.50".into()), Cell::Text("{\"x\":1}".into())]);
        let mut pg = Row::new(names, vec![Cell::Uuid(id), Cell::Bool(true), Cell::Decimal("1.50".parse().unwrap()), Cell::Json(serde_json::json!({"x": 1}))]);
        for row in [&mut sqlite, &mut pg] {
            assert_eq!(row.uuid("a").unwrap(), id);
            assert!(row.flag("b").unwrap());
            assert_eq!(row.decimal("c").unwrap().to_string(), "1.50");
            assert_eq!(row.json("d").unwrap(), serde_json::json!({"x": 1}));
        }
        assert!(sqlite.text("a").is_err(), "a column is read once");
    }
}
