//! The SQLite engine: one file, WAL journal, the log synced at every commit (`synchronous = FULL`: an
//! audited call must survive a crash), writers serialised by `BEGIN IMMEDIATE` so the audit chain never
//! forks. Reads run on sqlx's pool; every write runs on the writer thread (`writer.rs`),
//! group-committed, as a protocol of `ops/` over the writer's connection; WAL checkpoints run beside it
//! (`checkpointer.rs`). `values.rs` is how SQLite stores each kind of value.

mod checkpointer;
mod values;
mod writer;

use std::{str::FromStr, time::Duration};

use lynx_model::{
    audit::NewAuditEvent,
    store::{StoreError, StoreResult},
};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::{
    db::{Db, Engine, Scope, WriteOp},
    error::map,
    ops,
    store::Storage,
};

/// Every connection's settings, the writer's (rusqlite) and the readers' (sqlx) alike: WAL, a full
/// fsync at every commit, foreign keys, statement journals in memory, 16 MB of page cache per
/// connection (the default is 2 MB) so index pages stay in memory.
const PRAGMAS: [(&str, &str); 5] =
    [("journal_mode", "WAL"), ("synchronous", "FULL"), ("foreign_keys", "ON"), ("temp_store", "MEMORY"), ("cache_size", "-16000")];

/// Below this much room on the database's filesystem, storage counts as down. SQLite can still rewrite
/// pages inside a log it has already grown, so a small write (the health probe's) may succeed on a full
/// disk while every call, whose new rows need the log to grow, fails.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// How long a connection waits for another process (the CLI) holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store on SQLite.
pub type SqliteStore = Storage<Sqlite>;

pub struct Sqlite {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// Every write goes through here: one connection, group-committed batches (see `writer.rs`).
    writer: writer::Writer,
    /// Copies the WAL into the database file beside the writer (see `checkpointer.rs`).
    _checkpointer: checkpointer::Checkpointer,
    /// The file standing in for `:memory:`, removed on drop.
    scratch: Option<std::path::PathBuf>,
    /// The directory holding the database file, whose free space the ping checks.
    dir: std::path::PathBuf,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        if let Some(file) = &self.scratch {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

impl SqliteStore {
    pub async fn open(path: &str) -> StoreResult<Self> {
        // `:memory:` becomes a private file in the temp directory, removed when the store is dropped:
        // the writer thread and the read pool are separate connections and must see one database.
        let scratch = (path == ":memory:").then(|| std::env::temp_dir().join(format!("lynx-memory-{}.db", uuid::Uuid::new_v4().simple())));
        let path = scratch.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| path.to_string());
        // The writer's connection first: it creates the file and turns on WAL, which takes an exclusive
        // lock. The pool's connections, opened after, find WAL on already (two of them converting a
        // new file at once could fail with "database is locked").
        let restart = std::sync::Arc::new(checkpointer::Restart::default());
        let writer = writer::Writer::start(writer::open(&path)?, restart.clone())?;
        let checkpointer = checkpointer::start(writer::open(&path)?, restart)?;
        let options = PRAGMAS.iter().fold(
            SqliteConnectOptions::from_str(&format!("sqlite:{path}")).map_err(map)?.create_if_missing(true).busy_timeout(BUSY_TIMEOUT),
            |options, (name, value)| options.pragma(*name, *value),
        );
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            // A local file does not drop connections; a ping before every acquire is a wasted round trip.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(map)?;
        let dir = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf();
        Ok(Storage(Sqlite { pool, writer, _checkpointer: checkpointer, scratch, dir }))
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.0.pool
    }
}

#[async_trait::async_trait]
impl Engine for Sqlite {
    const NAME: &'static str = "sqlite";
    const GROUP_COMMITS: bool = true;

    fn migrations(&self) -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    fn reader(&self) -> Box<dyn Db + '_> {
        Box::new(values::Reader(&self.pool))
    }

    async fn ping_services(&self) -> StoreResult<()> {
        let room = rustix::fs::statvfs(&self.dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot tell the room left on the database's disk ({}): {e}", self.dir.display())))?;
        let free = room.f_bavail.saturating_mul(room.f_frsize);
        if free < MIN_FREE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "the database's disk is full: {free} bytes free in {}; free space there and Lynx recovers without a restart",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Every write is one operation of the writer's next batch, whatever its scope: the batch is a
    /// transaction and the operation its own savepoint in it.
    async fn write<T: Send + 'static>(&self, _scope: Scope, op: WriteOp<T>) -> StoreResult<T> {
        self.writer.write(move |conn| values::run_now(op(&mut values::Writing::new(conn)))).await
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        self.writer.append_audit(events).await
    }
}

/// Appends audit rows on the writer's connection, inside its batch.
fn append_audit_rows(conn: &rusqlite::Connection, events: &[NewAuditEvent]) -> StoreResult<()> {
    values::run_now(ops::audit::append(&mut values::Writing::new(conn), events))
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ops::{audit, executions}, sql::{Dialect, translate}};
    use lynx_model::store::Store;

    /// The plan SQLite picks for a query, one line per step.
    async fn plan(store: &SqliteStore, sql: &str) -> String {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(store.pool()).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }

    /// Cell calls and run lookups are per-call work: they must use their own indexes, never walk every
    /// execution or event of the tenant (which SQLite prefers, without statistics, to avoid a sort).
    #[tokio::test]
    async fn per_call_lookups_use_their_own_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("plan.db").display().to_string()).await.unwrap();
        store.migrate().await.unwrap();
        let live = plan(&store, &translate(executions::LIVE, Dialect::Sqlite)).await;
        assert!(live.contains("lynx_executions_tenant_draft_idx"), "{live}");
        let run = plan(&store, &translate(&format!("SELECT * FROM lynx_audit_events WHERE tenant_id = ? AND run_id = ?{}10", audit::RUN_ORDER), Dialect::Sqlite)).await;
        assert!(run.contains("lynx_audit_events_tenant_run_idx"), "{run}");
        // `lynx status`: the newest runs of every tenant, read backwards from the end, never sorted.
        let recent = plan(&store, &translate(&format!("SELECT c.run_id FROM lynx_audit_events c WHERE c.status <> 'STARTED'{}5", audit::ACROSS_TENANTS_ORDER), Dialect::Sqlite)).await;
        assert!(!recent.contains("TEMP B-TREE"), "{recent}");
        // `audit.domain.run.read`'s total_count: the tenant's index entries, never its rows.
        for since in ["", " AND c.created_at >= ?"] {
            let count = plan(&store, &format!("SELECT COUNT(*) FROM lynx_audit_events c{} AND c.tenant_id = ?{since}", audit::CLOSED_RUNS)).await;
            assert!(count.contains("COVERING INDEX lynx_audit_events_tenant_created_idx"), "{count}");
        }
    }

    /// Durability is a setting: every connection, the writer's and the readers', must fsync each commit.
    #[tokio::test]
    async fn every_connection_is_wal_with_full_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.db").display().to_string();
        let store = SqliteStore::open(&path).await.unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(store.pool()).await.unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2), "read pool");
        let writer = writer::open(&path).unwrap();
        let sync: i64 = writer.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let mode: String = writer.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2), "writer");
    }

    /// Checkpoints run beside the writer, and under a steady stream of commits the log still starts
    /// over (else it would grow by every frame written, without end).
    #[tokio::test]
    async fn the_log_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db").display().to_string();
        let store = SqliteStore::open(&path).await.unwrap();
        let writer = &store.0.writer;
        writer.write(|c| c.execute_batch("CREATE TABLE t (x BLOB)").map(crate::db::Changes::Keep).map_err(crate::error::map_rusqlite)).await.unwrap();
        // Each commit writes a 64 KB value: at least 16 frames.
        let (started, mut commits) = (std::time::Instant::now(), 0i64);
        while commits < 3000 || started.elapsed() < std::time::Duration::from_millis(1500) {
            writer.write(|c| c.execute("INSERT INTO t (x) VALUES (zeroblob(65536))", []).map(|_| crate::db::Changes::Keep(())).map_err(crate::error::map_rusqlite)).await.unwrap();
            commits += 1;
        }
        let conn = writer::open(&path).unwrap();
        let autocheckpoint: i64 = conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap();
        assert_eq!(autocheckpoint, 0, "no checkpoint inside a commit");
        let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).unwrap();
        assert!(frames < commits * 16 / 2, "{frames} frames in the log after {commits} commits of 16 frames or more");
    }

    /// No table's constraints make SQLite build a temporary b-tree per row written (as `CHECK (x IN (...))`
    /// with three or more values does): every insert program is plain comparisons.
    #[tokio::test]
    async fn writes_check_constraints_without_temporary_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checks.db").display().to_string();
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let conn = writer::open(&path).unwrap();
        let column = |sql: &str, i: usize| -> Vec<String> {
            let mut q = conn.prepare(sql).unwrap();
            q.query_map([], |r| r.get(i)).unwrap().map(Result::unwrap).collect()
        };
        let tables = column("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'", 0);
        assert!(tables.contains(&"lynx_audit_events".to_string()), "{tables:?}");
        for table in tables {
            let ops = column(&format!("EXPLAIN INSERT INTO {table} DEFAULT VALUES"), 1);
            assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{table}: {ops:?}");
        }
    }

    /// Migration 4 rebuilds tables that already hold rows: every row, index, trigger and constraint
    /// comes through, and the result is the schema a new database gets.
    #[tokio::test]
    async fn rebuilt_tables_keep_their_rows_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let old = SqliteStore::open(&dir.path().join("old.db").display().to_string()).await.unwrap();
        MIGRATOR.run_to(3, old.pool()).await.unwrap();
        let t = "'2026-01-01T00:00:00Z'";
        for insert in [
            format!("INSERT INTO lynx_drafts (draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, updated_at) VALUES ('d1', 't', 'vpm_payment', '{{}}', 'EXECUTED', 'high', 'u', {t}, {t})"),
            format!("INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, created_at) VALUES ('d1', 't', 'a', 'APPROVED', {t})"),
            format!("INSERT INTO lynx_executions (execution_id, draft_id, tool_id, tenant_id, actor_id, status, created_at) VALUES ('e1', 'd1', 'x.cell.y', 't', 'u', 'SUCCEEDED', {t})"),
            format!("INSERT INTO lynx_payments (payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at) VALUES ('p1', 't', 'd1', 'e1', 'v', '1.00', 'USD', '2026-02-01', 'settled', {t}, {t})"),
            format!("INSERT INTO settlement_intents (payment_id, tenant_id, status, provider, created_at, updated_at) VALUES ('p1', 't', 'completed', 'manual', {t}, {t})"),
            format!("INSERT INTO lynx_audit_events (event_id, run_id, tenant_id, tool_id, event_type, status, actor_id, created_at, seq, prev_hash, hash) VALUES ('a1', 'r1', 't', 'x', 'human_action', 'SUCCEEDED', 'u', {t}, 1, 'g', 'h')"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(insert)).execute(old.pool()).await.unwrap();
        }
        old.migrate().await.unwrap();
        for (table, rows) in [("lynx_drafts", 1), ("lynx_draft_approvals", 1), ("lynx_executions", 1), ("lynx_payments", 1), ("settlement_intents", 1), ("lynx_audit_events", 1)] {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(old.pool()).await.unwrap();
            assert_eq!(n, rows, "{table}");
        }
        // Still enforced: the append-only trigger, the value checks, the foreign keys.
        assert!(sqlx::query("DELETE FROM lynx_audit_events").execute(old.pool()).await.is_err());
        assert!(sqlx::query("UPDATE lynx_drafts SET status = 'BOGUS'").execute(old.pool()).await.is_err());
        assert!(sqlx::query("UPDATE lynx_drafts SET status = 'DRAFT'").execute(old.pool()).await.is_ok());
        assert!(sqlx::query("DELETE FROM lynx_payments").execute(old.pool()).await.is_err());

        let new = SqliteStore::open(&dir.path().join("new.db").display().to_string()).await.unwrap();
        new.migrate().await.unwrap();
        let schema = |pool: SqlitePool| async move {
            sqlx::query_as::<_, (String, String, Option<String>)>("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
                .fetch_all(&pool)
                .await
                .unwrap()
        };
        assert_eq!(schema(old.pool().clone()).await, schema(new.pool().clone()).await);
    }

    /// A new database file is created and switched to WAL once, however many connections (and
    /// processes) open it at the same moment: none may fail with "database is locked".
    #[tokio::test]
    async fn fresh_files_open_without_lock_errors() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("fresh-{round}.db")).display().to_string();
            let opens = (0..4).map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await.map(|_| ()) })
            });
            for open in opens.collect::<Vec<_>>() {
                open.await.unwrap().unwrap();
            }
        }
    }
}
