//! Cluster isolation on hand-made snapshots: the peer Service pinned to blue and its twin
//! created before green, kept so while the plan runs, and put back at the end.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::tests::{base_spec, deployment, plan, pod, run, snapshot};
use crate::api::{MaintenancePlanStatus, Phase};
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::saved::{self as record, Mode, Saved};

fn headless(selector: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "liferay-headless", "namespace": "portal"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": selector,
                 "ports": [{"name": "jgroups", "port": 7800}]}
    }))
    .unwrap()
}

fn original() -> BTreeMap<String, String> {
    [("app".to_string(), "liferay".to_string())].into()
}

fn blue_green_spec() -> serde_json::Value {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec["blueGreen"] = json!({"greenOnly": {"env": [
        {"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}]}});
    spec
}

fn old_pods() -> Vec<k8s_openapi::api::core::v1::Pod> {
    (0..2)
        .map(|i| pod(&format!("liferay-old-{i}"), "old", -100, Some(-90)))
        .collect()
}

/// A BlueGreen under way: the target marked with the saved selectors, green not yet made.
fn running(peer: Service, twin: bool, outcome: Option<Phase>) -> Snapshot {
    let mut target = deployment(2, "a");
    let saved = Saved {
        mode: Some(Mode::BlueGreen),
        replicas: Some(2),
        selector: Some(original()),
        peer_selectors: [("liferay-headless".to_string(), original())].into(),
        blue_hash: Some("old".into()),
        ..Default::default()
    };
    record::mark(&mut target, "p1", &saved);
    let mut snap = snapshot(plan(blue_green_spec()), Some(target), old_pods());
    snap.plan.status = Some(MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        outcome,
        ..Default::default()
    });
    snap.service
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .selector = Some(
        [
            ("app".to_string(), "liferay".to_string()),
            ("pod-template-hash".to_string(), "old".to_string()),
        ]
        .into(),
    );
    snap.peer_services = vec![peer];
    if twin {
        snap.twins =
            vec![serde_json::from_value(json!({
            "metadata": {"name": "liferay-headless-green", "labels": {"cutover.dev/plan": "p1"}}
        }))
        .unwrap()];
    }
    snap
}

fn pinned() -> serde_json::Value {
    json!({"app": "liferay", "pod-template-hash": "old"})
}

fn index(actions: &[Action], f: impl Fn(&Action) -> bool) -> Option<usize> {
    actions.iter().position(f)
}

#[test]
fn blue_green_pins_the_headless_service_and_creates_its_twin_before_green() {
    let mut snap = snapshot(
        plan(blue_green_spec()),
        Some(deployment(2, "a")),
        old_pods(),
    );
    // The set blue runs, the template's (`snapshot` makes it).
    assert_eq!(snap.replica_sets.len(), 1);
    snap.peer_services = vec![headless(json!({"app": "liferay"}))];
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
    let saved: Saved = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::PatchWorkload { patch, .. } => serde_json::from_str(
                patch["metadata"]["annotations"][record::SAVED_ANNOTATION].as_str()?,
            )
            .ok(),
            _ => None,
        })
        .expect("the target is marked");
    assert_eq!(saved.peer_selectors["liferay-headless"], original());
    let pin = index(&d.actions, |a| {
        matches!(a, Action::SetServiceSelector { service, selector }
            if service == "liferay-headless" && serde_json::to_value(selector).unwrap() == pinned())
    })
    .expect("the headless service is pinned to blue");
    let twin = d
        .actions
        .iter()
        .find_map(|a| match a {
            Action::CreateService(s) => Some(serde_json::to_value(s).unwrap()),
            _ => None,
        })
        .expect("the twin is created");
    assert_eq!(twin["metadata"]["name"], "liferay-headless-green");
    assert_eq!(twin["metadata"]["labels"]["cutover.dev/plan"], "p1");
    assert_eq!(twin["metadata"]["ownerReferences"][0]["uid"], "u1");
    assert_eq!(twin["spec"]["clusterIP"], "None");
    assert_eq!(twin["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(twin["spec"]["ports"][0]["port"], 7800);
    assert_eq!(
        twin["spec"]["selector"],
        json!({"app": "liferay", "cutover.dev/copy": "green", "cutover.dev/plan": "p1"})
    );
    let green = index(&d.actions, |a| matches!(a, Action::CreateWorkload(_))).unwrap();
    let created = index(&d.actions, |a| matches!(a, Action::CreateService(_))).unwrap();
    assert!(pin < green && created < green, "{:?}", d.actions);
}

#[test]
fn a_reverted_pin_is_pinned_again_and_a_lost_twin_made_again() {
    let d = run(
        &running(headless(json!({"app": "liferay"})), false, None),
        1,
    );
    assert!(d.actions.iter().any(|a| matches!(a,
        Action::SetServiceSelector { service, selector }
            if service == "liferay-headless" && serde_json::to_value(selector).unwrap() == pinned())));
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::CreateService(_)))
    );
    // Once so, nothing is written to either again.
    let d = run(&running(headless(pinned()), true, None), 1);
    assert!(
        !d.actions.iter().any(|a| matches!(a,
            Action::SetServiceSelector { service, .. } if service == "liferay-headless")
            || matches!(a, Action::CreateService(_))),
        "{:?}",
        d.actions
    );
}

#[test]
fn the_end_restores_the_selector_and_deletes_the_twin_before_the_record_goes() {
    for outcome in [Phase::Succeeded, Phase::Failed, Phase::Aborted] {
        let d = run(&running(headless(pinned()), true, Some(outcome)), 5);
        let restore = index(&d.actions, |a| {
            matches!(a, Action::SetServiceSelector { service, selector }
                if service == "liferay-headless" && selector == &original())
        })
        .expect("the selector is restored");
        let delete = index(
            &d.actions,
            |a| matches!(a, Action::DeleteService { name } if name == "liferay-headless-green"),
        )
        .expect("the twin is deleted");
        let unmark = index(&d.actions, |a| matches!(a, Action::PatchWorkload { .. })).unwrap();
        assert!(restore < unmark && delete < unmark, "{:?}", d.actions);
        assert_eq!(d.status.phase, Some(outcome));
    }
    // A repeated end (the twin gone, the selector back) writes neither again.
    let d = run(
        &running(
            headless(json!({"app": "liferay"})),
            false,
            Some(Phase::Succeeded),
        ),
        5,
    );
    assert!(
        !d.actions.iter().any(|a| matches!(a,
            Action::SetServiceSelector { service, .. } if service == "liferay-headless")
            || matches!(a, Action::DeleteService { .. })),
        "{:?}",
        d.actions
    );
}

fn cluster_code_spec(green_only: bool) -> serde_json::Value {
    let mut spec = blue_green_spec();
    spec["changes"] = json!([{"type": "ClusterCode",
        "clusterCode": {"categories": ["Clustering"]}}]);
    if !green_only {
        spec["blueGreen"] = json!({});
    }
    spec
}

#[test]
fn cluster_code_without_green_only_beside_a_headless_service_is_rejected_untouched() {
    let mut snap = snapshot(
        plan(cluster_code_spec(false)),
        Some(deployment(2, "a")),
        old_pods(),
    );
    snap.peer_services = vec![headless(json!({"app": "liferay"}))];
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap();
    assert!(message.contains("service liferay-headless"), "{message}");
    assert!(
        message.contains("blueGreen: {greenOnly: {env: [{name: DNS_MEMBERSHIP_SERVICE_NAME, value: liferay-headless-green}]}}"),
        "{message}"
    );
    assert!(message.ends_with("nothing was touched"), "{message}");
    assert!(
        d.status
            .findings
            .iter()
            .any(|f| f.rule == "cluster-isolation-needs-green-only"),
        "{:?}",
        d.status.findings
    );
    assert!(
        d.actions.iter().all(|a| matches!(a, Action::Event { .. })),
        "{:?}",
        d.actions
    );
    // With greenOnly, or with no Service beside the traffic Service, it goes ahead.
    snap.plan = plan(cluster_code_spec(true));
    assert_eq!(run(&snap, 0).status.phase, Some(Phase::Progressing));
    snap.plan = plan(cluster_code_spec(false));
    snap.peer_services.clear();
    assert_eq!(run(&snap, 0).status.phase, Some(Phase::Progressing));
}

/// After the switch, the target brought to the new template: its controller has made the
/// new ReplicaSet (`with_new_set`) or not yet.
fn target_on_the_new_template(with_new_set: bool) -> Snapshot {
    let mut snap = running(headless(pinned()), true, None);
    let mut target = deployment(2, "liferay/dxp:de-32");
    let saved = Saved {
        mode: Some(Mode::BlueGreen),
        replicas: Some(2),
        selector: Some(original()),
        peer_selectors: [("liferay-headless".to_string(), original())].into(),
        blue_hash: Some("old".into()),
        template: deployment(2, "a").template().cloned(),
        switched_at: Some(super::tests::at(-5)),
        ..Default::default()
    };
    record::mark(&mut target, "p1", &saved);
    let set = |hash: &str, image: &str, revision: i32| {
        serde_json::from_value(json!({
            "metadata": {"name": format!("liferay-{hash}"), "labels": {"pod-template-hash": hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision.to_string()}},
            "spec": {"selector": {"matchLabels": {"app": "liferay", "pod-template-hash": hash}},
                     "template": {"metadata": {"labels": {"app": "liferay", "pod-template-hash": hash}},
                                  "spec": {"containers": [{"name": "liferay", "image": image}]}}}
        }))
        .unwrap()
    };
    snap.replica_sets = vec![set("old", "a", 1)];
    if with_new_set {
        snap.replica_sets.push(set("new", "liferay/dxp:de-32", 2));
    }
    snap.target = Some(target);
    snap
}

fn headless_selector_set(actions: &[Action]) -> Option<BTreeMap<String, String>> {
    actions.iter().find_map(|a| match a {
        Action::SetServiceSelector { service, selector } if service == "liferay-headless" => {
            Some(selector.clone())
        }
        _ => None,
    })
}

#[test]
fn once_the_target_takes_the_new_template_the_headless_service_lists_its_new_pods_only() {
    // Its new pods must find each other, not blue's old ones on their way out (and never
    // green's, which have a revision of their own).
    let d = run(&target_on_the_new_template(true), 0);
    let selector = headless_selector_set(&d.actions).expect("the pin moves to the new revision");
    assert_eq!(
        selector.get("pod-template-hash").map(String::as_str),
        Some("new")
    );
    assert_eq!(selector.get("app").map(String::as_str), Some("liferay"));

    // Until its controller has made the new set, the pin stays on blue's revision.
    let d = run(&target_on_the_new_template(false), 0);
    assert_eq!(headless_selector_set(&d.actions), None, "{:?}", d.actions);
}

#[test]
fn a_green_only_that_names_no_twin_goes_ahead_with_a_finding_saying_so() {
    let mut spec = cluster_code_spec(true);
    spec["blueGreen"]["greenOnly"] = json!({"env": [{"name": "CLUSTER_NAME", "value": "green"}]});
    let mut snap = snapshot(plan(spec), Some(deployment(2, "a")), old_pods());
    snap.peer_services = vec![headless(json!({"app": "liferay"}))];
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
    let finding = d
        .status
        .findings
        .iter()
        .find(|f| f.rule == "green-only-names-no-twin")
        .expect("a finding says greenOnly names no twin");
    assert!(finding.blocks.is_empty());
    assert!(
        finding.message.contains("liferay-headless-green"),
        "{}",
        finding.message
    );

    // Naming the twin, it says nothing.
    snap.plan = plan(cluster_code_spec(true));
    let d = run(&snap, 0);
    assert!(
        !d.status
            .findings
            .iter()
            .any(|f| f.rule == "green-only-names-no-twin"),
        "{:?}",
        d.status.findings
    );
}
