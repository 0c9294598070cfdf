//! The plan's status (written only by the operator) and the evaluation's vocabulary:
//! techniques, verdicts and findings.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed and did. The operator is its only writer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePlanStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the plan is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The technique the evaluation chose, or `Rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Verdict>,
    /// A finer-grained word for what is happening now, e.g. `WaitingForGreen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// When the current step began; the deadline of a waiting step counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// What is happening, or why the plan stopped, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The effective changes: the declared ones first, then those read from the template
    /// (`inferChanges`). A finding's `change` is an index into this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<super::EffectiveChange>,
    /// The evaluation of each change against the rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The last result of each check (`rollingRestart.afterEachPod`, `blueGreen.prePromotion`,
    /// `blueGreen.postPromotion`) that has run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<super::CheckResult>,
    /// Steps done out of the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// When the plan started to act on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the plan ended (Succeeded, Failed, Aborted or Rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Where the new pods' template came from: the plan's `update` (kubectl flow), the
    /// pending template of a paused Deployment or of a StatefulSet that holds it back with
    /// `OnDelete` or a partition (GitOps flow), or nowhere (a plain restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// When the Service was switched to green (BlueGreen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Time>,
    /// While the operator cleans up after the work: the phase the plan is finishing into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Phase>,
    /// FullRestart: how long the target had no pod serving, from the scale-down to the first
    /// ready pod of the new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
    /// BlueGreen: the selectors of the Services the plan pins (the traffic Service, the
    /// preview Service, the discovery Services), by name, as they were before the plan. A copy
    /// of the record the operator keeps on the target, so that they are put back even if the
    /// target or that record is lost.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub selectors_before:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Ready, Reconciling, Stalled (kstatus) and Evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

// Where a plan's new template comes from (the field that holds one describes it).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// The plan's `update` changes the target's template (kubectl flow).
    Update,
    /// The target holds back a template its pods do not run yet (a paused Deployment, a
    /// StatefulSet under `OnDelete` or a partition at its replicas); that pending template is
    /// rolled out and the target ends as Git has it (GitOps flow).
    PendingTemplate,
    /// Neither: the pods restart on the template they run.
    Restart,
}

impl Flow {
    /// How the flow is named in messages and Events.
    pub fn describe(self) -> &'static str {
        match self {
            Flow::Update => "kubectl flow: the plan's update gives the new template",
            Flow::PendingTemplate => {
                "GitOps flow: the target's pending template is rolled out and the target ends as Git has it"
            }
            Flow::Restart => "plain restart: the template does not change",
        }
    }
}

// The lifecycle of a plan (each field that holds one describes itself).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Not started yet (waiting for evaluation or for another plan on the same target).
    Pending,
    /// The rules allow no technique the plan permits; nothing was touched.
    Rejected,
    /// Being carried out.
    Progressing,
    /// Green is Ready; waiting for `spec.promote`.
    AwaitingPromotion,
    /// Done: the target runs the new version.
    Succeeded,
    /// Stopped safely without completing.
    Failed,
    /// Stopped and rolled back on request.
    Aborted,
}

/// A technique for carrying out maintenance.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Technique {
    RollingRestart,
    BlueGreen,
    FullRestart,
}

impl Technique {
    pub fn as_str(self) -> &'static str {
        match self {
            Technique::RollingRestart => "RollingRestart",
            Technique::BlueGreen => "BlueGreen",
            Technique::FullRestart => "FullRestart",
        }
    }
}

/// The outcome of evaluating a plan: the technique to use, or `Rejected`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    RollingRestart,
    BlueGreen,
    FullRestart,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RollingRestart => "RollingRestart",
            Verdict::BlueGreen => "BlueGreen",
            Verdict::FullRestart => "FullRestart",
            Verdict::Rejected => "Rejected",
        }
    }

    /// The technique to carry out, if the plan is not rejected.
    pub fn technique(self) -> Option<Technique> {
        match self {
            Verdict::RollingRestart => Some(Technique::RollingRestart),
            Verdict::BlueGreen => Some(Technique::BlueGreen),
            Verdict::FullRestart => Some(Technique::FullRestart),
            Verdict::Rejected => None,
        }
    }
}

impl From<Technique> for Verdict {
    fn from(t: Technique) -> Self {
        match t {
            Technique::RollingRestart => Verdict::RollingRestart,
            Technique::BlueGreen => Verdict::BlueGreen,
            Technique::FullRestart => Verdict::FullRestart,
        }
    }
}

/// What a rule says about one change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Index of the change in the effective changes (`status.changes`): the declared ones
    /// (`spec.changes`, in order) first, then the inferred ones. Absent for a finding about the
    /// plan as a whole rather than one change (its pod patches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<u32>,
    /// Stable name of the rule.
    pub rule: String,
    /// Techniques this finding rules out.
    pub blocks: Vec<Technique>,
    /// Why, in words an operator understands.
    pub message: String,
}

impl Finding {
    pub fn blocks(&self, technique: Technique) -> bool {
        self.blocks.contains(&technique)
    }

    /// What the finding is about, in words: `change N`, or `the plan`.
    pub fn about(&self) -> String {
        match self.change {
            Some(i) => format!("change {i}"),
            None => "the plan".into(),
        }
    }
}

/// Steps done out of the total.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Progress {
    /// Number of steps in all (pods for a rolling restart).
    pub total: i32,
    /// Steps completed.
    pub done: i32,
    /// `done/total`, for display.
    pub text: String,
}

impl Progress {
    pub fn new(done: i32, total: i32) -> Self {
        Self {
            total,
            done,
            text: format!("{done}/{total}"),
        }
    }
}
