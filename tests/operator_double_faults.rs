//! Two faults in a row, on either bed: the way forward fails and so does the way back. Each
//! wait has a deadline (invariant 7), and when the way back stalls past it the plan ends
//! Failed with `Stalled`, keeps what still serves (never the last serving pods torn down)
//! and says what it left and what a person must do.
//!
//! The faults are staged with the pod annotation `sim.cutover.dev/ready-after-ms`, which both
//! beds read: the application's own template is slow (its pods take longer to get Ready than
//! the plan waits), so pods made from it while going back are late too; the first fault is a
//! new template that never gets Ready, or an abort. Not covered here: a
//! StatefulSet whose rollback stalls, a GitOps target whose hand-back stalls (both have pure
//! step tests).

mod support;

use std::time::Duration;

use cutover::api::{MaintenancePlan, Phase};
use serde_json::json;
use support::{APP, Env, assert_no_mixing, assert_ready_at_least};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const LONG: Duration = Duration::from_secs(60);
const READY_AFTER: &str = "sim.cutover.dev/ready-after-ms";
/// How long a pod of the application's own template takes to get Ready: far past the plans'
/// deadlines below, so that going back is late.
const SLOW_MS: &str = "8000";

fn stalled(plan: &MaintenancePlan) -> bool {
    plan.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .any(|c| c.type_ == "Stalled" && c.status == "True")
}

fn message(plan: &MaintenancePlan) -> String {
    plan.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

/// BlueGreen of four replicas: green gets Ready at once, the target's new template never
/// does, and the target's own template is slow. After the switch the target's rollout to the
/// new template passes its deadline, the target goes back to its original template while
/// green serves, and that stalls too (one of its pods was replaced and comes back slowly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_whose_restore_of_blue_stalls_keeps_green_serving_and_says_what_to_do() {
    let mut env = Env::new().await;
    env.deploy_app_with(APP, 4, json!({READY_AFTER: SLOW_MS}))
        .await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let spec = json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": NEW_IMAGE,
                   "podTemplatePatch": {"metadata": {"annotations": {READY_AFTER: "never"}}}},
        "blueGreen": {"scaleDownDelaySeconds": 0, "readyTimeoutSeconds": 3,
                      "greenOnly": {"podTemplatePatch": {"metadata": {"annotations": {READY_AFTER: "0"}}}}}
    });
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    let said = message(&plan);
    assert!(stalled(&plan), "{:#?}", plan.status);
    assert!(
        plan.status.as_ref().unwrap().switched_at.is_some(),
        "it had switched to green"
    );
    // What went wrong, in order, then what was left and what a person must do.
    for words in [
        "did not finish its rollout to the new template within 3s",
        "did not finish its rollout to the original template within 3s",
        "green deployment liferay-green keeps serving service liferay",
        "to finish by hand: bring deployment liferay back (every pod Ready), set the selector of service liferay to app=liferay,pod-template-hash=",
        "delete this plan (which removes green), then set the selector back to app=liferay",
    ] {
        assert!(said.contains(words), "{words:?} not in {said:?}");
    }
    // Green was kept: it serves, the Service selects it, and it stays so without the operator.
    env.stop_operator().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let green = env
        .deployments()
        .get_opt(&format!("{APP}-green"))
        .await
        .unwrap();
    assert!(green.is_some(), "green is kept");
    let selector = env
        .services()
        .get(APP)
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    let records = env.endpoints();
    let last = records.last().unwrap();
    assert!(
        !last.ready.is_empty()
            && last
                .ready
                .iter()
                .all(|p| p.name.starts_with("liferay-green-")),
        "green's pods serve at the end: {last:#?}"
    );
    assert_eq!(
        selector.get("pod-template-hash"),
        last.ready[0].pod_template_hash.as_ref(),
        "the service still selects green"
    );
    assert_ready_at_least(&records, start, 1);
    assert_no_mixing(&records, start);
}

/// RollingRestart of three replicas under the target's own `Recreate` strategy, aborted
/// once a pod was replaced: the plan rolls back, and the pods of the original template it
/// brings back are late too. The pods that serve are kept: the target is left paused as it
/// stands, and the message says so and how to finish. Given back its own `Recreate`
/// unpaused, its controller would at once stop the serving pod of the new template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_whose_old_pods_stay_unready_keeps_what_serves_and_says_what_to_do() {
    let mut env = Env::new().await;
    env.deploy_app_with(APP, 3, json!({READY_AFTER: SLOW_MS}))
        .await;
    env.patch_deployment(
        json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}),
    )
    .await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let spec = json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": NEW_IMAGE,
                   "podTemplatePatch": {"metadata": {"annotations": {READY_AFTER: "1500"}}}},
        "rollingRestart": {"podReadyTimeoutSeconds": 3}
    });
    env.apply_plan("fixpack", spec).await;
    env.wait("a pod replaced", LONG, || async {
        let status = env.plans().get("fixpack").await.ok()?.status?;
        (status.progress?.done >= 1).then_some(())
    })
    .await;
    env.patch_plan("fixpack", json!({"abort": true})).await;
    let plan = env.wait_phase("fixpack", Phase::Failed, LONG).await;
    let said = message(&plan);
    assert!(stalled(&plan), "{:#?}", plan.status);
    for words in [
        "aborted; the rollback stalled too: pod liferay-",
        "was not Ready within 3s",
        "deployment liferay is left paused as it stands, on the original template, with ",
        "pods Ready serving (",
        "to finish by hand: find why the pods of the original template do not get Ready, then set its strategy back to Recreate and unpause it (spec.paused: false)",
    ] {
        assert!(said.contains(words), "{words:?} not in {said:?}");
    }
    // What served is kept, also without the operator: the target stays paused with the pods
    // it had, and the Service never went without a Ready endpoint.
    env.stop_operator().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let target = env.deployments().get(APP).await.unwrap();
    assert_eq!(
        target.spec.unwrap().paused,
        Some(true),
        "the target is left paused"
    );
    let annotations = target.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "the plan's record is gone: {annotations:?}"
    );
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 1);
    let last = records.last().unwrap();
    assert!(
        last.ready.iter().any(|p| said.contains(&p.name)),
        "the message names the pods that serve at the end: {last:#?}\n{said}"
    );
    assert!(
        last.ready
            .iter()
            .any(|p| p.pod_template_hash != records[start].ready[0].pod_template_hash),
        "the replaced pod of the new template still serves: {last:#?}"
    );
}
