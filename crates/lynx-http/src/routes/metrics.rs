//! `GET /metrics`: Prometheus text format. Counters and latency histograms of this instance's tool
//! calls; gauges read from the database at scrape time (shared by all instances). No tenant data and
//! no authentication, like `/healthz`.

use std::fmt::Write;

use axum::{extract::State, http::header, response::IntoResponse};
use chrono::Utc;
use lynx_governance::health::{STUCK_AFTER, probe};

use crate::AppState;

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// Prometheus label values escape backslash, quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(16 * 1024);
    let series = state.pipeline.metrics().snapshot();

    help(&mut out, "lynx_tool_calls_total", "counter", "Tool calls by tool, layer and outcome (this instance).");
    for s in &series {
        for (outcome, n) in s.outcomes {
            let _ = writeln!(out, "lynx_tool_calls_total{{tool=\"{}\",layer=\"{}\",outcome=\"{}\"}} {n}", label(s.tool), s.layer, outcome.as_str());
        }
    }
    help(&mut out, "lynx_tool_call_duration_seconds", "histogram", "Tool call latency through the whole pipeline, audit included.");
    for s in series.iter().filter(|s| s.count > 0) {
        let (tool, layer) = (label(s.tool), s.layer);
        for (bound, n) in lynx_governance::metrics::BUCKETS.iter().zip(s.buckets) {
            let _ = writeln!(out, "lynx_tool_call_duration_seconds_bucket{{tool=\"{tool}\",layer=\"{layer}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "lynx_tool_call_duration_seconds_bucket{{tool=\"{tool}\",layer=\"{layer}\",le=\"+Inf\"}} {}", s.count);
        let _ = writeln!(out, "lynx_tool_call_duration_seconds_sum{{tool=\"{tool}\",layer=\"{layer}\"}} {}", s.sum_seconds);
        let _ = writeln!(out, "lynx_tool_call_duration_seconds_count{{tool=\"{tool}\",layer=\"{layer}\"}} {}", s.count);
    }

    let services = state.pipeline.services();
    help(&mut out, "lynx_rate_limited_total", "counter", "Calls and API requests refused by a call limit, by limit (this instance).");
    for scope in [lynx_governance::limits::Scope::Key, lynx_governance::limits::Scope::Tenant] {
        let _ = writeln!(out, "lynx_rate_limited_total{{limit=\"{}\"}} {}", scope.as_str(), services.limits.refused_total(scope));
    }
    let health = probe(services).await;
    help(&mut out, "lynx_kernel_up", "gauge", "1 when the Kernel answers its health probe.");
    let _ = writeln!(out, "lynx_kernel_up {}", u8::from(health.kernel.reachable));
    help(&mut out, "lynx_storage_up", "gauge", "1 when the database answers.");
    let _ = writeln!(out, "lynx_storage_up {}", u8::from(health.storage.reachable));
    if health.storage.reachable {
        if let Ok(counts) = services.store.execution_counts(None).await {
            help(&mut out, "lynx_executions", "gauge", "Executions in the database by status.");
            for (status, n) in [("STARTED", counts.started), ("SUCCEEDED", counts.succeeded), ("FAILED", counts.failed), ("DENIED", counts.denied)] {
                let _ = writeln!(out, "lynx_executions{{status=\"{status}\"}} {n}");
            }
        }
        if let Ok(q) = services.store.queue_counts(None, Utc::now() - STUCK_AFTER).await {
            help(&mut out, "lynx_pending_approvals", "gauge", "Drafts waiting in SUBMITTED.");
            let _ = writeln!(out, "lynx_pending_approvals {}", q.pending_approvals);
            help(&mut out, "lynx_queued_settlements", "gauge", "Settlement intents in status queued.");
            let _ = writeln!(out, "lynx_queued_settlements {}", q.queued_settlements);
            help(&mut out, "lynx_stuck_executions", "gauge", "Executions STARTED for more than an hour.");
            let _ = writeln!(out, "lynx_stuck_executions {}", q.stuck_executions);
        }
        if let Ok(d) = services.store.delivery_counts().await {
            help(&mut out, "lynx_webhook_deliveries", "gauge", "Webhook deliveries by state: queued (no attempt yet), failing (being retried), dead (dead-lettered).");
            for (state, n) in [("queued", d.queued), ("failing", d.failing), ("dead", d.dead)] {
                let _ = writeln!(out, "lynx_webhook_deliveries{{state=\"{state}\"}} {n}");
            }
        }
    }
    help(&mut out, "lynx_info", "gauge", "This instance's version and mode.");
    let rt = &services.runtime;
    let _ = writeln!(out, "lynx_info{{version=\"{}\",mode=\"{}\",instance=\"{}\"}} 1", label(&rt.version), rt.mode, label(&rt.instance_id));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}
