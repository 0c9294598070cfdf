//! Renders evaluations for people (text) and programs (the contract's JSON). Pure formatting.

use serde::Serialize;

use crate::api::{EffectiveChange, Finding, Technique};
use crate::rules::Evaluation;

/// The JSON shape of one evaluated plan: `{"name", "strategy", "findings"}`, and `changes`
/// (the effective changes, declared then inferred) when any were inferred.
#[derive(Debug, Serialize)]
pub struct PlanReport<'a> {
    pub name: &'a str,
    pub strategy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<&'a [EffectiveChange]>,
    pub findings: &'a [Finding],
}

impl<'a> PlanReport<'a> {
    pub fn new(name: &'a str, evaluation: &'a Evaluation) -> Self {
        Self {
            name,
            strategy: evaluation.verdict.as_str(),
            changes: evaluation
                .changes
                .iter()
                .any(|c| c.source == crate::api::ChangeSource::Inferred)
                .then_some(evaluation.changes.as_slice()),
            findings: &evaluation.findings,
        }
    }
}

/// One object for one plan, an array for several.
pub fn json(reports: &[PlanReport]) -> String {
    let rendered = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    };
    rendered.expect("reports always serialize")
}

/// The strategy, one line per finding, then why.
pub fn text(name: &str, evaluation: &Evaluation) -> String {
    let mut out = format!("{name}: {}\n", evaluation.verdict.as_str());
    for (i, c) in evaluation.changes.iter().enumerate() {
        if let Some(from) = &c.inferred_from {
            out.push_str(&format!(
                "  change {i}  inferred {}  from {from}\n",
                c.change.summary()
            ));
        }
    }
    for f in &evaluation.findings {
        let blocks = if f.blocks.is_empty() {
            "ok".to_string()
        } else {
            let names: Vec<&str> = f.blocks.iter().map(|t| Technique::as_str(*t)).collect();
            format!("blocks {}", names.join("+"))
        };
        out.push_str(&format!(
            "  {}  {blocks}  [{}] {}\n",
            f.about(),
            f.rule,
            f.message
        ));
    }
    out.push_str(&format!("  => {}\n", evaluation.explanation));
    out
}

/// For a BlueGreen plan whose changes touch cluster communication and whose
/// `blueGreen.greenOnly` is empty: the line that says the cluster-isolation check (DESIGN
/// invariant 11) needs the namespace's Services and is left to the operator. Text only; the
/// JSON contract is unchanged.
pub fn isolation_note(evaluation: &Evaluation, green_only_empty: bool) -> Option<String> {
    (evaluation.verdict == crate::api::Verdict::BlueGreen
        && evaluation.clustering.is_some()
        && green_only_empty)
        .then(|| {
            "  note: the changes touch cluster communication and blueGreen.greenOnly is empty; whether another Service (a headless discovery Service) selects the target's pods is checked by the operator, which rejects the plan if one does: point green's discovery at the twin <service>-green in blueGreen.greenOnly\n".to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::isolation_note;
    use crate::api::MaintenancePlanSpec;
    use crate::rules::{Catalog, evaluate};

    fn spec(strategy: &str, changes: serde_json::Value) -> MaintenancePlanSpec {
        serde_json::from_value(serde_json::json!({
            "target": {"name": "liferay"}, "service": "liferay",
            "strategy": strategy, "changes": changes
        }))
        .unwrap()
    }

    #[test]
    fn a_blue_green_cluster_code_plan_notes_that_isolation_is_the_operators_to_check() {
        let cluster = serde_json::json!([{"type": "ClusterCode",
            "clusterCode": {"categories": ["Clustering"]}}]);
        let e = evaluate(&spec("BlueGreen", cluster.clone()), Catalog::builtin()).unwrap();
        assert!(
            isolation_note(&e, true)
                .unwrap()
                .contains("checked by the operator")
        );
        assert_eq!(isolation_note(&e, false), None, "greenOnly is given");
        let other = serde_json::json!([{"type": "PortalProperties"}]);
        let e = evaluate(&spec("BlueGreen", other), Catalog::builtin()).unwrap();
        assert_eq!(isolation_note(&e, true), None, "no cluster code");
        let e = evaluate(&spec("FullRestart", cluster), Catalog::builtin()).unwrap();
        assert_eq!(isolation_note(&e, true), None, "no green copy");
    }
}
