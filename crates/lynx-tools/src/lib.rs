//! The Lynx tools, one file each, one folder per layer.
//!
//! `all()` is the registry list, in TOOLS.md order; nothing else anywhere names a tool. Adding a tool is
//! one file, one line here, and one row in TOOLS.md.

use std::sync::Arc;

use lynx_governance::{Registry, tool::ErasedTool};

pub mod cell;
pub mod cluster;
pub mod domain;
mod drafting;

/// Every registered tool.
pub fn all() -> Vec<Arc<dyn ErasedTool>> {
    use domain::*;
    // TOOLS.md order: domain, cluster, cell.
    vec![
        Registry::entry(finance_health_read::FinanceHealthRead),
        Registry::entry(kernel_registry_read::KernelRegistryRead),
        Registry::entry(tenant_profile_read::TenantProfileRead),
        Registry::entry(audit_run_read::AuditRunRead),
        Registry::entry(security_permission_read::SecurityPermissionRead),
        Registry::entry(workflow_status_read::WorkflowStatusRead),
        Registry::entry(workflow_policy_read::WorkflowPolicyRead),
        Registry::entry(docs_registry_read::DocsRegistryRead),
        Registry::entry(featureflag_status_read::FeatureflagStatusRead),
        Registry::entry(system_health_read::SystemHealthRead),
        Registry::entry(vpm_vendor_read::VpmVendorRead),
        Registry::entry(vpm_payment_status_read::VpmPaymentStatusRead),
        Registry::entry(cluster::docs_draft_create::DocsDraftCreate),
        Registry::entry(cluster::workflow_draft_create::WorkflowDraftCreate),
        Registry::entry(cluster::vpm_payment_draft_create::VpmPaymentDraftCreate),
        Registry::entry(cell::docs_draft_submit::DocsDraftSubmit),
        Registry::entry(cell::workflow_draft_publish::WorkflowDraftPublish),
        Registry::entry(cell::vpm_payment_execute::VpmPaymentExecute),
    ]
}

/// The registry of every tool.
pub fn registry() -> Registry {
    Registry::new(all())
}

pub(crate) fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests;
