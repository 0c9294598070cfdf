//! StatefulSet targets on a small in-memory model of its controller: pods `<name>-<ordinal>`
//! labelled with their revision, a rolling update that recreates the highest pod at or above
//! the partition that is not on the update revision (once every pod is Ready), `OnDelete`
//! that only recreates pods someone removed. Each decision's actions are applied to the model
//! and the next step is taken, so a whole plan runs without a server, and the model is
//! checked at every turn: never more than one pod out, pods replaced highest ordinal first.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::tests::{at, base_spec, events, plan, rolling_safe_build, run, service, with_status};
use crate::api::{Phase, Verdict};
use crate::operator::action::Action;
use crate::operator::snapshot::Snapshot;
use crate::operator::workload::saved as record;
use crate::operator::workload::{Workload, fixtures};

const UID: &str = "sts-uid";

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "liferay"}},
           "spec": {"containers": [{"name": "liferay", "image": image}]}})
}

/// A StatefulSet and its pods, as its controller keeps them.
struct Model {
    set: Workload,
    /// Pod templates by revision, in order of appearance.
    revisions: Vec<(String, Value)>,
    /// (name, revision, created, Ready) of each pod.
    pods: Vec<(String, String, i64, bool)>,
    /// Images whose pods never become Ready.
    broken: Vec<String>,
    clock: i64,
    /// Ordinals in the order their pods were replaced.
    replaced: Vec<i32>,
    /// Fewest Ready pods seen.
    lowest: usize,
}

impl Model {
    fn new(replicas: i32, strategy: Value) -> Model {
        let set = fixtures::stateful_set(json!({
            "metadata": {"name": "liferay", "namespace": "portal", "uid": UID,
                         "generation": 1, "resourceVersion": "10"},
            "spec": {"replicas": replicas, "serviceName": "liferay-headless",
                     "selector": {"matchLabels": {"app": "liferay"}},
                     "updateStrategy": strategy,
                     "template": template("dxp:old")},
        }));
        let mut m = Model {
            set,
            revisions: Vec::new(),
            pods: Vec::new(),
            broken: Vec::new(),
            clock: -100,
            replaced: Vec::new(),
            lowest: usize::MAX,
        };
        let first = m.revision_now();
        m.pods = (0..replicas)
            .map(|i| (format!("liferay-{i}"), first.clone(), -100, true))
            .collect();
        m.clock = 0;
        m.refresh_status();
        m
    }

    fn spec(&self) -> Value {
        fixtures::json(&self.set)["spec"].clone()
    }

    /// The revision of the set's template, made on first sight.
    fn revision_now(&mut self) -> String {
        let t = self.spec()["template"].clone();
        if let Some((name, _)) = self.revisions.iter().find(|(_, v)| *v == t) {
            return name.clone();
        }
        let name = format!("liferay-r{}", self.revisions.len());
        self.revisions.push((name.clone(), t));
        name
    }

    fn image_of(&self, revision: &str) -> String {
        let t = &self
            .revisions
            .iter()
            .find(|(n, _)| n == revision)
            .unwrap()
            .1;
        t["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn on_delete(&self) -> bool {
        self.spec()["updateStrategy"]["type"] == "OnDelete"
    }

    fn partition(&self) -> i64 {
        self.spec()["updateStrategy"]["rollingUpdate"]["partition"]
            .as_i64()
            .unwrap_or(0)
    }

    fn replicas(&self) -> i32 {
        self.set.replicas()
    }

    fn make(&mut self, ordinal: i32, revision: String) {
        let ready = !self.broken.contains(&self.image_of(&revision));
        let name = format!("liferay-{ordinal}");
        self.pods.retain(|p| p.0 != name);
        self.pods.push((name, revision, self.clock, ready));
    }

    /// One pass of the controller.
    fn reconcile(&mut self) {
        let update = self.revision_now();
        let current = self.current_revision();
        // Missing pods come back: at the update revision at or above the partition.
        for ordinal in 0..self.replicas() {
            let name = format!("liferay-{ordinal}");
            if !self.pods.iter().any(|p| p.0 == name) {
                let revision = if self.on_delete() || i64::from(ordinal) >= self.partition() {
                    update.clone()
                } else {
                    current.clone()
                };
                self.make(ordinal, revision);
                return;
            }
        }
        if self.on_delete() || self.pods.iter().any(|p| !p.3) {
            return;
        }
        // Rolling update: the highest stale pod at or above the partition, one at a time.
        let stale = (0..self.replicas()).rev().find(|o| {
            i64::from(*o) >= self.partition()
                && self
                    .pods
                    .iter()
                    .any(|p| p.0 == format!("liferay-{o}") && p.1 != update)
        });
        if let Some(ordinal) = stale {
            self.replaced.push(ordinal);
            self.make(ordinal, update);
        }
    }

    fn current_revision(&self) -> String {
        fixtures::json(&self.set)["status"]["currentRevision"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.revisions[0].0.clone())
    }

    fn refresh_status(&mut self) {
        let update = self.revision_now();
        let updated = self.pods.iter().filter(|p| p.1 == update).count();
        let ready = self.pods.iter().filter(|p| p.3).count();
        let all = self.replicas() as usize;
        let current = if !self.on_delete() && updated == all && ready == all {
            update.clone()
        } else {
            self.current_revision()
        };
        let generation = fixtures::json(&self.set)["metadata"]["generation"].clone();
        self.set = fixtures::patched(
            &self.set,
            &json!({"status": {"observedGeneration": generation, "replicas": self.pods.len(),
                "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": updated,
                "currentRevision": current, "updateRevision": update}}),
        );
    }

    fn pod(&self, (name, revision, created, ready): &(String, String, i64, bool)) -> Pod {
        let condition = if *ready {
            json!({"type": "Ready", "status": "True", "lastTransitionTime": at(*created).to_string()})
        } else {
            json!({"type": "Ready", "status": "False"})
        };
        serde_json::from_value(json!({
            // Each incarnation of a pod has a UID of its own, as on a server.
            "metadata": {"name": name, "namespace": "portal", "uid": format!("{name}@{created}"),
                "labels": {"app": "liferay", "controller-revision-hash": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "name": "liferay", "uid": UID, "controller": true}],
                "creationTimestamp": at(*created).to_string()},
            "status": {"conditions": [condition]}
        }))
        .unwrap()
    }

    fn snapshot(&self, plan: crate::api::MaintenancePlan) -> Snapshot {
        Snapshot {
            plan,
            peers: vec![],
            target: Some(self.set.clone()),
            replica_sets: vec![],
            handover_sets: vec![],
            running_template: None,
            pods: self.pods.iter().map(|p| self.pod(p)).collect(),
            service: Some(service()),
            endpoint_slices: vec![],
            green: None,
            preview: None,
            peer_services: Vec::new(),
            twins: Vec::new(),
            service_names: vec!["liferay".into(), "liferay-headless".into()],
            jobs: Vec::new(),
            probes: Vec::new(),
        }
    }

    fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::ReplaceWorkload(w) => {
                    let status = fixtures::json(&self.set)["status"].clone();
                    self.set = fixtures::patched(w, &json!({"status": status}));
                }
                Action::PatchWorkload { patch, .. } => {
                    self.set = fixtures::patched(&self.set, patch);
                }
                Action::EvictPod { name } | Action::DeletePod { name } => {
                    let ordinal: i32 = name.rsplit_once('-').unwrap().1.parse().unwrap();
                    self.replaced.push(ordinal);
                    self.pods.retain(|p| &p.0 != name);
                }
                Action::Event { .. } | Action::AddFinalizer | Action::RemoveFinalizer => {}
                other => panic!("a StatefulSet plan asked for {other:?}"),
            }
        }
    }

    fn revisions_running(&self) -> Vec<String> {
        let mut r: Vec<String> = self.pods.iter().map(|p| p.1.clone()).collect();
        r.sort();
        r.dedup();
        r
    }
}

/// Runs `spec` on the model until the plan ends; returns the final phase and all events.
fn run_to_end(m: &mut Model, spec: Value) -> (Phase, Vec<String>, String) {
    let mut p = plan(spec);
    let mut all_events = Vec::new();
    for _ in 0..400 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        all_events.extend(events(&d));
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        let ready = m.pods.iter().filter(|p| p.3).count();
        m.lowest = m.lowest.min(ready);
        m.reconcile();
        m.refresh_status();
        m.clock += 1;
        if matches!(
            d.status.phase,
            Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
        ) {
            let message = d.status.message.clone().unwrap_or_default();
            return (d.status.phase.unwrap(), all_events, message);
        }
    }
    panic!("the plan did not end: {:?}", p.status);
}

fn rolling_update() -> Value {
    json!({"type": "RollingUpdate"})
}

fn update_spec(image: &str) -> Value {
    let mut spec = base_spec();
    spec["target"]["kind"] = json!("StatefulSet");
    spec["changes"] = rolling_safe_build();
    spec["update"] = json!({"image": image});
    spec
}

#[test]
fn a_template_change_is_paced_with_the_partition_highest_ordinal_first() {
    let mut m = Model::new(3, rolling_update());
    let first = run(&m.snapshot(plan(update_spec("dxp:new"))), 0);
    assert_eq!(first.status.strategy, Some(Verdict::RollingRestart));
    let Some(Action::ReplaceWorkload(set)) = first
        .actions
        .iter()
        .find(|a| matches!(a, Action::ReplaceWorkload(_)))
    else {
        panic!("{:?}", first.actions);
    };
    // One write: the new template held behind a partition above every pod.
    let spec = &fixtures::json(set)["spec"];
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["image"],
        "dxp:new"
    );
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}})
    );
    assert_eq!(
        spec["minReadySeconds"], 0,
        "the plan's minReadySeconds, at least"
    );
    let saved = record::saved_for(set, "p1").unwrap();
    assert_eq!(
        saved.update_strategy,
        Some(serde_json::from_value(rolling_update()).unwrap())
    );

    let (phase, events, message) = run_to_end(&mut m, update_spec("dxp:new"));
    assert_eq!(phase, Phase::Succeeded, "{message}");
    assert_eq!(m.replaced, [2, 1, 0], "highest ordinal first, each once");
    assert!(
        m.lowest >= 2,
        "never more than one pod out; saw {}",
        m.lowest
    );
    assert_eq!(m.revisions_running(), ["liferay-r1"]);
    assert_eq!(
        events.iter().filter(|e| *e == "PodReplaced").count(),
        3,
        "{events:?}"
    );
    // The original update strategy is back and the marks are gone.
    assert_eq!(
        m.spec()["updateStrategy"],
        json!({"type": "RollingUpdate"}),
        "the partition is gone"
    );
    assert_eq!(
        m.spec().get("minReadySeconds"),
        None,
        "its own minReadySeconds (none) is back"
    );
    assert!(record::holder(&m.set).is_none());
}

#[test]
fn min_ready_seconds_holds_the_partition_until_the_replacement_is_available() {
    let mut m = Model::new(2, rolling_update());
    let mut spec = update_spec("dxp:new");
    spec["rollingRestart"] = json!({"minReadySeconds": 10});
    let mut p = plan(spec);
    let mut partitions = Vec::new();
    for _ in 0..60 {
        let snap = m.snapshot(p.clone());
        let d = run(&snap, m.clock);
        for a in &d.actions {
            if let Action::PatchWorkload { patch, .. } = a
                && let Some(n) =
                    patch["spec"]["updateStrategy"]["rollingUpdate"]["partition"].as_i64()
            {
                partitions.push((m.clock, n));
            }
        }
        m.apply(&d.actions);
        p = with_status(snap, &d).plan;
        m.reconcile();
        m.refresh_status();
        m.clock += 1;
    }
    // Partition 2 -> 1 at once; 1 -> 0 only 10s after pod 1 came back Ready.
    assert_eq!(partitions.len(), 2, "{partitions:?}");
    let (first, second) = (partitions[0], partitions[1]);
    assert_eq!((first.1, second.1), (1, 0));
    assert!(
        second.0 - first.0 >= 10,
        "the next pod waited for minReadySeconds: {partitions:?}"
    );
}

#[test]
fn on_delete_pods_are_evicted_by_the_operator_highest_ordinal_first() {
    let mut m = Model::new(3, json!({"type": "OnDelete"}));
    let (phase, events, message) = run_to_end(&mut m, update_spec("dxp:new"));
    assert_eq!(phase, Phase::Succeeded, "{message}");
    assert_eq!(m.replaced, [2, 1, 0]);
    assert!(
        m.lowest >= 2,
        "never more than one pod out; saw {}",
        m.lowest
    );
    assert_eq!(m.revisions_running(), ["liferay-r1"]);
    assert_eq!(
        events.iter().filter(|e| *e == "PodEvicted").count(),
        3,
        "{events:?}"
    );
    assert_eq!(m.spec()["updateStrategy"]["type"], "OnDelete");
}

#[test]
fn a_replacement_that_never_gets_ready_rolls_back_the_same_way() {
    let mut m = Model::new(3, rolling_update());
    m.broken.push("dxp:broken".into());
    let mut spec = update_spec("dxp:broken");
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20});
    let (phase, events, message) = run_to_end(&mut m, spec);
    assert_eq!(phase, Phase::Failed, "{message}");
    assert!(
        message.contains("liferay-2 was not Ready within 20s"),
        "{message}"
    );
    assert!(events.contains(&"RollingBack".to_string()), "{events:?}");
    // Only pod 2 was touched, and it is back on the original revision; the rest never moved.
    assert_eq!(m.revisions_running(), ["liferay-r0"]);
    assert!(m.replaced.iter().all(|o| *o == 2), "{:?}", m.replaced);
    assert!(
        m.lowest >= 2,
        "never more than one pod out; saw {}",
        m.lowest
    );
    assert_eq!(m.spec()["updateStrategy"], json!({"type": "RollingUpdate"}));
    assert_eq!(
        m.spec()["template"]["spec"]["containers"][0]["image"],
        "dxp:old"
    );
}

#[test]
fn without_rollback_a_late_replacement_holds_the_partition() {
    let mut m = Model::new(3, rolling_update());
    m.broken.push("dxp:broken".into());
    let mut spec = update_spec("dxp:broken");
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 20, "rollbackOnFailure": false});
    let (phase, _, message) = run_to_end(&mut m, spec);
    assert_eq!(phase, Phase::Failed, "{message}");
    assert!(message.contains("held where it stands"), "{message}");
    // Halted: the partition stays where the rollout stopped; pods 0 and 1 never moved.
    assert_eq!(m.partition(), 2);
    let old: Vec<&str> = m
        .pods
        .iter()
        .filter(|p| p.1 == "liferay-r0")
        .map(|p| p.0.as_str())
        .collect();
    assert_eq!(old.len(), 2, "{old:?}");
}

#[test]
fn a_plain_restart_evicts_one_pod_at_a_time_highest_ordinal_first_without_a_surge_pod() {
    let mut m = Model::new(3, rolling_update());
    let mut spec = base_spec();
    spec["target"]["kind"] = json!("StatefulSet");
    let (phase, events, message) = run_to_end(&mut m, spec);
    assert_eq!(phase, Phase::Succeeded, "{message}");
    assert_eq!(m.replaced, [2, 1, 0]);
    assert!(
        m.lowest >= 2,
        "never more than one pod out; saw {}",
        m.lowest
    );
    assert!(m.pods.iter().all(|p| p.2 >= 0), "every pod restarted");
    assert_eq!(
        events.iter().filter(|e| *e == "PodEvicted").count(),
        3,
        "{events:?}"
    );
    // The template and the strategy were never written.
    assert_eq!(m.revisions.len(), 1);
    assert_eq!(m.spec()["updateStrategy"], rolling_update());
}

#[test]
fn a_single_replica_goes_blue_green_to_a_green_statefulset_whose_claims_go_with_it() {
    let m = Model::new(1, rolling_update());
    let mut spec = base_spec();
    spec["target"]["kind"] = json!("StatefulSet");
    let d = run(&m.snapshot(plan(spec.clone())), 0);
    assert_eq!(d.status.strategy, Some(Verdict::BlueGreen));
    let Some(Action::CreateWorkload(green)) = d
        .actions
        .iter()
        .find(|a| matches!(a, Action::CreateWorkload(_)))
    else {
        panic!("{:?}", d.actions);
    };
    let green = fixtures::json(green);
    assert_eq!(green["kind"], "StatefulSet");
    assert_eq!(green["metadata"]["name"], "liferay-green");
    assert_eq!(green["spec"]["serviceName"], "liferay-headless-green");
    assert_eq!(
        green["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Delete", "whenScaled": "Delete"})
    );
    assert_eq!(
        green["spec"]["selector"]["matchLabels"]["cutover.dev/copy"],
        "green"
    );
    // The Service is pinned to blue's revision.
    let pinned = d.actions.iter().find_map(|a| match a {
        Action::SetServiceSelector { selector, .. } => Some(selector.clone()),
        _ => None,
    });
    assert_eq!(
        pinned
            .unwrap()
            .get("controller-revision-hash")
            .map(String::as_str),
        Some("liferay-r0")
    );
    // An explicit RollingRestart of the single replica is rejected, saying why.
    spec["strategy"] = json!("RollingRestart");
    let d = run(&m.snapshot(plan(spec)), 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    assert!(
        d.status
            .message
            .as_deref()
            .unwrap()
            .contains("cannot surge"),
        "{:?}",
        d.status.message
    );
}

#[test]
fn a_stateful_set_whose_service_name_does_not_exist_is_rejected_touching_nothing() {
    let m = Model::new(3, rolling_update());
    let mut snap = m.snapshot(plan(update_spec("liferay/dxp:7.0.10-de-29")));
    snap.service_names = vec!["liferay".into()];
    let d = run(&snap, 0);
    assert_eq!(d.status.phase, Some(Phase::Rejected));
    let message = d.status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.serviceName names service liferay-headless, which does not exist")
            && message.ends_with("nothing was touched"),
        "{message}"
    );
    assert!(
        d.actions
            .iter()
            .all(|a| matches!(a, Action::Event { .. } | Action::AddFinalizer)),
        "{:?}",
        d.actions
    );
    // With the Service there, the same plan starts.
    snap.service_names.push("liferay-headless".into());
    assert_eq!(run(&snap, 0).status.phase, Some(Phase::Progressing));
}
