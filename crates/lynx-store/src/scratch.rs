//! PostgreSQL databases that exist for one test or one benchmark run: created with a unique name on a
//! server the caller may create databases on, dropped when the value is dropped. The one harness the
//! store's contract tests, the black-box tests and the benchmark share.
//!
//! `test_server` is where the tests find that server: `LYNX_TEST_POSTGRES_URL`. Without it the
//! PostgreSQL variants say they were skipped — unless `LYNX_REQUIRE_POSTGRES=1` (CI sets it), which
//! makes a missing server a failure instead of a silent pass.

use lynx_model::store::{StoreError, StoreResult};

use crate::PgStore;

/// The server PostgreSQL tests run on, or `None` (reported) when there is none to use.
///
/// # Panics
/// When `LYNX_REQUIRE_POSTGRES=1` and no server is named: a required test must not skip.
pub fn test_server(test: &str) -> Option<String> {
    let url = std::env::var("LYNX_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("LYNX_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "{test}: PostgreSQL is required (LYNX_REQUIRE_POSTGRES=1) but LYNX_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipped on PostgreSQL: {test} (LYNX_TEST_POSTGRES_URL is not set)");
    }
    url
}

/// `postgres://u@h:p/db?x` naming another database.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, format!("?{q}"))).unwrap_or((url, String::new()));
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    format!("{base}/{db}{query}")
}

/// A fresh database, dropped (with any connections still open to it) when this is dropped.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server `admin_url` reaches.
    pub async fn create(admin_url: &str, prefix: &str) -> StoreResult<Self> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        PgStore::create_database(admin_url, &name).await?;
        Ok(Self { admin_url: admin_url.to_string(), url: with_database(admin_url, &name), name })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime or outside one: a thread of its own with a runtime of its own.
        let dropped = std::thread::spawn(move || -> StoreResult<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            rt.block_on(PgStore::drop_database(&admin, &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            tracing::warn!(database = %self.name, "scratch database not dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_name_the_other_database() {
        assert_eq!(super::with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(super::with_database("postgres://u@h/test?sslmode=require", "x"), "postgres://u@h/x?sslmode=require");
    }
}
