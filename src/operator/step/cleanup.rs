//! What a plan leaves behind when it ends: the target's own fields restored (unless a halted
//! rollout must stay paused), the operator's annotations removed, its surge pod deleted.
//! Idempotent: each action is derived from what is still there.

use super::Cx;
use super::restart::{PLAN_LABEL, is_surge};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::pods;
use crate::operator::target_state::{Mode, Saved, unmark_patch};

pub(super) fn actions(cx: &Cx, saved: Option<&Saved>, outcome: Phase) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(saved) = saved {
        let mut patch = unmark_patch();
        if !saved.halted {
            let mut spec = serde_json::Map::new();
            if saved.mode == Some(Mode::Rollout) {
                let strategy = saved.strategy.clone().unwrap_or_default();
                spec.insert(
                    "strategy".into(),
                    serde_json::json!({
                        "type": strategy.type_.unwrap_or_else(|| "RollingUpdate".into()),
                        "rollingUpdate": strategy.rolling_update,
                    }),
                );
                spec.insert(
                    "minReadySeconds".into(),
                    serde_json::json!(saved.min_ready_seconds),
                );
                spec.insert("paused".into(), serde_json::json!(saved.paused));
            }
            if let Some(replicas) = saved.replicas {
                spec.insert("replicas".into(), serde_json::json!(replicas));
            }
            if !spec.is_empty() {
                patch["spec"] = serde_json::Value::Object(spec);
            }
        }
        actions.push(Action::PatchDeployment {
            name: cx.spec.target.name.clone(),
            patch,
        });
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
    actions
}

fn is_mine(pod: &k8s_openapi::api::core::v1::Pod, plan: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(PLAN_LABEL))
        .is_some_and(|p| p == plan)
}
