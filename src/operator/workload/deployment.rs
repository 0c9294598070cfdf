//! The Deployment side of the workload layer: when its rollout is complete, its green copy,
//! and how a rollout is paced (its own controller surges one pod at a time and never goes
//! below the replicas) and undone. Pure. Its ReplicaSets (the GitOps flow) are in
//! `replica_sets`, not here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::saved::Saved;

fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The Deployment's controller has caught up with its spec and every replica is new and
/// available.
pub fn is_complete(d: &Deployment) -> bool {
    let want = desired_replicas(d);
    let Some(status) = d.status.as_ref() else {
        return false;
    };
    status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
        && status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
}

/// What the Deployment's controller says when it gave up on its rollout (its `Progressing`
/// condition is False with `ProgressDeadlineExceeded`: no progress within
/// `progressDeadlineSeconds`), once it has seen the current spec.
pub fn progress_deadline_exceeded(d: &Deployment) -> Option<String> {
    let status = d.status.as_ref()?;
    if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return None;
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "ProgressDeadlineExceeded".into())
        })
}

/// The green Deployment: `blue`'s replicas, selector (with `labels`) and minReadySeconds,
/// with `template` (which already carries `labels`).
pub(super) fn green_copy(
    blue: &Deployment,
    metadata: ObjectMeta,
    template: PodTemplateSpec,
    labels: &BTreeMap<String, String>,
) -> Deployment {
    let spec = blue.spec.clone().unwrap_or_default();
    let mut match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    match_labels.extend(labels.clone());
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(desired_replicas(blue)),
            selector: LabelSelector {
                match_labels: Some(match_labels),
                match_expressions: spec.selector.match_expressions,
            },
            template,
            min_ready_seconds: spec.min_ready_seconds,
            ..Default::default()
        }),
        status: None,
    }
}

/// One extra pod at a time, never one fewer: the ready count never drops below the replicas.
fn surge_one() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(1)),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    }
}

/// The Deployment with `new_template`, surging one pod at a time, unpaused, and holding
/// each new pod for at least `min_ready_seconds`; its strategy, minReadySeconds and paused
/// flag go into `saved`.
pub(super) fn paced_rollout(
    d: &Deployment,
    new_template: PodTemplateSpec,
    min_ready_seconds: i64,
    saved: &mut Saved,
) -> Deployment {
    let mut target = d.clone();
    let spec = target.spec.get_or_insert_with(Default::default);
    saved.strategy = spec.strategy.clone();
    saved.min_ready_seconds = spec.min_ready_seconds;
    saved.paused = spec.paused;
    spec.template = new_template;
    spec.strategy = Some(surge_one());
    let own = spec.min_ready_seconds.unwrap_or(0);
    spec.min_ready_seconds = Some(own.max(min_ready_seconds.min(i32::MAX as i64) as i32));
    spec.paused = Some(false);
    target
}

/// The strategy, minReadySeconds and paused flag as they were before the rollout.
pub(super) fn restored_settings(saved: &Saved) -> serde_json::Map<String, serde_json::Value> {
    let mut spec = serde_json::Map::new();
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
    spec
}
