//! The ReplicaSet controller: keeps `spec.replicas` pods from the template (owned with a
//! controller reference), deletes surplus pods (not-ready and newest first), and writes the
//! status (replicas, ready, available after minReadySeconds, observedGeneration).

use super::{Reconciler, WorkKey, owner_name, pod_available, pod_ready, update_status};
use crate::resources::{ResKey, keys};
use crate::store::{DeleteOpts, Store, StoreEvent, WriteCtx};
use crate::util;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "replicaset-controller";

/// The ReplicaSet controller.
#[derive(Default)]
pub struct ReplicaSetController;

/// The pods a ReplicaSet controls.
pub fn pods_of(store: &Store, rs: &Value) -> Vec<Arc<Value>> {
    store.owned(util::uid(rs), &keys::PODS)
}

/// A new pod from a template, owned by `owner`.
pub fn pod_from_template(owner: &Value, template: &Value, name: &str) -> Value {
    let mut meta = template.get("metadata").cloned().unwrap_or(json!({}));
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(name);
    meta["namespace"] = json!(util::namespace(owner));
    meta["ownerReferences"] = json!([util::controller_ref(owner)]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}

impl Reconciler for ReplicaSetController {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::REPLICASETS.clone(), keys::PODS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, _store: &Store, out: &mut Vec<WorkKey>) {
        if ev.res == *keys::REPLICASETS {
            out.push((ev.namespace().to_string(), ev.name().to_string()));
        } else if let Some(rs) = owner_name(&ev.object, "ReplicaSet") {
            out.push((ev.namespace().to_string(), rs.to_string()));
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let rs = store.get(&keys::REPLICASETS, &key.0, &key.1)?;
        let want = util::i64_at(&rs, "/spec/replicas").unwrap_or(1).max(0) as usize;
        let min_ready = Duration::from_secs(
            util::i64_at(&rs, "/spec/minReadySeconds")
                .unwrap_or(0)
                .max(0) as u64,
        );
        let pods = pods_of(store, &rs);
        let mut active: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| {
                !util::is_terminating(p)
                    && !matches!(
                        util::str_at(p, "/status/phase"),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect();
        if !util::is_terminating(&rs) {
            if active.len() < want {
                let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                for _ in active.len()..want {
                    let name = format!("{}-{}", util::name(&rs), util::random_suffix());
                    let pod = pod_from_template(&rs, &template, &name);
                    if let Err(e) =
                        store.create(&keys::PODS, pod, &WriteCtx::controller(MANAGER, "create"))
                    {
                        tracing::debug!(error = %e, "replicaset: creating a pod failed");
                    }
                }
            } else if active.len() > want {
                // Not ready first, then the youngest.
                active.sort_by(|a, b| {
                    pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
                        util::str_at(b, "/metadata/creationTimestamp")
                            .cmp(&util::str_at(a, "/metadata/creationTimestamp"))
                    })
                });
                for p in active.iter().take(active.len() - want) {
                    let _ = store.delete(
                        &keys::PODS,
                        util::namespace(p),
                        util::name(p),
                        &DeleteOpts::default(),
                        &WriteCtx::controller(MANAGER, "delete"),
                    );
                }
            }
        }
        // Status from the pods as they are now.
        let pods = pods_of(store, &rs);
        let live: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| {
                !util::is_terminating(p)
                    && !matches!(
                        util::str_at(p, "/status/phase"),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect();
        let ready = live.iter().filter(|p| pod_ready(p)).count();
        let mut available = 0;
        let mut requeue: Option<Duration> = None;
        for p in &live {
            match pod_available(p, min_ready) {
                Ok(()) => available += 1,
                Err(Some(wait)) => requeue = Some(requeue.map_or(wait, |r| r.min(wait))),
                Err(None) => {}
            }
        }
        let status = json!({
            "replicas": live.len(),
            "fullyLabeledReplicas": live.len(),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": util::i64_at(&rs, "/metadata/generation").unwrap_or(1),
        });
        update_status(store, &keys::REPLICASETS, key, &rs, status, MANAGER);
        requeue
    }
}
