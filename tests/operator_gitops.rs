//! The GitOps flow against a sync loop: Git's manifests (the Deployment paused with the new
//! template, the Service, the plan) are re-applied with forced server-side apply every
//! 100 ms for the whole run, as Argo CD with self-heal or Flux would. A RollingRestart, a
//! BlueGreen and a FullRestart plan all succeed, the invariants hold over the recorded
//! history, the last apply of Git's manifests changes nothing, and a template change without
//! a plan rolls nothing. On both beds: on the real control plane the Deployment and
//! garbage-collector controllers are the real ones.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover::api::{Flow, Phase};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};
use support::{APP, Env, assert_no_mixing, assert_ready_at_least};
use tokio::sync::watch;

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const REPLICAS: i32 = 3;
const MANAGER: &str = "gitops-sync";
const LONG: Duration = Duration::from_secs(30);

fn git_deployment(ns: &str, image: &str, paused: bool) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": ns, "labels": {"app.kubernetes.io/instance": "portal"}},
        "spec": {
            "replicas": REPLICAS,
            "paused": paused,
            "selector": {"matchLabels": {"app": APP}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {"containers": [{"name": APP, "image": image}]}
            }
        }
    })
}

fn git_service(ns: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": APP, "namespace": ns},
        "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}
    })
}

fn git_plan(name: &str, changes: Value, extra: Value) -> Value {
    let mut spec = json!({"target": {"name": APP}, "service": APP, "changes": changes});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": name},
        "spec": spec
    })
}

fn api_for(client: &Client, ns: &str, manifest: &Value) -> Api<DynamicObject> {
    let (group, version) = match manifest["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            manifest["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let kind = manifest["kind"].as_str().unwrap();
    let plural = match kind {
        "MaintenancePlan" => "maintenanceplans".to_string(),
        other => format!("{}s", other.to_lowercase()),
    };
    let resource = ApiResource {
        group: group.clone(),
        version: version.clone(),
        api_version: manifest["apiVersion"].as_str().unwrap().to_string(),
        kind: kind.to_string(),
        plural,
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// How the sync tool treats the Service's selector.
#[derive(Clone, Copy, PartialEq)]
enum Selector {
    /// Owned by Git like every other field.
    FromGit,
    /// Left to cutover, as the documented setting tells the tool to (Argo CD's
    /// `ignoreDifferences` on `/spec/selector` with `RespectIgnoreDifferences=true` sends the
    /// live value).
    Live,
}

/// Applies every manifest once, as the sync tool does; returns the resourceVersions after.
async fn sync_once(
    client: &Client,
    ns: &str,
    manifests: &[Value],
    selector: Selector,
) -> Vec<String> {
    let mut versions = Vec::new();
    for manifest in manifests {
        let mut manifest = manifest.clone();
        if selector == Selector::Live && manifest["kind"] == "Service" {
            // Before the Service exists, Git's selector creates it.
            if let Some(live) = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(APP)
                .await
                .expect("service read")
            {
                // The live value is sent with the version it was read at: should cutover
                // write the selector in between, the apply is refused (409) and retried on
                // the next sync rather than putting a stale selector back.
                manifest["spec"]["selector"] = json!(live.spec.unwrap().selector);
                manifest["metadata"]["resourceVersion"] = json!(live.metadata.resource_version);
            }
        }
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        let applied = match api_for(client, ns, &manifest)
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&manifest),
            )
            .await
        {
            Ok(applied) => applied,
            Err(kube::Error::Api(e)) if e.code == 409 && selector == Selector::Live => continue,
            Err(e) => panic!("sync of {} {name}: {e}", manifest["kind"]),
        };
        versions.push(applied.metadata.resource_version.unwrap_or_default());
    }
    versions
}

/// Git's current commit, re-applied every 100 ms until the returned sender says stop.
struct SyncLoop {
    commit: Arc<Mutex<Vec<Value>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<usize>,
}

impl SyncLoop {
    fn start(client: Client, ns: String, commit: Vec<Value>, selector: Selector) -> SyncLoop {
        let commit = Arc::new(Mutex::new(commit));
        let (stop, mut stopped) = watch::channel(false);
        let manifests = commit.clone();
        let task = tokio::spawn(async move {
            let mut syncs = 0;
            loop {
                let current = manifests.lock().unwrap().clone();
                sync_once(&client, &ns, &current, selector).await;
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

async fn replica_sets(env: &Env) -> Vec<ReplicaSet> {
    Api::<ReplicaSet>::namespaced(env.client.clone(), &env.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

async fn wait_ready(env: &Env, image: &str) {
    env.wait("every pod to run the image", LONG, || async {
        let images = env.images().await;
        let last = env.endpoints().last().cloned()?;
        (images.len() as i32 == REPLICAS
            && images.iter().all(|i| i == image)
            && last.ready.len() as i32 == REPLICAS)
            .then_some(())
    })
    .await;
}

/// Runs the whole GitOps story for one plan; returns the index in the endpoint history where
/// the plan was committed.
async fn gitops_story(plan: Value, selector: Selector) -> (Env, usize) {
    let mut env = Env::new().await;
    env.start_operator();
    let client = env.client.clone();
    let ns = env.ns.clone();

    // Commit 1: the application as it runs today.
    let sync = SyncLoop::start(
        client.clone(),
        ns.clone(),
        vec![git_deployment(&ns, OLD_IMAGE, false), git_service(&ns)],
        selector,
    );
    wait_ready(&env, OLD_IMAGE).await;

    // Commit 2: the new template, held back by `paused`. Nothing rolls.
    sync.push(vec![git_deployment(&ns, NEW_IMAGE, true), git_service(&ns)]);
    let sets_before = replica_sets(&env).await.len();
    let endpoints_before = env.endpoints().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        replica_sets(&env).await.len(),
        sets_before,
        "no new ReplicaSet"
    );
    assert_eq!(
        env.endpoints().len(),
        endpoints_before,
        "no pod came or went"
    );
    assert!(env.images().await.iter().all(|i| i == OLD_IMAGE));

    // Commit 3: the plan that says how.
    let name = plan["metadata"]["name"].as_str().unwrap().to_string();
    let start = env.endpoints().len() - 1;
    let mut plan = plan;
    plan["metadata"]["namespace"] = json!(ns);
    let git = vec![git_deployment(&ns, NEW_IMAGE, true), git_service(&ns), plan];
    sync.push(git.clone());
    env.wait("the sync loop to create the plan", LONG, || async {
        env.plans().get_opt(&name).await.ok().flatten()
    })
    .await;
    let done = env.wait_phase(&name, Phase::Succeeded, LONG).await;
    let status = done.status.unwrap();
    assert_eq!(status.flow, Some(Flow::PendingTemplate));
    wait_ready(&env, NEW_IMAGE).await;
    let syncs = sync.stop().await;
    assert!(syncs > 5, "the sync loop kept applying ({syncs} syncs)");

    // A last apply of Git's manifests finds nothing to change.
    let before = sync_once(&client, &ns, &git, Selector::FromGit).await;
    let after = sync_once(&client, &ns, &git, Selector::FromGit).await;
    assert_eq!(before, after, "a repeated apply is a no-op");
    let deployment = env.deployments().get(APP).await.unwrap();
    let rv = deployment.metadata.resource_version.clone();
    sync_once(&client, &ns, &git, Selector::FromGit).await;
    assert_eq!(
        env.deployments()
            .get(APP)
            .await
            .unwrap()
            .metadata
            .resource_version,
        rv
    );

    // The end state is Git's: paused, the new template, the original replicas; the Service's
    // selector is Git's; nothing of cutover's is left.
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.paused, Some(true));
    assert_eq!(spec.replicas, Some(REPLICAS));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some(NEW_IMAGE)
    );
    let annotations = deployment.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "{annotations:?}"
    );
    let service = env.services().get(APP).await.unwrap();
    assert_eq!(
        serde_json::to_value(service.spec.unwrap().selector).unwrap(),
        json!({"app": APP})
    );
    for rs in replica_sets(&env).await {
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        assert!(
            !labels.keys().any(|k| k.starts_with("cutover.dev/")),
            "replica set {:?} still carries a label of cutover's (held: {}): {labels:?}",
            rs.metadata.name,
            cutover::operator::step::handover::HELD_LABEL
        );
        assert!(
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Deployment" && o.name == APP),
            "replica set {:?} belongs to the deployment again",
            rs.metadata.name
        );
    }
    let status = env.deployments().get(APP).await.unwrap().status.unwrap();
    assert_eq!(status.updated_replicas, Some(REPLICAS), "{status:?}");
    (env, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_the_pending_template_never_fights_the_sync_loop() {
    let plan = git_plan(
        "fixpack-de-29",
        json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]),
        json!({}),
    );
    let (env, start) = gitops_story(plan, Selector::FromGit).await;
    let records = env.endpoints();
    assert_ready_at_least(&records, start, REPLICAS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_cutover_of_the_pending_template_never_fights_the_sync_loop() {
    let plan = git_plan(
        "java-11",
        json!([{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}]),
        json!({"blueGreen": {"scaleDownDelaySeconds": 0}}),
    );
    let (env, start) = gitops_story(plan, Selector::Live).await;
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 1);
    assert_no_mixing(&records, start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restart_of_the_pending_template_never_runs_two_versions_at_once() {
    let plan = git_plan(
        "restart-all",
        json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]),
        json!({"strategy": "FullRestart", "allowDowntime": true}),
    );
    let (env, start) = gitops_story(plan, Selector::FromGit).await;
    let status = env
        .plans()
        .get("restart-all")
        .await
        .unwrap()
        .status
        .unwrap();
    let downtime = status.downtime.expect("status.downtime is reported");
    assert!(
        downtime.ends_with('s') && downtime != "unknown",
        "{downtime}"
    );
    let records = env.endpoints();
    assert_no_mixing(&records, start);
    assert!(
        records[start..].iter().any(|r| r.ready.is_empty()),
        "the downtime the plan allowed happened: every old pod stopped before a new one started"
    );
}
