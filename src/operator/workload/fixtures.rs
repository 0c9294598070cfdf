//! Workloads for tests, built from JSON manifests, and their JSON form for assertions, so
//! that tests of the techniques need not name a kind's Rust type.

use serde_json::Value;

use super::Workload;

/// A Deployment from its manifest.
pub fn deployment(manifest: Value) -> Workload {
    Workload::Deployment(serde_json::from_value(manifest).expect("a Deployment manifest"))
}

/// A StatefulSet from its manifest.
pub fn stateful_set(manifest: Value) -> Workload {
    Workload::StatefulSet(serde_json::from_value(manifest).expect("a StatefulSet manifest"))
}

/// The workload as JSON.
pub fn json(w: &Workload) -> Value {
    serde_json::to_value(w).expect("workloads serialize")
}

/// The workload after a JSON merge patch.
pub fn patched(w: &Workload, patch: &Value) -> Workload {
    let mut doc = json(w);
    json_patch::merge(&mut doc, patch);
    match w {
        Workload::Deployment(_) => deployment(doc),
        Workload::StatefulSet(_) => stateful_set(doc),
    }
}
