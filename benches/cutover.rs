//! `cargo bench --bench cutover`: the operator against the simulated cluster, end to end.
//!
//! Measures plan evaluations per second, the BlueGreen switch latency and the RollingRestart
//! pod step latency (both read from the cluster's recorded history, with 1, 4 and 10 plans of
//! each kind running at a time), then runs 1,000 plans concurrently on 1,000 targets with the
//! operator as a separate process, whose memory, CPU time and API writes it reads. Prints a
//! table and, as its last line, the figures as one JSON object. BENCHMARKS.md says what each
//! figure means and how it is measured.
//!
//! Smaller runs for a quick look: `CUTOVER_BENCH_PLANS` (default 1000),
//! `CUTOVER_BENCH_CUTOVERS` (BlueGreen cutovers per level, default 100) and
//! `CUTOVER_BENCH_RESTARTS` (RollingRestart plans of 10 pods per level, default 12).
//! `CUTOVER_BENCH_LEVELS` (plans of each kind at a time in the latency runs, default `1,4,10`;
//! the first level given is the headline when 1 is not among them).
//! `CUTOVER_BENCH_OPERATOR_LOG` sets the operator's `RUST_LOG` (default `warn`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cutover::api::MaintenancePlan;
use cutover::input::read_plans;
use cutover::rules::{Catalog, evaluate};
use cutover_sim::{HistoryMode, ResKey, SimCluster, SimOptions, WriteRecord, keys};
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};

#[path = "support/figures.rs"]
mod figures;
use figures::{percentile, round};

/// The bearer token the operator process sends, so that the cluster's request log can tell
/// its requests apart.
const TOKEN: &str = "cutover-bench-operator";
/// The operator's field manager.
const MANAGER: &str = "cutover";
const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
/// How many requests the bench's own client keeps in flight when it creates objects.
const CLIENT_CONCURRENCY: usize = 32;
const REPLICAS: i32 = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn plans_key() -> ResKey {
    ResKey::new("cutover.dev", "maintenanceplans")
}

// ---------------------------------------------------------------------------------------
// Figures

fn millis_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_microsecond() - from.as_microsecond()) as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------
// Plan evaluation

/// Plan evaluations per second on one core: every example plan, in a timed loop.
fn evaluations_per_second() -> (f64, usize) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut plans = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("an example plan");
        for doc in read_plans(&text, &path.display().to_string()).expect("a valid example") {
            plans.push(doc.plan.spec);
        }
    }
    let catalog = Catalog::builtin();
    let mut count = 0u64;
    // Warm up, then measure for a second.
    for plan in &plans {
        std::hint::black_box(evaluate(std::hint::black_box(plan), catalog).ok());
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            for plan in &plans {
                std::hint::black_box(evaluate(std::hint::black_box(plan), catalog).ok());
            }
            count += plans.len() as u64;
        }
    }
    (count as f64 / start.elapsed().as_secs_f64(), plans.len())
}

// ---------------------------------------------------------------------------------------
// The cluster and the operator process

async fn start_cluster(history: HistoryMode) -> (SimCluster, Client) {
    let sim = SimCluster::start(SimOptions {
        history,
        watch_window: 200_000,
        ..SimOptions::default()
    })
    .await
    .expect("the simulated cluster starts");
    let client = sim.client().expect("a client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &MaintenancePlan::crd())
        .await
        .expect("the CRD is created");
    (sim, client)
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace"),
        )
        .await
        .expect("the namespace is created");
}

/// A Deployment of `replicas` pods and its Service, both named `name`.
async fn create_target(client: &Client, ns: &str, name: &str, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "liferay", "image": OLD_IMAGE, "ports": [{"containerPort": 8080}]}]}
            }
        }
    }))
    .expect("a Deployment");
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the Deployment is created");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]}
    }))
    .expect("a Service");
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .expect("the Service is created");
}

async fn create_targets(client: &Client, targets: &[(String, String, i32)]) {
    stream::iter(targets)
        .for_each_concurrent(CLIENT_CONCURRENCY, |(ns, name, replicas)| async move {
            create_target(client, ns, name, *replicas).await
        })
        .await;
}

/// Waits until `done` holds, checking every `every`; panics with `what` after `limit`.
async fn wait_until(what: &str, limit: Duration, every: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(every).await;
    }
}

/// Every Deployment of the cluster has rolled out its template, all pods available.
fn all_available(sim: &SimCluster, expected: usize) -> bool {
    let deployments = sim.store().list(&keys::DEPLOYMENTS, None).0;
    deployments.len() == expected
        && deployments.iter().all(|d| {
            let s = &d["status"];
            let want = &d["spec"]["replicas"];
            d["metadata"]["generation"] == s["observedGeneration"]
                && &s["updatedReplicas"] == want
                && &s["availableReplicas"] == want
                && &s["replicas"] == want
        })
}

fn plan_phase(sim: &SimCluster, ns: &str, name: &str) -> Option<String> {
    sim.store()
        .get(&plans_key(), ns, name)
        .and_then(|p| p.pointer("/status/phase")?.as_str().map(str::to_string))
}

async fn apply_plan(client: &Client, ns: &str, name: &str, spec: Value) {
    let plan: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .expect("a plan");
    Api::<MaintenancePlan>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &plan)
        .await
        .expect("the plan is created");
}

/// Waits until the plan has Succeeded; panics if it ends otherwise or takes too long.
async fn wait_succeeded(sim: &SimCluster, ns: &str, name: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        match plan_phase(sim, ns, name).as_deref() {
            Some("Succeeded") => return,
            Some(phase @ ("Failed" | "Aborted" | "Rejected")) => {
                let status = sim
                    .store()
                    .get(&plans_key(), ns, name)
                    .map(|p| p["status"].clone());
                panic!("plan {ns}/{name} ended {phase}: {status:#?}")
            }
            _ => {}
        }
        assert!(
            start.elapsed() < limit,
            "plan {ns}/{name} did not succeed within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `cutover run` as a separate process, killed when dropped.
struct Operator {
    child: Child,
    kubeconfig: PathBuf,
}

impl Operator {
    /// Starts the operator against `sim` and waits until its watches are open (its initial
    /// lists done).
    async fn start(sim: &SimCluster, label: &str) -> Operator {
        let kubeconfig = std::env::temp_dir().join(format!(
            "cutover-bench-{}-{label}.kubeconfig",
            std::process::id()
        ));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: operator\ncurrent-context: sim\nusers:\n- name: operator\n  user:\n    token: {TOKEN}\n",
            sim.url()
        );
        std::fs::write(&kubeconfig, text).expect("kubeconfig written");
        let watches_before = sim.store().watch_count();
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "run",
                "--leader-election",
                "false",
                "--metrics-addr",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("CUTOVER_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cutover run starts");
        let operator = Operator { child, kubeconfig };
        // Synced once its set of watches is open and stays so for a while.
        let start = Instant::now();
        let (mut last, mut stable_since) = (0, Instant::now());
        loop {
            let open = sim.store().watch_count().saturating_sub(watches_before);
            if open != last {
                (last, stable_since) = (open, Instant::now());
            } else if open > 0 && stable_since.elapsed() > Duration::from_millis(500) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the operator did not open its watches"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        operator
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS and VmHWM, in MiB.
    fn memory(&self) -> (f64, f64) {
        figures::memory(self.pid())
    }

    /// User plus system CPU time, in seconds.
    fn cpu_seconds(&self) -> f64 {
        figures::cpu_seconds(self.pid())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

// ---------------------------------------------------------------------------------------
// Plans

fn blue_green_spec(target: &str, image: &str) -> Value {
    json!({
        "target": {"name": target}, "service": target,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": image},
        "strategy": "BlueGreen",
        "blueGreen": {"scaleDownDelaySeconds": 0}
    })
}

fn restart_spec(target: &str) -> Value {
    json!({
        "target": {"name": target}, "service": target,
        "strategy": "RollingRestart",
        "rollingRestart": {"minReadySeconds": 0}
    })
}

fn rollout_spec(target: &str, image: &str) -> Value {
    json!({
        "target": {"name": target}, "service": target,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": image},
        "strategy": "RollingRestart",
        "rollingRestart": {"minReadySeconds": 0}
    })
}

// ---------------------------------------------------------------------------------------
// Latencies from the recorded history

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// BlueGreen switch latencies, in ms: for every write of the operator that pointed a Service
/// at a green copy's pods (its selector names green's `pod-template-hash`), the time since the
/// status write that made the last of those pods Ready.
fn switch_latencies(writes: &[WriteRecord]) -> Vec<f64> {
    // (namespace, green hash) -> pod -> when it first became Ready.
    let mut green_ready: HashMap<(String, String), HashMap<String, Timestamp>> = HashMap::new();
    let mut samples = Vec::new();
    for w in writes {
        match w.resource.as_str() {
            "pods" => {
                let l = labels(&w.object);
                if l.get("cutover.dev/copy").map(String::as_str) != Some("green") {
                    continue;
                }
                let Some(hash) = l.get("pod-template-hash") else {
                    continue;
                };
                if w.verb == "status" && pod_ready(&w.object) {
                    green_ready
                        .entry((w.namespace.clone(), hash.clone()))
                        .or_default()
                        .entry(w.name.clone())
                        .or_insert(w.time);
                }
            }
            "services" if w.manager == MANAGER => {
                let Some(hash) = w
                    .object
                    .pointer("/spec/selector/pod-template-hash")
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                let key = (w.namespace.clone(), hash.to_string());
                // Once per green: the switch, not a later write that keeps the selector.
                if let Some(ready) = green_ready.remove(&key)
                    && let Some(last) = ready.values().max()
                {
                    samples.push(millis_between(*last, w.time));
                }
            }
            _ => {}
        }
    }
    samples
}

/// What held a RollingRestart before its next eviction.
#[derive(Default)]
struct StepGates {
    ready: usize,
    removed: usize,
    other: usize,
}

/// The target whose pods are named like `pod` (`TARGET-...`), if any.
fn pod_of<'a>(targets: &'a [String], pod: &str) -> Option<&'a String> {
    targets.iter().find(|t| {
        pod.strip_prefix(t.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// RollingRestart (surge pod + eviction) pod step latencies, in ms: for every eviction by the
/// operator, the time since the last write to a pod of the same target before it. Between
/// two evictions the operator waits for the replacement to be Ready and the evicted pod to be
/// gone (and the surge pod to be Ready before the first one); with `minReadySeconds: 0` the
/// last of those writes is the moment the next step became possible.
fn pod_step_latencies(writes: &[WriteRecord], targets: &[String]) -> (Vec<f64>, StepGates) {
    let mut last: HashMap<&String, &WriteRecord> = HashMap::new();
    let mut samples = Vec::new();
    let mut gates = StepGates::default();
    for w in writes.iter().filter(|w| w.resource.as_str() == "pods") {
        let Some(target) = pod_of(targets, &w.name) else {
            continue;
        };
        if w.verb == "evict"
            && let Some(gate) = last.get(target)
        {
            samples.push(millis_between(gate.time, w.time));
            if gate.verb == "delete" {
                gates.removed += 1;
            } else if gate.verb == "status" && pod_ready(&gate.object) {
                gates.ready += 1;
            } else {
                gates.other += 1;
            }
        }
        last.insert(target, w);
    }
    (samples, gates)
}

/// Image rollouts, paced by the Deployment's own controller (surge one, none unavailable):
/// from a new pod's Ready status write to the controller's next scale of the target's
/// ReplicaSets. Counted from the operator's update of the target (the rollout's start) on.
fn rollout_step_latencies(writes: &[WriteRecord], targets: &[String]) -> Vec<f64> {
    let mut started: HashMap<&String, bool> = HashMap::new();
    let mut ready_at: HashMap<&String, Timestamp> = HashMap::new();
    let mut samples = Vec::new();
    for w in writes {
        match w.resource.as_str() {
            "deployments.apps" if w.manager == MANAGER && w.verb == "update" => {
                if let Some(t) = targets.iter().find(|t| **t == w.name) {
                    started.insert(t, true);
                }
            }
            "pods" if w.verb == "status" && pod_ready(&w.object) => {
                if let Some(t) = pod_of(targets, &w.name)
                    && started.contains_key(t)
                {
                    ready_at.entry(t).or_insert(w.time);
                }
            }
            "replicasets.apps" if w.verb != "status" && w.manager != MANAGER => {
                if let Some(t) = pod_of(targets, &w.name)
                    && let Some(ready) = ready_at.remove(t)
                {
                    samples.push(millis_between(ready, w.time));
                }
            }
            _ => {}
        }
    }
    samples
}

/// The latencies at one level of concurrency.
struct Latencies {
    /// Plans of each kind running at the same time.
    parallel: usize,
    switch: Vec<f64>,
    cutovers: usize,
    pod_step: Vec<f64>,
    gates: StepGates,
    restarts: usize,
    rollout_step: Vec<f64>,
    seconds: f64,
}

/// BlueGreen cutovers on `parallel` targets of 3 pods (each target runs its plans one after
/// another, the targets side by side), then RollingRestarts on `parallel` targets of 10 pods
/// the same way, and optionally image rollouts, in namespace `ns`.
async fn latencies(
    sim: &SimCluster,
    client: &Client,
    ns: &str,
    parallel: usize,
    cutovers: usize,
    restarts: usize,
    rollouts: bool,
) -> Latencies {
    let started = Instant::now();
    create_namespace(client, ns).await;
    let bg_targets: Vec<String> = (0..parallel).map(|i| format!("bg-{i}")).collect();
    let rr_targets: Vec<String> = (0..parallel).map(|i| format!("rr-{i}")).collect();
    let ro_targets: Vec<String> = if rollouts {
        (0..5).map(|i| format!("ro-{i}")).collect()
    } else {
        Vec::new()
    };
    let mut all: Vec<(String, String, i32)> = Vec::new();
    all.extend(bg_targets.iter().map(|t| (ns.to_string(), t.clone(), 3)));
    all.extend(
        rr_targets
            .iter()
            .map(|t| (ns.to_string(), t.clone(), REPLICAS)),
    );
    all.extend(
        ro_targets
            .iter()
            .map(|t| (ns.to_string(), t.clone(), REPLICAS)),
    );
    let before = sim.store().list(&keys::DEPLOYMENTS, None).0.len();
    create_targets(client, &all).await;
    wait_until(
        "the latency targets to be available",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || all_available(sim, before + all.len()),
    )
    .await;
    let first_write = sim.history().writes().len();

    let rounds = cutovers.div_ceil(parallel);
    stream::iter(bg_targets.iter())
        .for_each_concurrent(None, |target| async move {
            for round in 0..rounds {
                let name = format!("{target}-bg-{round}");
                let image = format!("liferay/dxp:7.0.10-de-32-jdk11-r{round}");
                apply_plan(client, ns, &name, blue_green_spec(target, &image)).await;
                wait_succeeded(sim, ns, &name, Duration::from_secs(60)).await;
            }
        })
        .await;
    let restart_rounds = restarts.div_ceil(parallel);
    stream::iter(rr_targets.iter())
        .for_each_concurrent(None, |target| async move {
            for round in 0..restart_rounds {
                let name = format!("{target}-restart-{round}");
                apply_plan(client, ns, &name, restart_spec(target)).await;
                wait_succeeded(sim, ns, &name, Duration::from_secs(60)).await;
            }
        })
        .await;
    stream::iter(ro_targets.iter())
        .for_each_concurrent(None, |target| async move {
            let name = format!("{target}-rollout");
            let image = "liferay/dxp:7.0.10-de-29";
            apply_plan(client, ns, &name, rollout_spec(target, image)).await;
            wait_succeeded(sim, ns, &name, Duration::from_secs(60)).await;
        })
        .await;
    let writes: Vec<WriteRecord> = sim.history().writes()[first_write..]
        .iter()
        .filter(|w| w.namespace == ns)
        .cloned()
        .collect();
    let (pod_step, gates) = pod_step_latencies(&writes, &rr_targets);
    Latencies {
        parallel,
        switch: switch_latencies(&writes),
        cutovers: rounds * parallel,
        pod_step,
        gates,
        restarts: restart_rounds * parallel,
        rollout_step: rollout_step_latencies(&writes, &ro_targets),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The latencies at each level of concurrency, with the operator as a process and the full
/// history recorded.
async fn all_latencies(
    levels: &[usize],
    headline: usize,
    cutovers: usize,
    restarts: usize,
) -> Vec<Latencies> {
    let (sim, client) = start_cluster(HistoryMode::Full).await;
    let operator = Operator::start(&sim, "latency").await;
    let mut out = Vec::new();
    for &parallel in levels {
        let ns = format!("latency-{parallel}");
        let lat = latencies(
            &sim,
            &client,
            &ns,
            parallel,
            cutovers,
            restarts,
            parallel == headline,
        )
        .await;
        println!(
            "latency run, {parallel} at a time: {} BlueGreen cutovers, {} restarts in {:.1}s",
            lat.cutovers, lat.restarts, lat.seconds
        );
        out.push(lat);
        sim.history().clear();
    }
    drop(operator);
    out
}

// ---------------------------------------------------------------------------------------
// Scale

struct Scale {
    plans: usize,
    by_kind: BTreeMap<&'static str, usize>,
    wall_s: f64,
    rss_idle: f64,
    rss_unrelated: f64,
    rss_peak: f64,
    rss_end: f64,
    cpu_s: f64,
    cpu_plans_s: f64,
    writes: usize,
    writes_by_resource: BTreeMap<String, usize>,
    requests: usize,
    setup_s: f64,
}

/// Which kind of plan target `i` gets: a mix of the three ways a plan is carried out.
fn kind_of(i: usize) -> &'static str {
    match i % 3 {
        0 => "RollingRestart (restart)",
        1 => "RollingRestart (rollout)",
        _ => "BlueGreen",
    }
}

async fn scale(plans: usize) -> Scale {
    let setup = Instant::now();
    let (sim, client) = start_cluster(HistoryMode::Summary).await;
    let namespaces = (plans / 10).max(1);
    for n in 0..namespaces {
        create_namespace(&client, &format!("scale-{n}")).await;
    }
    let operator = Operator::start(&sim, "scale").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_idle, _) = operator.memory();

    // The targets: 10,000 pods that belong to no plan yet.
    let targets: Vec<(String, String, i32)> = (0..plans)
        .map(|i| {
            (
                format!("scale-{}", i % namespaces),
                format!("app-{i}"),
                REPLICAS,
            )
        })
        .collect();
    create_targets(&client, &targets).await;
    wait_until(
        "the targets to be available",
        Duration::from_secs(300),
        Duration::from_millis(100),
        || all_available(&sim, targets.len()),
    )
    .await;
    // Let the operator take in the events of the pods' start, then read its memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_unrelated, _) = operator.memory();
    let cpu_before = operator.cpu_seconds();
    let setup_s = setup.elapsed().as_secs_f64();

    // The plans, all at once.
    let requests_before = sim.history().requests().len();
    let start = Instant::now();
    let mut by_kind = BTreeMap::new();
    for i in 0..plans {
        *by_kind.entry(kind_of(i)).or_insert(0) += 1;
    }
    stream::iter(targets.iter().enumerate())
        .for_each_concurrent(CLIENT_CONCURRENCY, |(i, (ns, name, _))| {
            let client = client.clone();
            async move {
                let spec = match i % 3 {
                    0 => restart_spec(name),
                    1 => rollout_spec(name, "liferay/dxp:7.0.10-de-29"),
                    _ => blue_green_spec(name, "liferay/dxp:7.0.10-de-32-jdk11"),
                };
                apply_plan(&client, ns, &format!("plan-{i}"), spec).await;
            }
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let all = sim.store().list(&plans_key(), None).0;
        let mut succeeded = 0;
        for p in &all {
            match p.pointer("/status/phase").and_then(Value::as_str) {
                Some("Succeeded") => succeeded += 1,
                Some(phase @ ("Failed" | "Aborted" | "Rejected")) => panic!(
                    "plan {} ended {phase}: {:#?}",
                    p["metadata"]["name"], p["status"]
                ),
                _ => {}
            }
        }
        if succeeded == plans {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {succeeded} of {plans} plans succeeded in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall_s = start.elapsed().as_secs_f64();
    let (rss_end, rss_peak) = operator.memory();
    let cpu_s = operator.cpu_seconds();
    drop(operator);

    let requests = sim.history().requests();
    let ours: Vec<_> = requests[requests_before..]
        .iter()
        .filter(|r| r.user == TOKEN)
        .collect();
    let mut writes_by_resource = BTreeMap::new();
    let mut writes = 0;
    for r in &ours {
        if matches!(
            r.verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            writes += 1;
            *writes_by_resource
                .entry(format!("{} {}", r.verb, r.resource))
                .or_insert(0) += 1;
        }
    }
    Scale {
        plans,
        by_kind,
        wall_s,
        rss_idle,
        rss_unrelated,
        rss_peak,
        rss_end,
        cpu_s,
        cpu_plans_s: cpu_s - cpu_before,
        writes,
        writes_by_resource,
        requests: ours.len(),
        setup_s,
    }
}

// ---------------------------------------------------------------------------------------

fn machine() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    (cores, model)
}

/// Plans of each kind at the same time in the latency runs; the figures of the JSON line come
/// from `HEADLINE`.
const LEVELS: [usize; 3] = [1, 4, 10];
const HEADLINE: usize = 1;

fn main() {
    let plans = env_usize("CUTOVER_BENCH_PLANS", 1000);
    let cutovers = env_usize("CUTOVER_BENCH_CUTOVERS", 100);
    let restarts = env_usize("CUTOVER_BENCH_RESTARTS", 12);
    let (cores, model) = machine();
    println!("cutover benchmark: {cores} cores, {model}");

    let (evaluate_per_s, example_plans) = evaluations_per_second();
    println!("evaluate: {evaluate_per_s:.0} plans/s over {example_plans} example plans");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let levels: Vec<usize> = std::env::var("CUTOVER_BENCH_LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_else(|| LEVELS.to_vec());
    let headline = if levels.contains(&HEADLINE) {
        HEADLINE
    } else {
        levels[0]
    };
    let levels = runtime.block_on(all_latencies(&levels, headline, cutovers, restarts));
    let sc = runtime.block_on(scale(plans));
    println!(
        "scale run: {} targets ready in {:.1}s, {} plans done in {:.1}s",
        sc.plans, sc.setup_s, sc.plans, sc.wall_s
    );
    runtime.shutdown_timeout(Duration::from_secs(1));
    let lat = levels
        .iter()
        .find(|l| l.parallel == headline)
        .expect("the headline level ran");

    let ms = |v: f64| format!("{v:.1} ms");
    let p50_p99 = |v: &[f64]| format!("{:.1} / {:.1} ms", percentile(v, 50.0), percentile(v, 99.0));
    let mut rows: Vec<(String, String, String)> = vec![(
        "plan evaluations per second (one core)".into(),
        format!("{evaluate_per_s:.0}"),
        "> 100000".into(),
    )];
    rows.push((
        format!(
            "BlueGreen switch p50 ({} cutovers of 3 pods, {headline} at a time)",
            lat.switch.len()
        ),
        ms(percentile(&lat.switch, 50.0)),
        String::new(),
    ));
    rows.push((
        "BlueGreen switch p99".into(),
        ms(percentile(&lat.switch, 99.0)),
        "< 25 ms".into(),
    ));
    rows.push((
        format!(
            "RollingRestart pod step p50 (surge + eviction; {} steps, {headline} at a time)",
            lat.pod_step.len()
        ),
        ms(percentile(&lat.pod_step, 50.0)),
        String::new(),
    ));
    rows.push((
        "RollingRestart pod step p99".into(),
        ms(percentile(&lat.pod_step, 99.0)),
        "< 25 ms".into(),
    ));
    rows.push((
        format!(
            "  step held by: replacement Ready {}, evicted pod gone {}, other {}",
            lat.gates.ready, lat.gates.removed, lat.gates.other
        ),
        String::new(),
        String::new(),
    ));
    for l in levels.iter().filter(|l| l.parallel != headline) {
        rows.push((
            format!(
                "BlueGreen switch p50 / p99, {} at a time ({} cutovers)",
                l.parallel,
                l.switch.len()
            ),
            p50_p99(&l.switch),
            String::new(),
        ));
        rows.push((
            format!(
                "RollingRestart pod step p50 / p99, {} at a time ({} steps)",
                l.parallel,
                l.pod_step.len()
            ),
            p50_p99(&l.pod_step),
            String::new(),
        ));
    }
    rows.push((
        format!(
            "image rollout pod step p50 / p99 ({} steps; Deployment controller)",
            lat.rollout_step.len()
        ),
        p50_p99(&lat.rollout_step),
        "not the operator".into(),
    ));
    rows.push((
        format!(
            "plans ({})",
            sc.by_kind
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("{}", sc.plans),
        String::new(),
    ));
    rows.push((
        format!(
            "wall time of {} plans at once on {} pods",
            sc.plans,
            sc.plans * REPLICAS as usize
        ),
        format!("{:.1} s", sc.wall_s),
        String::new(),
    ));
    rows.push((
        "operator RSS idle".into(),
        format!("{:.1} MiB", sc.rss_idle),
        "< 20 MiB".into(),
    ));
    rows.push((
        format!(
            "operator RSS with {} pods of no plan",
            sc.plans * REPLICAS as usize
        ),
        format!("{:.1} MiB", sc.rss_unrelated),
        "< 64 MiB".into(),
    ));
    rows.push((
        "operator RSS peak (VmHWM) / at the end".into(),
        format!("{:.1} / {:.1} MiB", sc.rss_peak, sc.rss_end),
        "< 128 MiB".into(),
    ));
    rows.push((
        "operator CPU (whole run / during the plans)".into(),
        format!("{:.1} / {:.1} s", sc.cpu_s, sc.cpu_plans_s),
        String::new(),
    ));
    rows.push((
        "operator API writes per plan".into(),
        format!("{:.1}", sc.writes as f64 / sc.plans as f64),
        String::new(),
    ));
    rows.push((
        "operator API requests per plan (all verbs)".into(),
        format!("{:.1}", sc.requests as f64 / sc.plans as f64),
        String::new(),
    ));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    println!();
    println!("{:width$}  {:>value_width$}  target", "figure", "value");
    for (name, value, target) in &rows {
        println!("{name:width$}  {value:>value_width$}  {target}");
    }
    println!();
    println!("operator writes during the plans, by verb and resource (per plan):");
    for (what, n) in &sc.writes_by_resource {
        println!("  {what:40} {n:>8} ({:.2})", *n as f64 / sc.plans as f64);
    }
    println!();

    let figures = json!({
        "evaluate_per_s": evaluate_per_s.round(),
        "switch_ms_p50": round(percentile(&lat.switch, 50.0), 2),
        "switch_ms_p99": round(percentile(&lat.switch, 99.0), 2),
        "pod_step_ms_p50": round(percentile(&lat.pod_step, 50.0), 2),
        "pod_step_ms_p99": round(percentile(&lat.pod_step, 99.0), 2),
        "plans": sc.plans,
        "plans_wall_s": round(sc.wall_s, 2),
        "rss_mib_idle": round(sc.rss_idle, 1),
        "rss_mib_peak": round(sc.rss_peak, 1),
        "cpu_s": round(sc.cpu_s, 2),
        "rss_mib_unrelated": round(sc.rss_unrelated, 1),
        "reconciles_per_plan": round(sc.writes as f64 / sc.plans as f64, 1),
    });
    println!("{figures}");
}
