//! `lynx status`: the runbook's status block with live values, or `--json`. Exits non-zero when the
//! Kernel or storage cannot be reached, so scripts and monitors can rely on the exit code.

use std::process::ExitCode;

use lynx_governance::{
    checkpoints,
    health::{self, Probe, StatusReport, ToolCounts},
};
use lynx_model::Layer;

use crate::{
    cli::output,
    configuration::Settings,
    startup::{self, Fatal},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, args: Args) -> Result<ExitCode, Fatal> {
    let (report, anchors) = match startup::services(settings, startup::Role::Command).await {
        Ok(services) => {
            let pipeline = startup::pipeline(services);
            let report = health::status(pipeline.services(), pipeline.registry(), None).await;
            (report, checkpoints::anchor_status(pipeline.services().store.as_ref(), None).await.unwrap_or_default())
        }
        // Storage could not be opened: still report everything else, with storage down.
        Err(Fatal(why)) => (storage_down_report(settings, why).await?, Vec::new()),
    };
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        value["healthy"] = serde_json::json!(report.healthy());
        value["audit_anchors"] = serde_json::json!(anchors);
        output::json(&value);
    } else {
        render(&report, &anchors);
    }
    Ok(if report.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn storage_down_report(settings: &Settings, why: String) -> Result<StatusReport, Fatal> {
    let kernel = startup::kernel(settings)?;
    let registry = lynx_tools::registry();
    let started = std::time::Instant::now();
    let kernel_result = kernel.health().await;
    let now = chrono::Utc::now();
    let probe = |reachable: bool, detail: String, ms: f64| Probe { reachable, response_time_ms: ms, last_check: now, detail };
    Ok(StatusReport {
        version: startup::VERSION.into(),
        tools_registered: registry.len(),
        tools_by_layer: ToolCounts {
            domain: registry.count(Layer::Domain),
            cluster: registry.count(Layer::Cluster),
            cell: registry.count(Layer::Cell),
        },
        tool_registry_hash: registry.version_hash().into(),
        protocol_version: settings.protocol_version.clone(),
        toolset_version: settings.toolset_version.clone(),
        mode: settings.mode.to_string(),
        maintenance_mode: settings.maintenance,
        kernel: match kernel_result {
            Ok(_) => probe(true, String::new(), started.elapsed().as_secs_f64() * 1000.0),
            Err(e) => probe(false, e.to_string(), started.elapsed().as_secs_f64() * 1000.0),
        },
        kernel_source: kernel.describe(),
        storage: probe(false, why, 0.0),
        storage_engine: settings.database.describe(),
        storage_label: startup::storage_label(settings),
        queues: None,
        last_runs: Vec::new(),
    })
}

fn render_anchors(anchors: &[checkpoints::AnchorStatus]) {
    if anchors.is_empty() {
        return;
    }
    let l = output::line;
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    l("");
    l("Audit Checkpoints:");
    for a in anchors {
        let checkpoint = match (a.checkpoint_size, a.checkpoint_at) {
            (Some(size), Some(at)) => format!("checkpoint of {size} rows at {}", when(at)),
            _ => "no signed checkpoint yet".into(),
        };
        let verified = match (a.verified_at, a.verified_checkpoint_size) {
            (Some(at), Some(size)) => format!("verified against checkpoint {size} at {}", when(at)),
            (Some(at), None) => format!("chain verified at {}", when(at)),
            (None, _) => "never verified".into(),
        };
        l(&format!("- {}: {} rows; {checkpoint}; {verified}", a.tenant_id, a.rows));
    }
}

fn reachability(p: &Probe) -> String {
    if p.reachable {
        format!("✅ Reachable ({:.1} ms)", p.response_time_ms)
    } else {
        format!("❌ Unreachable ({})", p.detail)
    }
}

fn render(r: &StatusReport, anchors: &[checkpoints::AnchorStatus]) {
    let l = output::line;
    l("Lynx AI Status");
    l("==============");
    let by = &r.tools_by_layer;
    l(&format!(
        "Tool Registry: {} tools registered ({} Domain, {} Cluster, {} Cell)",
        r.tools_registered, by.domain, by.cluster, by.cell
    ));
    l(&format!("Protocol Version: {}", r.protocol_version));
    l(&format!("Toolset Version: {}", r.toolset_version));
    l("");
    l(&format!("Kernel API: {} — {}", reachability(&r.kernel), r.kernel_source));
    l(&format!("{}: {}", r.storage_label, reachability(&r.storage)));
    l(&format!("Mode: {}", r.mode));
    l(&format!("Maintenance Mode: {}", if r.maintenance_mode { "ON (cell tools refused)" } else { "off" }));
    if let Some(q) = &r.queues {
        l(&format!(
            "Queues: {} pending approvals, {} queued settlements, {} stuck executions",
            q.pending_approvals, q.queued_settlements, q.stuck_executions
        ));
    }
    render_anchors(anchors);
    l("");
    l("Last 5 Runs:");
    if r.last_runs.is_empty() {
        l("- (no runs yet)");
    }
    for (i, run) in r.last_runs.iter().enumerate() {
        l(&format!(
            "- Run {}: {} ({}) {} by {} in {} [run_id {}]",
            i + 1,
            run.status,
            run.completed_at.unwrap_or(run.started_at).format("%Y-%m-%d %H:%M:%S"),
            run.tool_id,
            run.actor_id,
            run.tenant_id,
            run.run_id
        ));
    }
}
