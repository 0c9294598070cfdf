//! RollingRestart in the GitOps flow of a target that holds its pending template back itself
//! (under `updateStrategy: OnDelete`, or with a partition at its replicas): its pods are
//! replaced one at a time in its controller's order, each replacement available for
//! `minReadySeconds` before the next, as the workload paces it (evicting the pods, or lowering
//! the partition one step at a time); its template is never written. A late replacement turns
//! the plan back with `rollbackOnFailure` (rolling updates held at a partition of its
//! replicas bring a deleted pod back at the current revision, so the replaced pods are
//! deleted again one at a time) and halts it otherwise. The plan records Git's update strategy
//! before it writes any, and the cleanup puts it back.

use super::checks;
use super::{Cx, Progressed};
use crate::api::{CheckStage, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::{availability_wait, late_pod};
use crate::operator::workload::Pace;
use crate::operator::workload::saved::{Direction, Held, Mode, Saved, mark_patch};
use crate::operator::{pods, time};

pub(super) fn begin(cx: &Cx, held: Held) -> Progressed {
    let total = cx.target.replicas();
    let before = held.updated_before.len() as i32;
    let mut saved = Saved {
        mode: Some(Mode::HeldRollout),
        started_at: Some(cx.now),
        held: Some(held),
        ..Default::default()
    };
    cx.target.record_held_settings(&mut saved);
    Progressed::act(
        "Rolling",
        format!(
            "replacing the pods of {} with its pending template, one at a time ({before}/{total} run it already)",
            cx.target
        ),
        vec![cx.target.patch(mark_patch(cx.plan, &saved))],
    )
    .with_progress(Some(Progress::new(before.min(total), total)))
}

/// The controller has made the pending template its current revision (every pod runs it and
/// is Ready): there is no revision left to go back to without writing the template.
pub(super) fn moved_on(cx: &Cx, held: &Held) -> bool {
    cx.target
        .current_revision()
        .is_some_and(|current| current != held.current)
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let Some(held) = saved.held.as_ref() else {
        return Progressed::finish(
            Phase::Failed,
            "the record of the plan's revisions is missing from the target".into(),
        );
    };
    if saved.direction == Direction::Back {
        return roll_back(cx, saved, held);
    }
    let total = cx.target.replicas();
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let updated = cx.target.pods_at(&cx.snap.pods, &held.update);
    let done = updated
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(done.min(total), total));

    if cx.aborting {
        return go_back(cx, saved, held, "aborted".into());
    }
    if let Some(now_pending) = cx.target.updated_revision(&[])
        && now_pending != held.update
    {
        return go_back(
            cx,
            saved,
            held,
            format!(
                "the pending template of {} changed during the plan (revision {now_pending}; the plan rolls out {})",
                cx.target, held.update
            ),
        );
    }
    let (late, deadline) = late_pod(&updated, timeout, cx.now);
    if let Some(pod) = late {
        let reason = format!("pod {} was not Ready within {timeout}s", pods::name(pod));
        if cx.spec.rolling_restart.rollback_on_failure {
            return go_back(cx, saved, held, reason);
        }
        return halt(cx, held, reason).with_progress(progress);
    }
    // The checks on a replaced pod they have not passed on yet, before the next one is touched.
    let mut gate = checks::after_each_pod(cx, &updated);
    if let Some(why) = checks::failure(&gate) {
        let p = match cx.spec.rolling_restart.rollback_on_failure {
            true => go_back(cx, saved, held, why),
            false => halt(cx, held, why).with_progress(progress),
        };
        return p.with_gate(CheckStage::AfterEachPod, gate);
    }
    let so_far = format!("{done}/{total} pods run the pending template");
    if let Some(p) = checks::checking_pod(
        &mut gate,
        &so_far,
        progress.clone(),
        cx.pod_replaced(done, total, "pending template"),
    ) {
        return p;
    }
    if cx.spec.paused {
        return Progressed::paused(done, total).with_gate(CheckStage::AfterEachPod, gate);
    }
    let replaced: Vec<Action> = cx
        .pod_replaced(done, total, "pending template")
        .into_iter()
        .collect();
    if done == total && cx.target.is_complete() {
        let mut p = Progressed::finish(
            Phase::Succeeded,
            format!(
                "rolled out the pending template to {total} pods, one at a time; {} is as Git has it",
                cx.target
            ),
        )
        .with_progress(progress);
        p.actions = replaced;
        return p.with_gate(CheckStage::AfterEachPod, gate);
    }
    if cx.seconds_in("Evicting") > timeout as f64 {
        let reason = format!(
            "a pod could not be evicted within {timeout}s (a PodDisruptionBudget allows no disruption, or the pod does not stop)"
        );
        if cx.spec.rolling_restart.rollback_on_failure {
            return go_back(cx, saved, held, reason);
        }
        return halt(cx, held, reason).with_progress(progress);
    }
    let message = format!("{done}/{total} pods run the pending template");
    if let Some(mut p) = next_pod(cx, &message) {
        p.actions.extend(replaced);
        return p
            .with_progress(progress)
            .with_gate(CheckStage::AfterEachPod, gate);
    }
    let (waiting_for, hold) = availability_wait(&updated, min_ready, cx.now);
    let mut p = Progressed::wait(
        "Rolling",
        format!("{message}{waiting_for}"),
        time::earliest(deadline.map(|t| time::until(cx.now, t)), hold),
    )
    .with_progress(progress);
    p.actions = replaced;
    p.with_gate(CheckStage::AfterEachPod, gate)
}

/// The next pod as the workload paces it: evicted (under `OnDelete`), released by lowering the
/// partition one step, or deleted when it never became Ready and holds its controller.
fn next_pod(cx: &Cx, message: &str) -> Option<Progressed> {
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    match cx.target.pace(&cx.snap.pods, min_ready, cx.now) {
        Pace::Itself | Pace::Hold | Pace::Done => None,
        Pace::Release { ordinal, patch } => Some(Progressed::act(
            "Rolling",
            format!(
                "{message}; pod {}-{ordinal} is replaced next (partition lowered to its index)",
                cx.target.name()
            ),
            vec![cx.target.patch(patch)],
        )),
        // A step of its own: its deadline is how long a disruption budget may hold it.
        Pace::Evict(pod) => Some(Progressed::act(
            "Evicting",
            format!("{message}; evicting pod {pod}"),
            vec![
                Action::EvictPod { name: pod.clone() },
                Action::event(
                    "PodEvicted",
                    format!("evicted pod {pod} for its replacement from the pending template"),
                ),
            ],
        )),
        Pace::Delete(pod) => Some(Progressed::act(
            "Rolling",
            format!("{message}; deleting pod {pod}, which never became Ready"),
            vec![
                Action::DeletePod { name: pod.clone() },
                Action::warning(
                    "PodDeleted",
                    format!("deleted pod {pod}: it never became Ready and held the rollout"),
                ),
            ],
        )),
    }
}

/// Without `rollbackOnFailure`: the plan ends where the rollout stands. The cleanup puts Git's
/// update strategy back, under which no pod moves further by itself.
fn halt(cx: &Cx, held: &Held, reason: String) -> Progressed {
    let names = |revision: &str| -> String {
        let mut names: Vec<&str> = cx
            .target
            .pods_at(&cx.snap.pods, revision)
            .into_iter()
            .map(pods::name)
            .collect();
        names.sort();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    Progressed::finish(
        Phase::Failed,
        format!(
            "{reason}; rollout halted (rollbackOnFailure is off): pods on the pending template: {}; on the current revision: {}; {}'s update strategy is Git's again, so no pod moves further",
            names(&held.update),
            names(&held.current),
            cx.target
        ),
    )
}

/// Turns the rollout around: under rolling updates held at a partition of its replicas (set
/// in the same request as the record of why), each replaced pod deleted comes back at the
/// current revision.
fn go_back(cx: &Cx, saved: &Saved, held: &Held, reason: String) -> Progressed {
    if moved_on(cx, held) {
        return Progressed::finish(
            cx.back_outcome(),
            format!(
                "{reason}; every pod ran the pending template already and {}'s controller made it its current revision, so there was nothing to roll back",
                cx.target
            ),
        );
    }
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        ..saved.clone()
    };
    let mut patch = mark_patch(cx.plan, &back);
    if !cx.target.brings_back_current()
        && let Some(spec) = cx.target.back_to_current_spec(cx.target.replicas())
    {
        patch["spec"] = spec;
    }
    let message =
        format!("{reason}; bringing the replaced pods back to the current revision, one at a time");
    Progressed::act(
        "RollingBack",
        message.clone(),
        vec![
            cx.target.patch(patch),
            Action::warning("RollingBack", message),
        ],
    )
}

/// One step back: each pod the plan replaced is deleted in its controller's order and comes
/// back at the current revision, one at a time.
fn roll_back(cx: &Cx, saved: &Saved, held: &Held) -> Progressed {
    let reason = saved.reason.clone().unwrap_or_default();
    let total = cx.target.replicas();
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let left = cx
        .target
        .pods_off(&cx.snap.pods, &held.current, &held.updated_before)
        .len() as i32;
    let progress = Some(Progress::new((total - left).clamp(0, total), total));
    if moved_on(cx, held) {
        return Progressed::finish(
            cx.back_outcome(),
            format!(
                "{reason}; {}'s controller made the pending template its current revision before any pod went back, so nothing could be rolled back",
                cx.target
            ),
        );
    }
    if !cx.target.brings_back_current()
        && let Some(spec) = cx.target.back_to_current_spec(total)
    {
        // Git's update strategy is back (a sync), or the first write was lost.
        return Progressed::act(
            "RollingBack",
            format!(
                "{reason}; holding {} at the current revision again",
                cx.target
            ),
            vec![cx.target.patch(serde_json::json!({"spec": spec}))],
        )
        .with_progress(progress);
    }
    let back = cx.target.pods_at(&cx.snap.pods, &held.current);
    let (late, deadline) = late_pod(&back, timeout, cx.now);
    if let Some(pod) = late {
        return Progressed::finish(
            Phase::Failed,
            format!(
                "{reason}; the rollback stalled too: pod {} of the current revision was not Ready within {timeout}s",
                pods::name(pod)
            ),
        );
    }
    let prefix = format!("{reason}; rolling back");
    match cx.target.pace_back(
        &cx.snap.pods,
        &held.current,
        &held.updated_before,
        min_ready,
        cx.now,
    ) {
        Pace::Delete(pod) => Progressed::act(
            "RollingBack",
            format!("{prefix}: deleting pod {pod}, which is not Ready"),
            vec![
                Action::DeletePod { name: pod.clone() },
                Action::warning(
                    "PodDeleted",
                    format!("deleted pod {pod} (not Ready) to bring it back at the current revision"),
                ),
            ],
        )
        .with_progress(progress),
        Pace::Evict(pod) => Progressed::act(
            "RollingBack",
            format!("{prefix}: evicting pod {pod}"),
            vec![
                Action::EvictPod { name: pod.clone() },
                Action::event(
                    "PodEvicted",
                    format!("evicted pod {pod} to bring it back at the current revision"),
                ),
            ],
        )
        .with_progress(progress),
        Pace::Done => Progressed::finish(
            cx.back_outcome(),
            format!(
                "{reason}; rolled the replaced pods back to the current revision, one at a time; {} is as Git has it",
                cx.target
            ),
        )
        .with_progress(progress),
        Pace::Itself | Pace::Hold | Pace::Release { .. } => Progressed::wait(
            "RollingBack",
            format!("{prefix}, {left} pods left on the pending template"),
            deadline.map(|t| time::until(cx.now, t)),
        )
        .with_progress(progress),
    }
}
