//! A rollback that stalls too (two faults in a row): the pods the target's original template
//! brings back are not Ready in time either. The plan ends Failed with Stalled, keeps the
//! pods that serve (a Deployment is left paused as it stands: its own strategy, given back,
//! could stop them before any pod of the original template is Ready) and says what it left
//! and what a person must do.

use k8s_openapi::api::apps::v1::DeploymentStrategy;
use serde_json::json;

use super::tests::{
    base_spec, deployment, plan, pod, replica_set, run, snapshot, stalled, with_status,
};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::fixtures;
use crate::operator::workload::saved::{self as record, Direction, Mode, Saved};

const REASON: &str = "check pod-ok (afterEachPod) failed on pod liferay-new-1";

/// Going back: the target has its original template again; one pod of it (made at 10) is
/// not Ready, one old pod and one replaced pod serve.
fn rolling_back(own: DeploymentStrategy) -> Snapshot {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 60});
    let mut target = fixtures::patched(
        &deployment(3, "old"),
        &json!({"status": {"updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}}),
    );
    let saved = Saved {
        mode: Some(Mode::Rollout),
        direction: Direction::Back,
        reason: Some(REASON.into()),
        template: deployment(3, "old").template().cloned(),
        strategy: Some(own),
        min_ready_seconds: Some(0),
        paused: Some(false),
        ..Default::default()
    };
    record::mark(&mut target, "p1", &saved);
    let pods = vec![
        pod("liferay-old-0", "old", -100, Some(-90)),
        pod("liferay-old-9", "old", 10, None),
        pod("liferay-new-0", "new", 5, Some(6)),
    ];
    let mut snap = snapshot(plan(spec), Some(target), pods);
    snap.replica_sets = vec![
        replica_set(&deployment(3, "old"), "old", 3),
        replica_set(&deployment(3, "new"), "new", 2),
    ];
    snap.plan.status = Some(crate::api::MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        step: Some("RollingBack".into()),
        ..Default::default()
    });
    snap
}

fn recreate() -> DeploymentStrategy {
    serde_json::from_value(json!({"type": "Recreate"})).unwrap()
}

#[test]
fn a_stalled_rollback_leaves_the_deployment_paused_as_it_stands_and_says_how_to_finish() {
    let snap = rolling_back(recreate());
    // Not late yet: it waits for the pod of the original template.
    let d = run(&snap, 30);
    assert_eq!(d.status.step.as_deref(), Some("RollingBack"));
    assert_eq!(d.status.outcome, None);

    let d = run(&snap, 71);
    assert_eq!(d.status.outcome, Some(Phase::Failed));
    let said = d.status.message.clone().unwrap_or_default();
    for words in [
        REASON,
        "the rollback stalled too: pod liferay-old-9 was not Ready within 60s",
        "deployment liferay is left paused as it stands, on the original template, with 2/3 pods Ready serving (liferay-old-0, liferay-new-0)",
        "to finish by hand: find why the pods of the original template do not get Ready, then set its strategy back to Recreate and unpause it (spec.paused: false); its controller then finishes the rollback",
    ] {
        assert!(said.contains(words), "{words:?} not in {said:?}");
    }
    // One write: the record halted, the Deployment paused; nothing deleted, no selector.
    let patches: Vec<&serde_json::Value> = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PatchWorkload { patch, .. } => Some(patch),
            _ => None,
        })
        .collect();
    let [patch] = patches.as_slice() else {
        panic!("one patch of the target: {:?}", d.actions)
    };
    assert_eq!(patch["spec"]["paused"], true);
    assert!(patch["spec"].get("strategy").is_none(), "{patch}");
    let saved: Saved = serde_json::from_str(
        patch["metadata"]["annotations"][record::SAVED_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(saved.halted);
    assert!(
        !d.actions.iter().any(|a| matches!(
            a,
            Action::DeletePod { .. } | Action::EvictPod { .. } | Action::SetServiceSelector { .. }
        )),
        "{:?}",
        d.actions
    );

    // The cleanup that follows keeps the halt: the annotations go, the spec stays paused.
    let mut next = with_status(snap, &d);
    let mut target = next.target.clone().unwrap();
    record::mark(&mut target, "p1", &saved);
    next.target = Some(target);
    let d = run(&next, 72);
    for a in &d.actions {
        if let Action::PatchWorkload { patch, .. } = a {
            assert!(patch.get("spec").is_none(), "the halt is kept: {patch}");
        }
    }
    assert_eq!(d.status.phase, Some(Phase::Failed));
    assert!(stalled(&d), "{:?}", d.status.conditions);
}

#[test]
fn a_stalled_rollback_names_a_rolling_strategy_as_it_was() {
    let own: DeploymentStrategy = serde_json::from_value(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}),
    )
    .unwrap();
    let d = run(&rolling_back(own), 71);
    let said = d.status.message.clone().unwrap_or_default();
    assert!(
        said.contains("set its strategy back to RollingUpdate (maxSurge 25%, maxUnavailable 1)"),
        "{said}"
    );
}
