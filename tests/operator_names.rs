//! Names, end to end on both beds: a BlueGreen of a Deployment whose name is as long as a
//! Deployment's may be succeeds (green's own name is derived to fit, with room for its
//! ReplicaSets'), and the schema refuses a plan that names a Service, a preview Service or a
//! target by something no such object can be called, saying which field.

mod support;

use std::time::Duration;

use cutover::api::{MaintenancePlan, Phase};
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::{APP, Env, assert_no_mixing, assert_ready_at_least};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-32-jdk11";
const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_blue_green_of_a_deployment_with_the_longest_name_succeeds() {
    let mut env = Env::new().await;
    // A Deployment's name may be 253 characters long: `<name>-green` is not a name, and cut
    // back to 253 it would be the target's own.
    let name = format!("{APP}-{}", "x".repeat(253 - APP.len() - 1));
    env.deploy_app_named(&name, 2).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan(
        "java",
        json!({
            "target": {"name": name}, "service": APP,
            "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
            "update": {"image": NEW_IMAGE},
            "blueGreen": {"scaleDownDelaySeconds": 0}
        }),
    )
    .await;
    let plan = env.wait_phase("java", Phase::Succeeded, LONG).await;
    let status = plan.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("BlueGreen"));
    assert!(
        status.switched_at.is_some(),
        "the service switched to green"
    );
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 2);
    assert_no_mixing(&records, start);
    // The target runs the new image and green is gone.
    env.wait(
        "green to be gone and the target to run the new image",
        Duration::from_secs(10),
        || async {
            let deployments = env.deployments().list(&ListParams::default()).await.ok()?;
            let names: Vec<String> = deployments
                .items
                .iter()
                .filter_map(|d| d.metadata.name.clone())
                .collect();
            let images = env.images().await;
            (names == [name.clone()] && images.len() == 2 && images.iter().all(|i| i == NEW_IMAGE))
                .then_some(())
        },
    )
    .await;
    env.stop_operator().await;
}

/// Creates a plan with `spec`; the server's refusal, or `None` when it was accepted.
async fn refusal(env: &Env, name: &str, spec: serde_json::Value) -> Option<String> {
    let plan: MaintenancePlan = serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": name, "namespace": env.ns},
        "spec": spec
    }))
    .expect("plan parses");
    match env.plans().create(&PostParams::default(), &plan).await {
        Ok(_) => None,
        Err(kube::Error::Api(e)) => Some(e.message),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[tokio::test]
async fn the_schema_refuses_names_no_service_or_workload_can_have() {
    let env = Env::new().await;
    let service_words = "service: a Service's name is a DNS-1035 label";
    for (name, spec, words) in [
        (
            "upper",
            json!({"target": {"name": APP}, "service": "Liferay_Portal"}),
            service_words,
        ),
        (
            "digit",
            json!({"target": {"name": APP}, "service": "1liferay"}),
            service_words,
        ),
        (
            "dotted",
            json!({"target": {"name": APP}, "service": "liferay.portal"}),
            service_words,
        ),
        (
            "preview",
            json!({"target": {"name": APP}, "service": APP,
                   "blueGreen": {"previewService": "Liferay-Preview"}}),
            "blueGreen.previewService: empty, or a Service's name",
        ),
        (
            "target",
            json!({"target": {"name": "Liferay"}, "service": APP}),
            "target.name: a Deployment's or StatefulSet's name is a DNS-1123 subdomain",
        ),
        (
            "target-dash",
            json!({"target": {"name": "liferay-"}, "service": APP}),
            "target.name: a Deployment's or StatefulSet's name is a DNS-1123 subdomain",
        ),
    ] {
        let message = refusal(&env, name, spec.clone())
            .await
            .unwrap_or_else(|| panic!("{name}: {spec} was accepted"));
        assert!(message.contains(words), "{name}: {message}");
    }
    // Too long for a Service's name: refused (by the rule, and on a real server by the
    // maxLength beside it too).
    let long = format!("{APP}-{}", "x".repeat(64 - APP.len() - 1));
    assert!(
        refusal(
            &env,
            "long",
            json!({"target": {"name": APP}, "service": long})
        )
        .await
        .is_some(),
        "a 64-character service was accepted"
    );
    // What is allowed still is: the longest names, a dotted target, no preview or one.
    let longest_service = format!("{APP}-{}", "x".repeat(63 - APP.len() - 1));
    let longest_target = format!("{APP}.{}", "x".repeat(253 - APP.len() - 1));
    for (name, spec) in [
        (
            "fine",
            json!({"target": {"name": longest_target}, "service": longest_service,
                   "blueGreen": {"previewService": ""}}),
        ),
        (
            "preview-fine",
            json!({"target": {"name": APP}, "service": APP,
                   "blueGreen": {"previewService": "liferay-preview"}}),
        ),
    ] {
        assert_eq!(refusal(&env, name, spec).await, None, "{name}");
    }
}
