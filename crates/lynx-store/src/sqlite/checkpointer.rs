//! WAL checkpoints off the commit path, on a thread and connection of their own. By default SQLite
//! checkpoints inside the commit that takes the log past 1,000 pages: that commit copies the log into
//! the database file and syncs it before it returns, and every call waiting on that batch waits with
//! it (at 1,000 calls/s that was most of the writer's commit p99). The writer's connection turns
//! automatic checkpoints off (`writer::open`); this thread copies the log every `EVERY` instead, beside
//! the writer, which keeps committing meanwhile (a PASSIVE checkpoint takes no lock a writer needs).
//!
//! The log file starts over from its beginning — overwriting blocks it already has, so a commit's
//! sync never has to grow the file — only when a write transaction begins with every frame already
//! copied and no reader still on the old frames. Under load the writer commits while this thread
//! copies, so a round ends a few frames behind and the log would never start over. So once the log
//! is `RESTART_AT` frames long, a round raises `Restart`, and the writer copies the last few frames
//! itself the next time its queue is empty (`writer.rs`): nothing commits between that copy and its
//! next transaction, which starts the log over. Nothing here changes what is durable: a commit is
//! durable once the log is synced; checkpoints only move committed pages into the database file.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    time::Duration,
};

use lynx_model::store::{StoreError, StoreResult};
use rusqlite::Connection;

/// How often the log is copied into the database file.
const EVERY: Duration = Duration::from_millis(200);

/// Frames (4 KB pages) the log may reach before the writer is asked to start it over (16 MB). Starting
/// over costs the writer an fsync of the database file and one of the log's header, ~1.5 ms together
/// on this machine's disk: at every round, that would delay a call in a hundred at 1,000 calls/s.
const RESTART_AT: i64 = 4096;

/// Whether the log is long enough to start over: set by the checkpointer's rounds, cleared by the
/// writer once it has copied the last frames.
#[derive(Default)]
pub(super) struct Restart(AtomicBool);

impl Restart {
    pub(super) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, due: bool) {
        self.0.store(due, Ordering::Relaxed);
    }
    /// Copies whatever the log holds beyond the last checkpoint, on the writer's connection between
    /// batches (usually a few frames: the bulk was copied by the checkpointer), so that the writer's
    /// next transaction starts the log over. Cleared whatever the outcome: the next round looks again.
    pub(super) fn catch_up(&self, conn: &Connection) {
        checkpoint(conn, "writer");
        self.set(false);
    }
}

/// The running checkpointer; dropping it stops the thread within one round.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Starts the checkpointer on a connection of its own (opened like the writer's).
pub(super) fn start(conn: Connection, restart: Arc<Restart>) -> StoreResult<Checkpointer> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("lynx-sqlite-checkpointer".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                if checkpoint(&conn, "checkpointer").is_some_and(|log| log >= RESTART_AT) {
                    restart.set(true);
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite checkpointer thread: {e}")))?;
    Ok(Checkpointer { _stop: stop })
}

/// A PASSIVE checkpoint: copies what no reader still needs, waits for nobody (another process
/// checkpointing at the moment makes it copy nothing). The frames in the log, or `None` if it failed.
/// `LYNX_LOG=lynx_store::sqlite::checkpointer=debug` logs each one's size and time.
fn checkpoint(conn: &Connection, by: &str) -> Option<i64> {
    let started = std::time::Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
        Ok((log, copied)) => {
            tracing::debug!(by, frames = log, copied, took_us = started.elapsed().as_micros() as u64, "wal checkpoint");
            Some(log)
        }
        Err(e) => {
            tracing::warn!(by, error = %e, "WAL checkpoint failed; the next round tries again");
            None
        }
    }
}
