//! PostgreSQL in production shape: three Lynx instances on one database keep exactly-once, request-id
//! replay, maintenance mode and the audit chain; row-level security walls tenants off for other
//! database clients; the runbook's SQL runs verbatim; a Supabase project gets the runbook's status line.
//! These run when `LYNX_TEST_POSTGRES_URL` is set (CI sets it).

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database_keep_every_guarantee() {
    let Some(engine) = Engine::postgres("three_instances_on_one_database_keep_every_guarantee") else { return };
    let sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let servers: Vec<Server> = ["lynx-a", "lynx-b", "lynx-c"].iter().map(|id| sandbox.serve_with(&[("LYNX_INSTANCE_ID", id)])).collect();
    let agent = servers[0].mcp(&agent_key).await;
    let id = approved_payment(&servers[1], &agent, &approver_key, "64.00").await;

    // 48 concurrent executions of one approved draft, spread over the three instances.
    let mut tasks = Vec::new();
    for i in 0..48 {
        let client = servers[i % 3].mcp(&agent_key).await;
        let args = json!({"draft_id": id, "request_id": format!("multi-{i}")});
        tasks.push(tokio::spawn(async move { call(&client, "vpm.cell.payment.execute", args).await }));
    }
    let mut succeeded = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.is_error == Some(true) {
            let code = r.structured_content.unwrap()["error"]["code"].as_str().unwrap().to_string();
            assert!(code == "ALREADY_EXECUTED" || code == "EXECUTION_IN_PROGRESS", "{code}");
        } else {
            succeeded += 1;
        }
    }
    assert_eq!(succeeded, 1, "exactly one execution across three instances");
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_executions WHERE draft_id = '{id}' AND status = 'SUCCEEDED' AND tool_id = 'vpm.cell.payment.execute'")).await, 1);
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_payments WHERE draft_id = '{id}'")).await, 1);
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM settlement_intents").await, 1);

    // 48 concurrent creations with one request_id, spread: one draft, identical answers.
    let mut args = payment_args("V-001", "12.34");
    args["request_id"] = json!("multi-instance-request");
    let mut tasks = Vec::new();
    for i in 0..48 {
        let client = servers[i % 3].mcp(&agent_key).await;
        let args = args.clone();
        tasks.push(tokio::spawn(async move { call_ok(&client, "vpm.cluster.payment.draft.create", args).await }));
    }
    let mut answers: Vec<Value> = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]));
    assert_eq!(count(&sandbox, "SELECT COUNT(*) FROM lynx_drafts WHERE request_id = 'multi-instance-request'").await, 1);

    // Maintenance switched from one place is honoured by every instance (well within 5 seconds).
    sandbox.cli_ok(&["maintenance", "on"]);
    let started = std::time::Instant::now();
    for server in &servers {
        let client = server.mcp(&agent_key).await;
        let e = call_err(&client, "vpm.cell.payment.execute", json!({"draft_id": id})).await;
        assert_eq!(e["code"], "MAINTENANCE_MODE");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    sandbox.cli_ok(&["maintenance", "off"]);

    // One audit chain per tenant, written by all three instances, intact.
    let out = sandbox.cli_ok(&["audit", "verify"]);
    assert!(out.contains("✅ tenant-123") && out.contains("Audit trail verified."), "{out}");
    let instances = count(&sandbox, "SELECT COUNT(DISTINCT instance_id) FROM lynx_audit_events WHERE tenant_id = 'tenant-123' AND event_type = 'tool_call' AND instance_id LIKE 'lynx-%'").await;
    assert_eq!(instances, 3, "calls from all three instances are in the chain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_level_security_walls_tenants_off_for_other_sessions() {
    let Some(engine) = Engine::postgres("row_level_security_walls_tenants_off_for_other_sessions") else { return };
    let sandbox = Sandbox::new(engine);
    let (acme, _) = sandbox.create_key("tenant-123", "agent-001");
    let (globex, _) = sandbox.create_key("tenant-456", "admin-456");
    {
        let server = sandbox.serve();
        let a = server.mcp(&acme).await;
        let b = server.mcp(&globex).await;
        call_ok(&a, "vpm.cluster.payment.draft.create", payment_args("V-001", "1.00")).await;
        call_ok(&b, "workflow.cluster.draft.create", json!({"workflow_kind": "k", "name": "n", "steps": [{"name": "s"}]})).await;
    }
    let mut db = sqlx::PgConnection::connect(&sandbox.database_url).await.unwrap();
    for sql in [
        "DO $$ BEGIN CREATE ROLE lynx_rls_probe NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO lynx_rls_probe",
        "SET ROLE lynx_rls_probe",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.unwrap();
    }
    let n = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    // No tenant named: nothing.
    assert_eq!(n("SELECT COUNT(*) FROM lynx_drafts").fetch_one(&mut db).await.unwrap(), 0);
    assert_eq!(n("SELECT COUNT(*) FROM lynx_audit_events").fetch_one(&mut db).await.unwrap(), 0);
    // Tenant A: A's rows, none of B's, even when asked for by name.
    sqlx::query("SET lynx.tenant_id = 'tenant-123'").execute(&mut db).await.unwrap();
    assert_eq!(n("SELECT COUNT(*) FROM lynx_drafts WHERE tenant_id = 'tenant-456'").fetch_one(&mut db).await.unwrap(), 0);
    assert_eq!(n("SELECT COUNT(*) FROM lynx_audit_events WHERE tenant_id = 'tenant-456'").fetch_one(&mut db).await.unwrap(), 0);
    assert_eq!(n("SELECT COUNT(*) FROM lynx_api_keys WHERE tenant_id = 'tenant-456'").fetch_one(&mut db).await.unwrap(), 0);
    let rows = sqlx::query("SELECT tenant_id FROM lynx_drafts").fetch_all(&mut db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String, _>("tenant_id"), "tenant-123");
    assert!(n("SELECT COUNT(*) FROM lynx_audit_events").fetch_one(&mut db).await.unwrap() > 0);
    sqlx::query("RESET ROLE").execute(&mut db).await.unwrap();
}

/// The runbook's SQL, exactly as the runbook prints it.
const DIAGNOSE_DRAFTS: &str = "-- Query drafts for tenant
SELECT draft_id, draft_type, status, created_at, risk_level
FROM lynx_drafts
WHERE tenant_id = 'tenant-123'
ORDER BY created_at DESC
LIMIT 10;";
const DIAGNOSE_EXECUTIONS: &str = "-- Query executions for tenant
SELECT execution_id, draft_id, tool_id, status, created_at, completed_at
FROM lynx_executions
WHERE tenant_id = 'tenant-123'
ORDER BY created_at DESC
LIMIT 10;";
const DIAGNOSE_AUDIT: &str = "-- Query audit events
SELECT run_id, tool_id, status, created_at, error_message
FROM lynx_audit_events
WHERE tenant_id = 'tenant-123'
ORDER BY created_at DESC
LIMIT 20;";
const MONITOR_SUCCESS: &str = "SELECT status, COUNT(*) FROM lynx_executions GROUP BY status";
const MONITOR_FAILED: &str = "SELECT * FROM lynx_executions WHERE status = 'FAILED'";
const MONITOR_SETTLEMENTS: &str = "SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued'";
const EMERGENCY_STUCK: &str = "-- Mark stuck executions as failed
UPDATE lynx_executions
SET status = 'FAILED',
    error_message = 'Manual intervention: execution stuck',
    completed_at = NOW()
WHERE status = 'STARTED'
  AND created_at < NOW() - INTERVAL '1 hour';";
const EMERGENCY_RESET: &str = "-- Reset draft to DRAFT (use with caution)
UPDATE lynx_drafts
SET status = 'DRAFT'
WHERE draft_id = 'xxx'
  AND tenant_id = 'yyy';";

#[test]
fn the_sql_here_is_the_runbooks_verbatim() {
    let runbook = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/LYNX-RUNBOOK.md");
    let Ok(text) = std::fs::read_to_string(&runbook) else {
        eprintln!("skipped: the runbook is not beside this checkout");
        return;
    };
    for sql in [DIAGNOSE_DRAFTS, DIAGNOSE_EXECUTIONS, DIAGNOSE_AUDIT, MONITOR_SUCCESS, MONITOR_FAILED, MONITOR_SETTLEMENTS, EMERGENCY_STUCK, EMERGENCY_RESET] {
        assert!(text.contains(sql), "not verbatim from the runbook:\n{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_runbooks_sql_runs_verbatim_and_returns_what_it_promises() {
    let Some(engine) = Engine::postgres("the_runbooks_sql_runs_verbatim_and_returns_what_it_promises") else { return };
    let mut sandbox = Sandbox::new(engine);
    let (agent_key, _) = sandbox.create_key("tenant-123", "agent-001");
    let (approver_key, _) = sandbox.create_key("tenant-123", "approver-001");
    let (paid_draft, stuck_draft, submitted_draft);
    {
        let server = sandbox.serve();
        let agent = server.mcp(&agent_key).await;
        paid_draft = approved_payment(&server, &agent, &approver_key, "40.00").await;
        call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": paid_draft})).await;
        stuck_draft = approved_payment(&server, &agent, &approver_key, "41.00").await;
        let d = call_ok(&agent, "vpm.cluster.payment.draft.create", payment_args("V-001", "42.00")).await;
        submitted_draft = d["draft_id"].as_str().unwrap().to_string();
        call_ok(&agent, "docs.cell.draft.submit_for_approval", json!({"draft_id": submitted_draft})).await;
    }
    // A claim left STARTED by a crash, for the stuck-execution procedure.
    sandbox.env.insert("LYNX_FAILPOINT_AFTER_CLAIM_MS".into(), "10000".into());
    {
        let mut server = sandbox.serve();
        let client = server.mcp(&agent_key).await;
        let args = json!({"draft_id": stuck_draft});
        tokio::spawn(async move {
            let _ = try_call(&client, "vpm.cell.payment.execute", args).await;
        });
        for _ in 0..100 {
            if count(&sandbox, "SELECT COUNT(*) FROM lynx_executions WHERE status = 'STARTED'").await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    }
    sandbox.env.remove("LYNX_FAILPOINT_AFTER_CLAIM_MS");

    let mut db = sqlx::PgConnection::connect(&sandbox.database_url).await.unwrap();
    let rows = |sql: &'static str| sqlx::query(sqlx::AssertSqlSafe(sql));

    let drafts = rows(DIAGNOSE_DRAFTS).fetch_all(&mut db).await.unwrap();
    assert_eq!(drafts.len(), 3);
    let statuses: Vec<String> = drafts.iter().map(|r| r.get("status")).collect();
    assert_eq!(statuses, vec!["SUBMITTED", "APPROVED", "EXECUTED"], "newest first");
    assert_eq!(drafts[0].get::<String, _>("draft_type"), "vpm_payment");
    assert_eq!(drafts[0].get::<String, _>("risk_level"), "medium");

    let executions = rows(DIAGNOSE_EXECUTIONS).fetch_all(&mut db).await.unwrap();
    let statuses: Vec<(String, String)> = executions.iter().map(|r| (r.get("tool_id"), r.get("status"))).collect();
    assert!(statuses.contains(&("vpm.cell.payment.execute".into(), "SUCCEEDED".into())));
    assert!(statuses.contains(&("vpm.cell.payment.execute".into(), "STARTED".into())));
    assert!(executions.iter().any(|r| r.get::<Option<chrono::DateTime<chrono::Utc>>, _>("completed_at").is_some()));

    let audit = rows(DIAGNOSE_AUDIT).fetch_all(&mut db).await.unwrap();
    assert!((10..=20).contains(&audit.len()), "at most the 20 newest events: {}", audit.len());
    assert!(audit.iter().any(|r| r.get::<String, _>("tool_id") == "vpm.cell.payment.execute" && r.get::<String, _>("status") == "SUCCEEDED"));

    let by_status: Vec<(String, i64)> = sqlx::query_as(MONITOR_SUCCESS).fetch_all(&mut db).await.unwrap();
    let get = |s: &str| by_status.iter().find(|(k, _)| k == s).map(|(_, n)| *n).unwrap_or(0);
    assert_eq!((get("SUCCEEDED"), get("STARTED")), (4, 1), "three submits and one payment succeeded; one claim is stuck: {by_status:?}");
    let queued: i64 = sqlx::query_scalar(MONITOR_SETTLEMENTS).fetch_one(&mut db).await.unwrap();
    assert_eq!(queued, 1);
    assert_eq!(rows(MONITOR_FAILED).fetch_all(&mut db).await.unwrap().len(), 0);
    // Monitoring 2 gives no query; this is the measurement it names: time from SUBMITTED to APPROVED.
    let avg: f64 = sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM AVG(approved_at - submitted_at))::float8 FROM lynx_drafts WHERE approved_at IS NOT NULL")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!((0.0..60.0).contains(&avg), "{avg}");

    // Emergency: the stuck claim, once it is over an hour old, is failed by the runbook's UPDATE.
    let fresh = rows(EMERGENCY_STUCK).execute(&mut db).await.unwrap();
    assert_eq!(fresh.rows_affected(), 0, "a claim younger than an hour is left alone");
    sqlx::query("UPDATE lynx_executions SET created_at = NOW() - INTERVAL '2 hours' WHERE status = 'STARTED'").execute(&mut db).await.unwrap();
    let cleared = rows(EMERGENCY_STUCK).execute(&mut db).await.unwrap();
    assert_eq!(cleared.rows_affected(), 1);
    let failed = rows(MONITOR_FAILED).fetch_all(&mut db).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].get::<String, _>("error_message"), "Manual intervention: execution stuck");
    assert!(failed[0].get::<Option<chrono::DateTime<chrono::Utc>>, _>("completed_at").is_some());

    // Emergency: reset a draft (the runbook's placeholders filled in).
    let reset = EMERGENCY_RESET.replace("'xxx'", &format!("'{submitted_draft}'")).replace("'yyy'", "'tenant-123'");
    let done = sqlx::query(sqlx::AssertSqlSafe(reset)).execute(&mut db).await.unwrap();
    assert_eq!(done.rows_affected(), 1);
    let status: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT status FROM lynx_drafts WHERE draft_id = '{submitted_draft}'")))
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(status, "DRAFT");

    // After the SQL procedure, the stuck draft executes exactly once.
    let server = sandbox.serve();
    let agent = server.mcp(&agent_key).await;
    call_ok(&agent, "vpm.cell.payment.execute", json!({"draft_id": stuck_draft})).await;
    assert_eq!(count(&sandbox, &format!("SELECT COUNT(*) FROM lynx_payments WHERE draft_id = '{stuck_draft}'")).await, 1);
}

/// A stand-in for a Supabase project's REST endpoint: answers every request with `status`.
async fn fake_supabase(status: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let reply = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supabase_project_gets_the_runbooks_status_line() {
    let Some(engine) = Engine::postgres("a_supabase_project_gets_the_runbooks_status_line") else { return };
    let mut sandbox = Sandbox::new(engine);
    let (port, task) = fake_supabase(200).await;
    sandbox.env.insert("SUPABASE_URL".into(), format!("http://127.0.0.1:{port}"));
    sandbox.env.insert("SUPABASE_KEY".into(), "service-key".into());
    let out = sandbox.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\nSupabase: ✅ Reachable"), "{text}");
    task.abort();
    let (port, _task) = fake_supabase(401).await;
    sandbox.env.insert("SUPABASE_URL".into(), format!("http://127.0.0.1:{port}"));
    let out = sandbox.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("Supabase: ❌ Unreachable") && text.contains("HTTP 401"), "{text}");
}

/// The production set-up of README.md: the owner migrates, Lynx serves as `lynx_app` with the grants
/// of `deploy/postgres-grants.sql`, and `lynx_app` can neither change nor remove audit rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lynx_serves_as_a_role_that_cannot_rewrite_the_audit() {
    let Some(engine) = Engine::postgres("lynx_serves_as_a_role_that_cannot_rewrite_the_audit") else { return };
    let mut sandbox = Sandbox::new(engine);
    sandbox.cli_ok(&["migrate"]);
    let mut owner = sqlx::PgConnection::connect(&sandbox.database_url).await.unwrap();
    sqlx::query("DO $$ BEGIN CREATE ROLE lynx_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$").execute(&mut owner).await.unwrap();
    let grants = std::fs::read_to_string(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/postgres-grants.sql")).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(grants)).execute(&mut owner).await.unwrap();
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let signing = sandbox.dir.path().join("audit.key");
    sandbox.cli_ok(&["audit", "keygen", "--out", signing.to_str().unwrap()]);
    sandbox.env.insert("LYNX_AUDIT_SIGNING_KEY".into(), signing.display().to_string());

    // Lynx as lynx_app: it starts (nothing to migrate, so no DDL), serves, audits, checkpoints.
    let app_url = sandbox.database_url.replacen("postgres://postgres@", "postgres://lynx_app@", 1);
    assert_ne!(app_url, sandbox.database_url, "the scratch URL names the postgres user");
    sandbox.env.insert("LYNX_DATABASE_URL".into(), app_url.clone());
    let server = sandbox.serve();
    let client = server.mcp(&key).await;
    call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    client.cancel().await.unwrap();
    drop(server);
    let out = sandbox.cli_ok(&["audit", "checkpoint"]);
    assert!(out.contains("✅ tenant-123"), "{out}");

    let mut app = sqlx::PgConnection::connect(&app_url).await.unwrap();
    sqlx::query("SET lynx.tenant_id = '*'").execute(&mut app).await.unwrap();
    for sql in [
        "UPDATE lynx_audit_events SET actor_id = 'x'",
        "DELETE FROM lynx_audit_events",
        "TRUNCATE lynx_audit_events",
        "ALTER TABLE lynx_audit_events DISABLE TRIGGER USER",
        "DELETE FROM lynx_audit_checkpoints",
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut app).await.unwrap_err().to_string();
        assert!(e.contains("permission denied") || e.contains("must be owner"), "{sql}: {e}");
    }
    assert!(sandbox.cli_ok(&["audit", "verify"]).contains("Audit trail verified."));
}
