//! A StatefulSet-shaped application for the end-to-end tests, on either bed: the StatefulSet
//! `liferay` with a headless governing Service and the traffic Service, and the checks of its
//! clean end (DESIGN invariant 4 for a StatefulSet target).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use super::{APP, Env};

pub const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const LONG: Duration = Duration::from_secs(60);

pub fn stateful_sets(env: &Env) -> Api<StatefulSet> {
    Api::namespaced(env.client.clone(), &env.ns)
}

/// The application as a StatefulSet `liferay` with a headless governing Service and the
/// traffic Service `liferay`, all pods Ready.
pub async fn deploy_stateful(env: &Env, replicas: i32, update_strategy: Value) {
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    for service in [
        json!({"metadata": {"name": format!("{APP}-headless"), "namespace": env.ns},
               "spec": {"clusterIP": "None", "selector": {"app": APP}, "ports": [{"port": 7800}]}}),
        json!({"metadata": {"name": APP, "namespace": env.ns},
               "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}}),
    ] {
        services
            .create(
                &PostParams::default(),
                &serde_json::from_value(service).unwrap(),
            )
            .await
            .expect("service created");
    }
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": APP, "namespace": env.ns},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{APP}-headless"),
            "selector": {"matchLabels": {"app": APP}},
            "updateStrategy": update_strategy,
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {"containers": [{"name": APP, "image": OLD_IMAGE}]}
            }
        }
    }))
    .unwrap();
    stateful_sets(env)
        .create(&PostParams::default(), &set)
        .await
        .expect("statefulset created");
    env.wait("the statefulset to be Ready", LONG, || async {
        let s = stateful_sets(env).get(APP).await.ok()?;
        let status = s.status?;
        (status.available_replicas == Some(replicas) && status.updated_replicas == Some(replicas))
            .then_some(())
    })
    .await;
    env.wait("the service to list every pod", LONG, || async {
        let last = env.endpoints().last().cloned()?;
        (last.ready.len() as i32 == replicas).then_some(())
    })
    .await;
}

/// The update strategy as the API server holds it (with its defaults).
pub async fn strategy_of(env: &Env) -> Value {
    let s = stateful_sets(env).get(APP).await.unwrap();
    serde_json::to_value(&s).unwrap()["spec"]["updateStrategy"].clone()
}

/// The StatefulSet ends with `image`, its replicas, its own update strategy and none of the
/// operator's marks; every pod runs its update revision and the Service selects as before.
pub async fn assert_stateful_clean_end(env: &Env, replicas: i32, image: &str, strategy: Value) {
    env.wait("every pod to be Ready again", LONG, || async {
        let s = stateful_sets(env).get(APP).await.ok()?;
        let status = s.status?;
        (status.available_replicas == Some(replicas) && status.updated_replicas == Some(replicas))
            .then_some(())
    })
    .await;
    let s = stateful_sets(env).get(APP).await.unwrap();
    let doc = serde_json::to_value(&s).unwrap();
    assert_eq!(doc["spec"]["replicas"], replicas);
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    assert_eq!(
        doc["spec"]["updateStrategy"], strategy,
        "its own strategy is back"
    );
    let annotations: BTreeMap<String, String> = s.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "operator marks left: {annotations:?}"
    );
    let update = doc["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    let pods = env
        .pods()
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
        .unwrap();
    let live: Vec<_> = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live.len() as i32, replicas);
    for p in live {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("controller-revision-hash"),
            Some(&update),
            "pod {:?} runs the update revision",
            p.metadata.name
        );
        assert_eq!(
            p.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some(image)
        );
        assert!(
            !labels.contains_key("cutover.dev/role"),
            "no surge pod for a StatefulSet"
        );
    }
    let svc = env.services().get(APP).await.unwrap();
    assert_eq!(
        svc.spec.unwrap().selector.unwrap(),
        BTreeMap::from([("app".to_string(), APP.to_string())])
    );
}

/// Waits until the green StatefulSet `<app>-green` is gone.
pub async fn wait_green_gone(env: &Env) {
    env.wait("green to be gone", LONG, || async {
        let green = stateful_sets(env)
            .get_opt(&format!("{APP}-green"))
            .await
            .ok()?;
        green.is_none().then_some(())
    })
    .await;
}
