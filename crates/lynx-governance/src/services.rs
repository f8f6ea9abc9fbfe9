//! What the pipeline and the tools run against: the ports and the facts fixed at start-up.

use std::sync::Arc;

use lynx_model::{Mode, clock::Clock, kernel::Kernel, store::Store};

/// Facts about this running Lynx that do not change while it runs.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub mode: Mode,
    pub protocol_version: String,
    pub toolset_version: String,
    /// `LYNX_MAINTENANCE_MODE=true` at start; the stored switch can turn maintenance on as well.
    pub maintenance_from_env: bool,
    /// Lynx's own version (the binary's).
    pub version: String,
    /// How storage is labelled for operators: `SQLite`, `PostgreSQL` or `Supabase`.
    pub storage_label: String,
    /// Dev-mode fault injection for crash tests: pause between an execution's claim and its commit.
    pub failpoint_after_claim: Option<std::time::Duration>,
    /// Names this instance in the audit trail (`LYNX_INSTANCE_ID`, or host and process id).
    pub instance_id: String,
}

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub kernel: Arc<dyn Kernel>,
    pub clock: Arc<dyn Clock>,
    pub runtime: RuntimeInfo,
}
