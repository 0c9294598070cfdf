//! GitOps flow: the pending template a plan finds on its target when it starts, and how the
//! target holds it back: a paused target's running ReplicaSet is behind its template, or the
//! target holds the template back itself (its update revision waits under `OnDelete` or a
//! partition at its replicas). Pure.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;

use crate::operator::pods;
use crate::operator::replica_sets;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::Workload;
use crate::operator::workload::saved::Held;

/// A pending template and what holds it back.
#[derive(Debug, Clone)]
pub(crate) enum Pending<'a> {
    /// A paused target: its pods run this ReplicaSet, its template is newer.
    ReplicaSet(&'a ReplicaSet),
    /// A workload holding it back itself: the revisions its pods move between.
    Held(Box<Held>),
}

impl Pending<'_> {
    /// What else the user can do to make the template run without this flow.
    pub fn kubectl_way(&self, target: &Workload) -> String {
        match self {
            Pending::ReplicaSet(_) => format!(
                "or unpause the {} so that its template is what runs (kubectl flow)",
                target.kind()
            ),
            Pending::Held(_) => format!(
                "or let the {} finish rolling out its own template first (kubectl flow)",
                target.kind()
            ),
        }
    }
}

/// The pending template of `target`, if it has one; an error (why a plan cannot take it on)
/// when its pods run a third revision, or none runs the current one any more.
pub(super) fn find<'a>(
    snap: &'a Snapshot,
    target: &Workload,
) -> Result<Option<Pending<'a>>, String> {
    if let Some(running) = replica_sets::pending_template(target, &snap.replica_sets) {
        return Ok(Some(Pending::ReplicaSet(running)));
    }
    let Some(revisions) = target.held_revisions() else {
        return Ok(None);
    };
    let own = target.own_pods(&snap.pods);
    let running: BTreeSet<&str> = own.iter().filter_map(|p| target.revision_of(p)).collect();
    let others: Vec<&str> = running
        .iter()
        .copied()
        .filter(|r| *r != revisions.current && *r != revisions.update)
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "{target} holds a pending template back (revision {}) but some of its pods run neither it nor the current revision {} (they run {}); finish or undo that rollout first",
            revisions.update,
            revisions.current,
            others.join(", ")
        ));
    }
    if !running.contains(revisions.current.as_str()) {
        return Err(format!(
            "every pod of {target} runs its pending template (revision {}) already, but not all of them are Ready, so its controller has not made it current: there is nothing to roll out; wait for the pods or fix the template",
            revisions.update
        ));
    }
    let mut updated_before: Vec<String> = own
        .iter()
        .filter(|p| target.revision_of(p) == Some(revisions.update.as_str()))
        .map(|p| pods::name(p).to_string())
        .collect();
    updated_before.sort();
    Ok(Some(Pending::Held(Box::new(Held {
        current: revisions.current,
        update: revisions.update,
        running_template: snap.running_template.clone(),
        updated_before,
        moving: false,
    }))))
}
