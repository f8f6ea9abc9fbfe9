//! `lynx audit tail|verify|export|keygen|checkpoint|prove|verify-proof`: read the newest audit events,
//! check every tenant's hash chain (and, with `--checkpoints`, its rows against the signed checkpoint
//! files), export the trail, make a checkpoint signing key, sign checkpoints now, and prove a run's
//! rows to someone without database access.

use std::process::ExitCode;

use lynx_governance::{
    audit,
    checkpoints::{self, Checkpointed},
};
use lynx_model::store::AuditFilter;

use crate::{
    cli::{self, output, refusal},
    configuration::Settings,
    startup::{self, Fatal},
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
    /// Verify every tenant's hash chain; names the first broken row and exits non-zero if any. With
    /// --checkpoints and --key, also check every tenant's rows against its signed checkpoint files:
    /// truncation, rewriting, forged checkpoints and vanished tenants are named.
    Verify {
        /// A directory of checkpoint files (LYNX_AUDIT_CHECKPOINT_DIR, or a copy of it).
        #[arg(long, requires = "key")]
        checkpoints: Option<std::path::PathBuf>,
        /// The verifier key (`name+id+key`, as `lynx audit keygen` printed it) or a file holding it.
        #[arg(long, requires = "checkpoints")]
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create a checkpoint signing key file (readable by its owner only; never overwritten) and print
    /// its verifier key, which auditors use with `verify --key`.
    Keygen {
        #[arg(long)]
        out: std::path::PathBuf,
        /// The key's name, which also names the logs (`<name>/tenants/<tenant>`); default: this host's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print the verifier key of the configured checkpoint signing key (LYNX_AUDIT_SIGNING_KEY, or the
    /// dev key beside the database).
    VerifierKey,
    /// Sign a checkpoint of every tenant whose audit tree grew, now.
    Checkpoint {
        #[arg(long)]
        json: bool,
    },
    /// Print a self-contained proof that a run's audit rows are in its tenant's signed tree.
    Prove {
        #[arg(long)]
        run: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Check a proof file offline (no database): the checkpoint's signature, each row's hash and its
    /// inclusion in the signed tree.
    VerifyProof {
        file: std::path::PathBuf,
        #[arg(long)]
        key: String,
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

fn no_key() -> Fatal {
    Fatal("no checkpoint signing key: set LYNX_AUDIT_SIGNING_KEY (create one with `lynx audit keygen --out FILE`)".into())
}

/// A verifier key given as text, or as the path of a file holding it.
fn verifier(key: &str) -> Result<lynx_tlog::NoteVerifier, Fatal> {
    let text = if key.contains('+') { key.to_string() } else { std::fs::read_to_string(key).map_err(|e| Fatal(format!("--key {key}: cannot be read: {e}")))? };
    lynx_tlog::NoteVerifier::parse(&text).map_err(|e| Fatal(format!("--key: {e}")))
}

pub async fn run(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    // These need no database.
    match command {
        Command::Keygen { out, name } => keygen(&out, name),
        Command::VerifierKey => verifier_key(settings),
        Command::VerifyProof { file, key } => verify_proof(&file, &key),
        other => with_database(settings, other).await,
    }
}

fn verifier_key(settings: &Settings) -> Result<ExitCode, Fatal> {
    output::line(&startup::audit_anchor(settings)?.ok_or_else(no_key)?.verifier().to_text());
    Ok(ExitCode::SUCCESS)
}

fn keygen(out: &std::path::Path, name: Option<String>) -> Result<ExitCode, Fatal> {
    let name = name.unwrap_or_else(startup::default_key_name);
    let signer = lynx_governance::checkpoints::new_signing_key(&name).map_err(|e| Fatal(format!("--name {name:?}: {e}")))?;
    startup::write_private(out, &signer.to_text())?;
    output::line(&format!("Wrote a checkpoint signing key to {} (keep it secret; set LYNX_AUDIT_SIGNING_KEY={0}).", out.display()));
    output::line("Verifier key (give it to auditors: `lynx audit verify --checkpoints DIR --key …`):");
    output::line(&signer.verifier().to_text());
    Ok(ExitCode::SUCCESS)
}

fn verify_proof(file: &std::path::Path, key: &str) -> Result<ExitCode, Fatal> {
    let verifier = verifier(key)?;
    let text = std::fs::read_to_string(file).map_err(|e| Fatal(format!("{}: cannot be read: {e}", file.display())))?;
    let proof: checkpoints::RunProof = serde_json::from_str(&text).map_err(|e| Fatal(format!("{}: not a Lynx audit proof: {e}", file.display())))?;
    match checkpoints::verify_proof(&proof, &verifier) {
        Ok(cp) => {
            output::line(&format!(
                "✅ {} row(s) of run {} are in {}'s signed tree of {} rows (checkpoint signed by {}).",
                proof.entries.len(),
                proof.entries[0].row.run_id,
                cp.origin,
                cp.size,
                verifier.name()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            output::line(&format!("❌ proof {} does not hold: {why}", file.display()));
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn with_database(settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let services = cli::services(settings).await?;
    match command {
        Command::Keygen { out, name } => keygen(&out, name),
        Command::VerifierKey => verifier_key(settings),
        Command::VerifyProof { file, key } => verify_proof(&file, &key),
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
        Command::Checkpoint { json } => {
            let anchor = startup::audit_anchor(settings)?.ok_or_else(no_key)?;
            let (done, failed) = anchor.checkpoint_all(&services).await.map_err(refusal)?;
            if json {
                let failed: Vec<_> = failed.iter().map(|(t, r)| serde_json::json!({"tenant_id": t, "code": r.code, "message": r.message})).collect();
                output::json(&serde_json::json!({"checkpoints": done, "failed": failed}));
            } else {
                for c in &done {
                    output::line(&match c {
                        Checkpointed::Signed { tenant_id, tree_size, file } => format!(
                            "✅ {tenant_id}: signed a checkpoint of {tree_size} rows{}",
                            file.as_ref().map(|f| format!(" ({})", f.display())).unwrap_or_default()
                        ),
                        Checkpointed::Unchanged { tenant_id, tree_size } => format!("   {tenant_id}: unchanged since its checkpoint of {tree_size} rows"),
                        Checkpointed::TakenByAnother { tenant_id, tree_size } => format!("   {tenant_id}: another instance signed {tree_size} rows first"),
                    });
                }
                for (t, r) in &failed {
                    output::line(&format!("❌ {t}: {}: {} ({})", r.code, r.message, r.hint));
                }
            }
            Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Prove { run, output: path } => {
            let run_id = lynx_model::RunId::parse(&run).map_err(|_| Fatal(format!("--run {run:?}: not a run id (a UUID)")))?;
            let proof = checkpoints::prove_run(&services, run_id).await.map_err(refusal)?;
            let text = serde_json::to_string_pretty(&proof).map_err(|e| Fatal(format!("cannot encode the proof: {e}")))?;
            match path {
                Some(p) => {
                    std::fs::write(&p, format!("{text}\n")).map_err(|e| Fatal(format!("cannot write {}: {e}", p.display())))?;
                    output::note(&format!("wrote the proof of {} row(s) to {}", proof.entries.len(), p.display()));
                }
                None => output::line(&text),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { checkpoints: dir, key, json } => {
            let reports = audit::verify(services.store.as_ref(), |tenant, n| {
                if !json && n % 10_000 == 0 {
                    output::note(&format!("verifying {tenant}: {n} events checked…"));
                }
            })
            .await?;
            let anchored = match (&dir, &key) {
                (Some(dir), Some(key)) => Some(checkpoints::verify_against_files(services.store.as_ref(), dir, &verifier(key)?).await.map_err(refusal)?),
                _ => None,
            };
            let chains_ok = reports.iter().all(|r| r.ok);
            let anchors_ok = anchored.as_ref().is_none_or(|a| a.iter().all(|r| r.ok()));
            let ok = chains_ok && anchors_ok;
            record_passes(&services, &reports, anchored.as_deref()).await;
            if json {
                output::json(&serde_json::json!({"ok": ok, "tenants": reports, "checkpoints": anchored}));
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
                for a in anchored.iter().flatten() {
                    if a.ok() {
                        match &a.newest {
                            Some((size, file)) => output::line(&format!(
                                "✅ {}: {} rows match {} signed checkpoint(s), the newest covering 1..{size} ({})",
                                a.tenant_id,
                                a.rows,
                                a.checkpoints,
                                file.display()
                            )),
                            None => output::line(&format!("⚠️  {}: {} rows, no signed checkpoint yet", a.tenant_id, a.rows)),
                        }
                    } else {
                        for p in &a.problems {
                            output::line(&format!("❌ {}: {p}", a.tenant_id));
                        }
                    }
                }
                if reports.is_empty() && anchored.as_ref().is_none_or(|a| a.is_empty()) {
                    output::line("No audit events yet.");
                }
                output::line(if ok { "Audit trail verified." } else { "Audit trail verification FAILED." });
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// Records, per tenant, a verification that passed (shown by `lynx status` and the dashboard).
async fn record_passes(services: &lynx_governance::Services, chains: &[audit::ChainReport], anchored: Option<&[checkpoints::AnchorReport]>) {
    for chain in chains.iter().filter(|c| c.ok) {
        let anchor = anchored.map(|a| a.iter().find(|r| r.tenant_id == chain.tenant_id.as_str()));
        let checkpoint_size = match anchor {
            None => None,
            Some(Some(r)) if r.ok() => r.newest.as_ref().map(|(size, _)| *size),
            Some(_) => continue,
        };
        let record = lynx_model::audit::VerificationRecord {
            tenant_id: chain.tenant_id.clone(),
            verified_at: services.clock.now(),
            events: chain.events,
            checkpoint_size,
            verified_by: cli::operator(),
        };
        if let Err(e) = services.store.record_verification(&record).await {
            output::note(&format!("the verification of {} passed but could not be recorded: {e}", chain.tenant_id));
        }
    }
}
