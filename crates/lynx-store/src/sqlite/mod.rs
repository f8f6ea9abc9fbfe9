//! The SQLite engine: one file, WAL journal, full fsync on commit (an audited call must survive a
//! crash), writers serialised by `BEGIN IMMEDIATE` so the audit chain never forks.

mod audit;
mod keys;
mod reads;

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    audit::{AuditEvent, NewAuditEvent},
    ids::KeyId,
    store::{
        ActivityEvent, ApiKeyRecord, AuditFilter, PaymentFilter, PaymentRecord, QueueCounts, RunFilter, RunSummary,
        Store, StoreResult,
    },
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::map;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))
            .map_err(map)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database exists once per connection, so it gets exactly one.
        let max = if path == ":memory:" { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(map)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let before = applied(&self.pool).await;
        MIGRATOR.run(&self.pool).await.map_err(|e| lynx_model::store::StoreError::Unavailable(e.to_string()))?;
        Ok(applied(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map)?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        keys::insert(&self.pool, key).await
    }
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        keys::by_hash(&self.pool, key_hash).await
    }
    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiKeyRecord>> {
        keys::list(&self.pool, tenant).await
    }
    async fn revoke_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool> {
        keys::revoke(&self.pool, key_id, at).await
    }
    async fn touch_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()> {
        keys::touch(&self.pool, key_id, at).await
    }
    async fn count_api_keys(&self) -> StoreResult<i64> {
        keys::count(&self.pool).await
    }

    async fn append_audit(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
        audit::append(&self.pool, events).await
    }
    async fn audit_events(&self, tenant: &TenantId, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        audit::events(&self.pool, tenant, filter).await
    }
    async fn audit_chain_page(&self, tenant: &TenantId, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        audit::chain_page(&self.pool, tenant, after_seq, limit).await
    }
    async fn audit_tenants(&self) -> StoreResult<Vec<TenantId>> {
        audit::tenants(&self.pool).await
    }
    async fn runs(&self, filter: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)> {
        audit::runs(&self.pool, filter).await
    }
    async fn draft_activity(&self, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>> {
        audit::draft_activity(&self.pool, tenant, limit).await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        reads::setting(&self.pool, key).await
    }
    async fn put_setting(&self, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
        reads::put_setting(&self.pool, key, value, by, at).await
    }

    async fn queue_counts(&self, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts> {
        reads::queue_counts(&self.pool, tenant, stuck_before).await
    }
    async fn count_drafts(&self, tenant: &TenantId, status: &str, draft_type: Option<&str>) -> StoreResult<i64> {
        reads::count_drafts(&self.pool, tenant, status, draft_type).await
    }
    async fn active_workflow_count(&self, tenant: &TenantId) -> StoreResult<i64> {
        reads::active_workflow_count(&self.pool, tenant).await
    }
    async fn payments(&self, tenant: &TenantId, filter: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>> {
        reads::payments(&self.pool, tenant, filter).await
    }
    async fn payments_in_status(&self, tenant: &TenantId, status: &str, vendor_id: Option<&str>) -> StoreResult<Vec<PaymentRecord>> {
        reads::payments_in_status(&self.pool, tenant, status, vendor_id).await
    }
}

async fn applied(pool: &SqlitePool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}

fn tenant(s: String) -> StoreResult<TenantId> {
    TenantId::parse(s).map_err(crate::error::corrupt)
}

fn uuid(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(crate::error::corrupt)
}
