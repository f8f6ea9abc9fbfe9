//! How PostgreSQL binds and returns each kind of value — its own types: `uuid`, `timestamptz`,
//! `numeric`, `jsonb`, `boolean` — and the `Db` implementations on the pool (each statement its own
//! transaction) and inside one transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lynx_model::store::StoreResult;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{Column, Postgres, Row as _, Transaction, TypeInfo, ValueRef as _, postgres::PgRow, types::Json};

use super::{lending::Lender, liveness::Liveness};
use crate::{
    db::{BoxFuture, Db},
    error::{corrupt, map},
    row::{Cell, Row},
    sql::{Arg, Dialect, Query},
};

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(q: PgQuery<'q>, arg: &'q Arg<'q>) -> PgQuery<'q> {
    match arg {
        Arg::Text(v) => q.bind(v.as_deref()),
        Arg::Int(v) => q.bind(*v),
        Arg::Real(v) => q.bind(*v),
        Arg::Bool(v) => q.bind(*v),
        Arg::Uuid(v) => q.bind(*v),
        Arg::Time(v) => q.bind(*v),
        Arg::Json(v) => q.bind(v.as_deref().map(Json)),
        Arg::Decimal(v) => q.bind(*v),
    }
}

fn prepare<'q>(query: &'q Query<'q>) -> PgQuery<'q> {
    let sql = sqlx::AssertSqlSafe(query.text(Dialect::Postgres).into_owned());
    query.args.iter().fold(sqlx::query(sql), bind)
}

fn cells_of(rows: Vec<PgRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let columns: Vec<(Box<str>, String)> = first.columns().iter().map(|c| (Box::from(c.name()), c.type_info().name().to_string())).collect();
    let names: Arc<[Box<str>]> = columns.iter().map(|(n, _)| n.clone()).collect();
    rows.iter()
        .map(|r| {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| {
                    if r.try_get_raw(i).map_err(map)?.is_null() {
                        return Ok(Cell::Null);
                    }
                    Ok(match kind.as_str() {
                        "INT8" => Cell::Int(r.try_get::<i64, _>(i).map_err(map)?),
                        "INT4" => Cell::Int(r.try_get::<i32, _>(i).map_err(map)?.into()),
                        "INT2" => Cell::Int(r.try_get::<i16, _>(i).map_err(map)?.into()),
                        "FLOAT8" => Cell::Real(r.try_get::<f64, _>(i).map_err(map)?),
                        "FLOAT4" => Cell::Real(r.try_get::<f32, _>(i).map_err(map)?.into()),
                        "BOOL" => Cell::Bool(r.try_get(i).map_err(map)?),
                        "UUID" => Cell::Uuid(r.try_get(i).map_err(map)?),
                        "TIMESTAMPTZ" => Cell::Time(r.try_get::<DateTime<Utc>, _>(i).map_err(map)?),
                        "NUMERIC" => Cell::Decimal(r.try_get::<Decimal, _>(i).map_err(map)?),
                        "JSONB" | "JSON" => Cell::Json(r.try_get::<Json<Value>, _>(i).map_err(map)?.0),
                        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Cell::Text(r.try_get(i).map_err(map)?),
                        "VOID" => Cell::Null,
                        other => return Err(corrupt(format!("{name}: PostgreSQL type {other} is not read by Lynx"))),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Row::new(names.clone(), cells))
        })
        .collect()
}

/// The pool: each statement commits on its own, on a connection lent for it (`lending.rs`).
pub(super) struct OnPool<'a>(pub(super) &'a Lender, pub(super) &'a Liveness);

impl Db for OnPool<'_> {
    fn execute<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let mut lent = self.0.lend(self.1).await.map_err(|e| self.1.failed(e))?;
            let changed = prepare(query).execute(lent.conn()).await.map(|r| r.rows_affected()).map_err(|e| self.1.failed(e))?;
            lent.ended_well();
            Ok(changed)
        })
    }
    fn fetch<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<Vec<Row>>> {
        Box::pin(async move {
            let mut lent = self.0.lend(self.1).await.map_err(|e| self.1.failed(e))?;
            let rows = prepare(query).fetch_all(lent.conn()).await.map_err(|e| self.1.failed(e))?;
            lent.ended_well();
            cells_of(rows)
        })
    }
}

/// One transaction; committed by the engine when the write succeeds, rolled back when it is dropped.
pub(super) struct InTransaction<'t>(pub(super) Transaction<'t, Postgres>, pub(super) &'t Liveness);

impl Db for InTransaction<'_> {
    fn execute<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move { prepare(query).execute(&mut *self.0).await.map(|r| r.rows_affected()).map_err(|e| self.1.failed(e)) })
    }
    fn fetch<'a>(&'a mut self, query: &'a Query<'a>) -> BoxFuture<'a, StoreResult<Vec<Row>>> {
        Box::pin(async move { cells_of(prepare(query).fetch_all(&mut *self.0).await.map_err(|e| self.1.failed(e))?) })
    }
}
