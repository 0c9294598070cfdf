//! The GitOps flow's mechanics, specific to a workload that runs its pods through
//! ReplicaSets: a paused target whose template is ahead of its running ReplicaSet. cutover takes the target's ReplicaSets out of its controller's hands (their
//! labels no longer match its selector, so a paused controller neither rescales nor re-adopts
//! them), moves the pods from the old set to the pending template's set at the chosen pace,
//! and hands the sets back (the new one labelled so that the controller adopts it as its
//! current ReplicaSet). The target object is never written, so a sync tool that keeps
//! re-applying it from Git has nothing to revert. Every turn is derived from the cluster:
//! repeating one after a crash is harmless.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;

use super::Cx;
use crate::operator::action::Action;
use crate::operator::replica_sets::{
    self, adoptable_labels, for_template, relabel_patch, replicas, with_template,
};
use crate::operator::rollout::{availability_wait, late_pod, pods_of};
use crate::operator::workload::saved::{Handover, Saved, mark_patch};
use crate::operator::{pods, time};

/// The label that marks a ReplicaSet as held by a plan (its value is the plan's name). The
/// target's selector does not match a set labelled only with it, so its controller
/// leaves the set alone.
pub const HELD_LABEL: &str = "cutover.dev/held-by";

/// How the pods move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    /// RollingRestart: one new pod, Ready for `minReadySeconds`, then one old pod goes.
    OneAtATime,
    /// BlueGreen's update of a target that carries no traffic: all at once.
    AllAtOnce,
    /// FullRestart: every old pod stops before the new ones start.
    StopFirst,
}

/// What to do in this turn.
#[derive(Debug)]
pub(super) enum Turn {
    Act(Vec<Action>, String),
    Wait(String, Option<Duration>),
    /// The move cannot go on in time: a pod of the set being filled was not Ready, its pods
    /// never appeared, or the pods of the set being emptied never stopped. The sentence says
    /// which.
    Late(String),
    /// Every pod runs on the destination set.
    Done,
}

/// The handover for `pending` (the running set) to the target's template: an earlier
/// revision's set is reused when it has that template, otherwise cutover makes one.
pub(super) fn plan(cx: &Cx, pending: &ReplicaSet) -> (Handover, Option<ReplicaSet>) {
    let template = pending_template(cx);
    let labels = held_labels(cx.plan);
    let reused = with_template(&cx.snap.replica_sets, &template);
    let created = reused
        .is_none()
        .then(|| for_template(cx.target, &template, labels));
    let new = reused.or(created.as_ref()).expect("one of the two");
    let handover = Handover {
        old_set: replica_sets::name(pending).to_string(),
        old_hash: replica_sets::hash(pending).unwrap_or_default().to_string(),
        new_set: replica_sets::name(new).to_string(),
        new_hash: new
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .and_then(|l| l.get(pods::TEMPLATE_HASH))
            .cloned()
            .unwrap_or_default(),
        created: created.is_some(),
        replicas: cx.target.replicas(),
        stop_first: false,
        moving: false,
        returning: false,
        stalled: false,
        released: cx
            .snap
            .replica_sets
            .iter()
            .map(|rs| {
                (
                    replica_sets::name(rs).to_string(),
                    rs.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect(),
    };
    (handover, created)
}

/// The target's template: in this flow, the pending one.
fn pending_template(cx: &Cx) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    cx.target.template().cloned().unwrap_or_default()
}

/// Records on the target that the pods have moved and the sets go back next.
pub(super) fn record_returning(cx: &Cx, saved: &Saved, h: &Handover) -> Action {
    let returning = Saved {
        handover: Some(Handover {
            returning: true,
            ..h.clone()
        }),
        ..saved.clone()
    };
    cx.target.patch(mark_patch(cx.plan, &returning))
}

/// Records on the target that the way back stalled for `reason`: the sets go back to the
/// target as they stand, and the plan fails.
pub(super) fn record_stalled(cx: &Cx, saved: &Saved, h: &Handover, reason: String) -> Action {
    let stalled = Saved {
        handover: Some(Handover {
            returning: true,
            stalled: true,
            ..h.clone()
        }),
        reason: Some(reason),
        ..saved.clone()
    };
    cx.target.patch(mark_patch(cx.plan, &stalled))
}

/// A set by name, wherever it is (still the target's, or taken over).
fn set<'a>(cx: &'a Cx, name: &str) -> Option<&'a ReplicaSet> {
    cx.snap
        .handover_sets
        .iter()
        .chain(cx.snap.replica_sets.iter())
        .find(|rs| replica_sets::name(rs) == name)
}

fn taken(rs: &ReplicaSet, plan: &str) -> bool {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HELD_LABEL))
        .is_some_and(|p| p == plan)
}

/// The labels of a set while a plan holds it.
pub(super) fn held_labels(plan: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(HELD_LABEL.to_string(), plan.to_string())])
}

fn scale(name: &str, to: i32) -> Action {
    Action::PatchReplicaSet {
        name: name.to_string(),
        patch: serde_json::json!({"spec": {"replicas": to}}),
    }
}

/// Creates the new set if it is missing and takes every set of the target over, the running
/// one last (until then it is the only set with pods, which a paused controller leaves be).
pub(super) fn take_over(cx: &Cx, h: &Handover, created: Option<ReplicaSet>) -> Vec<Action> {
    let mut actions = Vec::new();
    if h.created && set(cx, &h.new_set).is_none() {
        let rs = created.unwrap_or_else(|| {
            for_template(cx.target, &pending_template(cx), held_labels(cx.plan))
        });
        actions.push(Action::CreateReplicaSet(Box::new(rs)));
    }
    let mut owned: Vec<&ReplicaSet> = cx
        .snap
        .replica_sets
        .iter()
        .filter(|rs| h.released.contains_key(replica_sets::name(rs)) && !taken(rs, cx.plan))
        .collect();
    owned.sort_by_key(|rs| replica_sets::name(rs) == h.old_set);
    for rs in owned {
        actions.push(Action::PatchReplicaSet {
            name: replica_sets::name(rs).to_string(),
            patch: relabel_patch(rs, &held_labels(cx.plan)),
        });
    }
    actions
}

/// Moves pods from `from` to `to` (forward: old to new; back: new to old). `since` is when
/// this move began: the clock of the waits that no pod's own timestamps can date (a pod that
/// never appears, pods that never stop), each of which fails after `timeout` seconds without
/// progress.
pub(super) fn advance(
    cx: &Cx,
    h: &Handover,
    pace: Pace,
    back: bool,
    (min_ready, timeout): (i64, i64),
    since: Timestamp,
) -> Turn {
    let (from_name, from_hash, to_name, to_hash) = if back {
        (&h.new_set, &h.new_hash, &h.old_set, &h.old_hash)
    } else {
        (&h.old_set, &h.old_hash, &h.new_set, &h.new_hash)
    };
    let to_pods = pods_of(&cx.snap.pods, to_hash);
    // The last moment something moved: the move began, or a pod of the set being filled
    // became available (the next one is asked for right then).
    let moved_at = to_pods
        .iter()
        .filter_map(|p| pods::available_at(p, min_ready))
        .filter(|at| *at <= cx.now)
        .fold(since, Timestamp::max);
    let stuck_at = pods::add_seconds(moved_at, timeout as f64);
    let stuck = cx.now >= stuck_at;
    let (Some(from), Some(to)) = (set(cx, from_name), set(cx, to_name)) else {
        if stuck {
            return Turn::Late(format!(
                "replica sets {from_name} and {to_name} were not both there within {timeout}s"
            ));
        }
        return Turn::Wait(
            format!("waiting for replica sets {from_name} and {to_name}"),
            Some(time::until(cx.now, stuck_at)),
        );
    };
    let total = h.replicas;
    let (f, t) = (replicas(from), replicas(to));
    let available = to_pods
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let (late, deadline) = late_pod(&to_pods, timeout, cx.now);
    if let Some(pod) = late {
        return Turn::Late(format!(
            "pod {} was not Ready within {timeout}s",
            pods::name(pod)
        ));
    }
    let from_left = cx
        .snap
        .pods
        .iter()
        .filter(|p| pods::template_hash(p) == Some(from_hash.as_str()))
        .count();
    if pace == Pace::StopFirst && !back {
        if f > 0 {
            return Turn::Act(
                vec![scale(from_name, 0)],
                format!("stopping all {total} pods of replica set {from_name}"),
            );
        }
        if from_left > 0 && stuck {
            return Turn::Late(format!(
                "{from_left} pods of replica set {from_name} did not stop within {timeout}s"
            ));
        }
        if from_left > 0 {
            return Turn::Wait(
                format!("waiting for {from_left} pods to stop"),
                Some(time::until(cx.now, stuck_at)),
            );
        }
    }
    if pace != Pace::OneAtATime || (back && t == 0) {
        let mut actions = Vec::new();
        if f > 0 {
            actions.push(scale(from_name, 0));
        }
        if t != total {
            actions.push(scale(to_name, total));
        }
        if !actions.is_empty() {
            return Turn::Act(
                actions,
                format!("moving all {total} pods to replica set {to_name}"),
            );
        }
    }
    let hold = to_pods
        .iter()
        .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready, cx.now))
        .filter_map(|p| pods::available_at(p, min_ready))
        .min()
        .map(|at| time::until(cx.now, at));
    let requeue = time::earliest(deadline.map(|d| time::until(cx.now, d)), hold);
    let missing = t - to_pods.len() as i32;
    if missing > 0 && to_pods.len() as i32 == available {
        // Every pod there is available and more are asked for: they must appear in time.
        if stuck {
            return Turn::Late(format!(
                "{missing} of the {t} pods asked of replica set {to_name} did not appear within {timeout}s"
            ));
        }
        return Turn::Wait(
            format!(
                "{available}/{total} pods moved; waiting for replica set {to_name} to create {missing} more"
            ),
            time::earliest(requeue, Some(time::until(cx.now, stuck_at))),
        );
    }
    if (to_pods.len() as i32) < t || available < t {
        let (waiting, _) = availability_wait(&to_pods, min_ready, cx.now);
        return Turn::Wait(format!("{available}/{total} pods moved{waiting}"), requeue);
    }
    if f + t > total && f > 0 {
        return Turn::Act(
            vec![scale(from_name, f - 1)],
            format!("{t}/{total} pods moved; one pod of replica set {from_name} goes"),
        );
    }
    if f > 0 {
        return Turn::Act(
            vec![scale(to_name, t + 1)],
            format!("{t}/{total} pods moved; starting one more on replica set {to_name}"),
        );
    }
    if t != total {
        return Turn::Act(
            vec![scale(to_name, total)],
            format!("{t}/{total} pods moved"),
        );
    }
    Turn::Done
}

/// Pods on the destination set that are available: the progress of a handover.
pub(super) fn moved(cx: &Cx, h: &Handover, back: bool, min_ready: i64) -> i32 {
    let hash = if back { &h.old_hash } else { &h.new_hash };
    pods_of(&cx.snap.pods, hash)
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32
}

/// Gives the sets back to the target: the destination first (the controller adopts it as the
/// set with pods), then the others with their labels from before. A set cutover created that
/// ends without pods is deleted; after a stalled move back it keeps its pods and goes to the
/// target like the others. `None` once everything is back.
pub(super) fn hand_back(cx: &Cx, h: &Handover, back: bool) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    let destination = if back { &h.old_set } else { &h.new_set };
    let mut sets: Vec<&ReplicaSet> = cx
        .snap
        .handover_sets
        .iter()
        .filter(|rs| taken(rs, cx.plan))
        .collect();
    sets.sort_by_key(|rs| replica_sets::name(rs) != destination);
    for rs in sets {
        let name = replica_sets::name(rs);
        // A set cutover made goes when the pods are all back on the old one; a stalled move
        // leaves every set with its pods.
        if back && h.created && name == h.new_set && !h.stalled {
            if rs.metadata.deletion_timestamp.is_none() {
                actions.push(Action::DeleteReplicaSet {
                    name: name.to_string(),
                });
            }
            continue;
        }
        let labels = match h.released.get(name) {
            Some(original) if name != h.new_set || back => original.clone(),
            _ => adoptable_labels(rs),
        };
        actions.push(Action::PatchReplicaSet {
            name: name.to_string(),
            patch: relabel_patch(rs, &labels),
        });
    }
    let gone = !(back && h.created && !h.stalled && set(cx, &h.new_set).is_some());
    (!actions.is_empty() || !gone).then_some(actions)
}
