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

/// A temporary home for one Lynx: its database and environment.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert("LYNX_DATABASE_URL".into(), format!("sqlite://{}", dir.path().join("lynx.db").display()));
        env.insert("LYNX_BIND".into(), "127.0.0.1:0".into());
        env.insert("LYNX_MODE".into(), "dev".into());
        Self { dir, env }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("lynx.db")
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

    /// Starts `lynx serve` and waits until it listens.
    pub fn serve(&self) -> Server {
        let mut child = self.command().arg("serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
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

impl Server {
    pub fn http(&self) -> reqwest::Client {
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
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
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

pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let args = match args {
        Value::Object(map) => map,
        _ => panic!("arguments must be an object"),
    };
    client.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args)).await.expect("tools/call answered")
}

/// A call that must succeed; returns its structured output.
pub async fn call_ok(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await;
    assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.structured_content);
    assert!(run_id(&r).is_some(), "{tool}: every result carries lynx/run_id");
    r.structured_content.expect("structured output")
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
