//! The rules' view of a plan in the cluster: its spec, the target's replica count, and the
//! running and new pod templates the changes of DESIGN section 2b are read from. The running
//! template is what the pods run: the target's own template, a paused Deployment's running
//! ReplicaSet or the current revision of a target that holds its template back (GitOps flow),
//! or, once the plan has started, the original template it saved.
//! The new one is the plan's `update` applied to it, or the pending template. Pure; what it
//! cannot work out (no target, an update that does not fit) leaves the templates out and the
//! preflight says why.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::MaintenancePlanSpec;
use crate::operator::replica_sets;
use crate::operator::snapshot::Snapshot;
use crate::operator::template::updated_template;
use crate::operator::workload::saved::Saved;
use crate::rules::{Catalog, Evaluation, InvalidField, Known, Templates, evaluate_with};

/// Evaluates the plan with what the cluster shows of its target; `saved` is the target's
/// record once the plan has acted on it (the templates are then those of the start).
pub(super) fn evaluate_in_cluster(
    snap: &Snapshot,
    catalog: &Catalog,
    saved: Option<&Saved>,
) -> Result<Evaluation, InvalidField> {
    let spec = &snap.plan.spec;
    let replicas = saved
        .and_then(|s| s.replicas)
        .or(snap.target.as_ref().map(|t| t.replicas()));
    let templates = templates(snap, saved);
    let known = Known {
        replicas,
        templates: templates
            .as_ref()
            .map(|(running, new)| Templates { running, new }),
    };
    evaluate_with(spec, catalog, known)
}

/// The running and the new template, when both can be worked out.
fn templates(snap: &Snapshot, saved: Option<&Saved>) -> Option<(PodTemplateSpec, PodTemplateSpec)> {
    let target = snap.target.as_ref()?;
    let live = target.template()?;
    if let Some(running) = pending_running(snap, saved) {
        // A pending template whose running one cannot be read: nothing to compare.
        return Some((running?, live.clone()));
    }
    let running = saved
        .and_then(|s| s.template.clone())
        .unwrap_or_else(|| live.clone());
    let new = new_template(&snap.plan.spec, &target.to_string(), &running)?;
    Some((running, new))
}

/// GitOps flow (`Some`): the template the pods run while the target's own is pending, when it
/// can be read. For a paused Deployment, that of its running ReplicaSet, before the plan
/// starts or once it holds the sets; for a target that holds its template back itself, its
/// current revision's, as observed before the plan starts and as recorded once it runs.
fn pending_running(snap: &Snapshot, saved: Option<&Saved>) -> Option<Option<PodTemplateSpec>> {
    let target = snap.target.as_ref()?;
    if let Some(held) = saved.and_then(|s| s.held.as_ref()) {
        return Some(held.running_template.clone());
    }
    let running = match saved.and_then(|s| s.handover.as_ref()) {
        Some(handover) => Some(
            snap.handover_sets
                .iter()
                .chain(&snap.replica_sets)
                .find(|rs| replica_sets::name(rs) == handover.old_set)?,
        ),
        None if saved.is_none() && target.held_revisions().is_some() => {
            return Some(snap.running_template.clone());
        }
        None if saved.is_none() => {
            Some(replica_sets::pending_template(target, &snap.replica_sets)?)
        }
        None => return None,
    };
    Some(running.and_then(|rs| rs.spec.as_ref()?.template.clone()))
}

fn new_template(
    spec: &MaintenancePlanSpec,
    target: &str,
    running: &PodTemplateSpec,
) -> Option<PodTemplateSpec> {
    let update = spec.update.clone().unwrap_or_default();
    updated_template(target, running, &update).ok()
}
