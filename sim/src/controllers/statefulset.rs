//! The StatefulSet controller, after kube-controller-manager's: pods `<set>-<ordinal>` with a
//! stable identity (hostname, subdomain, `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index`) made from the current or update ControllerRevision
//! (`controller-revision-hash`), their claims created first; OrderedReady (one ordinal at a
//! time, each Running and available before the next, scale-down from the highest, nothing
//! while a pod is unhealthy) and Parallel management; RollingUpdate with a partition (highest
//! ordinal first, one pod at a time, each available before the next) and OnDelete; a pod
//! deleted by anyone recreated under the same name; the retention policy of claims; orphan
//! pods adopted by selector; and the status, with the update completed when every replica
//! runs the update revision (under OnDelete as well). `maxUnavailable` (alpha) is not
//! implemented: one at a time.
//! Revisions live in `revisions`, claims in `claims`, what a pod of a set is in `stateful_pod`.

use super::claims;
use super::revisions;
use super::stateful_pod::{
    self, ordinal, phase, pod_revision, running_and_available, running_and_ready, unavailable,
};
use super::{Reconciler, WorkKey, owner_name, record_event};
use crate::resources::{ResKey, keys};
use crate::selectors::LabelSelector;
use crate::store::{DeleteOpts, EventType, Part, Store, StoreEvent, WriteCtx};
use crate::util;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "statefulset-controller";
/// The StatefulSet controller.
#[derive(Default)]
pub struct StatefulSetController;

/// What the set asks for.
struct Spec {
    replicas: i64,
    start: i64,
    min_ready: Duration,
    monotonic: bool,
    rolling: bool,
    partition: i64,
}

impl Spec {
    fn of(set: &Value) -> Spec {
        Spec {
            replicas: util::i64_at(set, "/spec/replicas").unwrap_or(1).max(0),
            start: util::i64_at(set, "/spec/ordinals/start")
                .unwrap_or(0)
                .max(0),
            min_ready: Duration::from_secs(
                util::i64_at(set, "/spec/minReadySeconds")
                    .unwrap_or(0)
                    .max(0) as u64,
            ),
            monotonic: util::str_at(set, "/spec/podManagementPolicy") != Some("Parallel"),
            rolling: util::str_at(set, "/spec/updateStrategy/type")
                .is_none_or(|t| t == "RollingUpdate"),
            partition: util::i64_at(set, "/spec/updateStrategy/rollingUpdate/partition")
                .unwrap_or(0)
                .max(0),
        }
    }

    fn in_range(&self, ordinal: i64) -> bool {
        ordinal >= self.start && ordinal < self.start + self.replicas
    }
}

/// One pass of the controller over one set.
struct Pass<'a> {
    store: &'a Store,
    set: &'a Value,
    spec: Spec,
    current: Arc<Value>,
    update: Arc<Value>,
    requeue: Option<Duration>,
}

impl Pass<'_> {
    fn wait(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    /// Running and available; otherwise a requeue for when it will be.
    fn available(&mut self, pod: &Value) -> bool {
        match running_and_available(pod, self.spec.min_ready) {
            Ok(()) => true,
            Err(Some(w)) => {
                self.wait(w);
                false
            }
            Err(None) => false,
        }
    }

    fn set_name(&self) -> &str {
        util::name(self.set)
    }

    /// The pod of an ordinal as `newVersionedStatefulSetPod` makes it: from the current
    /// revision below the partition of a RollingUpdate, else from the update revision.
    fn new_pod(&self, ordinal: i64) -> Value {
        let below = self.spec.rolling && ordinal < self.spec.start + self.spec.partition;
        let revision = if below { &self.current } else { &self.update };
        stateful_pod::new(self.set, revision, ordinal)
    }

    fn create_pod(&mut self, ordinal: i64) -> Option<Arc<Value>> {
        if !claims::create_missing(self.store, self.set, ordinal) {
            self.wait(Duration::from_millis(50));
            return None;
        }
        let pod = self.new_pod(ordinal);
        let name = util::name(&pod).to_string();
        match self
            .store
            .create(&keys::PODS, pod, &WriteCtx::controller(MANAGER, "create"))
        {
            Ok(p) => {
                self.event(
                    "Normal",
                    "SuccessfulCreate",
                    format!(
                        "create Pod {name} in StatefulSet {} successful",
                        self.set_name()
                    ),
                );
                Some(p)
            }
            Err(e) => {
                if e.reason != "AlreadyExists" {
                    self.event(
                        "Warning",
                        "FailedCreate",
                        format!(
                            "create Pod {name} in StatefulSet {} failed error: {e}",
                            self.set_name()
                        ),
                    );
                }
                self.wait(Duration::from_millis(50));
                None
            }
        }
    }

    fn delete_pod(&mut self, pod: &Value) {
        let result = self.store.delete(
            &keys::PODS,
            util::namespace(pod),
            util::name(pod),
            &DeleteOpts {
                uid: Some(util::uid(pod).to_string()),
                ..DeleteOpts::default()
            },
            &WriteCtx::controller(MANAGER, "delete"),
        );
        if result.is_ok() {
            self.event(
                "Normal",
                "SuccessfulDelete",
                format!(
                    "delete Pod {} in StatefulSet {} successful",
                    util::name(pod),
                    self.set_name()
                ),
            );
        }
    }

    fn event(&self, type_: &str, reason: &str, message: String) {
        record_event(
            self.store,
            &claims::involved(self.set),
            type_,
            reason,
            &message,
            MANAGER,
        );
    }

    /// Keeps a live replica's identity, volumes and claim owners (`UpdateStatefulPod`).
    fn enforce_invariants(&mut self, pod: &Arc<Value>, ordinal: i64) {
        claims::enforce_retention(self.store, self.set, pod, ordinal, false);
        if stateful_pod::identity_matches(self.set, pod, ordinal)
            && claims::volumes_match(self.set, pod, ordinal)
        {
            return;
        }
        let _ = self.store.modify(
            &keys::PODS,
            util::namespace(pod),
            util::name(pod),
            Part::Main,
            &WriteCtx::controller(MANAGER, "update"),
            |cur| {
                if util::uid(cur) != util::uid(pod) {
                    return Err(crate::error::ApiError::conflict("pods", util::name(pod)));
                }
                let mut new = cur.clone();
                stateful_pod::set_identity(self.set, &mut new, ordinal);
                claims::set_volumes(self.set, &mut new, ordinal);
                Ok(new)
            },
        );
    }

    /// `processReplica`: true when the pass must stop here (monotonic mode).
    fn process_replica(&mut self, slot: &mut Option<Arc<Value>>, ordinal: i64) -> bool {
        let monotonic = self.spec.monotonic;
        let Some(pod) = slot.clone() else {
            *slot = self.create_pod(ordinal);
            return monotonic || slot.is_none();
        };
        if matches!(phase(&pod), "Failed" | "Succeeded") {
            if !util::is_terminating(&pod) {
                self.delete_pod(&pod);
            }
            return true;
        }
        if phase(&pod) == "Pending" {
            claims::create_missing(self.store, self.set, ordinal);
        }
        if monotonic
            && (util::is_terminating(&pod) || !running_and_ready(&pod) || !self.available(&pod))
        {
            return true;
        }
        self.enforce_invariants(&pod, ordinal);
        false
    }

    /// `processCondemned`: true when the pass must stop here (monotonic mode).
    fn process_condemned(&mut self, pod: &Arc<Value>, first_unavailable: Option<&str>) -> bool {
        let monotonic = self.spec.monotonic;
        if util::is_terminating(pod) {
            return monotonic;
        }
        let first = first_unavailable == Some(util::uid(pod));
        if monotonic && !first && (!running_and_ready(pod) || !self.available(pod)) {
            return true;
        }
        self.delete_pod(pod);
        monotonic
    }

    /// The rolling update: the highest replica not at the update revision goes, once every
    /// replica above it is available.
    fn roll(&mut self, replicas: &[Option<Arc<Value>>]) {
        let update = util::name(&self.update).to_string();
        let min = self.spec.partition.max(0) as usize;
        for target in (min..replicas.len()).rev() {
            let Some(pod) = &replicas[target] else {
                return;
            };
            if pod_revision(pod) != update && !util::is_terminating(pod) {
                let pod = pod.clone();
                self.delete_pod(&pod);
                return;
            }
            if unavailable(pod, self.spec.min_ready) {
                self.available(pod);
                return;
            }
        }
    }

    /// `updateStatefulSet` without the status.
    fn run(&mut self, pods: &[Arc<Value>]) {
        let n = self.spec.replicas as usize;
        let mut replicas: Vec<Option<Arc<Value>>> = vec![None; n];
        let mut condemned: Vec<(i64, Arc<Value>)> = Vec::new();
        for p in pods {
            let Some(ord) = ordinal(self.set_name(), p) else {
                continue;
            };
            if self.spec.in_range(ord) {
                replicas[(ord - self.spec.start) as usize] = Some(p.clone());
            } else {
                condemned.push((ord, p.clone()));
            }
        }
        condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
        let min_ready = self.spec.min_ready;
        let first_unavailable: Option<String> = replicas
            .iter()
            .find(|p| p.as_ref().is_none_or(|p| unavailable(p, min_ready)))
            .map(|p| {
                p.as_ref()
                    .map(|p| util::uid(p).to_string())
                    .unwrap_or_default()
            })
            .or_else(|| {
                condemned
                    .iter()
                    .rev()
                    .find(|(_, p)| unavailable(p, min_ready))
                    .map(|(_, p)| util::uid(p).to_string())
            });
        if util::is_terminating(self.set) {
            return;
        }
        let mut stop = false;
        for (i, slot) in replicas.iter_mut().enumerate() {
            if self.process_replica(slot, self.spec.start + i as i64) && self.spec.monotonic {
                stop = true;
                break;
            }
        }
        if stop {
            return;
        }
        for (ord, p) in &condemned {
            claims::enforce_retention(self.store, self.set, p, *ord, true);
        }
        for (_, p) in &condemned {
            if self.process_condemned(p, first_unavailable.as_deref()) {
                return;
            }
        }
        if self.spec.rolling {
            self.roll(&replicas);
        }
    }
}

/// The status from the pods as they are (`computeReplicaStatus` and `completeUpdate`).
fn status(set: &Value, pass: &mut Pass<'_>, pods: &[Arc<Value>], collision_count: i64) -> Value {
    let current = util::name(&pass.current).to_string();
    let update = util::name(&pass.update).to_string();
    let (mut replicas, mut ready, mut available, mut current_n, mut updated) = (0, 0, 0, 0, 0);
    for p in pods {
        if !phase(p).is_empty() {
            replicas += 1;
        }
        if running_and_ready(p) {
            ready += 1;
            if pass.available(p) {
                available += 1;
            }
        }
        if !phase(p).is_empty() && !util::is_terminating(p) {
            if pod_revision(p) == current {
                current_n += 1;
            }
            if pod_revision(p) == update {
                updated += 1;
            }
        }
    }
    let mut current_revision = current;
    let spec = &pass.spec;
    // `completeUpdate`: whatever the update strategy (OnDelete too, since Kubernetes 1.3x),
    // the update revision becomes the current one once every replica runs it and is Ready.
    if updated == spec.replicas && ready == spec.replicas && replicas == spec.replicas {
        current_n = updated;
        current_revision = update.clone();
    }
    let mut s = json!({
        "observedGeneration": util::i64_at(set, "/metadata/generation").unwrap_or(1),
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": current_n,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "currentRevision": current_revision,
        "updateRevision": update,
        "collisionCount": collision_count,
    });
    let m = s.as_object_mut().expect("an object");
    for k in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
        if m[k] == 0 {
            m.remove(k);
        }
    }
    s
}

/// Adopts the orphan pods and revisions of the set's namespace that its selector matches (pods
/// only when their name is one of the set's), as the ControllerRefManager does; returns the
/// pods the set then controls.
fn claim_pods(store: &Store, set: &Value) -> Vec<Arc<Value>> {
    let selector = LabelSelector::from_object(set.pointer("/spec/selector"));
    let uid = util::uid(set).to_string();
    let name = util::name(set).to_string();
    for res in [&*keys::PODS, &*keys::CONTROLLERREVISIONS] {
        let (objs, _) = store.list(res, Some(util::namespace(set)));
        for o in objs.iter().filter(|o| {
            util::controller_uid(o).is_none()
                && !util::is_terminating(o)
                && selector.matches_object(o)
                && (*res != *keys::PODS || ordinal(&name, o).is_some())
        }) {
            let _ = store.modify(
                res,
                util::namespace(o),
                util::name(o),
                Part::Main,
                &WriteCtx::controller(MANAGER, "update"),
                |cur| {
                    let mut new = cur.clone();
                    if util::controller_uid(cur).is_some() {
                        return Ok(new);
                    }
                    let refs = util::meta_mut(&mut new)
                        .entry("ownerReferences")
                        .or_insert(json!([]));
                    if !refs.is_array() {
                        *refs = json!([]);
                    }
                    let refs = refs.as_array_mut().expect("made an array");
                    refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    refs.push(util::controller_ref(set));
                    Ok(new)
                },
            );
        }
    }
    store
        .owned(&uid, &keys::PODS)
        .into_iter()
        .filter(|p| ordinal(&name, p).is_some())
        .collect()
}

fn matching_sets(store: &Store, obj: &Value) -> Vec<String> {
    let (sets, _) = store.list(&keys::STATEFULSETS, Some(util::namespace(obj)));
    sets.iter()
        .filter(|s| LabelSelector::from_object(s.pointer("/spec/selector")).matches_object(obj))
        .map(|s| util::name(s).to_string())
        .collect()
}

impl Reconciler for StatefulSetController {
    fn watches(&self) -> Vec<ResKey> {
        vec![
            keys::STATEFULSETS.clone(),
            keys::PODS.clone(),
            keys::CONTROLLERREVISIONS.clone(),
            keys::PVCS.clone(),
        ]
    }

    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>) {
        let ns = ev.namespace().to_string();
        if ev.res == *keys::STATEFULSETS {
            out.push((ns, ev.name().to_string()));
            return;
        }
        if ev.res == *keys::PVCS {
            // A claim going or changing owners wakes the sets that made it.
            for s in matching_sets(store, &ev.object) {
                out.push((ns.clone(), s));
            }
            return;
        }
        for obj in std::iter::once(&ev.object).chain(ev.old.iter()) {
            if let Some(s) = owner_name(obj, "StatefulSet") {
                out.push((ns.clone(), s.to_string()));
            }
        }
        if util::controller_uid(&ev.object).is_none() && ev.kind != EventType::Deleted {
            for s in matching_sets(store, &ev.object) {
                out.push((ns.clone(), s));
            }
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let set = store.get(&keys::STATEFULSETS, &key.0, &key.1)?;
        let pods = if util::is_terminating(&set) {
            store.owned(util::uid(&set), &keys::PODS)
        } else {
            claim_pods(store, &set)
        };
        let history = revisions::list(store, &set);
        let revs = match revisions::sync(store, &set, &history) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "statefulset: revisions");
                return Some(Duration::from_millis(50));
            }
        };
        let mut pass = Pass {
            store,
            set: &set,
            spec: Spec::of(&set),
            current: revs.current.clone(),
            update: revs.update.clone(),
            requeue: None,
        };
        pass.run(&pods);
        let pods: Vec<Arc<Value>> = store
            .owned(util::uid(&set), &keys::PODS)
            .into_iter()
            .filter(|p| ordinal(util::name(&set), p).is_some())
            .collect();
        let status = status(&set, &mut pass, &pods, revs.collision_count);
        let requeue = pass.requeue;
        let mut live: HashSet<String> = pods.iter().map(|p| pod_revision(p).to_string()).collect();
        live.insert(util::name(&revs.current).to_string());
        live.insert(util::name(&revs.update).to_string());
        if let Some(c) = status["currentRevision"].as_str() {
            live.insert(c.to_string());
        }
        revisions::truncate(store, &set, &revisions::list(store, &set), &live);
        super::update_status(store, &keys::STATEFULSETS, key, &set, status, MANAGER);
        requeue
    }
}
