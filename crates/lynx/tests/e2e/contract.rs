//! The published contract, checked on every answer: each tool result the tests receive is validated
//! against the output schema that same server published in `tools/list` (a real JSON Schema validator,
//! formats included), and the published schemas pass the portability rules official clients and the
//! MCP Inspector apply. `helpers::call` runs the check, so no test can forget it.
//!
//! Also the tests' one view of the registry: tool ids per layer come from `lynx_tools::registry()`, so
//! a 19th tool needs no edit here.

use std::{collections::HashMap, sync::Arc};

use lynx_model::Layer;
use rmcp::model::{CallToolResult, Tool};
use serde_json::Value;
use tokio::sync::OnceCell;

/// The registered tool ids of one layer, in registry order.
pub fn tool_ids(layer: Layer) -> Vec<&'static str> {
    lynx_tools::registry().definitions().iter().filter(|d| d.layer == layer).map(|d| d.id).collect()
}

/// Every registered tool id.
pub fn all_tool_ids() -> Vec<&'static str> {
    lynx_tools::registry().definitions().iter().map(|d| d.id).collect()
}

/// Compiled output-schema validators, by tool, from `tools/list` as the binary publishes it over MCP.
/// Read once per test process from a `lynx mcp` of its own, so the check never depends on the state of
/// the server under test (which may be shutting down when its last answer arrives).
static OUTPUT_VALIDATORS: OnceCell<HashMap<String, Arc<jsonschema::Validator>>> = OnceCell::const_new();

/// `tools/list` from a fresh `lynx mcp` on a scratch database.
pub async fn published_tools() -> Vec<Tool> {
    let sandbox = crate::helpers::Sandbox::new(crate::helpers::Engine::Sqlite);
    let client = crate::helpers::mcp_stdio_dev(&sandbox, "tenant-123", "agent-001").await;
    let tools = client.list_all_tools().await.expect("tools/list answered");
    client.cancel().await.expect("stdio client closes");
    tools
}

async fn output_validators() -> &'static HashMap<String, Arc<jsonschema::Validator>> {
    OUTPUT_VALIDATORS
        .get_or_init(|| async {
            published_tools().await.iter().filter_map(|t| Some((t.name.to_string(), Arc::new(compile_output_schema(t)?)))).collect()
        })
        .await
}

fn compile_output_schema(tool: &Tool) -> Option<jsonschema::Validator> {
    let schema = Value::Object(tool.output_schema.as_ref()?.as_ref().clone());
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{}: the published output schema is not valid JSON Schema: {e}", tool.name);
    }
    Some(
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{}: output schema does not compile: {e}", tool.name)),
    )
}

/// Fails the test unless the result's structured content — an answer or a refusal — matches the
/// tool's published output schema, as the official SDKs require.
pub async fn check_result(tool: &str, result: &CallToolResult) {
    let validators = output_validators().await;
    let Some(validator) = validators.get(tool) else {
        // An unregistered tool has no schema; its refusal is checked by the callers that expect it.
        return;
    };
    let Some(structured) = &result.structured_content else {
        panic!("{tool}: a tool with an output schema must answer with structured content: {result:?}");
    };
    let errors: Vec<String> = validator.iter_errors(structured).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{tool}: structured content does not match the published output schema:\n  {}\n{structured:#}",
        errors.join("\n  ")
    );
}

/// JSON Schema 2020-12's own formats; clients warn about any other.
const STANDARD_FORMATS: &[&str] = &[
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex",
];

/// Keywords that constrain an instance; a subschema with none of them accepts anything.
const CONSTRAINING: &[&str] = &[
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxProperties",
    "minProperties", "required", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains",
    "properties", "patternProperties", "additionalProperties", "propertyNames", "$ref",
];

/// Where a bare `true`/`false` is a normal value rather than a schema.
const BOOLEAN_VALUED: &[&str] = &["additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems"];

/// The portability findings for one schema, as paths and reasons (empty when it travels everywhere):
/// no `type` arrays, standard formats only, integer formats never without their bounds, no subschema
/// that accepts anything, only local references, and the root an object.
pub fn portability_findings(schema: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        findings.push("root: `type` must be \"object\"".to_string());
    }
    lint(schema, "root", None, &mut findings);
    findings
}

fn lint(node: &Value, path: &str, keyword: Option<&str>, findings: &mut Vec<String>) {
    let obj = match node {
        Value::Bool(_) if keyword.is_some_and(|k| BOOLEAN_VALUED.contains(&k)) => return,
        Value::Bool(b) => return findings.push(format!("{path}: bare `{b}` where a schema is expected")),
        Value::Object(obj) => obj,
        _ => return,
    };
    if let Some(Value::Array(types)) = obj.get("type") {
        findings.push(format!("{path}: `type` is an array {types:?}; use anyOf with one type per branch"));
    }
    if let Some(format) = obj.get("format").and_then(Value::as_str)
        && !STANDARD_FORMATS.contains(&format)
    {
        findings.push(format!("{path}: non-standard format {format:?}"));
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str)
        && !r.starts_with("#/")
    {
        findings.push(format!("{path}: $ref {r:?} is not local"));
    }
    if keyword != Some("not") && !obj.keys().any(|k| CONSTRAINING.contains(&k.as_str())) {
        findings.push(format!("{path}: a subschema that constrains nothing"));
    }
    for (key, child) in obj {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" | "dependentSchemas" => {
                for (name, s) in child.as_object().into_iter().flatten() {
                    lint(s, &format!("{path}.{key}.{name}"), Some(key), findings);
                }
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                for (i, s) in child.as_array().into_iter().flatten().enumerate() {
                    lint(s, &format!("{path}.{key}[{i}]"), Some(key), findings);
                }
            }
            "items" | "additionalProperties" | "not" | "contains" | "propertyNames" | "if" | "then" | "else" => {
                lint(child, &format!("{path}.{key}"), Some(key), findings)
            }
            _ => {}
        }
    }
}
