//! The patch formats of the API: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch (with the keyed lists of the core types) and an approximation of
//! server-side apply (keyed merge plus removal of fields a manager stopped applying; atomic
//! fields such as a Service's `spec.selector` replaced whole, with conflicts detected on them
//! only). Pure functions over JSON values; no store access.

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
/// also set them; the applied fields are merged in (keyed lists item by item, atomic fields of
/// the kind replaced whole); the manager's `Apply` entry in managedFields is replaced.
/// `subresource` is `Some("status")` for status.
///
/// An atomic field (see [`managed::atomic_paths`]) that the apply would change while another
/// manager owns it is a conflict: a 409 unless `force`, in which case the other managers lose
/// it. Other fields are merged without conflict detection.
pub fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<Value, ApiError> {
    let kind_source = match current {
        Some(cur) if applied.get("kind").is_none() => cur,
        _ => applied,
    };
    let atomic = managed::atomic_paths(kind_source);
    let mut new_owned = managed::fields_of(applied);
    managed::collapse_atomic(&mut new_owned, atomic);
    let mut out = current
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(cur) = current {
        let mut conflicts = Vec::new();
        let mut taken = Vec::new();
        for &path in atomic {
            let ptr = managed::value_pointer(path);
            let Some(want) = applied.pointer(&ptr).filter(|v| !v.is_null()) else {
                continue;
            };
            if cur.pointer(&ptr) == Some(want) {
                continue;
            }
            let owners = managed::owners_of(cur, path, manager);
            if !owners.is_empty() {
                taken.push(path);
                conflicts.extend(
                    owners
                        .into_iter()
                        .map(|o| (o, format!(".{}", path.join(".")))),
                );
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(apply_conflict(cur, &conflicts));
        }
        if let Some(prev) = managed::owned_by(cur, manager, "Apply", subresource) {
            let others = managed::owned_by_others(cur, manager);
            let others: Vec<&Value> = others.iter().collect();
            remove_released(&mut out, &prev, Some(&new_owned), &others);
        }
        for path in taken {
            managed::disown(&mut out, path, manager);
        }
    }
    apply_merge(&mut out, applied, atomic);
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
    Ok(out)
}

/// The 409 of an apply that conflicts with other managers, worded as the API server words it.
fn apply_conflict(obj: &Value, conflicts: &[((String, String), String)]) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        let ((m, av), field) = &conflicts[0];
        format!("Apply failed with 1 conflict: conflict with \"{m}\" using {av}: {field}")
    } else {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|((m, av), field)| format!("conflict with \"{m}\" using {av}: {field}"))
            .collect();
        format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|((m, av), field)| {
            serde_json::json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{m}\" using {av}"),
                "field": field,
            })
        })
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(serde_json::json!({
        "name": crate::util::name(obj),
        "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
        "causes": causes,
    }));
    e
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

/// Merges `applied` into `target`; `atomic` holds the atomic field paths relative to here.
fn apply_merge(target: &mut Value, applied: &Value, atomic: &[&[&str]]) {
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
        let below: Vec<&[&str]> = atomic
            .iter()
            .filter_map(|p| p.split_first())
            .filter(|(first, _)| **first == k.as_str())
            .map(|(_, rest)| rest)
            .collect();
        if below.iter().any(|rest| rest.is_empty()) {
            tm.insert(k.clone(), av.clone());
            continue;
        }
        match av {
            Value::Object(_) => {
                let entry = tm.entry(k.clone()).or_insert(Value::Null);
                apply_merge(entry, av, &below);
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
                            Some(c) => apply_merge(c, it, &[]),
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
        let obj = apply(None, &first, "me", None, false).unwrap();
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"y": "2"}});
        let obj = apply(Some(&obj), &second, "me", None, false).unwrap();
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
        let out = apply(Some(&shared), &third, "me", None, false).unwrap();
        assert_eq!(out["data"], json!({"z": "3"}));
    }

    fn service(selector: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
            "spec": {"selector": selector, "ports": [{"port": 80}]}})
    }

    /// A Service applied by "gitops", then its selector changed by "operator" through an update.
    fn pinned_service() -> Value {
        let obj = apply(None, &service(json!({"app": "x"})), "gitops", None, false).unwrap();
        let mut pinned = obj.clone();
        pinned["spec"]["selector"]["pod-template-hash"] = json!("h");
        let fields = managed::changed_fields(&obj, &pinned);
        assert_eq!(fields, json!({"f:spec": {"f:selector": {}}}));
        managed::record(&mut pinned, "operator", "Update", "v1", None, fields);
        pinned
    }

    fn owners(obj: &Value) -> Vec<String> {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["fieldsV1"].pointer("/f:spec/f:selector").is_some())
            .map(|e| {
                format!(
                    "{}/{}",
                    e["manager"].as_str().unwrap(),
                    e["operation"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn forced_apply_replaces_an_atomic_selector_and_takes_it_over() {
        let pinned = pinned_service();
        let out = apply(
            Some(&pinned),
            &service(json!({"app": "x"})),
            "gitops",
            None,
            true,
        )
        .unwrap();
        assert_eq!(out["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(owners(&out), vec!["gitops/Apply"]);
        // The operator's entry owned nothing else, so it is gone.
        assert!(
            !out["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["manager"] == "operator")
        );
        // A manager that never applied before takes the selector over the same way.
        let out = apply(
            Some(&pinned),
            &service(json!({"app": "y"})),
            "other",
            None,
            true,
        )
        .unwrap();
        assert_eq!(out["spec"]["selector"], json!({"app": "y"}));
        assert_eq!(owners(&out), vec!["other/Apply"]);
    }

    #[test]
    fn unforced_apply_of_a_different_atomic_selector_conflicts() {
        let pinned = pinned_service();
        let e = apply(
            Some(&pinned),
            &service(json!({"app": "x"})),
            "gitops",
            None,
            false,
        )
        .unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"operator\" using v1: .spec.selector"
        );
        assert_eq!(e.details.unwrap()["causes"][0]["field"], ".spec.selector");
        // Applying the value the selector already has is no conflict: the owners share it.
        let same = service(json!({"app": "x", "pod-template-hash": "h"}));
        let out = apply(Some(&pinned), &same, "gitops", None, false).unwrap();
        assert_eq!(out["spec"]["selector"], same["spec"]["selector"]);
        assert_eq!(owners(&out), vec!["operator/Update", "gitops/Apply"]);
        // Without the kind in the applied object, the stored object's kind decides.
        let mut bare = service(json!({"app": "x"}));
        bare.as_object_mut().unwrap().remove("kind");
        assert!(apply(Some(&pinned), &bare, "gitops", None, false).is_err());
    }

    #[test]
    fn label_selectors_of_workloads_are_atomic_and_other_maps_are_not() {
        let d = |sel: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
                "spec": {"selector": sel}})
        };
        let obj = apply(
            None,
            &d(json!({"matchLabels": {"app": "x", "tier": "web"}})),
            "m",
            None,
            false,
        )
        .unwrap();
        let mut other = obj.clone();
        other["metadata"]["labels"]["b"] = json!("2");
        managed::record(
            &mut other,
            "n",
            "Update",
            "apps/v1",
            None,
            json!({"f:metadata": {"f:labels": {"f:b": {}}}}),
        );
        let out = apply(
            Some(&other),
            &d(json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]})),
            "m",
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["selector"],
            json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]})
        );
        // Labels stay a granular map: the other manager's label is kept.
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }
}
