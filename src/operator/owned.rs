//! Which of the pods the target's selector lists are the plan's to count and touch: those
//! whose owner is the target, one of its ReplicaSets (its own, those the plan holds, and
//! orphans matching its selector, which its controller adopts), green, or the plan, and the
//! plan's own pods. Another workload's pods whose labels overlap are left out. Pure: `observe`
//! reads the objects, this only decides.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::step::blue_green::PLAN_LABEL;

fn uid(meta: &ObjectMeta) -> Option<&str> {
    meta.uid.as_deref()
}

/// The UID of the controller that manages the object, if it has one.
fn controller(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// The UIDs whose pods are the plan's: `owners` (the target, green and the plan), the
/// ReplicaSets among `listed` (those the target's selector lists) that one of `owners`
/// controls or that nobody controls, and every set in `held` (taken over by the plan).
pub fn owner_uids(
    owners: &[&ObjectMeta],
    listed: &[ReplicaSet],
    held: &[ReplicaSet],
) -> Vec<String> {
    let roots: Vec<&str> = owners.iter().filter_map(|m| uid(m)).collect();
    let sets = listed
        .iter()
        .filter(|rs| controller(&rs.metadata).is_none_or(|c| roots.contains(&c)))
        .chain(held)
        .filter_map(|rs| uid(&rs.metadata));
    roots
        .iter()
        .copied()
        .chain(sets)
        .map(String::from)
        .collect()
}

/// Whether `pod` is the plan's: owned by one of `owners`, or labelled with the plan's name
/// (its surge pod, green's pods, also once green is gone).
pub fn is_owned(pod: &Pod, owners: &[String], plan: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| owners.contains(&o.uid))
        || pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(PLAN_LABEL))
            .is_some_and(|p| p == plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(uid: &str) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            ..Default::default()
        }
    }

    fn owned_by(name: &str, owner: Option<&str>) -> serde_json::Value {
        let refs: Vec<serde_json::Value> = owner
            .map(|o| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": o, "controller": true}))
            .into_iter()
            .collect();
        json!({"metadata": {"name": name, "uid": name, "ownerReferences": refs,
                            "labels": {"app": "liferay"}}})
    }

    fn rs(name: &str, owner: Option<&str>) -> ReplicaSet {
        serde_json::from_value(owned_by(name, owner)).unwrap()
    }

    fn pod(name: &str, owner: Option<&str>) -> Pod {
        serde_json::from_value(owned_by(name, owner)).unwrap()
    }

    #[test]
    fn only_the_targets_sets_greens_and_the_plans_pods_are_the_plans() {
        let (target, green, plan) = (meta("target"), meta("green"), meta("plan"));
        let listed = [
            rs("mine", Some("target")),
            rs("greens", Some("green")),
            rs("orphan", None),
            rs("neighbours", Some("neighbour")),
        ];
        let held = [rs("taken", None)];
        let owners = owner_uids(&[&target, &green, &plan], &listed, &held);
        let kept = |p: &Pod| is_owned(p, &owners, "p1");
        assert!(kept(&pod("a", Some("mine"))));
        assert!(kept(&pod("b", Some("greens"))));
        assert!(kept(&pod("c", Some("orphan"))));
        assert!(kept(&pod("d", Some("taken"))));
        assert!(kept(&pod("e", Some("target"))), "a StatefulSet's own pod");
        assert!(
            !kept(&pod("f", Some("neighbours"))),
            "another workload's pod"
        );
        assert!(!kept(&pod("g", None)), "a bare pod with the same labels");
        let mut surge = pod("surge", None);
        surge
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(PLAN_LABEL.into(), "p1".into());
        assert!(kept(&surge));
        assert!(!is_owned(&surge, &owners, "p2"), "another plan's surge pod");
    }
}
