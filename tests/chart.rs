//! The Helm chart stays in step with the binary: its CRD and RBAC rules are the generators'
//! output, its values match its schema, the flags it passes exist, and the operator's pod
//! keeps the Pod Security "restricted" settings and the probes. Rendering and `helm lint`
//! itself are `scripts/lint`'s job; these checks need nothing but cargo.

use std::process::Command;

use serde_json::Value;

const CHART: &str = "charts/cutover";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn crd_copy_matches_generator() {
    let path = format!("{CHART}/crds/maintenanceplan.yaml");
    assert!(
        read(&path) == cutover::crd::crd_yaml(),
        "{path} is stale; regenerate it with `cargo run -- crd > {path}`"
    );
}

#[test]
fn rbac_rules_match_generator() {
    let path = format!("{CHART}/files/rbac-rules.yaml");
    assert!(
        read(&path) == cutover::rbac::rules_yaml(),
        "{path} is stale; regenerate it with `cargo run -- rbac > {path}`"
    );
}

#[test]
fn app_version_is_the_package_version() {
    // The image tag defaults to appVersion: a chart must install the operator it ships with.
    let chart = yaml(&format!("{CHART}/Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "cutover");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "{CHART}/Chart.yaml: appVersion must follow the cutover package version"
    );
}

#[test]
fn values_validate_against_schema() {
    let schema: Value = serde_json::from_str(&read(&format!("{CHART}/values.schema.json")))
        .expect("values.schema.json is JSON");
    assert_eq!(
        schema["$schema"], "http://json-schema.org/draft-07/schema#",
        "the schema declares draft-07"
    );
    let values = yaml(&format!("{CHART}/values.yaml"));
    let properties = schema["properties"].as_object().expect("schema properties");
    for key in values.as_object().expect("values.yaml is a mapping").keys() {
        assert!(
            properties.contains_key(key),
            "values.yaml: {key} has no property in values.schema.json"
        );
    }
    let mut errors = Vec::new();
    check(&schema, &schema, &values, "", &mut errors);
    assert!(
        errors.is_empty(),
        "values.yaml against values.schema.json:\n{}",
        errors.join("\n")
    );
}

/// The subset of JSON Schema draft-07 the chart's schema uses, except `pattern` and `if`/`then`
/// (Helm checks those): `$ref` to `#/definitions/...`, `type`, `enum`, `minimum`, `minLength`,
/// `required`, `properties`, `additionalProperties`, `items`, `uniqueItems`.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{at}: unsupported $ref {reference}"));
        let target = &root["definitions"][name];
        assert!(
            !target.is_null(),
            "{at}: $ref to a missing definition {name}"
        );
        return check(root, target, value, at, errors);
    }
    let at_or_root = if at.is_empty() { "(top level)" } else { at };
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: type {other}"),
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            errors.push(format!("{at_or_root}: {value} is not of type {allowed:?}"));
            return;
        }
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        errors.push(format!("{at_or_root}: {value} is not one of {options:?}"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        errors.push(format!("{at_or_root}: {number} is below {minimum}"));
    }
    if let (Some(min), Some(text)) = (schema["minLength"].as_u64(), value.as_str())
        && (text.chars().count() as u64) < min
    {
        errors.push(format!("{at_or_root}: {text:?} is shorter than {min}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at_or_root}: {name} is required"));
            }
        }
        for (key, item) in object {
            let path = format!("{at}.{key}");
            match (&schema["properties"][key], &schema["additionalProperties"]) {
                (Value::Null, Value::Bool(false)) => {
                    errors.push(format!("{at_or_root}: {key} is not in the schema"))
                }
                (Value::Null, Value::Object(_)) => {
                    check(root, &schema["additionalProperties"], item, &path, errors)
                }
                (Value::Null, _) => {}
                (property, _) => check(root, property, item, &path, errors),
            }
        }
    }
    if let Some(items) = value.as_array() {
        if schema["items"].is_object() {
            for (i, item) in items.iter().enumerate() {
                check(root, &schema["items"], item, &format!("{at}[{i}]"), errors);
            }
        }
        if schema["uniqueItems"] == true {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errors.push(format!("{at_or_root}: {item} appears twice"));
                }
            }
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "null" => value.is_null(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

#[test]
fn schema_checker_finds_errors() {
    // The checker above must not pass everything: feed it values that break each keyword.
    let schema: Value = serde_json::from_str(&read(&format!("{CHART}/values.schema.json")))
        .expect("values.schema.json is JSON");
    let bad = serde_json::json!({
        "replicaCount": 0,
        "image": {"repository": "", "pullPolicy": "Sometimes", "digest": "x"},
        "logFormat": 7,
        "watch": {"allNamespaces": false, "namespaces": ["a", "a"]},
        "resources": {"requests": {"cpu": true}},
        "unknown": 1
    });
    let mut errors = Vec::new();
    check(&schema, &schema, &bad, "", &mut errors);
    for expected in [
        ".replicaCount: 0 is below 1",
        ".image.repository: \"\" is shorter than 1",
        ".image: digest is not in the schema",
        ".image.pullPolicy: \"Sometimes\" is not one of",
        ".logFormat: 7 is not of type",
        ".watch.namespaces: \"a\" appears twice",
        ".resources.requests.cpu: true is not of type",
        "(top level): unknown is not in the schema",
        "(top level): leaderElection",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "no error starting with {expected:?} in {errors:#?}"
        );
    }
}

fn deployment() -> String {
    read(&format!("{CHART}/templates/deployment.yaml"))
}

#[test]
fn deployment_meets_restricted_pod_security() {
    let template = deployment();
    for setting in [
        "runAsNonRoot: true",
        "runAsUser: 65532",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "type: RuntimeDefault",
    ] {
        assert!(
            template.contains(setting),
            "templates/deployment.yaml lacks `{setting}`"
        );
    }
    let drop_all = template
        .split("drop:")
        .nth(1)
        .and_then(|rest| rest.lines().map(str::trim).find(|l| !l.is_empty()))
        .expect("templates/deployment.yaml drops capabilities");
    assert_eq!(
        drop_all, "- ALL",
        "templates/deployment.yaml must drop ALL capabilities"
    );
    assert!(
        !template.contains("privileged: true") && !template.contains("hostNetwork"),
        "templates/deployment.yaml asks for privileges"
    );
}

#[test]
fn deployment_probes_livez_and_readyz() {
    let template = deployment();
    for (probe, path) in [("livenessProbe:", "/livez"), ("readinessProbe:", "/readyz")] {
        let after = template
            .split(probe)
            .nth(1)
            .unwrap_or_else(|| panic!("templates/deployment.yaml has no {probe}"));
        let first_path = after
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("path:"))
            .map(str::trim);
        assert_eq!(
            first_path,
            Some(path),
            "{probe} must check {path} in templates/deployment.yaml"
        );
    }
    assert!(
        template.contains("containerPort: 8080") && template.contains("0.0.0.0:8080"),
        "the probes' port 8080 must be the port the operator serves on"
    );
}

#[test]
fn deployment_flags_exist() {
    // A renamed flag of `cutover run` would otherwise surface only as a crash-looping pod.
    let help = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", "--help"])
        .output()
        .expect("cutover run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let template = deployment();
    let flags: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .collect();
    assert!(
        flags.len() >= 4,
        "no flags found in templates/deployment.yaml"
    );
    for flag in flags {
        assert!(
            help.contains(&format!("--{flag}")),
            "templates/deployment.yaml passes --{flag}, which `cutover run` does not take"
        );
    }
    assert!(
        template.contains("\n            - run\n"),
        "templates/deployment.yaml must run `cutover run`"
    );
}

#[test]
fn rbac_templates_have_no_wildcards() {
    // The rules file is checked by the rbac module's own tests; this covers rules written in
    // the templates themselves.
    let dir = format!("{}/{CHART}/templates", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).expect("templates directory") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("\"*\"") && !text.contains("'*'") && !text.contains("- *"),
            "{} grants a wildcard",
            path.display()
        );
    }
}
