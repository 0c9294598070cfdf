//! The rules for safe cluster maintenance (DESIGN section 2) as pure functions: each change
//! becomes findings, the findings and the plan's settings become a verdict. No IO, no cluster.

mod assess;
mod catalog;
pub mod checks;
mod cluster_code;
mod combine;
mod decision;
mod fixpack_id;
pub mod image;
mod infer;
mod java;
pub mod privilege;
mod schema_version;

pub use assess::{Assessment, Remedy};
pub use catalog::{Catalog, CatalogError, FixPackKind, InferenceNames};
pub use cluster_code::{CLUSTER_COMMUNICATION, communication_entry};
pub use fixpack_id::{FixPackId, MalformedFixPackId};
pub use infer::{BadTemplateImage, Inferred, infer};
pub use java::major_version;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::{EffectiveChange, Finding, MaintenancePlanSpec, TargetKind, Verdict};

/// The outcome of evaluating one plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// The effective changes: declared first, then inferred; findings index into it.
    pub changes: Vec<EffectiveChange>,
    pub findings: Vec<Finding>,
    /// Why the verdict is what it is; for a rejected plan, the settings that would make it
    /// executable.
    pub explanation: String,
    /// The first change that touches cluster communication (cluster code, a clustering fix
    /// pack), if any: a green copy must be kept out of blue's cluster (DESIGN invariant 11).
    /// Not part of the JSON.
    pub clustering: Option<u32>,
}

/// A field of the plan that the rules cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct InvalidField {
    /// Path from the document root, e.g. `spec.changes[0].fixPack.from`.
    pub path: String,
    pub reason: String,
}

/// The running pod template and the one the plan rolls out, for inferring changes.
#[derive(Debug, Clone, Copy)]
pub struct Templates<'a> {
    pub running: &'a PodTemplateSpec,
    pub new: &'a PodTemplateSpec,
}

/// What is known of the target besides the plan: in the cluster all of it, offline what the
/// target's manifests say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The target's replica count: a StatefulSet of one cannot be rolled without a gap.
    pub replicas: Option<i32>,
    /// The running and the new template, to read changes from (DESIGN section 2b).
    pub templates: Option<Templates<'a>>,
}

/// Evaluates a plan's declared changes against the rules and picks a technique, without
/// knowing the target (offline, without manifests).
pub fn evaluate(spec: &MaintenancePlanSpec, catalog: &Catalog) -> Result<Evaluation, InvalidField> {
    evaluate_with(spec, catalog, Known::default())
}

/// As [`evaluate`], for a target with `replicas` (when known). A StatefulSet cannot surge: a
/// rolling restart of a single replica would leave the Service without a ready pod, so
/// `Auto` chooses BlueGreen for it and an explicit RollingRestart needs `allowDowntime`.
pub fn evaluate_for(
    spec: &MaintenancePlanSpec,
    catalog: &Catalog,
    replicas: Option<i32>,
) -> Result<Evaluation, InvalidField> {
    evaluate_with(
        spec,
        catalog,
        Known {
            replicas,
            templates: None,
        },
    )
}

/// Evaluates a plan with what is known of its target: the changes read from the template
/// diff are added when the plan's `inferChanges` allows it, and the replica count decides
/// whether a StatefulSet can be rolled without a gap.
pub fn evaluate_with(
    spec: &MaintenancePlanSpec,
    catalog: &Catalog,
    known: Known,
) -> Result<Evaluation, InvalidField> {
    checks::validate(spec)?;
    let inferred = match known.templates {
        Some(t) if spec.infer_changes => {
            infer(t.running, t.new, catalog.inference()).map_err(|e| InvalidField {
                path: e.field,
                reason: e.error.to_string(),
            })?
        }
        _ => Vec::new(),
    };
    let effective = combine::combine(&spec.changes, inferred, catalog);
    let found = assess::assess_all(spec, &effective, catalog)?;
    let stateful = spec.target.kind == TargetKind::StatefulSet;
    let gap = decision::Gap {
        single_replica: stateful && known.replicas == Some(1),
        unknown_replicas: stateful && known.replicas.is_none(),
    };
    let verdict = decision::decide(spec.strategy, spec.allow_downtime, &found, gap);
    let explanation = decision::explain(spec.strategy, spec.allow_downtime, &found, verdict, gap);
    let clustering = found
        .iter()
        .find(|a| a.clustering)
        .and_then(|a| a.finding.change);
    Ok(Evaluation {
        clustering,
        verdict,
        changes: effective.into_iter().map(|(c, _)| c).collect(),
        findings: found.into_iter().map(|a| a.finding).collect(),
        explanation,
    })
}
