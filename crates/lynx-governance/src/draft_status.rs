//! Where a draft stands, told so an agent can follow it: its status, the approvals it has and needs,
//! the decisions, when it expires, whether it can be executed now and by which tool, and what to do
//! next in words. `workflow.domain.status.read {draft_id}` answers with it, and so does the MCP
//! resource `lynx://drafts/{draft_id}`; both read it here.

use chrono::{DateTime, SecondsFormat, Utc};
use lynx_model::{
    DraftId, Risk,
    draft::{DraftStatus, DraftType},
    kernel::{ApprovalRule, Policies},
    records::{ApprovalRecord, Decision, DraftRecord},
};
use schemars::JsonSchema;
use serde::Serialize;

use crate::approvals::{applicable_rule, approval_expires_at};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DecisionView {
    pub approver_id: String,
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub decided_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DraftState {
    pub draft_id: DraftId,
    pub draft_type: DraftType,
    pub status: DraftStatus,
    pub risk_level: Risk,
    pub approvals_recorded: u32,
    pub approvals_required: u32,
    pub decisions: Vec<DecisionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// `SUBMITTED`: when it expires without a decision. `APPROVED`: when the approval stops being good
    /// for execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the execute tool would act on it now (approved, approval in force, nothing executed yet).
    pub can_execute: bool,
    /// The cell tool that executes it (none for documents: their approval is the outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_tool: Option<String>,
    /// What to do next, in words.
    pub next_actions: Vec<String>,
}

/// The cell tool that executes an approved draft of this type.
pub fn execute_tool(draft_type: DraftType) -> Option<&'static str> {
    match draft_type {
        DraftType::Docs => None,
        DraftType::Workflow => Some("workflow.cell.draft.publish"),
        DraftType::VpmPayment => Some("vpm.cell.payment.execute"),
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The state of `draft` under the Kernel's current `policies`, with its `decisions`, at `now`.
pub fn state(draft: &DraftRecord, decisions: &[ApprovalRecord], policies: &Policies, now: DateTime<Utc>) -> DraftState {
    let rule: Option<&ApprovalRule> = applicable_rule(policies, draft.draft_type, draft.amount());
    let recorded = decisions.iter().filter(|d| d.decision == Decision::Approved).count() as u32;
    let required = rule.map(|r| r.approval_count).unwrap_or(1);
    let approval_until = rule.and_then(|r| approval_expires_at(draft, r));
    let tool = execute_tool(draft.draft_type);
    let can_execute = draft.status == DraftStatus::Approved && tool.is_some() && approval_until.is_none_or(|u| now <= u);
    let expires_at = match draft.status {
        DraftStatus::Submitted => draft.decision_due_at,
        DraftStatus::Approved if tool.is_some() => approval_until,
        _ => None,
    };
    let id = draft.draft_id;
    let look_again = format!("Look again with workflow.domain.status.read {{\"draft_id\": \"{id}\"}} in a few minutes, then less often.");
    let next_actions = match draft.status {
        DraftStatus::Draft => vec![format!("Submit it for approval with docs.cell.draft.submit_for_approval {{\"draft_id\": \"{id}\"}}.")],
        DraftStatus::Submitted => {
            let roles = rule.map(|r| r.required_role.join(", ")).unwrap_or_else(|| "an approver".into());
            let mut steps = vec![format!(
                "Waiting for {} more approval(s) ({recorded} of {required}) from a human with role {roles}, not its creator {}.",
                required.saturating_sub(recorded),
                draft.created_by
            )];
            steps.push(format!(
                "Approvers decide in the dashboard at /drafts/{id}, with `lynx drafts approve {id} --user <approver's user id>`, or with POST /api/drafts/{id}/approve."
            ));
            if let Some(due) = draft.decision_due_at {
                steps.push(format!("Without a decision by {} it expires (REJECTED by system).", when(due)));
            }
            steps.push(look_again);
            steps
        }
        DraftStatus::Approved => match (tool, can_execute) {
            (Some(tool), true) => vec![format!(
                "Approved: execute it once with {tool} {{\"draft_id\": \"{id}\"}}{}.",
                approval_until.map(|u| format!(" before the approval expires at {}", when(u))).unwrap_or_default()
            )],
            (Some(_), false) => vec![format!(
                "The approval expired at {}: create and submit a new draft for a fresh approval.",
                approval_until.map(when).unwrap_or_default()
            )],
            (None, _) => vec!["Approved: the document is approved; there is nothing to execute.".into()],
        },
        DraftStatus::Rejected => vec![format!(
            "Rejected by {}{}: create a new draft if the action is still needed.",
            draft.rejected_by.as_deref().unwrap_or("an approver"),
            draft.rejection_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )],
        DraftStatus::Cancelled => vec!["Cancelled: create a new draft if the action is still needed.".into()],
        DraftStatus::Published | DraftStatus::Executed => vec!["Done: it was executed exactly once; nothing more to do.".into()],
    };
    DraftState {
        draft_id: id,
        draft_type: draft.draft_type,
        status: draft.status,
        risk_level: draft.risk_level,
        approvals_recorded: recorded,
        approvals_required: required,
        decisions: decisions
            .iter()
            .map(|d| DecisionView { approver_id: d.approver_id.clone(), decision: d.decision, notes: d.notes.clone(), decided_at: d.created_at })
            .collect(),
        rejection_reason: draft.rejection_reason.clone(),
        expires_at,
        can_execute,
        execute_tool: tool.map(str::to_string),
        next_actions,
    }
}

/// Where a draft of `tenant` stands now, for the surfaces outside the tools (the MCP resource, the
/// dashboard, the CLI); another tenant's draft is `None`, like a missing one.
pub async fn read(services: &crate::Services, tenant: &lynx_model::TenantId, draft_id: DraftId) -> Result<Option<DraftState>, lynx_model::Refusal> {
    let Some(draft) = services.store.draft(Some(tenant), draft_id).await? else {
        return Ok(None);
    };
    let decisions = services.store.approvals(tenant, draft_id).await?;
    let policies = services.kernel.policies(tenant).await?;
    Ok(Some(state(&draft, &decisions, &policies, services.clock.now())))
}
