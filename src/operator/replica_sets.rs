//! Reads a Deployment's ReplicaSets the way its controller does: which one runs, whether a
//! paused Deployment has a pending template (its template differs from the running
//! ReplicaSet's), and the ReplicaSet cutover creates for that template. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::names::{self, Rule};
use super::pods::TEMPLATE_HASH;
use super::workload::Workload;

/// `spec.replicas` of a ReplicaSet.
pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

/// The `pod-template-hash` label of a ReplicaSet.
pub fn hash(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(TEMPLATE_HASH))
        .map(String::as_str)
}

/// A template without its `pod-template-hash` label, for comparing as the Deployment
/// controller does.
fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH);
        if labels.is_empty() {
            t.metadata.as_mut().expect("has metadata").labels = None;
        }
    }
    t
}

/// The two templates are the same apart from `pod-template-hash`.
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn template_of(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// What a Deployment's ReplicaSets say about its template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Running<'a> {
    /// One ReplicaSet has pods and its template is the Deployment's.
    Current(&'a ReplicaSet),
    /// One ReplicaSet has pods and the Deployment's template differs: a paused Deployment
    /// holds this template back.
    Pending(&'a ReplicaSet),
    /// No ReplicaSet has pods.
    Idle,
    /// Several ReplicaSets have pods: a rollout is under way (or was paused half way).
    Rolling(usize),
}

/// Where `target` stands, from the ReplicaSets it owns.
pub fn running<'a>(target: &Workload, owned: &'a [ReplicaSet]) -> Running<'a> {
    let active: Vec<&ReplicaSet> = owned.iter().filter(|rs| replicas(rs) > 0).collect();
    match active.as_slice() {
        [] => Running::Idle,
        [rs] => match (target.template(), template_of(rs)) {
            (Some(want), Some(has)) if !same_template(want, has) => Running::Pending(rs),
            _ => Running::Current(rs),
        },
        many => Running::Rolling(many.len()),
    }
}

/// The Deployment is paused with a template its pods do not run yet: the GitOps flow. (A
/// workload that owns no ReplicaSets never has one.)
pub fn pending_template<'a>(target: &Workload, owned: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let paused = target.paused() == Some(true);
    match running(target, owned) {
        Running::Pending(rs) if paused => Some(rs),
        _ => None,
    }
}

/// An owned ReplicaSet that already carries `template` (an earlier revision), if any.
pub fn with_template<'a>(
    owned: &'a [ReplicaSet],
    template: &PodTemplateSpec,
) -> Option<&'a ReplicaSet> {
    owned
        .iter()
        .find(|rs| template_of(rs).is_some_and(|t| same_template(t, template)))
}

/// A stable label-safe hash of a template (FNV-1a over its JSON, ten base-36 digits).
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let bytes = serde_json::to_vec(&without_hash(template)).expect("templates serialize");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const DIGITS: &[u8] = b"0123456789bcdfghjklmnpqrstvwxz";
    (0..10)
        .map(|i| DIGITS[((h >> (i * 6)) % DIGITS.len() as u64) as usize] as char)
        .collect()
}

/// The ReplicaSet the Deployment's controller would make for `template` (`<target>-<hash>`,
/// cut with a hash of its own where a ReplicaSet's name may not be that long), but labelled
/// `labels` (which the Deployment's selector does not match, so it is not adopted yet) and
/// with no pods.
pub fn for_template(
    target: &Workload,
    template: &PodTemplateSpec,
    labels: BTreeMap<String, String>,
) -> ReplicaSet {
    let hash = template_hash(template);
    let mut template = without_hash(template);
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH.to_string(), hash.clone());
    let selector = target.selector().cloned().unwrap_or_default();
    let mut match_labels = selector.match_labels.unwrap_or_default();
    match_labels.insert(TEMPLATE_HASH.to_string(), hash.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(names::derive(target.name(), &hash, Rule::Subdomain(253))),
            namespace: target.metadata().namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: target.min_ready_seconds(),
            selector: LabelSelector {
                match_labels: Some(match_labels),
                match_expressions: selector.match_expressions,
            },
            template: Some(template),
        }),
        status: None,
    }
}

/// The labels under which the Deployment's controller adopts a ReplicaSet for its template:
/// the template's labels with the hash.
pub fn adoptable_labels(rs: &ReplicaSet) -> BTreeMap<String, String> {
    let mut labels = template_of(rs)
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(h) = rs
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .and_then(|l| l.get(TEMPLATE_HASH))
    {
        labels.insert(TEMPLATE_HASH.to_string(), h.clone());
    }
    labels
}

/// A merge patch that makes a ReplicaSet's labels exactly `labels`.
pub fn relabel_patch(rs: &ReplicaSet, labels: &BTreeMap<String, String>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for key in rs.metadata.labels.iter().flatten().map(|(k, _)| k) {
        if !labels.contains_key(key) {
            map.insert(key.clone(), serde_json::Value::Null);
        }
    }
    for (k, v) in labels {
        map.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    serde_json::json!({"metadata": {"labels": map}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels = json!({"app": "liferay"});
        if let Some(h) = hash {
            labels[TEMPLATE_HASH] = json!(h);
        }
        serde_json::from_value(json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "liferay", "image": image}]}
        }))
        .unwrap()
    }

    fn deployment(image: &str, paused: bool) -> Workload {
        crate::operator::workload::fixtures::deployment(json!({
            "metadata": {"name": "liferay", "namespace": "portal"},
            "spec": {"replicas": 3, "paused": paused,
                "selector": {"matchLabels": {"app": "liferay"}},
                "template": template(image, None)}
        }))
    }

    fn rs(name: &str, image: &str, replicas: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "liferay", TEMPLATE_HASH: name}},
            "spec": {"replicas": replicas,
                "selector": {"matchLabels": {"app": "liferay", TEMPLATE_HASH: name}},
                "template": template(image, Some(name))}
        }))
        .unwrap()
    }

    #[test]
    fn a_paused_deployment_with_a_new_template_has_it_pending() {
        let owned = [rs("a", "dxp:1", 0), rs("b", "dxp:2", 3)];
        let paused = deployment("dxp:3", true);
        assert_eq!(running(&paused, &owned), Running::Pending(&owned[1]));
        assert_eq!(pending_template(&paused, &owned), Some(&owned[1]));
        // Not paused: the Deployment's own controller rolls it; nothing is pending.
        assert_eq!(pending_template(&deployment("dxp:3", false), &owned), None);
        // Same template as the running set: nothing pending.
        assert_eq!(
            running(&deployment("dxp:2", true), &owned),
            Running::Current(&owned[1])
        );
        assert_eq!(pending_template(&deployment("dxp:2", true), &owned), None);
        let two = [rs("a", "dxp:1", 1), rs("b", "dxp:2", 3)];
        assert_eq!(running(&paused, &two), Running::Rolling(2));
        assert_eq!(running(&paused, &[rs("a", "dxp:1", 0)]), Running::Idle);
    }

    #[test]
    fn the_new_set_matches_the_template_but_is_not_adopted_until_relabelled() {
        let target = deployment("dxp:3", true);
        let pending = target.template().unwrap().clone();
        let labels = BTreeMap::from([("cutover.dev/plan".to_string(), "p".to_string())]);
        let new = for_template(&target, &pending, labels.clone());
        let hash = template_hash(&pending);
        assert_eq!(name(&new), format!("liferay-{hash}"));
        assert_eq!(new.metadata.labels.as_ref(), Some(&labels));
        assert_eq!(replicas(&new), 0);
        assert!(same_template(template_of(&new).unwrap(), &pending));
        let adopt = adoptable_labels(&new);
        assert_eq!(adopt.get("app").map(String::as_str), Some("liferay"));
        assert_eq!(adopt.get(TEMPLATE_HASH), Some(&hash));
        assert_eq!(
            relabel_patch(&new, &adopt),
            json!({"metadata": {"labels": {"cutover.dev/plan": null, "app": "liferay", TEMPLATE_HASH: hash}}})
        );
        // Stable, and different for a different template.
        assert_eq!(template_hash(&pending), hash);
        assert_ne!(template_hash(&template("dxp:4", None)), hash);
        assert_eq!(
            with_template(&[rs("a", "dxp:3", 0)], &pending).map(name),
            Some("a")
        );
    }
}
