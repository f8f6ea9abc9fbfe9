//! `workflow.domain.policy.read` — the tenant's approval rules (who approves which draft type, above
//! which amount, how many approvals) and role gates. Source: the Kernel's policy. Risk: low.

use std::collections::BTreeMap;

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId, kernel::ApprovalRule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Only rules for this draft type (`docs`, `workflow`, `vpm_payment`).
    #[schemars(length(min = 1, max = 100))]
    pub workflow_type: Option<String>,
    /// Include amount thresholds (default true).
    #[serde(default = "crate::yes")]
    pub include_thresholds: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub approval_rules: Vec<ApprovalRule>,
    /// Role → the permissions it holds.
    pub role_gates: BTreeMap<String, Vec<String>>,
}

pub struct WorkflowPolicyRead;

impl Tool for WorkflowPolicyRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "workflow.domain.policy.read",
        title: "Approval policy",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Returns the tenant's approval rules from the Kernel (approver roles and scopes, amount thresholds, required number of approvals per draft type) and the role gates.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let policies = std::sync::Arc::unwrap_or_clone(ctx.kernel().policies().await?);
        let approval_rules = policies
            .approval_rules
            .into_iter()
            .filter(|r| input.workflow_type.as_ref().is_none_or(|t| &r.workflow_type == t))
            .map(|mut r| {
                if !input.include_thresholds {
                    r.threshold_amount = None;
                }
                r
            })
            .collect();
        Ok(Output { tenant_id: ctx.tenant_id().clone(), approval_rules, role_gates: policies.role_gates })
    }
}
