//! Carries out a step's actions against the API server, in order, stopping at the first
//! failure. Each action is safe to repeat: creating what exists, deleting what is gone and
//! evicting a pod that already left all count as done; a stale write fails with a conflict
//! and changes nothing.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource};

use super::action::Action;
use super::error::{Error, status_code};
use super::step::FINALIZER;
use crate::api::MaintenancePlan;

pub const FIELD_MANAGER: &str = "cutover";

/// Where actions go: the plan's namespace, the plan itself, and the event recorder.
pub struct Target<'a> {
    pub client: &'a Client,
    pub recorder: &'a Recorder,
    pub plan: &'a MaintenancePlan,
}

pub async fn run(t: &Target<'_>, actions: &[Action]) -> Result<(), Error> {
    for action in actions {
        perform(t, action).await?;
    }
    Ok(())
}

async fn perform(t: &Target<'_>, action: &Action) -> Result<(), Error> {
    let ns = t.plan.metadata.namespace.as_deref().unwrap_or("default");
    let deployments: Api<Deployment> = Api::namespaced(t.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), ns);
    let params = PatchParams::default();
    match action {
        Action::AddFinalizer | Action::RemoveFinalizer => {
            let plans: Api<MaintenancePlan> = Api::namespaced(t.client.clone(), ns);
            let mut finalizers: Vec<String> =
                t.plan.metadata.finalizers.clone().unwrap_or_default();
            finalizers.retain(|f| f != FINALIZER);
            if matches!(action, Action::AddFinalizer) {
                finalizers.push(FINALIZER.to_string());
            }
            let patch = serde_json::json!({"metadata": {
                "finalizers": finalizers,
                "resourceVersion": t.plan.metadata.resource_version,
            }});
            let name = t.plan.metadata.name.as_deref().unwrap_or_default();
            match plans.patch(name, &params, &Patch::Merge(&patch)).await {
                Err(e)
                    if status_code(&e) == Some(404)
                        && matches!(action, Action::RemoveFinalizer) =>
                {
                    Ok(())
                }
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("patch", format!("plan {name} finalizers"), e)),
            }
        }
        Action::ReplaceDeployment(d) => {
            let name = d.metadata.name.as_deref().unwrap_or_default();
            deployments
                .replace(
                    name,
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    d,
                )
                .await
                .map(|_| ())
                .map_err(|e| Error::api("replace", format!("deployment {name}"), e))
        }
        Action::PatchDeployment { name, patch } => deployments
            .patch(
                name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(patch),
            )
            .await
            .map(|_| ())
            .map_err(|e| Error::api("patch", format!("deployment {name}"), e)),
        Action::CreateDeployment(d) => {
            let name = d.metadata.name.as_deref().unwrap_or_default();
            match deployments
                .create(
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    d,
                )
                .await
            {
                Err(e) if status_code(&e) == Some(409) => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("create", format!("deployment {name}"), e)),
            }
        }
        Action::DeleteDeployment { name } => {
            match deployments.delete(name, &DeleteParams::background()).await {
                Err(e) if status_code(&e) == Some(404) => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("delete", format!("deployment {name}"), e)),
            }
        }
        Action::CreateReplicaSet(rs) => {
            let sets: Api<ReplicaSet> = Api::namespaced(t.client.clone(), ns);
            let name = rs.metadata.name.as_deref().unwrap_or_default();
            match sets
                .create(
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    rs,
                )
                .await
            {
                Err(e) if status_code(&e) == Some(409) => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("create", format!("replicaset {name}"), e)),
            }
        }
        Action::PatchReplicaSet { name, patch } => {
            Api::<ReplicaSet>::namespaced(t.client.clone(), ns)
                .patch(
                    name,
                    &PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(patch),
                )
                .await
                .map(|_| ())
                .map_err(|e| Error::api("patch", format!("replicaset {name}"), e))
        }
        Action::DeleteReplicaSet { name } => {
            let sets: Api<ReplicaSet> = Api::namespaced(t.client.clone(), ns);
            match sets.delete(name, &DeleteParams::background()).await {
                Err(e) if status_code(&e) == Some(404) => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("delete", format!("replicaset {name}"), e)),
            }
        }
        Action::SetServiceSelector { service, selector } => {
            let services: Api<Service> = Api::namespaced(t.client.clone(), ns);
            let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
                {"op": "replace", "path": "/spec/selector", "value": selector}
            ]))
            .expect("a valid JSON patch");
            services
                .patch(
                    service,
                    &PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::<()>::Json(patch),
                )
                .await
                .map(|_| ())
                .map_err(|e| Error::api("patch", format!("service {service} selector"), e))
        }
        Action::CreatePod(pod) => {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            match pods
                .create(
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    pod,
                )
                .await
            {
                Err(e) if status_code(&e) == Some(409) => Ok(()),
                other => other
                    .map(|_| ())
                    .map_err(|e| Error::api("create", format!("pod {name}"), e)),
            }
        }
        Action::DeletePod { name } => match pods.delete(name, &DeleteParams::default()).await {
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            other => other
                .map(|_| ())
                .map_err(|e| Error::api("delete", format!("pod {name}"), e)),
        },
        Action::EvictPod { name } => match pods.evict(name, &EvictParams::default()).await {
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) if status_code(&e) == Some(429) => Err(Error::EvictionBlocked(name.clone())),
            other => other
                .map(|_| ())
                .map_err(|e| Error::api("evict", format!("pod {name}"), e)),
        },
        Action::Event {
            warning,
            reason,
            message,
        } => {
            let event = Event {
                type_: if *warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: reason.clone(),
                note: Some(truncate(message, 1024)),
                action: reason.clone(),
                secondary: None,
            };
            let reference: ObjectReference = t.plan.object_ref(&());
            // An event that cannot be recorded must not stop the plan.
            if let Err(e) = t.recorder.publish(&event, &reference).await {
                tracing::warn!(error = %e, reason, "could not record event");
            }
            Ok(())
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
