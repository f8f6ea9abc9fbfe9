//! The PostgreSQL engine (and Supabase, which is PostgreSQL): for production and for several Lynx
//! instances on one database. Row locks (`FOR UPDATE`) and a per-tenant advisory lock for audit appends
//! make the same guarantees hold across instances that `BEGIN IMMEDIATE` gives on SQLite.

mod audit;
mod drafts;
mod executions;
mod keys;
mod nodelay;
mod reads;
mod settlements;

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    audit::{AuditEvent, NewAuditEvent},
    draft::Transition,
    ids::KeyId,
    records::{
        ApprovalRecord, Claim, Completion, Decision, DecisionOutcome, DraftFilter, DraftInsert, DraftRecord, Effect,
        ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackOutcome, SettlementChange, SettlementRecord,
        TransitionOutcome,
    },
    store::{
        ActivityEvent, ApiKeyRecord, AuditFilter, PaymentFilter, PaymentRecord, QueueCounts, RunFilter, RunSummary,
        Store, StoreError, StoreResult,
    },
};
use serde_json::Value;
use sqlx::{
    Executor, PgConnection, Postgres, Transaction,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};
use uuid::Uuid;

use crate::{SupabaseProject, error::map};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    supabase: Option<(SupabaseProject, reqwest::Client)>,
}

impl PgStore {
    pub async fn open(url: &str, max_connections: u32, supabase: Option<SupabaseProject>) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(redacted(e)))?;
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            // Lynx is the trusted service: it sees every tenant and narrows to one inside
            // single-tenant transactions (see the migration's row-level security).
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    nodelay::set_on_connections_to(port);
                    conn.execute("SET lynx.tenant_id = '*'").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(redacted(e)))?;
        let supabase = match supabase {
            Some(project) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("cannot build the Supabase REST client: {e}")))?;
                Some((project, client))
            }
            None => None,
        };
        Ok(Self { pool, supabase })
    }

    /// The project's REST endpoint answers with the configured key (what the Supabase line reports).
    async fn ping_supabase(&self) -> StoreResult<()> {
        let Some((project, client)) = &self.supabase else {
            return Ok(());
        };
        let url = format!("{}/rest/v1/", project.url.trim_end_matches('/'));
        let resp = client
            .get(&url)
            .header("apikey", &project.key)
            .bearer_auth(&project.key)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("Supabase REST endpoint {} unreachable: {}", project.url, if e.is_timeout() { "timed out".into() } else { e.to_string() })))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("Supabase REST endpoint {} answered HTTP {} to SUPABASE_KEY", project.url, resp.status().as_u16())))
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates an empty database on the server `admin_url` points at (tests and benchmarks).
    pub async fn create_database(admin_url: &str, name: &str) -> StoreResult<()> {
        use sqlx::Connection;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Unavailable(format!("{name:?} is not a plain database name")));
        }
        let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(|e| StoreError::Unavailable(redacted(e)))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.map_err(map)?;
        Ok(())
    }

    /// Drops a database created by `create_database`.
    pub async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
        use sqlx::Connection;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Unavailable(format!("{name:?} is not a plain database name")));
        }
        let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(|e| StoreError::Unavailable(redacted(e)))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await.map_err(map)?;
        Ok(())
    }
}

/// Database errors can quote the connection string; never pass a password on.
fn redacted(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    match (text.find("://"), text.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &text[..a], &text[b..]),
        _ => text,
    }
}

/// Begins a transaction that sees only `tenant`'s rows (row-level security as a second wall).
pub(super) async fn tenant_tx<'a>(pool: &'a PgPool, tenant: &TenantId) -> StoreResult<Transaction<'a, Postgres>> {
    let mut tx = pool.begin().await.map_err(map)?;
    narrow(&mut tx, tenant).await?;
    Ok(tx)
}

pub(super) async fn narrow(conn: &mut PgConnection, tenant: &TenantId) -> StoreResult<()> {
    sqlx::query("SELECT set_config('lynx.tenant_id', $1, true)").bind(tenant.as_str()).execute(&mut *conn).await.map_err(map)?;
    Ok(())
}

fn tenant(s: String) -> StoreResult<TenantId> {
    TenantId::parse(s).map_err(crate::error::corrupt)
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let before = applied(&self.pool).await;
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(applied(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map)?;
        self.ping_supabase().await
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
    async fn insert_session(&self, session: &lynx_model::store::SessionRecord) -> StoreResult<()> {
        keys::insert_session(&self.pool, session).await
    }
    async fn live_session(&self, session_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<lynx_model::store::SessionRecord>> {
        keys::live_session(&self.pool, session_hash, now).await
    }
    async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        keys::delete_session(&self.pool, session_hash).await
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        audit::append(&self.pool, &events).await
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

    async fn insert_draft(&self, draft: &DraftRecord) -> StoreResult<DraftInsert> {
        drafts::insert(&self.pool, draft).await
    }
    async fn import_drafts(&self, list: &[DraftRecord]) -> StoreResult<u64> {
        drafts::import(&self.pool, list).await
    }
    async fn draft(&self, tenant: Option<&TenantId>, draft_id: Uuid) -> StoreResult<Option<DraftRecord>> {
        drafts::get(&self.pool, tenant, draft_id).await
    }
    async fn draft_by_request(&self, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>> {
        drafts::by_request(&self.pool, tenant, request_id).await
    }
    async fn drafts(&self, tenant: Option<&TenantId>, filter: &DraftFilter) -> StoreResult<Vec<DraftRecord>> {
        drafts::list(&self.pool, tenant, filter).await
    }
    async fn approvals(&self, tenant: &TenantId, draft_id: Uuid) -> StoreResult<Vec<ApprovalRecord>> {
        drafts::approvals(&self.pool, tenant, draft_id).await
    }
    async fn decide(
        &self,
        tenant: &TenantId,
        draft_id: Uuid,
        approver: &str,
        decision: Decision,
        note: Option<&str>,
        required: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<DecisionOutcome> {
        drafts::decide(&self.pool, tenant, draft_id, approver, decision, note, required, at).await
    }
    async fn transition_draft(&self, tenant: &TenantId, draft_id: Uuid, t: Transition, by: &str, at: DateTime<Utc>) -> StoreResult<TransitionOutcome> {
        drafts::transition(&self.pool, tenant, draft_id, t, by, at).await
    }

    async fn execution_for_request(&self, tenant: &TenantId, tool_id: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
        executions::for_request(&self.pool, tenant, tool_id, request_id).await
    }
    async fn live_executions(&self, tenant: &TenantId, draft_id: Uuid) -> StoreResult<Vec<ExecutionRecord>> {
        executions::live(&self.pool, tenant, draft_id).await
    }
    async fn claim_execution(&self, execution: &ExecutionRecord) -> StoreResult<Claim> {
        executions::claim(&self.pool, execution).await
    }
    async fn complete_execution(
        &self,
        execution: &ExecutionRecord,
        effect: &Effect,
        result: &Value,
        rollback_instructions: &Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Completion> {
        executions::complete(&self.pool, execution, effect, result, rollback_instructions, at).await
    }
    async fn fail_execution(&self, tenant: &TenantId, execution_id: Uuid, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
        executions::fail(&self.pool, tenant, execution_id, error, at).await
    }
    async fn execution(&self, tenant: Option<&TenantId>, execution_id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
        executions::get(&self.pool, tenant, execution_id).await
    }
    async fn executions(&self, tenant: Option<&TenantId>, filter: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>> {
        executions::list(&self.pool, tenant, filter).await
    }
    async fn clear_stuck(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
        executions::clear_stuck(&self.pool, before, at).await
    }
    async fn rollback_execution(&self, tenant: &TenantId, execution_id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
        executions::rollback(&self.pool, tenant, execution_id, by, at).await
    }
    async fn execution_counts(&self, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts> {
        executions::counts(&self.pool, tenant).await
    }
    async fn monitoring(&self, tenant: Option<&TenantId>) -> StoreResult<lynx_model::store::MonitoringFacts> {
        executions::monitoring(&self.pool, tenant).await
    }

    async fn settlements(&self, tenant: Option<&TenantId>, status: Option<&str>, limit: u32) -> StoreResult<Vec<SettlementRecord>> {
        settlements::list(&self.pool, tenant, status, limit).await
    }
    async fn set_settlement_status(
        &self,
        tenant: &TenantId,
        payment_id: Uuid,
        to: &str,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<SettlementChange> {
        settlements::set_status(&self.pool, tenant, payment_id, to, by, note, at).await
    }
}

async fn applied(pool: &PgPool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pooled connection to the server sends small writes at once (see `nodelay.rs`).
    #[tokio::test]
    async fn database_connections_have_tcp_nodelay() {
        // Needs a server reached over TCP: CI's LYNX_TEST_POSTGRES_URL is one. Without it there is nothing to check.
        let Some(url) = std::env::var("LYNX_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else { return };
        let options = PgConnectOptions::from_str(&url).unwrap();
        if options.get_socket().is_some() {
            return;
        }
        let store = PgStore::open(&url, 4, None).await.unwrap();
        // Take four connections at once, so the pool has opened four.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(store.pool().acquire().await.unwrap());
        }
        let sockets = nodelay::connections_to(options.get_port());
        assert!(sockets.len() >= 4, "expected the pool's connections among this process's sockets: {sockets:?}");
        assert!(sockets.iter().all(|on| *on), "a connection without TCP_NODELAY: {sockets:?}");
    }
}
