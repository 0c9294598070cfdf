//! The StatefulSet side of the workload layer: its revisions (`controller-revision-hash`,
//! `status.currentRevision` / `status.updateRevision`), when its rollout is complete, its
//! green copy, and how a rollout is paced: with `updateStrategy.rollingUpdate.partition`
//! (its own controller recreates each pod at or above the partition) or, under `OnDelete`,
//! by the operator evicting the pods itself, highest ordinal first. A StatefulSet cannot
//! surge. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use super::Pace;
use super::saved::Saved;
use crate::operator::pods;

pub mod held;

/// The label a StatefulSet's controller puts on each pod: the ControllerRevision it was made
/// from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

fn desired_replicas(s: &StatefulSet) -> i32 {
    s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The revision the controller brings the pods at or above the partition to, once it has
/// seen the current spec (before that, the status still names the previous one).
pub fn update_revision(s: &StatefulSet) -> Option<&str> {
    let status = s.status.as_ref()?;
    if status.observed_generation.unwrap_or(0) < s.metadata.generation.unwrap_or(0) {
        return None;
    }
    status.update_revision.as_deref()
}

/// The revision the pods below the partition run.
pub fn current_revision(s: &StatefulSet) -> Option<&str> {
    s.status.as_ref()?.current_revision.as_deref()
}

/// `OnDelete`: the controller replaces a pod only once someone deletes it.
pub fn is_on_delete(s: &StatefulSet) -> bool {
    strategy_type(s.spec.as_ref().and_then(|s| s.update_strategy.as_ref())) == "OnDelete"
}

fn strategy_type(strategy: Option<&StatefulSetUpdateStrategy>) -> &str {
    strategy
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// `updateStrategy.rollingUpdate.partition` (0 when unset): pods whose index (ordinal less
/// the first ordinal) is at least this are rolled to the update revision.
pub fn partition(s: &StatefulSet) -> i32 {
    s.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
}

/// The controller has caught up with its spec: every replica runs the update revision and
/// is available. (Under `OnDelete` the controller never moves `currentRevision`, so the
/// updated count is what says so.)
pub fn is_complete(s: &StatefulSet) -> bool {
    let want = desired_replicas(s);
    let Some(status) = s.status.as_ref() else {
        return false;
    };
    status.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0)
        && status.replicas == want
        && status.updated_replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.update_revision.is_some()
}

/// The lowest ordinal (`spec.ordinals.start`, 0 by default).
fn first_ordinal(s: &StatefulSet) -> i32 {
    s.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
}

/// The pods of `s` among `all` (those it owns).
pub(super) fn own_pods<'a>(s: &StatefulSet, all: &'a [Pod]) -> Vec<&'a Pod> {
    let uid = s.metadata.uid.as_deref();
    all.iter()
        .filter(|p| {
            uid.is_none()
                || p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| Some(o.uid.as_str()) == uid)
        })
        .collect()
}

/// The next step of a rollout of `s` to its update revision, one pod at a time, highest
/// ordinal first, each replacement available for `min_ready` seconds before the next: under
/// a partition, lower it by one; under `OnDelete`, evict the highest pod still on another
/// revision.
pub(super) fn pace(s: &StatefulSet, all: &[Pod], min_ready: i64, now: Timestamp) -> Pace {
    let Some(revision) = update_revision(s) else {
        return Pace::Hold;
    };
    let mine = own_pods(s, all);
    if mine.iter().any(|p| pods::is_terminating(p)) {
        return Pace::Hold;
    }
    let replaced_and_available =
        |p: &&Pod| revision_of(p) == Some(revision) && pods::is_available(p, min_ready, now);
    let first = first_ordinal(s);
    let replicas = desired_replicas(s);
    // The partition counts pods from the first ordinal (an index, as the controller reads it).
    let partition = if is_on_delete(s) { 0 } else { partition(s) };
    let index = |p: &Pod| ordinal(p).map(|o| o - first);
    // A pod of another revision that never became Ready holds an ordered controller for
    // good (going back from a broken template, say): it serves nothing, so it goes.
    let mut stuck: Vec<&Pod> = mine
        .iter()
        .copied()
        .filter(|p| revision_of(p) != Some(revision) && !pods::is_ready(p))
        .filter(|p| index(p).is_some_and(|i| i >= partition))
        .collect();
    highest_ordinal_first(&mut stuck);
    if let Some(pod) = stuck.first() {
        return Pace::Delete(pods::name(pod).to_string());
    }
    // Every other pod serves before one more goes: never more than one out.
    if (mine.len() as i32) < replicas || mine.iter().any(|p| !pods::is_ready(p)) {
        return Pace::Hold;
    }
    if is_on_delete(s) {
        // The replacements so far are all there and available; then the next one goes.
        if (mine.len() as i32) < replicas
            || mine
                .iter()
                .any(|p| revision_of(p) == Some(revision) && !replaced_and_available(p))
        {
            return Pace::Hold;
        }
        let mut stale: Vec<&Pod> = mine
            .iter()
            .copied()
            .filter(|p| revision_of(p) != Some(revision))
            .collect();
        highest_ordinal_first(&mut stale);
        return match stale.first() {
            Some(pod) => Pace::Evict(pods::name(pod).to_string()),
            None => Pace::Done,
        };
    }
    let released: Vec<&Pod> = mine
        .iter()
        .copied()
        .filter(|p| index(p).is_some_and(|i| i >= partition))
        .collect();
    let expected = (replicas - partition.max(0)).max(0) as usize;
    if released.len() < expected || !released.iter().all(replaced_and_available) {
        return Pace::Hold;
    }
    if partition <= 0 {
        return Pace::Done;
    }
    let next = partition.min(replicas) - 1;
    Pace::Release {
        ordinal: first + next,
        patch: serde_json::json!({"spec": {"updateStrategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": next},
        }}}),
    }
}

/// The ordinal of a StatefulSet's pod (the number after its last dash).
pub fn ordinal(pod: &Pod) -> Option<i32> {
    pods::name(pod).rsplit_once('-')?.1.parse().ok()
}

/// Sorts pods the way the StatefulSet controller replaces them: highest ordinal first.
pub fn highest_ordinal_first(candidates: &mut [&Pod]) {
    candidates.sort_by_key(|p| std::cmp::Reverse(ordinal(p).unwrap_or(-1)));
}

/// The green StatefulSet: `blue`'s shape under `metadata` with `template` (which already
/// carries `labels`), its selector with `labels`, the twin of its governing Service
/// (`<serviceName>-green`), and claims that go with it (the target's own claims are never
/// touched: green's are named after green).
pub(super) fn green_copy(
    blue: &StatefulSet,
    metadata: ObjectMeta,
    template: PodTemplateSpec,
    labels: &BTreeMap<String, String>,
) -> StatefulSet {
    let spec = blue.spec.clone().unwrap_or_default();
    let mut match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    match_labels.extend(labels.clone());
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(desired_replicas(blue)),
            selector: LabelSelector {
                match_labels: Some(match_labels),
                match_expressions: spec.selector.match_expressions,
            },
            template,
            service_name: spec
                .service_name
                .as_deref()
                .map(crate::operator::labels::twin_name),
            min_ready_seconds: spec.min_ready_seconds,
            pod_management_policy: spec.pod_management_policy,
            volume_claim_templates: spec.volume_claim_templates,
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Delete".into()),
                },
            ),
            ordinals: spec.ordinals,
            ..Default::default()
        }),
        status: None,
    }
}

/// Rolling updates held at `partition`: the controller recreates only the pods whose
/// ordinal is at least `partition`.
pub fn partitioned(partition: i32) -> StatefulSetUpdateStrategy {
    StatefulSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateStatefulSetStrategy {
            max_unavailable: None,
            partition: Some(partition),
        }),
    }
}

/// The StatefulSet with `new_template`, and (unless it is `OnDelete`, where the operator
/// evicts the pods itself) its rolling update held at a partition equal to its replicas (the
/// partition counts pods from the first ordinal), so that no pod moves until the operator
/// lowers it, and minReadySeconds at least `min_ready_seconds`. Its update strategy and
/// minReadySeconds go into `saved`.
pub(super) fn paced_rollout(
    s: &StatefulSet,
    new_template: PodTemplateSpec,
    min_ready_seconds: i64,
    saved: &mut Saved,
) -> StatefulSet {
    let on_delete = is_on_delete(s);
    let replicas = desired_replicas(s);
    let mut target = s.clone();
    let spec = target.spec.get_or_insert_with(Default::default);
    saved.update_strategy = spec.update_strategy.clone();
    saved.min_ready_seconds = spec.min_ready_seconds;
    spec.template = new_template;
    // Its controller then counts a pod available (and the rollout complete) only once it
    // has been Ready that long, the last pod included.
    let own = spec.min_ready_seconds.unwrap_or(0);
    spec.min_ready_seconds = Some(own.max(min_ready_seconds.min(i32::MAX as i64) as i32));
    if !on_delete {
        spec.update_strategy = Some(partitioned(replicas));
    }
    target
}

/// The update strategy and minReadySeconds as they were before the rollout.
pub(super) fn restored_settings(saved: &Saved) -> serde_json::Map<String, serde_json::Value> {
    let mut spec = serde_json::Map::new();
    spec.insert(
        "minReadySeconds".into(),
        serde_json::json!(saved.min_ready_seconds),
    );
    let strategy = saved.update_strategy.clone().unwrap_or_default();
    spec.insert(
        "updateStrategy".into(),
        serde_json::json!({
            "type": strategy.type_.unwrap_or_else(|| "RollingUpdate".into()),
            "rollingUpdate": strategy.rolling_update,
        }),
    );
    spec
}
