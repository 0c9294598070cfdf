//! Reads MaintenancePlans from YAML text (one or more documents), with errors that name the
//! document, the field path and the reason. Documents of other API groups are skipped, so a
//! plan can be evaluated from a file that also holds the manifests it belongs with.

use std::fmt;

use serde::Deserialize;

use crate::api::MaintenancePlan;
use crate::rules::InvalidField;

const GROUP: &str = "cutover.dev";
const API_VERSION: &str = "cutover.dev/v1alpha1";
const KIND: &str = "MaintenancePlan";

/// A plan read from a document of the input.
#[derive(Debug, Clone)]
pub struct PlanDocument {
    /// 1-based position of the document in its source.
    pub document: usize,
    pub plan: MaintenancePlan,
}

impl PlanDocument {
    pub fn name(&self) -> &str {
        self.plan.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Input that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// File name, or `-` for standard input.
    pub source: String,
    /// 1-based document number, when the error is inside one.
    pub document: Option<usize>,
    pub plan: Option<String>,
    /// Field path from the document root, e.g. `spec.changes[0].fixPack.from`.
    pub path: Option<String>,
    pub reason: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(doc) = self.document {
            write!(f, ": document {doc}")?;
        }
        if let Some(plan) = &self.plan {
            write!(f, " (plan {plan:?})")?;
        }
        if let Some(path) = &self.path {
            write!(f, ": {path}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// An error found by the rules in a document that parsed.
    pub fn in_plan(source: &str, doc: &PlanDocument, field: InvalidField) -> Self {
        Self {
            source: source.to_string(),
            document: Some(doc.document),
            plan: doc.plan.metadata.name.clone(),
            path: Some(field.path),
            reason: field.reason,
        }
    }
}

/// Every MaintenancePlan in `text`, in order. Fails on the first document that is not
/// valid YAML or not a valid plan; fails too when there is no plan at all.
pub fn read_plans(text: &str, source: &str) -> Result<Vec<PlanDocument>, InputError> {
    let error = |document: Option<usize>, path: Option<String>, reason: String| InputError {
        source: source.to_string(),
        document,
        plan: None,
        path,
        reason,
    };
    let mut plans = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        let value = serde_yaml_ng::Value::deserialize(doc)
            .map_err(|e| error(Some(number), None, format!("invalid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let Some(map) = value.as_mapping() else {
            return Err(error(
                Some(number),
                None,
                "expected a Kubernetes object (a YAML mapping)".into(),
            ));
        };
        let field = |key: &str| {
            map.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        if api_version.split('/').next() != Some(GROUP) {
            if api_version.is_empty() && kind.is_empty() {
                return Err(error(
                    Some(number),
                    None,
                    "apiVersion and kind are missing".into(),
                ));
            }
            continue;
        }
        if api_version != API_VERSION || kind != KIND {
            return Err(error(
                Some(number),
                Some(
                    if api_version != API_VERSION {
                        "apiVersion"
                    } else {
                        "kind"
                    }
                    .into(),
                ),
                format!("{api_version} {kind} is not a {API_VERSION} {KIND}"),
            ));
        }
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string);
        let plan = parse_plan(value).map_err(|(path, reason)| InputError {
            plan: name.clone(),
            ..error(Some(number), Some(path), reason)
        })?;
        if plan.metadata.name.as_deref().is_none_or(str::is_empty) {
            return Err(error(
                Some(number),
                Some("metadata.name".into()),
                "a plan needs a name".into(),
            ));
        }
        plans.push(PlanDocument {
            document: number,
            plan,
        });
    }
    if plans.is_empty() {
        return Err(error(None, None, format!("no {API_VERSION} {KIND} found")));
    }
    Ok(plans)
}

/// Deserializes one plan strictly: a wrong type or an unknown field is an error with its path.
fn parse_plan(value: serde_yaml_ng::Value) -> Result<MaintenancePlan, (String, String)> {
    let mut unknown: Vec<String> = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let plan: MaintenancePlan = serde_path_to_error::deserialize(ignoring).map_err(|e| {
        let path = e.path().to_string();
        let mut reason = e.into_inner().to_string();
        if reason.contains("expected a string") {
            reason.push_str(" (quote the value)");
        }
        (path, reason)
    })?;
    unknown.retain(|p| p != "apiVersion" && p != "kind");
    if let Some(path) = unknown.into_iter().next() {
        return Err((path, "unknown field".to_string()));
    }
    Ok(plan)
}
