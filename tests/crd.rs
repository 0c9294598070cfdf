//! The checked-in CRD is exactly what `cutover crd` prints, and it carries the parts of the
//! contract that live only in the schema (names, printer columns, defaults, CEL rules).

use cutover::crd::crd_yaml;

fn checked_in(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}; regenerate it with `cargo run -- crd > {path}`"))
}

#[test]
fn crds_dir_matches_generator() {
    assert!(
        checked_in("crds/maintenanceplan.yaml") == crd_yaml(),
        "crds/maintenanceplan.yaml is stale; regenerate it with `cargo run -- crd > crds/maintenanceplan.yaml`"
    );
}

fn crd() -> serde_json::Value {
    serde_yaml_ng::from_str(&crd_yaml()).unwrap()
}

#[test]
fn names_columns_and_subresources() {
    let crd = crd();
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "cutover.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "MaintenancePlan");
    assert_eq!(spec["names"]["plural"], "maintenanceplans");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["mp"]));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<(String, String, i64)> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_uppercase(),
                c["jsonPath"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    // What `kubectl get mp` shows, then what `-o wide` adds.
    let expected = [
        ("TARGET", ".spec.target.name", 0),
        ("STRATEGY", ".status.strategy", 0),
        ("PHASE", ".status.phase", 0),
        ("PROGRESS", ".status.progress.text", 0),
        ("AGE", ".metadata.creationTimestamp", 0),
        ("FLOW", ".status.flow", 1),
        ("MESSAGE", ".status.message", 1),
    ];
    assert_eq!(
        columns,
        expected.map(|(a, b, p)| (a.to_string(), b.to_string(), p))
    );
}

#[test]
fn schema_defaults_and_rules() {
    let crd = crd();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let props = &spec["properties"];
    assert_eq!(props["strategy"]["default"], "Auto");
    assert_eq!(props["allowDowntime"]["default"], false);
    assert_eq!(
        props["rollingRestart"]["properties"]["podReadyTimeoutSeconds"]["default"],
        600
    );
    assert_eq!(
        props["rollingRestart"]["properties"]["rollbackOnFailure"]["default"],
        true
    );
    assert_eq!(
        props["blueGreen"]["properties"]["dataIsolation"]["default"],
        "Shared"
    );
    assert_eq!(
        props["blueGreen"]["properties"]["readyTimeoutSeconds"]["default"],
        900
    );
    assert_eq!(
        props["blueGreen"]["properties"]["autoPromote"]["default"],
        true
    );
    assert_eq!(
        props["blueGreen"]["properties"]["scaleDownDelaySeconds"]["default"],
        30
    );
    let spec_rules: Vec<&str> = spec["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    for field in ["target", "service", "changes", "update"] {
        assert!(
            spec_rules
                .iter()
                .any(|r| r.contains(&format!("self.{field} == oldSelf.{field}"))),
            "{field} must be immutable: {spec_rules:?}"
        );
    }
    // The names a plan copies are checked as the objects they name are.
    for (field, schema) in [
        ("service", &props["service"]),
        ("target.name", &props["target"]["properties"]["name"]),
        (
            "blueGreen.previewService",
            &props["blueGreen"]["properties"]["previewService"],
        ),
    ] {
        let rules = schema["x-kubernetes-validations"].as_array();
        assert!(
            rules.is_some_and(|r| r.iter().any(|r| r["rule"]
                .as_str()
                .unwrap()
                .contains("self.matches(")
                && r["message"].as_str().unwrap().starts_with(field))),
            "{field} has no name rule: {schema}"
        );
    }
    let item_rules = props["changes"]["items"]["x-kubernetes-validations"]
        .as_array()
        .unwrap();
    for member in [
        "fixPack",
        "module",
        "javaVersion",
        "clusterCode",
        "activationKey",
        "custom",
    ] {
        assert!(
            item_rules.iter().any(|r| r["rule"]
                .as_str()
                .unwrap()
                .contains(&format!("has(self.{member})"))),
            "no union rule for {member}"
        );
    }
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["observedGeneration"]["type"], "integer");
    assert_eq!(status["conditions"]["x-kubernetes-list-type"], "map");
}
