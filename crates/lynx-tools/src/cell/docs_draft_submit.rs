//! `docs.cell.draft.submit_for_approval` — submits a draft of any type for human approval
//! (`DRAFT → SUBMITTED`), once. Risk: low.

use lynx_governance::{ExecCtx, Tool, ToolSpec};
use lynx_model::{
    Refusal, Risk, TenantId,
    draft::DraftStatus,
    params::{DraftIdParam, RequestId},
    records::{Effect, SubmitDetails},
};
use chrono::{DateTime, TimeDelta, Utc};
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
    /// When the draft expires if nobody decides (then `REJECTED` by `system`).
    pub decision_due_at: DateTime<Utc>,
    pub approvals_required: u32,
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
        let draft = ctx.draft();
        // The approval rule in force now fixes the deadline: past it, the draft expires undecided.
        let policies = ctx.kernel().policies().await?;
        let rule = lynx_governance::approvals::applicable_rule(&policies, draft.draft_type, draft.amount());
        let deadline = rule.map(|r| r.decision_deadline()).unwrap_or_else(|| TimeDelta::hours(72));
        let required = rule.map(|r| r.approval_count).unwrap_or(1);
        let decision_due_at = ctx.now() + deadline;
        ctx.stage(Effect::Submit(SubmitDetails { decision_due_at, approvals_required: required }))?;
        let approvers = if draft.recommended_approvers.is_empty() { "per the tenant's policy".to_string() } else { draft.recommended_approvers.join(", ") };
        Ok(Output {
            execution_id: ctx.execution_id(),
            draft_id: input.draft_id.0,
            status: DraftStatus::Submitted,
            decision_due_at,
            approvals_required: required,
            tenant_id: ctx.tenant_id().clone(),
            next_actions: vec![
                format!(
                    "Wait for {required} human approval(s) ({approvers}; not {}) of draft {}, due by {}.",
                    draft.created_by,
                    draft.draft_id,
                    decision_due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                format!(
                    "Check with workflow.domain.status.read {{\"draft_id\": \"{}\"}}; look again in a few minutes, then less often. It answers can_execute: true once it is approved.",
                    draft.draft_id
                ),
            ],
        })
    }
}
