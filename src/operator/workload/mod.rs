//! The workload a plan maintains, as the techniques see it: its name, replicas, selector and
//! template, the revision each of its pods runs, whether a rollout of it is complete, how a
//! green copy of it is made, how a rollout of it is paced and how the settings a plan changes
//! are saved and restored. A Deployment and a StatefulSet sit behind one enum, so no technique
//! names either kind. Pure; its functions take the workload and plain values (never a
//! technique's context), so nothing here imports `step`. The Deployment-only machinery of the
//! GitOps flow (ReplicaSets and their handover) is not here but in `replica_sets`.

pub mod deployment;
#[cfg(test)]
pub mod fixtures;
pub mod held;
pub mod saved;
pub mod stateful_set;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::action::Action;
use super::names::Rule;
use super::pods;
use crate::api::TargetKind;
use saved::Saved;

/// Which kind of workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

impl Kind {
    /// The kind as a word in a message ("deployment liferay").
    pub fn word(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
        }
    }

    /// The pod label that names the revision (template) a pod was made from.
    pub fn revision_label(self) -> &'static str {
        match self {
            Kind::Deployment => pods::TEMPLATE_HASH,
            Kind::StatefulSet => stateful_set::REVISION_LABEL,
        }
    }

    /// What the name of a workload of this kind that the operator makes (green) must be, so
    /// that the names its controller derives from it are valid too: a Deployment's
    /// ReplicaSets are `<name>-<hash>` (a hash of up to ten characters) within a DNS
    /// subdomain, and a StatefulSet's pods carry `controller-revision-hash: <name>-<hash>`, a
    /// label value of at most 63 characters (the API server allows a StatefulSet a 63-character
    /// name, whose pods it then refuses).
    pub fn name_rule(self) -> Rule {
        match self {
            Kind::Deployment => Rule::Subdomain(253 - 11),
            Kind::StatefulSet => Rule::Label(63 - 11),
        }
    }
}

impl From<TargetKind> for Kind {
    fn from(kind: TargetKind) -> Self {
        match kind {
            TargetKind::Deployment => Kind::Deployment,
            TargetKind::StatefulSet => Kind::StatefulSet,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The next step of a rollout, as the workload paces it.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    /// Its own controller paces the rollout (a Deployment, set to surge one pod at a time).
    Itself,
    /// Let its controller replace the pod with this ordinal: the merge patch that lowers the
    /// partition to it.
    Release {
        ordinal: i32,
        patch: serde_json::Value,
    },
    /// Evict this pod (its controller recreates it from the new revision).
    Evict(String),
    /// Delete this pod: it never became Ready, and its controller waits for it for good.
    Delete(String),
    /// The last replacement is not there or not available yet (or its controller has not
    /// seen the new template yet).
    Hold,
    /// Every pod runs the new revision.
    Done,
}

/// A workload: the target of a plan, or its green copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Workload {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
}

impl From<Deployment> for Workload {
    fn from(d: Deployment) -> Self {
        Workload::Deployment(d)
    }
}

impl From<StatefulSet> for Workload {
    fn from(s: StatefulSet) -> Self {
        Workload::StatefulSet(s)
    }
}

/// "deployment liferay": the workload in a message.
impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

impl Workload {
    pub fn kind(&self) -> Kind {
        match self {
            Workload::Deployment(_) => Kind::Deployment,
            Workload::StatefulSet(_) => Kind::StatefulSet,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(d) => &d.metadata,
            Workload::StatefulSet(s) => &s.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Workload::Deployment(d) => &mut d.metadata,
            Workload::StatefulSet(s) => &mut s.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The workload's own labels (not its pods').
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata().labels.as_ref()
    }

    pub fn is_deleting(&self) -> bool {
        self.metadata().deletion_timestamp.is_some()
    }

    /// `spec.replicas` (1 when unset, as the API defaults it).
    pub fn replicas(&self) -> i32 {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().and_then(|s| s.replicas),
            Workload::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.replicas),
        }
        .unwrap_or(1)
    }

    pub fn set_replicas(&mut self, replicas: i32) {
        match self {
            Workload::Deployment(d) => {
                d.spec.get_or_insert_with(Default::default).replicas = Some(replicas)
            }
            Workload::StatefulSet(s) => {
                s.spec.get_or_insert_with(Default::default).replicas = Some(replicas)
            }
        }
    }

    /// The Service that gives its pods their DNS names (a StatefulSet's `serviceName`); a
    /// Deployment has none.
    pub fn governing_service(&self) -> Option<&str> {
        match self {
            Workload::Deployment(_) => None,
            Workload::StatefulSet(s) => s.spec.as_ref()?.service_name.as_deref(),
        }
    }

    /// The selector of its pods.
    pub fn selector(&self) -> Option<&LabelSelector> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
        }
    }

    /// The pod template in its spec (for a paused Deployment, possibly one its pods do not
    /// run yet).
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
        }
    }

    pub fn set_template(&mut self, template: PodTemplateSpec) {
        match self {
            Workload::Deployment(d) => {
                d.spec.get_or_insert_with(Default::default).template = template
            }
            Workload::StatefulSet(s) => {
                s.spec.get_or_insert_with(Default::default).template = template
            }
        }
    }

    /// `spec.minReadySeconds`.
    pub fn min_ready_seconds(&self) -> Option<i32> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().and_then(|s| s.min_ready_seconds),
            Workload::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.min_ready_seconds),
        }
    }

    /// Whether its controller is told to hold its rollout, for a kind that can be told so
    /// (`spec.paused` of a Deployment); `None` for a kind that cannot.
    pub fn paused(&self) -> Option<bool> {
        match self {
            Workload::Deployment(d) => {
                Some(d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false))
            }
            Workload::StatefulSet(_) => None,
        }
    }

    /// Tells its controller to hold (`true`) or go on with its rollout, for a kind whose
    /// controller can be told so; nothing for another kind.
    pub fn set_paused(&mut self, paused: bool) {
        if let Workload::Deployment(d) = self {
            d.spec.get_or_insert_with(Default::default).paused = Some(paused);
        }
    }

    /// The `spec` fragment of a merge patch that holds (`true`) or resumes its rollout, for a
    /// kind whose controller can be told so.
    pub fn pause_spec(&self, paused: bool) -> Option<serde_json::Value> {
        match self {
            Workload::Deployment(_) => Some(serde_json::json!({"paused": paused})),
            Workload::StatefulSet(_) => None,
        }
    }

    /// Its controller has caught up with its spec and every replica runs the spec's template
    /// and is available.
    pub fn is_complete(&self) -> bool {
        match self {
            Workload::Deployment(d) => deployment::is_complete(d),
            Workload::StatefulSet(s) => stateful_set::is_complete(s),
        }
    }

    /// Its controller's own word that its rollout will not finish (a Deployment past its
    /// `progressDeadlineSeconds`), for a kind whose controller says so.
    pub fn rollout_given_up(&self) -> Option<String> {
        match self {
            Workload::Deployment(d) => deployment::progress_deadline_exceeded(d),
            Workload::StatefulSet(_) => None,
        }
    }

    /// The revision a pod of this workload runs.
    pub fn revision_of<'a>(&self, pod: &'a Pod) -> Option<&'a str> {
        let label = self.kind().revision_label();
        pod.metadata.labels.as_ref()?.get(label).map(String::as_str)
    }

    /// Pods at `revision` that are not terminating.
    pub fn pods_at<'a>(&self, all: &'a [Pod], revision: &str) -> Vec<&'a Pod> {
        all.iter()
            .filter(|p| self.revision_of(p) == Some(revision) && !pods::is_terminating(p))
            .collect()
    }

    /// The revision its controller rolls the pods to, once it has made one for the workload's
    /// own template: the ReplicaSet (of `replica_sets`, the sets it owns) that carries that
    /// template (a Deployment), the update revision once its controller has seen the spec (a
    /// StatefulSet). Identified by the template, never as the newest set by revision: right
    /// after a template is written that is still the old one, and its pods would read as new.
    pub fn updated_revision<'a>(&'a self, replica_sets: &'a [ReplicaSet]) -> Option<&'a str> {
        match self {
            Workload::Deployment(_) => {
                let template = self.template()?;
                super::replica_sets::with_template(replica_sets, template)
                    .and_then(super::replica_sets::hash)
            }
            Workload::StatefulSet(s) => stateful_set::update_revision(s),
        }
    }

    /// Whether an extra pod can serve beside its own while they restart (a StatefulSet's
    /// pods have identities; an extra one would not be one of them).
    pub fn can_surge(&self) -> bool {
        self.kind() == Kind::Deployment
    }

    /// Whether a rollout of a new template goes one pod at a time through the operator
    /// (`pace`), rather than at its controller's own pace.
    pub fn paces_through_operator(&self) -> bool {
        self.kind() != Kind::Deployment
    }

    /// The next step of a rollout to its spec's template, one pod at a time, each
    /// replacement available for `min_ready` seconds (of `all`, the snapshot's pods) before
    /// the next.
    pub fn pace(&self, all: &[Pod], min_ready: i64, now: Timestamp) -> Pace {
        match self {
            Workload::Deployment(_) => Pace::Itself,
            Workload::StatefulSet(s) => stateful_set::pace(s, all, min_ready, now),
        }
    }

    /// The green copy: this workload's shape under `name` with `template`, its replica count,
    /// and `labels` added to its own labels, its pods' labels and its selector (so that it
    /// never selects this workload's pods), owned by `owner`.
    pub fn green_copy(
        &self,
        name: String,
        template: &PodTemplateSpec,
        labels: BTreeMap<String, String>,
        owner: OwnerReference,
    ) -> Workload {
        let mut template = template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(labels.clone());
        let meta = ObjectMeta {
            name: Some(name),
            namespace: self.metadata().namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        };
        match self {
            Workload::Deployment(d) => deployment::green_copy(d, meta, template, &labels).into(),
            Workload::StatefulSet(s) => stateful_set::green_copy(s, meta, template, &labels).into(),
        }
    }

    /// The workload set to roll out `new_template` one pod at a time, each replacement
    /// available for `min_ready_seconds` before the next, with the settings this changes
    /// (and the original template) recorded in `saved`.
    pub fn paced_rollout(
        &self,
        new_template: PodTemplateSpec,
        min_ready_seconds: i64,
        saved: &mut Saved,
    ) -> Workload {
        saved.template = self.template().cloned();
        match self {
            Workload::Deployment(d) => {
                deployment::paced_rollout(d, new_template, min_ready_seconds, saved).into()
            }
            Workload::StatefulSet(s) => {
                stateful_set::paced_rollout(s, new_template, min_ready_seconds, saved).into()
            }
        }
    }

    /// The `spec` fragment of a merge patch that gives back the settings a paced rollout
    /// changed, as `saved` recorded them.
    pub fn restored_settings(&self, saved: &Saved) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Workload::Deployment(_) => deployment::restored_settings(saved),
            Workload::StatefulSet(_) => stateful_set::restored_settings(saved),
        }
    }

    /// Sorts `candidates` in the order a restart replaces them: the oldest first for a
    /// Deployment, the highest ordinal first for a StatefulSet (its controller's order).
    pub fn restart_order(&self, candidates: &mut [&Pod]) {
        match self {
            Workload::Deployment(_) => {
                candidates.sort_by_key(|p| (pods::created(p), pods::name(p).to_string()))
            }
            Workload::StatefulSet(_) => stateful_set::highest_ordinal_first(candidates),
        }
    }

    /// A merge patch of this workload.
    pub fn patch(&self, patch: serde_json::Value) -> Action {
        Action::PatchWorkload {
            kind: self.kind(),
            name: self.name().to_string(),
            patch,
        }
    }

    /// Replaces this workload with `self` as changed (PUT with its resourceVersion).
    pub fn replace(self) -> Action {
        Action::ReplaceWorkload(Box::new(self))
    }

    /// Creates this workload.
    pub fn create(self) -> Action {
        Action::CreateWorkload(Box::new(self))
    }
}

/// Deletes the workload `name` of `kind`; what it owns goes with it.
pub fn delete(kind: Kind, name: &str) -> Action {
    Action::DeleteWorkload {
        kind,
        name: name.to_string(),
    }
}
