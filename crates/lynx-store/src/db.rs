//! The statement interface each engine implements, and what an engine provides around it.
//!
//! The protocols in `ops/` run their statements on a `&mut dyn Db`: the read pool, or one write
//! transaction. An `Engine` says how a write runs — SQLite: on its writer thread, inside the current
//! group-committed batch; PostgreSQL: in a transaction of its own, narrowed to the tenant for row-level
//! security — and everything the two share sits above it, in `store.rs`.

use std::{future::Future, pin::Pin};

use lynx_model::{TenantId, audit::NewAuditEvent, store::StoreResult};

use crate::{
    row::{Cell, Row},
    sql::Query,
};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where statements run: a pool or a transaction.
pub(crate) trait Db: Send {
    /// Runs a statement; the number of rows it changed.
    fn execute<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<u64>>;
    /// Runs a query; its rows.
    fn fetch<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<Vec<Row>>>;
}

/// At most one row.
pub(crate) async fn fetch_opt(db: &mut dyn Db, query: Query<'_>) -> StoreResult<Option<Row>> {
    Ok(db.fetch(&query).await?.into_iter().next())
}

/// All rows, each decoded.
pub(crate) async fn fetch_all<T>(db: &mut dyn Db, query: Query<'_>, decode: impl Fn(Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    db.fetch(&query).await?.into_iter().map(decode).collect()
}

/// At most one row, decoded.
pub(crate) async fn fetch_one_as<T>(db: &mut dyn Db, query: Query<'_>, decode: impl Fn(Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
    fetch_opt(db, query).await?.map(decode).transpose()
}

/// The integer in the first column of the first row (`COUNT(*)`); 0 when there is no row.
pub(crate) async fn count(db: &mut dyn Db, query: Query<'_>) -> StoreResult<i64> {
    match fetch_opt(db, query).await? {
        Some(mut row) => Ok(crate::row::cell_int("count", row.first())?.unwrap_or(0)),
        None => Ok(0),
    }
}

/// The text in the first column of the first row, if any.
pub(crate) async fn text(db: &mut dyn Db, query: Query<'_>) -> StoreResult<Option<String>> {
    match fetch_opt(db, query).await? {
        Some(mut row) => match row.first() {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            other => Err(crate::error::corrupt(format!("expected text, found {other:?}"))),
        },
        None => Ok(None),
    }
}

pub(crate) async fn execute(db: &mut dyn Db, query: Query<'_>) -> StoreResult<u64> {
    db.execute(&query).await
}

/// How much of a transaction a write needs (SQLite's writer thread gives every write a transaction of
/// its batch whatever is asked; the distinction is PostgreSQL's).
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// Each statement commits on its own: for a write whose one change is a single insert or update
    /// (reads before or after it, each with a snapshot of its own, need no transaction).
    Statement,
    /// One transaction.
    Transaction,
    /// One transaction that sees only this tenant's rows.
    Tenant(TenantId),
}

/// What a write decided about the changes it made: the engine commits them, or undoes them all.
#[derive(Debug)]
pub(crate) enum Changes<T> {
    Keep(T),
    /// Nothing may stay: the write found a reason to apply nothing (a claim an operator closed, a draft
    /// that moved meanwhile) after it had begun to change things, and reports it as `T`. Undoing is
    /// the engine's rollback, so such a write needs no compensating statements, and only it pays for
    /// the round trip.
    Undo(T),
}

/// A write: runs on the transaction it is given.
pub(crate) type WriteOp<T> = Box<dyn for<'c> FnOnce(&'c mut dyn Db) -> BoxFuture<'c, StoreResult<Changes<T>>> + Send>;

#[async_trait::async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for status lines.
    const NAME: &'static str;
    /// Whether concurrent writes already share commits inside the engine.
    const GROUP_COMMITS: bool;
    /// The versions of the engine's migrations (`migrations/<engine>/`).
    fn migrations(&self) -> Vec<i64>;
    /// Applies the engine's pending migrations.
    async fn run_migrations(&self) -> StoreResult<()>;
    /// Anything besides a statement's answer that a ping must check (a Supabase project's REST
    /// endpoint; the room left on SQLite's disk).
    async fn ping_services(&self) -> StoreResult<()> {
        Ok(())
    }
    /// The read pool, for statements that each stand alone.
    fn reader(&self) -> Box<dyn Db + '_>;
    /// Runs a write: its changes commit when it returns `Ok`, and none of them when it fails.
    async fn write<T: Send + 'static>(&self, scope: Scope, op: WriteOp<T>) -> StoreResult<T>;
    /// Appends audit rows (each engine has its own way of batching them).
    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()>;
}
