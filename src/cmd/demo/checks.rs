//! What the demo checks after each plan, over the simulated cluster's recorded history from
//! the plan's start (DESIGN section 4): no gap, no mixing for a BlueGreen, the floor of ready
//! pods for a RollingRestart, cluster isolation where the target has discovery Services, and
//! the clean end (the target as expected, every selector as before, nothing of the
//! operator's left).

use std::collections::BTreeMap;

use cutover::api::{MaintenancePlan, Phase};
use cutover::invariants;
use cutover::operator::workload::Kind;
use cutover_sim::SimCluster;
use kube::Client;
use serde_json::Value;

use super::app::App;
use super::isolation;

/// A check's description and its result.
pub type Check = (String, Result<(), String>);

/// The app as it was when a plan was created.
pub struct Before {
    /// Index of the traffic Service's endpoints record in force when the plan began.
    pub start: usize,
    /// The discovery Services, each with the index of its record in force then.
    pub discovery: Vec<(String, usize)>,
    pub selectors: BTreeMap<String, BTreeMap<String, String>>,
    pub replicas: i64,
    pub image: Option<String>,
}

/// Reads the app as it is, before a plan that changes `container` (the first one: `None`).
pub async fn before(
    sim: &SimCluster,
    client: &Client,
    app: &App,
    container: Option<&str>,
) -> anyhow::Result<Before> {
    let target = app
        .workload(client, app.name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{} is gone", app.describe()))?;
    let index = |service: &str| {
        sim.history()
            .endpoints_of(app.namespace, service)
            .len()
            .saturating_sub(1)
    };
    let discovery = app
        .discovery_services(client)
        .await?
        .into_iter()
        .map(|s| {
            let i = index(&s);
            (s, i)
        })
        .collect();
    Ok(Before {
        start: index(app.service),
        discovery,
        selectors: app.selectors(client).await?,
        replicas: target["spec"]["replicas"].as_i64().unwrap_or(1),
        image: image_of(&target, container),
    })
}

/// Every check that applies to `plan`, as it ended.
pub async fn after(
    sim: &SimCluster,
    client: &Client,
    app: &App,
    before: &Before,
    plan: &MaintenancePlan,
) -> Vec<Check> {
    let records = sim.history().endpoints_of(app.namespace, app.service);
    let strategy = plan
        .status
        .as_ref()
        .and_then(|s| s.strategy)
        .map(|s| s.as_str());
    let mut checks = vec![(
        "no gap: the service always had a ready pod".to_string(),
        invariants::ready_at_least(&records, before.start, 1),
    )];
    if strategy == Some("BlueGreen") {
        checks.push((
            "no mixing: one version behind the service at a time".into(),
            invariants::no_mixing_by(&records, before.start, app.kind.revision_label()),
        ));
        checks.extend(isolation::checks(sim, app, before, plan));
    }
    if strategy == Some("RollingRestart") {
        // A StatefulSet cannot surge: one of its pods is out at a time.
        let floor = match app.kind {
            Kind::Deployment => before.replicas,
            Kind::StatefulSet => before.replicas - 1,
        };
        checks.push((
            format!("never fewer than {floor} ready pods"),
            invariants::ready_at_least(&records, before.start, floor as usize),
        ));
    }
    checks.push((
        "clean end: target as expected, selectors as before, nothing of the operator's left".into(),
        clean_end(client, app, before, plan).await,
    ));
    checks
}

/// The image of the plan's container (`update.container`, else the first one) in a
/// workload's template.
fn image_of(workload: &Value, container: Option<&str>) -> Option<String> {
    let containers = workload["spec"]["template"]["spec"]["containers"].as_array()?;
    let chosen = match container {
        Some(name) => containers.iter().find(|c| c["name"] == name)?,
        None => containers.first()?,
    };
    chosen["image"].as_str().map(str::to_string)
}

async fn clean_end(
    client: &Client,
    app: &App,
    before: &Before,
    plan: &MaintenancePlan,
) -> Result<(), String> {
    let describe = |e: anyhow::Error| e.to_string();
    let target = app
        .workload(client, app.name)
        .await
        .map_err(describe)?
        .ok_or("the target is gone")?;
    let marks: Vec<&String> = target["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flat_map(|a| a.keys())
        .filter(|k| k.starts_with("cutover.dev/"))
        .collect();
    if !marks.is_empty() {
        return Err(format!("annotations left on the target: {marks:?}"));
    }
    let green = cutover::operator::step::blue_green::green_name(app.kind, app.name);
    if app
        .workload(client, &green)
        .await
        .map_err(describe)?
        .is_some()
    {
        return Err(format!("the green copy {green} was left behind"));
    }
    let replicas = target["spec"]["replicas"].as_i64().unwrap_or(1);
    if replicas != before.replicas {
        return Err(format!(
            "the target has {replicas} replicas, not its {}",
            before.replicas
        ));
    }
    let update = plan.spec.update.as_ref();
    let expected = match (plan.status.as_ref().and_then(|s| s.phase), update) {
        (Some(Phase::Succeeded), Some(u)) if u.image.is_some() => u.image.clone(),
        _ => before.image.clone(),
    };
    let image = image_of(&target, update.and_then(|u| u.container.as_deref()));
    if image != expected {
        return Err(format!("the target runs {image:?}, not {expected:?}"));
    }
    let selectors = app.selectors(client).await.map_err(describe)?;
    if selectors != before.selectors {
        return Err(format!(
            "the services and their selectors are {selectors:?}, not {:?} as before",
            before.selectors
        ));
    }
    Ok(())
}
