//! The plan's conditions read the way kstatus (sigs.k8s.io/cli-utils) reads a custom
//! resource, which is what `kubectl wait`, Flux and Helm's watcher rely on:
//! - `status.observedGeneration` is an integer; while it differs from `metadata.generation`
//!   the resource is InProgress;
//! - `Reconciling` and `Stalled` are "abnormal-true": present (and True) only while the
//!   resource is being worked on, or stuck; Reconciling True means InProgress, Stalled True
//!   means Failed;
//! - otherwise the resource is Current, and `Ready` is True once the work is done.
//!
//! A small kstatus-like computation over the JSON the API server would hold checks statuses
//! of every phase, built as the operator builds them (`operator::conditions::derive`).

use cutover::api::{Finding, MaintenancePlanStatus, Phase, Progress, Technique, Verdict};
use cutover::operator::conditions::derive;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const ALL_PHASES: [Phase; 7] = [
    Phase::Pending,
    Phase::Rejected,
    Phase::Progressing,
    Phase::AwaitingPromotion,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Aborted,
];

/// kstatus's verdict on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KStatus {
    InProgress,
    Failed,
    Current,
    Terminating,
}

/// What kstatus computes for a custom resource it has no special knowledge of: deletion,
/// then the generation check, then the abnormal-true conditions, else Current. Integer
/// fields must be integers: kstatus reads them with `NestedInt64`, which fails on anything
/// else.
fn kstatus(obj: &Value) -> Result<KStatus, String> {
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return Ok(KStatus::Terminating);
    }
    let generation = &obj["metadata"]["generation"];
    let observed = &obj["status"]["observedGeneration"];
    if !observed.is_null() {
        let observed = observed
            .as_i64()
            .ok_or_else(|| format!("status.observedGeneration is not an integer: {observed}"))?;
        if let Some(generation) = generation.as_i64()
            && observed != generation
        {
            return Ok(KStatus::InProgress);
        }
    }
    for condition in obj["status"]["conditions"].as_array().into_iter().flatten() {
        let (kind, status) = (&condition["type"], &condition["status"]);
        if kind == "Reconciling" && status == "True" {
            return Ok(KStatus::InProgress);
        }
        if kind == "Stalled" && status == "True" {
            return Ok(KStatus::Failed);
        }
    }
    Ok(KStatus::Current)
}

fn expected(phase: Phase) -> KStatus {
    match phase {
        Phase::Succeeded => KStatus::Current,
        Phase::Pending | Phase::Progressing | Phase::AwaitingPromotion => KStatus::InProgress,
        Phase::Failed | Phase::Rejected | Phase::Aborted => KStatus::Failed,
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

/// A status of `phase` at `generation`, with conditions derived as the operator derives them.
fn status_of(phase: Phase, generation: i64, invalid: bool) -> MaintenancePlanStatus {
    let (strategy, step, message) = match phase {
        Phase::Pending => (
            Verdict::RollingRestart,
            "WaitingForPlan",
            "waiting for plan other to finish with deployment liferay",
        ),
        Phase::Progressing => (Verdict::RollingRestart, "Evicting", "1/3 pods restarted"),
        Phase::AwaitingPromotion => (
            Verdict::BlueGreen,
            "AwaitingPromotion",
            "green 3/3 ready; set spec.promote to true to switch the service to it",
        ),
        Phase::Succeeded => (Verdict::BlueGreen, "Done", "done"),
        Phase::Failed => (
            Verdict::BlueGreen,
            "Done",
            "green was not Ready within 900s",
        ),
        Phase::Rejected => (Verdict::Rejected, "Done", "rejected: see the findings"),
        Phase::Aborted => (Verdict::RollingRestart, "Done", "aborted"),
    };
    let mut status = MaintenancePlanStatus {
        observed_generation: Some(generation),
        phase: Some(phase),
        strategy: Some(strategy),
        step: Some(step.into()),
        message: Some(message.into()),
        findings: vec![Finding {
            change: Some(0),
            rule: "java-major-change".into(),
            blocks: vec![Technique::RollingRestart],
            message: "Java 8 -> 11".into(),
        }],
        progress: Some(Progress::new(1, 3)),
        ..Default::default()
    };
    status.conditions = derive(&status, &[], invalid, now());
    status
}

fn object(generation: i64, status: &MaintenancePlanStatus) -> Value {
    json!({
        "apiVersion": "cutover.dev/v1alpha1",
        "kind": "MaintenancePlan",
        "metadata": {"name": "plan", "namespace": "portal", "generation": generation},
        "spec": {"target": {"name": "liferay"}, "service": "liferay"},
        "status": serde_json::to_value(status).expect("status serializes"),
    })
}

fn condition<'a>(status: &'a MaintenancePlanStatus, kind: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == kind)
}

#[test]
fn every_phase_reads_as_kstatus_expects() {
    let mut wrong = Vec::new();
    for phase in ALL_PHASES {
        for invalid in [false, true] {
            if invalid && phase != Phase::Rejected {
                continue; // only a rejected plan is ever invalid
            }
            let status = status_of(phase, 4, invalid);
            let got = kstatus(&object(4, &status));
            if got != Ok(expected(phase)) {
                wrong.push(format!(
                    "{phase:?} (invalid: {invalid}): kstatus says {got:?}, expected {:?}; conditions {:#?}",
                    expected(phase),
                    status.conditions
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_newer_generation_is_in_progress_whatever_the_phase() {
    for phase in ALL_PHASES {
        let status = status_of(phase, 4, false);
        assert_eq!(
            kstatus(&object(5, &status)),
            Ok(KStatus::InProgress),
            "{phase:?} observed at generation 4, object at generation 5"
        );
        assert_eq!(kstatus(&object(4, &status)), Ok(expected(phase)));
    }
}

/// The computation above can tell the outcomes apart (so the tests that use it can fail).
#[test]
fn the_kstatus_computation_distinguishes_its_outcomes() {
    let conditions = |c: Value| json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "conditions": c}});
    assert_eq!(kstatus(&conditions(json!([]))), Ok(KStatus::Current));
    assert_eq!(
        kstatus(&conditions(
            json!([{"type": "Reconciling", "status": "True"}])
        )),
        Ok(KStatus::InProgress)
    );
    assert_eq!(
        kstatus(&conditions(json!([{"type": "Stalled", "status": "True"}]))),
        Ok(KStatus::Failed)
    );
    assert_eq!(
        kstatus(&conditions(json!([{"type": "Stalled", "status": "False"}]))),
        Ok(KStatus::Current)
    );
    assert!(
        kstatus(&json!({"metadata": {"generation": 1}, "status": {"observedGeneration": "1"}}))
            .is_err()
    );
    assert_eq!(
        kstatus(
            &json!({"metadata": {"generation": 1, "deletionTimestamp": "2024-01-01T00:00:00Z"}})
        ),
        Ok(KStatus::Terminating)
    );
}

#[test]
fn abnormal_true_conditions_appear_only_while_true() {
    for phase in ALL_PHASES {
        let status = status_of(phase, 2, false);
        let reconciling = condition(&status, "Reconciling");
        let stalled = condition(&status, "Stalled");
        for c in [reconciling, stalled].into_iter().flatten() {
            assert_eq!(
                c.status, "True",
                "{phase:?}: {} is present but not True",
                c.type_
            );
        }
        let working = matches!(
            phase,
            Phase::Pending | Phase::Progressing | Phase::AwaitingPromotion
        );
        let stuck = matches!(phase, Phase::Failed | Phase::Rejected | Phase::Aborted);
        assert_eq!(reconciling.is_some(), working, "{phase:?}: Reconciling");
        assert_eq!(stalled.is_some(), stuck, "{phase:?}: Stalled");
        assert!(
            !(reconciling.is_some() && stalled.is_some()),
            "{phase:?}: Reconciling and Stalled together"
        );
    }
}

#[test]
fn ready_is_true_exactly_when_the_plan_succeeded() {
    for phase in ALL_PHASES {
        let status = status_of(phase, 2, false);
        let ready = condition(&status, "Ready")
            .unwrap_or_else(|| panic!("{phase:?}: no Ready condition (kubectl wait needs one)"));
        let want = if phase == Phase::Succeeded {
            "True"
        } else {
            "False"
        };
        assert_eq!(ready.status, want, "{phase:?}: Ready");
    }
}

#[test]
fn reconciling_names_the_step_and_stalled_the_phase() {
    let progressing = status_of(Phase::Progressing, 1, false);
    let reconciling = condition(&progressing, "Reconciling").unwrap();
    assert_eq!(reconciling.reason, "Evicting");
    assert_eq!(reconciling.message, "1/3 pods restarted");
    let failed = status_of(Phase::Failed, 1, false);
    let stalled = condition(&failed, "Stalled").unwrap();
    assert_eq!(stalled.reason, "Failed");
    assert_eq!(stalled.message, "green was not Ready within 900s");
    let invalid = status_of(Phase::Rejected, 1, true);
    let evaluated = condition(&invalid, "Evaluated").unwrap();
    assert_eq!(
        (evaluated.status.as_str(), evaluated.reason.as_str()),
        ("False", "InvalidPlan")
    );
}

/// What the API server's validation of `metav1.Condition` demands: a real cluster refuses a
/// status write that breaks it.
#[test]
fn conditions_are_valid_metav1_conditions() {
    let reason_ok = |r: &str| {
        let bytes = r.as_bytes();
        !r.is_empty()
            && r.len() <= 1024
            && bytes[0].is_ascii_alphabetic()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
            && !matches!(bytes[bytes.len() - 1], b',' | b':')
    };
    for phase in ALL_PHASES {
        for invalid in [false, true] {
            let status = status_of(phase, 3, invalid);
            let json = serde_json::to_value(&status).unwrap();
            assert!(
                json["observedGeneration"].is_i64(),
                "{phase:?}: observedGeneration must be an integer, is {}",
                json["observedGeneration"]
            );
            let mut types = Vec::new();
            for c in json["conditions"].as_array().expect("conditions") {
                let kind = c["type"].as_str().unwrap();
                assert!(!types.contains(&kind), "{phase:?}: {kind} twice");
                types.push(kind);
                assert!(
                    matches!(c["status"].as_str(), Some("True" | "False" | "Unknown")),
                    "{phase:?}: {c}"
                );
                let reason = c["reason"].as_str().unwrap_or_default();
                assert!(reason_ok(reason), "{phase:?}: {kind} reason {reason:?}");
                assert!(c["message"].is_string(), "{phase:?}: {c}");
                assert!(c["lastTransitionTime"].is_string(), "{phase:?}: {c}");
                assert_eq!(c["observedGeneration"], json!(3), "{phase:?}: {c}");
            }
        }
    }
}

#[test]
fn reconciling_carries_the_step_or_else_the_phase() {
    // The operator's step words become the Reconciling reason, so `kubectl describe` and
    // kstatus-based tools show what the plan is doing now.
    // A check that is failing but has not failed the plan yet is still in progress.
    for step in [
        "WaitingForPlan",
        "Evicting",
        "WaitingForGreen",
        "CheckingGreen",
        "CheckingPod",
        "Finishing",
    ] {
        let mut status = status_of(Phase::Progressing, 1, false);
        status.step = Some(step.into());
        let conditions = derive(&status, &[], false, now());
        let reconciling = conditions.iter().find(|c| c.type_ == "Reconciling");
        assert_eq!(reconciling.map(|c| c.reason.as_str()), Some(step));
    }
    for step in [None, Some(String::new())] {
        let mut status = status_of(Phase::Pending, 1, false);
        status.step = step.clone();
        let conditions = derive(&status, &[], false, now());
        let reconciling = conditions.iter().find(|c| c.type_ == "Reconciling");
        assert_eq!(
            reconciling.map(|c| c.reason.as_str()),
            Some("Pending"),
            "step {step:?}"
        );
    }
}
