//! Reads where a rollout stands: which pods of a ReplicaSet are there, which are still to
//! become available, which pod is late. Pure. Whether a workload's rollout is
//! complete is the workload's to say (`workload`).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// Pods of the ReplicaSet with `hash` that are not terminating.
pub fn pods_of<'a>(all: &'a [Pod], hash: &str) -> Vec<&'a Pod> {
    all.iter()
        .filter(|p| pods::template_hash(p) == Some(hash) && !pods::is_terminating(p))
        .collect()
}

/// How a wait for `replacements` to become available reads and when it must look again: the
/// first one not available yet (as `; waiting for pod NAME to be Ready`, empty when there is
/// none), and how long until the next Ready one has been so for `min_ready` seconds.
pub fn availability_wait(
    replacements: &[&Pod],
    min_ready: i64,
    now: Timestamp,
) -> (String, Option<std::time::Duration>) {
    let waiting_for = replacements
        .iter()
        .find(|p| !pods::is_available(p, min_ready, now))
        .map(|p| format!("; waiting for pod {} to be Ready", pods::name(p)))
        .unwrap_or_default();
    let hold = replacements
        .iter()
        .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready, now))
        .filter_map(|p| pods::available_at(p, min_ready))
        .min()
        .map(|t| super::time::until(now, t));
    (waiting_for, hold)
}

/// The first of `candidates` that has not been Ready within `timeout_seconds` of its
/// creation, and otherwise the time the next one would be late.
pub fn late_pod<'a>(
    candidates: &[&'a Pod],
    timeout_seconds: i64,
    now: Timestamp,
) -> (Option<&'a Pod>, Option<Timestamp>) {
    let mut next_deadline: Option<Timestamp> = None;
    for pod in candidates.iter().filter(|p| !pods::is_ready(p)) {
        let deadline = pods::add_seconds(pods::created(pod), timeout_seconds as f64);
        if deadline <= now {
            return (Some(pod), None);
        }
        next_deadline = Some(next_deadline.map_or(deadline, |d: Timestamp| d.min(deadline)));
    }
    (None, next_deadline)
}
