//! RollingRestart of a StatefulSet end to end on the simulated cluster, with the invariants
//! of DESIGN section 4 checked over the recorded history: pods replaced highest ordinal
//! first, one at a time, never fewer than the replicas minus one Ready, and the StatefulSet
//! left with the new template (or the old one), its own update strategy and no marks.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use cutover_sim::EndpointsRecord;
use kube::api::ListParams;
use serde_json::{Value, json};
use support::stateful::{
    OLD_IMAGE, assert_stateful_clean_end, deploy_stateful, stateful_sets, strategy_of,
    wait_green_gone,
};
use support::{APP, Env, assert_isolated, assert_ready_at_least};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const LONG: Duration = Duration::from_secs(60);

fn plan(update: Option<&str>) -> Value {
    let mut spec = json!({"target": {"kind": "StatefulSet", "name": APP}, "service": APP});
    if let Some(image) = update {
        spec["update"] = json!({"image": image});
        spec["changes"] = json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]);
    }
    spec
}

/// The pods in the order they left the Service's ready endpoints, from record `from` on.
fn departures(records: &[EndpointsRecord], from: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pair in records[from..].windows(2) {
        let after: Vec<&str> = pair[1].ready.iter().map(|p| p.name.as_str()).collect();
        for gone in pair[0]
            .ready
            .iter()
            .filter(|p| !after.contains(&p.name.as_str()))
        {
            out.push(gone.name.clone());
        }
    }
    out
}

async fn rolls_out(update_strategy: Value, update: Option<&str>) {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, update_strategy).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan("sts", plan(update)).await;
    let done = env.wait_phase("sts", Phase::Succeeded, LONG).await;
    let status = done.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("RollingRestart"));
    assert_eq!(status.progress.unwrap().text, "3/3");
    let records = env.endpoints();
    // At most one pod out at any moment (a StatefulSet cannot surge), never none serving.
    assert_ready_at_least(&records, start, 2);
    let gone = departures(&records, start);
    assert_eq!(
        gone,
        [format!("{APP}-2"), format!("{APP}-1"), format!("{APP}-0")],
        "highest ordinal first, each once"
    );
    assert_stateful_clean_end(&env, 3, update.unwrap_or(OLD_IMAGE), own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_new_template_is_paced_with_the_partition() {
    rolls_out(json!({"type": "RollingUpdate"}), Some(NEW_IMAGE)).await;
}

#[tokio::test]
async fn under_on_delete_the_operator_replaces_the_pods_itself() {
    rolls_out(json!({"type": "OnDelete"}), Some(NEW_IMAGE)).await;
}

#[tokio::test]
async fn a_plain_restart_evicts_one_pod_at_a_time() {
    rolls_out(json!({"type": "RollingUpdate"}), None).await;
}

#[tokio::test]
async fn a_replacement_that_never_gets_ready_is_rolled_back() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["update"]["podTemplatePatch"] =
        json!({"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "never"}}});
    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 1});
    env.apply_plan("broken", spec).await;
    let failed = env.wait_phase("broken", Phase::Failed, LONG).await;
    let message = failed.status.unwrap().message.unwrap();
    assert!(
        message.contains(&format!("{APP}-2 was not Ready within 1s"))
            && message.contains("rolled back"),
        "{message}"
    );
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_stateful_clean_end(&env, 3, OLD_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_single_replica_is_cut_over_blue_green_without_a_gap() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 1, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["blueGreen"] = json!({"scaleDownDelaySeconds": 0});
    env.apply_plan("single", spec).await;
    let done = env.wait_phase("single", Phase::Succeeded, LONG).await;
    let status = done.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("BlueGreen"));
    assert!(status.switched_at.is_some(), "the Service went to green");
    // Invariant 1 for a single replica that cannot surge: green served meanwhile.
    assert_ready_at_least(&env.endpoints(), start, 1);
    env.wait("green to be gone", LONG, || async {
        let green = stateful_sets(&env)
            .get_opt(&format!("{APP}-green"))
            .await
            .ok()?;
        let pods = env
            .pods()
            .list(&ListParams::default().labels("cutover.dev/copy=green"))
            .await
            .ok()?;
        (green.is_none() && pods.items.is_empty()).then_some(())
    })
    .await;
    assert_stateful_clean_end(&env, 1, NEW_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_full_restart_stops_every_pod_then_starts_the_new_template() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["strategy"] = json!("FullRestart");
    spec["allowDowntime"] = json!(true);
    env.apply_plan("full", spec).await;
    let done = env.wait_phase("full", Phase::Succeeded, LONG).await;
    let status = done.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("FullRestart"));
    assert!(status.downtime.is_some(), "the downtime is reported");
    assert_stateful_clean_end(&env, 3, NEW_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn an_abort_mid_rollout_brings_the_replaced_pods_back() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["rollingRestart"] = json!({"minReadySeconds": 2});
    env.apply_plan("abort", spec).await;
    env.wait("the first pod to be replaced", LONG, || async {
        let p = env.plans().get("abort").await.ok()?;
        (p.status?.progress?.done >= 1).then_some(())
    })
    .await;
    env.patch_plan("abort", json!({"abort": true})).await;
    let aborted = env.wait_phase("abort", Phase::Aborted, LONG).await;
    let message = aborted.status.unwrap().message.unwrap();
    assert!(message.contains("rolled back"), "{message}");
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_stateful_clean_end(&env, 3, OLD_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_green_stateful_set_never_joins_blues_cluster() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 2, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["strategy"] = json!("BlueGreen");
    spec["blueGreen"] = json!({"scaleDownDelaySeconds": 0, "greenOnly": {"env": [
        {"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}]}});
    env.apply_plan("isolated", spec).await;
    env.wait_phase("isolated", Phase::Succeeded, LONG).await;
    wait_green_gone(&env).await;
    assert_isolated(&env, &format!("{APP}-green-"), json!({"app": APP})).await;
    assert_stateful_clean_end(&env, 2, NEW_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

/// BlueGreen of a StatefulSet aborted before the switch (while it waits for promotion) and
/// after it (while blue is kept): blue serves again, no moment mixes revisions or loses a
/// ready pod, and the StatefulSet ends as it began.
#[tokio::test]
async fn a_blue_green_abort_before_and_after_the_switch_returns_to_blue() {
    for after_switch in [false, true] {
        let mut env = Env::new().await;
        deploy_stateful(&env, 2, json!({"type": "RollingUpdate"})).await;
        let own_strategy = strategy_of(&env).await;
        let start = env.endpoints().len() - 1;
        env.start_operator();
        let mut spec = plan(Some(NEW_IMAGE));
        spec["strategy"] = json!("BlueGreen");
        spec["blueGreen"] = if after_switch {
            json!({"scaleDownDelaySeconds": 4})
        } else {
            json!({"autoPromote": false})
        };
        env.apply_plan("bg", spec).await;
        if after_switch {
            env.wait("the switch", LONG, || async {
                let plan = env.plans().get("bg").await.ok()?;
                plan.status?.switched_at.map(|_| ())
            })
            .await;
        } else {
            env.wait_phase("bg", Phase::AwaitingPromotion, LONG).await;
        }
        env.patch_plan("bg", json!({"abort": true})).await;
        let aborted = env.wait_phase("bg", Phase::Aborted, LONG).await;
        let message = aborted.status.unwrap().message.unwrap_or_default();
        assert_eq!(
            message.contains("after the switch"),
            after_switch,
            "{message}"
        );
        let records = env.endpoints();
        if let Err(violation) =
            cutover::invariants::no_mixing_by(&records, start, "controller-revision-hash")
        {
            panic!("{violation}");
        }
        assert_ready_at_least(&records, start, 2);
        assert_stateful_clean_end(&env, 2, OLD_IMAGE, own_strategy).await;
        wait_green_gone(&env).await;
        env.stop_operator().await;
    }
}

/// A BlueGreen plan for cluster code on a StatefulSet beside its headless Service, with no
/// `greenOnly`: green would look for its cluster where blue's is, so the plan is Rejected and
/// nothing is touched.
#[tokio::test]
async fn cluster_code_without_green_only_is_rejected_and_touches_nothing() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 2, json!({"type": "RollingUpdate"})).await;
    let before = stateful_sets(&env).get(APP).await.unwrap();
    env.start_operator();
    let mut spec = plan(Some(NEW_IMAGE));
    spec["strategy"] = json!("BlueGreen");
    spec["changes"] = json!([{"type": "ClusterCode",
        "clusterCode": {"categories": ["Clustering"]}}]);
    env.apply_plan("unisolated", spec).await;
    let rejected = env.wait_phase("unisolated", Phase::Rejected, LONG).await;
    let message = rejected.status.unwrap().message.unwrap();
    assert!(
        message.contains("greenOnly") && message.contains("liferay-headless-green"),
        "{message}"
    );
    assert!(message.ends_with("nothing was touched"), "{message}");
    for name in [format!("{APP}-headless"), APP.to_string()] {
        let service = env.services().get(&name).await.unwrap();
        assert_eq!(
            serde_json::to_value(service.spec.unwrap().selector).unwrap(),
            json!({"app": APP}),
            "{name}"
        );
    }
    assert!(
        env.services()
            .get_opt(&format!("{APP}-headless-green"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        stateful_sets(&env)
            .get_opt(&format!("{APP}-green"))
            .await
            .unwrap()
            .is_none()
    );
    let after = stateful_sets(&env).get(APP).await.unwrap();
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(after.spec, before.spec);
    env.stop_operator().await;
}
