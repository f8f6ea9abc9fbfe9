//! The records of the write path: drafts, approval decisions, executions and their effects, payments
//! with their settlement intents, and published workflows — as the `Store` port reads and writes them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::{
    TenantId,
    draft::{DraftStatus, DraftType},
    ids::{DraftId, ExecutionId, PaymentId, WorkflowId},
    money::Currency,
    params::IsoDate,
    payload::{DraftPayload, WorkflowStep},
    vocab::{PaymentStatus, Risk, RunStatus, SettlementStatus},
};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftRecord {
    pub draft_id: DraftId,
    pub tenant_id: TenantId,
    pub draft_type: DraftType,
    pub payload: DraftPayload,
    pub status: DraftStatus,
    pub risk_level: Risk,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub source_context: Value,
    pub recommended_approvers: Vec<String>,
    pub preview_markdown: String,
    pub request_id: Option<String>,
    #[serde(skip)]
    pub request_fingerprint: Option<String>,
    /// The cluster tool's original answer, replayed for a repeated `request_id`.
    #[serde(skip)]
    pub response_payload: Option<Value>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_by: Option<String>,
    /// While `SUBMITTED`: when it expires without a decision (the approval rule's deadline).
    pub decision_due_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejected_by: Option<String>,
    pub rejection_reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
}

impl DraftRecord {
    /// The amount the draft is about, when it is about money.
    pub fn amount(&self) -> Option<Decimal> {
        self.payload.amount()
    }

    /// The payee's name, from the vendor snapshot the payment draft was made with.
    pub fn vendor_name(&self) -> Option<&str> {
        self.source_context["vendor"]["vendor_name"].as_str()
    }
}

/// A draft as the cell layer's checks read it: with the two counts they decide on, read in the same
/// statement.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftForTool {
    pub draft: DraftRecord,
    /// This tool's executions of the draft that count (exactly once: checks 5 and 6).
    pub claims: u32,
    /// Approvals recorded by others than the draft's creator (check 9: the Kernel's rule still met).
    pub approvals: u32,
}

#[derive(Debug, Clone, Default)]
pub struct DraftFilter {
    pub status: Option<DraftStatus>,
    pub draft_type: Option<DraftType>,
    /// Only drafts created before this one (the previous page's cursor).
    pub before: Option<(DateTime<Utc>, DraftId)>,
    pub limit: u32,
}

/// What inserting a draft did: a `request_id` already used in the tenant returns the existing draft.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftInsert {
    Inserted,
    Existing(Box<DraftRecord>),
    /// The draft would take its creator past the spend limit: nothing was written.
    OverLimit(SpendTotals),
}

/// A daily spend limit a write must stay within, counted in the write's own transaction so that
/// concurrent writes on any number of instances cannot pass it together.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendCap {
    pub subject: SpendSubject,
    pub currency: Currency,
    /// The UTC day the amount counts against.
    pub day: chrono::NaiveDate,
    /// What this write adds (at most two decimals).
    pub amount: Decimal,
    pub cap: Decimal,
}

/// Whose spending a cap counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendSubject {
    /// Payment drafts one user created.
    Agent(crate::UserId),
    /// Payments the tenant executed.
    Tenant,
}

/// Where a refused write found the total: what was counted already today, against the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendTotals {
    pub spent: Decimal,
    pub cap: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "APPROVED",
            Decision::Rejected => "REJECTED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRecord {
    pub draft_id: DraftId,
    pub tenant_id: TenantId,
    pub approver_id: String,
    pub decision: Decision,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The outcome of recording one approver's decision on a submitted draft.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// Recorded; the draft as it now stands and how many approvals it holds.
    Recorded { draft: Box<DraftRecord>, approvals: u32 },
    /// The draft is not `SUBMITTED` (any more).
    WrongStatus(DraftStatus),
    /// This approver already decided on this draft.
    AlreadyDecided,
    NotFound,
}

/// The outcome of a status change guarded by the statuses it may start from.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    Done(Box<DraftRecord>),
    WrongStatus(DraftStatus),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRecord {
    pub execution_id: ExecutionId,
    pub draft_id: DraftId,
    pub tool_id: String,
    pub tenant_id: TenantId,
    pub actor_id: String,
    pub status: RunStatus,
    pub result_payload: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub rollback_instructions: Option<Value>,
    pub rolled_back_at: Option<DateTime<Utc>>,
    pub rolled_back_by: Option<String>,
    pub request_id: Option<String>,
    #[serde(skip)]
    pub request_fingerprint: Option<String>,
    pub explicit_approval: bool,
    pub source_context: Value,
}

#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<RunStatus>,
    pub draft_id: Option<DraftId>,
    pub tool_id: Option<String>,
    pub before: Option<(DateTime<Utc>, ExecutionId)>,
    pub limit: u32,
}

/// What trying to claim an execution found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The `STARTED` row is ours.
    Claimed,
    /// Another execution of the same draft and tool is live (`STARTED` or `SUCCEEDED`).
    Taken(Box<ExecutionRecord>),
    /// The `request_id` was used before for this tool.
    RequestSeen(Box<ExecutionRecord>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentDetails {
    pub payment_id: PaymentId,
    pub vendor_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub due_date: IsoDate,
}

/// What a submit records besides the status: the approval rule's deadline and how many approvals the
/// draft needs (for the `draft.submitted` event).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmitDetails {
    pub decision_due_at: DateTime<Utc>,
    pub approvals_required: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowDetails {
    pub workflow_id: WorkflowId,
    pub name: String,
    pub workflow_kind: String,
    pub steps: Vec<WorkflowStep>,
}

/// The effects of a cell tool, applied in one transaction with the change to `SUCCEEDED`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Effect {
    /// `DRAFT → SUBMITTED`.
    Submit(SubmitDetails),
    /// A published workflow record; `APPROVED → PUBLISHED`.
    Publish(WorkflowDetails),
    /// A payment `pending_settlement` and its settlement intent `queued`/`none`; `APPROVED → EXECUTED`.
    Pay(PaymentDetails),
}

/// What completing a claimed execution did.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Succeeded(Box<ExecutionRecord>),
    /// The claim is no longer `STARTED` (an operator cleared it): nothing was applied.
    ClaimLost(RunStatus),
    /// The draft left the status the effect needs: nothing was applied.
    DraftMoved(DraftStatus),
    /// The payment would take the tenant past its daily execution limit: nothing was applied.
    OverLimit(SpendTotals),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RollbackOutcome {
    Done(Box<ExecutionRecord>),
    /// The effect can no longer be undone; why.
    NotPossible(String),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettlementRecord {
    pub payment_id: PaymentId,
    pub tenant_id: TenantId,
    pub status: SettlementStatus,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub metadata: Value,
    pub amount: Decimal,
    pub currency: Currency,
    pub vendor_id: String,
    pub payment_status: PaymentStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SettlementChange {
    Done(Box<SettlementRecord>),
    WrongStatus(SettlementStatus),
    NotFound,
}

/// Execution counts by status, for the runbook's monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExecutionCounts {
    pub started: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub denied: i64,
}

/// What an execution's `rollback_instructions.action` says to do to undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackAction {
    /// A submit: the draft goes back from `SUBMITTED` to `DRAFT`.
    ReturnToDraft,
    /// A publication: the workflow is retired.
    RetireWorkflow,
    /// A payment: a reversal, refused once the settlement completed.
    ReversePayment,
}

impl RollbackAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackAction::ReturnToDraft => "return_draft_to_draft",
            RollbackAction::RetireWorkflow => "retire_workflow",
            RollbackAction::ReversePayment => "reverse_payment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::ReturnToDraft, Self::RetireWorkflow, Self::ReversePayment].into_iter().find(|a| a.as_str() == s)
    }

    pub fn for_effect(effect: &Effect) -> Self {
        match effect {
            Effect::Submit(_) => Self::ReturnToDraft,
            Effect::Publish(_) => Self::RetireWorkflow,
            Effect::Pay(_) => Self::ReversePayment,
        }
    }
}
