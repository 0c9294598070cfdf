//! The PodDisruptionBudget status controller: currentHealthy, desiredHealthy,
//! disruptionsAllowed, expectedPods and the DisruptionAllowed condition, from the live pods
//! and their controllers' scales.

use super::eviction::budget;
use super::{Reconciler, WorkKey, set_condition, update_status};
use crate::resources::{ResKey, keys};
use crate::store::{Store, StoreEvent};
use crate::util;
use serde_json::json;
use std::time::Duration;

/// The PDB status controller.
#[derive(Default)]
pub struct PdbController;

impl Reconciler for PdbController {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::PDBS.clone(), keys::PODS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>) {
        let ns = ev.namespace().to_string();
        if ev.res == *keys::PDBS {
            out.push((ns, ev.name().to_string()));
        } else {
            for p in store.list(&keys::PDBS, Some(&ns)).0 {
                out.push((ns.clone(), util::name(&p).to_string()));
            }
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let pdb = store.get(&keys::PDBS, &key.0, &key.1)?;
        let (pods, _) = store.list(&keys::PODS, Some(&key.0));
        let b = budget(store, &pdb, &pods);
        let mut status = pdb.get("status").cloned().unwrap_or(json!({}));
        status["currentHealthy"] = json!(b.healthy);
        status["desiredHealthy"] = json!(b.desired);
        status["disruptionsAllowed"] = json!(b.allowed);
        status["expectedPods"] = json!(b.expected);
        status["observedGeneration"] =
            json!(util::i64_at(&pdb, "/metadata/generation").unwrap_or(1));
        if let Some(error) = &b.sync_error {
            set_condition(
                &mut status,
                "DisruptionAllowed",
                "False",
                "SyncFailed",
                error,
                None,
            );
        } else if b.allowed > 0 {
            set_condition(
                &mut status,
                "DisruptionAllowed",
                "True",
                "SufficientPods",
                "",
                None,
            );
        } else {
            set_condition(
                &mut status,
                "DisruptionAllowed",
                "False",
                "InsufficientPods",
                "",
                None,
            );
        }
        update_status(
            store,
            &keys::PDBS,
            key,
            &pdb,
            status,
            "disruption-controller",
        );
        None
    }
}
