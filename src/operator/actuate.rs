//! Carries out a step's actions against the API server, in order, stopping at the first
//! failure. Each action is safe to repeat: creating what exists, deleting what is gone and
//! evicting a pod that already left all count as done; a stale write fails with a conflict
//! and changes nothing.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::action::Action;
use super::check_runner::CheckRunner;
use super::error::{Error, status_code};
use super::step::FINALIZER;
use super::workload::{Kind, Workload};
use crate::api::MaintenancePlan;

pub const FIELD_MANAGER: &str = "cutover";

/// Where actions go: the plan's namespace, the plan itself, and the event recorder.
pub struct Target<'a> {
    pub client: &'a Client,
    pub recorder: &'a Recorder,
    pub plan: &'a MaintenancePlan,
    /// Makes the attempts of HTTP and webhook checks.
    pub runner: &'a CheckRunner,
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
    let stateful_sets: Api<StatefulSet> = Api::namespaced(t.client.clone(), ns);
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
        Action::ReplaceWorkload(w) => {
            let what = w.to_string();
            match &**w {
                Workload::Deployment(d) => {
                    deployments.replace(w.name(), &post(), d).await.map(|_| ())
                }
                Workload::StatefulSet(s) => stateful_sets
                    .replace(w.name(), &post(), s)
                    .await
                    .map(|_| ()),
            }
            .map_err(|e| Error::api("update", what, e))
        }
        Action::PatchWorkload { kind, name, patch } => {
            let what = format!("{kind} {name}");
            match kind {
                Kind::Deployment => merge_patch(&deployments, name, patch, what).await,
                Kind::StatefulSet => merge_patch(&stateful_sets, name, patch, what).await,
            }
        }
        Action::CreateWorkload(w) => match &**w {
            Workload::Deployment(d) => create_once(&deployments, d, "deployment").await,
            Workload::StatefulSet(s) => create_once(&stateful_sets, s, "statefulset").await,
        },
        Action::DeleteWorkload { kind, name } => {
            let params = DeleteParams::background();
            match kind {
                Kind::Deployment => delete_if_there(&deployments, name, params, kind.word()).await,
                Kind::StatefulSet => {
                    delete_if_there(&stateful_sets, name, params, kind.word()).await
                }
            }
        }
        Action::CreateReplicaSet(rs) => {
            let sets: Api<ReplicaSet> = Api::namespaced(t.client.clone(), ns);
            create_once(&sets, rs, "replicaset").await
        }
        Action::PatchReplicaSet { name, patch } => {
            let sets: Api<ReplicaSet> = Api::namespaced(t.client.clone(), ns);
            merge_patch(&sets, name, patch, format!("replicaset {name}")).await
        }
        Action::DeleteReplicaSet { name } => {
            let sets: Api<ReplicaSet> = Api::namespaced(t.client.clone(), ns);
            delete_if_there(&sets, name, DeleteParams::background(), "replicaset").await
        }
        Action::SetServiceSelector { service, selector } => {
            let services: Api<Service> = Api::namespaced(t.client.clone(), ns);
            let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
                {"op": "replace", "path": "/spec/selector", "value": selector}
            ]))
            .expect("a valid JSON patch");
            services
                .patch(service, &patch_params(), &Patch::<()>::Json(patch))
                .await
                .map(|_| ())
                .map_err(|e| Error::api("patch", format!("service {service} selector"), e))
        }
        Action::CreateService(service) => {
            let services: Api<Service> = Api::namespaced(t.client.clone(), ns);
            create_once(&services, service, "service").await
        }
        Action::DeleteService { name } => {
            let services: Api<Service> = Api::namespaced(t.client.clone(), ns);
            delete_if_there(&services, name, DeleteParams::default(), "service").await
        }
        Action::CreatePod(pod) => create_once(&pods, pod, "pod").await,
        Action::CreateJob(job) => {
            let jobs: Api<Job> = Api::namespaced(t.client.clone(), ns);
            create_once(&jobs, job, "job").await
        }
        Action::DeleteJob { name } => {
            let jobs: Api<Job> = Api::namespaced(t.client.clone(), ns);
            delete_if_there(&jobs, name, DeleteParams::background(), "job").await
        }
        Action::Probe(request) => {
            t.runner.start(request, ObjectRef::from_obj(t.plan));
            Ok(())
        }
        Action::DeletePod { name } => {
            delete_if_there(&pods, name, DeleteParams::default(), "pod").await
        }
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

fn post() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Creates `obj`; one that already exists (a repeated step) counts as created.
async fn create_once<K>(api: &Api<K>, obj: &K, kind: &str) -> Result<(), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match api.create(&post(), obj).await {
        Err(e) if status_code(&e) == Some(409) => Ok(()),
        other => other
            .map(|_| ())
            .map_err(|e| Error::api("create", format!("{kind} {name}"), e)),
    }
}

/// Deletes `name`; one that is already gone counts as deleted.
async fn delete_if_there<K>(
    api: &Api<K>,
    name: &str,
    params: DeleteParams,
    kind: &str,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &params).await {
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        other => other
            .map(|_| ())
            .map_err(|e| Error::api("delete", format!("{kind} {name}"), e)),
    }
}

async fn merge_patch<K>(
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
    what: String,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &patch_params(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| Error::api("patch", what, e))
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
