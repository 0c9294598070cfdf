//! `cargo bench --bench peers`: cutover and Argo Rollouts on the same work, on the real control
//! plane of `scripts/real-bed`, one controller per bed. `scripts/bench-peers` drives it: it
//! builds Argo Rollouts, brings a fresh bed up for each controller and calls this program
//! twice with `run`, then once with `report`.
//!
//! `run --peer cutover|argo-rollouts --dir DIR [--argo-bin PATH] --out FILE` starts one
//! controller against the bed in DIR (cutover as `cutover run` with the chart's ServiceAccount
//! token; Argo Rollouts' controller with the token in `DIR/argo-rollouts.kubeconfig`, which
//! `scripts/bench-peers` makes) and gives it, in this order:
//! - BlueGreen cutovers of 3-pod targets to a new image, one at a time, then in batches of 10
//!   at a time (cutover: a MaintenancePlan with strategy BlueGreen on a Deployment; Argo: a
//!   Rollout with `blueGreen.activeService` and auto-promotion whose image changes); the
//!   switch is the time from the watch event in which the last new pod turned Ready to the one
//!   in which the Service's selector named the new pods' revision;
//! - plain restarts of 10-pod targets (cutover: a RollingRestart plan without changes; Argo:
//!   `spec.restartAt` with `maxUnavailable: 1`), one at a time; a pod step is the time from the
//!   event that made the next eviction possible to that eviction (the measurements of
//!   `benches/support/real.rs`, shared with `benches/real_bed.rs`);
//! - 1,000 unrelated pods (plain Deployments of another namespace), then 100 targets of one pod
//!   held mid-cutover (cutover: BlueGreen plans with `autoPromote: false`, AwaitingPromotion;
//!   Argo: Rollouts without auto-promotion, Paused), and a quiet spell: the controller's VmHWM
//!   and CPU time are read from /proc then.
//!
//! It writes the figures of that controller as one JSON object to FILE. The requests each
//! controller made come from the audit log (its ServiceAccount's user name).
//!
//! `report --cutover FILE --argo-rollouts FILE --argo-rollouts-version V` prints the table of
//! both and, as its last line, one JSON object with each figure suffixed `_cutover` and
//! `_argo_rollouts`, their ratios and the version. It does not bring up or stop any bed.
//!
//! Sizes, from the environment (defaults in brackets): `PEERS_BG_ONE` [10] cutovers one at a
//! time, `PEERS_BG_BATCHES` [2] batches of `PEERS_BG_BATCH` [10], `PEERS_RESTARTS` [3]
//! restarts of `PEERS_RESTART_PODS` [10] pods, `PEERS_TARGETS` [100] targets held,
//! `PEERS_UNRELATED_PODS` [1000], `PEERS_IDLE_S` [30] seconds of quiet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover::api::{MaintenancePlan, Phase};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

#[path = "support/figures.rs"]
mod figures;
#[path = "support/real.rs"]
#[allow(dead_code)]
mod real;
use figures::{percentile, round};
use real::{Interval, Log, Operator, TARGET, WAIT_TIMEOUT};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
/// How long one cutover or restart may take, and the 100 targets to be held.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
const UNRELATED_NS: &str = "unrelated";
/// How long both keep the old pods after a switch. Not 0: Argo Rollouts then requeues the
/// Rollout without pause (thousands of times a second) instead of scaling the old pods down.
const SCALE_DOWN_DELAY_S: u64 = 5;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Cutover,
    ArgoRollouts,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Cutover => "cutover",
            Peer::ArgoRollouts => "argo-rollouts",
        }
    }

    /// The user name prefix of its ServiceAccount in the audit log.
    fn audit_user(self) -> &'static str {
        match self {
            Peer::Cutover => "system:serviceaccount:cutover-system:",
            Peer::ArgoRollouts => "system:serviceaccount:argo-rollouts:",
        }
    }
}

fn rollouts(client: &Client, ns: Option<&str>) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    };
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

// ---------------------------------------------------------------------------------------
// The controller process

/// The controller under test, stopped on drop.
enum Running {
    Cutover(Operator),
    ArgoRollouts(Child),
}

impl Running {
    async fn start(peer: Peer, dir: &Path, argo_bin: Option<&Path>) -> Running {
        match peer {
            Peer::Cutover => Running::Cutover(Operator::start(dir).await),
            Peer::ArgoRollouts => {
                let bin = argo_bin.expect("--argo-bin names Argo Rollouts' controller");
                let free = || {
                    std::net::TcpListener::bind("127.0.0.1:0")
                        .and_then(|l| l.local_addr())
                        .expect("a free port")
                        .port()
                };
                let (metrics, healthz) = (free(), free());
                let log = std::fs::File::create(dir.join("logs/argo-rollouts.log"))
                    .expect("the controller's log file");
                let child = Command::new(bin)
                    .arg("--kubeconfig")
                    .arg(dir.join("argo-rollouts.kubeconfig"))
                    .args(["--leader-elect=false", "--loglevel", "warn"])
                    .arg(format!("--metricsPort={metrics}"))
                    .arg(format!("--healthzPort={healthz}"))
                    .env("POD_NAMESPACE", "argo-rollouts")
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("Argo Rollouts' controller starts");
                let start = Instant::now();
                while !real::answers(healthz, "/healthz") {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "Argo Rollouts' controller did not answer /healthz"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Running::ArgoRollouts(child)
            }
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Running::Cutover(operator) => operator.child.id(),
            Running::ArgoRollouts(child) => child.id(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::ArgoRollouts(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Targets and the work given to them

/// A target in `ns`: a Deployment (cutover) or a Rollout (Argo) `liferay` and its Service.
async fn create_target(client: &Client, peer: Peer, ns: &str, replicas: i32, auto_promote: bool) {
    match peer {
        Peer::Cutover => real::create_target(client, ns, replicas, OLD_IMAGE).await,
        Peer::ArgoRollouts => {
            real::create_namespace(client, ns).await;
            real::create_service(client, ns).await;
            let rollout: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": TARGET, "namespace": ns},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": "liferay"}},
                    "template": {
                        "metadata": {"labels": {"app": "liferay"}},
                        "spec": {"containers": [{"name": "liferay", "image": OLD_IMAGE}]}
                    },
                    "strategy": {"blueGreen": {
                        "activeService": TARGET,
                        "autoPromotionEnabled": auto_promote,
                        "scaleDownDelaySeconds": SCALE_DOWN_DELAY_S,
                        "maxUnavailable": 1
                    }}
                }
            }))
            .unwrap();
            rollouts(client, Some(ns))
                .create(&PostParams::default(), &rollout)
                .await
                .expect("the Rollout is created");
        }
    }
}

fn rollout_phase(rollout: &DynamicObject) -> &str {
    rollout.data["status"]["phase"].as_str().unwrap_or_default()
}

/// Waits until the target of `ns` runs `replicas` pods, all available (for a Rollout: Healthy,
/// its Service switched to them).
async fn wait_ready(client: &Client, peer: Peer, ns: &str, replicas: i32) {
    match peer {
        Peer::Cutover => real::wait_available(client, ns, replicas).await,
        Peer::ArgoRollouts => {
            let api = rollouts(client, Some(ns));
            let start = Instant::now();
            loop {
                if let Ok(r) = api.get(TARGET).await
                    && rollout_phase(&r) == "Healthy"
                    && r.data["status"]["availableReplicas"].as_i64() == Some(replicas.into())
                {
                    return;
                }
                assert!(
                    start.elapsed() < WAIT_TIMEOUT,
                    "{ns}: the Rollout never became Healthy"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// A cutover to the new image, promoted at once.
    BlueGreen,
    /// The same, held before the switch.
    BlueGreenHeld,
    Restart,
}

/// Gives the target of `ns` its work: creates the plan (cutover) or changes the Rollout.
/// Returns what a Rollout's status will say once the work is done (its `restartedAt`).
async fn start_work(client: &Client, peer: Peer, ns: &str, work: Work) -> Option<Timestamp> {
    match peer {
        Peer::Cutover => {
            let spec = match work {
                Work::BlueGreen | Work::BlueGreenHeld => json!({
                    "target": {"name": TARGET}, "service": TARGET,
                    "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
                    "update": {"image": NEW_IMAGE}, "strategy": "BlueGreen",
                    "blueGreen": {"scaleDownDelaySeconds": SCALE_DOWN_DELAY_S,
                                  "autoPromote": work == Work::BlueGreen}}),
                Work::Restart => json!({
                    "target": {"name": TARGET}, "service": TARGET,
                    "strategy": "RollingRestart", "rollingRestart": {"minReadySeconds": 0}}),
            };
            let plan: MaintenancePlan = serde_json::from_value(json!({
                "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
                "metadata": {"name": "bench", "namespace": ns}, "spec": spec
            }))
            .unwrap();
            Api::<MaintenancePlan>::namespaced(client.clone(), ns)
                .create(&PostParams::default(), &plan)
                .await
                .expect("the plan is created");
            None
        }
        Peer::ArgoRollouts => {
            // Whole seconds: the server compares it with the pods' creation times, which have
            // no fraction.
            let restart_at = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
            let patch = match work {
                Work::BlueGreen | Work::BlueGreenHeld => json!({"spec": {"template": {"spec": {
                    "containers": [{"name": "liferay", "image": NEW_IMAGE}]}}}}),
                Work::Restart => json!({"spec": {"restartAt": restart_at.to_string()}}),
            };
            rollouts(client, Some(ns))
                .patch(TARGET, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("the Rollout is changed");
            (work == Work::Restart).then_some(restart_at)
        }
    }
}

/// Whether the work given to `ns` is done (for `BlueGreenHeld`: held before the switch).
/// `switched` says whether the benchmark's watch saw the Service switch to new pods, and
/// `blue_down` whether the old pods' ReplicaSet is scaled to zero.
fn work_done(
    peer: Peer,
    work: Work,
    plan: Option<&MaintenancePlan>,
    rollout: Option<&DynamicObject>,
    restart_at: Option<Timestamp>,
    (switched, blue_down): (bool, bool),
) -> bool {
    match peer {
        Peer::Cutover => {
            let phase = plan.and_then(|p| p.status.as_ref()).and_then(|s| s.phase);
            if let Some(p @ (Phase::Failed | Phase::Aborted | Phase::Rejected)) = phase {
                panic!("a plan ended {p:?}");
            }
            match work {
                Work::BlueGreenHeld => phase == Some(Phase::AwaitingPromotion),
                _ => phase == Some(Phase::Succeeded),
            }
        }
        Peer::ArgoRollouts => {
            let Some(r) = rollout else { return false };
            match work {
                Work::BlueGreenHeld => rollout_phase(r) == "Paused",
                Work::BlueGreen => switched && blue_down && rollout_phase(r) == "Healthy",
                Work::Restart => {
                    let done = r.data["status"]["restartedAt"]
                        .as_str()
                        .and_then(|t| t.parse::<Timestamp>().ok());
                    done.is_some() && done == restart_at
                }
            }
        }
    }
}

/// Gives each of `namespaces` its work at once and waits until all of it is done, from one
/// list of all plans or Rollouts every 250 ms (not a request per target). Returns the revision
/// each ran before.
async fn run_work(
    client: &Client,
    peer: Peer,
    namespaces: &[String],
    work: Work,
    log: &Log,
) -> Vec<String> {
    let blue: Vec<String> = join_all(namespaces.iter().map(|ns| real::pods_now(client, ns)))
        .await
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    let restart_at: Vec<Option<Timestamp>> = join_all(
        namespaces
            .iter()
            .map(|ns| start_work(client, peer, ns, work)),
    )
    .await;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Argo Rollouts' cutover ends when it has scaled the old pods down.
        let sets = match (peer, work) {
            (Peer::ArgoRollouts, Work::BlueGreen) => Api::<ReplicaSet>::all(client.clone())
                .list(&ListParams::default().labels("rollouts-pod-template-hash"))
                .await
                .map(|l| l.items)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let (plans, rollouts_now) = match peer {
            Peer::Cutover => {
                let list = Api::<MaintenancePlan>::all(client.clone())
                    .list(&ListParams::default())
                    .await;
                (list.map(|l| l.items).unwrap_or_default(), Vec::new())
            }
            Peer::ArgoRollouts => {
                let list = rollouts(client, None).list(&ListParams::default()).await;
                (Vec::new(), list.map(|l| l.items).unwrap_or_default())
            }
        };
        let seen = log.lock().unwrap().clone();
        let all = namespaces.iter().enumerate().all(|(i, ns)| {
            let of_ns = |n: &Option<String>| n.as_deref() == Some(ns.as_str());
            let plan = plans.iter().find(|p| of_ns(&p.metadata.namespace));
            let rollout = rollouts_now.iter().find(|r| of_ns(&r.metadata.namespace));
            let switched = work == Work::BlueGreen && real::switch(&seen, ns, &blue[i]).is_some();
            let blue_down = sets
                .iter()
                .filter(|rs| of_ns(&rs.metadata.namespace))
                .filter(|rs| real::revision(rs.labels()).as_ref() == Some(&blue[i]))
                .all(|rs| rs.spec.as_ref().and_then(|s| s.replicas) == Some(0));
            work_done(
                peer,
                work,
                plan,
                rollout,
                restart_at[i],
                (switched, blue_down),
            )
        });
        if all {
            // The switch's watch event may trail the end by a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return blue;
        }
        assert!(
            start.elapsed() < RUN_TIMEOUT,
            "{}: the work on {} targets was not done in time",
            peer.name(),
            namespaces.len()
        );
    }
}

/// 10 Deployments of `pods / 10` pods in a namespace no controller has business in; waits
/// until they are all available.
async fn unrelated_pods(client: &Client, pods: usize) {
    real::create_namespace(client, UNRELATED_NS).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), UNRELATED_NS);
    let per = (pods / 10) as i32;
    for i in 0..10 {
        let name = format!("unrelated-{i}");
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "replicas": per,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}
                }
            }
        }))
        .unwrap();
        api.create(&PostParams::default(), &deployment)
            .await
            .expect("an unrelated Deployment is created");
    }
    let start = Instant::now();
    loop {
        let available: i32 = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.status.as_ref().and_then(|s| s.available_replicas))
            .sum();
        if available >= per * 10 {
            return;
        }
        assert!(
            start.elapsed() < RUN_TIMEOUT,
            "only {available} unrelated pods became available"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

// ---------------------------------------------------------------------------------------
// run

struct Args {
    peer: Option<Peer>,
    dir: Option<PathBuf>,
    argo_bin: Option<PathBuf>,
    out: Option<PathBuf>,
    cutover: Option<PathBuf>,
    argo: Option<PathBuf>,
    argo_version: String,
}

fn parse(args: &[String]) -> Args {
    let mut parsed = Args {
        peer: None,
        dir: None,
        argo_bin: None,
        out: None,
        cutover: None,
        argo: None,
        argo_version: String::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--peer" => {
                parsed.peer = Some(match value().as_str() {
                    "cutover" => Peer::Cutover,
                    "argo-rollouts" => Peer::ArgoRollouts,
                    other => panic!("--peer cutover|argo-rollouts, not {other}"),
                })
            }
            "--dir" => parsed.dir = Some(value().into()),
            "--argo-bin" => parsed.argo_bin = Some(value().into()),
            "--out" => parsed.out = Some(value().into()),
            "--cutover" => parsed.cutover = Some(value().into()),
            "--argo-rollouts" => parsed.argo = Some(value().into()),
            "--argo-rollouts-version" => parsed.argo_version = value(),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    parsed
}

async fn run(peer: Peer, dir: &Path, argo_bin: Option<&Path>) -> Value {
    let one = env_usize("PEERS_BG_ONE", 10);
    let batches = env_usize("PEERS_BG_BATCHES", 2);
    let batch = env_usize("PEERS_BG_BATCH", 10);
    let restarts = env_usize("PEERS_RESTARTS", 3);
    let restart_pods = env_usize("PEERS_RESTART_PODS", 10) as i32;
    let held = env_usize("PEERS_TARGETS", 100);
    let unrelated = env_usize("PEERS_UNRELATED_PODS", 1000);
    let idle_s = env_usize("PEERS_IDLE_S", 30) as u64;

    let client = real::client(&dir.join("kubeconfig")).await;
    let bg_one: Vec<String> = (0..one).map(|i| format!("bench-bg1-{i}")).collect();
    let bg_batches: Vec<Vec<String>> = (0..batches)
        .map(|b| (0..batch).map(|i| format!("bench-bg10-{b}-{i}")).collect())
        .collect();
    let restart: Vec<String> = (0..restarts).map(|i| format!("bench-rs-{i}")).collect();
    let held_ns: Vec<String> = (0..held).map(|i| format!("bench-held-{i}")).collect();

    let log: Log = Arc::default();
    let watches = real::watch(client.clone(), log.clone());
    let started = Instant::now();
    let running = Running::start(peer, dir, argo_bin).await;
    eprintln!("peers: {} runs (pid {})", peer.name(), running.pid());

    // The targets of the cutovers and restarts, all ready before the first is measured.
    let measured: Vec<&String> = bg_one.iter().chain(bg_batches.iter().flatten()).collect();
    for ns in &measured {
        create_target(&client, peer, ns, 3, true).await;
    }
    for ns in &restart {
        create_target(&client, peer, ns, restart_pods, true).await;
    }
    for ns in &measured {
        wait_ready(&client, peer, ns, 3).await;
    }
    for ns in &restart {
        wait_ready(&client, peer, ns, restart_pods).await;
    }
    eprintln!(
        "peers: {} targets ready after {:.0?}",
        measured.len() + restart.len(),
        started.elapsed()
    );

    // BlueGreen: the blue revision of each, then the work, then the switch from the watches.
    let mut switches: Vec<(String, real::Switch, bool)> = Vec::new();
    let measure = |groups: Vec<Vec<String>>, concurrent: bool| {
        let client = client.clone();
        let log = log.clone();
        async move {
            let mut found = Vec::new();
            for group in groups {
                let blue = run_work(&client, peer, &group, Work::BlueGreen, &log).await;
                let seen = log.lock().unwrap().clone();
                for (ns, blue) in group.iter().zip(&blue) {
                    let s = real::switch(&seen, ns, blue)
                        .unwrap_or_else(|| panic!("{ns}: no switch to the new pods was seen"));
                    found.push((ns.clone(), s, concurrent));
                }
            }
            found
        }
    };
    switches.extend(measure(bg_one.iter().map(|ns| vec![ns.clone()]).collect(), false).await);
    switches.extend(measure(bg_batches.clone(), true).await);
    eprintln!(
        "peers: {} cutovers done after {:.0?}",
        switches.len(),
        started.elapsed()
    );

    let mut steps: Vec<(String, Interval)> = Vec::new();
    for ns in &restart {
        let (_, old) = real::pods_now(&client, ns).await;
        let _ = run_work(&client, peer, std::slice::from_ref(ns), Work::Restart, &log).await;
        let seen = log.lock().unwrap().clone();
        let found = real::pod_steps(&seen, ns, &old);
        // Argo Rollouts evicts the first pod at once (nothing to wait for before it), cutover
        // once its surge pod is Ready: a step before every eviction but perhaps the first.
        assert!(
            found.len() + 1 >= old.len(),
            "{ns}: {} of {} evictions seen after a step",
            found.len(),
            old.len()
        );
        steps.extend(found.into_iter().map(|i| (ns.clone(), i)));
    }
    let cpu_work = figures::cpu_seconds(running.pid());
    eprintln!(
        "peers: {} pod steps done after {:.0?}",
        steps.len(),
        started.elapsed()
    );

    // Memory and CPU with many targets under management and pods that are none of them.
    unrelated_pods(&client, unrelated).await;
    eprintln!(
        "peers: {unrelated} unrelated pods available after {:.0?}",
        started.elapsed()
    );
    for ns in &held_ns {
        create_target(&client, peer, ns, 1, false).await;
    }
    for ns in &held_ns {
        wait_ready(&client, peer, ns, 1).await;
    }
    let _ = run_work(&client, peer, &held_ns, Work::BlueGreenHeld, &log).await;
    eprintln!("peers: {held} targets held after {:.0?}", started.elapsed());
    let cpu_before_idle = figures::cpu_seconds(running.pid());
    tokio::time::sleep(Duration::from_secs(idle_s)).await;
    let cpu_s = figures::cpu_seconds(running.pid());
    let (rss_now, rss_peak) = figures::memory(running.pid());
    drop(running);
    for w in watches {
        w.abort();
    }

    let audit = real::audited(&dir.join("audit.log"), peer.audit_user());
    let switch_of = |concurrent: Option<bool>| -> Vec<f64> {
        switches
            .iter()
            .filter(|(_, _, c)| concurrent.is_none_or(|want| *c == want))
            .map(|(_, s, _)| s.total_ms())
            .collect()
    };
    let (all, one_ms, ten_ms) = (
        switch_of(None),
        switch_of(Some(false)),
        switch_of(Some(true)),
    );
    let step_ms: Vec<f64> = steps.iter().map(|(_, i)| i.ms()).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let switch_requests: Vec<f64> = switches
        .iter()
        .map(|(ns, s, _)| {
            let whole = Interval {
                from: s.controllers.from,
                to: s.operator.to,
            };
            real::inside(&audit, ns, &whole).0 as f64
        })
        .collect();
    let step_requests: Vec<f64> = steps
        .iter()
        .map(|(ns, i)| real::inside(&audit, ns, i).0 as f64)
        .collect();
    let per_target = |namespaces: &[&String], writes_only: bool| {
        let n = audit
            .iter()
            .filter(|r| namespaces.iter().any(|ns| **ns == r.ns) && (r.write || !writes_only))
            .count();
        n as f64 / namespaces.len().max(1) as f64
    };
    let restart_refs: Vec<&String> = restart.iter().collect();
    let held_refs: Vec<&String> = held_ns.iter().collect();
    let p = |v: &[f64], q: f64| round(percentile(v, q), 2);
    json!({
        "peer": peer.name(),
        "switches": all.len(),
        "switch_ms_p50": p(&all, 50.0),
        "switch_ms_p99": p(&all, 99.0),
        "switch_ms_p50_one_at_a_time": p(&one_ms, 50.0),
        "switch_ms_p99_one_at_a_time": p(&one_ms, 99.0),
        "switch_ms_p50_ten_at_a_time": p(&ten_ms, 50.0),
        "switch_ms_p99_ten_at_a_time": p(&ten_ms, 99.0),
        "switch_requests_mean": round(mean(&switch_requests), 1),
        "pod_steps": step_ms.len(),
        "pod_step_ms_p50": p(&step_ms, 50.0),
        "pod_step_ms_p99": p(&step_ms, 99.0),
        "pod_step_requests_mean": round(mean(&step_requests), 1),
        "requests_per_blue_green_target": round(per_target(&measured, false), 1),
        "writes_per_blue_green_target": round(per_target(&measured, true), 1),
        "requests_per_restart_target": round(per_target(&restart_refs, false), 1),
        "writes_per_restart_target": round(per_target(&restart_refs, true), 1),
        "requests_per_held_target": round(per_target(&held_refs, false), 1),
        "rss_mib_100_targets": round(rss_peak, 1),
        "rss_mib_now": round(rss_now, 1),
        "cpu_s": round(cpu_s, 2),
        "cpu_s_cutovers_and_restarts": round(cpu_work, 2),
        "cpu_s_quiet": round(cpu_s - cpu_before_idle, 2),
        "quiet_s": idle_s,
        "targets_held": held,
        "unrelated_pods": unrelated,
        "run_s": round(started.elapsed().as_secs_f64(), 1),
    })
}

// ---------------------------------------------------------------------------------------
// report

fn read_json(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn report(cutover: &Path, argo: &Path, version: &str) {
    let c = read_json(cutover);
    let a = read_json(argo);
    let num =
        |m: &BTreeMap<String, Value>, k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let rows: &[(&str, &str, &str)] = &[
        ("BlueGreen switch p50, all", "switch_ms_p50", "ms"),
        ("BlueGreen switch p99, all", "switch_ms_p99", "ms"),
        ("  one at a time, p50", "switch_ms_p50_one_at_a_time", "ms"),
        ("  one at a time, p99", "switch_ms_p99_one_at_a_time", "ms"),
        ("  10 at a time, p50", "switch_ms_p50_ten_at_a_time", "ms"),
        ("  10 at a time, p99", "switch_ms_p99_ten_at_a_time", "ms"),
        ("  requests in a switch, mean", "switch_requests_mean", ""),
        ("restart pod step p50", "pod_step_ms_p50", "ms"),
        ("restart pod step p99", "pod_step_ms_p99", "ms"),
        (
            "  requests in a pod step, mean",
            "pod_step_requests_mean",
            "",
        ),
        (
            "requests per BlueGreen target",
            "requests_per_blue_green_target",
            "",
        ),
        (
            "writes per BlueGreen target",
            "writes_per_blue_green_target",
            "",
        ),
        (
            "requests per restart target",
            "requests_per_restart_target",
            "",
        ),
        ("writes per restart target", "writes_per_restart_target", ""),
        ("requests per held target", "requests_per_held_target", ""),
        (
            "RSS peak (VmHWM), targets held",
            "rss_mib_100_targets",
            "MiB",
        ),
        ("RSS at the end", "rss_mib_now", "MiB"),
        ("CPU time, whole run", "cpu_s", "s"),
        (
            "CPU time, cutovers and restarts",
            "cpu_s_cutovers_and_restarts",
            "s",
        ),
        (
            "CPU time, quiet spell with targets held",
            "cpu_s_quiet",
            "s",
        ),
    ];
    println!(
        "cutover and Argo Rollouts {version} on the real control plane: {} switches, {} pod steps, \
         {} targets held beside {} unrelated pods, {} s quiet",
        num(&c, "switches"),
        num(&c, "pod_steps"),
        num(&c, "targets_held"),
        num(&c, "unrelated_pods"),
        num(&c, "quiet_s"),
    );
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!(
        "{:width$}  {:>12}  {:>14}  {:>8}",
        "figure", "cutover", "argo-rollouts", "ratio"
    );
    let mut line = serde_json::Map::new();
    for (name, key, unit) in rows {
        let (x, y) = (num(&c, key), num(&a, key));
        let ratio = y / x;
        println!(
            "{name:width$}  {:>12}  {:>14}  {:>8}",
            format!("{x} {unit}"),
            format!("{y} {unit}"),
            if ratio.is_finite() {
                format!("{ratio:.2}x")
            } else {
                "-".into()
            }
        );
        line.insert(format!("{key}_cutover"), json!(x));
        line.insert(format!("{key}_argo_rollouts"), json!(y));
    }
    println!("(ratio: Argo Rollouts' figure over cutover's; above 1, cutover is ahead)");
    for key in [
        "switch_ms_p50",
        "switch_ms_p99",
        "pod_step_ms_p99",
        "rss_mib_100_targets",
        "cpu_s",
    ] {
        let ratio = num(&a, key) / num(&c, key);
        line.insert(format!("{key}_ratio"), json!(round(ratio, 2)));
    }
    line.insert("argo_rollouts_version".into(), json!(version));
    println!("{}", Value::Object(line));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        panic!("usage: peers run --peer P --dir DIR [--argo-bin PATH] --out FILE | report ...");
    };
    let parsed = parse(rest);
    match command.as_str() {
        "run" => {
            let peer = parsed.peer.expect("--peer");
            let dir = parsed.dir.expect("--dir");
            let out = parsed.out.expect("--out");
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let figures = runtime.block_on(run(peer, &dir, parsed.argo_bin.as_deref()));
            runtime.shutdown_timeout(Duration::from_secs(1));
            std::fs::write(&out, format!("{figures}\n"))
                .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
            println!("{figures}");
        }
        "report" => report(
            &parsed.cutover.expect("--cutover"),
            &parsed.argo.expect("--argo-rollouts"),
            &parsed.argo_version,
        ),
        // `cargo bench` without arguments (all benches): nothing to do without a bed.
        "--bench" => eprintln!("peers: run by scripts/bench-peers (it needs two beds)"),
        other => panic!("unknown command {other}"),
    }
}
