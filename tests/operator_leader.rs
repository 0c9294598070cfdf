//! Two `cutover run` processes with leader election: only the leader acts (every Event comes
//! from one instance), only it reports ready, its /metrics counts the plans; when it is
//! killed, the other takes the Lease over and carries out the next plan. On either bed: on the
//! real control plane as the chart's ServiceAccount, whose Role allows the Lease only in the
//! chart's namespace.

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use cutover::api::Phase;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::{APP, Env, Killed};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The namespace of the leader Lease: the chart's on the real control plane, the test's on
/// the simulated cluster.
fn lease_namespace(env: &Env) -> &str {
    if env.is_real() {
        "cutover-system"
    } else {
        &env.ns
    }
}

/// Deletes the Lease, so that no earlier holder keeps this test's operators waiting.
async fn forget_lease(env: &Env) {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), lease_namespace(env));
    let _ = leases.delete(LEASE, &Default::default()).await;
}

const LEASE: &str = "cutover-operator";

fn operator(env: &Env, name: &str, port: u16) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["run", "--leader-election", "true"])
            .args(["--lease-duration-seconds", "2"])
            .args(["--lease-namespace", lease_namespace(env)])
            .args(["--namespace", &env.ns])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--kubeconfig",
            ])
            .arg(env.operator_kubeconfig())
            .env("POD_NAME", name)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cutover run starts"),
    )
}

/// GET on the operator's HTTP port: (status code, body).
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Some((code, body))
    })
    .await
    .ok()
    .flatten()
}

/// The instances that reported Events about `plan`.
async fn reporters(env: &Env, plan: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let mut who: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(plan))
        .filter_map(|e| e.reporting_instance)
        .collect();
    who.sort();
    who.dedup();
    who
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_a_follower_takes_over() {
    let env = Env::new().await;
    env.deploy_app(2).await;
    forget_lease(&env).await;
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = operator(&env, "op-a", port_a);
    let mut b = operator(&env, "op-b", port_b);
    let leading = |r: &Option<(u16, String)>| {
        r.as_ref()
            .is_some_and(|(c, body)| *c == 200 && body.contains("leading"))
    };
    let leader = env
        .wait("one operator to lead", Duration::from_secs(20), || async {
            let (a, b) = (get(port_a, "/readyz").await, get(port_b, "/readyz").await);
            if a.is_none() || b.is_none() {
                return None; // both must be serving before one can be told the leader
            }
            match (leading(&a), leading(&b)) {
                (true, false) => Some("op-a"),
                (false, true) => Some("op-b"),
                _ => None,
            }
        })
        .await;
    let (leader_port, follower_port) = if leader == "op-a" {
        (port_a, port_b)
    } else {
        (port_b, port_a)
    };
    assert_eq!(
        get(follower_port, "/livez").await.map(|(c, _)| c),
        Some(200),
        "the follower is alive"
    );
    let standby = get(follower_port, "/readyz").await.unwrap();
    assert_eq!(
        standby.0, 200,
        "a standby is ready to take over, so a rollout of replicas completes"
    );
    assert!(standby.1.contains("standby"), "{}", standby.1);

    env.apply_plan("first", json!({"target": {"name": APP}, "service": APP}))
        .await;
    env.wait_phase("first", Phase::Succeeded, Duration::from_secs(30))
        .await;
    assert_eq!(
        reporters(&env, "first").await,
        [leader],
        "only the leader acted"
    );
    let (_, metrics) = get(leader_port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("cutover_plans{phase=\"Succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cutover_pods_replaced_total 2"),
        "{metrics}"
    );

    // Kill the leader; the follower takes the Lease once it expires.
    let (dead, alive) = if leader == "op-a" {
        (&mut a, b)
    } else {
        (&mut b, a)
    };
    dead.0.kill().unwrap();
    dead.0.wait().unwrap();
    env.apply_plan("second", json!({"target": {"name": APP}, "service": APP}))
        .await;
    env.wait_phase("second", Phase::Succeeded, Duration::from_secs(30))
        .await;
    let follower = if leader == "op-a" { "op-b" } else { "op-a" };
    assert_eq!(reporters(&env, "second").await, [follower]);
    assert!(
        leading(&get(follower_port, "/readyz").await),
        "the follower now leads"
    );
    drop(alive);
    forget_lease(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_operator_gracefully() {
    let env = Env::new().await;
    let kubeconfig = env.operator_kubeconfig();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "run",
            "--leader-election",
            "false",
            "--log-format",
            "json",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--namespace",
            &env.ns,
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait("the operator to serve", Duration::from_secs(20), || async {
        get(port, "/readyz")
            .await
            .filter(|(c, _)| *c == 200)
            .map(|_| ())
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut logs = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
        (status, logs)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit after SIGTERM: {:?}\n{}",
        status.0,
        status.1
    );
    let first = status.1.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
    if !env.is_real() {
        let _ = std::fs::remove_file(kubeconfig);
    }
}
