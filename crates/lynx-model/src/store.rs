//! The Store port: everything Lynx keeps in its own database, behind one trait that the SQLite and
//! PostgreSQL implementations share. Correctness that must hold across instances (the audit chain's
//! sequence, unique keys) lives in the database behind these methods, never in the caller.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{
    audit::{AuditEvent, CheckpointRecord, NewAuditEvent, VerificationRecord},
    draft::{DraftStatus, Transition},
    ids::{DraftId, ExecutionId, KeyId, PaymentId, RunId, TenantId, UserId},
    money::Currency,
    params::IsoDate,
    records::{
        ApprovalRecord, Claim, Completion, Decision, DecisionOutcome, DraftFilter, DraftForTool, DraftInsert, DraftRecord, Effect,
        ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackOutcome, SettlementChange, SettlementRecord, SpendCap,
        TransitionOutcome,
    },
    draft::DraftType,
    vocab::{PaymentStatus, RunStatus, SettlementStatus},
    webhook::{Attempt, DeliveryCounts, DeliveryRecord, DeliveryStatus, DueDelivery, WebhookFormat, WebhookRecord},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation for a reason outside the caller's control.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule of the schema refused the write (constraint name or description).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data that cannot be read back as the schema promises.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A signed-in dashboard browser; the cookie's token is stored only as `session_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub key_id: KeyId,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub key_id: KeyId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub label: String,
    #[serde(skip)]
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One tool call as the audit trail tells it: its start row joined with its closing row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub actor_id: String,
    pub tool_id: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// `None` only for operator views across every tenant (`lynx status`).
    pub tenant: Option<TenantId>,
    pub status: Option<RunStatus>,
    pub tool_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
    /// Also count every matching run (a full count; status views that need no total skip it).
    pub count_total: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub run_id: Option<RunId>,
    pub tool_id: Option<String>,
    pub status: Option<RunStatus>,
    pub since: Option<DateTime<Utc>>,
    /// Only events with a smaller `seq` (the cursor of the previous page).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Work waiting on people or operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct QueueCounts {
    pub pending_approvals: i64,
    pub queued_settlements: i64,
    pub stuck_executions: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentRecord {
    pub payment_id: PaymentId,
    pub tenant_id: TenantId,
    pub draft_id: DraftId,
    pub execution_id: ExecutionId,
    pub vendor_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub due_date: IsoDate,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub vendor_id: Option<String>,
    pub status: Option<PaymentStatus>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// A timestamped fact about drafts and workflows, for `workflow.domain.status.read`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityEvent {
    pub event_id: uuid::Uuid,
    pub tool_id: String,
    pub event_type: String,
    pub actor_id: String,
    pub created_at: DateTime<Utc>,
    pub output_data: Option<String>,
    pub input_data: Option<String>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`, for status lines.
    fn engine(&self) -> &'static str;
    /// Whether concurrent writes already share commits inside the store (SQLite's writer thread does):
    /// then callers need no batching of their own in front of it.
    fn group_commits(&self) -> bool {
        false
    }
    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;
    /// A cheap round trip to the database.
    async fn ping(&self) -> StoreResult<()>;

    // API keys.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Marks a key revoked; `false` if no unrevoked key has that id.
    async fn revoke_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool>;
    async fn touch_api_key(&self, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()>;
    async fn count_api_keys(&self) -> StoreResult<i64>;

    // Dashboard sessions.
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session, if it exists, has not expired at `now`, and its key is not revoked.
    async fn live_session(&self, session_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, session_hash: &str) -> StoreResult<()>;

    // Audit trail: append-only, hash-chained per tenant.
    /// Appends events in order, each at the head of its tenant's chain, in one transaction.
    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()>;
    async fn audit_events(&self, tenant: &TenantId, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
    /// A tenant's chain in `seq` order, a page at a time (for verification and export).
    async fn audit_chain_page(&self, tenant: &TenantId, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// Every tenant that has audit events.
    async fn audit_tenants(&self) -> StoreResult<Vec<TenantId>>;
    /// Each tenant with rows, and its newest `seq` (the size its Merkle tree would have now).
    async fn audit_heads(&self) -> StoreResult<Vec<(TenantId, i64)>>;
    /// The chain hashes of a tenant's rows with `after_seq < seq ≤ after_seq + limit`, in `seq` order:
    /// `(seq, hash)`. (An empty answer before the tenant's head is a gap, not the end.)
    async fn audit_leaves(&self, tenant: &TenantId, after_seq: i64, limit: u32) -> StoreResult<Vec<(i64, String)>>;

    // Signed checkpoints of the audit trees.
    async fn latest_checkpoint(&self, tenant: &TenantId) -> StoreResult<Option<CheckpointRecord>>;
    /// The newest checkpoint of every tenant that has one.
    async fn latest_checkpoints(&self) -> StoreResult<Vec<CheckpointRecord>>;
    /// Stores a checkpoint and, in the same transaction, its `audit.checkpoint` event; `false` when
    /// another instance stored that tenant's checkpoint of that size first.
    async fn insert_checkpoint(&self, checkpoint: &CheckpointRecord) -> StoreResult<bool>;
    async fn record_verification(&self, verification: &VerificationRecord) -> StoreResult<()>;
    /// The newest passed verification of every tenant.
    async fn latest_verifications(&self) -> StoreResult<Vec<VerificationRecord>>;
    /// Tool runs, newest first, and how many match the filter in all (0 unless `count_total`).
    async fn runs(&self, filter: &RunFilter) -> StoreResult<(Vec<RunSummary>, i64)>;
    /// Draft and workflow activity of a tenant, newest first.
    async fn draft_activity(&self, tenant: &TenantId, limit: u32) -> StoreResult<Vec<ActivityEvent>>;

    // Tenant call quotas shared by every instance.
    /// Leases up to `want` calls of the tenant's quota for one minute (minutes since the Unix epoch);
    /// returns how many were granted, 0 once the minute's `quota` is spent.
    async fn lease_calls(&self, tenant: &TenantId, minute: i64, want: u32, quota: u32) -> StoreResult<u32>;

    // Settings shared by every instance on this database (maintenance mode lives here).
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str, by: &str, at: DateTime<Utc>) -> StoreResult<()>;

    // Read models over drafts, executions, payments and workflows.
    /// Queue sizes, for one tenant or (`None`) for all. Stuck means `STARTED` and older than `stuck_before`.
    async fn queue_counts(&self, tenant: Option<&TenantId>, stuck_before: DateTime<Utc>) -> StoreResult<QueueCounts>;
    async fn count_drafts(&self, tenant: &TenantId, status: DraftStatus, draft_type: Option<DraftType>) -> StoreResult<i64>;
    async fn active_workflow_count(&self, tenant: &TenantId) -> StoreResult<i64>;
    async fn payments(&self, tenant: &TenantId, filter: &PaymentFilter) -> StoreResult<Vec<PaymentRecord>>;
    /// Every payment of a tenant in one status (for totals computed in exact decimal).
    async fn payments_in_status(&self, tenant: &TenantId, status: PaymentStatus, vendor_id: Option<&str>) -> StoreResult<Vec<PaymentRecord>>;

    // Drafts.
    /// Inserts a draft; with a `request_id` already used in the tenant, returns that draft instead.
    /// Inserts a draft; with a `cap`, only if its amount fits the creator's daily limit, counted in the
    /// same transaction (a replayed `request_id` counts nothing).
    async fn insert_draft(&self, draft: DraftRecord, cap: Option<&SpendCap>) -> StoreResult<DraftInsert>;
    /// Imports many drafts in one transaction (data migration, benchmark seeding); rows that conflict
    /// with existing ones are skipped. Returns how many were inserted.
    async fn import_drafts(&self, drafts: &[DraftRecord]) -> StoreResult<u64>;
    /// A draft of the tenant, or of any tenant when `tenant` is `None` (operator tools).
    async fn draft(&self, tenant: Option<&TenantId>, draft_id: DraftId) -> StoreResult<Option<DraftRecord>>;
    /// The tenant's draft, with how many of its executions by `tool_id` count (`STARTED` or `SUCCEEDED`,
    /// not rolled back) and how many approvals others than its creator recorded: the cell layer's
    /// checks' one read, one statement.
    async fn draft_for_tool(&self, tenant: &TenantId, draft_id: DraftId, tool_id: &str) -> StoreResult<Option<DraftForTool>>;
    async fn draft_by_request(&self, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>>;
    /// Drafts newest first, for one tenant or (`None`) all.
    async fn drafts(&self, tenant: Option<&TenantId>, filter: &DraftFilter) -> StoreResult<Vec<DraftRecord>>;
    async fn approvals(&self, tenant: &TenantId, draft_id: DraftId) -> StoreResult<Vec<ApprovalRecord>>;
    /// Records one approver's decision on a `SUBMITTED` draft, atomically: one decision per approver;
    /// a rejection rejects; the `required`-th approval approves.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        tenant: &TenantId,
        draft_id: DraftId,
        approver: &str,
        decision: Decision,
        note: Option<&str>,
        required: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<DecisionOutcome>;
    /// Cancel (`by` recorded), or reset to `DRAFT` (which also forgets the draft's approvals and marks its
    /// submit execution rolled back, so it can be submitted again).
    async fn transition_draft(
        &self,
        tenant: &TenantId,
        draft_id: DraftId,
        transition: Transition,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<TransitionOutcome>;

    // Executions: the claim is the exactly-once guarantee; effects commit with SUCCEEDED.
    async fn execution_for_request(&self, tenant: &TenantId, tool_id: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>>;
    /// The draft's executions that count: `STARTED` or `SUCCEEDED` and not rolled back.
    async fn live_executions(&self, tenant: &TenantId, draft_id: DraftId) -> StoreResult<Vec<ExecutionRecord>>;
    /// Inserts the `STARTED` row unless another live execution of the draft and tool, or an earlier use of
    /// the `request_id`, exists.
    async fn claim_execution(&self, execution: &ExecutionRecord) -> StoreResult<Claim>;
    /// Applies the effect, moves the draft and marks the execution `SUCCEEDED`, in one transaction; with a
    /// `cap`, only if the amount fits the tenant's daily limit, counted in that transaction.
    #[allow(clippy::too_many_arguments)]
    async fn complete_execution(
        &self,
        execution: &ExecutionRecord,
        effect: &Effect,
        result: &serde_json::Value,
        rollback_instructions: &serde_json::Value,
        cap: Option<&SpendCap>,
        at: DateTime<Utc>,
    ) -> StoreResult<Completion>;
    async fn fail_execution(&self, tenant: &TenantId, execution_id: ExecutionId, error: &str, at: DateTime<Utc>) -> StoreResult<()>;
    async fn execution(&self, tenant: Option<&TenantId>, execution_id: ExecutionId) -> StoreResult<Option<ExecutionRecord>>;
    async fn executions(&self, tenant: Option<&TenantId>, filter: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>>;
    /// Marks `STARTED` executions created before `before` as `FAILED` (stuck); returns them.
    async fn clear_stuck(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>>;
    /// Carries out a `SUCCEEDED` execution's rollback instructions in one transaction.
    async fn rollback_execution(&self, tenant: &TenantId, execution_id: ExecutionId, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome>;
    async fn execution_counts(&self, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts>;
    /// What the runbook's monitoring section measures, for one tenant or all.
    async fn monitoring(&self, tenant: Option<&TenantId>) -> StoreResult<MonitoringFacts>;

    // Settlements.
    async fn settlements(&self, tenant: Option<&TenantId>, status: Option<SettlementStatus>, limit: u32) -> StoreResult<Vec<SettlementRecord>>;
    /// Moves a settlement intent along `queued → processing → completed | failed` (provider `manual`);
    /// `completed` settles the payment and `failed` fails it, in the same transaction.
    async fn set_settlement_status(
        &self,
        tenant: &TenantId,
        payment_id: PaymentId,
        to: SettlementStatus,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<SettlementChange>;

    // The approval deadline.
    /// `SUBMITTED` drafts whose decision deadline passed by `now` become `REJECTED` by `system`, each
    /// once however many instances sweep, with its `draft.expired` event; returns them.
    async fn expire_drafts(&self, now: DateTime<Utc>) -> StoreResult<Vec<DraftRecord>>;

    // Notifications. The transitions above write their events to the outbox themselves, in their own
    // transaction; these manage subscriptions and move deliveries.
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()>;
    /// Live subscriptions: a tenant's own and those to every tenant, or (`None`) all.
    async fn webhooks(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<WebhookRecord>>;
    /// Removes a live subscription of the tenant (`None`: any); `false` if there is none.
    async fn remove_webhook(&self, tenant: Option<&TenantId>, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// The subscription `LYNX_WEBHOOK_URL` configures: created or updated, or (`None`) removed.
    async fn set_env_webhook(&self, url: Option<&str>, format: WebhookFormat, at: DateTime<Utc>) -> StoreResult<()>;
    async fn deliveries(&self, tenant: Option<&TenantId>, filter: &DeliveryFilter) -> StoreResult<Vec<DeliveryRecord>>;
    /// Claims up to `limit` deliveries due by `now` until `lease_until`: each claimed by one instance.
    async fn claim_deliveries(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DueDelivery>>;
    async fn record_attempt(&self, event_id: &str, webhook_id: &str, attempt: &Attempt, at: DateTime<Utc>) -> StoreResult<()>;
    /// Hands claimed deliveries (event id, webhook id) back unsent, due again at `due_at`; no attempt
    /// is counted (their receiver just failed another one, or the round ran out of time).
    async fn release_deliveries(&self, deliveries: &[(String, String)], due_at: DateTime<Utc>) -> StoreResult<()>;
    /// Queues a delivered or dead delivery again; `false` if there is no such delivery.
    async fn redeliver(&self, tenant: Option<&TenantId>, event_id: &str, webhook_id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts>;
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub webhook_id: Option<String>,
    pub limit: u32,
}

/// The facts behind the runbook's four monitoring metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct MonitoringFacts {
    pub executions: ExecutionCounts,
    /// Mean seconds from `submitted_at` to `approved_at` over approved drafts.
    pub mean_approval_seconds: Option<f64>,
    pub queued_settlements: i64,
}

/// The draft status an effect needs, and the one it leaves.
pub fn effect_transition(effect: &Effect) -> (DraftStatus, DraftStatus) {
    let t = match effect {
        Effect::Submit(_) => Transition::Submit,
        Effect::Publish(_) => Transition::Publish,
        Effect::Pay(_) => Transition::Execute,
    };
    (t.rule().0[0], t.target())
}
