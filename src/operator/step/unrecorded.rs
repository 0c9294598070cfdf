//! What a running plan still puts back when the record of what it changed is not there to
//! read: the target was deleted, the operator's annotations were stripped from it, or the
//! record cannot be read. From what does not depend on that record: the Services' selectors
//! from the copy in the plan's status, the twins and ReplicaSets labelled with the plan's name
//! (twins deleted, held sets handed back with the labels their own template gives), and green
//! removed once the Services select the target again. The target's own fields (its template,
//! replicas, strategy, pause) were only in the record: they are left as they stand, and the
//! message says so. Pure: actions derived from the snapshot, written only where it differs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use super::blue_green::{PLAN_LABEL, green_name};
use super::handover::HELD_LABEL;
use crate::operator::action::Action;
use crate::operator::replica_sets::{self, adoptable_labels, relabel_patch};
use crate::operator::snapshot::Snapshot;
use crate::operator::workload;

/// The Services' selectors, by name, as they were before the plan (`status.selectorsBefore`).
pub(super) type Selectors = BTreeMap<String, BTreeMap<String, String>>;

/// What can be put back without the record, and a sentence that says what was and what is
/// left for a person.
pub(super) fn recover(snap: &Snapshot, plan: &str, before: &Selectors) -> (Vec<Action>, String) {
    let mut actions = Vec::new();
    let mut restored = Vec::new();
    for (name, original) in before {
        let Some(service) = service_named(snap, name) else {
            continue;
        };
        restored.push(name.as_str());
        if selector_of(service).as_ref() != Some(original) {
            actions.push(Action::SetServiceSelector {
                service: name.clone(),
                selector: original.clone(),
            });
        }
    }
    for twin in &snap.twins {
        actions.push(Action::DeleteService {
            name: twin.name_any(),
        });
    }
    let mut released = Vec::new();
    for rs in snap.handover_sets.iter().filter(|rs| held_by(rs, plan)) {
        released.push(replica_sets::name(rs).to_string());
        actions.push(Action::PatchReplicaSet {
            name: replica_sets::name(rs).to_string(),
            patch: relabel_patch(rs, &adoptable_labels(rs)),
        });
    }
    // Green goes once the Services select the target again; with the target gone it is all
    // that may serve, so it stays until the plan is deleted (it is the plan's).
    let green = snap.green.as_ref().filter(|g| {
        g.labels()
            .and_then(|l| l.get(PLAN_LABEL))
            .is_some_and(|p| p == plan)
    });
    let target = snap.plan.spec.target.name.as_str();
    let mut green_words = String::new();
    if let Some(g) = green {
        let name = green_name(g.kind(), target);
        if snap.target.is_some() {
            if !g.is_deleting() {
                actions.push(workload::delete(g.kind(), &name));
            }
            green_words = format!("; green {} {name} removed", g.kind());
        } else {
            green_words = format!(
                "; green {} {name} is kept (the plan's; deleting the plan removes it)",
                g.kind()
            );
        }
    }
    let mut said = Vec::new();
    if !restored.is_empty() {
        said.push(format!(
            "the selectors of services {} put back from the plan's status",
            restored.join(", ")
        ));
    }
    if !released.is_empty() {
        said.push(format!(
            "replica sets {} handed back to {target}",
            released.join(", ")
        ));
    }
    let done = if said.is_empty() {
        "nothing the plan pinned or held was left to put back".to_string()
    } else {
        said.join("; ")
    };
    let message = format!(
        "{done}{green_words}; what the plan changed on {} {target} itself (its template, replicas, strategy or pause) was only in that record and is left as it stands: check it",
        workload::Kind::from(snap.plan.spec.target.kind)
    );
    (actions, message)
}

fn service_named<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a Service> {
    snap.service
        .iter()
        .chain(snap.preview.iter())
        .chain(snap.peer_services.iter())
        .find(|s| s.name_any() == name)
}

fn selector_of(service: &Service) -> Option<BTreeMap<String, String>> {
    service.spec.as_ref().and_then(|s| s.selector.clone())
}

fn held_by(rs: &k8s_openapi::api::apps::v1::ReplicaSet, plan: &str) -> bool {
    rs.labels().get(HELD_LABEL).is_some_and(|p| p == plan)
}
