//! RollingRestart and FullRestart in the GitOps flow: the target is paused with a pending
//! template, and the pods move from its running ReplicaSet to the pending template's set
//! (one at a time, or all stopped first) while the target object stays exactly as Git has
//! it. A late pod always turns the plan back to the running set: a paused target cannot be
//! handed two half-filled sets without its controller rescaling them. Should the way back
//! stall as well, the sets go back to the target as they stand, every pod kept (it stays
//! paused: its controller may add its surge across them, never take a pod away), and the plan
//! fails, saying what a person must do.
//!
//! The same moves carry a kubectl-flow update of a target whose controller would otherwise
//! replace its pods at its own pace, when `afterEachPod` checks must hold it after each pod:
//! the plan first writes the new template with the target paused (one write, so that its
//! controller never makes a set of it), then moves the pods as above, each checked before the
//! next. At the end the target resumes as it was; on the way back it gets its previous
//! template again once every pod runs it; with `rollbackOnFailure: false` a failure halts
//! the move, the sets handed back as they stand and the target left paused.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::checks;
use super::full_restart;
use super::handover::{self, Pace, Turn};
use super::{Cx, Progressed};
use crate::api::{CheckStage, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::replica_sets;
use crate::operator::rollout::pods_of;
use crate::operator::workload::saved::{Direction, Handover, Mode, Saved, mark, mark_patch};

pub(super) fn begin(cx: &Cx, pending: &ReplicaSet, stop_first: bool) -> Progressed {
    let saved = Saved {
        mode: Some(Mode::PendingRollout),
        started_at: Some(cx.now),
        ..Default::default()
    };
    take_sets(cx, &saved, pending, stop_first)
}

/// kubectl flow under `afterEachPod` checks: the new template written with the target paused,
/// its own template and pause recorded. The sets are taken over in the next turn, once the
/// target holds the new template back like a pending one.
pub(super) fn begin_update(cx: &Cx, new_template: PodTemplateSpec) -> Progressed {
    let saved = Saved {
        mode: Some(Mode::PendingRollout),
        started_at: Some(cx.now),
        template: cx.target.template().cloned(),
        paused: cx.target.paused(),
        ..Default::default()
    };
    let mut target = cx.target.clone();
    target.set_template(new_template);
    target.set_paused(true);
    mark(&mut target, cx.plan, &saved);
    let total = cx.target.replicas();
    Progressed::act(
        "Rolling",
        format!(
            "pausing {} with the new template: its {total} pods move one at a time, each checked before the next",
            cx.target
        ),
        vec![target.replace()],
    )
    .with_progress(Some(Progress::new(0, total)))
}

/// The plan wrote the template itself (kubectl flow): the target resumes at the end.
fn written(saved: &Saved) -> bool {
    saved.paused.is_some()
}

/// What the pods move to, in the words of the flow.
fn new_template_words(saved: &Saved) -> &'static str {
    if written(saved) {
        "new template"
    } else {
        "pending template"
    }
}

/// Records the handover from `running` and takes the target's sets over.
fn take_sets(cx: &Cx, saved: &Saved, running: &ReplicaSet, stop_first: bool) -> Progressed {
    let (mut h, created) = handover::plan(cx, running);
    h.stop_first = stop_first;
    let total = h.replicas;
    let saved = Saved {
        handover: Some(h.clone()),
        ..saved.clone()
    };
    let mut actions = vec![cx.target.patch(mark_patch(cx.plan, &saved))];
    actions.extend(handover::take_over(cx, &h, created));
    Progressed::act(
        "Rolling",
        format!(
            "moving {total} pods from replica set {} to the {}'s replica set {}",
            h.old_set,
            new_template_words(&saved),
            h.new_set
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
        if written(saved) {
            // The new template is written; its running set is taken over from here.
            return match replica_sets::pending_template(cx.target, &cx.snap.replica_sets) {
                Some(running) => take_sets(cx, saved, running, false),
                None => Progressed::finish(
                    Phase::Failed,
                    format!(
                        "{} no longer holds the new template back (someone unpaused it or changed its template) before the plan took its replica sets over; no pod was moved by the plan",
                        cx.target
                    ),
                ),
            };
        }
        return Progressed::finish(
            Phase::Failed,
            "the record of the plan's replica sets is missing from the target".into(),
        );
    };
    let words = new_template_words(saved);
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
                    h.old_set,
                    h.new_set,
                    cx.target,
                    cx.target,
                    // The set whose pods failed: the one being filled.
                    if back { &h.old_set } else { &h.new_set },
                    cx.target
                ),
            ),
            None if back => match saved.template.as_ref() {
                // The previous template goes back on the target (still paused) once every
                // pod runs it; the record then says it is back.
                Some(template) => {
                    let mut target = cx.target.clone();
                    target.set_template(template.clone());
                    let restored = Saved {
                        template: None,
                        ..saved.clone()
                    };
                    mark(&mut target, cx.plan, &restored);
                    Progressed::act(
                        "RollingBack",
                        format!(
                            "{prefix}every pod runs the previous template again; putting it back on {}",
                            cx.target
                        ),
                        vec![target.replace()],
                    )
                }
                None => Progressed::finish(
                    cx.back_outcome(),
                    format!(
                        "{reason}; every pod runs the previous template again and {} is as it was",
                        cx.target
                    ),
                ),
            },
            None => {
                let end = if written(saved) {
                    "resumes"
                } else {
                    "stays paused as declared"
                };
                let mut p = Progressed::finish(
                    Phase::Succeeded,
                    format!(
                        "rolled out the {words} to {total} pods; {} {end}",
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
        return fail(cx, saved, h, why).with_gate(CheckStage::AfterEachPod, gate);
    }
    let so_far = format!("{moved}/{total} pods run the {words}");
    if let Some(p) = checks::checking_pod(
        &mut gate,
        &so_far,
        progress.clone(),
        cx.pod_replaced(moved, total, words),
    ) {
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
                p.actions.extend(cx.pod_replaced(moved, total, words));
            }
            p
        }
        Turn::Wait(message, requeue) => Progressed::wait(
            if back { "RollingBack" } else { "Rolling" },
            format!("{prefix}{message}"),
            requeue,
        )
        .with_progress(progress),
        Turn::Late(late) if !back => fail(cx, saved, h, late),
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

/// A failed check or a late pod: back to the running set, or, where the plan wrote the
/// template and `rollbackOnFailure` is off, a halt that hands the sets back as they stand
/// (the target stays paused, every pod kept).
fn fail(cx: &Cx, saved: &Saved, h: &Handover, reason: String) -> Progressed {
    if cx.spec.rolling_restart.rollback_on_failure || !written(saved) {
        return go_back(cx, saved, reason);
    }
    let reason = format!("{reason}; rollout halted (rollbackOnFailure is false)");
    let halted = Saved {
        halted: true,
        ..saved.clone()
    };
    Progressed::act(
        "Rolling",
        format!(
            "{reason}; handing the replica sets back to {} as they stand",
            cx.target
        ),
        vec![
            handover::record_stalled(cx, &halted, h, reason.clone()),
            Action::warning("RolloutHalted", reason),
        ],
    )
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
