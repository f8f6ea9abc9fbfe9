//! The embedded Kernel: a validated Kernel file answered in-process, with the same semantics the HTTP
//! Kernel contract promises (unknown tenant → not found; permission decisions explained in words).

use lynx_model::kernel::{
    Document, FinanceSummary, Kernel, KernelError, KernelHealth, PermissionDecision, PermissionRequest, Policies,
    TenantRecord, UserRecord, Vendor,
};
use lynx_model::{TenantId, UserId};

use crate::file::{KernelFile, TenantEntry};

pub struct EmbeddedKernel {
    data: KernelFile,
    source: String,
}

impl EmbeddedKernel {
    pub fn new(data: KernelFile, source: impl Into<String>) -> Self {
        Self { data, source: source.into() }
    }

    /// The built-in demo data.
    pub fn demo() -> Self {
        let data = KernelFile::parse(crate::DEMO_DATA, "built-in demo data").expect("the shipped demo data is valid");
        Self::new(data, "built-in demo data")
    }

    pub fn data(&self) -> &KernelFile {
        &self.data
    }

    fn tenant_entry(&self, tenant: &TenantId) -> Result<&TenantEntry, KernelError> {
        self.data
            .tenant(tenant)
            .ok_or_else(|| KernelError::NotFound(format!("tenant {tenant} is not known to the Kernel")))
    }
}

/// The permission rule, shared with anything that serves a Kernel file: the user must exist and be
/// active; a tool policy for the action names the roles and scopes required; an action that is not a
/// tool is looked up in the role gates; anything else is denied.
pub fn decide(tenant: &TenantEntry, req: &PermissionRequest) -> PermissionDecision {
    let deny = |reason: String, required_role: Vec<String>, required_scope: Vec<String>| PermissionDecision {
        allowed: false,
        reason,
        required_role,
        required_scope,
        source: "kernel".into(),
    };
    let Some(user) = tenant.user(&req.user_id) else {
        return deny(format!("user {} is not a user of tenant {}", req.user_id, tenant.tenant_id), vec![], vec![]);
    };
    if let Some(policy) = tenant.policies.tool_policies.iter().find(|p| p.tool_id == req.action) {
        let (roles, scopes) = (policy.required_role.clone(), policy.required_scope.clone());
        if !user.active {
            return deny(format!("user {} is inactive", user.user_id), roles, scopes);
        }
        if !roles.is_empty() && !roles.contains(&user.role) {
            let reason = format!("role {} may not use {}; allowed roles: {}", user.role, req.action, roles.join(", "));
            return deny(reason, roles, scopes);
        }
        let missing: Vec<&String> = scopes.iter().filter(|s| !user.scopes.contains(s)).collect();
        if !missing.is_empty() {
            let missing = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            return deny(format!("{} lacks scope {missing} required by {}", user.user_id, req.action), roles, scopes);
        }
        return PermissionDecision {
            allowed: true,
            reason: format!("role {} with scopes {} meets the policy for {}", user.role, scopes.join(", "), req.action),
            required_role: roles,
            required_scope: scopes,
            source: "kernel".into(),
        };
    }
    let gate_roles: Vec<String> = tenant
        .policies
        .role_gates
        .iter()
        .filter(|(_, perms)| perms.contains(&req.action))
        .map(|(role, _)| role.clone())
        .collect();
    if gate_roles.is_empty() {
        return deny(format!("no Kernel policy grants {:?} to anyone in tenant {}", req.action, tenant.tenant_id), vec![], vec![]);
    }
    if !user.active {
        return deny(format!("user {} is inactive", user.user_id), gate_roles, vec![]);
    }
    if gate_roles.contains(&user.role) {
        PermissionDecision {
            allowed: true,
            reason: format!("role {} holds permission {}", user.role, req.action),
            required_role: gate_roles,
            required_scope: vec![],
            source: "kernel".into(),
        }
    } else {
        let reason = format!("role {} does not hold permission {}; roles that do: {}", user.role, req.action, gate_roles.join(", "));
        deny(reason, gate_roles, vec![])
    }
}

#[async_trait::async_trait]
impl Kernel for EmbeddedKernel {
    fn describe(&self) -> String {
        format!("embedded ({})", self.source)
    }

    async fn health(&self) -> Result<KernelHealth, KernelError> {
        Ok(KernelHealth { status: "ok".into(), version: format!("embedded-{}", self.data.version) })
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<TenantRecord, KernelError> {
        Ok(self.tenant_entry(tenant)?.record())
    }

    async fn user(&self, tenant: &TenantId, user: &UserId) -> Result<UserRecord, KernelError> {
        self.tenant_entry(tenant)?
            .user(user)
            .cloned()
            .ok_or_else(|| KernelError::NotFound(format!("user {user} is not a user of tenant {tenant}")))
    }

    async fn check_permission(&self, req: &PermissionRequest) -> Result<PermissionDecision, KernelError> {
        Ok(decide(self.tenant_entry(&req.tenant_id)?, req))
    }

    async fn policies(&self, tenant: &TenantId) -> Result<std::sync::Arc<Policies>, KernelError> {
        Ok(self.tenant_entry(tenant)?.policies.clone())
    }

    async fn vendors(&self, tenant: &TenantId) -> Result<Vec<Vendor>, KernelError> {
        Ok(self.tenant_entry(tenant)?.vendors.clone())
    }

    async fn vendor(&self, tenant: &TenantId, vendor_id: &str) -> Result<Vendor, KernelError> {
        self.tenant_entry(tenant)?
            .vendors
            .iter()
            .find(|v| v.vendor_id == vendor_id)
            .cloned()
            .ok_or_else(|| KernelError::NotFound(format!("vendor {vendor_id} is not known in tenant {tenant}")))
    }

    async fn documents(&self, tenant: &TenantId) -> Result<Vec<Document>, KernelError> {
        Ok(self.tenant_entry(tenant)?.documents.clone())
    }

    async fn finance_summary(&self, tenant: &TenantId, period: &str) -> Result<FinanceSummary, KernelError> {
        self.tenant_entry(tenant)?
            .finance
            .iter()
            .find(|f| f.period == period)
            .cloned()
            .ok_or_else(|| KernelError::NotFound(format!("no finance summary for period {period} in tenant {tenant}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str, action: &str) -> PermissionRequest {
        PermissionRequest {
            user_id: UserId::parse(user).unwrap(),
            tenant_id: TenantId::parse("tenant-123").unwrap(),
            action: action.into(),
            resource_type: "tool".into(),
        }
    }

    #[tokio::test]
    async fn permissions_follow_policies_roles_scopes_and_activity() {
        let k = EmbeddedKernel::demo();
        let ok = k.check_permission(&req("agent-001", "tenant.domain.profile.read")).await.unwrap();
        assert!(ok.allowed, "{}", ok.reason);
        let contractor = k.check_permission(&req("contractor-001", "tenant.domain.profile.read")).await.unwrap();
        assert!(!contractor.allowed);
        assert!(contractor.reason.contains("role contractor"));
        let former = k.check_permission(&req("former-001", "tenant.domain.profile.read")).await.unwrap();
        assert!(!former.allowed && former.reason.contains("inactive"));
        let approver_drafts = k.check_permission(&req("approver-001", "vpm.cluster.payment.draft.create")).await.unwrap();
        assert!(!approver_drafts.allowed);
        let gate = k.check_permission(&req("agent-001", "payment_create")).await.unwrap();
        assert!(gate.allowed);
        let unknown = k.check_permission(&req("admin-001", "launch_rockets")).await.unwrap();
        assert!(!unknown.allowed);
        let stranger = k.check_permission(&req("nobody", "tenant.domain.profile.read")).await.unwrap();
        assert!(!stranger.allowed);
    }

    #[tokio::test]
    async fn unknown_tenants_are_not_found() {
        let k = EmbeddedKernel::demo();
        let t = TenantId::parse("tenant-999").unwrap();
        assert!(matches!(k.tenant(&t).await, Err(KernelError::NotFound(_))));
    }
}
