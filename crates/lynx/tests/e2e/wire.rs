//! The MCP wire, pinned: `initialize` (2025-11-25), `server/discover` (2026-07-28) and `tools/list` as the
//! real binary sends them over HTTP, compared with the snapshots committed under `e2e/snapshots/`. A
//! change to a tool's name, description, schema, annotations or `_meta` fails here until the snapshot
//! is reviewed and accepted (`cargo insta review`, or `INSTA_UPDATE=always cargo test -p lynx --test e2e wire`).
//! The published schemas must also pass the portability rules (`contract::portability_findings`).

use serde_json::{Value, json};

use crate::{contract::portability_findings, helpers::*};

/// One JSON-RPC request to `/mcp`, as a client of the given protocol revision sends it; returns `result`.
pub async fn rpc(server: &Server, key: &str, revision: &str, method: &str, params: Value) -> Value {
    let mut params = params;
    let mut req = server
        .http()
        .post(format!("{}/mcp", server.base))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json");
    if revision == "2026-07-28" {
        // The stateless revision: every request names its version, method and capabilities.
        req = req.header("MCP-Protocol-Version", revision).header("Mcp-Method", method);
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": revision,
            "io.modelcontextprotocol/clientCapabilities": {},
        });
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp = req.json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{method}");
    let answer: Value = resp.json().await.unwrap();
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_matches_its_snapshots_and_travels() {
    let sandbox = Sandbox::new(Engine::Sqlite);
    let (key, _) = sandbox.create_key("tenant-123", "agent-001");
    let server = sandbox.serve();

    let initialize = rpc(
        &server,
        &key,
        "2025-11-25",
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "lynx-e2e", "version": "1"}}),
    )
    .await;
    insta::assert_json_snapshot!("initialize_2025_11_25", initialize);
    let discover = rpc(&server, &key, "2026-07-28", "server/discover", json!({})).await;
    insta::assert_json_snapshot!("server_discover_2026_07_28", discover);

    let listed = rpc(&server, &key, "2025-11-25", "tools/list", json!({})).await;
    insta::assert_json_snapshot!("tools_list", listed);
    let listed_2026 = rpc(&server, &key, "2026-07-28", "tools/list", json!({})).await;
    assert_eq!(listed_2026["tools"], listed["tools"], "both protocol revisions publish the same tools");

    for tool in listed["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        for kind in ["inputSchema", "outputSchema"] {
            let findings = portability_findings(&tool[kind]);
            assert!(findings.is_empty(), "{name} {kind} does not travel:\n  {}", findings.join("\n  "));
        }
        // Claude Code asks the person before every call of a tool carrying this hint, whatever its
        // permission mode; the destructive cell tools carry it (the server enforces approval regardless).
        let destructive = tool["annotations"]["destructiveHint"] == true;
        assert_eq!(tool["_meta"].get("anthropic/requiresUserInteraction").is_some(), destructive, "{name}");
        if destructive {
            assert_eq!(tool["_meta"]["anthropic/requiresUserInteraction"], true, "{name}");
        }
    }
}
