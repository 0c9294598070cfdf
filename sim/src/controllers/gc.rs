//! The garbage collector: when an owner disappears, its dependents whose owners are all gone
//! are deleted (background propagation); dependents with other live owners just lose the
//! reference; a reference that names an owner already gone when it is added counts the same
//! (a claim handed to a pod that has just been deleted still goes). Foreground deletion: an
//! owner with the `foregroundDeletion` finalizer has its dependents deleted first and loses the
//! finalizer once none remain. Orphaning is done by the store at delete time.

use super::{Reconciler, WorkKey};
use crate::resources::ResKey;
use crate::store::{DeleteOpts, EventType, Part, Store, StoreEvent, WriteCtx, finalizers};
use crate::util;
use serde_json::{Value, json};
use std::time::Duration;

const MANAGER: &str = "garbage-collector";

/// The garbage collector.
#[derive(Default)]
pub struct GarbageCollector;

impl Reconciler for GarbageCollector {
    fn watches(&self) -> Vec<ResKey> {
        Vec::new()
    }

    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>) {
        match ev.kind {
            EventType::Deleted => {
                out.push((String::new(), util::uid(&ev.object).to_string()));
                for r in util::owner_refs(&ev.object) {
                    if let Some(u) = r["uid"].as_str() {
                        out.push((String::new(), u.to_string()));
                    }
                }
            }
            _ => {
                // An owner reference added to a dependent whose owner is already gone (a
                // claim handed to a pod that has just left, say) is dangling: the dependent is
                // collected as if it had seen the owner go.
                let before: Vec<&str> = ev
                    .old
                    .iter()
                    .flat_map(|o| util::owner_refs(o))
                    .filter_map(|r| r["uid"].as_str())
                    .collect();
                for r in util::owner_refs(&ev.object) {
                    if let Some(u) = r["uid"].as_str()
                        && !before.contains(&u)
                        && store.get_by_uid(u).is_none()
                    {
                        out.push((String::new(), u.to_string()));
                    }
                }
                if util::is_terminating(&ev.object)
                    && finalizers(&ev.object)
                        .iter()
                        .any(|f| f == "foregroundDeletion")
                {
                    out.push((String::new(), util::uid(&ev.object).to_string()));
                }
            }
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let uid = &key.1;
        let ctx = WriteCtx::controller(MANAGER, "delete");
        match store.get_by_uid(uid) {
            None => {
                for (res, dep) in store.dependents(uid) {
                    let others_alive = util::owner_refs(&dep)
                        .iter()
                        .filter_map(|r| r["uid"].as_str())
                        .any(|u| u != uid && store.get_by_uid(u).is_some());
                    if others_alive {
                        let _ = store.modify(
                            &res,
                            util::namespace(&dep),
                            util::name(&dep),
                            Part::All,
                            &WriteCtx::controller(MANAGER, "update"),
                            |cur| {
                                let mut new = cur.clone();
                                let refs: Vec<Value> = util::owner_refs(cur)
                                    .iter()
                                    .filter(|r| r["uid"].as_str() != Some(uid))
                                    .cloned()
                                    .collect();
                                util::meta_mut(&mut new)
                                    .insert("ownerReferences".into(), json!(refs));
                                Ok(new)
                            },
                        );
                    } else if !util::is_terminating(&dep) {
                        let _ = store.delete(
                            &res,
                            util::namespace(&dep),
                            util::name(&dep),
                            &DeleteOpts::default(),
                            &ctx,
                        );
                    }
                }
                None
            }
            Some((res, owner)) => {
                if !util::is_terminating(&owner)
                    || !finalizers(&owner).iter().any(|f| f == "foregroundDeletion")
                {
                    return None;
                }
                let deps = store.dependents(uid);
                if deps.is_empty() {
                    let _ = store.modify(
                        &res,
                        util::namespace(&owner),
                        util::name(&owner),
                        Part::All,
                        &WriteCtx::controller(MANAGER, "update"),
                        |cur| {
                            let mut new = cur.clone();
                            let rest: Vec<String> = finalizers(cur)
                                .into_iter()
                                .filter(|f| f != "foregroundDeletion")
                                .collect();
                            util::meta_mut(&mut new).insert("finalizers".into(), json!(rest));
                            Ok(new)
                        },
                    );
                    return None;
                }
                for (dres, dep) in deps {
                    if !util::is_terminating(&dep) {
                        let opts = DeleteOpts {
                            propagation: crate::store::Propagation::Foreground,
                            ..DeleteOpts::default()
                        };
                        let _ = store.delete(
                            &dres,
                            util::namespace(&dep),
                            util::name(&dep),
                            &opts,
                            &ctx,
                        );
                    }
                }
                Some(Duration::from_millis(20))
            }
        }
    }
}
