//! `featureflag.domain.status.read` — which business modules and feature flags are on for the tenant.
//! Source: the Kernel's tenant record. Risk: low.

use std::collections::BTreeMap;

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    /// Each business module Lynx knows or the tenant lists → whether it is enabled.
    pub modules: BTreeMap<String, bool>,
    /// The tenant's feature flags.
    pub features: BTreeMap<String, bool>,
}

pub struct FeatureflagStatusRead;

/// Tool domains that are Lynx's own platform, not business modules a tenant switches on.
const PLATFORM_DOMAINS: [&str; 6] = ["kernel", "tenant", "audit", "security", "featureflag", "system"];

impl Tool for FeatureflagStatusRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "featureflag.domain.status.read",
        title: "Modules and feature flags",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Shows which business modules (docs, workflow, vpm, finance, …) are enabled for the tenant and the state of each feature flag, from the Kernel.",
    };

    async fn run(&self, ctx: &ReadCtx, _input: Input) -> Result<Output, Refusal> {
        let tenant = ctx.kernel().tenant().await?;
        // A module is a business domain with registered tools (not Lynx's own platform domains), or a
        // module the tenant lists.
        let mut modules: BTreeMap<String, bool> = ctx
            .registry()
            .definitions()
            .iter()
            .filter(|d| !PLATFORM_DOMAINS.contains(&d.domain))
            .map(|d| (d.domain.to_string(), false))
            .collect();
        for m in &tenant.enabled_modules {
            modules.insert(m.clone(), true);
        }
        Ok(Output { tenant_id: tenant.tenant_id, modules, features: tenant.feature_flags })
    }
}
