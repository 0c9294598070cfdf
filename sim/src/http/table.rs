//! The server-side `Table` rendering used by `kubectl get`: column definitions and cells for
//! the built-in kinds, and for custom resources their CRD's additionalPrinterColumns evaluated
//! with a small JSONPath subset (`.a.b`, `[n]`, `[*]`, `[?(@.k=="v")]`).

use crate::resources::{PrinterColumn, ResourceType};
use crate::util;
use serde_json::{Value, json};

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the `includeObject` query parameter.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn col(name: &str, type_: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: String::new(),
        description: String::new(),
        priority,
    }
}

/// The columns of a type (custom resources: NAME plus printer columns, or NAME and AGE).
pub fn columns(rt: &ResourceType, version: &str) -> Vec<PrinterColumn> {
    let mut cols = vec![PrinterColumn {
        description: "Name must be unique within a namespace.".into(),
        ..col("Name", "string", 0)
    }];
    if rt.is_custom() {
        let pcs = rt
            .crd_version(version)
            .map(|v| v.columns.clone())
            .unwrap_or_default();
        if pcs.is_empty() {
            cols.push(col("Age", "date", 0));
        } else {
            cols.extend(pcs);
        }
        return cols;
    }
    let extra: &[(&str, &str, i64)] = match rt.kind.as_str() {
        "Pod" => &[
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        "Deployment" => &[
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
        ],
        "StatefulSet" => &[
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        "ControllerRevision" => &[
            ("Controller", "string", 0),
            ("Revision", "integer", 0),
            ("Age", "string", 0),
        ],
        "PersistentVolumeClaim" => &[
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Age", "string", 0),
            ("VolumeMode", "string", 1),
        ],
        "ReplicaSet" => &[
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
        ],
        "Service" => &[
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        "Namespace" => &[("Status", "string", 0), ("Age", "string", 0)],
        "EndpointSlice" => &[
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        "PodDisruptionBudget" => &[
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "string", 0),
        ],
        "Job" => &[
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
        ],
        "Lease" => &[("Holder", "string", 0), ("Age", "string", 0)],
        "ConfigMap" => &[("Data", "integer", 0), ("Age", "string", 0)],
        "CustomResourceDefinition" => &[("Created At", "date", 0)],
        "Event" => {
            cols.clear();
            &[
                ("Last Seen", "string", 0),
                ("Type", "string", 0),
                ("Reason", "string", 0),
                ("Object", "string", 0),
                ("Message", "string", 0),
            ]
        }
        _ => &[("Age", "string", 0)],
    };
    cols.extend(extra.iter().map(|(n, t, p)| col(n, t, *p)));
    cols
}

/// The cells of one object.
pub fn cells(rt: &ResourceType, version: &str, obj: &Value) -> Vec<Value> {
    let age = json!(age_of(util::str_at(obj, "/metadata/creationTimestamp")));
    let name = json!(util::name(obj));
    let s = |p: &str| util::str_at(obj, p).unwrap_or_default().to_string();
    let i = |p: &str| util::i64_at(obj, p).unwrap_or(0);
    if rt.is_custom() {
        let pcs = rt
            .crd_version(version)
            .map(|v| v.columns.clone())
            .unwrap_or_default();
        if pcs.is_empty() {
            return vec![name, age];
        }
        let mut out = vec![name];
        for c in pcs {
            let v = jsonpath(obj, &c.json_path);
            out.push(format_cell(&c.type_, v));
        }
        return out;
    }
    match rt.kind.as_str() {
        "Pod" => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            let waiting = statuses.iter().find_map(|c| {
                c.pointer("/state/waiting/reason")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            let status = if util::is_terminating(obj) {
                "Terminating".to_string()
            } else {
                waiting.unwrap_or_else(|| s("/status/phase"))
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                age,
                json!(or_none(s("/status/podIP"))),
                json!(or_none(s("/spec/nodeName"))),
            ]
        }
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                i("/status/readyReplicas"),
                i("/spec/replicas")
            )),
            json!(i("/status/updatedReplicas")),
            json!(i("/status/availableReplicas")),
            age,
        ],
        "StatefulSet" => {
            let containers = |field: &str| {
                obj.pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| c[field].as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    i("/status/readyReplicas"),
                    util::i64_at(obj, "/spec/replicas").unwrap_or(1)
                )),
                age,
                json!(containers("name")),
                json!(containers("image")),
            ]
        }
        "ControllerRevision" => {
            let controller = util::owner_refs(obj)
                .iter()
                .find(|r| r["controller"] == true)
                .map(|r| {
                    let group = r["apiVersion"]
                        .as_str()
                        .and_then(|av| av.rsplit_once('/'))
                        .map(|(g, _)| format!(".{g}"))
                        .unwrap_or_default();
                    format!(
                        "{}{group}/{}",
                        r["kind"].as_str().unwrap_or_default().to_lowercase(),
                        r["name"].as_str().unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "<none>".into());
            vec![name, json!(controller), json!(i("/revision")), age]
        }
        "PersistentVolumeClaim" => {
            let modes: Vec<&str> = obj
                .pointer("/status/accessModes")
                .or_else(|| obj.pointer("/spec/accessModes"))
                .and_then(Value::as_array)
                .map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .map(|m| match m {
                            "ReadWriteOnce" => "RWO",
                            "ReadOnlyMany" => "ROX",
                            "ReadWriteMany" => "RWX",
                            "ReadWriteOncePod" => "RWOP",
                            other => other,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let bound = util::str_at(obj, "/status/phase") == Some("Bound");
            let capacity = if bound {
                s("/status/capacity/storage")
            } else {
                String::new()
            };
            vec![
                name,
                json!(s("/status/phase")),
                json!(s("/spec/volumeName")),
                json!(capacity),
                json!(if bound {
                    modes.join(",")
                } else {
                    String::new()
                }),
                json!(or_unset(s("/spec/storageClassName"))),
                json!(or_unset(s("/spec/volumeAttributesClassName"))),
                age,
                json!(s("/spec/volumeMode")),
            ]
        }
        "ReplicaSet" => vec![
            name,
            json!(i("/spec/replicas")),
            json!(i("/status/replicas")),
            json!(i("/status/readyReplicas")),
            age,
        ],
        "Service" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selector: Vec<String> = util::string_map(obj.pointer("/spec/selector"))
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vec![
                name,
                json!(s("/spec/type")),
                json!(or_none(s("/spec/clusterIP"))),
                json!("<none>"),
                json!(or_none(ports.join(","))),
                age,
                json!(or_none(selector.join(","))),
            ]
        }
        "Namespace" => vec![name, json!(s("/status/phase")), age],
        "EndpointSlice" => {
            let ports: Vec<String> = obj
                .get("ports")
                .and_then(Value::as_array)
                .map(|ps| ps.iter().map(|p| p["port"].to_string()).collect())
                .unwrap_or_default();
            let eps: Vec<String> = obj
                .get("endpoints")
                .and_then(Value::as_array)
                .map(|es| {
                    es.iter()
                        .filter_map(|e| {
                            e.pointer("/addresses/0")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s("/addressType")),
                json!(or_none(ports.join(","))),
                json!(or_none(eps.join(","))),
                age,
            ]
        }
        "PodDisruptionBudget" => {
            let show = |p: &str| {
                obj.pointer(p)
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_else(|| "N/A".into())
            };
            vec![
                name,
                json!(show("/spec/minAvailable")),
                json!(show("/spec/maxUnavailable")),
                json!(i("/status/disruptionsAllowed")),
                age,
            ]
        }
        "Job" => {
            let conds = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |t: &str| {
                conds
                    .iter()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else {
                "Running"
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    i("/status/succeeded"),
                    i("/spec/completions")
                )),
                json!(""),
                age,
            ]
        }
        "Lease" => vec![name, json!(or_none(s("/spec/holderIdentity"))), age],
        "ConfigMap" => vec![
            name,
            json!(
                obj.get("data")
                    .and_then(Value::as_object)
                    .map(|m| m.len())
                    .unwrap_or(0)
            ),
            age,
        ],
        "CustomResourceDefinition" => {
            let created = s("/metadata/creationTimestamp");
            let created = match created.get(..19) {
                Some(secs) => format!("{secs}Z"),
                None => created,
            };
            vec![name, json!(created)]
        }
        "Event" => {
            let last = obj
                .get("lastTimestamp")
                .and_then(Value::as_str)
                .or_else(|| obj.get("eventTime").and_then(Value::as_str))
                .or_else(|| util::str_at(obj, "/metadata/creationTimestamp"));
            let involved = format!(
                "{}/{}",
                obj.pointer("/involvedObject/kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase(),
                obj.pointer("/involvedObject/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            vec![
                json!(age_of(last)),
                json!(s("/type")),
                json!(s("/reason")),
                json!(involved),
                json!(s("/message")),
            ]
        }
        _ => vec![name, age],
    }
}

fn or_unset(s: String) -> String {
    if s.is_empty() { "<unset>".into() } else { s }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn format_cell(type_: &str, v: Option<Value>) -> Value {
    let Some(v) = v else { return Value::Null };
    match (type_, &v) {
        ("date", Value::String(s)) => json!(age_of(Some(s))),
        ("integer" | "number" | "boolean", _) => v,
        (_, Value::String(_)) => v,
        (_, Value::Null) => Value::Null,
        _ => json!(v.to_string()),
    }
}

/// A Kubernetes-style human duration since a timestamp (`5s`, `3m2s`, `4h`, `2d`).
pub fn age_of(ts: Option<&str>) -> String {
    let Some(ts) = ts else {
        return "<unknown>".into();
    };
    let secs = (util::millis_since(ts) / 1000) as i64;
    human_duration(secs)
}

fn human_duration(s: i64) -> String {
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

/// Evaluates a simple JSONPath; several matches are joined with commas.
pub fn jsonpath(obj: &Value, path: &str) -> Option<Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut current: Vec<&Value> = vec![obj];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = find_bracket_end(r)?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            current = if inner == "*" {
                current
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .collect()
            } else if let Ok(n) = inner.parse::<usize>() {
                current.into_iter().filter_map(|v| v.get(n)).collect()
            } else if let Some(filter) =
                inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
            {
                let (k, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches(['"', '\'']);
                let k = k.trim();
                current
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter(|it| {
                        it.get(k)
                            .map(|x| {
                                x.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| x.to_string())
                            })
                            .as_deref()
                            == Some(want)
                    })
                    .collect()
            } else {
                let key = inner.trim_matches(['"', '\'']);
                current.into_iter().filter_map(|v| v.get(key)).collect()
            };
        } else {
            return None;
        }
    }
    match current.len() {
        0 => None,
        1 => Some(current[0].clone()),
        _ => Some(json!(
            current
                .iter()
                .map(|v| v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        )),
    }
}

fn find_bracket_end(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ']' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// One Table row.
pub fn row(rt: &ResourceType, version: &str, obj: &Value, include: IncludeObject) -> Value {
    let mut r = json!({"cells": cells(rt, version, obj)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => r["object"] = partial_metadata(obj),
        IncludeObject::Object => r["object"] = obj.clone(),
    }
    r
}

/// A whole Table of objects.
pub fn table(
    rt: &ResourceType,
    version: &str,
    objs: &[&Value],
    rv: u64,
    include: IncludeObject,
) -> Value {
    let defs: Vec<Value> = columns(rt, version)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "name": c.name,
                "type": if c.type_ == "date" { "string" } else { c.type_.as_str() },
                "format": if i == 0 { "name" } else { "" },
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": defs,
        "rows": objs.iter().map(|o| row(rt, version, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}], "progress": {"text": "2/3"}}, "spec": {"l": [1, 2]}});
        assert_eq!(jsonpath(&o, ".status.progress.text"), Some(json!("2/3")));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(jsonpath(&o, ".spec.l[*]"), Some(json!("1,2")));
        assert_eq!(jsonpath(&o, ".spec.l[1]"), Some(json!(2)));
        assert_eq!(jsonpath(&o, ".status.missing"), None);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
