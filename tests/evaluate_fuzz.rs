//! `cutover evaluate` on generated plans: whatever the input, it never panics and answers
//! with exit code 0, 1 or 2 (checked on the library path the command takes, and on the
//! binary for a sample).

use std::io::Write;
use std::process::{Command, Stdio};

use cutover::input::read_plans;
use cutover::rules::{Catalog, evaluate};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// A value for a field: sometimes well-formed, sometimes not.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "de-[0-9]{1,3}(-7010)?",
        "dxp-[0-9]{1,2}-7110",
        "[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(_[0-9]{1,3})?",
        "[0-9]{1,2}u[0-9]{1,3}",
        "[a-zA-Z0-9._+-]{0,12}",
        Just(String::new()),
        Just("\"quoted\"".to_string()),
    ]
}

fn change() -> impl Strategy<Value = String> {
    let kinds = prop::sample::select(vec![
        "FixPack",
        "Module",
        "JavaVersion",
        "ClusterCode",
        "PortalProperties",
        "SystemSettings",
        "AppServer",
        "JvmSettings",
        "ActivationKey",
        "Custom",
        "Bogus",
    ]);
    let members = prop::sample::select(vec![
        "",
        "fixPack",
        "module",
        "javaVersion",
        "clusterCode",
        "activationKey",
        "custom",
    ]);
    let schema = prop::sample::select(vec![
        "AddTable",
        "AddColumn",
        "DropColumn",
        "RenameTable",
        "Nope",
    ]);
    (kinds, members, scalar(), scalar(), schema, any::<bool>()).prop_map(|(kind, member, a, b, schema, flag)| {
        let body = match member {
            "" => String::new(),
            "fixPack" | "javaVersion" => format!("\n    {member}: {{from: '{a}', to: '{b}'}}"),
            "module" => format!(
                "\n    module: {{name: '{a}', action: Update, schemaChanges: [{schema}], requireSchemaVersion: {{from: '{b}', to: '{a}'}}}}"
            ),
            "clusterCode" => format!("\n    clusterCode: {{packages: ['{a}', 'com.liferay.portal.kernel.cluster.{b}']}}"),
            "activationKey" => format!("\n    activationKey: {{virtualCluster: {flag}}}"),
            _ => format!("\n    custom: {{description: '{a}', rollingRestartSafe: {flag}}}"),
        };
        format!("  - type: {kind}{body}")
    })
}

fn plan() -> impl Strategy<Value = String> {
    let strategy = prop::sample::select(vec![
        "Auto",
        "RollingRestart",
        "BlueGreen",
        "FullRestart",
        "Sideways",
    ]);
    let isolation = prop::sample::select(vec!["Shared", "Isolated"]);
    (prop::collection::vec(change(), 0..5), strategy, isolation, any::<bool>()).prop_map(
        |(changes, strategy, isolation, downtime)| {
            let list = if changes.is_empty() { " []".to_string() } else { format!("\n{}", changes.join("\n")) };
            format!(
                "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {{name: p}}\nspec:\n  target: {{name: t}}\n  service: s\n  strategy: {strategy}\n  allowDowntime: {downtime}\n  blueGreen: {{dataIsolation: {isolation}}}\n  changes:{list}\n"
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn generated_plans_are_evaluated_or_named_invalid(doc in plan()) {
        match read_plans(&doc, "generated") {
            Ok(plans) => {
                for p in plans {
                    match evaluate(&p.plan.spec, Catalog::builtin()) {
                        Ok(e) => prop_assert!(!e.explanation.is_empty()),
                        Err(invalid) => prop_assert!(invalid.path.starts_with("spec.") && !invalid.reason.is_empty()),
                    }
                }
            }
            Err(e) => prop_assert!(!e.reason.is_empty()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = read_plans(&text, "noise");
    }
}

#[test]
fn the_binary_answers_0_1_or_2_for_generated_plans() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..40 {
        let doc = plan().new_tree(&mut runner).unwrap().current();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["evaluate", "-f", "-", "-o", "json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(doc.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "exit {code:?} for:\n{doc}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code == Some(2) {
            assert!(
                out.stdout.is_empty() && !out.stderr.is_empty(),
                "invalid input explained on stderr only:\n{doc}"
            );
        } else {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(json["strategy"].is_string(), "{json}");
        }
    }
}
