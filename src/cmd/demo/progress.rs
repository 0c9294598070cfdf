//! Live progress of one plan: on a terminal the tree of `cutover get`, redrawn in place;
//! otherwise one line per change of the plan's headline or of its Service's endpoints, then
//! the final tree. Returns the plan as it ended (or as it is when the wait gives up).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use cutover::api::MaintenancePlan;
use cutover::tree;
use cutover_sim::SimCluster;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};

use super::app::App;
use crate::cmd::plugin::screen::Screen;
use crate::cmd::plugin::{self, gather};

/// How long a plan may take before the demo stops waiting for it.
const PATIENCE: Duration = Duration::from_secs(120);

/// A line of the log, stamped with the time since the demo began.
pub fn say(clock: Instant, line: &str) {
    println!("[{:6.2}s] {line}", clock.elapsed().as_secs_f64());
}

/// Shows plan `name` of `app` until it ends.
pub async fn follow(
    sim: &SimCluster,
    client: &Client,
    clock: Instant,
    app: &App,
    name: &str,
) -> anyhow::Result<MaintenancePlan> {
    let style = plugin::stdout_style();
    let mut screen = Screen::inline();
    let mut last = String::new();
    let mut last_endpoints = String::new();
    let mut final_tree = Vec::new();
    let mut ended = None;
    let watching = gather::watch(client.clone(), app.namespace, None, |watched| {
        let Some(snap) = watched.snapshot(name) else {
            return ControlFlow::Continue(());
        };
        let endpoints = format!(
            "   service {} -> {}",
            app.service,
            describe_endpoints(sim, app)
        );
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
    let _ = tokio::time::timeout(PATIENCE, watching).await;
    match ended {
        Some(plan) => {
            if !screen.is_tty() {
                println!();
                for line in &final_tree {
                    println!("{}", format!("    {line}").trim_end());
                }
            }
            Ok(plan)
        }
        None => Ok(
            Api::<MaintenancePlan>::namespaced(client.clone(), app.namespace)
                .get(name)
                .await?,
        ),
    }
}

/// "3 ready: 2 x 7mc6nzq782, 1 x f8ntgfd6l6 (green)": the ready endpoints of the app's
/// Service now, by revision.
fn describe_endpoints(sim: &SimCluster, app: &App) -> String {
    let Some(last) = sim
        .history()
        .endpoints_of(app.namespace, app.service)
        .last()
        .cloned()
    else {
        return "no endpoints".into();
    };
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &last.ready {
        let copy = if pod.labels.contains_key("cutover.dev/copy") {
            " (green)"
        } else {
            ""
        };
        let revision = pod
            .labels
            .get(app.kind.revision_label())
            .cloned()
            .unwrap_or_default();
        *by_version.entry(format!("{revision}{copy}")).or_default() += 1;
    }
    let parts: Vec<String> = by_version
        .iter()
        .map(|(v, n)| format!("{n} x {v}"))
        .collect();
    format!("{} ready: {}", last.ready.len(), parts.join(", "))
}
