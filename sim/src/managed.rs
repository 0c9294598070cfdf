//! `metadata.managedFields` bookkeeping: the FieldsV1 sets of the fields an object's managers
//! set, kept per manager and operation, with the fields that are atomic (owned and replaced as
//! one leaf) per kind. Used by server-side apply to know which fields a manager stopped
//! applying and who else owns an atomic field; deciding what is a conflict is up to the caller.

use crate::patch::list_key;
use crate::util::now_ts;
use serde_json::{Map, Value, json};

const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// A field path from the object's root, as field names.
pub type FieldPath = &'static [&'static str];

/// The fields of an object's kind that server-side apply treats as one leaf: owned as a whole
/// and replaced as a whole. A Service's `spec.selector` is a map marked
/// `x-kubernetes-map-type: atomic`; the `metav1.LabelSelector` of the workload kinds and of
/// budgets is a struct marked atomic.
pub fn atomic_paths(obj: &Value) -> &'static [FieldPath] {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match (group, kind) {
        ("", "Service")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("policy", "PodDisruptionBudget") => &[&["spec", "selector"]],
        _ => &[],
    }
}

/// The JSON pointer of a field path in a FieldsV1 set (`/f:spec/f:selector`).
pub fn fields_pointer(path: FieldPath) -> String {
    path.iter().map(|seg| format!("/f:{seg}")).collect()
}

/// The JSON pointer of a field path in an object (`/spec/selector`).
pub fn value_pointer(path: FieldPath) -> String {
    path.iter().map(|seg| format!("/{seg}")).collect()
}

/// Makes every atomic field of a FieldsV1 set a leaf (drops what is recorded below it).
pub fn collapse_atomic(fields: &mut Value, paths: &[FieldPath]) {
    for path in paths {
        if let Some(leaf) = fields.pointer_mut(&fields_pointer(path)) {
            *leaf = json!({});
        }
    }
}

/// The FieldsV1 set of every field present in `obj`.
pub fn fields_of(obj: &Value) -> Value {
    let mut fields = Value::Object(fields_map(obj, true));
    collapse_atomic(&mut fields, atomic_paths(obj));
    fields
}

fn fields_map(v: &Value, top: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(m) = v.as_object() else { return out };
    for (k, child) in m {
        if top && (k == "apiVersion" || k == "kind") {
            continue;
        }
        if top && k == "metadata" {
            let mut meta = Map::new();
            if let Some(mm) = child.as_object() {
                for (mk, mv) in mm {
                    if !SYSTEM_META.contains(&mk.as_str()) {
                        meta.insert(format!("f:{mk}"), Value::Object(fields_map(mv, false)));
                    }
                }
            }
            if !meta.is_empty() {
                out.insert("f:metadata".into(), Value::Object(meta));
            }
            continue;
        }
        out.insert(format!("f:{k}"), field_value(k, child));
    }
    out
}

fn field_value(name: &str, child: &Value) -> Value {
    match child {
        Value::Object(_) => Value::Object(fields_map(child, false)),
        Value::Array(items) => match list_key(name, items) {
            Some(key) => {
                let mut m = Map::new();
                for it in items {
                    let mut f = fields_map(it, false);
                    f.insert(".".into(), json!({}));
                    m.insert(item_key(key, it), Value::Object(f));
                }
                Value::Object(m)
            }
            None => json!({}),
        },
        _ => json!({}),
    }
}

/// The `k:{...}` key of a keyed list item.
pub fn item_key(key: &str, item: &Value) -> String {
    let mut m = Map::new();
    m.insert(
        key.to_string(),
        item.get(key).cloned().unwrap_or(Value::Null),
    );
    format!("k:{}", Value::Object(m))
}

/// The FieldsV1 set of the fields that differ between `old` and `new`.
pub fn changed_fields(old: &Value, new: &Value) -> Value {
    let mut fields = Value::Object(diff_map(old, new, true));
    collapse_atomic(&mut fields, atomic_paths(new));
    fields
}

fn diff_map(old: &Value, new: &Value, top: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(n) = new.as_object() else { return out };
    for (k, nv) in n {
        if top && (k == "apiVersion" || k == "kind" || k == "status") {
            continue;
        }
        let ov = old.get(k);
        if ov == Some(nv) {
            continue;
        }
        if top && k == "metadata" {
            let empty = json!({});
            let om = ov.unwrap_or(&empty);
            let mut meta = Map::new();
            if let Some(nm) = nv.as_object() {
                for (mk, mv) in nm {
                    if !SYSTEM_META.contains(&mk.as_str()) && om.get(mk) != Some(mv) {
                        meta.insert(
                            format!("f:{mk}"),
                            Value::Object(diff_map(om.get(mk).unwrap_or(&Value::Null), mv, false)),
                        );
                    }
                }
            }
            if !meta.is_empty() {
                out.insert("f:metadata".into(), Value::Object(meta));
            }
            continue;
        }
        let f = match (ov, nv) {
            (Some(o @ Value::Object(_)), Value::Object(_)) => Value::Object(diff_map(o, nv, false)),
            _ => field_value(k, nv),
        };
        out.insert(format!("f:{k}"), f);
    }
    if top
        && let (Some(os), Some(ns)) = (old.get("status"), n.get("status"))
        && os != ns
    {
        out.insert("f:status".into(), Value::Object(diff_map(os, ns, false)));
    }
    out
}

/// Unions two FieldsV1 sets.
pub fn union(a: &mut Value, b: &Value) {
    let (Some(am), Some(bm)) = (a.as_object_mut(), b.as_object()) else {
        return;
    };
    for (k, bv) in bm {
        match am.get_mut(k) {
            Some(av) => union(av, bv),
            None => {
                am.insert(k.clone(), bv.clone());
            }
        }
    }
}

/// Records that `manager` set `fields` through `operation` (`Apply` replaces the manager's
/// set, `Update` adds to it).
pub fn record(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    mut fields: Value,
) {
    if operation == "Update" && fields.as_object().is_some_and(Map::is_empty) {
        return;
    }
    let meta = crate::util::meta_mut(obj);
    let mut entries: Vec<Value> = meta
        .get("managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let same = |e: &Value| {
        e["manager"].as_str() == Some(manager)
            && e["operation"].as_str() == Some(operation)
            && e.get("subresource").and_then(Value::as_str) == subresource
    };
    if operation == "Update"
        && let Some(prev) = entries.iter().find(|e| same(e))
    {
        let mut merged = prev["fieldsV1"].clone();
        union(&mut merged, &fields);
        fields = merged;
    }
    entries.retain(|e| !same(e));
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now_ts(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(s) = subresource {
        entry["subresource"] = json!(s);
    }
    entries.push(entry);
    meta.insert("managedFields".into(), Value::Array(entries));
}

/// The FieldsV1 set a manager owns through `operation` on a subresource (or the main resource).
pub fn owned_by(
    obj: &Value,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
) -> Option<Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"].as_str() == Some(manager)
                && e["operation"].as_str() == Some(operation)
                && e.get("subresource").and_then(Value::as_str) == subresource
        })
        .map(|e| e["fieldsV1"].clone())
}

/// The FieldsV1 sets of every entry except `manager`'s `Apply` entry.
pub fn owned_by_others(obj: &Value, manager: &str) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| {
                    !(e["manager"].as_str() == Some(manager)
                        && e["operation"].as_str() == Some("Apply"))
                })
                .map(|e| e["fieldsV1"].clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The managers (name, operation's apiVersion) other than `manager`'s `Apply` entry that own
/// the field at `path` or anything below it.
pub fn owners_of(obj: &Value, path: FieldPath, manager: &str) -> Vec<(String, String)> {
    let ptr = fields_pointer(path);
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| {
                    !(e["manager"].as_str() == Some(manager)
                        && e["operation"].as_str() == Some("Apply"))
                        && e["fieldsV1"].pointer(&ptr).is_some()
                })
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Takes the field at `path` (and anything below it) away from every manager but `manager`'s
/// `Apply` entry, as a forced apply does; entries left owning nothing are dropped.
pub fn disown(obj: &mut Value, path: FieldPath, manager: &str) {
    let Some(entries) = obj
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for e in entries.iter_mut() {
        if e["manager"].as_str() == Some(manager) && e["operation"].as_str() == Some("Apply") {
            continue;
        }
        remove_path(&mut e["fieldsV1"], path);
    }
    entries.retain(|e| {
        (e["manager"].as_str() == Some(manager) && e["operation"].as_str() == Some("Apply"))
            || e["fieldsV1"].as_object().is_some_and(|m| !m.is_empty())
    });
}

/// Removes a field from a FieldsV1 set, and the parents it leaves empty.
fn remove_path(fields: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let key = format!("f:{first}");
    let Some(m) = fields.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        m.remove(&key);
        return;
    }
    if let Some(child) = m.get_mut(&key) {
        remove_path(child, rest);
        if child.as_object().is_some_and(|c| c.is_empty()) {
            m.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_fields_are_recorded_as_one_leaf() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"selector": {"app": "x", "pod-template-hash": "h"}, "ports": [{"port": 80}]}});
        let f = fields_of(&svc);
        assert_eq!(f["f:spec"]["f:selector"], json!({}));
        assert!(
            f["f:spec"]["f:ports"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        );
        let mut changed = svc.clone();
        changed["spec"]["selector"] = json!({"app": "x"});
        let f = changed_fields(&svc, &changed);
        assert_eq!(f, json!({"f:spec": {"f:selector": {}}}));
        // A ConfigMap's maps stay granular; a Deployment's LabelSelector is atomic.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}});
        assert_eq!(fields_of(&cm)["f:data"], json!({"f:a": {}}));
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "replicas": 1}});
        assert_eq!(fields_of(&d)["f:spec"]["f:selector"], json!({}));
    }

    #[test]
    fn owners_and_disowning() {
        let mut obj = json!({"metadata": {"managedFields": [
            {"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:spec": {"f:selector": {}}}},
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:spec": {"f:selector": {}}}},
            {"manager": "c", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:spec": {"f:selector": {}, "f:type": {}}}},
        ]}});
        let path: FieldPath = &["spec", "selector"];
        assert_eq!(
            owners_of(&obj, path, "a"),
            vec![
                ("b".to_string(), "v1".to_string()),
                ("c".to_string(), "v1".to_string())
            ]
        );
        disown(&mut obj, path, "a");
        let entries = obj["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["manager"], "a");
        assert_eq!(entries[1]["fieldsV1"], json!({"f:spec": {"f:type": {}}}));
    }
}
