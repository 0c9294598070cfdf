//! Wires the reconcile driver into a kube-runtime Controller: the plans it watches, the
//! narrow watches that wake a plan (the workload it holds, its surge pods), how many plans
//! reconcile at once, and the readiness signal after the first sync. Runs until `shutdown`
//! resolves.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::check_runner::CheckRunner;
use super::metrics::Metrics;
use super::policy::Policy;
use super::reconcile::{Context, error_policy, reconcile};
use super::retry::RetryPolicy;
use super::step::handover::HELD_LABEL;
use super::step::restart::PLAN_LABEL;
use super::workload::saved::PLAN_ANNOTATION;
use crate::api::{MaintenancePlan, Phase};
use crate::rules::Catalog;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// At most this many plans are reconciled at the same time. Each reconcile holds a snapshot
/// of its target and a request in flight on a connection of its own, so without a bound
/// memory grows with the number of running plans (1,000 plans at once: 257 MiB instead of
/// 48 MiB, see BENCHMARKS.md). Sixteen keep the API server and the operator's two threads
/// busy; a plan that waits for a slot waits for the first of sixteen reconciles to end.
const CONCURRENCY: u16 = 16;

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
    /// How soon a failed reconcile is tried again.
    pub retry: RetryPolicy,
    /// What the operator's settings let plans do beyond the rules.
    pub policy: Policy,
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
    let stateful_sets: Api<StatefulSet> = api(&client, &settings.namespace);
    let pods: Api<Pod> = api(&client, &settings.namespace);
    let replica_sets: Api<ReplicaSet> = api(&client, &settings.namespace);
    let slices: Api<EndpointSlice> = api(&client, &settings.namespace);
    let jobs: Api<Job> = api(&client, &settings.namespace);
    // Answers to check attempts wake their plan the way a watch event would.
    let (runner, answered) = CheckRunner::new();
    let any = || watcher::Config::default().any_semantic();
    let controller = Controller::new(plans.clone(), any())
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY));
    let store = controller.store();
    let (peers, steering) = (store.clone(), store.clone());
    let controller = controller
        .watches(deployments, any(), plan_of_workload)
        .watches(stateful_sets, any(), plan_of_workload)
        .watches(pods, any().labels(PLAN_LABEL), plan_of_pod)
        .watches(jobs, any().labels(PLAN_LABEL), plan_of_job)
        .reconcile_on(answered)
        .watches(replica_sets, any().labels(HELD_LABEL), plan_of_replica_set)
        .watches(slices, any().labels(SERVICE_NAME_LABEL), move |slice| {
            plans_steering(&steering, &slice)
        })
        .watches(plans, any(), move |plan| plans_waiting_for(&peers, &plan));
    settings
        .stores
        .lock()
        .expect("stores lock")
        .push(store.clone());
    let synced = settings.synced.clone();
    let ready_store = store.clone();
    // The store wakes only one waiter when it fills (the controller), so check it now and then
    // until it is ready rather than waiting on it.
    tokio::spawn(async move {
        loop {
            match ready_store.wait_until_ready().now_or_never() {
                Some(Ok(())) => break synced.send_modify(|n| *n += 1),
                Some(Err(_)) => break,
                None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    });
    let reporter = Reporter {
        controller: "cutover".into(),
        instance: settings.instance.clone(),
    };
    let mut ctx = Context::new(
        client.clone(),
        Recorder::new(client, reporter),
        settings.catalog,
        store,
        settings.metrics,
        settings.retry,
        runner,
    );
    ctx.policy = settings.policy;
    let ctx = Arc::new(ctx);
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

/// The plan holding a workload (annotation on the target) or that made it (label on green).
fn plan_of_workload<K: ResourceExt>(w: K) -> Option<ObjectRef<MaintenancePlan>> {
    let plan = w
        .annotations()
        .get(PLAN_ANNOTATION)
        .or_else(|| w.labels().get(PLAN_LABEL))?;
    Some(ObjectRef::new(plan).within(&w.namespace()?))
}

/// The plan that made a pod (surge pods, green's pods).
/// GitOps flow: a ReplicaSet a plan has taken over from its target.
fn plan_of_replica_set(rs: ReplicaSet) -> Option<ObjectRef<MaintenancePlan>> {
    Some(ObjectRef::new(rs.labels().get(HELD_LABEL)?).within(&rs.namespace()?))
}

/// The plan whose check a Job runs.
fn plan_of_job(job: Job) -> Option<ObjectRef<MaintenancePlan>> {
    Some(ObjectRef::new(job.labels().get(PLAN_LABEL)?).within(&job.namespace()?))
}

fn plan_of_pod(p: Pod) -> Option<ObjectRef<MaintenancePlan>> {
    Some(ObjectRef::new(p.labels().get(PLAN_LABEL)?).within(&p.namespace()?))
}

/// The running plans that steer the Service an EndpointSlice belongs to.
fn plans_steering(
    plans: &Store<MaintenancePlan>,
    slice: &EndpointSlice,
) -> Vec<ObjectRef<MaintenancePlan>> {
    let service = slice
        .labels()
        .get(SERVICE_NAME_LABEL)
        .cloned()
        .unwrap_or_default();
    let namespace = slice.namespace();
    plans
        .state()
        .iter()
        .filter(|p| p.namespace() == namespace && p.spec.service == service)
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|ph| matches!(ph, Phase::Progressing | Phase::AwaitingPromotion))
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// When a plan ends or goes away, the plans waiting for its target look again.
fn plans_waiting_for(
    plans: &Store<MaintenancePlan>,
    plan: &MaintenancePlan,
) -> Vec<ObjectRef<MaintenancePlan>> {
    let ended = plan.metadata.deletion_timestamp.is_some()
        || plan.status.as_ref().and_then(|s| s.phase).is_some_and(|p| {
            matches!(
                p,
                Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected
            )
        });
    if !ended {
        return Vec::new();
    }
    let namespace = plan.namespace();
    plans
        .state()
        .iter()
        .filter(|p| p.namespace() == namespace && p.spec.target.name == plan.spec.target.name)
        .filter(|p| p.name_any() != plan.name_any())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_none_or(|ph| ph == Phase::Pending)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}
