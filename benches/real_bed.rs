//! `cargo bench --bench real_bed`: the operator against the real control plane of
//! `scripts/real-bed` (the Kubernetes project's kube-apiserver, controllers and scheduler, kwok
//! in place of kubelets), the figures of `benches/cutover.rs` that a real cluster can give.
//!
//! It brings a bed up in a temporary directory (or uses the one `CUTOVER_BED_DIR` names and
//! leaves it running), runs the operator as `cutover run` with the token of the chart's
//! ServiceAccount, and carries out, one plan at a time, BlueGreen cutovers of 3-pod
//! Deployments and plain restarts of 10-pod ones, each in a namespace of its own. The
//! latencies come from the benchmark's own watches of Pods and Services (the real bed keeps no
//! write history; server timestamps have whole seconds): the switch is the time from the watch
//! event in which the last of green's pods turned Ready to the one in which the Service's
//! selector named green's revision; a pod step is the time from the event that made the next
//! eviction possible (a replacement Ready, the pod evicted before gone) to that eviction's (a
//! pod of the target marked for deletion). The operator's writes and
//! requests per plan are read from the kube-apiserver's audit log, its memory and CPU time
//! from /proc. Prints a table and, as its last line, one JSON object. It does not judge:
//! BENCHMARKS.md puts the figures beside the simulated cluster's.
//!
//! `CUTOVER_BENCH_REAL_CUTOVERS` (default 20) and `CUTOVER_BENCH_REAL_RESTARTS` (plans of 10
//! pods, default 3) size the run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

use cutover::api::MaintenancePlan;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Config, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};

#[path = "support/figures.rs"]
mod figures;
use figures::{percentile, round};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const PLAN_TIMEOUT: Duration = Duration::from_secs(120);
/// The name of each namespace's target and Service.
const TARGET: &str = "liferay";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// The bed

/// The real control plane: started here and stopped on drop, or one that was given.
struct Bed {
    dir: PathBuf,
    started_here: bool,
}

impl Bed {
    fn up() -> Bed {
        if let Ok(dir) = std::env::var("CUTOVER_BED_DIR") {
            return Bed {
                dir: dir.into(),
                started_here: false,
            };
        }
        let dir = std::env::temp_dir().join(format!("cutover-bench-bed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the bed's directory");
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/real-bed"))
            .args(["up", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("scripts/real-bed runs");
        assert!(status.success(), "scripts/real-bed up failed");
        Bed {
            dir,
            started_here: true,
        }
    }

    async fn client(&self) -> Client {
        let path = self.dir.join("kubeconfig");
        let kubeconfig =
            Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("the bed's kubeconfig");
        Client::try_from(config).expect("a client")
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/real-bed"))
                .args(["down", "--dir"])
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The operator process

struct Operator {
    child: Child,
}

impl Operator {
    async fn start(bed: &Bed) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["run", "--leader-election", "false", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(bed.dir.join("operator.kubeconfig"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cutover run starts");
        let start = Instant::now();
        while !ready(port) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the operator did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Operator { child }
    }

    /// VmRSS and VmHWM, in MiB.
    fn memory(&self) -> (f64, f64) {
        figures::memory(self.child.id())
    }

    /// User plus system CPU time, in seconds.
    fn cpu_seconds(&self) -> f64 {
        figures::cpu_seconds(self.child.id())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/readyz` of the operator answers 200.
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1) == Some("200")
}

// ---------------------------------------------------------------------------------------
// What the benchmark's own watches saw

/// One thing seen, when the watch event arrived.
#[derive(Clone, Debug)]
enum Seen {
    /// A pod's Ready condition turned True.
    Ready {
        ns: String,
        uid: String,
        hash: Option<String>,
    },
    /// A pod got its deletion timestamp.
    Deleting { ns: String, uid: String },
    /// A pod is gone.
    Gone { ns: String, uid: String },
    /// A Deployment other than the target (green) reported all its pods available.
    Available { ns: String },
    /// A Service's selector, when it changed.
    Selector {
        ns: String,
        selector: BTreeMap<String, String>,
    },
}

/// What the watches saw, with the wall-clock time of each event's arrival (the clock of the
/// audit log's timestamps: the same machine's).
type Log = Arc<Mutex<Vec<(Timestamp, Seen)>>>;

fn ms(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_microsecond() - from.as_microsecond()) as f64 / 1000.0
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn all_available(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas);
    d.status.as_ref().is_some_and(|s| {
        s.observed_generation == d.metadata.generation
            && s.available_replicas == want
            && s.updated_replicas == want
    })
}

/// Watches Pods, Deployments and Services of the benchmark's namespaces (`bench-`).
fn watch(client: Client, log: Log) -> Vec<tokio::task::JoinHandle<()>> {
    let pods = {
        let log = log.clone();
        let api: Api<Pod> = Api::all(client.clone());
        tokio::spawn(async move {
            let (mut ready, mut deleting) = (HashSet::new(), HashSet::new());
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let (pod, gone) = match event {
                    Ok(Event::Apply(pod) | Event::InitApply(pod)) => (pod, false),
                    Ok(Event::Delete(pod)) => (pod, true),
                    _ => continue,
                };
                let ns = pod.namespace().unwrap_or_default();
                if !ns.starts_with("bench-") {
                    continue;
                }
                let uid = pod.uid().unwrap_or_default();
                let at = Timestamp::now();
                let mut log = log.lock().unwrap();
                if gone {
                    log.push((at, Seen::Gone { ns, uid }));
                    continue;
                }
                if pod.metadata.deletion_timestamp.is_some() && deleting.insert(uid.clone()) {
                    log.push((
                        at,
                        Seen::Deleting {
                            ns: ns.clone(),
                            uid: uid.clone(),
                        },
                    ));
                }
                if is_ready(&pod) && ready.insert(uid.clone()) {
                    let hash = pod.labels().get("pod-template-hash").cloned();
                    log.push((at, Seen::Ready { ns, uid, hash }));
                }
            }
        })
    };
    let deployments = {
        let log = log.clone();
        let api: Api<Deployment> = Api::all(client.clone());
        tokio::spawn(async move {
            let mut available = HashSet::new();
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let Ok(Event::Apply(d) | Event::InitApply(d)) = event else {
                    continue;
                };
                let ns = d.namespace().unwrap_or_default();
                if !ns.starts_with("bench-") || d.name_any() == TARGET {
                    continue;
                }
                if all_available(&d) && available.insert(d.uid().unwrap_or_default()) {
                    log.lock()
                        .unwrap()
                        .push((Timestamp::now(), Seen::Available { ns }));
                }
            }
        })
    };
    let services = tokio::spawn(async move {
        let api: Api<Service> = Api::all(client);
        let mut last: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let Ok(Event::Apply(service) | Event::InitApply(service)) = event else {
                continue;
            };
            let ns = service.namespace().unwrap_or_default();
            if !ns.starts_with("bench-") {
                continue;
            }
            let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
            if last.get(&ns) != Some(&selector) {
                last.insert(ns.clone(), selector.clone());
                log.lock()
                    .unwrap()
                    .push((Timestamp::now(), Seen::Selector { ns, selector }));
            }
        }
    });
    vec![pods, deployments, services]
}

/// One measured interval and the operator's requests inside it (from the audit log).
#[derive(Clone, Copy, Debug, Default)]
struct Interval {
    from: Option<Timestamp>,
    to: Option<Timestamp>,
}

impl Interval {
    fn ms(&self) -> f64 {
        match (self.from, self.to) {
            (Some(from), Some(to)) => ms(from, to),
            _ => f64::NAN,
        }
    }
}

/// A BlueGreen switch: from the Ready event of the last of green's pods (those of the revision
/// the Service's selector came to name) to green's Deployment reporting them available (the
/// ReplicaSet and Deployment controllers), and from there to the selector's event (the
/// operator).
struct Switch {
    controllers: Interval,
    operator: Interval,
}

fn switch(log: &[(Timestamp, Seen)], ns: &str, blue: &str) -> Option<Switch> {
    let (switched_at, green) = log.iter().find_map(|(at, seen)| match seen {
        Seen::Selector { ns: n, selector } if n == ns => selector
            .get("pod-template-hash")
            .filter(|h| h.as_str() != blue)
            .map(|h| (*at, h.clone())),
        _ => None,
    })?;
    let last_ready = log
        .iter()
        .filter(|(at, _)| *at <= switched_at)
        .filter_map(|(at, seen)| match seen {
            Seen::Ready { ns: n, hash, .. } if n == ns && hash.as_deref() == Some(&green) => {
                Some(*at)
            }
            _ => None,
        })
        .max()?;
    let available = log.iter().find_map(|(at, seen)| match seen {
        Seen::Available { ns: n } if n == ns && *at >= last_ready && *at <= switched_at => {
            Some(*at)
        }
        _ => None,
    });
    Some(Switch {
        controllers: Interval {
            from: Some(last_ready),
            to: available,
        },
        operator: Interval {
            from: available.or(Some(last_ready)),
            to: Some(switched_at),
        },
    })
}

/// The pod steps of the restart in `ns`: for each eviction of one of `old` (the pods the plan
/// began with), from the event that made it possible: the later of the last Ready event of a
/// pod that was not old (the surge pod, a replacement) and the last event of an evicted pod
/// being gone (the operator waits for both).
fn pod_steps(log: &[(Timestamp, Seen)], ns: &str, old: &HashSet<String>) -> Vec<Interval> {
    let mut possible: Option<Timestamp> = None;
    let mut steps = Vec::new();
    for (at, seen) in log {
        match seen {
            Seen::Ready { ns: n, uid, .. } if n == ns && !old.contains(uid) => {
                possible = Some(*at);
            }
            Seen::Gone { ns: n, uid } if n == ns && old.contains(uid) => {
                possible = Some(*at);
            }
            Seen::Deleting { ns: n, uid } if n == ns && old.contains(uid) && possible.is_some() => {
                steps.push(Interval {
                    from: possible,
                    to: Some(*at),
                });
            }
            _ => {}
        }
    }
    steps
}

// ---------------------------------------------------------------------------------------
// The audit log

/// One request of the operator's ServiceAccount in a benchmark namespace.
struct Audited {
    ns: String,
    received: Timestamp,
    /// Until the server's answer was complete, in ms.
    server_ms: f64,
    write: bool,
}

fn audited(path: &Path) -> Vec<Audited> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut requests = Vec::new();
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let user = event["user"]["username"].as_str().unwrap_or_default();
        let ns = event["objectRef"]["namespace"].as_str().unwrap_or_default();
        // A watch logs two stages; take each request once, at its last stage logged.
        if !user.starts_with("system:serviceaccount:cutover-system:")
            || !ns.starts_with("bench-")
            || event["stage"] != "ResponseComplete"
        {
            continue;
        }
        let time = |key: &str| {
            event[key]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
        };
        let (Some(received), Some(done)) =
            (time("requestReceivedTimestamp"), time("stageTimestamp"))
        else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        requests.push(Audited {
            ns: ns.to_string(),
            received,
            server_ms: ms(received, done),
            write: matches!(verb, "create" | "update" | "patch" | "delete"),
        });
    }
    requests
}

/// The operator's requests that began inside `interval` in `ns`: how many, and the server's
/// time for them in all, in ms.
fn inside(requests: &[Audited], ns: &str, interval: &Interval) -> (usize, f64) {
    let (Some(from), Some(to)) = (interval.from, interval.to) else {
        return (0, 0.0);
    };
    requests
        .iter()
        .filter(|r| r.ns == ns && r.received >= from && r.received <= to)
        .fold((0, 0.0), |(n, t), r| (n + 1, t + r.server_ms))
}

// ---------------------------------------------------------------------------------------
// Targets and plans

async fn create_target(client: &Client, ns: &str, replicas: i32) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("the namespace is created");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "liferay", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "liferay"}},
            "template": {
                "metadata": {"labels": {"app": "liferay"}},
                "spec": {"containers": [{"name": "liferay", "image": OLD_IMAGE}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "liferay", "namespace": ns},
        "spec": {"selector": {"app": "liferay"}, "ports": [{"port": 8080}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .expect("the Service is created");
}

async fn wait_available(client: &Client, ns: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    loop {
        let status = api.get("liferay").await.ok().and_then(|d| d.status);
        if status.is_some_and(|s| {
            s.available_replicas == Some(replicas) && s.updated_replicas == Some(replicas)
        }) {
            return;
        }
        assert!(
            start.elapsed() < PLAN_TIMEOUT,
            "{ns}: the target never became available"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `pod-template-hash` and UIDs of the target's pods now.
async fn pods_now(client: &Client, ns: &str) -> (String, HashSet<String>) {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("pods listed")
        .items;
    let hash = pods
        .iter()
        .find_map(|p| p.labels().get("pod-template-hash").cloned())
        .unwrap_or_default();
    (hash, pods.iter().filter_map(|p| p.uid()).collect())
}

async fn run_plan(client: &Client, ns: &str, spec: Value) {
    let api: Api<MaintenancePlan> = Api::namespaced(client.clone(), ns);
    let plan: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": "bench", "namespace": ns}, "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &plan)
        .await
        .expect("the plan is created");
    let start = Instant::now();
    loop {
        let status = api.get("bench").await.ok().and_then(|p| p.status);
        match status.as_ref().and_then(|s| s.phase) {
            Some(cutover::api::Phase::Succeeded) => return,
            Some(
                phase @ (cutover::api::Phase::Failed
                | cutover::api::Phase::Aborted
                | cutover::api::Phase::Rejected),
            ) => panic!("{ns}: the plan ended {phase:?}: {status:?}"),
            _ => {}
        }
        assert!(
            start.elapsed() < PLAN_TIMEOUT,
            "{ns}: the plan did not succeed in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn main() {
    let cutovers = env_usize("CUTOVER_BENCH_REAL_CUTOVERS", 20);
    let restarts = env_usize("CUTOVER_BENCH_REAL_RESTARTS", 3);
    let bed = Bed::up();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = bed.client().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(
            "maintenanceplans.cutover.dev",
            &PatchParams::apply("cutover-bench").force(),
            &Patch::Apply(&MaintenancePlan::crd()),
        )
        .await
        .expect("the CRD is applied");
        let run = std::process::id();
        let blue_green: Vec<String> = (0..cutovers).map(|i| format!("bench-{run}-bg-{i}")).collect();
        let restart: Vec<String> = (0..restarts).map(|i| format!("bench-{run}-rs-{i}")).collect();
        for ns in &blue_green {
            create_target(&client, ns, 3).await;
        }
        for ns in &restart {
            create_target(&client, ns, 10).await;
        }
        for ns in &blue_green {
            wait_available(&client, ns, 3).await;
        }
        for ns in &restart {
            wait_available(&client, ns, 10).await;
        }
        let log: Log = Arc::default();
        let watches = watch(client.clone(), log.clone());
        let operator = Operator::start(&bed).await;
        let rss_idle = operator.memory().0;

        let mut switches: Vec<(String, Switch)> = Vec::new();
        for ns in &blue_green {
            let (blue, _) = pods_now(&client, ns).await;
            run_plan(
                &client,
                ns,
                json!({"target": {"name": TARGET}, "service": TARGET,
                       "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
                       "update": {"image": NEW_IMAGE}, "strategy": "BlueGreen",
                       "blueGreen": {"scaleDownDelaySeconds": 0}}),
            )
            .await;
            // The switch's watch event may trail the plan's end by a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let seen = log.lock().unwrap().clone();
            let measured = switch(&seen, ns, &blue)
                .unwrap_or_else(|| panic!("{ns}: no switch to green's pods was seen"));
            switches.push((ns.clone(), measured));
        }
        let mut steps: Vec<(String, Interval)> = Vec::new();
        for ns in &restart {
            let (_, old) = pods_now(&client, ns).await;
            run_plan(
                &client,
                ns,
                json!({"target": {"name": TARGET}, "service": TARGET,
                       "strategy": "RollingRestart", "rollingRestart": {"minReadySeconds": 0}}),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let seen = log.lock().unwrap().clone();
            let found = pod_steps(&seen, ns, &old);
            assert_eq!(found.len(), old.len(), "{ns}: every old pod's eviction was seen");
            steps.extend(found.into_iter().map(|i| (ns.clone(), i)));
        }
        let (rss_end, rss_peak) = operator.memory();
        let cpu_s = operator.cpu_seconds();
        drop(operator);
        for w in watches {
            w.abort();
        }
        let audit = audited(&bed.dir.join("audit.log"));
        let per_plan = |namespaces: &[String], writes_only: bool| {
            let n = audit
                .iter()
                .filter(|r| namespaces.contains(&r.ns) && (r.write || !writes_only))
                .count();
            n as f64 / namespaces.len().max(1) as f64
        };
        let switch_ms: Vec<f64> = switches
            .iter()
            .map(|(_, s)| s.controllers.ms() + s.operator.ms())
            .collect();
        let controllers_ms: Vec<f64> = switches.iter().map(|(_, s)| s.controllers.ms()).collect();
        let operator_ms: Vec<f64> = switches.iter().map(|(_, s)| s.operator.ms()).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let switch_requests: Vec<(usize, f64)> = switches
            .iter()
            .map(|(ns, s)| inside(&audit, ns, &s.operator))
            .collect();
        let step_ms: Vec<f64> = steps.iter().map(|(_, i)| i.ms()).collect();
        let step_requests: Vec<(usize, f64)> =
            steps.iter().map(|(ns, i)| inside(&audit, ns, i)).collect();
        let requests_of = |v: &[(usize, f64)]| {
            let n: Vec<f64> = v.iter().map(|(n, _)| *n as f64).collect();
            let t: Vec<f64> = v.iter().map(|(_, t)| *t).collect();
            format!("{:.1} requests, {:.1} ms of server time", mean(&n), mean(&t))
        };
        let p = |v: &[f64]| format!("{:.1} / {:.1} ms", percentile(v, 50.0), percentile(v, 99.0));
        let rows = [
            (
                format!("BlueGreen switch p50 / p99 ({cutovers} cutovers of 3 pods, one at a time)"),
                p(&switch_ms),
            ),
            (
                "  of which green's pods Ready -> green Deployment available (controllers)".into(),
                p(&controllers_ms),
            ),
            ("  of which green available -> Service switched (operator)".into(), p(&operator_ms)),
            ("  operator requests in that time, mean".into(), requests_of(&switch_requests)),
            (
                format!("RollingRestart pod step p50 / p99 ({} steps, plain restarts of 10 pods)", steps.len()),
                p(&step_ms),
            ),
            ("  operator requests in a step, mean".into(), requests_of(&step_requests)),
            ("operator API writes per BlueGreen plan".into(), format!("{:.1}", per_plan(&blue_green, true))),
            ("operator API writes per restart plan (10 pods)".into(), format!("{:.1}", per_plan(&restart, true))),
            ("operator API requests per BlueGreen plan (all verbs)".into(), format!("{:.1}", per_plan(&blue_green, false))),
            ("operator API requests per restart plan (all verbs)".into(), format!("{:.1}", per_plan(&restart, false))),
            ("operator RSS idle / at the end / peak (VmHWM)".into(), format!("{rss_idle:.1} / {rss_end:.1} / {rss_peak:.1} MiB")),
            ("operator CPU time, whole run".into(), format!("{cpu_s:.2} s")),
        ];
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        println!("cutover on the real control plane ({})", bed.dir.display());
        for (name, value) in &rows {
            println!("{name:width$}  {value}");
        }
        let figures = json!({
            "bed": "real",
            "switch_ms_p50": round(percentile(&switch_ms, 50.0), 2),
            "switch_ms_p99": round(percentile(&switch_ms, 99.0), 2),
            "switch_operator_ms_p50": round(percentile(&operator_ms, 50.0), 2),
            "switch_operator_ms_p99": round(percentile(&operator_ms, 99.0), 2),
            "pod_step_ms_p50": round(percentile(&step_ms, 50.0), 2),
            "pod_step_ms_p99": round(percentile(&step_ms, 99.0), 2),
            "writes_per_blue_green_plan": round(per_plan(&blue_green, true), 1),
            "writes_per_restart_plan": round(per_plan(&restart, true), 1),
            "rss_mib_idle": round(rss_idle, 1),
            "rss_mib_peak": round(rss_peak, 1),
            "cpu_s": round(cpu_s, 2),
        });
        println!("{figures}");
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}
