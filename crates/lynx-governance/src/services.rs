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
    /// How long a verified API key is trusted without asking the database again (`LYNX_KEY_CACHE_MS`);
    /// a revoked key stops working on every instance within this time. Zero: ask every time.
    pub key_cache_ttl: std::time::Duration,
}

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// Every audit row goes through here (group commit); never `store.append_audit` directly.
    pub audit: crate::audit::AuditWriter,
    /// Recently verified API keys (see `RuntimeInfo::key_cache_ttl`).
    pub keys: Arc<crate::identity::KeyCache>,
    pub kernel: Arc<dyn Kernel>,
    pub clock: Arc<dyn Clock>,
    /// Behind an `Arc`: `Services` is cloned for every call, and this holds strings.
    pub runtime: Arc<RuntimeInfo>,
    /// What signs webhook deliveries.
    pub webhooks: Arc<crate::webhooks::WebhookSecrets>,
    /// Call limits per key and per tenant (`limits`).
    pub limits: Arc<crate::limits::Limiter>,
}
