//! `workflow.domain.status.read` — workflow activity: published workflows in force, drafts waiting for
//! approval, and recent draft and workflow events. Sources: Lynx's workflows, drafts and audit trail.
//! Risk: low.

use chrono::{DateTime, Utc};
use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId, draft::DraftStatus, params::Limit, store::ActivityEvent};
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
}

pub struct WorkflowStatusRead;

/// What kind of event an audited action was, by the action's id.
fn event_type(tool_id: &str) -> String {
    match tool_id {
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
    let kind = event_type(&a.tool_id);
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
        description: "Reports workflow activity in the tenant: active published workflows, drafts waiting for approval, and the most recent draft and workflow events from the audit trail.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let store = ctx.store();
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
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_types_name_the_action() {
        assert_eq!(super::event_type("vpm.cluster.payment.draft.create"), "draft_created");
        assert_eq!(super::event_type("lynx.drafts.approve"), "drafts_approve");
    }
}
