//! Checks that a plan can act on what it names before it touches anything: the target and
//! the Service exist, the Service selects the target's pods, pods run at all, the update fits
//! the template, and the new pods (and green's) still carry the labels the Service and the
//! target's own selector select.
//! Pure; a failure rejects the plan with a message that says what is wrong.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::labels::{map_matches, map_query, selector_matches, selector_query};
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
    // The pods that run now: a pending template's (GitOps flow) are not running yet.
    let running = running_template(snap, target).unwrap_or(template);
    let labels = running
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !map_matches(selector, &labels) {
        return Err(format!(
            "service {} selects {} but the pods of {target} are labelled {}",
            spec.service,
            map_query(selector),
            map_query(&labels)
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
    let keeps = |field: &str, template: &PodTemplateSpec| {
        labels_kept(field, target, &spec.service, selector, template)
    };
    if running != template {
        keeps(&format!("the pending template of {target}"), template)?;
    }
    keeps("spec.update.podTemplatePatch", &new_template)?;
    if !spec.blue_green.green_only.is_empty() {
        let green =
            with_green_only(spec, &target.to_string(), &new_template).map_err(|e| e.to_string())?;
        keeps("spec.blueGreen.greenOnly.podTemplatePatch", &green)?;
    }
    Ok(Ready {
        target,
        new_template,
    })
}

/// The template of the pods that run when `target` holds a pending template back (GitOps
/// flow): its running ReplicaSet's, or its current revision's.
fn running_template<'a>(snap: &'a Snapshot, target: &Workload) -> Option<&'a PodTemplateSpec> {
    if let Some(rs) = super::replica_sets::pending_template(target, &snap.replica_sets) {
        return rs.spec.as_ref().and_then(|s| s.template.as_ref());
    }
    snap.running_template.as_ref()
}

/// The pods of `template` (made from the plan's patch at `field`) still carry every label
/// Service `service` selects with `selector`, and match the target's own selector: a patch
/// that drops or changes one would leave the Service without endpoints once they replace the
/// old pods (or the target unable to own them).
fn labels_kept(
    field: &str,
    target: &Workload,
    service: &str,
    selector: &BTreeMap<String, String>,
    template: &PodTemplateSpec,
) -> Result<(), String> {
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let lost: Vec<String> = selector
        .iter()
        .filter(|(k, v)| labels.get(*k) != Some(*v))
        .map(|(k, v)| match labels.get(k) {
            Some(other) => format!("{k}={v} (it is {k}={other} there)"),
            None => format!("{k}={v} (it is not there)"),
        })
        .collect();
    if !lost.is_empty() {
        return Err(format!(
            "{field}: service {service} selects {}, but the new pods would not carry {}: the service would be left without endpoints; keep the labels the service selects",
            map_query(selector),
            lost.join(", ")
        ));
    }
    if let Some(own) = target.selector()
        && !selector_matches(own, &labels)
    {
        return Err(format!(
            "{field}: the selector of {target} ({}) would not match the new pods (labelled {}); keep the labels it selects",
            selector_query(own),
            map_query(&labels)
        ));
    }
    Ok(())
}
