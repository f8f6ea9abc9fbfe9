//! The flood test, in a test binary of its own: it compares one tenant's latency with and without
//! another key flooding, so it must not share the machine's two cores with the other black-box tests
//! (cargo runs test binaries one after another).

#![allow(dead_code)]

#[path = "../e2e/contract.rs"]
mod contract;
#[path = "../e2e/helpers.rs"]
mod helpers;

use helpers::*;

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
}

/// One key floods at 64 connections for 5 s: it is limited, and another tenant's calls meanwhile keep a
/// p99 within 3× their idle p99 (both measured here, printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_key_is_limited_and_other_tenants_keep_their_latency() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (flooder, _) = sandbox.create_key("tenant-123", "agent-001");
    let (quiet, _) = sandbox.create_key("tenant-456", "agent-456");
    let server = sandbox.serve();
    let http = server.http();
    let tool = "tenant.domain.profile.read";
    let measure = |n: usize| {
        let (http, base, key) = (http.clone(), server.base.clone(), quiet.clone());
        async move {
            let mut times = Vec::new();
            for _ in 0..n {
                let t = std::time::Instant::now();
                let r = quick_call(&http, &base, &key, tool).await.unwrap();
                assert_ne!(r["isError"], true, "{r}");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            times
        }
    };
    let _warm = measure(20).await;
    let idle = p99(measure(300).await);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    let flood_started = std::time::Instant::now();
    for _ in 0..64 {
        let (http, base, key, stop) = (server.http(), server.base.clone(), flooder.clone(), stop.clone());
        flood.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match quick_call(&http, &base, &key, tool).await {
                    Some(r) if limited(&r) => refused += 1,
                    // Only answers count as admitted (a request that failed on the way is neither).
                    Some(r) if r["isError"] == false => ok += 1,
                    _ => {}
                }
            }
            (ok, refused)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let during = p99(measure(300).await);
    if flood_started.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_secs(5) - flood_started.elapsed()).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut refused) = (0, 0);
    for f in flood {
        let (o, r) = f.await.unwrap();
        ok += o;
        refused += r;
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    eprintln!("flood: {flood_secs:.1} s, {ok} admitted, {refused} refused; other tenant p99 idle {idle:.1} ms, during the flood {during:.1} ms ({:.2}x)", during / idle);
    // The default bucket: 100 calls/s with bursts of 200 (`limits::DEFAULT_RATES`).
    assert!(refused > 0, "the flooding key is limited");
    // The clock starts before the flooding clients are built: building 64 HTTP clients takes the debug
    // build one to one and a half seconds, during which the first ones already flood (a clock started
    // after the loop made a correct limiter look up to 12 % over its rate: 858–938 admitted in "5.9–6.5
    // s"; from the right start the same runs take 7.7–8.3 s). Checked against the audit rows: 100
    // admitted per second after the burst of 200.
    assert!((ok as f64) <= (100.0 * flood_secs + 200.0) * 1.1, "at most the key's rate is admitted: {ok} in {flood_secs:.1} s");
    // Measured 1.1–1.5x (debug binary, idle p99 4.6–5.5 ms). Loosened only at a 5 ms floor, below which a
    // single scheduling hiccup would decide the ratio.
    assert!(during <= 3.0 * idle.max(5.0), "the other tenant's p99 {during:.1} ms is more than 3x its idle p99 {idle:.1} ms");
}

