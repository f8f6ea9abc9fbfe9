//! The runbook's four monitoring metrics with their alert thresholds, computed from the database:
//! execution success rate (< 95 %), mean SUBMITTED→APPROVED time (> 24 h), failure rate (> 5 %) and
//! queued settlements (> 100). Shared by `lynx metrics`, the dashboard and `/api/status`.

use lynx_model::{Refusal, TenantId};
use serde::Serialize;

use crate::{services::Services};

#[derive(Debug, Clone, Serialize)]
pub struct Monitored {
    pub name: &'static str,
    /// The value, or `None` when there is nothing to measure yet (no executions, no approvals).
    pub value: Option<f64>,
    pub display: String,
    /// The alert rule, as the runbook states it.
    pub alert_when: &'static str,
    pub breached: bool,
}

pub async fn runbook_metrics(services: &Services, tenant: Option<&TenantId>) -> Result<Vec<Monitored>, Refusal> {
    let m = services.store.monitoring(tenant).await?;
    let c = m.executions;
    let finished = c.succeeded + c.failed + c.denied;
    let pct = |n: i64| (finished > 0).then(|| 100.0 * n as f64 / finished as f64);
    let success = pct(c.succeeded);
    let failure = pct(c.failed);
    let hours = m.mean_approval_seconds.map(|s| s / 3600.0);
    let show_pct = |v: Option<f64>| v.map(|v| format!("{v:.1} % of {finished} finished executions")).unwrap_or_else(|| "no finished executions yet".into());
    Ok(vec![
        Monitored {
            name: "Execution success rate",
            value: success,
            display: show_pct(success),
            alert_when: "success rate < 95 %",
            breached: success.is_some_and(|v| v < 95.0),
        },
        Monitored {
            name: "Draft approval time",
            value: hours,
            display: hours.map(|h| format!("{h:.2} h mean from SUBMITTED to APPROVED")).unwrap_or_else(|| "no approved drafts yet".into()),
            alert_when: "mean > 24 hours",
            breached: hours.is_some_and(|h| h > 24.0),
        },
        Monitored {
            name: "Failed executions",
            value: failure,
            display: format!("{} failed; {}", c.failed, show_pct(failure)),
            alert_when: "failure rate > 5 %",
            breached: failure.is_some_and(|v| v > 5.0),
        },
        Monitored {
            name: "Pending settlements",
            value: Some(m.queued_settlements as f64),
            display: format!("{} queued", m.queued_settlements),
            alert_when: "queue size > 100",
            breached: m.queued_settlements > 100,
        },
    ])
}
