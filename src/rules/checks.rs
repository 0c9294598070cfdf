//! What makes a plan's checks (`rollingRestart.afterEachPod`, `blueGreen.prePromotion`,
//! `blueGreen.postPromotion`) unusable before anything runs: a check with none or several of
//! `http`, `job` and `webhook`, two checks of one name, a webhook URL that is not http(s), a
//! Job template that is not a pod template with containers, a Job before the switch that no
//! Service can point at green. The schema refuses most of these on a cluster; this also
//! covers a plan read from a file. Whether an HTTP port is one the pods expose needs the
//! template and is checked before the plan starts (`operator::preflight`).

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::InvalidField;
use crate::api::{Check, CheckStage, MaintenancePlanSpec};

/// The checks of each stage, with the stage.
pub fn stages(spec: &MaintenancePlanSpec) -> [(CheckStage, &[Check]); 3] {
    [
        (
            CheckStage::AfterEachPod,
            spec.rolling_restart.after_each_pod.as_slice(),
        ),
        (
            CheckStage::PrePromotion,
            spec.blue_green.pre_promotion.as_slice(),
        ),
        (
            CheckStage::PostPromotion,
            spec.blue_green.post_promotion.as_slice(),
        ),
    ]
}

/// The first unusable check of the plan, with the field that says so.
pub fn validate(spec: &MaintenancePlanSpec) -> Result<(), InvalidField> {
    for (stage, checks) in stages(spec) {
        for (i, check) in checks.iter().enumerate() {
            let path = format!("{}[{i}]", stage.field());
            let invalid = |field: &str, reason: String| InvalidField {
                path: if field.is_empty() {
                    path.clone()
                } else {
                    format!("{path}.{field}")
                },
                reason,
            };
            if checks[..i].iter().any(|c| c.name == check.name) {
                return Err(invalid(
                    "name",
                    format!(
                        "two checks are named {:?}; names are unique within a list",
                        check.name
                    ),
                ));
            }
            let kinds = [
                check.http.is_some(),
                check.job.is_some(),
                check.webhook.is_some(),
            ]
            .iter()
            .filter(|k| **k)
            .count();
            if kinds != 1 {
                return Err(invalid(
                    "",
                    format!(
                        "check {:?} has {kinds} of http, job and webhook; it needs exactly one",
                        check.name
                    ),
                ));
            }
            if let Some(webhook) = &check.webhook
                && !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://"))
            {
                return Err(invalid(
                    "webhook.url",
                    format!("{:?} is not an http:// or https:// URL", webhook.url),
                ));
            }
            if let Some(job) = &check.job {
                job_template(&job.template).map_err(|reason| invalid("job.template", reason))?;
                if stage == CheckStage::PrePromotion && spec.blue_green.preview_service.is_empty() {
                    return Err(invalid(
                        "job",
                        "a Job before the switch reaches green only through a preview Service; set spec.blueGreen.previewService (a Service the operator points at green) so that its CUTOVER_SERVICE names it".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The pod template of a Job check, or why it is not one: it must read as a pod template with
/// at least one container, and restart `Never` or `OnFailure` (a Job's pods end).
pub fn job_template(value: &serde_json::Value) -> Result<PodTemplateSpec, String> {
    let template: PodTemplateSpec =
        serde_json::from_value(value.clone()).map_err(|e| format!("not a pod template: {e}"))?;
    let spec = template
        .spec
        .as_ref()
        .ok_or_else(|| "has no spec (a pod template needs spec.containers)".to_string())?;
    if spec.containers.is_empty() {
        return Err("has no containers; a Job needs at least one".into());
    }
    if let Some(policy) = spec.restart_policy.as_deref()
        && policy == "Always"
    {
        return Err(
            "restartPolicy Always is not allowed for a Job's pods; leave it out (Never) or use OnFailure"
                .into(),
        );
    }
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(blue_green: serde_json::Value) -> MaintenancePlanSpec {
        serde_json::from_value(serde_json::json!({
            "target": {"name": "liferay"}, "service": "liferay", "blueGreen": blue_green
        }))
        .unwrap()
    }

    #[test]
    fn unusable_checks_name_their_field() {
        let job = serde_json::json!({"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}});
        let cases = [
            (
                serde_json::json!({"prePromotion": [
                    {"name": "a", "webhook": {"url": "http://x/"}},
                    {"name": "a", "webhook": {"url": "http://y/"}}]}),
                "spec.blueGreen.prePromotion[1].name: two checks are named \"a\"",
            ),
            (
                serde_json::json!({"postPromotion": [{"name": "a"}]}),
                "spec.blueGreen.postPromotion[0]: check \"a\" has 0 of http, job and webhook",
            ),
            (
                serde_json::json!({"postPromotion": [{"name": "a", "webhook": {"url": "ftp://x/"}}]}),
                "spec.blueGreen.postPromotion[0].webhook.url: \"ftp://x/\" is not an http:// or https:// URL",
            ),
            (
                serde_json::json!({"prePromotion": [{"name": "a", "job": job}]}),
                "spec.blueGreen.prePromotion[0].job: a Job before the switch reaches green only through a preview Service",
            ),
            (
                serde_json::json!({"postPromotion": [{"name": "a", "job": {"template": {"spec": {"containers": [{"name": "c"}], "restartPolicy": "Always"}}}}]}),
                "spec.blueGreen.postPromotion[0].job.template: restartPolicy Always",
            ),
        ];
        for (blue_green, words) in cases {
            let error = validate(&spec(blue_green)).unwrap_err().to_string();
            assert!(error.starts_with(words), "{error}");
        }
        let fine = spec(
            serde_json::json!({"previewService": "p", "prePromotion": [{"name": "a", "job": job}]}),
        );
        assert_eq!(validate(&fine), Ok(()));
    }
}
