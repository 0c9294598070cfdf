//! The verdicts: the invariants of DESIGN section 4 over what a run recorded, each check a
//! function that returns what it found wrong, in words (a campaign counts violations instead
//! of stopping at the first). Over the endpoint history: no gap and the ready floor (1, 3),
//! no mixing (2), a safe failure that leaves blue's pods alone (5), a clean end that replaced
//! every pod (4), cluster isolation (11); over the plans: the outcome and its status (5, 7,
//! 8), a second plan that waits on the lock (9); over the cluster at the end: nothing of the
//! operator's left, the target as it must be (4, 10). Nothing here drives a run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cutover::api::{Flow as PlanFlow, MaintenancePlan, Phase};
use cutover::invariants;
use cutover_sim::EndpointsRecord;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::config::RunConfig;
use super::flows::{Check, Kind};
use super::plans::{PLAN, PREVIEW, SECOND};
use super::support::{self, APP, Env, stateful};

/// How long the end state may take to settle (terminating pods going away).
const SETTLE: Duration = Duration::from_secs(5);
const GREEN_PREFIX: &str = "liferay-green-";

/// The endpoint histories of a run: the traffic Service from `start` (the plan's apply) on,
/// blue's headless Service and green's twin of it (StatefulSet targets) from the beginning.
pub struct Recorded {
    pub traffic: Vec<EndpointsRecord>,
    pub headless: Vec<EndpointsRecord>,
    pub twin: Vec<EndpointsRecord>,
    pub start: usize,
}

fn names(record: &EndpointsRecord) -> Vec<String> {
    record.ready.iter().map(|p| p.name.clone()).collect()
}

/// Invariants 1, 2, 3, 4 (no pod left unreplaced), 5 (blue untouched) and 11 over the
/// recorded endpoints.
pub fn history_violations(cfg: &RunConfig, h: &Recorded, succeeded: bool) -> Vec<String> {
    let mut found = Vec::new();
    let records = &h.traffic;
    let start = h.start;
    if let Some(floor) = cfg.ready_floor() {
        if let Err(gap) = invariants::ready_at_least(records, start, 1) {
            found.push(format!("no gap: {gap}"));
        } else if let Err(floor) = invariants::ready_at_least(records, start, floor) {
            found.push(format!("ready floor: {floor}"));
        }
    }
    if let Some(label) = cfg.mixing_label()
        && let Err(mix) = invariants::no_mixing_by(records, start, label)
    {
        found.push(format!("no mixing: {mix}"));
    }
    let blue = names(&records[start]);
    if cfg.blue_untouched() {
        if let Some((i, r)) = records
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, r)| names(r) != blue)
        {
            found.push(format!(
                "safe failure: endpoint change #{i} at {} serves {:?}, not blue's untouched pods {blue:?}",
                r.time,
                names(r)
            ));
        }
    } else if succeeded
        && cfg.kind() == Kind::Deployment
        && !support::survivors(records, start).is_empty()
    {
        // (A StatefulSet's pods come back under their names: `end_violations` compares
        // their UIDs.)
        found.push(format!(
            "clean end: pods {:?} served before and after the plan; they were never replaced",
            support::survivors(records, start)
        ));
    }
    if cfg.isolation() {
        let green = |n: &str| n.starts_with(GREEN_PREFIX);
        if let Err(e) = invariants::never_lists(&h.headless, 0, green) {
            found.push(format!("cluster isolation: blue's headless service: {e}"));
        }
        if let Err(e) = invariants::never_lists(&h.twin, 0, |n| !green(n)) {
            found.push(format!("cluster isolation: green's twin: {e}"));
        }
        if let Err(mix) =
            invariants::no_mixing_by(&h.headless, 0, Kind::StatefulSet.revision_label())
        {
            found.push(format!("cluster isolation: blue's headless service: {mix}"));
        }
    }
    found
}

/// The plan ended as it must (gone, for a deletion), with the status a reader relies on
/// (invariant 8: the status is the record, also across kills and failed writes).
pub fn outcome_violations(cfg: &RunConfig, plan: Option<&MaintenancePlan>) -> Vec<String> {
    let mut found = Vec::new();
    let Some(plan) = plan else {
        if cfg.expected().is_some() {
            found.push(format!(
                "outcome: expected {:?}, the plan is gone",
                cfg.expected()
            ));
        }
        return found;
    };
    let status = plan.status.clone().unwrap_or_default();
    if status.phase != cfg.expected() {
        found.push(format!(
            "outcome: expected {}, the plan ended {:?} at step {:?}: {:?}",
            cfg.expected()
                .map_or("the plan deleted".to_string(), |p| format!("{p:?}")),
            status.phase,
            status.step,
            status.message
        ));
        return found;
    }
    if status.strategy.map(|s| s.as_str()) != Some(cfg.technique.strategy()) {
        found.push(format!(
            "status: strategy {:?}, expected {}",
            status.strategy,
            cfg.technique.strategy()
        ));
    }
    let pending = status.flow == Some(PlanFlow::PendingTemplate);
    if pending != cfg.pending() {
        found.push(format!(
            "status: flow {:?}, expected the {} flow",
            status.flow,
            if cfg.pending() {
                "PendingTemplate"
            } else {
                "kubectl"
            }
        ));
    }
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    if !condition("Evaluated") {
        found.push("status: no Evaluated condition".into());
    }
    if status.started_at.is_none() || status.completed_at.is_none() {
        found.push(format!(
            "status: startedAt {:?}, completedAt {:?}",
            status.started_at, status.completed_at
        ));
    }
    let message = status.message.clone().unwrap_or_default();
    if cfg.permanent {
        if !message.contains("not Ready within 1s") {
            found.push(format!(
                "safe failure: the message does not say what the plan waited for: {message:?}"
            ));
        }
        if !condition("Stalled") {
            found.push("safe failure: no Stalled condition on the failed plan".into());
        }
    }
    if let Some(check) = cfg.check {
        let result = status.checks.iter().find(|c| c.name == Check::NAME);
        let want = if check.fails { "Failed" } else { "Passed" };
        let got = result.and_then(|r| r.phase).map(|p| format!("{p:?}"));
        if got.as_deref() != Some(want) {
            found.push(format!(
                "checks gate: status.checks has {} as {got:?}, expected {want}",
                Check::NAME
            ));
        }
        let said = format!("check {} ({}) failed", Check::NAME, check.stage.as_str());
        if check.fails && !message.contains(&said) {
            found.push(format!(
                "checks gate: the message does not say {said:?}: {message:?}"
            ));
        }
    }
    if status.phase == Some(Phase::Succeeded) && !condition("Ready") {
        found.push("outcome: the Succeeded plan is not Ready".into());
    }
    found
}

/// Invariant 9: while the first plan ran, the second was never more than Pending, and it
/// said which plan it waited for. `seen`: the second's (phase, message) as they changed
/// while the first ran.
pub fn lock_violations(seen: &[(Option<Phase>, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (phase, message) in seen {
        if phase.is_none() {
            continue; // not looked at yet
        }
        if *phase != Some(Phase::Pending) {
            found.push(format!(
                "one plan per target: the second plan was {phase:?} while the first ran: {message:?}"
            ));
        } else if !message.contains(&format!("waiting for plan {PLAN}")) {
            found.push(format!(
                "one plan per target: the waiting plan does not name the plan it waits for: {message:?}"
            ));
        }
    }
    found
}

/// The second plan ran after the first, to the end.
pub fn second_violations(second: Option<&MaintenancePlan>) -> Vec<String> {
    let phase = second.and_then(|p| p.status.as_ref()).and_then(|s| s.phase);
    if phase == Some(Phase::Succeeded) {
        return Vec::new();
    }
    vec![format!(
        "one plan per target: the second plan {SECOND} ended {phase:?}, expected Succeeded: {:?}",
        second
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.message.clone())
    )]
}

/// Invariants 4 and 5 on the cluster once the plan ended (the operator already gone):
/// the target as the flow must leave it, the Services' selectors as they were, nothing of
/// the operator's left (green, its ReplicaSets and pods, surge pods, check Jobs, twins,
/// marks). Terminating objects get [`SETTLE`] to go away.
pub async fn end_violations(
    env: &Env,
    cfg: &RunConfig,
    own_strategy: Option<Value>,
    blue_pods: &[(String, String)],
) -> Vec<String> {
    let mut found = Vec::new();
    let image = cfg.final_image();
    match cfg.kind() {
        Kind::Deployment => found.extend(deployment_end(env, cfg, image).await),
        Kind::StatefulSet => {
            found.extend(stateful_end(env, cfg, image, own_strategy.unwrap_or_default()).await)
        }
    }
    let selector = env
        .services()
        .get(APP)
        .await
        .expect("service readable")
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default();
    if selector != BTreeMap::from([("app".to_string(), APP.to_string())]) {
        found.push(format!(
            "clean end: service selector is {selector:?}, not the original {{app: {APP}}}"
        ));
    }
    if let Some(preview) = env
        .services()
        .get_opt(PREVIEW)
        .await
        .expect("service readable")
    {
        let selector = preview.spec.and_then(|s| s.selector).unwrap_or_default();
        if selector != BTreeMap::from([("app".to_string(), APP.to_string())]) {
            found.push(format!(
                "clean end: preview service selector is {selector:?}, not the original {{app: {APP}}}"
            ));
        }
    }
    let settle = Instant::now() + SETTLE;
    loop {
        let left = match cfg.kind() {
            Kind::Deployment => deployment_leftovers(env, cfg.replicas, image).await,
            Kind::StatefulSet => stateful_leftovers(env, cfg.replicas, image).await,
        };
        let mut left = left;
        left.extend(common_leftovers(env).await);
        if cfg.expected() == Some(Phase::Succeeded) {
            let now = live_pods(env).await;
            let kept: Vec<&str> = blue_pods
                .iter()
                .filter(|p| now.contains(p))
                .map(|(_, name)| name.as_str())
                .collect();
            if !kept.is_empty() {
                left.push(format!(
                    "clean end: pods {kept:?} from before the plan are still there; they were never replaced"
                ));
            }
        }
        if left.is_empty() {
            break;
        }
        if Instant::now() > settle {
            found.extend(left);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    found
}

/// The application's pods that are not terminating, as (UID, name).
pub async fn live_pods(env: &Env) -> Vec<(String, String)> {
    env.pods()
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
        .expect("pods readable")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.uid.unwrap_or_default(),
                p.metadata.name.unwrap_or_default(),
            )
        })
        .collect()
}

fn marks(annotations: Option<&BTreeMap<String, String>>) -> Vec<String> {
    annotations
        .cloned()
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k.starts_with("cutover.dev/"))
        .collect()
}

async fn deployment_end(env: &Env, cfg: &RunConfig, image: &str) -> Vec<String> {
    let mut found = Vec::new();
    let target = env.deployments().get(APP).await.expect("target readable");
    let spec = target.spec.clone().unwrap_or_default();
    if spec.replicas != Some(cfg.replicas) {
        found.push(format!(
            "clean end: target has {:?} replicas, expected {}",
            spec.replicas, cfg.replicas
        ));
    }
    let target_image = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    // A pending template stays on the target whatever happened: it is Git's.
    let template_image = if cfg.pending() {
        super::config::NEW_IMAGE
    } else {
        image
    };
    if target_image.as_deref() != Some(template_image) {
        found.push(format!(
            "clean end: target template runs {target_image:?}, expected {template_image}"
        ));
    }
    let marks = marks(target.metadata.annotations.as_ref());
    if !marks.is_empty() {
        found.push(format!(
            "clean end: operator marks left on the target: {marks:?}"
        ));
    }
    let strategy = serde_json::to_value(&spec.strategy).unwrap_or_default();
    let original = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    if strategy != original {
        found.push(format!(
            "clean end: target strategy is {strategy}, expected {original}"
        ));
    }
    let paused = spec.paused == Some(true);
    if paused != cfg.pending() {
        found.push(format!(
            "clean end: target paused is {:?}, expected {} (as {} has it)",
            spec.paused,
            cfg.pending(),
            if cfg.pending() { "Git" } else { "it was" }
        ));
    }
    if spec.min_ready_seconds.unwrap_or(0) != 0 {
        found.push(format!(
            "clean end: target minReadySeconds left at {:?}",
            spec.min_ready_seconds
        ));
    }
    let others: Vec<String> = env
        .deployments()
        .list(&ListParams::default())
        .await
        .expect("deployments readable")
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .filter(|n| n != APP)
        .collect();
    if !others.is_empty() {
        found.push(format!("clean end: deployments left behind: {others:?}"));
    }
    found
}

/// What is still wrong with a Deployment target's pods and ReplicaSets.
async fn deployment_leftovers(env: &Env, replicas: i32, image: &str) -> Vec<String> {
    let mut found = Vec::new();
    let images = env.images().await;
    if images.len() as i32 != replicas || images.iter().any(|i| i != image) {
        found.push(format!(
            "clean end: the application's pods run {images:?}, expected {replicas} x {image}"
        ));
    }
    let sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.ns);
    let replica_sets: Vec<String> = sets
        .list(&ListParams::default())
        .await
        .expect("replica sets readable")
        .items
        .into_iter()
        .filter(|rs| {
            let marked = rs
                .metadata
                .labels
                .iter()
                .flatten()
                .any(|(k, _)| k.starts_with("cutover.dev/"));
            let owned = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Deployment" && o.name == APP);
            marked || !owned
        })
        .filter_map(|rs| rs.metadata.name)
        .collect();
    if !replica_sets.is_empty() {
        found.push(format!(
            "clean end: replica sets of green, or held by the operator, left: {replica_sets:?}"
        ));
    }
    found
}

async fn stateful_end(env: &Env, cfg: &RunConfig, image: &str, own: Value) -> Vec<String> {
    let mut found = Vec::new();
    let set = stateful::stateful_sets(env)
        .get(APP)
        .await
        .expect("target readable");
    let doc = serde_json::to_value(&set).unwrap_or_default();
    if doc["spec"]["replicas"] != cfg.replicas {
        found.push(format!(
            "clean end: target has {} replicas, expected {}",
            doc["spec"]["replicas"], cfg.replicas
        ));
    }
    let template_image = if cfg.pending() {
        super::config::NEW_IMAGE
    } else {
        image
    };
    if doc["spec"]["template"]["spec"]["containers"][0]["image"] != template_image {
        found.push(format!(
            "clean end: target template runs {}, expected {template_image}",
            doc["spec"]["template"]["spec"]["containers"][0]["image"]
        ));
    }
    if doc["spec"]["updateStrategy"] != own {
        found.push(format!(
            "clean end: target update strategy is {}, expected its own {own}",
            doc["spec"]["updateStrategy"]
        ));
    }
    let marks = marks(set.metadata.annotations.as_ref());
    if !marks.is_empty() {
        found.push(format!(
            "clean end: operator marks left on the target: {marks:?}"
        ));
    }
    let headless = env
        .services()
        .get("liferay-headless")
        .await
        .expect("headless service readable");
    let selector = serde_json::to_value(headless.spec.and_then(|s| s.selector)).unwrap_or_default();
    if selector != json!({"app": APP}) {
        found.push(format!(
            "clean end: blue's headless service selects {selector}, not the original"
        ));
    }
    found
}

/// What is still wrong with a StatefulSet target's pods, green and the twin Service.
async fn stateful_leftovers(env: &Env, replicas: i32, image: &str) -> Vec<String> {
    let mut found = Vec::new();
    let set = stateful::stateful_sets(env).get(APP).await.ok();
    let update = set
        .and_then(|s| s.status)
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let pods = env
        .pods()
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
        .expect("pods readable")
        .items;
    let live: Vec<_> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let wrong: Vec<String> = live
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            let at = labels.get("controller-revision-hash") == Some(&update);
            let runs = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.as_deref())
                == Some(image);
            !at || !runs
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if live.len() as i32 != replicas || !wrong.is_empty() {
        found.push(format!(
            "clean end: {} live pods (expected {replicas}); not at the update revision {update} with {image}: {wrong:?}",
            live.len()
        ));
    }
    if stateful::stateful_sets(env)
        .get_opt(&format!("{APP}-green"))
        .await
        .ok()
        .flatten()
        .is_some()
    {
        found.push("clean end: the green statefulset is left".into());
    }
    if env
        .services()
        .get_opt("liferay-headless-green")
        .await
        .ok()
        .flatten()
        .is_some()
    {
        found.push("clean end: green's twin of the headless service is left".into());
    }
    found
}

/// Objects the operator makes for any target: surge and green pods, check Jobs.
async fn common_leftovers(env: &Env) -> Vec<String> {
    let mut found = Vec::new();
    let pods = env
        .pods()
        .list(&ListParams::default())
        .await
        .expect("pods readable")
        .items;
    let made: Vec<String> = pods
        .iter()
        .filter(|p| {
            p.metadata.labels.as_ref().is_some_and(|l| {
                l.contains_key("cutover.dev/plan") || l.contains_key("cutover.dev/copy")
            })
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if !made.is_empty() {
        found.push(format!(
            "clean end: pods made by the operator left: {made:?}"
        ));
    }
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &env.ns);
    let jobs: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .expect("jobs readable")
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    if !jobs.is_empty() {
        found.push(format!("clean end: check jobs left: {jobs:?}"));
    }
    found
}
