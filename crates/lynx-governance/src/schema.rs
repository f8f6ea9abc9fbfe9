//! The JSON Schemas a tool publishes (`tools/list`, `/api/tools`), derived from its Rust types.
//!
//! schemars writes them; this module makes them true and portable:
//!
//! - **True to the wire.** An input schema describes what deserializes, an output schema what
//!   serializes: a field the answer omits (`skip_serializing_if`) is not `required`. An output schema
//!   also admits the refusal envelope `{"error": {…}}`, because a refused call carries it as its
//!   structured content (SPEC §5) and some clients validate that too.
//! - **Portable.** Only the `format`s JSON Schema 2020-12 defines (schemars adds `uint8`, `int64`,
//!   `double`, … which validators warn about); an integer's range as `minimum`/`maximum`; no `type`
//!   arrays — a union is `anyOf` with one `type` per branch, which clients that read `type` as a string
//!   (and the model providers behind them) accept. Inputs advertise no `null`: leaving an optional field
//!   out is the one way to say "not given" (the server still accepts an explicit `null`).

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use lynx_model::error::ErrorBody;

/// The `format`s JSON Schema 2020-12 defines; any other is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex",
];

/// The schema of a tool's input: what the tool accepts.
pub fn input<T: JsonSchema>() -> Map<String, Value> {
    let schema = SchemaSettings::draft2020_12().for_deserialize().into_generator().into_root_schema_for::<T>();
    let mut schema = schema.to_value();
    portable(&mut schema, Nulls::Drop);
    into_object(schema)
}

/// The schema of a tool's output: its answer, or the refusal envelope.
pub fn output<T: JsonSchema>() -> Map<String, Value> {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().for_serialize().into_generator();
    let error = generator.subschema_for::<ErrorBody>().to_value();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    admit_refusal(&mut schema, error);
    portable(&mut schema, Nulls::Keep);
    into_object(schema)
}

fn into_object(schema: Value) -> Map<String, Value> {
    match schema {
        Value::Object(map) => map,
        // A tool's types are structs; anything else is a programming error caught by the registry test.
        other => Map::from_iter([("type".to_string(), json!("object")), ("description".to_string(), other)]),
    }
}

/// The answer's required fields become one alternative, `error` the other: a refused call's
/// structured content is `{"error": {…}}` and validates against the same schema.
fn admit_refusal(schema: &mut Value, error: Value) {
    let Some(root) = schema.as_object_mut() else { return };
    let required = root.remove("required").unwrap_or_else(|| json!([]));
    let properties = root.entry("properties").or_insert_with(|| json!({}));
    if let Some(properties) = properties.as_object_mut() {
        assert!(!properties.contains_key("error"), "an output must not have a field named `error`: it is the refusal envelope");
        let mut error = error;
        if let Some(e) = error.as_object_mut() {
            e.insert("description".into(), json!("Present only on a refused call (isError: true), instead of the fields above."));
        }
        properties.insert("error".into(), error);
    }
    root.insert("anyOf".into(), json!([{"required": required}, {"required": ["error"]}]));
}

/// Whether a schema may advertise `null` (outputs say when a value is absent; inputs just omit it).
#[derive(Clone, Copy, PartialEq)]
enum Nulls {
    Keep,
    Drop,
}

/// Keywords that apply to one JSON type only, so a `type` union splits them among its branches.
fn keyword_type(keyword: &str) -> Option<&'static [&'static str]> {
    Some(match keyword {
        "minLength" | "maxLength" | "pattern" | "format" | "contentEncoding" | "contentMediaType" => &["string"],
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => &["number", "integer"],
        "items" | "prefixItems" | "contains" | "minItems" | "maxItems" | "uniqueItems" | "minContains" | "maxContains"
        | "unevaluatedItems" => &["array"],
        "properties" | "required" | "additionalProperties" | "patternProperties" | "propertyNames" | "minProperties"
        | "maxProperties" | "dependentRequired" | "dependentSchemas" | "unevaluatedProperties" => &["object"],
        _ => return None,
    })
}

fn portable(node: &mut Value, nulls: Nulls) {
    let Some(obj) = node.as_object_mut() else { return };
    standard_format(obj);
    if let Some(Value::Array(types)) = obj.get("type").cloned() {
        split_type_union(obj, types, nulls);
    }
    if nulls == Nulls::Drop {
        drop_null_branch(obj);
    }
    for (key, child) in obj.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" | "dependentSchemas" => {
                if let Some(map) = child.as_object_mut() {
                    map.values_mut().for_each(|s| portable(s, nulls));
                }
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Some(list) = child.as_array_mut() {
                    list.iter_mut().for_each(|s| portable(s, nulls));
                }
            }
            "items" | "additionalProperties" | "not" | "contains" | "propertyNames" | "if" | "then" | "else" => {
                portable(child, nulls)
            }
            _ => {}
        }
    }
}

/// Drops a `format` 2020-12 does not define, keeping what it said about an integer's range.
fn standard_format(obj: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_string) else { return };
    if STANDARD_FORMATS.contains(&format.as_str()) {
        return;
    }
    obj.remove("format");
    let (min, max): (Option<i64>, Option<i64>) = match format.as_str() {
        "uint8" => (Some(0), Some(u8::MAX.into())),
        "uint16" => (Some(0), Some(u16::MAX.into())),
        "uint32" => (Some(0), Some(u32::MAX.into())),
        "uint" | "uint64" | "uint128" => (Some(0), None),
        "int8" => (Some(i8::MIN.into()), Some(i8::MAX.into())),
        "int16" => (Some(i16::MIN.into()), Some(i16::MAX.into())),
        "int32" => (Some(i32::MIN.into()), Some(i32::MAX.into())),
        // int64 and wider: beyond what a JSON number holds exactly anyway, so no bound is published.
        _ => (None, None),
    };
    if let Some(min) = min {
        obj.entry("minimum").or_insert(min.into());
    }
    if let Some(max) = max {
        obj.entry("maximum").or_insert(max.into());
    }
}

/// `"type": ["string", "null"]` becomes `"anyOf": [{"type": "string", …}, {"type": "null"}]` (inputs:
/// just `"type": "string"`), each branch taking the keywords that apply to its type.
fn split_type_union(obj: &mut Map<String, Value>, types: Vec<Value>, nulls: Nulls) {
    let mut types: Vec<String> = types.iter().filter_map(Value::as_str).map(str::to_string).collect();
    if nulls == Nulls::Drop && types.len() > 1 {
        types.retain(|t| t != "null");
    }
    if types.len() == 1 {
        obj.insert("type".into(), Value::String(types.remove(0)));
        return;
    }
    obj.remove("type");
    let mut branches: Vec<Map<String, Value>> =
        types.iter().map(|t| Map::from_iter([("type".to_string(), Value::String(t.clone()))])).collect();
    let moved: Vec<String> = obj.keys().filter(|k| keyword_type(k).is_some()).cloned().collect();
    for keyword in moved {
        let value = obj.remove(&keyword).unwrap_or(Value::Null);
        let applies = keyword_type(&keyword).unwrap_or(&[]);
        for (branch, t) in branches.iter_mut().zip(&types) {
            if applies.contains(&t.as_str()) {
                branch.insert(keyword.clone(), value.clone());
            }
        }
    }
    let union = Value::Array(branches.into_iter().map(Value::Object).collect());
    match obj.remove("anyOf") {
        // Both a union and an existing anyOf: each must hold.
        Some(existing) => {
            obj.insert("allOf".into(), json!([{"anyOf": existing}, {"anyOf": union}]));
        }
        None => {
            obj.insert("anyOf".into(), union);
        }
    }
}

/// Inputs: `"anyOf": [{"$ref": …}, {"type": "null"}]` becomes the `$ref` alone.
fn drop_null_branch(obj: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = obj.get_mut("anyOf") else { return };
    branches.retain(|b| b != &json!({"type": "null"}));
    if branches.len() != 1 {
        return;
    }
    let Some(Value::Object(only)) = branches.pop() else { return };
    obj.remove("anyOf");
    for (k, v) in only {
        if obj.contains_key(&k) {
            // A clash (the branch and its parent both say something): keep the branch whole instead.
            let branch = Map::from_iter([(k, v)]);
            obj.insert("allOf".into(), json!([branch]));
            continue;
        }
        obj.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_split_into_single_type_branches() {
        let mut s = json!({"type": ["string", "null"], "maxLength": 5, "description": "d"});
        portable(&mut s, Nulls::Keep);
        assert_eq!(s, json!({"description": "d", "anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}));
        let mut s = json!({"type": ["string", "null"], "maxLength": 5});
        portable(&mut s, Nulls::Drop);
        assert_eq!(s, json!({"type": "string", "maxLength": 5}));
        let mut s = json!({"type": ["string", "number"], "pattern": "^[0-9]+$", "exclusiveMinimum": 0});
        portable(&mut s, Nulls::Drop);
        assert_eq!(s, json!({"anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "number", "exclusiveMinimum": 0}]}));
        let mut s = json!({"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}], "description": "d"});
        portable(&mut s, Nulls::Drop);
        assert_eq!(s, json!({"$ref": "#/$defs/X", "description": "d"}));
    }

    #[test]
    fn formats_are_standard_and_ranges_explicit() {
        let mut s = json!({"properties": {
            "a": {"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255},
            "b": {"type": "integer", "format": "uint"},
            "c": {"type": "integer", "format": "int64"},
            "d": {"type": "number", "format": "double"},
            "e": {"type": "string", "format": "date-time"},
        }});
        portable(&mut s, Nulls::Keep);
        assert_eq!(s["properties"], json!({
            "a": {"type": "integer", "minimum": 0, "maximum": 255},
            "b": {"type": "integer", "minimum": 0},
            "c": {"type": "integer"},
            "d": {"type": "number"},
            "e": {"type": "string", "format": "date-time"},
        }));
    }

    #[derive(serde::Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Answer {
        tenant_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        ended: Option<u32>,
    }

    #[test]
    fn an_output_requires_what_it_always_sends_and_admits_the_refusal() {
        let s = Value::Object(output::<Answer>());
        assert_eq!(s["anyOf"], json!([{"required": ["tenant_id", "ended"]}, {"required": ["error"]}]));
        assert_eq!(s["properties"]["ended"]["anyOf"][1], json!({"type": "null"}));
        assert!(s["properties"]["error"].is_object());
    }
}
