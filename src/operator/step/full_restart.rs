//! FullRestart (only with `allowDowntime`): scale to zero, wait until every pod is gone,
//! apply the new template, scale back and wait until all are available. Going back after a
//! failure or an abort runs the same cycle with the original template.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::jiff::Timestamp;

use super::{Cx, Progressed};
use crate::api::{Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::late_pod;
use crate::operator::template::updated_template;
use crate::operator::workload::saved::{Direction, Mode, Saved, mark, mark_patch};
use crate::operator::{pods, time};

pub(super) fn begin(cx: &Cx, _new_template: PodTemplateSpec) -> Progressed {
    let replicas = cx.target.replicas();
    let saved = Saved {
        mode: Some(Mode::FullRestart),
        started_at: Some(cx.now),
        replicas: Some(replicas),
        template: Some(cx.target.template().cloned().unwrap_or_default()),
        ..Default::default()
    };
    let mut patch = mark_patch(cx.plan, &saved);
    patch["spec"] = serde_json::json!({"replicas": 0});
    Progressed::act(
        "ScalingDown",
        format!("stopping all {replicas} pods (downtime starts)"),
        vec![cx.target.patch(patch)],
    )
    .with_progress(Some(Progress::new(0, replicas)))
}

/// The template this cycle brings up.
fn wanted_template(cx: &Cx, saved: &Saved) -> PodTemplateSpec {
    let original = saved.template.clone().unwrap_or_default();
    if saved.direction == Direction::Back {
        return original;
    }
    let update = cx.spec.update.clone().unwrap_or_default();
    updated_template(&cx.target.to_string(), &original, &update).unwrap_or(original)
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let total = saved.replicas.unwrap_or(1);
    let wanted = wanted_template(cx, saved);
    let scaling_up = saved.scaled_down_at.is_some();
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let live: Vec<_> = cx
        .snap
        .pods
        .iter()
        .filter(|p| !pods::is_terminating(p))
        .collect();
    let done = live
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(done.min(total), total));
    let back = saved.direction == Direction::Back;
    let reason = saved.reason.clone().unwrap_or_default();

    if !scaling_up {
        if cx.aborting && !back {
            // Nothing new has started yet: bring the original back up.
            return turn_back(cx, saved, "aborted".into(), false);
        }
        if cx.target.replicas() != 0 {
            let mut patch = mark_patch(cx.plan, saved);
            patch["spec"] = serde_json::json!({"replicas": 0});
            return Progressed::act(
                "ScalingDown",
                "stopping all pods".into(),
                vec![cx.target.patch(patch)],
            );
        }
        if !cx.snap.pods.is_empty()
            && cx.seconds_in("ScalingDown")
                > cx.spec.rolling_restart.pod_ready_timeout_seconds as f64
        {
            let reason = format!(
                "{} pods did not stop within {}s",
                cx.snap.pods.len(),
                cx.spec.rolling_restart.pod_ready_timeout_seconds
            );
            if back {
                return Progressed::finish(Phase::Failed, reason);
            }
            return turn_back(cx, saved, reason, false);
        }
        if !cx.snap.pods.is_empty() {
            let stop_by = pods::add_seconds(
                cx.step_since("ScalingDown"),
                cx.spec.rolling_restart.pod_ready_timeout_seconds as f64,
            );
            return Progressed::wait(
                "ScalingDown",
                format!("waiting for {} pods to stop", cx.snap.pods.len()),
                Some(time::until(cx.now, stop_by)),
            )
            .with_progress(Some(Progress::new(0, total)));
        }
        let mut target = cx.target.clone();
        target.set_template(wanted);
        target.set_replicas(total);
        let next = Saved {
            scaled_down_at: Some(cx.now),
            ..saved.clone()
        };
        mark(&mut target, cx.plan, &next);
        let version = if back {
            "the original template"
        } else {
            "the new template"
        };
        return Progressed::act(
            "ScalingUp",
            format!("all pods stopped; starting {total} pods with {version}"),
            vec![target.replace()],
        )
        .with_progress(Some(Progress::new(0, total)));
    }

    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let (late, deadline) = late_pod(&live, timeout, cx.now);
    // Every pod must have appeared within the timeout of the scale-up.
    let appear_by = saved
        .scaled_down_at
        .map(|at| pods::add_seconds(at, timeout as f64))
        .filter(|_| (live.len() as i32) < total);
    let late = late
        .map(|pod| format!("pod {} was not Ready within {timeout}s", pods::name(pod)))
        .or_else(|| {
            appear_by.filter(|by| cx.now >= *by).map(|_| {
                format!(
                    "only {} of {total} pods appeared within {timeout}s ({} creates no more)",
                    live.len(),
                    cx.target
                )
            })
        });
    let deadline = time::earliest(
        deadline.map(|t| time::until(cx.now, t)),
        appear_by.map(|t| time::until(cx.now, t)),
    );
    if back {
        if cx.target.is_complete() {
            let phase = cx.back_outcome();
            return Progressed::finish(
                phase,
                format!("{reason}; restarted with the original template"),
            )
            .with_progress(progress);
        }
        if let Some(late) = late {
            return Progressed::finish(
                Phase::Failed,
                format!("{reason}; the original template did not come back either: {late}"),
            );
        }
    } else {
        if cx.aborting {
            return turn_back(cx, saved, "aborted".into(), true);
        }
        if let Some(reason) = late {
            if cx.spec.rolling_restart.rollback_on_failure {
                return turn_back(cx, saved, reason, true);
            }
            return Progressed::finish(
                Phase::Failed,
                format!("{reason}; left scaled up with the new template"),
            )
            .with_progress(progress);
        }
        if cx.target.is_complete() {
            let downtime = downtime(saved, &live);
            let mut p = Progressed::finish(
                Phase::Succeeded,
                format!("restarted all {total} pods with the new template; downtime {downtime}"),
            )
            .with_progress(Some(Progress::new(total, total)));
            p.downtime = Some(downtime);
            return p;
        }
    }
    Progressed::wait(
        "ScalingUp",
        format!("{done}/{total} pods available"),
        deadline,
    )
    .with_progress(progress)
}

/// Restart with the original template: scale down again first if new pods were started.
fn turn_back(cx: &Cx, saved: &Saved, reason: String, new_pods_started: bool) -> Progressed {
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        scaled_down_at: None,
        ..saved.clone()
    };
    let mut patch = mark_patch(cx.plan, &back);
    patch["spec"] = serde_json::json!({"replicas": 0});
    let what = if new_pods_started {
        "stopping the new pods, then starting the original ones"
    } else {
        "starting the original pods again"
    };
    Progressed::act(
        "ScalingDown",
        format!("{reason}; {what}"),
        vec![
            cx.target.patch(patch),
            Action::warning("RollingBack", format!("{reason}; {what}")),
        ],
    )
}

/// From the scale-down to the first ready pod of the new version.
pub fn downtime(saved: &Saved, pods_now: &[&k8s_openapi::api::core::v1::Pod]) -> String {
    let start = saved.started_at.unwrap_or(Timestamp::UNIX_EPOCH);
    let first_ready = pods_now.iter().filter_map(|p| pods::ready_since(p)).min();
    match first_ready {
        Some(end) => format!("{:.3}s", pods::seconds_between(start, end).max(0.0)),
        None => "unknown".into(),
    }
}
