//! The audit trail is tamper-evident: `lynx audit verify` passes on an honest trail and, after one row
//! is edited directly in the database (past the append-only trigger, as the database's owner could),
//! fails naming that row. What the chain alone cannot catch is in `audit_anchor.rs`.

use serde_json::json;

use crate::helpers::*;

pub async fn editing_one_audit_row_is_detected_and_named(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (acme, _) = sandbox.create_key("tenant-123", "agent-001");
    let (globex, _) = sandbox.create_key("tenant-456", "agent-456");
    {
        let server = sandbox.serve();
        let a = server.mcp(&acme).await;
        let b = server.mcp(&globex).await;
        for _ in 0..3 {
            call_ok(&a, "tenant.domain.profile.read", json!({})).await;
            call_ok(&b, "docs.domain.registry.read", json!({})).await;
        }
        call_err(&a, "audit.domain.run.read", json!({"limit": 1000})).await;
    }
    let out = sandbox.cli_ok(&["audit", "verify"]);
    assert!(out.contains("✅ tenant-123") && out.contains("✅ tenant-456"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&sandbox.cli_ok(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(report["ok"], true);

    // Tamper with tenant-123's sixth event, as someone with database access might.
    let event_id: String =
        scalar(&sandbox, "SELECT CAST(event_id AS TEXT) FROM lynx_audit_events WHERE tenant_id = 'tenant-123' AND seq = 6").await.unwrap();
    let edit = format!("UPDATE lynx_audit_events SET actor_id = 'someone-else' WHERE event_id = '{event_id}'");
    assert!(execute(&sandbox, &edit).await.unwrap_err().contains("append-only"), "the database refuses the edit");
    let walls = if sandbox.is_postgres() { "ALTER TABLE lynx_audit_events DISABLE TRIGGER lynx_audit_events_no_update" } else { "DROP TRIGGER lynx_audit_events_no_update" };
    execute(&sandbox, walls).await.unwrap();
    assert_eq!(execute(&sandbox, &edit).await, Ok(1), "past the wall, as its owner could");

    let out = sandbox.cli(&["audit", "verify"]);
    assert!(!out.status.success(), "verification must fail");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("❌ tenant-123: chain broken at seq 6"), "{text}");
    assert!(text.contains(&event_id), "names the row: {text}");
    assert!(text.contains("✅ tenant-456"), "other tenants' chains are unaffected: {text}");

    // Deleting rows is refused by the database itself.
    let deleted = execute(&sandbox, "DELETE FROM lynx_audit_events WHERE seq = 1").await;
    assert!(deleted.unwrap_err().contains("append-only"), "the audit table is append-only");
}

pub async fn audit_tail_shows_the_newest_events(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (acme, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let a = server.mcp(&acme).await;
    let r = call(&a, "system.domain.health.read", json!({})).await;
    let run = run_id(&r).unwrap();
    let out = sandbox.cli_ok(&["audit", "tail", "-n", "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "header and two events: {out}");
    assert!(lines[1].contains("STARTED") && lines[2].contains("SUCCEEDED") && lines[2].contains(&run), "{out}");
    let json: serde_json::Value = serde_json::from_str(&sandbox.cli_ok(&["audit", "tail", "--tenant", "tenant-123", "--json"])).unwrap();
    assert!(json.as_array().unwrap().iter().any(|e| e["tool_id"] == "lynx.keys.create" && e["event_type"] == "human_action"));
}
