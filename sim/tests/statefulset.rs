//! The simulated StatefulSet controller against what the real one does: ordered and parallel
//! creation, rolling updates highest ordinal first one at a time (checked on the recorded
//! history), partitions, OnDelete, pods recreated under their name, scale-down from the top,
//! ControllerRevisions and their history limit, claims and their retention policy, and the
//! endpoints of a headless Service.

mod common;

use common::{cluster, wait_for};
use cutover_sim::{PodBehaviour, PodRule, ReadyAfter, SimCluster, WriteRecord, keys};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const NS: &str = "default";

fn statefulset(name: &str, replicas: i32, extra_spec: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "img:1", "ports": [{"name": "http", "containerPort": 8080}]}]}
        }
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn claim_templates() -> Value {
    json!([{
        "metadata": {"name": "data", "labels": {"tier": "storage"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }])
}

async fn create(sim: &SimCluster, set: StatefulSet) -> Api<StatefulSet> {
    let api: Api<StatefulSet> = Api::default_namespaced(sim.client().unwrap());
    api.create(&PostParams::default(), &set).await.unwrap();
    api
}

fn get_set(sim: &SimCluster, name: &str) -> Value {
    sim.get(&keys::STATEFULSETS, NS, name).unwrap()
}

/// The set once its controller has observed its generation and all its replicas run the update
/// revision, Ready, with the rolling update completed.
fn settled(sim: &SimCluster, name: &str, replicas: i64) -> Option<Value> {
    let s = sim.get(&keys::STATEFULSETS, NS, name)?;
    let st = &s["status"];
    (st["observedGeneration"] == s["metadata"]["generation"]
        && st["replicas"] == replicas
        && (replicas == 0 || st["readyReplicas"] == replicas)
        && (replicas == 0 || st["updatedReplicas"] == replicas)
        && st["currentRevision"] == st["updateRevision"]
        && pods_of(sim, name).len() as i64 == replicas)
        .then_some(s)
}

fn pods_of(sim: &SimCluster, set: &str) -> Vec<Value> {
    let mut pods: Vec<Value> = sim
        .list(&keys::PODS, Some(NS))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == set)
        .collect();
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap().to_string());
    pods
}

fn pod(sim: &SimCluster, name: &str) -> Option<Value> {
    sim.get(&keys::PODS, NS, name)
}

fn revision_of(pod: &Value) -> String {
    pod["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn pod_writes(sim: &SimCluster) -> Vec<WriteRecord> {
    sim.history().writes_of("pods")
}

/// The resourceVersions at which the controller marked pods for deletion, with their names.
fn controller_deletions(sim: &SimCluster) -> Vec<(u64, String)> {
    pod_writes(sim)
        .into_iter()
        .filter(|w| w.verb == "delete" && w.manager == "statefulset-controller")
        .map(|w| (w.rv, w.name))
        .collect()
}

/// The resourceVersion at which a pod (a given incarnation: created after `after`) first was
/// Ready.
fn ready_at(sim: &SimCluster, name: &str, after: u64) -> Option<u64> {
    pod_writes(sim)
        .into_iter()
        .find(|w| w.name == name && w.rv > after && is_ready(&w.object))
        .map(|w| w.rv)
}

fn created_at(sim: &SimCluster, name: &str, after: u64) -> Option<u64> {
    pod_writes(sim)
        .into_iter()
        .find(|w| w.name == name && w.rv > after && w.verb == "create")
        .map(|w| w.rv)
}

async fn set_image(api: &Api<StatefulSet>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
}

fn never_ready() -> PodBehaviour {
    PodBehaviour {
        ready: ReadyAfter::Never,
        crash_loop: false,
    }
}

#[tokio::test]
async fn ordered_ready_creates_each_ordinal_after_the_previous_is_ready() {
    let sim = cluster().await;
    sim.kubelet().add_rule(PodRule::named(
        "web-0",
        PodBehaviour {
            ready: ReadyAfter::After(Duration::from_millis(300)),
            crash_loop: false,
        },
    ));
    create(&sim, statefulset("web", 3, json!({}))).await;
    let set = wait_for("three ready pods", T, || settled(&sim, "web", 3)).await;

    let ready0 = ready_at(&sim, "web-0", 0).unwrap();
    let create1 = created_at(&sim, "web-1", 0).unwrap();
    let ready1 = ready_at(&sim, "web-1", 0).unwrap();
    let create2 = created_at(&sim, "web-2", 0).unwrap();
    assert!(ready0 < create1, "web-1 created before web-0 was Ready");
    assert!(ready1 < create2, "web-2 created before web-1 was Ready");

    // Identity, revision and owner of each pod.
    let update = set["status"]["updateRevision"].as_str().unwrap();
    assert!(update.starts_with("web-"), "{update}");
    assert_eq!(set["status"]["currentRevision"], update);
    for (i, p) in pods_of(&sim, "web").iter().enumerate() {
        let name = format!("web-{i}");
        assert_eq!(p["metadata"]["name"], name);
        assert_eq!(p["spec"]["hostname"], name);
        assert_eq!(p["spec"]["subdomain"], "web");
        assert_eq!(
            p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            name
        );
        assert_eq!(
            p["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            i.to_string()
        );
        assert_eq!(revision_of(p), update);
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "StatefulSet");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["uid"], set["metadata"]["uid"]);
    }
    let revs = sim.list(&keys::CONTROLLERREVISIONS, Some(NS));
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0]["metadata"]["name"], update);
    assert_eq!(revs[0]["revision"], 1);
    assert_eq!(
        revs[0]["data"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "img:1"
    );
    assert_eq!(set["status"]["availableReplicas"], 3);
    assert_eq!(set["status"]["currentReplicas"], 3);
    assert_eq!(set["status"]["collisionCount"], 0);
}

#[tokio::test]
async fn ordered_ready_waits_on_an_unready_pod_and_parallel_does_not() {
    let sim = cluster().await;
    sim.kubelet()
        .add_rule(PodRule::with_label("stuck", "yes", never_ready()));
    let mut ordered = statefulset("ord", 3, json!({}));
    let mut parallel = statefulset("par", 3, json!({"podManagementPolicy": "Parallel"}));
    for s in [&mut ordered, &mut parallel] {
        let t = s.spec.as_mut().unwrap().template.metadata.as_mut().unwrap();
        t.labels
            .as_mut()
            .unwrap()
            .insert("stuck".into(), "yes".into());
    }
    create(&sim, ordered).await;
    create(&sim, parallel).await;
    wait_for("three parallel pods", T, || {
        (pods_of(&sim, "par").len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let names: Vec<String> = pods_of(&sim, "ord")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["ord-0"], "OrderedReady went past an unready pod");
    let s = get_set(&sim, "par");
    assert_eq!(s["status"]["replicas"], 3);
    assert!(s["status"].get("readyReplicas").is_none(), "{s}");
}

#[tokio::test]
async fn a_template_change_rolls_from_the_highest_ordinal_one_pod_at_a_time() {
    let sim = cluster().await;
    let api = create(&sim, statefulset("web", 3, json!({}))).await;
    let before = wait_for("first rollout", T, || settled(&sim, "web", 3)).await;
    let old_rev = before["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_string();
    let start = sim.store().current_rv();

    set_image(&api, "web", "img:2").await;
    let after = wait_for("second rollout", T, || {
        settled(&sim, "web", 3).filter(|s| s["status"]["currentRevision"] != old_rev.as_str())
    })
    .await;
    let new_rev = after["status"]["updateRevision"].as_str().unwrap();
    let deletions: Vec<(u64, String)> = controller_deletions(&sim)
        .into_iter()
        .filter(|(rv, _)| *rv > start)
        .collect();
    let order: Vec<&str> = deletions.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(order, ["web-2", "web-1", "web-0"]);
    // Each deletion waits until the pod replaced before it is back, Ready, at the new revision.
    for pair in deletions.windows(2) {
        let (deleted_at, name) = &pair[0];
        let back_ready = ready_at(&sim, name, *deleted_at).expect("the pod came back Ready");
        assert!(
            back_ready < pair[1].0,
            "{} was deleted before {name} was Ready again",
            pair[1].1
        );
    }
    for p in pods_of(&sim, "web") {
        assert_eq!(revision_of(&p), new_rev);
        assert_eq!(p["spec"]["containers"][0]["image"], "img:2");
    }
    let mut revs: Vec<i64> = sim
        .list(&keys::CONTROLLERREVISIONS, Some(NS))
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    revs.sort();
    assert_eq!(revs, [1, 2]);
    assert_eq!(after["metadata"]["generation"], 2);
    assert_eq!(after["status"]["observedGeneration"], 2);

    // Back to the first template: its revision is reused with the next number.
    set_image(&api, "web", "img:1").await;
    let back = wait_for("the rollback", T, || {
        settled(&sim, "web", 3).filter(|s| s["status"]["currentRevision"] == old_rev.as_str())
    })
    .await;
    let rev = sim.get(&keys::CONTROLLERREVISIONS, NS, &old_rev).unwrap();
    assert_eq!(rev["revision"], 3);
    assert_eq!(back["status"]["updateRevision"], old_rev.as_str());
    assert_eq!(sim.list(&keys::CONTROLLERREVISIONS, Some(NS)).len(), 2);
}

#[tokio::test]
async fn a_partition_updates_only_the_ordinals_at_or_above_it() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset(
            "web",
            3,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
        ),
    )
    .await;
    let before = wait_for("first rollout", T, || settled(&sim, "web", 3)).await;
    let old_rev = before["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_string();
    set_image(&api, "web", "img:2").await;
    let s = wait_for("web-2 updated", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["updatedReplicas"] == 1 && s["status"]["readyReplicas"] == 3).then_some(s)
    })
    .await;
    let new_rev = s["status"]["updateRevision"].as_str().unwrap().to_string();
    assert_ne!(new_rev, old_rev);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let revs: Vec<String> = pods_of(&sim, "web").iter().map(revision_of).collect();
    assert_eq!(revs, [old_rev.clone(), old_rev.clone(), new_rev.clone()]);
    let s = get_set(&sim, "web");
    assert_eq!(s["status"]["currentRevision"], old_rev.as_str());
    assert_eq!(s["status"]["currentReplicas"], 2);

    // A pod below the partition deleted by someone comes back at the current revision.
    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let uid = pod(&sim, "web-0").unwrap()["metadata"]["uid"].clone();
    pods.delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    let p = wait_for("web-0 back", T, || {
        pod(&sim, "web-0").filter(|p| p["metadata"]["uid"] != uid && is_ready(p))
    })
    .await;
    assert_eq!(revision_of(&p), old_rev);
    assert_eq!(p["spec"]["containers"][0]["image"], "img:1");

    // Lowering the partition carries the update on.
    let patch = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let s = wait_for("all updated", T, || {
        settled(&sim, "web", 3).filter(|s| s["status"]["currentRevision"] == new_rev.as_str())
    })
    .await;
    assert_eq!(s["status"]["currentReplicas"], 3);
}

#[tokio::test]
async fn on_delete_changes_only_the_pods_someone_deletes() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset("web", 3, json!({"updateStrategy": {"type": "OnDelete"}})),
    )
    .await;
    let before = wait_for("first rollout", T, || settled(&sim, "web", 3)).await;
    let old_rev = before["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_string();
    set_image(&api, "web", "img:2").await;
    let s = wait_for("the update revision", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["updateRevision"] != old_rev.as_str()
            && s["status"]["observedGeneration"] == 2)
            .then_some(s)
    })
    .await;
    let new_rev = s["status"]["updateRevision"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(controller_deletions(&sim).is_empty());
    let revs: Vec<String> = pods_of(&sim, "web").iter().map(revision_of).collect();
    assert_eq!(revs, [old_rev.clone(), old_rev.clone(), old_rev.clone()]);

    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let p = wait_for("web-1 back", T, || {
        pod(&sim, "web-1").filter(|p| revision_of(p) == new_rev && is_ready(p))
    })
    .await;
    assert_eq!(p["spec"]["containers"][0]["image"], "img:2");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let revs: Vec<String> = pods_of(&sim, "web").iter().map(revision_of).collect();
    assert_eq!(revs, [old_rev.clone(), new_rev.clone(), old_rev.clone()]);
    let s = wait_for("the counts", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["updatedReplicas"] == 1 && s["status"]["readyReplicas"] == 3).then_some(s)
    })
    .await;
    // As in Kubernetes, an OnDelete set's current revision stays while some pods run it...
    assert_eq!(s["status"]["currentRevision"], old_rev.as_str());
    assert_eq!(s["status"]["currentReplicas"], 2);
    // ... and becomes the update revision once every pod runs that and is Ready (Kubernetes
    // 1.37's `completeUpdate`, whatever the strategy).
    for name in ["web-2", "web-0"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
        wait_for("the pod back", T, || {
            pod(&sim, name).filter(|p| revision_of(p) == new_rev && is_ready(p))
        })
        .await;
    }
    wait_for("the update to complete", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["currentRevision"] == new_rev.as_str() && s["status"]["currentReplicas"] == 3)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_or_evicted_pod_comes_back_with_its_name() {
    let sim = cluster().await;
    create(&sim, statefulset("web", 2, json!({}))).await;
    wait_for("rollout", T, || settled(&sim, "web", 2)).await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let uid = pod(&sim, "web-1").unwrap()["metadata"]["uid"].clone();
    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let p = wait_for("web-1 back", T, || {
        pod(&sim, "web-1").filter(|p| p["metadata"]["uid"] != uid && is_ready(p))
    })
    .await;
    assert_eq!(p["spec"]["hostname"], "web-1");
    let uid = pod(&sim, "web-0").unwrap()["metadata"]["uid"].clone();
    pods.evict("web-0", &Default::default()).await.unwrap();
    wait_for("web-0 back", T, || {
        pod(&sim, "web-0").filter(|p| p["metadata"]["uid"] != uid && is_ready(p))
    })
    .await;
    wait_for("settled", T, || settled(&sim, "web", 2)).await;
}

#[tokio::test]
async fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() {
    let sim = cluster().await;
    let api = create(&sim, statefulset("web", 4, json!({}))).await;
    wait_for("rollout", T, || settled(&sim, "web", 4)).await;
    let patch = json!({"spec": {"replicas": 1}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("one pod", T, || settled(&sim, "web", 1)).await;
    let deletions = controller_deletions(&sim);
    let order: Vec<&str> = deletions.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(order, ["web-3", "web-2", "web-1"]);
    // Each goes only once the one before it has gone completely.
    let writes = pod_writes(&sim);
    for pair in deletions.windows(2) {
        let gone = writes
            .iter()
            .find(|w| {
                w.name == pair[0].1
                    && w.rv > pair[0].0
                    && w.manager == "kubelet"
                    && w.verb == "delete"
            })
            .map(|w| w.rv)
            .expect("the pod went");
        assert!(
            gone < pair[1].0,
            "{} deleted while {} terminated",
            pair[1].1,
            pair[0].1
        );
    }
}

#[tokio::test]
async fn revision_history_is_trimmed_to_the_limit() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset("web", 1, json!({"revisionHistoryLimit": 1})),
    )
    .await;
    wait_for("rollout", T, || settled(&sim, "web", 1)).await;
    for image in ["img:2", "img:3", "img:4"] {
        set_image(&api, "web", image).await;
        wait_for("rollout", T, || {
            settled(&sim, "web", 1).filter(|_| {
                pod(&sim, "web-0").is_some_and(|p| p["spec"]["containers"][0]["image"] == image)
            })
        })
        .await;
    }
    let revs = wait_for("history trimmed", T, || {
        let r = sim.list(&keys::CONTROLLERREVISIONS, Some(NS));
        (r.len() == 2).then_some(r)
    })
    .await;
    let mut numbers: Vec<i64> = revs
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, [3, 4]);
}

fn claim(sim: &SimCluster, name: &str) -> Option<Value> {
    sim.get(&keys::PVCS, NS, name)
}

#[tokio::test]
async fn claims_are_made_per_ordinal_and_kept_under_retain() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset("web", 3, json!({"volumeClaimTemplates": claim_templates()})),
    )
    .await;
    wait_for("rollout", T, || settled(&sim, "web", 3)).await;
    let mut uids = Vec::new();
    for i in 0..3 {
        let name = format!("data-web-{i}");
        let c = wait_for("bound", T, || {
            claim(&sim, &name).filter(|c| c["status"]["phase"] == "Bound")
        })
        .await;
        assert_eq!(c["metadata"]["labels"]["tier"], "storage");
        assert_eq!(c["metadata"]["labels"]["app"], "web");
        assert!(
            c["spec"]["volumeName"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
        );
        assert_eq!(c["status"]["capacity"]["storage"], "1Gi");
        assert!(c["metadata"].get("ownerReferences").is_none(), "{c}");
        let p = pod(&sim, &format!("web-{i}")).unwrap();
        let vol = p["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "data")
            .unwrap();
        assert_eq!(vol["persistentVolumeClaim"]["claimName"], name);
        // The claim was there before its pod.
        let claim_created = sim
            .history()
            .writes_of("persistentvolumeclaims")
            .iter()
            .find(|w| w.name == name && w.verb == "create")
            .unwrap()
            .rv;
        assert!(claim_created < created_at(&sim, &format!("web-{i}"), 0).unwrap());
        uids.push(c["metadata"]["uid"].clone());
    }
    set_image(&api, "web", "img:2").await;
    wait_for("update", T, || {
        settled(&sim, "web", 3).filter(|_| {
            pods_of(&sim, "web")
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "img:2")
        })
    })
    .await;
    let patch = json!({"spec": {"replicas": 1}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("scaled down", T, || settled(&sim, "web", 1)).await;
    api.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("pods gone", T, || {
        pods_of(&sim, "web").is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (i, uid) in uids.iter().enumerate() {
        let c = claim(&sim, &format!("data-web-{i}")).expect("a retained claim");
        assert_eq!(&c["metadata"]["uid"], uid);
        assert!(c["metadata"].get("deletionTimestamp").is_none());
    }
}

#[tokio::test]
async fn claims_go_with_scale_down_under_when_scaled_delete() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset(
            "web",
            3,
            json!({
                "volumeClaimTemplates": claim_templates(),
                "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
            }),
        ),
    )
    .await;
    wait_for("rollout", T, || settled(&sim, "web", 3)).await;
    let patch = json!({"spec": {"replicas": 1}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("scaled down", T, || settled(&sim, "web", 1)).await;
    wait_for("claims of the condemned gone", T, || {
        (claim(&sim, "data-web-1").is_none() && claim(&sim, "data-web-2").is_none()).then_some(())
    })
    .await;
    let kept = claim(&sim, "data-web-0").unwrap();
    assert!(kept["metadata"].get("ownerReferences").is_none(), "{kept}");
    // The set deleted: whenDeleted is Retain, so the last claim stays.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("pods gone", T, || {
        pods_of(&sim, "web").is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(claim(&sim, "data-web-0").is_some());
}

#[tokio::test]
async fn claims_go_with_the_set_under_when_deleted_delete() {
    let sim = cluster().await;
    let api = create(
        &sim,
        statefulset(
            "web",
            2,
            json!({
                "volumeClaimTemplates": claim_templates(),
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
            }),
        ),
    )
    .await;
    // A claim the set does not own, of the same labels, must stay.
    let own: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data-other", "labels": {"app": "web"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    Api::default_namespaced(sim.client().unwrap())
        .create(&PostParams::default(), &own)
        .await
        .unwrap();
    let set = wait_for("rollout", T, || settled(&sim, "web", 2)).await;
    let c = claim(&sim, "data-web-0").unwrap();
    assert_eq!(
        c["metadata"]["ownerReferences"][0]["uid"],
        set["metadata"]["uid"]
    );
    // Scaling down keeps the claim (whenScaled is Retain).
    let patch = json!({"spec": {"replicas": 1}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("scaled down", T, || settled(&sim, "web", 1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(claim(&sim, "data-web-1").is_some());
    api.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for("claims and pods gone", T, || {
        (claim(&sim, "data-web-0").is_none()
            && claim(&sim, "data-web-1").is_none()
            && pods_of(&sim, "web").is_empty())
        .then_some(())
    })
    .await;
    assert!(claim(&sim, "data-other").is_some());
    assert!(sim.list(&keys::CONTROLLERREVISIONS, Some(NS)).is_empty());
}

#[tokio::test]
async fn a_headless_service_publishes_not_ready_pods_with_their_hostnames() {
    let sim = cluster().await;
    sim.kubelet()
        .add_rule(PodRule::with_label("app", "db", never_ready()));
    let svcs: Api<Service> = Api::default_namespaced(sim.client().unwrap());
    for (name, headless) in [("db", true), ("db-client", false)] {
        let mut spec =
            json!({"selector": {"app": "db"}, "ports": [{"port": 8080, "targetPort": "http"}]});
        if headless {
            spec["clusterIP"] = json!("None");
            spec["publishNotReadyAddresses"] = json!(true);
        }
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        svcs.create(&PostParams::default(), &svc).await.unwrap();
    }
    assert_eq!(
        sim.get(&keys::SERVICES, NS, "db").unwrap()["spec"]["clusterIP"],
        "None"
    );
    create(
        &sim,
        statefulset("db", 2, json!({"podManagementPolicy": "Parallel"})),
    )
    .await;
    let slices = |svc: &str| {
        sim.list(&keys::ENDPOINTSLICES, Some(NS))
            .into_iter()
            .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == svc)
    };
    let headless = wait_for("two endpoints", T, || {
        slices("db").filter(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 2))
    })
    .await;
    let mut hostnames = Vec::new();
    for e in headless["endpoints"].as_array().unwrap() {
        assert_eq!(e["conditions"]["ready"], true, "{e}");
        assert_eq!(e["conditions"]["serving"], true, "{e}");
        assert_eq!(e["targetRef"]["kind"], "Pod");
        assert_eq!(e["hostname"], e["targetRef"]["name"]);
        hostnames.push(e["hostname"].as_str().unwrap().to_string());
    }
    hostnames.sort();
    assert_eq!(hostnames, ["db-0", "db-1"]);
    let plain = wait_for("two endpoints", T, || {
        slices("db-client").filter(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 2))
    })
    .await;
    for e in plain["endpoints"].as_array().unwrap() {
        assert_eq!(e["conditions"]["ready"], false, "{e}");
        assert!(
            e.get("hostname").is_none(),
            "the subdomain is another Service: {e}"
        );
    }
    let ready = sim.history().ready_counts(NS, "db");
    assert_eq!(ready.last(), Some(&2));
    assert!(
        sim.history()
            .ready_counts(NS, "db-client")
            .iter()
            .all(|n| *n == 0)
    );
}

#[tokio::test]
async fn min_ready_seconds_holds_the_next_ordinal_and_the_available_count() {
    let sim = cluster().await;
    create(&sim, statefulset("web", 2, json!({"minReadySeconds": 1}))).await;
    let s = wait_for("web-0 ready", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["readyReplicas"] == 1).then_some(s)
    })
    .await;
    assert_eq!(s["status"]["availableReplicas"], 0);
    assert!(
        pod(&sim, "web-1").is_none(),
        "web-1 before web-0 was available"
    );
    let s = wait_for("both available", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["availableReplicas"] == 2).then_some(s)
    })
    .await;
    let ready0 = ready_at(&sim, "web-0", 0).unwrap();
    let w = pod_writes(&sim);
    let t_ready = w.iter().find(|w| w.rv == ready0).unwrap().time;
    let t_create = w
        .iter()
        .find(|w| w.name == "web-1" && w.verb == "create")
        .unwrap()
        .time;
    assert!(
        t_create.duration_since(t_ready).as_millis() >= 990,
        "web-1 created {:?} after web-0 was Ready",
        t_create.duration_since(t_ready)
    );
    assert_eq!(s["status"]["replicas"], 2);
}

#[tokio::test]
async fn immutable_fields_are_refused_and_defaults_are_set() {
    let sim = cluster().await;
    let api = create(&sim, statefulset("web", 1, json!({}))).await;
    let s = get_set(&sim, "web");
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(s["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(s["spec"]["updateStrategy"]["rollingUpdate"]["partition"], 0);
    assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let patch = json!({"spec": {"serviceName": "other"}});
    let err = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 422);
            assert!(
                e.message.contains("updates to statefulset spec"),
                "{}",
                e.message
            );
        }
        other => panic!("{other}"),
    }
    let patch = json!({"spec": {"replicas": 2, "minReadySeconds": 0}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_set_deleted_with_orphans_and_made_again_adopts_its_pods() {
    let sim = cluster().await;
    let spec = json!({"volumeClaimTemplates": claim_templates()});
    let api = create(&sim, statefulset("web", 2, spec.clone())).await;
    let first = wait_for("rollout", T, || settled(&sim, "web", 2)).await;
    let uids: Vec<Value> = pods_of(&sim, "web")
        .iter()
        .map(|p| p["metadata"]["uid"].clone())
        .collect();
    api.delete("web", &DeleteParams::orphan()).await.unwrap();
    wait_for("the set gone", T, || {
        sim.get(&keys::STATEFULSETS, NS, "web")
            .is_none()
            .then_some(())
    })
    .await;
    for p in pods_of(&sim, "web") {
        assert!(p["metadata"].get("ownerReferences").is_none(), "{p}");
    }
    create(&sim, statefulset("web", 2, spec)).await;
    let again = wait_for("adopted", T, || {
        settled(&sim, "web", 2).filter(|s| s["metadata"]["uid"] != first["metadata"]["uid"])
    })
    .await;
    let pods = pods_of(&sim, "web");
    let now: Vec<Value> = pods.iter().map(|p| p["metadata"]["uid"].clone()).collect();
    assert_eq!(now, uids, "the pods were replaced instead of adopted");
    for p in &pods {
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["uid"],
            again["metadata"]["uid"]
        );
    }
    assert_eq!(
        again["status"]["updateRevision"],
        first["status"]["updateRevision"]
    );
    let revs = sim.list(&keys::CONTROLLERREVISIONS, Some(NS));
    assert_eq!(revs.len(), 1);
    assert_eq!(
        revs[0]["metadata"]["ownerReferences"][0]["uid"],
        again["metadata"]["uid"]
    );
    let events: Vec<String> = sim
        .list(&keys::EVENTS, Some(NS))
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        events.contains(&"create Pod web-0 in StatefulSet web successful".to_string()),
        "{events:?}"
    );
    assert!(
        events
            .contains(&"create Claim data-web-1 Pod web-1 in StatefulSet web success".to_string()),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|m| m.starts_with("create Pod"))
            .count(),
        2,
        "{events:?}"
    );
}

#[tokio::test]
async fn ordered_ready_touches_nothing_while_a_pod_is_unhealthy() {
    let sim = cluster().await;
    let api = create(&sim, statefulset("web", 3, json!({}))).await;
    let first = wait_for("rollout", T, || settled(&sim, "web", 3)).await;
    let old_rev = first["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_string();
    sim.kubelet().set_pod_ready(NS, "web-0", false);
    wait_for("web-0 unready", T, || {
        (get_set(&sim, "web")["status"]["readyReplicas"] == 2).then_some(())
    })
    .await;
    set_image(&api, "web", "img:2").await;
    let patch = json!({"spec": {"replicas": 4}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("the update revision", T, || {
        let s = get_set(&sim, "web");
        (s["status"]["updateRevision"] != old_rev.as_str()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(controller_deletions(&sim).is_empty(), "a pod was updated");
    assert!(
        pod(&sim, "web-3").is_none(),
        "scaled up past an unready pod"
    );

    sim.kubelet().clear_pod_override(NS, "web-0");
    wait_for("the rollout", T, || {
        settled(&sim, "web", 4).filter(|s| s["status"]["currentRevision"] != old_rev.as_str())
    })
    .await;
    // Scaling comes before the update: web-3 is made (at the update revision) first.
    let created3 = created_at(&sim, "web-3", 0).unwrap();
    let first_delete = controller_deletions(&sim)[0].clone();
    assert!(created3 < first_delete.0);
    assert_eq!(first_delete.1, "web-2");
}

#[tokio::test]
async fn parallel_scale_down_removes_the_condemned_together() {
    let sim = cluster().await;
    sim.kubelet().set_grace_period(Duration::from_millis(300));
    let api = create(
        &sim,
        statefulset("web", 4, json!({"podManagementPolicy": "Parallel"})),
    )
    .await;
    wait_for("rollout", T, || settled(&sim, "web", 4)).await;
    let patch = json!({"spec": {"replicas": 1}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("one pod", T, || settled(&sim, "web", 1)).await;
    let mut deleted: Vec<String> = controller_deletions(&sim)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["web-1", "web-2", "web-3"]);
    let last_mark = controller_deletions(&sim)
        .iter()
        .map(|d| d.0)
        .max()
        .unwrap();
    let first_gone = pod_writes(&sim)
        .iter()
        .filter(|w| w.manager == "kubelet" && w.verb == "delete")
        .map(|w| w.rv)
        .min()
        .unwrap();
    assert!(last_mark < first_gone, "Parallel waited for a pod to go");
}

#[tokio::test]
async fn a_start_ordinal_shifts_pod_and_claim_names() {
    let sim = cluster().await;
    create(
        &sim,
        statefulset(
            "web",
            2,
            json!({"ordinals": {"start": 5}, "volumeClaimTemplates": claim_templates()}),
        ),
    )
    .await;
    wait_for("rollout", T, || settled(&sim, "web", 2)).await;
    let names: Vec<String> = pods_of(&sim, "web")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["web-5", "web-6"]);
    assert_eq!(
        pod(&sim, "web-6").unwrap()["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "6"
    );
    assert!(claim(&sim, "data-web-5").is_some() && claim(&sim, "data-web-6").is_some());
    assert!(claim(&sim, "data-web-0").is_none());
}

#[tokio::test]
async fn a_rolling_update_holds_each_replacement_for_min_ready_seconds() {
    let sim = cluster().await;
    let api = create(&sim, statefulset("web", 2, json!({"minReadySeconds": 1}))).await;
    let first = wait_for("rollout", T, || {
        settled(&sim, "web", 2).filter(|s| s["status"]["availableReplicas"] == 2)
    })
    .await;
    let old_rev = first["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_string();
    set_image(&api, "web", "img:2").await;
    wait_for("the update", T, || {
        settled(&sim, "web", 2).filter(|s| s["status"]["currentRevision"] != old_rev.as_str())
    })
    .await;
    let deletions = controller_deletions(&sim);
    assert_eq!(deletions.len(), 2);
    assert_eq!(deletions[0].1, "web-1");
    let writes = pod_writes(&sim);
    let time_of = |rv: u64| writes.iter().find(|w| w.rv == rv).unwrap().time;
    let ready = ready_at(&sim, "web-1", deletions[0].0).unwrap();
    let held = time_of(deletions[1].0).duration_since(time_of(ready));
    assert!(
        held.as_millis() >= 990,
        "web-0 went {held:?} after web-1 was Ready"
    );
}
