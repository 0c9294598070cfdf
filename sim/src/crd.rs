//! CustomResourceDefinitions: turning a CRD object into a served resource type, the CRD's own
//! status (names accepted, established), and the admission of custom resources: structural
//! defaults from the schema, pruning of unknown fields, type/enum/required checks and the
//! `x-kubernetes-validations` CEL rules (when built with the `cel` feature).

use crate::admission::Op;
use crate::error::ApiError;
use crate::resources::{CrdVersion, PrinterColumn, ResourceType};
use crate::store::Store;
use crate::util;
use serde_json::{Map, Value, json};

/// The resource type a CRD defines, if the CRD is well formed.
pub fn resource_type(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut versions: Vec<CrdVersion> = Vec::new();
    let mut storage_first = Vec::new();
    for v in spec.get("versions")?.as_array()? {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        type_: c["type"].as_str().unwrap_or("string").to_string(),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
                        description: c["description"].as_str().unwrap_or_default().to_string(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cv = CrdVersion {
            name: v["name"].as_str()?.to_string(),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            columns,
            status: v.pointer("/subresources/status").is_some(),
        };
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_first.insert(0, cv);
        } else {
            versions.push(cv);
        }
    }
    storage_first.extend(versions);
    let versions = storage_first;
    if versions.is_empty() {
        return None;
    }
    let kind = names.get("kind")?.as_str()?.to_string();
    let mut subresources = Vec::new();
    if versions.iter().any(|v| v.status) {
        subresources.push("status".to_string());
    }
    Some(ResourceType {
        group: spec.get("group")?.as_str()?.to_string(),
        versions: versions.iter().map(|v| v.name.clone()).collect(),
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        plural: names.get("plural")?.as_str()?.to_string(),
        kind,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        subresources,
        crd_versions: versions,
    })
}

/// Validates a CRD and sets its status (names accepted, established at once).
pub fn admit_crd(obj: &mut Value, op: Op, store: &Store) -> Result<(), ApiError> {
    let name = util::name(obj).to_string();
    let Some(t) = resource_type(obj) else {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            &name,
            "spec: Invalid value: group, names (plural, kind) and at least one served version are required",
        ));
    };
    if name != format!("{}.{}", t.plural, t.group) {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            &name,
            format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
            ),
        ));
    }
    if op == Op::Create
        && let Some(existing) = store.registry().get(&t.key())
        && !existing.is_custom()
    {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            &name,
            "the resource is built in",
        ));
    }
    let now = util::now_ts();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "reason": reason, "message": msg, "lastTransitionTime": now});
    let storage = t.versions[0].clone();
    obj["status"] = json!({
        "acceptedNames": obj.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": [storage],
    });
    Ok(())
}

/// Defaults, prunes and validates a custom resource against its version's schema.
pub fn admit_custom(
    rt: &ResourceType,
    op: Op,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit_once('/'))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let Some(cv) = rt.crd_version(&version).or_else(|| rt.crd_versions.first()) else {
        return Ok(());
    };
    let Some(schema) = &cv.schema else {
        return Ok(());
    };
    apply_defaults(schema, obj);
    prune(schema, obj, true);
    let mut errors = Vec::new();
    check(schema, obj, "", &mut errors, true);
    #[cfg(feature = "cel")]
    if errors.is_empty() {
        let old_for_rules = if op == Op::Create { None } else { old };
        crate::cel::validate(rt, schema, obj, old_for_rules, &mut errors);
    }
    let _ = (op, old);
    if errors.is_empty() {
        return Ok(());
    }
    let name = util::name(obj);
    let parts: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let joined = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("{}.{} \"{name}\" is invalid: {joined}", rt.kind, rt.group),
    );
    e.details = Some(json!({
        "name": name, "group": rt.group, "kind": rt.kind,
        "causes": errors.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f})).collect::<Vec<_>>(),
    }));
    Err(e)
}

/// Applies the schema's `default`s to missing (or null, when not nullable) fields, recursively.
pub fn apply_defaults(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, ps) in props {
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => {
                            ps.get("nullable").and_then(Value::as_bool) != Some(true)
                        }
                        _ => false,
                    };
                    if missing && let Some(d) = ps.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(ps, child);
                    }
                }
            }
            if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    apply_defaults(ap, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for it in items {
                    apply_defaults(is, it);
                }
            }
        }
        _ => {}
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// The paths of fields in `obj` that its version's schema does not declare (what pruning
/// would drop), for strict field validation.
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> Vec<String> {
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit_once('/'))
        .map(|(_, v)| v)
        .unwrap_or_default();
    let Some(schema) = rt
        .crd_version(version)
        .or_else(|| rt.crd_versions.first())
        .and_then(|v| v.schema.as_ref())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_unknown(schema, obj, "", true, &mut out);
    out
}

fn collect_unknown(schema: &Value, v: &Value, path: &str, top: bool, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|a| a.is_object() || a.as_bool() == Some(true));
            let open = preserves_unknown(schema)
                || additional.is_some()
                || schema
                    .get("x-kubernetes-embedded-resource")
                    .is_some_and(|b| b == true);
            for (k, child) in m {
                if top && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => collect_unknown(ps, child, &join(k), false, out),
                    None if open => {
                        if let Some(ap) = additional.filter(|a| a.is_object()) {
                            collect_unknown(ap, child, &join(k), false, out);
                        }
                    }
                    None => out.push(join(k)),
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    collect_unknown(is, it, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Removes fields the schema does not declare (unless it preserves unknown fields).
fn prune(schema: &Value, v: &mut Value, top: bool) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema
                .get("additionalProperties")
                .filter(|a| a.is_object() || a.as_bool() == Some(true));
            if !preserves_unknown(schema)
                && additional.is_none()
                && !schema
                    .get("x-kubernetes-embedded-resource")
                    .is_some_and(|b| b == true)
            {
                let empty = Map::new();
                let props_map = props.unwrap_or(&empty);
                m.retain(|k, _| {
                    props_map.contains_key(k)
                        || (top && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                });
            }
            for (k, child) in m.iter_mut() {
                if top && k == "metadata" {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    prune(ps, child, false);
                } else if let Some(ap) = additional.filter(|a| a.is_object()) {
                    prune(ap, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for it in items {
                    prune(is, it, false);
                }
            }
        }
        _ => {}
    }
}

/// Checks types, enums and required fields; pushes messages shaped as the API server's.
fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<(String, String)>, top: bool) {
    let here = if path.is_empty() {
        "<root>".to_string()
    } else {
        path.to_string()
    };
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) && !top {
            errors.push((
                here.clone(),
                format!(
                    "Invalid value: \"null\": {here} in body must be of type {}",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if let Some(t) = schema.get("type").and_then(Value::as_str)
        && !int_or_string
    {
        let ok = match t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => true,
        };
        if !ok {
            let got = match v {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
                Value::Null => "null",
            };
            errors.push((
                here.clone(),
                format!("Invalid value: \"{got}\": {here} in body must be of type {t}: \"{got}\""),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        errors.push((
            here.clone(),
            format!(
                "Unsupported value: {v}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    match v {
        Value::Object(m) => {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        let p = if path.is_empty() {
                            r.to_string()
                        } else {
                            format!("{path}.{r}")
                        };
                        errors.push((p, "Required value".to_string()));
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child) in m {
                if top && matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    check(ps, child, &p, errors, false);
                } else if let Some(ap) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    check(ap, child, &p, errors, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    check(is, it, &format!("{here}[{i}]"), errors, false);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_prune_and_checks() {
        let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["target"], "properties": {
            "target": {"type": "string"},
            "strategy": {"type": "string", "default": "Auto", "enum": ["Auto", "BlueGreen"]},
            "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}}
        }}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"target": "t", "junk": 1, "items": [{}]}});
        apply_defaults(&schema, &mut obj);
        prune(&schema, &mut obj, true);
        assert_eq!(
            obj["spec"],
            json!({"target": "t", "strategy": "Auto", "items": [{"n": 3}]})
        );
        let mut errors = Vec::new();
        check(
            &schema,
            &json!({"spec": {"strategy": "Nope", "items": [{"n": "x"}]}}),
            "",
            &mut errors,
            true,
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == "spec.target" && m == "Required value")
        );
    }
}
