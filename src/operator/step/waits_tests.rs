//! Every wait of a plan ends (invariant 7): it looks again on its own, never sooner than the
//! floor and less often the longer it lasts, and when its deadline passes the plan fails
//! safely. Step by step on hand-made snapshots, one wait at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::Decision;
use super::tests::{
    at, base_spec, deployment, events, plan, pod, rolling_in_progress, run, snapshot, stalled,
    three_old_pods, with_status,
};
use crate::api::{MaintenancePlanStatus, Phase};
use crate::operator::action::Action;
use crate::operator::pods;
use crate::operator::snapshot::Snapshot;
use crate::operator::time::{self, CEILING, FLOOR};
use crate::operator::workload::saved::{self as record, Direction, Mode, Saved};
use crate::operator::workload::{Workload, fixtures};

/// The plan's status: in `step` since `since`.
fn in_step(step: &str, since: i64) -> Option<MaintenancePlanStatus> {
    Some(MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        step: Some(step.into()),
        step_started_at: Some(Time(at(since))),
        ..Default::default()
    })
}

/// The record a step wrote on the target with its first `PatchWorkload`.
fn saved_by(d: &Decision) -> Saved {
    d.actions
        .iter()
        .find_map(|a| match a {
            Action::PatchWorkload { patch, .. } => serde_json::from_str(
                patch["metadata"]["annotations"][record::SAVED_ANNOTATION].as_str()?,
            )
            .ok(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no record written: {:?}", d.actions))
}

fn message(d: &Decision) -> &str {
    d.status.message.as_deref().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// BlueGreen after the switch

fn blue_green_spec() -> Value {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "new"});
    spec["blueGreen"] = json!({"scaleDownDelaySeconds": 30, "readyTimeoutSeconds": 600});
    spec
}

fn green_pod(i: usize, ready: bool) -> Pod {
    let mut p = pod(
        &format!("liferay-green-{i}"),
        "green",
        -50,
        ready.then_some(-40),
    );
    let labels = p.metadata.labels.as_mut().unwrap();
    labels.insert("cutover.dev/copy".into(), "green".into());
    labels.insert("cutover.dev/plan".into(), "p1".into());
    p
}

fn green() -> Workload {
    fixtures::deployment(json!({
        "metadata": {"name": "liferay-green", "namespace": "portal", "generation": 1,
                     "labels": {"cutover.dev/copy": "green", "cutover.dev/plan": "p1"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "liferay", "cutover.dev/copy": "green"}},
                 "template": {"metadata": {"labels": {"app": "liferay"}},
                              "spec": {"containers": [{"name": "liferay", "image": "new"}]}}},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 3, "availableReplicas": 3}
    }))
}

/// The Service's EndpointSlice listing `pods` with whether each is ready.
fn slice(pods: &[(&str, bool)]) -> EndpointSlice {
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(name, ready)| {
            json!({"addresses": ["127.0.0.9"], "conditions": {"ready": ready},
                   "targetRef": {"kind": "Pod", "name": name}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "liferay-abc", "namespace": "portal",
                     "labels": {"kubernetes.io/service-name": "liferay"}},
        "addressType": "IPv4", "endpoints": endpoints
    }))
    .unwrap()
}

fn serving(hash: &str) -> Service {
    serde_json::from_value(
        json!({"metadata": {"name": "liferay", "namespace": "portal"},
        "spec": {"selector": {"app": "liferay", "pod-template-hash": hash}}}),
    )
    .unwrap()
}

fn switched_record() -> Saved {
    Saved {
        mode: Some(Mode::BlueGreen),
        started_at: Some(at(-100)),
        replicas: Some(3),
        template: deployment(3, "old").template().cloned(),
        selector: Some(BTreeMap::from([("app".into(), "liferay".into())])),
        blue_hash: Some("old".into()),
        switched_at: Some(at(0)),
        ..Default::default()
    }
}

/// A BlueGreen past the switch: `target` marked with `saved`, blue's and green's pods, the
/// Service selecting `selecting`, its endpoints `listed`.
fn blue_green(
    mut target: Workload,
    saved: &Saved,
    green_ready: bool,
    selecting: &str,
    listed: &[(&str, bool)],
    status: Option<MaintenancePlanStatus>,
) -> Snapshot {
    record::mark(&mut target, "p1", saved);
    let pods = three_old_pods()
        .into_iter()
        .chain((0..3).map(|i| green_pod(i, green_ready)))
        .collect();
    let mut snap = snapshot(plan(blue_green_spec()), Some(target), pods);
    snap.green = Some(green());
    snap.service = Some(serving(selecting));
    snap.endpoint_slices = vec![slice(listed)];
    snap.plan.status = status;
    snap
}

const GREEN_UNREADY: [(&str, bool); 3] = [
    ("liferay-green-0", false),
    ("liferay-green-1", false),
    ("liferay-green-2", false),
];

#[test]
fn green_that_is_not_ready_in_time_is_removed_and_blue_serves_on_untouched() {
    // Before the switch: the Service pinned to blue, green started at 0 and never Ready.
    let saved = Saved {
        switched_at: None,
        started_at: Some(at(0)),
        ..switched_record()
    };
    let listed = [
        ("liferay-old-0", true),
        ("liferay-old-1", true),
        ("liferay-old-2", true),
    ];
    let snap = blue_green(
        deployment(3, "old"),
        &saved,
        false,
        "old",
        &listed,
        in_step("WaitingForGreen", 0),
    );
    let mut snap = snap;
    snap.green = Some(fixtures::patched(
        &green(),
        &json!({"status": {"readyReplicas": 0, "availableReplicas": 0}}),
    ));
    let d = run(&snap, 599);
    assert_eq!(
        d.status.step.as_deref(),
        Some("WaitingForGreen"),
        "{}",
        message(&d)
    );
    assert!(
        d.requeue.unwrap() <= time::until(at(599), at(600)).max(FLOOR),
        "the deadline is looked at: {:?}",
        d.requeue
    );

    // At readyTimeoutSeconds green goes; blue is neither written nor restarted.
    let d = run(&snap, 600);
    assert_eq!(d.status.step.as_deref(), Some("RemovingGreen"));
    assert!(
        message(&d).contains("green was not Ready within 600s (0/3 pods Ready); blue kept serving"),
        "{}",
        message(&d)
    );
    assert!(
        d.actions.contains(&Action::DeleteWorkload {
            kind: crate::operator::workload::Kind::Deployment,
            name: "liferay-green".into()
        }),
        "{:?}",
        d.actions
    );
    let down = saved_by(&d);
    assert_eq!(down.teardown, Some(Phase::Failed));
    for action in &d.actions {
        match action {
            Action::PatchWorkload { name, patch, .. } => {
                assert_eq!(name, "liferay");
                assert!(
                    patch.get("spec").is_none(),
                    "blue's spec untouched: {patch}"
                );
            }
            Action::ReplaceWorkload(_) | Action::EvictPod { .. } | Action::DeletePod { .. } => {
                panic!("blue touched: {action:?}")
            }
            Action::SetServiceSelector { .. } => panic!("the Service stays on blue: {action:?}"),
            _ => {}
        }
    }

    // Once green is gone the plan fails, and its end puts the Service's selector back.
    let mut next = with_status(snap, &d);
    record::mark(next.target.as_mut().unwrap(), "p1", &down);
    next.green = None;
    next.pods.retain(|p| !pods::name(p).contains("green"));
    let mut selectors = Vec::new();
    let mut phases = Vec::new();
    for t in 601..606 {
        let d = run(&next, t);
        for action in &d.actions {
            if let Action::SetServiceSelector { selector, .. } = action {
                selectors.push(selector.clone());
            }
            assert!(
                !matches!(action, Action::ReplaceWorkload(_) | Action::EvictPod { .. }),
                "blue touched: {action:?}"
            );
        }
        phases.push(d.status.phase);
        next = with_status(next, &d);
    }
    assert!(phases.contains(&Some(Phase::Failed)), "{phases:?}");
    assert_eq!(
        selectors,
        [BTreeMap::from([("app".to_string(), "liferay".to_string())])],
        "the selector goes back to what it was, once"
    );
}

#[test]
fn endpoints_that_never_list_only_green_are_looked_at_less_and_less_then_blue_takes_over() {
    // Green went unready after the switch: its endpoints are listed, none ready.
    let snap = blue_green(
        deployment(3, "old"),
        &switched_record(),
        false,
        "green",
        &GREEN_UNREADY,
        in_step("Switched", 0),
    );
    let looks: Vec<Duration> = [31, 90, 625]
        .iter()
        .map(|t| {
            let d = run(&snap, *t);
            assert_eq!(d.status.step.as_deref(), Some("Switched"), "{d:?}");
            d.requeue.unwrap()
        })
        .collect();
    assert!(
        looks[0] >= FLOOR,
        "the hold has passed: the floor, not a few milliseconds ({looks:?})"
    );
    assert!(looks[1] > looks[0] && looks[1] <= CEILING, "{looks:?}");
    assert!(
        looks[2] <= time::until(at(625), at(630)).max(FLOOR),
        "the deadline (hold + readyTimeoutSeconds) is not overslept: {looks:?}"
    );

    // At the deadline blue (untouched) takes the Service back.
    let d = run(&snap, 630);
    assert_eq!(d.status.step.as_deref(), Some("RestoringBlue"));
    let back = saved_by(&d);
    assert_eq!(back.direction, Direction::Back);
    let reason = back.reason.unwrap();
    assert!(
        reason.contains("the endpoints of service liferay did not list only green's pods within 630s of the switch (0/3 green pods Ready)"),
        "{reason}"
    );
    assert!(events(&d).contains(&"SwitchingBack".to_string()));
    let mut next = with_status(snap, &d);
    record::mark(next.target.as_mut().unwrap(), "p1", &saved_by(&d));
    let d = run(&next, 631);
    assert!(
        d.actions.contains(&Action::SetServiceSelector {
            service: "liferay".into(),
            selector: BTreeMap::from([
                ("app".into(), "liferay".into()),
                ("pod-template-hash".into(), "old".into())
            ]),
        }),
        "{:?}",
        d.actions
    );
}

#[test]
fn endpoints_that_never_follow_the_switch_back_have_a_floor_and_a_deadline() {
    let saved = Saved {
        direction: Direction::Back,
        reason: Some("aborted after the switch".into()),
        switched_back_at: Some(at(0)),
        ..switched_record()
    };
    // Back on blue, whose endpoints are listed but not ready.
    let listed = [
        ("liferay-old-0", false),
        ("liferay-old-1", false),
        ("liferay-old-2", false),
    ];
    let snap = blue_green(
        deployment(3, "old"),
        &saved,
        true,
        "old",
        &listed,
        in_step("SwitchingBack", 0),
    );
    let d = run(&snap, 31);
    assert_eq!(d.status.step.as_deref(), Some("SwitchingBack"));
    assert!(d.requeue.unwrap() >= FLOOR, "{:?}", d.requeue);
    let d = run(&snap, 630);
    assert!(
        d.actions.contains(&crate::operator::workload::delete(
            crate::operator::workload::Kind::Deployment,
            "liferay-green"
        )),
        "green goes: the Service selects blue already ({:?})",
        d.actions
    );
    assert_eq!(saved_by(&d).teardown, Some(Phase::Failed));
    assert!(
        message(&d).contains("the endpoints of service liferay did not list only the pods of deployment liferay (old) within 630s of the switch back"),
        "{}",
        message(&d)
    );
}

#[test]
fn a_target_that_does_not_finish_its_rollout_is_looked_at_by_the_deadline() {
    // Green serves; the target rolls to the new template and is not done.
    let target = fixtures::patched(
        &deployment(3, "new"),
        &json!({"status": {"updatedReplicas": 1, "availableReplicas": 2}}),
    );
    let snap = blue_green(
        target,
        &switched_record(),
        true,
        "green",
        &[("liferay-green-0", true)],
        in_step("UpdatingBlue", 100),
    );
    let d = run(&snap, 150);
    assert_eq!(d.status.step.as_deref(), Some("UpdatingBlue"));
    assert_eq!(d.requeue, Some(time::until(at(150), at(700))));
    // At the deadline the target goes back to its original template while green serves.
    let d = run(&snap, 700);
    assert_eq!(saved_by(&d).direction, Direction::Back);
}

#[test]
fn a_target_that_does_not_come_back_leaves_green_serving_and_says_how_to_finish() {
    let saved = Saved {
        direction: Direction::Back,
        reason: Some("aborted after the switch".into()),
        ..switched_record()
    };
    // Its original template is back on the target, whose rollout does not finish.
    let target = fixtures::patched(
        &deployment(3, "old"),
        &json!({"status": {"updatedReplicas": 1, "availableReplicas": 2}}),
    );
    let snap = blue_green(
        target,
        &saved,
        true,
        "green",
        &[("liferay-green-0", true)],
        in_step("RestoringBlue", 100),
    );
    let d = run(&snap, 150);
    assert_eq!(d.status.step.as_deref(), Some("RestoringBlue"));
    assert_eq!(d.requeue, Some(time::until(at(150), at(700))));

    let d = run(&snap, 700);
    assert_eq!(d.status.outcome, Some(Phase::Failed));
    let said = message(&d);
    assert!(
        said.starts_with("aborted after the switch; deployment liferay did not finish its rollout to the original template within 600s; green deployment liferay-green keeps serving service liferay"),
        "{said}"
    );
    assert!(
        said.contains("set the selector of service liferay to app=liferay,pod-template-hash=old (its pods), delete this plan (which removes green), then set the selector back to app=liferay"),
        "{said}"
    );
    assert!(saved_by(&d).halted);
    // The end leaves the Service on green and green in place.
    let mut next = with_status(snap, &d);
    record::mark(next.target.as_mut().unwrap(), "p1", &saved_by(&d));
    let d = run(&next, 701);
    assert_eq!(d.status.phase, Some(Phase::Failed));
    assert!(
        !d.actions.iter().any(|a| matches!(
            a,
            Action::SetServiceSelector { .. } | Action::DeleteWorkload { .. }
        )),
        "{:?}",
        d.actions
    );
    assert!(stalled(&d), "{:?}", d.status.conditions);
}

#[test]
fn green_pods_that_do_not_stop_end_the_plan_naming_them() {
    let saved = Saved {
        teardown: Some(Phase::Succeeded),
        reason: Some("deployment liferay runs the new template; removing green".into()),
        ..switched_record()
    };
    let mut snap = blue_green(
        deployment(3, "new"),
        &saved,
        true,
        "new",
        &[],
        in_step("RemovingGreen", 0),
    );
    snap.green = None;
    let d = run(&snap, 300);
    assert_eq!(d.status.step.as_deref(), Some("RemovingGreen"));
    assert_eq!(d.requeue, Some(time::until(at(300), at(600))));
    let d = run(&snap, 600);
    assert_eq!(d.status.outcome, Some(Phase::Failed));
    assert!(
        message(&d).contains("green did not go within 600s: deployment liferay-green and 3 green pods (liferay-green-0, liferay-green-1, liferay-green-2) are still there"),
        "{}",
        message(&d)
    );
}

// ---------------------------------------------------------------------------------------
// RollingRestart, FullRestart

fn rolling_spec() -> Value {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 60});
    spec
}

/// One pod of three replaced (available since 20), two old ones left, no next replacement.
fn one_replaced() -> Snapshot {
    let old: Vec<Pod> = three_old_pods().into_iter().skip(1).collect();
    let mut snap = rolling_in_progress(
        vec![pod("liferay-new-0", "new", 10, Some(20))],
        old,
        false,
        rolling_spec(),
    );
    snap.plan.status = in_step("Rolling", 0);
    snap
}

#[test]
fn a_replacement_that_never_appears_rolls_back_at_the_deadline() {
    let snap = one_replaced();
    // The wait for the next replacement starts when the plan first sees it.
    let d = run(&snap, 50);
    assert_eq!(d.status.step.as_deref(), Some("WaitingForPod"));
    assert!(
        message(&d).ends_with("waiting for the next replacement pod to appear"),
        "{}",
        message(&d)
    );
    assert_eq!(d.requeue, Some(time::until(at(50), at(110))));
    let snap = with_status(snap, &d);
    let d = run(&snap, 109);
    assert_eq!(d.status.step.as_deref(), Some("WaitingForPod"));
    // While the replaced pod is still stopping, its replacement cannot be there yet.
    let mut stopping = snap.clone();
    stopping.pods[1].metadata.deletion_timestamp = Some(Time(at(100)));
    let d = run(&stopping, 200);
    assert_eq!(d.status.step.as_deref(), Some("Rolling"));
    let d = run(&snap, 110);
    assert_eq!(d.status.step.as_deref(), Some("RollingBack"));
    let reason = saved_by_replace(&d).reason.unwrap();
    assert_eq!(
        reason,
        "no replacement pod appeared within 60s (1/3 pods on the new template; deployment liferay creates none)"
    );
}

fn saved_by_replace(d: &Decision) -> Saved {
    d.actions
        .iter()
        .find_map(|a| match a {
            Action::ReplaceWorkload(w) => record::saved_for(w, "p1"),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no replacement: {:?}", d.actions))
}

#[test]
fn a_deployment_past_its_progress_deadline_rolls_back_at_once() {
    let mut snap = one_replaced();
    let given_up = json!({"status": {"conditions": [{"type": "Progressing", "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"liferay-new\" has timed out progressing."}]}});
    snap.target = Some(fixtures::patched(snap.target.as_ref().unwrap(), &given_up));
    let d = run(&snap, 30);
    let reason = saved_by_replace(&d).reason.unwrap();
    assert_eq!(
        reason,
        "deployment liferay gave up its rollout: ReplicaSet \"liferay-new\" has timed out progressing."
    );
}

#[test]
fn a_restart_whose_evicted_pod_is_never_replaced_fails_at_the_deadline() {
    let mut target = deployment(3, "a");
    let olds = ["u-old-0", "u-old-1", "u-old-2"];
    record::mark(
        &mut target,
        "p1",
        &Saved {
            mode: Some(Mode::Restart),
            started_at: Some(at(0)),
            restart_pods: olds.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        },
    );
    let mut surge = pod("liferay-surge-p1", "none", 1, Some(2));
    let labels = surge.metadata.labels.as_mut().unwrap();
    labels.remove("pod-template-hash");
    labels.insert("cutover.dev/role".into(), "surge".into());
    labels.insert("cutover.dev/plan".into(), "p1".into());
    // Pod 0 was evicted and is gone; nothing replaced it.
    let mut pods: Vec<Pod> = three_old_pods()
        .into_iter()
        .zip(olds)
        .map(|(mut p, uid)| {
            p.metadata.uid = Some(uid.into());
            p
        })
        .skip(1)
        .collect();
    pods.push(surge);
    let mut snap = snapshot(plan(base_spec()), Some(target), pods);
    snap.plan.status = in_step("WaitingForPod", 10);
    let d = run(&snap, 20);
    assert!(
        message(&d).contains("waiting for the replacement pod to appear"),
        "{}",
        message(&d)
    );
    assert_eq!(d.requeue, Some(time::until(at(20), at(610))));
    let d = run(&snap, 610);
    assert_eq!(d.status.outcome, Some(Phase::Failed));
    assert!(
        message(&d).starts_with("no replacement pod appeared within 600s of the last eviction (2 of 3 pods there; deployment liferay creates none)"),
        "{}",
        message(&d)
    );
}

fn full_restart(target: Workload, saved: &Saved, pods: Vec<Pod>, step: &str) -> Snapshot {
    let mut spec = base_spec();
    spec["strategy"] = json!("FullRestart");
    spec["allowDowntime"] = json!(true);
    spec["update"] = json!({"image": "b"});
    let mut target = target;
    record::mark(&mut target, "p1", saved);
    let mut snap = snapshot(plan(spec), Some(target), pods);
    snap.plan.status = in_step(step, 0);
    snap
}

fn full_restart_record() -> Saved {
    Saved {
        mode: Some(Mode::FullRestart),
        started_at: Some(at(0)),
        replicas: Some(3),
        template: deployment(3, "a").template().cloned(),
        ..Default::default()
    }
}

#[test]
fn a_full_restart_looks_again_when_its_pods_must_have_stopped() {
    let snap = full_restart(
        deployment(0, "a"),
        &full_restart_record(),
        three_old_pods(),
        "ScalingDown",
    );
    let d = run(&snap, 10);
    assert_eq!(d.status.step.as_deref(), Some("ScalingDown"));
    assert_eq!(d.requeue, Some(time::until(at(10), at(600))));
}

#[test]
fn a_full_restart_whose_pods_are_not_all_made_goes_back_at_the_deadline() {
    let saved = Saved {
        scaled_down_at: Some(at(10)),
        ..full_restart_record()
    };
    let target = fixtures::patched(
        &deployment(3, "b"),
        &json!({"status": {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
    );
    let snap = full_restart(
        target,
        &saved,
        vec![pod("liferay-b-0", "b", 11, Some(12))],
        "ScalingUp",
    );
    let d = run(&snap, 300);
    assert_eq!(d.status.step.as_deref(), Some("ScalingUp"));
    assert_eq!(d.requeue, Some(time::until(at(300), at(610))));
    let d = run(&snap, 610);
    assert_eq!(d.status.step.as_deref(), Some("ScalingDown"));
    let back = saved_by(&d);
    assert_eq!(back.direction, Direction::Back);
    assert_eq!(
        back.reason.as_deref(),
        Some("only 1 of 3 pods appeared within 600s (deployment liferay creates no more)")
    );
}

#[test]
fn a_wait_for_a_person_still_looks_again_now_and_then() {
    let mut spec = rolling_spec();
    spec["paused"] = json!(true);
    let mut snap = one_replaced();
    snap.plan.spec = plan(spec).spec;
    snap.plan.status = in_step("Paused", 0);
    let first = run(&snap, 1).requeue.unwrap();
    let later = run(&snap, 3_600).requeue.unwrap();
    assert_eq!((first, later), (FLOOR, CEILING));
}
