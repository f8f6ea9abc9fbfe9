//! Columns read the same way whichever SQLite library produced the row: sqlx's rows (the read pool)
//! and rusqlite's (the writer thread). One decoder per record type serves both, so the two can never
//! disagree about how a stored value reads back.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use lynx_model::store::StoreResult;
use sqlx::{Row, sqlite::SqliteRow};

use crate::error::{corrupt, map, map_rusqlite};

pub(super) trait Columns {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;

    fn text(&self, column: &str) -> StoreResult<String> {
        self.opt_text(column)?.ok_or_else(|| corrupt(format!("{column} is NULL")))
    }
    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_text(column)?.map(|t| parse_time(&t)).transpose()
    }
    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        self.opt_time(column)?.ok_or_else(|| corrupt(format!("{column} is NULL")))
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.opt_int(column)?.unwrap_or(0) != 0)
    }
}

impl Columns for SqliteRow {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get(column).map_err(map)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(map)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column).map_err(map_rusqlite)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column).map_err(map_rusqlite)
    }
}

/// A time as stored: the text sqlx has always written (RFC 3339, `+00:00`), which `ts` writes too.
pub(super) fn ts(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Reads what `ts` writes, and SQLite's own `datetime()` spelling (UTC without an offset), which an
/// operator's hand-written SQL may have stored.
pub(super) fn parse_time(text: &str) -> StoreResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| corrupt(format!("{text:?} is not a time")))
}

/// Runs one statement inside the writer's transaction; the number of rows it changed.
pub(super) fn exec(conn: &rusqlite::Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<usize> {
    conn.prepare_cached(sql).and_then(|mut q| q.execute(args)).map_err(map_rusqlite)
}

/// The rows of a query inside the writer's transaction, each decoded by `decode`.
pub(super) fn query<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
    decode: impl Fn(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut q = conn.prepare_cached(sql).map_err(map_rusqlite)?;
    let mut rows = q.query(args).map_err(map_rusqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_rusqlite)? {
        out.push(decode(row)?);
    }
    Ok(out)
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
}
