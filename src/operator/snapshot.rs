//! Everything a step needs to know, read from the cluster in one go by `observe`. Plain data:
//! nothing here holds a client.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;

use super::probe::ProbeAnswer;
use super::workload::Workload;
use crate::api::{MaintenancePlan, Phase};

/// Another plan in the same namespace aimed at the same target.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub phase: Option<Phase>,
    pub created: Timestamp,
    pub deleting: bool,
}

impl Peer {
    /// Still holds or wants the target.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.phase,
            Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
        )
    }
}

/// The plan and the part of the cluster it acts on.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub plan: MaintenancePlan,
    /// Other plans for the same target.
    pub peers: Vec<Peer>,
    /// The workload the plan names (`spec.target`), of the kind it names.
    pub target: Option<Workload>,
    /// ReplicaSets owned by the target (a Deployment; none for other kinds).
    pub replica_sets: Vec<ReplicaSet>,
    /// GitOps flow: the ReplicaSets this plan has taken over from the target (labelled with
    /// the plan's name).
    pub handover_sets: Vec<ReplicaSet>,
    /// GitOps flow: the pod template the target's pods run while it holds a pending template
    /// back itself (a StatefulSet's current revision, from its ControllerRevision). A
    /// Deployment's is its running ReplicaSet's, among `replica_sets`.
    pub running_template: Option<PodTemplateSpec>,
    /// Pods selected by the target's selector and owned by the target's controllers (a
    /// StatefulSet itself, a Deployment's ReplicaSets), by green or by the plan (its surge
    /// pod); never another workload's pods whose labels overlap.
    pub pods: Vec<Pod>,
    pub service: Option<Service>,
    /// EndpointSlices of the Service.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// The green copy of a BlueGreen plan, if it exists.
    pub green: Option<Workload>,
    /// The preview Service of a BlueGreen plan, if it names one that exists.
    pub preview: Option<Service>,
    /// The other Services that select the target's pods (a headless Service for cluster
    /// discovery, say): neither `spec.service` nor the preview Service, with a non-empty
    /// selector that, leaving out the revision label a plan pins it with, matches the
    /// target's pod template labels.
    pub peer_services: Vec<Service>,
    /// The Services labelled with the plan's name: the green twins of the peer Services.
    pub twins: Vec<Service>,
    /// The names of all Services in the namespace (a StatefulSet's `serviceName` must be one).
    pub service_names: Vec<String>,
    /// The Jobs of the plan's Job checks (labelled with the plan's name).
    pub jobs: Vec<Job>,
    /// The answers to the plan's HTTP and webhook check attempts made so far.
    pub probes: Vec<ProbeAnswer>,
}
