//! What the operator keeps on the target workload while a plan runs: which plan holds it
//! (`cutover.dev/plan`, the lock) and the fields it changed with their original values
//! (`cutover.dev/saved`, a JSON record with a schema `version`). Written in the same request
//! as the change itself, so a crash can never separate a change from the record of how to
//! undo it. A record that cannot be read (not JSON, not this shape, a newer schema) is an
//! error of its own, never taken for no record. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentStrategy, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Workload;

pub const PLAN_ANNOTATION: &str = "cutover.dev/plan";
pub const SAVED_ANNOTATION: &str = "cutover.dev/saved";

/// The schema version of the record this cutover writes, and the newest it reads. A record
/// without one was written before records had versions, in the shape of version 1.
pub const RECORD_VERSION: u64 = 1;

/// Why the record on a target cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the annotation {SAVED_ANNOTATION} cannot be read: {0}")]
    Malformed(String),
    #[error(
        "the annotation {SAVED_ANNOTATION} has schema version {0}, newer than this cutover reads (up to {RECORD_VERSION}): a newer cutover wrote it"
    )]
    Newer(u64),
}

/// Which way a technique is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Direction {
    /// Towards the new version.
    #[default]
    Forward,
    /// Back to the original version (failure or abort).
    Back,
}

/// The technique holding the target, as far as the target is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The workload's controller rolls out a new template, paced by the operator.
    Rollout,
    /// Same template: pods are evicted one at a time (behind a surge pod where the workload
    /// can have one).
    Restart,
    /// Scale to zero, change, scale back.
    FullRestart,
    /// GitOps flow, RollingRestart or FullRestart: the pods move from the running ReplicaSet
    /// to the pending template's while the target stays paused (see [`Handover`]).
    PendingRollout,
    /// A green copy takes the traffic while the target is brought to the new template.
    BlueGreen,
    /// GitOps flow, RollingRestart: a workload that holds its pending template back itself
    /// (see [`Held`]) has its pods replaced one at a time, its template never written.
    HeldRollout,
    /// GitOps flow, FullRestart: such a workload scaled to zero and back, its pods then made
    /// from the pending template.
    HeldFullRestart,
}

/// The original values of what a plan changes on its target, and where it is going.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// When the plan first acted on the target.
    pub started_at: Option<Timestamp>,
    /// The rollout was stopped and held where it stands; leave it so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub halted: bool,
    /// FullRestart: when the last pod was gone and the change was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_down_at: Option<Timestamp>,
    #[serde(default)]
    pub direction: Direction,
    /// Why the plan is going back, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// A Deployment's own strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// A StatefulSet's own update strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<StatefulSetUpdateStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Plain restart: the UIDs of the pods running when the plan began, the ones to restart.
    /// A pod is restarted once no live pod carries its UID: a server fact, where comparing the
    /// operator's clock with creation timestamps (whole seconds on a real API server) would
    /// take a pod recreated under the same name in the same second for an old one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_pods: Vec<String>,
    /// BlueGreen: the Service's selector before the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// BlueGreen: the preview Service's selector before the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_selector: Option<BTreeMap<String, String>>,
    /// BlueGreen: the selectors of the other Services that selected the target's pods (by
    /// name) before they were pinned to blue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peer_selectors: BTreeMap<String, BTreeMap<String, String>>,
    /// BlueGreen: the revision (`pod-template-hash`, `controller-revision-hash`) of the pods
    /// serving before the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_hash: Option<String>,
    /// BlueGreen: when the Service was switched to green.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Timestamp>,
    /// BlueGreen: when the Service was switched back to the target's own pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_back_at: Option<Timestamp>,
    /// BlueGreen: the green copy is being removed; the plan then ends with this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<crate::api::Phase>,
    /// GitOps flow: the ReplicaSets the pods move between while the target stays paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// GitOps flow: the revisions the pods move between while the target holds its pending
    /// template back itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// GitOps flow for a target that holds its pending template back itself (a StatefulSet under
/// `updateStrategy: OnDelete`, or with a partition at its replicas): its controller has the
/// pending template as its update revision and replaces a pod only when told to. cutover
/// never writes the template; any other field it changes on the way (the partition, the
/// update strategy while going back, the replicas of a FullRestart) is in the record's own
/// fields, which hold Git's values from the first request on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The revision the pods ran when the plan started (`status.currentRevision`).
    pub current: String,
    /// The revision of the pending template (`status.updateRevision`).
    pub update: String,
    /// The current revision's pod template: the running template the rules read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_template: Option<PodTemplateSpec>,
    /// Pods that already ran the pending template when the plan started: going back leaves
    /// them so, as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updated_before: Vec<String>,
    /// BlueGreen: the target's pods have started moving (only once green serves).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moving: bool,
}

/// GitOps flow: the target's ReplicaSets are taken out of its controller's hands (relabelled
/// so that its selector no longer matches them) while cutover moves the pods from the old set
/// to the set of the pending template, and handed back at the end. The Deployment itself is
/// never changed, so a sync tool re-applying it has nothing to revert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    /// The ReplicaSet that ran when the plan started, and its `pod-template-hash`.
    pub old_set: String,
    pub old_hash: String,
    /// The ReplicaSet of the pending template, and its `pod-template-hash`.
    pub new_set: String,
    pub new_hash: String,
    /// cutover created the new set (rather than finding an earlier revision's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created: bool,
    /// The target's replica count.
    pub replicas: i32,
    /// Every ReplicaSet the target owned at the start, with its labels then.
    pub released: BTreeMap<String, BTreeMap<String, String>>,
    /// FullRestart: every old pod stops before a new one starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_first: bool,
    /// BlueGreen: the target's pods have started moving (only once green serves).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moving: bool,
    /// The pods have moved; the sets are being handed back to the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub returning: bool,
    /// The way back stalled: the sets are handed back as they stand, each with its pods
    /// (none deleted), and the plan fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stalled: bool,
}

/// The plan holding the target, per its annotation.
pub fn holder(target: &Workload) -> Option<&str> {
    annotations(target)
        .and_then(|a| a.get(PLAN_ANNOTATION))
        .map(String::as_str)
}

/// The record of `plan` on the target: `Ok(None)` when the target is not marked with the plan
/// (or its record annotation is gone), an error when there is a record that cannot be read.
pub fn read(target: &Workload, plan: &str) -> Result<Option<Saved>, Unreadable> {
    if holder(target) != Some(plan) {
        return Ok(None);
    }
    let Some(raw) = annotations(target).and_then(|a| a.get(SAVED_ANNOTATION)) else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| Unreadable::Malformed(e.to_string()))?;
    match value.get("version") {
        None => {}
        Some(v) => match v.as_u64() {
            Some(n) if n <= RECORD_VERSION => {}
            Some(n) => return Err(Unreadable::Newer(n)),
            None => {
                return Err(Unreadable::Malformed(format!(
                    "version {v} is not a number"
                )));
            }
        },
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| Unreadable::Malformed(e.to_string()))
}

/// The saved state, when `plan` holds the target with a record that can be read (where an
/// unreadable one is handled by [`read`]'s caller, or does not matter).
pub fn saved_for(target: &Workload, plan: &str) -> Option<Saved> {
    read(target, plan).ok().flatten()
}

/// The record as written: `saved` and its schema version.
fn record_json(saved: &Saved) -> String {
    #[derive(Serialize)]
    struct Versioned<'a> {
        version: u64,
        #[serde(flatten)]
        saved: &'a Saved,
    }
    serde_json::to_string(&Versioned {
        version: RECORD_VERSION,
        saved,
    })
    .expect("saved state serializes")
}

/// `target` marked as held by `plan` with `saved`.
pub fn mark(target: &mut Workload, plan: &str, saved: &Saved) {
    let annotations = target
        .metadata_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new);
    annotations.insert(PLAN_ANNOTATION.to_string(), plan.to_string());
    annotations.insert(SAVED_ANNOTATION.to_string(), record_json(saved));
}

/// A merge patch that records `saved` for `plan` (metadata only: no rollout).
pub fn mark_patch(plan: &str, saved: &Saved) -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {
        PLAN_ANNOTATION: plan,
        SAVED_ANNOTATION: record_json(saved),
    }}})
}

/// The selectors `saved` holds of the Services a BlueGreen pins (the traffic Service, the
/// preview Service, the discovery Services), by name, as they were before the plan: the copy
/// the plan keeps in its status in case the target's record is lost.
pub fn selectors_before(
    spec: &crate::api::MaintenancePlanSpec,
    saved: &Saved,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = saved.peer_selectors.clone();
    if let Some(preview) = &saved.preview_selector
        && !spec.blue_green.preview_service.is_empty()
    {
        all.insert(spec.blue_green.preview_service.clone(), preview.clone());
    }
    if let Some(selector) = &saved.selector {
        all.insert(spec.service.clone(), selector.clone());
    }
    all
}

/// A merge patch fragment removing both annotations.
pub fn unmark_patch() -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {PLAN_ANNOTATION: null, SAVED_ANNOTATION: null}}})
}

fn annotations(target: &Workload) -> Option<&BTreeMap<String, String>> {
    target.metadata().annotations.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_belong_to_one_plan() {
        let mut d = Workload::from(k8s_openapi::api::apps::v1::StatefulSet::default());
        let saved = Saved {
            replicas: Some(3),
            paused: Some(false),
            ..Default::default()
        };
        mark(&mut d, "p1", &saved);
        assert_eq!(holder(&d), Some("p1"));
        assert_eq!(saved_for(&d, "p1"), Some(saved));
        assert_eq!(saved_for(&d, "p2"), None);
    }

    fn with_record(raw: &str) -> Workload {
        let mut d = Workload::from(k8s_openapi::api::apps::v1::StatefulSet::default());
        mark(&mut d, "p1", &Saved::default());
        d.metadata_mut()
            .annotations
            .as_mut()
            .unwrap()
            .insert(SAVED_ANNOTATION.into(), raw.into());
        d
    }

    #[test]
    fn a_record_is_read_by_its_schema_version() {
        let unversioned = with_record(r#"{"replicas": 2}"#);
        assert_eq!(read(&unversioned, "p1").unwrap().unwrap().replicas, Some(2));
        let current = with_record(r#"{"version": 1, "replicas": 2}"#);
        assert_eq!(read(&current, "p1").unwrap().unwrap().replicas, Some(2));
        assert_eq!(
            read(&with_record(r#"{"version": 2}"#), "p1"),
            Err(Unreadable::Newer(2))
        );
        assert!(matches!(
            read(&with_record(r#"{"version": "one"}"#), "p1"),
            Err(Unreadable::Malformed(_))
        ));
        assert!(matches!(
            read(&with_record("{oops"), "p1"),
            Err(Unreadable::Malformed(_))
        ));
        assert!(matches!(
            read(&with_record(r#"{"replicas": "three"}"#), "p1"),
            Err(Unreadable::Malformed(_))
        ));
        assert_eq!(read(&with_record("{oops"), "p2"), Ok(None));
    }
}
