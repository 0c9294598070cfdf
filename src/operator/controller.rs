//! Wires the reconcile driver into a kube-runtime Controller: the plans it watches, the
//! narrow watches that wake a plan (the Deployment it holds, its surge pods), and the
//! readiness signal after the first sync. Runs until `shutdown` resolves.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::metrics::Metrics;
use super::reconcile::{Context, error_policy, reconcile};
use super::step::restart::{PLAN_LABEL, ROLE_LABEL};
use super::target_state::PLAN_ANNOTATION;
use crate::api::{MaintenancePlan, Phase};
use crate::rules::Catalog;

/// What the controller needs besides a client.
pub struct Settings {
    /// Namespace to watch; `None` watches all.
    pub namespace: Option<String>,
    pub catalog: Catalog,
    pub metrics: Arc<Metrics>,
    /// Counts the controllers whose plans have been listed.
    pub synced: watch::Sender<usize>,
    /// Where the plan caches are published (for metrics).
    pub stores: Arc<Mutex<Vec<Store<MaintenancePlan>>>>,
    /// Name of this operator instance for Events.
    pub instance: Option<String>,
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let plans: Api<MaintenancePlan> = api(&client, &settings.namespace);
    let deployments: Api<Deployment> = api(&client, &settings.namespace);
    let pods: Api<Pod> = api(&client, &settings.namespace);
    let controller = Controller::new(plans.clone(), watcher::Config::default().any_semantic());
    let store = controller.store();
    let peers_store = store.clone();
    let controller = controller
        .watches(
            deployments,
            watcher::Config::default().any_semantic(),
            |d: Deployment| {
                let plan = d.annotations().get(PLAN_ANNOTATION)?.clone();
                Some(ObjectRef::new(&plan).within(&d.namespace()?))
            },
        )
        .watches(
            pods,
            watcher::Config::default().labels(ROLE_LABEL).any_semantic(),
            |p: Pod| {
                let plan = p.labels().get(PLAN_LABEL)?.clone();
                Some(ObjectRef::new(&plan).within(&p.namespace()?))
            },
        )
        // When a plan ends or goes away, the plans waiting for its target look again.
        .watches(
            plans,
            watcher::Config::default().any_semantic(),
            move |plan: MaintenancePlan| {
                let ended = plan.metadata.deletion_timestamp.is_some()
                    || plan.status.as_ref().and_then(|s| s.phase).is_some_and(|p| {
                        matches!(
                            p,
                            Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected
                        )
                    });
                let namespace = plan.namespace();
                let peers: Vec<ObjectRef<MaintenancePlan>> = if ended {
                    peers_store
                        .state()
                        .iter()
                        .filter(|p| {
                            p.namespace() == namespace
                                && p.spec.target.name == plan.spec.target.name
                        })
                        .filter(|p| p.name_any() != plan.name_any())
                        .filter(|p| {
                            p.status
                                .as_ref()
                                .and_then(|s| s.phase)
                                .is_none_or(|ph| ph == Phase::Pending)
                        })
                        .map(|p| ObjectRef::from_obj(p.as_ref()))
                        .collect()
                } else {
                    Vec::new()
                };
                peers
            },
        );
    settings
        .stores
        .lock()
        .expect("stores lock")
        .push(store.clone());
    let synced = settings.synced.clone();
    let ready_store = store.clone();
    tokio::spawn(async move {
        if ready_store.wait_until_ready().await.is_ok() {
            synced.send_modify(|n| *n += 1);
        }
    });
    let reporter = Reporter {
        controller: "cutover".into(),
        instance: settings.instance.clone(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        catalog: settings.catalog,
        plans: store,
        metrics: settings.metrics,
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
}
