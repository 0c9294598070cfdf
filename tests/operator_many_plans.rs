//! More plans at once than the operator reconciles at the same time: every one of them still
//! runs to its end (the bound on concurrent reconciles delays plans, it never drops one), and
//! each target ends on its new template.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use serde_json::json;
use support::{Env, NS};

/// More than the operator's bound on concurrent reconciles (16).
const PLANS: usize = 24;
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";

async fn create_target(env: &Env, name: &str) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "liferay", "image": "liferay/dxp:7.0.10-de-28"}]}
            }
        }
    }))
    .unwrap();
    env.deployments()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment created");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]}
    }))
    .unwrap();
    env.services()
        .create(&PostParams::default(), &service)
        .await
        .expect("service created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_plans_than_concurrent_reconciles_all_finish() {
    let mut env = Env::on_sim().await;
    let names: Vec<String> = (0..PLANS).map(|i| format!("app-{i}")).collect();
    join_all(names.iter().map(|n| create_target(&env, n))).await;
    env.wait(
        "the targets to be available",
        Duration::from_secs(30),
        || async {
            let all = env.deployments().list(&Default::default()).await.ok()?;
            let ready = all
                .items
                .iter()
                .filter(|d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(1))
                .count();
            (ready == PLANS).then_some(())
        },
    )
    .await;
    env.start_operator();
    // Half plain restarts, half rollouts of a new image: both ways of a RollingRestart.
    join_all(names.iter().enumerate().map(|(i, n)| {
        let spec = if i % 2 == 0 {
            json!({"target": {"name": n}, "service": n})
        } else {
            json!({"target": {"name": n}, "service": n, "update": {"image": NEW_IMAGE}})
        };
        let env = &env;
        async move { env.apply_plan(&format!("plan-{i}"), spec).await }
    }))
    .await;
    for i in 0..PLANS {
        env.wait_phase(
            &format!("plan-{i}"),
            Phase::Succeeded,
            Duration::from_secs(60),
        )
        .await;
    }
    for (i, n) in names.iter().enumerate() {
        let d = env.deployments().get(n).await.unwrap();
        let image = d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default();
        let want = if i % 2 == 0 {
            "liferay/dxp:7.0.10-de-28"
        } else {
            NEW_IMAGE
        };
        assert_eq!(image, want, "deployment {n}");
    }
    env.stop_operator().await;
}
