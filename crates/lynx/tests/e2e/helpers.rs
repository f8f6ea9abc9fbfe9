//! Spawning the real `lynx` binary on a temporary database and port, and talking to it the way users
//! do: MCP over HTTP and stdio (rmcp's client), the JSON API (reqwest), and the CLI.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, TokioChildProcess, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

pub const LYNX: &str = env!("CARGO_BIN_EXE_lynx");

/// The Kernel demo data the binary serves by default, for comparing answers against.
pub fn demo_kernel() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kernel/demo.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn demo_tenant(kernel: &Value, tenant: &str) -> Value {
    kernel["tenants"].as_array().unwrap().iter().find(|t| t["tenant_id"] == tenant).unwrap().clone()
}

/// Which database a sandbox runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    Sqlite,
    /// The admin URL of a PostgreSQL server; each sandbox gets a fresh database on it.
    Postgres(String),
}

impl Engine {
    /// PostgreSQL when `LYNX_TEST_POSTGRES_URL` names a server (CI sets it), else `None` — reported,
    /// and a failure under `LYNX_REQUIRE_POSTGRES=1` (see `lynx_store::scratch::test_server`).
    pub fn postgres(test: &str) -> Option<Self> {
        lynx_store::scratch::test_server(test).map(Engine::Postgres)
    }
}

/// Runs `f` on a private runtime in its own thread (usable from sync tests).
fn blocking<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f))
        .join()
        .unwrap()
}

/// A temporary home for one Lynx: its database and environment.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
    pub database_url: String,
    /// PostgreSQL: the admin URL, and the database, dropped with the sandbox.
    pg: Option<(String, lynx_store::scratch::ScratchDatabase)>,
}

impl Sandbox {
    pub fn new(engine: Engine) -> Self {
        // Under target/ rather than /tmp, so `prod` mode (which refuses a temporary store) can be tested too.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (database_url, pg) = match engine {
            Engine::Sqlite => (format!("sqlite://{}", dir.path().join("lynx.db").display()), None),
            Engine::Postgres(admin) => {
                let a = admin.clone();
                let db = blocking(async move { lynx_store::scratch::ScratchDatabase::create(&a, "lynx_e2e").await })
                    .expect("LYNX_TEST_POSTGRES_URL reachable");
                (db.url().to_string(), Some((admin, db)))
            }
        };
        let mut env = HashMap::new();
        env.insert("LYNX_DATABASE_URL".into(), database_url.clone());
        env.insert("LYNX_BIND".into(), "127.0.0.1:0".into());
        env.insert("LYNX_MODE".into(), "dev".into());
        if pg.is_some() {
            // A server keeps its whole pool open; tests run several servers at once on one PostgreSQL
            // (100 connections), and none of them needs sixteen.
            env.insert("LYNX_DB_POOL_SIZE".into(), "4".into());
        }
        Self { dir, env, database_url, pg }
    }

    /// PostgreSQL: the URL of the server's admin database (for causing an outage, say).
    pub fn admin_url(&self) -> Option<String> {
        self.pg.as_ref().map(|(admin, _)| admin.clone())
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(LYNX);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(&self.env).current_dir(self.dir.path());
        cmd
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a CLI command that must succeed, returning its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "lynx {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates an API key through the CLI and returns its secret and key_id.
    pub fn create_key(&self, tenant: &str, user: &str) -> (String, String) {
        let out = self.cli_ok(&["keys", "create", "--tenant", tenant, "--user", user, "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        (v["api_key"].as_str().unwrap().to_string(), v["key_id"].as_str().unwrap().to_string())
    }

    /// A key of a user who was active when the key was made and whom the Kernel now marks inactive
    /// (`lynx keys create` refuses inactive users, so the key is made under a Kernel file where the user
    /// is still active). The sandbox goes on with its own Kernel.
    pub fn key_of_deactivated_user(&self, tenant: &str, user: &str) -> String {
        let mut kernel = demo_kernel();
        for t in kernel["tenants"].as_array_mut().unwrap().iter_mut().filter(|t| t["tenant_id"] == tenant) {
            for u in t["users"].as_array_mut().unwrap().iter_mut().filter(|u| u["user_id"] == user) {
                u["active"] = Value::Bool(true);
            }
        }
        let path = self.dir.path().join("kernel-before-deactivation.json");
        std::fs::write(&path, kernel.to_string()).unwrap();
        let out = self
            .command()
            .env("LYNX_KERNEL_FILE", &path)
            .args(["keys", "create", "--tenant", tenant, "--user", user, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["api_key"].as_str().unwrap().to_string()
    }

    /// Starts `lynx serve` and waits until it listens.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// Starts `lynx serve` with extra environment (another instance on the same database, say).
    pub fn serve_with(&self, extra: &[(&str, &str)]) -> Server {
        let mut cmd = self.command();
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let done = line.contains("listening on http://");
                lines.push(line);
                if done {
                    let _ = tx.send(lines.clone());
                }
            }
        });
        let lines = rx.recv_timeout(Duration::from_secs(30)).expect("lynx serve did not start listening");
        let listen = lines.last().unwrap();
        let addr = listen.split("http://").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        Server { child, base: format!("http://{addr}"), startup_output: lines }
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub startup_output: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest is built without a TLS provider of its own (Lynx installs ring); tests do the same.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

impl Server {
    pub fn http(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = self.http().get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An MCP client over streamable HTTP, authenticated with `key`.
    pub async fn mcp(&self, key: &str) -> Client {
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base)).auth_header(key.to_string());
        let transport = StreamableHttpClientTransport::with_client(http_client(), config);
        ().serve(transport).await.expect("MCP client connects over HTTP")
    }
}

/// An MCP client over stdio: `lynx mcp` as a child process with `LYNX_API_KEY`.
pub async fn mcp_stdio(sandbox: &Sandbox, key: &str) -> Client {
    let mut cmd = tokio::process::Command::new(LYNX);
    cmd.env_clear().envs(&sandbox.env).env("LYNX_API_KEY", key).arg("mcp").current_dir(sandbox.dir.path());
    let (transport, _stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::null()).spawn().unwrap();
    ().serve(transport).await.expect("MCP client connects over stdio")
}

/// An MCP client over stdio in dev mode, where `--tenant/--user` stand in for a key.
pub async fn mcp_stdio_dev(sandbox: &Sandbox, tenant: &str, user: &str) -> Client {
    let mut cmd = tokio::process::Command::new(LYNX);
    cmd.env_clear().envs(&sandbox.env).args(["mcp", "--tenant", tenant, "--user", user]).current_dir(sandbox.dir.path());
    let (transport, _stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::null()).spawn().unwrap();
    ().serve(transport).await.expect("MCP client connects over stdio")
}

/// One tool call. Every answer — success or refusal — is checked against the output schema the server
/// published for the tool (`contract::check_result`), as the official SDKs check it.
pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    try_call(client, tool, args).await.expect("tools/call answered")
}

/// A tool call that may fail at the protocol level (a server going away mid-test); an answer that
/// arrives is checked against the published schema like any other.
pub async fn try_call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult, rmcp::ServiceError> {
    let args = match args {
        Value::Object(map) => map,
        _ => panic!("arguments must be an object"),
    };
    let result = client.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args)).await?;
    crate::contract::check_result(tool, &result).await;
    Ok(result)
}

/// A call that must succeed; returns its structured output.
pub async fn call_ok(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await;
    assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.structured_content);
    assert!(run_id(&r).is_some(), "{tool}: every result carries lynx/run_id");
    let structured = r.structured_content.expect("structured output");
    // For clients that read only text: the same JSON, serialized.
    let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.as_str()).expect("a text content block");
    assert_eq!(serde_json::from_str::<Value>(text).expect("text content is JSON"), structured, "{tool}: text and structured content agree");
    structured
}

/// A call that must be refused; returns its `error` object.
pub async fn call_err(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(true), "{tool} should have been refused: {:?}", r.structured_content);
    let error = r.structured_content.as_ref().expect("structured error")["error"].clone();
    assert_eq!(error["run_id"].as_str(), run_id(&r).as_deref(), "the error names the run");
    assert!(error["hint"].as_str().is_some_and(|h| !h.is_empty()), "refusals say what to do next");
    error
}

pub fn run_id(r: &CallToolResult) -> Option<String> {
    r.meta.as_ref()?.0.get("lynx/run_id")?.as_str().map(str::to_string)
}

impl Server {
    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let resp = self.http().post(format!("{}{path}", self.base)).bearer_auth(key).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Approves a draft through the HTTP API; returns the decision's answer.
    pub async fn approve(&self, key: &str, draft_id: &str) -> Value {
        let (status, body) = self.post(&format!("/api/drafts/{draft_id}/approve"), key, serde_json::json!({"notes": "looks right"})).await;
        assert_eq!(status, 200, "approve: {body}");
        body
    }
}

/// One SQL count against the sandbox's database, for checking invariants from outside.
pub async fn count(sandbox: &Sandbox, sql: &str) -> i64 {
    scalar::<i64>(sandbox, sql).await.expect("count query")
}

/// One value from a query against the sandbox's database, as a client other than Lynx would read it.
pub async fn scalar<T>(sandbox: &Sandbox, sql: &str) -> Result<T, String>
where
    T: Send + Unpin + 'static + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if sandbox.is_postgres() {
        let mut db = sqlx::PgConnection::connect(&sandbox.database_url).await.map_err(|e| e.to_string())?;
        sqlx::query_scalar(sql).fetch_one(&mut db).await.map_err(|e| e.to_string())
    } else {
        let mut db = sqlx::SqliteConnection::connect(&sandbox.database_url).await.map_err(|e| e.to_string())?;
        sqlx::query_scalar(sql).fetch_one(&mut db).await.map_err(|e| e.to_string())
    }
}

/// Runs a statement against the sandbox's database directly; returns the rows affected or the error.
pub async fn execute(sandbox: &Sandbox, sql: &str) -> Result<u64, String> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if sandbox.is_postgres() {
        let mut db = sqlx::PgConnection::connect(&sandbox.database_url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut db).await.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    } else {
        let mut db = sqlx::SqliteConnection::connect(&sandbox.database_url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut db).await.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    }
}

pub fn payment_args(vendor: &str, amount: &str) -> Value {
    serde_json::json!({"vendor_id": vendor, "amount": amount, "currency": "USD", "due_date": "2026-12-31", "invoice_refs": ["INV-1001"]})
}

/// Creates, submits and approves a payment draft; returns its id.
pub async fn approved_payment(server: &Server, agent: &Client, approver: &str, amount: &str) -> String {
    let draft = call_ok(agent, "vpm.cluster.payment.draft.create", payment_args("V-001", amount)).await;
    let id = draft["draft_id"].as_str().unwrap().to_string();
    call_ok(agent, "docs.cell.draft.submit_for_approval", serde_json::json!({"draft_id": id})).await;
    server.approve(approver, &id).await;
    id
}

/// A port that was free a moment ago (for a server that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A raw `tools/call` on `/mcp` for floods and limits: the tool result, or `None` when the request
/// itself failed (a connection refused under load).
pub async fn quick_call(http: &reqwest::Client, base: &str, key: &str, tool: &str) -> Option<Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let resp = http
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .ok()?;
    let v: Value = resp.json().await.ok()?;
    Some(v["result"].clone())
}

/// Whether a tool result is a `RATE_LIMITED` refusal.
pub fn limited(result: &Value) -> bool {
    result["structuredContent"]["error"]["code"] == "RATE_LIMITED"
}
