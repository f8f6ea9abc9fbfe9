//! `lynx settlements list|mark`: the settlement queue, moved by an operator (provider `manual`).

use std::process::ExitCode;

use lynx_governance::operations;
use lynx_model::{PaymentId, vocab::SettlementStatus};

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List settlement intents with their payments, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// queued, processing, completed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Move a settlement: queued → processing → completed | failed. Completed settles the payment.
    Mark {
        payment_id: String,
        #[arg(long)]
        tenant: String,
        /// processing, completed or failed.
        #[arg(long)]
        status: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::List { tenant, status, limit, json } => {
            let tenant = cli::tenant_arg(tenant)?;
            let status = status
                .map(|s| SettlementStatus::parse(&s).ok_or_else(|| Fatal(format!("--status {s:?}: must be queued, processing, completed, failed or cancelled"))))
                .transpose()?;
            let rows = services.store.settlements(tenant.as_ref(), status, limit).await?;
            if json {
                output::json(&rows);
            } else {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|s| {
                        vec![
                            s.payment_id.to_string(), s.tenant_id.to_string(), s.status.to_string(), s.provider.clone(),
                            format!("{} {}", s.amount, s.currency), s.vendor_id.clone(), s.payment_status.to_string(),
                            s.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        ]
                    })
                    .collect();
                output::table(&["PAYMENT_ID", "TENANT", "STATUS", "PROVIDER", "AMOUNT", "VENDOR", "PAYMENT", "CREATED (UTC)"], &rows);
            }
        }
        Command::Mark { payment_id, tenant, status, note, json } => {
            let tenant = cli::tenant(&tenant)?;
            let payment_id = PaymentId::parse(&payment_id).map_err(|_| Fatal(format!("{payment_id:?} is not a payment id (a UUID)")))?;
            let s = operations::mark_settlement(&services, &tenant, payment_id, &status, &cli::operator(), note).await.map_err(refusal)?;
            if json {
                output::json(&s);
            } else {
                output::line(&format!("Settlement of payment {} is {} (payment {}).", s.payment_id, s.status, s.payment_status));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
