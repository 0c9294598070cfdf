//! The real control plane as both benchmarks on it (`real_bed`, `peers`) see it: the bed and
//! a client of it, the operator as a process, the benchmark's own watches of Pods,
//! Deployments and Services and what is measured from them (a BlueGreen switch, the pod steps
//! of a restart), and the requests of a ServiceAccount read from the kube-apiserver's audit
//! log. It creates no workloads and runs no plans: each benchmark does that its own way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::{Value, json};

use super::figures;

/// The name of each namespace's target and Service.
pub const TARGET: &str = "liferay";
/// How long a target may take to become available.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The label naming a pod's revision, in a Service's selector too: Argo Rollouts' own where it
/// is set, else the Deployment controller's.
pub fn revision(labels: &BTreeMap<String, String>) -> Option<String> {
    labels
        .get("rollouts-pod-template-hash")
        .or_else(|| labels.get("pod-template-hash"))
        .cloned()
}

/// A client with the credentials of `kubeconfig`.
pub async fn client(kubeconfig: &Path) -> Client {
    let parsed = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .expect("the bed's kubeconfig");
    Client::try_from(config).expect("a client")
}

// ---------------------------------------------------------------------------------------
// The bed

/// The real control plane: started here and stopped on drop, or one that was given.
pub struct Bed {
    pub dir: PathBuf,
    started_here: bool,
}

impl Bed {
    pub fn up() -> Bed {
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

    pub async fn client(&self) -> Client {
        client(&self.dir.join("kubeconfig")).await
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

pub struct Operator {
    pub child: Child,
}

impl Operator {
    pub async fn start(bed_dir: &Path) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["run", "--leader-election", "false", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(bed_dir.join("operator.kubeconfig"))
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
    pub fn memory(&self) -> (f64, f64) {
        figures::memory(self.child.id())
    }

    /// User plus system CPU time, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
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
pub fn ready(port: u16) -> bool {
    answers(port, "/readyz")
}

/// A GET of `path` on 127.0.0.1:`port` answers 200.
pub fn answers(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
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
pub enum Seen {
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
pub type Log = Arc<Mutex<Vec<(Timestamp, Seen)>>>;

pub fn ms(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_microsecond() - from.as_microsecond()) as f64 / 1000.0
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn all_available(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas);
    d.status.as_ref().is_some_and(|s| {
        s.observed_generation == d.metadata.generation
            && s.available_replicas == want
            && s.updated_replicas == want
    })
}

/// Watches Pods, Deployments and Services of the benchmark's namespaces (`bench-`).
pub fn watch(client: Client, log: Log) -> Vec<tokio::task::JoinHandle<()>> {
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
                    let hash = revision(pod.labels());
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
pub struct Interval {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Interval {
    pub fn ms(&self) -> f64 {
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
pub struct Switch {
    pub controllers: Interval,
    pub operator: Interval,
}

impl Switch {
    /// From the last of green's pods Ready to the switch.
    pub fn total_ms(&self) -> f64 {
        Interval {
            from: self.controllers.from,
            to: self.operator.to,
        }
        .ms()
    }
}

pub fn switch(log: &[(Timestamp, Seen)], ns: &str, blue: &str) -> Option<Switch> {
    let (switched_at, green) = log.iter().find_map(|(at, seen)| match seen {
        Seen::Selector { ns: n, selector } if n == ns => {
            revision(selector).filter(|h| h != blue).map(|h| (*at, h))
        }
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
pub fn pod_steps(log: &[(Timestamp, Seen)], ns: &str, old: &HashSet<String>) -> Vec<Interval> {
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

/// One request of a controller's ServiceAccount in a benchmark namespace.
pub struct Audited {
    pub ns: String,
    pub received: Timestamp,
    /// Until the server's answer was complete, in ms.
    pub server_ms: f64,
    pub write: bool,
}

/// The requests of the ServiceAccounts whose user names start with `user` (such as
/// `system:serviceaccount:cutover-system:`) in the benchmark's namespaces.
pub fn audited(path: &Path, user: &str) -> Vec<Audited> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut requests = Vec::new();
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let username = event["user"]["username"].as_str().unwrap_or_default();
        let ns = event["objectRef"]["namespace"].as_str().unwrap_or_default();
        // A watch logs two stages; take each request once, at its last stage logged.
        if !username.starts_with(user)
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
pub fn inside(requests: &[Audited], ns: &str, interval: &Interval) -> (usize, f64) {
    let (Some(from), Some(to)) = (interval.from, interval.to) else {
        return (0, 0.0);
    };
    requests
        .iter()
        .filter(|r| r.ns == ns && r.received >= from && r.received <= to)
        .fold((0, 0.0), |(n, t), r| (n + 1, t + r.server_ms))
}

// ---------------------------------------------------------------------------------------
// Targets

/// A namespace `ns` with a Deployment `liferay` of `replicas` pods running `image` and the
/// Service `liferay` in front of it.
pub async fn create_target(client: &Client, ns: &str, replicas: i32, image: &str) {
    create_namespace(client, ns).await;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "liferay", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "liferay"}},
            "template": {
                "metadata": {"labels": {"app": "liferay"}},
                "spec": {"containers": [{"name": "liferay", "image": image}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
    create_service(client, ns).await;
}

pub async fn create_namespace(client: &Client, ns: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .expect("the namespace is created");
}

/// The Service `liferay`, selecting `app: liferay`.
pub async fn create_service(client: &Client, ns: &str) {
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

/// Waits until the Deployment `liferay` of `ns` has `replicas` pods available and updated.
pub async fn wait_available(client: &Client, ns: &str, replicas: i32) {
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
            start.elapsed() < WAIT_TIMEOUT,
            "{ns}: the target never became available"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The revision (`revision`) and UIDs of the pods of `ns` now.
pub async fn pods_now(client: &Client, ns: &str) -> (String, HashSet<String>) {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("pods listed")
        .items;
    let hash = pods
        .iter()
        .find_map(|p| revision(p.labels()))
        .unwrap_or_default();
    (hash, pods.iter().filter_map(|p| p.uid()).collect())
}
