//! Pod patches that would give the new pods more rights than the target's (another service
//! account, a security context, the node's namespaces, a host path, a privileged container)
//! on hand-made snapshots: refused by default before anything is touched.

use serde_json::json;

use super::tests::{at, base_spec, deployment, plan, run, snapshot, three_old_pods};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::policy::Policy;
use crate::rules::Catalog;

fn touches_nothing(actions: &[Action]) -> bool {
    actions
        .iter()
        .all(|a| matches!(a, Action::AddFinalizer | Action::Event { .. }))
}

#[test]
fn a_patch_that_runs_pods_with_more_rights_is_refused_by_default() {
    let mut spec = base_spec();
    spec["update"] = json!({"podTemplatePatch": {"spec": {
        "serviceAccountName": "cluster-admin-sa",
        "hostNetwork": true,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
    }}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    for words in [
        "spec.update.podTemplatePatch",
        "serviceAccountName",
        "hostNetwork",
        "hostPath",
        "--allow-privileged-patches",
        "nothing was touched",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    assert!(
        d.status
            .findings
            .iter()
            .any(|f| f.rule == "pod-patch-escalates-privileges"),
        "{:?}",
        d.status.findings
    );
    assert!(touches_nothing(&d.actions), "{:?}", d.actions);
}

#[test]
fn a_green_only_patch_with_a_privileged_container_is_refused_by_default() {
    let mut spec = base_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["update"] = json!({"image": "liferay/dxp:de-32"});
    spec["blueGreen"] = json!({"greenOnly": {"podTemplatePatch": {"spec": {"containers": [
        {"name": "liferay", "image": "liferay/dxp:de-32",
         "securityContext": {"privileged": true}}]}}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected), "{:?}", d.status);
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.blueGreen.greenOnly.podTemplatePatch")
            && message.contains("privileged"),
        "{message}"
    );
    assert!(touches_nothing(&d.actions), "{:?}", d.actions);
}

#[test]
fn a_patch_of_annotations_and_resources_is_no_escalation() {
    let mut spec = base_spec();
    spec["update"] = json!({"podTemplatePatch": {
        "metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "5"}},
        "spec": {"terminationGracePeriodSeconds": 60}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
}

#[test]
fn an_operator_that_allows_it_records_the_finding_and_goes_on() {
    let mut spec = base_spec();
    spec["update"] = json!({"podTemplatePatch": {"spec": {"hostNetwork": true}}});
    let snap = snapshot(plan(spec), Some(deployment(3, "a")), three_old_pods());
    let allow = Policy {
        allow_privileged_patches: true,
    };
    let d = super::step(&snap, Catalog::builtin(), &allow, at(0));
    assert_eq!(d.status.phase, Some(Phase::Progressing), "{:?}", d.status);
    let finding = d
        .status
        .findings
        .iter()
        .find(|f| f.rule == "pod-patch-escalates-privileges")
        .expect("the finding is recorded");
    assert!(
        finding.message.contains("hostNetwork: true") && finding.message.contains("allowed"),
        "{}",
        finding.message
    );
}
