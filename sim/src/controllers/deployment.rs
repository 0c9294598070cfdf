//! The Deployment controller: ReplicaSets claimed by label selector (orphans adopted, owned
//! ones that stop matching released), the new ReplicaSet found by pod template (ignoring
//! pod-template-hash) and otherwise created as `<name>-<pod-template-hash>` (with
//! `status.collisionCount` on a name clash), rolling updates bounded by
//! maxSurge/maxUnavailable (counted from the pods themselves), Recreate, the scaling of a
//! paused Deployment, revisions, history cleanup, and the status with its Progressing and
//! Available conditions (including progressDeadlineSeconds).

use super::{
    Reconciler, WorkKey, condition, owner_name, pod_available, pod_ready, set_condition,
    update_status,
};
use crate::resources::{ResKey, keys};
use crate::selectors::LabelSelector;
use crate::store::{DeleteOpts, EventType, Part, Store, StoreEvent, WriteCtx};
use crate::util::{self, now_ts};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MANAGER: &str = "deployment-controller";
/// Annotation with a ReplicaSet's (and its Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Label that distinguishes the ReplicaSets (and pods) of a Deployment's templates.
pub const HASH_LABEL: &str = "pod-template-hash";

/// The Deployment controller.
#[derive(Default)]
pub struct DeploymentController;

/// The pod-template-hash of a template (FNV-1a of its JSON, as a 10-character safe string).
pub fn template_hash(template: &Value) -> String {
    template_hash_with(template, None)
}

/// The pod-template-hash of a template given the Deployment's `status.collisionCount` (which,
/// when set, is hashed after the template, so that a name clash gives a new name).
pub fn template_hash_with(template: &Value, collision_count: Option<i64>) -> String {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH_LABEL);
    }
    let mut bytes = serde_json::to_vec(&t).expect("serializes");
    if let Some(n) = collision_count {
        bytes.extend_from_slice(n.to_string().as_bytes());
    }
    util::safe_encode(util::fnv1a(&bytes), 10)
}

/// A pod template without the pod-template-hash label (and without a label map or metadata
/// left empty by that), the form in which Kubernetes' `EqualIgnoreHash` compares templates.
fn template_ignoring_hash(template: Option<&Value>) -> Value {
    let mut t = template.cloned().unwrap_or(Value::Null);
    if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(l) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            l.remove(HASH_LABEL);
        }
        if meta
            .get("labels")
            .is_some_and(|l| l.is_null() || l.as_object().is_some_and(|m| m.is_empty()))
        {
            meta.remove("labels");
        }
        if meta.is_empty() {
            t.as_object_mut().expect("has metadata").remove("metadata");
        }
    }
    t
}

/// Whether two pod templates are equal when the pod-template-hash label is ignored on both.
pub fn equal_ignore_hash(a: Option<&Value>, b: Option<&Value>) -> bool {
    template_ignoring_hash(a) == template_ignoring_hash(b)
}

/// Orders objects by creationTimestamp, then by name (Kubernetes'
/// `ReplicaSetsByCreationTimestamp`).
fn by_creation(a: &Value, b: &Value) -> Ordering {
    util::str_at(a, "/metadata/creationTimestamp")
        .cmp(&util::str_at(b, "/metadata/creationTimestamp"))
        .then_with(|| util::name(a).cmp(util::name(b)))
}

/// The new ReplicaSet of a Deployment among the ReplicaSets it owns, as Kubernetes'
/// `FindNewReplicaSet` finds it: the oldest whose pod template equals the Deployment's when
/// the pod-template-hash label is ignored (whoever created it and whatever its hash).
pub fn find_new_replica_set<'a>(
    deployment: &Value,
    owned: &'a [Arc<Value>],
) -> Option<&'a Arc<Value>> {
    let want = template_ignoring_hash(deployment.pointer("/spec/template"));
    owned
        .iter()
        .filter(|rs| template_ignoring_hash(rs.pointer("/spec/template")) == want)
        .min_by(|a, b| by_creation(a, b))
}

/// Whether a Deployment's selector can claim ReplicaSets: a missing or empty selector (which
/// would select everything) claims none, as in Kubernetes.
fn claiming_selector(d: &Value) -> Option<LabelSelector> {
    let selector = d.pointer("/spec/selector")?;
    let empty = selector.as_object().is_none_or(|m| {
        m.get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(|l| l.is_empty())
            && m.get("matchExpressions")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty())
    });
    (!empty).then(|| LabelSelector::from_object(Some(selector)))
}

/// Claims the ReplicaSets of a Deployment's namespace by its selector, as the
/// ControllerRefManager of kube-controller-manager does: an orphan (no controller reference)
/// that is not being deleted and whose labels match is adopted (a controller reference to the
/// Deployment is added); an owned one whose labels no longer match is released (its reference
/// to the Deployment is removed). ReplicaSets controlled by anything else are left alone.
fn claim_replica_sets(store: &Store, d: &Value) {
    let Some(selector) = claiming_selector(d) else {
        return;
    };
    let uid = util::uid(d).to_string();
    let (rses, _) = store.list(&keys::REPLICASETS, Some(util::namespace(d)));
    for rs in rses {
        let owned = match util::controller_uid(&rs) {
            Some(owner) if owner == uid => true,
            Some(_) => continue,
            None => false,
        };
        let matches = selector.matches_object(&rs);
        if owned == matches || (!owned && util::is_terminating(&rs)) {
            continue;
        }
        let result = store.modify(
            &keys::REPLICASETS,
            util::namespace(&rs),
            util::name(&rs),
            Part::Main,
            &WriteCtx::controller(MANAGER, "update"),
            |cur| {
                let mut new = cur.clone();
                let controller = util::controller_uid(cur);
                let matches = selector.matches_object(cur);
                if owned && controller == Some(uid.as_str()) && !matches {
                    let refs = util::meta_mut(&mut new)
                        .get_mut("ownerReferences")
                        .and_then(Value::as_array_mut);
                    if let Some(refs) = refs {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    }
                } else if !owned && controller.is_none() && matches && !util::is_terminating(cur) {
                    let refs = util::meta_mut(&mut new)
                        .entry("ownerReferences")
                        .or_insert(json!([]));
                    if !refs.is_array() {
                        *refs = json!([]);
                    }
                    let refs = refs.as_array_mut().expect("made an array");
                    refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    refs.push(util::controller_ref(d));
                }
                Ok(new)
            },
        );
        if let Err(e) = result {
            tracing::debug!(error = %e, "deployment: claiming a replicaset failed");
        }
    }
}

fn revision(rs: &Value) -> i64 {
    util::annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

struct RsInfo {
    rs: Arc<Value>,
    spec: i64,
    active: i64,
    ready: i64,
    available: i64,
    pods_total: i64,
}

fn info(
    store: &Store,
    rs: Arc<Value>,
    min_ready: Duration,
    requeue: &mut Option<Duration>,
) -> RsInfo {
    let pods = store.owned(util::uid(&rs), &keys::PODS);
    let live: Vec<_> = pods
        .iter()
        .filter(|p| {
            !util::is_terminating(p)
                && !matches!(
                    util::str_at(p, "/status/phase"),
                    Some("Succeeded" | "Failed")
                )
        })
        .collect();
    let mut available = 0;
    for p in &live {
        match pod_available(p, min_ready) {
            Ok(()) => available += 1,
            Err(Some(w)) => *requeue = Some(requeue.map_or(w, |r| r.min(w))),
            Err(None) => {}
        }
    }
    RsInfo {
        spec: util::i64_at(&rs, "/spec/replicas").unwrap_or(0),
        active: live.len() as i64,
        ready: live.iter().filter(|p| pod_ready(p)).count() as i64,
        available,
        pods_total: pods.len() as i64,
        rs,
    }
}

fn scale(store: &Store, rs: &Value, replicas: i64, annotations: &[(&str, String)]) {
    let mut from = None;
    let written = store.modify(
        &keys::REPLICASETS,
        util::namespace(rs),
        util::name(rs),
        Part::Main,
        &WriteCtx::controller(MANAGER, "update"),
        |cur| {
            from = util::i64_at(cur, "/spec/replicas");
            let mut new = cur.clone();
            new["spec"]["replicas"] = json!(replicas);
            for (k, v) in annotations {
                let a = util::meta_mut(&mut new)
                    .entry("annotations")
                    .or_insert(json!({}));
                if !a.is_object() {
                    *a = json!({});
                }
                a[*k] = json!(v);
            }
            Ok(new)
        },
    );
    if let (Ok(_), Some(from)) = (written, from)
        && from != replicas
        && let Some(owner) = util::owner_refs(rs)
            .iter()
            .find(|r| r["kind"] == "Deployment")
    {
        let mut involved = owner.clone();
        involved["namespace"] = json!(util::namespace(rs));
        let direction = if replicas > from { "up" } else { "down" };
        let message = format!(
            "Scaled {direction} replica set {} from {from} to {replicas}",
            util::name(rs)
        );
        super::record_event(
            store,
            &involved,
            "Normal",
            "ScalingReplicaSet",
            &message,
            MANAGER,
        );
    }
}

/// Scales the ReplicaSets of a paused Deployment as the `scale()` of Kubernetes' `sync()` does
/// (it never creates a ReplicaSet): with no active ReplicaSet the new one (else the newest old
/// one) takes `replicas`, and so does a single active one; with several, a saturated new
/// ReplicaSet has the others scaled to 0, and otherwise (RollingUpdate only) the difference to
/// `replicas + maxSurge` goes to the largest. Kubernetes first spreads that difference over all
/// active ReplicaSets in proportion to their size and gives only the leftover to the largest;
/// the proportional part is omitted here, the whole difference is the leftover.
fn scale_paused(
    store: &Store,
    replicas: i64,
    surge: i64,
    recreate: bool,
    new: Option<&RsInfo>,
    old: &[RsInfo],
) {
    let all: Vec<&RsInfo> = new.into_iter().chain(old.iter()).collect();
    if all.is_empty() {
        return;
    }
    let mut active: Vec<&RsInfo> = all.into_iter().filter(|i| i.spec > 0).collect();
    // FindActiveOrLatest.
    let single = match active.len() {
        0 => new.or_else(|| old.iter().max_by(|a, b| by_creation(&a.rs, &b.rs))),
        1 => Some(active[0]),
        _ => None,
    };
    if let Some(rs) = single {
        if rs.spec != replicas {
            scale(store, &rs.rs, replicas, &[]);
        }
        return;
    }
    // IsSaturated.
    if let Some(n) = new
        && n.spec == replicas
        && n.available == replicas
    {
        for o in old.iter().filter(|o| o.spec > 0) {
            scale(store, &o.rs, 0, &[]);
        }
        return;
    }
    if recreate {
        return;
    }
    let allowed = if replicas > 0 { replicas + surge } else { 0 };
    let to_add = allowed - active.iter().map(|i| i.spec).sum::<i64>();
    if to_add == 0 {
        return;
    }
    // Largest first; among equals the newer first when scaling up, the older when down.
    active.sort_by(|a, b| {
        b.spec.cmp(&a.spec).then_with(|| {
            if to_add > 0 {
                by_creation(&b.rs, &a.rs)
            } else {
                by_creation(&a.rs, &b.rs)
            }
        })
    });
    let largest = active[0];
    scale(store, &largest.rs, (largest.spec + to_add).max(0), &[]);
}

/// The Deployments of a namespace whose (non-empty) selector matches an object's labels.
fn matching_deployments(store: &Store, obj: &Value) -> Vec<String> {
    let (deps, _) = store.list(&keys::DEPLOYMENTS, Some(util::namespace(obj)));
    deps.iter()
        .filter(|d| claiming_selector(d).is_some_and(|s| s.matches_object(obj)))
        .map(|d| util::name(d).to_string())
        .collect()
}

impl Reconciler for DeploymentController {
    fn watches(&self) -> Vec<ResKey> {
        vec![
            keys::DEPLOYMENTS.clone(),
            keys::REPLICASETS.clone(),
            keys::PODS.clone(),
        ]
    }

    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>) {
        let ns = ev.namespace().to_string();
        if ev.res == *keys::DEPLOYMENTS {
            out.push((ns, ev.name().to_string()));
        } else if ev.res == *keys::REPLICASETS {
            // The owner now and before (a released ReplicaSet wakes the one that let it go).
            for obj in std::iter::once(&ev.object).chain(ev.old.iter()) {
                if let Some(d) = owner_name(obj, "Deployment") {
                    out.push((ns.clone(), d.to_string()));
                }
            }
            // An orphan wakes the Deployments that may adopt it.
            if util::controller_uid(&ev.object).is_none() && ev.kind != EventType::Deleted {
                for d in matching_deployments(store, &ev.object) {
                    out.push((ns.clone(), d));
                }
            }
        } else if let Some(rs) = owner_name(&ev.object, "ReplicaSet")
            && let Some(rs) = store.get(&keys::REPLICASETS, &ns, rs)
            && let Some(d) = owner_name(&rs, "Deployment")
        {
            out.push((ns, d.to_string()));
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let d = store.get(&keys::DEPLOYMENTS, &key.0, &key.1)?;
        if util::is_terminating(&d) {
            return None;
        }
        let mut requeue: Option<Duration> = None;
        let replicas = util::i64_at(&d, "/spec/replicas").unwrap_or(1).max(0);
        let min_ready = Duration::from_secs(
            util::i64_at(&d, "/spec/minReadySeconds")
                .unwrap_or(0)
                .max(0) as u64,
        );
        let paused = d
            .pointer("/spec/paused")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let recreate = util::str_at(&d, "/spec/strategy/type") == Some("Recreate");
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let collision_count = util::i64_at(&d, "/status/collisionCount");
        let hash = template_hash_with(&template, collision_count);
        claim_replica_sets(store, &d);
        let rses = store.owned(util::uid(&d), &keys::REPLICASETS);
        let max_rev = rses.iter().map(|r| revision(r)).max().unwrap_or(0);
        let mut new_rs = find_new_replica_set(&d, &rses).cloned();
        let new_uid = new_rs.as_ref().map(|n| util::uid(n).to_string());
        let mut old: Vec<RsInfo> = rses
            .iter()
            .filter(|r| Some(util::uid(r)) != new_uid.as_deref())
            .map(|r| info(store, r.clone(), min_ready, &mut requeue))
            .collect();
        old.sort_by_key(|i| {
            (
                revision(&i.rs),
                util::str_at(&i.rs, "/metadata/creationTimestamp").map(str::to_string),
            )
        });
        let old_spec: i64 = old.iter().map(|i| i.spec).sum();
        let surge = util::int_or_percent(
            d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
            replicas,
            true,
            1,
        );
        let mut unavailable = util::int_or_percent(
            d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
            replicas,
            false,
            0,
        );
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        let min_available = if recreate {
            replicas
        } else {
            (replicas - unavailable).max(0)
        };
        let mut progressed = false;

        if paused {
            // Scale only: no new template is rolled out.
            let new = new_rs
                .clone()
                .map(|n| info(store, n, min_ready, &mut requeue));
            scale_paused(store, replicas, surge, recreate, new.as_ref(), &old);
        } else {
            if new_rs.is_none() {
                let initial = if recreate {
                    if old.iter().any(|i| i.pods_total > 0 || i.spec > 0) {
                        0
                    } else {
                        replicas
                    }
                } else if old_spec == 0 {
                    replicas
                } else {
                    (replicas + surge - old_spec).clamp(0, replicas)
                };
                let mut labels = template
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({}));
                labels[HASH_LABEL] = json!(hash);
                let mut tmpl = template.clone();
                tmpl["metadata"]["labels"] = labels.clone();
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"][HASH_LABEL] = json!(hash);
                let rs = json!({
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": format!("{}-{hash}", util::name(&d)),
                        "namespace": util::namespace(&d),
                        "labels": labels,
                        "annotations": {
                            REVISION: (max_rev + 1).to_string(),
                            "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                            "deployment.kubernetes.io/max-replicas": (replicas + surge).to_string(),
                        },
                        "ownerReferences": [util::controller_ref(&d)],
                    },
                    "spec": {"replicas": initial, "minReadySeconds": min_ready.as_secs(), "selector": selector, "template": tmpl},
                });
                match store.create(
                    &keys::REPLICASETS,
                    rs,
                    &WriteCtx::controller(MANAGER, "create"),
                ) {
                    Ok(rs) => {
                        if initial > 0 {
                            let mut involved = util::controller_ref(&d);
                            involved["namespace"] = json!(util::namespace(&d));
                            let message = format!(
                                "Scaled up replica set {} from 0 to {initial}",
                                util::name(&rs)
                            );
                            super::record_event(
                                store,
                                &involved,
                                "Normal",
                                "ScalingReplicaSet",
                                &message,
                                MANAGER,
                            );
                        }
                        new_rs = Some(rs);
                    }
                    Err(e) if e.reason == "AlreadyExists" => {
                        // A ReplicaSet this Deployment does not own has the name: count the
                        // collision, which changes the hash (and name) of the next attempt.
                        let mut status = d.get("status").cloned().unwrap_or(json!({}));
                        status["collisionCount"] = json!(collision_count.unwrap_or(0) + 1);
                        update_status(store, &keys::DEPLOYMENTS, key, &d, status, MANAGER);
                        return Some(Duration::from_millis(50));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "deployment: creating a replicaset failed");
                        return Some(Duration::from_millis(50));
                    }
                }
                progressed = true;
            } else if let Some(n) = &new_rs
                && revision(n) < max_rev
            {
                scale(
                    store,
                    n,
                    util::i64_at(n, "/spec/replicas").unwrap_or(0),
                    &[(REVISION, (max_rev + 1).to_string())],
                );
                progressed = true;
            }
            let new_rs_ref = new_rs.clone().expect("created above");
            let new = info(store, new_rs_ref.clone(), min_ready, &mut requeue);
            if recreate {
                for o in old.iter().filter(|o| o.spec > 0) {
                    scale(store, &o.rs, 0, &[]);
                }
                let old_pods: i64 = old.iter().map(|o| o.pods_total).sum();
                if old_pods == 0 && new.spec != replicas {
                    scale(store, &new.rs, replicas, &[]);
                    progressed = true;
                }
            } else {
                // Scale the new ReplicaSet up within the surge.
                let mut new_spec = new.spec;
                if new_spec > replicas {
                    new_spec = replicas;
                } else if new_spec < replicas {
                    let total = new_spec + old_spec;
                    let room = replicas + surge - total;
                    if room > 0 {
                        new_spec += room.min(replicas - new_spec);
                    }
                }
                if new_spec != new.spec {
                    scale(store, &new.rs, new_spec, &[]);
                    progressed = true;
                }
                // Scale old ReplicaSets down within maxUnavailable, counting real pods.
                let all_spec = new_spec + old_spec;
                let new_unavailable = (new_spec - new.available).max(0);
                let max_down = all_spec - min_available - new_unavailable;
                if max_down > 0 && old_spec > 0 {
                    let mut done = 0;
                    // First the old replicas that are not available anyway.
                    for o in old.iter_mut() {
                        if done >= max_down {
                            break;
                        }
                        let unhealthy = (o.spec - o.available).max(0).min(o.spec);
                        let cut = unhealthy.min(max_down - done);
                        if cut > 0 {
                            o.spec -= cut;
                            done += cut;
                            scale(store, &o.rs, o.spec, &[]);
                            progressed = true;
                        }
                    }
                    let available: i64 =
                        new.available + old.iter().map(|o| o.available.min(o.spec)).sum::<i64>();
                    let mut budget = (available - min_available).min(max_down - done);
                    for o in old.iter_mut() {
                        if budget <= 0 {
                            break;
                        }
                        let cut = o.spec.min(budget);
                        if cut > 0 {
                            o.spec -= cut;
                            budget -= cut;
                            scale(store, &o.rs, o.spec, &[]);
                            progressed = true;
                        }
                    }
                }
            }
            // Revision history cleanup.
            let limit = util::i64_at(&d, "/spec/revisionHistoryLimit")
                .unwrap_or(10)
                .max(0) as usize;
            let idle: Vec<&RsInfo> = old
                .iter()
                .filter(|o| o.spec == 0 && o.pods_total == 0)
                .collect();
            if idle.len() > limit {
                for o in idle.iter().take(idle.len() - limit) {
                    let _ = store.delete(
                        &keys::REPLICASETS,
                        util::namespace(&o.rs),
                        util::name(&o.rs),
                        &DeleteOpts::default(),
                        &WriteCtx::controller(MANAGER, "delete"),
                    );
                }
            }
        }

        // Status.
        let rses = store.owned(util::uid(&d), &keys::REPLICASETS);
        let infos: Vec<RsInfo> = rses
            .iter()
            .map(|r| info(store, r.clone(), min_ready, &mut requeue))
            .collect();
        let new_uid = find_new_replica_set(&d, &rses).map(|n| util::uid(n).to_string());
        let is_new = |i: &RsInfo| Some(util::uid(&i.rs)) == new_uid.as_deref();
        let new_info = infos.iter().find(|i| is_new(i));
        let total: i64 = infos.iter().map(|i| i.active).sum();
        let updated = new_info.map(|i| i.active).unwrap_or(0);
        let ready: i64 = infos.iter().map(|i| i.ready).sum();
        let available: i64 = infos.iter().map(|i| i.available).sum();
        let new_name = new_info
            .map(|i| util::name(&i.rs).to_string())
            .unwrap_or_default();
        let mut status = d.get("status").cloned().unwrap_or(json!({}));
        let counters = |s: &Value| {
            [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ]
            .map(|k| s.get(k).and_then(Value::as_i64).unwrap_or(0))
        };
        let counters_before = counters(&status);
        status["observedGeneration"] = json!(util::i64_at(&d, "/metadata/generation").unwrap_or(1));
        status["replicas"] = json!(total);
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        status["unavailableReplicas"] = json!((replicas.max(total) - available).max(0));
        let counters_after = counters(&status);
        progressed |= counters_before != counters_after;
        for k in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ] {
            if status[k] == 0 && k != "replicas" {
                status.as_object_mut().expect("object").remove(k);
            }
        }
        let now = now_ts();
        if available >= min_available {
            set_condition(
                &mut status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                None,
            );
        } else {
            set_condition(
                &mut status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                None,
            );
        }
        let complete = updated == replicas
            && available >= replicas
            && total == replicas
            && infos.iter().all(|i| is_new(i) || i.spec == 0);
        if paused {
            let newly = condition(&json!({"status": status.clone()}), "Progressing")
                .is_none_or(|c| c["reason"] != "DeploymentPaused");
            set_condition(
                &mut status,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                newly.then_some(now.as_str()),
            );
        } else if complete {
            let changed = condition(&json!({"status": status.clone()}), "Progressing")
                .is_none_or(|c| c["reason"] != "NewReplicaSetAvailable");
            set_condition(
                &mut status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                changed.then_some(now.as_str()),
            );
        } else {
            let prev = condition(&json!({"status": status.clone()}), "Progressing").cloned();
            let deadline = Duration::from_secs(
                util::i64_at(&d, "/spec/progressDeadlineSeconds")
                    .unwrap_or(600)
                    .max(0) as u64,
            );
            let resumed = prev.as_ref().is_some_and(|c| {
                c["reason"] == "DeploymentPaused" || c["reason"] == "NewReplicaSetAvailable"
            });
            if progressed || prev.is_none() || resumed {
                set_condition(
                    &mut status,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{new_name}\" is progressing."),
                    Some(&now),
                );
                requeue = Some(requeue.map_or(deadline, |r| r.min(deadline)));
            } else if let Some(p) = prev
                && p["reason"] != "ProgressDeadlineExceeded"
            {
                let since = Duration::from_millis(
                    p["lastUpdateTime"]
                        .as_str()
                        .map(util::millis_since)
                        .unwrap_or(0),
                );
                if since >= deadline {
                    set_condition(
                        &mut status,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                        Some(&now),
                    );
                } else {
                    let left = deadline - since;
                    requeue = Some(requeue.map_or(left, |r| r.min(left)));
                }
            }
        }
        update_status(store, &keys::DEPLOYMENTS, key, &d, status, MANAGER);
        if !new_name.is_empty()
            && let Some(rev) = new_info.map(|i| revision(&i.rs))
            && util::annotation(&d, REVISION) != Some(rev.to_string().as_str())
            && rev > 0
        {
            let _ = store.modify(
                &keys::DEPLOYMENTS,
                &key.0,
                &key.1,
                Part::Main,
                &WriteCtx::controller(MANAGER, "update"),
                |cur| {
                    let mut new = cur.clone();
                    let meta = util::meta_mut(&mut new);
                    let a = meta.entry("annotations").or_insert(json!({}));
                    if !a.is_object() {
                        *a = json!({});
                    }
                    a[REVISION] = json!(rev.to_string());
                    Ok(new)
                },
            );
        }
        requeue
    }
}
