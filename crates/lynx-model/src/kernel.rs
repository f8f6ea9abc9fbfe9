//! The Kernel port: the platform's source of truth for tenants, users, roles, scopes, flags, vendors,
//! policies, documents and finance figures. These records are also the Kernel HTTP contract's JSON
//! and the Kernel file's content (KERNEL.md). Lynx reads them and never writes them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    #[schemars(with = "String")]
    pub approval_threshold: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub name: String,
    pub plan: String,
    pub region: String,
    pub enabled_modules: Vec<String>,
    pub feature_flags: BTreeMap<String, bool>,
    pub settings: TenantSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub user_id: UserId,
    pub display_name: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionRequest {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub action: String,
    pub resource_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionDecision {
    pub allowed: bool,
    pub reason: String,
    pub required_role: Vec<String>,
    pub required_scope: Vec<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    pub rule_id: String,
    pub workflow_type: String,
    pub required_role: Vec<String>,
    pub required_scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub threshold_amount: Option<Decimal>,
    pub approval_count: u32,
    /// Hours approvers have to decide on a submitted draft (fractions allowed); past it the draft
    /// expires: `REJECTED` by `system`. Default 72.
    #[serde(default = "ApprovalRule::default_decision_deadline_hours")]
    pub decision_deadline_hours: f64,
    /// Hours an approval stays good for execution (fractions allowed); an older one is
    /// `APPROVAL_EXPIRED`. Default 24.
    #[serde(default = "ApprovalRule::default_approval_validity_hours")]
    pub approval_validity_hours: f64,
}

impl ApprovalRule {
    pub const fn default_decision_deadline_hours() -> f64 {
        72.0
    }
    pub const fn default_approval_validity_hours() -> f64 {
        24.0
    }
    pub fn decision_deadline(&self) -> chrono::TimeDelta {
        hours(self.decision_deadline_hours)
    }
    pub fn approval_validity(&self) -> chrono::TimeDelta {
        hours(self.approval_validity_hours)
    }
}

fn hours(h: f64) -> chrono::TimeDelta {
    chrono::TimeDelta::milliseconds((h * 3_600_000.0).round() as i64)
}

/// How a span of hours reads in a message: `72 h`, `90 min`, `4 s`.
pub fn hours_text(h: f64) -> String {
    if h >= 1.0 && h.fract() == 0.0 {
        format!("{h} h")
    } else if h * 60.0 >= 1.0 && (h * 60.0).fract().abs() < 1e-9 {
        format!("{} min", h * 60.0)
    } else {
        format!("{} s", (h * 3600.0).round())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    pub tool_id: String,
    pub required_role: Vec<String>,
    pub required_scope: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub approval_rules: Vec<ApprovalRule>,
    pub role_gates: BTreeMap<String, Vec<String>>,
    pub tool_policies: Vec<ToolPolicy>,
    /// The tenant's call limits; what is absent takes Lynx's defaults (and `LYNX_RATE_LIMIT_*` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitPolicy>,
    /// Daily spend limits by ISO 4217 currency; a currency without an entry is not limited.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spend_limits: BTreeMap<String, SpendLimitPolicy>,
}

/// How much may be spent in one currency per UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendLimitPolicy {
    /// The total of payment drafts one user (an agent) may create.
    pub agent_daily_drafts: Option<crate::money::Amount>,
    /// The total of payments the tenant may execute.
    pub tenant_daily_executions: Option<crate::money::Amount>,
}

/// Call limits a tenant's policy may set; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicy {
    /// Calls per second one API key may make on one instance (sustained).
    pub key_calls_per_second: Option<u32>,
    /// Calls one API key may make at once before the per-second rate applies.
    pub key_burst: Option<u32>,
    /// Calls per minute the whole tenant may make, across every instance.
    pub tenant_calls_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VendorStatus {
    Active,
    Inactive,
    Suspended,
}

impl VendorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VendorStatus::Active => "active",
            VendorStatus::Inactive => "inactive",
            VendorStatus::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    pub vendor_id: String,
    pub vendor_name: String,
    pub status: VendorStatus,
    pub risk_flags: Vec<String>,
    pub payment_terms: String,
    pub bank_details_present: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub document_id: String,
    pub document_type: String,
    pub title: String,
    pub version: String,
    pub status: String,
    pub checksum: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinanceSummary {
    pub period: String,
    #[schemars(with = "String")]
    pub revenue: Decimal,
    #[schemars(with = "String")]
    pub expenses: Decimal,
    #[schemars(with = "String")]
    pub outstanding: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelHealth {
    pub status: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The Kernel answered: no such tenant, user, vendor or period.
    #[error("{0}")]
    NotFound(String),
    /// The Kernel could not answer: connection error, timeout, 5xx, garbled reply.
    #[error("{0}")]
    Unavailable(String),
}

/// Where Lynx reads the truth from. Implemented by the embedded Kernel and the HTTP client.
#[async_trait::async_trait]
pub trait Kernel: Send + Sync {
    /// A short description for operators, such as `embedded (built-in demo data)`; never a secret.
    fn describe(&self) -> String;
    async fn health(&self) -> Result<KernelHealth, KernelError>;
    async fn tenant(&self, tenant: &TenantId) -> Result<TenantRecord, KernelError>;
    async fn user(&self, tenant: &TenantId, user: &UserId) -> Result<UserRecord, KernelError>;
    async fn check_permission(&self, request: &PermissionRequest) -> Result<PermissionDecision, KernelError>;
    /// Shared, not copied: several gates of one call read them, and a tenant's policies are many strings.
    async fn policies(&self, tenant: &TenantId) -> Result<std::sync::Arc<Policies>, KernelError>;
    async fn vendors(&self, tenant: &TenantId) -> Result<Vec<Vendor>, KernelError>;
    async fn vendor(&self, tenant: &TenantId, vendor_id: &str) -> Result<Vendor, KernelError>;
    async fn documents(&self, tenant: &TenantId) -> Result<Vec<Document>, KernelError>;
    async fn finance_summary(&self, tenant: &TenantId, period: &str) -> Result<FinanceSummary, KernelError>;
}
