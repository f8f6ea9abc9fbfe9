//! Group commit for every SQLite write. SQLite admits one writer at a time and each commit costs an
//! fsync; so all of a process's write operations queue here, and one connection runs whatever has
//! queued up inside a single transaction — each operation in its own SAVEPOINT, so one operation's
//! failure undoes only its own changes — then commits once. Every caller gets its result only after
//! that commit: durable as before, but one fsync serves many operations. Operations run one after the
//! other, in arrival order, each seeing the ones before it, exactly as separate transactions would.

use std::future::Future;
use std::pin::Pin;

use lynx_model::store::{StoreError, StoreResult};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool, pool::PoolConnection};
use tokio::sync::{mpsc, oneshot};

use crate::error::map;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends an operation's result once the batch's commit is known.
type Deliver = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// One queued operation: runs inside a savepoint; says whether to keep its changes and how to deliver.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

/// The most operations one transaction takes.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the write loop on `pool` (a pool of exactly one connection).
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            // The writer keeps its connection: no pool round trip per batch.
            let mut conn: Option<PoolConnection<Sqlite>> = None;
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                if conn.is_none() {
                    conn = pool.acquire().await.ok();
                }
                match conn.as_mut() {
                    Some(c) => {
                        if run_batch(c, jobs).await.is_err() {
                            // The connection may be broken: take a fresh one for the next batch.
                            conn = None;
                        }
                    }
                    // No connection: the jobs are dropped, and their callers learn the writer failed.
                    None => drop(jobs),
                }
            }
        });
        Self { queue }
    }

    /// Runs `op` in the next batch and returns its result once the batch is committed.
    pub(super) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (done, wait) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                let keep = result.is_ok();
                let deliver: Deliver = Box::new(move |committed| {
                    let _ = done.send(committed.and(result));
                });
                (keep, deliver)
            })
        });
        let stopped = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.queue.send(job).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// Runs one batch in one transaction and delivers every result after the commit.
async fn run_batch(conn: &mut SqliteConnection, jobs: Vec<Job>) -> StoreResult<()> {
    let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let single = jobs.len() == 1;
    let outcome: StoreResult<()> = async {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map)?;
        for job in jobs {
            if single {
                // Alone in its transaction, an operation needs no savepoint: the transaction is its own.
                let (keep, deliver) = job(&mut tx).await;
                delivers.push(deliver);
                return if keep { tx.commit().await.map_err(map) } else { tx.rollback().await.map_err(map) };
            }
            let mut savepoint = tx.begin().await.map_err(map)?;
            let (keep, deliver) = job(&mut savepoint).await;
            delivers.push(deliver);
            if keep {
                savepoint.commit().await.map_err(map)?;
            } else {
                savepoint.rollback().await.map_err(map)?;
            }
        }
        tx.commit().await.map_err(map)
    }
    .await;
    // Operations that never ran (the batch failed before them) learn of it through their dropped
    // channel; the ones that ran learn whether their changes were committed.
    for deliver in delivers {
        deliver(outcome.clone());
    }
    outcome
}
