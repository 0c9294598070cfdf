//! The RBAC rules of `cutover rbac` against what the operator really asks of the API: the
//! operator runs as a separate process (with its own bearer token, so the simulated cluster
//! can tell its requests apart) through scenarios that use every technique, and then every
//! request it made must be allowed by a rule, and every rule must have been needed.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use cutover::api::Phase;
use kube::api::PostParams;
use serde_json::json;
use support::{APP, Env, Killed, NS};

const TOKEN: &str = "cutover-operator";
const LONG: Duration = Duration::from_secs(30);

fn operator(env: &Env) -> (Killed, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "cutover-rbac-{}-{}.kubeconfig",
        std::process::id(),
        env.sim().addr().port()
    ));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: operator\ncurrent-context: sim\nusers:\n- name: operator\n  user:\n    token: {TOKEN}\n",
        env.sim().url()
    );
    std::fs::write(&path, kubeconfig).unwrap();
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "run",
                "--leader-election",
                "true",
                "--lease-namespace",
                NS,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args([
                "--catalog-configmap",
                &format!("{NS}/fixpacks"),
                "--kubeconfig",
            ])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (child, path)
}

async fn run_plan(env: &Env, name: &str, spec: serde_json::Value, phase: Phase) {
    env.apply_plan(name, spec).await;
    env.wait_phase(name, phase, LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_allow_every_request_and_every_rule_is_needed() {
    let env = Env::on_sim().await;
    env.deploy_app(2).await;
    env.sim()
        .apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixpacks", "namespace": NS},
                   "data": {"catalog.yaml": "fixPacks:\n  - {id: de-41, kind: Clustering}\n"}}),
            "test",
        )
        .unwrap();
    let preview: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "preview", "namespace": NS},
        "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}
    }))
    .unwrap();
    env.services()
        .create(&PostParams::default(), &preview)
        .await
        .unwrap();
    // A headless discovery Service: BlueGreen pins it to blue and gives green a twin.
    let headless: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "headless", "namespace": NS},
        "spec": {"clusterIP": "None", "selector": {"app": APP}, "ports": [{"port": 7800}]}
    }))
    .unwrap();
    env.services()
        .create(&PostParams::default(), &headless)
        .await
        .unwrap();
    let (child, kubeconfig) = operator(&env);

    // A paced rollout, a plain restart held by a disruption budget for a moment, a BlueGreen
    // cutover with a preview Service, a full restart, the GitOps flow forward and back, and a
    // deleted plan.
    let base = json!({"target": {"name": APP}, "service": APP});
    // The test images are no Liferay tags the rules can read: say they can be rolled.
    let rolling_safe = json!([{"type": "Custom", "custom": {"description": "a test image", "rollingRestartSafe": true}}]);
    let with = |extra: serde_json::Value| {
        let mut spec = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    run_plan(
        &env,
        "rollout",
        with(json!({"changes": rolling_safe, "update": {"image": "v2"}})),
        Phase::Succeeded,
    )
    .await;
    env.block_disruptions().await;
    env.apply_plan("restart", base.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    env.allow_one_disruption(2).await;
    env.wait_phase("restart", Phase::Succeeded, LONG).await;
    run_plan(
        &env,
        "bluegreen",
        with(json!({"strategy": "BlueGreen", "update": {"image": "v3"},
                    "blueGreen": {"previewService": "preview", "scaleDownDelaySeconds": 0}})),
        Phase::Succeeded,
    )
    .await;
    run_plan(
        &env,
        "full",
        with(json!({"strategy": "FullRestart", "allowDowntime": true, "update": {"image": "v4"}})),
        Phase::Succeeded,
    )
    .await;
    // The GitOps flow: a paused Deployment's pending template rolled out, and one whose pods
    // never become Ready, rolled back.
    let pend = |image: &str, annotations: serde_json::Value| {
        json!({"spec": {"paused": true, "template": {
            "metadata": {"annotations": annotations},
            "spec": {"containers": [{"name": APP, "image": image}]}}}})
    };
    env.patch_deployment(pend("v5", json!({}))).await;
    run_plan(
        &env,
        "pending",
        with(json!({"changes": rolling_safe})),
        Phase::Succeeded,
    )
    .await;
    env.patch_deployment(pend(
        "v6",
        json!({"sim.cutover.dev/ready-after-ms": "never"}),
    ))
    .await;
    run_plan(
        &env,
        "pending-late",
        with(json!({"changes": rolling_safe, "rollingRestart": {"podReadyTimeoutSeconds": 1}})),
        Phase::Failed,
    )
    .await;
    // A StatefulSet target: a partitioned rollout, then a BlueGreen cutover with a green
    // StatefulSet, then the GitOps flow.
    for obj in [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cache", "namespace": NS},
               "spec": {"selector": {"app": "cache"}, "ports": [{"port": 8080}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "cache", "namespace": NS},
               "spec": {"replicas": 2, "serviceName": "cache", "selector": {"matchLabels": {"app": "cache"}},
                        "template": {"metadata": {"labels": {"app": "cache"}},
                                     "spec": {"containers": [{"name": "cache", "image": "c1"}]}}}}),
    ] {
        env.sim().apply(obj, "test").unwrap();
    }
    let sets: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
        kube::Api::namespaced(env.client.clone(), NS);
    env.wait("the statefulset to be Ready", LONG, || async {
        let status = sets.get("cache").await.ok()?.status?;
        (status.available_replicas == Some(2)).then_some(())
    })
    .await;
    let stateful = |extra: serde_json::Value| {
        let mut spec =
            json!({"target": {"kind": "StatefulSet", "name": "cache"}, "service": "cache"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    run_plan(
        &env,
        "sts-rollout",
        stateful(json!({"changes": rolling_safe, "update": {"image": "c2"}})),
        Phase::Succeeded,
    )
    .await;
    run_plan(
        &env,
        "sts-bluegreen",
        stateful(json!({"strategy": "BlueGreen", "update": {"image": "c3"},
                        "blueGreen": {"scaleDownDelaySeconds": 0}})),
        Phase::Succeeded,
    )
    .await;
    // The GitOps flow of a StatefulSet: Git's new template held back under OnDelete, its
    // running template read from the current ControllerRevision.
    sets.patch(
        "cache",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
            "template": {"spec": {"containers": [{"name": "cache", "image": "c4"}]}}}}),
        ),
    )
    .await
    .unwrap();
    env.wait("the pending template's revision", LONG, || async {
        let status = sets.get("cache").await.ok()?.status?;
        (status.update_revision != status.current_revision).then_some(())
    })
    .await;
    run_plan(
        &env,
        "sts-pending",
        stateful(json!({"changes": rolling_safe})),
        Phase::Succeeded,
    )
    .await;
    env.apply_plan("deleted", with(json!({"paused": true})))
        .await;
    env.wait_phase("deleted", Phase::Pending, LONG).await;
    env.delete_plan("deleted").await;
    env.wait_gone("deleted", LONG).await;
    drop(child);
    let _ = std::fs::remove_file(kubeconfig);

    let used: BTreeSet<(String, String, String)> = env
        .sim()
        .history()
        .requests()
        .into_iter()
        .filter(|r| r.user == TOKEN)
        .map(|r| (r.group, r.resource, r.verb.to_string()))
        .collect();
    assert!(!used.is_empty(), "the operator's requests were recorded");
    let granted: BTreeSet<(String, String, String)> = cutover::rbac::rules()
        .iter()
        .flat_map(|rule| {
            let groups = rule.api_groups.clone().unwrap_or_default();
            let resources = rule.resources.clone().unwrap_or_default();
            let verbs = rule.verbs.clone();
            groups.into_iter().flat_map(move |g| {
                let verbs = verbs.clone();
                resources.clone().into_iter().flat_map(move |r| {
                    let g = g.clone();
                    verbs
                        .clone()
                        .into_iter()
                        .map(move |v| (g.clone(), r.clone(), v))
                })
            })
        })
        .collect();
    let denied: Vec<_> = used.difference(&granted).collect();
    assert!(
        denied.is_empty(),
        "requests no rule allows (group, resource, verb): {denied:?}"
    );
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "rules no request needed (group, resource, verb): {unused:?}"
    );
}
