//! The GitOps flow for a StatefulSet target against a sync loop, on both test beds: Git holds
//! the StatefulSet with its new template under `updateStrategy: OnDelete` (or a partition at
//! its replicas), the Services and the plan, and every 100 ms for the whole run a loop
//! re-applies with forced server-side apply whatever drifted from them, as Argo CD with
//! self-heal or Flux's drift detection would (leaving to cutover only the fields the
//! documented settings leave it). RollingRestart,
//! BlueGreen and FullRestart succeed, a pending template that never gets Ready is rolled
//! back, the invariants hold over the recorded endpoints, and the StatefulSet's spec at the
//! end is the one Git applied before the plan (a last apply of Git's manifests changes
//! nothing).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover::api::{ChangeSource, ChangeType, Flow, Phase};
use cutover_sim::EndpointsRecord;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};
use support::stateful::{stateful_sets, wait_green_gone};
use support::{APP, Env, assert_isolated, assert_no_mixing, assert_ready_at_least};
use tokio::sync::watch;

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const REPLICAS: i32 = 3;
const MANAGER: &str = "gitops-sync";
const LONG: Duration = Duration::from_secs(60);
const HEADLESS: &str = "liferay-headless";

/// Git's StatefulSet: `image` (and pod annotations, if any) under `strategy`.
fn git_stateful_set(ns: &str, image: &str, strategy: &Value, annotations: &Value) -> Value {
    let mut metadata = json!({"labels": {"app": APP}});
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        metadata["annotations"] = annotations.clone();
    }
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {
            "replicas": REPLICAS,
            "serviceName": HEADLESS,
            "selector": {"matchLabels": {"app": APP}},
            "updateStrategy": strategy,
            "template": {
                "metadata": metadata,
                "spec": {"containers": [{"name": APP, "image": image}]}
            }
        }
    })
}

fn git_services(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": HEADLESS, "namespace": ns},
               "spec": {"clusterIP": "None", "selector": {"app": APP}, "ports": [{"port": 7800}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": APP, "namespace": ns},
               "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}}),
    ]
}

fn git_plan(ns: &str, name: &str, extra: Value) -> Value {
    let mut spec = json!({"target": {"kind": "StatefulSet", "name": APP}, "service": APP});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    })
}

fn api_for(client: &Client, manifest: &Value) -> Api<DynamicObject> {
    let api_version = manifest["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = manifest["kind"].as_str().unwrap();
    let resource = ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        plural: format!("{}s", kind.to_lowercase()),
    };
    let ns = manifest["metadata"]["namespace"].as_str().unwrap();
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// The fields the sync tool leaves to cutover (Argo CD's `ignoreDifferences` with
/// `RespectIgnoreDifferences=true`: it sends the live value), by kind and JSON pointer.
type Live = &'static [(&'static str, &'static str)];

/// Every field `git` sets has that value in `live` (which also has the server's defaults).
fn in_sync(git: &Value, live: &Value) -> bool {
    match (git, live) {
        (Value::Object(g), Value::Object(l)) => g
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| in_sync(v, lv))),
        (Value::Array(g), Value::Array(l)) => {
            g.len() == l.len() && g.iter().zip(l).all(|(gv, lv)| in_sync(gv, lv))
        }
        _ => git == live,
    }
}

/// Applies with forced server-side apply each manifest that drifted from the live object (the
/// fields in `live` taken from that object, so they never drift); returns how many it applied.
async fn sync_once(client: &Client, manifests: &[Value], live: Live) -> usize {
    let mut applied = 0;
    for manifest in manifests {
        let mut manifest = manifest.clone();
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        let api = api_for(client, &manifest);
        let kind = manifest["kind"].as_str().unwrap().to_string();
        if let Some(current) = api.get_opt(&name).await.expect("live object read") {
            let current = serde_json::to_value(current).unwrap();
            for (_, pointer) in live.iter().filter(|(k, _)| *k == kind) {
                if let (Some(value), Some(slot)) =
                    (current.pointer(pointer), manifest.pointer_mut(pointer))
                {
                    *slot = value.clone();
                }
            }
            let mut desired = manifest.clone();
            desired["metadata"] = json!({});
            if in_sync(&desired, &current) {
                continue;
            }
            // The live values are sent with the version they were read at: a write of
            // cutover's in between makes the server refuse the apply (409), retried next sync.
            manifest["metadata"]["resourceVersion"] =
                current["metadata"]["resourceVersion"].clone();
        }
        match api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&manifest),
            )
            .await
        {
            Ok(_) => applied += 1,
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("sync of {kind} {name}: {e}"),
        }
    }
    applied
}

/// Git's current commit, re-applied every 100 ms until stopped.
struct SyncLoop {
    commit: Arc<Mutex<Vec<Value>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<usize>,
}

impl SyncLoop {
    fn start(client: Client, commit: Vec<Value>, live: Live) -> SyncLoop {
        let commit = Arc::new(Mutex::new(commit));
        let (stop, mut stopped) = watch::channel(false);
        let manifests = commit.clone();
        let task = tokio::spawn(async move {
            let mut syncs = 0;
            loop {
                let current = manifests.lock().unwrap().clone();
                sync_once(&client, &current, live).await;
                syncs += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.wait_for(|s| *s) => break syncs,
                }
            }
        });
        SyncLoop { commit, stop, task }
    }

    fn push(&self, commit: Vec<Value>) {
        *self.commit.lock().unwrap() = commit;
    }

    async fn stop(self) -> usize {
        self.stop.send(true).unwrap();
        self.task.await.expect("the sync loop ran without error")
    }
}

async fn set_doc(env: &Env) -> Value {
    serde_json::to_value(stateful_sets(env).get(APP).await.unwrap()).unwrap()
}

/// Every pod of the StatefulSet runs `revision` (its status names) and is Ready.
async fn wait_pods_on(env: &Env, which: &str) -> String {
    env.wait("every pod on the revision", LONG, || async {
        let doc = serde_json::to_value(stateful_sets(env).get(APP).await.ok()?).ok()?;
        let revision = doc["status"][which].as_str()?.to_string();
        let pods = env
            .pods()
            .list(&ListParams::default().labels(&format!("app={APP}")))
            .await
            .ok()?;
        let on: Vec<_> = pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("controller-revision-hash"))
                    == Some(&revision)
            })
            .collect();
        let ready = env.endpoints().last().map_or(0, |r| r.ready.len());
        (on.len() as i32 == REPLICAS && ready as i32 == REPLICAS).then_some(revision)
    })
    .await
}

/// A run of the story: the endpoint records from the plan's commit on, and the plan's end.
struct Story {
    env: Env,
    start: usize,
    status: cutover::api::MaintenancePlanStatus,
    /// `metadata.generation` of the StatefulSet before and after the plan: equal when its spec
    /// was never written.
    generations: (Value, Value),
}

/// What a story commits and expects.
struct Script {
    /// Git's update strategy for the StatefulSet.
    strategy: Value,
    /// The pod annotations of Git's new template (how its pods behave on the bed).
    new_annotations: Value,
    /// The plan's name and the fields of its spec besides target and service.
    plan: (&'static str, Value),
    /// How the plan ends.
    phase: Phase,
    /// The fields the sync tool leaves to cutover.
    live: Live,
}

/// Commits the application on the old template, then Git's new template (nothing rolls), then
/// the plan; waits for the plan to end as the script says; checks that the StatefulSet is as
/// Git applied it before the plan and that a last apply of Git's manifests changes nothing.
async fn story(script: Script) -> Story {
    let Script {
        strategy,
        new_annotations,
        plan,
        phase,
        live,
    } = script;
    let mut env = Env::new().await;
    env.start_operator();
    let client = env.client.clone();
    let ns = env.ns.clone();
    let none = json!({});
    let mut commit = vec![git_stateful_set(&ns, OLD_IMAGE, &strategy, &none)];
    commit.extend(git_services(&ns));
    let sync = SyncLoop::start(client.clone(), commit, live);
    let first = wait_pods_on(&env, "currentRevision").await;

    // Git's new template: held back, nothing rolls.
    let mut commit = vec![git_stateful_set(
        &ns,
        NEW_IMAGE,
        &strategy,
        &new_annotations,
    )];
    commit.extend(git_services(&ns));
    sync.push(commit.clone());
    env.wait("the pending template's revision", LONG, || async {
        let doc = set_doc(&env).await;
        let status = &doc["status"];
        (status["observedGeneration"] == doc["metadata"]["generation"]
            && status["updateRevision"] != status["currentRevision"])
            .then_some(())
    })
    .await;
    let endpoints_before = env.endpoints().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.endpoints().len(),
        endpoints_before,
        "no pod came or went"
    );
    let before = set_doc(&env).await;
    assert_eq!(before["status"]["currentRevision"], first.as_str());

    // The plan, in the next commit.
    let name = plan.0.to_string();
    let start = env.endpoints().len() - 1;
    commit.push(git_plan(&ns, plan.0, plan.1));
    sync.push(commit.clone());
    env.wait("the sync loop to create the plan", LONG, || async {
        env.plans().get_opt(&name).await.ok().flatten()
    })
    .await;
    let done = env.wait_phase(&name, phase, LONG).await;
    let status = done.status.unwrap();
    if phase != Phase::Rejected {
        assert_eq!(status.flow, Some(Flow::PendingTemplate));
    }
    // The rules read the running template from the current revision: the tags say which fix
    // pack the pending template brings.
    assert!(
        status
            .changes
            .iter()
            .any(|c| c.source == ChangeSource::Inferred && c.change.kind == ChangeType::FixPack),
        "{:?}",
        status.changes
    );
    let syncs = sync.stop().await;
    assert!(syncs >= 3, "the sync loop kept applying ({syncs} syncs)");

    // Git's spec, as applied before the plan; none of cutover's marks.
    let after = set_doc(&env).await;
    assert_eq!(
        after["spec"], before["spec"],
        "the StatefulSet's spec is Git's"
    );
    let annotations = after["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "{annotations:?}"
    );
    assert_eq!(
        sync_once(&client, &commit, &[]).await,
        0,
        "nothing drifted from Git"
    );
    let generations = (
        before["metadata"]["generation"].clone(),
        after["metadata"]["generation"].clone(),
    );
    Story {
        env,
        start,
        status,
        generations,
    }
}

/// The pods in the order they first left the Service's ready endpoints, from record `from`
/// on. (First: on the real bed the pod simulator may remove a recreated pod that has the name
/// of one it just finalized, and the StatefulSet's controller makes it once more.)
fn departures(records: &[EndpointsRecord], from: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pair in records[from..].windows(2) {
        let after: Vec<&str> = pair[1].ready.iter().map(|p| p.name.as_str()).collect();
        for gone in pair[0]
            .ready
            .iter()
            .filter(|p| !after.contains(&p.name.as_str()))
        {
            if !out.contains(&gone.name) {
                out.push(gone.name.clone());
            }
        }
    }
    out
}

const GIT_OWNS_ALL: Live = &[];
/// Argo CD's `ignoreDifferences` for the fields a plan may change on the StatefulSet and the
/// Service (docs/gitops.md).
const CUTOVER_OWNS_STRATEGY: Live = &[
    ("StatefulSet", "/spec/updateStrategy"),
    ("Service", "/spec/selector"),
];
const CUTOVER_OWNS_REPLICAS: Live = &[("StatefulSet", "/spec/replicas")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_on_delete_the_pods_are_replaced_highest_first_and_the_spec_is_never_written() {
    let s = story(Script {
        strategy: json!({"type": "OnDelete"}),
        new_annotations: json!({}),
        plan: ("fixpack-de-29", json!({})),
        phase: Phase::Succeeded,
        live: GIT_OWNS_ALL,
    })
    .await;
    assert_eq!(
        s.status.strategy.map(|v| v.as_str()),
        Some("RollingRestart")
    );
    assert_eq!(
        s.generations.0, s.generations.1,
        "the spec was never written"
    );
    let records = s.env.endpoints();
    assert_ready_at_least(&records, s.start, REPLICAS as usize - 1);
    assert_eq!(
        departures(&records, s.start),
        [format!("{APP}-2"), format!("{APP}-1"), format!("{APP}-0")],
        "highest ordinal first"
    );
    wait_pods_on(&s.env, "updateRevision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_partition_it_is_lowered_one_step_at_a_time_and_put_back() {
    let s = story(Script {
        strategy: json!({"type": "RollingUpdate", "rollingUpdate": {"partition": REPLICAS}}),
        new_annotations: json!({}),
        plan: (
            "fixpack-de-29",
            json!({"rollingRestart": {"minReadySeconds": 1}}),
        ),
        phase: Phase::Succeeded,
        live: CUTOVER_OWNS_STRATEGY,
    })
    .await;
    let records = s.env.endpoints();
    assert_ready_at_least(&records, s.start, REPLICAS as usize - 1);
    assert_eq!(
        departures(&records, s.start),
        [format!("{APP}-2"), format!("{APP}-1"), format!("{APP}-0")]
    );
    wait_pods_on(&s.env, "updateRevision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_template_that_never_gets_ready_is_rolled_back_to_the_current_revision() {
    let s = story(Script {
        strategy: json!({"type": "OnDelete"}),
        new_annotations: json!({"sim.cutover.dev/ready-after-ms": "never"}),
        plan: (
            "fixpack-de-29",
            // Long enough for a pod of the current revision to come back (creation times are
            // whole seconds on a real API server).
            json!({"rollingRestart": {"podReadyTimeoutSeconds": 3}}),
        ),
        phase: Phase::Failed,
        live: CUTOVER_OWNS_STRATEGY,
    })
    .await;
    let message = s.status.message.unwrap_or_default();
    assert!(
        message.contains(&format!("{APP}-2 was not Ready within 3s"))
            && message.contains("back to the current revision"),
        "{message}"
    );
    assert_ready_at_least(&s.env.endpoints(), s.start, REPLICAS as usize - 1);
    let doc = set_doc(&s.env).await;
    assert_ne!(
        doc["status"]["currentRevision"],
        doc["status"]["updateRevision"]
    );
    wait_pods_on(&s.env, "currentRevision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_serves_green_while_the_targets_pods_move() {
    let s = story(Script {
        strategy: json!({"type": "OnDelete"}),
        new_annotations: json!({}),
        plan: (
            "bluegreen-de-29",
            json!({"strategy": "BlueGreen", "blueGreen": {"scaleDownDelaySeconds": 0}}),
        ),
        phase: Phase::Succeeded,
        live: CUTOVER_OWNS_STRATEGY,
    })
    .await;
    assert!(s.status.switched_at.is_some(), "the Service went to green");
    let records = s.env.endpoints();
    assert_ready_at_least(&records, s.start, 1);
    assert_no_mixing(&records, s.start);
    wait_green_gone(&s.env).await;
    assert_isolated(&s.env, &format!("{APP}-green-"), json!({"app": APP})).await;
    wait_pods_on(&s.env, "updateRevision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restart_stops_every_pod_before_one_starts_from_the_pending_template() {
    let s = story(Script {
        strategy: json!({"type": "RollingUpdate", "rollingUpdate": {"partition": REPLICAS}}),
        new_annotations: json!({}),
        plan: (
            "restart-all",
            json!({"strategy": "FullRestart", "allowDowntime": true}),
        ),
        phase: Phase::Succeeded,
        live: CUTOVER_OWNS_REPLICAS,
    })
    .await;
    let downtime = s.status.downtime.expect("status.downtime is reported");
    assert!(
        downtime.ends_with('s') && downtime != "unknown",
        "{downtime}"
    );
    let records = s.env.endpoints();
    assert_no_mixing(&records, s.start);
    assert!(
        records[s.start..].iter().any(|r| r.ready.is_empty()),
        "every old pod stopped before a new one started"
    );
    wait_pods_on(&s.env, "updateRevision").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_beside_a_pending_template_is_rejected_touching_nothing() {
    let s = story(Script {
        strategy: json!({"type": "OnDelete"}),
        new_annotations: json!({}),
        plan: (
            "two-truths",
            json!({"update": {"image": "liferay/dxp:7.0.10-de-27"}}),
        ),
        phase: Phase::Rejected,
        live: GIT_OWNS_ALL,
    })
    .await;
    let message = s.status.message.unwrap_or_default();
    assert!(message.contains("two sources of truth"), "{message}");
    assert_eq!(s.env.endpoints().len() - 1, s.start, "no pod came or went");
}
