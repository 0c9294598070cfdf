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
        // `changes` appears when changes were read from a manifest in the file.
        if let Some(changes) = object.get("changes") {
            keys.retain(|k| *k != "changes");
            for change in changes.as_array().unwrap() {
                assert!(
                    matches!(change["source"].as_str(), Some("Declared" | "Inferred")),
                    "{}: {change}",
                    path.display()
                );
            }
        }
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

/// Changes read from a target manifest (DESIGN section 2b): `--before`/`--after`, or a
/// manifest among the `-f` documents.
mod inferred {
    use super::{cutover, text};

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: liferay}\nspec:\n  selector: {matchLabels: {app: liferay}}\n  template:\n    metadata: {labels: {app: liferay}}\n    spec:\n      containers: [{name: liferay, image: 'IMAGE'}]\n";

    fn deployment(image: &str) -> String {
        DEPLOYMENT.replace("IMAGE", image)
    }

    fn plan(spec: &str) -> String {
        format!(
            "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {{name: p}}\nspec:\n  target: {{name: liferay}}\n  service: liferay\n{spec}"
        )
    }

    fn json(args: &[&str], stdin: &str) -> (serde_json::Value, i32) {
        let out = cutover(args, Some(stdin));
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("JSON on stdout: {}", text(&out.stderr)));
        (value, out.status.code().unwrap())
    }

    #[test]
    fn an_image_bump_alone_is_read_as_the_fix_pack_it_is() {
        let doc = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan("  update: {image: 'liferay/dxp:7.0.10-de-32'}\n")
        );
        let (report, code) = json(&["evaluate", "-f", "-", "-o", "json"], &doc);
        assert_eq!(
            (report["strategy"].as_str(), code),
            (Some("Rejected"), 1),
            "{report}"
        );
        assert_eq!(report["changes"][0]["source"], "Inferred");
        assert_eq!(report["changes"][0]["fixPack"]["to"], "de-32-7010");
        let finding = &report["findings"][0];
        assert_eq!(finding["rule"], "fixpack-crosses-non-revertible");
        assert!(
            finding["message"].as_str().unwrap().contains("de-30"),
            "{finding}"
        );

        let isolated = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan(
                "  update: {image: 'liferay/dxp:7.0.10-de-32'}\n  blueGreen: {dataIsolation: Isolated}\n"
            )
        );
        let (report, code) = json(&["evaluate", "-f", "-", "-o", "json"], &isolated);
        assert_eq!(
            (report["strategy"].as_str(), code),
            (Some("BlueGreen"), 0),
            "{report}"
        );
    }

    #[test]
    fn without_a_manifest_or_with_inference_off_only_declared_changes_count() {
        let bump = plan("  update: {image: 'liferay/dxp:7.0.10-de-32'}\n");
        let (report, _) = json(&["evaluate", "-f", "-", "-o", "json"], &bump);
        assert_eq!(report["strategy"], "RollingRestart", "{report}");
        assert!(report.get("changes").is_none(), "{report}");
        let off = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan("  inferChanges: false\n  update: {image: 'liferay/dxp:7.0.10-de-32'}\n")
        );
        let (report, _) = json(&["evaluate", "-f", "-", "-o", "json"], &off);
        assert_eq!(report["strategy"], "RollingRestart", "{report}");
    }

    #[test]
    fn a_pull_request_is_checked_base_against_head() {
        let (report, code) = json(
            &[
                "evaluate",
                "-f",
                "examples/gitops-pr/branch/plan.yaml",
                "--before",
                "examples/gitops-pr/main/liferay.yaml",
                "--after",
                "examples/gitops-pr/branch/liferay.yaml",
                "-o",
                "json",
            ],
            "",
        );
        assert_eq!(
            (report["strategy"].as_str(), code),
            (Some("BlueGreen"), 0),
            "{report}"
        );
        let kinds: Vec<&str> = report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["FixPack", "PortalProperties"]);
        // The same plan on shared data would be rejected: the check fails the pull request.
        let shared = std::fs::read_to_string("examples/gitops-pr/branch/plan.yaml")
            .unwrap()
            .replace("dataIsolation: Isolated", "dataIsolation: Shared");
        let out = cutover(
            &[
                "evaluate",
                "-f",
                "-",
                "--before",
                "examples/gitops-pr/main/liferay.yaml",
                "--after",
                "examples/gitops-pr/branch/liferay.yaml",
            ],
            Some(&shared),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stdout).contains("de-30"), "{}", text(&out.stdout));
    }

    #[test]
    fn a_declaration_the_image_contradicts_is_rejected_naming_both() {
        let doc = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan(
                "  allowDowntime: true\n  changes: [{type: FixPack, fixPack: {from: de-28, to: de-29}}]\n  update: {image: 'liferay/dxp:7.0.10-de-32'}\n"
            )
        );
        let (report, code) = json(&["evaluate", "-f", "-", "-o", "json"], &doc);
        assert_eq!(
            (report["strategy"].as_str(), code),
            (Some("Rejected"), 1),
            "{report}"
        );
        let finding = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "inferred-contradicts-declared")
            .expect("a contradiction finding");
        let message = finding["message"].as_str().unwrap();
        assert!(
            message.contains("de-28 -> de-29") && message.contains("de-32-7010"),
            "{message}"
        );
    }

    #[test]
    fn an_image_nobody_explains_blocks_a_rolling_restart_until_declared() {
        let doc = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan("  update: {image: 'acme/portal:2'}\n")
        );
        let (report, _) = json(&["evaluate", "-f", "-", "-o", "json"], &doc);
        assert_eq!(report["strategy"], "BlueGreen", "{report}");
        assert_eq!(report["findings"][0]["rule"], "unrecognized-image");
        let declared = format!(
            "{}---\n{}",
            deployment("liferay/dxp:7.0.10-de-28"),
            plan(
                "  changes: [{type: Custom, custom: {description: our image, rollingRestartSafe: true}}]\n  update: {image: 'acme/portal:2'}\n"
            )
        );
        let (report, _) = json(&["evaluate", "-f", "-", "-o", "json"], &declared);
        assert_eq!(report["strategy"], "RollingRestart", "{report}");
    }

    #[test]
    fn bad_manifests_exit_2_naming_file_field_and_reason() {
        let bump = plan("  update: {image: 'liferay/dxp:7.0.10-de-32'}\n");
        let cases: [(&[&str], &str, &str); 3] = [
            (
                &["--after", "examples/gitops-pr/branch/liferay.yaml"],
                bump.as_str(),
                "--after",
            ),
            (
                &["--before", "examples/gitops-pr/main/liferay.yaml"],
                &bump.replace("name: liferay}", "name: other}"),
                "spec.target",
            ),
            (
                &[],
                &format!("{}---\n{}", deployment("liferay/DXP:bad"), bump),
                "containers[liferay].image",
            ),
        ];
        for (extra, stdin, named) in cases {
            let mut args = vec!["evaluate", "-f", "-"];
            args.extend_from_slice(extra);
            let out = cutover(&args, Some(stdin));
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains(named), "{named}: {err}");
            assert!(
                out.stdout.is_empty(),
                "nothing on stdout: {}",
                text(&out.stdout)
            );
        }
    }
}

/// Every example plan means on the sample application what it says on its own: the changes
/// the operator reads from the template agree with the declared ones, so the verdict with the
/// application's manifest as `--before` is the verdict without it.
#[test]
fn the_example_plans_agree_with_the_sample_applications_templates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let files = |dir: &str| -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".yaml"))
            .collect();
        out.sort();
        out
    };
    let apps = files("examples/app");
    let verdict = |args: &[&str]| -> Option<String> {
        let out = cutover(args, None);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(report["strategy"].as_str()?.to_string())
    };
    let mut checked = Vec::new();
    let mut unmatched = Vec::new();
    for plan in files("examples") {
        let alone = verdict(&["evaluate", "-o", "json", "-f", &plan])
            .unwrap_or_else(|| panic!("{plan} evaluates on its own"));
        let on_app = apps.iter().find_map(|app| {
            verdict(&["evaluate", "-o", "json", "-f", &plan, "--before", app])
                .map(|v| (app.clone(), v))
        });
        match on_app {
            Some((app, with_app)) => {
                assert_eq!(
                    alone, with_app,
                    "{plan}: {alone} on its own but {with_app} on {app}: its declared changes and its image disagree"
                );
                checked.push(plan);
            }
            None => unmatched.push(plan),
        }
    }
    assert!(
        unmatched.is_empty(),
        "example plans whose target no sample application in examples/app holds: {unmatched:?}"
    );
    assert!(checked.len() >= 13, "{checked:?}");
}

/// A plan whose pod patch would give the new pods more rights (another service account, the
/// node's network, a privileged container): `evaluate` reports what the operator decides on
/// with its own setting, with or without the target's manifest.
#[test]
fn a_patch_that_escalates_pod_privileges_is_reported() {
    let plan = "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {name: p}\nspec:\n  target: {name: liferay}\n  service: liferay\n  update:\n    podTemplatePatch:\n      spec:\n        serviceAccountName: admin\n        hostNetwork: true\n        containers: [{name: liferay, image: x, securityContext: {privileged: true}}]\n";
    let out = cutover(&["evaluate", "-f", "-", "-o", "json"], Some(plan));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("JSON on stdout: {}", text(&out.stderr)));
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "pod-patch-escalates-privileges")
        .unwrap_or_else(|| panic!("a finding on the patch: {report}"));
    let message = finding["message"].as_str().unwrap();
    for words in [
        "spec.update.podTemplatePatch",
        "serviceAccountName",
        "hostNetwork",
        "privileged",
        "refused: the operator runs without --allow-privileged-patches",
    ] {
        assert!(message.contains(words), "{words}: {message}");
    }
    // About the plan's patches, not one of its changes.
    assert!(finding.get("change").is_none(), "{finding}");
    // Judged as the operator with its default setting judges it: Rejected, exit 1.
    assert_eq!(report["strategy"], "Rejected", "{report}");
    assert_eq!(out.status.code(), Some(1));
    let out = cutover(&["evaluate", "-f", "-"], Some(plan));
    assert!(
        text(&out.stdout).contains("the plan  ok  [pod-patch-escalates-privileges]"),
        "{}",
        text(&out.stdout)
    );
    // With the operator's opt-in the finding stays and the rules decide.
    let out = cutover(
        &[
            "evaluate",
            "-f",
            "-",
            "-o",
            "json",
            "--allow-privileged-patches",
        ],
        Some(plan),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(report["strategy"], "Rejected", "{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "pod-patch-escalates-privileges"
                && f["message"].as_str().unwrap().contains("allowed")),
        "{report}"
    );
}
