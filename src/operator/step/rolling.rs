//! RollingRestart with a new template: the workload's own controller replaces the pods,
//! paced by the operator (one pod at a time, never below the replicas where the workload can
//! surge, each available for `minReadySeconds` before the next), halted or rolled back when a
//! replacement is late.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::checks;
use super::{Cx, Progressed};
use crate::api::{CheckStage, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::{availability_wait, late_pod};
use crate::operator::workload::Pace;
use crate::operator::workload::saved::{Direction, Mode, Saved, mark, mark_patch};
use crate::operator::{pods, time};

pub(super) fn begin(cx: &Cx, new_template: PodTemplateSpec) -> Progressed {
    let mut saved = Saved {
        mode: Some(Mode::Rollout),
        started_at: Some(cx.now),
        ..Default::default()
    };
    let mut target = cx.target.paced_rollout(
        new_template,
        cx.spec.rolling_restart.min_ready_seconds,
        &mut saved,
    );
    mark(&mut target, cx.plan, &saved);
    let total = cx.target.replicas();
    Progressed::act(
        "Rolling",
        format!("rolling out the new template to {total} pods, one at a time"),
        vec![target.replace()],
    )
    .with_progress(Some(Progress::new(0, total)))
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let total = cx.target.replicas();
    let revision = cx
        .target
        .updated_revision(&cx.snap.replica_sets)
        .unwrap_or_default();
    let new_pods = cx.target.pods_at(&cx.snap.pods, revision);
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let done = new_pods
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(done.min(total), total));
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let back = saved.direction == Direction::Back;
    let (late, next_deadline) = late_pod(&new_pods, timeout, cx.now);
    let missing = missing_replacement(cx, &new_pods, back);
    let requeue = time::earliest(
        next_deadline.map(|t| time::until(cx.now, t)),
        missing.as_ref().map(|(_, by)| time::until(cx.now, *by)),
    );
    let stalled = late
        .map(|pod| format!("pod {} was not Ready within {timeout}s", pods::name(pod)))
        .or_else(|| {
            missing
                .as_ref()
                .filter(|(_, by)| cx.now >= *by)
                .map(|(what, _)| what.clone())
        });

    if back {
        let reason = saved.reason.clone().unwrap_or_default();
        if cx.target.is_complete() {
            let phase = cx.back_outcome();
            return Progressed::finish(
                phase,
                format!("{reason}; rolled back to the previous template"),
            );
        }
        if let Some(stalled) = stalled {
            return super::stalled_rollback::end(cx, saved, &reason, &stalled);
        }
        let message =
            format!("{reason}; rolling back, {done}/{total} pods on the previous template");
        if let Some(p) = pace(cx, "RollingBack", &message) {
            return p.with_progress(progress);
        }
        return wait("RollingBack", message, missing.is_some(), requeue).with_progress(progress);
    }

    if cx.aborting {
        return go_back(cx, saved, "aborted".to_string());
    }
    // Its controller's own deadline counts too (not on the way back: the verdict on the
    // rollout given up stays until the rollback makes progress).
    let stalled = stalled.or_else(|| {
        cx.target
            .rollout_given_up()
            .map(|m| format!("{} gave up its rollout: {m}", cx.target))
    });
    // The checks on a replaced pod they have not passed on yet, before the next one is touched.
    let mut gate = checks::after_each_pod(cx, &new_pods);
    let failed_check = checks::failure(&gate);
    if let Some(reason) = stalled.or(failed_check) {
        if cx.spec.rolling_restart.rollback_on_failure {
            return go_back(cx, saved, reason).with_gate(CheckStage::AfterEachPod, gate);
        }
        let halted = Saved {
            halted: true,
            ..saved.clone()
        };
        let mut patch = mark_patch(cx.plan, &halted);
        let held = match cx.target.pause_spec(true) {
            Some(spec) => {
                patch["spec"] = spec;
                "paused"
            }
            None => "held where it stands",
        };
        let mut p = Progressed::finish(
            Phase::Failed,
            format!(
                "{reason}; rollout halted with {} {held} ({done}/{total} pods replaced)",
                cx.target
            ),
        );
        p.actions.push(cx.target.patch(patch));
        return p
            .with_progress(progress)
            .with_gate(CheckStage::AfterEachPod, gate);
    }
    if let (Some(target_paused), Some(pause)) =
        (cx.target.paused(), cx.target.pause_spec(cx.spec.paused))
        && target_paused != cx.spec.paused
    {
        let word = if cx.spec.paused {
            "pausing"
        } else {
            "resuming"
        };
        return Progressed::act(
            if cx.spec.paused { "Paused" } else { "Rolling" },
            format!("{word} the rollout at {done}/{total} pods"),
            vec![cx.target.patch(serde_json::json!({"spec": pause}))],
        )
        .with_progress(progress);
    }
    if cx.spec.paused {
        return Progressed::paused(done, total).with_gate(CheckStage::AfterEachPod, gate);
    }
    let so_far = format!("{done}/{total} pods replaced");
    if let Some(p) = checks::checking_pod(
        &mut gate,
        &so_far,
        progress.clone(),
        cx.pod_replaced(done, total, "new template"),
    ) {
        return p;
    }
    let replaced: Vec<Action> = cx
        .pod_replaced(done, total, "new template")
        .into_iter()
        .collect();
    if cx.target.is_complete() {
        let mut p = Progressed::finish(
            Phase::Succeeded,
            format!("rolled out the new template to {total} pods"),
        )
        .with_progress(Some(Progress::new(total, total)));
        p.actions = replaced;
        return p.with_gate(CheckStage::AfterEachPod, gate);
    }
    if let Some(mut p) = pace(cx, "Rolling", &format!("{done}/{total} pods replaced")) {
        p.actions.extend(replaced);
        return p
            .with_progress(progress)
            .with_gate(CheckStage::AfterEachPod, gate);
    }
    let (waiting_for, hold) = availability_wait(&new_pods, min_ready, cx.now);
    let mut p = wait(
        "Rolling",
        format!("{done}/{total} pods replaced{waiting_for}"),
        missing.is_some(),
        time::earliest(requeue, hold),
    )
    .with_progress(progress);
    p.actions = replaced;
    p.with_gate(CheckStage::AfterEachPod, gate)
}

/// The step of a rollout waiting for its next replacement pod to appear: its clock starts
/// when the plan first sees that wait.
const WAITING_FOR_POD: &str = "WaitingForPod";

/// When every replacement so far is available, none of the pods is still stopping (a
/// StatefulSet makes the replacement only once the pod it replaces is gone) and another
/// replacement is due: the wait for its controller to create it, what the rollout fails with
/// if it does not, and when (`timeout` after the wait began).
fn missing_replacement(cx: &Cx, new_pods: &[&Pod], back: bool) -> Option<(String, Timestamp)> {
    let total = cx.target.replicas();
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    if new_pods.len() as i32 >= total
        || cx.target.is_complete()
        || cx.snap.pods.iter().any(pods::is_terminating)
        || !new_pods
            .iter()
            .all(|p| pods::is_available(p, min_ready, cx.now))
    {
        return None;
    }
    let what = format!(
        "no replacement pod appeared within {timeout}s ({}/{total} pods on the {} template; {} creates none)",
        new_pods.len(),
        if back { "previous" } else { "new" },
        cx.target
    );
    let since = cx.step_since(WAITING_FOR_POD);
    Some((what, pods::add_seconds(since, timeout as f64)))
}

/// The wait of a rollout between its moves, in its own step while a replacement is due.
fn wait(
    step: &'static str,
    message: String,
    missing: bool,
    requeue: Option<std::time::Duration>,
) -> Progressed {
    if missing {
        let message = format!("{message}; waiting for the next replacement pod to appear");
        return Progressed::wait(WAITING_FOR_POD, message, requeue);
    }
    Progressed::wait(step, message, requeue)
}

/// Puts the original template back; the workload's controller replaces the new pods one
/// at a time, the same way it brought them.
fn go_back(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let mut target = cx.target.clone();
    if let Some(template) = &saved.template {
        target.set_template(template.clone());
    }
    target.set_paused(false);
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        ..saved.clone()
    };
    mark(&mut target, cx.plan, &back);
    Progressed::act(
        "RollingBack",
        format!("{reason}; rolling back to the previous template"),
        vec![
            target.replace(),
            Action::warning(
                "RollingBack",
                format!("{reason}; rolling back to the previous template"),
            ),
        ],
    )
}

/// The step the workload itself asks for next, where it paces the rollout through the
/// operator (lowering a partition, or evicting pods its controller does not replace itself).
pub(super) fn pace(cx: &Cx, step: &'static str, message: &str) -> Option<Progressed> {
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    match cx.target.pace(&cx.snap.pods, min_ready, cx.now) {
        Pace::Itself | Pace::Hold | Pace::Done => None,
        Pace::Release { ordinal, patch } => Some(Progressed::act(
            step,
            format!(
                "{message}; pod {}-{ordinal} is replaced next",
                cx.target.name()
            ),
            vec![cx.target.patch(patch)],
        )),
        Pace::Evict(pod) => Some(Progressed::act(
            step,
            format!("{message}; evicting pod {pod}"),
            vec![
                Action::EvictPod { name: pod.clone() },
                Action::event(
                    "PodEvicted",
                    format!("evicted pod {pod} for its replacement"),
                ),
            ],
        )),
        Pace::Delete(pod) => Some(Progressed::act(
            step,
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
