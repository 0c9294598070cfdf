//! The rules for safe cluster maintenance (DESIGN section 2) as pure functions: each change
//! becomes findings, the findings and the plan's settings become a verdict. No IO, no cluster.

mod assess;
mod catalog;
mod cluster_code;
mod decision;
mod fixpack_id;
mod java;
mod schema_version;

pub use assess::{Assessment, Remedy};
pub use catalog::{Catalog, CatalogError, FixPackKind};
pub use cluster_code::{CLUSTER_COMMUNICATION, communication_entry};
pub use fixpack_id::{FixPackId, MalformedFixPackId};
pub use java::major_version;

use crate::api::{Finding, MaintenancePlanSpec, TargetKind, Verdict};

/// The outcome of evaluating one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Why the verdict is what it is; for a rejected plan, the settings that would make it
    /// executable.
    pub explanation: String,
}

/// A field of the plan that the rules cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct InvalidField {
    /// Path from the document root, e.g. `spec.changes[0].fixPack.from`.
    pub path: String,
    pub reason: String,
}

/// Evaluates a plan's changes against the rules and picks a technique, without knowing the
/// target (offline): the target's replica count, which decides whether a StatefulSet can be
/// rolled without a gap, is known only in the cluster.
pub fn evaluate(spec: &MaintenancePlanSpec, catalog: &Catalog) -> Result<Evaluation, InvalidField> {
    evaluate_for(spec, catalog, None)
}

/// Evaluates a plan against the rules for a target with `replicas` (when known). A
/// StatefulSet cannot surge: a rolling restart of a single replica would leave the Service
/// without a ready pod, so `Auto` chooses BlueGreen for it and an explicit RollingRestart
/// needs `allowDowntime`.
pub fn evaluate_for(
    spec: &MaintenancePlanSpec,
    catalog: &Catalog,
    replicas: Option<i32>,
) -> Result<Evaluation, InvalidField> {
    let found = assess::assess_all(spec, catalog)?;
    let stateful = spec.target.kind == TargetKind::StatefulSet;
    let gap = decision::Gap {
        single_replica: stateful && replicas == Some(1),
        unknown_replicas: stateful && replicas.is_none(),
    };
    let verdict = decision::decide(spec.strategy, spec.allow_downtime, &found, gap);
    let explanation = decision::explain(spec.strategy, spec.allow_downtime, &found, verdict, gap);
    Ok(Evaluation {
        verdict,
        findings: found.into_iter().map(|a| a.finding).collect(),
        explanation,
    })
}
