//! Scale benchmark of the simulated cluster: 1,000 Deployments (10 replicas each, 10,000 pods)
//! with a Service each, 1,000 name-filtered Deployment watches plus all-namespace pod
//! watches, a full rollout, a rolling update of everything, and a burst of GET/LIST traffic.
//! Reports timings, requests per second, watch events delivered and resident memory.
//!
//! `cargo bench -p cutover-sim --bench scale` (set `SIM_BENCH_SCALE=0.1` for a smaller run).

use cutover_sim::{HistoryMode, SimCluster, SimOptions, keys};
use futures_util::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NAMESPACES: usize = 100;
const REPLICAS: i32 = 10;
const CONCURRENCY: usize = 32;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "img:1", "ports": [{"containerPort": 8080}]}]}}
        }
    }))
    .expect("a valid Deployment")
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

fn all_rolled_out(sim: &SimCluster, total: usize, generation: i64) -> bool {
    let deps = sim.store().list(&keys::DEPLOYMENTS, None).0;
    deps.len() == total
        && deps.iter().all(|d| {
            let s = &d["status"];
            d["metadata"]["generation"] == generation
                && s["observedGeneration"] == generation
                && s["updatedReplicas"] == REPLICAS
                && s["availableReplicas"] == REPLICAS
                && s["replicas"] == REPLICAS
        })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let scale: f64 = std::env::var("SIM_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let per_ns = ((10.0 * scale).round() as usize).max(1);
    let total = NAMESPACES * per_ns;
    println!(
        "scale benchmark: {total} Deployments x {REPLICAS} replicas = {} pods, {NAMESPACES} namespaces",
        total * REPLICAS as usize
    );
    let sim = SimCluster::start(SimOptions {
        history: HistoryMode::EndpointsOnly,
        watch_window: 20_000,
        pod_grace_period: Duration::from_millis(10),
        default_ready_delay: Duration::from_millis(5),
        ..SimOptions::default()
    })
    .await
    .expect("the simulated cluster starts");
    let client = sim.client().expect("a client");
    println!("memory at start: {:.0} MiB", rss_mib());

    let requests = Arc::new(AtomicU64::new(0));
    let nss: Api<Namespace> = Api::all(client.clone());
    for i in 0..NAMESPACES {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}")}})).unwrap();
        nss.create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }

    // Watches: one per Deployment (by name), and all-namespace pod watches.
    let events = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for i in 0..total {
        let (ns, name) = (format!("ns-{}", i % NAMESPACES), format!("app-{i}"));
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let events = events.clone();
        watchers.push(tokio::spawn(async move {
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(290);
            let Ok(s) = api.watch(&wp, "0").await else {
                return;
            };
            let mut s = s.boxed();
            while let Ok(Some(ev)) = s.try_next().await {
                if !matches!(ev, WatchEvent::Bookmark(_)) {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for _ in 0..4 {
        let api: Api<Pod> = Api::all(client.clone());
        let events = events.clone();
        watchers.push(tokio::spawn(async move {
            // kube-runtime's watcher: resumes from its resourceVersion (or relists) when the
            // server drops a watcher that falls behind.
            let mut s =
                kube::runtime::watcher(api, kube::runtime::watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                if ev.is_ok() {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    wait_until("watches to open", Duration::from_secs(60), || {
        sim.store().watch_count() >= total + 4
    })
    .await;
    println!("open watches: {}", sim.store().watch_count());

    // Create everything.
    let start = Instant::now();
    stream::iter(0..total)
        .for_each_concurrent(CONCURRENCY, |i| {
            let client = client.clone();
            let requests = requests.clone();
            async move {
                let ns = format!("ns-{}", i % NAMESPACES);
                let name = format!("app-{i}");
                let svc: Service = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})).unwrap();
                Api::<Service>::namespaced(client.clone(), &ns).create(&PostParams::default(), &svc).await.expect("service created");
                Api::<Deployment>::namespaced(client, &ns).create(&PostParams::default(), &deployment(&name)).await.expect("deployment created");
                requests.fetch_add(2, Ordering::Relaxed);
            }
        })
        .await;
    let created = start.elapsed();
    let rolled = wait_until(
        "all Deployments available",
        Duration::from_secs(900),
        || all_rolled_out(&sim, total, 1),
    )
    .await;
    println!(
        "created {} objects over HTTP in {:.2}s; all {} pods available {:.2}s later (total {:.2}s)",
        total * 2,
        created.as_secs_f64(),
        sim.store().count(&keys::PODS),
        rolled.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "memory with {} pods: {:.0} MiB",
        sim.store().count(&keys::PODS),
        rss_mib()
    );

    // Request burst: GET a Deployment, LIST the pods of a namespace by label.
    let burst = Duration::from_secs(5);
    let count = Arc::new(AtomicU64::new(0));
    let lists = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let client = client.clone();
        let count = count.clone();
        let lists = lists.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while start.elapsed() < burst {
                let name = format!("app-{}", i % total);
                if i % 10 == 0 {
                    let pods: Api<Pod> = Api::namespaced(
                        client.clone(),
                        &format!("ns-{}", (i % total) % NAMESPACES),
                    );
                    pods.list(&ListParams::default().labels(&format!("app={name}")))
                        .await
                        .expect("list");
                    lists.fetch_add(1, Ordering::Relaxed);
                } else {
                    let d: Api<Deployment> = Api::namespaced(
                        client.clone(),
                        &format!("ns-{}", (i % total) % NAMESPACES),
                    );
                    d.get(&name).await.expect("get");
                }
                count.fetch_add(1, Ordering::Relaxed);
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = count.load(Ordering::Relaxed);
    println!(
        "request burst: {n} requests ({} label-selected pod LISTs) in {:.2}s = {:.0} requests/s with {CONCURRENCY} clients",
        lists.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        n as f64 / start.elapsed().as_secs_f64()
    );

    // Rolling update of everything.
    let before = events.load(Ordering::Relaxed);
    let start = Instant::now();
    stream::iter(0..total)
        .for_each_concurrent(CONCURRENCY, |i| {
            let client = client.clone();
            async move {
                let api: Api<Deployment> = Api::namespaced(client, &format!("ns-{}", i % NAMESPACES));
                let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "img:2"}]}}}});
                api.patch(&format!("app-{i}"), &PatchParams::default(), &Patch::Strategic(&p)).await.expect("patched");
            }
        })
        .await;
    let rolled = wait_until("the rolling update", Duration::from_secs(900), || {
        all_rolled_out(&sim, total, 2)
    })
    .await;
    println!(
        "rolling update of {total} Deployments: patched in {:.2}s, complete after {:.2}s; {} watch events delivered during it",
        (start.elapsed() - rolled).as_secs_f64(),
        start.elapsed().as_secs_f64(),
        events.load(Ordering::Relaxed) - before
    );
    println!(
        "store resourceVersion {}; watch events delivered in all: {}",
        sim.store().current_rv(),
        events.load(Ordering::Relaxed)
    );
    println!("memory at end: {:.0} MiB", rss_mib());
    for w in watchers {
        w.abort();
    }
    sim.shutdown();
}
