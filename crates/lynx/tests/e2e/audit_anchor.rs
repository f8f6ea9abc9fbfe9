//! Audit anyone can verify outside the database. Tampering as an attacker with database access would
//! — after dropping the database's own walls — is caught by `lynx audit verify --checkpoints`: the
//! newest row deleted, the newest 50, a whole tenant, one row edited with every later hash
//! recomputed, two rows swapped and re-chained, a checkpoint file re-signed by another key. Each is
//! named; an untampered tenant passes. A run's proof verifies offline, and in Node with its own
//! Ed25519 and SHA-256.

use std::{path::PathBuf, process::Command};

use lynx_model::audit::chain_hash;
use serde_json::{Value, json};

use crate::helpers::*;

/// Tenants of a test Kernel file: copies of the demo's tenant-456, one per kind of tampering.
const TENANTS: [&str; 7] = ["tenant-a", "tenant-b", "tenant-c", "tenant-d", "tenant-e", "tenant-f", "tenant-g"];

fn many_tenants(sandbox: &mut Sandbox) {
    let mut kernel = demo_kernel();
    let template = demo_tenant(&kernel, "tenant-456");
    let tenants = kernel["tenants"].as_array_mut().unwrap();
    for t in TENANTS {
        let mut copy = template.clone();
        copy["tenant_id"] = json!(t);
        tenants.push(copy);
    }
    let path = sandbox.dir.path().join("kernel.json");
    std::fs::write(&path, kernel.to_string()).unwrap();
    sandbox.env.insert("LYNX_KERNEL_FILE".into(), path.display().to_string());
}

/// A signing key and a checkpoint directory, made as an operator would; the verifier key.
pub fn anchored(sandbox: &mut Sandbox) -> (PathBuf, String) {
    let key = sandbox.dir.path().join("audit.key");
    let out = sandbox.cli_ok(&["audit", "keygen", "--out", key.to_str().unwrap(), "--name", "lynx.test"]);
    let vkey = out.lines().last().unwrap().to_string();
    let dir = sandbox.dir.path().join("checkpoints");
    sandbox.env.insert("LYNX_AUDIT_SIGNING_KEY".into(), key.display().to_string());
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_DIR".into(), dir.display().to_string());
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_INTERVAL".into(), "off".into());
    (dir, vkey)
}

/// What an attacker with the database's owner rights does first: switch the append-only walls off.
async fn drop_walls(sandbox: &Sandbox) {
    let statements: &[&str] = if sandbox.is_postgres() {
        &["ALTER TABLE lynx_audit_events DISABLE TRIGGER USER"]
    } else {
        &["DROP TRIGGER lynx_audit_events_no_delete", "DROP TRIGGER lynx_audit_events_no_update"]
    };
    for sql in statements {
        execute(sandbox, sql).await.unwrap();
    }
}

/// Recomputes the chain of `tenant` from `from_seq` on, as a careful attacker would so that the
/// chain walk alone still passes.
async fn rechain(sandbox: &Sandbox, tenant: &str, from_seq: i64) {
    let url = lynx_store::DatabaseUrl::parse(&sandbox.database_url).unwrap();
    let store = lynx_store::connect(&url, lynx_store::Pool::on_demand(2), None).await.unwrap();
    let tenant = lynx_model::TenantId::parse(tenant).unwrap();
    let rows = store.audit_chain_page(&tenant, 0, 100_000).await.unwrap();
    let mut prev = lynx_model::audit::GENESIS_HASH.to_string();
    for row in rows {
        if row.seq >= from_seq {
            let hash = chain_hash(&row.event, row.seq, &prev);
            let sql = format!("UPDATE lynx_audit_events SET prev_hash = '{prev}', hash = '{hash}' WHERE event_id = '{}'", row.event.event_id);
            assert_eq!(execute(sandbox, &sql).await, Ok(1));
            prev = hash;
        } else {
            prev = row.hash;
        }
    }
}

async fn calls(server: &Server, key: &str, n: usize) {
    let client = server.mcp(key).await;
    for _ in 0..n {
        call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    }
    client.cancel().await.unwrap();
}

pub async fn tampering_is_caught_against_the_signed_checkpoints(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    many_tenants(&mut sandbox);
    let (dir, vkey) = anchored(&mut sandbox);
    let keys: Vec<String> = TENANTS.iter().map(|t| sandbox.create_key(t, "agent-456").0).collect();
    let server = sandbox.serve();
    // Two checkpoints per tenant: after 40 rows of calls, and after 60.
    for key in &keys {
        calls(&server, key, 20).await;
    }
    let out = sandbox.cli_ok(&["audit", "checkpoint"]);
    assert_eq!(out.matches("✅").count(), 7, "{out}");
    for key in &keys {
        calls(&server, key, 10).await;
    }
    sandbox.cli_ok(&["audit", "checkpoint"]);
    let again = sandbox.cli_ok(&["audit", "checkpoint"]);
    assert!(!again.contains("✅") && again.contains("unchanged"), "only a grown tree is checkpointed: {again}");
    drop(server);

    let verify = |s: &Sandbox| s.cli(&["audit", "verify", "--checkpoints", dir.to_str().unwrap(), "--key", &vkey]);
    let out = verify(&sandbox);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "an untampered trail passes: {text}");
    assert!(text.contains("✅ tenant-g: 61 rows match 2 signed checkpoint(s), the newest covering 1..61"), "{text}");
    let sizes: Vec<i64> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("tenant-g.").map(|n| n[..12].parse().unwrap())).collect();
    assert_eq!(sizes.len(), 2, "one file per tenant per checkpoint");

    // The walls: rows can be neither changed nor removed while they stand.
    let update = execute(&sandbox, "UPDATE lynx_audit_events SET actor_id = 'x' WHERE tenant_id = 'tenant-a' AND seq = 1").await;
    assert!(update.unwrap_err().contains("append-only"), "UPDATE is refused");
    let delete = execute(&sandbox, "DELETE FROM lynx_audit_events WHERE tenant_id = 'tenant-a'").await;
    assert!(delete.unwrap_err().contains("append-only"), "DELETE is refused");
    if sandbox.is_postgres() {
        assert!(execute(&sandbox, "TRUNCATE lynx_audit_events").await.unwrap_err().contains("append-only"), "TRUNCATE is refused");
    }

    drop_walls(&sandbox).await;
    let max = |t: &str| format!("(SELECT MAX(seq) FROM lynx_audit_events WHERE tenant_id = '{t}')");
    // a: the newest row deleted. b: the newest 50. c: the whole tenant.
    execute(&sandbox, &format!("DELETE FROM lynx_audit_events WHERE tenant_id = 'tenant-a' AND seq = {}", max("tenant-a"))).await.unwrap();
    let b = format!("DELETE FROM lynx_audit_events WHERE tenant_id = 'tenant-b' AND seq > {} - 50", max("tenant-b"));
    assert_eq!(execute(&sandbox, &b).await, Ok(50));
    execute(&sandbox, "DELETE FROM lynx_audit_events WHERE tenant_id = 'tenant-c'").await.unwrap();
    // d: one row edited, every later hash recomputed.
    execute(&sandbox, "UPDATE lynx_audit_events SET actor_id = 'someone-else' WHERE tenant_id = 'tenant-d' AND seq = 50").await.unwrap();
    rechain(&sandbox, "tenant-d", 50).await;
    // e: two rows swapped, then re-chained.
    for sql in [
        "UPDATE lynx_audit_events SET seq = -1 WHERE tenant_id = 'tenant-e' AND seq = 10",
        "UPDATE lynx_audit_events SET seq = 10 WHERE tenant_id = 'tenant-e' AND seq = 11",
        "UPDATE lynx_audit_events SET seq = 11 WHERE tenant_id = 'tenant-e' AND seq = -1",
    ] {
        assert_eq!(execute(&sandbox, sql).await, Ok(1));
    }
    rechain(&sandbox, "tenant-e", 10).await;
    // f: its newest checkpoint file replaced by one signed with another key of the same name.
    let f_file = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().contains("tenant-f.")).max().unwrap();
    let body = std::fs::read_to_string(&f_file).unwrap();
    let body = &body[..body.find("\n\n").unwrap() + 1];
    let impostor = lynx_tlog::NoteSigner::from_seed("lynx.test", [42; 32]).unwrap();
    std::fs::write(&f_file, impostor.sign(body).unwrap()).unwrap();

    let out = verify(&sandbox);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "tampering fails verification: {text}");
    let line = |tenant: &str| text.lines().filter(|l| l.starts_with(&format!("❌ {tenant}:"))).collect::<Vec<_>>().join("\n");
    // The chain alone is fooled by every one of these (they are tail deletions or re-chained)…
    for t in ["tenant-a", "tenant-b", "tenant-d", "tenant-e"] {
        assert!(text.contains(&format!("✅ {t}: ")), "the chain walk alone passes {t}: {text}");
    }
    // …the checkpoints are not.
    assert!(line("tenant-a").contains("truncated") && line("tenant-a").contains("the database ends at seq 60 (seq 61..61 are missing)"), "{text}");
    assert!(line("tenant-b").contains("truncated") && line("tenant-b").contains("the database ends at seq 11 (seq 12..61 are missing)"), "{text}");
    assert!(line("tenant-c").contains("vanished") && line("tenant-c").contains("signs 61 rows of tenant tenant-c; the database has none"), "{text}");
    assert!(line("tenant-d").contains("rewritten") && line("tenant-d").contains("the change is among seq 42..61"), "{text}");
    assert!(line("tenant-e").contains("rewritten") && line("tenant-e").contains("the change is among seq 1..41"), "{text}");
    assert!(line("tenant-f").contains("forged checkpoint") && line("tenant-f").contains(&f_file.display().to_string()), "{text}");
    assert!(text.contains("✅ tenant-g: 61 rows match 2 signed checkpoint(s)"), "the untouched tenant passes: {text}");
    let report: Value = serde_json::from_slice(&sandbox.cli(&["audit", "verify", "--checkpoints", dir.to_str().unwrap(), "--key", &vkey, "--json"]).stdout).unwrap();
    assert_eq!(report["ok"], false);

    // The stored frontier (what the next checkpoint grows from) is doctored: Lynx refuses to sign.
    let walls = if sandbox.is_postgres() { "ALTER TABLE lynx_audit_checkpoints DISABLE TRIGGER USER" } else { "DROP TRIGGER lynx_audit_checkpoints_no_update" };
    execute(&sandbox, walls).await.unwrap();
    let zeros = format!("[{}]", vec![format!("\"{}\"", "00".repeat(32)); 5].join(","));
    let doctor = format!("UPDATE lynx_audit_checkpoints SET frontier = '{zeros}' WHERE tenant_id = 'tenant-g' AND tree_size = 61");
    assert_eq!(execute(&sandbox, &doctor).await, Ok(1));
    sandbox.create_key("tenant-g", "admin-456");
    let out = sandbox.cli(&["audit", "checkpoint"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("❌ tenant-g") && text.contains("does not give its signed head"), "{text}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("tenant-g.")).count(), 2, "nothing new was signed");
}

/// The first run of tenant-123 proven, checked with `verify-proof` without a database, and by Node.
pub async fn a_run_proof_verifies_offline_and_in_another_language(engine: Engine) {
    let mut sandbox = Sandbox::new(engine);
    let (_dir, vkey) = anchored(&mut sandbox);
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let client = server.mcp(&agent).await;
    let r = call(&client, "vpm.domain.vendor.read", json!({"vendor_id": "V-001"})).await;
    let run = run_id(&r).unwrap();
    for _ in 0..9 {
        call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    }
    client.cancel().await.unwrap();
    let not_yet = sandbox.cli(&["audit", "prove", "--run", &run]);
    assert!(!not_yet.status.success() && String::from_utf8_lossy(&not_yet.stderr).contains("not yet covered by a signed checkpoint"));
    sandbox.cli_ok(&["audit", "checkpoint"]);
    let proof_path = sandbox.dir.path().join("proof.json");
    sandbox.cli_ok(&["audit", "prove", "--run", &run, "-o", proof_path.to_str().unwrap()]);
    let proof: Value = serde_json::from_str(&std::fs::read_to_string(&proof_path).unwrap()).unwrap();
    assert_eq!(proof["entries"].as_array().unwrap().len(), 2, "the run's STARTED and SUCCEEDED rows");
    drop(server);

    // Offline: the database is out of reach, and not needed.
    let offline = |path: &std::path::Path| {
        Command::new(LYNX)
            .env_clear()
            .env("LYNX_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .args(["audit", "verify-proof", path.to_str().unwrap(), "--key", &vkey])
            .output()
            .unwrap()
    };
    let out = offline(&proof_path);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("are in lynx.test/tenants/tenant-123's signed tree"));

    // A row altered inside the proof, or a proof against another key, does not hold.
    let mut altered = proof.clone();
    altered["entries"][0]["row"]["actor_id"] = json!("someone-else");
    let altered_path = sandbox.dir.path().join("altered.json");
    std::fs::write(&altered_path, altered.to_string()).unwrap();
    let out = offline(&altered_path);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("the row's content does not give its hash"));

    // Node.js, with its own SHA-256, Ed25519 and JSON, and none of Lynx's code.
    if Command::new("node").arg("--version").output().is_err() {
        assert!(std::env::var("LYNX_REQUIRE_BROWSER").as_deref() != Ok("1"), "node is required here");
        eprintln!("skipped: node is not installed (the independent proof check needs it)");
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/tests/audit-proof.test.mjs");
    for (path, holds) in [(&proof_path, true), (&altered_path, false)] {
        let out = Command::new("node").args(["--test", "--test-reporter=spec"]).arg(&script).env("PROOF", path).env("VKEY", &vkey).env("EXPECT", if holds { "valid" } else { "invalid" }).output().unwrap();
        let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && report.contains("ℹ pass 1"), "node's independent check ({path:?}):\n{report}");
    }
}

fn files(dir: &std::path::Path, tenant: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{tenant}."))).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Checkpoints come by themselves: at the interval when a tree grew (and not when it did not), and
/// at shutdown; each is also an `audit.checkpoint` event, whose note verifies with the verifier key.
pub async fn checkpoints_come_at_the_interval_at_shutdown_and_as_events(engine: Engine) {
    let receiver = crate::receiver::Receiver::start().await;
    let mut sandbox = Sandbox::new(engine);
    let (dir, vkey) = anchored(&mut sandbox);
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_INTERVAL".into(), "300ms".into());
    sandbox.env.insert("LYNX_WEBHOOK_URL".into(), receiver.url("/siem"));
    sandbox.env.insert("LYNX_WEBHOOK_SECRET".into(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    sandbox.env.insert("LYNX_WEBHOOK_POLL_MS".into(), "50".into());
    let (agent, _) = sandbox.create_key("tenant-123", "agent-001");
    let mut server = sandbox.serve();
    calls(&server, &agent, 3).await;
    // The key row and three calls: 7 rows, signed within an interval or two (an interval may also
    // have fallen while the calls ran, signing fewer).
    let covering = |n: u64| files(&dir, "tenant-123").iter().any(|f| f.to_string_lossy().ends_with(&format!("{n:012}.checkpoint")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !covering(7) {
        assert!(std::time::Instant::now() < deadline, "no checkpoint of the 7 rows within the interval: {:?}", files(&dir, "tenant-123"));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Idle: no new checkpoint however many intervals pass.
    let before = files(&dir, "tenant-123");
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(files(&dir, "tenant-123"), before, "nothing new to sign, nothing signed");
    let verifier = lynx_tlog::NoteVerifier::parse(&vkey).unwrap();
    let newest = lynx_tlog::Checkpoint::open(&std::fs::read_to_string(before.last().unwrap()).unwrap(), &verifier).unwrap();
    assert_eq!((newest.origin.as_str(), newest.size), ("lynx.test/tenants/tenant-123", 7));

    // The same checkpoint reached the receiver through the outbox.
    let is_it = |r: &crate::receiver::Received| r.json()["type"] == "audit.checkpoint" && r.json()["data"]["tree_size"] == 7;
    let got = receiver.wait_until(std::time::Duration::from_secs(15), |got| got.iter().any(is_it)).await;
    let event = got.iter().find(|r| is_it(r)).unwrap();
    event.verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let data = &event.json()["data"];
    assert_eq!(data["tenant_id"], "tenant-123");
    assert_eq!(lynx_tlog::Checkpoint::open(data["note"].as_str().unwrap(), &verifier).unwrap(), newest);

    // More rows, then SIGTERM before the next interval could come: the last checkpoint covers them.
    sandbox.env.insert("LYNX_AUDIT_CHECKPOINT_INTERVAL".into(), "off".into());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut server = sandbox.serve();
    calls(&server, &agent, 2).await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(server.child.wait().unwrap().success());
    let last = files(&dir, "tenant-123").pop().unwrap();
    let cp = lynx_tlog::Checkpoint::open(&std::fs::read_to_string(&last).unwrap(), &verifier).unwrap();
    assert_eq!(cp.size as i64, count(&sandbox, "SELECT COUNT(*) FROM lynx_audit_events WHERE tenant_id = 'tenant-123'").await, "every row is signed at shutdown");
    let out = sandbox.cli_ok(&["audit", "verify", "--checkpoints", dir.to_str().unwrap(), "--key", &vkey]);
    assert!(out.contains("signed checkpoint(s), the newest covering 1..") && out.contains("Audit trail verified."), "{out}");
}
