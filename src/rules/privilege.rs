//! What a plan's pod patches (`update.podTemplatePatch`, `blueGreen.greenOnly.podTemplatePatch`)
//! change about the rights of the pods the operator then creates: the service account they run
//! as, their security contexts (pod and container, privileged included), the node's namespaces
//! (network, PIDs, IPC, users) and host paths. The operator makes those pods with its own
//! rights, so whoever may create a plan could otherwise run anything on a node. Pure: it
//! compares a template before and after a patch; whether the operator allows it is its setting,
//! not decided here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use crate::api::{Finding, MaintenancePlanSpec};

/// The stable name of the finding.
pub const RULE: &str = "pod-patch-escalates-privileges";

/// The `cutover run` flag that lets the operator carry such a plan out.
pub const OPT_IN_FLAG: &str = "--allow-privileged-patches";

/// The Helm chart value wired to [`OPT_IN_FLAG`].
pub const OPT_IN_VALUE: &str = "allowPrivilegedPatches";

/// One patch and what it changes about the pods' rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The field of the plan that holds the patch.
    pub field: &'static str,
    /// What it changes, one item each (`hostNetwork: true`).
    pub changes: Vec<String>,
}

impl std::fmt::Display for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} changes {}", self.field, self.changes.join(", "))
    }
}

/// What the plan's patches change about the pods' rights, given the running template (when
/// known; offline without a manifest the patches are read on an empty template, which shows
/// everything they set). `new` is the running template with the whole update applied: green's
/// patch comes on top of it.
pub fn escalations(
    spec: &MaintenancePlanSpec,
    running: Option<&PodTemplateSpec>,
    new: Option<&PodTemplateSpec>,
) -> Vec<Escalation> {
    let empty = PodTemplateSpec::default();
    let mut found = Vec::new();
    let update = spec
        .update
        .as_ref()
        .and_then(|u| u.pod_template_patch.as_ref());
    if let Some(patch) = update {
        found.extend(patched(
            "spec.update.podTemplatePatch",
            running.unwrap_or(&empty),
            patch,
        ));
    }
    if let Some(patch) = &spec.blue_green.green_only.pod_template_patch {
        let base = match (new, update) {
            (Some(new), _) => new.clone(),
            (None, Some(patch)) => apply(running.unwrap_or(&empty), patch),
            (None, None) => running.cloned().unwrap_or_default(),
        };
        found.extend(patched(
            "spec.blueGreen.greenOnly.podTemplatePatch",
            &base,
            patch,
        ));
    }
    found
}

/// The finding for `escalations` (none when empty); `verdict` says what the operator does
/// about it (its setting, or, offline, that the setting decides).
pub fn finding(escalations: &[Escalation], verdict: &str) -> Option<Finding> {
    if escalations.is_empty() {
        return None;
    }
    let what: Vec<String> = escalations.iter().map(Escalation::to_string).collect();
    Some(Finding {
        change: None,
        rule: RULE.into(),
        blocks: Vec::new(),
        message: format!(
            "{}: the operator creates these pods with its own rights, so a plan could run them with more rights than the target's; {verdict}",
            what.join("; ")
        ),
    })
}

/// What is done with a plan whose pod patches change the pods' rights, by the operator's
/// setting (`allowed`: it runs with [`OPT_IN_FLAG`]).
pub fn verdict(allowed: bool) -> String {
    if allowed {
        format!("allowed: the operator runs with {OPT_IN_FLAG}")
    } else {
        format!(
            "refused: the operator runs without {OPT_IN_FLAG} (chart value {OPT_IN_VALUE}); set these in the target's own manifest instead, or run the operator with that setting"
        )
    }
}

fn apply(base: &PodTemplateSpec, patch: &Value) -> PodTemplateSpec {
    let mut doc = serde_json::to_value(base).expect("templates serialize");
    json_patch::merge(&mut doc, patch);
    // A patch that does not make a template is reported by the preflight; read what it sets.
    serde_json::from_value(doc).unwrap_or_default()
}

/// `field`'s escalation when `patch` applied to `base` changes the pods' rights.
fn patched(field: &'static str, base: &PodTemplateSpec, patch: &Value) -> Option<Escalation> {
    let before = rights(base);
    let after = rights(&apply(base, patch));
    let mut changes = Vec::new();
    for key in before.keys().chain(after.keys()) {
        let (old, new) = (before.get(key), after.get(key));
        if old != new && !changes.iter().any(|c: &(String, String)| &c.0 == key) {
            let shown = match new {
                Some(value) if value.get("privileged") == Some(&Value::Bool(true)) => {
                    format!("{key}: {} (privileged)", compact(value))
                }
                Some(value) => format!("{key}: {}", compact(value)),
                None => format!("{key} removed"),
            };
            changes.push((key.clone(), shown));
        }
    }
    (!changes.is_empty()).then(|| Escalation {
        field,
        changes: changes.into_iter().map(|(_, shown)| shown).collect(),
    })
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parts of a template that decide what its pods may do beyond their containers, by a
/// name a person reads (`serviceAccountName`, `container liferay securityContext`).
fn rights(template: &PodTemplateSpec) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(spec) = &template.spec else {
        return out;
    };
    let mut put = |key: String, value: Option<Value>| {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            out.insert(key, v);
        }
    };
    put(
        "serviceAccountName".into(),
        spec.service_account_name.as_ref().map(to_json),
    );
    put(
        "serviceAccount".into(),
        spec.service_account.as_ref().map(to_json),
    );
    put(
        "securityContext".into(),
        spec.security_context.as_ref().map(to_json),
    );
    for (name, value) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        put(name.into(), value.filter(|v| *v).map(Value::Bool));
    }
    put(
        "hostUsers".into(),
        spec.host_users.filter(|v| *v).map(Value::Bool),
    );
    let containers = spec
        .containers
        .iter()
        .map(|c| ("container", &c.name, c.security_context.as_ref()))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| ("init container", &c.name, c.security_context.as_ref())),
        );
    for (word, name, context) in containers {
        if let Some(context) = context {
            put(
                format!("{word} {name} securityContext"),
                Some(to_json(context)),
            );
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(host) = &volume.host_path {
            put(
                format!("hostPath volume {}", volume.name),
                Some(Value::String(host.path.clone())),
            );
        }
    }
    out
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> MaintenancePlanSpec {
        let mut doc = json!({"target": {"name": "liferay"}, "service": "liferay"});
        for (k, v) in v.as_object().unwrap() {
            doc[k] = v.clone();
        }
        serde_json::from_value(doc).unwrap()
    }

    fn running() -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "liferay"}},
            "spec": {"serviceAccountName": "liferay",
                     "securityContext": {"runAsNonRoot": true},
                     "containers": [{"name": "liferay", "image": "a",
                                     "securityContext": {"allowPrivilegeEscalation": false}}]}
        }))
        .unwrap()
    }

    #[test]
    fn each_kind_of_right_is_named() {
        let s = spec(json!({"update": {"podTemplatePatch": {"spec": {
            "serviceAccountName": "admin", "hostNetwork": true, "hostPID": true, "hostIPC": true,
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "liferay", "image": "a", "securityContext": {"privileged": true}}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}}));
        let found = escalations(&s, Some(&running()), None);
        assert_eq!(found.len(), 1);
        let text = found[0].to_string();
        for words in [
            "spec.update.podTemplatePatch changes",
            "serviceAccountName: admin",
            "hostNetwork: true",
            "hostPID: true",
            "hostIPC: true",
            "securityContext: {\"runAsNonRoot\":true,\"runAsUser\":0}",
            "container liferay securityContext: {\"privileged\":true} (privileged)",
            "hostPath volume root: /",
        ] {
            assert!(text.contains(words), "{words}: {text}");
        }
    }

    #[test]
    fn a_patch_that_leaves_the_rights_alone_is_none() {
        let s = spec(json!({"update": {"image": "b", "podTemplatePatch": {
            "metadata": {"annotations": {"a": "b"}, "labels": {"tier": "web"}},
            "spec": {"serviceAccountName": "liferay", "hostNetwork": false,
                     "terminationGracePeriodSeconds": 30}}}}));
        assert_eq!(escalations(&s, Some(&running()), None), vec![]);
        assert_eq!(
            escalations(&spec(json!({})), Some(&running()), None),
            vec![]
        );
    }

    #[test]
    fn dropping_a_security_context_is_a_change_too() {
        let s = spec(json!({"update": {"podTemplatePatch": {"spec": {"securityContext": null}}}}));
        let found = escalations(&s, Some(&running()), None);
        assert_eq!(found[0].changes, ["securityContext removed"]);
    }

    #[test]
    fn green_only_is_read_on_top_of_the_new_template_and_named() {
        let s = spec(
            json!({"blueGreen": {"greenOnly": {"podTemplatePatch": {"spec": {
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]}}}}}),
        );
        let found = escalations(&s, Some(&running()), Some(&running()));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "spec.blueGreen.greenOnly.podTemplatePatch");
        assert_eq!(
            found[0].changes,
            ["hostPath volume docker: /var/run/docker.sock"]
        );
    }

    #[test]
    fn offline_a_patch_is_read_on_an_empty_template() {
        let s = spec(json!({"update": {"podTemplatePatch": {"spec": {"hostNetwork": true}}}}));
        let found = escalations(&s, None, None);
        assert_eq!(found[0].changes, ["hostNetwork: true"]);
        let f = finding(&found, &verdict(false)).unwrap();
        assert_eq!(f.rule, RULE);
        assert!(f.blocks.is_empty());
        assert!(f.message.contains(OPT_IN_FLAG), "{}", f.message);
        assert_eq!(finding(&[], "x"), None);
    }
}
