//! `lynx mcp`: MCP over stdio. The session's identity is `LYNX_API_KEY`, checked before anything is
//! served (and again on every call, so a revoked key stops working mid-session); in dev mode only,
//! `--tenant/--user` may stand in for a key.

use std::process::ExitCode;

use lynx_governance::Credential;
use lynx_mcp::LynxMcp;
use lynx_model::{Mode, UserId};

use crate::{
    configuration::Settings,
    startup::{self, Fatal},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dev mode only: act as this tenant instead of presenting LYNX_API_KEY.
    #[arg(long, requires = "user")]
    tenant: Option<String>,
    /// Dev mode only: act as this user of --tenant.
    #[arg(long, requires = "tenant")]
    user: Option<String>,
}

pub async fn run(settings: &Settings, args: Args) -> Result<ExitCode, Fatal> {
    let credential = match (args.tenant, args.user) {
        (Some(tenant), Some(user)) => {
            if settings.mode != Mode::Dev {
                return Err(Fatal(format!(
                    "--tenant/--user are accepted in dev mode only (LYNX_MODE={}); set LYNX_API_KEY instead",
                    settings.mode
                )));
            }
            Credential::DevFlags {
                tenant: crate::cli::tenant(&tenant)?,
                user: UserId::parse(user.as_str()).map_err(|e| Fatal(format!("--user {user:?}: {e}")))?,
            }
        }
        _ => match &settings.api_key {
            Some(key) => Credential::ApiKey(key.clone()),
            None => {
                return Err(Fatal(
                    "LYNX_API_KEY is not set: stdio MCP needs an API key (create one with `lynx keys create --tenant T --user U`)".into(),
                ));
            }
        },
    };
    let services = startup::services(settings, startup::Role::Server).await?;
    // A desktop agent's own Lynx delivers what its calls cause, and expires drafts, like a server.
    let anchor = startup::audit_anchor(settings)?.map(std::sync::Arc::new);
    let stop = tokio_util::sync::CancellationToken::new();
    let background = startup::background(&services, settings, anchor.clone(), stop.clone())?;
    let at_end = services.clone();
    let pipeline = startup::pipeline(services);
    let who = pipeline.authenticate(&credential).await.map_err(|r| Fatal(format!("{}: {}", r.code, r.message)))?;
    tracing::info!(tenant = %who.tenant_id(), user = %who.user_id(), "serving MCP over stdio");
    let served = LynxMcp::for_session(pipeline, credential).serve_stdio().await;
    stop.cancel();
    startup::finish(background).await;
    if let Some(anchor) = &anchor {
        startup::checkpoint_round(anchor, &at_end).await;
    }
    served.map_err(|e| Fatal(format!("MCP stdio session ended: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
