//! Cluster isolation for BlueGreen (invariant 11): every other Service that selects the
//! target's pods (a headless Service for cluster discovery, say) is pinned to the target's own
//! revision for the whole cutover (blue's, then, once green serves and the target takes the
//! new template, the target's new one, never green's), and green gets a twin of each, `<service>-green`, that lists green's
//! pods only. The original selectors are saved on the target with the first change; at the
//! end they are restored and the twins deleted. Pure: actions derived from the snapshot and
//! the saved record, written only where the cluster differs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

use super::Cx;
use super::blue_green::{COPY_LABEL, PLAN_LABEL};
use super::restart::plan_owner;
use crate::api::{Finding, Technique};
use crate::operator::action::Action;
use crate::operator::labels::{pin, twin_name};
use crate::operator::replica_sets::same_template;
use crate::operator::workload::saved::{Direction, Saved};

fn selector_of(service: &Service) -> BTreeMap<String, String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// The selectors to save when a BlueGreen begins: each peer Service's, by name.
pub(super) fn originals(cx: &Cx) -> BTreeMap<String, BTreeMap<String, String>> {
    cx.snap
        .peer_services
        .iter()
        .map(|s| (s.name_any(), selector_of(s)))
        .collect()
}

/// The revision the peer Services list: blue's, until the target itself is brought to the
/// new template (after the switch, while green serves); from then on that of the target's new
/// pods, so that they find each other and never the old ones on their way out.
fn own_revision(cx: &Cx, saved: &Saved) -> String {
    let blue = saved.blue_hash.clone().unwrap_or_default();
    if saved.direction == Direction::Back {
        return blue;
    }
    if let Some(h) = &saved.handover {
        return if h.moving { h.new_hash.clone() } else { blue };
    }
    if let Some(held) = &saved.held {
        return if held.moving {
            held.update.clone()
        } else {
            blue
        };
    }
    let moved = match (&saved.template, cx.target.template()) {
        (Some(original), Some(live)) => !same_template(original, live),
        _ => false,
    };
    match cx.target.updated_revision(&cx.snap.replica_sets) {
        Some(revision) if moved => revision.to_string(),
        _ => blue,
    }
}

/// What keeps green out of blue's cluster: each saved peer Service pinned to the target's own
/// revision (blue's, then the new one once the target takes it) and its twin present.
/// Nothing when all is so already.
pub(super) fn keep(cx: &Cx, saved: &Saved) -> Vec<Action> {
    let blue_hash = own_revision(cx, saved);
    let mut actions = Vec::new();
    for (name, original) in &saved.peer_selectors {
        let Some(service) = cx.snap.peer_services.iter().find(|s| &s.name_any() == name) else {
            continue; // deleted by someone else: nothing to pin, nothing to twin
        };
        // A revision not known (yet) leaves the Service as it is: never pinned to nothing.
        if let Some(pinned) = pin(original, cx.target.kind().revision_label(), &blue_hash)
            && selector_of(service) != pinned
        {
            actions.push(Action::SetServiceSelector {
                service: name.clone(),
                selector: pinned,
            });
        }
        if !cx
            .snap
            .twins
            .iter()
            .any(|t| t.name_any() == twin_name(name))
        {
            actions.push(Action::CreateService(Box::new(twin(
                service,
                original,
                cx.plan,
                plan_owner_reference(cx),
            ))));
        }
    }
    actions
}

/// At the end: each saved peer Service's selector as it was, and the twins gone.
pub(super) fn restore(cx: &Cx, saved: &Saved) -> Vec<Action> {
    let mut actions = Vec::new();
    for (name, original) in &saved.peer_selectors {
        if let Some(service) = cx.snap.peer_services.iter().find(|s| &s.name_any() == name)
            && &selector_of(service) != original
        {
            actions.push(Action::SetServiceSelector {
                service: name.clone(),
                selector: original.clone(),
            });
        }
        let twin = twin_name(name);
        if cx.snap.twins.iter().any(|t| t.name_any() == twin) {
            actions.push(Action::DeleteService { name: twin });
        }
    }
    actions
}

/// The plan as a non-controller owner: the twin goes with the plan.
fn plan_owner_reference(cx: &Cx) -> OwnerReference {
    OwnerReference {
        controller: None,
        ..plan_owner(cx)
    }
}

/// The twin of `service` for green: same ports, headless when it is, the same
/// `publishNotReadyAddresses`, selecting `original` narrowed to green's pods.
fn twin(
    service: &Service,
    original: &BTreeMap<String, String>,
    plan: &str,
    owner: OwnerReference,
) -> Service {
    let spec = service.spec.clone().unwrap_or_default();
    let mut selector = original.clone();
    selector.insert(COPY_LABEL.into(), "green".into());
    selector.insert(PLAN_LABEL.into(), plan.into());
    let ports = spec.ports.map(|ports| {
        ports
            .into_iter()
            .map(|mut p| {
                p.node_port = None;
                p
            })
            .collect()
    });
    Service {
        metadata: ObjectMeta {
            name: Some(twin_name(&service.name_any())),
            namespace: service.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([(PLAN_LABEL.into(), plan.into())])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: spec.cluster_ip.filter(|ip| ip == "None"),
            ports,
            publish_not_ready_addresses: spec.publish_not_ready_addresses,
            selector: Some(selector),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        }),
        status: None,
    }
}

/// A BlueGreen plan whose changes touch cluster communication (`clustering`: the first such
/// change), on a target that other Services select, and with nothing in `blueGreen.greenOnly`
/// to point green's discovery at the twins: green would look for its cluster where blue's
/// is. The finding that rejects it, naming the Services and what to write.
pub(super) fn missing_green_only(
    snap: &crate::operator::snapshot::Snapshot,
    clustering: Option<u32>,
) -> Option<Finding> {
    let change = clustering?;
    if snap.peer_services.is_empty() || !snap.plan.spec.blue_green.green_only.is_empty() {
        return None;
    }
    let names: Vec<String> = snap.peer_services.iter().map(|s| s.name_any()).collect();
    let twin = twin_name(&names[0]);
    Some(Finding {
        change: Some(change),
        rule: "cluster-isolation-needs-green-only".into(),
        blocks: vec![Technique::BlueGreen],
        message: format!(
            "the change touches cluster communication and service {} also selects the pods of {} {}: green must not join blue's cluster through it; green gets the twin {}, so point green's discovery at it, e.g. blueGreen: {{greenOnly: {{env: [{{name: DNS_MEMBERSHIP_SERVICE_NAME, value: {twin}}}]}}}}",
            names.join(", "),
            crate::operator::workload::Kind::from(snap.plan.spec.target.kind),
            snap.plan.spec.target.name,
            names
                .iter()
                .map(|n| twin_name(n))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    })
}

/// A BlueGreen plan for cluster communication whose `greenOnly` names none of the twins: it
/// may point green's discovery somewhere else (a ConfigMap of its own, say), or nowhere. Not a
/// rejection, since cutover cannot read every way of configuring discovery; a finding that
/// says what to check.
pub(super) fn green_only_names_no_twin(
    snap: &crate::operator::snapshot::Snapshot,
    clustering: Option<u32>,
) -> Option<Finding> {
    let change = clustering?;
    let green_only = &snap.plan.spec.blue_green.green_only;
    if snap.peer_services.is_empty() || green_only.is_empty() {
        return None;
    }
    let written = serde_json::to_string(green_only).unwrap_or_default();
    let twins: Vec<String> = snap
        .peer_services
        .iter()
        .map(|s| twin_name(&s.name_any()))
        .collect();
    if twins.iter().any(|t| written.contains(t.as_str())) {
        return None;
    }
    Some(Finding {
        change: Some(change),
        rule: "green-only-names-no-twin".into(),
        blocks: Vec::new(),
        message: format!(
            "blueGreen.greenOnly names none of green's discovery Services ({}): make sure what it sets points green's cluster discovery at them, or green may look for blue's cluster",
            twins.join(", ")
        ),
    })
}
