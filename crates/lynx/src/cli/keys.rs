//! `lynx keys create|list|revoke`: API keys. `create` prints the secret once; only its hash is kept.

use std::process::ExitCode;

use lynx_governance::identity;
use lynx_model::{KeyId, UserId};
use serde_json::json;

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a key for a Kernel user; prints the secret once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// A note to recognise the key by (for example the agent or laptop using it).
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its key_id; it stops working at once.
    Revoke {
        key_id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::Create { tenant, user, label, json } => {
            let tenant = cli::tenant(&tenant)?;
            let user = UserId::parse(user.as_str()).map_err(|e| Fatal(format!("--user {user:?}: {e}")))?;
            let key = identity::create_key(&services, &tenant, &user, &label, &cli::operator()).await.map_err(refusal)?;
            if json {
                output::json(&json!({
                    "key_id": key.record.key_id, "tenant_id": tenant, "user_id": user, "label": label,
                    "created_at": key.record.created_at, "api_key": key.secret,
                }));
            } else {
                output::line(&format!("Created key {} for {user} in {tenant}.", key.record.key_id));
                output::line(&format!("API key (shown once, store it now): {}", key.secret));
            }
        }
        Command::List { tenant, json } => {
            let tenant = cli::tenant_arg(tenant)?;
            let keys = services.store.list_api_keys(tenant.as_ref()).await?;
            if json {
                output::json(&keys);
            } else {
                let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into());
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.key_id.to_string(), k.tenant_id.to_string(), k.user_id.to_string(), k.label.clone(),
                            fmt(Some(k.created_at)), fmt(k.last_used_at),
                            if k.revoked_at.is_some() { format!("revoked {}", fmt(k.revoked_at)) } else { "active".into() },
                        ]
                    })
                    .collect();
                output::table(&["KEY_ID", "TENANT", "USER", "LABEL", "CREATED", "LAST USED", "STATUS"], &rows);
            }
        }
        Command::Revoke { key_id, json } => {
            let key_id = KeyId::parse(key_id.as_str()).map_err(|e| Fatal(format!("{key_id:?}: {e}")))?;
            let key = identity::revoke_key(&services, &key_id, &cli::operator()).await.map_err(refusal)?;
            if json {
                output::json(&key);
            } else {
                output::line(&format!("Revoked key {} ({} in {}).", key.key_id, key.user_id, key.tenant_id));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
