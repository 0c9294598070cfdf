//! The simulated kubelet (and scheduler): binds new pods to a node, starts them (Running, a
//! loopback pod IP), makes them Ready after their delay, crash-loops or never readies them on
//! request, completes run-to-completion pods, and removes terminating pods after a short grace
//! period. A pod's behaviour comes from its annotations, else from rules set through the API,
//! else from the default. Timings are derived from the pod's status; the only state kept
//! between reconciles is the pods' addresses and listeners ([`crate::pod_http`]), which the
//! kubelet opens while a pod runs (not crash-looping) and closes when it ends or is gone.

use super::{Reconciler, WorkKey, pod_ready};
use crate::pod_http::PodServers;
use crate::resources::{ResKey, keys};
use crate::store::{DeleteOpts, Part, Store, StoreEvent, WriteCtx};
use crate::util::{self, fmt_ts, now_ts};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pod annotation: milliseconds until Ready, or `never`.
pub const READY_AFTER_MS: &str = "sim.cutover.dev/ready-after-ms";
/// Pod annotation: `"true"` makes the container crash-loop (never Ready).
pub const CRASH_LOOP: &str = "sim.cutover.dev/crash-loop";
/// Pod annotation: milliseconds a terminating pod lingers before it disappears.
pub const TERMINATE_AFTER_MS: &str = "sim.cutover.dev/terminate-after-ms";
/// Pod annotation: milliseconds a run-to-completion pod (restartPolicy Never/OnFailure) runs.
pub const RUN_MS: &str = "sim.cutover.dev/run-ms";
/// Pod annotation: exit code of a run-to-completion pod (default 0: Succeeded).
pub const EXIT_CODE: &str = "sim.cutover.dev/exit-code";
/// Pod annotation: `"true"` makes a run-to-completion pod (a Job's) fail (exit code 1), as
/// `exit-code: "1"` does.
pub const JOB_FAILS: &str = "sim.cutover.dev/job-fails";
/// Pod annotation: the HTTP status the pod answers with on its container ports (default 200),
/// read at each request.
pub const HTTP_STATUS: &str = "sim.cutover.dev/http-status";

const MANAGER: &str = "kubelet";

/// When a pod becomes Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyAfter {
    /// This long after its containers start.
    After(Duration),
    /// Never.
    Never,
}

/// How a pod behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodBehaviour {
    /// When it becomes Ready.
    pub ready: ReadyAfter,
    /// Whether its container keeps crashing (it is then never Ready).
    pub crash_loop: bool,
}

/// A behaviour for the pods a rule selects (all matchers must hold; empty matchers match).
#[derive(Clone, Debug)]
pub struct PodRule {
    /// Namespace.
    pub namespace: Option<String>,
    /// Exact pod name.
    pub name: Option<String>,
    /// Pod name prefix (e.g. a Deployment's name).
    pub name_prefix: Option<String>,
    /// Labels the pod must carry.
    pub labels: BTreeMap<String, String>,
    /// The behaviour.
    pub behaviour: PodBehaviour,
}

impl PodRule {
    /// A rule for every pod.
    pub fn all(behaviour: PodBehaviour) -> Self {
        PodRule {
            namespace: None,
            name: None,
            name_prefix: None,
            labels: BTreeMap::new(),
            behaviour,
        }
    }
    /// A rule for pods with a label.
    pub fn with_label(key: &str, value: &str, behaviour: PodBehaviour) -> Self {
        let mut r = Self::all(behaviour);
        r.labels.insert(key.into(), value.into());
        r
    }
    /// A rule for one pod name.
    pub fn named(name: &str, behaviour: PodBehaviour) -> Self {
        let mut r = Self::all(behaviour);
        r.name = Some(name.into());
        r
    }

    fn matches(&self, pod: &Value) -> bool {
        let name = util::name(pod);
        let labels = util::labels(pod);
        self.namespace
            .as_deref()
            .is_none_or(|n| n == util::namespace(pod))
            && self.name.as_deref().is_none_or(|n| n == name)
            && self
                .name_prefix
                .as_deref()
                .is_none_or(|p| name.starts_with(p))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Settings of the kubelet, changeable while the cluster runs.
#[derive(Debug)]
pub struct KubeletSettings {
    /// Ready delay of pods without annotation or rule.
    pub default_ready_delay: Duration,
    /// How long a deleted pod stays terminating.
    pub grace_period: Duration,
    /// Rules, the latest added first.
    pub rules: Vec<PodRule>,
    /// Readiness forced per pod (namespace, name).
    pub overrides: HashMap<(String, String), bool>,
}

/// Shared handle on the kubelet's settings.
pub type SharedSettings = Arc<Mutex<KubeletSettings>>;

/// The kubelet controller.
pub struct Kubelet {
    settings: SharedSettings,
    node_counter: u64,
    http: PodServers,
}

impl Kubelet {
    /// A kubelet with shared settings for the sim whose store this is.
    pub fn new(settings: SharedSettings, store: &Arc<Store>) -> Self {
        Kubelet {
            settings,
            node_counter: 0,
            http: PodServers::new(store),
        }
    }

    fn behaviour(&self, pod: &Value) -> PodBehaviour {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = s
            .rules
            .iter()
            .rev()
            .find(|r| r.matches(pod))
            .map(|r| r.behaviour)
            .unwrap_or(PodBehaviour {
                ready: ReadyAfter::After(s.default_ready_delay),
                crash_loop: false,
            });
        if let Some(v) = util::annotation(pod, READY_AFTER_MS) {
            b.ready = match v.trim() {
                "never" | "Never" => ReadyAfter::Never,
                n => n
                    .parse()
                    .map(|ms| ReadyAfter::After(Duration::from_millis(ms)))
                    .unwrap_or(b.ready),
            };
        }
        if let Some(v) = util::annotation(pod, CRASH_LOOP) {
            b.crash_loop = v == "true";
        }
        b
    }
}

fn container_names(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("main").to_string(),
                        c["image"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn container_statuses(
    pod: &Value,
    ready: bool,
    state: Value,
    restarts: i64,
    last: Option<Value>,
) -> Value {
    json!(container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            let mut c = json!({"name": name, "image": image, "imageID": format!("sim://{image}"), "containerID": format!("sim://{}", util::fnv1a(format!("{}/{name}", util::uid(pod)).as_bytes())),
                "ready": ready, "started": state.get("waiting").is_none(), "restartCount": restarts, "state": state.clone()});
            if let Some(l) = &last {
                c["lastState"] = l.clone();
            }
            c
        })
        .collect::<Vec<_>>())
}

fn conditions(ready: bool, now: &str, old: &Value) -> Value {
    let prev = |t: &str| {
        old.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
    };
    let cond = |t: &str, status: bool| {
        let s = if status { "True" } else { "False" };
        match prev(t) {
            Some(p) if p["status"] == s => p,
            _ => json!({"type": t, "status": s, "lastProbeTime": null, "lastTransitionTime": now}),
        }
    };
    json!([
        cond("PodReadyToStartContainers", true),
        cond("Initialized", true),
        cond("Ready", ready),
        cond("ContainersReady", ready),
        cond("PodScheduled", true)
    ])
}

/// Writes the pod's status (and spec, for the node); false if the pod is gone or another one.
fn write_status(store: &Store, pod: &Value, f: impl FnOnce(&Value, &mut Value)) -> bool {
    let ctx = WriteCtx::controller(MANAGER, "status");
    store
        .modify(
            &keys::PODS,
            util::namespace(pod),
            util::name(pod),
            Part::All,
            &ctx,
            |cur| {
                if util::uid(cur) != util::uid(pod) {
                    return Err(crate::error::ApiError::conflict("pods", util::name(pod)));
                }
                let mut new = cur.clone();
                f(cur, &mut new);
                Ok(new)
            },
        )
        .is_ok()
}

fn ms_since(ts: Option<&str>) -> u64 {
    ts.map(util::millis_since).unwrap_or(0)
}

impl Reconciler for Kubelet {
    fn watches(&self) -> Vec<ResKey> {
        vec![keys::PODS.clone()]
    }

    fn keys(&mut self, ev: &StoreEvent, _store: &Store, out: &mut Vec<WorkKey>) {
        // Deletions too: a pod that is gone stops answering and frees its address.
        out.push((ev.namespace().to_string(), ev.name().to_string()));
    }

    fn reconcile(&mut self, store: &Store, key: &WorkKey) -> Option<Duration> {
        let Some(pod) = store.get(&keys::PODS, &key.0, &key.1) else {
            self.http.forget(key);
            return None;
        };
        self.http.forget_other(key, util::uid(&pod));
        let (grace, forced) = {
            let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            (s.grace_period, s.overrides.get(key).copied())
        };
        let phase = util::str_at(&pod, "/status/phase")
            .unwrap_or("Pending")
            .to_string();
        let now = now_ts();

        if util::is_terminating(&pod) {
            if pod_ready(&pod) {
                write_status(store, &pod, |cur, new| {
                    new["status"]["conditions"] = conditions(false, &now, cur);
                    if let Some(cs) = new
                        .pointer_mut("/status/containerStatuses")
                        .and_then(Value::as_array_mut)
                    {
                        for c in cs {
                            c["ready"] = json!(false);
                        }
                    }
                });
            }
            let grace = util::annotation(&pod, TERMINATE_AFTER_MS)
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or(grace);
            let elapsed =
                Duration::from_millis(ms_since(util::str_at(&pod, "/metadata/deletionTimestamp")));
            if elapsed >= grace {
                let opts = DeleteOpts {
                    grace_period: Some(0),
                    uid: Some(util::uid(&pod).to_string()),
                    ..DeleteOpts::default()
                };
                let _ = store.delete(
                    &keys::PODS,
                    &key.0,
                    &key.1,
                    &opts,
                    &WriteCtx::controller(MANAGER, "delete"),
                );
                // Its containers are stopped even if finalizers keep the pod.
                self.http.stop(key);
                return None;
            }
            return Some(grace - elapsed);
        }
        if phase == "Succeeded" || phase == "Failed" {
            self.http.stop(key);
            return None;
        }
        let behaviour = self.behaviour(&pod);
        let run_to_completion =
            util::str_at(&pod, "/spec/restartPolicy").is_some_and(|p| p != "Always");

        if util::str_at(&pod, "/spec/nodeName").is_none() || phase == "Pending" {
            self.node_counter += 1;
            let node = format!("sim-node-{}", self.node_counter % 3 + 1);
            let ip = self
                .http
                .start(key, &pod, !behaviour.crash_loop)
                .to_string();
            let immediate = behaviour.ready == ReadyAfter::After(Duration::ZERO)
                && !behaviour.crash_loop
                && !run_to_completion;
            let written = write_status(store, &pod, |cur, new| {
                if util::str_at(cur, "/spec/nodeName").is_none() {
                    new["spec"]["nodeName"] = json!(node);
                }
                let state = if behaviour.crash_loop {
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}})
                } else {
                    json!({"running": {"startedAt": now}})
                };
                new["status"] = json!({
                    "phase": "Running",
                    "hostIP": "172.18.0.2",
                    "hostIPs": [{"ip": "172.18.0.2"}],
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "startTime": now,
                    "qosClass": "BestEffort",
                    "conditions": conditions(immediate, &now, cur),
                    "containerStatuses": container_statuses(cur, immediate, state, 0, None),
                });
            });
            if !written {
                self.http.forget(key);
            }
            if immediate {
                return None;
            }
            return match behaviour.ready {
                _ if run_to_completion || behaviour.crash_loop => Some(Duration::from_millis(1)),
                ReadyAfter::After(d) => Some(d),
                ReadyAfter::Never => None,
            };
        }

        self.http.sync(key, &pod, !behaviour.crash_loop);
        let started_ms = ms_since(util::str_at(&pod, "/status/startTime"));
        if run_to_completion {
            let run = util::annotation(&pod, RUN_MS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(10u64);
            if started_ms < run {
                return Some(Duration::from_millis(run - started_ms));
            }
            let fails = util::annotation(&pod, JOB_FAILS).is_some_and(|v| v == "true");
            let code: i64 = util::annotation(&pod, EXIT_CODE)
                .and_then(|v| v.parse().ok())
                .unwrap_or(if fails { 1 } else { 0 });
            write_status(store, &pod, |cur, new| {
                let state = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "startedAt": cur.pointer("/status/startTime"), "finishedAt": now}});
                new["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
                new["status"]["conditions"] = conditions(false, &now, cur);
                new["status"]["containerStatuses"] = container_statuses(cur, false, state, 0, None);
            });
            return None;
        }

        if behaviour.crash_loop {
            let restarts = pod
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let last_finish = pod
                .pointer("/status/containerStatuses/0/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
                .map(str::to_string);
            let backoff = Duration::from_millis((20u64 << restarts.min(5)).min(500));
            let since = Duration::from_millis(
                last_finish
                    .as_deref()
                    .map(util::millis_since)
                    .unwrap_or(started_ms),
            );
            if since < backoff {
                return Some(backoff - since);
            }
            let finished = fmt_ts(jiff::Timestamp::now());
            write_status(store, &pod, |cur, new| {
                let last = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": finished}});
                let state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}});
                new["status"]["conditions"] = conditions(false, &now, cur);
                new["status"]["containerStatuses"] =
                    container_statuses(cur, false, state, restarts + 1, Some(last));
            });
            return Some(backoff);
        }

        let want_ready = match (forced, behaviour.ready) {
            (Some(f), _) => f,
            (None, _) if pod_ready(&pod) => true,
            (None, ReadyAfter::Never) => false,
            (None, ReadyAfter::After(d)) => {
                let d_ms = d.as_millis() as u64;
                if started_ms < d_ms {
                    return Some(Duration::from_millis(d_ms - started_ms));
                }
                true
            }
        };
        if want_ready != pod_ready(&pod) {
            write_status(store, &pod, |cur, new| {
                new["status"]["conditions"] = conditions(want_ready, &now, cur);
                if let Some(cs) = new
                    .pointer_mut("/status/containerStatuses")
                    .and_then(Value::as_array_mut)
                {
                    for c in cs {
                        c["ready"] = json!(want_ready);
                    }
                }
            });
        }
        None
    }
}
