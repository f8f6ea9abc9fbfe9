//! The domain layer: twelve read-only tools. Each reads through a `ReadCtx`, which can only read and
//! only the caller's tenant.

pub mod audit_run_read;
pub mod docs_registry_read;
pub mod featureflag_status_read;
pub mod finance_health_read;
pub mod kernel_registry_read;
pub mod security_permission_read;
pub mod system_health_read;
pub mod tenant_profile_read;
pub mod vpm_payment_status_read;
pub mod vpm_vendor_read;
pub mod workflow_policy_read;
pub mod workflow_status_read;
