//! The thin driver of one plan: observe -> step (pure) -> actuate -> status. Everything it
//! decides comes from `step`; everything it knows comes from `observe`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use super::action::Action;
use super::actuate;
use super::check_runner::CheckRunner;
use super::conditions;
use super::error::Error;
use super::metrics::{Metrics, OutcomeLabel, ReasonLabel};
use super::observe::observe;
use super::policy::Policy;
use super::retry::RetryPolicy;
use super::status_write;
use super::step::step;
use crate::api::{MaintenancePlan, Phase};
use crate::rules::Catalog;

/// How often a plan that waits for another one looks again, in case a wake-up was missed.
const WAITING_RECHECK: Duration = Duration::from_secs(10);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub catalog: Catalog,
    /// What the operator's settings let plans do beyond the rules.
    pub policy: Policy,
    pub plans: Store<MaintenancePlan>,
    pub metrics: Arc<Metrics>,
    pub retry: RetryPolicy,
    /// Failed reconciles in a row, by plan (`namespace/name`): how far the next retry backs
    /// off. Only the pace of retries; nothing a decision depends on.
    pub failures: Mutex<HashMap<String, u32>>,
    /// Makes the attempts of HTTP and webhook checks and keeps their answers.
    pub runner: CheckRunner,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        catalog: Catalog,
        plans: Store<MaintenancePlan>,
        metrics: Arc<Metrics>,
        retry: RetryPolicy,
        runner: CheckRunner,
    ) -> Self {
        Context {
            client,
            recorder,
            catalog,
            policy: Policy::default(),
            plans,
            metrics,
            retry,
            failures: Mutex::default(),
            runner,
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn key(plan: &MaintenancePlan) -> String {
    format!(
        "{}/{}",
        plan.namespace().unwrap_or_default(),
        plan.name_any()
    )
}

pub async fn reconcile(plan: Arc<MaintenancePlan>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let namespace = plan.namespace().unwrap_or_else(|| "default".into());
    let name = plan.name_any();
    let result = reconcile_inner(&ctx, &namespace, &name).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures().remove(&key(&plan));
    }
    result
}

async fn reconcile_inner(ctx: &Context, namespace: &str, name: &str) -> Result<Requeue, Error> {
    let snapshot = match observe(&ctx.client, namespace, name, &ctx.plans, &ctx.runner).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => return Ok(Requeue::await_change()),
        Err(error) => {
            if error.is_permanent() {
                let plans: Api<MaintenancePlan> = Api::namespaced(ctx.client.clone(), namespace);
                if let Ok(Some(plan)) = plans.get_opt(name).await {
                    report_refusal(ctx, &plan, &error).await;
                }
            }
            return Err(error);
        }
    };
    let decision = step(&snapshot, &ctx.catalog, &ctx.policy, Timestamp::now());
    let plan = &snapshot.plan;
    let target = actuate::Target {
        client: &ctx.client,
        recorder: &ctx.recorder,
        plan,
        runner: &ctx.runner,
    };
    let before = plan.status.clone().unwrap_or_default();
    if let Err(error) = actuate::run(&target, &decision.actions).await {
        // A refused eviction is a wait, not a fault: say so in the status, then retry.
        if let Error::EvictionBlocked(_) = &error {
            let mut status = decision.status.clone();
            status.message = Some(error.to_string());
            actuate::run(
                &target,
                &[Action::warning("EvictionBlocked", error.to_string())],
            )
            .await?;
            status_write::write(&ctx.client, plan, &status).await?;
        }
        if error.is_permanent() {
            report_refusal(ctx, plan, &error).await;
        }
        return Err(error);
    }
    if let Err(error) = status_write::write(&ctx.client, plan, &decision.status).await {
        if error.is_permanent() {
            report_refusal(ctx, plan, &error).await;
        }
        return Err(error);
    }
    record(ctx, &before, &decision.status);
    if matches!(
        decision.status.phase,
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
    ) {
        ctx.runner
            .forget(plan.metadata.uid.as_deref().unwrap_or_default());
    }
    tracing::debug!(plan = name, phase = ?decision.status.phase, step = ?decision.status.step, actions = decision.actions.len(), "reconciled");
    Ok(match decision.requeue {
        Some(after) => Requeue::requeue(after),
        None if decision.status.phase == Some(Phase::Pending) => Requeue::requeue(WAITING_RECHECK),
        None => Requeue::await_change(),
    })
}

/// The API server refused a request of the plan's for good: say so in the plan's status (the
/// status as it stood, its message and `Stalled` condition naming what was refused) and in a
/// Warning Event, once for each new refusal. The status write is a request of its own, which
/// may be refused too: then the Event and the log say it.
async fn report_refusal(ctx: &Context, plan: &MaintenancePlan, error: &Error) {
    let message = error.refusal();
    let before = plan.status.clone().unwrap_or_default();
    let refused = conditions::refused(&before, error.reason(), message.clone(), Timestamp::now());
    if plan.status.as_ref() == Some(&refused) {
        return;
    }
    let target = actuate::Target {
        client: &ctx.client,
        recorder: &ctx.recorder,
        plan,
        runner: &ctx.runner,
    };
    // Events never fail the plan (actuate logs one that cannot be recorded).
    let _ = actuate::run(&target, &[Action::warning(error.reason(), message)]).await;
    if let Err(e) = status_write::write(&ctx.client, plan, &refused).await {
        tracing::warn!(plan = %plan.name_any(), reason = e.reason(), "could not record the refusal in the plan's status: {e}");
    }
}

/// Updates the metrics that follow from a status change.
fn record(
    ctx: &Context,
    before: &crate::api::MaintenancePlanStatus,
    after: &crate::api::MaintenancePlanStatus,
) {
    let done = |s: &crate::api::MaintenancePlanStatus| s.progress.as_ref().map_or(0, |p| p.done);
    if done(after) > done(before) {
        ctx.metrics
            .pods_replaced
            .inc_by((done(after) - done(before)) as u64);
    }
    if after.phase != before.phase
        && let (Some(phase), Some(start), Some(end)) =
            (after.phase, &after.started_at, &after.completed_at)
    {
        let seconds = (end.0.as_millisecond() - start.0.as_millisecond()) as f64 / 1000.0;
        let strategy = after
            .strategy
            .map(|s| s.as_str())
            .unwrap_or("None")
            .to_string();
        ctx.metrics
            .plan_seconds
            .get_or_create(&OutcomeLabel {
                strategy,
                phase: format!("{phase:?}"),
            })
            .observe(seconds);
    }
}

/// On error: count it, log it, and try again, backing off with the failures in a row (a
/// conflict almost at once, a refusal much later).
pub fn error_policy(plan: Arc<MaintenancePlan>, error: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ReasonLabel {
            reason: error.reason().into(),
        })
        .inc();
    match error {
        Error::Conflict(_) | Error::EvictionBlocked(_) => {
            tracing::debug!(plan = %plan.name_any(), reason = error.reason(), "{error}")
        }
        _ => tracing::warn!(plan = %plan.name_any(), reason = error.reason(), "{error}"),
    }
    let failures = {
        let mut all = ctx.failures();
        let n = all.entry(key(&plan)).or_default();
        *n = n.saturating_add(1);
        *n
    };
    Requeue::requeue(ctx.retry.delay(error, failures))
}
