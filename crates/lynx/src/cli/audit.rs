//! `lynx audit tail|verify`: read the newest audit events, and check every tenant's hash chain.

use std::process::ExitCode;

use lynx_governance::audit;
use lynx_model::store::AuditFilter;

use crate::{
    cli::{self, output},
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the newest audit events, oldest of them first.
    Tail {
        /// Only this tenant's events.
        #[arg(long)]
        tenant: Option<String>,
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        lines: u32,
        #[arg(long)]
        json: bool,
    },
    /// Verify every tenant's hash chain; names the first broken row and exits non-zero if any.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Export a tenant's whole audit trail (or every tenant's), streamed, with progress on stderr.
    Export {
        #[arg(long)]
        tenant: Option<String>,
        /// csv or json.
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::Tail { tenant, lines, json } => {
            let tenants = match tenant {
                Some(t) => vec![cli::tenant(&t)?],
                None => services.store.audit_tenants().await?,
            };
            let filter = AuditFilter { limit: lines, ..Default::default() };
            let mut events = Vec::new();
            for t in &tenants {
                events.extend(services.store.audit_events(t, &filter).await?);
            }
            events.sort_by_key(|a| (a.event.created_at, a.seq));
            let skip = events.len().saturating_sub(lines as usize);
            let events = &events[skip..];
            if json {
                output::json(&events);
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        let ev = &e.event;
                        vec![
                            ev.created_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                            ev.tenant_id.to_string(),
                            e.seq.to_string(),
                            ev.event_type.as_str().into(),
                            ev.status.to_string(),
                            ev.tool_id.clone(),
                            ev.actor_id.clone(),
                            ev.run_id.to_string(),
                            ev.error_message.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::table(&["TIME (UTC)", "TENANT", "SEQ", "TYPE", "STATUS", "TOOL", "ACTOR", "RUN_ID", "ERROR"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { tenant, format, output: path } => {
            let tenants = match tenant {
                Some(t) => vec![cli::tenant(&t)?],
                None => services.store.audit_tenants().await?,
            };
            let csv = format == "csv";
            let mut sink: Box<dyn std::io::Write> = match &path {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| Fatal(format!("cannot write {}: {e}", p.display())))?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let io = |e: std::io::Error| Fatal(format!("export interrupted: {e}"));
            sink.write_all(if csv { audit::CSV_HEADER.as_bytes() } else { b"[" }).map_err(io)?;
            let (mut written, mut first) = (0u64, true);
            for tenant in &tenants {
                let mut after = 0;
                loop {
                    let page = services.store.audit_chain_page(tenant, after, 1000).await?;
                    let Some(last) = page.last() else { break };
                    after = last.seq;
                    for e in &page {
                        if csv {
                            sink.write_all(audit::csv_line(e).as_bytes()).map_err(io)?;
                        } else {
                            if !first {
                                sink.write_all(b",\n").map_err(io)?;
                            }
                            first = false;
                            sink.write_all(audit::event_json(e).to_string().as_bytes()).map_err(io)?;
                        }
                    }
                    written += page.len() as u64;
                    output::note(&format!("exported {written} events ({tenant} up to seq {after})"));
                }
            }
            if !csv {
                sink.write_all(b"]\n").map_err(io)?;
            }
            sink.flush().map_err(io)?;
            output::note(&format!("done: {written} events from {} tenant(s)", tenants.len()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { json } => {
            let reports = audit::verify(services.store.as_ref(), |tenant, n| {
                if !json && n % 10_000 == 0 {
                    output::note(&format!("verifying {tenant}: {n} events checked…"));
                }
            })
            .await?;
            let ok = reports.iter().all(|r| r.ok);
            if json {
                output::json(&serde_json::json!({"ok": ok, "tenants": reports}));
            } else {
                for r in &reports {
                    match &r.first_broken {
                        None => output::line(&format!("✅ {}: {} events, chain intact", r.tenant_id, r.events)),
                        Some(b) => output::line(&format!(
                            "❌ {}: chain broken at seq {} (event_id {}, run_id {}): {}",
                            r.tenant_id, b.seq, b.event_id, b.run_id, b.reason
                        )),
                    }
                }
                if reports.is_empty() {
                    output::line("No audit events yet.");
                }
                output::line(if ok { "Audit trail verified." } else { "Audit trail verification FAILED." });
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
