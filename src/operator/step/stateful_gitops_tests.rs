//! The GitOps flow for a StatefulSet target on a small in-memory model of its controller: Git
//! holds the StatefulSet with its new template under `updateStrategy: OnDelete` (or a partition
//! at its replicas), so the controller has it as its update revision and replaces no pod by
//! itself. The model recreates a deleted pod at the update revision (or, below a partition, at
//! the current one), rolls pods at or above a partition, scales one ordinal at a time, makes
//! the update revision current once every pod runs it and is Ready, and runs a green copy the
//! same way. Each decision's actions are applied and the next step taken, so a whole plan
//! runs without a server, and the model is checked at every turn: how many pods serve, which
//! templates serve, and whether the StatefulSet's spec is Git's at the end.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::tests::{at, base_spec, events, plan, run, service, with_status};
use crate::api::{ChangeSource, ChangeType, Flow, MaintenancePlan, Phase, Verdict};
use crate::operator::action::Action;
use crate::operator::labels::map_matches;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::saved as record;
use crate::operator::workload::{Workload, fixtures};

const OLD: &str = "liferay/dxp:7.0.10-de-28";
const NEW: &str = "liferay/dxp:7.0.10-de-29";
const OTHER: &str = "liferay/dxp:7.0.10-de-27";

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "liferay"}},
           "spec": {"containers": [{"name": "liferay", "image": image}]}})
}

/// A pod of the model: its ordinal, revision, when it was made and whether it is Ready.
#[derive(Debug, Clone)]
struct ModelPod {
    ordinal: i32,
    revision: String,
    created: i64,
    ready: bool,
}

/// One StatefulSet and its pods, as its controller keeps them.
struct Set {
    workload: Workload,
    uid: String,
    /// Pod templates by revision name, oldest first.
    revisions: Vec<(String, Value)>,
    pods: Vec<ModelPod>,
}

impl Set {
    fn new(workload: Workload, uid: &str) -> Set {
        let mut set = Set {
            workload,
            uid: uid.to_string(),
            revisions: Vec::new(),
            pods: Vec::new(),
        };
        set.set_status(json!({"observedGeneration": 0}));
        set
    }

    fn doc(&self) -> Value {
        fixtures::json(&self.workload)
    }

    fn name(&self) -> String {
        self.workload.name().to_string()
    }

    fn set_status(&mut self, status: Value) {
        self.workload = fixtures::patched(&self.workload, &json!({"status": status}));
    }

    /// The revision of the set's template, made on first sight.
    fn revision_now(&mut self) -> String {
        let t = self.doc()["spec"]["template"].clone();
        if let Some((name, _)) = self.revisions.iter().find(|(_, v)| *v == t) {
            return name.clone();
        }
        let name = format!("{}-r{}", self.name(), self.revisions.len());
        self.revisions.push((name.clone(), t));
        name
    }

    fn template_of(&self, revision: &str) -> Value {
        self.revisions
            .iter()
            .find(|(n, _)| n == revision)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    fn current(&self) -> Option<String> {
        self.doc()["status"]["currentRevision"]
            .as_str()
            .map(str::to_string)
    }

    fn on_delete(&self) -> bool {
        self.doc()["spec"]["updateStrategy"]["type"] == "OnDelete"
    }

    fn partition(&self) -> i32 {
        self.doc()["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
            .as_i64()
            .unwrap_or(0) as i32
    }

    fn pod_name(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name())
    }

    fn image_of(&self, revision: &str) -> String {
        self.template_of(revision)["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// One pass of its controller: at most one pod made or removed (OrderedReady).
    fn reconcile(&mut self, clock: i64, broken: &[String]) -> Option<i32> {
        let update = self.revision_now();
        let current = self.current().unwrap_or_else(|| update.clone());
        let replicas = self.workload.replicas();
        self.pods.sort_by_key(|p| p.ordinal);
        if let Some(condemned) = self.pods.iter().rposition(|p| p.ordinal >= replicas) {
            self.pods.remove(condemned);
            return None;
        }
        for ordinal in 0..replicas {
            match self.pods.iter().find(|p| p.ordinal == ordinal) {
                Some(p) if !p.ready => return None,
                Some(_) => {}
                None => {
                    let below = !self.on_delete() && ordinal < self.partition();
                    let revision = if below { current } else { update };
                    let ready = !broken.contains(&self.image_of(&revision));
                    self.pods.push(ModelPod {
                        ordinal,
                        revision,
                        created: clock,
                        ready,
                    });
                    return None;
                }
            }
        }
        if self.on_delete() {
            return None;
        }
        let stale = (self.partition()..replicas).rev().find(|o| {
            self.pods
                .iter()
                .any(|p| p.ordinal == *o && p.revision != update)
        })?;
        self.pods.retain(|p| p.ordinal != stale);
        Some(stale)
    }

    /// The status as its controller reports it (`completeUpdate` whatever the strategy).
    fn refresh_status(&mut self) {
        let update = self.revision_now();
        let replicas = self.workload.replicas() as usize;
        let updated = self.pods.iter().filter(|p| p.revision == update).count();
        let ready = self.pods.iter().filter(|p| p.ready).count();
        let current = match self.current() {
            _ if updated == replicas && ready == replicas && self.pods.len() == replicas => {
                update.clone()
            }
            Some(current) => current,
            None => update.clone(),
        };
        let generation = self.doc()["metadata"]["generation"].clone();
        self.set_status(
            json!({"observedGeneration": generation, "replicas": self.pods.len(),
            "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": updated,
            "currentRevision": current, "updateRevision": update}),
        );
    }

    fn pod(&self, p: &ModelPod) -> Pod {
        let condition = if p.ready {
            json!({"type": "Ready", "status": "True", "lastTransitionTime": at(p.created).to_string()})
        } else {
            json!({"type": "Ready", "status": "False"})
        };
        let template = self.template_of(&p.revision);
        let mut labels = template["metadata"]["labels"].clone();
        labels["controller-revision-hash"] = json!(p.revision);
        let name = self.pod_name(p.ordinal);
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "portal",
                "uid": format!("{name}-{}", p.created), "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "name": self.name(), "uid": self.uid, "controller": true}],
                "creationTimestamp": at(p.created).to_string()},
            "spec": template["spec"],
            "status": {"conditions": [condition]}
        }))
        .unwrap()
    }

    /// Applies a merge patch or a replacement, bumping the generation when the spec changed.
    fn write(&mut self, new: Workload) {
        let before = self.doc()["spec"].clone();
        let status = self.doc()["status"].clone();
        let generation = self.doc()["metadata"]["generation"].as_i64().unwrap_or(1);
        self.workload = fixtures::patched(&new, &json!({"status": status}));
        if self.doc()["spec"] != before {
            self.workload = fixtures::patched(
                &self.workload,
                &json!({"metadata": {"generation": generation + 1}}),
            );
        }
    }
}

/// A namespace: the target, perhaps its green copy, the Service.
struct Model {
    target: Set,
    green: Option<Set>,
    service: Service,
    /// Images whose pods never become Ready.
    broken: Vec<String>,
    /// A disruption budget refuses every eviction.
    evictions_blocked: bool,
    clock: i64,
    /// Ordinals of the target's pods in the order they were removed.
    replaced: Vec<i32>,
    /// The target's spec as Git has it (before the plan).
    git: Value,
    /// Every write of the target's spec the operator asked for.
    spec_writes: Vec<Value>,
    /// Fewest serving pods seen, and whether two templates ever served (or ran) at once.
    lowest_serving: usize,
    mixed_serving: bool,
    mixed_running: bool,
}

impl Model {
    /// The target under `strategy` with `replicas` pods on the old template, and Git's new
    /// template pending.
    fn new(replicas: i32, strategy: Value) -> Model {
        let set = fixtures::stateful_set(json!({
            "metadata": {"name": "liferay", "namespace": "portal", "uid": "sts-uid",
                         "generation": 1, "resourceVersion": "10"},
            "spec": {"replicas": replicas, "serviceName": "liferay-headless",
                     "selector": {"matchLabels": {"app": "liferay"}},
                     "updateStrategy": strategy,
                     "template": template(OLD)},
        }));
        let mut m = Model {
            target: Set::new(set, "sts-uid"),
            green: None,
            service: service(),
            broken: Vec::new(),
            evictions_blocked: false,
            clock: -100,
            replaced: Vec::new(),
            git: Value::Null,
            spec_writes: Vec::new(),
            lowest_serving: usize::MAX,
            mixed_serving: false,
            mixed_running: false,
        };
        m.settle();
        m.commit(NEW);
        m.reset_watch();
        m.clock = 0;
        m
    }

    /// Forgets what was seen so far: the checks start with the plan.
    fn reset_watch(&mut self) {
        self.replaced.clear();
        self.lowest_serving = usize::MAX;
        self.mixed_serving = false;
        self.mixed_running = false;
    }

    /// Git's next commit: the target's template gets `image`; the controller sees it.
    fn commit(&mut self, image: &str) {
        let set = fixtures::patched(
            &self.target.workload,
            &json!({"spec": {"template": template(image)}}),
        );
        self.target.write(set);
        self.target.refresh_status();
        self.git = self.target.doc()["spec"].clone();
    }

    /// Runs the controllers until nothing changes.
    fn settle(&mut self) {
        for _ in 0..50 {
            self.pass();
        }
    }

    fn pass(&mut self) {
        let broken = self.broken.clone();
        if let Some(o) = self.target.reconcile(self.clock, &broken) {
            self.replaced.push(o);
        }
        self.target.refresh_status();
        if let Some(green) = self.green.as_mut() {
            green.reconcile(self.clock, &broken);
            green.refresh_status();
        }
        self.observe_serving();
    }

    fn sets(&self) -> impl Iterator<Item = &Set> {
        std::iter::once(&self.target).chain(self.green.as_ref())
    }

    fn all_pods(&self) -> Vec<Pod> {
        self.sets()
            .flat_map(|s| s.pods.iter().map(|p| s.pod(p)))
            .collect()
    }

    /// The Ready pods the Service selects.
    fn serving(&self) -> Vec<Pod> {
        let selector = self
            .service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        self.all_pods()
            .into_iter()
            .filter(crate::operator::pods::is_ready)
            .filter(|p| map_matches(&selector, p.metadata.labels.as_ref().unwrap()))
            .collect()
    }

    fn image(p: &Pod) -> String {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default()
    }

    fn observe_serving(&mut self) {
        let serving = self.serving();
        self.lowest_serving = self.lowest_serving.min(serving.len());
        let mut images: Vec<String> = serving.iter().map(Self::image).collect();
        images.sort();
        images.dedup();
        self.mixed_serving |= images.len() > 1;
        let mut running: Vec<String> = self.all_pods().iter().map(Self::image).collect();
        running.sort();
        running.dedup();
        self.mixed_running |= running.len() > 1;
    }

    fn endpoint_slices(&self) -> Vec<EndpointSlice> {
        let endpoints: Vec<Value> = self
            .serving()
            .iter()
            .map(|p| {
                json!({"addresses": ["10.0.0.1"], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": p.metadata.name}})
            })
            .collect();
        vec![
            serde_json::from_value(json!({
                "metadata": {"name": "liferay-1", "labels": {"kubernetes.io/service-name": "liferay"}},
                "addressType": "IPv4", "endpoints": endpoints
            }))
            .unwrap(),
        ]
    }

    fn snapshot(&self, plan: MaintenancePlan) -> Snapshot {
        // As `observe` reads it: the current revision's template while one is held back.
        let running_template = self.target.workload.held_revisions().map(|held| {
            serde_json::from_value::<PodTemplateSpec>(self.target.template_of(&held.current))
                .unwrap()
        });
        Snapshot {
            plan,
            peers: vec![],
            target: Some(self.target.workload.clone()),
            replica_sets: vec![],
            handover_sets: vec![],
            running_template,
            pods: self.all_pods(),
            service: Some(self.service.clone()),
            endpoint_slices: self.endpoint_slices(),
            green: self.green.as_ref().map(|g| g.workload.clone()),
            preview: None,
            peer_services: Vec::new(),
            twins: Vec::new(),
            service_names: vec!["liferay".into(), "liferay-headless".into()],
            jobs: Vec::new(),
            probes: Vec::new(),
        }
    }

    fn set_named(&mut self, name: &str) -> &mut Set {
        if self.target.name() == name {
            return &mut self.target;
        }
        self.green
            .as_mut()
            .filter(|g| g.name() == name)
            .unwrap_or_else(|| panic!("no statefulset {name}"))
    }

    fn remove_pod(&mut self, name: &str) {
        let target = self.target.name();
        for set in std::iter::once(&mut self.target).chain(self.green.as_mut()) {
            if let Some(i) = set
                .pods
                .iter()
                .position(|p| set.pod_name(p.ordinal) == name)
            {
                if set.name() == target {
                    self.replaced.push(set.pods[i].ordinal);
                }
                set.pods.remove(i);
                return;
            }
        }
    }

    fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::PatchWorkload { name, patch, .. } => {
                    if *name == self.target.name() && patch.get("spec").is_some() {
                        self.spec_writes.push(patch["spec"].clone());
                    }
                    let set = self.set_named(name);
                    let new = fixtures::patched(&set.workload, patch);
                    set.write(new);
                }
                Action::ReplaceWorkload(w) => {
                    self.spec_writes.push(fixtures::json(w)["spec"].clone());
                    self.set_named(w.name()).write((**w).clone());
                }
                Action::CreateWorkload(w) => {
                    assert!(self.green.is_none(), "one green copy");
                    let mut green = Set::new((**w).clone(), "green-uid");
                    green.workload =
                        fixtures::patched(&green.workload, &json!({"metadata": {"generation": 1}}));
                    green.refresh_status();
                    self.green = Some(green);
                }
                Action::DeleteWorkload { name, .. } => {
                    assert_ne!(name, &self.target.name(), "the target is never deleted");
                    self.green = None;
                }
                Action::EvictPod { .. } if self.evictions_blocked => {}
                Action::EvictPod { name } | Action::DeletePod { name } => self.remove_pod(name),
                Action::SetServiceSelector { selector, .. } => {
                    self.service.spec.as_mut().unwrap().selector = Some(selector.clone());
                }
                Action::Event { .. } | Action::AddFinalizer | Action::RemoveFinalizer => {}
                other => panic!("a StatefulSet GitOps plan asked for {other:?}"),
            }
        }
        self.observe_serving();
    }

    /// The revisions the target's pods run, each once.
    fn revisions_running(&self) -> Vec<String> {
        let mut r: Vec<String> = self
            .target
            .pods
            .iter()
            .map(|p| p.revision.clone())
            .collect();
        r.sort();
        r.dedup();
        r
    }

    fn spec(&self) -> Value {
        self.target.doc()["spec"].clone()
    }
}

/// What a run of a plan ended with.
struct End {
    phase: Phase,
    message: String,
    events: Vec<String>,
    last: MaintenancePlan,
}

/// Runs `spec` on the model until the plan ends and its cleanup is done; `lose_status` says
/// at which turns the status write after the actions is lost (a crash between the two).
fn run_to_end_losing(m: &mut Model, spec: Value, lose_status: &dyn Fn(usize) -> bool) -> End {
    let mut p = plan(spec);
    let mut all_events = Vec::new();
    for turn in 0..600 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        all_events.extend(events(&d));
        m.apply(&d.actions);
        if !lose_status(turn) {
            p = with_status(snap, &d).plan;
        }
        m.pass();
        m.pass();
        m.clock += 1;
        let phase = d.status.phase.unwrap();
        let done = matches!(
            phase,
            Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected
        );
        if done && p.status.as_ref().and_then(|s| s.phase) == Some(phase) {
            m.settle();
            return End {
                phase,
                message: d.status.message.clone().unwrap_or_default(),
                events: all_events,
                last: p,
            };
        }
    }
    panic!("the plan did not end: {:?}", p.status);
}

fn run_to_end(m: &mut Model, spec: Value) -> End {
    run_to_end_losing(m, spec, &|_| false)
}

/// A GitOps plan for the StatefulSet: no update, no declared change (the rules read the
/// image tags of the current and the pending revision).
fn gitops_spec() -> Value {
    let mut spec = base_spec();
    spec["target"]["kind"] = json!("StatefulSet");
    spec
}

fn on_delete() -> Value {
    json!({"type": "OnDelete"})
}

fn partitioned(partition: i32) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition}})
}

/// The end every GitOps plan must reach: the spec as Git has it, no marks.
fn assert_as_git(m: &Model) {
    assert_eq!(m.spec(), m.git, "the StatefulSet's spec is Git's again");
    assert!(
        record::holder(&m.target.workload).is_none(),
        "marks removed"
    );
}

#[test]
fn under_on_delete_the_pods_move_to_the_pending_template_and_the_spec_is_never_written() {
    let mut m = Model::new(3, on_delete());
    let first = run(&m.snapshot(plan(gitops_spec())), 0);
    assert_eq!(first.status.flow, Some(Flow::PendingTemplate));
    assert_eq!(first.status.strategy, Some(Verdict::RollingRestart));
    // The rules read the running template from the current revision: the image tags say
    // de-28 -> de-29.
    let [change] = first.status.changes.as_slice() else {
        panic!("one inferred change: {:?}", first.status.changes);
    };
    assert_eq!(change.source, ChangeSource::Inferred);
    assert_eq!(change.change.kind, ChangeType::FixPack);

    let end = run_to_end(&mut m, gitops_spec());
    assert_eq!(end.phase, Phase::Succeeded, "{}", end.message);
    assert_eq!(m.replaced, [2, 1, 0], "highest ordinal first, each once");
    assert!(m.lowest_serving >= 2, "never more than one pod out");
    assert_eq!(m.revisions_running(), ["liferay-r1"]);
    assert!(m.spec_writes.is_empty(), "{:?}", m.spec_writes);
    assert_eq!(
        end.events.iter().filter(|e| *e == "PodEvicted").count(),
        3,
        "{:?}",
        end.events
    );
    assert_as_git(&m);
}

#[test]
fn behind_a_partition_it_is_lowered_one_step_at_a_time_and_put_back() {
    // Git's partition may be above the replicas: the first step goes to the highest pod.
    for git_partition in [3, 5] {
        let mut m = Model::new(3, partitioned(git_partition));
        let end = run_to_end(&mut m, gitops_spec());
        assert_eq!(end.phase, Phase::Succeeded, "{}", end.message);
        assert_eq!(m.replaced, [2, 1, 0]);
        assert!(m.lowest_serving >= 2);
        let partitions: Vec<Value> = m
            .spec_writes
            .iter()
            .map(|w| w["updateStrategy"]["rollingUpdate"]["partition"].clone())
            .collect();
        assert_eq!(
            partitions,
            [json!(2), json!(1), json!(0), json!(git_partition)],
            "lowered one step after each replacement, then Git's value"
        );
        assert_as_git(&m);
    }
}

#[test]
fn a_replacement_that_is_never_ready_brings_the_replaced_pods_back_to_the_current_revision() {
    for strategy in [on_delete(), partitioned(3)] {
        let mut m = Model::new(3, strategy.clone());
        m.broken.push(NEW.into());
        let mut spec = gitops_spec();
        spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
        let end = run_to_end(&mut m, spec);
        assert_eq!(end.phase, Phase::Failed, "{strategy}: {}", end.message);
        assert!(
            end.message.contains("liferay-2 was not Ready within 20s")
                && end.message.contains("back to the current revision"),
            "{}",
            end.message
        );
        assert!(end.events.contains(&"RollingBack".to_string()));
        assert_eq!(m.revisions_running(), ["liferay-r0"], "{strategy}");
        assert!(m.lowest_serving >= 2, "{strategy}: {}", m.lowest_serving);
        // While going back, deleted pods came back at the current revision: rolling updates
        // held at the replicas. Then Git's strategy again.
        assert!(
            m.spec_writes
                .iter()
                .any(|w| w["updateStrategy"] == partitioned(3)),
            "{strategy}: {:?}",
            m.spec_writes
        );
        assert_as_git(&m);
    }
}

#[test]
fn without_rollback_the_plan_halts_and_says_what_is_left() {
    let mut m = Model::new(3, partitioned(3));
    m.broken.push(NEW.into());
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20, "rollbackOnFailure": false});
    let end = run_to_end(&mut m, spec);
    assert_eq!(end.phase, Phase::Failed, "{}", end.message);
    assert!(
        end.message.contains(
            "pods on the pending template: liferay-2; on the current revision: liferay-0, liferay-1"
        ),
        "{}",
        end.message
    );
    // Git's partition is back: nothing moves further.
    assert_as_git(&m);
    m.settle();
    assert_eq!(m.revisions_running(), ["liferay-r0", "liferay-r1"]);
}

#[test]
fn an_abort_mid_way_brings_the_replaced_pods_back() {
    let mut m = Model::new(3, on_delete());
    let mut p = plan(gitops_spec());
    // Until one pod runs the pending template.
    for _ in 0..50 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        m.pass();
        m.pass();
        m.clock += 1;
        if m.revisions_running().len() == 2 {
            break;
        }
    }
    assert_eq!(m.revisions_running().len(), 2);
    let mut spec = gitops_spec();
    spec["abort"] = json!(true);
    let status = p.status.clone();
    let mut aborted = plan(spec);
    aborted.status = status;
    let mut p = aborted;
    for _ in 0..100 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        m.pass();
        m.pass();
        m.clock += 1;
        if d.status.phase == Some(Phase::Aborted) && d.status.step.as_deref() == Some("Done") {
            break;
        }
    }
    let status = p.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Aborted), "{:?}", status.message);
    assert_eq!(m.revisions_running(), ["liferay-r0"]);
    assert!(m.lowest_serving >= 2);
    assert_as_git(&m);
}

#[test]
fn a_stateful_set_half_way_goes_on_from_where_it_is_and_going_back_leaves_its_own_pods() {
    // Someone replaced pod 2 by hand before the plan.
    let mut m = Model::new(3, on_delete());
    m.remove_pod("liferay-2");
    m.settle();
    m.reset_watch();
    assert_eq!(m.revisions_running(), ["liferay-r0", "liferay-r1"]);
    let end = run_to_end(&mut m, gitops_spec());
    assert_eq!(end.phase, Phase::Succeeded, "{}", end.message);
    assert_eq!(m.replaced, [1, 0], "pod 2 already ran the pending template");

    let mut m = Model::new(3, on_delete());
    m.remove_pod("liferay-2");
    m.settle();
    m.reset_watch();
    m.broken.push(NEW.into());
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
    let end = run_to_end(&mut m, spec);
    assert_eq!(end.phase, Phase::Failed, "{}", end.message);
    // Pod 2 was on the pending template before the plan, and is so again.
    let on_pending: Vec<i32> = m
        .target
        .pods
        .iter()
        .filter(|p| p.revision == "liferay-r1")
        .map(|p| p.ordinal)
        .collect();
    assert_eq!(on_pending, [2]);
    assert_as_git(&m);
}

#[test]
fn pods_on_a_third_revision_or_an_update_beside_the_pending_template_are_rejected() {
    let mut m = Model::new(3, on_delete());
    m.remove_pod("liferay-2");
    m.settle();
    m.commit(OTHER);
    let d = run(&m.snapshot(plan(gitops_spec())), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    let message = d.status.message.unwrap();
    assert!(message.contains("finish or undo that rollout"), "{message}");

    // Every pod on the pending template, one not Ready: nothing to roll out.
    let mut m = Model::new(3, on_delete());
    m.broken.push(NEW.into());
    for pod in ["liferay-2", "liferay-1", "liferay-0"] {
        m.remove_pod(pod);
        m.settle();
    }
    let d = run(&m.snapshot(plan(gitops_spec())), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    let message = d.status.message.unwrap();
    assert!(message.contains("nothing to roll out"), "{message}");

    let m = Model::new(3, on_delete());
    let mut spec = gitops_spec();
    spec["update"] = json!({"image": OTHER});
    let d = run(&m.snapshot(plan(spec)), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    let message = d.status.message.unwrap();
    assert!(
        message.contains("two sources of truth")
            && message.contains("holds a pending template back under updateStrategy OnDelete"),
        "{message}"
    );
    assert!(
        d.actions.iter().all(|a| matches!(a, Action::Event { .. })),
        "nothing touched: {:?}",
        d.actions
    );
}

#[test]
fn a_full_restart_stops_every_old_pod_before_a_new_one_starts() {
    for strategy in [on_delete(), partitioned(3)] {
        let mut m = Model::new(3, strategy.clone());
        let end = run_to_end(&mut m, full_restart_spec());
        assert_eq!(end.phase, Phase::Succeeded, "{strategy}: {}", end.message);
        assert!(
            !m.mixed_running,
            "{strategy}: old and new never ran together"
        );
        assert_eq!(m.lowest_serving, 0, "the downtime the plan allowed");
        assert_eq!(m.revisions_running(), ["liferay-r1"]);
        let downtime = end.last.status.unwrap().downtime.expect("downtime");
        assert!(
            downtime.ends_with('s') && downtime != "unknown",
            "{downtime}"
        );
        assert_as_git(&m);
    }
}

fn full_restart_spec() -> Value {
    let mut spec = gitops_spec();
    spec["strategy"] = json!("FullRestart");
    spec["allowDowntime"] = json!(true);
    spec
}

#[test]
fn a_full_restart_whose_new_pods_fail_says_there_is_no_way_back() {
    // Once every pod has stopped, the controller takes the pending template as its current
    // revision (as Kubernetes does at zero replicas): nothing is left to go back to.
    let mut m = Model::new(3, partitioned(3));
    m.broken.push(NEW.into());
    let mut spec = full_restart_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
    let end = run_to_end(&mut m, spec);
    assert_eq!(end.phase, Phase::Failed, "{}", end.message);
    assert!(
        end.message.contains("liferay-0 was not Ready within 20s")
            && end.message.contains("revert the template in Git"),
        "{}",
        end.message
    );
    assert!(!m.mixed_running);
    assert_eq!(m.revisions_running(), ["liferay-r1"]);
    assert_as_git(&m);
}

#[test]
fn a_full_restart_aborted_while_pods_stop_brings_them_back_at_the_current_revision() {
    for strategy in [on_delete(), partitioned(3)] {
        let mut m = Model::new(3, strategy.clone());
        let first = run(&m.snapshot(plan(full_restart_spec())), m.clock);
        m.apply(&first.actions);
        m.pass(); // pod 2 stops; 0 and 1 still run the current revision
        m.clock += 1;
        let mut spec = full_restart_spec();
        spec["abort"] = json!(true);
        let mut p = plan(spec);
        p.status = Some(first.status.clone());
        let end = {
            let mut end = None;
            for _ in 0..100 {
                let snap = m.snapshot(p.clone());
                let d = run(&snap, m.clock);
                m.apply(&d.actions);
                p = with_status(snap, &d).plan;
                m.pass();
                m.pass();
                m.clock += 1;
                if d.status.step.as_deref() == Some("Done") {
                    end = d.status.phase;
                    break;
                }
            }
            end
        };
        assert_eq!(end, Some(Phase::Aborted), "{strategy}: {:?}", p.status);
        assert_eq!(m.revisions_running(), ["liferay-r0"], "{strategy}");
        assert_eq!(m.target.pods.len(), 3);
        assert!(!m.mixed_running, "{strategy}");
        assert_as_git(&m);
    }
}

fn blue_green_spec() -> Value {
    let mut spec = gitops_spec();
    spec["strategy"] = json!("BlueGreen");
    spec["blueGreen"] = json!({"scaleDownDelaySeconds": 0});
    spec
}

#[test]
fn blue_green_serves_green_while_the_targets_pods_move_and_ends_as_git_has_it() {
    for strategy in [on_delete(), partitioned(3)] {
        let mut m = Model::new(2, strategy.clone());
        let first = run(&m.snapshot(plan(blue_green_spec())), 0);
        let pinned = first.actions.iter().find_map(|a| match a {
            Action::SetServiceSelector { selector, .. } => Some(selector.clone()),
            _ => None,
        });
        assert_eq!(
            pinned.unwrap().get("controller-revision-hash"),
            Some(&"liferay-r0".to_string()),
            "the Service is pinned to the current revision's pods"
        );
        let green = first.actions.iter().find_map(|a| match a {
            Action::CreateWorkload(w) => Some(fixtures::json(w)),
            _ => None,
        });
        assert_eq!(
            green.unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
            NEW,
            "green runs the pending template"
        );
        let end = run_to_end(&mut m, blue_green_spec());
        assert_eq!(end.phase, Phase::Succeeded, "{strategy}: {}", end.message);
        assert!(
            !m.mixed_serving,
            "{strategy}: one template served at a time"
        );
        assert!(
            m.lowest_serving >= 1,
            "{strategy}: never without a ready endpoint"
        );
        assert!(m.green.is_none(), "green removed");
        assert_eq!(m.revisions_running(), ["liferay-r1"]);
        assert_eq!(
            m.service.spec.as_ref().unwrap().selector,
            Some(BTreeMap::from([("app".into(), "liferay".into())])),
            "the Service's own selector is back"
        );
        assert_as_git(&m);
    }
}

#[test]
fn blue_green_whose_target_fails_to_move_goes_back_to_the_current_revision() {
    let mut m = Model::new(2, on_delete());
    let mut spec = blue_green_spec();
    spec["blueGreen"]["readyTimeoutSeconds"] = json!(20);
    let mut p = plan(spec.clone());
    // Green is fine; the target's own pods of the pending template break once green serves.
    for _ in 0..200 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        if d.status.step.as_deref() == Some("UpdatingBlue") {
            m.broken.push(NEW.into());
        }
        m.pass();
        m.pass();
        m.clock += 1;
        if matches!(
            d.status.phase,
            Some(Phase::Failed | Phase::Succeeded | Phase::Aborted)
        ) && d.status.step.as_deref() == Some("Done")
        {
            break;
        }
    }
    let status = p.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed), "{:?}", status.message);
    assert!(m.lowest_serving >= 1);
    assert!(!m.mixed_serving);
    assert!(m.green.is_none());
    assert_eq!(m.revisions_running(), ["liferay-r0"]);
    assert_as_git(&m);
}

#[test]
fn a_crash_between_the_actions_and_the_status_write_resumes_from_the_targets_record() {
    // The status write is lost once, at every turn in turn, of a plan that goes forward then
    // back: the record on the StatefulSet, written with each change, carries the plan on.
    let mut turns = 0;
    let mut probe = Model::new(3, partitioned(3));
    probe.broken.push(NEW.into());
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
    let counted = std::cell::Cell::new(0);
    run_to_end_losing(&mut probe, spec.clone(), &|turn| {
        counted.set(counted.get().max(turn));
        false
    });
    turns += counted.get();
    for lost in 0..turns {
        let mut m = Model::new(3, partitioned(3));
        m.broken.push(NEW.into());
        let end = run_to_end_losing(&mut m, spec.clone(), &|turn| turn == lost);
        assert_eq!(end.phase, Phase::Failed, "lost at {lost}: {}", end.message);
        assert_eq!(m.revisions_running(), ["liferay-r0"], "lost at {lost}");
        assert!(m.lowest_serving >= 2, "lost at {lost}");
        assert_as_git(&m);
    }
}

#[test]
fn an_eviction_a_disruption_budget_refuses_for_too_long_fails_the_plan_safely() {
    let mut m = Model::new(3, on_delete());
    m.evictions_blocked = true;
    let mut spec = gitops_spec();
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
    let end = run_to_end(&mut m, spec);
    assert_eq!(end.phase, Phase::Failed, "{}", end.message);
    assert!(
        end.message.contains("could not be evicted within 20s"),
        "{}",
        end.message
    );
    assert!(m.replaced.is_empty(), "no pod was replaced");
    assert_eq!(m.revisions_running(), ["liferay-r0"]);
    assert_as_git(&m);
}

#[test]
fn blue_green_aborted_once_the_target_has_moved_on_settles_on_it_and_says_so() {
    let mut m = Model::new(2, on_delete());
    let mut spec = blue_green_spec();
    spec["blueGreen"]["scaleDownDelaySeconds"] = json!(5);
    let mut p = plan(spec.clone());
    let mut aborted = false;
    for _ in 0..200 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        if !aborted && d.status.step.as_deref() == Some("SwitchingBack") {
            // The target runs the pending template, which its controller made current.
            assert_eq!(m.revisions_running(), ["liferay-r1"]);
            p.spec.abort = true;
            aborted = true;
        }
        m.pass();
        m.pass();
        m.clock += 1;
        if d.status.step.as_deref() == Some("Done") {
            break;
        }
    }
    assert!(aborted, "the plan reached the switch back");
    let status = p.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Aborted), "{:?}", status.message);
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .contains("could not go back"),
        "{:?}",
        status.message
    );
    assert!(m.lowest_serving >= 1);
    assert!(!m.mixed_serving);
    assert!(m.green.is_none());
    assert_eq!(m.revisions_running(), ["liferay-r1"]);
    assert_as_git(&m);
}
