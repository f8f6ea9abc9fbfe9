//! `docs.cell.draft.submit_for_approval` — submits a draft of any type for human approval
//! (`DRAFT → SUBMITTED`), once. Risk: low.

use lynx_governance::{ExecCtx, Tool, ToolSpec};
use lynx_model::{
    Refusal, Risk, TenantId,
    draft::DraftStatus,
    params::{DraftIdParam, RequestId},
    records::Effect,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub draft_id: DraftIdParam,
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub execution_id: lynx_model::ExecutionId,
    pub draft_id: lynx_model::DraftId,
    pub status: DraftStatus,
    pub tenant_id: TenantId,
    pub next_actions: Vec<String>,
}

pub struct DocsDraftSubmit;

impl Tool for DocsDraftSubmit {
    type Input = Input;
    type Output = Output;
    type Context = ExecCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "docs.cell.draft.submit_for_approval",
        title: "Submit a draft for approval",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Submits a draft of any type for human approval (DRAFT to SUBMITTED), exactly once. Approvers then decide in the dashboard, the CLI or the API.",
    };

    async fn run(&self, ctx: &ExecCtx, input: Input) -> Result<Output, Refusal> {
        ctx.stage(Effect::Submit)?;
        let draft = ctx.draft();
        Ok(Output {
            execution_id: ctx.execution_id(),
            draft_id: input.draft_id.0,
            status: DraftStatus::Submitted,
            tenant_id: ctx.tenant_id().clone(),
            next_actions: vec![format!(
                "Wait for a human approver ({}; not {}) to approve draft {}.",
                if draft.recommended_approvers.is_empty() { "per the tenant's policy".to_string() } else { draft.recommended_approvers.join(", ") },
                draft.created_by,
                draft.draft_id
            )],
        })
    }
}
