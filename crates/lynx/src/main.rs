//! The `lynx` binary: parse the command line, run the command, turn failures into a message and an
//! exit code. Everything else lives in `cli/`, `configuration.rs` and `startup.rs`.

mod cli;
mod configuration;
mod startup;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            cli::output::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(args))
}
