//! Wiring: settings → store, Kernel, registry → the pipeline, and the HTTP application around it
//! (zero2prod's `Application::build` → `addr()` → `run_until_stopped()`).

use std::{net::SocketAddr, sync::Arc};

use lynx_governance::{Pipeline, RuntimeInfo, Services, identity, webhooks::WebhookSecrets};
use lynx_kernel::{EmbeddedKernel, HttpKernel, KernelFile};
use lynx_model::{Mode, TenantId, UserId, clock::SystemClock, kernel::Kernel};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::output,
    configuration::{KernelSource, Settings},
};

/// A start-up failure, already worded for the operator.
#[derive(Debug)]
pub struct Fatal(pub String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Loads the Kernel the settings name; a bad Kernel file stops start-up naming the file and the problem.
pub fn kernel(settings: &Settings) -> Result<Arc<dyn Kernel>, Fatal> {
    match &settings.kernel {
        KernelSource::Demo => Ok(Arc::new(EmbeddedKernel::demo())),
        KernelSource::File(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Fatal(format!("Kernel file {name}: cannot be read: {e} (set by LYNX_KERNEL_FILE)")))?;
            let data = KernelFile::parse(&text, &name)?;
            Ok(Arc::new(EmbeddedKernel::new(data, format!("file {name}"))))
        }
        KernelSource::Http { url, key, timeout_ms } => {
            Ok(Arc::new(HttpKernel::new(url, key, std::time::Duration::from_millis(*timeout_ms)).map_err(Fatal)?))
        }
    }
}

/// A store that would not open: what it said, and where to look.
pub fn cannot_open(settings: &Settings, e: lynx_model::store::StoreError) -> Fatal {
    Fatal(format!(
        "cannot open {}: {e} (check that the database is running and reachable, and that LYNX_DATABASE_URL names it)",
        settings.database.describe()
    ))
}

/// Opens (and migrates) the configured store; a server's with its connections open from the start.
pub async fn store(settings: &Settings, role: Role) -> Result<Arc<dyn lynx_model::store::Store>, Fatal> {
    let pool = match role {
        Role::Server => lynx_store::Pool::warm(settings.pool_size),
        Role::Command => lynx_store::Pool::on_demand(settings.pool_size),
    };
    let store = lynx_store::connect(&settings.database, pool, settings.supabase.clone())
        .await
        .map_err(|e| cannot_open(settings, e))?;
    store.migrate().await.map_err(|e| Fatal(format!("cannot migrate {}: {e}", settings.database.describe())))?;
    Ok(store)
}

/// Where dev mode keeps a file beside the SQLite database (`<path><suffix>`); `None` for PostgreSQL
/// or an in-memory database.
fn beside_the_database(settings: &Settings, suffix: &str) -> Option<std::path::PathBuf> {
    match &settings.database {
        lynx_store::DatabaseUrl::Sqlite { path } if path != ":memory:" => Some(std::path::PathBuf::from(format!("{path}{suffix}"))),
        _ => None,
    }
}

fn in_memory(settings: &Settings) -> bool {
    matches!(&settings.database, lynx_store::DatabaseUrl::Sqlite { path } if path == ":memory:")
}

/// The instance key stored subscriptions' secrets derive from: `LYNX_WEBHOOK_KEY_FILE`; in dev mode
/// without it, a key file beside the SQLite database (created on first use, readable by its owner
/// only), or for an in-memory database a key of this process. Elsewhere none: subscriptions can then
/// not be added, and say how to configure one.
pub fn webhook_key(settings: &Settings) -> Result<Option<Vec<u8>>, Fatal> {
    use lynx_governance::webhooks::{new_instance_key, parse_instance_key};
    let read = |path: &std::path::Path| -> Result<Vec<u8>, Fatal> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Fatal(format!("webhook key file {}: cannot be read: {e} (LYNX_WEBHOOK_KEY_FILE)", path.display())))?;
        parse_instance_key(&text).map_err(|why| Fatal(format!("webhook key file {}: {why}", path.display())))
    };
    if let Some(path) = &settings.notifications.key_file {
        return read(path).map(Some);
    }
    if settings.mode != Mode::Dev {
        return Ok(None);
    }
    if in_memory(settings) {
        return Ok(Some(parse_instance_key(&new_instance_key()).map_err(|e| Fatal(e.into()))?));
    }
    match beside_the_database(settings, ".webhook-key") {
        Some(path) => {
            if !path.exists() {
                write_private(&path, &new_instance_key())?;
            }
            read(&path).map(Some)
        }
        None => Ok(None),
    }
}

/// The name a new audit signing key gets by default: this host's name.
pub fn default_key_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
    let host = host.or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "lynx".into());
    host.chars().filter(|c| !c.is_whitespace() && *c != '+').collect::<String>()
}

/// What signs audit checkpoints and where their files go: `LYNX_AUDIT_SIGNING_KEY` and
/// `LYNX_AUDIT_CHECKPOINT_DIR`. In dev mode a key file and a directory beside the SQLite database
/// are created on first use (an in-memory database gets a key of this process and no directory).
/// In prod both a key and a destination outside the database — the directory or a webhook — are
/// required: start-up says how to make them.
pub fn audit_anchor(settings: &Settings) -> Result<Option<lynx_governance::checkpoints::Anchor>, Fatal> {
    let read = |path: &std::path::Path| -> Result<lynx_tlog::NoteSigner, Fatal> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Fatal(format!("audit signing key {}: cannot be read: {e} (LYNX_AUDIT_SIGNING_KEY)", path.display())))?;
        lynx_tlog::NoteSigner::parse(&text).map_err(|e| Fatal(format!("audit signing key {}: {e} (create one with `lynx audit keygen --out FILE`)", path.display())))
    };
    let a = &settings.audit;
    let signer = match (&a.signing_key, settings.mode) {
        (Some(path), _) => Some(read(path)?),
        (None, Mode::Dev) if in_memory(settings) => Some(lynx_governance::checkpoints::new_signing_key(&default_key_name()).map_err(|e| Fatal(e.to_string()))?),
        (None, Mode::Dev) => match beside_the_database(settings, ".audit-key") {
            Some(path) => {
                if !path.exists() {
                    write_private(&path, &lynx_governance::checkpoints::new_signing_key(&default_key_name()).map_err(|e| Fatal(e.to_string()))?.to_text())?;
                }
                Some(read(&path)?)
            }
            None => None,
        },
        (None, _) => None,
    };
    let dir = match (&a.checkpoint_dir, settings.mode) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Mode::Dev) => beside_the_database(settings, ".checkpoints"),
        (None, _) => None,
    };
    if settings.mode == Mode::Prod && (signer.is_none() || (dir.is_none() && settings.notifications.url.is_none())) {
        return Err(Fatal(
            "LYNX_MODE=prod needs signed audit checkpoints kept outside the database: create a key with \
             `lynx audit keygen --out /etc/lynx/audit.key` (it prints the verifier key to give auditors), set LYNX_AUDIT_SIGNING_KEY to it, \
             and set LYNX_AUDIT_CHECKPOINT_DIR to a directory the database's administrators cannot rewrite (or LYNX_WEBHOOK_URL to a \
             receiver that keeps the audit.checkpoint events)"
                .into(),
        ));
    }
    let Some(signer) = signer else {
        tracing::warn!("audit checkpoints are off: set LYNX_AUDIT_SIGNING_KEY (create a key with `lynx audit keygen --out FILE`)");
        return Ok(None);
    };
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).map_err(|e| Fatal(format!("checkpoint directory {}: cannot be created: {e} (LYNX_AUDIT_CHECKPOINT_DIR)", dir.display())))?;
    }
    Ok(Some(lynx_governance::checkpoints::Anchor::new(signer, dir)))
}

/// Writes a new file only its owner can read (never replacing one).
pub fn write_private(path: &std::path::Path, text: &str) -> Result<(), Fatal> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Fatal(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(format!("{text}\n").as_bytes()).map_err(|e| Fatal(format!("cannot write {}: {e}", path.display())))
}

/// What the process is: a server (`serve`, stdio `mcp`) answers calls until stopped; a command does one
/// thing and exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Command,
}

/// Connects and migrates storage, loads the Kernel, and fixes the runtime facts.
pub async fn services(settings: &Settings, role: Role) -> Result<Services, Fatal> {
    let kernel = kernel(settings)?;
    let webhooks = WebhookSecrets::new(webhook_key(settings)?, settings.notifications.secret.clone());
    let store = store(settings, role).await?;
    Ok(Services {
        webhooks: Arc::new(webhooks),
        audit: lynx_governance::audit::AuditWriter::start(store.clone()),
        keys: Default::default(),
        store,
        kernel,
        clock: Arc::new(SystemClock),
        runtime: Arc::new(runtime_info(settings)),
        limits: Arc::new(lynx_governance::limits::Limiter::new(settings.rate_overrides)),
    })
}

pub fn runtime_info(settings: &Settings) -> RuntimeInfo {
    RuntimeInfo {
        mode: settings.mode,
        protocol_version: settings.protocol_version.clone(),
        toolset_version: settings.toolset_version.clone(),
        maintenance_from_env: settings.maintenance,
        version: VERSION.to_string(),
        storage_label: storage_label(settings),
        failpoint_after_claim: settings.failpoint_after_claim_ms.map(std::time::Duration::from_millis),
        instance_id: settings.instance_id.clone(),
        key_cache_ttl: std::time::Duration::from_millis(settings.key_cache_ms),
    }
}

/// The status line's label: the runbook's `Supabase` when a Supabase project is configured.
pub fn storage_label(settings: &Settings) -> String {
    match (&settings.database, &settings.supabase) {
        (_, Some(_)) => "Supabase".into(),
        (lynx_store::DatabaseUrl::Postgres { .. }, None) => "Storage (PostgreSQL)".into(),
        (lynx_store::DatabaseUrl::Sqlite { .. }, None) => "Storage (SQLite)".into(),
    }
}

pub fn pipeline(services: Services) -> Pipeline {
    Pipeline::new(services, Arc::new(lynx_tools::registry()))
}

/// On the first start of a dev database with no keys, creates and prints keys for the demo tenant's
/// agent and approver, so a new user can connect in one step.
pub async fn demo_keys_on_first_run(services: &Services) -> Result<(), Fatal> {
    if services.runtime.mode != Mode::Dev || services.store.count_api_keys().await? > 0 {
        return Ok(());
    }
    let tenant = TenantId::parse("tenant-123").expect("valid id");
    let users = [("agent-001", "demo agent"), ("approver-001", "demo approver")];
    let mut created = Vec::new();
    for (user, label) in users {
        let user = UserId::parse(user).expect("valid id");
        // A custom Kernel file may not have the demo tenant: then there is nothing to create.
        if services.kernel.user(&tenant, &user).await.is_err() {
            return Ok(());
        }
        let key = identity::create_key(services, &tenant, &user, label, "lynx-serve:first-run")
            .await
            .map_err(|r| Fatal(r.message))?;
        created.push((user, key.secret));
    }
    output::demo_keys(&tenant, &created);
    Ok(())
}

/// The work every serving instance does beside answering calls: delivering webhooks and expiring
/// drafts past their decision deadline. Every instance does both; the database hands each delivery
/// and each expiry to one of them. Stops when `stop` is cancelled.
pub fn background(
    services: &Services,
    settings: &Settings,
    anchor: Option<Arc<lynx_governance::checkpoints::Anchor>>,
    stop: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Fatal> {
    let n = &settings.notifications;
    let config = lynx_notify::DeliveryConfig {
        poll: std::time::Duration::from_millis(n.poll_ms),
        retry_base: std::time::Duration::from_millis(n.retry_base_ms),
        max_age: chrono::TimeDelta::hours(n.max_age_hours as i64),
        timeout: std::time::Duration::from_millis(n.timeout_ms),
        public_url: n.public_url.clone(),
    };
    let deliverer = lynx_notify::Deliverer::new(services.clone(), config).map_err(Fatal)?;
    let sweeper = services.clone();
    let interval = std::time::Duration::from_millis(settings.sweep_interval_ms);
    let sweep_stop = stop.clone();
    let mut tasks = Vec::new();
    if let (Some(anchor), Some(every)) = (anchor, settings.audit.interval) {
        let (services, stop) = (services.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                checkpoint_round(&anchor, &services).await;
            }
        }));
    }
    let (limited, limits_stop) = (services.clone(), stop.clone());
    tasks.extend([
        tokio::spawn(async move {
            // Rate-limit refusals reach the audit trail in aggregate, one row per key every round.
            loop {
                let stopping = tokio::select! {
                    _ = limits_stop.cancelled() => true,
                    _ = tokio::time::sleep(REFUSALS_FLUSH) => false,
                };
                if let Err(r) = limited.limits.flush_refusals(&limited).await {
                    tracing::warn!(code = %r.code, message = %r.message, "rate-limit refusals not audited yet; the next round tries again");
                }
                if stopping {
                    return;
                }
            }
        }),
        tokio::spawn(deliverer.run(stop.cancelled_owned())),
        tokio::spawn(async move {
            loop {
                match lynx_governance::approvals::expire_due(&sweeper).await {
                    Ok(expired) if !expired.is_empty() => tracing::info!(count = expired.len(), "drafts expired without a decision"),
                    Ok(_) => {}
                    Err(r) => tracing::warn!(code = %r.code, message = %r.message, "draft expiry sweep failed; it runs again"),
                }
                tokio::select! {
                    _ = sweep_stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }),
    ]);
    Ok(tasks)
}

/// How often refused calls are written to the audit trail (in aggregate).
const REFUSALS_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// One checkpoint round, its results logged (the background task's and the shutdown's).
pub async fn checkpoint_round(anchor: &lynx_governance::checkpoints::Anchor, services: &Services) {
    use lynx_governance::checkpoints::Checkpointed;
    match anchor.checkpoint_all(services).await {
        Ok((done, failed)) => {
            for c in done {
                if let Checkpointed::Signed { tenant_id, tree_size, .. } = c {
                    tracing::info!(tenant = %tenant_id, tree_size, "audit checkpoint signed");
                }
            }
            for (tenant, r) in failed {
                tracing::error!(%tenant, code = %r.code, message = %r.message, "audit checkpoint refused");
            }
        }
        Err(r) => tracing::warn!(code = %r.code, message = %r.message, "audit checkpoints not taken; the next round tries again"),
    }
}

/// Waits a moment for the background work to stop; a delivery cut off mid-send is sent again later
/// (at least once), by this instance after a restart or by another one when its lease runs out.
pub async fn finish(background: Vec<tokio::task::JoinHandle<()>>) {
    for task in background {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
}

/// The HTTP server, bound and ready.
pub struct Application {
    listener: TcpListener,
    router: lynx_http::Router,
    addr: SocketAddr,
    connection_limits: lynx_http::ConnectionLimits,
}

impl Application {
    pub async fn build(settings: &Settings, pipeline: Pipeline) -> Result<Self, Fatal> {
        let listener = TcpListener::bind(settings.bind)
            .await
            .map_err(|e| Fatal(format!("cannot listen on {} (LYNX_BIND/PORT): {e}", settings.bind)))?;
        let addr = listener.local_addr()?;
        let mut allowed_hosts = settings.allowed_hosts.clone();
        if !allowed_hosts.is_empty() && !addr.ip().is_unspecified() {
            allowed_hosts.push(addr.ip().to_string());
        }
        let options = lynx_http::HttpOptions { allowed_hosts };
        Ok(Self { listener, router: lynx_http::router(pipeline, &options), addr, connection_limits: settings.connection_limits })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or Ctrl-C, then stops accepting and lets in-flight calls finish — for at
    /// most `SHUTDOWN_GRACE`; a call still running then is cut off before its answer (its audit rows
    /// say how far it got).
    pub async fn run_until_stopped(self) -> Result<(), Fatal> {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown_signal().await;
            let _ = stopping_tx.send(());
        };
        let serve = lynx_http::serve(self.listener, self.router, self.connection_limits, signal);
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(lynx_http::SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = serve => served?,
            _ = deadline => tracing::warn!("in-flight requests did not finish within {:?}; stopping anyway", lynx_http::SHUTDOWN_GRACE),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: no new connections; finishing in-flight requests");
}
