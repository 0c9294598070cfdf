//! The checks' record when a plan ends. Each check says how it ended in `status.checks` and
//! in an Event (invariant 12), also when a reconcile that saw it end could not write the
//! status: its actions went through (the switch to green, or the teardown recorded on the
//! target with the failure as its reason), the status write did not, and the steps that
//! follow do not ask the check again. A check still `Running` when the plan ends is read from
//! where the plan got: one that the plan's last message says failed, failed; every check of a
//! plan that Succeeded, and a `prePromotion` check of a plan that switched, passed (a gate
//! lets the plan go on only once its checks passed); such a check with no result at all (the
//! status writes of its whole run lost), and one the message says failed, gets one. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{CheckPhase, CheckResult, CheckStage, MaintenancePlanSpec, Phase};
use crate::operator::action::Action;

/// Settles each check still Running as where the plan ended says (`message`: its last
/// words; `outcome`; `switched`: it had switched to green), with an Event for each.
pub(super) fn settle(
    checks: &mut Vec<CheckResult>,
    spec: &MaintenancePlanSpec,
    message: &str,
    outcome: Phase,
    switched: bool,
    now: Timestamp,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let stages = [
        (CheckStage::PrePromotion, &spec.blue_green.pre_promotion),
        (CheckStage::PostPromotion, &spec.blue_green.post_promotion),
        (
            CheckStage::AfterEachPod,
            &spec.rolling_restart.after_each_pod,
        ),
    ];
    for (stage, declared) in stages {
        let went_past =
            outcome == Phase::Succeeded || (switched && stage == CheckStage::PrePromotion);
        let ended_on =
            |name: &str| message.contains(&format!("check {name} ({}) failed", stage.word()));
        for check in declared.iter().filter(|c| went_past || ended_on(&c.name)) {
            if !checks
                .iter()
                .any(|c| c.name == check.name && c.stage == Some(stage))
            {
                // Its record is Running until the loop below settles it.
                checks.push(CheckResult {
                    name: check.name.clone(),
                    stage: Some(stage),
                    phase: Some(CheckPhase::Running),
                    started_at: Some(Time(now)),
                    ..Default::default()
                });
            }
        }
    }
    for check in checks
        .iter_mut()
        .filter(|c| c.phase == Some(CheckPhase::Running))
    {
        let Some(stage) = check.stage else {
            continue;
        };
        let said = format!("check {} ({}) failed", check.name, stage.word());
        if let Some(at) = message.find(&said) {
            let clause = message[at..].split("; ").next().unwrap_or_default();
            check.phase = Some(CheckPhase::Failed);
            if let Some((_, why)) = clause.split_once(": ") {
                check.message = why.to_string();
            }
            check.last_time = Some(Time(now));
            actions.push(Action::warning("CheckFailed", clause.to_string()));
            continue;
        }
        let passed = outcome == Phase::Succeeded || (switched && stage == CheckStage::PrePromotion);
        if passed {
            check.phase = Some(CheckPhase::Passed);
            check.message = "passed; the plan went on past it".into();
            check.last_time = Some(Time(now));
            actions.push(Action::event(
                "CheckPassed",
                format!("check {} ({}) passed", check.name, stage.word()),
            ));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan's spec with no checks declared.
    fn bare() -> MaintenancePlanSpec {
        super::super::tests::plan(super::super::tests::base_spec()).spec
    }

    fn running(name: &str, stage: CheckStage) -> CheckResult {
        serde_json::from_value(serde_json::json!({
            "name": name, "stage": stage, "phase": "Running",
            "message": "attempt 1 asked", "subject": "green"
        }))
        .unwrap()
    }

    #[test]
    fn a_check_the_plan_ended_on_is_failed_in_the_record_and_in_an_event() {
        let mut checks = vec![
            running("change-board", CheckStage::PrePromotion),
            running("smoke", CheckStage::PrePromotion),
            running("change-board", CheckStage::PostPromotion),
        ];
        let message = "check change-board (prePromotion) failed on green (5d4f): attempt 1 failed (1 of 1 in a row): HTTP 500; blue kept serving and was not touched";
        let actions = settle(
            &mut checks,
            &bare(),
            message,
            Phase::Failed,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(checks[0].phase, Some(CheckPhase::Failed));
        assert_eq!(
            checks[0].message,
            "attempt 1 failed (1 of 1 in a row): HTTP 500"
        );
        assert!(checks[0].last_time.is_some());
        // Another check, and the same check at another stage, are not what the plan ended on.
        assert_eq!(checks[1].phase, Some(CheckPhase::Running));
        assert_eq!(checks[2].phase, Some(CheckPhase::Running));
        let [
            Action::Event {
                warning: true,
                reason,
                message: said,
            },
        ] = actions.as_slice()
        else {
            panic!("one warning: {actions:?}")
        };
        assert_eq!(reason, "CheckFailed");
        assert!(said.starts_with(
            "check change-board (prePromotion) failed on green (5d4f): attempt 1 failed"
        ));
        assert!(!said.contains("blue kept serving"));
        // Once settled, nothing more to say.
        assert!(
            settle(
                &mut checks,
                &bare(),
                message,
                Phase::Failed,
                false,
                Timestamp::UNIX_EPOCH
            )
            .is_empty()
        );
    }

    #[test]
    fn a_check_the_plan_went_on_past_is_passed_in_the_record_and_in_an_event() {
        let mut checks = vec![
            running("change-board", CheckStage::PrePromotion),
            running("smoke", CheckStage::PostPromotion),
        ];
        // Switched, then failed for another reason: the check before the switch had passed,
        // the one after it is not known to have.
        let actions = settle(
            &mut checks,
            &bare(),
            "the endpoints of service liferay did not list only green's pods",
            Phase::Failed,
            true,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(checks[0].phase, Some(CheckPhase::Passed));
        assert_eq!(checks[1].phase, Some(CheckPhase::Running));
        assert_eq!(actions.len(), 1, "{actions:?}");
        // A plan that Succeeded went past every gate.
        let actions = settle(
            &mut checks,
            &bare(),
            "done",
            Phase::Succeeded,
            true,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(checks[1].phase, Some(CheckPhase::Passed));
        assert!(
            matches!(actions.as_slice(), [Action::Event { warning: false, reason, message }]
                if reason == "CheckPassed" && message == "check smoke (postPromotion) passed"),
            "{actions:?}"
        );
        // Neither: it stays as it is.
        let mut checks = vec![running("smoke", CheckStage::PrePromotion)];
        assert!(
            settle(
                &mut checks,
                &bare(),
                "aborted",
                Phase::Aborted,
                false,
                Timestamp::UNIX_EPOCH
            )
            .is_empty()
        );
        assert_eq!(checks[0].phase, Some(CheckPhase::Running));
        // A declared check with no result at all, on a plan that went past its stage.
        let mut spec = super::super::tests::base_spec();
        spec["blueGreen"] = serde_json::json!({"prePromotion": [
            {"name": "change-board", "webhook": {"url": "http://127.0.0.1:9/"}}]});
        let spec = super::super::tests::plan(spec).spec;
        let mut checks = Vec::new();
        let actions = settle(
            &mut checks,
            &spec,
            "done",
            Phase::Failed,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert!(
            actions.is_empty() && checks.is_empty(),
            "not switched: {checks:?}"
        );
        let actions = settle(
            &mut checks,
            &spec,
            "done",
            Phase::Succeeded,
            true,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].name, "change-board");
        assert_eq!(checks[0].stage, Some(CheckStage::PrePromotion));
        assert_eq!(checks[0].phase, Some(CheckPhase::Passed));
        assert_eq!(actions.len(), 1, "{actions:?}");
        // A declared check with no result that the plan's message says failed.
        let mut checks = Vec::new();
        let actions = settle(
            &mut checks,
            &spec,
            "check change-board (prePromotion) failed on green (5d4f): job j failed: BackoffLimitExceeded; blue kept serving",
            Phase::Failed,
            false,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].phase, Some(CheckPhase::Failed));
        assert_eq!(checks[0].message, "job j failed: BackoffLimitExceeded");
        assert_eq!(actions.len(), 1, "{actions:?}");
    }

    /// The reconcile that saw the check fail recorded the teardown on the target, but its
    /// status write was lost: green is gone now and the plan ends Failed with the check's
    /// failure in its record.
    #[test]
    fn a_plan_that_ends_on_a_failed_check_whose_status_write_was_lost_records_the_failure() {
        use super::super::tests::{base_spec, deployment, plan, run, snapshot};
        use crate::api::{MaintenancePlanStatus, Phase};
        use crate::operator::workload::saved::{self as record, Mode, Saved};

        let reason = "check change-board (prePromotion) failed on green (5d4f): attempt 1 failed (1 of 1 in a row): HTTP 500; blue kept serving and was not touched";
        let mut spec = base_spec();
        spec["strategy"] = serde_json::json!("BlueGreen");
        spec["update"] = serde_json::json!({"image": "new"});
        spec["blueGreen"] = serde_json::json!({"prePromotion": [
            {"name": "change-board", "webhook": {"url": "http://127.0.0.1:9/"}}]});
        let mut target = deployment(3, "old");
        let saved = Saved {
            mode: Some(Mode::BlueGreen),
            teardown: Some(Phase::Failed),
            reason: Some(reason.into()),
            blue_hash: Some("old".into()),
            selector: Some([("app".to_string(), "liferay".to_string())].into()),
            template: deployment(3, "old").template().cloned(),
            ..Default::default()
        };
        record::mark(&mut target, "p1", &saved);
        let mut snap = snapshot(plan(spec), Some(target), Vec::new());
        snap.plan.status = Some(MaintenancePlanStatus {
            phase: Some(Phase::Progressing),
            step: Some("RemovingGreen".into()),
            checks: vec![running("change-board", CheckStage::PrePromotion)],
            ..Default::default()
        });
        let d = run(&snap, 100);
        assert_eq!(d.status.outcome, Some(Phase::Failed), "{:?}", d.status);
        let check = &d.status.checks[0];
        assert_eq!(check.phase, Some(CheckPhase::Failed), "{check:?}");
        assert!(
            d.actions.iter().any(|a| matches!(a,
                Action::Event { warning: true, reason, .. } if reason == "CheckFailed")),
            "{:?}",
            d.actions
        );
    }
}
