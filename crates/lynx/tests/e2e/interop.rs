//! The official MCP TypeScript SDKs against the real binary: `interop/tests/mcp-sdk.test.mjs` runs the v1
//! SDK (2025-11-25, `initialize` session) and the v2 client (2026-07-28) over streamable HTTP and stdio,
//! calls every tool through the lifecycle, follows a 2-approval payment by polling its status, reads it as a
//! resource, and fails on any validation error or warning the SDKs print.
//! Skipped only where Node.js is absent; the npm packages are installed from `interop/package-lock.json`
//! when they are missing.

use std::{path::PathBuf, process::Command};

use crate::helpers::*;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The interop packages, installed exactly as locked when they are not there yet.
fn ensure_packages() {
    let dir = interop_dir();
    for package in ["@modelcontextprotocol/sdk", "@modelcontextprotocol/client"] {
        if !dir.join("node_modules").join(package).join("package.json").exists() {
            let out = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).output().expect("npm runs");
            assert!(out.status.success(), "npm ci in interop/ failed:\n{}", String::from_utf8_lossy(&out.stderr));
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_typescript_sdks_accept_every_answer() {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("skipped: node is not installed (the official TypeScript SDK clients need it)");
        return;
    }
    ensure_packages();
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let (second_approver_key, _) = sandbox.create_key("tenant-123", "approver-002");
    let server = sandbox.serve();
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/mcp-sdk.test.mjs"])
        .current_dir(interop_dir())
        .env("BASE_URL", &server.base)
        .env("AGENT_KEY", &agent_key)
        .env("APPROVER_KEY", &approver_key)
        .env("SECOND_APPROVER_KEY", &second_approver_key)
        .env("LYNX_BIN", LYNX)
        .env("LYNX_DATABASE_URL", &sandbox.database_url)
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the official SDK clients failed:\n{report}");
    assert!(report.contains("ℹ pass 4") && report.contains("ℹ fail 0"), "all four client variants ran:\n{report}");
    // The four sessions left their audit trail, and it verifies.
    assert!(sandbox.cli(&["audit", "verify"]).status.success());
}
