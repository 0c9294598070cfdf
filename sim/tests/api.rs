//! The kube client against the simulated API server: CRUD on several kinds, selectors,
//! conflicts, every patch type (with atomic fields in server-side apply), status subresource
//! semantics, finalizers, watches (and their 410 Expired past the window), list paging with
//! `limit` and `continue`, and pod field selectors.

mod common;

use common::{bare, wait_for};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "img:1"}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn crud_on_several_kinds() {
    let sim = bare().await;
    let client = sim.client().unwrap();

    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let ns = nss.get("team").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let created = cms
        .create(
            &PostParams::default(),
            &cm("a", json!({"app": "x", "tier": "front"})),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    cms.create(&PostParams::default(), &cm("b", json!({"app": "y"})))
        .await
        .unwrap();
    let dup = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref e) if e.code == 409 && e.reason == "AlreadyExists"),
        "{dup:?}"
    );

    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app in (x,z),tier"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app notin (x)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );

    let mut a = cms.get("a").await.unwrap();
    a.data.as_mut().unwrap().insert("k".into(), "w".into());
    let replaced = cms.replace("a", &PostParams::default(), &a).await.unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "w");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "team");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}})).unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    assert_eq!(
        leases
            .get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("me")
    );

    let svcs: Api<Service> = Api::namespaced(client.clone(), "team");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})).unwrap();
    let svc = svcs.create(&PostParams::default(), &svc).await.unwrap();
    let spec = svc.spec.unwrap();
    assert!(spec.cluster_ip.unwrap().starts_with("10.96."));
    assert_eq!(spec.ports.unwrap()[0].protocol.as_deref(), Some("TCP"));

    let gen_named: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let g = cms
        .create(&PostParams::default(), &gen_named)
        .await
        .unwrap();
    assert!(g.metadata.name.unwrap().starts_with("gen-"));

    cms.delete("b", &DeleteParams::default()).await.unwrap();
    let missing = cms.get("b").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref e) if e.code == 404 && e.reason == "NotFound"),
        "{missing:?}"
    );

    let nowhere: Api<ConfigMap> = Api::namespaced(client, "nope");
    let err = nowhere
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn stale_update_conflicts() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    cms.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    let first = cms.get("c").await.unwrap();
    let mut second = first.clone();
    second.data = Some([("k".to_string(), "1".to_string())].into());
    cms.replace("c", &PostParams::default(), &second)
        .await
        .unwrap();
    let mut stale = first;
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let err = cms
        .replace("c", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409 && e.reason == "Conflict"),
        "{err:?}"
    );
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "1");

    // A server-side apply that names a resourceVersion makes it a precondition, even when
    // forced: a sync tool that read the object before someone else wrote it cannot put its
    // stale values back.
    let stale_rv = second_rv(&cms).await;
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "3"}})),
    )
    .await
    .unwrap();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "resourceVersion": stale_rv}, "data": {"k": "4"}});
    let err = cms
        .patch(
            "c",
            &PatchParams::apply("tool").force(),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409 && e.reason == "Conflict"),
        "{err:?}"
    );
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "3");
    let current = second_rv(&cms).await;
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "resourceVersion": current}, "data": {"k": "4"}});
    cms.patch(
        "c",
        &PatchParams::apply("tool").force(),
        &Patch::Apply(&applied),
    )
    .await
    .unwrap();
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "4");
}

async fn second_rv(cms: &Api<ConfigMap>) -> String {
    cms.get("c")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

#[tokio::test]
async fn every_patch_type() {
    let sim = bare().await;
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    deps.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();

    let merge = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 3}});
    let d = deps
        .patch("web", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(d.metadata.labels.unwrap()["a"], "1");

    let ops: json_patch_ops::Ops = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}
    ]))
    .unwrap();
    let d = deps
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(ops.0))
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(4));

    let bad: json_patch_ops::Ops =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 9}]))
            .unwrap();
    let err = deps
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(bad.0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 422),
        "{err:?}"
    );

    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "img:2", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "side:1"}
    ]}}}});
    let d = deps
        .patch("web", &PatchParams::default(), &Patch::Strategic(&smp))
        .await
        .unwrap();
    let containers = d.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("img:2"));
    assert_eq!(containers[0].env.as_ref().unwrap()[0].name, "A");

    // Server-side apply: a field the manager stops applying goes away.
    let pp = PatchParams::apply("tester").force();
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"owned": "yes", "b": "2"}}});
    let d = deps
        .patch("web", &pp, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(d.metadata.labels.as_ref().unwrap()["b"], "2");
    assert!(
        d.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("tester")
                && m.operation.as_deref() == Some("Apply"))
    );
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"owned": "yes"}}});
    let d = deps
        .patch("web", &pp, &Patch::Apply(&applied))
        .await
        .unwrap();
    let labels = d.metadata.labels.unwrap();
    assert!(!labels.contains_key("b"));
    assert_eq!(labels["a"], "1", "fields of other managers stay");

    // Apply creates a missing object.
    let fresh = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh"}, "data": {"x": "1"}});
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let c = cms
        .patch("fresh", &pp, &Patch::Apply(&fresh))
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["x"], "1");
}

#[tokio::test]
async fn apply_treats_a_service_selector_as_atomic() {
    let sim = bare().await;
    let svcs: Api<Service> = Api::default_namespaced(sim.client().unwrap());
    let applied = |selector: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": selector, "ports": [{"port": 80}]}})
    };
    let gitops = PatchParams::apply("gitops");
    svcs.patch(
        "web",
        &gitops,
        &Patch::Apply(&applied(json!({"app": "web"}))),
    )
    .await
    .unwrap();
    // Another manager pins the selector with an update.
    let pin = json!({"spec": {"selector": {"pod-template-hash": "h"}}});
    let operator = PatchParams {
        field_manager: Some("operator".into()),
        ..PatchParams::default()
    };
    let s = svcs
        .patch("web", &operator, &Patch::Merge(&pin))
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().selector.unwrap().len(), 2);
    // Applying the old selector again conflicts with the manager that changed it...
    let err = svcs
        .patch(
            "web",
            &gitops,
            &Patch::Apply(&applied(json!({"app": "web"}))),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
            assert!(
                e.message.contains(r#"conflict with "operator""#),
                "{}",
                e.message
            );
            assert!(e.message.contains(".spec.selector"), "{}", e.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // ...and forced, it replaces the whole map and takes it over.
    let s = svcs
        .patch(
            "web",
            &gitops.clone().force(),
            &Patch::Apply(&applied(json!({"app": "web"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(s.spec.unwrap().selector).unwrap(),
        json!({"app": "web"})
    );
    let owners: Vec<_> = s
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:selector").is_some())
        })
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert_eq!(owners, vec![("gitops".to_string(), "Apply".to_string())]);
}

/// JSON patch operations, parsed through the kube re-export.
mod json_patch_ops {
    #[derive(serde::Deserialize)]
    pub struct Ops(pub json_patch::Patch);
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let sim = bare().await;
    let deps: Api<Deployment> = Api::default_namespaced(sim.client().unwrap());
    let d = deps
        .create(&PostParams::default(), &deployment("s"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));

    let st = json!({"status": {"replicas": 7}, "spec": {"replicas": 9}});
    let d = deps
        .patch_status("s", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().replicas, Some(7));
    assert_eq!(
        d.spec.unwrap().replicas,
        Some(2),
        "a status write ignores spec"
    );
    assert_eq!(d.metadata.generation, Some(1));

    let main = json!({"status": {"replicas": 1}, "metadata": {"labels": {"x": "y"}}});
    let d = deps
        .patch("s", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    assert_eq!(
        d.status.unwrap().replicas,
        Some(7),
        "a main write ignores status"
    );
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );

    let d = deps
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));

    let before = d.metadata.resource_version.clone();
    let d = deps
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.resource_version, before,
        "a write that changes nothing is not stored"
    );

    let bad = json!({"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}});
    let err = deps
        .patch("s", &PatchParams::default(), &Patch::Merge(&bad))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 422),
        "{err:?}"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let mut c = cm("held", json!({}));
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &c).await.unwrap();
    let res = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let still = res.left().expect("the object is still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let err = cms.get("held").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 404),
        "{err:?}"
    );
}

#[tokio::test]
async fn watch_from_resource_version_and_gone() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let first = cms
        .create(&PostParams::default(), &cm("w1", json!({"app": "w"})))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("w2", json!({"app": "w"})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("other", json!({"app": "o"})))
        .await
        .unwrap();

    // Resume after w1: w2 arrives (replayed), `other` is filtered out by the selector.
    let wp = WatchParams::default().labels("app=w").timeout(5);
    let mut stream = cms.watch(&wp, &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(c) => assert_eq!(c.metadata.name.as_deref(), Some("w2")),
        other => panic!("unexpected {other:?}"),
    }
    cms.delete("w1", &DeleteParams::default()).await.unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(c) => assert_eq!(c.metadata.name.as_deref(), Some("w1")),
        other => panic!("unexpected {other:?}"),
    }

    // After compaction, an old resourceVersion yields a 410 ERROR event.
    sim.compact();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() {
    let sim = cutover_sim::SimCluster::start(cutover_sim::SimOptions {
        controllers: false,
        bookmark_interval: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let rv = sim.store().current_rv().to_string();
    let mut stream = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_recovers_from_dropped_streams_and_compaction() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(
        std::collections::BTreeSet::<String>::new(),
    ));
    let seen2 = seen.clone();
    let api = cms.clone();
    let task = tokio::spawn(async move {
        let cfg = watcher::Config::default().timeout(5);
        let mut s = watcher(api, cfg).boxed();
        while let Some(ev) = s.next().await {
            if let Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) = ev {
                seen2.lock().unwrap().insert(c.metadata.name.unwrap());
            }
        }
    });
    cms.create(&PostParams::default(), &cm("r1", json!({})))
        .await
        .unwrap();
    wait_for("r1 seen", Duration::from_secs(5), || {
        seen.lock().unwrap().contains("r1").then_some(())
    })
    .await;
    sim.compact();
    wait_for("the watch to be open", Duration::from_secs(5), || {
        (sim.store().watch_count() > 0).then_some(())
    })
    .await;
    assert!(sim.drop_watches(None) > 0);
    cms.create(&PostParams::default(), &cm("r2", json!({})))
        .await
        .unwrap();
    wait_for(
        "r2 seen after the stream was cut",
        Duration::from_secs(10),
        || seen.lock().unwrap().contains("r2").then_some(()),
    )
    .await;
    task.abort();
}

#[tokio::test]
async fn events_written_through_events_k8s_io_are_listed_as_core_events() {
    use k8s_openapi::api::core::v1::{Event, ObjectReference};
    use kube::runtime::events::{Event as NewEvent, EventType, Recorder, Reporter};
    let sim = bare().await;
    let client = sim.client().unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let c = cms
        .create(&PostParams::default(), &cm("subject", json!({})))
        .await
        .unwrap();
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: c.metadata.name.clone(),
        namespace: Some("default".into()),
        uid: c.metadata.uid.clone(),
        ..Default::default()
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "cutover".into(),
            instance: Some("test".into()),
        },
    );
    let ev = NewEvent {
        type_: EventType::Normal,
        reason: "PhaseChanged".into(),
        note: Some("now Progressing".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();

    let core: Api<Event> = Api::default_namespaced(client);
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=subject"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "a repeated event is one series");
    let e = &listed.items[0];
    assert_eq!(e.reason.as_deref(), Some("PhaseChanged"));
    assert_eq!(e.message.as_deref(), Some("now Progressing"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("ConfigMap"));
}

#[tokio::test]
async fn watch_selection_metadata_and_deletecollection() {
    use kube::core::PartialObjectMeta;
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    cms.create(&PostParams::default(), &cm("m1", json!({"team": "a"})))
        .await
        .unwrap();
    let rv = sim.store().current_rv().to_string();

    // An object that starts matching the selector arrives as ADDED, one that stops as DELETED.
    let mut stream = cms
        .watch(&WatchParams::default().labels("team=b").timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "m1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    cms.patch(
        "m1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"team": "c"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Deleted(_)
    ));

    // Metadata-only reads.
    let meta: PartialObjectMeta<ConfigMap> = cms.get_metadata("m1").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["team"], "c");
    assert_eq!(
        cms.list_metadata(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Streaming list: the initial objects, then a bookmark marking their end.
    let wp = WatchParams::default().initial_events().timeout(5);
    let mut stream = cms.watch(&wp, "").await.unwrap().boxed();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("unexpected {other:?}"),
    }

    cms.create(&PostParams::default(), &cm("m2", json!({"team": "c"})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("m3", json!({"team": "d"})))
        .await
        .unwrap();
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("team=c"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["m3"]);
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_on_one_snapshot() {
    let sim = bare().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    for n in ["p1", "p2", "p3", "p4", "p5"] {
        cms.create(&PostParams::default(), &cm(n, json!({"page": "yes"})))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first), ["p1", "p2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rv = first.metadata.resource_version.clone().unwrap();

    // Changes after the first page do not show in the next ones: they read its snapshot.
    cms.delete("p3", &DeleteParams::default()).await.unwrap();
    cms.create(&PostParams::default(), &cm("p35", json!({"page": "yes"})))
        .await
        .unwrap();
    let patch = json!({"data": {"k": "changed"}});
    cms.patch("p4", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&second), ["p3", "p4"]);
    assert_eq!(second.items[1].data.as_ref().unwrap()["k"], "v");
    assert_eq!(
        second.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    // A list at the exact resourceVersion of the first page reads the same snapshot.
    let exact = cms
        .list(
            &ListParams::default()
                .at(&rv)
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(names(&exact), ["p1", "p2", "p3", "p4", "p5"]);
    let token = second.metadata.continue_.clone().unwrap();
    let third = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&third), ["p5"]);
    assert!(third.metadata.continue_.is_none());

    // With a selector the pages hold matching objects only, and the count is not given.
    cms.create(&PostParams::default(), &cm("p0", json!({"page": "no"})))
        .await
        .unwrap();
    let sel = cms
        .list(&ListParams::default().labels("page=yes").limit(3))
        .await
        .unwrap();
    assert_eq!(names(&sel), ["p1", "p2", "p35"]);
    assert!(sel.metadata.remaining_item_count.is_none());
    assert!(sel.metadata.continue_.is_some());

    // A token older than the window of remembered changes: 410 Expired.
    sim.compact();
    cms.create(&PostParams::default(), &cm("p9", json!({})))
        .await
        .unwrap();
    let err = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
        }
        other => panic!("{other}"),
    }
    let err = cms
        .list(&ListParams::default().continue_token("garbage"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 400),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_watch_older_than_the_window_gets_410_expired() {
    let sim = cutover_sim::SimCluster::start(cutover_sim::SimOptions {
        controllers: false,
        watch_window: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sim.client().unwrap());
    let first = cms
        .create(&PostParams::default(), &cm("o0", json!({})))
        .await
        .unwrap();
    let old = first.metadata.resource_version.unwrap();
    // Within the window the watch resumes.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("o1", json!({})))
        .await
        .unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    for i in 2..10 {
        cms.create(&PostParams::default(), &cm(&format!("o{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A list is not affected, and a watch from its resourceVersion works.
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 10);
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    cms.delete("o0", &DeleteParams::default()).await.unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Deleted(_)
    ));
}

#[tokio::test]
async fn pods_are_selected_by_node_phase_name_and_namespace() {
    let sim = common::cluster().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client().unwrap());
    let pod = |name: &str, restart: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "containers": [{"name": "m", "image": "i:1"}]}
        }))
        .unwrap()
    };
    // A watch of finished pods sees the run-to-completion pod enter the selection.
    let mut finished = pods
        .watch(
            &WatchParams::default()
                .fields("status.phase=Succeeded")
                .timeout(10),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    for n in ["f1", "f2", "f3", "f4"] {
        pods.create(&PostParams::default(), &pod(n, "Always"))
            .await
            .unwrap();
    }
    pods.create(&PostParams::default(), &pod("done", "Never"))
        .await
        .unwrap();
    match finished.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(p) => assert_eq!(p.metadata.name.as_deref(), Some("done")),
        other => panic!("unexpected {other:?}"),
    }
    let all = wait_for("pods placed and running", Duration::from_secs(10), || {
        let all = sim.list(&cutover_sim::keys::PODS, Some("default"));
        all.iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count()
            .eq(&4)
            .then_some(all)
    })
    .await;
    let listed = |fields: &str| {
        let pods = pods.clone();
        let fields = fields.to_string();
        async move {
            let mut n: Vec<String> = pods
                .list(&ListParams::default().fields(&fields))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|p| p.metadata.name.unwrap())
                .collect();
            n.sort();
            n
        }
    };
    let mut nodes: Vec<&str> = all
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert!(nodes.len() > 1, "the pods sit on one node: {nodes:?}");
    for node in nodes {
        let mut want: Vec<String> = all
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        want.sort();
        let sel = format!("spec.nodeName={node}");
        assert_eq!(listed(&sel).await, want, "{sel}");
    }
    assert_eq!(
        listed("status.phase=Running").await,
        ["f1", "f2", "f3", "f4"]
    );
    assert_eq!(listed("status.phase=Succeeded").await, ["done"]);
    assert_eq!(listed("status.phase!=Running").await, ["done"]);
    assert_eq!(listed("metadata.name=f2").await, ["f2"]);
    assert_eq!(
        listed("metadata.namespace=default,status.phase=Running,metadata.name!=f1").await,
        ["f2", "f3", "f4"]
    );
    assert!(listed("metadata.namespace=other").await.is_empty());
    let err = pods
        .list(&ListParams::default().fields("spec.containers=x"))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 400);
            assert!(
                e.message.contains("field label not supported"),
                "{}",
                e.message
            );
        }
        other => panic!("{other}"),
    }
}
