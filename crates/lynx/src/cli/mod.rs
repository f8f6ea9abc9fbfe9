//! The operator CLI: one file per command group. Every command has `--help`; tabular output has
//! `--json` for scripts. Commands print through `output.rs` only.

mod audit;
mod drafts;
mod executions;
mod keys;
mod kernel;
mod maintenance;
mod mcp;
mod metrics;
mod migrate;
pub mod output;
mod serve;
mod settlements;
mod status;
mod tools;
mod webhooks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    configuration::Settings,
    startup::{self, Fatal},
    telemetry,
};

/// Lynx — the governed action server for AI agents.
///
/// Configuration comes from the environment: LYNX_MODE, LYNX_DATABASE_URL, LYNX_KERNEL_FILE,
/// LYNX_MAINTENANCE_MODE, LYNX_PROTOCOL_VERSION, MCP_TOOLSET_VERSION, LYNX_BIND/PORT, LYNX_API_KEY.
#[derive(Debug, Parser)]
#[command(name = "lynx", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP: MCP at /mcp, the JSON API under /api, and /healthz.
    Serve,
    /// Serve MCP over stdio (for desktop and IDE agents). Authenticates with LYNX_API_KEY.
    Mcp(mcp::Args),
    /// Show system health, versions and the last runs; exits non-zero when something is unreachable.
    Status(status::Args),
    /// List the registered tools.
    Tools(tools::Args),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Apply pending database migrations.
    Migrate,
    /// Read and verify the audit trail.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Review and decide on drafts.
    #[command(subcommand)]
    Drafts(drafts::Command),
    /// Inspect executions; clear stuck ones; roll back.
    #[command(subcommand)]
    Executions(executions::Command),
    /// The settlement queue.
    #[command(subcommand)]
    Settlements(settlements::Command),
    /// Pause or resume executions on every instance.
    #[command(subcommand)]
    Maintenance(maintenance::Command),
    /// The runbook's monitoring metrics with OK/ALERT (exit code 2 when any alert fires).
    Metrics(metrics::Args),
    /// Webhook notifications: subscriptions, deliveries, keys.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// The reference Kernel server.
    #[command(subcommand)]
    Kernel(kernel::Command),
}

pub async fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            output::error(&format!("configuration error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let default_level = if matches!(cli.command, Command::Serve | Command::Kernel(_)) { "info" } else { "warn" };
    telemetry::init(default_level, settings.log_json);
    let result = match cli.command {
        Command::Serve => serve::run(&settings).await,
        Command::Mcp(args) => mcp::run(&settings, args).await,
        Command::Status(args) => status::run(&settings, args).await,
        Command::Tools(args) => tools::run(&settings, args).await,
        Command::Keys(cmd) => keys::run(&settings, cmd).await,
        Command::Migrate => migrate::run(&settings).await,
        Command::Audit(cmd) => audit::run(&settings, cmd).await,
        Command::Drafts(cmd) => drafts::run(&settings, cmd).await,
        Command::Executions(cmd) => executions::run(&settings, cmd).await,
        Command::Settlements(cmd) => settlements::run(&settings, cmd).await,
        Command::Maintenance(cmd) => maintenance::run(&settings, cmd).await,
        Command::Kernel(cmd) => kernel::run(&settings, cmd).await,
        Command::Metrics(args) => metrics::run(&settings, args).await,
        Command::Webhooks(cmd) => webhooks::run(&settings, cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(Fatal(message)) => {
            output::error(&message);
            ExitCode::FAILURE
        }
    }
}

/// Opens storage (migrated) and the Kernel for a command.
pub(crate) async fn services(settings: &Settings) -> Result<lynx_governance::Services, Fatal> {
    startup::services(settings, startup::Role::Command).await
}

/// Who an operator command acts as in the audit trail.
pub(crate) fn operator() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("operator:{user}")
}

/// `--tenant T`: a tenant id, or a message naming the flag.
pub(crate) fn tenant(raw: &str) -> Result<lynx_model::TenantId, Fatal> {
    lynx_model::TenantId::parse(raw).map_err(|e| Fatal(format!("--tenant {raw:?}: {e}")))
}

/// An optional `--tenant T`.
pub(crate) fn tenant_arg(raw: Option<String>) -> Result<Option<lynx_model::TenantId>, Fatal> {
    raw.as_deref().map(tenant).transpose()
}

/// A refusal, worded for the terminal.
pub(crate) fn refusal(r: lynx_model::Refusal) -> Fatal {
    Fatal(format!("{}: {} ({})", r.code, r.message, r.hint))
}
