//! What a plan leaves behind when it ends: the target's own fields restored (unless a halted
//! rollout must stay paused), the Services' selectors restored (unless a BlueGreen whose way
//! back stalled leaves green serving), the operator's annotations removed, its surge pod
//! deleted, the Jobs of its checks deleted with their pods.
//! Idempotent: each action is derived from what is still there.

use super::Cx;
use super::restart::{PLAN_LABEL, is_surge};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::pods;
use crate::operator::workload::saved::{Mode, Saved, unmark_patch};

pub(super) fn actions(cx: &Cx, saved: Option<&Saved>, outcome: Phase) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(saved) = saved {
        let mut patch = unmark_patch();
        if !saved.halted {
            let mut spec = serde_json::Map::new();
            if saved.mode == Some(Mode::Rollout) {
                spec = cx.target.restored_settings(saved);
            }
            // A kubectl-flow update moved like a pending template: the target resumes, unless
            // the sets went back as they stood (it stays paused, holding every pod).
            let stalled = saved.handover.as_ref().is_some_and(|h| h.stalled);
            if let (Some(Mode::PendingRollout), Some(paused), false) =
                (saved.mode, saved.paused, stalled)
            {
                spec.insert("paused".into(), serde_json::json!(paused));
            }
            if saved.held.is_some() {
                spec.extend(cx.target.restored_held_settings(saved));
            }
            if let Some(replicas) = saved.replicas {
                spec.insert("replicas".into(), serde_json::json!(replicas));
            }
            if !spec.is_empty() {
                patch["spec"] = serde_json::Value::Object(spec);
            }
        }
        // A BlueGreen whose way back stalled leaves green serving: the Services stay as
        // they are (the original selector would select green and blue at once).
        let keep_services = saved.halted && saved.mode == Some(Mode::BlueGreen);
        // Selectors first: the annotation that records them goes last.
        if !keep_services {
            restore_services(&mut actions, cx, saved);
        }
        actions.push(cx.target.patch(patch));
    }
    let serving_workers = cx
        .snap
        .pods
        .iter()
        .filter(|p| !is_surge(p) && pods::is_ready(p))
        .count();
    for surge in cx
        .snap
        .pods
        .iter()
        .filter(|p| is_surge(p) && is_mine(p, cx.plan))
    {
        if outcome == Phase::Failed && serving_workers == 0 {
            continue; // the surge pod is all that serves: keep it until the plan is deleted
        }
        if !pods::is_terminating(surge) {
            actions.push(Action::DeletePod {
                name: pods::name(surge).to_string(),
            });
        }
    }
    for job in cx
        .snap
        .jobs
        .iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
    {
        actions.push(Action::DeleteJob {
            name: job.metadata.name.clone().unwrap_or_default(),
        });
    }
    actions
}

/// The traffic, preview and peer Services as they were before the plan; green's twins gone.
fn restore_services(actions: &mut Vec<Action>, cx: &Cx, saved: &Saved) {
    restore_selector(
        actions,
        &cx.spec.service,
        cx.snap.service.as_ref(),
        saved.selector.as_ref(),
    );
    restore_selector(
        actions,
        &cx.spec.blue_green.preview_service,
        cx.snap.preview.as_ref(),
        saved.preview_selector.as_ref(),
    );
    actions.extend(super::isolation::restore(cx, saved));
}

fn is_mine(pod: &k8s_openapi::api::core::v1::Pod, plan: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(PLAN_LABEL))
        .is_some_and(|p| p == plan)
}

/// Puts a Service's selector back to what it was before the plan, if it differs.
fn restore_selector(
    actions: &mut Vec<Action>,
    name: &str,
    service: Option<&k8s_openapi::api::core::v1::Service>,
    original: Option<&std::collections::BTreeMap<String, String>>,
) {
    let (Some(service), Some(original)) = (service, original) else {
        return;
    };
    let current = service.spec.as_ref().and_then(|s| s.selector.as_ref());
    if current != Some(original) {
        actions.push(Action::SetServiceSelector {
            service: name.to_string(),
            selector: original.clone(),
        });
    }
}
