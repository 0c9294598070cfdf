//! RollingRestart and FullRestart in the GitOps flow: the target is paused with a pending
//! template, and the pods move from its running ReplicaSet to the pending template's set
//! (one at a time, or all stopped first) while the target object stays exactly as Git has
//! it. A late pod always turns the plan back to the running set: a paused target cannot be
//! handed two half-filled sets without its controller rescaling them. Should the way back
//! stall as well, the sets go back to the target as they stand, every pod kept (it stays
//! paused: its controller may add its surge across them, never take a pod away), and the plan
//! fails, saying what a person must do.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::checks;
use super::full_restart;
use super::handover::{self, Pace, Turn};
use super::{Cx, Progressed};
use crate::api::{CheckStage, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::rollout::pods_of;
use crate::operator::workload::saved::{Direction, Handover, Mode, Saved, mark_patch};

pub(super) fn begin(cx: &Cx, pending: &ReplicaSet, stop_first: bool) -> Progressed {
    let (mut h, created) = handover::plan(cx, pending);
    h.stop_first = stop_first;
    let total = h.replicas;
    let saved = Saved {
        mode: Some(Mode::PendingRollout),
        started_at: Some(cx.now),
        handover: Some(h.clone()),
        ..Default::default()
    };
    let mut actions = vec![cx.target.patch(mark_patch(cx.plan, &saved))];
    actions.extend(handover::take_over(cx, &h, created));
    Progressed::act(
        "Rolling",
        format!(
            "moving {total} pods from replica set {} to the pending template's replica set {}",
            h.old_set, h.new_set
        ),
        actions,
    )
    .with_progress(Some(Progress::new(0, total)))
}

fn pace(h: &Handover) -> Pace {
    if h.stop_first {
        Pace::StopFirst
    } else {
        Pace::OneAtATime
    }
}

pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let Some(h) = saved.handover.as_ref() else {
        return Progressed::finish(
            Phase::Failed,
            "the record of the plan's replica sets is missing from the target".into(),
        );
    };
    let back = saved.direction == Direction::Back;
    let total = h.replicas;
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let moved = handover::moved(cx, h, back, min_ready);
    let progress = Some(Progress::new(
        if back { total - moved } else { moved }.clamp(0, total),
        total,
    ));
    let reason = saved.reason.clone().unwrap_or_default();
    let prefix = if back {
        format!("{reason}; going back: ")
    } else {
        String::new()
    };

    if h.returning {
        return match handover::hand_back(cx, h, back) {
            Some(actions) if !actions.is_empty() => Progressed::act(
                if back { "RollingBack" } else { "Rolling" },
                format!("{prefix}handing the replica sets back to {}", cx.target),
                actions,
            ),
            Some(_) => Progressed::wait(
                if back { "RollingBack" } else { "Rolling" },
                format!("{prefix}waiting for replica set {} to go", h.new_set),
                None,
            ),
            None if h.stalled => Progressed::finish(
                Phase::Failed,
                format!(
                    "{reason}; replica sets {} and {} are back with {} as they stand ({} stays paused); look at the pods of {}, then unpause {} to finish its rollout to its template, or set its template back",
                    h.old_set, h.new_set, cx.target, cx.target, h.old_set, cx.target
                ),
            ),
            None if back => Progressed::finish(
                cx.back_outcome(),
                format!(
                    "{reason}; every pod runs the previous template again and {} is as it was",
                    cx.target
                ),
            ),
            None => {
                let mut p = Progressed::finish(
                    Phase::Succeeded,
                    format!(
                        "rolled out the pending template to {total} pods; {} stays paused as declared",
                        cx.target
                    ),
                )
                .with_progress(Some(Progress::new(total, total)));
                if h.stop_first {
                    // From the start (the first step stopped every pod) to the first new pod
                    // Ready, as for a FullRestart of an update.
                    let new_pods = pods_of(&cx.snap.pods, &h.new_hash);
                    p.downtime = Some(full_restart::downtime(saved, &new_pods));
                }
                p
            }
        };
    }
    let take = handover::take_over(cx, h, None);
    if !take.is_empty() {
        return Progressed::act(
            "Rolling",
            format!("taking the replica sets of {} over", cx.target),
            take,
        )
        .with_progress(progress);
    }
    if cx.aborting && !back {
        return go_back(cx, saved, "aborted".into());
    }
    if cx.spec.paused && !back {
        return Progressed::paused(moved, total);
    }
    // The checks on a moved pod they have not passed on yet, before the next one moves (one at a
    // time only).
    let mut gate = match back || h.stop_first {
        true => None,
        false => checks::after_each_pod(cx, &pods_of(&cx.snap.pods, &h.new_hash)),
    };
    if let Some(why) = checks::failure(&gate) {
        return go_back(cx, saved, why).with_gate(CheckStage::AfterEachPod, gate);
    }
    let so_far = format!("{moved}/{total} pods run the pending template");
    if let Some(p) = checks::checking_pod(&mut gate, &so_far, progress.clone()) {
        return p;
    }
    let timeout = cx.spec.rolling_restart.pod_ready_timeout_seconds;
    let since = cx.step_since(if back { "RollingBack" } else { "Rolling" });
    let p = match handover::advance(cx, h, pace(h), back, (min_ready, timeout), since) {
        Turn::Act(actions, message) => {
            let mut p = Progressed::act(
                if back { "RollingBack" } else { "Rolling" },
                format!("{prefix}{message}"),
                actions,
            )
            .with_progress(progress);
            if !back {
                p.actions
                    .extend(cx.pod_replaced(moved, total, "pending template"));
            }
            p
        }
        Turn::Wait(message, requeue) => Progressed::wait(
            if back { "RollingBack" } else { "Rolling" },
            format!("{prefix}{message}"),
            requeue,
        )
        .with_progress(progress),
        Turn::Late(late) if !back => go_back(cx, saved, late),
        Turn::Late(late) => {
            // Nothing would move any more: give the sets back as they stand, then fail.
            let reason = format!("{reason}; the way back stalled too: {late}");
            Progressed::act(
                "RollingBack",
                format!(
                    "{reason}; handing the replica sets back to {} as they stand",
                    cx.target
                ),
                vec![
                    handover::record_stalled(cx, saved, h, reason.clone()),
                    Action::warning("RollbackStalled", reason),
                ],
            )
            .with_progress(progress)
        }
        Turn::Done => Progressed::act(
            if back { "RollingBack" } else { "Rolling" },
            format!("{prefix}all {total} pods moved; handing the replica sets back"),
            vec![handover::record_returning(cx, saved, h)],
        )
        .with_progress(progress),
    };
    p.with_gate(CheckStage::AfterEachPod, gate)
}

/// Turns the handover around: the pods already moved go back one at a time.
fn go_back(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        ..saved.clone()
    };
    let message = format!("{reason}; moving the pods back to the previous template");
    Progressed::act(
        "RollingBack",
        message.clone(),
        vec![
            cx.target.patch(mark_patch(cx.plan, &back)),
            Action::warning("RollingBack", message),
        ],
    )
}
