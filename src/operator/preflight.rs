//! Checks that a plan can act on what it names before it touches anything: the target and
//! the Service exist, the Service selects the target's pods, pods run at all, the update fits
//! the template.
//! Pure; a failure rejects the plan with a message that says what is wrong.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::labels::map_matches;
use super::snapshot::Snapshot;
use super::template::{updated_template, with_green_only};
use super::workload::{Kind, Workload};

/// The target and its new template, once the plan is known to be able to act.
pub struct Ready<'a> {
    pub target: &'a Workload,
    pub new_template: PodTemplateSpec,
}

pub fn check(snap: &Snapshot) -> Result<Ready<'_>, String> {
    let spec = &snap.plan.spec;
    let namespace = snap.plan.metadata.namespace.as_deref().unwrap_or("default");
    let target = snap.target.as_ref().ok_or_else(|| {
        format!(
            "target {} {} not found in namespace {namespace}",
            Kind::from(spec.target.kind),
            spec.target.name
        )
    })?;
    let template = target
        .template()
        .ok_or_else(|| format!("{target} has no spec"))?;
    if let Some(governing) = target.governing_service()
        && !snap.service_names.iter().any(|n| n == governing)
    {
        return Err(format!(
            "{target}: spec.serviceName names service {governing}, which does not exist in namespace {namespace}; its pods get their DNS names (and cluster discovery its members) through it, so create it first"
        ));
    }
    if target.replicas() == 0 {
        return Err(format!(
            "{target} has spec.replicas 0: no pod runs, so there is nothing to restart or cut over; scale it up first"
        ));
    }
    if template
        .spec
        .as_ref()
        .is_none_or(|s| s.containers.is_empty())
    {
        return Err(format!("{target} has no containers"));
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
            "service {} selects {} but the pods of {target} are labelled {}",
            spec.service,
            super::labels::map_query(selector),
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
        updated_template(&target.to_string(), template, &update).map_err(|e| e.to_string())?;
    if !spec.blue_green.green_only.is_empty() {
        with_green_only(spec, &target.to_string(), &new_template).map_err(|e| e.to_string())?;
    }
    Ok(Ready {
        target,
        new_template,
    })
}
