//! Logging: `tracing` to stderr (stdout is the MCP channel under `lynx mcp` and the CLI's output
//! elsewhere), filtered by `LYNX_LOG` (default `info` for `serve`, `warn` otherwise), JSON on request.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str, json: bool) {
    let filter = EnvFilter::try_from_env("LYNX_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
