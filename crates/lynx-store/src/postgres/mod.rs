//! The PostgreSQL engine (and Supabase, which is PostgreSQL): for production and for several Lynx
//! instances on one database. Row locks (`FOR UPDATE`), unique indexes, and audit appends that link
//! after a known head and let the `(tenant_id, seq)` index refuse a lost race (`audit.rs`) make the same
//! guarantees hold across instances that `BEGIN IMMEDIATE` gives on SQLite.

mod audit;
mod lending;
mod liveness;
mod nodelay;
mod values;

use std::{str::FromStr, sync::Arc, time::Duration};

use lynx_model::{
    TenantId,
    audit::NewAuditEvent,
    store::{StoreError, StoreResult},
};
use sqlx::{
    Executor,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};

use secrecy::ExposeSecret;

use crate::{
    Pool, SupabaseProject,
    db::{Changes, Db, Engine, Scope, WriteOp},
    error::{corrupt, map},
    store::Storage,
};

/// How long a statement waits for a pooled connection, and a server's start for its whole pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on PostgreSQL.
pub type PgStore = Storage<Postgres>;

pub struct Postgres {
    /// sqlx's pool, behind the engine's own stack of connections that ended well (`lending.rs`).
    connections: lending::Lender,
    supabase: Option<(SupabaseProject, reqwest::Client)>,
    /// The audit chain heads this instance last saw (a cache: see `audit.rs`).
    heads: audit::KnownHeads,
    /// Whether connections are lent without a check (see `liveness.rs`).
    liveness: Arc<liveness::Liveness>,
}

impl PgStore {
    pub async fn open(url: &str, connections: Pool, supabase: Option<SupabaseProject>) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(redacted(e)))?;
        let port = options.get_port();
        let liveness = Arc::new(liveness::Liveness::default());
        let checks = liveness.clone();
        let pool_options = PgPoolOptions::new()
            .max_connections(connections.size)
            .min_connections(if connections.warm { connections.size } else { 1 })
            // Every wait for a connection, at trace level (`LYNX_LOG=…,sqlx::pool::acquire=trace`):
            // how an operator tells a pool that is too small from a slow database.
            .acquire_time_level(log::LevelFilter::Trace)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings every connection as it goes back into the pool, and by default again as it
            // comes out: a round trip before every statement. The second ping is skipped for a
            // connection in use a moment ago (`liveness.rs`).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let check = checks.must_check(meta.idle_for);
                Box::pin(async move {
                    if check {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            // Lynx is the trusted service: it sees every tenant and narrows to one inside
            // single-tenant transactions (see the migration's row-level security).
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    nodelay::set_on_connections_to(port);
                    conn.execute("SET lynx.tenant_id = '*'").await?;
                    Ok(())
                })
            });
        let pool = if connections.warm {
            let pool = pool_options.connect_lazy_with(options.clone());
            if let Err(e) = open_all(&pool, connections.size, &options).await {
                // Stop the pool's background attempts to reach its minimum.
                pool.close().await;
                return Err(e);
            }
            pool
        } else {
            // sqlx keeps retrying a refused connection until the acquire timeout, taking the database
            // for one still starting. A server may wait for that; a command (`lynx status` above all)
            // says at once what one more attempt of its own meets.
            let opening = pool_options.connect_with(options.clone());
            tokio::pin!(opening);
            let opened = tokio::select! {
                opened = &mut opening => opened,
                refused = refused_after(REFUSED_GRACE, &options) => return Err(refused),
            };
            match opened {
                Ok(pool) => pool,
                Err(sqlx::Error::PoolTimedOut) => return Err(why_not_open(1, &options).await),
                Err(e) => return Err(StoreError::Unavailable(redacted(e))),
            }
        };
        let supabase = match supabase {
            Some(project) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("cannot build the Supabase REST client: {e}")))?;
                Some((project, client))
            }
            None => None,
        };
        Ok(Storage(Postgres { connections: lending::Lender::new(pool), supabase, heads: audit::KnownHeads::default(), liveness }))
    }

    pub fn pool(&self) -> &PgPool {
        self.0.connections.pool()
    }

    /// Creates an empty database on the server `admin_url` points at (tests and benchmarks).
    pub async fn create_database(admin_url: &str, name: &str) -> StoreResult<()> {
        admin(admin_url, name, "CREATE DATABASE {name}").await
    }

    /// Drops a database created by `create_database`.
    pub async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
        admin(admin_url, name, "DROP DATABASE IF EXISTS {name} WITH (FORCE)").await
    }
}

/// Opens every connection of a warm pool at once, not one after another: each costs a few round trips
/// and, over TLS, up to ~90 ms here (the handshake runs before `nodelay.rs` can set TCP_NODELAY), so
/// sixteen in a row held a server's start up by 1.5 s. Each is held until all are open, so that they are
/// `size` different connections; the pool's `min_connections` then keeps them.
async fn open_all(pool: &PgPool, size: u32, options: &PgConnectOptions) -> StoreResult<()> {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..size {
        let pool = pool.clone();
        opening.spawn(async move { pool.acquire().await });
    }
    let mut held = Vec::with_capacity(size as usize);
    while let Some(opened) = opening.join_next().await {
        let conn = opened.map_err(|e| StoreError::Unavailable(format!("opening the connection pool: {e}")))?;
        match conn {
            Ok(conn) => held.push(conn),
            // sqlx retries a connection that fails until the deadline and then says only that it timed
            // out; one more attempt on its own says why.
            Err(sqlx::Error::PoolTimedOut) => return Err(why_not_open(size, options).await),
            Err(e) => return Err(StoreError::Unavailable(redacted(e))),
        }
    }
    Ok(())
}

/// How long a command's first connection may take before one more attempt asks the server why.
const REFUSED_GRACE: Duration = Duration::from_millis(300);

/// After `grace`, one connection of its own: the server's refusal if it refuses (what sqlx would retry
/// until its timeout), or never, when the server answers and the pool is just slower to open.
async fn refused_after(grace: Duration, options: &PgConnectOptions) -> StoreError {
    use sqlx::Connection;
    tokio::time::sleep(grace).await;
    match sqlx::PgConnection::connect_with(options).await {
        Err(e) => StoreError::Unavailable(redacted(e)),
        Ok(conn) => {
            let _ = conn.close().await;
            std::future::pending().await
        }
    }
}

/// Why a pool could not open its connections in time: the server's own answer to one more connection,
/// or, if that one opens, that the server does not take as many as the pool keeps.
async fn why_not_open(size: u32, options: &PgConnectOptions) -> StoreError {
    use sqlx::Connection;
    match sqlx::PgConnection::connect_with(options).await {
        // 53300 too_many_connections: the pool took what the server had left.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("53300") => StoreError::Unavailable(format!(
            "PostgreSQL accepts no more connections (\"{}\") before the {size} a server keeps (LYNX_DB_POOL_SIZE) are open: \
             lower LYNX_DB_POOL_SIZE, or raise the server's max_connections",
            e.message()
        )),
        Err(e) => StoreError::Unavailable(redacted(e)),
        Ok(conn) => {
            let _ = conn.close().await;
            StoreError::Unavailable(format!(
                "could not open {size} connections (LYNX_DB_POOL_SIZE) within {} s, though PostgreSQL accepts a new one: check that \
                 it accepts that many more (its max_connections, less what other instances and clients hold), or lower LYNX_DB_POOL_SIZE",
                ACQUIRE_TIMEOUT.as_secs()
            ))
        }
    }
}

/// One statement about a database by name, on the server's admin connection.
async fn admin(admin_url: &str, name: &str, statement: &str) -> StoreResult<()> {
    use sqlx::Connection;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Unavailable(format!("{name:?} is not a plain database name")));
    }
    let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(|e| StoreError::Unavailable(redacted(e)))?;
    sqlx::query(sqlx::AssertSqlSafe(statement.replace("{name}", name))).execute(&mut conn).await.map_err(map)?;
    Ok(())
}

impl Postgres {
    /// The project's REST endpoint answers with the configured key (what the Supabase line reports).
    async fn ping_supabase(&self) -> StoreResult<()> {
        let Some((project, client)) = &self.supabase else {
            return Ok(());
        };
        let url = format!("{}/rest/v1/", project.url.trim_end_matches('/'));
        let resp = client
            .get(&url)
            .header("apikey", project.key.expose_secret())
            .bearer_auth(project.key.expose_secret())
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("Supabase REST endpoint {} unreachable: {}", project.url, if e.is_timeout() { "timed out".into() } else { e.to_string() })))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!("Supabase REST endpoint {} answered HTTP {} to SUPABASE_KEY", project.url, resp.status().as_u16())))
        }
    }
}

/// Database errors can quote the connection string; never pass a password on.
fn redacted(e: sqlx::Error) -> String {
    let text = crate::error::describe(&e);
    match (text.find("://"), text.find('@')) {
        (Some(a), Some(b)) if b > a => format!("{}://…{}", &text[..a], &text[b..]),
        _ => text,
    }
}

#[async_trait::async_trait]
impl Engine for Postgres {
    const NAME: &'static str = "postgres";
    // Audit rows are batched in front of it (`AuditWriter` in lynx-governance), one statement a batch.
    const GROUP_COMMITS: bool = false;

    fn migrations(&self) -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        MIGRATOR.run(self.connections.pool()).await.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    async fn ping_services(&self) -> StoreResult<()> {
        self.ping_supabase().await
    }

    fn reader(&self) -> Box<dyn Db + '_> {
        Box::new(values::OnPool(&self.connections, &self.liveness))
    }

    async fn write<T: Send + 'static>(&self, scope: Scope, op: WriteOp<T>) -> StoreResult<T> {
        let tenant = match scope {
            // A single statement commits on its own: no BEGIN and COMMIT round trips.
            Scope::Statement => {
                return match op(&mut values::OnPool(&self.connections, &self.liveness)).await? {
                    Changes::Keep(t) => Ok(t),
                    // Each statement has committed on its own: there is no transaction to undo.
                    Changes::Undo(_) => Err(corrupt("a single-statement write asked to undo its changes")),
                };
            }
            Scope::Transaction => None,
            Scope::Tenant(t) => Some(t),
        };
        // `BEGIN` and the narrowing travel as one simple query: one round trip instead of two.
        let mut lent = self.connections.lend(&self.liveness).await.map_err(|e| self.liveness.failed(e))?;
        let result = {
            let begin = match &tenant {
                None => sqlx::Connection::begin(lent.conn()).await,
                Some(t) => sqlx::Connection::begin_with(lent.conn(), sqlx::AssertSqlSafe(narrowed_begin(t))).await,
            };
            let mut tx = values::InTransaction(begin.map_err(|e| self.liveness.failed(e))?, &self.liveness);
            // On an error the transaction is dropped unfinished and the connection goes back to sqlx's
            // pool, whose ping sends the rollback sqlx queued for it.
            match op(&mut tx).await? {
                Changes::Keep(result) => {
                    tx.0.commit().await.map_err(|e| self.liveness.failed(e))?;
                    result
                }
                Changes::Undo(result) => {
                    tx.0.rollback().await.map_err(|e| self.liveness.failed(e))?;
                    result
                }
            }
        };
        lent.ended_well();
        Ok(result)
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        audit::append(&self.connections, &self.heads, &self.liveness, events).await
    }
}

/// A transaction narrowed to one tenant's rows: row-level security as a second wall behind the
/// `tenant_id` every statement names. The `BEGIN` and the narrowing travel as one simple query, which
/// takes no parameters, so the tenant is written into the text (`literal`).
fn narrowed_begin(tenant: &TenantId) -> String {
    format!("BEGIN; SET LOCAL lynx.tenant_id = '{}'", literal(tenant))
}

/// A tenant id as the inside of a quoted SQL literal. `TenantId` admits only ASCII letters, digits and
/// `-_.@:`, none of which can end the literal; checked again here, so the text around it can never
/// become anything but what it says.
fn literal(tenant: &TenantId) -> &str {
    let t = tenant.as_str();
    assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c)), "tenant ids are parsed before they reach the store");
    t
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The test server, for tests that need it reached over TCP (CI's LYNX_TEST_POSTGRES_URL is).
    fn tcp_test_server(test: &str) -> Option<(String, PgConnectOptions)> {
        let url = crate::scratch::test_server(test)?;
        let options = PgConnectOptions::from_str(&url).unwrap();
        options.get_socket().is_none().then_some((url, options))
    }

    /// Every pooled connection to the server sends small writes at once (see `nodelay.rs`).
    #[tokio::test]
    async fn database_connections_have_tcp_nodelay() {
        let Some((url, options)) = tcp_test_server("database_connections_have_tcp_nodelay") else { return };
        let store = PgStore::open(&url, Pool::on_demand(4), None).await.unwrap();
        // Take four connections at once, so the pool has opened four.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(store.pool().acquire().await.unwrap());
        }
        let sockets = nodelay::connections_to(options.get_port());
        assert!(sockets.len() >= 4, "expected the pool's connections among this process's sockets: {sockets:?}");
        assert!(sockets.iter().all(|on| *on), "a connection without TCP_NODELAY: {sockets:?}");
    }

    /// The backend serving a connection lent by the engine (`lending.rs`), and the connection kept.
    async fn backend(store: &PgStore) -> i32 {
        use sqlx::Row;
        let mut lent = store.0.connections.lend(&store.0.liveness).await.unwrap();
        let pid: i32 = sqlx::query("SELECT pg_backend_pid()").fetch_one(lent.conn()).await.unwrap().get(0);
        lent.ended_well();
        pid
    }

    /// A connection that ended well serves the next statement as it is — not back through sqlx's pool,
    /// whose idle queue would lend the other connection next, after its ping — and one that did not
    /// end well is not kept.
    #[tokio::test]
    async fn the_connection_that_just_ended_well_serves_the_next_statement() {
        let Some(url) = crate::scratch::test_server("the_connection_that_just_ended_well_serves_the_next_statement") else { return };
        let store = PgStore::open(&url, Pool::warm(2), None).await.unwrap();
        let first = backend(&store).await;
        for _ in 0..5 {
            assert_eq!(backend(&store).await, first);
        }
        assert_eq!(store.0.connections.kept_now(), 1);
        // Lent and dropped without `ended_well`: back to sqlx's pool, not kept.
        drop(store.0.connections.lend(&store.0.liveness).await.unwrap());
        assert_eq!(store.0.connections.kept_now(), 0);
    }

    /// A connection kept long enough goes back through sqlx's pool, so that sqlx's rules for a
    /// connection's age apply to it: with that time zero, none is kept.
    #[tokio::test]
    async fn a_connection_kept_long_enough_goes_back_through_the_pool() {
        let Some(url) = crate::scratch::test_server("a_connection_kept_long_enough_goes_back_through_the_pool") else { return };
        let mut store = PgStore::open(&url, Pool::warm(2), None).await.unwrap();
        store.0.connections = lending::Lender::keeping_for(store.pool().clone(), Duration::ZERO);
        backend(&store).await;
        assert_eq!(store.0.connections.kept_now(), 0);
        store.0.connections = lending::Lender::keeping_for(store.pool().clone(), Duration::from_secs(60));
        backend(&store).await;
        assert_eq!(store.0.connections.kept_now(), 1);
    }

    /// With every connection lent, a caller waits on sqlx's pool, and a connection that ends well
    /// meanwhile is handed to it there — not kept on the engine's stack while the caller waits out the
    /// acquire timeout.
    #[tokio::test]
    async fn a_caller_waiting_for_a_connection_gets_the_next_one_that_ends_well() {
        let Some(url) = crate::scratch::test_server("a_caller_waiting_for_a_connection_gets_the_next_one_that_ends_well") else { return };
        let store = PgStore::open(&url, Pool::warm(1), None).await.unwrap();
        let held = store.0.connections.lend(&store.0.liveness).await.unwrap();
        let started = std::time::Instant::now();
        let waiter = async { backend(&store).await };
        let release = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            held.ended_well();
        };
        let (_, ()) = tokio::join!(waiter, release);
        assert!(started.elapsed() < Duration::from_secs(3), "waited {:?} (the acquire timeout is {ACQUIRE_TIMEOUT:?})", started.elapsed());
        // Nobody waits any more: the next connection that ends well is kept again.
        let kept = backend(&store).await;
        assert_eq!(backend(&store).await, kept);
    }

    /// PostgreSQL's own error, without the line of PostgreSQL's source that sqlx appends to it.
    #[tokio::test]
    async fn a_missing_database_is_named_plainly() {
        let Some(url) = crate::scratch::test_server("a_missing_database_is_named_plainly") else { return };
        let missing = crate::scratch::with_database(&url, "lynx_no_such_database");
        for pool in [Pool::on_demand(2), Pool::warm(2)] {
            let Err(StoreError::Unavailable(why)) = PgStore::open(&missing, pool, None).await else { panic!("opened a missing database") };
            assert!(why.ends_with("database \"lynx_no_such_database\" does not exist"), "{why}");
        }
    }

    /// When the server ends every pooled connection at once (a restart, a failover), the one statement
    /// that finds its connection gone fails, and the statements after it get new connections instead of
    /// each finding another dead one.
    #[tokio::test]
    async fn after_one_lost_connection_the_rest_are_checked_before_use() {
        use lynx_model::store::Store;
        use sqlx::Connection;
        let Some(url) = crate::scratch::test_server("after_one_lost_connection_the_rest_are_checked_before_use") else { return };
        let db = crate::scratch::ScratchDatabase::create(&url, "lynx_liveness").await.unwrap();
        let store = PgStore::open(db.url(), Pool::warm(3), None).await.unwrap();
        store.ping().await.unwrap();
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let ended = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name()
        )))
        .execute(&mut admin)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(ended, 3);
        // Every connection was in use a moment ago, so none is checked before the first statement.
        assert!(store.ping().await.is_err(), "the first statement finds its connection gone");
        for _ in 0..3 {
            store.ping().await.expect("a new connection, not another dead one");
        }
    }

    /// When a pool could not be opened in time, the error names the cause: the server's own refusal, or
    /// a server that took one more connection but not the pool's size.
    #[tokio::test]
    async fn a_pool_that_cannot_open_says_why() {
        let Some((_, options)) = tcp_test_server("a_pool_that_cannot_open_says_why") else { return };
        // A port nothing listens on: bind one, note it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let StoreError::Unavailable(refused) = why_not_open(2, &options.clone().host("127.0.0.1").port(port)).await else { panic!() };
        assert!(refused.contains("Connection refused"), "{refused}");
        let StoreError::Unavailable(too_few) = why_not_open(2, &options).await else { panic!() };
        assert!(too_few.contains("could not open 2 connections") && too_few.contains("LYNX_DB_POOL_SIZE"), "{too_few}");
    }

    /// A server's pool has every connection open from the start; a command's opens them as needed.
    #[tokio::test]
    async fn a_servers_pool_is_open_from_the_start() {
        let Some(url) = crate::scratch::test_server("a_servers_pool_is_open_from_the_start") else { return };
        let warm = PgStore::open(&url, Pool::warm(3), None).await.unwrap();
        assert_eq!(warm.pool().size(), 3);
        let on_demand = PgStore::open(&url, Pool::on_demand(3), None).await.unwrap();
        assert_eq!(on_demand.pool().size(), 1);
    }

    /// Connections are not pinged each time they are lent, but one that sat idle is: a connection the
    /// server closed meanwhile is replaced, not handed to a caller whose statement would then fail.
    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        use sqlx::{Connection, Row};
        let Some(url) = crate::scratch::test_server("a_connection_the_server_closed_while_idle_is_replaced") else { return };
        let store = PgStore::open(&url, Pool::warm(1), None).await.unwrap();
        let pid: i32 = sqlx::query("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap().get(0);
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        let ended: bool = sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&mut admin).await.unwrap().get(0);
        assert!(ended);
        tokio::time::sleep(liveness::CHECK_IF_IDLE_FOR + Duration::from_millis(200)).await;
        let again: i32 = sqlx::query("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap().get(0);
        assert_ne!(again, pid, "a new connection");
    }
}
