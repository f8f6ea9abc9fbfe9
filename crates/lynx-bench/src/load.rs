//! The load generator: N concurrent workers, each on its own keep-alive connection, issuing one
//! operation after another for a fixed time; latencies are recorded per operation.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

#[derive(Default)]
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    /// Two measurements of the same thing as one: their calls, errors, time and latencies together.
    pub fn merge(mut self, other: Outcome) -> Outcome {
        self.ops += other.ops;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self
    }
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }
}

/// The `p` quantile (0–1) of latencies in microseconds, in milliseconds; NaN when there are none.
fn percentile_ms(latencies_us: &[u64], p: f64) -> f64 {
    if latencies_us.is_empty() {
        return f64::NAN;
    }
    let mut v = latencies_us.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// An MCP client over plain HTTP: stateless `tools/call` requests, JSON answers.
#[derive(Clone)]
pub struct Mcp {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    ids: Arc<AtomicU64>,
}

impl Mcp {
    pub fn new(base: &str, key: Option<&str>) -> Self {
        let http = reqwest::Client::builder().tcp_nodelay(true).build().expect("http client");
        Self { http, url: format!("{base}/mcp"), key: key.map(str::to_string), ids: Arc::new(AtomicU64::new(1)) }
    }

    /// One `tools/call`; `Ok` with the structured result unless the call failed or was refused.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, String> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| format!("HTTP {status}: {e}"))?;
        let result = &body["result"];
        if result.is_null() || result["isError"] == json!(true) {
            return Err(format!("{tool}: {}", body));
        }
        Ok(result["structuredContent"].clone())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Runs `op` from `concurrency` workers for `duration`; each worker gets its own `make()` state.
pub async fn drive<S, F, Fut>(concurrency: usize, duration: Duration, make: impl Fn(usize) -> S, op: F) -> Outcome
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (state, op, errors) = (Arc::new(make(w)), op.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut first_error = None;
            while Instant::now() < deadline {
                let t = Instant::now();
                match op(state.clone()).await {
                    Ok(()) => latencies.push(t.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, first_error)
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        let (l, e) = t.await.expect("worker");
        if let Some(e) = e {
            eprintln!("  first error of a worker: {}", e.chars().take(300).collect::<String>());
        }
        latencies_us.extend(l);
    }
    let elapsed = start.elapsed();
    Outcome { ops: latencies_us.len() as u64, errors: errors.load(Ordering::Relaxed), elapsed, latencies_us }
}

/// One full lifecycle: create a payment draft, submit it, approve it as another user over the HTTP API,
/// execute it.
pub async fn lifecycle(m: &Mcp, approver: &str, base: &str) -> Result<(), String> {
    let d = m.call("vpm.cluster.payment.draft.create", json!({"vendor_id": "V-001", "amount": "20.00", "due_date": "2026-12-31"})).await?;
    let id = d["draft_id"].as_str().ok_or("no draft_id")?.to_string();
    m.call("docs.cell.draft.submit_for_approval", json!({"draft_id": id})).await?;
    let r = m.http().post(format!("{base}/api/drafts/{id}/approve")).bearer_auth(approver).json(&json!({})).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("approve: HTTP {}", r.status()));
    }
    m.call("vpm.cell.payment.execute", json!({"draft_id": id})).await.map(|_| ())
}

/// Latencies of an open-loop run, in microseconds, measured from each request's scheduled send time.
#[derive(Default)]
pub struct OpenLoop {
    pub offered: u64,
    pub ok: u64,
    pub errors: u64,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
    /// The sending window (`offered` requests were scheduled evenly over it).
    pub window: Duration,
    pub latencies_us: Vec<u64>,
    /// The first error's text, to say what the errors were.
    pub first_error: Option<String>,
}

impl OpenLoop {
    pub fn merge(mut self, other: OpenLoop) -> OpenLoop {
        self.offered += other.offered;
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.window += other.window;
        self.latencies_us.extend(other.latencies_us);
        self.first_error = self.first_error.or(other.first_error);
        self
    }
    /// Answers per second over the time it took to get them (a server that falls behind answers after
    /// the window closes, which lowers this below the offered rate).
    pub fn achieved_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(self.window.as_secs_f64())
    }
    pub fn offered_per_second(&self) -> f64 {
        self.offered as f64 / self.window.as_secs_f64()
    }
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }
    pub fn max_ms(&self) -> f64 {
        self.latencies_us.iter().copied().max().map_or(f64::NAN, |us| us as f64 / 1000.0)
    }
}

/// More requests in flight than this and the run counts the rest as errors instead of piling on.
const MAX_IN_FLIGHT: u64 = 20_000;

/// Open loop, as wrk2 and oha do it: `rate` operations per second for `duration`, each sent at its
/// scheduled time whether or not earlier ones have been answered, and its latency measured from that
/// scheduled time — so a stall counts against every request that should have been sent during it
/// (coordinated omission corrected), not only the one that was waiting.
pub async fn drive_at_rate<F, Fut>(rate: f64, duration: Duration, op: F) -> OpenLoop
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Result<(), String>, u64, Instant)>();
    let in_flight = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(5);
    let mut skipped = 0;
    let mut sent = 0u64;
    while sent < total {
        // The timer's resolution is a millisecond: send everything due by now, then wait for the next.
        let now = Instant::now();
        while sent < total && start + interval.mul_f64(sent as f64) <= now {
            let scheduled = start + interval.mul_f64(sent as f64);
            sent += 1;
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                skipped += 1;
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (fut, tx, in_flight) = (op(), tx.clone(), in_flight.clone());
            tokio::spawn(async move {
                let result = fut.await;
                let done = Instant::now();
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send((result, done.duration_since(scheduled).as_micros() as u64, done));
            });
        }
        if sent < total {
            tokio::time::sleep_until((start + interval.mul_f64(sent as f64)).into()).await;
        }
    }
    drop(tx);
    let mut out = OpenLoop { offered: total, errors: skipped, window: duration, ..Default::default() };
    if skipped > 0 {
        out.first_error = Some(format!("{skipped} requests not sent: {MAX_IN_FLIGHT} were in flight"));
    }
    let mut last = start;
    while let Some((result, latency, done)) = rx.recv().await {
        last = last.max(done);
        match result {
            Ok(()) => {
                out.ok += 1;
                out.latencies_us.push(latency);
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out.elapsed = last.saturating_duration_since(start);
    out
}
