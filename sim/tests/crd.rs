//! CustomResourceDefinitions through the kube client: serving a new type, schema defaults,
//! pruning, validation (types, enums, CEL rules with oldSelf), the status subresource,
//! discovery and the server-side Table with printer columns.

mod common;

use common::bare;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;

pub fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"], "categories": ["toys"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["owner"],
                            "x-kubernetes-validations": [{"rule": "self.owner == oldSelf.owner", "message": "owner is immutable"}],
                            "properties": {
                                "owner": {"type": "string"},
                                "size": {"type": "integer", "default": 3, "x-kubernetes-validations": [{"rule": "self <= 10", "message": "size must be at most 10"}]},
                                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                                "limits": {"type": "object", "default": {}, "properties": {"max": {"type": "integer", "default": 5}}}
                            }
                        },
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                        }}
                    }
                }}
            }]
        }
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn custom_resources_with_defaults_validation_and_status() {
    let sim = bare().await;
    let client = sim.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "example.com",
            "v1",
            "Widget",
        ))
        .expect("the new type is discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));

    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"owner": "me", "junk": true}})).unwrap();
    let w = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(
        w.data["spec"],
        json!({"owner": "me", "size": 3, "color": "red", "limits": {"max": 5}}),
        "defaults applied, unknown fields pruned"
    );
    assert_eq!(w.metadata.generation, Some(1));

    // Validation: enum, required, CEL rule, CEL transition rule.
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"color": "green", "size": 11}})).unwrap();
    let e = api_err(
        widgets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("spec.owner: Required value")
            && e.message.contains("Unsupported value: \"green\""),
        "{}",
        e.message
    );
    let too_big: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "big"}, "spec": {"owner": "x", "size": 11}})).unwrap();
    let e = api_err(
        widgets
            .create(&PostParams::default(), &too_big)
            .await
            .unwrap_err(),
    );
    assert!(
        e.message.contains("size must be at most 10"),
        "{}",
        e.message
    );
    let e = api_err(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"owner": "you"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("owner is immutable"), "{}", e.message);

    // Status subresource: separate from spec; generation follows spec only.
    let st = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"size": 9}});
    let w = widgets
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .unwrap();
    assert_eq!(w.data["status"]["phase"], "Running");
    assert_eq!(w.data["spec"]["size"], 3);
    assert_eq!(w.metadata.generation, Some(1));
    let w = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"phase": "X"}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    assert_eq!(w.data["status"]["phase"], "Running");

    // Server-side apply of the status by one field manager.
    let applied = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "status": {"phase": "Done"}});
    let w = widgets
        .patch_status(
            "w1",
            &PatchParams::apply("operator").force(),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap();
    assert_eq!(w.data["status"]["phase"], "Done");
    assert_eq!(w.data["spec"]["size"], 4);
    // The apply's managed fields are recorded for the status subresource, so a later apply
    // that leaves out a condition removes it (kstatus: Reconciling goes once a plan is done).
    let conditions = |types: &[&str]| {
        let list: Vec<serde_json::Value> = types
            .iter()
            .map(|t| json!({"type": t, "status": "True"}))
            .collect();
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
               "status": {"phase": "Done", "conditions": list}})
    };
    for types in [&["Ready", "Reconciling"][..], &["Ready"][..]] {
        widgets
            .patch_status(
                "w1",
                &PatchParams::apply("operator").force(),
                &Patch::Apply(&conditions(types)),
            )
            .await
            .unwrap();
    }
    let w = widgets.get("w1").await.unwrap();
    let types: Vec<&str> = w.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Ready"],
        "the condition the manager stopped applying is gone"
    );
    let entry = w
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some("operator"))
        .expect("the apply's managed fields are recorded");
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(entry.subresource.as_deref(), Some("status"));

    // The Table kubectl asks for carries the printer columns.
    let req = axum::http::Request::get("/apis/example.com/v1/namespaces/default/widgets")
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value = client.request(req).await.unwrap();
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Size", "Phase", "Ready", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "w1");
    assert_eq!(cells[1], 4);
    assert_eq!(cells[2], "Done");
    assert_eq!(cells[3], "True");

    // Deleting the CRD removes the type and its objects.
    crds.delete("widgets.example.com", &Default::default())
        .await
        .unwrap();
    assert!(
        sim.store()
            .registry()
            .lookup("example.com", "v1", "widgets")
            .is_none()
    );
    let e = api_err(widgets.get("w1").await.unwrap_err());
    assert_eq!(e.code, 404);
}
