//! Kernel files: a valid one is served instead of the demo data; one with an error stops start-up
//! with a message that names the file and the problem.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_custom_kernel_file_is_served() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    let mut kernel = demo_kernel();
    kernel["tenants"][0]["name"] = json!("Acme Renamed Ltd");
    let path = sandbox.dir.path().join("kernel.json");
    std::fs::write(&path, kernel.to_string()).unwrap();
    sandbox.env.insert("LYNX_KERNEL_FILE".into(), path.display().to_string());
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let client = mcp_stdio(&sandbox, &key).await;
    let v = call_ok(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["tenant_name"], "Acme Renamed Ltd");
    client.cancel().await.unwrap();
}

#[test]
fn a_kernel_file_with_an_error_fails_startup_naming_file_and_problem() {
    let mut sandbox = Sandbox::new(Engine::Sqlite);
    let mut kernel = demo_kernel();
    kernel["tenants"][0]["users"][2]["active"] = json!("yes");
    let path = sandbox.dir.path().join("broken-kernel.json");
    std::fs::write(&path, serde_json::to_string_pretty(&kernel).unwrap()).unwrap();
    sandbox.env.insert("LYNX_KERNEL_FILE".into(), path.display().to_string());
    let out = sandbox.cli(&["serve"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken-kernel.json"), "names the file: {err}");
    assert!(err.contains("tenants[0].users[2].active"), "names the place: {err}");
    assert!(err.contains("invalid type"), "names the problem: {err}");

    std::fs::write(&path, "{ not json").unwrap();
    let out = sandbox.cli(&["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken-kernel.json"));

    sandbox.env.insert("LYNX_KERNEL_FILE".into(), sandbox.dir.path().join("missing.json").display().to_string());
    let out = sandbox.cli(&["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json: cannot be read"));
}
