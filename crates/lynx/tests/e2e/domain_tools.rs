//! The domain tools over both transports: listed with schemas and annotations, and each called
//! with answers that carry the caller's tenant and match the Kernel file.

use serde_json::{Value, json};

use lynx_model::Layer;

use crate::{contract::{all_tool_ids, tool_ids}, helpers::*};

async fn check_tool_list(client: &Client) {
    let (domain, cluster, cell) = (tool_ids(Layer::Domain), tool_ids(Layer::Cluster), tool_ids(Layer::Cell));
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, all_tool_ids(), "exactly the registered tools, in registry order");
    for t in &tools {
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(a.idempotent_hint, Some(true), "{}", t.name);
        if cluster.contains(&t.name.as_ref()) {
            assert_eq!((a.read_only_hint, a.destructive_hint), (Some(false), Some(false)), "{}", t.name);
        }
        if cell.contains(&t.name.as_ref()) {
            let destructive = t.name != "docs.cell.draft.submit_for_approval";
            assert_eq!((a.read_only_hint, a.destructive_hint), (Some(false), Some(destructive)), "{}", t.name);
        }
    }
    for t in tools.iter().filter(|t| domain.contains(&t.name.as_ref())) {
        assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{}", t.name);
        assert_eq!(t.input_schema.get("additionalProperties"), Some(&json!(false)), "{}: unknown fields rejected", t.name);
        let out = t.output_schema.as_ref().unwrap_or_else(|| panic!("{} has an output schema", t.name));
        assert!(out["properties"].get("tenant_id").is_some(), "{}", t.name);
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
        assert_eq!(a.idempotent_hint, Some(true), "{}", t.name);
        assert!(t.description.as_ref().is_some_and(|d| d.len() > 20));
    }
}

/// Calls every domain tool as tenant-123's agent and checks the answers against the demo Kernel.
pub async fn check_all_domain_tools(client: &Client) {
    let kernel = demo_kernel();
    let acme = demo_tenant(&kernel, "tenant-123");
    let tenant = json!("tenant-123");

    let v = call_ok(client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["tenant_name"], acme["name"]);
    assert_eq!(v["plan"], acme["plan"]);
    assert_eq!(v["region"], acme["region"]);
    assert_eq!(v["enabled_modules"], acme["enabled_modules"]);
    assert_eq!(v["user_role"], "agent");
    assert_eq!(v["user_scope"], json!(["read", "draft", "execute"]));
    let v = call_ok(client, "tenant.domain.profile.read", json!({"include_modules": false, "include_user_context": false})).await;
    assert!(v.get("enabled_modules").is_none() && v.get("user_role").is_none());

    let v = call_ok(client, "finance.domain.health.read", json!({"period": "last_month"})).await;
    let last_month = acme["finance"].as_array().unwrap().iter().find(|f| f["period"] == "last_month").unwrap();
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["figures"]["revenue"], last_month["revenue"]);
    assert_eq!(v["figures"]["expenses"], last_month["expenses"]);
    assert_eq!(v["health_score"], 0, "expenses above revenue clamp to 0");
    assert_eq!(v["status"], "critical");
    let risks: Vec<&str> = v["risks"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(risks.contains(&"negative_cash_flow") && risks.contains(&"outstanding_payments"), "{risks:?}");
    let v = call_ok(client, "finance.domain.health.read", json!({})).await;
    assert_eq!(v["period"], "current_month");
    assert_eq!(v["health_score"], 19, "100 × (482500 − 391200) / 482500 rounds to 19");

    let v = call_ok(client, "kernel.domain.registry.read", json!({})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["tools"].as_array().unwrap().len(), all_tool_ids().len());
    assert_eq!(v["version_hash"].as_str().unwrap().len(), 64);
    let pay = v["policies"].as_array().unwrap().iter().find(|p| p["tool_id"] == "audit.domain.run.read").unwrap();
    let kernel_pay = acme["policies"]["tool_policies"].as_array().unwrap().iter().find(|p| p["tool_id"] == "audit.domain.run.read").unwrap();
    assert_eq!(pay["required_role"], kernel_pay["required_role"]);
    assert_eq!(pay["required_scope"], kernel_pay["required_scope"]);

    let v = call_ok(client, "audit.domain.run.read", json!({"limit": 3})).await;
    assert_eq!(v["tenant_id"], tenant);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(v["total_count"].as_i64().unwrap() >= 5);
    assert_eq!(runs[0]["tool_id"], "kernel.domain.registry.read", "newest first");
    assert_eq!(runs[0]["status"], "SUCCEEDED");
    assert_eq!(runs[0]["actor_id"], "agent-001");
    let v = call_ok(client, "audit.domain.run.read", json!({"tool_id": "finance.domain.health.read"})).await;
    assert_eq!(v["total_count"], 2);

    let v = call_ok(client, "security.domain.permission.read", json!({"action": "vpm.cell.payment.execute"})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["allowed"], true);
    assert_eq!(v["current_role"], "agent");
    assert_eq!(v["policy_source"], "kernel");
    let v = call_ok(client, "security.domain.permission.read", json!({"action": "draft_approve"})).await;
    assert_eq!(v["allowed"], false, "agents may not approve");
    assert!(v["reason"].as_str().unwrap().contains("agent"), "{}", v["reason"]);
    assert!(v["required_role"].as_array().unwrap().contains(&json!("approver")));

    let v = call_ok(client, "workflow.domain.status.read", json!({"event_limit": 5})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["active_workflows_count"], 0);
    assert_eq!(v["pending_approvals_count"], 0);
    assert!(v["recent_events"].is_array());

    let v = call_ok(client, "workflow.domain.policy.read", json!({"workflow_type": "vpm_payment"})).await;
    assert_eq!(v["tenant_id"], tenant);
    let expected: Vec<&Value> = acme["policies"]["approval_rules"].as_array().unwrap().iter().filter(|r| r["workflow_type"] == "vpm_payment").collect();
    assert_eq!(v["approval_rules"].as_array().unwrap().len(), expected.len());
    assert_eq!(v["approval_rules"][1]["threshold_amount"], "1000.00");
    assert_eq!(v["role_gates"], acme["policies"]["role_gates"]);

    let v = call_ok(client, "docs.domain.registry.read", json!({"doc_type": "PRD"})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["total_count"], 1);
    let prd = acme["documents"].as_array().unwrap().iter().find(|d| d["document_type"] == "PRD").unwrap();
    assert_eq!(v["documents"][0]["document_id"], prd["document_id"]);
    assert_eq!(v["documents"][0]["checksum"], prd["checksum"]);
    let v = call_ok(client, "docs.domain.registry.read", json!({"include_checksums": false})).await;
    assert_eq!(v["total_count"], acme["documents"].as_array().unwrap().len());
    assert!(v["documents"][0].get("checksum").is_none());

    let v = call_ok(client, "featureflag.domain.status.read", json!({})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["features"], acme["feature_flags"]);
    assert_eq!(v["modules"]["vpm"], true);

    let v = call_ok(client, "system.domain.health.read", json!({})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["overall_status"], "healthy");
    assert_eq!(v["kernel_reachable"], true);
    assert_eq!(v["storage_reachable"], true);
    assert_eq!(v["mode"], "dev");
    assert_eq!(v["maintenance_mode"], false);
    assert!(v["dependencies"]["storage"]["response_time_ms"].is_number());
    assert_eq!(v["queues"]["stuck_executions"], 0);
    assert!(v["dependencies"]["storage"].get("detail").is_none(), "a reachable dependency has no detail");
    let v = call_ok(client, "system.domain.health.read", json!({"include_dependencies": false})).await;
    assert!(v.get("dependencies").is_none());

    let v = call_ok(client, "vpm.domain.vendor.read", json!({"vendor_id": "V-002"})).await;
    assert_eq!(v["tenant_id"], tenant);
    let v002 = acme["vendors"].as_array().unwrap().iter().find(|x| x["vendor_id"] == "V-002").unwrap();
    assert_eq!(v["vendor"]["vendor_name"], v002["vendor_name"]);
    assert_eq!(v["vendor"]["risk_flags"], v002["risk_flags"]);
    assert_eq!(v["vendor"]["total_paid"], "0");
    let v = call_ok(client, "vpm.domain.vendor.read", json!({})).await;
    let active = acme["vendors"].as_array().unwrap().iter().filter(|x| x["status"] == "active").count();
    assert_eq!(v["vendors_summary"]["active"], active);
    let e = call_err(client, "vpm.domain.vendor.read", json!({"vendor_id": "V-999"})).await;
    assert_eq!(e["code"], "NOT_FOUND");

    let v = call_ok(client, "vpm.domain.payment.status.read", json!({"status": "pending_settlement", "limit": 5})).await;
    assert_eq!(v["tenant_id"], tenant);
    assert_eq!(v["payments"], json!([]));
    assert_eq!(v["pending_approvals_count"], 0);
    assert_eq!(v["total_pending_amount"], "0");
}

pub async fn domain_tools_over_http(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();
    let client = server.mcp(&key).await;
    check_tool_list(&client).await;
    check_all_domain_tools(&client).await;

    // The registry hash a tool reports is the one the status API reports.
    let v = call_ok(&client, "kernel.domain.registry.read", json!({})).await;
    let (status, body) = server.get("/api/status", Some(&key)).await;
    assert_eq!(status, 200);
    assert_eq!(body["tool_registry_hash"], v["version_hash"]);
    let (status, tools) = server.get("/api/tools", Some(&key)).await;
    assert_eq!(status, 200);
    assert_eq!(tools["total"], all_tool_ids().len());
    assert_eq!(tools["tools"][0]["layer"], "domain");
    client.cancel().await.unwrap();
}

pub async fn domain_tools_over_stdio(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let client = mcp_stdio(&sandbox, &key).await;
    check_tool_list(&client).await;
    check_all_domain_tools(&client).await;
    client.cancel().await.unwrap();
}

pub async fn permission_is_the_kernels_and_refusals_are_audited(engine: Engine) {
    let sandbox = Sandbox::new(engine);
    let (contractor, _) = sandbox.create_key("tenant-123", "contractor-001");
    let former = sandbox.key_of_deactivated_user("tenant-123", "former-001");
    let server = sandbox.serve();

    let client = server.mcp(&contractor).await;
    let e = call_err(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED");
    assert!(e["message"].as_str().unwrap().contains("contractor"), "{e}");
    let e = call_err(&client, "no.such.tool", json!({})).await;
    assert_eq!(e["code"], "UNKNOWN_TOOL");

    let client = server.mcp(&former).await;
    let e = call_err(&client, "tenant.domain.profile.read", json!({})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED");
    assert!(e["message"].as_str().unwrap().contains("inactive"), "{e}");

    let (_, events) = server.get("/api/audit/events?status=DENIED", Some(&contractor)).await;
    let reasons: Vec<&str> = events["events"].as_array().unwrap().iter().map(|e| e["error_message"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.starts_with("PERMISSION_DENIED")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("UNKNOWN_TOOL")), "{reasons:?}");
}
