//! One plan per target: which other plan, if any, this plan must wait for. Derived from the
//! live plans and the target's annotation only, so a deleted plan never leaves a stale lock.

use k8s_openapi::jiff::Timestamp;

use crate::api::Phase;

use super::snapshot::Snapshot;
use super::workload::saved::holder;

/// The plan `snap.plan` waits for, if any.
pub fn blocking_plan(snap: &Snapshot) -> Option<String> {
    let me = snap.plan.metadata.name.as_deref().unwrap_or_default();
    let live: Vec<_> = snap
        .peers
        .iter()
        .filter(|p| p.name != me && p.is_live())
        .collect();
    // The plan named on the target holds it while it lives.
    if let Some(h) = snap.target.as_ref().and_then(holder)
        && h != me
        && live.iter().any(|p| p.name == h)
    {
        return Some(h.to_string());
    }
    // Then any plan already under way.
    if let Some(p) = live
        .iter()
        .find(|p| matches!(p.phase, Some(Phase::Progressing | Phase::AwaitingPromotion)))
    {
        return Some(p.name.clone());
    }
    // Then first come, first served (by creation time, then name); plans being deleted
    // before they started give way.
    let mine = (created(snap), me);
    live.iter()
        .filter(|p| !p.deleting)
        .filter(|p| (p.created, p.name.as_str()) < mine)
        .min_by_key(|p| (p.created, p.name.clone()))
        .map(|p| p.name.clone())
}

fn created(snap: &Snapshot) -> Timestamp {
    snap.plan
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
