//! BlueGreen: the Service is pinned to blue's pods (the revision they run), a green copy
//! with the new template starts beside blue under a selector that cannot overlap blue's, and
//! once all of green is Ready the Service switches to green in one selector update. When the
//! endpoints list only green and `scaleDownDelaySeconds` have passed, the target (still named
//! as before) is brought to the new template while it carries no traffic, the Service
//! switches back to it, green is removed and the original selector restored: the end state
//! a GitOps tool expects. Going back (abort, deletion, failure) settles on blue the same way.
//! In the GitOps flow the target's template is never written: its pods move to the pending
//! template between its ReplicaSets (a paused target, `handover`) or are recreated from it by
//! its controller (a target that holds it back itself, `held_blue`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::checks::{self, Gate, Subject, Verdict};
use super::handover::{self, Pace, Turn};
use super::held_blue;
use super::held_rollout::moved_on;
use super::isolation;
use super::pending::Pending;
use super::restart::plan_owner;
use super::{Cx, Progressed};
use crate::api::{CheckStage, DataIsolation, Phase, Progress};
use crate::operator::action::Action;
use crate::operator::labels;
use crate::operator::names;
use crate::operator::replica_sets;
use crate::operator::template::{updated_template, with_green_only};
use crate::operator::workload::saved::{
    self as record, Direction, Handover, Held, Mode, Saved, mark, mark_patch,
};
use crate::operator::workload::{self, Kind, Workload};
use crate::operator::{pods, time};

/// Label that keeps green's pods apart from blue's.
pub const COPY_LABEL: &str = "cutover.dev/copy";
pub const PLAN_LABEL: &str = "cutover.dev/plan";

/// The name of the green copy of `target`, a workload of `kind`: `<target>-green`, cut with a
/// hash where that is too long for the kind (see [`Kind::name_rule`]).
pub fn green_name(kind: Kind, target: &str) -> String {
    names::derive(target, "green", kind.name_rule())
}

/// The name of this plan's green copy.
fn green_of(cx: &Cx) -> String {
    green_name(cx.target.kind(), &cx.spec.target.name)
}

fn service_selector(cx: &Cx) -> BTreeMap<String, String> {
    cx.snap
        .service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// `selector` narrowed to the pods of the target's kind at `revision`; `None` while the
/// revision is not known (never a pin to an empty value, which selects no pod).
fn pinned(
    cx: &Cx,
    selector: &BTreeMap<String, String>,
    revision: &str,
) -> Option<BTreeMap<String, String>> {
    labels::pin(selector, cx.target.kind().revision_label(), revision)
}

/// The revision of the pods that serve before the plan (blue's), when it is known: the
/// running set's hash or current revision of a target that holds a pending template, else
/// the revision of the target's own template.
pub(super) fn blue_revision(
    target: &Workload,
    replica_sets: &[k8s_openapi::api::apps::v1::ReplicaSet],
    pending: Option<&Pending<'_>>,
) -> Option<String> {
    match pending {
        Some(Pending::ReplicaSet(running)) => replica_sets::hash(running),
        Some(Pending::Held(held)) => Some(held.current.as_str()),
        None => target.updated_revision(replica_sets),
    }
    .filter(|r| !r.is_empty())
    .map(str::to_string)
}

/// Is this pod part of the green copy of this plan?
pub fn is_green(pod: &Pod, plan: &str) -> bool {
    pod.metadata.labels.as_ref().is_some_and(|l| {
        l.get(COPY_LABEL).is_some_and(|c| c == "green")
            && l.get(PLAN_LABEL).is_some_and(|p| p == plan)
    })
}

/// The green copy as first created: the target's shape with the new template and what only
/// green gets (`blueGreen.greenOnly`), its replica count, and labels (in template and
/// selector) that blue's pods never carry.
fn green_copy(cx: &Cx, new_template: &PodTemplateSpec) -> Workload {
    let extra = BTreeMap::from([
        (COPY_LABEL.to_string(), "green".to_string()),
        (PLAN_LABEL.to_string(), cx.plan.to_string()),
    ]);
    cx.target.green_copy(
        green_of(cx),
        &green_template(cx.spec, &cx.target.to_string(), new_template),
        extra,
        plan_owner(cx),
    )
}

/// `new_template` with `blueGreen.greenOnly` applied. Preflight has checked that it applies;
/// should it not, green gets `new_template`.
fn green_template(
    spec: &crate::api::MaintenancePlanSpec,
    target: &str,
    new_template: &PodTemplateSpec,
) -> PodTemplateSpec {
    with_green_only(spec, target, new_template).unwrap_or_else(|_| new_template.clone())
}

/// Starts a BlueGreen whose blue pods run `blue_hash` (see [`blue_revision`]).
pub(super) fn begin(
    cx: &Cx,
    new_template: PodTemplateSpec,
    pending: Option<Pending<'_>>,
    blue_hash: String,
) -> Progressed {
    let selector = service_selector(cx);
    let mut saved = Saved {
        mode: Some(Mode::BlueGreen),
        started_at: Some(cx.now),
        replicas: Some(cx.target.replicas()),
        template: cx.target.template().cloned(),
        selector: Some(selector.clone()),
        preview_selector: cx
            .snap
            .preview
            .as_ref()
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.selector.clone()),
        peer_selectors: isolation::originals(cx),
        blue_hash: Some(blue_hash.clone()),
        // GitOps flow: the target already carries the new template; once green serves, its
        // pods move to that template's ReplicaSet while the target stays paused, or to its
        // update revision.
        handover: match &pending {
            Some(Pending::ReplicaSet(running)) => Some(handover::plan(cx, running).0),
            _ => None,
        },
        held: match pending {
            Some(Pending::Held(held)) => Some(*held),
            _ => None,
        },
        ..Default::default()
    };
    if saved.held.is_some() {
        cx.target.record_held_settings(&mut saved);
    }
    let total = cx.target.replicas();
    Progressed::act(
        "CreatingGreen",
        format!(
            "pinning service {} to blue's pods and starting green ({total} pods, {} data)",
            cx.spec.service,
            match cx.spec.blue_green.data_isolation {
                DataIsolation::Shared => "shared",
                DataIsolation::Isolated => "its own copy of the",
            }
        ),
        // The record first; then blue's cluster closed to green, before green exists.
        [cx.target.patch(mark_patch(cx.plan, &saved))]
            .into_iter()
            .chain(isolation::keep(cx, &saved))
            .chain(
                pinned(cx, &selector, &blue_hash).map(|selector| Action::SetServiceSelector {
                    service: cx.spec.service.clone(),
                    selector,
                }),
            )
            .chain([green_copy(cx, &new_template).create()])
            .collect(),
    )
    .with_progress(Some(Progress::new(0, total)))
    .selectors_before(record::selectors_before(cx.spec, &saved))
}

/// What pinning costs, for the plan's Started Event: the traffic Service (and each discovery
/// Service) selects only blue's revision, then green's, until the plan ends, so any pod of
/// another workload it also sends traffic to gets none from it meanwhile. Those pods are the
/// Service's endpoints that are not the target's: not among its pods, or (a Deployment) at a
/// revision none of its ReplicaSets has.
pub(super) fn pin_note(cx: &Cx, blue_hash: &str) -> String {
    let label = cx.target.kind().revision_label();
    let mut note = format!(
        "service {} is pinned to {label}={blue_hash} (blue's pods), then to green's, until the plan ends",
        cx.spec.service
    );
    let peers: Vec<String> = isolation::originals(cx).into_keys().collect();
    if !peers.is_empty() {
        note.push_str(&format!(
            "; services {} are pinned to the target's own pods the same way",
            peers.join(", ")
        ));
    }
    let hashes: Vec<&str> = cx
        .snap
        .replica_sets
        .iter()
        .filter_map(replica_sets::hash)
        .collect();
    let own = |name: &str| {
        cx.snap.pods.iter().any(|p| {
            pods::name(p) == name
                && (cx.target.kind() != workload::Kind::Deployment
                    || cx
                        .target
                        .revision_of(p)
                        .is_some_and(|r| hashes.contains(&r)))
        })
    };
    let mut others: Vec<&str> = cx
        .snap
        .endpoint_slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter_map(|e| e.target_ref.as_ref()?.name.as_deref())
        .filter(|name| !own(name))
        .collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        note.push_str(&format!(
            "; it also sends traffic to pods that are not {}'s ({}): they get none from it until then",
            cx.target,
            others.join(", ")
        ));
    }
    note
}

/// Facts about the green copy.
struct Green<'a> {
    workload: Option<&'a Workload>,
    pods: Vec<&'a Pod>,
    /// The target, which knows how its kind labels a pod's revision.
    blue: &'a Workload,
}

impl Green<'_> {
    fn ready_count(&self) -> i32 {
        self.pods.iter().filter(|p| pods::is_ready(p)).count() as i32
    }
    fn hash(&self) -> Option<&str> {
        self.pods.iter().find_map(|p| self.blue.revision_of(p))
    }
    fn is_ready(&self, replicas: i32) -> bool {
        self.workload
            .is_some_and(|w| w.is_complete() && w.replicas() == replicas)
    }
}

/// Every endpoint of the Service belongs to a pod with `hash`, and at least one is ready.
fn endpoints_only(cx: &Cx, hash: &str) -> bool {
    let hash_of: BTreeMap<&str, Option<&str>> = cx
        .snap
        .pods
        .iter()
        .map(|p| (pods::name(p), cx.target.revision_of(p)))
        .collect();
    let endpoints: Vec<_> = cx
        .snap
        .endpoint_slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .collect();
    let any_ready = endpoints
        .iter()
        .any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true));
    any_ready
        && endpoints.iter().all(|e| {
            let pod = e
                .target_ref
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .unwrap_or_default();
            hash_of.get(pod).copied().flatten() == Some(hash)
        })
}

/// One look at a running BlueGreen: blue's cluster is kept closed to green (a reverted pin
/// is pinned again, a missing twin created) ahead of whatever the cutover does next.
pub(super) fn advance(cx: &Cx, saved: &Saved) -> Progressed {
    let mut p = progress(cx, saved);
    let mut actions = isolation::keep(cx, saved);
    actions.append(&mut p.actions);
    p.actions = actions;
    p
}

fn progress(cx: &Cx, saved: &Saved) -> Progressed {
    let total = saved.replicas.unwrap_or_else(|| cx.target.replicas());
    let original = saved.selector.clone().unwrap_or_default();
    let current = service_selector(cx);
    let serving = current.get(cx.target.kind().revision_label()).cloned();
    let green = Green {
        workload: cx.snap.green.as_ref().filter(|g| {
            g.labels()
                .and_then(|l| l.get(PLAN_LABEL))
                .is_some_and(|p| p == cx.plan)
        }),
        blue: cx.target,
        pods: cx
            .snap
            .pods
            .iter()
            .filter(|p| is_green(p, cx.plan) && !pods::is_terminating(p))
            .collect(),
    };
    let progress = Some(Progress::new(green.ready_count().min(total), total));

    if let Some(outcome) = saved.teardown {
        return tear_down(cx, saved, &green, outcome);
    }
    let blue_changed = match (&saved.handover, &saved.held) {
        (Some(h), _) => h.moving,
        (None, Some(held)) => held.moving,
        (None, None) => cx.target.template() != saved.template.as_ref(),
    };
    let switched = green.hash().is_some() && serving.as_deref() == green.hash();

    if saved.direction == Direction::Back {
        let reason = saved.reason.clone().unwrap_or_default();
        let outcome = cx.back_outcome();
        if let Some(h) = saved.handover.as_ref().filter(|h| h.moving) {
            if let Some(p) = move_target(cx, saved, h, true) {
                return p;
            }
            if h.stalled {
                return strand(cx, saved, reason);
            }
        } else if let Some(held) = saved.held.as_ref().filter(|h| h.moving) {
            if let Some(p) = move_held(cx, saved, held, true) {
                return p;
            }
        } else if blue_changed {
            return restore_blue(cx, saved, &reason);
        }
        return settle_on_blue(cx, saved, outcome, &original, serving.as_deref(), &reason);
    }

    if !switched && !blue_changed {
        // Before the switch: blue serves, pinned.
        if cx.aborting {
            return start_teardown(
                cx,
                saved,
                Phase::Aborted,
                "aborted before the switch; removing green".into(),
            );
        }
        let blue_hash = saved.blue_hash.clone().unwrap_or_default();
        if serving.as_deref() != Some(blue_hash.as_str()) {
            let Some(selector) = pinned(cx, &original, &blue_hash) else {
                return start_teardown(
                    cx,
                    saved,
                    Phase::Failed,
                    format!(
                        "the record on {} names no revision of blue's pods, so service {} cannot be pinned to them; blue kept serving and was not touched; removing green",
                        cx.target, cx.spec.service
                    ),
                );
            };
            return Progressed::act(
                "CreatingGreen",
                "pinning the service to blue's pods".into(),
                vec![Action::SetServiceSelector {
                    service: cx.spec.service.clone(),
                    selector,
                }],
            );
        }
        if green.workload.is_none() {
            let new_template = new_template(cx, saved);
            return Progressed::act(
                "CreatingGreen",
                format!("starting green ({total} pods)"),
                vec![green_copy(cx, &new_template).create()],
            )
            .with_progress(progress);
        }
        let started = saved.started_at.unwrap_or(cx.now);
        let deadline = pods::add_seconds(started, cx.spec.blue_green.ready_timeout_seconds as f64);
        let green_selector = green.hash().and_then(|h| pinned(cx, &original, h));
        if !green.is_ready(total) || green_selector.is_none() {
            let ready = green.ready_count();
            if cx.now >= deadline {
                return start_teardown(
                    cx,
                    saved,
                    Phase::Failed,
                    format!(
                        "green was not Ready within {}s ({ready}/{total} pods Ready); blue kept serving and was not touched",
                        cx.spec.blue_green.ready_timeout_seconds
                    ),
                );
            }
            let unlabelled = if green.is_ready(total) {
                format!(
                    "; its pods carry no {} yet",
                    cx.target.kind().revision_label()
                )
            } else {
                String::new()
            };
            return Progressed::wait(
                "WaitingForGreen",
                format!("green {ready}/{total} ready{unlabelled}"),
                Some(time::until(cx.now, deadline)),
            )
            .with_progress(progress);
        }
        let green_hash = green.hash().unwrap_or_default().to_string();
        let green_selector = green_selector.unwrap_or_default();
        if let Some(preview) = &cx.snap.preview {
            let preview_selector = preview
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            if preview_selector != green_selector {
                return Progressed::act(
                    "WaitingForGreen",
                    format!(
                        "green is Ready; pointing preview service {} at it",
                        cx.spec.blue_green.preview_service
                    ),
                    vec![Action::SetServiceSelector {
                        service: cx.spec.blue_green.preview_service.clone(),
                        selector: green_selector.clone(),
                    }],
                )
                .with_progress(progress);
            }
        }
        let pre = green_gate(
            cx,
            CheckStage::PrePromotion,
            &green,
            &green_hash,
            &cx.spec.blue_green.preview_service,
        );
        match pre.as_ref().map(|g| (&g.verdict, g.running.clone())) {
            Some((Verdict::Failed(why), _)) => {
                let message = format!("{why}; blue kept serving and was not touched");
                return start_teardown(cx, saved, Phase::Failed, message)
                    .with_gate(CheckStage::PrePromotion, pre);
            }
            Some((Verdict::Running(next), running)) => {
                let next = *next;
                return Progressed::wait(
                    "CheckingGreen",
                    format!("green {total}/{total} ready; checks before the switch: {running}"),
                    Some(next),
                )
                .with_progress(progress)
                .with_gate(CheckStage::PrePromotion, pre);
            }
            _ => {}
        }
        if !cx.spec.blue_green.auto_promote && !cx.spec.promote {
            let mut p = Progressed::wait(
                "AwaitingPromotion",
                format!("green {total}/{total} ready; set spec.promote to true to switch the service to it"),
                None,
            )
            .with_progress(progress)
            .with_gate(CheckStage::PrePromotion, pre);
            p.awaiting_promotion = true;
            return p;
        }
        if cx.spec.paused {
            return Progressed::wait(
                "Paused",
                "green is Ready; paused before the switch".into(),
                None,
            )
            .with_progress(progress)
            .with_gate(CheckStage::PrePromotion, pre);
        }
        let switched = Saved {
            switched_at: Some(cx.now),
            ..saved.clone()
        };
        let message = format!(
            "switched service {} from blue ({}) to green ({green_hash})",
            cx.spec.service,
            saved.blue_hash.clone().unwrap_or_default()
        );
        return Progressed::act(
            "Switched",
            message.clone(),
            vec![
                Action::SetServiceSelector {
                    service: cx.spec.service.clone(),
                    selector: green_selector,
                },
                cx.target.patch(mark_patch(cx.plan, &switched)),
                Action::event("Switched", message),
            ],
        )
        .with_progress(progress)
        .switched_at(Some(cx.now))
        .with_gate(CheckStage::PrePromotion, pre);
    }

    if switched && !blue_changed {
        // Green serves; blue still runs the original template.
        if cx.aborting {
            return go_back(cx, saved, "aborted after the switch".into());
        }
        let Some(switched_at) = saved.switched_at else {
            let at = Saved {
                switched_at: Some(cx.now),
                ..saved.clone()
            };
            return Progressed::act(
                "Switched",
                "recording the switch".into(),
                vec![cx.target.patch(mark_patch(cx.plan, &at))],
            );
        };
        let hold_until = pods::add_seconds(
            switched_at,
            cx.spec.blue_green.scale_down_delay_seconds as f64,
        );
        let green_hash = green.hash().unwrap_or_default();
        let listed = endpoints_only(cx, green_hash);
        let post = green_gate(
            cx,
            CheckStage::PostPromotion,
            &green,
            green_hash,
            &cx.spec.service,
        );
        let checking = match post.as_ref().map(|g| &g.verdict) {
            Some(Verdict::Failed(why)) => {
                // Blue is still there and unchanged: the way back is open.
                let why = why.clone();
                return go_back(cx, saved, why).with_gate(CheckStage::PostPromotion, post);
            }
            Some(Verdict::Running(next)) => Some(*next),
            _ => None,
        };
        if !listed || cx.now < hold_until || checking.is_some() {
            let deadline = endpoints_deadline(cx, hold_until);
            if !listed && cx.now >= deadline {
                // Blue is still there and unchanged: the way back is open.
                return go_back(
                    cx,
                    saved,
                    format!(
                        "the endpoints of service {} did not list only green's pods within {}s of the switch ({}/{total} green pods Ready)",
                        cx.spec.service,
                        cx.spec.blue_green.scale_down_delay_seconds + patience(cx),
                        green.ready_count()
                    ),
                );
            }
            let mut message = format!(
                "green serves; keeping blue until the endpoints list only green and {}s have passed",
                cx.spec.blue_green.scale_down_delay_seconds
            );
            if checking.is_some() {
                let running = post
                    .as_ref()
                    .map(|g| g.running.as_str())
                    .unwrap_or_default();
                message.push_str(&format!(
                    " and the checks after the switch passed: {running}"
                ));
            }
            return Progressed::wait(
                "Switched",
                message,
                time::earliest(
                    Some(time::after_hold(cx.now, hold_until, deadline)),
                    checking,
                ),
            )
            .with_progress(progress)
            .switched_at(Some(switched_at))
            .with_gate(CheckStage::PostPromotion, post);
        }
        if let Some(h) = &saved.handover {
            let moving = Saved {
                handover: Some(Handover {
                    moving: true,
                    ..h.clone()
                }),
                ..saved.clone()
            };
            let mut actions = vec![cx.target.patch(mark_patch(cx.plan, &moving))];
            let created = h.created.then(|| {
                replica_sets::for_template(
                    cx.target,
                    &new_template(cx, saved),
                    handover::held_labels(cx.plan),
                )
            });
            actions.extend(handover::take_over(cx, h, created));
            return Progressed::act(
                "UpdatingBlue",
                format!("green serves; moving the pods of paused {} to its pending template while it carries no traffic", cx.target),
                actions,
            )
            .with_progress(progress)
            .switched_at(Some(switched_at))
        .with_gate(CheckStage::PostPromotion, post);
        }
        if let Some(held) = &saved.held {
            return Progressed::act(
                "UpdatingBlue",
                format!(
                    "green serves; bringing the pods of {} to its pending template while it carries no traffic",
                    cx.target
                ),
                vec![held_blue::start(cx, saved, held)],
            )
            .with_progress(progress)
            .switched_at(Some(switched_at))
        .with_gate(CheckStage::PostPromotion, post);
        }
        let mut target = cx.target.clone();
        target.set_template(new_template(cx, saved));
        mark(&mut target, cx.plan, saved);
        return Progressed::act(
            "UpdatingBlue",
            format!(
                "green serves; bringing {} to the new template while it carries no traffic",
                cx.target
            ),
            vec![target.replace()],
        )
        .with_progress(progress)
        .switched_at(Some(switched_at))
        .with_gate(CheckStage::PostPromotion, post);
    }

    // The target runs (or is rolling to) the new template: switch back to it, remove green.
    // (GitOps flow: once the sets are being handed back, that finishes first.)
    if let Some(h) = saved.handover.as_ref().filter(|h| h.returning)
        && let Some(p) = move_target(cx, saved, h, false)
    {
        return p.switched_at(saved.switched_at);
    }
    // A target that holds its template back cannot go back once its controller made the
    // pending template its current revision: an abort then settles on it as it is.
    let stays_moved = saved
        .held
        .as_ref()
        .is_some_and(|held| held.moving && moved_on(cx, held));
    if cx.aborting && !stays_moved {
        return go_back(cx, saved, "aborted after the switch".into());
    }
    if let Some(h) = &saved.handover
        && let Some(p) = move_target(cx, saved, h, false)
    {
        return p.switched_at(saved.switched_at);
    }
    if let Some(held) = &saved.held
        && let Some(p) = move_held(cx, saved, held, false)
    {
        return p.switched_at(saved.switched_at);
    }
    let (outcome, reason) = if cx.aborting {
        (Phase::Aborted, "aborted after the switch")
    } else {
        (Phase::Succeeded, "")
    };
    settle_on_blue(cx, saved, outcome, &original, serving.as_deref(), reason)
        .switched_at(saved.switched_at)
}

/// One look at green's checks of `stage` (`None` when the stage has none); `service` reaches
/// green's pods.
fn green_gate(
    cx: &Cx,
    stage: CheckStage,
    green: &Green,
    hash: &str,
    service: &str,
) -> Option<Gate> {
    let list = match stage {
        CheckStage::PrePromotion => &cx.spec.blue_green.pre_promotion,
        _ => &cx.spec.blue_green.post_promotion,
    };
    if list.is_empty() {
        return None;
    }
    let subject = Subject {
        stage,
        key: hash.to_string(),
        what: format!("green ({hash})"),
        pods: green.pods.clone(),
        service: service.to_string(),
    };
    Some(checks::gate(cx, list, &subject))
}

/// The longest the plan lets anything take: the longer of its two timeouts. The deadline of
/// the waits no timeout names (endpoints that follow a switch, green's pods that stop), so
/// that a short `readyTimeoutSeconds` for green's start does not cut them short.
fn patience(cx: &Cx) -> i64 {
    cx.spec
        .blue_green
        .ready_timeout_seconds
        .max(cx.spec.rolling_restart.pod_ready_timeout_seconds)
}

/// How long the Service's endpoints may take to follow a switch once the hold after it has
/// ended.
fn endpoints_deadline(cx: &Cx, hold_until: Timestamp) -> Timestamp {
    pods::add_seconds(hold_until, patience(cx) as f64)
}

fn new_template(cx: &Cx, saved: &Saved) -> PodTemplateSpec {
    let original = saved.template.clone().unwrap_or_default();
    let update = cx.spec.update.clone().unwrap_or_default();
    updated_template(&cx.target.to_string(), &original, &update).unwrap_or(original)
}

/// Waits for the target's rollout, switches the Service to its newest pods, waits for the
/// endpoints and the delay, then removes green.
fn settle_on_blue(
    cx: &Cx,
    saved: &Saved,
    outcome: Phase,
    original: &BTreeMap<String, String>,
    serving: Option<&str>,
    reason: &str,
) -> Progressed {
    let word = if outcome == Phase::Succeeded {
        "UpdatingBlue"
    } else {
        "RestoringBlue"
    };
    let prefix = if reason.is_empty() {
        String::new()
    } else {
        format!("{reason}; ")
    };
    let limit = cx.spec.blue_green.ready_timeout_seconds;
    // GitOps flow: a target whose pods never moved, or moved back, is as it was (its paused
    // template stays pending); one whose pods moved forward is complete once its controller
    // adopted the new set.
    let complete = match (&saved.handover, &saved.held) {
        (Some(h), _) if !h.moving || saved.direction == Direction::Back => true,
        (None, Some(held)) if !held.moving || saved.direction == Direction::Back => true,
        _ => cx.target.is_complete(),
    };
    let kubectl_flow = saved.handover.is_none() && saved.held.is_none();
    let rollout_deadline = pods::add_seconds(cx.step_since(word), limit as f64);
    if !complete && cx.now >= rollout_deadline {
        let late = format!(
            "{} did not finish its rollout to the {} template within {limit}s",
            cx.target,
            if outcome == Phase::Succeeded {
                "new"
            } else {
                "original"
            }
        );
        if outcome == Phase::Succeeded && kubectl_flow {
            // Green still serves; the target goes back to its original template and takes over.
            return go_back(cx, saved, late);
        }
        return strand(cx, saved, format!("{prefix}{late}"));
    }
    if !complete && kubectl_flow {
        // A target its controller does not roll by itself (OnDelete) is paced here.
        let message = format!("{prefix}bringing {} to its template", cx.target);
        if let Some(p) = super::rolling::pace(cx, word, &message) {
            return p;
        }
    }
    if !complete {
        return Progressed::wait(
            word,
            format!("{prefix}waiting for {} to finish its rollout", cx.target),
            Some(time::until(cx.now, rollout_deadline)),
        );
    }
    // A held target whose controller made the pending template current stays on it.
    let stays_moved = saved
        .held
        .as_ref()
        .is_some_and(|held| held.moving && moved_on(cx, held));
    let hash = match (&saved.handover, &saved.held) {
        (Some(h), _) if h.moving && saved.direction == Direction::Forward => h.new_hash.clone(),
        (None, Some(held))
            if held.moving && (saved.direction == Direction::Forward || stays_moved) =>
        {
            held.update.clone()
        }
        (Some(_), _) | (None, Some(_)) => saved.blue_hash.clone().unwrap_or_default(),
        (None, None) => cx
            .target
            .updated_revision(&cx.snap.replica_sets)
            .unwrap_or_default()
            .to_string(),
    };
    let Some(back_selector) = pinned(cx, original, &hash) else {
        let unknown = format!("the revision of the pods of {} is not known", cx.target);
        if cx.now >= rollout_deadline {
            return strand(cx, saved, format!("{prefix}{unknown} within {limit}s"));
        }
        return Progressed::wait(
            word,
            format!("{prefix}{unknown} yet; the service stays where it is"),
            Some(time::until(cx.now, rollout_deadline)),
        );
    };
    if serving != Some(hash.as_str()) {
        let back = Saved {
            switched_back_at: Some(cx.now),
            ..saved.clone()
        };
        let message = format!(
            "{prefix}switched service {} to {} ({hash})",
            cx.spec.service, cx.target
        );
        return Progressed::act(
            "SwitchingBack",
            message.clone(),
            vec![
                Action::SetServiceSelector {
                    service: cx.spec.service.clone(),
                    selector: back_selector,
                },
                cx.target.patch(mark_patch(cx.plan, &back)),
                Action::event("SwitchedBack", message),
            ],
        );
    }
    let Some(back_at) = saved.switched_back_at else {
        let back = Saved {
            switched_back_at: Some(cx.now),
            ..saved.clone()
        };
        return Progressed::act(
            "SwitchingBack",
            "recording the switch back".into(),
            vec![cx.target.patch(mark_patch(cx.plan, &back))],
        );
    };
    let hold_until = pods::add_seconds(back_at, cx.spec.blue_green.scale_down_delay_seconds as f64);
    let listed = endpoints_only(cx, &hash);
    if !listed || cx.now < hold_until {
        let deadline = endpoints_deadline(cx, hold_until);
        if !listed && cx.now >= deadline {
            // The Service no longer selects green, so removing it takes no endpoint away.
            let phase = match outcome {
                Phase::Succeeded => Phase::Failed,
                other => other,
            };
            return start_teardown(
                cx,
                saved,
                phase,
                format!(
                    "{prefix}the endpoints of service {} did not list only the pods of {} ({hash}) within {}s of the switch back; the service selects them and green is removed; look at the pods of {} and the service's EndpointSlices",
                    cx.spec.service,
                    cx.target,
                    cx.spec.blue_green.scale_down_delay_seconds + patience(cx),
                    cx.target
                ),
            );
        }
        return Progressed::wait(
            "SwitchingBack",
            format!(
                "{prefix}{} serves again; keeping green until the endpoints list only its pods",
                cx.target
            ),
            Some(time::after_hold(cx.now, hold_until, deadline)),
        );
    }
    let message = match outcome {
        Phase::Succeeded => format!("{} runs the new template; removing green", cx.target),
        _ if stays_moved => format!(
            "{prefix}{} could not go back (its controller had made the pending template its current revision) and serves the pending template; removing green",
            cx.target
        ),
        _ => format!(
            "{prefix}{} serves the original template again; removing green",
            cx.target
        ),
    };
    start_teardown(cx, saved, outcome, message)
}

/// Puts the original template back on the target (it carries no traffic while green serves).
fn restore_blue(cx: &Cx, saved: &Saved, reason: &str) -> Progressed {
    let mut target = cx.target.clone();
    if let Some(template) = saved.template.clone() {
        target.set_template(template);
    }
    mark(&mut target, cx.plan, saved);
    Progressed::act(
        "RestoringBlue",
        format!(
            "{reason}; putting the original template back on {}",
            cx.target
        ),
        vec![target.replace()],
    )
}

/// Turns back towards blue after the switch.
fn go_back(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let back = Saved {
        direction: Direction::Back,
        reason: Some(reason.clone()),
        switched_back_at: None,
        ..saved.clone()
    };
    Progressed::act(
        "RestoringBlue",
        format!("{reason}; switching back to blue"),
        vec![
            cx.target.patch(mark_patch(cx.plan, &back)),
            Action::warning("SwitchingBack", format!("{reason}; switching back to blue")),
        ],
    )
}

fn start_teardown(cx: &Cx, saved: &Saved, outcome: Phase, message: String) -> Progressed {
    let down = Saved {
        teardown: Some(outcome),
        reason: Some(message.clone()),
        ..saved.clone()
    };
    Progressed::act(
        "RemovingGreen",
        message,
        vec![
            cx.target.patch(mark_patch(cx.plan, &down)),
            workload::delete(cx.target.kind(), &green_of(cx)),
        ],
    )
}

fn tear_down(cx: &Cx, saved: &Saved, green: &Green, outcome: Phase) -> Progressed {
    let message = saved.reason.clone().unwrap_or_default();
    if let Some(g) = green.workload
        && !g.is_deleting()
    {
        return Progressed::act(
            "RemovingGreen",
            message,
            vec![workload::delete(g.kind(), &green_of(cx))],
        );
    }
    let left: Vec<&str> = cx
        .snap
        .pods
        .iter()
        .filter(|p| is_green(p, cx.plan))
        .map(pods::name)
        .collect();
    if !left.is_empty() || green.workload.is_some() {
        let limit = patience(cx);
        let deadline = pods::add_seconds(cx.step_since("RemovingGreen"), limit as f64);
        if cx.now >= deadline {
            // Green serves nothing any more; what is left of it is for a person to look at.
            let phase = match outcome {
                Phase::Succeeded => Phase::Failed,
                other => other,
            };
            return Progressed::finish(
                phase,
                format!(
                    "{message}; green did not go within {limit}s: {} {} and {} green pods ({}) are still there; look at their finalizers and nodes, and delete them",
                    cx.target.kind(),
                    green_of(cx),
                    left.len(),
                    left.join(", ")
                ),
            );
        }
        return Progressed::wait(
            "RemovingGreen",
            format!("{message}; waiting for {} green pods to stop", left.len()),
            Some(time::until(cx.now, deadline)),
        );
    }
    Progressed::finish(outcome, message)
}

/// The way back to blue stalled while green serves: the plan ends Failed and leaves the
/// Services and green as they are (green keeps serving); the message says what a person
/// must do to finish by hand.
fn strand(cx: &Cx, saved: &Saved, reason: String) -> Progressed {
    let original = saved.selector.clone().unwrap_or_default();
    let blue = pinned(
        cx,
        &original,
        saved.blue_hash.as_deref().unwrap_or_default(),
    )
    .unwrap_or_else(|| original.clone());
    let words = |selector: &BTreeMap<String, String>| {
        selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let held = Saved {
        halted: true,
        reason: Some(reason.clone()),
        ..saved.clone()
    };
    let mut p = Progressed::finish(
        Phase::Failed,
        format!(
            "{reason}; green {} {} keeps serving service {}, which selects it; to finish by hand: bring {} back (every pod Ready), set the selector of service {} to {} (its pods), delete this plan (which removes green), then set the selector back to {}",
            cx.target.kind(),
            green_of(cx),
            cx.spec.service,
            cx.target,
            cx.spec.service,
            words(&blue),
            words(&original)
        ),
    );
    p.actions.push(cx.target.patch(mark_patch(cx.plan, &held)));
    p
}

/// GitOps flow, a target that holds its template back: brings its pods (which carry no
/// traffic) to the pending template or back to the current revision, all at once. `None` once
/// they all run it; going back, also when there is no revision left to go back to.
fn move_held(cx: &Cx, saved: &Saved, held: &Held, back: bool) -> Option<Progressed> {
    if back && moved_on(cx, held) {
        return None;
    }
    let word = if back {
        "RestoringBlue"
    } else {
        "UpdatingBlue"
    };
    let timeout = cx.spec.blue_green.ready_timeout_seconds;
    Some(match held_blue::turn(cx, held, back) {
        Turn::Act(actions, message) => Progressed::act(word, message, actions),
        Turn::Wait(message, requeue) => Progressed::wait(word, message, requeue),
        Turn::Late(pod) if !back => go_back(
            cx,
            saved,
            format!("pod {pod} of {} was not Ready within {timeout}s", cx.target),
        ),
        Turn::Late(pod) => strand(
            cx,
            saved,
            format!(
                "pod {pod} of {} was not Ready on its current revision within {timeout}s while going back",
                cx.target
            ),
        ),
        Turn::Done => return None,
    })
}

/// GitOps flow: moves the target's pods (which carry no traffic) between its running set
/// and its pending template's set, all at once, and hands the sets back. `None` once the
/// sets are back with the target.
fn move_target(cx: &Cx, saved: &Saved, h: &Handover, back: bool) -> Option<Progressed> {
    let word = if back {
        "RestoringBlue"
    } else {
        "UpdatingBlue"
    };
    let target = cx.target;
    if h.returning {
        return match handover::hand_back(cx, h, back)? {
            actions if actions.is_empty() => Some(Progressed::wait(
                word,
                format!("waiting for replica set {} to go", h.new_set),
                None,
            )),
            actions => Some(Progressed::act(
                word,
                format!("handing the replica sets back to {target}"),
                actions,
            )),
        };
    }
    let take = handover::take_over(cx, h, None);
    if !take.is_empty() {
        return Some(Progressed::act(
            word,
            format!("taking the replica sets of {target} over"),
            take,
        ));
    }
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let timeout = cx.spec.blue_green.ready_timeout_seconds;
    let since = cx.step_since(word);
    Some(
        match handover::advance(cx, h, Pace::AllAtOnce, back, (min_ready, timeout), since) {
            Turn::Act(actions, message) => Progressed::act(word, message, actions),
            Turn::Wait(message, requeue) => Progressed::wait(word, message, requeue),
            Turn::Late(late) if !back => go_back(cx, saved, format!("{target}: {late}")),
            Turn::Late(late) => {
                // Green keeps serving; the sets go back to the target as they stand.
                let reason = format!(
                    "{}; the way back stalled too: {target}: {late}",
                    saved.reason.clone().unwrap_or_default()
                );
                Progressed::act(
                    word,
                    format!("{reason}; handing the replica sets back to {target} as they stand"),
                    vec![
                        handover::record_stalled(cx, saved, h, reason.clone()),
                        Action::warning("RollbackStalled", reason),
                    ],
                )
            }
            Turn::Done => Progressed::act(
                word,
                format!("{target}'s pods moved; handing the replica sets back"),
                vec![handover::record_returning(cx, saved, h)],
            ),
        },
    )
}
