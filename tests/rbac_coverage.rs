//! The RBAC rules of `cutover rbac` against what the operator really asks of the API: the
//! operator runs as a separate process through scenarios that use every technique, and then
//! every request it made must be allowed by a rule, and every rule must have been needed. On
//! the simulated cluster it has a bearer token of its own, so that the request history tells
//! its requests apart; on the real control plane it runs as the chart's ServiceAccount (a
//! missing permission is a real 403) and its requests are read from the audit log.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use cutover::api::Phase;
use kube::api::PostParams;
use serde_json::json;
use support::audit::AuditTail;
use support::{APP, Bed, Env, Killed};

const TOKEN: &str = "cutover-operator";
const LONG: Duration = Duration::from_secs(30);

/// The operator's requests, as RBAC sees them: (group, resource, verb).
type Used = BTreeSet<(String, String, String)>;

fn operator(env: &Env) -> (Killed, Option<std::path::PathBuf>) {
    if env.is_real() {
        return (spawn(env, &env.operator_kubeconfig()), None);
    }
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
    (spawn(env, &path), Some(path))
}

/// Where the chart lets the operator take its leader Lease: the release namespace.
const CHART_NAMESPACE: &str = "cutover-system";

/// The catalog ConfigMap's name, the one the chart on the real control plane grants.
const CATALOG: &str = "fixpacks";

/// The namespace of the leader Lease and of the catalog ConfigMap: the chart's on the real
/// control plane (its Roles allow no other; `scripts/real-bed` names the ConfigMap
/// `CATALOG` there), the test's on the simulated cluster.
fn chart_namespace(env: &Env) -> &str {
    if env.is_real() {
        CHART_NAMESPACE
    } else {
        &env.ns
    }
}

/// `cutover run` with leader election and the catalog ConfigMap, watching the test's
/// namespace.
fn spawn(env: &Env, kubeconfig: &std::path::Path) -> Killed {
    let ns = env.ns.as_str();
    Killed(
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "run",
                "--leader-election",
                "true",
                "--lease-namespace",
                chart_namespace(env),
            ])
            .args(["--namespace", ns, "--metrics-addr", "127.0.0.1:0"])
            .args([
                "--catalog-configmap",
                &format!("{}/{CATALOG}", chart_namespace(env)),
                "--kubeconfig",
            ])
            .arg(kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// What the operator asked of the API over the whole test: on the real control plane, in
/// the test's namespace and (its Lease) in the chart's.
fn used(env: &Env, lease_requests: Option<&mut AuditTail>) -> Used {
    if env.is_real() {
        let mut requests = env.audited_requests();
        requests.extend(
            lease_requests
                .into_iter()
                .flat_map(|t| t.requests().to_vec()),
        );
        return requests
            .into_iter()
            .filter(|r| {
                r.user
                    .starts_with(&format!("system:serviceaccount:{CHART_NAMESPACE}:"))
            })
            .map(|r| (r.group, r.resource, r.verb))
            .collect();
    }
    env.sim()
        .history()
        .requests()
        .into_iter()
        .filter(|r| r.user == TOKEN)
        .map(|r| (r.group, r.resource, r.verb.to_string()))
        .collect()
}

/// Creates a namespaced object of the test from its JSON.
async fn create<K>(env: &Env, object: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Clone
        + std::fmt::Debug,
{
    let api: kube::Api<K> = kube::Api::namespaced(env.client.clone(), &env.ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap();
}

async fn run_plan(env: &Env, name: &str, spec: serde_json::Value, phase: Phase) {
    env.apply_plan(name, spec).await;
    env.wait_phase(name, phase, LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_allow_every_request_and_every_rule_is_needed() {
    let env = Env::new().await;
    let mut lease_requests = match &env.bed {
        Bed::Real(real) => Some(AuditTail::from_now(real.audit_log(), CHART_NAMESPACE)),
        Bed::Sim(_) => None,
    };
    env.deploy_app(2).await;
    let catalog: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.client.clone(), chart_namespace(&env));
    let made = catalog
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": CATALOG},
                "data": {"catalog.yaml": "fixPacks:\n  - {id: de-41, kind: Clustering}\n"}}))
            .unwrap(),
        )
        .await;
    match made {
        Ok(_) => {}
        // A bed the test ran on before keeps its catalog.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("the catalog ConfigMap: {e}"),
    }
    type Service = k8s_openapi::api::core::v1::Service;
    create::<Service>(
        &env,
        json!({"metadata": {"name": "preview"},
               "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}}),
    )
    .await;
    // A headless discovery Service: BlueGreen pins it to blue and gives green a twin.
    create::<Service>(
        &env,
        json!({"metadata": {"name": "headless"},
               "spec": {"clusterIP": "None", "selector": {"app": APP}, "ports": [{"port": 7800}]}}),
    )
    .await;
    if env.is_real() {
        // A run stopped half way on this control plane leaves its Lease: the operator must
        // create one, as on a fresh cluster.
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(env.client.clone(), CHART_NAMESPACE);
        let _ = leases.delete("cutover-operator", &Default::default()).await;
    }
    let (child, kubeconfig) = operator(&env);

    // A paced rollout, a plain restart held by a disruption budget for a moment, a BlueGreen
    // cutover with a preview Service and a Job check, a full restart, the GitOps flow forward and back, and a
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
    // The refused eviction is reported again, which patches its Event (`events patch`).
    env.wait("the blocked eviction's Event to repeat", LONG, || async {
        (env.event_count("restart", "EvictionBlocked").await >= 2).then_some(())
    })
    .await;
    env.allow_one_disruption(2).await;
    env.wait_phase("restart", Phase::Succeeded, LONG).await;
    run_plan(
        &env,
        "bluegreen",
        with(json!({"strategy": "BlueGreen", "update": {"image": "v3"},
                    "blueGreen": {"previewService": "preview", "scaleDownDelaySeconds": 0,
                                  "prePromotion": [{"name": "smoke", "job": {"template": {"spec": {
                                      "containers": [{"name": "smoke", "image": "curl"}]}}}}]}})),
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
    create::<Service>(
        &env,
        json!({"metadata": {"name": "cache"},
               "spec": {"selector": {"app": "cache"}, "ports": [{"port": 8080}]}}),
    )
    .await;
    type StatefulSet = k8s_openapi::api::apps::v1::StatefulSet;
    create::<StatefulSet>(
        &env,
        json!({"metadata": {"name": "cache"},
               "spec": {"replicas": 2, "serviceName": "cache", "selector": {"matchLabels": {"app": "cache"}},
                        "template": {"metadata": {"labels": {"app": "cache"}},
                                     "spec": {"containers": [{"name": "cache", "image": "c1"}]}}}}),
    )
    .await;
    let sets: kube::Api<StatefulSet> = kube::Api::namespaced(env.client.clone(), &env.ns);
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
    if let Some(path) = kubeconfig {
        let _ = std::fs::remove_file(path);
    }
    if env.is_real() {
        // The killed operator's Lease would keep the next one on this control plane waiting.
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(env.client.clone(), CHART_NAMESPACE);
        let _ = leases.delete("cutover-operator", &Default::default()).await;
    }

    let used = used(&env, lease_requests.as_mut());
    assert!(!used.is_empty(), "the operator's requests were recorded");
    let granted: Used = cutover::rbac::rules()
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
    // The chart grants the catalog ConfigMap's read apart, by its name.
    let granted: Used = granted
        .into_iter()
        .chain(
            [cutover::rbac::CATALOG].map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string())),
        )
        .collect();
    let denied: Vec<_> = used.difference(&granted).collect();
    assert!(
        denied.is_empty(),
        "requests no rule allows (group, resource, verb): {denied:?}"
    );
    // What admission asks for: on the real control plane, whose API server runs
    // OwnerReferencesPermissionEnforcement, the scenarios' green copies, surge pod and check
    // Job are refused without it.
    let used: Used = used
        .into_iter()
        .chain(
            cutover::rbac::CHECKED_BY_ADMISSION
                .iter()
                .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string())),
        )
        .collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "rules no request needed (group, resource, verb): {unused:?}"
    );
}
