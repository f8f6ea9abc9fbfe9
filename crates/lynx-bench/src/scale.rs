//! `lynx-bench scale`: times the operations an operator or agent runs against a large database (seed it
//! first): `lynx status`, `/healthz`, `/api/status`, a draft list page and `audit.domain.run.read`.
//! Each is run repeatedly; the table gives the median and the slowest.

use std::{process::Command, time::Instant};

use serde_json::json;

use crate::{load::Mcp, run::{sibling, start}};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repetitions per operation.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
}

/// The audit rows in the database, from `lynx status --json`'s anchoring block.
fn audit_rows(cmd: &impl Fn(&[&str]) -> Command) -> Result<i64, String> {
    let o = cmd(&["status", "--json"]).output().map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).map_err(|e| format!("lynx status --json: {e}"))?;
    Ok(v["audit_anchors"].as_array().map(|a| a.iter().filter_map(|t| t["rows"].as_i64()).sum()).unwrap_or(0))
}

fn summary(name: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms[ms.len() / 2];
    let max = ms[ms.len() - 1];
    format!("| {name} | {median:.1} | {max:.1} | {} |\n", if max <= 50.0 { "≤ 50 ms ✓" } else { "over 50 ms" })
}

pub async fn scale(args: Args) -> Result<(), String> {
    let lynx = sibling("lynx")?;
    let env: Vec<(String, String)> = ["LYNX_DATABASE_URL", "LYNX_MODE", "PATH", "LYNX_AUDIT_SIGNING_KEY", "LYNX_AUDIT_CHECKPOINT_DIR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&lynx);
        c.args(args).env_clear().envs(env.iter().cloned()).env("LYNX_BIND", "127.0.0.1:0").env("LYNX_LOG", "warn");
        c
    };
    let key_out = cmd(&["keys", "create", "--tenant", "tenant-123", "--user", "agent-001", "--json"]).output().map_err(|e| e.to_string())?;
    let key: serde_json::Value = serde_json::from_slice(&key_out.stdout).map_err(|e| format!("keys create: {e}: {}", String::from_utf8_lossy(&key_out.stderr)))?;
    let key = key["api_key"].as_str().unwrap_or_default().to_string();

    let mut out = String::from("| Operation | Median ms | Slowest ms | Target |\n|---|---:|---:|---|\n");
    let mut status = Vec::new();
    for _ in 0..args.repeat {
        let t = Instant::now();
        let o = cmd(&["status"]).output().map_err(|e| e.to_string())?;
        status.push(t.elapsed().as_secs_f64() * 1000.0);
        if !o.status.success() {
            return Err(format!("lynx status failed: {}", String::from_utf8_lossy(&o.stdout)));
        }
    }
    out.push_str(&summary("`lynx status` (whole process)", status));

    let server = start(cmd(&["serve"]))?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build().map_err(|e| e.to_string())?;
    let mcp = Mcp::new(&server.base, Some(&key));
    let timed = |name: &'static str| name;
    for (name, path) in [(timed("`GET /healthz`"), "/healthz"), ("`GET /api/status`", "/api/status"), ("`GET /api/drafts?limit=50` (a draft list page)", "/api/drafts?limit=50")] {
        let mut ms = Vec::new();
        for _ in 0..args.repeat {
            let t = Instant::now();
            let r = http.get(format!("{}{path}", server.base)).bearer_auth(&key).send().await.map_err(|e| e.to_string())?;
            let ok = r.status().is_success();
            let _ = r.bytes().await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if !ok {
                return Err(format!("{path} failed"));
            }
        }
        out.push_str(&summary(name, ms));
    }
    let mut ms = Vec::new();
    for _ in 0..args.repeat {
        let t = Instant::now();
        let v = mcp.call("audit.domain.run.read", json!({"limit": 10})).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if v["total_count"].as_i64().unwrap_or(0) == 0 {
            return Err("audit.domain.run.read found no runs: seed the database first".into());
        }
    }
    out.push_str(&summary("`audit.domain.run.read` (MCP, limit 10, with total_count)", ms));
    let events = mcp.call("system.domain.health.read", json!({})).await?;
    out.push_str(&format!("\nPeak RSS of `lynx serve`: {:.1} MB. Queues seen: {}.\n", server.peak_rss_mb(), events["queues"]));
    drop(server);

    // Checkpointing: every tenant's tree built from its rows and signed (the first checkpoint of a
    // database reads every row; later ones only the rows since), then one more row and again.
    let timed_cmd = |args: &[&str]| -> Result<(f64, String), String> {
        let t = Instant::now();
        let o = cmd(args).output().map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !o.status.success() {
            return Err(format!("lynx {args:?} failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
        }
        Ok((ms, String::from_utf8_lossy(&o.stdout).to_string()))
    };
    let rows = audit_rows(&cmd)?;
    let (first, said) = timed_cmd(&["audit", "checkpoint"])?;
    let signed = said.matches("signed a checkpoint").count();
    timed_cmd(&["keys", "create", "--tenant", "tenant-123", "--user", "agent-001"])?;
    let (next, _) = timed_cmd(&["audit", "checkpoint"])?;
    out.push_str(&format!(
        "\n| Checkpointing (whole `lynx audit checkpoint` process) | ms |\n|---|---:|\n| first: {rows} rows, {signed} tenant trees built from scratch and signed | {first:.0} |\n| next: one new row | {next:.0} |\n"
    ));
    println!("{out}");
    Ok(())
}
