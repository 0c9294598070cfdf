//! RollingRestart without a template change (a plain restart): a surge pod joins first (where
//! the workload can surge), then the old pods are evicted one at a time through the Eviction
//! API in the workload's order, each replacement available for `minReadySeconds` before the
//! next. The template is never touched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::checks;
use super::{Cx, Progressed};
use crate::api::{CheckStage, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::names::{self, Rule};
use crate::operator::rollout::late_pod;
use crate::operator::workload::saved::{Mode, Saved, mark_patch};
use crate::operator::{pods, time};

pub const ROLE_LABEL: &str = "cutover.dev/role";
pub const PLAN_LABEL: &str = "cutover.dev/plan";

pub(super) fn begin(cx: &Cx) -> Progressed {
    let saved = Saved {
        mode: Some(Mode::Restart),
        started_at: Some(cx.now),
        restart_pods: cx
            .snap
            .pods
            .iter()
            .filter(|p| !is_surge(p) && !pods::is_terminating(p))
            .filter_map(|p| p.metadata.uid.clone())
            .collect(),
        ..Default::default()
    };
    let total = cx.target.replicas();
    if !cx.target.can_surge() {
        return Progressed::act(
            "Restarting",
            format!(
                "restarting {total} pods of {} one at a time (it cannot surge: one pod at a time is out)",
                cx.target
            ),
            vec![cx.target.patch(mark_patch(cx.plan, &saved))],
        )
        .with_progress(Some(Progress::new(0, total)));
    }
    Progressed::act(
        "Surging",
        format!("starting a surge pod before restarting {total} pods one at a time"),
        vec![
            cx.target.patch(mark_patch(cx.plan, &saved)),
            Action::CreatePod(Box::new(surge_pod(cx))),
        ],
    )
    .with_progress(Some(Progress::new(0, total)))
}

/// Is this one of the operator's surge pods (of any plan)?
pub fn is_surge(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(ROLE_LABEL).is_some_and(|r| r == "surge"))
}

/// The surge pod's name: `<target>-surge-<plan>`, cut with a hash where that is longer than a
/// pod's name may be.
pub(crate) fn surge_name(cx: &Cx) -> String {
    names::derive(
        &cx.spec.target.name,
        &format!("surge-{}", cx.plan),
        Rule::Subdomain(253),
    )
}

/// A pod like the target's, serving through the Service while the others restart. It is
/// owned by the plan, so deleting the plan removes it in any case, but the plan is not its
/// controller: the disruption controller needs the scale of a pod's controller for a budget
/// with `maxUnavailable` or a percentage, a plan has none, and such a budget would then allow
/// no eviction at all. Without a controller the pod is unmanaged and the budget counts the
/// target's pods alone.
fn surge_pod(cx: &Cx) -> Pod {
    let template = cx.target.template().cloned().unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    labels.remove(cx.target.kind().revision_label());
    labels.insert(ROLE_LABEL.into(), "surge".into());
    labels.insert(PLAN_LABEL.into(), cx.plan.into());
    Pod {
        metadata: ObjectMeta {
            name: Some(surge_name(cx)),
            namespace: cx.snap.plan.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![OwnerReference {
                controller: Some(false),
                ..plan_owner(cx)
            }]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

pub(crate) fn plan_owner(cx: &Cx) -> OwnerReference {
    OwnerReference {
        api_version: "cutover.dev/v1alpha1".into(),
        kind: "MaintenancePlan".into(),
        name: cx.plan.to_string(),
        uid: cx.snap.plan.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let total = cx.target.replicas();
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let surge_name = surge_name(cx);
    let surge = cx.snap.pods.iter().find(|p| pods::name(p) == surge_name);
    let workers: Vec<&Pod> = cx.snap.pods.iter().filter(|p| !is_surge(p)).collect();
    let live: Vec<&Pod> = workers
        .iter()
        .copied()
        .filter(|p| !pods::is_terminating(p))
        .collect();
    // A pod is old while it is one of those the plan began with, by UID: a fact of the
    // server's. Its creation timestamp is not one to compare with the plan's start: whole
    // seconds on a real API server, and from another clock than the operator's.
    let is_old = |p: &Pod| {
        p.metadata
            .uid
            .as_ref()
            .is_some_and(|uid| saved.restart_pods.contains(uid))
    };
    let renewed: Vec<&Pod> = live.iter().copied().filter(|p| !is_old(p)).collect();
    let done = renewed
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let progress = Some(Progress::new(done.min(total), total));

    if cx.aborting {
        return Progressed::finish(
            Phase::Aborted,
            format!("aborted after restarting {done}/{total} pods"),
        )
        .with_progress(progress);
    }
    match surge {
        None if cx.target.can_surge() => {
            return Progressed::act(
                "Surging",
                "starting the surge pod".into(),
                vec![Action::CreatePod(Box::new(surge_pod(cx)))],
            )
            .with_progress(progress);
        }
        Some(surge) if !pods::is_ready(surge) => return wait_for_surge(cx, surge, progress),
        _ => {}
    }
    let (late, deadline) = late_pod(&renewed, timeout, cx.now);
    if let Some(pod) = late {
        return Progressed::finish(
            Phase::Failed,
            format!("replacement pod {} was not Ready within {timeout}s; restart halted at {done}/{total} pods", pods::name(pod)),
        )
        .with_progress(progress);
    }
    let evicting_by = pods::add_seconds(cx.step_since("Evicting"), timeout as f64);
    if cx.seconds_in("Evicting") > timeout as f64 {
        return Progressed::finish(
            Phase::Failed,
            format!(
                "an old pod could not be evicted and replaced within {timeout}s (a PodDisruptionBudget allows no disruption, or the pod does not stop); restart halted at {done}/{total} pods"
            ),
        )
        .with_progress(progress);
    }
    if let Some(pod) = workers.iter().find(|p| pods::is_terminating(p)) {
        return Progressed::wait(
            "Evicting",
            format!("waiting for pod {} to stop", pods::name(pod)),
            time::earliest(
                deadline.map(|t| time::until(cx.now, t)),
                Some(time::until(cx.now, evicting_by)),
            ),
        )
        .with_progress(progress);
    }
    if let Some(pod) = renewed
        .iter()
        .find(|p| !pods::is_available(p, min_ready, cx.now))
    {
        let hold = pods::available_at(pod, min_ready).map(|t| time::until(cx.now, t));
        let requeue = time::earliest(hold, deadline.map(|t| time::until(cx.now, t)));
        return Progressed::wait(
            "WaitingForPod",
            format!(
                "{done}/{total} pods restarted; waiting for pod {} to be available",
                pods::name(pod)
            ),
            requeue,
        )
        .with_progress(progress);
    }
    if (live.len() as i32) < total {
        // The evicted pod is gone; its controller must make a new one in time.
        let appear_by = pods::add_seconds(cx.step_since("WaitingForPod"), timeout as f64);
        if cx.now >= appear_by {
            return Progressed::finish(
                Phase::Failed,
                format!(
                    "no replacement pod appeared within {timeout}s of the last eviction ({} of {total} pods there; {} creates none); restart halted at {done}/{total} pods",
                    live.len(),
                    cx.target
                ),
            )
            .with_progress(progress);
        }
        return Progressed::wait(
            "WaitingForPod",
            format!("{done}/{total} pods restarted; waiting for the replacement pod to appear"),
            Some(time::until(cx.now, appear_by)),
        )
        .with_progress(progress);
    }
    let mut gate = checks::after_each_pod(cx, &renewed);
    if let Some(why) = checks::failure(&gate) {
        let message = format!("{why}; restart halted at {done}/{total} pods");
        return Progressed::finish(Phase::Failed, message)
            .with_progress(progress)
            .with_gate(CheckStage::AfterEachPod, gate);
    }
    let so_far = format!("{done}/{total} pods restarted");
    if let Some(p) = checks::checking_pod(&mut gate, &so_far, progress.clone(), None) {
        return p;
    }
    if cx.spec.paused {
        return Progressed::paused(done, total).with_gate(CheckStage::AfterEachPod, gate);
    }
    let mut old: Vec<&Pod> = live.iter().copied().filter(|p| is_old(p)).collect();
    cx.target.restart_order(&mut old);
    let p = match old.first() {
        None => Progressed::finish(
            Phase::Succeeded,
            format!("restarted {total} pods one at a time"),
        )
        .with_progress(Some(Progress::new(total, total))),
        Some(pod) => {
            let name = pods::name(pod).to_string();
            Progressed::act(
                "Evicting",
                format!("{done}/{total} pods restarted; evicting pod {name}"),
                vec![
                    Action::EvictPod { name: name.clone() },
                    Action::event(
                        "PodEvicted",
                        format!("evicted pod {name} for restart ({}/{total})", done + 1),
                    ),
                ],
            )
            .with_progress(progress)
        }
    };
    p.with_gate(CheckStage::AfterEachPod, gate)
}

/// The surge pod is not Ready yet: wait for it, or fail (nothing restarted) once it is late.
fn wait_for_surge(cx: &Cx, surge: &Pod, progress: Option<Progress>) -> Progressed {
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let surge_name = pods::name(surge);
    let (late, deadline) = late_pod(&[surge], timeout, cx.now);
    if late.is_some() {
        return Progressed::finish(
            Phase::Failed,
            format!("surge pod {surge_name} was not Ready within {timeout}s; no pod was restarted"),
        )
        .with_progress(progress);
    }
    Progressed::wait(
        "Surging",
        format!("waiting for surge pod {surge_name} to be Ready"),
        deadline.map(|t| time::until(cx.now, t)),
    )
    .with_progress(progress)
}
