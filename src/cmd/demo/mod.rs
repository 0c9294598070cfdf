//! `cutover demo`: the main job end to end with nothing installed. Starts the simulated
//! cluster and the operator in this process, deploys the two sample applications of
//! `examples/app/` (a Deployment, and a StatefulSet shaped like Liferay's Helm chart), then
//! carries out a RollingRestart plan and a BlueGreen plan on the Deployment, shows a Rejected
//! one, and cuts the StatefulSet over blue-green with cluster isolation, printing live
//! progress (the tree of `cutover get`, redrawn on a terminal; one line per change and the
//! final tree otherwise) and a summary. Exit 0 only if every plan ended as expected and the
//! invariants held.

mod app;
mod checks;
mod isolation;
mod progress;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cutover::api::{MaintenancePlan, Phase};
use cutover::operator::controller::{self, Settings};
use cutover::rules::Catalog;
use cutover_sim::{SimCluster, SimOptions};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use app::{App, DEPLOYMENT, STATEFUL_SET};
use checks::Check;
use progress::say;

/// The BlueGreen plan with cluster isolation for the StatefulSet, as a user would apply it.
const STATEFUL_SET_PLAN: &str = include_str!("../../../examples/statefulset-cluster-isolated.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Milliseconds a simulated pod takes to become Ready.
    #[arg(long, default_value_t = 300)]
    ready_after_ms: u64,
}

/// One plan of the demo.
struct Demo {
    app: &'static App,
    name: String,
    headline: &'static str,
    spec: Value,
    expected: Phase,
}

struct Outcome {
    plan: String,
    expected: Phase,
    phase: Option<Phase>,
    strategy: String,
    seconds: f64,
    checks: Vec<Check>,
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
    for app in [&DEPLOYMENT, &STATEFUL_SET] {
        app::deploy(&sim, &client, app).await?;
        let around = app.discovery_services(&client).await?;
        let discovery = if around.is_empty() {
            String::new()
        } else {
            format!(", found by each other through {}", around.join(", "))
        };
        say(
            clock,
            &format!(
                "deployed {}: {} pods Ready behind service {}{discovery}",
                app.describe(),
                app.replicas()?,
                app.service
            ),
        );
    }

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
        policy: Default::default(),
    };
    let operator = tokio::spawn(controller::run(client.clone(), settings, async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    let mut outcomes = Vec::new();
    for demo in plans()? {
        println!("\n== {}", demo.headline);
        outcomes.push(run_plan(&sim, &client, clock, demo).await?);
    }
    let _ = stop.send(true);
    let _ = operator.await;
    summarize(&outcomes, clock)
}

/// The plans, in order. Each image move says what its declared changes say (the tags of
/// DESIGN section 2b), so that reading changes from the template agrees with them.
fn plans() -> anyhow::Result<Vec<Demo>> {
    let on_deployment = |spec: Value| {
        let mut spec = spec;
        spec["target"] = json!({"kind": "Deployment", "name": DEPLOYMENT.name});
        spec["service"] = json!(DEPLOYMENT.service);
        spec
    };
    let mut plans = vec![
        Demo {
            app: &DEPLOYMENT,
            name: "fixpack-de-29".into(),
            headline: "Fix pack de-28 -> de-29 crosses no non-revertible fix pack: expect a RollingRestart",
            spec: on_deployment(
                json!({"changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
                       "update": {"image": "liferay/dxp:7.0.10-de-29"}}),
            ),
            expected: Phase::Succeeded,
        },
        Demo {
            app: &DEPLOYMENT,
            name: "java-11".into(),
            headline: "Java 8 -> 11 changes the major version: expect a BlueGreen cutover",
            spec: on_deployment(
                json!({"changes": [{"type": "JavaVersion", "javaVersion": {"from": "1.8.0_292", "to": "11.0.12"}}],
                       "update": {"image": "liferay/dxp:7.0.10-de-29-jdk11"},
                       "blueGreen": {"scaleDownDelaySeconds": 1}}),
            ),
            expected: Phase::Succeeded,
        },
        Demo {
            app: &DEPLOYMENT,
            name: "fixpack-de-40".into(),
            headline: "Fix pack de-29 -> de-40 on shared data without a downtime window: expect Rejected",
            spec: on_deployment(
                json!({"changes": [{"type": "FixPack", "fixPack": {"from": "de-29", "to": "de-40"}}],
                       "update": {"image": "liferay/dxp:7.0.10-de-40-jdk11"}}),
            ),
            expected: Phase::Rejected,
        },
    ];
    let example: Value = serde_yaml_ng::from_str(STATEFUL_SET_PLAN)
        .context("reading examples/statefulset-cluster-isolated.yaml")?;
    if example["metadata"]["namespace"] != STATEFUL_SET.namespace {
        bail!(
            "examples/statefulset-cluster-isolated.yaml is not for namespace {}",
            STATEFUL_SET.namespace
        );
    }
    let mut spec = example["spec"].clone();
    // Blue is kept 30 seconds after the switch by default; a second is enough here.
    spec["blueGreen"]["scaleDownDelaySeconds"] = json!(1);
    plans.push(Demo {
        app: &STATEFUL_SET,
        name: example["metadata"]["name"].as_str().unwrap_or("fixpack-de-33").into(),
        headline: "Clustering fix pack de-31 -> de-33 on the StatefulSet (examples/statefulset-cluster-isolated.yaml): expect a BlueGreen cutover in which green forms a cluster of its own",
        spec,
        expected: Phase::Succeeded,
    });
    Ok(plans)
}

async fn run_plan(
    sim: &SimCluster,
    client: &Client,
    clock: Instant,
    demo: Demo,
) -> anyhow::Result<Outcome> {
    let app = demo.app;
    let plan: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": demo.name, "namespace": app.namespace}, "spec": demo.spec
    }))?;
    let container = plan.spec.update.as_ref().and_then(|u| u.container.clone());
    let before = checks::before(sim, client, app, container.as_deref()).await?;
    let created = Timestamp::now();
    Api::<MaintenancePlan>::namespaced(client.clone(), app.namespace)
        .create(&PostParams::default(), &plan)
        .await?;
    let begun = Instant::now();
    let ended = progress::follow(sim, client, clock, app, &demo.name).await?;
    let seconds = begun.elapsed().as_secs_f64();
    let status = ended.status.clone().unwrap_or_default();
    if let Some(at) = &status.switched_at {
        println!("           switched to green at {}", at.0);
    }
    isolation::settle(sim, client, app, &before).await;
    isolation::print_timeline(sim, app, &before, created);
    Ok(Outcome {
        plan: format!("{}/{}", app.namespace, demo.name),
        expected: demo.expected,
        phase: status.phase,
        strategy: status
            .strategy
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        seconds,
        checks: checks::after(sim, client, app, &before, &ended).await,
    })
}

fn summarize(outcomes: &[Outcome], clock: Instant) -> anyhow::Result<()> {
    println!("\n== Summary");
    println!(
        "{:<22} {:<15} {:<10} {:>7}",
        "PLAN", "STRATEGY", "PHASE", "TIME"
    );
    let mut ok = true;
    for o in outcomes {
        let phase = o
            .phase
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|| "unfinished".into());
        println!(
            "{:<22} {:<15} {:<10} {:>6.2}s",
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
