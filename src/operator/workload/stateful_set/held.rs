//! The GitOps flow of a StatefulSet that holds its pending template back itself: under
//! `updateStrategy: OnDelete`, or with a partition at (or above) its replicas, its controller
//! has the pending template as its update revision and replaces no pod on its own. What the
//! flow reads (the two revisions, the running template its current ControllerRevision
//! records) and the few settings it writes to send pods forward or back. Pure.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    current_revision, desired_replicas, highest_ordinal_first, is_on_delete, own_pods, partition,
    revision_of, update_revision,
};
use crate::operator::pods;
use crate::operator::workload::Pace;

/// Its controller replaces no pod by itself: `OnDelete`, or a partition at its replicas or
/// more.
pub fn holds_rollout(s: &StatefulSet) -> bool {
    is_on_delete(s) || partition(s) >= desired_replicas(s)
}

/// The current and the update revision of a pending template it holds back, once its
/// controller has seen its spec.
pub fn held_revisions(s: &StatefulSet) -> Option<(&str, &str)> {
    let update = update_revision(s)?;
    let current = current_revision(s)?;
    (current != update && holds_rollout(s)).then_some((current, update))
}

/// The pod template a StatefulSet's ControllerRevision records: its `data` is the strategic
/// merge patch `{"spec": {"template": {..., "$patch": "replace"}}}` its controller stores.
pub fn template_of_revision(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// A pod deleted now comes back at the current revision: rolling updates held at a partition
/// of its replicas or more.
pub fn brings_back_current(s: &StatefulSet) -> bool {
    !is_on_delete(s) && partition(s) >= desired_replicas(s)
}

/// The `spec` fragment of a merge patch under which a deleted pod of its `replicas` comes back
/// at the current revision (its controller recreates every pod below the partition from it).
pub fn back_to_current_spec(replicas: i32) -> Value {
    json!({"updateStrategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": replicas},
    }})
}

/// The `spec` fragment of a merge patch under which a deleted pod comes back at the update
/// revision, if it does not already (a partition is lowered to zero; `OnDelete` needs none).
pub fn forward_spec(s: &StatefulSet) -> Option<Value> {
    (!is_on_delete(s) && partition(s) != 0).then(|| {
        json!({"updateStrategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"partition": 0},
        }})
    })
}

/// Its pods that are on another revision than `to` and not in `keep`, not terminating,
/// highest ordinal first.
pub fn pods_off<'a>(s: &StatefulSet, all: &'a [Pod], to: &str, keep: &[String]) -> Vec<&'a Pod> {
    let mut off: Vec<&Pod> = own_pods(s, all)
        .into_iter()
        .filter(|p| !pods::is_terminating(p))
        .filter(|p| revision_of(p) != Some(to) && !keep.iter().any(|k| k == pods::name(p)))
        .collect();
    highest_ordinal_first(&mut off);
    off
}

/// The next step of bringing its pods back to revision `to` (but those in `keep`), one at a
/// time: a pod that is not Ready is deleted first (it serves nothing, and an ordered
/// controller waits for it before it recreates any pod above it); the others are evicted
/// highest ordinal first, each once every pod is there and Ready and the ones back at `to`
/// have been available for `min_ready` seconds.
pub fn pace_back(
    s: &StatefulSet,
    all: &[Pod],
    to: &str,
    keep: &[String],
    min_ready: i64,
    now: Timestamp,
) -> Pace {
    let mine = own_pods(s, all);
    if mine.iter().any(|p| pods::is_terminating(p)) {
        return Pace::Hold;
    }
    let off = pods_off(s, all, to, keep);
    if let Some(broken) = off.iter().find(|p| !pods::is_ready(p)) {
        return Pace::Delete(pods::name(broken).to_string());
    }
    let back_and_available =
        |p: &&Pod| revision_of(p) != Some(to) || pods::is_available(p, min_ready, now);
    if (mine.len() as i32) < desired_replicas(s)
        || !mine.iter().all(|p| pods::is_ready(p))
        || !mine.iter().all(back_and_available)
    {
        return Pace::Hold;
    }
    match off.first() {
        Some(pod) => Pace::Evict(pods::name(pod).to_string()),
        None => Pace::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(strategy: Value, current: &str, update: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "liferay", "uid": "u", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "h",
                     "updateStrategy": strategy, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3,
                       "currentRevision": current, "updateRevision": update}
        }))
        .unwrap()
    }

    #[test]
    fn a_pending_template_is_held_under_on_delete_or_a_partition_at_the_replicas() {
        let on_delete = json!({"type": "OnDelete"});
        let at_replicas = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}});
        let above = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 7}});
        let below = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        for strategy in [&on_delete, &at_replicas, &above] {
            assert_eq!(
                held_revisions(&set(strategy.clone(), "r1", "r2")),
                Some(("r1", "r2")),
                "{strategy}"
            );
            assert_eq!(held_revisions(&set(strategy.clone(), "r2", "r2")), None);
        }
        // Its controller rolls it by itself: nothing held.
        assert_eq!(held_revisions(&set(below, "r1", "r2")), None);
        assert_eq!(
            held_revisions(&set(json!({"type": "RollingUpdate"}), "r1", "r2")),
            None
        );
        // Its controller has not seen the spec yet: the status speaks of the one before.
        let mut behind = set(on_delete, "r1", "r2");
        behind.metadata.generation = Some(3);
        assert_eq!(held_revisions(&behind), None);
    }

    #[test]
    fn the_running_template_is_read_from_the_revision_data() {
        let revision: ControllerRevision = serde_json::from_value(json!({
            "metadata": {"name": "liferay-r1"}, "revision": 1,
            "data": {"spec": {"template": {"$patch": "replace",
                "metadata": {"labels": {"app": "liferay"}},
                "spec": {"containers": [{"name": "liferay", "image": "dxp:1"}]}}}}
        }))
        .unwrap();
        let template = template_of_revision(&revision).unwrap();
        assert_eq!(
            serde_json::to_value(template).unwrap(),
            json!({"metadata": {"labels": {"app": "liferay"}},
                   "spec": {"containers": [{"name": "liferay", "image": "dxp:1"}]}})
        );
    }

    #[test]
    fn the_settings_that_send_deleted_pods_back_or_forward() {
        let on_delete = set(json!({"type": "OnDelete"}), "r1", "r2");
        assert!(!brings_back_current(&on_delete));
        assert_eq!(forward_spec(&on_delete), None);
        assert_eq!(
            back_to_current_spec(3),
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}})
        );
        let held = set(
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}),
            "r1",
            "r2",
        );
        assert!(brings_back_current(&held));
        assert_eq!(
            forward_spec(&held),
            Some(
                json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}})
            )
        );
    }

    fn pod(name: &str, revision: &str, ready: bool) -> Pod {
        let condition = if ready {
            json!({"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-01T00:00:00Z"})
        } else {
            json!({"type": "Ready", "status": "False"})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                             "name": "liferay", "uid": "u", "controller": true}]},
            "status": {"conditions": [condition]}
        }))
        .unwrap()
    }

    #[test]
    fn going_back_deletes_a_broken_pod_first_then_evicts_from_the_top() {
        let s = set(json!({"type": "OnDelete"}), "r1", "r2");
        let now = Timestamp::from_second(1_900_000_000).unwrap();
        let broken = [
            pod("liferay-0", "r1", true),
            pod("liferay-1", "r2", false),
            pod("liferay-2", "r2", true),
        ];
        assert_eq!(
            pace_back(&s, &broken, "r1", &[], 0, now),
            Pace::Delete("liferay-1".into())
        );
        let replaced = [
            pod("liferay-0", "r1", true),
            pod("liferay-1", "r2", true),
            pod("liferay-2", "r2", true),
        ];
        assert_eq!(
            pace_back(&s, &replaced, "r1", &[], 0, now),
            Pace::Evict("liferay-2".into())
        );
        // A pod that ran the pending template before the plan stays.
        assert_eq!(
            pace_back(&s, &replaced, "r1", &["liferay-2".into()], 0, now),
            Pace::Evict("liferay-1".into())
        );
        // One out at a time: a missing pod is waited for.
        assert_eq!(pace_back(&s, &replaced[..2], "r1", &[], 0, now), Pace::Hold);
        let back = [
            pod("liferay-0", "r1", true),
            pod("liferay-1", "r1", true),
            pod("liferay-2", "r1", true),
        ];
        assert_eq!(pace_back(&s, &back, "r1", &[], 0, now), Pace::Done);
    }
}
