//! Checks: what a plan verifies before it promotes a replaced pod or a green copy (an HTTP
//! answer of every pod under test, a Job that must succeed, a webhook that must answer 2xx),
//! and the result of each, as the status reports it. Types only; the operator's
//! `checks` module decides, `actuate` runs them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A verification that must pass before the plan goes on. Exactly one of `http`, `job` and
/// `webhook` says what is done.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.http) ? 1 : 0) + (has(self.job) ? 1 : 0) + (has(self.webhook) ? 1 : 0) == 1").message("a check has exactly one of http, job and webhook"))]
pub struct Check {
    /// Name of the check, unique within its list; in `status.checks`, Events and the name of
    /// a Job check's Job.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// GET `path` on `port` of every pod under test, by pod IP; each must answer
    /// `expectStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// Run a Job from this pod template; the check passes when the Job succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobCheck>,
    /// POST a JSON body naming the plan, its namespace, target, phase, step and stage; an
    /// answer of 2xx passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookCheck>,
    /// Seconds between two attempts of an `http` or `webhook` check (also how long one
    /// attempt may take).
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i64,
    /// Failed attempts in a row after which the check fails (a Job check: failed pods,
    /// the Job's `backoffLimit` plus one).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: i32,
    /// The check fails if it has not passed this long after it started.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: i64,
}

/// An HTTP GET on every pod under test.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    /// Path of the request, e.g. `/c/portal/layout`.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^/"))]
    pub path: String,
    /// A container port of the pods under test.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The status every pod must answer with.
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u16,
}

/// A Job that must succeed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobCheck {
    /// The pod template of the Job (`restartPolicy` defaults to `Never`). Its containers get
    /// `CUTOVER_PLAN`, `CUTOVER_TARGET`, `CUTOVER_SERVICE` (the Service that reaches the pods
    /// under test) and `CUTOVER_STAGE` in their environment.
    #[schemars(schema_with = "crate::api::preserve_unknown_object")]
    pub template: serde_json::Value,
}

/// A POST to a service that approves or refuses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.url.startsWith('http://') || self.url.startsWith('https://')").message("webhook.url: a webhook URL starts with http:// or https://"))]
pub struct WebhookCheck {
    /// `http://` or `https://` URL.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
}

/// Where in a cutover a check runs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckStage {
    /// RollingRestart: on each replacement pod once Ready, before the next pod.
    AfterEachPod,
    /// BlueGreen: on green once Ready, before the switch.
    PrePromotion,
    /// BlueGreen: on green after the switch, while blue is kept.
    PostPromotion,
}

impl CheckStage {
    /// The field that lists the stage's checks.
    pub fn field(self) -> &'static str {
        match self {
            CheckStage::AfterEachPod => "spec.rollingRestart.afterEachPod",
            CheckStage::PrePromotion => "spec.blueGreen.prePromotion",
            CheckStage::PostPromotion => "spec.blueGreen.postPromotion",
        }
    }

    /// The stage as a webhook body and a Job's `CUTOVER_STAGE` name it.
    pub fn word(self) -> &'static str {
        match self {
            CheckStage::AfterEachPod => "afterEachPod",
            CheckStage::PrePromotion => "prePromotion",
            CheckStage::PostPromotion => "postPromotion",
        }
    }
}

/// Where a check stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckPhase {
    Running,
    Passed,
    Failed,
}

/// The last result of one check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<CheckStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CheckPhase>,
    /// What the last attempt found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// What is under test: a pod (afterEachPod) or green's revision.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// When the check started on this subject; its timeout counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When its phase or message last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<Time>,
    /// Attempts asked for (an `http` or `webhook` check).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: i32,
    /// Attempts whose answer has been counted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answered: i32,
    /// Failed attempts in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: i32,
    /// afterEachPod: the pods (UIDs) the check passed on before the one in `subject`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_on: Vec<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}
fn default_interval() -> i64 {
    5
}
fn default_failure_threshold() -> i32 {
    3
}
fn default_timeout() -> i64 {
    300
}
fn default_path() -> String {
    "/".into()
}
fn default_status() -> u16 {
    200
}
