//! The `Store` port over any engine: each method is one protocol of `ops/`, run as a read on the pool
//! or as a write in the scope it needs. This is the only `impl Store`; a new operation is its
//! statement(s) and protocol in `ops/`, one method on the port, and one line here.

use chrono::{DateTime, Utc};
use lynx_model::{
    DraftId, ExecutionId, PaymentId, TenantId,
    draft::{DraftStatus, DraftType},
    vocab::{PaymentStatus, SettlementStatus},
    audit::{AuditEvent, CheckpointRecord, NewAuditEvent, VerificationRecord},
    draft::Transition,
    ids::KeyId,
    records::{
        ApprovalRecord, Claim, Completion, Decision, DecisionOutcome, DraftFilter, DraftForTool, DraftInsert, DraftRecord, Effect,
        ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackOutcome, SettlementChange, SettlementRecord, SpendCap,
        TransitionOutcome,
    },
    store::{
        ActivityEvent, ApiKeyRecord, AuditFilter, MonitoringFacts, PaymentFilter, PaymentRecord, QueueCounts, RunFilter,
        DeliveryFilter, RunSummary, SessionRecord, Store, StoreResult,
    },
    webhook::{Attempt, DeliveryCounts, DeliveryRecord, DueDelivery, WebhookFormat, WebhookRecord},
};
use serde_json::Value;

use crate::{
    db::{Changes, Db, Engine, Scope, WriteOp},
    ops::{audit, drafts, executions, keys, limits, reads, settlements, webhooks},
    sql::Query,
};

/// A store on one engine (`SqliteStore`, `PgStore`).
pub struct Storage<E>(pub(crate) E);

/// Boxes a write for the engine: the closure gets the transaction and returns its protocol's future;
/// what it changed is committed when it succeeds.
fn op<T: Send + 'static, F>(f: F) -> WriteOp<T>
where
    F: for<'c> FnOnce(&'c mut dyn Db) -> crate::db::BoxFuture<'c, StoreResult<T>> + Send + 'static,
{
    Box::new(move |db| Box::pin(async move { f(db).await.map(Changes::Keep) }))
}

/// Boxes a write whose protocol says itself whether its changes stay (`Changes`).
fn undoable<T, F>(f: F) -> WriteOp<T>
where
    F: for<'c> FnOnce(&'c mut dyn Db) -> crate::db::BoxFuture<'c, StoreResult<Changes<T>>> + Send + 'static,
{
    Box::new(f)
}

#[async_trait::async_trait]
impl<E: Engine> Store for Storage<E> {
    fn engine(&self) -> &'static str {
        E::NAME
    }
    fn group_commits(&self) -> bool {
        E::GROUP_COMMITS
    }
    async fn migrate(&self) -> StoreResult<usize> {
        // Before the first migration the bookkeeping table does not exist yet: nothing applied.
        let applied = || async {
            crate::db::fetch_all(&mut *self.0.reader(), Query::new("SELECT version FROM _sqlx_migrations WHERE success"), |mut r| r.int("version"))
                .await
                .unwrap_or_default()
        };
        let before = applied().await;
        // Up to date: touch nothing, so a role without DDL rights (the production set-up, where the
        // owner role migrates) can start.
        if self.0.migrations().iter().all(|v| before.contains(v)) {
            return Ok(0);
        }
        self.0.run_migrations().await?;
        Ok(applied().await.len().saturating_sub(before.len()))
    }
    async fn ping(&self) -> StoreResult<()> {
        crate::db::execute(&mut *self.0.reader(), Query::new("SELECT 1")).await?;
        self.0.ping_services().await
    }

    async fn lease_calls(&self, tenant: &TenantId, minute: i64, want: u32, quota: u32) -> StoreResult<u32> {
        let t = tenant.clone();
        self.0.write(Scope::Tenant(tenant.clone()), op(move |db| Box::pin(async move { limits::lease(db, &t, minute, want, quota).await }))).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { keys::insert(db, &key).await }))).await
    }
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        keys::by_hash(&mut *self.0.reader(), key_hash).await
    }
    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiKeyRecord>> {
        keys::list(&mut *self.0.reader(), tenant).await
    }
    async fn revoke_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool> {
        let key_id = key_id.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { keys::revoke(db, &key_id, at).await }))).await
    }
    async fn touch_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let key_id = key_id.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { keys::touch(db, &key_id, at).await }))).await
    }
    async fn count_api_keys(&self) -> StoreResult<i64> {
        keys::count(&mut *self.0.reader()).await
    }
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { keys::insert_session(db, &session).await }))).await
    }
    async fn live_session(&self, session_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>> {
        keys::live_session(&mut *self.0.reader(), session_hash, now).await
    }
    async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        let hash = session_hash.to_string();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { keys::delete_session(db, &hash).await }))).await
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        self.0.append_audit(events).await
    }
    async fn audit_events(&self, tenant: &TenantId, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        audit::events(&mut *self.0.reader(), tenant, filter).await
    }
    async fn audit_chain_page(&self, tenant: &TenantId, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        audit::chain_page(&mut *self.0.reader(), tenant, after_seq, limit).await
    }
    async fn audit_tenants(&self) -> StoreResult<Vec<TenantId>> {
        audit::tenants(&mut *self.0.reader()).await
    }
    async fn audit_heads(&self) -> StoreResult<Vec<(TenantId, i64)>> {
        audit::heads(&mut *self.0.reader()).await
    }
    async fn audit_leaves(&self, tenant: &TenantId, after_seq: i64, limit: u32) -> StoreResult<Vec<(i64, String)>> {
        audit::leaves(&mut *self.0.reader(), tenant, after_seq, limit).await
    }
    async fn latest_checkpoint(&self, tenant: &TenantId) -> StoreResult<Option<CheckpointRecord>> {
        audit::latest_checkpoint(&mut *self.0.reader(), tenant).await
    }
    async fn latest_checkpoints(&self) -> StoreResult<Vec<CheckpointRecord>> {
        audit::latest_checkpoints(&mut *self.0.reader()).await
    }
    async fn insert_checkpoint(&self, checkpoint: &CheckpointRecord) -> StoreResult<bool> {
        let (tenant, c) = (checkpoint.tenant_id.clone(), checkpoint.clone());
        self.0.write(Scope::Tenant(tenant), op(move |db| Box::pin(async move { audit::insert_checkpoint(db, &c).await }))).await
    }
    async fn record_verification(&self, verification: &VerificationRecord) -> StoreResult<()> {
        let v = verification.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { audit::record_verification(db, &v).await }))).await
    }
    async fn latest_verifications(&self) -> StoreResult<Vec<VerificationRecord>> {
        audit::latest_verifications(&mut *self.0.reader()).await
    }
    async fn runs(&self, filter: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)> {
        audit::runs(&mut *self.0.reader(), filter).await
    }
    async fn draft_activity(&self, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>> {
        audit::draft_activity(&mut *self.0.reader(), tenant, limit).await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        reads::setting(&mut *self.0.reader(), key).await
    }
    async fn put_setting(&self, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let (key, value, by) = (key.to_string(), value.to_string(), by.to_string());
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { reads::put_setting(db, &key, &value, &by, at).await }))).await
    }
    async fn queue_counts(&self, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts> {
        reads::queue_counts(&mut *self.0.reader(), tenant, stuck_before).await
    }
    async fn count_drafts(&self, tenant: &TenantId, status: DraftStatus, draft_type: Option<DraftType>) -> StoreResult<i64> {
        reads::count_drafts(&mut *self.0.reader(), tenant, status, draft_type).await
    }
    async fn active_workflow_count(&self, tenant: &TenantId) -> StoreResult<i64> {
        reads::active_workflow_count(&mut *self.0.reader(), tenant).await
    }
    async fn payments(&self, tenant: &TenantId, filter: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>> {
        reads::payments(&mut *self.0.reader(), tenant, filter).await
    }
    async fn payments_in_status(&self, tenant: &TenantId, status: PaymentStatus, vendor_id: Option<&str>) -> StoreResult<Vec<PaymentRecord>> {
        reads::payments_in_status(&mut *self.0.reader(), tenant, status, vendor_id).await
    }

    async fn insert_draft(&self, draft: DraftRecord, cap: Option<&SpendCap>) -> StoreResult<DraftInsert> {
        match cap.cloned() {
            None => self.0.write(Scope::Statement, op(move |db| Box::pin(async move { drafts::insert(db, &draft).await }))).await,
            Some(cap) => {
                let scope = Scope::Tenant(draft.tenant_id.clone());
                self.0.write(scope, undoable(move |db| Box::pin(async move { drafts::insert_within(db, &draft, &cap).await }))).await
            }
        }
    }
    async fn import_drafts(&self, list: &[DraftRecord]) -> StoreResult<u64> {
        let list = list.to_vec();
        self.0.write(Scope::Transaction, op(move |db| Box::pin(async move { drafts::import(db, &list).await }))).await
    }
    async fn draft(&self, tenant: Option<&TenantId>, draft_id: DraftId) -> StoreResult<Option<DraftRecord>> {
        drafts::get(&mut *self.0.reader(), tenant, draft_id).await
    }
    async fn draft_for_tool(&self, tenant: &TenantId, draft_id: DraftId, tool_id: &str) -> StoreResult<Option<DraftForTool>> {
        drafts::for_tool(&mut *self.0.reader(), tenant, draft_id, tool_id).await
    }
    async fn draft_by_request(&self, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>> {
        drafts::by_request(&mut *self.0.reader(), tenant, request_id).await
    }
    async fn drafts(&self, tenant: Option<&TenantId>, filter: &DraftFilter) -> StoreResult<Vec<DraftRecord>> {
        drafts::list(&mut *self.0.reader(), tenant, filter).await
    }
    async fn approvals(&self, tenant: &TenantId, draft_id: DraftId) -> StoreResult<Vec<ApprovalRecord>> {
        drafts::approvals(&mut *self.0.reader(), tenant, draft_id).await
    }
    async fn decide(
        &self,
        tenant: &TenantId,
        draft_id: DraftId,
        approver: &str,
        decision: Decision,
        note: Option<&str>,
        required: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<DecisionOutcome> {
        let (t, approver, note) = (tenant.clone(), approver.to_string(), note.map(str::to_string));
        let decide = op(move |db| Box::pin(async move { drafts::decide(db, &t, draft_id, &approver, decision, note.as_deref(), required, at).await }));
        self.0.write(Scope::Tenant(tenant.clone()), decide).await
    }
    async fn transition_draft(&self, tenant: &TenantId, draft_id: DraftId, t: Transition, by: &str, at: DateTime<Utc>) -> StoreResult<TransitionOutcome> {
        let (tenant_id, by) = (tenant.clone(), by.to_string());
        let transition = op(move |db| Box::pin(async move { drafts::transition(db, &tenant_id, draft_id, t, &by, at).await }));
        self.0.write(Scope::Tenant(tenant.clone()), transition).await
    }

    async fn execution_for_request(&self, tenant: &TenantId, tool_id: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
        executions::for_request(&mut *self.0.reader(), tenant, tool_id, request_id).await
    }
    async fn live_executions(&self, tenant: &TenantId, draft_id: DraftId) -> StoreResult<Vec<ExecutionRecord>> {
        executions::live(&mut *self.0.reader(), tenant, draft_id).await
    }
    async fn claim_execution(&self, execution: &ExecutionRecord) -> StoreResult<Claim> {
        let e = execution.clone();
        // One insert is the claim's only change, and the unique indexes decide it: the reads around it
        // need no transaction (each would take its own snapshot in one anyway).
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { executions::claim(db, &e).await }))).await
    }
    async fn complete_execution(
        &self,
        execution: &ExecutionRecord,
        effect: &Effect,
        result: &Value,
        rollback_instructions: &Value,
        cap: Option<&SpendCap>,
        at: DateTime<Utc>,
    ) -> StoreResult<Completion> {
        let (e, effect, result, rollback, cap) = (execution.clone(), effect.clone(), result.clone(), rollback_instructions.clone(), cap.cloned());
        let scope = Scope::Tenant(e.tenant_id.clone());
        self.0.write(scope, undoable(move |db| Box::pin(async move { executions::complete(db, &e, &effect, &result, &rollback, cap.as_ref(), at).await }))).await
    }
    async fn fail_execution(&self, tenant: &TenantId, execution_id: ExecutionId, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let (tenant, error) = (tenant.clone(), error.to_string());
        let scope = Scope::Tenant(tenant.clone());
        self.0.write(scope, op(move |db| Box::pin(async move { executions::fail(db, &tenant, execution_id, &error, at).await }))).await
    }
    async fn execution(&self, tenant: Option<&TenantId>, execution_id: ExecutionId) -> StoreResult<Option<ExecutionRecord>> {
        executions::get(&mut *self.0.reader(), tenant, execution_id).await
    }
    async fn executions(&self, tenant: Option<&TenantId>, filter: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>> {
        executions::list(&mut *self.0.reader(), tenant, filter).await
    }
    async fn clear_stuck(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
        self.0.write(Scope::Transaction, op(move |db| Box::pin(async move { executions::clear_stuck(db, before, at).await }))).await
    }
    async fn rollback_execution(&self, tenant: &TenantId, execution_id: ExecutionId, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
        let (tenant_id, by) = (tenant.clone(), by.to_string());
        let rollback = op(move |db| Box::pin(async move { executions::rollback(db, &tenant_id, execution_id, &by, at).await }));
        self.0.write(Scope::Tenant(tenant.clone()), rollback).await
    }
    async fn execution_counts(&self, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts> {
        executions::counts(&mut *self.0.reader(), tenant).await
    }
    async fn monitoring(&self, tenant: Option<&TenantId>) -> StoreResult<MonitoringFacts> {
        executions::monitoring(&mut *self.0.reader(), tenant).await
    }

    async fn settlements(&self, tenant: Option<&TenantId>, status: Option<SettlementStatus>, limit: u32) -> StoreResult<Vec<SettlementRecord>> {
        settlements::list(&mut *self.0.reader(), tenant, status, limit).await
    }
    async fn set_settlement_status(
        &self,
        tenant: &TenantId,
        payment_id: PaymentId,
        to: SettlementStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<SettlementChange> {
        let (tenant_id, by, note) = (tenant.clone(), by.to_string(), note.map(str::to_string));
        let change = op(move |db| Box::pin(async move { settlements::set_status(db, &tenant_id, payment_id, to, &by, note.as_deref(), at).await }));
        self.0.write(Scope::Tenant(tenant.clone()), change).await
    }

    async fn expire_drafts(&self, now: DateTime<Utc>) -> StoreResult<Vec<DraftRecord>> {
        // Every instance sweeps often and there is seldom anything to do: ask a reader first, so an
        // idle sweep takes no write lock.
        if !drafts::any_overdue(&mut *self.0.reader(), now).await? {
            return Ok(Vec::new());
        }
        self.0.write(Scope::Transaction, op(move |db| Box::pin(async move { drafts::expire(db, now).await }))).await
    }

    async fn insert_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        let webhook = webhook.clone();
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { webhooks::insert(db, &webhook).await }))).await
    }
    async fn webhooks(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<WebhookRecord>> {
        webhooks::list(&mut *self.0.reader(), tenant).await
    }
    async fn remove_webhook(&self, tenant: Option<&TenantId>, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let (tenant, id) = (tenant.cloned(), webhook_id.to_string());
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { webhooks::remove(db, tenant.as_ref(), &id, at).await }))).await
    }
    async fn set_env_webhook(&self, url: Option<&str>, format: WebhookFormat, at: DateTime<Utc>) -> StoreResult<()> {
        let url = url.map(str::to_string);
        self.0.write(Scope::Statement, op(move |db| Box::pin(async move { webhooks::set_env(db, url.as_deref(), format, at).await }))).await
    }
    async fn deliveries(&self, tenant: Option<&TenantId>, filter: &DeliveryFilter) -> StoreResult<Vec<DeliveryRecord>> {
        webhooks::deliveries(&mut *self.0.reader(), tenant, filter).await
    }
    async fn claim_deliveries(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DueDelivery>> {
        // Polled every second by every instance: an idle poll is one indexed read, no write.
        if !webhooks::any_due(&mut *self.0.reader(), now).await? {
            return Ok(Vec::new());
        }
        self.0.write(Scope::Transaction, op(move |db| Box::pin(async move { webhooks::claim(db, now, lease_until, limit).await }))).await
    }
    async fn record_attempt(&self, event_id: &str, webhook_id: &str, attempt: &Attempt, at: DateTime<Utc>) -> StoreResult<()> {
        let (event_id, webhook_id, attempt) = (event_id.to_string(), webhook_id.to_string(), attempt.clone());
        let record = op(move |db| Box::pin(async move { webhooks::record_attempt(db, &event_id, &webhook_id, &attempt, at).await }));
        self.0.write(Scope::Statement, record).await
    }
    async fn release_deliveries(&self, deliveries: &[(String, String)], due_at: DateTime<Utc>) -> StoreResult<()> {
        let deliveries = deliveries.to_vec();
        self.0.write(Scope::Transaction, op(move |db| Box::pin(async move { webhooks::release(db, &deliveries, due_at).await }))).await
    }
    async fn redeliver(&self, tenant: Option<&TenantId>, event_id: &str, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let (tenant, event_id, webhook_id) = (tenant.cloned(), event_id.to_string(), webhook_id.to_string());
        let again = op(move |db| Box::pin(async move { webhooks::redeliver(db, tenant.as_ref(), &event_id, &webhook_id, at).await }));
        self.0.write(Scope::Statement, again).await
    }
    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        webhooks::counts(&mut *self.0.reader()).await
    }
}
