//! `lynx executions list|show|clear-stuck|rollback`: what cell tools executed, and the runbook's
//! recovery procedures for it.

use std::process::ExitCode;

use lynx_governance::operations;
use lynx_model::{records::ExecutionFilter, vocab::RunStatus};

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List executions, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// STARTED, SUCCEEDED, FAILED or DENIED.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        draft: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one execution with its result and rollback instructions.
    Show {
        execution_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Mark STARTED executions older than a bound FAILED ('Manual intervention: execution stuck').
    ClearStuck {
        /// For example 1h, 30m, 90s or 2d.
        #[arg(long, value_parser = crate::configuration::parse_duration)]
        older_than: chrono::TimeDelta,
        #[arg(long)]
        json: bool,
    },
    /// Carry out an execution's rollback instructions (refused when no longer possible).
    Rollback {
        execution_id: String,
        #[arg(long)]
        json: bool,
    },
}

fn id(raw: &str) -> Result<lynx_model::ExecutionId, Fatal> {
    lynx_model::ExecutionId::parse(raw).map_err(|_| Fatal(format!("{raw:?} is not an execution id (a UUID)")))
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::List { tenant, status, draft, limit, json } => {
            let tenant = cli::tenant_arg(tenant)?;
            let status = status.map(|s| RunStatus::parse(&s.to_uppercase()).ok_or_else(|| Fatal(format!("--status {s:?}: not an execution status")))).transpose()?;
            let draft_id = draft.map(|d| lynx_model::DraftId::parse(&d).map_err(|_| Fatal(format!("--draft {d:?}: not a UUID")))).transpose()?;
            let rows = services.store.executions(tenant.as_ref(), &ExecutionFilter { status, draft_id, tool_id: None, before: None, limit }).await?;
            if json {
                output::json(&rows);
            } else {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|e| {
                        vec![
                            e.execution_id.to_string(), e.tenant_id.to_string(), e.tool_id.clone(), e.status.to_string(),
                            e.draft_id.to_string(), e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            if e.rolled_back_at.is_some() { "rolled back".into() } else { e.error_message.clone().unwrap_or_default() },
                        ]
                    })
                    .collect();
                output::table(&["EXECUTION_ID", "TENANT", "TOOL", "STATUS", "DRAFT_ID", "CREATED (UTC)", "NOTE"], &rows);
            }
        }
        Command::Show { execution_id, json } => {
            let id = id(&execution_id)?;
            let e = services.store.execution(None, id).await?.ok_or_else(|| Fatal(format!("No execution {id}")))?;
            if json {
                output::json(&e);
            } else {
                output::line(&format!("Execution {} — {} {}", e.execution_id, e.tool_id, e.status));
                output::line(&format!("  tenant: {}   draft: {}   actor: {}", e.tenant_id, e.draft_id, e.actor_id));
                output::line(&format!("  created: {}   completed: {}", e.created_at, e.completed_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into())));
                if let Some(err) = &e.error_message {
                    output::line(&format!("  error: {err}"));
                }
                if let Some(r) = &e.result_payload {
                    output::line(&format!("  result: {r}"));
                }
                if let Some(r) = &e.rollback_instructions {
                    output::line(&format!("  rollback_instructions: {r}"));
                }
                if let (Some(at), Some(by)) = (e.rolled_back_at, &e.rolled_back_by) {
                    output::line(&format!("  rolled back at {at} by {by}"));
                }
            }
        }
        Command::ClearStuck { older_than, json } => {
            let cleared = operations::clear_stuck(&services, older_than, &cli::operator()).await.map_err(refusal)?;
            if json {
                output::json(&cleared);
            } else {
                for e in &cleared {
                    output::line(&format!("Marked FAILED: {} ({} on draft {}, started {})", e.execution_id, e.tool_id, e.draft_id, e.created_at));
                }
                output::line(&format!("{} stuck execution(s) cleared; a retry of each is safe (no effect was applied).", cleared.len()));
            }
        }
        Command::Rollback { execution_id, json } => {
            let e = operations::rollback(&services, None, id(&execution_id)?, &cli::operator()).await.map_err(refusal)?;
            if json {
                output::json(&e);
            } else {
                output::line(&format!("Rolled back execution {} ({}), audited.", e.execution_id, e.tool_id));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
