//! Another workload whose pods carry the target's labels (the target's selector lists them
//! too) is neither touched nor waited for: a plain restart evicts none of its pods, and a
//! FullRestart does not wait for them to stop. End to end, on both beds.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cutover::api::Phase;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::{APP, Env};

const NEIGHBOUR: &str = "liferay-tasks";
const LONG: Duration = Duration::from_secs(60);

/// A Deployment of two pods labelled `app: liferay` and a label of their own, under a selector
/// of its own; once they are Ready, their UIDs.
async fn deploy_neighbour(env: &Env) -> BTreeSet<String> {
    let labels = json!({"app": APP, "role": "tasks"});
    let neighbour: Deployment = serde_json::from_value(json!({
        "metadata": {"name": NEIGHBOUR, "namespace": env.ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "tasks", "image": "liferay/tasks:1"}]}
            }
        }
    }))
    .unwrap();
    env.deployments()
        .create(&PostParams::default(), &neighbour)
        .await
        .expect("neighbour created");
    env.wait("the neighbour to be available", LONG, || async {
        let status = env.deployments().get(NEIGHBOUR).await.ok()?.status?;
        (status.available_replicas == Some(2)).then_some(())
    })
    .await;
    neighbour_pods(env).await
}

/// The UIDs of the neighbour's pods that are not terminating.
async fn neighbour_pods(env: &Env) -> BTreeSet<String> {
    env.pods()
        .list(&ListParams::default().labels("role=tasks"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.uid)
        .collect()
}

#[tokio::test]
async fn a_plain_restart_leaves_another_workloads_pods_alone() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let before = deploy_neighbour(&env).await;
    env.start_operator();
    env.apply_plan(
        "restart",
        json!({"target": {"name": APP}, "service": APP,
               "rollingRestart": {"podReadyTimeoutSeconds": 20}}),
    )
    .await;
    let plan = env.wait_phase("restart", Phase::Succeeded, LONG).await;
    assert_eq!(plan.status.unwrap().progress.unwrap().text, "2/2");
    assert_eq!(
        neighbour_pods(&env).await,
        before,
        "the neighbour's pods were restarted"
    );
    env.stop_operator().await;
}

#[tokio::test]
async fn a_full_restart_does_not_wait_for_another_workloads_pods() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let before = deploy_neighbour(&env).await;
    env.start_operator();
    env.apply_plan(
        "window",
        json!({"target": {"name": APP}, "service": APP,
               "strategy": "FullRestart", "allowDowntime": true,
               "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
               "update": {"image": "liferay/dxp:7.0.10-de-29"},
               "rollingRestart": {"podReadyTimeoutSeconds": 15}}),
    )
    .await;
    let plan = env.wait_phase("window", Phase::Succeeded, LONG).await;
    assert_eq!(plan.status.unwrap().progress.unwrap().text, "2/2");
    assert_eq!(
        neighbour_pods(&env).await,
        before,
        "the neighbour's pods were touched"
    );
    let target = env.deployments().get(APP).await.unwrap();
    assert_eq!(target.spec.unwrap().replicas, Some(2));
    env.stop_operator().await;
}
