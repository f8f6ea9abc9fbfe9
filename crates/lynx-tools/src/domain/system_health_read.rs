//! `system.domain.health.read` — is Lynx healthy: live probes of the Kernel and storage with measured
//! latency, the work queues, the mode and maintenance state. Risk: low.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lynx_governance::{ReadCtx, Tool, ToolSpec, health::{Probe, STUCK_AFTER}};
use lynx_model::{Mode, Refusal, Risk, TenantId, store::QueueCounts};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Include per-dependency details (default true).
    #[serde(default = "crate::yes")]
    pub include_dependencies: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Dependency {
    /// `up` or `down`.
    pub status: String,
    pub response_time_ms: f64,
    pub last_check: DateTime<Utc>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Queues {
    pub pending_approvals: i64,
    pub queued_settlements: i64,
    pub stuck_executions: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    /// `healthy`, `degraded` (Kernel unreachable) or `down` (storage cannot be read or written).
    pub overall_status: String,
    pub kernel_reachable: bool,
    pub storage_reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<BTreeMap<String, Dependency>>,
    pub queues: Queues,
    pub mode: Mode,
    pub maintenance_mode: bool,
}

pub struct SystemHealthRead;

fn dependency(p: Probe) -> Dependency {
    Dependency {
        status: if p.reachable { "up" } else { "down" }.into(),
        response_time_ms: p.response_time_ms,
        last_check: p.last_check,
        detail: p.detail,
    }
}

impl Tool for SystemHealthRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "system.domain.health.read",
        title: "System health",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: true,
        role_gate: None,
        description: "Probes the Kernel and Lynx's storage live and reports reachability with measured latency, the tenant's work queues (pending approvals, queued settlements, stuck executions), the mode and maintenance state.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let health = ctx.health().await;
        let overall = match (health.storage.reachable, health.kernel.reachable) {
            (false, _) => "down",
            (true, false) => "degraded",
            (true, true) => "healthy",
        };
        let QueueCounts { pending_approvals, queued_settlements, stuck_executions } =
            ctx.store().queue_counts(ctx.now() - STUCK_AFTER).await?;
        let (kernel_reachable, storage_reachable) = (health.kernel.reachable, health.storage.reachable);
        let dependencies = input.include_dependencies.then(|| {
            BTreeMap::from([("kernel".to_string(), dependency(health.kernel)), ("storage".to_string(), dependency(health.storage))])
        });
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            overall_status: overall.into(),
            kernel_reachable,
            storage_reachable,
            dependencies,
            queues: Queues { pending_approvals, queued_settlements, stuck_executions },
            mode: ctx.runtime().mode,
            maintenance_mode: ctx.maintenance_on().await?,
        })
    }
}
