//! Checks that a plan can act on what it names before it touches anything: the target and
//! the Service exist, the Service selects the target's pods, the update fits the template.
//! Pure; a failure rejects the plan with a message that says what is wrong.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::labels::map_matches;
use super::snapshot::Snapshot;
use super::template::updated_template;

/// The target and its new template, once the plan is known to be able to act.
pub struct Ready<'a> {
    pub target: &'a Deployment,
    pub new_template: PodTemplateSpec,
}

pub fn check(snap: &Snapshot) -> Result<Ready<'_>, String> {
    let spec = &snap.plan.spec;
    let namespace = snap.plan.metadata.namespace.as_deref().unwrap_or("default");
    let target = snap.target.as_ref().ok_or_else(|| {
        format!(
            "target deployment {} not found in namespace {namespace}",
            spec.target.name
        )
    })?;
    let template = target
        .spec
        .as_ref()
        .map(|s| &s.template)
        .ok_or_else(|| format!("deployment {} has no spec", spec.target.name))?;
    if template
        .spec
        .as_ref()
        .is_none_or(|s| s.containers.is_empty())
    {
        return Err(format!("deployment {} has no containers", spec.target.name));
    }
    let service = snap.service.as_ref().ok_or_else(|| {
        format!(
            "service {} not found in namespace {namespace}",
            spec.service
        )
    })?;
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            format!(
                "service {} has no selector, so cutover cannot steer its traffic",
                spec.service
            )
        })?;
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !map_matches(selector, &labels) {
        return Err(format!(
            "service {} selects {} but the pods of deployment {} are labelled {}",
            spec.service,
            super::labels::map_query(selector),
            spec.target.name,
            super::labels::map_query(&labels)
        ));
    }
    let preview = &spec.blue_green.preview_service;
    if !preview.is_empty() && snap.preview.is_none() {
        return Err(format!(
            "preview service {preview} not found in namespace {namespace}"
        ));
    }
    let update = spec.update.clone().unwrap_or_default();
    let new_template =
        updated_template(&spec.target.name, template, &update).map_err(|e| e.to_string())?;
    Ok(Ready {
        target,
        new_template,
    })
}
