//! The thin driver of one plan: observe -> step (pure) -> actuate -> status. Everything it
//! decides comes from `step`; everything it knows comes from `observe`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use super::action::Action;
use super::actuate;
use super::error::Error;
use super::metrics::{Metrics, OutcomeLabel, ReasonLabel};
use super::observe::observe;
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
    pub plans: Store<MaintenancePlan>,
    pub metrics: Arc<Metrics>,
}

pub async fn reconcile(plan: Arc<MaintenancePlan>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let namespace = plan.namespace().unwrap_or_else(|| "default".into());
    let name = plan.name_any();
    let result = reconcile_inner(&ctx, &namespace, &name).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(ctx: &Context, namespace: &str, name: &str) -> Result<Requeue, Error> {
    let Some(snapshot) = observe(&ctx.client, namespace, name, &ctx.plans).await? else {
        return Ok(Requeue::await_change());
    };
    let decision = step(&snapshot, &ctx.catalog, Timestamp::now());
    let plan = &snapshot.plan;
    let target = actuate::Target {
        client: &ctx.client,
        recorder: &ctx.recorder,
        plan,
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
        return Err(error);
    }
    status_write::write(&ctx.client, plan, &decision.status).await?;
    record(ctx, &before, &decision.status);
    tracing::debug!(plan = name, phase = ?decision.status.phase, step = ?decision.status.step, actions = decision.actions.len(), "reconciled");
    Ok(match decision.requeue {
        Some(after) => Requeue::requeue(after),
        None if decision.status.phase == Some(Phase::Pending) => Requeue::requeue(WAITING_RECHECK),
        None => Requeue::await_change(),
    })
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

/// On error: count it, log it, and try again soon (conflicts almost at once).
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
    Requeue::requeue(error.retry_after())
}
