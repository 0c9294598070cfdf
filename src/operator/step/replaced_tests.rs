//! Which pods count as replaced, step by step on hand-made snapshots: a rollout's new pods are
//! those of the ReplicaSet that carries the template the plan wrote (never the newest one by
//! revision, which is still the old one until the controller makes the new set), and a plain
//! restart's old pods are those it recorded by UID (never those created before the
//! operator's own clock said it started).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{Span, Timestamp};
use serde_json::json;

use super::tests::{
    at, base_spec, deployment, events, plan, pod, replica_set, rolling_in_progress, run, snapshot,
    three_old_pods,
};
use crate::api::{MaintenancePlanStatus, Phase};
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::fixtures;
use crate::operator::workload::saved::{self as record, Mode, Saved};

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

/// The operator's clock said the plain restart began at `started`, with the pods of `uids`.
fn restarting(started: Timestamp, uids: &[&str], pods: Vec<Pod>) -> Snapshot {
    let mut target = deployment(1, "a");
    record::mark(
        &mut target,
        "p1",
        &Saved {
            mode: Some(Mode::Restart),
            started_at: Some(started),
            restart_pods: uids.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        },
    );
    let mut surge = pod("liferay-surge-p1", "", 1, Some(2));
    let labels = surge.metadata.labels.as_mut().unwrap();
    labels.remove("pod-template-hash");
    labels.insert("cutover.dev/role".into(), "surge".into());
    labels.insert("cutover.dev/plan".into(), "p1".into());
    let mut snap = snapshot(
        plan(base_spec()),
        Some(target),
        [vec![surge], pods].concat(),
    );
    snap.plan.status = Some(MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        ..Default::default()
    });
    snap
}

fn with_uid(mut pod: Pod, uid: &str) -> Pod {
    pod.metadata.uid = Some(uid.into());
    pod
}

#[test]
fn a_pod_created_in_the_second_the_restart_began_is_not_restarted_again() {
    // The plan began at 10.5s by its own clock, when no pod of the target was running (the
    // last ones were on their way out). The server stamps a pod's creation in whole seconds,
    // so the new pod made at 10.7s reads 10s: earlier than the start, by the wrong clock.
    let started = at(10).checked_add(Span::new().milliseconds(500)).unwrap();
    let fresh = with_uid(pod("liferay-new-0", "old", 10, Some(12)), "u-new");
    let d = run(&restarting(started, &[], vec![fresh]), 20);
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::EvictPod { .. })),
        "{:?}",
        d.actions
    );
    assert_eq!(
        d.status.outcome,
        Some(Phase::Succeeded),
        "{:?}",
        d.status.message
    );
}

#[test]
fn a_restart_evicts_the_pods_it_began_with_whatever_their_timestamps() {
    // A pod the plan began with is old even when its creation reads later than the start (the
    // server's clock runs ahead of the operator's); a pod it did not begin with is not.
    let started = at(10);
    let ahead = with_uid(pod("liferay-old-0", "old", 15, Some(16)), "u-old");
    let fresh = with_uid(pod("liferay-new-0", "old", 5, Some(6)), "u-new");
    let d = run(&restarting(started, &["u-old"], vec![fresh, ahead]), 20);
    assert_eq!(
        d.actions.first(),
        Some(&Action::EvictPod {
            name: "liferay-old-0".into()
        }),
        "{:?}",
        d.actions
    );
}
