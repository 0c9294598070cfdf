//! The GitOps flow on the handover model (`handover_model`): a paused target whose template
//! is ahead of its running ReplicaSet. A whole plan runs without a server and the model is
//! checked at every turn.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::handover_model::{Model, run_to_end, template};
use super::tests::{base_spec, plan, rolling_safe_build, run, with_status};
use crate::api::{Flow, Phase};
use crate::operator::action::Action;
use crate::operator::labels::selector_matches;
use crate::operator::pods;
use crate::operator::workload::fixtures;

/// A GitOps plan: no update, and a declared change saying what the pending template's
/// image brings (the model's images are not Liferay tags the rules can read).
fn gitops_spec() -> Value {
    let mut spec = base_spec();
    spec["changes"] = rolling_safe_build();
    spec
}

#[test]
fn a_rolling_restart_moves_the_pods_to_the_pending_template_and_leaves_the_deployment_as_git_has_it()
 {
    let mut m = Model::new(3);
    let git = fixtures::json(&m.target)["spec"].clone();
    let first = run(&m.snapshot(plan(gitops_spec())), 0);
    assert_eq!(first.status.flow, Some(Flow::PendingTemplate));
    assert!(
        first
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("pending template"),
        "{:?}",
        first.status.message
    );
    // The running set is taken over last, after the new set exists and the history set.
    let order: Vec<String> = first
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateReplicaSet(rs) => {
                Some(format!("create {}", rs.metadata.name.as_deref().unwrap()))
            }
            Action::PatchReplicaSet { name, .. } => Some(format!("take {name}")),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(order[0].starts_with("create liferay-"), "{order:?}");
    assert_eq!(&order[1..], ["take liferay-older", "take liferay-old"]);

    let (phase, events, lowest) = run_to_end(&mut m, gitops_spec(), None);
    assert_eq!(phase, Phase::Succeeded);
    assert!(lowest >= 3, "never fewer than 3 pods; saw {lowest}");
    assert_eq!(
        events.iter().filter(|e| *e == "PodReplaced").count(),
        3,
        "{events:?}"
    );
    // The target's spec was never written: paused, Git's template, Git's replicas.
    assert_eq!(fixtures::json(&m.target)["spec"], git);
    let annotations = m.target.metadata().annotations.clone().unwrap_or_default();
    assert!(
        !annotations.contains_key("cutover.dev/plan"),
        "{annotations:?}"
    );
    // Every pod is of the new set, which its controller can adopt; the old sets are back.
    let new = m
        .sets
        .iter()
        .find(|rs| {
            Model::labels(rs)
                .get("pod-template-hash")
                .is_some_and(|h| h != "old" && h != "older")
        })
        .expect("the new set");
    assert_eq!(new.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        Model::labels(new).get("app").map(String::as_str),
        Some("liferay")
    );
    assert_eq!(
        m.images(),
        [Model::labels(new)["pod-template-hash"].clone()]
    );
    for name in ["liferay-old", "liferay-older"] {
        let rs = m.set_mut(name).clone();
        assert_eq!(
            Model::labels(&rs),
            BTreeMap::from([
                ("app".to_string(), "liferay".to_string()),
                (
                    "pod-template-hash".to_string(),
                    name.trim_start_matches("liferay-").to_string()
                )
            ])
        );
        assert_eq!(rs.spec.as_ref().unwrap().replicas, Some(0));
    }
}

#[test]
fn a_pod_of_the_pending_template_that_is_never_ready_moves_everything_back() {
    let mut m = Model::new(2);
    let git = fixtures::json(&m.target)["spec"].clone();
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 5});
    // Pods of any set other than the running ones never become Ready.
    let never_ready = |m: &mut Model| {
        for p in m.pods.iter_mut() {
            let hash = p.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
            if hash != "old" && hash != "older" {
                p.status = Some(
                    serde_json::from_value(
                        json!({"conditions": [{"type": "Ready", "status": "False"}]}),
                    )
                    .unwrap(),
                );
            }
        }
    };
    let (phase, events, lowest) = run_to_end(&mut m, spec, Some(&never_ready));
    assert_eq!(phase, Phase::Failed);
    assert!(events.contains(&"RollingBack".to_string()), "{events:?}");
    assert!(lowest >= 2);
    assert_eq!(fixtures::json(&m.target)["spec"], git);
    // Only the original sets remain, as they were; the set cutover made is gone.
    assert_eq!(m.set_names(), ["liferay-old", "liferay-older"]);
    assert_eq!(m.images(), ["old"]);
    assert_eq!(
        m.set_mut("liferay-old").spec.as_ref().unwrap().replicas,
        Some(2)
    );
}

#[test]
fn an_update_for_a_paused_deployment_with_a_pending_template_is_rejected() {
    let m = Model::new(3);
    let mut spec = base_spec();
    spec["update"] = json!({"image": "dxp:other"});
    let d = run(&m.snapshot(plan(spec)), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    let message = d.status.message.unwrap();
    assert!(message.contains("two sources of truth"), "{message}");
    assert!(message.contains("remove spec.update"), "{message}");
    assert!(
        d.actions.iter().all(|a| matches!(a, Action::Event { .. })),
        "nothing touched: {:?}",
        d.actions
    );
}

#[test]
fn a_full_restart_stops_every_old_pod_before_a_new_one_starts() {
    let mut m = Model::new(3);
    let mut spec = base_spec();
    spec["strategy"] = json!("FullRestart");
    spec["allowDowntime"] = json!(true);
    let mut p = plan(spec);
    let mut mixed = false;
    for _ in 0..100 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        m.apply(&d.actions);
        mixed |= m.images().len() > 1;
        p = with_status(snap, &d).plan;
        m.clock += 1;
        if d.status.phase == Some(Phase::Succeeded) {
            assert!(!mixed, "old and new pods never run together");
            assert_eq!(m.pods.len(), 3);
            assert_eq!(m.target.paused(), Some(true));
            let downtime = d.status.downtime.expect("the downtime is reported");
            assert!(
                downtime.ends_with('s') && downtime != "unknown",
                "{downtime}"
            );
            return;
        }
        assert_ne!(
            d.status.phase,
            Some(Phase::Failed),
            "{:?}",
            d.status.message
        );
    }
    panic!("the full restart did not end");
}

#[test]
fn without_a_pending_template_a_paused_deployment_gets_a_plain_restart() {
    let mut m = Model::new(3);
    m.target
        .set_template(serde_json::from_value(template("dxp:old", None)).unwrap());
    let d = run(&m.snapshot(plan(base_spec())), 0);
    assert_eq!(d.status.flow, Some(Flow::Restart));
    assert!(
        d.actions.iter().any(|a| matches!(a, Action::CreatePod(_))),
        "a surge pod, the template untouched: {:?}",
        d.actions
    );
}

/// Every pod the model makes after its first `good` pods never becomes Ready.
fn never_ready_after(good: usize) -> impl Fn(&mut Model) {
    move |m: &mut Model| {
        for p in m.pods.iter_mut() {
            let made: usize = pods::name(p).rsplit('-').next().unwrap().parse().unwrap();
            if made > good {
                p.status = Some(
                    serde_json::from_value(
                        json!({"conditions": [{"type": "Ready", "status": "False"}]}),
                    )
                    .unwrap(),
                );
            }
        }
    }
}

#[test]
fn pods_of_the_pending_template_that_never_appear_move_everything_back_in_time() {
    let mut m = Model::new(2);
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 5});
    // The pending template's set is scaled up, but no pod of it is ever made (a quota, an
    // admission webhook).
    let never_made = |m: &mut Model| {
        m.pods.retain(|p| {
            let hash = &p.metadata.labels.as_ref().unwrap()["pod-template-hash"];
            hash == "old" || hash == "older"
        })
    };
    let (phase, events, lowest) = run_to_end(&mut m, spec, Some(&never_made));
    assert_eq!(phase, Phase::Failed);
    assert!(events.contains(&"RollingBack".to_string()), "{events:?}");
    assert!(
        m.message
            .contains("1 of the 1 pods asked of replica set liferay-"),
        "{}",
        m.message
    );
    assert!(
        m.message.contains("did not appear within 5s"),
        "{}",
        m.message
    );
    assert!(lowest >= 2);
    assert_eq!(m.images(), ["old"]);
}

#[test]
fn a_way_back_that_stalls_too_hands_the_sets_back_as_they_stand_and_fails() {
    let mut m = Model::new(2);
    let git = fixtures::json(&m.target)["spec"].clone();
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 5});
    // The first pod of the pending template gets Ready, no pod made after it does: the
    // second fails the rollout, and the previous template's pod made on the way back fails
    // that too.
    let (phase, events, lowest) = run_to_end(&mut m, spec, Some(&never_ready_after(3)));
    assert_eq!(phase, Phase::Failed);
    assert!(
        events.contains(&"RollbackStalled".to_string()),
        "{events:?}"
    );
    assert!(
        m.message
            .contains("the way back stalled too: pod liferay-old-"),
        "{}",
        m.message
    );
    assert!(
        m.message
            .contains("are back with deployment liferay as they stand"),
        "{}",
        m.message
    );
    assert_eq!(
        fixtures::json(&m.target)["spec"],
        git,
        "the target is as Git has it"
    );
    // No pod was taken away on the way out, and every set is the target's again: none held,
    // the one cutover made adoptable by it.
    assert!(lowest >= 2);
    let held: Vec<_> = m
        .sets
        .iter()
        .filter(|rs| Model::labels(rs).contains_key("cutover.dev/held-by"))
        .collect();
    assert!(held.is_empty(), "{held:?}");
    let selector = m.target.selector().unwrap().clone();
    let mut with_pods: Vec<String> = m
        .sets
        .iter()
        .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        .map(|rs| {
            assert!(selector_matches(&selector, &Model::labels(rs)), "{rs:?}");
            rs.metadata.name.clone().unwrap()
        })
        .collect();
    with_pods.sort();
    assert_eq!(
        with_pods.len(),
        2,
        "both sets keep their pods: {with_pods:?}"
    );
    assert!(m.images().len() == 2, "{:?}", m.images());
}
