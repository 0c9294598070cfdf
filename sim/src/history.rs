//! The recorded history of a run: every write to the store and every change of each
//! Service's ready endpoints, kept in memory so that tests can check invariants over the whole
//! run. It records; it does not judge.

use crate::resources::ResKey;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How much the history keeps of each write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HistoryMode {
    /// Every write with the resulting object.
    #[default]
    Full,
    /// Every write without the object (lighter for big runs).
    Summary,
    /// Writes are not recorded (endpoint changes still are).
    EndpointsOnly,
}

/// One write to the store.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    /// When it happened.
    pub time: jiff::Timestamp,
    /// The resourceVersion it produced.
    pub rv: u64,
    /// `create`, `update`, `patch`, `apply`, `status`, `delete`, ...
    pub verb: &'static str,
    /// Resource type (`deployments.apps`).
    pub resource: ResKey,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Field manager (controller name for the simulated controllers).
    pub manager: String,
    /// The object after the write (for deletes: its last state). `Null` in summary mode.
    pub object: Arc<Value>,
}

/// One ready endpoint of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPod {
    /// Pod name.
    pub name: String,
    /// The pod's `pod-template-hash` label, if any.
    pub pod_template_hash: Option<String>,
    /// All labels of the pod.
    pub labels: BTreeMap<String, String>,
}

/// The ready endpoints of one Service after a change.
#[derive(Clone, Debug)]
pub struct EndpointsRecord {
    /// When the endpoints changed.
    pub time: jiff::Timestamp,
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub service: String,
    /// Ready endpoints, sorted by pod name.
    pub ready: Vec<EndpointPod>,
    /// Endpoints that are listed but not ready (starting or terminating), by pod name.
    pub not_ready: Vec<String>,
}

/// The version of a ready endpoint without the label asked for (a bare pod, a surge pod): one
/// more version beside any labelled one, so that mixing with it is seen.
pub const NONE: &str = "(none)";

impl EndpointsRecord {
    /// The distinct `pod-template-hash` values among the ready endpoints (`NONE` for those
    /// without one).
    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ready
            .iter()
            .map(|p| p.pod_template_hash.clone().unwrap_or_else(|| NONE.into()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The distinct values of one label among the ready endpoints.
    pub fn label_values(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .ready
            .iter()
            .map(|p| p.labels.get(key).cloned().unwrap_or_else(|| NONE.into()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// One API request, as RBAC sees it: who asked for which verb on which resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The bearer token the client sent ("" when none): tests give each client its own.
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    /// API group ("" for the core group).
    pub group: String,
    /// Resource, with `/subresource` when one was addressed (`pods/eviction`).
    pub resource: String,
    /// Namespace ("" for cluster-wide requests).
    pub namespace: String,
}

#[derive(Default)]
struct Records {
    writes: Vec<WriteRecord>,
    endpoints: Vec<EndpointsRecord>,
    requests: Vec<RequestRecord>,
}

/// The history of a run. Shared by the store, the controllers and the tests.
#[derive(Default)]
pub struct History {
    mode: HistoryMode,
    records: Mutex<Records>,
}

impl History {
    /// An empty history.
    pub fn new(mode: HistoryMode) -> Self {
        History {
            mode,
            records: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_write(&self, mut rec: WriteRecord) {
        match self.mode {
            HistoryMode::Full => {}
            HistoryMode::Summary => rec.object = Arc::new(Value::Null),
            HistoryMode::EndpointsOnly => return,
        }
        self.lock().writes.push(rec);
    }

    pub(crate) fn record_request(&self, rec: RequestRecord) {
        self.lock().requests.push(rec);
    }

    /// Every resource request served, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    pub(crate) fn record_endpoints(&self, rec: EndpointsRecord) {
        self.lock().endpoints.push(rec);
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.lock().writes.clone()
    }

    /// Writes of one resource type (by key, e.g. `deployments.apps` or `pods`).
    pub fn writes_of(&self, resource: &str) -> Vec<WriteRecord> {
        self.lock()
            .writes
            .iter()
            .filter(|w| w.resource.as_str() == resource)
            .cloned()
            .collect()
    }

    /// Every change of ready endpoints so far, in order.
    pub fn endpoints(&self) -> Vec<EndpointsRecord> {
        self.lock().endpoints.clone()
    }

    /// The endpoint changes of one Service, in order.
    pub fn endpoints_of(&self, namespace: &str, service: &str) -> Vec<EndpointsRecord> {
        self.lock()
            .endpoints
            .iter()
            .filter(|e| e.namespace == namespace && e.service == service)
            .cloned()
            .collect()
    }

    /// The number of ready endpoints of one Service after each change, in order.
    pub fn ready_counts(&self, namespace: &str, service: &str) -> Vec<usize> {
        self.endpoints_of(namespace, service)
            .iter()
            .map(|e| e.ready.len())
            .collect()
    }

    /// The first change after which a Service had no ready endpoint although it had had some
    /// before (a gap in service), if any.
    pub fn first_gap(&self, namespace: &str, service: &str) -> Option<EndpointsRecord> {
        let records = self.endpoints_of(namespace, service);
        let first_ready = records.iter().position(|e| !e.ready.is_empty())?;
        records[first_ready..]
            .iter()
            .find(|e| e.ready.is_empty())
            .cloned()
    }

    /// The first change after which a Service's ready endpoints carried more than one value of
    /// the label `key` (e.g. `pod-template-hash`: two versions mixed), if any.
    pub fn first_mix(&self, namespace: &str, service: &str, key: &str) -> Option<EndpointsRecord> {
        self.endpoints_of(namespace, service)
            .into_iter()
            .find(|e| e.label_values(key).len() > 1)
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut r = self.lock();
        r.writes.clear();
        r.endpoints.clear();
        r.requests.clear();
    }
}
