//! `lynx serve`: migrate, create demo keys on a first dev start, then serve HTTP — and deliver
//! webhooks, expire overdue drafts and checkpoint the audit trail beside it — until SIGTERM, when a
//! last checkpoint is signed.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::{
    cli::output,
    configuration::Settings,
    startup::{self, Application, Fatal},
};

pub async fn run(settings: &Settings) -> Result<ExitCode, Fatal> {
    let services = startup::services(settings, startup::Role::Server).await?;
    startup::demo_keys_on_first_run(&services).await?;
    // The server's environment is the configuration of the subscription to every tenant: set it, or
    // remove it when the variable is gone.
    let n = &settings.notifications;
    services.store.set_env_webhook(n.url.as_deref(), n.format, services.clock.now()).await?;
    let anchor = startup::audit_anchor(settings)?.map(std::sync::Arc::new);
    let stop = CancellationToken::new();
    let background = startup::background(&services, settings, anchor.clone(), stop.clone())?;
    let kernel = services.kernel.describe();
    let at_shutdown = services.clone();
    let app = Application::build(settings, startup::pipeline(services)).await?;
    tracing::info!(mode = %settings.mode, storage = %settings.database.describe(), %kernel, "Lynx started");
    output::line(&format!("lynx: listening on http://{} (MCP at /mcp)", app.addr()));
    let served = app.run_until_stopped().await;
    stop.cancel();
    startup::finish(background).await;
    // What was audited since the last checkpoint is signed before the process ends.
    if let Some(anchor) = &anchor {
        startup::checkpoint_round(anchor, &at_shutdown).await;
    }
    served?;
    Ok(ExitCode::SUCCESS)
}
