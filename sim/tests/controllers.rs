//! The simulated controllers: Deployment rollouts (RollingUpdate, Recreate, paused, progress
//! deadline), ReplicaSets claimed by selector (adopted, released, recognised by template) and
//! the scaling of paused Deployments, ReplicaSets, the kubelet's behaviours, endpoints,
//! eviction with budgets, garbage collection and Jobs — checked on the recorded history where
//! it matters.

mod common;

use common::{cluster, wait_for};
use cutover_sim::{PodBehaviour, PodRule, ReadyAfter, keys};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn deployment(name: &str, replicas: i32, strategy: Value, pod_annotations: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": pod_annotations},
                "spec": {"containers": [{"name": "main", "image": "img:1", "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    }))
    .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}})).unwrap()
}

fn rollout_done(sim: &cutover_sim::SimCluster, name: &str, replicas: i64) -> Option<Value> {
    let d = sim.get(&keys::DEPLOYMENTS, "default", name)?;
    let s = &d["status"];
    let progressing = s["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Progressing")?;
    (s["observedGeneration"] == d["metadata"]["generation"]
        && s["updatedReplicas"] == replicas
        && s["availableReplicas"] == replicas
        && s["replicas"] == replicas
        && progressing["reason"] == "NewReplicaSetAvailable")
        .then_some(d)
}

#[tokio::test]
async fn rolling_update_completes_within_max_unavailable() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let svcs: Api<Service> = Api::default_namespaced(client.clone());
    svcs.create(&PostParams::default(), &service("web"))
        .await
        .unwrap();
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "34%"}});
    deps.create(
        &PostParams::default(),
        &deployment("web", 3, strategy, json!({})),
    )
    .await
    .unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, "web", 3)).await;

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "img:2"}]}}}});
    deps.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let d = wait_for("the second rollout", T, || {
        rollout_done(&sim, "web", 3)
            .filter(|d| d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    })
    .await;
    assert_eq!(d["status"]["readyReplicas"], 3);

    // Two ReplicaSets, the old one scaled to zero; all pods run the new image.
    let rses: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let rs_list = rses
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(rs_list.items.len(), 2);
    let events = sim.list(&keys::EVENTS, Some("default"));
    let scaling: Vec<&str> = events
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "web")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with("Scaled up replica set web-")),
        "{scaling:?}"
    );
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with("Scaled down replica set web-")),
        "{scaling:?}"
    );
    let zero = rs_list
        .items
        .iter()
        .filter(|r| r.spec.as_ref().unwrap().replicas == Some(0))
        .count();
    assert_eq!(zero, 1);
    let pods = wait_for("old pods gone", T, || {
        let pods = sim.list(&keys::PODS, Some("default"));
        (pods.len() == 3).then_some(pods)
    })
    .await;
    assert!(
        pods.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "img:2")
    );
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["name"].as_str().unwrap().starts_with("web-"))
    );

    // Over the whole rollout, the Service kept at least replicas - maxUnavailable (3 - 1) ready
    // endpoints once it first had all 3, and the slice targets the named container port.
    let history = sim.history().endpoints_of("default", "web");
    let first_full = history
        .iter()
        .position(|e| e.ready.len() == 3)
        .expect("reached 3 ready endpoints");
    let min = history[first_full..]
        .iter()
        .map(|e| e.ready.len())
        .min()
        .unwrap();
    assert!(min >= 2, "ready endpoints dropped to {min}: {history:#?}");
    assert!(history.last().unwrap().versions().len() == 1);
    assert!(sim.history().first_gap("default", "web").is_none());
    assert!(
        sim.history()
            .first_mix("default", "web", "pod-template-hash")
            .is_some()
    );
    assert_eq!(
        *sim.history().ready_counts("default", "web").last().unwrap(),
        3
    );
    assert!(
        history.iter().any(|e| e.versions().len() == 2),
        "a rolling update mixes versions for a while"
    );
    let slice = sim
        .list(&keys::ENDPOINTSLICES, Some("default"))
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
}

#[tokio::test]
async fn single_replica_surge_has_no_gap() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &service("one"))
        .await
        .unwrap();
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    deps.create(
        &PostParams::default(),
        &deployment(
            "one",
            1,
            strategy,
            json!({"sim.cutover.dev/ready-after-ms": "30"}),
        ),
    )
    .await
    .unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, "one", 1)).await;
    deps.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})),
    )
    .await
    .unwrap();
    wait_for("the second rollout", T, || {
        rollout_done(&sim, "one", 1).filter(|d| d["metadata"]["generation"] == 2)
    })
    .await;
    wait_for("the old pod gone", T, || {
        (sim.list(&keys::PODS, Some("default")).len() == 1).then_some(())
    })
    .await;
    assert!(sim.history().first_gap("default", "one").is_none());
    let history = sim.history().endpoints_of("default", "one");
    let first = history.iter().position(|e| !e.ready.is_empty()).unwrap();
    assert!(
        history[first..].iter().all(|e| !e.ready.is_empty()),
        "{history:#?}"
    );
}

#[tokio::test]
async fn recreate_stops_all_old_pods_first() {
    let sim = cluster().await;
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    deps.create(
        &PostParams::default(),
        &deployment("rc", 2, json!({"type": "Recreate"}), json!({})),
    )
    .await
    .unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, "rc", 2)).await;
    deps.patch(
        "rc",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})),
    )
    .await
    .unwrap();
    wait_for("the second rollout", T, || {
        rollout_done(&sim, "rc", 2).filter(|d| d["metadata"]["generation"] == 2)
    })
    .await;
    let pods = sim.history().writes_of("pods");
    let new_hash =
        sim.list(&keys::PODS, Some("default"))[0]["metadata"]["labels"]["pod-template-hash"]
            .clone();
    let first_new = pods
        .iter()
        .position(|w| {
            w.verb == "create" && w.object["metadata"]["labels"]["pod-template-hash"] == new_hash
        })
        .unwrap();
    let last_old_gone = pods
        .iter()
        .rposition(|w| {
            w.verb == "delete" && w.object["metadata"]["labels"]["pod-template-hash"] != new_hash
        })
        .unwrap();
    assert!(
        last_old_gone < first_new,
        "a new pod was created before the old ones were gone"
    );
}

#[tokio::test]
async fn paused_deployment_does_not_roll_out() {
    let sim = cluster().await;
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    deps.create(
        &PostParams::default(),
        &deployment("p", 2, json!({}), json!({})),
    )
    .await
    .unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, "p", 2)).await;
    let patch = json!({"spec": {"paused": true, "replicas": 3, "template": {"metadata": {"labels": {"v": "2"}}}}});
    deps.patch("p", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("scaling while paused", T, || {
        let d = sim.get(&keys::DEPLOYMENTS, "default", "p")?;
        (d["status"]["availableReplicas"] == 3 && d["status"]["observedGeneration"] == 2)
            .then_some(())
    })
    .await;
    assert_eq!(
        sim.list(&keys::REPLICASETS, Some("default")).len(),
        1,
        "no new ReplicaSet while paused"
    );
    let d = sim.get(&keys::DEPLOYMENTS, "default", "p").unwrap();
    assert!(
        d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reason"] == "DeploymentPaused")
    );
    deps.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    wait_for("the rollout after resuming", T, || {
        rollout_done(&sim, "p", 3).filter(|d| d["status"]["observedGeneration"] == 3)
    })
    .await;
    assert_eq!(sim.list(&keys::REPLICASETS, Some("default")).len(), 2);
}

#[tokio::test]
async fn progress_deadline_is_reported() {
    let sim = cluster().await;
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    let mut d = deployment(
        "slow",
        1,
        json!({}),
        json!({"sim.cutover.dev/ready-after-ms": "never"}),
    );
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(1);
    deps.create(&PostParams::default(), &d).await.unwrap();
    wait_for("ProgressDeadlineExceeded", Duration::from_secs(5), || {
        let d = sim.get(&keys::DEPLOYMENTS, "default", "slow")?;
        d["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ProgressDeadlineExceeded"
            })
            .then_some(())
    })
    .await;
}

/// A ReplicaSet made outside the Deployment controller: `template` with the
/// pod-template-hash label `hash` added, `replicas`, optional controller owner reference.
fn foreign_rs(
    name: &str,
    template: &Value,
    hash: &str,
    replicas: i64,
    owner: Option<Value>,
) -> ReplicaSet {
    let mut template = template.clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    let mut rs = json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
    });
    if let Some(owner) = owner {
        rs["metadata"]["ownerReferences"] = json!([owner]);
    }
    serde_json::from_value(rs).unwrap()
}

/// The uid of the controller of a ReplicaSet, if any.
fn rs_controller(sim: &cutover_sim::SimCluster, name: &str) -> Option<String> {
    let rs = sim.get(&keys::REPLICASETS, "default", name)?;
    rs["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| r["uid"].as_str().unwrap().to_string())
}

fn rs_replicas(sim: &cutover_sim::SimCluster, name: &str) -> Option<i64> {
    sim.get(&keys::REPLICASETS, "default", name)?["spec"]["replicas"].as_i64()
}

#[tokio::test]
async fn replicasets_are_adopted_and_released_by_selector() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client.clone());
    let d = deployment("web", 2, json!({}), json!({}));
    let template = serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    // An orphan with the Deployment's template (and another hash), made before the Deployment.
    rss.create(
        &PostParams::default(),
        &foreign_rs("web-manual", &template, "manual", 2, None),
    )
    .await
    .unwrap();
    // A matching ReplicaSet controlled by something else.
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    let cm_uid = cm.metadata.uid.clone().unwrap();
    let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": cm_uid, "controller": true});
    let mut other = template.clone();
    other["spec"]["containers"][0]["image"] = json!("img:other");
    rss.create(
        &PostParams::default(),
        &foreign_rs("web-other", &other, "other", 0, Some(owner)),
    )
    .await
    .unwrap();
    let d = deps.create(&PostParams::default(), &d).await.unwrap();
    let uid = d.metadata.uid.unwrap();

    // Adopted, and recognised as the new ReplicaSet: no other one is made.
    let done = wait_for("the rollout on the adopted ReplicaSet", T, || {
        rollout_done(&sim, "web", 2)
    })
    .await;
    assert_eq!(
        rs_controller(&sim, "web-manual").as_deref(),
        Some(uid.as_str())
    );
    let owner_ref = sim
        .get(&keys::REPLICASETS, "default", "web-manual")
        .unwrap()["metadata"]["ownerReferences"][0]
        .clone();
    assert_eq!(owner_ref["kind"], "Deployment");
    assert_eq!(owner_ref["blockOwnerDeletion"], true);
    assert_eq!(sim.list(&keys::REPLICASETS, Some("default")).len(), 2);
    assert!(
        done["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reason"] == "NewReplicaSetAvailable"
                && c["message"].as_str().unwrap().contains("web-manual")),
        "{done}"
    );
    assert_eq!(
        rs_controller(&sim, "web-other").as_deref(),
        Some(cm_uid.as_str())
    );

    // Relabelled out of the selector: released, and the Deployment makes its own.
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    rss.patch(
        "web-manual",
        &PatchParams::default(),
        &Patch::Merge(&relabel("elsewhere")),
    )
    .await
    .unwrap();
    let own = wait_for(
        "release and a ReplicaSet of the Deployment's own",
        T,
        || {
            if rs_controller(&sim, "web-manual").is_some() {
                return None;
            }
            sim.list(&keys::REPLICASETS, Some("default"))
                .into_iter()
                .find(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
                .filter(|rs| rs["spec"]["replicas"] == 2)
        },
    )
    .await;
    let own = own["metadata"]["name"].as_str().unwrap().to_string();
    assert!(own.starts_with("web-") && own != "web-manual");
    assert!(
        sim.get(&keys::REPLICASETS, "default", "web-manual")
            .unwrap()["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|refs| refs.is_empty())
    );

    // Relabelled back: adopted again; being the oldest with the template it is the new
    // ReplicaSet, and the Deployment's own is scaled down.
    rss.patch(
        "web-manual",
        &PatchParams::default(),
        &Patch::Merge(&relabel("web")),
    )
    .await
    .unwrap();
    wait_for("re-adoption", T, || {
        (rs_controller(&sim, "web-manual").as_deref() == Some(uid.as_str())
            && rs_replicas(&sim, &own) == Some(0)
            && rs_replicas(&sim, "web-manual") == Some(2))
        .then_some(())
    })
    .await;
    wait_for("a complete rollout", T, || rollout_done(&sim, "web", 2)).await;
    assert_eq!(
        rs_controller(&sim, "web-other").as_deref(),
        Some(cm_uid.as_str())
    );
}

#[tokio::test]
async fn a_name_clash_bumps_the_collision_count() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let d = deployment("c", 1, json!({}), json!({}));
    deps.create(&PostParams::default(), &d).await.unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, "c", 1)).await;
    let first = sim.list(&keys::REPLICASETS, Some("default"))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Orphan the ReplicaSet, move it out of the selector, and make the Deployment again.
    deps.delete("c", &DeleteParams::orphan()).await.unwrap();
    wait_for("the Deployment gone", T, || {
        sim.get(&keys::DEPLOYMENTS, "default", "c")
            .is_none()
            .then_some(())
    })
    .await;
    let relabel = json!({"metadata": {"labels": {"app": "gone"}}});
    rss.patch(&first, &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    let done = wait_for("the rollout with a new name", T, || {
        rollout_done(&sim, "c", 1)
    })
    .await;
    assert_eq!(done["status"]["collisionCount"], 1);
    let names: Vec<String> = sim
        .list(&keys::REPLICASETS, Some("default"))
        .iter()
        .map(|rs| rs["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("c-")));
    assert!(rs_controller(&sim, &first).is_none());
}

/// Pauses `name`, changes its template (labels `v: 2`, pod annotations `pod_annotations`) and
/// returns the new template as stored.
async fn pause_with_new_template(
    sim: &cutover_sim::SimCluster,
    deps: &Api<Deployment>,
    name: &str,
    pod_annotations: Value,
) -> Value {
    let patch = json!({"spec": {"paused": true, "template": {"metadata": {"labels": {"v": "2"}, "annotations": pod_annotations}}}});
    deps.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let d = wait_for("the paused status", T, || {
        let d = sim.get(&keys::DEPLOYMENTS, "default", name)?;
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]).then_some(d)
    })
    .await;
    d["spec"]["template"].clone()
}

/// A Deployment `name` of two pods (maxSurge 1, maxUnavailable 0) after its first rollout,
/// with the name of its ReplicaSet.
async fn two_pods_surging_one(
    name: &str,
) -> (
    cutover_sim::SimCluster,
    Api<Deployment>,
    Api<ReplicaSet>,
    String,
) {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    let rss: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    deps.create(
        &PostParams::default(),
        &deployment(name, 2, strategy, json!({})),
    )
    .await
    .unwrap();
    wait_for("the first rollout", T, || rollout_done(&sim, name, 2)).await;
    let first = sim.list(&keys::REPLICASETS, Some("default"))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    (sim, deps, rss, first)
}

#[tokio::test]
async fn paused_deployment_hands_over_to_an_adopted_replicaset() {
    let (sim, deps, rss, first) = two_pods_surging_one("p").await;
    let template = pause_with_new_template(
        &sim,
        &deps,
        "p",
        json!({"sim.cutover.dev/ready-after-ms": "1000"}),
    )
    .await;
    assert_eq!(
        sim.list(&keys::REPLICASETS, Some("default")).len(),
        1,
        "paused: no new ReplicaSet"
    );

    // A ReplicaSet for the new template, made by someone else, becomes the new one: the old
    // one gives up what exceeds replicas + maxSurge, then everything once the new is saturated.
    rss.create(
        &PostParams::default(),
        &foreign_rs("p-green", &template, "green", 2, None),
    )
    .await
    .unwrap();
    wait_for(
        "the old ReplicaSet at 1 while the new is unavailable",
        T,
        || {
            (rs_replicas(&sim, &first) == Some(1) && rs_replicas(&sim, "p-green") == Some(2))
                .then_some(())
        },
    )
    .await;
    let d = wait_for(
        "the old ReplicaSet at 0 once the new is saturated",
        T,
        || {
            let d = sim.get(&keys::DEPLOYMENTS, "default", "p")?;
            (rs_replicas(&sim, &first) == Some(0)
                && d["status"]["updatedReplicas"] == 2
                && d["status"]["availableReplicas"] == 2)
                .then_some(d)
        },
    )
    .await;
    assert!(
        d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reason"] == "DeploymentPaused")
    );
    assert_eq!(rs_replicas(&sim, "p-green"), Some(2));
    assert_eq!(sim.list(&keys::REPLICASETS, Some("default")).len(), 2);

    // Resumed: the adopted ReplicaSet stays the new one.
    deps.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    wait_for("the rollout after resuming, at revision 2", T, || {
        rollout_done(&sim, "p", 2).filter(|d| {
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
                && d["status"]["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| {
                        c["reason"] == "NewReplicaSetAvailable"
                            && c["message"].as_str().unwrap().contains("p-green")
                    })
        })
    })
    .await;
    assert_eq!(sim.list(&keys::REPLICASETS, Some("default")).len(), 2);
}

#[tokio::test]
async fn paused_deployment_scales_the_largest_active_replicaset() {
    let (sim, deps, rss, first) = two_pods_surging_one("s").await;
    // The new template's pods never become Ready: the new ReplicaSet is never saturated.
    let template = pause_with_new_template(
        &sim,
        &deps,
        "s",
        json!({"sim.cutover.dev/ready-after-ms": "never"}),
    )
    .await;
    rss.create(
        &PostParams::default(),
        &foreign_rs("s-green", &template, "green", 2, None),
    )
    .await
    .unwrap();
    let sizes = |old: i64, new: i64| {
        let sim = &sim;
        let first = first.clone();
        move || {
            (rs_replicas(sim, &first) == Some(old) && rs_replicas(sim, "s-green") == Some(new))
                .then_some(())
        }
    };
    // 2 + 2 active, allowed 2 + 1: the larger (the older of equals) gives one up.
    wait_for("old 1, new 2", T, sizes(1, 2)).await;
    let scale_to = |n: i64| {
        let deps = deps.clone();
        async move {
            deps.patch(
                "s",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"replicas": n}})),
            )
            .await
            .unwrap();
        }
    };
    // Up to 4: allowed 5, 3 active, the largest takes 2.
    scale_to(4).await;
    wait_for("old 1, new 4", T, sizes(1, 4)).await;
    // Down to 1: allowed 2, 5 active, the largest gives 3 up.
    scale_to(1).await;
    wait_for("old 1, new 1", T, sizes(1, 1)).await;
    // Up to 2: allowed 3, 2 active; equals, so the newer takes it.
    scale_to(2).await;
    wait_for("old 1, new 2 again", T, sizes(1, 2)).await;
    // Down to 0: nothing is allowed; the largest drops to 0, then the single active one.
    scale_to(0).await;
    wait_for("old 0, new 0", T, sizes(0, 0)).await;
    // Up to 3 with nothing active: the new ReplicaSet takes it all.
    scale_to(3).await;
    wait_for("old 0, new 3", T, sizes(0, 3)).await;
    let d = wait_for("the status", T, || {
        let d = sim.get(&keys::DEPLOYMENTS, "default", "s")?;
        (d["status"]["replicas"] == 3 && d["status"]["updatedReplicas"] == 3).then_some(d)
    })
    .await;
    assert!(d["status"].get("availableReplicas").is_none(), "{d}");
    assert_eq!(
        sim.list(&keys::REPLICASETS, Some("default")).len(),
        2,
        "paused: no new ReplicaSet"
    );
}

#[tokio::test]
async fn kubelet_behaviours_from_annotations_and_rules() {
    let sim = cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let pod = |name: &str, ann: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "k"}, "annotations": ann}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).unwrap()
    };
    pods.create(
        &PostParams::default(),
        &pod("never", json!({"sim.cutover.dev/ready-after-ms": "never"})),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("crash", json!({"sim.cutover.dev/crash-loop": "true"})),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("quick", json!({})))
        .await
        .unwrap();
    sim.kubelet().add_rule(PodRule::named(
        "ruled",
        PodBehaviour {
            ready: ReadyAfter::Never,
            crash_loop: false,
        },
    ));
    pods.create(&PostParams::default(), &pod("ruled", json!({})))
        .await
        .unwrap();

    let ready = |name: &str| {
        sim.get(&keys::PODS, "default", name).map(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
    };
    wait_for("quick Ready", T, || ready("quick").filter(|r| *r)).await;
    let restarts = wait_for("crash restarts", T, || {
        let p = sim.get(&keys::PODS, "default", "crash")?;
        let n = p["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
        (n >= 2).then_some(n)
    })
    .await;
    assert!(restarts >= 2);
    assert_eq!(ready("crash"), Some(false));
    assert_eq!(ready("never"), Some(false));
    assert_eq!(ready("ruled"), Some(false));
    let never = sim.get(&keys::PODS, "default", "never").unwrap();
    assert_eq!(never["status"]["phase"], "Running");
    let ip: std::net::Ipv4Addr = never["status"]["podIP"].as_str().unwrap().parse().unwrap();
    assert!(
        ip.is_loopback() && ip != std::net::Ipv4Addr::LOCALHOST,
        "{ip}"
    );

    // Not ready on request, then ready again.
    sim.kubelet().set_pod_ready("default", "quick", false);
    wait_for("quick not Ready", T, || ready("quick").filter(|r| !*r)).await;
    sim.kubelet().set_pod_ready("default", "never", true);
    wait_for("never made Ready", T, || ready("never").filter(|r| *r)).await;
}

#[tokio::test]
async fn terminating_pods_leave_the_endpoints_then_disappear() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    Api::<Service>::default_namespaced(client.clone())
        .create(&PostParams::default(), &service("t"))
        .await
        .unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.create(
        &PostParams::default(),
        &deployment(
            "t",
            2,
            json!({}),
            json!({"sim.cutover.dev/terminate-after-ms": "500"}),
        ),
    )
    .await
    .unwrap();
    wait_for("rollout", T, || rollout_done(&sim, "t", 2)).await;
    let victim = sim.list(&keys::PODS, Some("default"))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the victim listed as terminating", T, || {
        let slice = sim
            .list(&keys::ENDPOINTSLICES, Some("default"))
            .into_iter()
            .next()?;
        slice["endpoints"]
            .as_array()?
            .iter()
            .any(|e| {
                e["targetRef"]["name"] == victim.as_str()
                    && e["conditions"]["terminating"] == true
                    && e["conditions"]["ready"] == false
            })
            .then_some(())
    })
    .await;
    wait_for("the victim gone", T, || {
        sim.get(&keys::PODS, "default", &victim)
            .is_none()
            .then_some(())
    })
    .await;
    wait_for("a replacement ready", T, || rollout_done(&sim, "t", 2)).await;
}

#[tokio::test]
async fn eviction_respects_the_disruption_budget() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.create(
        &PostParams::default(),
        &deployment("e", 2, json!({}), json!({})),
    )
    .await
    .unwrap();
    wait_for("rollout", T, || rollout_done(&sim, "e", 2)).await;
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "e"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "e"}}}})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    wait_for("budget status", T, || {
        let p = sim.get(&keys::PDBS, "default", "e")?;
        (p["status"]["currentHealthy"] == 2 && p["status"]["disruptionsAllowed"] == 0).then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let victim = sim.list(&keys::PODS, Some("default"))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let err = pods
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 429);
            assert!(e.message.contains("disruption budget"), "{}", e.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        sim.get(&keys::PODS, "default", &victim).unwrap()["metadata"]
            .get("deletionTimestamp")
            .is_none()
    );

    // One more replica makes room for one disruption.
    deps.patch(
        "e",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for("budget allows one", T, || {
        (sim.get(&keys::PDBS, "default", "e")?["status"]["disruptionsAllowed"] == 1).then_some(())
    })
    .await;
    wait_for("three ready", T, || rollout_done(&sim, "e", 3)).await;
    // From now on, replacements never become Ready, so the budget stays spent.
    sim.kubelet().add_rule(PodRule::all(PodBehaviour {
        ready: ReadyAfter::Never,
        crash_loop: false,
    }));
    pods.evict(&victim, &EvictParams::default()).await.unwrap();
    assert!(
        sim.get(&keys::PODS, "default", &victim)
            .map(|p| p["metadata"]["deletionTimestamp"].is_string())
            .unwrap_or(true)
    );
    let other = sim
        .list(&keys::PODS, Some("default"))
        .into_iter()
        .find(|p| {
            let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            p["metadata"]["name"] != victim.as_str()
                && p["metadata"].get("deletionTimestamp").is_none()
                && ready
        })
        .unwrap();
    let err = pods
        .evict(
            other["metadata"]["name"].as_str().unwrap(),
            &EvictParams::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 429),
        "the budget is spent: {err:?}"
    );
}

#[tokio::test]
async fn owner_references_are_garbage_collected() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.create(
        &PostParams::default(),
        &deployment("gc", 2, json!({}), json!({})),
    )
    .await
    .unwrap();
    deps.create(
        &PostParams::default(),
        &deployment("orphan", 1, json!({}), json!({})),
    )
    .await
    .unwrap();
    wait_for("rollouts", T, || {
        rollout_done(&sim, "gc", 2).and(rollout_done(&sim, "orphan", 1))
    })
    .await;

    deps.delete("gc", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("gc's ReplicaSet and pods collected", T, || {
        let left = sim
            .list(&keys::PODS, Some("default"))
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "gc")
            .count()
            + sim
                .list(&keys::REPLICASETS, Some("default"))
                .iter()
                .filter(|r| r["metadata"]["labels"]["app"] == "gc")
                .count();
        (left == 0).then_some(())
    })
    .await;

    deps.delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_for("the deployment gone", T, || {
        sim.get(&keys::DEPLOYMENTS, "default", "orphan")
            .is_none()
            .then_some(())
    })
    .await;
    let rs = sim
        .list(&keys::REPLICASETS, Some("default"))
        .into_iter()
        .find(|r| r["metadata"]["labels"]["app"] == "orphan")
        .expect("orphaned ReplicaSet kept");
    assert!(rs["metadata"].get("ownerReferences").is_none());
    assert_eq!(
        sim.list(&keys::PODS, Some("default"))
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "orphan")
            .count(),
        1
    );

    // Foreground: the owner waits for its dependents.
    let rses: Api<ReplicaSet> = Api::default_namespaced(client);
    rses.delete(
        rs["metadata"]["name"].as_str().unwrap(),
        &DeleteParams::foreground(),
    )
    .await
    .unwrap();
    wait_for("foreground deletion finished", T, || {
        let pods_left = sim
            .list(&keys::PODS, Some("default"))
            .iter()
            .any(|p| p["metadata"]["labels"]["app"] == "orphan");
        (!pods_left && sim.list(&keys::REPLICASETS, Some("default")).is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn jobs_succeed_or_fail() {
    let sim = cluster().await;
    let jobs: Api<Job> = Api::default_namespaced(sim.client().unwrap());
    let job = |name: &str, code: &str| -> Job {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"backoffLimit": 1, "template": {
            "metadata": {"annotations": {"sim.cutover.dev/run-ms": "5", "sim.cutover.dev/exit-code": code}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}))
        .unwrap()
    };
    jobs.create(&PostParams::default(), &job("ok", "0"))
        .await
        .unwrap();
    jobs.create(&PostParams::default(), &job("bad", "1"))
        .await
        .unwrap();
    let cond = |name: &str, t: &str| {
        sim.get(&keys::JOBS, "default", name)
            .and_then(|j| j["status"]["conditions"].as_array().cloned())
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    // The annotation DESIGN 5a names for a Job that fails, on both beds.
    let mut fails = job("fails", "0");
    let annotations = fails
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap()
        .annotations
        .as_mut()
        .unwrap();
    annotations.remove("sim.cutover.dev/exit-code");
    annotations.insert("sim.cutover.dev/job-fails".into(), "true".into());
    jobs.create(&PostParams::default(), &fails).await.unwrap();
    wait_for("ok Complete", T, || cond("ok", "Complete").then_some(())).await;
    wait_for("bad Failed", T, || cond("bad", "Failed").then_some(())).await;
    wait_for("fails Failed", T, || cond("fails", "Failed").then_some(())).await;
    let bad = sim.get(&keys::JOBS, "default", "bad").unwrap();
    assert_eq!(
        bad["status"]["failed"], 2,
        "backoffLimit 1 allows one retry"
    );
    let invalid: Job = serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})).unwrap();
    let err = jobs
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 422),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_reference_to_an_owner_already_gone_is_collected() {
    let sim = cluster().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::default_namespaced(sim.client().unwrap());
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]);
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    // Handed to the owner after it went: collected all the same.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap(),
    )
    .await
    .unwrap();
    let patch = json!({"metadata": {"ownerReferences": owner_ref}});
    cms.patch("late", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // A dependent with another, live, owner stays and loses only the dangling reference.
    let live = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "live"}})).unwrap(),
        )
        .await
        .unwrap();
    let mut refs = owner_ref.as_array().unwrap().clone();
    refs.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "live", "uid": live.metadata.uid.clone().unwrap()}));
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "shared", "ownerReferences": refs}}))
            .unwrap(),
    )
    .await
    .unwrap();
    wait_for("the late dependent collected", T, || {
        sim.get(&keys::CONFIGMAPS, "default", "late")
            .is_none()
            .then_some(())
    })
    .await;
    let shared = wait_for("the dangling reference dropped", T, || {
        sim.get(&keys::CONFIGMAPS, "default", "shared").filter(|c| {
            c["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.len() == 1)
        })
    })
    .await;
    assert_eq!(shared["metadata"]["ownerReferences"][0]["name"], "live");
}

/// The real disruption controller counts a `maxUnavailable` budget's pods by their
/// controllers' scales: an unmanaged pod (no controller) is left out, and a pod whose
/// controller has no scale (here a custom resource) makes the budget fail to sync and allow
/// nothing. Checked against kube-controller-manager on the real control plane bed.
#[tokio::test]
async fn a_max_unavailable_budget_counts_pods_by_their_controllers_scale() {
    let sim = cluster().await;
    let client = sim.client().unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(client.clone());
    deps.create(
        &PostParams::default(),
        &deployment("m", 2, json!({}), json!({})),
    )
    .await
    .unwrap();
    wait_for("rollout", T, || rollout_done(&sim, "m", 2)).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let bare = |name: &str, owner: Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "m"}, "ownerReferences": owner},
            "spec": {"containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap()
    };
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "m"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "m"}}}})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    // The owner of the pods below: it exists (else the garbage collector takes them) and has
    // no scale subresource.
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::default_namespaced(client.clone());
    let owner = configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owner_ref = |controller: bool| {
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner.metadata.uid.clone().unwrap(), "controller": controller}])
    };
    // An unmanaged pod (an owner, but not a controller) is not expected, but counts as healthy.
    pods.create(&PostParams::default(), &bare("unmanaged", owner_ref(false)))
        .await
        .unwrap();
    wait_for(
        "the unmanaged pod left out of the expected count",
        T,
        || {
            let s = sim.get(&keys::PDBS, "default", "m")?["status"].clone();
            (s["expectedPods"] == 2
                && s["currentHealthy"] == 3
                && s["desiredHealthy"] == 1
                && s["disruptionsAllowed"] == 2)
                .then_some(())
        },
    )
    .await;
    // A pod controlled by something without a scale: the budget cannot be computed.
    pods.create(&PostParams::default(), &bare("controlled", owner_ref(true)))
        .await
        .unwrap();
    wait_for("the budget to fail to sync", T, || {
        let s = sim.get(&keys::PDBS, "default", "m")?["status"].clone();
        let condition = s["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "DisruptionAllowed")?
            .clone();
        (s["disruptionsAllowed"] == 0
            && condition["reason"] == "SyncFailed"
            && condition["message"] == "configmaps does not implement the scale subresource")
            .then_some(())
    })
    .await;
    let victim = sim
        .list(&keys::PODS, Some("default"))
        .into_iter()
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("m-"))
        })
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let err = pods
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 429),
        "{err:?}"
    );
}
