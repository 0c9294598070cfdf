//! The PersistentVolumeClaims of a StatefulSet's pods, as the real controller makes them: one
//! claim `<template>-<set>-<ordinal>` per volumeClaimTemplate and ordinal, created before its
//! pod when missing (labelled with the template's labels and the set's selector labels), the
//! volumes that mount them in the pod, and the owner references by which the
//! `persistentVolumeClaimRetentionPolicy` is carried out (whenDeleted: Delete -> owned by the
//! set; whenScaled: Delete -> the claim of a condemned ordinal owned by its pod; the garbage
//! collector then removes them). Claims are never deleted here, and never bound here.

use super::record_event;
use crate::resources::keys;
use crate::store::{Part, Store, WriteCtx};
use crate::util;
use serde_json::{Value, json};

const MANAGER: &str = "statefulset-controller";

/// The volumeClaimTemplates of a set.
pub fn templates(set: &Value) -> Vec<Value> {
    set.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The name of the claim of a template for an ordinal.
pub fn claim_name(template: &Value, set: &Value, ordinal: i64) -> String {
    format!("{}-{}-{ordinal}", util::name(template), util::name(set))
}

/// Puts a volume for each claim template into a pod spec (replacing a volume of the same name).
pub fn set_volumes(set: &Value, pod: &mut Value, ordinal: i64) {
    let templates = templates(set);
    if templates.is_empty() {
        return;
    }
    let spec = util::obj_mut(pod, "spec");
    let volumes = spec.entry("volumes").or_insert(json!([]));
    if !volumes.is_array() {
        *volumes = json!([]);
    }
    let volumes = volumes.as_array_mut().expect("made an array");
    for t in &templates {
        let name = util::name(t);
        let v = json!({"name": name, "persistentVolumeClaim": {"claimName": claim_name(t, set, ordinal)}});
        match volumes.iter_mut().find(|v| v["name"] == name) {
            Some(existing) => *existing = v,
            None => volumes.push(v),
        }
    }
}

/// Whether a pod mounts the claims of its ordinal (`storageMatches`).
pub fn volumes_match(set: &Value, pod: &Value, ordinal: i64) -> bool {
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    templates(set).iter().all(|t| {
        volumes.iter().any(|v| {
            v["name"] == util::name(t)
                && v.pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
                    == Some(claim_name(t, set, ordinal).as_str())
        })
    })
}

/// What the retention policy asks of a claim's owners: (owned by the set, owned by the pod).
fn wanted_owners(set: &Value, scaled_down: bool) -> (bool, bool) {
    let policy = |k: &str| {
        util::str_at(
            set,
            &format!("/spec/persistentVolumeClaimRetentionPolicy/{k}"),
        ) == Some("Delete")
    };
    match (policy("whenDeleted"), policy("whenScaled")) {
        (false, false) => (false, false),
        (true, false) => (true, false),
        (false, true) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    }
}

fn plain_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": util::name(owner), "uid": util::uid(owner)})
}

/// The owner references a claim should carry: the others it has, plus the set and the pod as
/// the policy asks (references to an earlier set or pod of the same name are dropped).
fn owners_for(claim: &Value, set: &Value, pod: Option<&Value>, scaled_down: bool) -> Vec<Value> {
    let (want_set, want_pod) = wanted_owners(set, scaled_down);
    let pod_name = pod.map(util::name);
    let mut refs: Vec<Value> = util::owner_refs(claim)
        .iter()
        .filter(|r| {
            let is_set = r["kind"] == "StatefulSet" && r["name"] == util::name(set);
            let is_pod = r["kind"] == "Pod" && pod_name.is_some_and(|n| r["name"] == n);
            !is_set && !is_pod
        })
        .cloned()
        .collect();
    if want_set {
        refs.push(plain_ref(set, "apps/v1", "StatefulSet"));
    }
    if want_pod && let Some(p) = pod {
        refs.push(plain_ref(p, "v1", "Pod"));
    }
    refs
}

/// Creates the missing claims of an ordinal. Returns false when a claim is being deleted (the
/// pod must wait for it to go).
pub fn create_missing(store: &Store, set: &Value, ordinal: i64) -> bool {
    let ns = util::namespace(set);
    let selector_labels = set
        .pointer("/spec/selector/matchLabels")
        .cloned()
        .unwrap_or(json!({}));
    let mut ok = true;
    for t in templates(set) {
        let name = claim_name(&t, set, ordinal);
        if let Some(existing) = store.get(&keys::PVCS, ns, &name) {
            ok &= !util::is_terminating(&existing);
            continue;
        }
        let mut labels = t.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        if !labels.is_object() {
            labels = json!({});
        }
        if let (Some(l), Some(sel)) = (labels.as_object_mut(), selector_labels.as_object()) {
            for (k, v) in sel {
                l.insert(k.clone(), v.clone());
            }
        }
        let mut claim = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": t.get("spec").cloned().unwrap_or(json!({})),
        });
        if let Some(a) = t.pointer("/metadata/annotations") {
            claim["metadata"]["annotations"] = a.clone();
        }
        let refs = owners_for(&claim, set, None, false);
        if !refs.is_empty() {
            claim["metadata"]["ownerReferences"] = json!(refs);
        }
        let pod = format!("{}-{ordinal}", util::name(set));
        match store.create(&keys::PVCS, claim, &WriteCtx::controller(MANAGER, "create")) {
            Ok(_) => record_event(
                store,
                &involved(set),
                "Normal",
                "SuccessfulCreate",
                &format!(
                    "create Claim {name} Pod {pod} in StatefulSet {} success",
                    util::name(set)
                ),
                MANAGER,
            ),
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => {
                ok = false;
                record_event(
                    store,
                    &involved(set),
                    "Warning",
                    "FailedCreate",
                    &format!(
                        "create Claim {name} for Pod {pod} in StatefulSet {} failed error: {e}",
                        util::name(set)
                    ),
                    MANAGER,
                );
            }
        }
    }
    ok
}

/// Gives the claims of a pod the owner references its retention policy asks for (the pod
/// `scaled_down` when its ordinal is out of the set's range).
pub fn enforce_retention(store: &Store, set: &Value, pod: &Value, ordinal: i64, scaled_down: bool) {
    let ns = util::namespace(set);
    for t in templates(set) {
        let name = claim_name(&t, set, ordinal);
        let Some(claim) = store.get(&keys::PVCS, ns, &name) else {
            continue;
        };
        if util::is_terminating(&claim) {
            continue;
        }
        let refs = owners_for(&claim, set, Some(pod), scaled_down);
        if refs.as_slice() == util::owner_refs(&claim) {
            continue;
        }
        let _ = store.modify(
            &keys::PVCS,
            ns,
            &name,
            Part::Main,
            &WriteCtx::controller(MANAGER, "update"),
            |cur| {
                let mut new = cur.clone();
                let refs = owners_for(cur, set, Some(pod), scaled_down);
                let meta = util::meta_mut(&mut new);
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                } else {
                    meta.insert("ownerReferences".into(), json!(refs));
                }
                Ok(new)
            },
        );
    }
}

/// The set as the object of an Event.
pub fn involved(set: &Value) -> Value {
    let mut r = util::controller_ref(set);
    r["namespace"] = json!(util::namespace(set));
    r
}
