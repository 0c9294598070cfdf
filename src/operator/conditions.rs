//! The plan's conditions, derived from its phase: `Ready`, `Reconciling`, `Stalled` (kstatus:
//! the last two present only while true) and `Evaluated`. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{MaintenancePlanStatus, Phase};

/// Conditions for `status` (whose phase, step and message are final), keeping each
/// condition's transition time while its status does not change.
pub fn derive(
    status: &MaintenancePlanStatus,
    previous: &[Condition],
    invalid: bool,
    now: Timestamp,
) -> Vec<Condition> {
    let phase = status.phase.unwrap_or(Phase::Pending);
    let message = status.message.clone().unwrap_or_default();
    let generation = status.observed_generation;
    let phase_word = format!("{phase:?}");
    let step = status
        .step
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| phase_word.clone());
    let mut wanted: Vec<(&str, bool, String, String)> = Vec::new();
    wanted.push((
        "Ready",
        phase == Phase::Succeeded,
        phase_word.clone(),
        message.clone(),
    ));
    if matches!(
        phase,
        Phase::Pending | Phase::Progressing | Phase::AwaitingPromotion
    ) {
        wanted.push(("Reconciling", true, step, message.clone()));
    }
    if matches!(phase, Phase::Failed | Phase::Rejected | Phase::Aborted) {
        wanted.push(("Stalled", true, phase_word.clone(), message.clone()));
    }
    if invalid {
        wanted.push(("Evaluated", false, "InvalidPlan".into(), message));
    } else if let Some(verdict) = status.strategy {
        let summary = format!(
            "{} findings; strategy {}",
            status.findings.len(),
            verdict.as_str()
        );
        wanted.push(("Evaluated", true, verdict.as_str().into(), summary));
    }
    wanted
        .into_iter()
        .map(|(type_, is_true, reason, message)| {
            let status_word = if is_true { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status_word)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: type_.to_string(),
                status: status_word.to_string(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// `status` while the API server refuses what the plan must do next: the phase, step and
/// progress stay as they are, the message says what was refused, and `Stalled` (with
/// `reason`, such as `Forbidden`) takes the place of `Reconciling` until a step passes again,
/// when `derive` puts the conditions back as the phase has them.
pub fn refused(
    status: &MaintenancePlanStatus,
    reason: &str,
    message: String,
    now: Timestamp,
) -> MaintenancePlanStatus {
    let mut refused = status.clone();
    refused.message = Some(message.clone());
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    refused
        .conditions
        .retain(|c| c.type_ != "Reconciling" && c.type_ != "Stalled");
    refused.conditions.push(Condition {
        type_: "Stalled".into(),
        status: "True".into(),
        reason: reason.to_string(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: since,
    });
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Verdict;

    fn status(phase: Phase) -> MaintenancePlanStatus {
        MaintenancePlanStatus {
            phase: Some(phase),
            strategy: Some(Verdict::RollingRestart),
            observed_generation: Some(2),
            message: Some("m".into()),
            ..Default::default()
        }
    }

    fn types(c: &[Condition]) -> Vec<(String, String)> {
        c.iter()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect()
    }

    #[test]
    fn kstatus_semantics_per_phase() {
        let now = Timestamp::UNIX_EPOCH;
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            types(&derive(&status(Phase::Progressing), &[], false, now)),
            pairs(&[
                ("Ready", "False"),
                ("Reconciling", "True"),
                ("Evaluated", "True")
            ])
        );
        assert_eq!(
            types(&derive(&status(Phase::Succeeded), &[], false, now)),
            pairs(&[("Ready", "True"), ("Evaluated", "True")])
        );
        assert_eq!(
            types(&derive(&status(Phase::Failed), &[], false, now)),
            pairs(&[
                ("Ready", "False"),
                ("Stalled", "True"),
                ("Evaluated", "True")
            ])
        );
        let invalid = derive(&status(Phase::Rejected), &[], true, now);
        assert_eq!(invalid.last().unwrap().reason, "InvalidPlan");
        assert!(invalid.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn a_refusal_stalls_the_plan_until_a_step_passes_again() {
        let earlier = Timestamp::from_second(100).unwrap();
        let running = status(Phase::Progressing);
        let running = MaintenancePlanStatus {
            conditions: derive(&running, &[], false, earlier),
            ..running
        };
        let later = Timestamp::from_second(200).unwrap();
        let refused = refused(&running, "Forbidden", "forbidden: no".into(), later);
        assert_eq!(refused.phase, Some(Phase::Progressing));
        assert_eq!(refused.message.as_deref(), Some("forbidden: no"));
        assert_eq!(
            types(&refused.conditions),
            [
                ("Ready", "False"),
                ("Evaluated", "True"),
                ("Stalled", "True")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let stalled = refused.conditions.last().unwrap();
        assert_eq!(
            (stalled.reason.as_str(), stalled.last_transition_time.0),
            ("Forbidden", later)
        );
        // Refused again: nothing changes, so nothing is written again.
        let again = super::refused(
            &refused,
            "Forbidden",
            "forbidden: no".into(),
            Timestamp::from_second(300).unwrap(),
        );
        assert_eq!(again, refused);
        // The next step that passes: Reconciling again, Stalled gone.
        let passed = derive(&running, &refused.conditions, false, later);
        assert_eq!(types(&passed), types(&running.conditions));
    }

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let earlier = Timestamp::from_second(100).unwrap();
        let first = derive(&status(Phase::Progressing), &[], false, earlier);
        let later = Timestamp::from_second(200).unwrap();
        let second = derive(&status(Phase::Progressing), &first, false, later);
        assert!(second.iter().all(|c| c.last_transition_time.0 == earlier));
        let done = derive(&status(Phase::Succeeded), &second, false, later);
        assert_eq!(done[0].last_transition_time.0, later);
    }
}
