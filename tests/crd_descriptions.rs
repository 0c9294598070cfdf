//! Every field of the MaintenancePlan schema under `spec` and `status` carries a description
//! of its own, so that `kubectl explain maintenanceplan.spec.blueGreen` (and any field below
//! it) teaches the API. The descriptions come from the doc comments in `src/api`.

use cutover::crd::crd_yaml;
use serde_json::Value;

fn schema() -> Value {
    let crd: Value = serde_yaml_ng::from_str(&crd_yaml()).expect("the CRD is YAML");
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "one version expected");
    let schema = versions[0]["schema"]["openAPIV3Schema"].clone();
    assert!(schema.is_object(), "no openAPIV3Schema");
    schema
}

/// Calls `visit(path, property_schema)` for every property below `node`, through nested
/// objects, array items, maps and schema combinators.
fn walk(path: &str, node: &Value, visit: &mut dyn FnMut(&str, &Value)) {
    if let Some(properties) = node["properties"].as_object() {
        for (name, property) in properties {
            let child = format!("{path}.{name}");
            visit(&child, property);
            walk(&child, property, visit);
        }
    }
    if node["items"].is_object() {
        walk(&format!("{path}[]"), &node["items"], visit);
    }
    if node["additionalProperties"].is_object() {
        walk(&format!("{path}{{}}"), &node["additionalProperties"], visit);
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for (i, branch) in node[combinator]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            walk(&format!("{path}({combinator}[{i}])"), branch, visit);
        }
    }
}

fn description(node: &Value) -> &str {
    node["description"].as_str().unwrap_or_default().trim()
}

/// The paths under `spec` and `status` of the CRD and the description of each.
fn fields() -> Vec<(String, String)> {
    fields_of(&schema())
}

fn fields_of(schema: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for root in ["spec", "status"] {
        let node = &schema["properties"][root];
        assert!(node.is_object(), "the schema has no {root}");
        out.push((root.to_string(), description(node).to_string()));
        walk(root, node, &mut |path, property| {
            out.push((path.to_string(), description(property).to_string()));
        });
    }
    out
}

/// The walk finds an undescribed field wherever it hides.
#[test]
fn the_walk_finds_fields_without_description() {
    let described = |extra: Value| {
        let mut node = serde_json::json!({"description": "d", "type": "object"});
        node.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        node
    };
    let bare = serde_json::json!({"type": "string"});
    let schema = serde_json::json!({"properties": {
        "spec": described(serde_json::json!({"properties": {
            "list": described(serde_json::json!({"items": {"properties": {"deep": bare}}})),
            "map": described(serde_json::json!({"additionalProperties": {"properties": {"value": bare}}})),
            "ok": described(serde_json::json!({}))
        }})),
        "status": {"properties": {"plain": bare}}
    }});
    let missing: Vec<String> = fields_of(&schema)
        .into_iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        missing,
        [
            "spec.list[].deep",
            "spec.map{}.value",
            "status",
            "status.plain"
        ]
    );
}

#[test]
fn every_spec_and_status_field_has_a_description() {
    let fields = fields();
    // The walk reaches deep fields, so a pass here means something.
    for path in [
        "spec.blueGreen.dataIsolation",
        "spec.changes[].fixPack.from",
        "spec.changes[].module.requireSchemaVersion.to",
        "spec.update.env[].valueFrom.configMapKeyRef.key",
        "status.conditions[].reason",
        "status.findings[].blocks",
        "status.progress.text",
    ] {
        assert!(
            fields.iter().any(|(p, _)| p == path),
            "the walk did not reach {path}"
        );
    }
    let missing: Vec<&str> = fields
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} fields have no description (add a doc comment to the field in src/api, then \
         regenerate crds/ with `cargo run -- crd > crds/maintenanceplan.yaml`):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

/// Two fields of one object with the same description: one of them (or both) shows a
/// description that is not its own, typically its type's doc comment in place of the field's.
#[test]
fn sibling_fields_have_descriptions_of_their_own() {
    let schema = schema();
    let mut shared = Vec::new();
    for root in ["spec", "status"] {
        let mut check = |path: &str, node: &Value| {
            let Some(properties) = node["properties"].as_object() else {
                return;
            };
            let mut seen: Vec<(&str, &str)> = Vec::new();
            for (name, property) in properties {
                let d = description(property);
                if d.is_empty() {
                    continue;
                }
                if let Some((other, _)) = seen.iter().find(|(_, od)| *od == d) {
                    shared.push(format!("{path}.{other} and {path}.{name}: {d:?}"));
                }
                seen.push((name.as_str(), d));
            }
        };
        let root_node = &schema["properties"][root];
        check(root, root_node);
        walk(root, root_node, &mut |path, property| check(path, property));
    }
    assert!(
        shared.is_empty(),
        "fields sharing one description (`kubectl explain` shows the same text for both):\n  {}",
        shared.join("\n  ")
    );
}
