//! Cluster isolation as the demo checks and shows it (invariant 11), from the simulated
//! cluster's recorded history rather than from what the operator says: over the whole
//! BlueGreen, each discovery Service of the target (the headless Service JGroups DNS_PING and
//! Tomcat's membership provider look up) never listed a green pod; its twin `<service>-green`
//! listed green's pods and never a blue one; green's pods carried the plan's
//! `blueGreen.greenOnly` environment and no other pod ever did.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cutover::api::MaintenancePlan;
use cutover::invariants;
use cutover::operator::labels::{map_query, twin_name};
use cutover::operator::workload::Kind;
use cutover_sim::{EndpointsRecord, SimCluster, keys};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;

use super::app::App;
use super::checks::{Before, Check};

const COPY_LABEL: &str = "cutover.dev/copy";
const PLAN_LABEL: &str = "cutover.dev/plan";

/// The checks of invariant 11 for `plan`: none when the target has no discovery Service.
pub fn checks(sim: &SimCluster, app: &App, before: &Before, plan: &MaintenancePlan) -> Vec<Check> {
    let pods = pod_writes(sim, app);
    let green = green_pods(&pods, plan);
    let is_green = |name: &str| green.contains(name);
    let mut checks = Vec::new();
    for (service, start) in &before.discovery {
        let records = sim.history().endpoints_of(app.namespace, service);
        checks.push((
            format!("isolation: {service} never listed a green pod"),
            invariants::never_lists(&records, *start, is_green),
        ));
        let twin = twin_name(service);
        checks.push((
            format!("isolation: green's twin {twin} listed green's pods and never a blue one"),
            twin_only_green(sim, app, &twin, &green),
        ));
    }
    let env = green_only_env(plan);
    if !before.discovery.is_empty() && !env.is_empty() {
        let shown: Vec<String> = env.iter().map(|(n, v)| format!("{n}={v}")).collect();
        checks.push((
            format!(
                "greenOnly: green's pods had {}, blue's never",
                shown.join(", ")
            ),
            green_only_applied(&pods, &green, &env),
        ));
    }
    checks
}

/// Waits (a little) until the recorded endpoints of each discovery Service show the pods its
/// selector selects now: the Service's last change at the end of a plan (its selector
/// restored) reaches the record shortly after the plan's status says it ended.
pub async fn settle(sim: &SimCluster, client: &Client, app: &App, before: &Before) {
    let deadline = Instant::now() + Duration::from_secs(2);
    for (service, _) in &before.discovery {
        while Instant::now() < deadline {
            let recorded = sim.history().endpoints_of(app.namespace, service);
            let listed: Vec<String> = recorded
                .last()
                .map(|r| {
                    invariants::listed(r)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if selected(client, app, service)
                .await
                .is_some_and(|now| now == listed)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The pods `service` selects now and an EndpointSlice lists (those with an address that
/// have not ended), sorted by name.
async fn selected(client: &Client, app: &App, service: &str) -> Option<Vec<String>> {
    let svc = Api::<Service>::namespaced(client.clone(), app.namespace)
        .get(service)
        .await
        .ok()?;
    let selector = svc.spec?.selector?;
    let pods = Api::<Pod>::namespaced(client.clone(), app.namespace)
        .list(&ListParams::default().labels(&map_query(&selector)))
        .await
        .ok()?;
    let mut names: Vec<String> = pods
        .items
        .into_iter()
        .filter(|p| {
            let status = p.status.as_ref();
            status.and_then(|s| s.pod_ip.as_ref()).is_some()
                && !matches!(
                    status.and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    Some(names)
}

/// Prints every change of the pods the discovery Services and their twins listed (ready or
/// not) since the plan began, one line each: the record the demo's isolation checks read.
pub fn print_timeline(sim: &SimCluster, app: &App, before: &Before, since: Timestamp) {
    if before.discovery.is_empty() {
        return;
    }
    let mut records: Vec<EndpointsRecord> = Vec::new();
    for (service, start) in &before.discovery {
        let history = sim.history();
        records.extend(
            history
                .endpoints_of(app.namespace, service)
                .into_iter()
                .skip(*start),
        );
        records.extend(history.endpoints_of(app.namespace, &twin_name(service)));
    }
    records.sort_by_key(|r| r.time);
    let width = records.iter().map(|r| r.service.len()).max().unwrap_or(0);
    println!("           discovery services, each change of the pods they list (ready or not):");
    for r in &records {
        let at = if r.time < since {
            "before".to_string()
        } else {
            format!("+{:.2}s", r.time.duration_since(since).as_secs_f64())
        };
        let listed = invariants::listed(r);
        let pods = if listed.is_empty() {
            "(none)".to_string()
        } else {
            listed.join(" ")
        };
        println!("             {at:>7}  {:<width$}  {pods}", r.service);
    }
}

/// The twin's records: at least one lists a green pod, none lists another.
fn twin_only_green(
    sim: &SimCluster,
    app: &App,
    twin: &str,
    green: &BTreeSet<String>,
) -> Result<(), String> {
    let records = sim.history().endpoints_of(app.namespace, twin);
    if !records
        .iter()
        .any(|r| invariants::listed(r).iter().any(|n| green.contains(*n)))
    {
        return Err(format!("{twin} never listed a green pod"));
    }
    invariants::never_lists(&records, 0, |n| !green.contains(n))?;
    if app.kind == Kind::StatefulSet {
        let green_set = cutover::operator::step::blue_green::green_name(app.kind, app.name);
        let named: BTreeSet<String> = sim
            .history()
            .writes_of(keys::STATEFULSETS.as_str())
            .iter()
            .filter(|w| w.namespace == app.namespace && w.name == green_set)
            .filter_map(|w| w.object["spec"]["serviceName"].as_str().map(str::to_string))
            .collect();
        if named.iter().any(|n| n != twin) || named.is_empty() {
            return Err(format!(
                "green's statefulset {green_set} had serviceName {named:?}, not {twin}"
            ));
        }
    }
    Ok(())
}

/// Every recorded state of every pod of the app's namespace.
fn pod_writes(sim: &SimCluster, app: &App) -> Vec<Value> {
    sim.history()
        .writes_of(keys::PODS.as_str())
        .into_iter()
        .filter(|w| w.namespace == app.namespace)
        .map(|w| (*w.object).clone())
        .collect()
}

/// The names of the pods of `plan`'s green copy, as the cluster recorded them.
fn green_pods(pods: &[Value], plan: &MaintenancePlan) -> BTreeSet<String> {
    let plan_name = plan.metadata.name.as_deref().unwrap_or_default();
    pods.iter()
        .filter(|p| {
            let labels = &p["metadata"]["labels"];
            labels[COPY_LABEL] == "green" && labels[PLAN_LABEL] == plan_name
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The plan's `greenOnly` variables that have a plain value.
fn green_only_env(plan: &MaintenancePlan) -> Vec<(String, String)> {
    plan.spec
        .blue_green
        .green_only
        .env
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

fn has_env(pod: &Value, name: &str, value: &str) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .any(|e| e["name"] == name && e["value"] == value)
}

/// Every recorded state of a green pod has every variable; no state of another pod has any.
fn green_only_applied(
    pods: &[Value],
    green: &BTreeSet<String>,
    env: &[(String, String)],
) -> Result<(), String> {
    if green.is_empty() {
        return Err("no green pod was recorded".into());
    }
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        for (var, value) in env {
            match (green.contains(name), has_env(pod, var, value)) {
                (true, false) => return Err(format!("green pod {name} lacked {var}={value}")),
                (false, true) => return Err(format!("pod {name}, not green's, had {var}={value}")),
                _ => {}
            }
        }
    }
    Ok(())
}
