//! `lynx drafts list|show|approve|reject|cancel|reset --force`: the approval surface for operators.
//! Approve, reject and cancel act as a named Kernel user and follow the same rules as the API
//! (maker-checker, approver roles, N approvals); reset is the runbook's emergency procedure.

use std::process::ExitCode;

use lynx_governance::{approvals, draft_status, identity};
use lynx_model::{
    TenantId, UserId,
    draft::{DraftStatus, DraftType},
    records::{Decision, DraftFilter, DraftRecord, ExecutionFilter},
};

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List drafts, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// DRAFT, SUBMITTED, APPROVED, REJECTED, CANCELLED, PUBLISHED or EXECUTED.
        #[arg(long)]
        status: Option<String>,
        /// docs, workflow or vpm_payment.
        #[arg(long = "type")]
        draft_type: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one draft with its preview, decisions and executions.
    Show {
        draft_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a submitted draft as a Kernel user who is an approver (never its creator).
    Approve {
        draft_id: String,
        /// The approving user (of the draft's tenant).
        #[arg(long)]
        user: String,
        #[arg(long)]
        notes: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Reject a submitted draft, with a reason.
    Reject {
        draft_id: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a DRAFT or SUBMITTED draft, as its creator or an approver.
    Cancel {
        draft_id: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Emergency: force a draft back to DRAFT (audited). Needs --force.
    Reset {
        draft_id: String,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_id(raw: &str) -> Result<lynx_model::DraftId, Fatal> {
    lynx_model::DraftId::parse(raw).map_err(|_| Fatal(format!("{raw:?} is not a draft id (a UUID)")))
}

async fn find(services: &lynx_governance::Services, raw: &str) -> Result<DraftRecord, Fatal> {
    let id = parse_id(raw)?;
    services.store.draft(None, id).await?.ok_or_else(|| Fatal(format!("Draft not found (draft_id: {id})")))
}

fn print_draft(d: &DraftRecord) {
    output::line(&format!("Draft {} ({}) — {}", d.draft_id, d.draft_type, d.status));
    output::line(&format!("  tenant: {}   risk: {}   created by {} at {}", d.tenant_id, d.risk_level, d.created_by, d.created_at.format("%Y-%m-%d %H:%M:%S")));
    for (label, who, when) in [
        ("submitted", &d.submitted_by, d.submitted_at),
        ("approved", &d.approved_by, d.approved_at),
        ("rejected", &d.rejected_by, d.rejected_at),
        ("cancelled", &d.cancelled_by, d.cancelled_at),
    ] {
        if let (Some(who), Some(when)) = (who, when) {
            output::line(&format!("  {label} by {who} at {}", when.format("%Y-%m-%d %H:%M:%S")));
        }
    }
    if let Some(reason) = &d.rejection_reason {
        output::line(&format!("  rejection reason: {reason}"));
    }
    if let (DraftStatus::Submitted, Some(due)) = (d.status, d.decision_due_at) {
        output::line(&format!("  decision due by {} (then it expires: REJECTED by system)", due.format("%Y-%m-%d %H:%M:%S")));
    }
    output::line(&format!("  recommended approvers: {}", d.recommended_approvers.join(", ")));
    output::line(&format!("  payload: {}", d.payload.to_json()));
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::List { tenant, status, draft_type, limit, json } => {
            let tenant = cli::tenant_arg(tenant)?;
            let status = status.map(|s| DraftStatus::parse(&s).ok_or_else(|| Fatal(format!("--status {s:?}: not a draft status")))).transpose()?;
            let draft_type = draft_type
                .map(|t| DraftType::parse(&t).ok_or_else(|| Fatal(format!("--type {t:?}: must be docs, workflow or vpm_payment"))))
                .transpose()?;
            let drafts = services.store.drafts(tenant.as_ref(), &DraftFilter { status, draft_type, before: None, limit }).await?;
            if json {
                output::json(&drafts);
            } else {
                let rows: Vec<Vec<String>> = drafts
                    .iter()
                    .map(|d| {
                        vec![
                            d.draft_id.to_string(), d.tenant_id.to_string(), d.draft_type.to_string(), d.status.to_string(),
                            d.risk_level.to_string(), d.created_by.clone(), d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            d.decision_due_at.filter(|_| d.status == DraftStatus::Submitted).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                output::table(&["DRAFT_ID", "TENANT", "TYPE", "STATUS", "RISK", "CREATED_BY", "CREATED (UTC)", "DECISION DUE (UTC)"], &rows);
            }
        }
        Command::Show { draft_id, json } => {
            let d = find(&services, &draft_id).await?;
            let approvals = services.store.approvals(&d.tenant_id, d.draft_id).await?;
            let state = draft_status::read(&services, &d.tenant_id, d.draft_id).await.map_err(refusal)?;
            let executions = services
                .store
                .executions(Some(&d.tenant_id), &ExecutionFilter { draft_id: Some(d.draft_id), limit: 100, ..Default::default() })
                .await?;
            if json {
                let mut v = serde_json::to_value(&d).unwrap_or_default();
                v["approvals"] = serde_json::json!(approvals);
                v["executions"] = serde_json::json!(executions);
                v["state"] = serde_json::json!(state);
                output::json(&v);
            } else {
                print_draft(&d);
                if let Some(state) = &state {
                    output::line(&format!("  approvals: {} of {}", state.approvals_recorded, state.approvals_required));
                    if let (DraftStatus::Approved, Some(until)) = (state.status, state.expires_at) {
                        output::line(&format!("  approval good for execution until {}", until.format("%Y-%m-%d %H:%M:%S")));
                    }
                    for step in &state.next_actions {
                        output::line(&format!("  next: {step}"));
                    }
                }
                for a in &approvals {
                    output::line(&format!("  decision: {} by {} at {} {}", a.decision.as_str(), a.approver_id, a.created_at.format("%Y-%m-%d %H:%M:%S"), a.notes.as_deref().unwrap_or("")));
                }
                for e in &executions {
                    output::line(&format!("  execution {}: {} {} at {}", e.execution_id, e.tool_id, e.status, e.created_at.format("%Y-%m-%d %H:%M:%S")));
                }
                output::line("");
                output::line(&d.preview_markdown);
            }
        }
        Command::Approve { draft_id, user, notes, json } => {
            return decide(&services, &draft_id, &user, Decision::Approved, notes, json).await;
        }
        Command::Reject { draft_id, user, reason, json } => {
            return decide(&services, &draft_id, &user, Decision::Rejected, Some(reason), json).await;
        }
        Command::Cancel { draft_id, user, reason, json } => {
            let d = find(&services, &draft_id).await?;
            let who = acting_as(&services, &d.tenant_id, &user).await?;
            let d = approvals::cancel(&services, &who, d.draft_id, reason).await.map_err(refusal)?;
            if json { output::json(&d) } else { output::line(&format!("Draft {} is now {}.", d.draft_id, d.status)) }
        }
        Command::Reset { draft_id, force, json } => {
            if !force {
                return Err(Fatal(
                    "reset forces a draft back to DRAFT outside the normal lifecycle; it is an emergency procedure. Re-run with --force if you mean it.".into(),
                ));
            }
            let d = find(&services, &draft_id).await?;
            let d = approvals::reset(&services, &cli::operator(), &d.tenant_id, d.draft_id).await.map_err(refusal)?;
            if json { output::json(&d) } else { output::line(&format!("Draft {} reset to {} (audited).", d.draft_id, d.status)) }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn acting_as(services: &lynx_governance::Services, tenant: &TenantId, user: &str) -> Result<lynx_model::Principal, Fatal> {
    let user = UserId::parse(user).map_err(|e| Fatal(format!("--user {user:?}: {e}")))?;
    identity::kernel_principal(services, tenant, &user).await.map_err(refusal)
}

async fn decide(
    services: &lynx_governance::Services,
    draft_id: &str,
    user: &str,
    decision: Decision,
    note: Option<String>,
    json: bool,
) -> Result<ExitCode, Fatal> {
    let d = find(services, draft_id).await?;
    let who = acting_as(services, &d.tenant_id, user).await?;
    let result = approvals::decide(services, &who, d.draft_id, decision, note).await.map_err(refusal)?;
    if json {
        output::json(&result);
    } else {
        output::line(&format!(
            "Draft {} is {} ({} of {} approval(s)).",
            result.draft.draft_id, result.draft.status, result.approvals, result.required_approvals
        ));
    }
    Ok(ExitCode::SUCCESS)
}
