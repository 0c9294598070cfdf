//! FullRestart (only with `allowDowntime`) in the GitOps flow of a target that holds its
//! pending template back itself: scaled to zero, and once every pod is gone (its controller
//! then makes the pending template its current revision, whatever its update strategy) back
//! to its replica count, every new pod made from the pending template, so that no old pod runs
//! beside a new one. The template and the update strategy are never written; the record holds
//! Git's replica count from the first request on, and the cleanup puts it back.
//!
//! Going back is possible only while a pod of the current revision is left: an abort (or a
//! pod that does not stop) then scales back up under rolling updates held at a partition of
//! its replicas, so that the pods come back at the current revision. Once every pod has
//! stopped there is no revision to go back to without writing the template: a late new pod
//! fails the plan with the pods left on the pending template, and an abort lets the restart
//! finish.

use serde_json::json;

use super::full_restart::downtime;
use super::held_rollout::moved_on;
use super::{Cx, Progressed};
use crate::api::{Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::late_pod;
use crate::operator::workload::Pace;
use crate::operator::workload::saved::{Direction, Held, Mode, Saved, mark_patch};
use crate::operator::{pods, time};

pub(super) fn begin(cx: &Cx, held: Held) -> Progressed {
    let replicas = cx.target.replicas();
    let mut saved = Saved {
        mode: Some(Mode::HeldFullRestart),
        started_at: Some(cx.now),
        replicas: Some(replicas),
        held: Some(held),
        ..Default::default()
    };
    cx.target.record_held_settings(&mut saved);
    let mut patch = mark_patch(cx.plan, &saved);
    patch["spec"] = json!({"replicas": 0});
    Progressed::act(
        "ScalingDown",
        format!(
            "stopping all {replicas} pods of {} before any starts from its pending template (downtime starts)",
            cx.target
        ),
        vec![cx.target.patch(patch)],
    )
    .with_progress(Some(Progress::new(0, replicas)))
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let Some(held) = saved.held.as_ref() else {
        return Progressed::finish(
            Phase::Failed,
            "the record of the plan's revisions is missing from the target".into(),
        );
    };
    if saved.direction == Direction::Back {
        return come_back(cx, saved, held);
    }
    let total = saved.replicas.unwrap_or(1);
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;

    if saved.scaled_down_at.is_none() {
        if cx.aborting && !moved_on(cx, held) {
            return turn_back(cx, saved, "aborted".into());
        }
        if cx.target.replicas() != 0 {
            // Git's replica count came back (a sync), or the first write was lost.
            let mut patch = mark_patch(cx.plan, saved);
            patch["spec"] = json!({"replicas": 0});
            return Progressed::act(
                "ScalingDown",
                "stopping all pods".into(),
                vec![cx.target.patch(patch)],
            );
        }
        let left = cx.snap.pods.len();
        if left > 0 && cx.seconds_in("ScalingDown") > timeout as f64 && !moved_on(cx, held) {
            return turn_back(
                cx,
                saved,
                format!("{left} pods did not stop within {timeout}s"),
            );
        }
        if left > 0 || !moved_on(cx, held) {
            let what = if left > 0 {
                format!("waiting for {left} pods to stop")
            } else {
                format!(
                    "all pods stopped; waiting for the controller of {} to take the pending template as its current revision",
                    cx.target
                )
            };
            return Progressed::wait("ScalingDown", what, None)
                .with_progress(Some(Progress::new(0, total)));
        }
        let next = Saved {
            scaled_down_at: Some(cx.now),
            ..saved.clone()
        };
        let mut patch = mark_patch(cx.plan, &next);
        patch["spec"] = json!({"replicas": total});
        return Progressed::act(
            "ScalingUp",
            format!("all pods stopped; starting {total} pods from the pending template"),
            vec![cx.target.patch(patch)],
        )
        .with_progress(Some(Progress::new(0, total)));
    }

    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let live: Vec<_> = cx
        .snap
        .pods
        .iter()
        .filter(|p| !pods::is_terminating(p))
        .collect();
    let available = cx
        .target
        .pods_at(&cx.snap.pods, &held.update)
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(available.min(total), total));
    let no_way_back = format!(
        "every pod had stopped, so the controller of {} made the pending template its current revision and there is none to go back to without a template change (revert the template in Git and run a plan for that)",
        cx.target
    );
    let (late, deadline) = late_pod(&live, timeout, cx.now);
    if let Some(pod) = late {
        return Progressed::finish(
            Phase::Failed,
            format!(
                "pod {} was not Ready within {timeout}s; left running the pending template ({available}/{total} pods available): {no_way_back}",
                pods::name(pod)
            ),
        )
        .with_progress(progress);
    }
    if live.len() as i32 == total && available == total && cx.target.is_complete() {
        let downtime = downtime(saved, &live);
        let (phase, what) = if cx.aborting {
            (
                Phase::Aborted,
                format!("aborted too late to go back: {no_way_back}; "),
            )
        } else {
            (Phase::Succeeded, String::new())
        };
        let mut p = Progressed::finish(
            phase,
            format!(
                "{what}restarted all {total} pods from the pending template; downtime {downtime}; {} is as Git has it",
                cx.target
            ),
        )
        .with_progress(Some(Progress::new(total, total)));
        p.downtime = Some(downtime);
        return p;
    }
    Progressed::wait(
        "ScalingUp",
        format!("{available}/{total} pods available"),
        deadline.map(|t| time::until(cx.now, t)),
    )
    .with_progress(progress)
}

/// Scales back up at once, under rolling updates held at a partition of its replicas: the pods
/// that stopped come back at the current revision, those left keep running.
fn turn_back(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        ..saved.clone()
    };
    let replicas = saved.replicas.unwrap_or(1);
    let mut patch = mark_patch(cx.plan, &back);
    patch["spec"] = json!({"replicas": replicas});
    if let Some(serde_json::Value::Object(strategy)) = cx.target.back_to_current_spec(replicas) {
        patch["spec"]
            .as_object_mut()
            .expect("an object")
            .extend(strategy);
    }
    let message = format!("{reason}; starting the stopped pods again from the current revision");
    Progressed::act(
        "ScalingUp",
        message.clone(),
        vec![
            cx.target.patch(patch),
            Action::warning("RollingBack", message),
        ],
    )
}

/// Going back: every pod runs the current revision again and is available.
fn come_back(cx: &Cx, saved: &Saved, held: &Held) -> Progressed {
    let reason = saved.reason.clone().unwrap_or_default();
    let total = saved.replicas.unwrap_or(1);
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    if moved_on(cx, held) {
        return Progressed::finish(
            cx.back_outcome(),
            format!(
                "{reason}; too late to go back: every pod had stopped, so the controller of {} made the pending template its current revision and the pods start from it",
                cx.target
            ),
        );
    }
    if cx.target.replicas() != total || !cx.target.brings_back_current() {
        return turn_back(cx, saved, reason);
    }
    let back = cx.target.pods_at(&cx.snap.pods, &held.current);
    let available = back
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(available.min(total), total));
    // A pod that came back from the pending template (before the partition was seen) goes
    // again, one at a time.
    match cx.target.pace_back(
        &cx.snap.pods,
        &held.current,
        &held.updated_before,
        min_ready,
        cx.now,
    ) {
        Pace::Delete(pod) | Pace::Evict(pod) => {
            return Progressed::act(
                "ScalingUp",
                format!("{reason}; deleting pod {pod}, which came back from the pending template"),
                vec![Action::DeletePod { name: pod }],
            )
            .with_progress(progress);
        }
        Pace::Itself | Pace::Hold | Pace::Release { .. } | Pace::Done => {}
    }
    if available == total {
        return Progressed::finish(
            cx.back_outcome(),
            format!(
                "{reason}; all {total} pods run the current revision again; {} is as Git has it",
                cx.target
            ),
        )
        .with_progress(progress);
    }
    let (late, deadline) = late_pod(&back, timeout, cx.now);
    if let Some(pod) = late {
        return Progressed::finish(
            Phase::Failed,
            format!(
                "{reason}; the current revision did not come back either: pod {} was not Ready within {timeout}s",
                pods::name(pod)
            ),
        );
    }
    Progressed::wait(
        "ScalingUp",
        format!("{reason}; {available}/{total} pods of the current revision available"),
        deadline.map(|t| time::until(cx.now, t)),
    )
    .with_progress(progress)
}
