//! Changes read from the template in the cluster (DESIGN section 2b): the running template is
//! the target's live one (a paused Deployment's running ReplicaSet in the GitOps flow), the
//! new one the update applied or the pending template.

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::{Value, json};

use super::tests::{base_spec, deployment, plan, pod, run, snapshot};
use crate::api::{ChangeSource, ChangeType, Phase, Verdict};
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::fixtures;

const DE_28: &str = "liferay/dxp:7.0.10-de-28";
const DE_32: &str = "liferay/dxp:7.0.10-de-32";

fn three_pods() -> Vec<k8s_openapi::api::core::v1::Pod> {
    (0..3)
        .map(|i| pod(&format!("liferay-old-{i}"), "old", -100 + i, Some(-90)))
        .collect()
}

/// A plan that bumps the image and declares nothing, on a Deployment running de-28.
fn image_only(extra: Value) -> Snapshot {
    let mut spec = base_spec();
    spec["update"] = json!({"image": DE_32});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    snapshot(plan(spec), Some(deployment(3, DE_28)), three_pods())
}

fn touches_the_cluster(a: &Action) -> bool {
    !matches!(a, Action::Event { .. } | Action::AddFinalizer)
}

#[test]
fn an_undeclared_fix_pack_in_the_image_tag_is_read_and_rejects_the_plan_touching_nothing() {
    let d = run(&image_only(json!({})), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert_eq!(d.status.strategy, Some(Verdict::Rejected));
    let [change] = d.status.changes.as_slice() else {
        panic!("one inferred change expected: {:?}", d.status.changes);
    };
    assert_eq!(change.source, ChangeSource::Inferred);
    assert_eq!(change.change.kind, ChangeType::FixPack);
    let fix_pack = change.change.fix_pack.as_ref().unwrap();
    assert_eq!(
        (fix_pack.from.as_str(), fix_pack.to.as_str()),
        ("de-28-7010", "de-32-7010")
    );
    assert!(
        change.inferred_from.as_deref().unwrap().contains(DE_28),
        "{change:?}"
    );
    assert!(
        d.status
            .findings
            .iter()
            .any(|f| f.change == Some(0) && f.message.contains("de-30")),
        "a finding on the inferred change names the non-revertible fix pack crossed: {:?}",
        d.status.findings
    );
    assert!(
        !d.actions.iter().any(touches_the_cluster),
        "{:?}",
        d.actions
    );
}

#[test]
fn the_same_plan_with_isolated_data_goes_blue_green() {
    let d = run(
        &image_only(json!({"blueGreen": {"dataIsolation": "Isolated"}})),
        0,
    );
    assert_eq!(d.status.strategy, Some(Verdict::BlueGreen));
    assert_eq!(d.status.phase, Some(Phase::Progressing));
    assert_eq!(d.status.changes.len(), 1);
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::CreateWorkload(_)))
    );
}

#[test]
fn with_infer_changes_off_only_the_declared_changes_count() {
    let d = run(&image_only(json!({"inferChanges": false})), 0);
    assert_eq!(d.status.strategy, Some(Verdict::RollingRestart));
    assert!(d.status.changes.is_empty(), "{:?}", d.status.changes);
}

#[test]
fn a_declared_fix_pack_the_image_contradicts_is_rejected_naming_both() {
    let d = run(
        &image_only(json!({"changes": [
            {"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]})),
        0,
    );
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert_eq!(d.status.changes[0].source, ChangeSource::Declared);
    assert_eq!(d.status.changes[1].source, ChangeSource::Inferred);
    let message = d.status.message.clone().unwrap_or_default();
    let findings: Vec<&str> = d
        .status
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        findings
            .iter()
            .any(|m| m.contains("de-29") && m.contains("de-32")),
        "{message}: {findings:?}"
    );
}

#[test]
fn an_image_the_rules_cannot_read_blocks_a_rolling_restart() {
    let mut spec = base_spec();
    spec["update"] = json!({"image": "registry.example/portal:2"});
    let snap = snapshot(
        plan(spec),
        Some(deployment(3, "registry.example/portal:1")),
        three_pods(),
    );
    let d = run(&snap, 0);
    assert_eq!(d.status.strategy, Some(Verdict::BlueGreen));
    assert!(
        d.status
            .findings
            .iter()
            .any(|f| f.blocks(crate::api::Technique::RollingRestart)),
        "{:?}",
        d.status.findings
    );
}

/// The GitOps flow: the paused Deployment carries Git's de-32 template, its running
/// ReplicaSet still de-28.
fn pending_de_32() -> Snapshot {
    let target = fixtures::deployment(json!({
        "metadata": {"name": "liferay", "namespace": "portal", "generation": 2, "resourceVersion": "10"},
        "spec": {"replicas": 3, "paused": true, "selector": {"matchLabels": {"app": "liferay"}},
                 "template": {"metadata": {"labels": {"app": "liferay"}},
                              "spec": {"containers": [{"name": "liferay", "image": DE_32}]}}},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 0,
                   "readyReplicas": 3, "availableReplicas": 3}
    }));
    let running: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "liferay-old", "namespace": "portal",
                     "labels": {"app": "liferay", "pod-template-hash": "old"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "liferay", "pod-template-hash": "old"}},
                 "template": {"metadata": {"labels": {"app": "liferay", "pod-template-hash": "old"}},
                              "spec": {"containers": [{"name": "liferay", "image": DE_28}]}}}
    }))
    .unwrap();
    let mut snap = snapshot(plan(base_spec()), Some(target), three_pods());
    snap.replica_sets = vec![running];
    snap
}

#[test]
fn a_pending_template_is_read_against_the_running_replica_set() {
    let d = run(&pending_de_32(), 0);
    assert_eq!(
        d.status.phase,
        Some(Phase::Rejected),
        "{:?}",
        d.status.message
    );
    let fix_pack = d.status.changes[0].change.fix_pack.as_ref().unwrap();
    assert_eq!(fix_pack.to, "de-32-7010");
    assert!(!d.actions.iter().any(touches_the_cluster));

    let mut isolated = pending_de_32();
    isolated.plan.spec.blue_green.data_isolation = crate::api::DataIsolation::Isolated;
    let d = run(&isolated, 0);
    assert_eq!(d.status.strategy, Some(Verdict::BlueGreen));
    assert_eq!(d.status.flow, Some(crate::api::Flow::PendingTemplate));
}
