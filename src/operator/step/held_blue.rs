//! BlueGreen's part in the GitOps flow of a target that holds its pending template back
//! itself: once green serves, the target's pods (which then carry no traffic) are brought to
//! the pending template all at once, and, going back, to the current revision: the update
//! strategy is set so that its controller recreates a deleted pod at that revision (a
//! partition lowered to zero, or held at its replicas), then every pod off it is deleted.
//! The template is never written. Every turn is derived from the cluster.

use super::Cx;
use super::handover::Turn;
use crate::operator::action::Action;
use crate::operator::rollout::late_pod;
use crate::operator::workload::saved::{Held, Saved, mark_patch};
use crate::operator::{pods, time};

/// The first request of the move: the record that it started, and the update strategy under
/// which a deleted pod comes back at the pending template.
pub(super) fn start(cx: &Cx, saved: &Saved, held: &Held) -> Action {
    let moving = Saved {
        held: Some(Held {
            moving: true,
            ..held.clone()
        }),
        ..saved.clone()
    };
    let mut patch = mark_patch(cx.plan, &moving);
    if let Some(spec) = cx.target.forward_spec() {
        patch["spec"] = spec;
    }
    cx.target.patch(patch)
}

/// One turn of the move forward (to the pending template) or back (to the current revision,
/// but for the pods that ran the pending template before the plan).
pub(super) fn turn(cx: &Cx, held: &Held, back: bool) -> Turn {
    let target = cx.target;
    let (to, keep, words) = if back {
        (
            &held.current,
            &held.updated_before[..],
            "the current revision",
        )
    } else {
        (&held.update, &[][..], "its pending template")
    };
    let strategy = if back {
        (!target.brings_back_current())
            .then(|| target.back_to_current_spec(target.replicas()))
            .flatten()
    } else {
        target.forward_spec()
    };
    if let Some(spec) = strategy {
        return Turn::Act(
            vec![target.patch(serde_json::json!({"spec": spec}))],
            format!("setting {target} to recreate its pods from {words}"),
        );
    }
    if target.updated_revision(&[]).is_none() {
        return Turn::Wait(
            format!("waiting for the controller of {target} to see its spec"),
            None,
        );
    }
    let off = target.pods_off(&cx.snap.pods, to, keep);
    if !off.is_empty() {
        let names: Vec<&str> = off.iter().map(|p| pods::name(p)).collect();
        return Turn::Act(
            names
                .iter()
                .map(|name| Action::DeletePod {
                    name: name.to_string(),
                })
                .collect(),
            format!(
                "deleting pods {} of {target} so that they come back from {words}",
                names.join(", ")
            ),
        );
    }
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.blue_green.ready_timeout_seconds;
    let arrived = target.pods_at(&cx.snap.pods, to);
    let (late, deadline) = late_pod(&arrived, timeout, cx.now);
    if let Some(pod) = late {
        return Turn::Late(pods::name(pod).to_string());
    }
    let own = target.own_pods(&cx.snap.pods);
    let available = own
        .iter()
        .filter(|p| pods::is_available(p, min_ready, cx.now))
        .count() as i32;
    let total = target.replicas();
    if (own.len() as i32) < total || available < total {
        let hold = own
            .iter()
            .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready, cx.now))
            .filter_map(|p| pods::available_at(p, min_ready))
            .min()
            .map(|at| time::until(cx.now, at));
        return Turn::Wait(
            format!("{available}/{total} pods of {target} back from {words}"),
            time::earliest(deadline.map(|d| time::until(cx.now, d)), hold),
        );
    }
    Turn::Done
}
