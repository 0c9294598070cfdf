//! The pure state machine of a plan: `step(snapshot, catalog, policy, now) -> Decision`. The lifecycle
//! (finalizer, evaluation, lock, start, finish, deletion) lives here; each technique's own
//! progress lives in its module. No IO: the decision lists the actions to take.

pub mod blue_green;
mod check_job;
#[cfg(test)]
mod checked_update_tests;
mod checks;
#[cfg(test)]
mod checks_tests;
mod cleanup;
mod evaluation;
mod full_restart;
#[cfg(test)]
mod gitops_tests;
pub mod handover;
#[cfg(test)]
mod handover_model;
mod held_blue;
mod held_full_restart;
mod held_rollout;
#[cfg(test)]
mod inference_tests;
mod isolation;
#[cfg(test)]
mod isolation_tests;
#[cfg(test)]
mod names_tests;
mod pending;
mod pending_rollout;
#[cfg(test)]
mod privilege_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod replaced_tests;
pub mod restart;
mod rolling;
#[cfg(test)]
mod selector_tests;
mod settled_checks;
mod stalled_rollback;
#[cfg(test)]
mod stalled_rollback_tests;
#[cfg(test)]
mod stateful_gitops_tests;
#[cfg(test)]
mod stateful_tests;
#[cfg(test)]
mod tests;
mod unrecorded;
#[cfg(test)]
mod waits_tests;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::action::Action;
use super::conditions;
use super::lock::blocking_plan;
use super::policy::Policy;
use super::preflight;
use super::snapshot::Snapshot;
use super::workload::saved::{self as record, Mode, Saved};
use crate::api::{
    Flow, MaintenancePlanSpec, MaintenancePlanStatus, Phase, Progress, Technique, Verdict,
};
use crate::operator::replica_sets::{self, Running};
use crate::operator::workload::{Kind, Workload};
use crate::rules::{Catalog, privilege};
use pending::Pending;

/// The finalizer that lets a running plan be aborted safely before it is deleted.
pub const FINALIZER: &str = "cutover.dev/abort-on-delete";

/// What to do now, and the status to record afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub actions: Vec<Action>,
    pub status: MaintenancePlanStatus,
    /// Look again after this long even if nothing changes (a deadline or a hold ends).
    pub requeue: Option<Duration>,
}

/// What a technique sees.
pub(crate) struct Cx<'a> {
    pub snap: &'a Snapshot,
    pub plan: &'a str,
    pub spec: &'a MaintenancePlanSpec,
    pub target: &'a Workload,
    pub now: Timestamp,
    /// Abort requested, or the plan is being deleted.
    pub aborting: bool,
}

impl Cx<'_> {
    /// How long the plan has been in `step` (zero when it is not there yet): the clock of a
    /// waiting step's deadline.
    pub fn seconds_in(&self, step: &str) -> f64 {
        let status = self.snap.plan.status.as_ref();
        match status.and_then(|s| s.step_started_at.as_ref()) {
            Some(since) if status.and_then(|s| s.step.as_deref()) == Some(step) => {
                super::pods::seconds_between(since.0, self.now)
            }
            _ => 0.0,
        }
    }

    /// When the plan entered `step` (now when it is not there yet): where the deadline of
    /// a wait that began with the step counts from.
    pub fn step_since(&self, step: &str) -> Timestamp {
        super::pods::add_seconds(self.now, -self.seconds_in(step))
    }

    /// A `PodReplaced` Event when `done` of `total` pods run `template` and the last
    /// recorded progress was lower.
    pub fn pod_replaced(&self, done: i32, total: i32, template: &str) -> Option<Action> {
        let before = self
            .snap
            .plan
            .status
            .as_ref()
            .and_then(|s| s.progress.as_ref())
            .map_or(0, |p| p.done);
        (done > before && done <= total).then(|| {
            Action::event(
                "PodReplaced",
                format!("{done}/{total} pods run the {template}"),
            )
        })
    }

    /// The phase a plan ends in once it is back where it started: Aborted when asked to
    /// (abort or deletion), Failed when a failure sent it back.
    pub fn back_outcome(&self) -> Phase {
        if self.aborting {
            Phase::Aborted
        } else {
            Phase::Failed
        }
    }
}

/// Where a technique stands after one look.
pub(crate) enum Outcome {
    /// Keep going; look again after this long at the latest.
    Continue(Option<Duration>),
    /// The work is over with this result; clean up next.
    Finish(Phase),
}

pub(crate) struct Progressed {
    pub actions: Vec<Action>,
    pub step: &'static str,
    pub message: String,
    pub progress: Option<Progress>,
    pub outcome: Outcome,
    /// FullRestart: the measured downtime, once known.
    pub downtime: Option<String>,
    /// BlueGreen: when the Service was switched to green.
    pub switched_at: Option<Timestamp>,
    /// BlueGreen: green is Ready and waits for `spec.promote`.
    pub awaiting_promotion: bool,
    /// BlueGreen's start: the selectors it saves of the Services it pins, for the status copy.
    pub selectors_before: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// The results of a stage's checks, for `status.checks`.
    pub checks: Option<(crate::api::CheckStage, Vec<crate::api::CheckResult>)>,
}

impl Progressed {
    pub fn wait(step: &'static str, message: String, requeue: Option<Duration>) -> Self {
        Self {
            actions: Vec::new(),
            step,
            message,
            progress: None,
            outcome: Outcome::Continue(requeue),
            downtime: None,
            switched_at: None,
            awaiting_promotion: false,
            selectors_before: None,
            checks: None,
        }
    }

    pub fn act(step: &'static str, message: String, actions: Vec<Action>) -> Self {
        Self {
            actions,
            step,
            message,
            progress: None,
            outcome: Outcome::Continue(None),
            downtime: None,
            switched_at: None,
            awaiting_promotion: false,
            selectors_before: None,
            checks: None,
        }
    }

    pub fn finish(phase: Phase, message: String) -> Self {
        Self {
            actions: Vec::new(),
            step: "Finishing",
            message,
            progress: None,
            outcome: Outcome::Finish(phase),
            downtime: None,
            switched_at: None,
            awaiting_promotion: false,
            selectors_before: None,
            checks: None,
        }
    }

    pub fn with_progress(mut self, progress: Option<Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Holding because the plan is paused, with `done` of `total` steps behind it.
    pub fn paused(done: i32, total: i32) -> Self {
        Self::wait(
            "Paused",
            format!("paused at {done}/{total} pods; set spec.paused to false to go on"),
            None,
        )
        .with_progress(Some(Progress::new(done.min(total), total)))
    }

    /// With what a look at a stage's checks asked for (its attempts, Jobs and Events, ahead
    /// of this step's own actions) and found.
    pub fn with_gate(mut self, stage: crate::api::CheckStage, gate: Option<checks::Gate>) -> Self {
        if let Some(gate) = gate {
            let mut actions = gate.actions;
            actions.append(&mut self.actions);
            self.actions = actions;
            self.checks = Some((stage, gate.results));
        }
        self
    }

    pub fn switched_at(mut self, at: Option<Timestamp>) -> Self {
        self.switched_at = at;
        self
    }

    pub fn selectors_before(
        mut self,
        selectors: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Self {
        self.selectors_before = Some(selectors);
        self
    }
}

/// Builds a decision from the previous status.
struct Draft {
    actions: Vec<Action>,
    status: MaintenancePlanStatus,
    previous: MaintenancePlanStatus,
    invalid: bool,
    requeue: Option<Duration>,
    now: Timestamp,
}

impl Draft {
    fn phase(&mut self, phase: Phase, step: &str, message: String) {
        if self.previous.step.as_deref() != Some(step) || self.previous.phase != Some(phase) {
            self.status.step_started_at = Some(Time(self.now));
        }
        self.status.phase = Some(phase);
        self.status.step = Some(step.to_string());
        self.status.message = Some(message);
        if matches!(
            phase,
            Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected
        ) {
            self.status.completed_at = Some(Time(self.now));
            self.status.outcome = None;
        }
    }

    fn finish(mut self) -> Decision {
        let phase = self.status.phase;
        if phase != self.previous.phase
            && let Some(phase) = phase
        {
            let message = self.status.message.clone().unwrap_or_default();
            let warning = matches!(phase, Phase::Failed | Phase::Rejected);
            self.actions.push(Action::Event {
                warning,
                reason: format!("{phase:?}"),
                message,
            });
        }
        self.status.conditions = conditions::derive(
            &self.status,
            &self.previous.conditions,
            self.invalid,
            self.now,
        );
        Decision {
            actions: self.actions,
            status: self.status,
            requeue: self.requeue,
        }
    }
}

/// One step of a plan, under the operator's `policy`.
pub fn step(snap: &Snapshot, catalog: &Catalog, policy: &Policy, now: Timestamp) -> Decision {
    let plan = &snap.plan;
    let name = plan.metadata.name.as_deref().unwrap_or_default();
    let previous = plan.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = plan.metadata.generation;
    let mut d = Draft {
        actions: Vec::new(),
        status,
        previous: previous.clone(),
        invalid: false,
        requeue: None,
        now,
    };
    let deleting = plan.metadata.deletion_timestamp.is_some();
    let has_finalizer = plan
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER);
    if !deleting && !has_finalizer {
        d.actions.push(Action::AddFinalizer);
    }
    let release = |d: &mut Draft| {
        if deleting && has_finalizer {
            d.actions.push(Action::RemoveFinalizer);
        }
    };

    let terminal = matches!(
        previous.phase,
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted)
    );
    let settled_rejection = previous.phase == Some(Phase::Rejected)
        && previous.observed_generation == plan.metadata.generation;
    if terminal || settled_rejection {
        d.invalid = previous
            .conditions
            .iter()
            .any(|c| c.reason == "InvalidPlan");
        release(&mut d);
        return d.finish();
    }

    let (saved, unreadable) = match snap.target.as_ref().map(|t| record::read(t, name)) {
        Some(Ok(saved)) => (saved, None),
        Some(Err(unreadable)) => (None, Some(unreadable)),
        None => (None, None),
    };
    let started = saved.is_some()
        || unreadable.is_some()
        || matches!(
            previous.phase,
            Some(Phase::Progressing | Phase::AwaitingPromotion)
        );
    if !started {
        if deleting {
            release(&mut d);
            return d.finish();
        }
        return start(snap, catalog, policy, name, d);
    }
    // The status write of the first step can be lost after its actions were carried out (an
    // API error, a crash): the plan then goes on from the target's marks. The evaluation is
    // pure and the spec immutable, so record it again rather than leave it out for good.
    if d.status.strategy.is_none()
        && let Ok(evaluation) = evaluation::evaluate_in_cluster(snap, catalog, saved.as_ref())
    {
        d.status.changes = evaluation.changes;
        d.status.findings = evaluation.findings;
        d.status.strategy = Some(evaluation.verdict);
    }
    if d.status.started_at.is_none() {
        d.status.started_at = saved.as_ref().and_then(|s| s.started_at).map(Time);
    }
    if let Some(saved) = &saved {
        d.status.selectors_before = record::selectors_before(&plan.spec, saved);
    }
    if d.status.flow.is_none()
        && let Some(saved) = &saved
    {
        d.status.flow = Some(if saved.handover.is_some() || saved.held.is_some() {
            Flow::PendingTemplate
        } else if update_given(&plan.spec) {
            Flow::Update
        } else {
            Flow::Restart
        });
    }

    let Some(target) = snap.target.as_ref() else {
        let (actions, recovered) = unrecorded::recover(snap, name, &previous.selectors_before);
        d.actions.extend(actions);
        d.phase(
            Phase::Failed,
            "TargetLost",
            format!(
                "target {} {} disappeared during the plan; {recovered}",
                Kind::from(plan.spec.target.kind),
                plan.spec.target.name
            ),
        );
        release(&mut d);
        return d.finish();
    };
    let cx = Cx {
        snap,
        plan: name,
        spec: &plan.spec,
        target,
        now,
        aborting: plan.spec.abort || deleting,
    };

    if let Some(outcome) = previous.outcome {
        if saved.is_none() {
            d.actions
                .extend(unrecorded::recover(snap, name, &previous.selectors_before).0);
        }
        d.actions
            .extend(cleanup::actions(&cx, saved.as_ref(), outcome));
        let message = previous.message.clone().unwrap_or_default();
        d.phase(outcome, "Done", message);
        release(&mut d);
        return d.finish();
    }

    let Some(saved) = saved else {
        let (step, lost) = match &unreadable {
            Some(unreadable) => (
                "RecordUnreadable",
                format!("{unreadable}; the plan cannot tell from it what it changed on {target}"),
            ),
            None => (
                "RecordLost",
                format!(
                    "the {} and {} annotations on {target} (the plan's record of what it changed) were removed during the plan",
                    record::PLAN_ANNOTATION,
                    record::SAVED_ANNOTATION,
                ),
            ),
        };
        let (actions, recovered) = unrecorded::recover(snap, name, &previous.selectors_before);
        d.actions.extend(actions);
        d.actions.extend(cleanup::actions(&cx, None, Phase::Failed));
        d.phase(Phase::Failed, step, format!("{lost}; {recovered}"));
        release(&mut d);
        return d.finish();
    };
    let progressed = match saved_mode(&saved) {
        Mode::Rollout => rolling::advance(&cx, &saved),
        Mode::Restart => restart::advance(&cx, &saved),
        Mode::FullRestart => full_restart::advance(&cx, &saved),
        Mode::BlueGreen => blue_green::advance(&cx, &saved),
        Mode::PendingRollout => pending_rollout::advance(&cx, &saved),
        Mode::HeldRollout => held_rollout::advance(&cx, &saved),
        Mode::HeldFullRestart => held_full_restart::advance(&cx, &saved),
    };
    apply(&mut d, progressed);
    if let Some(outcome) = d.status.outcome {
        let message = d.status.message.clone().unwrap_or_default();
        let switched = d.status.switched_at.is_some();
        let settled = settled_checks::settle(
            &mut d.status.checks,
            cx.spec,
            &message,
            outcome,
            switched,
            d.now,
        );
        d.actions.extend(settled);
    }
    d.finish()
}

/// The plan says what the new pods look like (image, env or a template patch).
fn update_given(spec: &MaintenancePlanSpec) -> bool {
    spec.update
        .as_ref()
        .is_some_and(|u| u.image.is_some() || !u.env.is_empty() || u.pod_template_patch.is_some())
}

fn saved_mode(saved: &Saved) -> Mode {
    saved.mode.unwrap_or(Mode::Restart)
}

/// Records a technique's progress in the draft.
fn apply(d: &mut Draft, p: Progressed) {
    d.actions.extend(p.actions);
    if p.progress.is_some() {
        d.status.progress = p.progress;
    }
    if p.downtime.is_some() {
        d.status.downtime = p.downtime;
    }
    if let Some(at) = p.switched_at {
        d.status.switched_at = Some(Time(at));
    }
    if let Some(selectors) = p.selectors_before {
        d.status.selectors_before = selectors;
    }
    if let Some((stage, results)) = p.checks {
        checks::merge(&mut d.status.checks, stage, results);
    }
    match p.outcome {
        Outcome::Continue(requeue) => {
            let phase = if p.awaiting_promotion {
                Phase::AwaitingPromotion
            } else {
                Phase::Progressing
            };
            d.phase(phase, p.step, p.message);
            // Every step that keeps going looks again on its own, so that a deadline is
            // noticed without an outside event, and never sooner than the floor.
            let in_step = d
                .status
                .step_started_at
                .as_ref()
                .map_or(Duration::ZERO, |t| super::time::since(t.0, d.now));
            d.requeue = Some(super::time::next_look(requeue, in_step));
        }
        Outcome::Finish(phase) => {
            d.phase(Phase::Progressing, "Finishing", p.message);
            d.status.outcome = Some(phase);
            d.requeue = Some(Duration::ZERO);
        }
    }
}

/// A plan that has not touched anything yet: evaluate, check, wait for the lock, start.
fn start(
    snap: &Snapshot,
    catalog: &Catalog,
    policy: &Policy,
    name: &str,
    mut d: Draft,
) -> Decision {
    let spec = &snap.plan.spec;
    if spec.abort {
        d.phase(
            Phase::Aborted,
            "Done",
            "aborted before it started; nothing was touched".into(),
        );
        return d.finish();
    }
    let evaluation = match evaluation::evaluate_in_cluster(snap, catalog, None) {
        Ok(e) => e,
        Err(invalid) => {
            d.invalid = true;
            d.status.strategy = Some(Verdict::Rejected);
            d.status.changes.clear();
            d.status.findings.clear();
            d.phase(Phase::Rejected, "Done", format!("invalid plan: {invalid}"));
            return d.finish();
        }
    };
    d.status.changes = evaluation.changes.clone();
    d.status.findings = evaluation.findings.clone();
    d.status.strategy = Some(evaluation.verdict);
    let Some(technique) = evaluation.verdict.technique() else {
        d.phase(Phase::Rejected, "Done", evaluation.explanation);
        return d.finish();
    };
    // The lock first: while another plan holds the target, what it changed (a pinned
    // selector, say) is not this plan's problem.
    if let Some(other) = blocking_plan(snap) {
        d.phase(
            Phase::Pending,
            "WaitingForPlan",
            format!(
                "waiting for plan {other} to finish with {} {}",
                Kind::from(spec.target.kind),
                spec.target.name
            ),
        );
        return d.finish();
    }
    let ready = match preflight::check(snap) {
        Ok(ready) => ready,
        Err(problem) => {
            d.phase(
                Phase::Rejected,
                "Done",
                format!("{problem}; nothing was touched"),
            );
            return d.finish();
        }
    };
    let template = ready.target.template().cloned().unwrap_or_default();
    let escalations = privilege::escalations(spec, Some(&template), Some(&ready.new_template));
    let allowed = policy.allow_privileged_patches;
    if let Some(finding) = privilege::finding(&escalations, &privilege::verdict(allowed)) {
        let message = format!("{}; nothing was touched", finding.message);
        d.status.findings.push(finding);
        if !allowed {
            d.phase(Phase::Rejected, "Done", message);
            return d.finish();
        }
    }
    let paused_target = ready.target.paused() == Some(true);
    let pending = match pending::find(snap, ready.target) {
        Ok(pending) => pending,
        Err(problem) => {
            d.phase(
                Phase::Rejected,
                "Done",
                format!("{problem}; nothing was touched"),
            );
            return d.finish();
        }
    };
    if let Some(held_back) = pending.as_ref().filter(|_| update_given(spec)) {
        d.phase(
            Phase::Rejected,
            "Done",
            format!(
                "{} {} and the plan has an update: two sources of truth for the new pods; remove spec.update to roll out the pending template (GitOps flow), {}; nothing was touched",
                ready.target,
                ready.target.holding(),
                held_back.kubectl_way(ready.target)
            ),
        );
        return d.finish();
    }
    if let (true, Running::Rolling(sets)) = (
        paused_target,
        replica_sets::running(ready.target, &snap.replica_sets),
    ) {
        d.phase(
            Phase::Rejected,
            "Done",
            format!(
                "{} is paused half way through a rollout ({sets} replica sets have pods); finish or undo that rollout first; nothing was touched",
                ready.target
            ),
        );
        return d.finish();
    }
    let flow = if pending.is_some() {
        Flow::PendingTemplate
    } else if ready.new_template != template {
        Flow::Update
    } else {
        Flow::Restart
    };
    if let Some(problem) = checks::unusable(spec, ready.target, &ready.new_template) {
        d.phase(
            Phase::Rejected,
            "Done",
            format!("{problem}; nothing was touched"),
        );
        return d.finish();
    }
    if spec.paused {
        d.phase(
            Phase::Pending,
            "Paused",
            "paused before the first step; set spec.paused to false to start".into(),
        );
        return d.finish();
    }
    let cx = Cx {
        snap,
        plan: name,
        spec,
        target: ready.target,
        now: d.now,
        aborting: false,
    };
    // What the technique's start means beyond the plan's own target, for the Started Event.
    let mut note = None;
    let progressed = match (technique, pending) {
        (Technique::RollingRestart, Some(Pending::ReplicaSet(running))) => {
            pending_rollout::begin(&cx, running, false)
        }
        (Technique::FullRestart, Some(Pending::ReplicaSet(running))) => {
            pending_rollout::begin(&cx, running, true)
        }
        (Technique::RollingRestart, Some(Pending::Held(held))) => held_rollout::begin(&cx, *held),
        (Technique::FullRestart, Some(Pending::Held(held))) => held_full_restart::begin(&cx, *held),
        // A controller that replaces its pods at its own pace cannot be held after each pod:
        // under afterEachPod checks the pods move the way a pending template's do.
        (Technique::RollingRestart, None)
            if flow == Flow::Update
                && !spec.rolling_restart.after_each_pod.is_empty()
                && !ready.target.paces_through_operator() =>
        {
            pending_rollout::begin_update(&cx, ready.new_template)
        }
        (Technique::RollingRestart, None) if flow == Flow::Update => {
            rolling::begin(&cx, ready.new_template)
        }
        (Technique::RollingRestart, None) => restart::begin(&cx),
        (Technique::FullRestart, None) => full_restart::begin(&cx, ready.new_template),
        (Technique::BlueGreen, pending) => {
            if let Some(finding) = isolation::missing_green_only(snap, evaluation.clustering) {
                let message = format!("{}; nothing was touched", finding.message);
                d.status.findings.push(finding);
                d.phase(Phase::Rejected, "Done", message);
                return d.finish();
            }
            d.status
                .findings
                .extend(isolation::green_only_names_no_twin(
                    snap,
                    evaluation.clustering,
                ));
            let green = blue_green::green_name(ready.target.kind(), &spec.target.name);
            if snap.green.as_ref().is_some_and(|g| {
                g.labels()
                    .and_then(|l| l.get(blue_green::PLAN_LABEL))
                    .is_none_or(|p| p != name)
            }) {
                let kind = ready.target.kind();
                d.phase(Phase::Rejected, "Done", format!("a {kind} named {green} already exists and was not made by this plan; nothing was touched"));
                return d.finish();
            }
            if pending.is_none() && !ready.target.is_complete() {
                d.phase(
                    Phase::Pending,
                    "WaitingForTarget",
                    format!("waiting for {} to finish its current rollout", ready.target),
                );
                d.requeue = Some(Duration::from_secs(2));
                return d.finish();
            }
            let Some(blue_hash) =
                blue_green::blue_revision(ready.target, &snap.replica_sets, pending.as_ref())
            else {
                d.phase(
                    Phase::Pending,
                    "WaitingForTarget",
                    format!(
                        "waiting for the revision ({}) of the pods of {} to be known: service {} is pinned to it, and a pin without it would select no pod",
                        ready.target.kind().revision_label(),
                        ready.target,
                        spec.service
                    ),
                );
                d.requeue = Some(Duration::from_secs(2));
                return d.finish();
            };
            note = Some(blue_green::pin_note(&cx, &blue_hash));
            blue_green::begin(&cx, ready.new_template, pending, blue_hash)
        }
    };
    d.status.flow = Some(flow);
    d.status.started_at = Some(Time(d.now));
    d.status.completed_at = None;
    d.status.outcome = None;
    let note = note.map(|n| format!("; {n}")).unwrap_or_default();
    d.actions.push(Action::event(
        "Started",
        format!(
            "{} of {} ({}): {}{note}",
            technique.as_str(),
            ready.target,
            flow.describe(),
            evaluation.explanation
        ),
    ));
    apply(&mut d, progressed);
    d.finish()
}
