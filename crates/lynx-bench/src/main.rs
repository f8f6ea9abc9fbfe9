//! `lynx-bench`: measures Lynx against a bare `rmcp` streamable-HTTP server (the baseline) with the same
//! load generator in the same run, and Lynx at data scale. See docs/PERFORMANCE.md for the command and
//! the last measured table.

mod baseline;
mod load;
mod run;
mod scale;
mod seed;

use clap::{Parser, Subcommand};

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
        }
    });
    if let Err(e) = result {
        eprintln!("lynx-bench: {e}");
        std::process::exit(1);
    }
}
