//! The only place the CLI writes to stdout and stderr, so no stray print can corrupt the MCP channel
//! and every command's output style lives together.

use std::io::Write;

use lynx_model::{TenantId, UserId};
use serde::Serialize;

pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => line(&text),
        Err(e) => error(&format!("cannot encode output as JSON: {e}")),
    }
}

pub fn error(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "lynx: error: {text}");
}

pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "lynx: {text}");
}

/// A fixed-width table with a header row.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    line(&render(headers.iter().map(|h| h.to_string()).collect()));
    for row in rows {
        line(&render(row.clone()));
    }
}

pub fn demo_keys(tenant: &TenantId, keys: &[(UserId, String)]) {
    line("First start on an empty database: created demo API keys (shown once, stored only as hashes):");
    for (user, secret) in keys {
        line(&format!("  {tenant} / {user}: {secret}"));
    }
    line("Connect an MCP client with one of them: see README.md, \"Connect an MCP client\".");
}
