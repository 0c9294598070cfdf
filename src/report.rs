//! Renders evaluations for people (text) and programs (the contract's JSON). Pure formatting.

use serde::Serialize;

use crate::api::{Finding, Technique};
use crate::rules::Evaluation;

/// The JSON shape of one evaluated plan: `{"name", "strategy", "findings"}`.
#[derive(Debug, Serialize)]
pub struct PlanReport<'a> {
    pub name: &'a str,
    pub strategy: &'static str,
    pub findings: &'a [Finding],
}

impl<'a> PlanReport<'a> {
    pub fn new(name: &'a str, evaluation: &'a Evaluation) -> Self {
        Self {
            name,
            strategy: evaluation.verdict.as_str(),
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
