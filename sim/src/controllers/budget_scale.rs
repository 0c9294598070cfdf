//! How many pods a PodDisruptionBudget expects, as the real disruption controller counts
//! them: for a budget with `maxUnavailable` or a percentage `minAvailable`, the sum of the
//! scales of the pods' controllers (a ReplicaSet owned by a Deployment counts as the
//! Deployment); pods without a controller are unmanaged and left out; a controller without a
//! scale (a custom resource, a Job) makes the budget fail to sync, which allows no disruption.
//! For an integer `minAvailable`, simply the selected pods. It counts; it writes nothing.

use crate::resources::keys;
use crate::store::Store;
use crate::util;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The expected count, or why it cannot be known (the real controller's SyncFailed message).
pub fn expected_pods(store: &Store, pdb: &Value, selected: &[&Arc<Value>]) -> Result<i64, String> {
    let by_scale = pdb.pointer("/spec/maxUnavailable").is_some()
        || pdb
            .pointer("/spec/minAvailable")
            .is_some_and(|m| m.as_str().is_some_and(|s| s.ends_with('%')));
    if !by_scale {
        return Ok(selected.len() as i64);
    }
    let mut counted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut expected = 0;
    for pod in selected {
        let ns = util::namespace(pod);
        let Some(owner) = controller_of(pod) else {
            continue;
        };
        let (kind, name, api_version) = owner;
        let (kind, name, scale) = match (api_version.as_str(), kind.as_str()) {
            ("apps/v1", "ReplicaSet") => {
                let Some(rs) = store.get(&keys::REPLICASETS, ns, &name) else {
                    continue;
                };
                match controller_of(&rs) {
                    Some((k, n, v)) if v == "apps/v1" && k == "Deployment" => {
                        let Some(d) = store.get(&keys::DEPLOYMENTS, ns, &n) else {
                            continue;
                        };
                        (k, n, replicas(&d))
                    }
                    _ => (kind, name, replicas(&rs)),
                }
            }
            ("apps/v1", "StatefulSet") => {
                let Some(s) = store.get(&keys::STATEFULSETS, ns, &name) else {
                    continue;
                };
                (kind, name, replicas(&s))
            }
            _ => {
                let plural = format!("{}s", kind.to_lowercase());
                let group = api_version.split_once('/').map_or("", |(g, _)| g);
                let resource = if group.is_empty() {
                    plural
                } else {
                    format!("{plural}.{group}")
                };
                return Err(format!(
                    "{resource} does not implement the scale subresource"
                ));
            }
        };
        if counted.insert((kind, name)) {
            expected += scale;
        }
    }
    Ok(expected)
}

/// (kind, name, apiVersion) of the object's controller reference.
fn controller_of(obj: &Value) -> Option<(String, String, String)> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|o| {
            let s = |k: &str| {
                o.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (s("kind"), s("name"), s("apiVersion"))
        })
}

fn replicas(obj: &Value) -> i64 {
    util::i64_at(obj, "/spec/replicas").unwrap_or(1)
}
