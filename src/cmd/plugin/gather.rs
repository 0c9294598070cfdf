//! Gathering the objects the tree is drawn from: once (lists), or continuously from watches
//! (kube-runtime reflectors on plans, deployments, replicasets, statefulsets, their
//! controllerrevisions, pods, services and events of
//! one namespace). No polling: a change of any watched object is what triggers a redraw.

use std::fmt::Debug;
use std::hash::Hash;
use std::ops::ControlFlow;
use std::time::Duration;

use cutover::api::MaintenancePlan;
use cutover::tree::{Check, Snapshot};
use futures::FutureExt as _;
use futures::stream::{self, BoxStream, StreamExt as _};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{DynamicObject, ListParams};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::{Cluster, plan_resource, typed};

/// The objects of a namespace, however they were read.
#[derive(Default)]
struct Objects {
    plans: Vec<DynamicObject>,
    deployments: Vec<Deployment>,
    replica_sets: Vec<ReplicaSet>,
    stateful_sets: Vec<StatefulSet>,
    controller_revisions: Vec<ControllerRevision>,
    pods: Vec<Pod>,
    services: Vec<Service>,
    events: Vec<Event>,
}

impl Objects {
    fn snapshot(&self, name: &str) -> Option<Snapshot> {
        let object = self
            .plans
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))?;
        let plan = typed(object).ok()?;
        Some(Snapshot {
            checks: Check::from_status(object.data.get("status")),
            plan,
            deployments: self.deployments.clone(),
            replica_sets: self.replica_sets.clone(),
            stateful_sets: self.stateful_sets.clone(),
            controller_revisions: self.controller_revisions.clone(),
            pods: self.pods.clone(),
            services: self.services.clone(),
            events: self.events.clone(),
        })
    }

    fn plans(&self) -> Vec<MaintenancePlan> {
        self.plans.iter().filter_map(|p| typed(p).ok()).collect()
    }
}

/// The snapshot of plan `name` now (the plan must exist: see [`super::read_plan`]).
pub async fn snapshot(cluster: &Cluster, name: &str) -> anyhow::Result<Snapshot> {
    let (object, _) = super::read_plan(cluster, name).await?;
    let client = &cluster.client;
    let ns = cluster.namespace.as_str();
    let lp = ListParams::default();
    let (d, r, ss, cr, p, s, e) = (
        Api::<Deployment>::namespaced(client.clone(), ns),
        Api::<ReplicaSet>::namespaced(client.clone(), ns),
        Api::<StatefulSet>::namespaced(client.clone(), ns),
        Api::<ControllerRevision>::namespaced(client.clone(), ns),
        Api::<Pod>::namespaced(client.clone(), ns),
        Api::<Service>::namespaced(client.clone(), ns),
        Api::<Event>::namespaced(client.clone(), ns),
    );
    let (deployments, replica_sets, stateful_sets, controller_revisions, pods, services, events) =
        futures::try_join!(
            d.list(&lp),
            r.list(&lp),
            ss.list(&lp),
            cr.list(&lp),
            p.list(&lp),
            s.list(&lp),
            e.list(&lp)
        )?;
    let objects = Objects {
        plans: vec![object],
        deployments: deployments.items,
        replica_sets: replica_sets.items,
        stateful_sets: stateful_sets.items,
        controller_revisions: controller_revisions.items,
        pods: pods.items,
        services: services.items,
        events: events.items,
    };
    objects
        .snapshot(name)
        .ok_or_else(|| anyhow::anyhow!("maintenanceplan {name:?} cannot be read"))
}

/// The namespace's objects as the watches last saw them.
pub struct Watched {
    plans: Store<DynamicObject>,
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    controller_revisions: Store<ControllerRevision>,
    pods: Store<Pod>,
    services: Store<Service>,
    events: Store<Event>,
}

fn cloned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}

impl Watched {
    fn objects(&self) -> Objects {
        Objects {
            plans: cloned(&self.plans),
            deployments: cloned(&self.deployments),
            replica_sets: cloned(&self.replica_sets),
            stateful_sets: cloned(&self.stateful_sets),
            controller_revisions: cloned(&self.controller_revisions),
            pods: cloned(&self.pods),
            services: cloned(&self.services),
            events: cloned(&self.events),
        }
    }

    /// The snapshot of plan `name`, or None while it does not exist.
    pub fn snapshot(&self, name: &str) -> Option<Snapshot> {
        self.objects().snapshot(name)
    }

    /// Every plan of the namespace.
    pub fn plans(&self) -> Vec<MaintenancePlan> {
        Objects {
            plans: cloned(&self.plans),
            ..Default::default()
        }
        .plans()
    }
}

/// One reflector: its events, each as `Some(index)` when its initial list is complete.
fn reflect<K>(index: usize, api: Api<K>, writer: Writer<K>) -> BoxStream<'static, Option<usize>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map(move |event| match event {
            Ok(watcher::Event::InitDone) => Some(index),
            _ => None,
        })
        .boxed()
}

/// Watches the namespace and calls `on_change` once every watch has listed its objects and
/// after every change since (a burst of changes is one call), and every `tick` if given (so
/// that ages move on a terminal). Returns when `on_change` says `Break`.
pub async fn watch(
    client: Client,
    namespace: &str,
    tick: Option<Duration>,
    mut on_change: impl FnMut(&Watched) -> ControlFlow<()>,
) {
    let plan_writer = Writer::new(plan_resource());
    let (deployments, deployment_writer) = reflector::store();
    let (replica_sets, replica_set_writer) = reflector::store();
    let (stateful_sets, stateful_set_writer) = reflector::store();
    let (controller_revisions, controller_revision_writer) = reflector::store();
    let (pods, pod_writer) = reflector::store();
    let (services, service_writer) = reflector::store();
    let (events, event_writer) = reflector::store();
    let watched = Watched {
        plans: plan_writer.as_reader(),
        deployments,
        replica_sets,
        stateful_sets,
        controller_revisions,
        pods,
        services,
        events,
    };
    let plans = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &plan_resource());
    let streams = vec![
        reflect(0, plans, plan_writer),
        reflect(
            1,
            Api::namespaced(client.clone(), namespace),
            deployment_writer,
        ),
        reflect(
            2,
            Api::namespaced(client.clone(), namespace),
            replica_set_writer,
        ),
        reflect(3, Api::namespaced(client.clone(), namespace), pod_writer),
        reflect(
            4,
            Api::namespaced(client.clone(), namespace),
            service_writer,
        ),
        reflect(5, Api::namespaced(client.clone(), namespace), event_writer),
        reflect(
            6,
            Api::namespaced(client.clone(), namespace),
            stateful_set_writer,
        ),
        reflect(
            7,
            Api::namespaced(client.clone(), namespace),
            controller_revision_writer,
        ),
    ];
    let count = streams.len();
    let mut changes = stream::select_all(streams);
    let mut listed = vec![false; count];
    let mut ticks = tick.map(tokio::time::interval);
    loop {
        let ticked = async {
            match ticks.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.next() => {
                let Some(change) = change else { return };
                if let Some(i) = change {
                    listed[i] = true;
                }
                // Take the rest of a burst before drawing.
                while let Some(Some(change)) = changes.next().now_or_never() {
                    if let Some(i) = change {
                        listed[i] = true;
                    }
                }
            }
            _ = ticked => {}
        }
        if listed.iter().all(|l| *l) && on_change(&watched).is_break() {
            return;
        }
    }
}
