//! Group commit for every SQLite write, on a thread of its own. SQLite admits one writer at a time and
//! each commit costs an fsync; so all of a process's write operations queue here, and one connection —
//! owned by one dedicated thread — runs whatever has queued up inside a single transaction: the audit
//! rows appended together, then every other operation in its own SAVEPOINT (one operation's failure
//! undoes only its own changes), then commits once. Every caller gets its result only after that
//! commit: durable as before, but one fsync serves many operations. Operations run one after the other
//! in arrival order, each seeing the ones before it, exactly as separate transactions would.
//!
//! Why a thread and `rusqlite` rather than an async sqlx connection: sqlx runs each SQLite connection on
//! its own worker thread and sends it every statement as a message, so a batch of a few dozen
//! operations was a few hundred thread wake-ups — on two busy cores, most of a batch's time. Here the
//! whole batch runs as plain function calls, with statements prepared once and cached; the protocols of
//! `ops/` run on it through `values::Writing`. Reads stay on sqlx's pool (`mod.rs`); both libraries
//! link the same SQLite.

use std::sync::Arc;

use lynx_model::{
    audit::NewAuditEvent,
    store::{StoreError, StoreResult},
};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::{BUSY_TIMEOUT, PRAGMAS, append_audit_rows, checkpointer::Restart};
use crate::{db::Changes, error::map_rusqlite as rs_map};

/// Sends an operation's result once the batch's commit is known.
type Deliver = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// One queued operation: runs inside a savepoint; says whether to keep its changes and how to deliver.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Deliver) + Send>;

/// What callers queue. Audit rows are the bulk of all writes (two per call) and never fail on their
/// own — only when the database does — so a batch appends all of its rows together, first, without a
/// savepoint each: a failed append fails the whole batch, which is then rolled back.
enum Work {
    Audit(Vec<NewAuditEvent>, oneshot::Sender<StoreResult<()>>),
    Job(Job),
}

/// The most operations one transaction takes.
const MAX_BATCH: usize = 256;

/// Batches the writer runs back to back, its queue never empty, before it copies the checkpointer's
/// last frames anyway (else, at saturation, the log would never start over and would grow).
const CATCH_UP_AT_LATEST: usize = 64;

#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Work>,
}

/// Opens the writer's connection with the read pool's settings (`PRAGMAS`).
pub(super) fn open(path: &str) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(rs_map)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(rs_map)?;
    for (name, value) in PRAGMAS {
        conn.execute_batch(&format!("PRAGMA {name} = {value}")).map_err(rs_map)?;
    }
    // Checkpoints run on a thread of their own (`checkpointer.rs`), never inside a commit.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0").map_err(rs_map)?;
    // Every statement Lynx writes with, and the audit insert for each number of rows, stay prepared.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

impl Writer {
    /// Starts the writer thread, which owns `conn` until every `Writer` handle is dropped. When the
    /// checkpointer asks (`Restart`), the writer copies the log's last frames between batches, once its
    /// queue is empty, so that the log starts over: no call waits for that copy unless it arrives during it.
    pub(super) fn start(conn: Connection, restart: Arc<Restart>) -> StoreResult<Self> {
        let (queue, mut rx) = mpsc::channel::<Work>(4096);
        std::thread::Builder::new()
            .name("lynx-sqlite-writer".into())
            .spawn(move || {
                let mut busy_batches = 0;
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = Batch::default();
                    batch.add(first);
                    batch.take_queued(&mut rx, MAX_BATCH);
                    run_batch(&conn, batch, &mut rx);
                    if restart.is_set() {
                        busy_batches += 1;
                        if rx.is_empty() || busy_batches >= CATCH_UP_AT_LATEST {
                            restart.catch_up(&conn);
                            busy_batches = 0;
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Self { queue })
    }

    /// Runs `op` in the next batch and returns its result once the batch is committed. Its changes
    /// stay only if it succeeds and says to keep them.
    pub(super) async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<Changes<T>> + Send + 'static,
    {
        let (done, wait) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            let (keep, result) = match op(conn) {
                Ok(Changes::Keep(t)) => (true, Ok(t)),
                Ok(Changes::Undo(t)) => (false, Ok(t)),
                Err(e) => (false, Err(e)),
            };
            let deliver: Deliver = Box::new(move |committed| {
                let _ = done.send(committed.and(result));
            });
            (keep, deliver)
        });
        let stopped = || StoreError::Unavailable("the write was not carried out: its SQLite batch failed or the writer has stopped".into());
        self.queue.send(Work::Job(job)).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Appends audit rows in the next batch and returns once the batch is committed.
    pub(super) async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.queue.send(Work::Audit(events, done)).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

/// What one transaction will carry: every queued audit row, then the operations in arrival order.
#[derive(Default)]
struct Batch {
    events: Vec<NewAuditEvent>,
    audited: Vec<oneshot::Sender<StoreResult<()>>>,
    jobs: Vec<Job>,
}

impl Batch {
    fn add(&mut self, work: Work) {
        match work {
            Work::Audit(events, done) => {
                self.events.extend(events);
                self.audited.push(done);
            }
            Work::Job(job) => self.jobs.push(job),
        }
    }
    fn len(&self) -> usize {
        self.audited.len() + self.jobs.len()
    }
    /// Adds whatever is already queued, up to `room` items.
    fn take_queued(&mut self, rx: &mut mpsc::Receiver<Work>, room: usize) {
        while self.len() < room {
            match rx.try_recv() {
                Ok(work) => self.add(work),
                Err(_) => break,
            }
        }
    }
}

/// Runs one operation; whether to keep its changes. An operation that panics (a bug) is undone and its
/// caller told the writer failed — the thread, and every other caller, carry on.
fn run_job(conn: &Connection, job: Job, delivers: &mut Vec<Deliver>) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
        Ok((keep, deliver)) => {
            delivers.push(deliver);
            keep
        }
        Err(_) => {
            tracing::error!("a SQLite write operation panicked; its changes are undone");
            false
        }
    }
}

/// Runs one batch in one transaction and delivers every result after the commit (or the failure).
/// Work that arrives while the batch runs joins it before the commit (up to `MAX_BATCH`): under load
/// one fsync then serves everything that queued meanwhile; alone, a write commits at once.
fn run_batch(conn: &Connection, mut batch: Batch, rx: &mut mpsc::Receiver<Work>) {
    let started = std::time::Instant::now();
    let mut committing = started;
    let rows = batch.events.len();
    let mut delivers: Vec<Deliver> = Vec::with_capacity(batch.jobs.len());
    let mut audited = Vec::new();
    let mut taken = 0;
    let outcome = (|| -> StoreResult<()> {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(rs_map)?;
        // Alone in its transaction, an operation needs no savepoint: the transaction is its own.
        if batch.jobs.len() == 1 && batch.events.is_empty() && rx.is_empty() {
            taken = 1;
            let keep = batch.jobs.pop().is_some_and(|job| run_job(conn, job, &mut delivers));
            committing = std::time::Instant::now();
            return conn.execute_batch(if keep { "COMMIT" } else { "ROLLBACK" }).map_err(rs_map);
        }
        loop {
            taken += batch.len();
            let Batch { events, audited: waiting, jobs } = std::mem::take(&mut batch);
            audited.extend(waiting);
            if !events.is_empty() {
                append_audit_rows(conn, &events)?;
            }
            for job in jobs {
                conn.execute_batch("SAVEPOINT op").map_err(rs_map)?;
                let keep = run_job(conn, job, &mut delivers);
                conn.execute_batch(if keep { "RELEASE op" } else { "ROLLBACK TO op; RELEASE op" }).map_err(rs_map)?;
            }
            batch.take_queued(rx, MAX_BATCH.saturating_sub(taken));
            if batch.len() == 0 {
                break;
            }
        }
        committing = std::time::Instant::now();
        conn.execute_batch("COMMIT").map_err(rs_map)
    })();
    // `LYNX_LOG=lynx_store::sqlite::writer=debug`: every batch's size and where its time went (the
    // commit is the log's sync; checkpoints run beside it, `checkpointer.rs`).
    tracing::debug!(
        operations = taken,
        first_rows = rows,
        run_us = committing.duration_since(started).as_micros() as u64,
        commit_us = committing.elapsed().as_micros() as u64,
        ok = outcome.is_ok(),
        "sqlite batch"
    );
    if outcome.is_err() && !conn.is_autocommit() {
        // Whatever failed (a full disk, a lost lock), nothing of this batch may stay half-applied.
        let _ = conn.execute_batch("ROLLBACK");
    }
    // Operations that never ran (the batch failed before them) learn of it through their dropped
    // channel; the ones that ran, and every audit append, learn whether the batch was committed.
    for deliver in delivers {
        deliver(outcome.clone());
    }
    for done in audited {
        let _ = done.send(outcome.clone());
    }
    // Audit appends taken into the batch but never reached (it failed first) are told too.
    for done in batch.audited {
        let _ = done.send(outcome.clone());
    }
}
