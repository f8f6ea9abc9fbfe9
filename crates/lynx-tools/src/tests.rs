//! Registry-wide checks: counts per layer, ids, annotations consistent with layers, schemas that
//! reject unknown fields and outputs that carry `tenant_id`.

use lynx_model::Layer;

#[test]
fn the_registry_is_consistent() {
    let registry = crate::registry();
    // The counts per layer are pinned by the tools/list snapshot (crates/lynx/tests/e2e/snapshots); every
    // layer has tools, and each tool is counted in exactly one.
    for layer in [Layer::Domain, Layer::Cluster, Layer::Cell] {
        assert!(registry.count(layer) > 0, "{layer:?}");
    }
    assert_eq!(registry.count(Layer::Domain) + registry.count(Layer::Cluster) + registry.count(Layer::Cell), registry.len());
    for d in registry.definitions() {
        let parts: Vec<&str> = d.id.split('.').collect();
        assert!(parts.len() >= 4, "{}: ids are domain.layer.object.verb", d.id);
        assert_eq!(parts[1], d.layer.as_str(), "{}: the id names its layer", d.id);
        assert!(d.id.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{}", d.id);
        assert_eq!(d.input_schema.get("type").and_then(|t| t.as_str()), Some("object"), "{}", d.id);
        assert_eq!(d.input_schema.get("additionalProperties"), Some(&serde_json::Value::Bool(false)), "{}: unknown fields must be rejected", d.id);
        let props = d.output_schema.get("properties").and_then(|p| p.as_object()).expect("output has properties");
        assert!(props.contains_key("tenant_id"), "{}: output carries tenant_id", d.id);
        match d.layer {
            Layer::Domain => assert!(d.annotations.read_only && d.annotations.idempotent),
            Layer::Cluster => assert!(!d.annotations.read_only && d.annotations.destructive == Some(false)),
            Layer::Cell => assert!(!d.annotations.read_only),
        }
        assert!(!d.description.is_empty());
    }
    assert_eq!(registry.version_hash().len(), 64);
    assert_eq!(registry.version_hash(), crate::registry().version_hash(), "the hash is stable");
}
