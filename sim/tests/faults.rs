//! Fault injection over HTTP: error statuses a number of times, seeded probabilities,
//! latency, cut watch streams; and that in-process controllers are not affected.

mod common;

use common::{bare, cluster, wait_for};
use cutover_sim::{FaultRule, keys};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn status_faults_fire_the_given_number_of_times() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let id = sim.inject(
        FaultRule::status(409)
            .verb("patch")
            .resource("configmaps")
            .name("a")
            .times(2),
    );
    let p = Patch::Merge(json!({"data": {"x": "1"}}));
    assert_eq!(
        code(
            cms.patch("a", &PatchParams::default(), &p)
                .await
                .unwrap_err()
        ),
        409
    );
    assert_eq!(
        code(
            cms.patch("a", &PatchParams::default(), &p)
                .await
                .unwrap_err()
        ),
        409
    );
    cms.patch("a", &PatchParams::default(), &p).await.unwrap();
    assert_eq!(sim.faults().fired(id), 2);
    // Other verbs and names are untouched.
    sim.inject(FaultRule::status(500).verb("get").name("b"));
    cms.get("a").await.unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    assert_eq!(code(cms.get("b").await.unwrap_err()), 500);
    sim.faults().clear();
    cms.get("b").await.unwrap();
}

#[tokio::test]
async fn probabilistic_faults_and_latency() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    cms.create(&PostParams::default(), &cm("p")).await.unwrap();
    sim.inject(FaultRule::status(503).verb("get").probability(0.5));
    let mut failures = 0;
    for _ in 0..40 {
        if cms.get("p").await.is_err() {
            failures += 1;
        }
    }
    assert!((8..=32).contains(&failures), "{failures} of 40 failed");
    sim.faults().clear();

    sim.inject(FaultRule::latency(Duration::from_millis(150)).verb("list"));
    let start = Instant::now();
    cms.list(&Default::default()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn dropped_watches_end_the_stream() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    sim.inject(
        FaultRule::drop_watch(Duration::from_millis(50))
            .resource("configmaps")
            .times(1),
    );
    let rv = sim.store().current_rv().to_string();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    let start = Instant::now();
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends without events"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // The next watch is not cut and receives events.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(c) => assert_eq!(c.metadata.name.as_deref(), Some("after")),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn controllers_are_not_affected_by_faults() {
    let sim = cluster().await;
    sim.inject(FaultRule::status(500).resource("pods"));
    sim.inject(FaultRule::status(500).resource("replicasets"));
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "f"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "f"}},
        "template": {"metadata": {"labels": {"app": "f"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
    .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    wait_for("two available pods", Duration::from_secs(10), || {
        (sim.get(&keys::DEPLOYMENTS, "default", "f")?["status"]["availableReplicas"] == 2)
            .then_some(())
    })
    .await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::default_namespaced(sim.client().unwrap());
    assert_eq!(code(pods.list(&Default::default()).await.unwrap_err()), 500);
}
