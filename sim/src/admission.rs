//! Type-specific defaulting and validation on writes (what admission and the registry
//! strategies do in a real API server): pod, Deployment, ReplicaSet, StatefulSet,
//! PersistentVolumeClaim, Service, Job and Namespace defaults, selector checks, the fields of a
//! StatefulSet that may change, and the hand-off to `crd` for custom resources and
//! CustomResourceDefinitions. Generic write rules are in `store`.

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::store::Store;
use crate::util;
use serde_json::{Value, json};

/// The kind of write being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A create.
    Create,
    /// An update of the main resource.
    Update,
    /// An update of the status subresource.
    UpdateStatus,
}

/// Defaults and validates `obj` (the object about to be stored).
pub fn admit(
    rt: &ResourceType,
    op: Op,
    obj: &mut Value,
    old: Option<&Value>,
    store: &Store,
) -> Result<(), ApiError> {
    if op == Op::Create
        && rt.has_status()
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    if rt.is_custom() {
        return crate::crd::admit_custom(rt, op, obj, old);
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            let name = util::name(obj).to_string();
            let labels = util::meta_mut(obj).entry("labels").or_insert(json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if op == Op::Create {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec_defaults(spec);
            } else {
                return Err(ApiError::invalid(
                    "Pod",
                    util::name(obj),
                    "spec: Required value",
                ));
            }
            if op == Op::Create {
                obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        ("", "Service") => service_defaults(obj, old),
        ("apps", "Deployment") | ("apps", "ReplicaSet") => {
            let spec = util::obj_mut(obj, "spec");
            spec.entry("replicas").or_insert(json!(1));
            if rt.kind == "Deployment" {
                spec.entry("revisionHistoryLimit").or_insert(json!(10));
                spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                let strategy = spec.entry("strategy").or_insert(json!({}));
                if !strategy.is_object() {
                    *strategy = json!({});
                }
                if let Some(s) = strategy.as_object_mut() {
                    let t = s
                        .entry("type")
                        .or_insert(json!("RollingUpdate"))
                        .as_str()
                        .unwrap_or("RollingUpdate")
                        .to_string();
                    if t == "RollingUpdate" {
                        let ru = s.entry("rollingUpdate").or_insert(json!({}));
                        if let Some(ru) = ru.as_object_mut() {
                            ru.entry("maxSurge").or_insert(json!("25%"));
                            ru.entry("maxUnavailable").or_insert(json!("25%"));
                        }
                    }
                }
            }
            if let Some(ps) = obj.pointer_mut("/spec/template/spec") {
                pod_spec_defaults(ps);
            }
            check_selector(rt, obj, old)?;
        }
        ("apps", "StatefulSet") => {
            statefulset_defaults(obj);
            check_selector(rt, obj, old)?;
            check_statefulset(obj, old)?;
        }
        ("", "PersistentVolumeClaim") => {
            util::obj_mut(obj, "spec")
                .entry("volumeMode")
                .or_insert(json!("Filesystem"));
            if op == Op::Create {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        ("batch", "Job") => job_defaults(obj, op)?,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            crate::crd::admit_crd(obj, op, store)?
        }
        _ => {}
    }
    Ok(())
}

fn pod_spec_defaults(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    s.entry("restartPolicy").or_insert(json!("Always"));
    s.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let Some(c) = c.as_object_mut() else { continue };
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                let latest = !image.contains(':') || image.ends_with(":latest");
                c.entry("imagePullPolicy").or_insert(json!(if latest {
                    "Always"
                } else {
                    "IfNotPresent"
                }));
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

fn service_defaults(obj: &mut Value, old: Option<&Value>) {
    let key = format!("{}/{}", util::namespace(obj), util::name(obj));
    let spec = util::obj_mut(obj, "spec");
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let ip = old
        .and_then(|o| util::str_at(o, "/spec/clusterIP"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let h = util::fnv1a(key.as_bytes());
            format!("10.96.{}.{}", (h >> 8) & 0xff, (h & 0xfd) + 1)
        });
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or(ip);
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            let port = p.get("port").cloned().unwrap_or(Value::Null);
            p.entry("targetPort").or_insert(port);
        }
    }
}

fn check_selector(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = util::name(obj);
    let selector = obj.pointer("/spec/selector");
    if selector.is_none_or(|s| s.as_object().is_none_or(|m| m.is_empty())) {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            "spec.selector: Required value",
        ));
    }
    let sel = crate::selectors::LabelSelector::from_object(selector);
    let labels = util::string_map(obj.pointer("/spec/template/metadata/labels"));
    if !sel.matches(&labels) {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old
        && old.pointer("/spec/selector") != selector
    {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            "spec.selector: Invalid value: field is immutable",
        ));
    }
    Ok(())
}

/// The defaults the API server gives a StatefulSet (`apps/v1` defaulting).
fn statefulset_defaults(obj: &mut Value) {
    let spec = util::obj_mut(obj, "spec");
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("podManagementPolicy")
        .or_insert(json!("OrderedReady"));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let strategy = spec.entry("updateStrategy").or_insert(json!({}));
    if !strategy.is_object() {
        *strategy = json!({});
    }
    let s = strategy.as_object_mut().expect("made an object");
    let rolling = s
        .entry("type")
        .or_insert(json!("RollingUpdate"))
        .as_str()
        .is_some_and(|t| t == "RollingUpdate");
    if rolling {
        let ru = s.entry("rollingUpdate").or_insert(json!({}));
        if let Some(ru) = ru.as_object_mut() {
            ru.entry("partition").or_insert(json!(0));
        }
    }
    let policy = spec
        .entry("persistentVolumeClaimRetentionPolicy")
        .or_insert(json!({}));
    if let Some(p) = policy.as_object_mut() {
        p.entry("whenDeleted").or_insert(json!("Retain"));
        p.entry("whenScaled").or_insert(json!("Retain"));
    }
    if let Some(vcts) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for t in vcts.iter_mut().filter(|t| t.is_object()) {
            t["apiVersion"] = json!("v1");
            t["kind"] = json!("PersistentVolumeClaim");
            util::obj_mut(t, "spec")
                .entry("volumeMode")
                .or_insert(json!("Filesystem"));
            t["status"] = json!({"phase": "Pending"});
        }
    }
    if let Some(ps) = obj.pointer_mut("/spec/template/spec") {
        pod_spec_defaults(ps);
    }
}

/// The spec fields of a StatefulSet an update may change (the rest is immutable).
const STATEFULSET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn check_statefulset(obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = util::name(obj);
    let invalid = |m: String| Err(ApiError::invalid("StatefulSet", name, m));
    let spec = &obj["spec"];
    if let Some(p) = spec["podManagementPolicy"].as_str()
        && p != "OrderedReady"
        && p != "Parallel"
    {
        return invalid(format!(
            "spec.podManagementPolicy: Unsupported value: \"{p}\": supported values: \"OrderedReady\", \"Parallel\""
        ));
    }
    match spec.pointer("/updateStrategy/type").and_then(Value::as_str) {
        Some("RollingUpdate") => {
            if spec
                .pointer("/updateStrategy/rollingUpdate/partition")
                .and_then(Value::as_i64)
                .is_some_and(|p| p < 0)
            {
                return invalid(
                    "spec.updateStrategy.rollingUpdate.partition: Invalid value: must be greater than or equal to 0".into(),
                );
            }
        }
        Some("OnDelete") => {
            if spec.pointer("/updateStrategy/rollingUpdate").is_some() {
                return invalid(
                    "spec.updateStrategy.rollingUpdate: Invalid value: only allowed for updateStrategy 'RollingUpdate'".into(),
                );
            }
        }
        other => {
            return invalid(format!(
                "spec.updateStrategy.type: Unsupported value: {other:?}: supported values: \"OnDelete\", \"RollingUpdate\""
            ));
        }
    }
    for k in ["whenDeleted", "whenScaled"] {
        let v = spec
            .pointer(&format!("/persistentVolumeClaimRetentionPolicy/{k}"))
            .and_then(Value::as_str);
        if !matches!(v, Some("Retain" | "Delete")) {
            return invalid(format!(
                "spec.persistentVolumeClaimRetentionPolicy.{k}: Unsupported value: {v:?}: supported values: \"Retain\", \"Delete\""
            ));
        }
    }
    if util::i64_at(obj, "/spec/replicas").is_some_and(|r| r < 0) {
        return invalid("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    if let Some(old) = old {
        let fixed = |v: &Value| {
            let mut m = v
                .get("spec")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            m.retain(|k, _| !STATEFULSET_MUTABLE.contains(&k.as_str()));
            m
        };
        if fixed(obj) != fixed(old) {
            return Err(ApiError::invalid(
                "StatefulSet",
                name,
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    Ok(())
}

fn job_defaults(obj: &mut Value, op: Op) -> Result<(), ApiError> {
    let name = util::name(obj).to_string();
    let uid = util::uid(obj).to_string();
    let spec = util::obj_mut(obj, "spec");
    spec.entry("completions").or_insert(json!(1));
    spec.entry("parallelism").or_insert(json!(1));
    spec.entry("backoffLimit").or_insert(json!(6));
    if op == Op::Create && !spec.contains_key("selector") {
        let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name});
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let tmpl_meta = util::obj_mut(
            util::obj_mut(obj, "spec")
                .entry("template")
                .or_insert(json!({})),
            "metadata",
        );
        let l = tmpl_meta.entry("labels").or_insert(json!({}));
        if let (Some(l), Some(add)) = (l.as_object_mut(), labels.as_object()) {
            for (k, v) in add {
                l.insert(k.clone(), v.clone());
            }
        }
    }
    let policy = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if policy != "Never" && policy != "OnFailure" {
        return Err(ApiError::invalid(
            "Job",
            &name,
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        ));
    }
    if let Some(ps) = obj.pointer_mut("/spec/template/spec") {
        pod_spec_defaults(ps);
    }
    Ok(())
}
