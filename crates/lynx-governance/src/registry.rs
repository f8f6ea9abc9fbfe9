//! The tool registry: the registered tools, their published definitions (schemas and annotations,
//! computed once at start-up) and the registry's version hash.

use std::{collections::HashMap, sync::Arc};

use lynx_model::{Layer, Risk};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::tool::{Erased, ErasedTool, Tool};

/// MCP tool annotations. They are derived from the layer, so they cannot disagree with what the layer
/// gate enforces; they stay hints to clients, the gates are the enforcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Annotations {
    pub read_only: bool,
    pub destructive: Option<bool>,
    pub idempotent: bool,
}

impl Annotations {
    fn for_tool(layer: Layer, risk: Risk) -> Self {
        match layer {
            Layer::Domain => Self { read_only: true, destructive: None, idempotent: true },
            Layer::Cluster => Self { read_only: false, destructive: Some(false), idempotent: true },
            // A low-risk cell tool (submit for approval) only moves a draft's status forward.
            Layer::Cell => Self { read_only: false, destructive: Some(risk != Risk::Low), idempotent: true },
        }
    }
}

/// What `tools/list` and `/api/tools` publish about one tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolDefinition {
    pub id: &'static str,
    pub name: &'static str,
    pub layer: Layer,
    pub risk: Risk,
    pub domain: &'static str,
    pub description: &'static str,
    pub input_schema: serde_json::Map<String, Value>,
    pub output_schema: serde_json::Map<String, Value>,
    pub annotations: Annotations,
}

pub struct Registry {
    tools: Vec<Arc<dyn ErasedTool>>,
    index: HashMap<&'static str, usize>,
    definitions: Vec<ToolDefinition>,
    /// Each tool's published input schema, compiled once: the validation gate holds inputs to it.
    input_validators: Vec<jsonschema::Validator>,
    version_hash: String,
}

impl Registry {
    /// Wraps a tool for `Registry::new`.
    pub fn entry<T: Tool>(tool: T) -> Arc<dyn ErasedTool> {
        Arc::new(Erased(tool))
    }

    /// Builds the registry. Two tools with one id is a programming error and stops start-up.
    pub fn new(tools: Vec<Arc<dyn ErasedTool>>) -> Self {
        let mut index = HashMap::new();
        let mut definitions = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let spec = tool.spec();
            assert!(index.insert(spec.id, i).is_none(), "tool {} is registered twice", spec.id);
            definitions.push(ToolDefinition {
                id: spec.id,
                name: spec.title,
                layer: tool.layer(),
                risk: spec.risk,
                domain: spec.domain(),
                description: spec.description,
                input_schema: tool.input_schema(),
                output_schema: tool.output_schema(),
                annotations: Annotations::for_tool(tool.layer(), spec.risk),
            });
        }
        let version_hash = hash_definitions(&definitions);
        let input_validators = definitions
            .iter()
            .map(|d| {
                jsonschema::validator_for(&Value::Object(d.input_schema.clone()))
                    .unwrap_or_else(|e| panic!("{}: the input schema does not compile: {e}", d.id))
            })
            .collect();
        Self { tools, index, definitions, input_validators, version_hash }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn ErasedTool>> {
        self.index.get(id).map(|&i| &self.tools[i])
    }

    /// The arguments against the tool's published input schema (lengths, patterns, bounds) — after the
    /// typed decode, which names most problems better; this catches what the types alone do not.
    pub fn check_input(&self, id: &str, args: &Value) -> Result<(), lynx_model::Refusal> {
        match self.index.get(id) {
            Some(&i) => crate::validation::against_schema(&self.input_validators[i], args),
            None => Ok(()),
        }
    }

    pub fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    pub fn definition(&self, id: &str) -> Option<&ToolDefinition> {
        self.index.get(id).map(|&i| &self.definitions[i])
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn count(&self, layer: Layer) -> usize {
        self.definitions.iter().filter(|d| d.layer == layer).count()
    }

    /// SHA-256 over the canonical registry (ids, layers, risks and schemas, sorted by id).
    pub fn version_hash(&self) -> &str {
        &self.version_hash
    }
}

fn hash_definitions(defs: &[ToolDefinition]) -> String {
    let mut canonical: Vec<Value> = defs
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "layer": d.layer, "risk": d.risk,
                "input_schema": d.input_schema, "output_schema": d.output_schema,
            })
        })
        .collect();
    canonical.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    // serde_json's maps are sorted by key, so this text is canonical.
    hex::encode(Sha256::digest(Value::Array(canonical).to_string().as_bytes()))
}
