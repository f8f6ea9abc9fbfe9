//! How SQLite stores each kind of value — UUIDs, times, JSON and decimals as text, booleans as 0/1 —
//! for both libraries that talk to it: sqlx on the read pool and rusqlite on the writer thread. The
//! `Db` implementations of both live here, so the two can never disagree about a stored value.

use std::{
    future::Future,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use lynx_model::store::{StoreError, StoreResult};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use sqlx::{Column, Row as _, SqlitePool, TypeInfo, ValueRef as _, sqlite::SqliteRow};

use crate::{
    db::{BoxFuture, Db},
    error::{map, map_rusqlite},
    row::{Cell, Row, ts},
    sql::{Arg, Dialect, Query},
};

/// The read pool (sqlx).
pub(super) struct Reader<'a>(pub(super) &'a SqlitePool);

type SqlxQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind<'q>(q: SqlxQuery<'q>, arg: &'q Arg<'q>) -> SqlxQuery<'q> {
    match arg {
        Arg::Text(v) => q.bind(v.as_deref()),
        Arg::Int(v) => q.bind(*v),
        Arg::Real(v) => q.bind(*v),
        Arg::Bool(v) => q.bind(*v),
        Arg::Uuid(v) => q.bind(v.map(|u| u.to_string())),
        Arg::Time(v) => q.bind(v.as_ref().map(ts)),
        Arg::Json(v) => q.bind(v.as_ref().map(|j| j.to_string())),
        Arg::Decimal(v) => q.bind(v.map(|d| d.to_string())),
    }
}

fn prepare<'q>(query: &'q Query<'q>) -> SqlxQuery<'q> {
    let sql = sqlx::AssertSqlSafe(query.text(Dialect::Sqlite).into_owned());
    query.args.iter().fold(sqlx::query(sql), bind)
}

fn cells_of(rows: Vec<SqliteRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let names: Arc<[Box<str>]> = first.columns().iter().map(|c| Box::from(c.name())).collect();
    rows.iter()
        .map(|r| {
            let cells = (0..names.len())
                .map(|i| {
                    let raw = r.try_get_raw(i).map_err(map)?;
                    if raw.is_null() {
                        return Ok(Cell::Null);
                    }
                    let kind = raw.type_info().name().to_string();
                    Ok(match kind.as_str() {
                        "INTEGER" | "BOOLEAN" => Cell::Int(r.try_get_unchecked(i).map_err(map)?),
                        "REAL" => Cell::Real(r.try_get_unchecked(i).map_err(map)?),
                        "BLOB" => Cell::Text(String::from_utf8_lossy(&r.try_get_unchecked::<Vec<u8>, _>(i).map_err(map)?).into_owned()),
                        _ => Cell::Text(r.try_get_unchecked(i).map_err(map)?),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Row::new(names.clone(), cells))
        })
        .collect()
}

impl Db for Reader<'_> {
    fn execute<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move { prepare(query).execute(self.0).await.map(|r| r.rows_affected()).map_err(map) })
    }
    fn fetch<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<Vec<Row>>> {
        Box::pin(async move { cells_of(prepare(query).fetch_all(self.0).await.map_err(map)?) })
    }
}

/// The writer thread's connection (rusqlite), inside its batch's transaction.
pub(super) struct Writing<'c>(&'c rusqlite::Connection);

impl<'c> Writing<'c> {
    pub(super) fn new(conn: &'c rusqlite::Connection) -> Self {
        Self(conn)
    }
}

// SAFETY: a `Writing` is made on the writer thread, lent to one operation's future, and that future is
// polled to completion by `run_now` on the same thread while the borrow lasts; it never crosses a
// thread. `Db` asks for `Send` only so that PostgreSQL's futures, which do move, can share the trait.
unsafe impl Send for Writing<'_> {}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(Some(i)) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Arg::Real(Some(r)) => ToSqlOutput::Owned(SqlValue::Real(*r)),
            Arg::Bool(Some(b)) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
            Arg::Uuid(Some(u)) => ToSqlOutput::Owned(SqlValue::Text(u.to_string())),
            Arg::Time(Some(t)) => ToSqlOutput::Owned(SqlValue::Text(ts(t))),
            Arg::Json(Some(j)) => ToSqlOutput::Owned(SqlValue::Text(j.to_string())),
            Arg::Decimal(Some(d)) => ToSqlOutput::Owned(SqlValue::Text(d.to_string())),
            _ => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

impl Writing<'_> {
    fn run_execute(&self, query: &Query<'_>) -> StoreResult<u64> {
        let mut statement = self.0.prepare_cached(&query.text(Dialect::Sqlite)).map_err(map_rusqlite)?;
        statement.execute(rusqlite::params_from_iter(query.args.iter())).map(|n| n as u64).map_err(map_rusqlite)
    }

    fn run_fetch(&self, query: &Query<'_>) -> StoreResult<Vec<Row>> {
        let mut statement = self.0.prepare_cached(&query.text(Dialect::Sqlite)).map_err(map_rusqlite)?;
        let names: Arc<[Box<str>]> = statement.column_names().into_iter().map(Box::from).collect();
        let mut rows = statement.query(rusqlite::params_from_iter(query.args.iter())).map_err(map_rusqlite)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(map_rusqlite)? {
            let cells = (0..names.len())
                .map(|i| {
                    Ok(match r.get_ref(i).map_err(map_rusqlite)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(n) => Cell::Int(n),
                        ValueRef::Real(x) => Cell::Real(x),
                        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            out.push(Row::new(names.clone(), cells));
        }
        Ok(out)
    }
}

impl Db for Writing<'_> {
    fn execute<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<u64>> {
        let result = self.run_execute(query);
        Box::pin(std::future::ready(result))
    }
    fn fetch<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<Vec<Row>>> {
        let result = self.run_fetch(query);
        Box::pin(std::future::ready(result))
    }
}

/// Runs a protocol's future on the writer thread. Every statement on a `Writing` completes at once,
/// so the future is ready the first time it is polled; nothing ever waits or wakes.
pub(super) fn run_now<T>(future: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Unavailable("a SQLite write waited on something other than its connection".into())),
    }
}
