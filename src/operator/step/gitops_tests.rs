//! The GitOps flow on a small in-memory model of a namespace: a paused target whose
//! template is ahead of its running ReplicaSet. Each decision's actions are applied to the
//! model (ReplicaSets gain and lose pods at once, Ready at once) and the next step is taken,
//! so a whole plan runs without a server and the model is checked at every turn.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::tests::{base_spec, events, plan, pod, rolling_safe_build, run, service, with_status};
use crate::api::{Flow, Phase};
use crate::operator::action::Action;
use crate::operator::labels::selector_matches;
use crate::operator::pods;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::{Workload, fixtures};

fn template(image: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "liferay"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    json!({"metadata": {"labels": labels},
           "spec": {"containers": [{"name": "liferay", "image": image}]}})
}

fn set(hash: &str, image: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("liferay-{hash}"), "namespace": "portal",
                     "labels": {"app": "liferay", "pod-template-hash": hash}},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "liferay", "pod-template-hash": hash}},
                 "template": template(image, Some(hash))}
    }))
    .unwrap()
}

/// A namespace: the paused target with Git's new template, its sets, their pods.
struct Model {
    target: Workload,
    sets: Vec<ReplicaSet>,
    pods: Vec<Pod>,
    clock: i64,
    made: usize,
    /// The plan's message after the last step `run_to_end` took.
    message: String,
}

impl Model {
    fn new(replicas: i32) -> Model {
        let target = fixtures::deployment(json!({
            "metadata": {"name": "liferay", "namespace": "portal", "generation": 2, "resourceVersion": "10"},
            "spec": {"replicas": replicas, "paused": true,
                     "selector": {"matchLabels": {"app": "liferay"}},
                     "template": template("dxp:new", None)},
            "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": 0,
                       "readyReplicas": replicas, "availableReplicas": replicas}
        }));
        let mut m = Model {
            target,
            sets: vec![
                set("older", "dxp:older", 0),
                set("old", "dxp:old", replicas),
            ],
            pods: Vec::new(),
            clock: 0,
            made: 0,
            message: String::new(),
        };
        m.reconcile_pods();
        m
    }

    fn set_mut(&mut self, name: &str) -> &mut ReplicaSet {
        self.sets
            .iter_mut()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no replica set {name}"))
    }

    fn labels(rs: &ReplicaSet) -> BTreeMap<String, String> {
        rs.metadata.labels.clone().unwrap_or_default()
    }

    /// Each set has exactly as many pods as it asks for: new ones Ready at once, the newest
    /// removed first.
    fn reconcile_pods(&mut self) {
        for rs in self.sets.clone() {
            let hash = Self::labels(&rs)
                .get("pod-template-hash")
                .cloned()
                .or_else(|| {
                    rs.spec
                        .as_ref()
                        .and_then(|s| s.selector.match_labels.as_ref())
                        .and_then(|l| l.get("pod-template-hash").cloned())
                })
                .unwrap();
            let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) as usize;
            let mine = |p: &Pod| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"))
                    == Some(&hash)
            };
            while self.pods.iter().filter(|p| mine(p)).count() < want {
                self.made += 1;
                let name = format!("liferay-{hash}-{}", self.made);
                self.pods
                    .push(pod(&name, &hash, self.clock, Some(self.clock)));
            }
            while self.pods.iter().filter(|p| mine(p)).count() > want {
                let last = self.pods.iter().rposition(mine).unwrap();
                self.pods.remove(last);
            }
        }
    }

    fn snapshot(&self, plan: crate::api::MaintenancePlan) -> Snapshot {
        let selector = self.target.selector().unwrap().clone();
        let taken = |rs: &&ReplicaSet| {
            Self::labels(rs)
                .get("cutover.dev/held-by")
                .map(String::as_str)
                == Some("p1")
        };
        Snapshot {
            plan,
            peers: vec![],
            target: Some(self.target.clone()),
            replica_sets: self
                .sets
                .iter()
                .filter(|rs| selector_matches(&selector, &Self::labels(rs)))
                .cloned()
                .collect(),
            handover_sets: self.sets.iter().filter(taken).cloned().collect(),
            running_template: None,
            pods: self.pods.clone(),
            service: Some(service()),
            endpoint_slices: vec![],
            green: None,
            preview: None,
            peer_services: Vec::new(),
            twins: Vec::new(),
            service_names: vec!["liferay".into()],
            jobs: Vec::new(),
            probes: Vec::new(),
        }
    }

    fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::CreateReplicaSet(rs) => self.sets.push((**rs).clone()),
                Action::PatchReplicaSet { name, patch } => {
                    let rs = self.set_mut(name);
                    let mut doc = serde_json::to_value(&*rs).unwrap();
                    json_patch::merge(&mut doc, patch);
                    *rs = serde_json::from_value(doc).unwrap();
                }
                Action::DeleteReplicaSet { name } => {
                    self.sets
                        .retain(|rs| rs.metadata.name.as_deref() != Some(name));
                }
                Action::PatchWorkload { patch, .. } => {
                    self.target = fixtures::patched(&self.target, patch);
                }
                Action::Event { .. } | Action::AddFinalizer | Action::RemoveFinalizer => {}
                other => panic!("the GitOps flow asked for {other:?}"),
            }
        }
        self.reconcile_pods();
    }

    fn images(&self) -> Vec<String> {
        let mut hashes: Vec<String> = self
            .pods
            .iter()
            .filter_map(|p| {
                p.metadata
                    .labels
                    .as_ref()?
                    .get("pod-template-hash")
                    .cloned()
            })
            .collect();
        hashes.sort();
        hashes.dedup();
        hashes
    }
}

/// A GitOps plan: no update, and a declared change saying what the pending template's
/// image brings (the model's images are not Liferay tags the rules can read).
fn gitops_spec() -> Value {
    let mut spec = base_spec();
    spec["changes"] = rolling_safe_build();
    spec
}

/// Runs `spec` on the model until the plan ends; returns the decisions' events and the
/// lowest count of Ready pods seen.
fn run_to_end(
    m: &mut Model,
    spec: Value,
    pod_fault: Option<&dyn Fn(&mut Model)>,
) -> (Phase, Vec<String>, usize) {
    let mut p = plan(spec);
    let mut all_events = Vec::new();
    let mut lowest = usize::MAX;
    for _ in 0..200 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        all_events.extend(events(&d));
        m.apply(&d.actions);
        if let Some(fault) = pod_fault {
            fault(m);
        }
        lowest = lowest.min(m.pods.len());
        p = with_status(snap, &d).plan;
        m.clock += 1;
        m.message = d.status.message.clone().unwrap_or_default();
        let phase = d.status.phase.unwrap();
        if matches!(
            phase,
            Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected
        ) {
            assert_eq!(d.status.flow, p.status.as_ref().unwrap().flow);
            return (phase, all_events, lowest);
        }
    }
    panic!("the plan did not end; last status {:?}", p.status);
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
    let mut names: Vec<String> = m
        .sets
        .iter()
        .map(|rs| rs.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["liferay-old", "liferay-older"]);
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
