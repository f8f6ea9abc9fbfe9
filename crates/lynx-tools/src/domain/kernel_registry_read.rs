//! `kernel.domain.registry.read` — the registered tools, the Kernel's policy for each, and the
//! registry's version hash (the value `/api/status` reports as `tool_registry_hash`). Sources: Lynx's
//! registry and the Kernel's tool policies. Risk: low.

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Layer, Refusal, Risk, TenantId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Include each tool's Kernel policy (default true).
    #[serde(default = "crate::yes")]
    pub include_policies: bool,
    /// Include the registry's version hash and versions (default true).
    #[serde(default = "crate::yes")]
    pub include_versions: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ToolEntry {
    pub id: String,
    pub name: String,
    pub layer: Layer,
    pub risk: Risk,
    pub domain: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyEntry {
    pub tool_id: String,
    pub risk_level: Risk,
    pub required_role: Vec<String>,
    pub required_scope: Vec<String>,
    /// False when the Kernel has no policy for the tool (then nobody may use it).
    pub defined_in_kernel: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub tools: Vec<ToolEntry>,
    pub total_tools: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicyEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolset_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
}

pub struct KernelRegistryRead;

impl Tool for KernelRegistryRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "kernel.domain.registry.read",
        title: "Tool registry",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Lists every registered Lynx tool with its layer, risk and domain, the Kernel's role and scope policy for each, and the registry's version hash.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let defs = ctx.registry().definitions();
        let tools = defs
            .iter()
            .map(|d| ToolEntry { id: d.id.into(), name: d.name.into(), layer: d.layer, risk: d.risk, domain: d.domain.into() })
            .collect();
        let policies = if input.include_policies {
            let kernel = ctx.kernel().policies().await?;
            Some(
                defs.iter()
                    .map(|d| {
                        let p = kernel.tool_policies.iter().find(|p| p.tool_id == d.id);
                        PolicyEntry {
                            tool_id: d.id.into(),
                            risk_level: d.risk,
                            required_role: p.map(|p| p.required_role.clone()).unwrap_or_default(),
                            required_scope: p.map(|p| p.required_scope.clone()).unwrap_or_default(),
                            defined_in_kernel: p.is_some(),
                        }
                    })
                    .collect(),
            )
        } else {
            None
        };
        let versions = input.include_versions;
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            tools,
            total_tools: defs.len(),
            policies,
            version_hash: versions.then(|| ctx.registry().version_hash().to_string()),
            toolset_version: versions.then(|| ctx.runtime().toolset_version.clone()),
            protocol_version: versions.then(|| ctx.runtime().protocol_version.clone()),
        })
    }
}
