//! The contexts tools run with, one per layer, and the evidence they are built from.
//!
//! `Cleared` is what the pipeline holds once every gate has passed; nothing outside this crate can make
//! one, so no tool context exists for a call that skipped a gate. Each context hands out views bound to
//! the caller's tenant: a tool cannot even name another tenant.

use std::{future::Future, sync::{Arc, OnceLock}};

use chrono::{DateTime, Utc};
use lynx_model::{
    DraftId, ExecutionId,
    payload::DraftPayload,
    vocab::PaymentStatus,
    Layer, Principal, Refusal, RunId, TenantId,
    audit::AuditEvent,
    kernel::{Document, FinanceSummary, PermissionDecision, PermissionRequest, Policies, TenantRecord, UserRecord, Vendor},
    store::{ActivityEvent, AuditFilter, PaymentFilter, PaymentRecord, QueueCounts, RunFilter, RunSummary},
    ErrorCode,
    draft::{DraftStatus, DraftType},
    records::{Claim, Completion, DraftForTool, DraftInsert, DraftRecord, Effect, ExecutionRecord, RollbackAction},
    vocab::RunStatus,
    Risk,
};
use serde_json::{Value, json};

use crate::{execution, health::Health, registry::Registry, services::{RuntimeInfo, Services}, tool::ToolSpec};

/// Evidence that a call passed identity, registry, validation, permission, layer and mode gates.
pub struct Cleared {
    pub(crate) services: Services,
    pub(crate) registry: Arc<Registry>,
    pub(crate) principal: Principal,
    pub(crate) run_id: RunId,
    pub(crate) tool: &'static ToolSpec,
    pub(crate) request: RequestFacts,
    /// Cell tools: the draft that passed the execution protocol's checks, as they read it.
    pub(crate) draft: Option<DraftForTool>,
}

/// What the pipeline read from a writing call's arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestFacts {
    pub request_id: Option<String>,
    /// SHA-256 over the tool id and the canonical arguments: the same request, or not.
    pub fingerprint: String,
    pub explicit_approval: bool,
}

/// The context type of one layer. Built only from `Cleared`.
pub trait LayerContext: Send + Sync + Sized + 'static {
    const LAYER: Layer;
    fn build(cleared: Cleared) -> Self;
    /// What the layer does with the tool's answer once the tool has run.
    fn finish(self, output: Value) -> impl Future<Output = Result<Value, Refusal>> + Send;
}

/// The domain layer's context: reads only, scoped to the caller's tenant.
pub struct ReadCtx {
    cleared: Cleared,
}

impl LayerContext for ReadCtx {
    const LAYER: Layer = Layer::Domain;
    fn build(cleared: Cleared) -> Self {
        Self { cleared }
    }
    async fn finish(self, output: Value) -> Result<Value, Refusal> {
        Ok(output)
    }
}

impl ReadCtx {
    pub fn caller(&self) -> &Principal {
        &self.cleared.principal
    }
    pub fn tenant_id(&self) -> &TenantId {
        &self.cleared.principal.tenant_id
    }
    pub fn run_id(&self) -> RunId {
        self.cleared.run_id
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.cleared.services.clock.now()
    }
    pub fn registry(&self) -> &Registry {
        &self.cleared.registry
    }
    pub fn runtime(&self) -> &RuntimeInfo {
        &self.cleared.services.runtime
    }
    pub fn store(&self) -> TenantStore<'_> {
        TenantStore { services: &self.cleared.services, tenant: self.tenant_id() }
    }
    pub fn kernel(&self) -> TenantKernel<'_> {
        TenantKernel { services: &self.cleared.services, tenant: self.tenant_id() }
    }
    /// Whether maintenance mode is on (environment or stored switch).
    pub async fn maintenance_on(&self) -> Result<bool, Refusal> {
        Ok(crate::maintenance::state(&self.cleared.services).await?.on)
    }
    /// Live probes of the Kernel and storage, with measured latency.
    pub async fn health(&self) -> Health {
        crate::health::probe(&self.cleared.services).await
    }
}

/// Read access to Lynx's tables, for the caller's tenant only.
pub struct TenantStore<'a> {
    services: &'a Services,
    tenant: &'a TenantId,
}

impl TenantStore<'_> {
    pub async fn runs(&self, mut filter: RunFilter) -> Result<(Vec<RunSummary>, i64), Refusal> {
        filter.tenant = Some(self.tenant.clone());
        self.services.store.runs(&filter).await.map_err(Refusal::from)
    }
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, Refusal> {
        self.services.store.audit_events(self.tenant, filter).await.map_err(Refusal::from)
    }
    pub async fn draft_activity(&self, limit: u32) -> Result<Vec<ActivityEvent>, Refusal> {
        self.services.store.draft_activity(self.tenant, limit).await.map_err(Refusal::from)
    }
    pub async fn count_drafts(&self, status: DraftStatus, draft_type: Option<DraftType>) -> Result<i64, Refusal> {
        self.services.store.count_drafts(self.tenant, status, draft_type).await.map_err(Refusal::from)
    }
    pub async fn active_workflow_count(&self) -> Result<i64, Refusal> {
        self.services.store.active_workflow_count(self.tenant).await.map_err(Refusal::from)
    }
    pub async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentRecord>, Refusal> {
        self.services.store.payments(self.tenant, filter).await.map_err(Refusal::from)
    }
    pub async fn payments_in_status(&self, status: PaymentStatus, vendor_id: Option<&str>) -> Result<Vec<PaymentRecord>, Refusal> {
        self.services.store.payments_in_status(self.tenant, status, vendor_id).await.map_err(Refusal::from)
    }
    /// A draft of the tenant; another tenant's is `None`, like a missing one.
    pub async fn draft(&self, draft_id: DraftId) -> Result<Option<DraftRecord>, Refusal> {
        Ok(self.services.store.draft(Some(self.tenant), draft_id).await?)
    }
    pub async fn approvals(&self, draft_id: DraftId) -> Result<Vec<lynx_model::records::ApprovalRecord>, Refusal> {
        self.services.store.approvals(self.tenant, draft_id).await.map_err(Refusal::from)
    }
    pub async fn queue_counts(&self, stuck_before: DateTime<Utc>) -> Result<QueueCounts, Refusal> {
        self.services.store.queue_counts(Some(self.tenant), stuck_before).await.map_err(Refusal::from)
    }
}

/// The Kernel, asked about the caller's tenant only.
pub struct TenantKernel<'a> {
    services: &'a Services,
    tenant: &'a TenantId,
}

impl TenantKernel<'_> {
    pub async fn tenant(&self) -> Result<TenantRecord, Refusal> {
        self.services.kernel.tenant(self.tenant).await.map_err(Refusal::from)
    }
    pub async fn user(&self, user: &lynx_model::UserId) -> Result<UserRecord, Refusal> {
        self.services.kernel.user(self.tenant, user).await.map_err(Refusal::from)
    }
    /// Asks the Kernel whether `user` may perform `action`; an unreachable Kernel is an error, never a yes.
    pub async fn check_permission(&self, user: &lynx_model::UserId, action: &str, resource_type: &str) -> Result<PermissionDecision, Refusal> {
        let request = PermissionRequest {
            user_id: user.clone(),
            tenant_id: self.tenant.clone(),
            action: action.to_string(),
            resource_type: resource_type.to_string(),
        };
        self.services.kernel.check_permission(&request).await.map_err(Refusal::from)
    }
    pub async fn policies(&self) -> Result<std::sync::Arc<Policies>, Refusal> {
        self.services.kernel.policies(self.tenant).await.map_err(Refusal::from)
    }
    pub async fn vendors(&self) -> Result<Vec<Vendor>, Refusal> {
        self.services.kernel.vendors(self.tenant).await.map_err(Refusal::from)
    }
    pub async fn vendor(&self, vendor_id: &str) -> Result<Vendor, Refusal> {
        self.services.kernel.vendor(self.tenant, vendor_id).await.map_err(Refusal::from)
    }
    pub async fn documents(&self) -> Result<Vec<Document>, Refusal> {
        self.services.kernel.documents(self.tenant).await.map_err(Refusal::from)
    }
    pub async fn finance_summary(&self, period: &str) -> Result<FinanceSummary, Refusal> {
        self.services.kernel.finance_summary(self.tenant, period).await.map_err(Refusal::from)
    }
}

/// A draft as a cluster tool proposes it; the context saves it once the tool has answered.
#[derive(Debug, Clone)]
pub struct NewDraft {
    pub payload: DraftPayload,
    pub risk_level: Risk,
    /// The Kernel facts the draft was built from.
    pub source_context: Value,
    pub recommended_approvers: Vec<String>,
    pub preview_markdown: String,
}

/// The cluster layer's context: reads, plus staging exactly one draft. Nothing else changes.
pub struct DraftCtx {
    cleared: Cleared,
    draft_id: DraftId,
    staged: OnceLock<NewDraft>,
}

impl DraftCtx {
    pub fn caller(&self) -> &Principal {
        &self.cleared.principal
    }
    pub fn tenant_id(&self) -> &TenantId {
        &self.cleared.principal.tenant_id
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.cleared.services.clock.now()
    }
    pub fn kernel(&self) -> TenantKernel<'_> {
        TenantKernel { services: &self.cleared.services, tenant: self.tenant_id() }
    }
    /// The id the draft will have.
    pub fn draft_id(&self) -> DraftId {
        self.draft_id
    }
    /// Proposes the draft; a tool proposes one draft per call.
    pub fn stage(&self, draft: NewDraft) -> Result<(), Refusal> {
        self.staged.set(draft).map_err(|_| Refusal::internal("staging a second draft in one call"))
    }
}

impl LayerContext for DraftCtx {
    const LAYER: Layer = Layer::Cluster;
    fn build(cleared: Cleared) -> Self {
        Self { cleared, draft_id: DraftId::new(), staged: OnceLock::new() }
    }
    async fn finish(self, output: Value) -> Result<Value, Refusal> {
        let Self { cleared, draft_id, staged } = self;
        let staged = staged.into_inner().ok_or_else(|| Refusal::internal("creating the draft (the tool proposed none)"))?;
        let draft_type = cleared.tool.draft_type.ok_or_else(|| Refusal::internal("creating a draft of no type"))?;
        if staged.payload.draft_type() != draft_type {
            return Err(Refusal::internal("creating a draft whose payload is of another type than the tool's"));
        }
        let now = cleared.services.clock.now();
        let record = DraftRecord {
            draft_id,
            tenant_id: cleared.principal.tenant_id.clone(),
            draft_type,
            payload: staged.payload,
            status: DraftStatus::Draft,
            risk_level: staged.risk_level,
            created_by: cleared.principal.user_id.to_string(),
            created_at: now,
            updated_at: now,
            source_context: staged.source_context,
            recommended_approvers: staged.recommended_approvers,
            preview_markdown: staged.preview_markdown,
            request_id: cleared.request.request_id.clone(),
            request_fingerprint: Some(cleared.request.fingerprint.clone()),
            response_payload: Some(output.clone()),
            submitted_at: None,
            submitted_by: None,
            decision_due_at: None,
            approved_at: None,
            approved_by: None,
            rejected_at: None,
            rejected_by: None,
            rejection_reason: None,
            cancelled_at: None,
            cancelled_by: None,
        };
        let cap = crate::limits::draft_cap(&cleared.services, &cleared.principal, &record.payload).await?;
        match cleared.services.store.insert_draft(record, cap.as_ref()).await? {
            DraftInsert::Inserted => Ok(output),
            DraftInsert::OverLimit(totals) => {
                let cap = cap.as_ref().ok_or_else(|| Refusal::internal("counting a draft against no limit"))?;
                Err(crate::limits::over_limit(cap, totals, now))
            }
            // A concurrent call with the same request_id won the insert.
            DraftInsert::Existing(existing) => execution::replay_draft(&existing, cleared.tool.id, &cleared.request.fingerprint),
        }
    }
}

/// The cell layer's context: the approved draft, reads, and staging exactly one effect, which the
/// context applies under an exactly-once claim once the tool has answered.
pub struct ExecCtx {
    cleared: Cleared,
    execution_id: ExecutionId,
    staged: OnceLock<Effect>,
}

impl ExecCtx {
    pub fn caller(&self) -> &Principal {
        &self.cleared.principal
    }
    pub fn tenant_id(&self) -> &TenantId {
        &self.cleared.principal.tenant_id
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.cleared.services.clock.now()
    }
    pub fn kernel(&self) -> TenantKernel<'_> {
        TenantKernel { services: &self.cleared.services, tenant: self.tenant_id() }
    }
    pub fn store(&self) -> TenantStore<'_> {
        TenantStore { services: &self.cleared.services, tenant: self.tenant_id() }
    }
    /// The draft, as it passed the execution protocol's checks.
    pub fn draft(&self) -> &DraftRecord {
        &self.checked().draft
    }
    /// The approvals others than the draft's creator recorded, read with the draft (check 9 compares
    /// them with the Kernel's current rule). A draft's approvals change only while it is `SUBMITTED`;
    /// one reset to `DRAFT` after this read loses the execution's claim to the status guard.
    pub fn approvals_by_others(&self) -> u32 {
        self.checked().approvals
    }
    fn checked(&self) -> &DraftForTool {
        self.cleared.draft.as_ref().expect("a cell context is built with its draft")
    }
    /// The id the execution will have.
    pub fn execution_id(&self) -> ExecutionId {
        self.execution_id
    }
    /// Proposes the effect; a tool proposes one effect per call.
    pub fn stage(&self, effect: Effect) -> Result<(), Refusal> {
        self.staged.set(effect).map_err(|_| Refusal::internal("staging a second effect in one call"))
    }
}

impl LayerContext for ExecCtx {
    const LAYER: Layer = Layer::Cell;
    fn build(cleared: Cleared) -> Self {
        Self { cleared, execution_id: ExecutionId::new(), staged: OnceLock::new() }
    }
    async fn finish(self, output: Value) -> Result<Value, Refusal> {
        let Self { cleared, execution_id, staged } = self;
        let effect = staged.into_inner().ok_or_else(|| Refusal::internal("executing (the tool proposed no effect)"))?;
        let draft = &cleared.draft.as_ref().ok_or_else(|| Refusal::internal("executing without a draft"))?.draft;
        let services = &cleared.services;
        let now = services.clock.now();
        let claim = ExecutionRecord {
            execution_id,
            draft_id: draft.draft_id,
            tool_id: cleared.tool.id.to_string(),
            tenant_id: cleared.principal.tenant_id.clone(),
            actor_id: cleared.principal.user_id.to_string(),
            status: RunStatus::Started,
            result_payload: None,
            created_at: now,
            completed_at: None,
            error_message: None,
            rollback_instructions: None,
            rolled_back_at: None,
            rolled_back_by: None,
            request_id: cleared.request.request_id.clone(),
            request_fingerprint: Some(cleared.request.fingerprint.clone()),
            explicit_approval: cleared.request.explicit_approval,
            source_context: json!({
                "run_id": cleared.run_id,
                "draft_status": draft.status,
                "draft_risk_level": draft.risk_level,
                "approved_by": draft.approved_by,
                "approved_at": draft.approved_at,
            }),
        };
        match services.store.claim_execution(&claim).await? {
            Claim::Claimed => {}
            Claim::Taken(live) => return Err(execution::taken(&live, draft.draft_id, cleared.tool)),
            Claim::RequestSeen(seen) => return execution::replay_execution(&seen, &cleared.request.fingerprint),
        }
        if let Some(pause) = services.runtime.failpoint_after_claim {
            tokio::time::sleep(pause).await;
        }
        let rollback = rollback_instructions(&effect, draft.draft_id);
        let cap = match crate::limits::execution_cap(services, &claim.tenant_id, &effect).await {
            Ok(cap) => cap,
            Err(r) => {
                let _ = services.store.fail_execution(&claim.tenant_id, execution_id, &r.message, services.clock.now()).await;
                return Err(r);
            }
        };
        let completed = services.store.complete_execution(&claim, &effect, &output, &rollback, cap.as_ref(), services.clock.now()).await;
        match completed {
            Ok(Completion::Succeeded(_)) => Ok(output),
            Ok(Completion::ClaimLost(status)) => Err(Refusal::new(
                ErrorCode::ExecutionFailed,
                format!("Execution {execution_id} was marked {status} by an operator before it completed: nothing was applied"),
                "Retry the call; the draft is unchanged.",
            )),
            Ok(Completion::OverLimit(totals)) => {
                let cap = cap.as_ref().ok_or_else(|| Refusal::internal("counting a payment against no limit"))?;
                let refusal = crate::limits::over_limit(cap, totals, services.clock.now());
                // The claim closes so the draft can be executed once the limit allows (tomorrow, or raised).
                let _ = services.store.fail_execution(&claim.tenant_id, execution_id, &refusal.message, services.clock.now()).await;
                Err(refusal)
            }
            Ok(Completion::DraftMoved(status)) => {
                let why = format!("draft {} moved to {status} during execution: nothing was applied", draft.draft_id);
                let _ = services.store.fail_execution(&claim.tenant_id, execution_id, &why, services.clock.now()).await;
                Err(Refusal::new(ErrorCode::InvalidTransition, why, "Check the draft's status and history with `lynx drafts show`."))
            }
            Err(e) => {
                let _ = services.store.fail_execution(&claim.tenant_id, execution_id, &e.to_string(), services.clock.now()).await;
                Err(Refusal::from(e))
            }
        }
    }
}

fn rollback_instructions(effect: &Effect, draft_id: DraftId) -> Value {
    let action = RollbackAction::for_effect(effect).as_str();
    match effect {
        Effect::Submit(_) => json!({
            "action": action, "draft_id": draft_id, "from_status": "SUBMITTED", "to_status": "DRAFT",
            "description": "Return the draft to DRAFT (its approvals are forgotten); possible while it is still SUBMITTED."
        }),
        Effect::Publish(w) => json!({
            "action": action, "workflow_id": w.workflow_id, "draft_id": draft_id,
            "description": "Retire the published workflow; the draft stays PUBLISHED (exactly once)."
        }),
        Effect::Pay(p) => json!({
            "action": action, "payment_id": p.payment_id, "draft_id": draft_id, "amount": p.amount, "currency": p.currency,
            "description": "Reverse the payment and cancel its settlement intent; refused once the settlement is completed."
        }),
    }
}
