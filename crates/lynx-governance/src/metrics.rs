//! In-process counters for `/metrics`: tool calls by tool, layer and outcome, and latency histograms.
//! Lock-free atomics, one slot per registered tool (fixed at start-up), plus one for names that are no
//! tool. These are observations for operators, not state anything depends on.

use std::sync::atomic::{AtomicU64, Ordering};

use lynx_model::Layer;

use crate::registry::Registry;

/// Histogram bucket upper bounds, in seconds.
pub const BUCKETS: [f64; 13] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Succeeded, Outcome::Failed, Outcome::Denied];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(Default)]
struct Slot {
    outcomes: [AtomicU64; 3],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A snapshot of one tool's counters.
pub struct ToolSeries {
    pub tool: &'static str,
    pub layer: &'static str,
    pub outcomes: [(Outcome, u64); 3],
    /// Cumulative counts per bucket of `BUCKETS`.
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

pub struct Metrics {
    tools: Vec<(&'static str, Layer)>,
    slots: Vec<Slot>,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Self {
        let tools: Vec<(&'static str, Layer)> = registry.definitions().iter().map(|d| (d.id, d.layer)).collect();
        let slots = (0..=tools.len()).map(|_| Slot::default()).collect();
        Self { tools, slots }
    }

    pub fn observe(&self, tool_id: &str, outcome: Outcome, elapsed: std::time::Duration) {
        let i = self.tools.iter().position(|(id, _)| *id == tool_id).unwrap_or(self.tools.len());
        let slot = &self.slots[i];
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        slot.outcomes[o].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (b, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                slot.buckets[b].fetch_add(1, Ordering::Relaxed);
            }
        }
        slot.count.fetch_add(1, Ordering::Relaxed);
        slot.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Vec<ToolSeries> {
        let names = self.tools.iter().map(|(id, l)| (*id, l.as_str())).chain(std::iter::once(("(unknown)", "none")));
        names
            .zip(&self.slots)
            .map(|((tool, layer), s)| ToolSeries {
                tool,
                layer,
                outcomes: Outcome::ALL.map(|o| (o, s.outcomes[Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)].load(Ordering::Relaxed))),
                buckets: std::array::from_fn(|b| s.buckets[b].load(Ordering::Relaxed)),
                count: s.count.load(Ordering::Relaxed),
                sum_seconds: s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            })
            .collect()
    }
}
