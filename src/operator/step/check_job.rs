//! The Job of a Job check: its name (stable for a check, stage and subject, so a repeated step
//! finds the one it made), the Job built from the check's pod template with the plan's facts in
//! its containers' environment, and what its status says. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Cx;
use super::restart::plan_owner;
use crate::api::{Check, CheckStage};
use crate::operator::names::{self, Rule};
use crate::rules::checks::job_template;

/// Label on a check's Job: the plan that made it.
pub const PLAN_LABEL: &str = "cutover.dev/plan";
/// Label on a check's Job: the check it runs.
pub const CHECK_LABEL: &str = "cutover.dev/check";

/// A Job's name is at most 63 characters (its pods carry it in a label).
const JOB_NAME: Rule = Rule::Subdomain(63);

/// The name of the Job that runs `check` at `stage` on `subject` for `plan`: readable
/// (`<plan>-<check>`, cut with a hash where too long) and unique by a hash of all four.
pub fn job_name(plan: &str, stage: CheckStage, check: &str, subject: &str) -> String {
    let hash = names::fnv1a(&[plan, stage.word(), check, subject]);
    names::derive(&format!("{plan}-{check}"), &format!("{hash:08x}"), JOB_NAME)
}

/// The Job of `check` (a Job check), owned by the plan; `service` reaches the pods under test.
/// `None` when the template is not one (the evaluation rejects such a plan first).
pub fn build(
    cx: &Cx,
    stage: CheckStage,
    check: &Check,
    subject: &str,
    service: &str,
) -> Option<Job> {
    let mut template = job_template(&check.job.as_ref()?.template).ok()?;
    let spec = template.spec.as_mut()?;
    if spec.restart_policy.is_none() {
        spec.restart_policy = Some("Never".into());
    }
    let facts = [
        ("CUTOVER_PLAN", cx.plan.to_string()),
        ("CUTOVER_TARGET", cx.spec.target.name.clone()),
        ("CUTOVER_SERVICE", service.to_string()),
        ("CUTOVER_STAGE", stage.word().to_string()),
    ];
    for container in &mut spec.containers {
        let env = container.env.get_or_insert_with(Vec::new);
        env.retain(|e| !facts.iter().any(|(name, _)| e.name == *name));
        env.extend(facts.iter().map(|(name, value)| EnvVar {
            name: name.to_string(),
            value: Some(value.clone()),
            value_from: None,
        }));
    }
    let labels = BTreeMap::from([
        (PLAN_LABEL.to_string(), cx.plan.to_string()),
        (CHECK_LABEL.to_string(), check.name.clone()),
    ]);
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(cx.plan, stage, &check.name, subject)),
            namespace: cx.snap.plan.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![plan_owner(cx)]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            template,
            backoff_limit: Some(check.failure_threshold.saturating_sub(1).max(0)),
            active_deadline_seconds: Some(check.timeout_seconds),
            ..Default::default()
        }),
        status: None,
    })
}

/// How a Job ended, from its conditions: `Some(Ok)` when it completed, `Some(Err(why))` when
/// it failed, `None` while it runs.
pub fn ended(job: &Job) -> Option<Result<(), String>> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let true_of = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if true_of("Complete").is_some() {
        return Some(Ok(()));
    }
    true_of("Failed").map(|c| {
        Err(format!(
            "{}{}",
            c.reason.clone().unwrap_or_else(|| "Failed".into()),
            c.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))
    })
}

/// Pods of the Job that failed so far.
pub fn failed_pods(job: &Job) -> i32 {
    job.status.as_ref().and_then(|s| s.failed).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_a_label_and_differ_by_subject() {
        let long = "p".repeat(80);
        let a = job_name(&long, CheckStage::AfterEachPod, "smoke", "uid-1");
        let b = job_name(&long, CheckStage::AfterEachPod, "smoke", "uid-2");
        assert!(JOB_NAME.allows(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            job_name(&long, CheckStage::AfterEachPod, "smoke", "uid-1")
        );
        let short = job_name("plan", CheckStage::PrePromotion, "smoke", "abc");
        assert!(short.starts_with("plan-smoke-"), "{short}");
        assert!(!short.contains("--"), "{short}");
    }
}
