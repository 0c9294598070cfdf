//! `cutover evaluate` as a user runs it: the examples' documented outcomes, the JSON shape,
//! exit codes, standard input, the catalog option, and clear errors for invalid input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cutover(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cutover runs");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What an example's header comment says `evaluate` decides: ("BlueGreen", 0).
fn documented_outcome(example: &str) -> (String, i32) {
    let marker = "decides: ";
    let at = example
        .find(marker)
        .expect("every example documents its outcome");
    let rest = &example[at + marker.len()..];
    let strategy = rest.split_whitespace().next().unwrap().to_string();
    let exit = rest
        .split("(exit ")
        .nth(1)
        .unwrap()
        .chars()
        .next()
        .unwrap()
        .to_digit(10)
        .unwrap() as i32;
    (strategy, exit)
}

#[test]
fn every_example_evaluates_as_its_comment_says() {
    let dir = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(_) = source.find("decides: ") else {
            continue;
        };
        seen += 1;
        let (strategy, exit) = documented_outcome(&source);
        let out = cutover(
            &["evaluate", "-f", path.to_str().unwrap(), "-o", "json"],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let object = json.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["findings", "name", "strategy"], "{}", path.display());
        assert_eq!(json["strategy"], strategy.as_str(), "{}", path.display());
        for finding in json["findings"].as_array().unwrap() {
            let mut keys: Vec<&str> = finding
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort();
            assert_eq!(keys, ["blocks", "change", "message", "rule"]);
        }
        let out = cutover(&["evaluate", "-f", path.to_str().unwrap()], None);
        let first_line = text(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            first_line.ends_with(&format!(": {strategy}")),
            "text output starts with the strategy: {first_line}"
        );
    }
    assert!(
        seen >= 8,
        "expected at least eight documented examples, found {seen}"
    );
}

#[test]
fn the_contract_example_prints_the_contract_json() {
    let out = cutover(
        &[
            "evaluate",
            "-f",
            "examples/fixpack-isolated.yaml",
            "-o",
            "json",
        ],
        None,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "fixpack-de-32",
            "strategy": "BlueGreen",
            "findings": [
                {"change": 0, "rule": "fixpack-crosses-non-revertible", "blocks": ["RollingRestart"],
                 "message": "de-28 -> de-32 crosses de-30, a non-revertible fix pack (schema)"}
            ]
        })
    );
}

#[test]
fn several_plans_give_an_array_and_exit_1_when_one_is_rejected() {
    let both = [
        std::fs::read_to_string(format!(
            "{}/examples/java-major.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        std::fs::read_to_string(format!(
            "{}/examples/fixpack-shared-rejected.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    ]
    .join("---\n");
    let out = cutover(&["evaluate", "-f", "-", "-o", "json"], Some(&both));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let strategies: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(strategies, ["BlueGreen", "Rejected"]);

    let out = cutover(
        &[
            "evaluate",
            "-f",
            "examples/java-major.yaml",
            "-f",
            "examples/plain-restart.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("java-11: BlueGreen")
            && text(&out.stdout).contains("restart-liferay: RollingRestart")
    );
}

#[test]
fn rejected_text_says_how_to_proceed() {
    let out = cutover(
        &["evaluate", "-f", "examples/fixpack-shared-rejected.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("dataIsolation: Isolated") && stdout.contains("allowDowntime: true"),
        "{stdout}"
    );
}

#[test]
fn other_manifests_in_the_file_are_skipped() {
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: liferay}\n---\n"
        .to_string()
        + &std::fs::read_to_string(format!(
            "{}/examples/config-only.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
    let out = cutover(&["evaluate", "-f", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("tune-jvm: RollingRestart"));
}

#[test]
fn a_user_catalog_extends_the_builtin_one() {
    let plan = "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {name: p}\nspec:\n  target: {name: liferay}\n  service: liferay\n  changes:\n  - type: FixPack\n    fixPack: {from: de-40, to: de-42}\n";
    let dir = std::env::temp_dir().join(format!("cutover-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, "fixPacks:\n  - {id: de-41, kind: Clustering}\n").unwrap();
    let out = cutover(
        &[
            "evaluate",
            "-f",
            "-",
            "--catalog",
            catalog.to_str().unwrap(),
            "-o",
            "json",
        ],
        Some(plan),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["strategy"], "BlueGreen");
    assert_eq!(
        json["findings"][0]["message"],
        "de-40 -> de-42 crosses de-41, a non-revertible fix pack (clustering); green must not join blue's cluster"
    );

    std::fs::write(&catalog, "fixPacks:\n  - {id: de-41, kind: Maybe}\n").unwrap();
    let out = cutover(
        &[
            "evaluate",
            "-f",
            "-",
            "--catalog",
            catalog.to_str().unwrap(),
        ],
        Some(plan),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("fixPacks[0].kind"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

const HEAD: &str = "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {name: bad}\nspec:\n  target: {name: liferay}\n  service: liferay\n";

#[test]
fn invalid_input_exits_2_naming_document_field_and_reason() {
    let cases: Vec<(String, &[&str])> = vec![
        (format!("{HEAD}  changes:\n  - type: Upgrade\n"), &["document 1", "spec.changes[0].type", "unknown variant `Upgrade`"]),
        (format!("{HEAD}  changes:\n  - type: FixPack\n"), &["spec.changes[0].fixPack", "needs the member field fixPack"]),
        (format!("{HEAD}  changes:\n  - type: PortalProperties\n    javaVersion: {{from: '8', to: '11'}}\n"), &["spec.changes[0].javaVersion", "does not match type PortalProperties"]),
        (format!("{HEAD}  changes:\n  - type: FixPack\n    fixPack: {{from: de-28, to: fp32}}\n"), &["spec.changes[0].fixPack.to", "malformed fix pack id \"fp32\""]),
        (format!("{HEAD}  changes:\n  - type: Module\n    module: {{name: m, action: Update, schemaChanges: [DropIndex]}}\n"), &["spec.changes[0].module.schemaChanges[0]", "unknown variant `DropIndex`"]),
        (format!("{HEAD}  changes:\n  - type: JavaVersion\n    javaVersion: {{from: '8', to: 'latest'}}\n"), &["spec.changes[0].javaVersion.to", "not a Java version"]),
        (format!("{HEAD}  strategy: Canary\n"), &["spec.strategy", "unknown variant `Canary`"]),
        (format!("{HEAD}  allowDowntme: true\n"), &["spec.allowDowntme", "unknown field"]),
        ("apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {name: bad}\nspec:\n  target: {name: liferay}\n".to_string(), &["spec", "missing field `service`"]),
        ("apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nspec: {target: {name: a}, service: s}\n".to_string(), &["metadata"]),
        ("apiVersion: cutover.dev/v1beta9\nkind: MaintenancePlan\nmetadata: {name: x}\n".to_string(), &["apiVersion", "v1beta9"]),
        ("spec: [unclosed\n".to_string(), &["document 1", "invalid YAML"]),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".to_string(), &["no cutover.dev/v1alpha1 MaintenancePlan found"]),
        (format!("{}---\n{HEAD}  changes:\n  - type: Custom\n", std::fs::read_to_string(format!("{}/examples/java-major.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap()), &["document 2", "plan \"bad\"", "spec.changes[0].custom"]),
    ];
    for (input, needles) in cases {
        let out = cutover(&["evaluate", "-f", "-", "-o", "json"], Some(&input));
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "input:\n{input}\nstderr: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout for invalid input: {}",
            text(&out.stdout)
        );
        for needle in needles {
            assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
        }
    }
}

#[test]
fn a_missing_file_is_invalid_input() {
    let out = cutover(&["evaluate", "-f", "examples/does-not-exist.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does-not-exist.yaml: cannot read"));
}
