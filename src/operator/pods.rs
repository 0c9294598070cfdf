//! Facts about pods read from their status: Ready, since when, terminating, which template
//! they come from. Pure; the cluster's word on a pod is its status, nothing else.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// The label Deployments put on the pods of each ReplicaSet.
pub const TEMPLATE_HASH: &str = "pod-template-hash";

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// When the pod last became Ready, if it is Ready now and not terminating.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    if is_terminating(pod) {
        return None;
    }
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then(|| {
        ready
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    })
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now` (available, in Deployment terms).
pub fn is_available(pod: &Pod, min_ready_seconds: i64, now: Timestamp) -> bool {
    ready_since(pod).is_some_and(|since| seconds_between(since, now) >= min_ready_seconds as f64)
}

/// When a Ready pod becomes available, for requeueing exactly then.
pub fn available_at(pod: &Pod, min_ready_seconds: i64) -> Option<Timestamp> {
    ready_since(pod).map(|since| add_seconds(since, min_ready_seconds as f64))
}

pub fn created(pod: &Pod) -> Timestamp {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn template_hash(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(TEMPLATE_HASH)
        .map(String::as_str)
}

pub fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

pub fn add_seconds(t: Timestamp, seconds: f64) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond() + (seconds * 1000.0) as i64).unwrap_or(t)
}
