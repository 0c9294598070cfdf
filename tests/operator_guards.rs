//! What the operator refuses to do and what it puts back when its own record is gone, end to
//! end on both beds: a pod patch that would take the pods out of the traffic Service, or give
//! them more rights than the target's, is rejected with nothing touched; a BlueGreen whose
//! undo record is stripped from the target fails and still puts the Service's selector back.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cutover::api::Phase;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{APP, Env};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-32-jdk11";
const LONG: Duration = Duration::from_secs(30);

async fn service_selector(env: &Env) -> BTreeMap<String, String> {
    env.services()
        .get(APP)
        .await
        .expect("service readable")
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default()
}

async fn rejected_message(env: &Env, plan: &str) -> String {
    let rejected = env.wait_phase(plan, Phase::Rejected, LONG).await;
    rejected.status.unwrap().message.unwrap_or_default()
}

#[tokio::test]
async fn a_patch_that_takes_the_pods_out_of_the_service_is_rejected_touching_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.start_operator();
    env.apply_plan(
        "relabel",
        json!({"target": {"name": APP}, "service": APP,
               "update": {"image": OLD_IMAGE,
                          "podTemplatePatch": {"metadata": {"labels": {"app": "portal"}}}}}),
    )
    .await;
    let message = rejected_message(&env, "relabel").await;
    assert!(
        message.contains("spec.update.podTemplatePatch")
            && message.contains("app=liferay")
            && message.contains("nothing was touched"),
        "{message}"
    );
    env.apply_plan(
        "green-unlabelled",
        json!({"target": {"name": APP}, "service": APP, "strategy": "BlueGreen",
               "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
               "update": {"image": NEW_IMAGE},
               "blueGreen": {"greenOnly": {"podTemplatePatch": {"metadata": {"labels": {"app": null}}}}}}),
    )
    .await;
    let message = rejected_message(&env, "green-unlabelled").await;
    assert!(
        message.contains("spec.blueGreen.greenOnly.podTemplatePatch")
            && message.contains("app=liferay")
            && message.contains("nothing was touched"),
        "{message}"
    );
    assert!(!env.operator_touched_target().await);
    assert_eq!(
        service_selector(&env).await,
        [("app".into(), APP.into())].into()
    );
    env.stop_operator().await;
}

#[tokio::test]
async fn a_patch_that_gives_the_pods_more_rights_is_refused_touching_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.start_operator();
    env.apply_plan(
        "escalate",
        json!({"target": {"name": APP}, "service": APP,
               "update": {"podTemplatePatch": {"spec": {
                   "serviceAccountName": "default", "hostPID": true,
                   "volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]}}}}),
    )
    .await;
    let rejected = env.wait_phase("escalate", Phase::Rejected, LONG).await;
    let status = rejected.status.unwrap();
    let message = status.message.unwrap_or_default();
    for words in [
        "serviceAccountName",
        "hostPID",
        "hostPath",
        "--allow-privileged-patches",
        "nothing was touched",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    assert!(
        status
            .findings
            .iter()
            .any(|f| f.rule == "pod-patch-escalates-privileges")
    );
    assert!(!env.operator_touched_target().await);
    env.stop_operator().await;
}

#[tokio::test]
async fn a_blue_green_whose_record_is_stripped_fails_and_puts_the_service_back() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let original = service_selector(&env).await;
    env.start_operator();
    env.apply_plan(
        "stripped",
        json!({"target": {"name": APP}, "service": APP, "strategy": "BlueGreen",
               "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
               "update": {"image": NEW_IMAGE,
                          "podTemplatePatch": {"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": "never"}}}},
               "blueGreen": {"readyTimeoutSeconds": 600}}),
    )
    .await;
    // Green never gets Ready: the plan waits with the Service pinned to blue.
    env.wait("the service pinned to blue", LONG, || async {
        (service_selector(&env).await.len() > original.len()).then_some(())
    })
    .await;
    // Something strips the operator's annotations off the target (a sync tool, a person).
    env.deployments()
        .patch(
            APP,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "cutover.dev/plan": null, "cutover.dev/saved": null}}})),
        )
        .await
        .expect("annotations removed");
    let failed = env.wait_phase("stripped", Phase::Failed, LONG).await;
    let message = failed.status.unwrap().message.unwrap_or_default();
    assert!(message.contains("cutover.dev/saved"), "{message}");
    assert_eq!(service_selector(&env).await, original, "{message}");
    env.wait("green to go", LONG, || async {
        env.deployments()
            .get_opt(&format!("{APP}-green"))
            .await
            .ok()?
            .is_none_or(|g| g.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    env.stop_operator().await;
}
