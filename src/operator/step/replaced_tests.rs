//! Which pods count as replaced, step by step on hand-made snapshots: a rollout's new pods are
//! those of the ReplicaSet that carries the template the plan wrote (never the newest one by
//! revision, which is still the old one until the controller makes the new set), and a plain
//! restart's old pods are those it recorded by UID (never those created before the
//! operator's own clock said it started).

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::tests::{
    base_spec, deployment, events, pod, replica_set, rolling_in_progress, run, three_old_pods,
};
use crate::api::Phase;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::fixtures;

/// A rollout whose template was just written: the target's controller has seen it (its
/// generation moved on) but has not made the new template's ReplicaSet yet, so the old set,
/// with every pod, is still the newest one.
fn just_written(old_pods: Vec<Pod>, spec: serde_json::Value) -> Snapshot {
    let mut snap = rolling_in_progress(vec![], old_pods, false, spec);
    snap.replica_sets = vec![replica_set(&deployment(3, "old"), "old", 1)];
    let target = snap.target.take().unwrap();
    snap.target = Some(fixtures::patched(
        &target,
        &json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}}),
    ));
    snap
}

#[test]
fn before_the_new_replica_set_appears_no_old_pod_counts_as_replaced() {
    let d = run(&just_written(three_old_pods(), base_spec()), 5);
    assert_eq!(d.status.progress.as_ref().unwrap().text, "0/3");
    assert!(
        !events(&d).contains(&"PodReplaced".to_string()),
        "{:?}",
        events(&d)
    );
    assert_eq!(d.status.outcome, None);
    assert_eq!(d.status.phase, Some(Phase::Progressing));
}

#[test]
fn an_old_pod_that_is_not_ready_is_no_late_replacement() {
    // One old pod has not been Ready for longer than the timeout: it is not a replacement, so
    // it says nothing about the new template, and the rollout goes on.
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 60});
    let mut old = three_old_pods();
    old[2] = pod("liferay-old-2", "old", -100, None);
    let d = run(&just_written(old, spec), 5);
    assert_eq!(d.status.outcome, None, "{:?}", d.status.message);
    assert_ne!(d.status.step.as_deref(), Some("RollingBack"));
    assert_eq!(d.status.progress.as_ref().unwrap().text, "0/3");
}
