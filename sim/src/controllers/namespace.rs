//! The namespace controller: a deleted namespace stays Terminating while everything in it is
//! deleted, then goes away.

use super::{Reconciler, WorkKey};
use crate::resources::{ResKey, keys};
use crate::store::{DeleteOpts, Store, StoreEvent, WriteCtx};
use crate::util;
use std::time::Duration;

const MANAGER: &str = "namespace-controller";

/// The namespace controller.
#[derive(Default)]
pub struct NamespaceController;

impl Reconciler for NamespaceController {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::NAMESPACES.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, _store: &Store, out: &mut Vec<WorkKey>) {
        if util::is_terminating(&ev.object) && ev.kind != crate::store::EventType::Deleted {
            out.push((String::new(), ev.name().to_string()));
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let ns = store.get(&keys::NAMESPACES, "", &key.1)?;
        if !util::is_terminating(&ns) {
            return None;
        }
        let types: Vec<ResKey> = store
            .registry()
            .all()
            .iter()
            .filter(|t| t.namespaced)
            .map(|t| t.key())
            .collect();
        let ctx = WriteCtx::controller(MANAGER, "delete");
        let mut left = 0;
        for t in types {
            for o in store.list(&t, Some(&key.1)).0 {
                left += 1;
                if !util::is_terminating(&o) {
                    let _ = store.delete(&t, &key.1, util::name(&o), &DeleteOpts::default(), &ctx);
                }
            }
        }
        if left == 0 {
            let opts = DeleteOpts {
                grace_period: Some(0),
                ..DeleteOpts::default()
            };
            let _ = store.delete(&keys::NAMESPACES, "", &key.1, &opts, &ctx);
            return None;
        }
        Some(Duration::from_millis(10))
    }
}
