//! Label selectors (the query-string syntax with `=`, `==`, `!=`, `in`, `notin`, `key`, `!key`,
//! and the `matchLabels`/`matchExpressions` objects of specs) and field selectors (equality
//! on any dotted field path). Parsing and matching only.

use crate::error::ApiError;
use serde_json::Value;
use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Req>,
    /// A selector that matches nothing (a `null` spec selector in some contexts).
    nothing: bool,
}

impl LabelSelector {
    /// Parses the query-string form (`app=web,tier in (a,b),!legacy`).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let bad = || {
                ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label selector {part:?}"
                ))
            };
            if let Some(key) = part.strip_prefix('!') {
                reqs.push(Req::NotExists(key.trim().to_string()));
            } else if let Some((k, v)) = part.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = part.split_once("==") {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = part.split_once('=') {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, rest)) = split_word(part, " notin ") {
                reqs.push(Req::NotIn(k, parse_set(&rest).ok_or_else(bad)?));
            } else if let Some((k, rest)) = split_word(part, " in ") {
                reqs.push(Req::In(k, parse_set(&rest).ok_or_else(bad)?));
            } else if part
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./".contains(c))
            {
                reqs.push(Req::Exists(part.to_string()));
            } else {
                return Err(bad());
            }
        }
        Ok(LabelSelector {
            reqs,
            nothing: false,
        })
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`None` or `null`: matches nothing).
    pub fn from_object(v: Option<&Value>) -> Self {
        let Some(v) = v.filter(|v| v.is_object()) else {
            return LabelSelector {
                reqs: Vec::new(),
                nothing: true,
            };
        };
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                reqs.push(Req::Eq(
                    k.clone(),
                    val.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_string();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                match e["operator"].as_str().unwrap_or_default() {
                    "In" => reqs.push(Req::In(key, values)),
                    "NotIn" => reqs.push(Req::NotIn(key, values)),
                    "Exists" => reqs.push(Req::Exists(key)),
                    "DoesNotExist" => reqs.push(Req::NotExists(key)),
                    _ => {
                        return LabelSelector {
                            reqs: Vec::new(),
                            nothing: true,
                        };
                    }
                }
            }
        }
        LabelSelector {
            reqs,
            nothing: false,
        }
    }

    /// Builds an equality selector from a map (a Service's `spec.selector`); an empty or
    /// missing map matches nothing.
    pub fn from_map(v: Option<&Value>) -> Self {
        match v.and_then(Value::as_object) {
            Some(m) if !m.is_empty() => LabelSelector {
                reqs: m
                    .iter()
                    .map(|(k, v)| Req::Eq(k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
                nothing: false,
            },
            _ => LabelSelector {
                reqs: Vec::new(),
                nothing: true,
            },
        }
    }

    /// Whether the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    /// Whether a label set matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels that `get` looks up match.
    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.reqs.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Req::NotIn(k, vs) => get(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// Whether an object's labels match.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.nothing {
            return false;
        }
        if self.reqs.is_empty() {
            return true;
        }
        // Looked up in the object itself: matching runs for every object of a list or a
        // watch, and copying each object's labels into a map first would dominate it.
        // Non-string values are skipped, as `util::labels` does.
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn split_word(s: &str, word: &str) -> Option<(String, String)> {
    let i = s.find(word)?;
    Some((
        s[..i].trim().to_string(),
        s[i + word.len()..].trim().to_string(),
    ))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

/// A parsed field selector: equalities and inequalities on dotted paths.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector {
    reqs: Vec<(Vec<String>, String, bool)>,
}

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, eq) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {part:?}"
                )));
            };
            reqs.push((
                path.trim().split('.').map(str::to_string).collect(),
                value.trim().to_string(),
                eq,
            ));
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Refuses, as the API server does, a field a kind cannot be selected by. Pods: the
    /// fields kube-apiserver indexes for them; other kinds: anything (the server's lists per
    /// kind are not modelled).
    pub fn check_supported(&self, kind: &str) -> Result<(), ApiError> {
        const POD_FIELDS: &[&str] = &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ];
        if kind != "Pod" {
            return Ok(());
        }
        for (path, _, _) in &self.reqs {
            let field = path.join(".");
            if !POD_FIELDS.contains(&field.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(())
    }

    /// The value required for `metadata.name`, if the selector pins it.
    pub fn name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(p, _, eq)| *eq && p.len() == 2 && p[0] == "metadata" && p[1] == "name")
            .map(|(_, v, _)| v.as_str())
    }

    /// Whether an object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, want, eq)| {
            let mut cur = obj;
            for seg in path {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => {
                        cur = &Value::Null;
                        break;
                    }
                }
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_based_label_selectors() {
        let s = LabelSelector::parse("app=web,tier in (front, back),env notin (prod),!legacy,team")
            .unwrap();
        assert!(s.matches(&l(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev"),
            ("team", "a")
        ])));
        assert!(!s.matches(&l(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "prod"),
            ("team", "a")
        ])));
        assert!(!s.matches(&l(&[
            ("app", "web"),
            ("tier", "front"),
            ("legacy", "x"),
            ("team", "a")
        ])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "mid"), ("team", "a")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "front")])));
        assert!(LabelSelector::parse("a!=b").unwrap().matches(&l(&[])));
        assert!(LabelSelector::parse("a in (b").is_err());
    }

    #[test]
    fn object_selectors_and_field_selectors() {
        let sel = json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "v", "operator": "In", "values": ["1", "2"]}]});
        let s = LabelSelector::from_object(Some(&sel));
        assert!(s.matches(&l(&[("app", "x"), ("v", "2")])));
        assert!(!s.matches(&l(&[("app", "x"), ("v", "3")])));
        assert!(!LabelSelector::from_object(None).matches(&l(&[])));
        let f = FieldSelector::parse("metadata.name=a,status.phase!=Failed").unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}})));
        assert!(!f.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Failed"}})));
        assert_eq!(f.name(), Some("a"));
    }

    #[test]
    fn matching_an_object_reads_its_labels_as_matching_a_copy_of_them_does() {
        let selectors = [
            "app=web,tier in (front, back),env notin (prod),!legacy,team",
            "app!=web",
            "team",
            "!team",
            "",
        ];
        let objects = [
            json!({"metadata": {"labels": {"app": "web", "tier": "front", "team": "a"}}}),
            json!({"metadata": {"labels": {"app": "db", "env": "prod", "legacy": "x"}}}),
            json!({"metadata": {"labels": {"app": "web", "team": 7}}}),
            json!({"metadata": {}}),
        ];
        for text in selectors {
            let s = LabelSelector::parse(text).unwrap();
            for o in &objects {
                let copied = crate::util::labels(o);
                assert_eq!(s.matches_object(o), s.matches(&copied), "{text} on {o}");
            }
        }
        let nothing = LabelSelector::from_object(None);
        assert!(!nothing.matches_object(&objects[0]));
    }
}
