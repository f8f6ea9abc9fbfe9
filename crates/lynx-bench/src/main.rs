//! `lynx-bench`: measures Lynx against a bare `rmcp` streamable-HTTP server (the baseline) with the same
//! load generator in the same run, and Lynx at data scale. See docs/PERFORMANCE.md for the command and
//! the last measured table.

mod baseline;
mod cpu;
mod disk;
mod load;
mod run;
mod scale;
mod seed;

use clap::{Parser, Subcommand};

/// The same allocator as `lynx`, so the baseline differs from Lynx only by governance, not by build
/// settings (this binary is the baseline server and the load generator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "lynx-bench", about = "Benchmarks for Lynx")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the baseline: a bare rmcp streamable-HTTP server with one trivial tool, no governance.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
    },
    /// Start Lynx and the baseline, drive both at fixed concurrency levels and print the table.
    Run(run::Args),
    /// Seed a database (LYNX_DATABASE_URL) with audit events and drafts across tenants.
    Seed(seed::Args),
    /// Time operator operations against a seeded database.
    Scale(scale::Args),
    /// The disk's own latency for a synced write at a fixed rate: the floor under a SQLite commit.
    Disk(disk::Args),
    /// Drive one tool, or the full lifecycle, on a running server (for profiling).
    Load {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: Option<String>,
        /// An approver's key: with it, each operation is a full lifecycle instead of one `--tool` call.
        #[arg(long)]
        approver_key: Option<String>,
        #[arg(long, default_value = "tenant.domain.profile.read")]
        tool: String,
        /// The tool's arguments, a JSON object.
        #[arg(long, default_value = "{}", value_parser = parse_object)]
        args: serde_json::Value,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

fn parse_object(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object".into()),
        Err(e) => Err(format!("is not JSON: {e}")),
    }
}

fn main() {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Baseline { bind } => baseline::serve(bind).await,
            Command::Run(args) => run::run(args).await,
            Command::Seed(args) => seed::seed(args).await,
            Command::Scale(args) => scale::scale(args).await,
            Command::Disk(args) => disk::disk(args),
            Command::Load { base, key, approver_key, tool, args, concurrency, seconds } => {
                let m = load::Mcp::new(&base, key.as_deref());
                let duration = std::time::Duration::from_secs(seconds);
                let o = match approver_key {
                    Some(approver) => {
                        load::drive(concurrency, duration, |_| (m.clone(), approver.clone(), base.clone()), |s: std::sync::Arc<(load::Mcp, String, String)>| async move {
                            load::lifecycle(&s.0, &s.1, &s.2).await
                        })
                        .await
                    }
                    None => {
                        let call = std::sync::Arc::new((tool, args));
                        load::drive(concurrency, duration, |_| (m.clone(), call.clone()), |s: std::sync::Arc<(load::Mcp, std::sync::Arc<(String, serde_json::Value)>)>| async move {
                            s.0.call(&s.1.0, s.1.1.clone()).await.map(|_| ())
                        })
                        .await
                    }
                };
                println!("{:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, {} errors", o.per_second(), o.percentile_ms(0.5), o.percentile_ms(0.99), o.errors);
                Ok(())
            }
        }
    });
    if let Err(e) = result {
        eprintln!("lynx-bench: {e}");
        std::process::exit(1);
    }
}
