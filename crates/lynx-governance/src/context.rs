//! The contexts tools run with, one per layer, and the evidence they are built from.
//!
//! `Cleared` is what the pipeline holds once every gate has passed; nothing outside this crate can make
//! one, so no tool context exists for a call that skipped a gate. Each context hands out views bound to
//! the caller's tenant: a tool cannot even name another tenant.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lynx_model::{
    Layer, Principal, Refusal, RunId, TenantId,
    audit::AuditEvent,
    kernel::{Document, FinanceSummary, KernelError, PermissionDecision, PermissionRequest, Policies, TenantRecord, UserRecord, Vendor},
    store::{ActivityEvent, AuditFilter, PaymentFilter, PaymentRecord, QueueCounts, RunFilter, RunSummary, StoreError},
    ErrorCode,
};

use crate::{health::Health, registry::Registry, services::{RuntimeInfo, Services}};

/// Evidence that a call passed identity, registry, validation, permission, layer and mode gates.
pub struct Cleared {
    pub(crate) services: Services,
    pub(crate) registry: Arc<Registry>,
    pub(crate) principal: Principal,
    pub(crate) run_id: RunId,
}

/// The context type of one layer. Built only from `Cleared`.
pub trait LayerContext: Send + Sync + Sized + 'static {
    const LAYER: Layer;
    fn build(cleared: Cleared) -> Self;
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

pub(crate) fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::Unavailable(m) => Refusal::storage_unavailable(m),
        StoreError::Conflict(m) => Refusal::new(ErrorCode::Internal, format!("storage conflict: {m}"), "Retry the call."),
        StoreError::Corrupt(m) => Refusal::new(ErrorCode::Internal, format!("stored data unreadable: {m}"), "Report this to the operator."),
    }
}

pub(crate) fn kernel_refusal(e: KernelError) -> Refusal {
    match e {
        KernelError::NotFound(m) => Refusal::new(ErrorCode::NotFound, m, "Check the identifier against the Kernel's data."),
        KernelError::Unavailable(m) => Refusal::kernel_unavailable(m),
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
        self.services.store.runs(&filter).await.map_err(store_refusal)
    }
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, Refusal> {
        self.services.store.audit_events(self.tenant, filter).await.map_err(store_refusal)
    }
    pub async fn draft_activity(&self, limit: u32) -> Result<Vec<ActivityEvent>, Refusal> {
        self.services.store.draft_activity(self.tenant, limit).await.map_err(store_refusal)
    }
    pub async fn count_drafts(&self, status: &str, draft_type: Option<&str>) -> Result<i64, Refusal> {
        self.services.store.count_drafts(self.tenant, status, draft_type).await.map_err(store_refusal)
    }
    pub async fn active_workflow_count(&self) -> Result<i64, Refusal> {
        self.services.store.active_workflow_count(self.tenant).await.map_err(store_refusal)
    }
    pub async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<PaymentRecord>, Refusal> {
        self.services.store.payments(self.tenant, filter).await.map_err(store_refusal)
    }
    pub async fn payments_in_status(&self, status: &str, vendor_id: Option<&str>) -> Result<Vec<PaymentRecord>, Refusal> {
        self.services.store.payments_in_status(self.tenant, status, vendor_id).await.map_err(store_refusal)
    }
    pub async fn queue_counts(&self, stuck_before: DateTime<Utc>) -> Result<QueueCounts, Refusal> {
        self.services.store.queue_counts(Some(self.tenant), stuck_before).await.map_err(store_refusal)
    }
}

/// The Kernel, asked about the caller's tenant only.
pub struct TenantKernel<'a> {
    services: &'a Services,
    tenant: &'a TenantId,
}

impl TenantKernel<'_> {
    pub async fn tenant(&self) -> Result<TenantRecord, Refusal> {
        self.services.kernel.tenant(self.tenant).await.map_err(kernel_refusal)
    }
    pub async fn user(&self, user: &lynx_model::UserId) -> Result<UserRecord, Refusal> {
        self.services.kernel.user(self.tenant, user).await.map_err(kernel_refusal)
    }
    /// Asks the Kernel whether `user` may perform `action`; an unreachable Kernel is an error, never a yes.
    pub async fn check_permission(&self, user: &lynx_model::UserId, action: &str, resource_type: &str) -> Result<PermissionDecision, Refusal> {
        let request = PermissionRequest {
            user_id: user.clone(),
            tenant_id: self.tenant.clone(),
            action: action.to_string(),
            resource_type: resource_type.to_string(),
        };
        self.services.kernel.check_permission(&request).await.map_err(kernel_refusal)
    }
    pub async fn policies(&self) -> Result<Policies, Refusal> {
        self.services.kernel.policies(self.tenant).await.map_err(kernel_refusal)
    }
    pub async fn vendors(&self) -> Result<Vec<Vendor>, Refusal> {
        self.services.kernel.vendors(self.tenant).await.map_err(kernel_refusal)
    }
    pub async fn vendor(&self, vendor_id: &str) -> Result<Vendor, Refusal> {
        self.services.kernel.vendor(self.tenant, vendor_id).await.map_err(kernel_refusal)
    }
    pub async fn documents(&self) -> Result<Vec<Document>, Refusal> {
        self.services.kernel.documents(self.tenant).await.map_err(kernel_refusal)
    }
    pub async fn finance_summary(&self, period: &str) -> Result<FinanceSummary, Refusal> {
        self.services.kernel.finance_summary(self.tenant, period).await.map_err(kernel_refusal)
    }
}
