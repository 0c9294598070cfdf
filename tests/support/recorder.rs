//! Records each Service's ready endpoints from the test's own watches of EndpointSlices and
//! Pods, the same way on both test beds (the real control plane has no write history), so
//! that the invariants are checked over what any client of the cluster could see. Pods are
//! told apart by UID, not name: a StatefulSet's replacement pod has its predecessor's name,
//! and an endpoint must be read with its own pod's labels. It records; the checks are in
//! `cutover::invariants`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use cutover_sim::{EndpointPod, EndpointsRecord};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// The endpoint records of every Service of one namespace, kept up to date by a task.
pub struct Recorder {
    records: Arc<Mutex<Vec<EndpointsRecord>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One endpoint as a slice lists it.
#[derive(Clone, Debug, PartialEq)]
struct Listed {
    pod: String,
    uid: String,
    ready: bool,
}

impl Recorder {
    /// Starts watching `namespace`; records begin with the first complete list.
    pub fn start(client: Client, namespace: &str) -> Recorder {
        let records = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(run(client, namespace.to_string(), records.clone()));
        Recorder { records, task }
    }

    /// Every recorded state of `service`'s endpoints, oldest first.
    pub fn endpoints_of(&self, service: &str) -> Vec<EndpointsRecord> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.service == service)
            .cloned()
            .collect()
    }
}

async fn run(client: Client, namespace: String, records: Arc<Mutex<Vec<EndpointsRecord>>>) {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let config = watcher::Config::default().labels(SERVICE_LABEL);
    let mut slice_events = watcher::watcher(slices, config).boxed();
    let mut pod_events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    // Slice name -> (service, endpoints); pod UID -> labels.
    let mut listed: HashMap<String, (String, Vec<Listed>)> = HashMap::new();
    let mut relist: Option<HashMap<String, (String, Vec<Listed>)>> = None;
    let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut last: HashMap<String, (Vec<Named>, Vec<Named>)> = HashMap::new();
    loop {
        tokio::select! {
            event = pod_events.next() => match event {
                Some(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                    labels.insert(p.uid().unwrap_or_default(), p.labels().clone());
                }
                Some(_) => {}
                None => return,
            },
            event = slice_events.next() => {
                let changed = match event {
                    Some(Ok(Event::Init)) => {
                        relist = Some(HashMap::new());
                        false
                    }
                    Some(Ok(Event::InitApply(s))) => {
                        if let Some(r) = relist.as_mut() {
                            r.insert(s.name_any(), read_slice(&s));
                        }
                        false
                    }
                    Some(Ok(Event::InitDone)) => {
                        if let Some(r) = relist.take() {
                            listed = r;
                        }
                        true
                    }
                    Some(Ok(Event::Apply(s))) => {
                        listed.insert(s.name_any(), read_slice(&s));
                        true
                    }
                    Some(Ok(Event::Delete(s))) => {
                        listed.remove(&s.name_any());
                        true
                    }
                    Some(Err(_)) => false,
                    None => return,
                };
                if changed {
                    record(&listed, &mut labels, &pods, &namespace, &mut last, &records).await;
                }
            }
        }
    }
}

fn read_slice(slice: &EndpointSlice) -> (String, Vec<Listed>) {
    let service = slice
        .labels()
        .get(SERVICE_LABEL)
        .cloned()
        .unwrap_or_default();
    let endpoints = slice
        .endpoints
        .iter()
        .filter_map(|e| {
            let target = e.target_ref.as_ref()?;
            let pod = target.name.clone()?;
            let uid = target.uid.clone().unwrap_or_default();
            // A missing `ready` condition means ready (EndpointConditions).
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            Some(Listed { pod, uid, ready })
        })
        .collect();
    (service, endpoints)
}

/// A pod's name and UID.
type Named = (String, String);

/// Adds a record for each Service whose endpoints differ from its last record.
async fn record(
    listed: &HashMap<String, (String, Vec<Listed>)>,
    labels: &mut HashMap<String, BTreeMap<String, String>>,
    pods: &Api<Pod>,
    namespace: &str,
    last: &mut HashMap<String, (Vec<Named>, Vec<Named>)>,
    records: &Mutex<Vec<EndpointsRecord>>,
) {
    let mut by_service: BTreeMap<String, (Vec<Named>, Vec<Named>)> = BTreeMap::new();
    for name in last.keys() {
        by_service.entry(name.clone()).or_default();
    }
    for (service, endpoints) in listed.values() {
        let entry = by_service.entry(service.clone()).or_default();
        for e in endpoints {
            let named = (e.pod.clone(), e.uid.clone());
            if e.ready {
                entry.0.push(named);
            } else {
                entry.1.push(named);
            }
        }
    }
    for (service, (mut ready, mut not_ready)) in by_service {
        ready.sort();
        ready.dedup();
        not_ready.sort();
        not_ready.dedup();
        if last.get(&service) == Some(&(ready.clone(), not_ready.clone())) {
            continue;
        }
        let mut endpoint_pods = Vec::with_capacity(ready.len());
        for (pod, uid) in &ready {
            // Not seen by the pod watch yet: read it, if the pod of that name is this one.
            if !labels.contains_key(uid)
                && let Ok(Some(p)) = pods.get_opt(pod).await
                && p.uid().as_ref() == Some(uid)
            {
                labels.insert(uid.clone(), p.labels().clone());
            }
            let pod_labels = labels.get(uid).cloned().unwrap_or_default();
            endpoint_pods.push(EndpointPod {
                name: pod.clone(),
                pod_template_hash: pod_labels
                    .get("pod-template-hash")
                    .or_else(|| pod_labels.get("controller-revision-hash"))
                    .cloned(),
                labels: pod_labels,
            });
        }
        records.lock().unwrap().push(EndpointsRecord {
            time: k8s_openapi::jiff::Timestamp::now(),
            namespace: namespace.to_string(),
            service: service.clone(),
            ready: endpoint_pods,
            not_ready: not_ready.iter().map(|(name, _)| name.clone()).collect(),
        });
        last.insert(service, (ready, not_ready));
    }
}
