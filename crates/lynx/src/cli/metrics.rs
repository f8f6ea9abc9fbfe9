//! `lynx metrics`: the runbook's four monitoring metrics, each `OK` or `ALERT` against its threshold;
//! exits non-zero when any alert fires, so a cron job or monitor can act on it.

use std::process::ExitCode;

use lynx_governance::monitoring;

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this tenant (default: all tenants).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    let tenant = cli::tenant_arg(args.tenant)?;
    let metrics = monitoring::runbook_metrics(&services, tenant.as_ref()).await.map_err(refusal)?;
    let alerting = metrics.iter().any(|m| m.breached);
    if args.json {
        output::json(&serde_json::json!({"alerting": alerting, "metrics": metrics}));
    } else {
        let rows: Vec<Vec<String>> = metrics
            .iter()
            .map(|m| vec![if m.breached { "ALERT".into() } else { "OK".into() }, m.name.to_string(), m.display.clone(), format!("alert if {}", m.alert_when)])
            .collect();
        output::table(&["STATE", "METRIC", "VALUE", "THRESHOLD"], &rows);
    }
    Ok(if alerting { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
