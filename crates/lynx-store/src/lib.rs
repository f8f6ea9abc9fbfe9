//! Lynx's storage: the `Store` port of `lynx-model` on SQLite (embedded, WAL) and PostgreSQL, with
//! versioned migrations per engine under `migrations/`.
//!
//! Code map: `ops/` holds every protocol and query, written once over the statement interface of
//! `db.rs` (`Db`: run a `Query` of `sql.rs`, get `Row`s of `row.rs`); `store.rs` is the one
//! `impl Store`, which runs each protocol as a read or a write of an `Engine`; `sqlite/` and
//! `postgres/` are the engines — how each binds values, reads rows, runs a write (SQLite: on one writer
//! thread, group-committed; PostgreSQL: a transaction narrowed to the tenant) and what it alone has.
//!
//! SQL lives only in this crate. Every query filters by `tenant_id` explicitly; the rules that must
//! hold under concurrency (exactly-once, request-id replay, the audit chain's sequence) are unique
//! indexes, transactions and row locks in the database, never locks in this process.

mod db;
mod error;
mod ops;
pub mod postgres;
mod row;
pub mod scratch;
mod sql;
pub mod sqlite;
mod store;

use std::sync::Arc;

use lynx_model::store::{Store, StoreError};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::Storage;

/// Where the data lives, parsed from `LYNX_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite::memory:`.
    Sqlite { path: String },
    /// `postgres://…` or `postgresql://…` (TLS with `?sslmode=require`).
    Postgres { url: String },
}

impl DatabaseUrl {
    pub const ALLOWED: &'static str = "sqlite://PATH (for example sqlite://lynx.db) or postgres://USER:PASSWORD@HOST:PORT/DATABASE";

    pub fn parse(url: &str) -> Result<Self, String> {
        if url == "sqlite::memory:" {
            return Ok(Self::Sqlite { path: ":memory:".into() });
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("the sqlite URL names no file".into());
            }
            return Ok(Self::Sqlite { path: path.to_string() });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: url.to_string() });
        }
        Err("unrecognised database URL scheme".into())
    }

    /// Whether the data would vanish with the process or the system's temporary directory (`TMPDIR`,
    /// else `/tmp`), which `prod` refuses.
    pub fn is_ephemeral(&self) -> bool {
        match self {
            Self::Sqlite { path } => path == ":memory:" || std::path::Path::new(path).starts_with(std::env::temp_dir()),
            Self::Postgres { .. } => false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite ({path})"),
            // Host, port and database only: the URL may carry a password.
            Self::Postgres { url } => {
                let rest = url.split("://").nth(1).unwrap_or_default();
                let host = rest.rsplit('@').next().unwrap_or(rest);
                format!("postgres ({})", host.split('?').next().unwrap_or(host))
            }
        }
    }
}

/// A Supabase project (`SUPABASE_URL`, `SUPABASE_KEY`): its REST endpoint is probed with the storage.
#[derive(Debug, Clone)]
pub struct SupabaseProject {
    pub url: String,
    pub key: secrecy::SecretString,
}

/// The connections a PostgreSQL store may hold (SQLite has its own: one writer, a few readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// At most this many (`LYNX_DB_POOL_SIZE` for a server).
    pub size: u32,
    /// Opened at start and kept open, replaced in the background when one closes: a server's. Making a
    /// connection (TCP, TLS, authentication, a new backend process) costs milliseconds of both cores,
    /// and a pool that grew only under load made the first burst of calls wait for it — 100 ms and
    /// more at 1,000 calls/s. A command opens one and more only as it needs them.
    pub warm: bool,
}

impl Pool {
    /// A server's pool: every connection open from the start.
    pub fn warm(size: u32) -> Self {
        Self { size, warm: true }
    }
    /// A command's pool: connections made as they are needed.
    pub fn on_demand(size: u32) -> Self {
        Self { size, warm: false }
    }
}

/// Opens the store a URL names. Migrations are not applied here; call `Store::migrate`.
pub async fn connect(url: &DatabaseUrl, pool: Pool, supabase: Option<SupabaseProject>) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        DatabaseUrl::Sqlite { path } => Ok(Arc::new(SqliteStore::open(path).await?)),
        DatabaseUrl::Postgres { url } => Ok(Arc::new(PgStore::open(url, pool, supabase).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(DatabaseUrl::parse("sqlite://lynx.db").unwrap(), DatabaseUrl::Sqlite { path: "lynx.db".into() });
        assert_eq!(DatabaseUrl::parse("sqlite:///var/lib/lynx/l.db").unwrap(), DatabaseUrl::Sqlite { path: "/var/lib/lynx/l.db".into() });
        assert!(DatabaseUrl::parse("sqlite::memory:").unwrap().is_ephemeral());
        let temp = std::env::temp_dir().join("x.db");
        assert!(DatabaseUrl::parse(&format!("sqlite://{}", temp.display())).unwrap().is_ephemeral());
        assert!(!DatabaseUrl::parse("sqlite://lynx.db").unwrap().is_ephemeral());
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        let pg = DatabaseUrl::parse("postgres://lynx:s3cret@db.example.com:5432/lynx?sslmode=require").unwrap();
        assert!(!pg.is_ephemeral());
        assert_eq!(pg.describe(), "postgres (db.example.com:5432/lynx)");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
