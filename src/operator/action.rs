//! The only things a step may ask of the cluster. `actuate` carries them out; everything that
//! decides which ones to take is pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};

use super::probe::ProbeRequest;
use super::workload::{Kind, Workload};

/// One change to the cluster, named in the plan's namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Put the operator's finalizer on the plan.
    AddFinalizer,
    /// Take the operator's finalizer off the plan (deletion may proceed).
    RemoveFinalizer,
    /// Replace a workload as read (PUT with its resourceVersion: a conflict means the
    /// snapshot was stale and nothing happens).
    ReplaceWorkload(Box<Workload>),
    /// JSON merge patch of a workload.
    PatchWorkload {
        kind: Kind,
        name: String,
        patch: serde_json::Value,
    },
    /// Create a workload (the green copy).
    CreateWorkload(Box<Workload>),
    /// Delete a workload; what it owns goes with it in the background.
    DeleteWorkload { kind: Kind, name: String },
    /// Create a ReplicaSet (GitOps flow: the pending template's set, without pods).
    CreateReplicaSet(Box<ReplicaSet>),
    /// JSON merge patch of a ReplicaSet (its labels or its replica count).
    PatchReplicaSet {
        name: String,
        patch: serde_json::Value,
    },
    /// Delete a ReplicaSet cutover created and no longer needs.
    DeleteReplicaSet { name: String },
    /// Set a Service's selector in one update.
    SetServiceSelector {
        service: String,
        selector: BTreeMap<String, String>,
    },
    /// Create a Service (the green twin of a Service that selects the target's pods).
    CreateService(Box<Service>),
    /// Delete a Service the operator created.
    DeleteService { name: String },
    /// Create a pod (the surge pod of a restart).
    CreatePod(Box<Pod>),
    /// Delete a pod the operator created itself, or one that never became Ready and holds
    /// its controller.
    DeletePod { name: String },
    /// Ask for a pod to be evicted through the Eviction API (PodDisruptionBudgets apply).
    EvictPod { name: String },
    /// Create the Job of a Job check.
    CreateJob(Box<Job>),
    /// Delete a check's Job and its pods.
    DeleteJob { name: String },
    /// Make one attempt of an HTTP or webhook check; its answer comes back in a later
    /// snapshot. Asking again for an attempt already made or in flight does nothing.
    Probe(Box<ProbeRequest>),
    /// Record a Kubernetes Event on the plan.
    Event {
        warning: bool,
        reason: String,
        message: String,
    },
}

impl Action {
    pub fn event(reason: &str, message: impl Into<String>) -> Self {
        Action::Event {
            warning: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        Action::Event {
            warning: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}
