//! `security.domain.permission.read` — may the caller perform an action (a tool id or a permission
//! name)? The Kernel decides and explains; the registry adds what the tool is. Risk: low.

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Layer, Refusal, Risk, TenantId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A tool id (`vpm.cell.payment.execute`) or a permission name (`payment_create`).
    #[schemars(length(min = 1, max = 200))]
    pub action: String,
    /// The kind of resource acted on (default `tool`).
    #[schemars(length(min = 1, max = 200))]
    pub resource: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ToolFacts {
    pub layer: Layer,
    pub risk: Risk,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// The decision in words; for a denial, also what would allow it.
    pub reason: String,
    pub required_role: Vec<String>,
    pub required_scope: Vec<String>,
    pub current_role: String,
    pub current_scope: Vec<String>,
    /// Always `kernel`: Lynx never decides permissions itself.
    pub policy_source: String,
    /// Present when the action is a registered tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolFacts>,
}

pub struct SecurityPermissionRead;

impl Tool for SecurityPermissionRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "security.domain.permission.read",
        title: "Permission check",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Asks the Kernel whether the caller may perform an action (a tool id or a permission name) and explains the decision: required roles and scopes versus the caller's own.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        if input.action.trim().is_empty() {
            return Err(Refusal::invalid_input("action", "must not be empty"));
        }
        let resource = input.resource.unwrap_or_else(|| "tool".into());
        let caller = ctx.caller();
        let decision = ctx.kernel().check_permission(&caller.user_id, &input.action, &resource).await?;
        let tool = ctx.registry().definition(&input.action).map(|d| ToolFacts { layer: d.layer, risk: d.risk });
        let mut reason = decision.reason;
        if !decision.allowed {
            let mut needs = Vec::new();
            if !decision.required_role.is_empty() {
                needs.push(format!("one of the roles {}", decision.required_role.join(", ")));
            }
            if !decision.required_scope.is_empty() {
                needs.push(format!("the scopes {}", decision.required_scope.join(", ")));
            }
            if !needs.is_empty() {
                reason = format!("{reason}. Allowed with {}; ask a tenant administrator.", needs.join(" and "));
            }
        }
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            action: input.action,
            resource,
            allowed: decision.allowed,
            reason,
            required_role: decision.required_role,
            required_scope: decision.required_scope,
            current_role: caller.role.clone(),
            current_scope: caller.scopes.clone(),
            policy_source: "kernel".into(),
            tool,
        })
    }
}
