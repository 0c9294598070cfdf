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
                describe_change(&c.change)
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
            "  change {}  {blocks}  [{}] {}\n",
            f.change, f.rule, f.message
        ));
    }
    out.push_str(&format!("  => {}\n", evaluation.explanation));
    out
}

/// "FixPack de-28-7010 -> de-32-7010", "PortalProperties".
fn describe_change(change: &crate::api::Change) -> String {
    let detail = if let Some(f) = &change.fix_pack {
        format!(" {} -> {}", f.from, f.to)
    } else if let Some(j) = &change.java_version {
        format!(" {} -> {}", j.from, j.to)
    } else if let Some(c) = &change.custom {
        format!(" \"{}\"", c.description)
    } else {
        String::new()
    };
    format!("{}{detail}", change.kind.as_str())
}
