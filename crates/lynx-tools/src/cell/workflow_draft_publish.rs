//! `workflow.cell.draft.publish` — publishes an approved workflow draft as an active workflow, once.
//! Re-checks the Kernel's current approval policy first. Risk: medium.

use lynx_governance::{ExecCtx, Tool, ToolSpec};
use lynx_model::{
    Refusal, Risk, TenantId,
    draft::{DraftStatus, DraftType},
    params::{DraftIdParam, RequestId},
    payload::DraftPayload,
    records::{Effect, WorkflowDetails},
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
    pub workflow_id: lynx_model::WorkflowId,
    pub status: DraftStatus,
    pub tenant_id: TenantId,
}

pub struct WorkflowDraftPublish;

impl Tool for WorkflowDraftPublish {
    type Input = Input;
    type Output = Output;
    type Context = ExecCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "workflow.cell.draft.publish",
        title: "Publish an approved workflow",
        risk: Risk::Medium,
        draft_type: Some(DraftType::Workflow),
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Publishes an APPROVED workflow draft as an active workflow, exactly once, after re-checking the Kernel's current approval policy.",
    };

    async fn run(&self, ctx: &ExecCtx, input: Input) -> Result<Output, Refusal> {
        super::approvals_still_satisfy_policy(ctx).await?;
        let draft = ctx.draft();
        let DraftPayload::Workflow(workflow) = &draft.payload else {
            return Err(Refusal::internal("reading a workflow draft's payload"));
        };
        let workflow_id = lynx_model::WorkflowId::new();
        ctx.stage(Effect::Publish(WorkflowDetails {
            workflow_id,
            name: workflow.name.clone(),
            workflow_kind: workflow.workflow_kind.clone(),
            steps: workflow.steps.clone(),
        }))?;
        Ok(Output {
            execution_id: ctx.execution_id(),
            draft_id: input.draft_id.0,
            workflow_id,
            status: DraftStatus::Published,
            tenant_id: ctx.tenant_id().clone(),
        })
    }
}
