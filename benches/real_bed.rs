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

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover::api::MaintenancePlan;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};

#[path = "support/figures.rs"]
mod figures;
#[path = "support/real.rs"]
mod real;
use figures::{percentile, round};
use real::{
    Bed, Interval, Log, Operator, Switch, TARGET, audited, create_target, inside, pod_steps,
    pods_now, switch, wait_available, watch,
};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// Targets and plans

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
            start.elapsed() < real::WAIT_TIMEOUT,
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
            create_target(&client, ns, 3, OLD_IMAGE).await;
        }
        for ns in &restart {
            create_target(&client, ns, 10, OLD_IMAGE).await;
        }
        for ns in &blue_green {
            wait_available(&client, ns, 3).await;
        }
        for ns in &restart {
            wait_available(&client, ns, 10).await;
        }
        let log: Log = Arc::default();
        let watches = watch(client.clone(), log.clone());
        let operator = Operator::start(&bed.dir).await;
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
        let audit = audited(&bed.dir.join("audit.log"), "system:serviceaccount:cutover-system:");
        let per_plan = |namespaces: &[String], writes_only: bool| {
            let n = audit
                .iter()
                .filter(|r| namespaces.contains(&r.ns) && (r.write || !writes_only))
                .count();
            n as f64 / namespaces.len().max(1) as f64
        };
        let switch_ms: Vec<f64> = switches
            .iter()
            .map(|(_, s)| s.total_ms())
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
