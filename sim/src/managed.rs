//! `metadata.managedFields` bookkeeping: the FieldsV1 sets of the fields an object's managers
//! set, kept per manager and operation. Used by server-side apply to know which fields a
//! manager stopped applying; it detects no conflicts.

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

/// The FieldsV1 set of every field present in `obj`.
pub fn fields_of(obj: &Value) -> Value {
    Value::Object(fields_map(obj, true))
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
    Value::Object(diff_map(old, new, true))
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
