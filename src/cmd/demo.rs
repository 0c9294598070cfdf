//! `cutover demo`: the main job end to end with nothing installed. Starts the simulated
//! cluster and the operator in this process, deploys a small application, then carries out a
//! RollingRestart plan and a BlueGreen plan and shows a Rejected one, printing live progress
//! (the tree of `cutover get`, redrawn on a terminal; one line per change and the final tree
//! otherwise) and a summary. Exit 0 only if every plan ended as expected and the invariants held.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cutover::api::{MaintenancePlan, Phase};
use cutover::invariants;
use cutover::operator::controller::{self, Settings};
use cutover::rules::Catalog;
use cutover::tree;
use cutover_sim::{SimCluster, SimOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::plugin::screen::Screen;
use super::plugin::{self, gather};

const NS: &str = "portal";
const APP: &str = "liferay";
const REPLICAS: i32 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// Milliseconds a simulated pod takes to become Ready.
    #[arg(long, default_value_t = 300)]
    ready_after_ms: u64,
}

struct Outcome {
    plan: String,
    expected: Phase,
    phase: Option<Phase>,
    strategy: String,
    seconds: f64,
    checks: Vec<(String, Result<(), String>)>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let clock = Instant::now();
    let sim = SimCluster::start(SimOptions {
        default_ready_delay: Duration::from_millis(args.ready_after_ms),
        pod_grace_period: Duration::from_millis(100),
        ..SimOptions::default()
    })
    .await
    .context("starting the simulated cluster")?;
    println!(
        "cutover demo: a simulated Kubernetes cluster at {} with the operator running in this process\n",
        sim.url()
    );
    let client = sim.client()?;
    sim.apply(serde_json::to_value(MaintenancePlan::crd())?, "cutover")
        .map_err(|e| anyhow::anyhow!("installing the CRD: {e:?}"))?;
    deploy_app(&sim, &client).await?;
    say(
        clock,
        &format!("deployed {NS}/{APP}: {REPLICAS} pods Ready behind service {APP}"),
    );

    let (stop, stopped) = watch::channel(false);
    let (synced, _) = watch::channel(0usize);
    let settings = Settings {
        namespace: None,
        catalog: Catalog::builtin().clone(),
        metrics: Default::default(),
        synced,
        stores: Default::default(),
        instance: Some("demo".into()),
        retry: Default::default(),
    };
    let operator = tokio::spawn(controller::run(client.clone(), settings, async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    let mut outcomes = Vec::new();
    let plans = [
        (
            "fixpack-de-32",
            "Fix pack de-31 -> de-32 crosses no non-revertible fix pack: expect a RollingRestart",
            json!({"changes": [{"type": "FixPack", "fixPack": {"from": "de-31", "to": "de-32"}}],
                   "update": {"image": "liferay/dxp:7.0.10-de-32"}}),
            Phase::Succeeded,
        ),
        (
            "java-11",
            "Java 8 -> 11 changes the major version: expect a BlueGreen cutover",
            json!({"changes": [{"type": "JavaVersion", "javaVersion": {"from": "1.8.0_292", "to": "11.0.12"}}],
                   "update": {"image": "liferay/dxp:7.0.10-de-32-jdk11"},
                   "blueGreen": {"scaleDownDelaySeconds": 1}}),
            Phase::Succeeded,
        ),
        (
            "fixpack-de-40",
            "Fix pack de-32 -> de-40 on shared data without a downtime window: expect Rejected",
            json!({"changes": [{"type": "FixPack", "fixPack": {"from": "de-32", "to": "de-40"}}],
                   "update": {"image": "liferay/dxp:7.0.10-de-40"}}),
            Phase::Rejected,
        ),
    ];
    for (name, headline, mut spec, expected) in plans {
        println!("\n== {headline}");
        spec["target"] = json!({"name": APP});
        spec["service"] = json!(APP);
        outcomes.push(run_plan(&sim, &client, clock, name, spec, expected).await?);
    }
    let _ = stop.send(true);
    let _ = operator.await;
    summarize(&outcomes, clock)
}

fn say(clock: Instant, line: &str) {
    println!("[{:6.2}s] {line}", clock.elapsed().as_secs_f64());
}

async fn deploy_app(sim: &SimCluster, client: &Client) -> anyhow::Result<()> {
    sim.apply(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        "demo",
    )
    .map_err(|e| anyhow::anyhow!("creating the namespace: {e:?}"))?;
    let manifest = include_str!("../../examples/app/liferay.yaml");
    for doc in manifest.split("\n---\n") {
        let value: serde_json::Value = serde_yaml_ng::from_str(doc)?;
        if value["kind"] != "Namespace" {
            sim.apply(value, "demo")
                .map_err(|e| anyhow::anyhow!("deploying the application: {e:?}"))?;
        }
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = deployments.get(APP).await?;
        if d.status.and_then(|s| s.available_replicas) == Some(REPLICAS) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the sample application did not become available");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_plan(
    sim: &SimCluster,
    client: &Client,
    clock: Instant,
    name: &str,
    spec: serde_json::Value,
    expected: Phase,
) -> anyhow::Result<Outcome> {
    let plans: Api<MaintenancePlan> = Api::namespaced(client.clone(), NS);
    let start = sim.history().endpoints_of(NS, APP).len().saturating_sub(1);
    let plan: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": name, "namespace": NS}, "spec": spec
    }))?;
    plans.create(&PostParams::default(), &plan).await?;
    let begun = Instant::now();
    let style = plugin::stdout_style();
    let mut screen = Screen::inline();
    let mut last = String::new();
    let mut last_endpoints = String::new();
    let mut final_tree = Vec::new();
    let mut ended = None;
    let watching = gather::watch(client.clone(), NS, None, |watched| {
        let Some(snap) = watched.snapshot(name) else {
            return ControlFlow::Continue(());
        };
        let endpoints = format!("   service {APP} -> {}", describe_endpoints(sim));
        let lines = tree::render(&snap, Timestamp::now(), style);
        if screen.is_tty() {
            let mut shown = lines.clone();
            shown.push(endpoints);
            screen.show(&shown);
        } else {
            let line = tree::headline(&snap.plan);
            if line != last {
                say(clock, &line);
                last = line;
            }
            if endpoints != last_endpoints {
                say(clock, &endpoints);
                last_endpoints = endpoints;
            }
        }
        if tree::is_finished(&snap.plan) {
            final_tree = lines;
            ended = Some(snap.plan);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    let _ = tokio::time::timeout(Duration::from_secs(120), watching).await;
    let final_plan = match ended {
        Some(plan) => {
            if !screen.is_tty() {
                println!();
                for line in &final_tree {
                    println!("{}", format!("    {line}").trim_end());
                }
            }
            plan
        }
        None => plans.get(name).await?,
    };
    let status = final_plan.status.clone().unwrap_or_default();
    if let Some(at) = &status.switched_at {
        println!("           switched to green at {}", at.0);
    }
    let records = sim.history().endpoints_of(NS, APP);
    let mut checks = vec![(
        "no gap: the service always had a ready pod".to_string(),
        invariants::ready_at_least(&records, start, 1),
    )];
    let strategy = status
        .strategy
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if strategy == "BlueGreen" {
        checks.push((
            "no mixing: one version behind the service at a time".into(),
            invariants::no_mixing(&records, start),
        ));
    }
    if strategy == "RollingRestart" {
        checks.push((
            format!("never fewer than {REPLICAS} ready pods"),
            invariants::ready_at_least(&records, start, REPLICAS as usize),
        ));
    }
    checks.push((
        "clean end: nothing of the operator's left on the target".into(),
        clean_end(client).await,
    ));
    Ok(Outcome {
        plan: name.to_string(),
        expected,
        phase: status.phase,
        strategy,
        seconds: begun.elapsed().as_secs_f64(),
        checks,
    })
}

/// "3 ready: 2 x 7mc6nzq782, 1 x f8ntgfd6l6"
fn describe_endpoints(sim: &SimCluster) -> String {
    let Some(last) = sim.history().endpoints_of(NS, APP).last().cloned() else {
        return "no endpoints".into();
    };
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &last.ready {
        let copy = if pod.labels.contains_key("cutover.dev/copy") {
            " (green)"
        } else {
            ""
        };
        *by_version
            .entry(format!(
                "{}{copy}",
                pod.pod_template_hash.clone().unwrap_or_default()
            ))
            .or_default() += 1;
    }
    let parts: Vec<String> = by_version
        .iter()
        .map(|(v, n)| format!("{n} x {v}"))
        .collect();
    format!("{} ready: {}", last.ready.len(), parts.join(", "))
}

async fn clean_end(client: &Client) -> Result<(), String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = deployments.get(APP).await.map_err(|e| e.to_string())?;
    let marks: Vec<String> = d
        .metadata
        .annotations
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k.starts_with("cutover.dev/"))
        .collect();
    if !marks.is_empty() {
        return Err(format!("annotations left on the target: {marks:?}"));
    }
    if deployments
        .get_opt(&format!("{APP}-green"))
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err("the green copy was left behind".into());
    }
    Ok(())
}

fn summarize(outcomes: &[Outcome], clock: Instant) -> anyhow::Result<()> {
    println!("\n== Summary");
    println!(
        "{:<16} {:<15} {:<10} {:>7}",
        "PLAN", "STRATEGY", "PHASE", "TIME"
    );
    let mut ok = true;
    for o in outcomes {
        let phase = o
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "unfinished".into());
        println!(
            "{:<16} {:<15} {:<10} {:>6.2}s",
            o.plan, o.strategy, phase, o.seconds
        );
        if o.phase != Some(o.expected) {
            ok = false;
            println!("    expected {:?}", o.expected);
        }
        for (check, result) in &o.checks {
            match result {
                Ok(()) => println!("    ok    {check}"),
                Err(e) => {
                    ok = false;
                    println!("    FAIL  {check}: {e}");
                }
            }
        }
    }
    println!("\ntotal {:.2}s", clock.elapsed().as_secs_f64());
    if !ok {
        bail!("the demo did not go as expected");
    }
    println!("every plan ended as expected and every invariant held");
    Ok(())
}
