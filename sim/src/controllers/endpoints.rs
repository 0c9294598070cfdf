//! The EndpointSlice controller: one slice per Service with a selector (headless ones too),
//! listing the pods the selector matches (with an IP), their ready/serving/terminating
//! conditions (every address ready under `publishNotReadyAddresses`), `targetRef`, and the
//! `hostname` of pods whose subdomain is the Service; and the
//! history of each Service's ready endpoints, recorded whenever the set changes.

use super::{Reconciler, WorkKey, pod_ready};
use crate::history::{EndpointPod, EndpointsRecord};
use crate::resources::{ResKey, keys};
use crate::selectors::LabelSelector;
use crate::store::{DeleteOpts, Part, Store, StoreEvent, WriteCtx};
use crate::util;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const MANAGER: &str = "endpointslice-controller.k8s.io";

/// The EndpointSlice controller.
#[derive(Default)]
pub struct EndpointsController {
    last: HashMap<WorkKey, Vec<String>>,
}

/// The name of the slice the controller keeps for a Service.
pub fn slice_name(service: &str) -> String {
    format!(
        "{service}-{}",
        util::safe_encode(util::fnv1a(service.as_bytes()), 5)
    )
}

fn target_port(svc_port: &Value, pods: &[&std::sync::Arc<Value>]) -> Option<i64> {
    match svc_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(name)) => pods.iter().find_map(|p| {
            p.pointer("/spec/containers")?
                .as_array()?
                .iter()
                .find_map(|c| {
                    c.get("ports")?
                        .as_array()?
                        .iter()
                        .find(|cp| cp["name"] == name.as_str())
                        .and_then(|cp| cp["containerPort"].as_i64())
                })
        }),
        _ => svc_port.get("port").and_then(Value::as_i64),
    }
}

impl Reconciler for EndpointsController {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::SERVICES.clone(), keys::PODS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, store: &Store, out: &mut Vec<WorkKey>) {
        let ns = ev.namespace();
        if ev.res == *keys::SERVICES {
            out.push((ns.to_string(), ev.name().to_string()));
            return;
        }
        let (services, _) = store.list(&keys::SERVICES, Some(ns));
        for svc in services {
            let sel = LabelSelector::from_map(svc.pointer("/spec/selector"));
            if sel.matches_object(&ev.object)
                || ev.old.as_ref().is_some_and(|o| sel.matches_object(o))
            {
                out.push((ns.to_string(), util::name(&svc).to_string()));
            }
        }
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let name = slice_name(&key.1);
        let ctx = WriteCtx::controller(MANAGER, "update");
        let Some(svc) = store.get(&keys::SERVICES, &key.0, &key.1) else {
            self.last.remove(key);
            let _ = store.delete(
                &keys::ENDPOINTSLICES,
                &key.0,
                &name,
                &DeleteOpts::default(),
                &ctx,
            );
            return None;
        };
        if svc
            .pointer("/spec/selector")
            .is_none_or(|s| s.as_object().is_none_or(|m| m.is_empty()))
        {
            return None;
        }
        let sel = LabelSelector::from_map(svc.pointer("/spec/selector"));
        let (pods, _) = store.list(&keys::PODS, Some(&key.0));
        let selected: Vec<_> = pods
            .iter()
            .filter(|p| {
                sel.matches_object(p)
                    && util::str_at(p, "/status/podIP").is_some()
                    && !matches!(
                        util::str_at(p, "/status/phase"),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect();
        let mut endpoints = Vec::new();
        let mut ready_pods = Vec::new();
        let mut not_ready = Vec::new();
        let publish_not_ready = svc
            .pointer("/spec/publishNotReadyAddresses")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for p in &selected {
            let terminating = util::is_terminating(p);
            // As the EndpointSlice controller's podToEndpoint: publishNotReadyAddresses makes
            // every address ready and serving; otherwise a terminating pod is never ready.
            let serving = publish_not_ready || pod_ready(p);
            let ready = publish_not_ready || (serving && !terminating);
            let mut endpoint = json!({
                "addresses": [util::str_at(p, "/status/podIP")],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
                "targetRef": {"kind": "Pod", "namespace": key.0, "name": util::name(p), "uid": util::uid(p)},
                "nodeName": util::str_at(p, "/spec/nodeName"),
            });
            // ShouldSetHostname: a pod's hostname is published by the Service of its subdomain.
            if let Some(h) = util::str_at(p, "/spec/hostname").filter(|h| !h.is_empty())
                && util::str_at(p, "/spec/subdomain") == Some(key.1.as_str())
            {
                endpoint["hostname"] = json!(h);
            }
            endpoints.push(endpoint);
            if ready {
                let labels = util::labels(p);
                ready_pods.push(EndpointPod {
                    name: util::name(p).to_string(),
                    pod_template_hash: labels.get("pod-template-hash").cloned(),
                    labels,
                });
            } else {
                not_ready.push(util::name(p).to_string());
            }
        }
        let ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|sp| json!({"name": sp.get("name").cloned().unwrap_or(json!("")), "port": target_port(sp, &selected), "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                    .collect()
            })
            .unwrap_or_default();
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": key.0,
                "labels": {"kubernetes.io/service-name": key.1, "endpointslice.kubernetes.io/managed-by": MANAGER},
                "ownerReferences": [util::controller_ref(&svc)],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        });
        let written = if store.get(&keys::ENDPOINTSLICES, &key.0, &name).is_some() {
            store.modify(
                &keys::ENDPOINTSLICES,
                &key.0,
                &name,
                Part::All,
                &ctx,
                |cur| {
                    let mut new = cur.clone();
                    new["endpoints"] = slice["endpoints"].clone();
                    new["ports"] = slice["ports"].clone();
                    new["metadata"]["labels"] = slice["metadata"]["labels"].clone();
                    Ok(new)
                },
            )
        } else {
            store.create(
                &keys::ENDPOINTSLICES,
                slice,
                &WriteCtx::controller(MANAGER, "create"),
            )
        };
        if written.is_err() {
            return Some(Duration::from_millis(20));
        }
        ready_pods.sort_by(|a, b| a.name.cmp(&b.name));
        not_ready.sort();
        let names: Vec<String> = ready_pods.iter().map(|p| p.name.clone()).collect();
        if self.last.get(key) != Some(&names) {
            self.last.insert(key.clone(), names);
            store.history().record_endpoints(EndpointsRecord {
                time: jiff::Timestamp::now(),
                namespace: key.0.clone(),
                service: key.1.clone(),
                ready: ready_pods,
                not_ready,
            });
        }
        None
    }
}
