//! The operator CLI: `lynx status` prints the runbook's block with live values and fails when
//! something is unreachable; configuration errors name the variable; every command has `--help`.

use lynx_model::Layer;
use serde_json::json;

use crate::{contract::{all_tool_ids, tool_ids}, helpers::*};

pub async fn status_prints_the_runbook_block_with_live_values(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    // An operator's key and directory: dev creates them only beside a SQLite database.
    crate::audit_anchor::anchored(&mut sandbox);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    {
        let server = sandbox.serve();
        let client = server.mcp(&key).await;
        call_ok(&client, "tenant.domain.profile.read", json!({})).await;
        call_err(&client, "audit.domain.run.read", json!({"limit": -1})).await;
    }
    let out = sandbox.cli(&["status"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Lynx AI Status");
    assert_eq!(lines[1], "==============");
    let registry = format!(
        "Tool Registry: {} tools registered ({} Domain, {} Cluster, {} Cell)",
        all_tool_ids().len(),
        tool_ids(Layer::Domain).len(),
        tool_ids(Layer::Cluster).len(),
        tool_ids(Layer::Cell).len()
    );
    assert_eq!(lines[2], registry, "{text}");
    assert_eq!(lines[3], "Protocol Version: 0.1.0");
    assert_eq!(lines[4], "Toolset Version: 0.1.0");
    assert_eq!(lines[5], "");
    assert!(lines[6].starts_with("Kernel API: ✅ Reachable"), "{text}");
    let storage = if sandbox.is_postgres() { "Storage (PostgreSQL): ✅ Reachable" } else { "Storage (SQLite): ✅ Reachable" };
    assert!(lines[7].starts_with(storage), "{text}");
    assert!(text.contains("\nMode: dev\n"));
    let anchors = text.split("Audit Checkpoints:\n").nth(1).expect("an Audit Checkpoints section");
    let tenant = anchors.lines().next().unwrap();
    assert!(tenant.starts_with("- tenant-123: ") && tenant.contains("no signed checkpoint yet; never verified"), "{text}");
    let runs = text.split("Last 5 Runs:\n").nth(1).expect("a Last 5 Runs section");
    let runs: Vec<&str> = runs.lines().collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(runs[0].starts_with("- Run 1: DENIED (20") && runs[0].contains("audit.domain.run.read"), "{text}");
    assert!(runs[1].starts_with("- Run 2: SUCCEEDED (20") && runs[1].contains("tenant.domain.profile.read"), "{text}");

    // Once signed and verified, status says of which size and when.
    sandbox.cli_ok(&["audit", "checkpoint"]);
    sandbox.cli_ok(&["audit", "verify"]);
    let text = sandbox.cli_ok(&["status"]);
    let tenant = text.split("Audit Checkpoints:\n").nth(1).and_then(|a| a.lines().next()).unwrap();
    let rows = tenant.strip_prefix("- tenant-123: ").and_then(|t| t.split(' ').next()).unwrap();
    assert!(tenant.contains(&format!("rows; checkpoint of {rows} rows at 20")), "{text}");
    assert!(tenant.contains("; chain verified at 20"), "{text}");

    let json: serde_json::Value = serde_json::from_str(&sandbox.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(json["audit_anchors"][0]["tenant_id"], "tenant-123", "{json}");
    assert_eq!(json["tools_registered"], all_tool_ids().len());
    assert_eq!(json["healthy"], true);
    assert_eq!(json["last_runs"].as_array().unwrap().len(), 2);
}

#[test]
fn status_fails_when_storage_is_unreachable() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    sandbox.env.insert("LYNX_DATABASE_URL".into(), "sqlite:///nonexistent-dir/deeper/lynx.db".into());
    let out = sandbox.cli(&["status"]);
    assert!(!out.status.success(), "non-zero exit when storage is unreachable");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Storage (SQLite): ❌ Unreachable"), "{text}");
    assert!(text.contains("Kernel API: ✅ Reachable"), "{text}");
}

/// sqlx retries a refused connection for its whole acquire timeout (10 s), taking the server for one
/// still starting; an operator's command says at once what the server answered.
#[test]
fn status_says_at_once_that_postgresql_refuses_connections() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    sandbox.env.insert("LYNX_DATABASE_URL".into(), format!("postgres://lynx@127.0.0.1:{closed}/lynx"));
    let started = std::time::Instant::now();
    let out = sandbox.cli(&["status"]);
    let took = started.elapsed();
    assert!(!out.status.success(), "non-zero exit when storage is unreachable");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Storage (PostgreSQL): ❌ Unreachable") && text.contains("Connection refused"), "{text}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}, as long as sqlx's retries");
    // Any other command says so too, and where to look.
    let out = sandbox.cli(&["keys", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("Connection refused") && err.contains("LYNX_DATABASE_URL"), "{err}");
}

#[test]
fn configuration_errors_name_the_variable_the_value_and_the_allowed_values() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    sandbox.env.insert("LYNX_MODE".into(), "production".into());
    let out = sandbox.cli(&["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LYNX_MODE=\"production\"") && err.contains("dev, staging, prod"), "{err}");
}

#[test]
fn every_command_has_help() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    for cmd in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["mcp", "--help"],
        vec!["status", "--help"],
        vec!["tools", "--help"],
        vec!["migrate", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "tail", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["drafts", "--help"],
        vec!["drafts", "list", "--help"],
        vec!["drafts", "show", "--help"],
        vec!["drafts", "approve", "--help"],
        vec!["drafts", "reject", "--help"],
        vec!["drafts", "cancel", "--help"],
        vec!["drafts", "reset", "--help"],
        vec!["executions", "--help"],
        vec!["executions", "list", "--help"],
        vec!["executions", "show", "--help"],
        vec!["executions", "clear-stuck", "--help"],
        vec!["executions", "rollback", "--help"],
        vec!["settlements", "list", "--help"],
        vec!["settlements", "mark", "--help"],
        vec!["maintenance", "--help"],
        vec!["maintenance", "on", "--help"],
        vec!["maintenance", "off", "--help"],
        vec!["maintenance", "status", "--help"],
    ] {
        let out = sandbox.cli(&cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"), "{cmd:?}");
    }
    let tools = sandbox.cli_ok(&["tools"]);
    assert!(tools.contains("vpm.cell.payment.execute") && tools.contains(&format!("{} tools registered", all_tool_ids().len())));
    let migrate = sandbox.cli_ok(&["migrate"]);
    assert!(migrate.contains("schema is current"));
}
