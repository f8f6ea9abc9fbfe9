//! `GET /healthz`: liveness and dependency reachability for load balancers. No tenant data, no auth;
//! `200` unless storage is down (`503`).

use axum::{Json, extract::State, http::StatusCode};
use lynx_governance::health::{Probe, probe};
use serde_json::{Value, json};

use crate::AppState;

fn check(p: &Probe) -> Value {
    json!({
        "status": if p.reachable { "up" } else { "down" },
        "response_time_ms": p.response_time_ms,
    })
}

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let services = state.pipeline.services();
    let health = probe(services).await;
    let (status, code) = match (health.storage.reachable, health.kernel.reachable) {
        (false, _) => ("down", StatusCode::SERVICE_UNAVAILABLE),
        (true, false) => ("degraded", StatusCode::OK),
        (true, true) => ("ok", StatusCode::OK),
    };
    let mut storage = check(&health.storage);
    storage["label"] = json!(services.runtime.storage_label);
    let body = json!({
        "status": status,
        "checks": {"storage": storage, "kernel": check(&health.kernel)},
        "version": services.runtime.version,
    });
    (code, Json(body))
}
