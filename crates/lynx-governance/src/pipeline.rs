//! The governance pipeline: the one way a tool call is carried out, whatever the transport.
//!
//! `Pipeline::call` runs the gates in a fixed order; the first that refuses ends the call:
//!
//! ```text
//! 1. identity      — the credential names a tenant and user (failing here, there is no tenant to audit);
//!                    then the call limits (per key, per tenant): a refused call writes no row of its
//!                    own, refusals are audited in aggregate (`limits`);
//!                    the run's STARTED audit row is written as soon as the call is admitted;
//!                    then the Kernel supplies role and scopes
//! 2. maintenance   — cell tools are refused while maintenance mode is on
//! 3. registry      — the tool must be registered
//! 4. validation    — typed decode (unknown fields, wrong types, out-of-range values, oversized strings),
//!                    then the published input schema (lengths, patterns)
//! 5. permission    — the Kernel decides; a Kernel that cannot answer means no (fail closed)
//! 6. layer rules   — writing tools: module flag and role gate; a repeated request_id replays;
//!                    cell tools: the execution protocol (draft found, type, not cancelled, exactly
//!                    once, nothing in flight, the status the tool needs)
//! 7. mode gate     — in prod, high-risk executions need explicit_approval: true
//! 8. execute       — the tool runs with a context built from the gates' evidence; its layer's
//!                    context then saves the draft, or claims and commits the effect exactly once
//! 9. audit         — the closing row (SUCCEEDED, FAILED, or a refusal with status DENIED)
//! ```
//!
//! Both audit rows are committed before the answer leaves: a call that could not be audited fails. A
//! writing tool's STARTED row is committed before it runs; a read's commits with its closing row.

use std::{sync::Arc, time::Instant};

use lynx_model::{
    ErrorCode, Layer, Mode, Principal, Refusal, Risk, RunId,
    audit::EventType,
    kernel::KernelError,
    vocab::RunStatus,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    audit,
    context::{Cleared, RequestFacts},
    execution,
    identity::{self, Authenticated, Credential},
    maintenance,
    metrics::{Metrics, Outcome},
    registry::Registry,
    services::Services,
    tool::{ErasedTool, Validated},
};

/// The answer to one call.
#[derive(Debug)]
pub struct CallOutcome {
    /// `None` only when identity failed: with no tenant, nothing was audited.
    pub run_id: Option<RunId>,
    pub result: Result<Value, Refusal>,
    /// A successful result as JSON text — the text its audit row holds — so that a surface sending it
    /// as text (MCP's text content) does not serialize it a second time. `None` for a refusal, and for a
    /// result too large for the audit row to hold whole.
    pub result_json: Option<String>,
}

/// Cheap to clone (one `Arc`): every surface holds one, and HTTP clones its state per request.
#[derive(Clone)]
pub struct Pipeline(Arc<Parts>);

struct Parts {
    services: Services,
    registry: Arc<Registry>,
    metrics: Metrics,
}

impl Pipeline {
    pub fn new(services: Services, registry: Arc<Registry>) -> Self {
        let metrics = Metrics::new(&registry);
        Self(Arc::new(Parts { services, registry, metrics }))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn services(&self) -> &Services {
        &self.0.services
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.0.registry
    }

    /// Gate 1's first half, for surfaces that authenticate before they dispatch (HTTP answers 401 itself).
    pub async fn authenticate(&self, credential: &Credential) -> Result<Authenticated, Refusal> {
        identity::authenticate(&self.0.services, credential).await
    }

    /// Audits a call a transport refused before it could name a tool (a body that is not JSON): one
    /// `STARTED` row and one refusal row, like any refused call. Returns the run id.
    pub async fn record_transport_refusal(&self, who: &Authenticated, what: &str, input: &Value, refusal: &Refusal) -> Result<RunId, Refusal> {
        let run_id = RunId::new();
        let actor = who.user_id().to_string();
        let rows = [
            audit::event(&self.0.services, run_id, who.tenant_id(), what, EventType::ToolCall, RunStatus::Started, &actor, Some(input), None, None, None),
            audit::event(&self.0.services, run_id, who.tenant_id(), what, EventType::Refusal, RunStatus::Denied, &actor, None,
                Some(&error_json(refusal)), Some(format!("{}: {}", refusal.code, refusal.message)), Some(0)),
        ];
        self.0.services.audit.append(rows.to_vec()).await?;
        Ok(run_id)
    }

    /// Carries out one tool call through every gate. `args` is the call's arguments object (absent = `{}`).
    pub async fn call(&self, credential: &Credential, tool_id: &str, args: Option<Value>) -> CallOutcome {
        let started = Instant::now();
        let (outcome, observed) = self.governed_call(credential, tool_id, args, started).await;
        self.0.metrics.observe(tool_id, observed, started.elapsed());
        outcome
    }

    /// The call, and how it ended for the metrics (the same classification as its closing audit row).
    async fn governed_call(&self, credential: &Credential, tool_id: &str, args: Option<Value>, started: Instant) -> (CallOutcome, Outcome) {
        let args = args.unwrap_or_else(|| Value::Object(Default::default()));

        // 1. identity: who is calling.
        let who = match identity::authenticate(&self.0.services, credential).await {
            Ok(who) => who,
            Err(refusal) => return (CallOutcome { run_id: None, result: Err(refusal), result_json: None }, Outcome::Denied),
        };
        // 1, continued: the call limits, before anything is written — a flood grows no audit trail.
        if let Err(refusal) = self.0.services.limits.admit(&self.0.services, &who).await {
            let observed = if refusal.code.is_failure() { Outcome::Failed } else { Outcome::Denied };
            return (CallOutcome { run_id: None, result: Err(refusal), result_json: None }, observed);
        }
        let run_id = RunId::new();
        let actor = who.user_id().to_string();
        let start_row = audit::event(
            &self.0.services, run_id, who.tenant_id(), tool_id, EventType::ToolCall, RunStatus::Started, &actor,
            Some(&args), None, None, None,
        );
        // A call that may change something has its STARTED row committed before anything happens; a
        // read changes nothing, so its STARTED row (stamped now) commits together with its closing row,
        // still before the answer — one commit instead of two.
        let writes = self.0.registry.get(tool_id).is_some_and(|t| t.layer() != Layer::Domain);
        let mut pending = Vec::with_capacity(2);
        if writes {
            if let Err(e) = self.0.services.audit.append(vec![start_row]).await {
                tracing::error!(%run_id, error = %e, "audit start row not written; call abandoned");
                return (CallOutcome { run_id: None, result: Err(Refusal::from(e)), result_json: None }, Outcome::Failed);
            }
        } else {
            pending.push(start_row);
        }

        let stop = self.gates(&who, tool_id, &args, run_id).await;
        let duration_ms = Some(started.elapsed().as_millis() as i64);

        // 9. audit: the closing row, committed before the answer.
        // A call that failed (something broke) closes FAILED; one a rule refused closes DENIED — decided
        // by the code alone (`ErrorCode::is_failure`), wherever in the gates it stopped.
        let observed = match &stop {
            Ok(_) => Outcome::Succeeded,
            Err(r) if r.code.is_failure() => Outcome::Failed,
            Err(_) => Outcome::Denied,
        };
        let mut result_json = None;
        let (close, result) = match stop {
            Ok(output) => {
                let mut close = audit::event(&self.0.services, run_id, who.tenant_id(), tool_id, EventType::ToolCall,
                    RunStatus::Succeeded, &actor, None, None, None, duration_ms);
                let text = output.to_string();
                if audit::fits(&text) {
                    close.output_data = Some(text.clone());
                    result_json = Some(text);
                } else {
                    close.output_data = Some(audit::preview(&text));
                }
                (close, Ok(output))
            }
            Err(r) => {
                let (event, status) = if r.code.is_failure() { (EventType::ToolCall, RunStatus::Failed) } else { (EventType::Refusal, RunStatus::Denied) };
                let close = audit::event(&self.0.services, run_id, who.tenant_id(), tool_id, event, status, &actor,
                    None, Some(&error_json(&r)), Some(format!("{}: {}", r.code, r.message)), duration_ms);
                (close, Err(r))
            }
        };
        tracing::debug!(%run_id, tool = tool_id, tenant = %who.tenant_id(), actor = %actor, outcome = ?observed, ?duration_ms, "tool call");
        pending.push(close);
        if let Err(e) = self.0.services.audit.append(pending).await {
            tracing::error!(%run_id, error = %e, "audit closing row not written; answer withheld");
            return (CallOutcome { run_id: Some(run_id), result: Err(Refusal::from(e)), result_json: None }, Outcome::Failed);
        }
        (CallOutcome { run_id: Some(run_id), result, result_json }, observed)
    }

    async fn gates(&self, who: &Authenticated, tool_id: &str, args: &Value, run_id: RunId) -> Result<Value, Refusal> {
        // 1. identity, continued: the Kernel supplies role and scopes.
        let outage_safe = self.0.registry.get(tool_id).is_some_and(|t| t.spec().serves_during_kernel_outage);
        let principal = match identity::principal(&self.0.services, who).await {
            Ok(p) => p,
            Err(r) if r.code == ErrorCode::KernelUnavailable && outage_safe => identity::without_kernel(who),
            Err(r) => return Err(r),
        };

        // 2. maintenance: executions pause; reads and drafts go on.
        if self.0.registry.get(tool_id).is_some_and(|t| t.layer() == Layer::Cell)
            && maintenance::state(&self.0.services).await?.on
        {
            return Err(maintenance::refusal());
        }

        // 3. registry.
        let tool = self.0.registry.get(tool_id).ok_or_else(|| unknown_tool(tool_id))?;

        // 4. input validation.
        let input: Validated = tool.decode(args)?;
        self.0.registry.check_input(tool_id, args)?;
        let request = request_facts(tool.as_ref(), args);

        // 5. permission.
        self.permission(&principal, tool.as_ref()).await?;

        // 6. layer rules: module flags and role gates; request-id replay; the execution protocol.
        let draft = match self.layer_rules(&principal, tool.as_ref(), args, &request).await? {
            Clearance::Proceed(draft) => draft.map(|d| *d),
            Clearance::Replay(answer) => return Ok(answer),
        };

        // 7. mode gate.
        mode_gate(self.0.services.runtime.mode, tool.as_ref(), &request)?;

        // 8. execute.
        let cleared = Cleared {
            services: self.0.services.clone(),
            registry: self.0.registry.clone(),
            principal,
            run_id,
            tool: tool.spec(),
            request,
            draft,
        };
        tool.execute(cleared, input).await
    }

    async fn layer_rules(&self, caller: &Principal, tool: &dyn ErasedTool, args: &Value, request: &RequestFacts) -> Result<Clearance, Refusal> {
        let spec = tool.spec();
        if tool.layer() == Layer::Domain {
            return Ok(Clearance::Proceed(None));
        }
        // Writing tools: the tenant's module must be on, and the caller's role must pass the role gate.
        let tenant = self.0.services.kernel.tenant(&caller.tenant_id).await?;
        if !tenant.enabled_modules.iter().any(|m| m == spec.domain()) {
            return Err(Refusal::new(
                ErrorCode::ModuleDisabled,
                format!("Module {} is not enabled for tenant {}: {} is unavailable", spec.domain(), caller.tenant_id, spec.id),
                "Ask a tenant administrator to enable the module in the Kernel; featureflag.domain.status.read shows the modules.",
            ));
        }
        if let Some(permission) = spec.role_gate {
            let policies = self.0.services.kernel.policies(&caller.tenant_id).await?;
            let held = policies.role_gates.get(&caller.role).is_some_and(|p| p.iter().any(|p| p == permission));
            if !held {
                return Err(Refusal::new(
                    ErrorCode::PermissionDenied,
                    format!("Permission denied for {}: role {} does not hold {permission} in the tenant's role gates", spec.id, caller.role),
                    "Use a key of a user whose role holds that permission; workflow.domain.policy.read shows the role gates.",
                ));
            }
        }
        let tenant_id = &caller.tenant_id;
        if tool.layer() == Layer::Cluster {
            if let Some(request_id) = &request.request_id {
                let seen = self.0.services.store.draft_by_request(tenant_id, request_id).await?;
                if let Some(seen) = seen {
                    return execution::replay_draft(&seen, spec.id, &request.fingerprint).map(Clearance::Replay);
                }
            }
            return Ok(Clearance::Proceed(None));
        }
        if let Some(request_id) = &request.request_id {
            let seen = self.0.services.store.execution_for_request(tenant_id, spec.id, request_id).await?;
            if let Some(seen) = seen {
                return execution::replay_execution(&seen, &request.fingerprint).map(Clearance::Replay);
            }
        }
        let draft_id = args
            .get("draft_id")
            .and_then(Value::as_str)
            .and_then(|s| lynx_model::DraftId::parse(s).ok())
            .ok_or_else(|| Refusal::invalid_input("draft_id", "is required"))?;
        execution::check(&self.0.services, caller, spec, draft_id).await.map(|d| Clearance::Proceed(Some(Box::new(d))))
    }

    async fn permission(&self, principal: &Principal, tool: &dyn ErasedTool) -> Result<(), Refusal> {
        let request = lynx_model::kernel::PermissionRequest {
            user_id: principal.user_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            action: tool.spec().id.to_string(),
            resource_type: "tool".into(),
        };
        match self.0.services.kernel.check_permission(&request).await {
            Ok(decision) if decision.allowed => Ok(()),
            Ok(decision) => Err(Refusal::new(
                ErrorCode::PermissionDenied,
                format!("Permission denied for {}: {}", tool.spec().id, decision.reason),
                "Call security.domain.permission.read to see what is required, or ask a tenant administrator for that role or scope.",
            )),
            Err(KernelError::Unavailable(_)) if tool.spec().serves_during_kernel_outage => Ok(()),
            Err(KernelError::Unavailable(m)) => Err(Refusal::kernel_unavailable(m)),
            Err(KernelError::NotFound(m)) => Err(Refusal::new(
                ErrorCode::PermissionDenied,
                format!("Permission denied for {}: {m}", tool.spec().id),
                "Check that the tenant and user exist in the Kernel.",
            )),
        }
    }
}

/// What the layer gate decided.
enum Clearance {
    /// Go on; cell tools carry the draft that passed the execution protocol.
    Proceed(Option<Box<lynx_model::records::DraftForTool>>),
    /// A repeated `request_id` with the same input: the original answer, without running again.
    Replay(Value),
}

/// The facts a writing call's arguments carry for the gates (already validated by the tool's input type).
fn request_facts(tool: &dyn ErasedTool, args: &Value) -> RequestFacts {
    // serde_json's maps are sorted, so this text is canonical: equal inputs, equal fingerprints. Reads
    // are never replayed, so they need none.
    let fingerprint = match tool.layer() {
        Layer::Domain => String::new(),
        _ => hex::encode(Sha256::digest(format!("{}\n{args}", tool.spec().id).as_bytes())),
    };
    RequestFacts {
        request_id: args.get("request_id").and_then(Value::as_str).map(str::to_string),
        fingerprint,
        explicit_approval: args.get("explicit_approval").and_then(Value::as_bool) == Some(true),
    }
}

/// Rules of the operating mode: in `prod`, a high-risk execution needs `explicit_approval: true` on the
/// call as well as an approved draft. Reads and drafts are the same in every mode.
fn mode_gate(mode: Mode, tool: &dyn ErasedTool, request: &RequestFacts) -> Result<(), Refusal> {
    let high_risk_execution = tool.layer() == Layer::Cell && tool.spec().risk == Risk::High;
    if mode == Mode::Prod && high_risk_execution && !request.explicit_approval {
        return Err(Refusal::new(
            ErrorCode::ExplicitApprovalRequired,
            format!(
                "High-risk action requires explicit approval: explicit approval required for {} in prod mode (approved draft + explicit_approval=true)",
                tool.spec().id
            ),
            "Confirm with the human that this exact action should happen now, then call again with explicit_approval: true.",
        ));
    }
    Ok(())
}

fn unknown_tool(tool_id: &str) -> Refusal {
    let shown = lynx_model::params::truncate(tool_id, 80);
    Refusal::new(
        ErrorCode::UnknownTool,
        format!("Unknown tool {shown:?}: no tool with that id is registered"),
        "Call tools/list (or GET /api/tools) for the registered tool ids.",
    )
}

/// The structured error a refusal becomes on the wire and in the audit trail.
pub fn error_json(r: &Refusal) -> Value {
    serde_json::json!({"code": r.code, "message": r.message, "hint": r.hint})
}
