//! What a pod of a StatefulSet is: its name `<set>-<ordinal>`, its identity (hostname,
//! subdomain = the set's `serviceName`, `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index`), the revision it was made from (`controller-revision-hash`),
//! and the states of it the controller reads (running, ready, available). It makes pod objects;
//! it writes nothing.

use super::claims;
use super::replicaset::pod_from_template;
use super::revisions::{self, POD_REVISION_LABEL};
use super::{pod_available, pod_ready};
use crate::util;
use serde_json::{Value, json};
use std::time::Duration;

/// Pod label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Pod label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod of `set` from its name (`<set>-<ordinal>`), if it is one.
pub fn ordinal(set_name: &str, pod: &Value) -> Option<i64> {
    let rest = util::name(pod).strip_prefix(set_name)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// The revision a pod was made from.
pub fn pod_revision(pod: &Value) -> &str {
    pod.pointer("/metadata/labels")
        .and_then(|l| l.get(POD_REVISION_LABEL))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn phase(pod: &Value) -> &str {
    util::str_at(pod, "/status/phase").unwrap_or("")
}

pub fn running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && pod_ready(pod)
}

/// Running and available for `min_ready`; else, if it will be, how long until then.
pub fn running_and_available(pod: &Value, min_ready: Duration) -> Result<(), Option<Duration>> {
    if phase(pod) != "Running" {
        return Err(None);
    }
    pod_available(pod, min_ready)
}

pub fn unavailable(pod: &Value, min_ready: Duration) -> bool {
    util::is_terminating(pod) || running_and_available(pod, min_ready).is_err()
}

fn service_name(set: &Value) -> &str {
    util::str_at(set, "/spec/serviceName").unwrap_or_default()
}

/// A new pod of `set` for `ordinal`, made from `revision`, mounting its claims.
pub fn new(set: &Value, revision: &Value, ordinal: i64) -> Value {
    let template = revisions::template_of(revision);
    let name = format!("{}-{ordinal}", util::name(set));
    let mut pod = pod_from_template(set, &template, &name);
    let labels = util::meta_mut(&mut pod)
        .entry("labels")
        .or_insert(json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[POD_REVISION_LABEL] = json!(util::name(revision));
    set_identity(set, &mut pod, ordinal);
    claims::set_volumes(set, &mut pod, ordinal);
    pod
}

/// Gives a pod the identity of its ordinal (`updateIdentity`).
pub fn set_identity(set: &Value, pod: &mut Value, ordinal: i64) {
    let name = util::name(pod).to_string();
    let labels = util::meta_mut(pod).entry("labels").or_insert(json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[POD_NAME_LABEL] = json!(name);
    labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
    let service = service_name(set).to_string();
    let spec = util::obj_mut(pod, "spec");
    spec.insert("hostname".into(), json!(name));
    if service.is_empty() {
        spec.remove("subdomain");
    } else {
        spec.insert("subdomain".into(), json!(service));
    }
}

/// Whether a pod has the identity of its ordinal (`identityMatches`).
pub fn identity_matches(set: &Value, pod: &Value, ordinal: i64) -> bool {
    let labels = util::labels(pod);
    let name = util::name(pod);
    labels.get(POD_NAME_LABEL).map(String::as_str) == Some(name)
        && labels.get(POD_INDEX_LABEL) == Some(&ordinal.to_string())
        && util::str_at(pod, "/spec/hostname") == Some(name)
        && util::str_at(pod, "/spec/subdomain").unwrap_or_default() == service_name(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_names_of_the_set_only() {
        let pod = |n: &str| json!({"metadata": {"name": n}});
        assert_eq!(ordinal("web", &pod("web-3")), Some(3));
        assert_eq!(ordinal("web", &pod("web-1-0")), None);
        assert_eq!(ordinal("web-1", &pod("web-10")), None);
        assert_eq!(ordinal("web", &pod("web-")), None);
        assert_eq!(ordinal("web", &pod("webx-1")), None);
    }
}
