//! Checks in the pure step: an attempt is asked for, asked again while no answer came (an
//! operator restarted in between), counted once from its own answer, retried after the
//! interval, and the gate opens on a pass, fails the plan at the threshold or the timeout.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::tests::{at, base_spec, deployment, events, plan, pod, run, snapshot, with_status};
use super::{Decision, Snapshot};
use crate::api::{CheckPhase, Phase};
use crate::operator::action::Action;
use crate::operator::probe::{ProbeAnswer, ProbeKind};
use crate::operator::workload::saved::{self as record, Mode, Saved};

fn spec() -> serde_json::Value {
    let mut spec = base_spec();
    spec["rollingRestart"] = json!({"afterEachPod": [{
        "name": "portal", "webhook": {"url": "http://board.example/"},
        "intervalSeconds": 5, "failureThreshold": 2, "timeoutSeconds": 60
    }]});
    spec
}

/// A plain restart of one pod whose replacement (Ready at 6) is the pod under test.
fn restarted(status_from: Option<&Decision>) -> Snapshot {
    let saved = Saved {
        mode: Some(Mode::Restart),
        started_at: Some(at(0)),
        restart_pods: vec!["liferay-old-0@-100".into()],
        ..Default::default()
    };
    let mut target = deployment(1, "a");
    record::mark(&mut target, "p1", &saved);
    let mut surge = pod("liferay-surge-p1", "x", 1, Some(2));
    let labels = surge.metadata.labels.as_mut().unwrap();
    labels.remove("pod-template-hash");
    labels.insert("cutover.dev/role".into(), "surge".into());
    let snap = snapshot(
        plan(spec()),
        Some(target),
        vec![pod("liferay-old-9", "old", 5, Some(6)), surge],
    );
    match status_from {
        Some(d) => with_status(snap, d),
        None => snap,
    }
}

fn probes(d: &Decision) -> Vec<String> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe(p) => Some(p.key.clone()),
            _ => None,
        })
        .collect()
}

fn answer(key: &str, passed: bool, at: Timestamp) -> ProbeAnswer {
    ProbeAnswer {
        key: key.into(),
        passed,
        message: if passed {
            "answered 200"
        } else {
            "answered 503"
        }
        .into(),
        at,
    }
}

const FIRST: &str = "afterEachPod/portal/liferay-old-9@5/1";
const SECOND: &str = "afterEachPod/portal/liferay-old-9@5/2";

#[test]
fn an_attempt_is_asked_again_until_answered_and_counted_once() {
    let d1 = run(&restarted(None), 7);
    assert_eq!(probes(&d1), [FIRST]);
    assert_eq!(d1.status.step.as_deref(), Some("CheckingPod"));
    assert_eq!(d1.status.outcome, None, "the plan waits for its check");
    let Some(Action::Probe(request)) = d1.actions.iter().find(|a| matches!(a, Action::Probe(_)))
    else {
        unreachable!()
    };
    let ProbeKind::Webhook { body, .. } = &request.kind else {
        panic!("{request:?}")
    };
    assert_eq!(body["name"], "p1");
    assert_eq!(body["stage"], "afterEachPod");

    // No answer yet (in flight, or lost with an operator that stopped): the same attempt.
    let d2 = run(&restarted(Some(&d1)), 9);
    assert_eq!(probes(&d2), [FIRST]);
    assert_eq!(d2.status.checks[0].attempts, 1);

    // A failed answer counts once, however often it is read.
    let mut snap = restarted(Some(&d2));
    snap.probes = vec![answer(FIRST, false, at(9))];
    let d3 = run(&snap, 10);
    assert_eq!(d3.status.checks[0].failures, 1);
    assert!(
        probes(&d3).is_empty(),
        "the next attempt waits for the interval"
    );
    let mut again = with_status(snap.clone(), &d3);
    let d4 = run(&again, 11);
    assert_eq!(d4.status.checks[0].failures, 1, "{:?}", d4.status.checks);
    assert!(probes(&d4).is_empty());

    // After the interval, attempt 2; it passes and the restart finishes.
    let d5 = run(&with_status(again.clone(), &d4), 14);
    assert_eq!(probes(&d5), [SECOND]);
    again = with_status(again, &d5);
    again.probes.push(answer(SECOND, true, at(14)));
    let d6 = run(&again, 15);
    assert_eq!(d6.status.checks[0].phase, Some(CheckPhase::Passed));
    assert!(events(&d6).contains(&"CheckPassed".to_string()));
    assert_eq!(d6.status.outcome, Some(Phase::Succeeded));
}

#[test]
fn failures_up_to_the_threshold_halt_the_restart() {
    let d1 = run(&restarted(None), 7);
    let mut snap = restarted(Some(&d1));
    snap.probes = vec![answer(FIRST, false, at(7))];
    let d2 = run(&snap, 8);
    let d3 = run(&with_status(snap.clone(), &d2), 12);
    assert_eq!(probes(&d3), [SECOND]);
    let mut snap = with_status(snap, &d3);
    snap.probes.push(answer(SECOND, false, at(12)));
    let d4 = run(&snap, 13);
    assert_eq!(d4.status.checks[0].phase, Some(CheckPhase::Failed));
    assert_eq!(d4.status.outcome, Some(Phase::Failed));
    let message = d4.status.message.clone().unwrap();
    assert!(
        message.contains("check portal (afterEachPod) failed on pod liferay-old-9")
            && message.contains("2 of 2 in a row")
            && message.contains("restart halted at 1/1 pods"),
        "{message}"
    );
    assert!(events(&d4).contains(&"CheckFailed".to_string()));
}

#[test]
fn a_check_that_never_answers_fails_at_its_timeout() {
    let d1 = run(&restarted(None), 7);
    let d2 = run(&restarted(Some(&d1)), 66);
    assert_eq!(d2.status.outcome, None);
    let d3 = run(&restarted(Some(&d2)), 68);
    assert_eq!(d3.status.checks[0].phase, Some(CheckPhase::Failed));
    assert!(
        d3.status.checks[0]
            .message
            .contains("did not pass within 60s"),
        "{:?}",
        d3.status.checks
    );
    assert_eq!(d3.status.outcome, Some(Phase::Failed));
}
