//! The plan state machine, step by step, on hand-made snapshots: no server involved.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::{Decision, FINALIZER, step};
use crate::api::{MaintenancePlan, Phase, Verdict};
use crate::operator::action::Action;
use crate::operator::policy::Policy;
use crate::operator::snapshot::{Peer, Snapshot};
use crate::operator::workload::saved::{self as record, Direction, Mode, Saved};
use crate::operator::workload::{Kind, Workload, fixtures};
use crate::rules::Catalog;

pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

pub(super) fn plan(spec: serde_json::Value) -> MaintenancePlan {
    let mut p: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": "p1", "namespace": "portal", "uid": "u1", "generation": 1,
                     "creationTimestamp": "2027-01-15T08:00:00Z", "finalizers": [FINALIZER]},
        "spec": spec
    }))
    .unwrap();
    p.status = None;
    p
}

pub(super) fn base_spec() -> serde_json::Value {
    json!({"target": {"name": "liferay"}, "service": "liferay"})
}

pub(super) fn deployment(replicas: i32, image: &str) -> Workload {
    fixtures::deployment(json!({
        "metadata": {"name": "liferay", "namespace": "portal", "generation": 1, "resourceVersion": "10"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "liferay"}},
                 "template": {"metadata": {"labels": {"app": "liferay"}},
                              "spec": {"containers": [{"name": "liferay", "image": image}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                   "readyReplicas": replicas, "availableReplicas": replicas}
    }))
}

pub(super) fn service() -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": "liferay", "namespace": "portal"},
        "spec": {"selector": {"app": "liferay"}}}),
    )
    .unwrap()
}

pub(super) fn pod(name: &str, hash: &str, created: i64, ready_at: Option<i64>) -> Pod {
    let mut conditions = vec![];
    if let Some(t) = ready_at {
        conditions.push(
            json!({"type": "Ready", "status": "True", "lastTransitionTime": at(t).to_string()}),
        );
    } else {
        conditions.push(json!({"type": "Ready", "status": "False"}));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "portal", "labels": {"app": "liferay", "pod-template-hash": hash},
                     "uid": format!("{name}@{created}"), "creationTimestamp": at(created).to_string()},
        "status": {"conditions": conditions}
    }))
    .unwrap()
}

/// The ReplicaSet `liferay-<hash>` the Deployment's controller made for `of`'s template, at
/// `revision`.
pub(super) fn replica_set(of: &Workload, hash: &str, revision: i32) -> ReplicaSet {
    let mut template = fixtures::json(of)["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    serde_json::from_value(json!({"metadata": {"name": format!("liferay-{hash}"),
        "labels": {"pod-template-hash": hash},
        "annotations": {"deployment.kubernetes.io/revision": revision.to_string()}},
        "spec": {"selector": {"matchLabels": {"app": "liferay", "pod-template-hash": hash}},
                 "template": template}}))
    .unwrap()
}

pub(super) fn snapshot(
    plan: MaintenancePlan,
    target: Option<Workload>,
    pods: Vec<Pod>,
) -> Snapshot {
    Snapshot {
        plan,
        peers: vec![],
        replica_sets: target
            .iter()
            .filter(|t| t.kind() == Kind::Deployment)
            .map(|t| replica_set(t, "old", 1))
            .collect(),
        target,
        handover_sets: vec![],
        running_template: None,
        pods,
        service: Some(service()),
        endpoint_slices: vec![],
        green: None,
        preview: None,
        peer_services: Vec::new(),
        twins: Vec::new(),
        service_names: vec!["liferay".into()],
        jobs: Vec::new(),
        probes: Vec::new(),
    }
}

/// A declared change that says what a new image brings and that old and new pods can run
/// side by side: with it, an image the rules cannot read does not block RollingRestart.
pub(super) fn rolling_safe_build() -> serde_json::Value {
    json!([{"type": "Custom",
            "custom": {"description": "a new build of the portal", "rollingRestartSafe": true}}])
}

pub(super) fn run(snap: &Snapshot, now: i64) -> Decision {
    step(snap, Catalog::builtin(), &Policy::default(), at(now))
}

/// Feeds a decision's status back into the plan, as the operator's status write does.
pub(super) fn with_status(mut snap: Snapshot, d: &Decision) -> Snapshot {
    snap.plan.status = Some(d.status.clone());
    snap
}

/// The decision sets the plan's `Stalled` condition.
pub(super) fn stalled(d: &Decision) -> bool {
    d.status
        .conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True")
}

pub(super) fn events(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn three_old_pods() -> Vec<Pod> {
    (0..3)
        .map(|i| pod(&format!("liferay-old-{i}"), "old", -100 + i, Some(-90)))
        .collect()
}

#[test]
fn a_new_plan_gets_the_finalizer_and_starts_a_paced_rollout() {
    let mut spec = base_spec();
    spec["changes"] = rolling_safe_build();
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec["rollingRestart"] = json!({"minReadySeconds": 5});
    let mut p = plan(spec);
    p.metadata.finalizers = None;
    let d = run(
        &snapshot(
            p,
            Some(deployment(3, "liferay/dxp:de-28")),
            three_old_pods(),
        ),
        0,
    );
    assert_eq!(d.actions[0], Action::AddFinalizer);
    let Some(Action::ReplaceWorkload(target)) = d
        .actions
        .iter()
        .find(|a| matches!(a, Action::ReplaceWorkload(_)))
    else {
        panic!("expected the target to be replaced: {:?}", d.actions);
    };
    let spec = &fixtures::json(target)["spec"];
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["image"],
        "liferay/dxp:de-32"
    );
    assert_eq!(
        spec["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
    assert_eq!(spec["minReadySeconds"], 5);
    let saved = record::saved_for(target, "p1").expect("the target is marked with the plan");
    assert_eq!(saved.mode, Some(Mode::Rollout));
    assert_eq!(
        saved.template.unwrap().spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("liferay/dxp:de-28"),
        "the original template is kept for a rollback"
    );
    assert_eq!(d.status.phase, Some(Phase::Progressing));
    assert_eq!(d.status.strategy, Some(Verdict::RollingRestart));
    assert_eq!(d.status.progress.as_ref().unwrap().text, "0/3");
    assert!(events(&d).contains(&"Progressing".to_string()));
}

#[test]
fn a_rejected_plan_touches_nothing_and_says_how_to_proceed() {
    let mut spec = base_spec();
    spec["changes"] = json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-32"}}]);
    let d = run(
        &snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods()),
        0,
    );
    assert!(
        d.actions.iter().all(|a| matches!(a, Action::Event { .. })),
        "{:?}",
        d.actions
    );
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert_eq!(d.status.findings.len(), 1);
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("allowDowntime: true")
    );
    let stalled = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    // Rejected is settled until the spec changes.
    let again = run(
        &with_status(
            snapshot(plan(base_spec()), Some(deployment(3, "a")), vec![]),
            &d,
        ),
        1,
    );
    assert_eq!(again.status.phase, Some(Phase::Rejected));
    assert!(again.actions.is_empty());
}

#[test]
fn invalid_plans_are_rejected_naming_the_field() {
    let mut spec = base_spec();
    spec["changes"] =
        json!([{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "eleven"}}]);
    let d = run(&snapshot(plan(spec), Some(deployment(3, "a")), vec![]), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("spec.changes[0].javaVersion.to")
    );
    let evaluated = d
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Evaluated")
        .unwrap();
    assert_eq!(
        (evaluated.status.as_str(), evaluated.reason.as_str()),
        ("False", "InvalidPlan")
    );
}

#[test]
fn preflight_problems_reject_with_a_clear_message() {
    let mut wrong_selector = service();
    wrong_selector.spec.as_mut().unwrap().selector =
        Some([("app".to_string(), "other".to_string())].into());
    let mut snap = snapshot(plan(base_spec()), Some(deployment(3, "a")), vec![]);
    snap.service = Some(wrong_selector);
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("selects app=other"),
        "{:?}",
        d.status.message
    );

    let d = run(&snapshot(plan(base_spec()), None, vec![]), 0);
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("deployment liferay not found")
    );
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::ReplaceWorkload(_) | Action::CreatePod(_)))
    );
}

#[test]
fn a_second_plan_waits_naming_the_first() {
    let mut snap = snapshot(
        plan(base_spec()),
        Some(deployment(3, "a")),
        three_old_pods(),
    );
    snap.peers = vec![Peer {
        name: "p0".into(),
        phase: Some(Phase::Progressing),
        created: at(10),
        deleting: false,
    }];
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Pending));
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("waiting for plan p0")
    );
    // A finished peer holds nothing.
    snap.peers[0].phase = Some(Phase::Succeeded);
    assert_eq!(run(&snap, 0).status.phase, Some(Phase::Progressing));
}

pub(super) fn rolling_in_progress(
    new_pods: Vec<Pod>,
    old_pods: Vec<Pod>,
    complete: bool,
    spec: serde_json::Value,
) -> Snapshot {
    let mut target = deployment(3, "new");
    let saved = Saved {
        mode: Some(Mode::Rollout),
        started_at: Some(at(0)),
        template: deployment(3, "old").template().cloned(),
        ..Default::default()
    };
    record::mark(&mut target, "p1", &saved);
    if !complete {
        target = fixtures::patched(
            &target,
            &json!({"status": {"updatedReplicas": new_pods.len(),
                               "replicas": new_pods.len() + old_pods.len()}}),
        );
    }
    let mut snap = snapshot(plan(spec), Some(target), [new_pods, old_pods].concat());
    snap.replica_sets = vec![
        replica_set(&deployment(3, "old"), "old", 1),
        replica_set(&deployment(3, "new"), "new", 2),
    ];
    snap.plan.status = Some(crate::api::MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        ..Default::default()
    });
    snap
}

#[test]
fn a_late_replacement_rolls_back_to_the_saved_template() {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 60});
    let snap = rolling_in_progress(
        vec![pod("liferay-new-0", "new", 10, None)],
        three_old_pods(),
        false,
        spec,
    );
    // Not late yet: wait, and come back at the deadline.
    let d = run(&snap, 30);
    assert_eq!(d.status.step.as_deref(), Some("Rolling"));
    assert!(
        d.requeue.unwrap().as_secs() >= 39 && d.requeue.unwrap().as_secs() <= 41,
        "{:?}",
        d.requeue
    );
    // Late: go back.
    let d = run(&snap, 71);
    let Some(Action::ReplaceWorkload(target)) = d.actions.first() else {
        panic!("{:?}", d.actions)
    };
    let image = target.template().unwrap().spec.as_ref().unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("old"));
    let saved = record::saved_for(target, "p1").unwrap();
    assert_eq!(saved.direction, Direction::Back);
    assert!(
        saved
            .reason
            .unwrap()
            .contains("liferay-new-0 was not Ready within 60s")
    );
    assert_eq!(d.status.step.as_deref(), Some("RollingBack"));
}

#[test]
fn without_rollback_a_late_replacement_halts_with_the_deployment_paused() {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 60, "rollbackOnFailure": false});
    let snap = rolling_in_progress(
        vec![pod("liferay-new-0", "new", 10, None)],
        three_old_pods(),
        false,
        spec,
    );
    let d = run(&snap, 71);
    let Some(Action::PatchWorkload { patch, .. }) = d.actions.first() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(patch["spec"]["paused"], true);
    assert_eq!(d.status.outcome, Some(Phase::Failed));
    // Cleanup keeps the halt: only the annotations go.
    let mut snap = with_status(snap, &d);
    let mut target = snap.target.clone().unwrap();
    let halted = Saved {
        halted: true,
        ..record::saved_for(&target, "p1").unwrap()
    };
    record::mark(&mut target, "p1", &halted);
    snap.target = Some(target);
    let d = run(&snap, 72);
    let Some(Action::PatchWorkload { patch, .. }) = d.actions.first() else {
        panic!("{:?}", d.actions)
    };
    assert!(patch.get("spec").is_none(), "{patch}");
    assert_eq!(d.status.phase, Some(Phase::Failed));
    assert!(stalled(&d), "{:?}", d.status.conditions);
}

#[test]
fn a_complete_rollout_finishes_then_restores_the_target() {
    let new_pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("liferay-new-{i}"), "new", 10 + i, Some(20 + i)))
        .collect();
    let snap = rolling_in_progress(new_pods, vec![], true, base_spec());
    let d = run(&snap, 60);
    assert_eq!(d.status.outcome, Some(Phase::Succeeded));
    assert_eq!(
        d.status.phase,
        Some(Phase::Progressing),
        "not Succeeded before the cleanup"
    );
    assert_eq!(d.status.progress.as_ref().unwrap().text, "3/3");
    let d = run(&with_status(snap, &d), 61);
    let Some(Action::PatchWorkload { patch, .. }) = d.actions.first() else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(
        patch["metadata"]["annotations"][record::PLAN_ANNOTATION],
        serde_json::Value::Null
    );
    assert_eq!(patch["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d.status.phase, Some(Phase::Succeeded));
    assert!(
        d.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert!(events(&d).contains(&"Succeeded".to_string()));
}

#[test]
fn min_ready_seconds_holds_the_rollout_and_requeues_when_it_ends() {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"minReadySeconds": 10});
    let snap = rolling_in_progress(
        vec![pod("liferay-new-0", "new", 10, Some(20))],
        three_old_pods(),
        false,
        spec,
    );
    let d = run(&snap, 25);
    assert_eq!(d.status.progress.as_ref().unwrap().text, "0/3");
    assert!(
        d.requeue.unwrap().as_millis() >= 5000 && d.requeue.unwrap().as_millis() < 5100,
        "{:?}",
        d.requeue
    );
}

#[test]
fn deleting_a_running_plan_aborts_it_first() {
    let mut snap = rolling_in_progress(
        vec![pod("liferay-new-0", "new", 10, Some(12))],
        three_old_pods(),
        false,
        base_spec(),
    );
    snap.plan.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(20)));
    let d = run(&snap, 20);
    assert!(
        matches!(d.actions.first(), Some(Action::ReplaceWorkload(_))),
        "{:?}",
        d.actions
    );
    assert!(
        !d.actions.contains(&Action::RemoveFinalizer),
        "the finalizer stays until the rollback is done"
    );
}

#[test]
fn a_plain_restart_surges_then_evicts_the_oldest_pod() {
    let d = run(
        &snapshot(
            plan(base_spec()),
            Some(deployment(1, "a")),
            vec![pod("liferay-old-0", "old", -100, Some(-90))],
        ),
        0,
    );
    let Some(Action::CreatePod(surge)) =
        d.actions.iter().find(|a| matches!(a, Action::CreatePod(_)))
    else {
        panic!("{:?}", d.actions);
    };
    let labels = surge.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("app").map(String::as_str), Some("liferay"));
    assert!(
        !labels.contains_key("pod-template-hash"),
        "the ReplicaSet must not adopt the surge pod"
    );
    assert_eq!(
        surge.metadata.owner_references.as_ref().unwrap()[0].kind,
        "MaintenancePlan"
    );

    // Surge ready: the old pod, which the plan recorded by UID, is evicted.
    let begun: Saved = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchWorkload { patch, .. } => serde_json::from_str(
                patch["metadata"]["annotations"][record::SAVED_ANNOTATION].as_str()?,
            )
            .ok(),
            _ => None,
        })
        .expect("the target is marked");
    assert_eq!(begun.restart_pods, ["liferay-old-0@-100"]);
    let mut target = deployment(1, "a");
    record::mark(&mut target, "p1", &begun);
    let mut surge_pod = (**surge).clone();
    surge_pod.status = pod("x", "x", 1, Some(2)).status;
    surge_pod.metadata.creation_timestamp = pod("x", "x", 1, None).metadata.creation_timestamp;
    let snap = with_status(
        snapshot(
            plan(base_spec()),
            Some(target.clone()),
            vec![
                pod("liferay-old-0", "old", -100, Some(-90)),
                surge_pod.clone(),
            ],
        ),
        &d,
    );
    let d2 = run(&snap, 3);
    assert_eq!(
        d2.actions.first(),
        Some(&Action::EvictPod {
            name: "liferay-old-0".into()
        })
    );
    assert!(events(&d2).contains(&"PodEvicted".to_string()));

    // The replacement is Ready and available: nothing old is left, so the plan finishes,
    // and the cleanup deletes the surge pod.
    let snap = with_status(
        snapshot(
            plan(base_spec()),
            Some(target),
            vec![pod("liferay-old-9", "old", 5, Some(6)), surge_pod],
        ),
        &d2,
    );
    let d3 = run(&snap, 7);
    assert_eq!(d3.status.outcome, Some(Phase::Succeeded));
    let d4 = run(&with_status(snap, &d3), 8);
    assert!(
        d4.actions
            .iter()
            .any(|a| matches!(a, Action::DeletePod { name } if name == "liferay-surge-p1")),
        "{:?}",
        d4.actions
    );
    assert_eq!(d4.status.phase, Some(Phase::Succeeded));
}

#[test]
fn a_full_restart_needs_downtime_and_scales_to_zero_first() {
    let mut spec = base_spec();
    spec["strategy"] = json!("FullRestart");
    let d = run(
        &snapshot(
            plan(spec.clone()),
            Some(deployment(3, "a")),
            three_old_pods(),
        ),
        0,
    );
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    spec["allowDowntime"] = json!(true);
    spec["update"] = json!({"image": "b"});
    let d = run(
        &snapshot(
            plan(spec.clone()),
            Some(deployment(3, "a")),
            three_old_pods(),
        ),
        0,
    );
    let Some(Action::PatchWorkload { patch, .. }) = d
        .actions
        .iter()
        .find(|a| matches!(a, Action::PatchWorkload { .. }))
    else {
        panic!("{:?}", d.actions)
    };
    assert_eq!(patch["spec"]["replicas"], 0);
    // All pods gone: the new template goes in with the original replica count.
    let mut target = deployment(0, "a");
    let saved: Saved = serde_json::from_str(
        patch["metadata"]["annotations"][record::SAVED_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    record::mark(&mut target, "p1", &saved);
    let d2 = run(
        &with_status(snapshot(plan(spec), Some(target), vec![]), &d),
        5,
    );
    let Some(Action::ReplaceWorkload(target)) = d2.actions.first() else {
        panic!("{:?}", d2.actions)
    };
    let tspec = &fixtures::json(target)["spec"];
    assert_eq!(tspec["replicas"], 3);
    assert_eq!(tspec["template"]["spec"]["containers"][0]["image"], "b");
}

#[test]
fn a_missing_preview_service_is_rejected_before_anything_is_touched() {
    let mut spec = base_spec();
    spec["blueGreen"] = json!({"previewService": "liferay-preview"});
    let d = run(&snapshot(plan(spec), Some(deployment(3, "a")), vec![]), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("preview service liferay-preview not found")
    );
    assert!(
        d.actions.iter().all(|a| matches!(a, Action::Event { .. })),
        "{:?}",
        d.actions
    );
}

#[test]
fn a_plan_waits_for_the_holder_even_when_the_service_is_pinned() {
    // Another plan's BlueGreen cutover pinned the Service to blue's hash.
    let mut pinned = service();
    pinned.spec.as_mut().unwrap().selector = Some(
        [
            ("app".to_string(), "liferay".to_string()),
            ("pod-template-hash".to_string(), "old".to_string()),
        ]
        .into(),
    );
    let mut target = deployment(3, "a");
    record::mark(
        &mut target,
        "p0",
        &Saved {
            mode: Some(Mode::BlueGreen),
            ..Default::default()
        },
    );
    let mut snap = snapshot(plan(base_spec()), Some(target), three_old_pods());
    snap.service = Some(pinned);
    snap.peers = vec![Peer {
        name: "p0".into(),
        phase: Some(Phase::Progressing),
        created: at(-10),
        deleting: false,
    }];
    let d = run(&snap, 0);
    assert_eq!(
        d.status.phase,
        Some(Phase::Pending),
        "{:?}",
        d.status.message
    );
    assert!(
        d.status
            .message
            .as_ref()
            .unwrap()
            .contains("waiting for plan p0")
    );
}

#[test]
fn a_lost_first_status_write_is_made_good_from_the_marks() {
    // The target is marked (the first step's actions happened) but the plan's status never
    // recorded the start: the next step still reports the strategy, findings and start time.
    let mut spec = base_spec();
    spec["changes"] = json!([{"type": "FixPack", "fixPack": {"from": "de-31", "to": "de-32"}}]);
    let mut snap = rolling_in_progress(vec![], three_old_pods(), false, spec);
    snap.plan.status = None;
    let d = run(&snap, 1);
    assert_eq!(d.status.phase, Some(Phase::Progressing));
    assert_eq!(d.status.strategy, Some(Verdict::RollingRestart));
    assert!(!d.status.findings.is_empty());
    assert_eq!(d.status.started_at.map(|t| t.0), Some(at(0)));
    assert!(
        d.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Evaluated" && c.status == "True")
    );
}

#[test]
fn green_only_settings_reach_green_and_never_the_target() {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec["blueGreen"] = json!({"greenOnly": {
        "env": [{"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}],
        "podTemplatePatch": {"metadata": {"annotations": {"green": "yes"}}}}});
    let d = run(
        &snapshot(
            plan(spec.clone()),
            Some(deployment(3, "a")),
            three_old_pods(),
        ),
        0,
    );
    let Some(Action::CreateWorkload(green)) = d
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreateWorkload(_)))
    else {
        panic!("expected green to be created: {:?}", d.actions);
    };
    let template = &fixtures::json(green)["spec"]["template"];
    assert_eq!(
        template["spec"]["containers"][0]["image"],
        "liferay/dxp:de-32"
    );
    assert_eq!(
        template["spec"]["containers"][0]["env"],
        json!([{"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}])
    );
    assert_eq!(template["metadata"]["annotations"]["green"], "yes");
    // The target gets the update only, once green serves.
    let saved: Saved = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchWorkload { patch, .. } => serde_json::from_str(
                patch["metadata"]["annotations"][record::SAVED_ANNOTATION].as_str()?,
            )
            .ok(),
            _ => None,
        })
        .expect("the target is marked");
    assert_eq!(saved.mode, Some(Mode::BlueGreen));
    // A green-only env for a container that does not exist is rejected up front.
    spec["update"] = json!({"container": "nope"});
    let d = run(
        &snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods()),
        0,
    );
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert!(
        d.status.message.as_deref().unwrap().contains(
            "spec.blueGreen.greenOnly.container: deployment liferay has no container \"nope\""
        ),
        "{:?}",
        d.status.message
    );
}

#[test]
fn a_target_scaled_to_zero_is_rejected_touching_nothing() {
    for strategy in ["Auto", "BlueGreen", "RollingRestart"] {
        let mut spec = base_spec();
        spec["strategy"] = json!(strategy);
        let d = run(&snapshot(plan(spec), Some(deployment(0, "a")), vec![]), 0);
        assert_eq!(d.status.phase, Some(Phase::Rejected), "{strategy}");
        let message = d.status.message.as_deref().unwrap();
        assert!(
            message.contains("deployment liferay has spec.replicas 0")
                && message.contains("nothing was touched"),
            "{strategy}: {message}"
        );
        assert!(
            d.actions
                .iter()
                .all(|a| matches!(a, Action::Event { .. } | Action::AddFinalizer)),
            "{strategy}: {:?}",
            d.actions
        );
    }
}
