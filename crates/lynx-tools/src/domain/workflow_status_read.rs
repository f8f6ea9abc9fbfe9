//! `workflow.domain.status.read` — workflow activity: published workflows in force, drafts waiting for
//! approval, and recent draft and workflow events; with `draft_id` (or `draft_ids`), where each of those
//! drafts stands — how an agent waits for an approval. Sources: Lynx's workflows, drafts and audit
//! trail, and the Kernel's approval policy. Risk: low.

use chrono::{DateTime, Utc};
use lynx_governance::{
    ReadCtx, Tool, ToolSpec,
    draft_status::{self, DraftState},
    execution::draft_not_found,
};
use lynx_model::{DraftId, Refusal, Risk, TenantId, draft::DraftStatus, params::{DraftIdParam, Limit}, store::ActivityEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Include recent events (default true).
    #[serde(default = "crate::yes")]
    pub include_events: bool,
    /// How many recent events, 1–50 (default 10).
    #[serde(default)]
    pub event_limit: Limit<50, 10>,
    /// A draft to report on: its status, approvals, deadline and what to do next (how to wait for an
    /// approval). An id of another tenant's draft answers as a missing one.
    pub draft_id: Option<DraftIdParam>,
    /// Several drafts at once (at most 50); ids not found are listed in `not_found`.
    #[schemars(length(max = 50))]
    pub draft_ids: Option<Vec<DraftIdParam>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Event {
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_id: Option<String>,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub actor_id: String,
    pub description: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub active_workflows_count: i64,
    /// Drafts of any type waiting in `SUBMITTED`.
    pub pending_approvals_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_events: Option<Vec<Event>>,
    /// With `draft_id` or `draft_ids`: where each draft stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drafts: Option<Vec<DraftState>>,
    /// With `draft_ids`: the ids that name no draft of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_found: Option<Vec<DraftId>>,
}

pub struct WorkflowStatusRead;

/// What kind of event an audited action was, by the action's id (and, for an approval, whether it
/// approved the draft or was one of several approvals it needs).
fn event_type(tool_id: &str, output: &Option<String>) -> String {
    match tool_id {
        "lynx.drafts.approve" if field(output, "status").as_deref() == Some("APPROVED") => "draft_approved".into(),
        "lynx.drafts.approve" => "approval_recorded".into(),
        t if t.contains(".cluster.") => "draft_created".into(),
        "docs.cell.draft.submit_for_approval" => "draft_submitted".into(),
        "workflow.cell.draft.publish" => "workflow_published".into(),
        "vpm.cell.payment.execute" => "payment_executed".into(),
        other => other.rsplit('.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("_"),
    }
}

fn field(json: &Option<String>, key: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json.as_deref()?).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}

fn to_event(a: ActivityEvent) -> Event {
    let draft_id = field(&a.output_data, "draft_id").or_else(|| field(&a.input_data, "draft_id"));
    let workflow_id = field(&a.output_data, "workflow_id");
    let kind = event_type(&a.tool_id, &a.output_data);
    let description = match &draft_id {
        Some(d) => format!("{} ran {} on draft {d}", a.actor_id, a.tool_id),
        None => format!("{} ran {}", a.actor_id, a.tool_id),
    };
    Event {
        event_id: a.event_id.to_string(),
        workflow_id,
        draft_id,
        event_type: kind,
        timestamp: a.created_at,
        actor_id: a.actor_id,
        description,
    }
}

impl Tool for WorkflowStatusRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "workflow.domain.status.read",
        title: "Workflow status",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Reports workflow activity in the tenant: active published workflows, drafts waiting for approval, and the most recent draft and workflow events from the audit trail. With draft_id (or draft_ids) it reports where each draft stands: status, approvals recorded and required, decisions, deadline, whether it can be executed now and by which tool, and what to do next. Call it with the draft_id a submit returned to wait for an approval.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let store = ctx.store();
        if input.draft_id.is_some() && input.draft_ids.is_some() {
            return Err(Refusal::invalid_input("draft_ids", "give draft_id or draft_ids, not both"));
        }
        let (drafts, not_found) = match (input.draft_id, input.draft_ids) {
            (Some(one), None) => {
                let mut found = drafts_of(ctx, &[one.0]).await?;
                match found.0.pop() {
                    Some(state) => (Some(vec![state]), None),
                    None => return Err(draft_not_found(one.0, ctx.tenant_id())),
                }
            }
            (None, Some(many)) => {
                if many.len() > 50 {
                    return Err(Refusal::invalid_input("draft_ids", "must have at most 50 ids"));
                }
                let ids: Vec<DraftId> = many.into_iter().map(|d| d.0).collect();
                let (found, missing) = drafts_of(ctx, &ids).await?;
                (Some(found), Some(missing))
            }
            _ => (None, None),
        };
        let recent_events = if input.include_events {
            Some(store.draft_activity(input.event_limit.get()).await?.into_iter().map(to_event).collect())
        } else {
            None
        };
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            active_workflows_count: store.active_workflow_count().await?,
            pending_approvals_count: store.count_drafts(DraftStatus::Submitted, None).await?,
            recent_events,
            drafts,
            not_found,
        })
    }
}

/// The states of the drafts of the tenant among `ids`, and the ids that are not.
async fn drafts_of(ctx: &ReadCtx, ids: &[DraftId]) -> Result<(Vec<DraftState>, Vec<DraftId>), Refusal> {
    let store = ctx.store();
    let policies = ctx.kernel().policies().await?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for &id in ids {
        match store.draft(id).await? {
            Some(draft) => {
                let decisions = store.approvals(id).await?;
                found.push(draft_status::state(&draft, &decisions, &policies, ctx.now()));
            }
            None => missing.push(id),
        }
    }
    Ok((found, missing))
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_types_name_the_action() {
        assert_eq!(super::event_type("vpm.cluster.payment.draft.create", &None), "draft_created");
        assert_eq!(super::event_type("lynx.drafts.approve", &Some(r#"{"status":"SUBMITTED"}"#.into())), "approval_recorded");
        assert_eq!(super::event_type("lynx.drafts.approve", &Some(r#"{"status":"APPROVED"}"#.into())), "draft_approved");
    }
}
