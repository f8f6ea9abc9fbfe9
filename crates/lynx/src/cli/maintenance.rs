//! `lynx maintenance on|off|status`: the stored switch every instance on the database honours (cell
//! tools are refused while it is on; reads and drafts go on).

use std::process::ExitCode;

use lynx_governance::{maintenance, operations};

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pause executions on every instance.
    On,
    /// Resume executions (LYNX_MAINTENANCE_MODE=true at start still keeps that instance paused).
    Off,
    /// Show whether maintenance mode is on, and why.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    let state = match command {
        Command::On => operations::set_maintenance(&services, true, &cli::operator()).await.map_err(refusal)?,
        Command::Off => operations::set_maintenance(&services, false, &cli::operator()).await.map_err(refusal)?,
        Command::Status { json: true } => {
            output::json(&maintenance::state(&services).await.map_err(refusal)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Status { json: false } => maintenance::state(&services).await.map_err(refusal)?,
    };
    let why = match (state.stored, state.from_env) {
        (true, true) => " (stored switch and LYNX_MAINTENANCE_MODE)",
        (true, false) => " (stored switch)",
        (false, true) => " (LYNX_MAINTENANCE_MODE on this instance)",
        (false, false) => "",
    };
    output::line(&format!("Maintenance mode: {}{why}", if state.on { "ON — cell tools are refused" } else { "off" }));
    Ok(ExitCode::SUCCESS)
}
