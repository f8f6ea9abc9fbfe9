//! `lynx tools`: the registered tools with layer, risk and annotations.

use std::process::ExitCode;

use crate::{cli::output, configuration::Settings, startup::Fatal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the full registry (with schemas) as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(_settings: &Settings, args: Args) -> Result<ExitCode, Fatal> {
    let registry = lynx_tools::registry();
    if args.json {
        output::json(&serde_json::json!({"tools": registry.definitions(), "version_hash": registry.version_hash()}));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = registry
        .definitions()
        .iter()
        .map(|d| {
            let hints = match (d.annotations.read_only, d.annotations.destructive) {
                (true, _) => "read-only",
                (false, Some(true)) => "destructive",
                (false, _) => "writes",
            };
            vec![d.id.to_string(), d.layer.to_string(), d.risk.to_string(), hints.to_string(), d.name.to_string()]
        })
        .collect();
    output::table(&["TOOL", "LAYER", "RISK", "HINTS", "TITLE"], &rows);
    output::line(&format!("{} tools registered (registry hash {})", registry.len(), &registry.version_hash()[..12]));
    Ok(ExitCode::SUCCESS)
}
