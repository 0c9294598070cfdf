//! `cutover sim`: serves the simulated cluster on 127.0.0.1 until stopped, with the
//! MaintenancePlan CRD installed, and writes a kubeconfig for kubectl and `cutover run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cutover::api::MaintenancePlan;
use cutover_sim::{SimCluster, SimOptions};
use kube::CustomResourceExt;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "cutover-sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Milliseconds a pod takes to become Ready unless its annotation says otherwise.
    #[arg(long, default_value_t = 200)]
    ready_after_ms: u64,
    /// Serve a bare cluster, without the MaintenancePlan CRD.
    #[arg(long)]
    bare: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sim = SimCluster::start(SimOptions {
        port: args.port,
        default_ready_delay: Duration::from_millis(args.ready_after_ms),
        ..SimOptions::default()
    })
    .await
    .context("starting the simulated cluster")?;
    sim.write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    if !args.bare {
        let crd = serde_json::to_value(MaintenancePlan::crd())?;
        sim.apply(crd, "cutover")
            .map_err(|e| anyhow::anyhow!("installing the CRD: {e:?}"))?;
    }
    println!("simulated cluster serving on {}", sim.url());
    println!("kubeconfig written to {}", args.kubeconfig.display());
    println!(
        "try: export KUBECONFIG={}; kubectl get deployments,maintenanceplans -A",
        args.kubeconfig.display()
    );
    println!("stop with Ctrl-C");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown();
    Ok(())
}
