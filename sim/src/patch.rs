//! The patch formats of the API: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch (with the keyed lists of the core types) and an approximation of
//! server-side apply (keyed merge plus removal of fields a manager stopped applying, no
//! conflict detection). Pure functions over JSON values; no store access.

use crate::error::ApiError;
use crate::managed;
use serde_json::{Map, Value};

/// The patch formats, by their content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// The key that identifies items of a list field in strategic merge and apply, if the list is
/// keyed. Decided by the field name (and for `ports` by the items' shape).
pub fn list_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" | "volumeDevices" => "mountPath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    };
    items.iter().all(|i| i.is_object()).then_some(key)
}

/// Lists of scalars that merge as sets in strategic merge patch.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a JSON merge patch.
pub fn merge(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// Applies a JSON patch (a list of operations).
pub fn json(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the JSON patch could not be applied: {e}"),
        )
    })?;
    Ok(out)
}

/// Applies a strategic merge patch.
pub fn strategic(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    }
    let mut out = target.clone();
    smp_map(&mut out, patch);
    Ok(out)
}

fn smp_map(target: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *target = strip_directives(patch);
        return;
    };
    match pm.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(patch);
            return;
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(del)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                pv.as_array(),
            ) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let tm = target.as_object_mut().expect("made an object");
        if pv.is_null() {
            tm.remove(k);
            continue;
        }
        match pv {
            Value::Object(_) => {
                let entry = tm.entry(k.clone()).or_insert(Value::Null);
                if entry.is_object() {
                    smp_map(entry, pv);
                } else {
                    *entry = strip_directives(pv);
                }
            }
            Value::Array(items) => {
                let current = tm
                    .remove(k)
                    .and_then(|v| {
                        if let Value::Array(a) = v {
                            Some(a)
                        } else {
                            None
                        }
                    })
                    .unwrap_or_default();
                tm.insert(k.clone(), Value::Array(smp_list(k, current, items)));
            }
            _ => {
                tm.insert(k.clone(), pv.clone());
            }
        }
    }
    if let Some(retain) = pm.get("$retainKeys").and_then(Value::as_array)
        && let Some(tm) = target.as_object_mut()
    {
        tm.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
}

fn smp_list(field: &str, mut current: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
    }
    if is_set_list(field) {
        for p in patch {
            if !current.contains(p) {
                current.push(p.clone());
            }
        }
        return current;
    }
    let probe: Vec<Value> = if current.is_empty() {
        patch.to_vec()
    } else {
        current.clone()
    };
    let Some(key) = list_key(field, &probe).filter(|_| patch.iter().all(Value::is_object)) else {
        return patch.iter().map(strip_directives).collect();
    };
    for p in patch {
        let k = p.get(key);
        let pos = current.iter().position(|c| c.get(key) == k);
        if p.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                current.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => smp_map(&mut current[i], p),
            None => current.push(strip_directives(p)),
        }
    }
    current
}

/// A value with every `$directive` key removed.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        _ => v.clone(),
    }
}

/// Server-side apply of `applied` by `manager` onto `current` (None: the object is new).
/// Fields the manager applied before but no longer applies are removed unless another manager
/// also set them; the applied fields are merged in (keyed lists item by item); the manager's
/// `Apply` entry in managedFields is replaced. `subresource` is `Some("status")` for status.
pub fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
) -> Value {
    let new_owned = managed::fields_of(applied);
    let mut out = current
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(cur) = current
        && let Some(prev) = managed::owned_by(cur, manager, "Apply", subresource)
    {
        let others = managed::owned_by_others(cur, manager);
        let others: Vec<&Value> = others.iter().collect();
        remove_released(&mut out, &prev, Some(&new_owned), &others);
    }
    apply_merge(&mut out, applied);
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    managed::record(
        &mut out,
        manager,
        "Apply",
        &api_version,
        subresource,
        new_owned,
    );
    out
}

fn remove_released(target: &mut Value, prev: &Value, keep: Option<&Value>, others: &[&Value]) {
    let Some(pm) = prev.as_object() else { return };
    for (fk, sub) in pm {
        if fk == "." {
            continue;
        }
        let keep_sub = keep.and_then(|k| k.get(fk));
        let others_sub: Vec<&Value> = others.iter().filter_map(|o| o.get(fk)).collect();
        if let Some(name) = fk.strip_prefix("f:") {
            let Some(tm) = target.as_object_mut() else {
                continue;
            };
            if keep_sub.is_none() && others_sub.is_empty() {
                tm.remove(name);
            } else if sub.as_object().is_some_and(|m| !m.is_empty())
                && let Some(child) = tm.get_mut(name)
            {
                remove_released(child, sub, keep_sub, &others_sub);
            }
        } else if let Some(key_json) = fk.strip_prefix("k:") {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key_json) else {
                continue;
            };
            let Some(items) = target.as_array_mut() else {
                continue;
            };
            let matches = |it: &Value| key.iter().all(|(k, v)| it.get(k) == Some(v));
            if keep_sub.is_none() && others_sub.is_empty() {
                items.retain(|it| !matches(it));
            } else if let Some(item) = items.iter_mut().find(|it| matches(it)) {
                remove_released(item, sub, keep_sub, &others_sub);
            }
        }
    }
}

fn apply_merge(target: &mut Value, applied: &Value) {
    let Some(am) = applied.as_object() else {
        *target = applied.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let tm = target.as_object_mut().expect("made an object");
    for (k, av) in am {
        if av.is_null() {
            continue;
        }
        match av {
            Value::Object(_) => {
                let entry = tm.entry(k.clone()).or_insert(Value::Null);
                apply_merge(entry, av);
            }
            Value::Array(items) => match list_key(k, items) {
                Some(key) => {
                    let entry = tm
                        .entry(k.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if !entry.is_array() {
                        *entry = Value::Array(Vec::new());
                    }
                    let list = entry.as_array_mut().expect("made an array");
                    for it in items {
                        match list.iter_mut().find(|c| c.get(key) == it.get(key)) {
                            Some(c) => apply_merge(c, it),
                            None => list.push(it.clone()),
                        }
                    }
                }
                None => {
                    tm.insert(k.clone(), av.clone());
                }
            },
            _ => {
                tm.insert(k.clone(), av.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name_and_env_by_name() {
        let cur = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]},
            {"name": "b", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "a"}]}});
        let out = strategic(&cur, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "image": "a:2", "env": [
                {"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]}]}})
        );
    }

    #[test]
    fn strategic_replaces_unkeyed_lists_and_merges_finalizers() {
        let cur = json!({"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x", "y"]}});
        let patch = json!({"metadata": {"finalizers": ["b"]}, "spec": {"args": ["z"]}});
        let out = strategic(&cur, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["z"]}})
        );
        let del = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        assert_eq!(
            strategic(&out, &del).unwrap()["metadata"]["finalizers"],
            json!(["b"])
        );
    }

    #[test]
    fn apply_removes_fields_the_manager_no_longer_applies() {
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}});
        let obj = apply(None, &first, "me", None);
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"y": "2"}});
        let obj = apply(Some(&obj), &second, "me", None);
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(obj["data"], json!({"y": "2"}));
        // Another manager's field survives.
        let mut shared = obj.clone();
        shared["data"]["z"] = json!("3");
        managed::record(
            &mut shared,
            "other",
            "Update",
            "v1",
            None,
            json!({"f:data": {"f:z": {}}}),
        );
        let third = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let out = apply(Some(&shared), &third, "me", None);
        assert_eq!(out["data"], json!({"z": "3"}));
    }
}
