//! BlueGreen end to end on the simulated cluster, with the invariants of DESIGN section 4
//! checked over the recorded history: no gap, no mixing, a single selector switch, blue kept
//! until the endpoints list only green, and a clean end.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use serde_json::json;
use support::{
    APP, Env, assert_clean_end, assert_isolated, assert_no_mixing, assert_ready_at_least,
};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-32-jdk11";
const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const LONG: Duration = Duration::from_secs(30);

fn java_plan() -> serde_json::Value {
    json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": NEW_IMAGE},
        "blueGreen": {"scaleDownDelaySeconds": 0}
    })
}

#[tokio::test]
async fn switches_to_green_in_one_step_and_ends_clean() {
    for replicas in [1, 3] {
        let mut env = Env::new().await;
        env.deploy_app(replicas).await;
        let start = env.endpoints().len() - 1;
        env.start_operator();
        env.apply_plan("java", java_plan()).await;
        let plan = env.wait_phase("java", Phase::Succeeded, LONG).await;
        let status = plan.status.unwrap();
        assert_eq!(status.strategy.map(|s| s.as_str()), Some("BlueGreen"));
        assert!(status.switched_at.is_some());
        let records = env.endpoints();
        assert_ready_at_least(&records, start, replicas as usize);
        assert_no_mixing(&records, start);
        assert_clean_end(&env, replicas, NEW_IMAGE).await;
        assert!(
            env.deployments()
                .get_opt(&format!("{APP}-green"))
                .await
                .unwrap()
                .is_none(),
            "green is removed"
        );
        env.stop_operator().await;
    }
}

#[tokio::test]
async fn a_green_that_never_gets_ready_leaves_blue_untouched() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    let blue_pods: Vec<String> = env.endpoints()[start]
        .ready
        .iter()
        .map(|p| p.name.clone())
        .collect();
    env.start_operator();
    let mut spec = java_plan();
    spec["update"]["podTemplatePatch"] =
        json!({"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "never"}}});
    spec["blueGreen"]["readyTimeoutSeconds"] = json!(1);
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    assert!(
        plan.status
            .unwrap()
            .message
            .unwrap()
            .contains("green was not Ready within 1s")
    );
    let records = env.endpoints();
    for r in &records[start..] {
        let names: Vec<String> = r.ready.iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            names, blue_pods,
            "blue alone served, and no blue pod restarted"
        );
    }
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn manual_promotion_with_a_preview_service() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.create_service_like_app("liferay-preview").await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = java_plan();
    spec["blueGreen"]["autoPromote"] = json!(false);
    spec["blueGreen"]["previewService"] = json!("liferay-preview");
    env.apply_plan("java", spec).await;
    env.wait_phase("java", Phase::AwaitingPromotion, LONG).await;
    let preview_sel = env
        .services()
        .get("liferay-preview")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert!(
        preview_sel.contains_key("pod-template-hash"),
        "the preview service points at green: {preview_sel:?}"
    );
    // Nothing switched while waiting.
    assert!(env.endpoints()[start..].iter().all(|r| {
        r.ready
            .iter()
            .all(|p| !p.labels.contains_key("cutover.dev/copy"))
    }));
    env.patch_plan("java", json!({"promote": true})).await;
    env.wait_phase("java", Phase::Succeeded, LONG).await;
    assert_no_mixing(&env.endpoints(), start);
    assert_clean_end(&env, 2, NEW_IMAGE).await;
    let preview_sel = env
        .services()
        .get("liferay-preview")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert_eq!(
        preview_sel,
        std::collections::BTreeMap::from([("app".to_string(), APP.to_string())])
    );
    env.stop_operator().await;
}

#[tokio::test]
async fn abort_before_and_after_the_switch_returns_to_blue() {
    // Before: waiting for promotion.
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = java_plan();
    spec["blueGreen"]["autoPromote"] = json!(false);
    env.apply_plan("java", spec).await;
    env.wait_phase("java", Phase::AwaitingPromotion, LONG).await;
    env.patch_plan("java", json!({"abort": true})).await;
    env.wait_phase("java", Phase::Aborted, LONG).await;
    assert_no_mixing(&env.endpoints(), start);
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_clean_end(&env, 2, OLD_IMAGE).await;
    env.stop_operator().await;

    // After: green serves, blue is kept for the scale-down delay.
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = java_plan();
    spec["blueGreen"]["scaleDownDelaySeconds"] = json!(2);
    env.apply_plan("java", spec).await;
    env.wait("the switch", LONG, || async {
        let plan = env.plans().get("java").await.ok()?;
        plan.status?.switched_at.map(|_| ())
    })
    .await;
    env.patch_plan("java", json!({"abort": true})).await;
    let plan = env.wait_phase("java", Phase::Aborted, LONG).await;
    assert!(
        plan.status
            .unwrap()
            .message
            .unwrap()
            .contains("aborted after the switch")
    );
    let records = env.endpoints();
    assert_no_mixing(&records, start);
    assert_ready_at_least(&records, start, 2);
    assert!(
        records.iter().skip(start).any(|r| r
            .ready
            .iter()
            .any(|p| p.labels.contains_key("cutover.dev/copy"))),
        "green served for a while"
    );
    assert_clean_end(&env, 2, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn deleting_the_plan_after_the_switch_returns_to_blue_first() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let mut spec = java_plan();
    spec["blueGreen"]["scaleDownDelaySeconds"] = json!(2);
    env.apply_plan("java", spec).await;
    env.wait("the switch", LONG, || async {
        let plan = env.plans().get("java").await.ok()?;
        plan.status?.switched_at.map(|_| ())
    })
    .await;
    env.delete_plan("java").await;
    env.wait_gone("java", LONG).await;
    let records = env.endpoints();
    assert_no_mixing(&records, start);
    assert_ready_at_least(&records, start, 2);
    assert_clean_end(&env, 2, OLD_IMAGE).await;
    assert!(
        env.deployments()
            .get_opt(&format!("{APP}-green"))
            .await
            .unwrap()
            .is_none(),
        "green is removed"
    );
    env.stop_operator().await;
}

/// A headless discovery Service beside the traffic Service, selecting the same pods.
async fn add_headless(env: &Env, selector: serde_json::Value) {
    let headless: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "liferay-headless", "namespace": env.ns},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": selector,
                 "ports": [{"name": "jgroups", "port": 7800}]}
    }))
    .unwrap();
    env.services()
        .create(&kube::api::PostParams::default(), &headless)
        .await
        .unwrap();
}

fn cluster_plan() -> serde_json::Value {
    let mut spec = java_plan();
    spec["strategy"] = json!("BlueGreen");
    spec["blueGreen"]["greenOnly"] = json!({"env": [
        {"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}]});
    spec
}

#[tokio::test]
async fn green_never_joins_blues_cluster() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    add_headless(&env, json!({"app": APP})).await;
    env.start_operator();
    env.apply_plan("isolated", cluster_plan()).await;
    env.wait_phase("isolated", Phase::Succeeded, LONG).await;
    assert_isolated(&env, &format!("{APP}-green-"), json!({"app": APP})).await;
    assert_clean_end(&env, 2, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn cluster_code_without_green_only_is_rejected_and_touches_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    add_headless(&env, json!({"app": APP})).await;
    let before = env.deployments().get(APP).await.unwrap();
    env.start_operator();
    let mut spec = cluster_plan();
    spec["changes"] = json!([{"type": "ClusterCode",
        "clusterCode": {"categories": ["Clustering"]}}]);
    spec["blueGreen"] = json!({"scaleDownDelaySeconds": 0});
    env.apply_plan("unisolated", spec).await;
    let plan = env.wait_phase("unisolated", Phase::Rejected, LONG).await;
    let message = plan.status.unwrap().message.unwrap();
    assert!(
        message.contains("blueGreen: {greenOnly: {env: [{name: DNS_MEMBERSHIP_SERVICE_NAME, value: liferay-headless-green}]}}"),
        "{message}"
    );
    for (service, selector) in [
        ("liferay-headless", json!({"app": APP})),
        (APP, json!({"app": APP})),
    ] {
        let s = env.services().get(service).await.unwrap();
        assert_eq!(
            serde_json::to_value(s.spec.unwrap().selector).unwrap(),
            selector
        );
    }
    assert!(
        env.services()
            .get_opt("liferay-headless-green")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        env.deployments()
            .get_opt(&format!("{APP}-green"))
            .await
            .unwrap()
            .is_none()
    );
    let after = env.deployments().get(APP).await.unwrap();
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(after.spec, before.spec);
    env.stop_operator().await;
}
