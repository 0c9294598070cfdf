//! RollingRestart end to end on the simulated cluster, with the invariants of DESIGN
//! section 4 checked over the recorded history.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use serde_json::json;
use support::{APP, Env, assert_clean_end, assert_ready_at_least, assert_ready_at_most, survivors};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";

fn image_plan() -> serde_json::Value {
    json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": NEW_IMAGE}
    })
}

async fn rolls_out_a_new_image(replicas: i32) {
    let mut env = Env::new().await;
    env.deploy_app(replicas).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan("fixpack", image_plan()).await;
    let plan = env
        .wait_phase("fixpack", Phase::Succeeded, Duration::from_secs(30))
        .await;
    let status = plan.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("RollingRestart"));
    assert_eq!(
        status.progress.unwrap().text,
        format!("{replicas}/{replicas}")
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    // kstatus: Reconciling is present only while true, so a finished plan has none.
    assert!(
        !status.conditions.iter().any(|c| c.type_ == "Reconciling"),
        "{:?}",
        status.conditions
    );
    let records = env.endpoints();
    assert_ready_at_least(&records, start, replicas as usize);
    assert_ready_at_most(&records, start, replicas as usize + 1);
    assert!(
        survivors(&records, start).is_empty(),
        "every pod was replaced"
    );
    assert_clean_end(&env, replicas, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_single_replica_never_loses_its_endpoint() {
    rolls_out_a_new_image(1).await;
}

#[tokio::test]
async fn three_replicas_roll_one_at_a_time() {
    rolls_out_a_new_image(3).await;
}

#[tokio::test]
async fn ten_replicas_roll_one_at_a_time() {
    rolls_out_a_new_image(10).await;
}

#[tokio::test]
async fn a_plain_restart_replaces_every_pod_behind_a_surge_pod() {
    for replicas in [1, 3] {
        let mut env = Env::new().await;
        env.deploy_app(replicas).await;
        let start = env.endpoints().len() - 1;
        env.start_operator();
        env.apply_plan("restart", json!({"target": {"name": APP}, "service": APP}))
            .await;
        env.wait_phase("restart", Phase::Succeeded, Duration::from_secs(30))
            .await;
        let records = env.endpoints();
        assert_ready_at_least(&records, start, replicas as usize);
        assert!(
            survivors(&records, start).is_empty(),
            "every pod was restarted"
        );
        assert_clean_end(&env, replicas, OLD_IMAGE).await;
        env.stop_operator().await;
    }
}

#[tokio::test]
async fn a_replacement_that_never_gets_ready_is_rolled_back() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = image_plan();
    spec["update"]["podTemplatePatch"] =
        json!({"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "never"}}});
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 1});
    env.apply_plan("broken", spec).await;
    let plan = env
        .wait_phase("broken", Phase::Failed, Duration::from_secs(30))
        .await;
    let status = plan.status.unwrap();
    let message = status.message.unwrap();
    assert!(
        message.contains("was not Ready within 1s") && message.contains("rolled back"),
        "{message}"
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn without_rollback_a_late_replacement_halts_the_rollout_paused() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = image_plan();
    spec["update"]["podTemplatePatch"] =
        json!({"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "never"}}});
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 1, "rollbackOnFailure": false});
    env.apply_plan("broken", spec).await;
    let plan = env
        .wait_phase("broken", Phase::Failed, Duration::from_secs(30))
        .await;
    let message = plan.status.unwrap().message.unwrap();
    assert!(
        message.contains("rollout halted") && message.contains("paused"),
        "{message}"
    );
    let target = env.deployments().get(APP).await.unwrap();
    assert_eq!(
        target.spec.unwrap().paused,
        Some(true),
        "the halted rollout stays paused"
    );
    // The old pods kept serving: never fewer than the replicas.
    assert_ready_at_least(&env.endpoints(), start, 3);
    env.stop_operator().await;
}
