//! The plan's spec: what to maintain, how the pods change and which technique may be used.

use k8s_openapi::api::core::v1::EnvVar;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Change, Check, MaintenancePlanStatus};

// The names a plan gives of objects the operator reads and writes are checked as the API
// server checks those objects' names, so that a plan naming something no cluster can hold is
// refused when it is applied. Each rule checks the size as well as the maxLength beside it
// does: the simulated cluster enforces the rules and not maxLength (a real API server bounds
// a rule's cost by that maxLength).

/// The rule for a Service's name (a DNS-1035 label), and what it says when a name breaks it.
macro_rules! dns_1035_rule {
    () => {
        "size(self) <= 63 && self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    };
}
macro_rules! dns_1035_words {
    () => {
        "a DNS-1035 label: at most 63 lowercase letters, digits and '-', beginning with a letter and ending with a letter or digit"
    };
}

/// A one-shot maintenance operation on a clustered workload: the changes it makes, evaluated
/// against the rules for safe cluster maintenance, and carried out with the safest technique
/// they allow (RollingRestart, BlueGreen, or FullRestart when downtime is allowed).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cutover.dev",
    version = "v1alpha1",
    kind = "MaintenancePlan",
    plural = "maintenanceplans",
    shortname = "mp",
    category = "cutover",
    namespaced,
    status = "MaintenancePlanStatus",
    derive = "PartialEq",
    doc = "A one-shot maintenance operation on a clustered workload, evaluated against the rules for safe cluster maintenance and carried out with the safest technique they allow.",
    printcolumn = r#"{"name": "Target", "type": "string", "jsonPath": ".spec.target.name", "description": "The workload being maintained"}"#,
    printcolumn = r#"{"name": "Strategy", "type": "string", "jsonPath": ".status.strategy", "description": "The chosen technique"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Where the plan is in its lifecycle"}"#,
    printcolumn = r#"{"name": "Progress", "type": "string", "jsonPath": ".status.progress.text", "description": "Steps done out of the total"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name": "Flow", "type": "string", "jsonPath": ".status.flow", "priority": 1, "description": "Where the new template came from: Update, PendingTemplate (GitOps) or Restart"}"#,
    printcolumn = r#"{"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1, "description": "What is happening now"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63").message("metadata.name: a plan's name is at most 63 characters: it is written into label values (cutover.dev/plan) of the objects it makes")
)]
#[x_kube(validation = Rule::new("self.target == oldSelf.target").message("target is immutable: create a new plan instead"))]
#[x_kube(validation = Rule::new("self.service == oldSelf.service").message("service is immutable: create a new plan instead"))]
#[x_kube(validation = Rule::new("self.changes == oldSelf.changes").message("changes are immutable: create a new plan instead"))]
#[x_kube(validation = Rule::new("has(self.update) == has(oldSelf.update) && (!has(self.update) || self.update == oldSelf.update)").message("update is immutable: create a new plan instead"))]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePlanSpec {
    /// The workload to maintain ("blue").
    pub target: TargetRef,
    /// Name of the Service that carries live traffic to the target (same namespace).
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(dns_1035_rule!()).message(concat!("service: a Service's name is ", dns_1035_words!())))]
    pub service: String,
    /// What the maintenance changes. Each item names its kind in `type` and carries the
    /// matching member field. These are the input of the rules; an empty list is a plain restart.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub changes: Vec<Change>,
    /// How the pod template changes. Leave it out to roll out a paused Deployment's pending
    /// template (GitOps flow) or to restart the pods unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<PodUpdate>,
    /// Also read changes from the difference between the running pod template and the new
    /// one (a Liferay DXP image tag, `LIFERAY_*`, JVM option and `JAVA_VERSION` variables) and
    /// evaluate them together with the declared ones.
    #[serde(default = "default_true")]
    pub infer_changes: bool,
    /// Which technique to use. `Auto` picks the safest one the rules allow.
    #[serde(default)]
    pub strategy: StrategyChoice,
    /// Allow a FullRestart (all pods down at once). Without it a plan that neither a rolling
    /// restart nor a blue-green cutover can carry out is rejected.
    #[serde(default)]
    pub allow_downtime: bool,
    /// Settings of the RollingRestart technique.
    #[serde(default)]
    pub rolling_restart: RollingRestartSettings,
    /// Settings of the BlueGreen technique.
    #[serde(default)]
    pub blue_green: BlueGreenSettings,
    /// Hold before the next step (the next pod, or the switch to green) while true.
    #[serde(default)]
    pub paused: bool,
    /// Approve the switch to green when `blueGreen.autoPromote` is false.
    #[serde(default)]
    pub promote: bool,
    /// Stop and roll back to the state before the plan.
    #[serde(default)]
    pub abort: bool,
}

/// Reference to the workload a plan maintains.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// Kind of the workload: `Deployment` or `StatefulSet` (Liferay's own Helm chart runs a
    /// StatefulSet).
    #[serde(default)]
    pub kind: TargetKind,
    /// Name of the workload, in the plan's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("size(self) <= 253 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("target.name: a Deployment's or StatefulSet's name is a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each part between dots beginning and ending with a letter or digit"))]
    pub name: String,
}

/// Workload kinds a plan can target.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TargetKind {
    #[default]
    Deployment,
    StatefulSet,
}

/// How the new pods differ from the running ones.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodUpdate {
    /// Container that `image` and `env` apply to. Default: the first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub container: Option<String>,
    /// New image of that container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
    /// Environment variables to set (added, or replaced by name) on that container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub env: Vec<EnvVar>,
    /// A JSON merge patch applied to the target's `spec.template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown_object")]
    pub pod_template_patch: Option<serde_json::Value>,
}

impl PodUpdate {
    /// True when the update changes nothing (a plain restart).
    pub fn is_empty(&self) -> bool {
        self.image.is_none()
            && self.env.is_empty()
            && self
                .pod_template_patch
                .as_ref()
                .is_none_or(|p| p.as_object().is_some_and(|o| o.is_empty()))
    }
}

/// Schema of a free-form object kept as given.
pub fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// The technique a plan asks for.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum StrategyChoice {
    /// The safest technique the rules allow: RollingRestart, else BlueGreen, else FullRestart
    /// when downtime is allowed.
    #[default]
    Auto,
    /// Replace pods one at a time, each Ready before the next.
    RollingRestart,
    /// Start a full green copy, then switch the Service to it in one step.
    BlueGreen,
    /// Stop all pods, apply the change, start them again (needs `allowDowntime`).
    FullRestart,
}

/// Settings of the RollingRestart technique.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollingRestartSettings {
    /// How long a replacement pod may take to become Ready before the plan halts.
    #[serde(default = "default_pod_ready_timeout")]
    #[schemars(range(min = 1))]
    pub pod_ready_timeout_seconds: i64,
    /// How long a replacement must stay Ready before the next pod is touched.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: i64,
    /// When a replacement fails, put the pods already replaced back on the old template,
    /// one at a time.
    #[serde(default = "default_true")]
    pub rollback_on_failure: bool,
    /// Checks on each replacement pod once it is Ready (and `minReadySeconds` have passed),
    /// before the next pod is touched. A failure halts the rollout (and rolls it back with
    /// `rollbackOnFailure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub after_each_pod: Vec<Check>,
}

impl Default for RollingRestartSettings {
    fn default() -> Self {
        Self {
            pod_ready_timeout_seconds: default_pod_ready_timeout(),
            min_ready_seconds: 0,
            rollback_on_failure: true,
            after_each_pod: Vec::new(),
        }
    }
}

/// Settings of the BlueGreen technique.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenSettings {
    /// Whether green runs on its own copy of the data (`Isolated`) or on blue's (`Shared`).
    /// Changes that old pods cannot live with (non-revertible schema changes) are only
    /// allowed with `Isolated`; the `update` must then point green at its own data.
    #[serde(default)]
    pub data_isolation: DataIsolation,
    /// How long green may take to become fully Ready before the plan fails (blue untouched).
    #[serde(default = "default_green_ready_timeout")]
    #[schemars(range(min = 1))]
    pub ready_timeout_seconds: i64,
    /// Optional Service pointed at green once it is Ready, for checks before the switch.
    #[serde(default)]
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new(concat!("self == '' || (", dns_1035_rule!(), ")")).message(concat!("blueGreen.previewService: empty, or a Service's name, ", dns_1035_words!())))]
    pub preview_service: String,
    /// Switch as soon as green is Ready. When false, wait in AwaitingPromotion until
    /// `spec.promote` is true.
    #[serde(default = "default_true")]
    pub auto_promote: bool,
    /// How long blue keeps running after the switch (fast abort, endpoint propagation).
    #[serde(default = "default_scale_down_delay")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: i64,
    /// What green's pods get on top of the new template, and the target never (for example,
    /// pointing green's cluster discovery at the `<service>-green` twin).
    #[serde(default, skip_serializing_if = "GreenOnly::is_empty")]
    pub green_only: GreenOnly,
    /// Checks against green once it is Ready, before the switch (and before the plan waits
    /// for `spec.promote`). A failure ends the plan with blue serving, untouched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub pre_promotion: Vec<Check>,
    /// Checks against green after the switch, while blue is kept (`scaleDownDelaySeconds`
    /// lasts at least until they passed). A failure switches the Service back to blue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub post_promotion: Vec<Check>,
}

/// What only green's pods get: environment variables on `update.container` (by name) and a
/// JSON merge patch of the pod template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GreenOnly {
    /// Environment variables to set (added, or replaced by name) on `update.container` (the
    /// first container by default) of green's pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub env: Vec<EnvVar>,
    /// A JSON merge patch applied to green's `spec.template`, after the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::preserve_unknown_object")]
    pub pod_template_patch: Option<serde_json::Value>,
}

impl GreenOnly {
    /// True when green gets nothing beyond the new template.
    pub fn is_empty(&self) -> bool {
        self.as_update(None).is_empty()
    }

    /// The same, as an update of `container`'s template.
    pub fn as_update(&self, container: Option<&str>) -> PodUpdate {
        PodUpdate {
            container: container.map(str::to_string),
            image: None,
            env: self.env.clone(),
            pod_template_patch: self.pod_template_patch.clone(),
        }
    }
}

impl Default for BlueGreenSettings {
    fn default() -> Self {
        Self {
            data_isolation: DataIsolation::Shared,
            ready_timeout_seconds: default_green_ready_timeout(),
            preview_service: String::new(),
            auto_promote: true,
            scale_down_delay_seconds: default_scale_down_delay(),
            green_only: GreenOnly::default(),
            pre_promotion: Vec::new(),
            post_promotion: Vec::new(),
        }
    }
}

/// Whether green shares blue's data.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DataIsolation {
    /// Green uses the same database as blue.
    #[default]
    Shared,
    /// Green runs on its own copy of the data.
    Isolated,
}

fn default_true() -> bool {
    true
}
fn default_pod_ready_timeout() -> i64 {
    600
}
fn default_green_ready_timeout() -> i64 {
    900
}
fn default_scale_down_delay() -> i64 {
    30
}
