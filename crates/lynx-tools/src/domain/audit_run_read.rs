//! `audit.domain.run.read` — the tenant's tool runs from the audit trail, newest first, with filters.
//! Source: Lynx's audit events of the caller's tenant. Risk: low.

use chrono::{DateTime, Utc};
use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{
    Refusal, Risk, RunId, TenantId,
    params::{Limit, Since},
    store::RunFilter,
    vocab::RunStatus,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// How many runs to return, 1–100 (default 10).
    #[serde(default)]
    pub limit: Limit<100, 10>,
    /// Only runs that ended at or after this time.
    pub since: Option<Since>,
    /// Only runs with this status; `STARTED` lists runs still in flight.
    pub status: Option<RunStatus>,
    /// Only runs of this tool.
    #[schemars(length(min = 1, max = 200))]
    pub tool_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Run {
    #[schemars(with = "String")]
    pub run_id: RunId,
    pub actor_id: String,
    pub tool_id: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub runs: Vec<Run>,
    /// How many runs match the filters in all.
    pub total_count: i64,
}

pub struct AuditRunRead;

impl Tool for AuditRunRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "audit.domain.run.read",
        title: "Audit runs",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Lists the tenant's tool runs from Lynx's audit trail, newest first: who ran which tool, its status, start and end times and error, filterable by status, tool and time.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let filter = RunFilter {
            tenant: None,
            status: input.status,
            tool_id: input.tool_id,
            since: input.since.map(|s| s.0),
            limit: input.limit.get(),
            count_total: true,
        };
        let (runs, total_count) = ctx.store().runs(filter).await?;
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            runs: runs
                .into_iter()
                .map(|r| Run {
                    run_id: r.run_id,
                    actor_id: r.actor_id,
                    tool_id: r.tool_id,
                    status: r.status,
                    started_at: r.started_at,
                    completed_at: r.completed_at,
                    error_message: r.error_message,
                })
                .collect(),
            total_count,
        })
    }
}
