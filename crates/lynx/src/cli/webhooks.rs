//! `lynx webhooks add|list|remove|deliveries|redeliver|keygen`: notification subscriptions and their
//! deliveries. `add` shows the subscription's signing secret once; `keygen` makes the instance key
//! every instance signs with (`LYNX_WEBHOOK_KEY_FILE`) or a secret for `LYNX_WEBHOOK_SECRET`.

use std::{path::PathBuf, process::ExitCode};

use lynx_governance::webhooks::{self, NewWebhook};
use lynx_model::{
    store::DeliveryFilter,
    webhook::{DeliveryStatus, WebhookFormat},
};
use serde_json::json;

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::{self, Fatal},
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Subscribe a URL to events; prints the signing secret once.
    Add {
        /// Where deliveries are POSTed (http:// or https://).
        #[arg(long)]
        url: String,
        /// Only this tenant's events; without it, every tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// standard (signed Standard Webhooks JSON) or slack (a message for a Slack incoming webhook).
        #[arg(long, default_value = "standard")]
        format: String,
        /// Comma-separated event types (draft.submitted, draft.approved, draft.rejected, draft.expired,
        /// draft.cancelled, execution.succeeded, execution.failed, settlement.updated); default all.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List live subscriptions (never their secrets).
    List {
        /// A tenant's own subscriptions and those to every tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a subscription; its pending deliveries stop.
    Remove {
        webhook_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Deliveries, newest first: pending (queued or being retried), delivered, or dead (gave up).
    Deliveries {
        /// pending, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        webhook: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send a delivered or dead-lettered event again (same webhook-id, so receivers deduplicate).
    Redeliver {
        event_id: String,
        #[arg(long)]
        webhook: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a key: an instance key file for LYNX_WEBHOOK_KEY_FILE (--out), or a whsec_ secret for
    /// LYNX_WEBHOOK_SECRET (--secret).
    Keygen {
        /// Write a new instance key to this file (readable by its owner only; never overwritten).
        #[arg(long, conflicts_with = "secret", required_unless_present = "secret")]
        out: Option<PathBuf>,
        /// Print a new whsec_ secret.
        #[arg(long)]
        secret: bool,
    },
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    match command {
        // Needs no database.
        Command::Keygen { out, secret: _ } => keygen(out.as_deref()),
        other => manage(settings, other).await,
    }
}

fn keygen(out: Option<&std::path::Path>) -> Result<ExitCode, Fatal> {
    match out {
        Some(path) => {
            startup::write_private(path, &webhooks::new_instance_key())?;
            output::line(&format!("Wrote a new webhook key to {}. Give every instance LYNX_WEBHOOK_KEY_FILE={0}.", path.display()));
        }
        None => output::line(&webhooks::new_secret()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn manage(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::Keygen { out, secret: _ } => return keygen(out.as_deref()),
        Command::Add { url, tenant, format, events, json } => {
            let format = WebhookFormat::parse(&format).ok_or_else(|| Fatal(format!("--format {format:?}: must be standard or slack")))?;
            let event_types = webhooks::parse_event_types(&events).map_err(refusal)?;
            let new = NewWebhook { tenant: cli::tenant_arg(tenant)?, url, format, event_types };
            let (w, secret) = webhooks::add(&services, &cli::operator(), new).await.map_err(refusal)?;
            if json {
                let mut v = json!(w);
                v["secret"] = json!(secret);
                output::json(&v);
            } else {
                let scope = w.tenant_id.as_ref().map(|t| format!("tenant {t}")).unwrap_or_else(|| "every tenant".into());
                output::line(&format!("Created webhook {} for {scope}: {} ({}).", w.webhook_id, w.url, w.format.as_str()));
                match secret {
                    Some(secret) => output::line(&format!("Signing secret (shown once; give it to the receiver): {secret}")),
                    None => output::line("Slack messages are not signed: keep the Slack webhook URL itself secret."),
                }
            }
        }
        Command::List { tenant, json } => {
            let list = webhooks::list(&services, cli::tenant_arg(tenant)?.as_ref()).await.map_err(refusal)?;
            if json {
                output::json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|w| {
                        let events = if w.event_types.is_empty() { "all".into() } else { w.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",") };
                        vec![
                            w.webhook_id.clone(), w.tenant_id.as_ref().map(|t| t.to_string()).unwrap_or_else(|| "*".into()), w.format.as_str().into(),
                            events, w.url.clone(), when(Some(w.created_at)),
                        ]
                    })
                    .collect();
                output::table(&["WEBHOOK_ID", "TENANT", "FORMAT", "EVENTS", "URL", "CREATED (UTC)"], &rows);
            }
        }
        Command::Remove { webhook_id, json } => {
            webhooks::remove(&services, &cli::operator(), None, &webhook_id).await.map_err(refusal)?;
            if json { output::json(&json!({"webhook_id": webhook_id, "removed": true})) } else { output::line(&format!("Removed webhook {webhook_id}.")) }
        }
        Command::Deliveries { status, webhook, tenant, limit, json } => {
            let status = status.map(|s| DeliveryStatus::parse(&s).ok_or_else(|| Fatal(format!("--status {s:?}: must be pending, delivered or dead")))).transpose()?;
            let filter = DeliveryFilter { status, webhook_id: webhook, limit };
            let list = webhooks::deliveries(&services, cli::tenant_arg(tenant)?.as_ref(), &filter).await.map_err(refusal)?;
            if json {
                output::json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|d| {
                        let last = match (d.last_status, &d.last_error) {
                            (_, Some(e)) => e.clone(),
                            (Some(s), None) => format!("HTTP {s}"),
                            (None, None) => "-".into(),
                        };
                        let next = if d.status == DeliveryStatus::Pending { when(Some(d.next_attempt_at)) } else { "-".into() };
                        vec![
                            d.event_id.clone(), d.webhook_id.clone(), d.tenant_id.to_string(), d.event_type.as_str().into(), d.status.as_str().into(),
                            d.attempts.to_string(), next, last, when(Some(d.created_at)),
                        ]
                    })
                    .collect();
                output::table(&["EVENT_ID", "WEBHOOK_ID", "TENANT", "TYPE", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "LAST RESULT", "CREATED (UTC)"], &rows);
            }
        }
        Command::Redeliver { event_id, webhook, json } => {
            webhooks::redeliver(&services, &cli::operator(), None, &event_id, &webhook).await.map_err(refusal)?;
            if json {
                output::json(&json!({"event_id": event_id, "webhook_id": webhook, "status": "pending"}))
            } else {
                output::line(&format!("Queued event {event_id} for webhook {webhook} again."))
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
