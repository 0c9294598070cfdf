//! Label selector matching and rendering, for finding a workload's pods in a snapshot and for
//! asking the API server for them. Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// True when `labels` satisfy `selector` (matchLabels and matchExpressions). An empty
/// selector matches everything, as in Kubernetes.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .as_ref()
        .is_none_or(|want| map_matches(want, labels));
    let expressions_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && expressions_ok
}

/// True when every `key=value` of `want` is in `labels` (a Service selector, say).
pub fn map_matches(want: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The selector in the query syntax of the API (`a=b,c in (d,e)`).
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// `selector` narrowed to the pods at `revision` of `label` (a Service pinned to one revision),
/// or `None` when the revision is not known: a label with an empty value selects no pod.
pub fn pin(
    selector: &BTreeMap<String, String>,
    label: &str,
    revision: &str,
) -> Option<BTreeMap<String, String>> {
    if revision.is_empty() {
        return None;
    }
    let mut pinned = selector.clone();
    pinned.insert(label.to_string(), revision.to_string());
    Some(pinned)
}

/// A `key=value,...` query for a plain label map.
pub fn map_query(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "liferay")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["web".into(), "api".into()]),
            }]),
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("app", "liferay"), ("tier", "web")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "liferay"), ("tier", "db")])
        ));
        assert!(!selector_matches(&selector, &labels(&[("tier", "web")])));
        assert_eq!(selector_query(&selector), "app=liferay,tier in (web,api)");
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn a_pin_to_an_unknown_revision_is_none() {
        let selector = labels(&[("app", "liferay")]);
        assert_eq!(pin(&selector, "pod-template-hash", ""), None);
        assert_eq!(
            pin(&selector, "pod-template-hash", "abc"),
            Some(labels(&[("app", "liferay"), ("pod-template-hash", "abc")]))
        );
    }
}

/// The name of the green twin of Service `service`: `<service>-green`, or, where that is
/// longer than a Service's name may be, `service` cut short with a hash of the full name, so
/// that two long names never share a twin. Used for the twins themselves and for a green
/// StatefulSet's `serviceName`.
pub fn twin_name(service: &str) -> String {
    super::names::derive(service, "green", super::names::Rule::Dns1035)
}

#[cfg(test)]
mod twin_tests {
    use super::twin_name;

    #[test]
    fn a_short_name_gets_the_green_suffix() {
        assert_eq!(twin_name("liferay-headless"), "liferay-headless-green");
    }

    #[test]
    fn a_long_name_is_cut_to_a_dns_label_with_a_hash() {
        let long = "a".repeat(60);
        let twin = twin_name(&long);
        assert!(twin.len() <= 63, "{twin}");
        assert!(twin.ends_with("-green"));
        assert_ne!(twin, twin_name(&format!("{}b", "a".repeat(59))));
        assert_eq!(twin, twin_name(&long));
    }
}
