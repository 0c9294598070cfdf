//! The traffic Service's selector on hand-made snapshots: a patch that would take the pods out
//! of it is rejected before anything is touched, a revision that is not known yet is never
//! written as an empty pin, and the Started Event says what the pin cuts off.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::tests::{base_spec, deployment, plan, run, snapshot, three_old_pods};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::workload::saved::{self as record, Mode, Saved};

/// Only the finalizer and Events: nothing in the cluster is touched.
fn touches_nothing(actions: &[Action]) -> bool {
    actions
        .iter()
        .all(|a| matches!(a, Action::AddFinalizer | Action::Event { .. }))
}

fn blue_green_spec() -> serde_json::Value {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec
}

/// Every selector the decision writes to a Service, by Service.
fn selectors_written(actions: &[Action]) -> Vec<(String, serde_json::Value)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetServiceSelector { service, selector } => {
                Some((service.clone(), serde_json::to_value(selector).unwrap()))
            }
            _ => None,
        })
        .collect()
}

fn no_empty_value(actions: &[Action]) -> bool {
    selectors_written(actions)
        .iter()
        .all(|(_, s)| s.as_object().unwrap().values().all(|v| v != ""))
}

#[test]
fn a_patch_that_changes_a_label_the_service_selects_is_rejected_touching_nothing() {
    let mut spec = base_spec();
    spec["update"] = json!({"podTemplatePatch": {"metadata": {"labels": {"app": "liferay-v2"}}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.update.podTemplatePatch")
            && message.contains("app")
            && message.contains("nothing was touched"),
        "{message}"
    );
    assert!(touches_nothing(&d.actions), "{:?}", d.actions);
}

#[test]
fn a_green_only_patch_that_drops_a_label_the_service_selects_is_rejected_touching_nothing() {
    let mut spec = blue_green_spec();
    spec["blueGreen"] = json!({"greenOnly": {"podTemplatePatch":
        {"metadata": {"labels": {"app": null}}}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.blueGreen.greenOnly.podTemplatePatch")
            && message.contains("app")
            && message.contains("nothing was touched"),
        "{message}"
    );
    assert!(touches_nothing(&d.actions), "{:?}", d.actions);
}

#[test]
fn a_patch_that_keeps_the_selected_labels_and_adds_one_goes_ahead() {
    let mut spec = base_spec();
    spec["update"] = json!({"podTemplatePatch": {"metadata": {"labels": {"tier": "web"}}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
}

#[test]
fn a_blue_green_never_pins_the_service_to_a_revision_it_does_not_know() {
    // No ReplicaSet yet carries the target's template: the revision of its pods is unknown.
    let mut snap = snapshot(
        plan(blue_green_spec()),
        Some(deployment(3, "a")),
        three_old_pods(),
    );
    snap.replica_sets.clear();
    let d = run(&snap, 0);
    assert!(no_empty_value(&d.actions), "{:?}", d.actions);
    assert!(selectors_written(&d.actions).is_empty(), "{:?}", d.actions);
    assert_eq!(d.status.phase, Some(Phase::Pending), "{:?}", d.status);
    assert_eq!(d.status.step.as_deref(), Some("WaitingForTarget"));
    assert!(d.requeue.is_some());
}

#[test]
fn a_record_without_blue_revision_never_writes_an_empty_pin() {
    let mut target = deployment(3, "a");
    let saved = Saved {
        mode: Some(Mode::BlueGreen),
        replicas: Some(3),
        template: target.template().cloned(),
        selector: Some([("app".to_string(), "liferay".to_string())].into()),
        blue_hash: Some(String::new()),
        ..Default::default()
    };
    record::mark(&mut target, "p1", &saved);
    let mut snap = snapshot(plan(blue_green_spec()), Some(target), three_old_pods());
    snap.replica_sets.clear();
    snap.plan.status = Some(crate::api::MaintenancePlanStatus {
        phase: Some(Phase::Progressing),
        ..Default::default()
    });
    let d = run(&snap, 1);
    assert!(no_empty_value(&d.actions), "{:?}", d.actions);
}

fn slice(pods: &[&str]) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = pods
        .iter()
        .map(|name| {
            json!({"addresses": ["127.0.0.9"], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "name": name}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "liferay-abc", "namespace": "portal",
                     "labels": {"kubernetes.io/service-name": "liferay"}},
        "addressType": "IPv4", "endpoints": endpoints
    }))
    .unwrap()
}

fn started_message(d: &super::Decision) -> String {
    d.actions
        .iter()
        .find_map(|a| match a {
            Action::Event {
                reason, message, ..
            } if reason == "Started" => Some(message.clone()),
            _ => None,
        })
        .expect("a Started Event")
}

#[test]
fn the_started_event_says_the_service_is_pinned_and_which_other_pods_it_cuts_off() {
    let mut snap = snapshot(
        plan(blue_green_spec()),
        Some(deployment(3, "a")),
        three_old_pods(),
    );
    snap.endpoint_slices = vec![slice(&[
        "liferay-old-0",
        "liferay-old-1",
        "liferay-old-2",
        "canary-7d9f-x1",
    ])];
    let d = run(&snap, 0);
    let message = started_message(&d);
    assert!(
        message.contains("pinned") && message.contains("pod-template-hash=old"),
        "{message}"
    );
    assert!(message.contains("canary-7d9f-x1"), "{message}");
    assert!(!message.contains("liferay-old-0"), "{message}");

    // With only the target's pods behind it, the pin is still said, and no other pod named.
    snap.endpoint_slices = vec![slice(&["liferay-old-0", "liferay-old-1"])];
    let message = started_message(&run(&snap, 0));
    assert!(message.contains("pinned"), "{message}");
    assert!(!message.contains("also sends traffic"), "{message}");
}

#[test]
fn a_pending_template_that_drops_a_label_the_service_selects_is_rejected_touching_nothing() {
    // GitOps flow: the running pods carry tier=web, which the Service selects; Git's pending
    // template does not.
    let mut m = super::handover_model::Model::new(3);
    let old = m.set_mut("liferay-old");
    let template = old.spec.as_mut().unwrap().template.as_mut().unwrap();
    template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "web".into());
    let mut spec = base_spec();
    spec["changes"] = super::tests::rolling_safe_build();
    let mut snap = m.snapshot(plan(spec));
    for pod in &mut snap.pods {
        let labels = pod.metadata.labels.as_mut().unwrap();
        labels.insert("tier".into(), "web".into());
    }
    snap.service = Some(
        serde_json::from_value(
            json!({"metadata": {"name": "liferay", "namespace": "portal"},
            "spec": {"selector": {"app": "liferay", "tier": "web"}}}),
        )
        .unwrap(),
    );
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("the pending template of deployment liferay")
            && message.contains("tier=web (it is not there)")
            && message.contains("nothing was touched"),
        "{message}"
    );
    assert!(touches_nothing(&d.actions), "{:?}", d.actions);
}
