//! `lynx serve`: migrate, create demo keys on a first dev start, then serve HTTP until SIGTERM.

use std::process::ExitCode;

use crate::{
    cli::output,
    configuration::Settings,
    startup::{self, Application, Fatal},
};

pub async fn run(settings: &Settings) -> Result<ExitCode, Fatal> {
    let services = startup::services(settings).await?;
    startup::demo_keys_on_first_run(&services).await?;
    let kernel = services.kernel.describe();
    let app = Application::build(settings, startup::pipeline(services)).await?;
    tracing::info!(mode = %settings.mode, storage = %settings.database.describe(), %kernel, "Lynx started");
    output::line(&format!("lynx: listening on http://{} (MCP at /mcp)", app.addr()));
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}
