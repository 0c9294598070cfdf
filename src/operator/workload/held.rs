//! The GitOps flow of a workload that holds its pending template back itself, as the
//! techniques see it: the two revisions its pods move between, which of its pods are off a
//! revision, and the settings under which a pod deleted now comes back at the pending
//! template or at the current revision. Only a StatefulSet can (under `OnDelete`, or with a
//! partition at its replicas); a Deployment holds a template back with `spec.paused`, which
//! `replica_sets` reads, and has none of this. Pure.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::saved::Saved;
use super::stateful_set::{self, held};
use super::{Pace, Workload};

/// A pending template the workload holds back: its pods run `current`, its spec's template
/// is the revision `update`, and its controller replaces no pod by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRevisions {
    pub current: String,
    pub update: String,
}

impl Workload {
    /// The revisions of the pending template it holds back, once its controller has seen its
    /// spec; `None` when it holds none (or its kind never does).
    pub fn held_revisions(&self) -> Option<HeldRevisions> {
        match self {
            Workload::Deployment(_) => None,
            Workload::StatefulSet(s) => {
                held::held_revisions(s).map(|(current, update)| HeldRevisions {
                    current: current.to_string(),
                    update: update.to_string(),
                })
            }
        }
    }

    /// The revision its controller recreates a pod from when it is not to be updated
    /// (`status.currentRevision`); `None` for a kind without one.
    pub fn current_revision(&self) -> Option<&str> {
        match self {
            Workload::Deployment(_) => None,
            Workload::StatefulSet(s) => stateful_set::current_revision(s),
        }
    }

    /// How it holds the template back, in words ("holds a pending template back under
    /// updateStrategy OnDelete").
    pub fn holding(&self) -> String {
        match self {
            Workload::Deployment(_) => "is paused with a pending template".into(),
            Workload::StatefulSet(s) if stateful_set::is_on_delete(s) => {
                "holds a pending template back under updateStrategy OnDelete".into()
            }
            Workload::StatefulSet(s) => format!(
                "holds a pending template back behind partition {}",
                stateful_set::partition(s)
            ),
        }
    }

    /// Its own pods among `all` (for a kind without pods of its own, all of them), not
    /// terminating.
    pub fn own_pods<'a>(&self, all: &'a [Pod]) -> Vec<&'a Pod> {
        let own = match self {
            Workload::Deployment(_) => all.iter().collect(),
            Workload::StatefulSet(s) => stateful_set::own_pods(s, all),
        };
        own.into_iter()
            .filter(|p| !crate::operator::pods::is_terminating(p))
            .collect()
    }

    /// Its own pods among `all`, not terminating, on another revision than `to` and not named
    /// in `keep`, in the order its controller replaces them.
    pub fn pods_off<'a>(&self, all: &'a [Pod], to: &str, keep: &[String]) -> Vec<&'a Pod> {
        match self {
            Workload::Deployment(_) => Vec::new(),
            Workload::StatefulSet(s) => held::pods_off(s, all, to, keep),
        }
    }

    /// A pod deleted now comes back at the current revision.
    pub fn brings_back_current(&self) -> bool {
        match self {
            Workload::Deployment(_) => false,
            Workload::StatefulSet(s) => held::brings_back_current(s),
        }
    }

    /// The `spec` fragment of a merge patch under which a deleted pod of its `replicas`
    /// comes back at the current revision, for a kind that has one.
    pub fn back_to_current_spec(&self, replicas: i32) -> Option<Value> {
        match self {
            Workload::Deployment(_) => None,
            Workload::StatefulSet(_) => Some(held::back_to_current_spec(replicas)),
        }
    }

    /// The `spec` fragment of a merge patch under which a deleted pod comes back at the
    /// pending template, when it does not already.
    pub fn forward_spec(&self) -> Option<Value> {
        match self {
            Workload::Deployment(_) => None,
            Workload::StatefulSet(s) => held::forward_spec(s),
        }
    }

    /// The next step of bringing its pods back to revision `to` (but those in `keep`), one
    /// at a time, each back for `min_ready` seconds before the next goes.
    pub fn pace_back(
        &self,
        all: &[Pod],
        to: &str,
        keep: &[String],
        min_ready: i64,
        now: Timestamp,
    ) -> Pace {
        match self {
            Workload::Deployment(_) => Pace::Itself,
            Workload::StatefulSet(s) => held::pace_back(s, all, to, keep, min_ready, now),
        }
    }

    /// Records the settings a held rollout may change (a StatefulSet's update strategy) in
    /// `saved`, before it changes any.
    pub fn record_held_settings(&self, saved: &mut Saved) {
        if let Workload::StatefulSet(s) = self {
            saved.update_strategy = s.spec.as_ref().and_then(|s| s.update_strategy.clone());
        }
    }

    /// The `spec` fragment of a merge patch that gives back the settings a held rollout
    /// changed, as `saved` recorded them; empty when they are as recorded.
    pub fn restored_held_settings(&self, saved: &Saved) -> Map<String, Value> {
        let mut spec = Map::new();
        if let Workload::StatefulSet(s) = self
            && let Some(original) = &saved.update_strategy
            && s.spec.as_ref().and_then(|s| s.update_strategy.as_ref()) != Some(original)
        {
            spec.insert(
                "updateStrategy".into(),
                json!({"type": original.type_, "rollingUpdate": original.rolling_update}),
            );
        }
        spec
    }
}
