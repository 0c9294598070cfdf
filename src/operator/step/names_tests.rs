//! Long names on hand-made snapshots: what the operator creates for a target, a plan and
//! Services with long names is named within what the API server allows each kind (and what
//! the kind's controller then derives from it).

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Value, json};

use super::tests::{base_spec, deployment, plan, pod, run, snapshot};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::names::Rule;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::{Workload, fixtures};

/// What the API server allows: a Deployment's name (with room for its ReplicaSets'
/// `-<hash>`), a StatefulSet's (with room for `controller-revision-hash: <name>-<hash>`), a
/// Service's and a pod's.
fn fits_deployment(name: &str) -> bool {
    Rule::Subdomain(253).allows(name) && name.len() + 11 <= 253
}
fn fits_stateful_set(name: &str) -> bool {
    Rule::Label(63).allows(name) && name.len() + 11 <= 63
}
fn fits_service(name: &str) -> bool {
    Rule::Dns1035.allows(name)
}
fn fits_pod(name: &str) -> bool {
    Rule::Subdomain(253).allows(name)
}

/// A name of `len` characters: `liferay-` and then `x`s.
fn long(len: usize) -> String {
    format!("liferay-{}", "x".repeat(len - "liferay-".len()))
}

fn spec_for(target: &str, kind: &str) -> Value {
    let mut spec = base_spec();
    spec["target"] = json!({"kind": kind, "name": target});
    spec
}

/// A headless Service `name` that selects the target's pods.
fn headless(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "portal"},
        "spec": {"clusterIP": "None", "selector": {"app": "liferay"},
                 "ports": [{"name": "jgroups", "port": 7800}]}
    }))
    .unwrap()
}

/// The first step of a BlueGreen on `snap`: the green workload it creates, and the names of
/// the Services it creates (the twins).
fn started(snap: &Snapshot) -> (Value, Vec<String>) {
    let d = run(snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
    let mut workloads = d.actions.iter().filter_map(|a| match a {
        Action::CreateWorkload(w) => Some(fixtures::json(w)),
        _ => None,
    });
    let green = workloads.next().expect("a green copy");
    assert!(workloads.next().is_none(), "one green: {:?}", d.actions);
    let services = d
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateService(s) => s.metadata.name.clone(),
            _ => None,
        })
        .collect();
    (green, services)
}

fn named(w: Workload, name: &str) -> Workload {
    let mut w = w;
    w.metadata_mut().name = Some(name.to_string());
    w
}

#[test]
fn a_blue_green_of_a_deployment_with_a_long_name_names_green_and_twins_within_their_limits() {
    for len in [60, 240, 253] {
        let target = long(len);
        let peer = long(60);
        let mut spec = spec_for(&target, "Deployment");
        spec["strategy"] = json!("BlueGreen");
        spec["update"] = json!({"image": "liferay/dxp:de-32"});
        let mut snap = snapshot(
            plan(spec),
            Some(named(deployment(2, "a"), &target)),
            vec![pod("old-0", "old", -100, Some(-90))],
        );
        snap.peer_services = vec![headless(&peer)];
        let (green, services) = started(&snap);
        let green = green["metadata"]["name"].as_str().unwrap();
        assert!(fits_deployment(green), "{len}: green {green}");
        assert_ne!(green, target, "green is not the target");
        if len == 60 {
            assert_eq!(green, format!("{target}-green"), "a name that fits is kept");
        }
        let [twin] = services.as_slice() else {
            panic!("one twin: {services:?}");
        };
        assert!(fits_service(twin), "twin {twin}");
        assert_ne!(twin, &peer);
    }
}

/// A StatefulSet `name` of one Ready replica, governed by the headless Service `governing`.
fn stateful(name: &str, governing: &str) -> (Workload, Pod) {
    let set = fixtures::stateful_set(json!({
        "metadata": {"name": name, "namespace": "portal", "uid": "sts-uid",
                     "generation": 1, "resourceVersion": "10"},
        "spec": {"replicas": 1, "serviceName": governing,
                 "selector": {"matchLabels": {"app": "liferay"}},
                 "updateStrategy": {"type": "RollingUpdate"},
                 "template": {"metadata": {"labels": {"app": "liferay"}},
                              "spec": {"containers": [{"name": "liferay", "image": "dxp:old"}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                   "availableReplicas": 1, "updatedReplicas": 1,
                   "currentRevision": "r0", "updateRevision": "r0"}
    }));
    let pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-0"), "namespace": "portal", "uid": "pod-0",
            "labels": {"app": "liferay", "controller-revision-hash": "r0"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                "name": name, "uid": "sts-uid", "controller": true}],
            "creationTimestamp": "2027-01-15T07:00:00Z"},
        "status": {"conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2027-01-15T07:00:01Z"}]}
    }))
    .unwrap();
    (set, pod)
}

#[test]
fn a_blue_green_of_a_stateful_set_with_a_long_name_names_green_and_twins_within_their_limits() {
    let target = long(60);
    let governing = long(60);
    let (set, blue_pod) = stateful(&target, &governing);
    let mut snap: Snapshot = snapshot(
        plan(spec_for(&target, "StatefulSet")),
        Some(set),
        vec![blue_pod],
    );
    snap.service_names.push(governing.clone());
    snap.peer_services = vec![headless(&governing)];
    let (green, services) = started(&snap);
    let name = green["metadata"]["name"].as_str().unwrap();
    assert!(fits_stateful_set(name), "green {name}");
    // Its pods, `<name>-<ordinal>`, are valid pod names and label values
    // (`statefulset.kubernetes.io/pod-name`).
    assert!(Rule::Label(63).allows(&format!("{name}-0")));
    let twin = green["spec"]["serviceName"].as_str().unwrap();
    assert!(fits_service(twin), "twin {twin}");
    assert_eq!(services, [twin], "green is governed by the twin it gets");
}

#[test]
fn a_plain_restart_of_a_long_named_target_by_a_long_named_plan_names_its_surge_pod_within_a_pods_limit()
 {
    for len in [60, 200, 253] {
        let target = long(len);
        let surge_of = |plan_name: &str| {
            let mut snap = snapshot(
                plan(spec_for(&target, "Deployment")),
                Some(named(deployment(1, "a"), &target)),
                vec![pod("old-0", "old", -100, Some(-90))],
            );
            snap.plan.metadata.name = Some(plan_name.to_string());
            let d = run(&snap, 0);
            d.actions
                .iter()
                .find_map(|a| match a {
                    Action::CreatePod(p) => p.metadata.name.clone(),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{len}: a surge pod: {:?}", d.actions))
        };
        let surge = surge_of(&format!("p{}", "1".repeat(62)));
        assert!(fits_pod(&surge), "{len}: {surge}");
        assert!(surge.contains("surge"), "{len}: {surge}");
        assert_ne!(
            surge, target,
            "{len}: the surge pod is named after the target alone"
        );
        // Another plan's surge pod has a name of its own.
        assert_ne!(surge, surge_of(&format!("p{}", "2".repeat(62))), "{len}");
    }
}
