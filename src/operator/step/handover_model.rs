//! A small in-memory model of a namespace for the handover flows' tests: a Deployment, its
//! ReplicaSets and their pods. Each decision's actions are applied to the model (ReplicaSets
//! gain and lose pods at once, Ready at once; check attempts answered at once) and the next
//! step is taken, so a whole plan runs without a server. It has no Deployment controller:
//! it serves plans that keep the target paused while they move its pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::tests::{events, plan, pod, run, service, with_status};
use crate::api::{MaintenancePlan, Phase};
use crate::operator::action::Action;
use crate::operator::labels::selector_matches;
use crate::operator::probe::ProbeAnswer;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::{Workload, fixtures};

pub(super) fn template(image: &str, hash: Option<&str>) -> Value {
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

/// A namespace: the target, its sets, their pods, and the answers to check attempts.
pub(super) struct Model {
    pub target: Workload,
    pub sets: Vec<ReplicaSet>,
    pub pods: Vec<Pod>,
    pub clock: i64,
    made: usize,
    /// The plan's message after the last step `run_to_end` took.
    pub message: String,
    /// The plan as it stands after the last step (its status fed back).
    pub plan: Option<MaintenancePlan>,
    /// Whether check attempts pass.
    pub checks_pass: bool,
    /// The check attempts asked for, by key (stage/check/subject/attempt), in order.
    pub asked: Vec<String>,
    probes: Vec<ProbeAnswer>,
}

impl Model {
    /// A paused Deployment whose template (Git's new one, `dxp:new`) is ahead of its running
    /// set `liferay-old`; an older set without pods beside it.
    pub fn new(replicas: i32) -> Model {
        let target = fixtures::deployment(json!({
            "metadata": {"name": "liferay", "namespace": "portal", "generation": 2, "resourceVersion": "10"},
            "spec": {"replicas": replicas, "paused": true,
                     "selector": {"matchLabels": {"app": "liferay"}},
                     "template": template("dxp:new", None)},
            "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": 0,
                       "readyReplicas": replicas, "availableReplicas": replicas}
        }));
        Model::with(target, replicas, "dxp:old")
    }

    /// A Deployment that runs its template `image` on its set `liferay-old`, not paused.
    pub fn running(replicas: i32, image: &str) -> Model {
        let target = fixtures::deployment(json!({
            "metadata": {"name": "liferay", "namespace": "portal", "generation": 1, "resourceVersion": "10"},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": "liferay"}},
                     "template": template(image, None)},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": replicas, "availableReplicas": replicas}
        }));
        Model::with(target, replicas, image)
    }

    fn with(target: Workload, replicas: i32, running_image: &str) -> Model {
        let mut m = Model {
            target,
            sets: vec![
                set("older", "dxp:older", 0),
                set("old", running_image, replicas),
            ],
            pods: Vec::new(),
            clock: 0,
            made: 0,
            message: String::new(),
            plan: None,
            checks_pass: true,
            asked: Vec::new(),
            probes: Vec::new(),
        };
        m.reconcile_pods();
        m
    }

    pub fn set_mut(&mut self, name: &str) -> &mut ReplicaSet {
        self.sets
            .iter_mut()
            .find(|rs| rs.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no replica set {name}"))
    }

    pub fn labels(rs: &ReplicaSet) -> BTreeMap<String, String> {
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

    pub fn snapshot(&self, plan: MaintenancePlan) -> Snapshot {
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
            probes: self.probes.clone(),
        }
    }

    pub fn apply(&mut self, actions: &[Action]) {
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
                Action::ReplaceWorkload(target) => self.target = (**target).clone(),
                Action::Probe(request) => {
                    self.asked.push(request.key.clone());
                    self.probes.push(ProbeAnswer {
                        key: request.key.clone(),
                        passed: self.checks_pass,
                        message: if self.checks_pass {
                            "answered 200"
                        } else {
                            "answered 503"
                        }
                        .into(),
                        at: super::tests::at(self.clock),
                    });
                }
                Action::Event { .. } | Action::AddFinalizer | Action::RemoveFinalizer => {}
                other => panic!("the model has no {other:?}"),
            }
        }
        self.reconcile_pods();
    }

    /// The names of the sets, sorted.
    pub fn set_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sets
            .iter()
            .map(|rs| rs.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        names
    }

    /// The `pod-template-hash` values of the pods, each once.
    pub fn images(&self) -> Vec<String> {
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

    /// One more turn of the plan as it stands: after its end, the cleanup.
    pub fn turn(&mut self) {
        let plan = self.plan.clone().expect("a plan ran");
        let snap = self.snapshot(plan);
        let d = run(&snap, self.clock);
        self.apply(&d.actions);
        self.plan = Some(with_status(snap, &d).plan);
        self.clock += 1;
    }
}

/// Runs `spec` on the model until the plan ends; returns the decisions' events and the
/// lowest count of Ready pods seen. `each_turn` runs after each turn's actions are applied
/// (to make pods fail, or to look at the model).
pub(super) fn run_to_end(
    m: &mut Model,
    spec: Value,
    each_turn: Option<&dyn Fn(&mut Model)>,
) -> (Phase, Vec<String>, usize) {
    let mut p = plan(spec);
    let mut all_events = Vec::new();
    let mut lowest = usize::MAX;
    for _ in 0..200 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        all_events.extend(events(&d));
        m.apply(&d.actions);
        if let Some(hook) = each_turn {
            hook(m);
        }
        lowest = lowest.min(m.pods.len());
        p = with_status(snap, &d).plan;
        m.plan = Some(p.clone());
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
