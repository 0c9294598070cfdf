//! `cutover run` as a separate process, on either bed: killed with SIGKILL after each of its
//! writes in turn and started again, every plan (a paced rollout, a plain restart, BlueGreen,
//! and the GitOps flow's pending template; of a Deployment and of a StatefulSet) still ends
//! Succeeded with the invariants kept over the whole recording. The writes are counted from
//! the simulated cluster's write history, or from the real control plane's audit log.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cutover::api::Phase;
use serde_json::json;
use support::stateful::{assert_stateful_clean_end, deploy_stateful, stateful_sets, strategy_of};
use support::{APP, Env, Killed, assert_clean_end, assert_ready_at_least};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";

fn operator(env: &Env) -> Killed {
    support::run_operator_in(
        &env.operator_kubeconfig(),
        Some(&env.ns),
        "warn",
        Stdio::null(),
    )
}

fn kill(child: Killed) {
    // SIGKILL: no chance to clean up.
    drop(child);
}

/// What the plan acts on.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// A Deployment; the new image comes with the plan's update.
    Deployment,
    /// The GitOps flow: the new image is the paused Deployment's pending template.
    PendingTemplate,
    /// A StatefulSet (rolling update) with a headless governing Service.
    StatefulSet,
}

/// Runs a plan with the operator killed right after its `kill_after`-th write; returns how
/// many writes the operator made in all.
async fn run_with_kill_in(
    spec: serde_json::Value,
    replicas: i32,
    image: &str,
    kill_after: usize,
    shape: Shape,
) -> usize {
    // A rolling restart mixes versions by design; a BlueGreen cutover never does.
    let spec_is_blue_green = spec["changes"][0]["type"] == "JavaVersion";
    let env = Env::new().await;
    let mut own_strategy = None;
    match shape {
        Shape::StatefulSet => {
            deploy_stateful(&env, replicas, json!({"type": "RollingUpdate"})).await;
            own_strategy = Some(strategy_of(&env).await);
        }
        Shape::Deployment => env.deploy_app(replicas).await,
        Shape::PendingTemplate => {
            env.deploy_app(replicas).await;
            env.patch_deployment(json!({"spec": {"paused": true, "template": {
                "metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "30"}},
                "spec": {"containers": [{"name": APP, "image": image}]}}}}))
                .await;
        }
    }
    let start = env.endpoints().len() - 1;
    let first = operator(&env);
    env.apply_plan("plan", spec).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut killed = false;
    while Instant::now() < deadline {
        if env.operator_writes() >= kill_after {
            killed = true;
            break;
        }
        let phase = env
            .plans()
            .get("plan")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase);
        if phase == Some(Phase::Succeeded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    kill(first);
    let second = operator(&env);
    env.wait_phase("plan", Phase::Succeeded, Duration::from_secs(30))
        .await;
    kill(second);
    let records = env.endpoints();
    // A StatefulSet cannot surge: one of its pods is out at a time while it rolls.
    let out = usize::from(shape == Shape::StatefulSet && !spec_is_blue_green);
    assert_ready_at_least(&records, start, replicas as usize - out);
    let green = format!("{APP}-green");
    match (shape, own_strategy) {
        (Shape::StatefulSet, Some(strategy)) => {
            if spec_is_blue_green
                && let Err(violation) =
                    cutover::invariants::no_mixing_by(&records, start, "controller-revision-hash")
            {
                panic!("{violation}");
            }
            assert_stateful_clean_end(&env, replicas, image, strategy).await;
            let left = stateful_sets(&env).get_opt(&green).await.unwrap();
            assert!(left.is_none(), "green left behind");
            if spec_is_blue_green {
                support::assert_isolated(&env, &format!("{green}-"), json!({"app": APP})).await;
            }
        }
        _ => {
            if spec_is_blue_green {
                support::assert_no_mixing(&records, start);
            }
            if shape == Shape::PendingTemplate {
                assert_gitops_end(&env, replicas, image).await;
            } else {
                assert_clean_end(&env, replicas, image).await;
            }
            let left = env.deployments().get_opt(&green).await.unwrap();
            assert!(left.is_none(), "green left behind");
        }
    }
    if !env.is_real() {
        let _ = std::fs::remove_file(env.kubeconfig());
    }
    env.delete_namespace().await;
    if !killed {
        return 0;
    }
    env.operator_writes()
}

/// The GitOps flow's end: the Deployment as declared (still paused), every pod on its
/// template, every ReplicaSet back with it.
async fn assert_gitops_end(env: &Env, replicas: i32, image: &str) {
    let d = env.deployments().get(APP).await.unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.paused, Some(true));
    assert_eq!(spec.replicas, Some(replicas));
    let annotations = d.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "{annotations:?}"
    );
    env.wait(
        "every pod to run the pending template",
        Duration::from_secs(5),
        || async {
            let images = env.images().await;
            (images.len() as i32 == replicas && images.iter().all(|i| i == image)).then_some(())
        },
    )
    .await;
    let sets = kube::Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(
        env.client.clone(),
        &env.ns,
    )
    .list(&Default::default())
    .await
    .unwrap();
    for rs in sets.items {
        let labels = rs.metadata.labels.unwrap_or_default();
        assert!(!labels.contains_key("cutover.dev/held-by"), "{labels:?}");
    }
}

async fn killed_after_every_write(spec: serde_json::Value, replicas: i32, image: &str) {
    killed_after_every_write_in(spec, replicas, image, Shape::Deployment).await;
}

async fn killed_after_every_write_in(
    spec: serde_json::Value,
    replicas: i32,
    image: &str,
    shape: Shape,
) {
    let mut kill_after = 1;
    loop {
        let total = run_with_kill_in(spec.clone(), replicas, image, kill_after, shape).await;
        if total == 0 || kill_after > total {
            break;
        }
        kill_after += 1;
    }
    assert!(
        kill_after > 5,
        "the plan took only {kill_after} writes; the test kills nothing interesting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_survives_a_kill_after_any_write() {
    let spec = json!({
        "target": {"name": APP}, "service": APP,
        "update": {"image": NEW_IMAGE,
                   "podTemplatePatch": {"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "30"}}}}
    });
    killed_after_every_write(spec, 3, NEW_IMAGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_restart_survives_a_kill_after_any_write() {
    let spec = json!({"target": {"name": APP}, "service": APP});
    killed_after_every_write(spec, 2, "liferay/dxp:7.0.10-de-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_cutover_survives_a_kill_after_any_write() {
    let spec = json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": NEW_IMAGE},
        "blueGreen": {"scaleDownDelaySeconds": 0}
    });
    killed_after_every_write(spec, 2, NEW_IMAGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_template_rollout_survives_a_kill_after_any_write() {
    let spec = json!({"target": {"name": APP}, "service": APP});
    killed_after_every_write_in(spec, 3, NEW_IMAGE, Shape::PendingTemplate).await;
}

/// A StatefulSet plan: its target and Service, and `extra` on top.
fn stateful_plan(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"target": {"kind": "StatefulSet", "name": APP}, "service": APP});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_rollout_survives_a_kill_after_any_write() {
    let spec = stateful_plan(json!({
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": NEW_IMAGE,
                   "podTemplatePatch": {"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "30"}}}}
    }));
    killed_after_every_write_in(spec, 3, NEW_IMAGE, Shape::StatefulSet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_plain_restart_survives_a_kill_after_any_write() {
    let spec = stateful_plan(json!({}));
    killed_after_every_write_in(spec, 2, support::stateful::OLD_IMAGE, Shape::StatefulSet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_blue_green_cutover_with_cluster_isolation_survives_a_kill_after_any_write()
{
    let spec = stateful_plan(json!({
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": NEW_IMAGE},
        "blueGreen": {"scaleDownDelaySeconds": 0, "greenOnly": {"env": [
            {"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}]}}
    }));
    killed_after_every_write_in(spec, 2, NEW_IMAGE, Shape::StatefulSet).await;
}
