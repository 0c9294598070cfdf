//! The volume binder: what dynamic provisioning and the PersistentVolume controller do for a
//! claim, collapsed into one step. Every PersistentVolumeClaim that is not Bound is bound at
//! once to a volume named `pvc-<uid>` (`spec.volumeName`) with the requested capacity and
//! access modes. No PersistentVolume objects exist and nothing is ever stored; claims are
//! never deleted here (no `kubernetes.io/pvc-protection` finalizer either).

use super::{Reconciler, WorkKey};
use crate::resources::{ResKey, keys};
use crate::store::{EventType, Part, Store, StoreEvent, WriteCtx};
use crate::util;
use serde_json::json;
use std::time::Duration;

const MANAGER: &str = "persistent-volume-binder";

/// The volume binder.
#[derive(Default)]
pub struct VolumeBinder;

impl Reconciler for VolumeBinder {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::PVCS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, _store: &Store, out: &mut Vec<WorkKey>) {
        if ev.kind != EventType::Deleted {
            out.push((ev.namespace().to_string(), ev.name().to_string()));
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let claim = store.get(&keys::PVCS, &key.0, &key.1)?;
        if util::is_terminating(&claim) || util::str_at(&claim, "/status/phase") == Some("Bound") {
            return None;
        }
        let _ = store.modify(
            &keys::PVCS,
            &key.0,
            &key.1,
            Part::All,
            &WriteCtx::controller(MANAGER, "update"),
            |cur| {
                let mut new = cur.clone();
                let volume = format!("pvc-{}", util::uid(cur));
                let spec = util::obj_mut(&mut new, "spec");
                spec.entry("volumeName").or_insert(json!(volume));
                let annotations = util::meta_mut(&mut new)
                    .entry("annotations")
                    .or_insert(json!({}));
                if !annotations.is_object() {
                    *annotations = json!({});
                }
                annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
                annotations["pv.kubernetes.io/bound-by-controller"] = json!("yes");
                let storage = cur
                    .pointer("/spec/resources/requests/storage")
                    .cloned()
                    .unwrap_or(json!("1Gi"));
                new["status"] = json!({
                    "phase": "Bound",
                    "accessModes": cur.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "capacity": {"storage": storage},
                });
                Ok(new)
            },
        );
        None
    }
}
