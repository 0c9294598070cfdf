//! The in-process controllers of the simulated cluster and the loop that drives them: each
//! controller subscribes to store changes, maps them to work keys, and reconciles keys one at
//! a time, with timed requeues. Controllers write to the store directly, never over HTTP, so
//! injected faults do not touch them.

pub mod claims;
pub mod deployment;
pub mod endpoints;
pub mod eviction;
pub mod gc;
pub mod job;
pub mod kubelet;
pub mod namespace;
pub mod pdb;
pub mod replicaset;
pub mod revisions;
pub mod stateful_pod;
pub mod statefulset;
pub mod volumes;

use crate::resources::ResKey;
use crate::store::{Store, StoreEvent};
use crate::util;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A unit of work: namespace and name of the object to reconcile (the GC uses `("", uid)`).
pub type WorkKey = (String, String);

/// One controller.
pub trait Reconciler: Send + 'static {
    /// The types whose changes the controller receives (empty: all).
    fn watches(&self) -> Vec<ResKey>;
    /// The work keys a change affects.
    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>);
    /// Reconciles one key; returns when to look at it again, if needed.
    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration>;
}

/// Sends work keys to a running controller from outside (e.g. after a setting changed).
pub type Trigger = mpsc::UnboundedSender<WorkKey>;

/// Runs a controller until the task is aborted.
pub fn spawn<R: Reconciler>(store: Arc<Store>, mut r: R) -> (JoinHandle<()>, Trigger) {
    let mut events = store.subscribe_internal(r.watches());
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkKey>();
    let requeue_tx = tx.clone();
    let handle = tokio::spawn(async move {
        let mut pending: Vec<WorkKey> = Vec::new();
        let mut queued: HashSet<WorkKey> = HashSet::new();
        let mut scheduled: HashMap<WorkKey, Instant> = HashMap::new();
        let mut keys = Vec::new();
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => r.keys(&ev, &store, &mut keys),
                    None => return,
                },
                k = rx.recv() => match k {
                    Some(k) => keys.push(k),
                    None => return,
                },
            }
            while let Ok(ev) = events.try_recv() {
                r.keys(&ev, &store, &mut keys);
            }
            while let Ok(k) = rx.try_recv() {
                keys.push(k);
            }
            for k in keys.drain(..) {
                if queued.insert(k.clone()) {
                    pending.push(k);
                }
            }
            for key in pending.drain(..) {
                queued.remove(&key);
                if let Some(after) = r.reconcile(&store, &key) {
                    let at = Instant::now() + after;
                    let now = Instant::now();
                    scheduled.retain(|_, t| *t > now);
                    if scheduled.get(&key).is_some_and(|t| *t <= at) {
                        continue;
                    }
                    scheduled.insert(key.clone(), at);
                    let tx = requeue_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = tx.send(key);
                    });
                }
            }
        }
    });
    (handle, tx)
}

/// Whether a pod's Ready condition is true.
pub fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// A condition of an object's status by type.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether a pod has been Ready for at least `min_ready` (and is not terminating); otherwise,
/// if it is Ready, how long until it will be.
pub fn pod_available(pod: &Value, min_ready: Duration) -> Result<(), Option<Duration>> {
    if util::is_terminating(pod) || !pod_ready(pod) {
        return Err(None);
    }
    if min_ready.is_zero() {
        return Ok(());
    }
    let since = condition(pod, "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(util::millis_since)
        .unwrap_or(0);
    let since = Duration::from_millis(since);
    if since >= min_ready {
        Ok(())
    } else {
        Err(Some(min_ready - since))
    }
}

/// The controller owner reference of an object with the given kind: its name.
pub fn owner_name<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    util::owner_refs(obj)
        .iter()
        .find(|r| {
            r["kind"] == kind
                && r.get("controller")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
        })
        .and_then(|r| r["name"].as_str())
}

/// Sets a condition in a list of conditions, keeping `lastTransitionTime` when the status is
/// unchanged. Returns whether anything changed.
pub fn set_condition(
    status: &mut Value,
    type_: &str,
    state: &str,
    reason: &str,
    message: &str,
    extra_time: Option<&str>,
) -> bool {
    let now = util::now_ts();
    if !status.is_object() {
        *status = serde_json::json!({});
    }
    let list = status
        .as_object_mut()
        .expect("made an object")
        .entry("conditions")
        .or_insert_with(|| serde_json::json!([]));
    if !list.is_array() {
        *list = serde_json::json!([]);
    }
    let list = list.as_array_mut().expect("made an array");
    let existing = list.iter_mut().find(|c| c["type"] == type_);
    match existing {
        Some(c) => {
            let same = c["status"] == state && c["reason"] == reason && c["message"] == message;
            if same && extra_time.is_none() {
                return false;
            }
            if c["status"] != state {
                c["lastTransitionTime"] = serde_json::json!(now);
            }
            c["status"] = serde_json::json!(state);
            c["reason"] = serde_json::json!(reason);
            c["message"] = serde_json::json!(message);
            if let Some(t) = extra_time {
                c["lastUpdateTime"] = serde_json::json!(t);
            }
            true
        }
        None => {
            let mut c = serde_json::json!({"type": type_, "status": state, "reason": reason, "message": message, "lastTransitionTime": now});
            if let Some(t) = extra_time {
                c["lastUpdateTime"] = serde_json::json!(t);
            }
            list.push(c);
            true
        }
    }
}

/// Records a core `v1` Event about the object an `ObjectReference`-shaped value names.
pub fn record_event(
    store: &Store,
    involved: &Value,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let now = util::now_ts();
    let now = now.get(..19).map(|s| format!("{s}Z")).unwrap_or(now);
    let name = involved["name"].as_str().unwrap_or("object");
    let namespace = involved["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let event = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{:016x}", util::unique_u64()), "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": name,
            "namespace": namespace, "uid": involved["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = store.create(
        &crate::resources::keys::EVENTS,
        event,
        &crate::store::WriteCtx::controller(component, "create"),
    ) {
        tracing::debug!(error = %e, "recording an event failed");
    }
}

/// Writes `status` as the status of `obj` (a `res` at `key`) by `manager`, unless it already
/// is: a controller's status write that changes nothing would only wake every watcher.
pub fn update_status(
    store: &Store,
    res: &ResKey,
    key: &(String, String),
    obj: &Value,
    status: Value,
    manager: &str,
) {
    if obj.get("status") == Some(&status) {
        return;
    }
    let _ = store.modify(
        res,
        &key.0,
        &key.1,
        crate::store::Part::Status,
        &crate::store::WriteCtx::controller(manager, "status"),
        |cur| {
            let mut new = cur.clone();
            new["status"] = status;
            Ok(new)
        },
    );
}
