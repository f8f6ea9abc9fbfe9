//! Live probes of the Kernel and storage, and the status report that `lynx status`, `/healthz`,
//! `/api/status` and `system.domain.health.read` share.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lynx_model::{
    Layer,
    store::{QueueCounts, RunFilter, RunSummary},
};
use serde::Serialize;

use crate::{maintenance, registry::Registry, services::Services};

/// How long a probe may take before the dependency counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Executions `STARTED` longer than this are reported as stuck.
pub const STUCK_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub reachable: bool,
    pub response_time_ms: f64,
    pub last_check: DateTime<Utc>,
    /// Why it is unreachable; empty when reachable.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub kernel: Probe,
    pub storage: Probe,
}

async fn timed<F, E>(services: &Services, f: F) -> Probe
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let result = tokio::time::timeout(PROBE_TIMEOUT, f).await;
    let response_time_ms = (start.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let (reachable, detail) = match result {
        Ok(Ok(())) => (true, String::new()),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (false, format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    };
    Probe { reachable, response_time_ms, last_check: services.clock.now(), detail }
}

pub async fn probe(services: &Services) -> Health {
    let kernel = timed(services, async { services.kernel.health().await.map(|_| ()) });
    let storage = timed(services, storage_round_trip(services));
    let (kernel, storage) = tokio::join!(kernel, storage);
    Health { kernel, storage }
}

/// The key of the one settings row the write probe rewrites.
const WRITE_PROBE_KEY: &str = "health.write_probe";

/// Storage counts as reachable only when it can be read and written: every call writes audit rows, so a
/// database that answers reads but refuses writes (disk full, read-only) serves nothing. The write is
/// one settings row rewritten in place — durable like any write, no audit row, no growth.
async fn storage_round_trip(services: &Services) -> Result<(), String> {
    services.store.ping().await.map_err(|e| e.to_string())?;
    let now = services.clock.now();
    services
        .store
        .put_setting(WRITE_PROBE_KEY, &now.to_rfc3339(), &services.runtime.instance_id, now)
        .await
        .map_err(|e| format!("cannot be written: {e}"))
}

/// Everything an operator's status view shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub version: String,
    pub tools_registered: usize,
    pub tools_by_layer: ToolCounts,
    pub tool_registry_hash: String,
    pub protocol_version: String,
    pub toolset_version: String,
    pub mode: String,
    pub maintenance_mode: bool,
    pub kernel: Probe,
    pub kernel_source: String,
    pub storage: Probe,
    pub storage_engine: String,
    pub storage_label: String,
    pub queues: Option<QueueCounts>,
    pub last_runs: Vec<RunSummary>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ToolCounts {
    pub domain: usize,
    pub cluster: usize,
    pub cell: usize,
}

impl StatusReport {
    pub fn healthy(&self) -> bool {
        self.kernel.reachable && self.storage.reachable
    }
}

/// The status across all tenants (for operators: `lynx status`, `/api/status` shows the caller's own runs).
pub async fn status(services: &Services, registry: &Registry, runs_of: Option<&lynx_model::TenantId>) -> StatusReport {
    let health = probe(services).await;
    let (queues, last_runs, maintenance_mode) = if health.storage.reachable {
        let stuck_before = services.clock.now() - STUCK_AFTER;
        let queues = services.store.queue_counts(runs_of, stuck_before).await.ok();
        let filter = RunFilter { tenant: runs_of.cloned(), limit: 5, ..Default::default() };
        let runs = services.store.runs(&filter).await.map(|(r, _)| r).unwrap_or_default();
        let maintenance = maintenance::state(services).await.map(|m| m.on).unwrap_or(services.runtime.maintenance_from_env);
        (queues, runs, maintenance)
    } else {
        (None, Vec::new(), services.runtime.maintenance_from_env)
    };
    StatusReport {
        version: services.runtime.version.clone(),
        tools_registered: registry.len(),
        tools_by_layer: ToolCounts {
            domain: registry.count(Layer::Domain),
            cluster: registry.count(Layer::Cluster),
            cell: registry.count(Layer::Cell),
        },
        tool_registry_hash: registry.version_hash().to_string(),
        protocol_version: services.runtime.protocol_version.clone(),
        toolset_version: services.runtime.toolset_version.clone(),
        mode: services.runtime.mode.to_string(),
        maintenance_mode,
        kernel: health.kernel,
        kernel_source: services.kernel.describe(),
        storage: health.storage,
        storage_engine: services.store.engine().to_string(),
        storage_label: services.runtime.storage_label.clone(),
        queues,
        last_runs,
    }
}
