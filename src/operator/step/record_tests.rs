//! The undo record on hand-made snapshots: a record that cannot be read is said as such (not
//! taken for none), and a plan whose target or record is gone still puts the Services back
//! and lets go of the ReplicaSets it holds.

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::json;

use super::tests::{base_spec, deployment, plan, run, snapshot, three_old_pods, with_status};
use crate::api::{MaintenancePlanStatus, Phase};
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::saved::{self as record, Mode, Saved};

fn blue_green_spec() -> serde_json::Value {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec
}

fn original() -> serde_json::Value {
    json!({"app": "liferay"})
}

fn pin(snap: &mut Snapshot) {
    snap.service
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .selector = Some(
        [
            ("app".to_string(), "liferay".to_string()),
            ("pod-template-hash".to_string(), "old".to_string()),
        ]
        .into(),
    );
}

/// The selector the decision sets on the traffic Service, if any.
fn traffic_selector(actions: &[Action]) -> Option<serde_json::Value> {
    actions.iter().find_map(|a| match a {
        Action::SetServiceSelector { service, selector } if service == "liferay" => {
            Some(serde_json::to_value(selector).unwrap())
        }
        _ => None,
    })
}

/// A BlueGreen that has begun (green asked for, the Service pinned to blue), as the step
/// left it: its status recorded, the target marked and the Service pinned.
fn begun() -> Snapshot {
    let snap = snapshot(
        plan(blue_green_spec()),
        Some(deployment(3, "a")),
        three_old_pods(),
    );
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
    let mut target = deployment(3, "a");
    for a in &d.actions {
        if let Action::PatchWorkload { patch, .. } = a {
            target = crate::operator::workload::fixtures::patched(&target, patch);
        }
    }
    let mut next = with_status(snap, &d);
    next.target = Some(target);
    pin(&mut next);
    next
}

#[test]
fn a_removed_record_still_puts_the_service_selector_back() {
    let mut snap = begun();
    // Someone strips the operator's annotations from the target.
    snap.target = Some(deployment(3, "a"));
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Failed), "{:?}", d.status);
    assert_eq!(
        traffic_selector(&d.actions),
        Some(original()),
        "{:?}",
        d.actions
    );
}

#[test]
fn a_deleted_target_still_puts_the_service_selector_back() {
    let mut snap = begun();
    snap.target = None;
    snap.pods.clear();
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Failed), "{:?}", d.status);
    assert_eq!(
        traffic_selector(&d.actions),
        Some(original()),
        "{:?}",
        d.actions
    );
}

fn with_raw_record(raw: &str) -> Snapshot {
    let mut snap = begun();
    let target = snap.target.as_mut().unwrap();
    target
        .metadata_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(record::SAVED_ANNOTATION.to_string(), raw.to_string());
    snap
}

#[test]
fn a_record_that_cannot_be_read_is_said_and_the_service_put_back() {
    let snap = with_raw_record("{\"mode\": \"BlueGreen\", \"replicas\": ");
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Failed), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains(record::SAVED_ANNOTATION) && message.contains("cannot be read"),
        "{message}"
    );
    assert_eq!(
        traffic_selector(&d.actions),
        Some(original()),
        "{:?}",
        d.actions
    );
}

#[test]
fn a_record_of_a_newer_schema_is_not_acted_on() {
    let saved = Saved {
        mode: Some(Mode::BlueGreen),
        replicas: Some(3),
        selector: Some([("app".to_string(), "liferay".to_string())].into()),
        blue_hash: Some("old".into()),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&saved).unwrap();
    value["version"] = json!(99);
    let snap = with_raw_record(&value.to_string());
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Failed), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(message.contains("version 99"), "{message}");
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::CreateWorkload(_) | Action::ReplaceWorkload(_))),
        "{:?}",
        d.actions
    );
}

#[test]
fn the_record_carries_its_schema_version() {
    let mut target = deployment(1, "a");
    record::mark(&mut target, "p1", &Saved::default());
    let raw = &target.metadata().annotations.as_ref().unwrap()[record::SAVED_ANNOTATION];
    let value: serde_json::Value = serde_json::from_str(raw).unwrap();
    assert_eq!(value["version"], json!(1), "{raw}");
}

fn held_set() -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "liferay-old", "namespace": "portal",
                     "labels": {"cutover.dev/held-by": "p1"}},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "liferay", "pod-template-hash": "old"}},
                 "template": {"metadata": {"labels": {"app": "liferay", "pod-template-hash": "old"}},
                              "spec": {"containers": [{"name": "liferay", "image": "a"}]}}}
    }))
    .unwrap()
}

#[test]
fn a_deleted_target_still_lets_go_of_the_replica_sets_it_held() {
    let mut snap = snapshot(plan(base_spec()), None, Vec::new());
    snap.plan.status = Some(MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        ..Default::default()
    });
    snap.handover_sets = vec![held_set()];
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Failed), "{:?}", d.status);
    let patch = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchReplicaSet { name, patch } if name == "liferay-old" => Some(patch),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the held set is released: {:?}", d.actions));
    assert_eq!(
        patch["metadata"]["labels"],
        json!({"app": "liferay", "pod-template-hash": "old", "cutover.dev/held-by": null})
    );
}
