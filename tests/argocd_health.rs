//! The Argo CD health check (`gitops/argocd/maintenanceplan-health.lua`) run by the real Lua
//! 5.1 interpreter, in the same sandbox Argo CD gives a custom health check
//! (`gitops/argocd/test/harness.lua`), against plans in every phase: statuses built from the
//! operator's own types, and plans the operator carried out on the simulated cluster.
//!
//! Needs `lua5.1` on PATH (Debian package `lua5.1`); without it these tests fail.

mod support;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use cutover::api::{MaintenancePlan, MaintenancePlanStatus, Phase, Progress, Verdict};
use cutover::operator::conditions::derive;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use support::{APP, Env};

const LUA: &str = "lua5.1";
const SCRIPT: &str = "gitops/argocd/maintenanceplan-health.lua";
const HARNESS: &str = "gitops/argocd/test/harness.lua";
const CONFIG_MAP: &str = "gitops/argocd/argocd-cm.yaml";
const CONFIG_KEY: &str = "resource.customizations.health.cutover.dev_MaintenancePlan";

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A JSON value as a Lua 5.1 expression (objects become tables with string keys).
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the health check said about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Health {
    status: String,
    message: String,
}

/// Runs `script` in the harness on each named object.
fn run_script(script: &PathBuf, cases: &[(String, Value)]) -> BTreeMap<String, Health> {
    let chunk = format!(
        "return {{\n{}\n}}\n",
        cases
            .iter()
            .map(|(name, obj)| format!("  {{name = {}, obj = {}}},", lua_string(name), lua(obj)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut child = match Command::new(LUA)
        .arg(path(HARNESS))
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{LUA}` is not on PATH: the Argo CD health check is tested with the real Lua 5.1 \
             interpreter. Install it (Debian/Ubuntu: `apt-get install -y lua5.1`) and run the \
             tests again."
        ),
        Err(e) => panic!("cannot start {LUA}: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(chunk.as_bytes())
        .expect("cases written to lua");
    let output = child.wait_with_output().expect("lua runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(
        output.status.success(),
        "{LUA} {HARNESS} failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut results = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("harness printed {line:?}, not JSON: {e}"));
        let name = v["name"].as_str().expect("name").to_string();
        if let Some(error) = v["error"].as_str() {
            panic!("case {name:?}: {error}");
        }
        let health = Health {
            status: v["status"].as_str().expect("status").to_string(),
            message: v["message"].as_str().expect("message").to_string(),
        };
        results.insert(name, health);
    }
    assert_eq!(
        results.len(),
        cases.len(),
        "one result per case expected:\n{stdout}"
    );
    results
}

fn health_of(cases: &[(String, Value)]) -> BTreeMap<String, Health> {
    run_script(&path(SCRIPT), cases)
}

/// The health Argo CD should show for a plan in `phase` whose status is up to date. An
/// exhaustive match: a new phase does not compile until its health is decided here (and in
/// the script).
fn expected_status(phase: Phase, paused: bool) -> &'static str {
    match phase {
        Phase::Pending | Phase::Progressing if paused => "Suspended",
        Phase::Pending | Phase::Progressing => "Progressing",
        Phase::AwaitingPromotion => "Suspended",
        Phase::Succeeded => "Healthy",
        Phase::Failed | Phase::Rejected | Phase::Aborted => "Degraded",
    }
}

/// A plan object as the API server would return it, with a status written the way the
/// operator writes it (conditions derived from the phase).
fn plan(generation: i64, paused: bool, status: Option<MaintenancePlanStatus>) -> Value {
    let mut obj = json!({
        "apiVersion": "cutover.dev/v1alpha1",
        "kind": "MaintenancePlan",
        "metadata": {"name": "fixpack-de-32", "namespace": "portal", "generation": generation},
        "spec": {
            "target": {"kind": "Deployment", "name": "liferay"},
            "service": "liferay",
            "strategy": "Auto",
            "paused": paused,
            "promote": false,
            "abort": false,
            "blueGreen": {"autoPromote": false, "dataIsolation": "Isolated"}
        }
    });
    if let Some(status) = status {
        obj["status"] = serde_json::to_value(status).expect("status serializes");
    }
    obj
}

fn status(
    phase: Phase,
    generation: i64,
    step: &str,
    message: &str,
    invalid: bool,
) -> MaintenancePlanStatus {
    let strategy = if phase == Phase::Rejected {
        Verdict::Rejected
    } else {
        Verdict::BlueGreen
    };
    let mut s = MaintenancePlanStatus {
        observed_generation: Some(generation),
        phase: Some(phase),
        strategy: Some(strategy),
        step: Some(step.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        progress: Some(Progress::new(2, 3)),
        ..Default::default()
    };
    s.conditions = derive(
        &s,
        &[],
        invalid,
        Timestamp::from_second(1_700_000_000).unwrap(),
    );
    s
}

/// One sample: name, object, expected status and message.
struct Sample {
    name: &'static str,
    obj: Value,
    status: &'static str,
    message: String,
}

fn sample(
    name: &'static str,
    phase: Phase,
    paused: bool,
    step: &str,
    message: &str,
    invalid: bool,
) -> Sample {
    Sample {
        name,
        obj: plan(2, paused, Some(status(phase, 2, step, message, invalid))),
        status: expected_status(phase, paused),
        message: format!("{phase:?}: {message}"),
    }
}

fn samples() -> Vec<Sample> {
    vec![
        sample(
            "pending, waiting for another plan",
            Phase::Pending,
            false,
            "WaitingForPlan",
            "waiting for plan fixpack-de-31 to finish with deployment liferay",
            false,
        ),
        sample(
            "pending, paused",
            Phase::Pending,
            true,
            "Paused",
            "paused before the first step; set spec.paused to false to start",
            false,
        ),
        sample(
            "progressing",
            Phase::Progressing,
            false,
            "WaitingForGreen",
            "green 2/3 ready",
            false,
        ),
        sample(
            "progressing, paused",
            Phase::Progressing,
            true,
            "Paused",
            "paused at 1/3 pods; set spec.paused to false to go on",
            false,
        ),
        sample(
            "awaiting promotion",
            Phase::AwaitingPromotion,
            false,
            "AwaitingPromotion",
            "green 3/3 ready; set spec.promote to true to switch the service to it",
            false,
        ),
        sample(
            "succeeded",
            Phase::Succeeded,
            false,
            "Done",
            "deployment liferay runs the new template; removing green",
            false,
        ),
        sample(
            "failed",
            Phase::Failed,
            false,
            "Done",
            "green was not Ready within 900s (2/3 pods Ready); blue kept serving and was not touched",
            false,
        ),
        sample(
            "rejected by the rules",
            Phase::Rejected,
            false,
            "Done",
            "rejected: RollingRestart is blocked by change 0 (fixpack-crosses-non-revertible)",
            false,
        ),
        sample(
            "rejected as invalid",
            Phase::Rejected,
            false,
            "Done",
            "invalid plan: spec.changes[0].fixPack.from: malformed fix pack id \"de28\"",
            true,
        ),
        sample(
            "aborted",
            Phase::Aborted,
            false,
            "Done",
            "aborted before the switch; removing green",
            false,
        ),
        sample(
            "aborted, paused",
            Phase::Aborted,
            true,
            "Done",
            "aborted before it started; nothing was touched",
            false,
        ),
    ]
}

fn check(samples: Vec<Sample>) {
    let cases: Vec<(String, Value)> = samples
        .iter()
        .map(|s| (s.name.to_string(), s.obj.clone()))
        .collect();
    let results = health_of(&cases);
    let mut wrong = Vec::new();
    for s in &samples {
        let got = &results[s.name];
        let want = Health {
            status: s.status.to_string(),
            message: s.message.clone(),
        };
        if *got != want {
            wrong.push(format!("{}: got {got:?}, want {want:?}", s.name));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_phase_maps_to_its_health() {
    let samples = samples();
    for phase in [
        Phase::Pending,
        Phase::Rejected,
        Phase::Progressing,
        Phase::AwaitingPromotion,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Aborted,
    ] {
        let word = format!("{phase:?}");
        assert!(
            samples.iter().any(|s| s.obj["status"]["phase"] == word),
            "no sample in phase {word}"
        );
    }
    check(samples);
}

#[test]
fn a_status_that_is_missing_or_stale_waits_for_the_operator() {
    let waiting = |name: &'static str, obj: Value, message: &str| Sample {
        name,
        obj,
        status: "Progressing",
        message: message.to_string(),
    };
    let succeeded = |observed: i64| status(Phase::Succeeded, observed, "Done", "done", false);
    let no_generation = MaintenancePlanStatus {
        observed_generation: None,
        ..succeeded(1)
    };
    let mut promote_not_seen = plan(
        3,
        false,
        Some(status(
            Phase::AwaitingPromotion,
            2,
            "AwaitingPromotion",
            "green 3/3 ready; set spec.promote to true to switch the service to it",
            false,
        )),
    );
    promote_not_seen["spec"]["promote"] = json!(true);
    check(vec![
        waiting(
            "no status",
            plan(1, false, None),
            "waiting for the operator",
        ),
        waiting(
            "empty status",
            plan(1, false, Some(MaintenancePlanStatus::default())),
            "waiting for the operator",
        ),
        waiting(
            "status without observedGeneration",
            plan(1, false, Some(no_generation)),
            "waiting for the operator",
        ),
        waiting(
            "status of an older generation",
            plan(2, false, Some(succeeded(1))),
            "waiting for the operator: generation 2 not observed yet (status is of generation 1)",
        ),
        waiting(
            "promote set but not observed yet",
            promote_not_seen,
            "waiting for the operator: generation 3 not observed yet (status is of generation 2)",
        ),
    ]);
}

#[test]
fn message_edge_cases() {
    let mut no_message = plan(
        4,
        false,
        Some(status(Phase::Succeeded, 4, "Done", "", false)),
    );
    assert!(no_message["status"].get("message").is_none());
    no_message["status"]["message"] = Value::Null;
    // Argo CD may hand numbers over as strings (json.Number); they still compare equal.
    let mut string_numbers = plan(5, false, Some(status(Phase::Failed, 5, "Done", "x", false)));
    string_numbers["metadata"]["generation"] = json!("5");
    // A phase from a newer operator than this check knows: loud, not silently waiting.
    let mut unknown = plan(
        1,
        false,
        Some(status(Phase::Progressing, 1, "X", "m", false)),
    );
    unknown["status"]["phase"] = json!("Resuming");
    let quoted = "pod \"liferay-0\" said:\n\tno \\ way";
    check(vec![
        Sample {
            name: "no message",
            obj: no_message,
            status: "Healthy",
            message: "Succeeded".into(),
        },
        Sample {
            name: "numbers as strings",
            obj: string_numbers,
            status: "Degraded",
            message: "Failed: x".into(),
        },
        Sample {
            name: "unknown phase",
            obj: unknown,
            status: "Degraded",
            message: "Resuming: m (phase unknown to this health check; update it)".into(),
        },
        Sample {
            name: "a check failing, not failed yet",
            obj: plan(
                1,
                false,
                Some(status(
                    Phase::Progressing,
                    1,
                    "CheckingGreen",
                    "checks before the switch: portal: attempt 1 failed (1 of 3 in a row)",
                    false,
                )),
            ),
            status: "Progressing",
            message:
                "Progressing: checks before the switch: portal: attempt 1 failed (1 of 3 in a row)"
                    .into(),
        },
        Sample {
            name: "message with quotes and control characters",
            obj: plan(
                1,
                false,
                Some(status(Phase::Progressing, 1, "Rolling", quoted, false)),
            ),
            status: "Progressing",
            message: format!("Progressing: {quoted}"),
        },
    ]);
}

/// The harness really withholds what Argo CD withholds, so a script that passes here does
/// not fail in Argo CD for want of a library.
#[test]
fn the_harness_withholds_the_libraries_argo_cd_does_not_open() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("argocd_health");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [
        (
            "string-method",
            "return {status = \"Healthy\", message = (\"x\"):upper()}",
        ),
        (
            "string-library",
            "return {status = \"Healthy\", message = string.lower(\"X\")}",
        ),
        (
            "math-library",
            "return {status = \"Healthy\", message = tostring(math.floor(1))}",
        ),
        (
            "io-library",
            "return {status = \"Healthy\", message = io.read(\"*l\")}",
        ),
    ] {
        let script = dir.join(format!("{name}.lua"));
        std::fs::write(&script, body).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            run_script(&script, &[("x".to_string(), plan(1, false, None))])
        });
        assert!(
            outcome.is_err(),
            "a script using {name} ran in the harness, but Argo CD would refuse it"
        );
    }
    let script = dir.join("allowed.lua");
    std::fs::write(
        &script,
        "local t = {} table.insert(t, tostring(obj.metadata.generation)) \
         return {status = \"Healthy\", message = table.concat(t, \",\")}",
    )
    .unwrap();
    let results = run_script(&script, &[("x".to_string(), plan(7, false, None))]);
    assert_eq!(results["x"].message, "7");
}

#[test]
fn argocd_cm_carries_the_script_verbatim() {
    let script = std::fs::read_to_string(path(SCRIPT)).expect("health script");
    let cm: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(path(CONFIG_MAP)).expect("argocd-cm.yaml"),
    )
    .expect("argocd-cm.yaml is YAML");
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    assert!(
        cm["data"][CONFIG_KEY].as_str() == Some(script.as_str()),
        "{CONFIG_MAP}: data.{CONFIG_KEY} differs from {SCRIPT}; copy the script into it again"
    );
}

fn as_object(plan: &MaintenancePlan) -> Value {
    serde_json::to_value(plan).expect("plan serializes")
}

/// Plans the operator carried out on the simulated cluster, as Argo CD would read them.
#[tokio::test]
async fn plans_carried_out_by_the_operator() {
    let long = Duration::from_secs(30);
    let mut env = Env::on_sim().await;
    env.deploy_app(2).await;
    env.start_operator();
    env.apply_plan(
        "java-11",
        json!({
            "target": {"name": APP}, "service": APP,
            "changes": [{"type": "JavaVersion", "javaVersion": {"from": "1.8.0_292", "to": "11.0.12"}}],
            "update": {"image": "liferay/dxp:7.0.10-de-28-jdk11"},
            "blueGreen": {"autoPromote": false, "scaleDownDelaySeconds": 0}
        }),
    )
    .await;
    env.apply_plan(
        "fixpack-shared",
        json!({
            "target": {"name": APP}, "service": APP,
            "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-32"}}]
        }),
    )
    .await;
    let awaiting = env
        .wait_phase("java-11", Phase::AwaitingPromotion, long)
        .await;
    let rejected = env
        .wait_phase("fixpack-shared", Phase::Rejected, long)
        .await;
    let before = health_of(&[
        ("awaiting".into(), as_object(&awaiting)),
        ("rejected".into(), as_object(&rejected)),
    ]);
    env.patch_plan("java-11", json!({"promote": true})).await;
    let succeeded = env.wait_phase("java-11", Phase::Succeeded, long).await;
    let after = health_of(&[("succeeded".into(), as_object(&succeeded))]);
    env.stop_operator().await;

    let status_message = |p: &MaintenancePlan| {
        p.status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(before["awaiting"].status, "Suspended", "{:?}", before);
    assert_eq!(
        before["awaiting"].message,
        format!("AwaitingPromotion: {}", status_message(&awaiting))
    );
    assert!(
        before["awaiting"].message.contains("spec.promote"),
        "{:?}",
        before["awaiting"]
    );
    assert_eq!(before["rejected"].status, "Degraded", "{:?}", before);
    assert_eq!(
        before["rejected"].message,
        format!("Rejected: {}", status_message(&rejected))
    );
    assert!(
        before["rejected"].message.contains("allowDowntime"),
        "{:?}",
        before["rejected"]
    );
    assert_eq!(after["succeeded"].status, "Healthy", "{:?}", after);
    assert_eq!(
        after["succeeded"].message,
        format!("Succeeded: {}", status_message(&succeeded))
    );
}
