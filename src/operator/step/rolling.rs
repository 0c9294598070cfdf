//! RollingRestart with a new template: the Deployment's own controller replaces the pods,
//! paced by the operator (surge first, one pod at a time, each available for
//! `minReadySeconds` before the next), halted or rolled back when a replacement is late.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Cx, Progressed};
use crate::api::{Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::{desired_replicas, is_complete, late_pod, newest_hash, pods_of};
use crate::operator::target_state::{Direction, Mode, Saved, mark, mark_patch};
use crate::operator::{pods, time};

/// One extra pod at a time, never one fewer: the ready count never drops below the replicas.
fn surge_one() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(1)),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    }
}

pub(super) fn begin(cx: &Cx, new_template: PodTemplateSpec) -> Progressed {
    let mut target: Deployment = cx.target.clone();
    let spec = target.spec.get_or_insert_with(Default::default);
    let saved = Saved {
        mode: Some(Mode::Rollout),
        started_at: Some(cx.now),
        strategy: spec.strategy.clone(),
        min_ready_seconds: spec.min_ready_seconds,
        paused: spec.paused,
        template: Some(spec.template.clone()),
        ..Default::default()
    };
    spec.template = new_template;
    spec.strategy = Some(surge_one());
    let own = spec.min_ready_seconds.unwrap_or(0);
    spec.min_ready_seconds = Some(
        own.max(
            cx.spec
                .rolling_restart
                .min_ready_seconds
                .min(i32::MAX as i64) as i32,
        ),
    );
    spec.paused = Some(false);
    mark(&mut target, cx.plan, &saved);
    let total = desired_replicas(cx.target);
    Progressed::act(
        "Rolling",
        format!("rolling out the new template to {total} pods, one at a time"),
        vec![Action::ReplaceDeployment(Box::new(target))],
    )
    .with_progress(Some(Progress::new(0, total)))
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let total = desired_replicas(cx.target);
    let hash = newest_hash(&cx.snap.replica_sets).unwrap_or_default();
    let new_pods = pods_of(&cx.snap.pods, hash);
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let done = new_pods
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(done.min(total), total));
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let (late, next_deadline) = late_pod(&new_pods, timeout, cx.now);
    let requeue = next_deadline.map(|t| time::until(cx.now, t));

    if saved.direction == Direction::Back {
        let reason = saved.reason.clone().unwrap_or_default();
        if is_complete(cx.target) {
            let phase = cx.back_outcome();
            return Progressed::finish(
                phase,
                format!("{reason}; rolled back to the previous template"),
            );
        }
        if let Some(pod) = late {
            return Progressed::finish(
                Phase::Failed,
                format!(
                    "{reason}; the rollback stalled too: pod {} was not Ready within {timeout}s",
                    pods::name(pod)
                ),
            );
        }
        return Progressed::wait(
            "RollingBack",
            format!("{reason}; rolling back, {done}/{total} pods on the previous template"),
            requeue,
        )
        .with_progress(progress);
    }

    if cx.aborting {
        return go_back(cx, saved, "aborted".to_string());
    }
    if let Some(pod) = late {
        let reason = format!("pod {} was not Ready within {timeout}s", pods::name(pod));
        if cx.spec.rolling_restart.rollback_on_failure {
            return go_back(cx, saved, reason);
        }
        let halted = Saved {
            halted: true,
            ..saved.clone()
        };
        let mut patch = mark_patch(cx.plan, &halted);
        patch["spec"] = serde_json::json!({"paused": true});
        let mut p = Progressed::finish(
            Phase::Failed,
            format!(
                "{reason}; rollout halted with deployment {} paused ({done}/{total} pods replaced)",
                cx.spec.target.name
            ),
        );
        p.actions.push(Action::PatchDeployment {
            name: cx.spec.target.name.clone(),
            patch,
        });
        return p.with_progress(progress);
    }
    let target_paused = cx
        .target
        .spec
        .as_ref()
        .and_then(|s| s.paused)
        .unwrap_or(false);
    if target_paused != cx.spec.paused {
        let word = if cx.spec.paused {
            "pausing"
        } else {
            "resuming"
        };
        return Progressed::act(
            if cx.spec.paused { "Paused" } else { "Rolling" },
            format!("{word} the rollout at {done}/{total} pods"),
            vec![Action::PatchDeployment {
                name: cx.spec.target.name.clone(),
                patch: serde_json::json!({"spec": {"paused": cx.spec.paused}}),
            }],
        )
        .with_progress(progress);
    }
    if cx.spec.paused {
        return Progressed::paused(done, total);
    }
    let replaced: Vec<Action> = cx
        .pod_replaced(done, total, "new template")
        .into_iter()
        .collect();
    if is_complete(cx.target) {
        let mut p = Progressed::finish(
            Phase::Succeeded,
            format!("rolled out the new template to {total} pods"),
        )
        .with_progress(Some(Progress::new(total, total)));
        p.actions = replaced;
        return p;
    }
    let waiting_for = new_pods
        .iter()
        .find(|p| !pods::is_available(p, min_ready, cx.now))
        .map(|p| format!("; waiting for pod {} to be Ready", pods::name(p)))
        .unwrap_or_default();
    let hold = new_pods
        .iter()
        .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready, cx.now))
        .filter_map(|p| pods::available_at(p, min_ready))
        .min()
        .map(|t| time::until(cx.now, t));
    let mut p = Progressed::wait(
        "Rolling",
        format!("{done}/{total} pods replaced{waiting_for}"),
        time::earliest(requeue, hold),
    )
    .with_progress(progress);
    p.actions = replaced;
    p
}

/// Puts the original template back; the Deployment's controller replaces the new pods one
/// at a time, the same way it brought them.
fn go_back(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let mut target = cx.target.clone();
    let spec = target.spec.get_or_insert_with(Default::default);
    if let Some(template) = &saved.template {
        spec.template = template.clone();
    }
    spec.paused = Some(false);
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
            Action::ReplaceDeployment(Box::new(target)),
            Action::warning(
                "RollingBack",
                format!("{reason}; rolling back to the previous template"),
            ),
        ],
    )
}
