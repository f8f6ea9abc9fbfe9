//! `lynx kernel serve --file FILE --bind ADDR`: the reference Kernel server — a Kernel file served over
//! the Kernel HTTP contract. With `KERNEL_API_KEY` set, requests must present it.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use lynx_kernel::{EmbeddedKernel, KernelFile};

use crate::{
    cli::output,
    configuration::Settings,
    startup::Fatal,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve a Kernel file over the Kernel HTTP contract.
    Serve {
        /// The Kernel file (JSON); without it, the built-in demo data.
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:3000")]
        bind: std::net::SocketAddr,
    },
}

pub async fn run(_settings: &Settings, command: Command) -> Result<ExitCode, Fatal> {
    let Command::Serve { file, bind } = command;
    let kernel = match &file {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| Fatal(format!("Kernel file {name}: cannot be read: {e}")))?;
            EmbeddedKernel::new(KernelFile::parse(&text, &name)?, format!("file {name}"))
        }
        None => EmbeddedKernel::demo(),
    };
    let api_key = std::env::var("KERNEL_API_KEY").ok().filter(|k| !k.is_empty());
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| Fatal(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr()?;
    let source = file.map(|f| f.display().to_string()).unwrap_or_else(|| "built-in demo data".into());
    output::line(&format!(
        "lynx kernel: serving {source} on http://{addr}{}",
        if api_key.is_some() { " (KERNEL_API_KEY required)" } else { " (no key required)" }
    ));
    let router = lynx_http::kernel_router(Arc::new(kernel), api_key);
    lynx_http::serve(listener, router, lynx_http::ConnectionLimits::default(), crate::startup::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
