//! The end of a RollingRestart whose rollback stalls too: the pods of the original template
//! it brings back are not Ready in time either (invariant 7 with two faults). The plan ends
//! Failed and keeps what serves. A Deployment is left paused as it stands, with the plan's
//! one-at-a-time strategy: its own strategy, given back unpaused, could stop serving pods
//! before any pod of the original template is Ready (Recreate stops them all at once). A
//! StatefulSet, whose controller replaces a pod only once the others are Ready, gets its own
//! update strategy back as on any other end. The message says what was left and what a
//! person must do.

use k8s_openapi::api::apps::v1::DeploymentStrategy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Cx, Progressed};
use crate::api::Phase;
use crate::operator::pods;
use crate::operator::workload::saved::{Saved, mark_patch};

/// `reason`: why the plan went back; `stalled`: what the way back waited for in vain.
pub(super) fn end(cx: &Cx, saved: &Saved, reason: &str, stalled: &str) -> Progressed {
    let serving: Vec<&str> = cx
        .snap
        .pods
        .iter()
        .filter(|p| pods::is_ready(p) && !pods::is_terminating(p))
        .map(pods::name)
        .collect();
    let total = cx.target.replicas();
    let serving = match serving.len() {
        0 => "no pod Ready".to_string(),
        n => format!("{n}/{total} pods Ready serving ({})", serving.join(", ")),
    };
    let target = cx.target;
    let Some(pause) = cx.target.pause_spec(true) else {
        return Progressed::finish(
            Phase::Failed,
            format!(
                "{reason}; the rollback stalled too: {stalled}; {target} has its own update strategy back, on the original template, with {serving}; to finish by hand: find why the pods of the original template do not get Ready; its controller replaces the others once they are"
            ),
        );
    };
    let halted = Saved {
        halted: true,
        ..saved.clone()
    };
    let mut patch = mark_patch(cx.plan, &halted);
    patch["spec"] = pause;
    let mut p = Progressed::finish(
        Phase::Failed,
        format!(
            "{reason}; the rollback stalled too: {stalled}; {target} is left paused as it stands, on the original template, with {serving}; to finish by hand: find why the pods of the original template do not get Ready, then set its strategy back to {} and unpause it (spec.paused: false); its controller then finishes the rollback",
            strategy_words(saved.strategy.as_ref())
        ),
    );
    p.actions.push(cx.target.patch(patch));
    p
}

/// A Deployment's strategy as a person writes it: `Recreate`, or `RollingUpdate (maxSurge
/// 25%, maxUnavailable 25%)`.
fn strategy_words(strategy: Option<&DeploymentStrategy>) -> String {
    let kind = strategy
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "RollingUpdate".into());
    let words = |v: Option<&IntOrString>| match v {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => "25%".into(),
    };
    if kind != "RollingUpdate" {
        return kind;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    format!(
        "RollingUpdate (maxSurge {}, maxUnavailable {})",
        words(rolling.and_then(|r| r.max_surge.as_ref())),
        words(rolling.and_then(|r| r.max_unavailable.as_ref()))
    )
}
