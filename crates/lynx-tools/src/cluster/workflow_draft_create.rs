//! `workflow.cluster.draft.create` — drafts a workflow (named steps with optional roles and actions)
//! and snapshots the tenant's workflow approval policy. Steps may only name roles the tenant has.
//! Sources: Kernel policy and role gates. Risk: medium (the draft's own risk is computed).

use lynx_governance::{DraftCtx, NewDraft, Tool, ToolSpec};
use lynx_model::{
    payload::{DraftPayload, WorkflowPayload, WorkflowStep},
    Refusal, Risk,
    draft::DraftType,
    kernel::ApprovalRule,
    params::{RequestId, Text},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use crate::drafting::{self, DraftSummary, md};

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: Text<1, 200>,
    /// A role of the tenant that performs or approves the step.
    pub required_role: Option<Text<1, 100>>,
    pub action: Option<Text<1, 500>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The kind of workflow (`payment`, `approval`, `onboarding`, …).
    pub workflow_kind: Text<1, 100>,
    pub name: Text<1, 200>,
    /// 1 to 200 steps.
    pub steps: Vec<Step>,
    /// What the workflow is about (an object id or reference).
    pub linked_object: Option<Text<1, 200>>,
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicySnapshot {
    pub approval_rules: Vec<ApprovalRule>,
    pub role_gates: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    #[serde(flatten)]
    pub draft: DraftSummary,
    pub policy_snapshot: PolicySnapshot,
}

pub struct WorkflowDraftCreate;

/// High for payment and approval workflows and for long ones.
pub fn risk(kind: &str, steps: usize) -> Risk {
    if matches!(kind.to_ascii_lowercase().as_str(), "payment" | "approval") || steps > 10 { Risk::High } else { Risk::Medium }
}

impl Tool for WorkflowDraftCreate {
    type Input = Input;
    type Output = Output;
    type Context = DraftCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "workflow.cluster.draft.create",
        title: "Draft a workflow",
        risk: Risk::Medium,
        draft_type: Some(DraftType::Workflow),
        serves_during_kernel_outage: false,
        role_gate: Some("workflow_create"),
        description: "Creates a workflow draft (1-200 named steps with optional roles and actions) for human approval, with the tenant's workflow approval policy as a snapshot and an escaped Markdown preview. Publishes nothing.",
    };

    async fn run(&self, ctx: &DraftCtx, input: Input) -> Result<Output, Refusal> {
        if input.steps.is_empty() || input.steps.len() > 200 {
            return Err(Refusal::invalid_input("steps", format!("must list 1 to 200 steps (got {})", input.steps.len())));
        }
        let policies = ctx.kernel().policies().await?;
        for (i, step) in input.steps.iter().enumerate() {
            if let Some(role) = &step.required_role
                && !policies.role_gates.contains_key(role.as_str())
            {
                let roles: Vec<&str> = policies.role_gates.keys().map(String::as_str).collect();
                return Err(Refusal::invalid_input(
                    &format!("steps[{i}].required_role"),
                    format!("{:?} is not a role of this tenant (roles: {})", role.as_str(), roles.join(", ")),
                ));
            }
        }
        let kind = input.workflow_kind.as_str();
        let risk = risk(kind, input.steps.len());
        let facts = drafting::approval_facts(&policies, DraftType::Workflow, None);
        let mut preview = format!(
            "### Workflow draft: {}\n\nKind: {} · {} step(s) · risk {}\n\n",
            md(input.name.as_str()),
            md(kind),
            input.steps.len(),
            risk
        );
        if let Some(o) = &input.linked_object {
            preview.push_str(&format!("Linked to: {}\n\n", md(o.as_str())));
        }
        for (i, s) in input.steps.iter().enumerate() {
            preview.push_str(&format!("{}\\. {}", i + 1, md(s.name.as_str())));
            if let Some(r) = &s.required_role {
                preview.push_str(&format!(" — role {}", md(r.as_str())));
            }
            if let Some(a) = &s.action {
                preview.push_str(&format!(" — {}", md(a.as_str())));
            }
            preview.push('\n');
        }
        let snapshot = PolicySnapshot {
            approval_rules: policies.approval_rules.iter().filter(|r| r.workflow_type == "workflow").cloned().collect(),
            role_gates: policies.role_gates.clone(),
        };
        ctx.stage(NewDraft {
            payload: DraftPayload::Workflow(WorkflowPayload {
                workflow_kind: kind.to_string(),
                name: input.name.as_str().to_string(),
                steps: input
                    .steps
                    .iter()
                    .map(|s| WorkflowStep {
                        name: s.name.as_str().to_string(),
                        required_role: s.required_role.as_ref().map(|r| r.as_str().to_string()),
                        action: s.action.as_ref().map(|a| a.as_str().to_string()),
                    })
                    .collect(),
                linked_object: input.linked_object.as_ref().map(|o| o.as_str().to_string()),
            }),
            risk_level: risk,
            source_context: json!({"policy_snapshot": snapshot, "approval_rule": facts.rule_id, "checked_at": ctx.now()}),
            recommended_approvers: facts.roles.clone(),
            preview_markdown: preview.clone(),
        })?;
        let next = drafting::next_actions(ctx, &facts, Some("workflow.cell.draft.publish"));
        Ok(Output { draft: drafting::summary(ctx, risk, &facts, preview, next), policy_snapshot: snapshot })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn risk_rule() {
        use lynx_model::Risk::*;
        assert_eq!(super::risk("payment", 1), High);
        assert_eq!(super::risk("Approval", 1), High);
        assert_eq!(super::risk("onboarding", 11), High);
        assert_eq!(super::risk("onboarding", 10), Medium);
    }
}
