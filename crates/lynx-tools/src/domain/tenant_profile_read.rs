//! `tenant.domain.profile.read` — the caller's tenant (name, plan, region, modules) and the caller's
//! own role and scopes. Sources: the Kernel's tenant and user records. Risk: low.

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId, UserId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Include the tenant's enabled modules (default true).
    #[serde(default = "crate::yes")]
    pub include_modules: bool,
    /// Include the caller's role and scopes (default true).
    #[serde(default = "crate::yes")]
    pub include_user_context: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub plan: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_modules: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_scope: Option<Vec<String>>,
}

pub struct TenantProfileRead;

impl Tool for TenantProfileRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "tenant.domain.profile.read",
        title: "Tenant profile",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Returns the caller's tenant profile from the Kernel (name, plan, region, enabled modules) and the caller's own role and scopes.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let tenant = ctx.kernel().tenant().await?;
        let caller = ctx.caller();
        let user = input.include_user_context;
        Ok(Output {
            tenant_id: tenant.tenant_id,
            tenant_name: tenant.name,
            plan: tenant.plan,
            region: tenant.region,
            enabled_modules: input.include_modules.then_some(tenant.enabled_modules),
            user_id: user.then(|| caller.user_id.clone()),
            user_role: user.then(|| caller.role.clone()),
            user_scope: user.then(|| caller.scopes.clone()),
        })
    }
}
