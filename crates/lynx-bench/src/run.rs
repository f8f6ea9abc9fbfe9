//! `lynx-bench run`: one run, both servers. Starts the baseline and Lynx (SQLite, and PostgreSQL when a
//! server is given) from the release build next to this binary, drives each scenario at each
//! concurrency level with the same load generator, and prints calls/s, p50, p99, errors, peak RSS and
//! Lynx ÷ baseline (the baseline measured in slices alternating with Lynx's domain reads, see `SLICES`).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    cpu::{self, Meter, Spent},
    load::{Mcp, OpenLoop, Outcome, drive, drive_at_rate},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<usize>,
    /// Seconds per scenario and level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Also run on PostgreSQL: a server URL on which a fresh database may be created.
    #[arg(long, env = "LYNX_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Write the result table (Markdown) to this file as well.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Open loop instead: offer these many calls per second (a lifecycle counts as its four calls),
    /// sent on a schedule whatever the answers, latency from the scheduled send time; baseline and Lynx
    /// alternate in slices at the same rate, and the table shows Lynx's added p99.
    #[arg(long, value_delimiter = ',')]
    rate: Vec<u32>,
    /// Several instances instead: this many `lynx serve` on one PostgreSQL database (`--postgres`), the
    /// clients spread over them, against one instance in alternating slices; then `lynx audit verify`.
    #[arg(long)]
    instances: Option<usize>,
    /// The scenarios `--rate` and `--instances` run (all three unless given).
    #[arg(long, value_delimiter = ',', default_value = "read,draft,lifecycle")]
    scenarios: Vec<Scenario>,
    /// The engines to measure: SQLite, and PostgreSQL when `--postgres` is given, unless narrowed here.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    engines: Vec<EngineName>,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum EngineName {
    Sqlite,
    Postgres,
}

impl Args {
    /// The engines this run measures, as `environment` takes them: `None` is SQLite, `Some(url)` a
    /// PostgreSQL server.
    fn engines(&self) -> Vec<Option<&str>> {
        let sqlite = self.engines.contains(&EngineName::Sqlite).then_some(None);
        let postgres = self.postgres.as_deref().filter(|_| self.engines.contains(&EngineName::Postgres)).map(Some);
        sqlite.into_iter().chain(postgres).collect()
    }
}

pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Peak resident memory (VmHWM) so far, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

pub fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() { Ok(path) } else { Err(format!("{} not found: build it first (cargo build --release -p lynx -p lynx-bench)", path.display())) }
}

/// Starts a process that prints `listening on http://ADDR` and returns once it does.
pub fn start(mut cmd: Command) -> Result<Proc, String> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the server exited before listening".into());
        }
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
            std::thread::spawn(move || for _ in reader.lines() {});
            return Ok(Proc { child, base: format!("http://{addr}") });
        }
    }
}

pub struct Lynx {
    pub env: Vec<(String, String)>,
    pub _dir: tempfile::TempDir,
    pub label: String,
    /// PostgreSQL: the run's own database, dropped with it.
    pub _db: Option<lynx_store::scratch::ScratchDatabase>,
}

impl Lynx {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sibling("lynx").expect("lynx binary"));
        cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        // One key's thousands of calls a second must not be refused by the call limits (a run can still
        // set them: `LYNX_RATE_LIMIT_*` pass through into `self.env`, which comes after).
        for limit in ["LYNX_RATE_LIMIT_KEY_PER_SECOND", "LYNX_RATE_LIMIT_TENANT_PER_MINUTE"] {
            cmd.env(limit, "0");
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn key(&self, tenant: &str, user: &str) -> Result<String, String> {
        let out = self.command(&["keys", "create", "--tenant", tenant, "--user", user, "--json"]).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        Ok(v["api_key"].as_str().unwrap_or_default().to_string())
    }
}

/// A fresh Lynx environment on SQLite, or on a new PostgreSQL database.
pub async fn environment(postgres: Option<&str>) -> Result<Lynx, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (url, label, db) = match postgres {
        None => (format!("sqlite://{}", dir.path().join("bench.db").display()), "SQLite".to_string(), None),
        Some(admin) => {
            let db = lynx_store::scratch::ScratchDatabase::create(admin, "lynx_bench").await.map_err(|e| e.to_string())?;
            (db.url().to_string(), "PostgreSQL".to_string(), Some(db))
        }
    };
    let mut env = vec![
        ("LYNX_DATABASE_URL".to_string(), url),
        ("LYNX_BIND".into(), "127.0.0.1:0".into()),
        ("LYNX_MODE".into(), "dev".into()),
        ("LYNX_LOG".into(), "warn".into()),
    ];
    // Checkpoint and call-limit settings pass through, to measure Lynx with each on and off.
    for k in [
        "LYNX_AUDIT_SIGNING_KEY",
        "LYNX_AUDIT_CHECKPOINT_DIR",
        "LYNX_AUDIT_CHECKPOINT_INTERVAL",
        "LYNX_RATE_LIMIT_KEY_PER_SECOND",
        "LYNX_RATE_LIMIT_KEY_BURST",
        "LYNX_RATE_LIMIT_TENANT_PER_MINUTE",
        "LYNX_LOG",
    ] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    Ok(Lynx { env, _dir: dir, label, _db: db })
}

/// The baseline server: this binary's `baseline` subcommand.
fn start_baseline() -> Result<Proc, String> {
    let mut c = Command::new(sibling("lynx-bench")?);
    c.args(["baseline"]);
    start(c)
}

/// This machine's cores, for the tables' notes.
fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}

/// `lynx audit verify` on the run's database, as a line for the table's notes.
fn verified(lynx: &Lynx) -> Result<String, String> {
    let verify = lynx.command(&["audit", "verify"]).output().map_err(|e| e.to_string())?;
    Ok(format!("{}: `lynx audit verify` after the run: {}", lynx.label, if verify.status.success() { "passed" } else { "FAILED" }))
}

/// Prints the result table, and writes it to `--markdown` when given.
fn publish(text: &str, markdown: Option<&std::path::Path>) -> Result<(), String> {
    println!("{text}");
    if let Some(path) = markdown {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Time from spawning `lynx serve` on an empty database to the first healthy `/healthz`.
async fn startup_ms(lynx: &Lynx) -> Result<f64, String> {
    let started = Instant::now();
    let server = start(lynx.command(&["serve"]))?;
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await
            && r.status().is_success()
        {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("Lynx did not become healthy within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub struct Row {
    pub engine: String,
    pub scenario: &'static str,
    pub concurrency: usize,
    pub outcome: Outcome,
    pub rss_mb: f64,
    pub ratio: Option<f64>,
    /// The CPU the server (and PostgreSQL, when it runs here) spent while the row was measured.
    pub cpu: Spent,
}

fn table(rows: &[Row], extra: &[String]) -> String {
    let mut out = String::from(
        "| Engine | Scenario | Concurrency | Ops/s | p50 ms | p99 ms | Errors | Peak RSS MB | Lynx ÷ baseline | Server CPU ms/op | PostgreSQL CPU ms/op |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.1} | {} | {} | {} |\n",
            r.engine,
            r.scenario,
            r.concurrency,
            r.outcome.per_second(),
            r.outcome.percentile_ms(0.50),
            r.outcome.percentile_ms(0.99),
            r.outcome.errors,
            r.rss_mb,
            r.ratio.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into()),
            cpu::per_op(Some(r.cpu.server), r.outcome.ops),
            cpu::per_op(r.cpu.postgres, r.outcome.ops),
        ));
    }
    for line in extra {
        out.push_str(&format!("\n{line}"));
    }
    out
}

/// The domain read and the baseline are measured in alternating slices of this many rounds: the
/// machine's speed drifts (other tenants of the host, CPU boost), and alternating lets both see the
/// same drift, so their ratio is steadier than from two measurements taken one after the other.
const SLICES: u32 = 5;

pub async fn run(args: Args) -> Result<(), String> {
    if !args.rate.is_empty() {
        return open_loop(args).await;
    }
    if let Some(n) = args.instances {
        return several_instances(args, n).await;
    }
    let duration = Duration::from_secs(args.seconds);
    let slice = duration / SLICES;
    let baseline = start_baseline()?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    for engine in args.engines() {
        let lynx = environment(engine).await?;
        let started = startup_ms(&lynx).await?;
        notes.push(format!("{}: start to healthy /healthz on an empty database: {started:.0} ms", lynx.label));
        let agent = lynx.key("tenant-123", "agent-001")?;
        let approver = lynx.key("tenant-123", "approver-001")?;
        let server = start(lynx.command(&["serve"]))?;
        let base = server.base.clone();
        let on_postgres = engine.is_some();
        for &c in &args.concurrency {
            let m = Mcp::new(&base, Some(&agent));
            let echo = Mcp::new(&baseline.base, None);
            let (mut bare, mut read) = (Outcome::default(), Outcome::default());
            let (mut bare_cpu, mut read_cpu) = (Spent::default(), Spent::default());
            for _ in 0..SLICES {
                let meter = Meter::start(baseline.child.id(), false);
                bare = bare.merge(drive(c, slice, |_| echo.clone(), |m: Arc<Mcp>| async move { m.call("echo", json!({})).await.map(|_| ()) }).await);
                bare_cpu = bare_cpu.add(meter.spent());
                let meter = Meter::start(server.child.id(), on_postgres);
                read = read.merge(
                    drive(c, slice, |_| m.clone(), |m: Arc<Mcp>| async move {
                        m.call("tenant.domain.profile.read", json!({})).await.map(|_| ())
                    })
                    .await,
                );
                read_cpu = read_cpu.add(meter.spent());
            }
            let ratio = Some(read.per_second() / bare.per_second());
            eprintln!("baseline c={c} (alternating with {}): {:.0}/s", lynx.label, bare.per_second());
            eprintln!("{} domain read c={c}: {:.0}/s", lynx.label, read.per_second());
            rows.push(Row {
                engine: "—".into(),
                scenario: if lynx.label == "SQLite" { "baseline: trivial tool, no governance (alternating with SQLite reads)" } else { "baseline: trivial tool, no governance (alternating with PostgreSQL reads)" },
                concurrency: c,
                rss_mb: baseline.peak_rss_mb(),
                outcome: bare,
                ratio: None,
                cpu: bare_cpu,
            });
            rows.push(Row { engine: lynx.label.clone(), scenario: "domain read (tenant.domain.profile.read)", concurrency: c, rss_mb: server.peak_rss_mb(), outcome: read, ratio, cpu: read_cpu });

            let meter = Meter::start(server.child.id(), on_postgres);
            let drafts = drive(c, duration, |_| m.clone(), |m: Arc<Mcp>| async move {
                m.call("vpm.cluster.payment.draft.create", json!({"vendor_id": "V-001", "amount": "10.00", "due_date": "2026-12-31"})).await.map(|_| ())
            })
            .await;
            eprintln!("{} draft creation c={c}: {:.0}/s", lynx.label, drafts.per_second());
            rows.push(Row { engine: lynx.label.clone(), scenario: "draft creation", concurrency: c, rss_mb: server.peak_rss_mb(), outcome: drafts, ratio: None, cpu: meter.spent() });

            let approver = approver.clone();
            let base2 = base.clone();
            let meter = Meter::start(server.child.id(), on_postgres);
            let lifecycle = drive(c, duration, |_| (m.clone(), approver.clone(), base2.clone()), |s: Arc<(Mcp, String, String)>| async move {
                crate::load::lifecycle(&s.0, &s.1, &s.2).await
            })
            .await;
            eprintln!("{} lifecycle c={c}: {:.0}/s", lynx.label, lifecycle.per_second());
            let cpu = meter.spent();
            rows.push(Row { engine: lynx.label.clone(), scenario: "full lifecycle (create → submit → approve → execute)", concurrency: c, rss_mb: server.peak_rss_mb(), outcome: lifecycle, ratio: None, cpu });
        }
        drop(server);
        notes.push(verified(&lynx)?);
    }
    notes.push(format!(
        "Machine: {} cores; {} s per scenario and level; one load-generator process on the same machine.",
        cores(),
        args.seconds
    ));
    publish(&table(&rows, &notes), args.markdown.as_deref())
}

/// What the open loop offers at a rate, and several instances serve.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scenario {
    Read,
    Draft,
    Lifecycle,
}

impl Scenario {
    /// The scenario's name in open-loop tables, where a lifecycle counts as its four calls.
    fn label(self) -> &'static str {
        match self {
            Scenario::Lifecycle => "full lifecycle (rate ÷ 4 lifecycles/s)",
            other => other.name(),
        }
    }

    /// The scenario's name in closed-loop tables, where a lifecycle is one operation.
    fn name(self) -> &'static str {
        match self {
            Scenario::Read => "domain read (tenant.domain.profile.read)",
            Scenario::Draft => "draft creation",
            Scenario::Lifecycle => "full lifecycle (create → submit → approve → execute; approved through the next instance)",
        }
    }

    /// Operations per second at `rate` calls per second: a lifecycle is four calls.
    fn per_second(self, rate: u32) -> f64 {
        match self {
            Scenario::Lifecycle => f64::from(rate) / 4.0,
            _ => f64::from(rate),
        }
    }

    async fn once(self, m: &Mcp, approver: &str, base: &str) -> Result<(), String> {
        match self {
            Scenario::Read => m.call("tenant.domain.profile.read", json!({})).await.map(|_| ()),
            Scenario::Draft => {
                m.call("vpm.cluster.payment.draft.create", json!({"vendor_id": "V-001", "amount": "10.00", "due_date": "2026-12-31"})).await.map(|_| ())
            }
            Scenario::Lifecycle => crate::load::lifecycle(m, approver, base).await,
        }
    }
}

/// One open-loop result: Lynx at a rate, and the baseline at the same call rate in alternating slices.
struct RateRow {
    engine: String,
    scenario: &'static str,
    rate: u32,
    lynx: OpenLoop,
    bare: OpenLoop,
}

fn rate_table(rows: &[RateRow], notes: &[String]) -> String {
    let mut out = String::from(
        "| Engine | Scenario | Calls/s offered | Achieved % | p50 ms | p99 ms | p99.9 ms | max ms | Errors | Baseline p99 ms | Added p99 ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.2} | {:.2} |\n",
            r.engine,
            r.scenario,
            r.rate,
            100.0 * r.lynx.achieved_per_second() / r.lynx.offered_per_second(),
            r.lynx.percentile_ms(0.50),
            r.lynx.percentile_ms(0.99),
            r.lynx.percentile_ms(0.999),
            r.lynx.max_ms(),
            r.lynx.errors,
            r.bare.percentile_ms(0.99),
            r.lynx.percentile_ms(0.99) - r.bare.percentile_ms(0.99),
        ));
    }
    for line in notes {
        out.push_str(&format!("\n{line}"));
    }
    out
}

/// `--rate`: each scenario at each offered rate, open loop, alternating with the baseline.
async fn open_loop(args: Args) -> Result<(), String> {
    let slice = Duration::from_secs(args.seconds) / SLICES;
    let baseline = start_baseline()?;
    let echo = Mcp::new(&baseline.base, None);
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    for engine in args.engines() {
        let lynx = environment(engine).await?;
        let agent = lynx.key("tenant-123", "agent-001")?;
        let approver = lynx.key("tenant-123", "approver-001")?;
        let server = start(lynx.command(&["serve"]))?;
        let m = Mcp::new(&server.base, Some(&agent));
        for &rate in &args.rate {
            for &scenario in &args.scenarios {
                let (mut bare, mut measured) = (OpenLoop::default(), OpenLoop::default());
                for _ in 0..SLICES {
                    bare = bare.merge(
                        drive_at_rate(f64::from(rate), slice, || {
                            let e = echo.clone();
                            async move { e.call("echo", json!({})).await.map(|_| ()) }
                        })
                        .await,
                    );
                    measured = measured.merge(
                        drive_at_rate(scenario.per_second(rate), slice, || {
                            let (m, approver, base) = (m.clone(), approver.clone(), server.base.clone());
                            async move { scenario.once(&m, &approver, &base).await }
                        })
                        .await,
                    );
                }
                eprintln!(
                    "{} {} at {rate}/s: p99 {:.2} ms (baseline {:.2} ms), {} errors{}",
                    lynx.label,
                    scenario.label(),
                    measured.percentile_ms(0.99),
                    bare.percentile_ms(0.99),
                    measured.errors,
                    measured.first_error.as_deref().map(|e| format!(", the first: {}", e.chars().take(300).collect::<String>())).unwrap_or_default()
                );
                rows.push(RateRow { engine: lynx.label.clone(), scenario: scenario.label(), rate, lynx: measured, bare });
            }
        }
        drop(server);
        notes.push(verified(&lynx)?);
    }
    notes.push(format!(
        "Open loop: requests sent on schedule whatever the answers, latency from the scheduled send time; {} s per scenario and rate, in {SLICES} slices alternating with the baseline at the same call rate; {} cores, load generator on the same machine.",
        args.seconds,
        cores(),
    ));
    publish(&rate_table(&rows, &notes), args.markdown.as_deref())
}

/// `--instances N`: N instances on one PostgreSQL database against one, each scenario at each client
/// count, alternating in slices. Client `i` calls instance `i mod N`; in a lifecycle its approval goes to
/// the next instance, so every draft crosses instances on its way.
async fn several_instances(args: Args, n: usize) -> Result<(), String> {
    let admin = args.postgres.as_deref().ok_or("--instances needs a PostgreSQL server: --postgres URL")?;
    if n < 2 {
        return Err("--instances takes 2 or more".into());
    }
    let lynx = environment(Some(admin)).await?;
    let agent = lynx.key("tenant-123", "agent-001")?;
    let approver = lynx.key("tenant-123", "approver-001")?;
    let servers = (0..n).map(|_| start(lynx.command(&["serve"]))).collect::<Result<Vec<_>, _>>()?;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let slice = Duration::from_secs(args.seconds) / SLICES;
    let mut out = format!(
        "| Scenario | Clients | 1 instance, ops/s | {n} instances, ops/s | {n} ÷ 1 | 1 instance p99 ms | {n} instances p99 ms | Errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for &c in &args.concurrency {
        for &scenario in &args.scenarios {
            let (mut one, mut many) = (Outcome::default(), Outcome::default());
            for _ in 0..SLICES {
                for (spread, total) in [(1, &mut one), (n, &mut many)] {
                    let bases = bases.clone();
                    let (agent, approver) = (agent.clone(), approver.clone());
                    let measured = drive(
                        c,
                        slice,
                        move |i| (Mcp::new(&bases[i % spread], Some(&agent)), approver.clone(), bases[(i + 1) % spread].clone()),
                        move |s: Arc<(Mcp, String, String)>| async move { scenario.once(&s.0, &s.1, &s.2).await },
                    )
                    .await;
                    *total = std::mem::take(total).merge(measured);
                }
            }
            eprintln!("{} c={c}: 1 instance {:.0}/s, {n} instances {:.0}/s", scenario.name(), one.per_second(), many.per_second());
            out.push_str(&format!(
                "| {} | {c} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
                scenario.name(),
                one.per_second(),
                many.per_second(),
                many.per_second() / one.per_second(),
                one.percentile_ms(0.99),
                many.percentile_ms(0.99),
                one.errors + many.errors,
            ));
        }
    }
    drop(servers);
    out.push_str(&format!(
        "\n{}\nPostgreSQL; {} s per scenario and level in {SLICES} slices alternating one instance with {n}; {} cores, load generator on the same machine.",
        verified(&lynx)?,
        args.seconds,
        cores(),
    ));
    publish(&out, args.markdown.as_deref())
}
