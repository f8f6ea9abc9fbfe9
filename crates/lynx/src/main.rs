//! The `lynx` binary: parse the command line, run the command, turn failures into a message and an
//! exit code. Everything else lives in `cli/`, `configuration.rs` and `startup.rs`.

mod cli;
mod configuration;
mod startup;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// glibc's allocator spent about a fifth of a busy server's CPU in malloc/free (many threads, many
/// short-lived JSON strings); mimalloc's per-thread heaps make that a few percent.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Settings that do not parse leave the default here; the command itself reports them.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let workers = configuration::Settings::from_env().map(|s| s.worker_threads(cores)).unwrap_or(cores);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            cli::output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(args))
}
