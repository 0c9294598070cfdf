//! `cutover run`: the operator process. Connects to the cluster (in-cluster or a kubeconfig),
//! takes the leader Lease when asked to, serves probes and metrics, and runs one controller
//! per watched namespace (or one for all) until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::ValueEnum;
use cutover::operator::controller::{self, Settings};
use cutover::operator::metrics::Metrics;
use cutover::operator::policy::Policy;
use cutover::operator::probes::{self, Probes, Role};
use cutover::rules::Catalog;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct Args {
    /// Namespace to watch (repeatable). Without it, all namespaces.
    #[arg(long = "namespace", short = 'n')]
    namespaces: Vec<String>,
    /// Address of the /livez, /readyz and /metrics endpoints.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Take a Lease before acting, so that only one replica acts at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else "default").
    #[arg(long)]
    lease_namespace: Option<String>,
    /// How long the leader's Lease lasts without renewal; a new leader takes over after it.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
    lease_duration_seconds: u64,
    /// Fix pack catalog file extending the built-in one.
    #[arg(long, conflicts_with = "catalog_configmap")]
    catalog: Option<PathBuf>,
    /// Fix pack catalog from a ConfigMap, as NAMESPACE/NAME with the key `catalog.yaml`.
    #[arg(long)]
    catalog_configmap: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config, else the in-cluster config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Carry out plans whose pod patches (spec.update.podTemplatePatch,
    /// spec.blueGreen.greenOnly) change the pods' service account, security contexts, host
    /// namespaces or host paths, or make a container privileged. The operator creates those
    /// pods with its own rights; without this flag such a plan is Rejected.
    #[arg(long)]
    allow_privileged_patches: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let client = client(args.kubeconfig.as_ref()).await?;
    let catalog = catalog(&client, &args).await?;
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("cutover-{}", std::process::id()));
    let metrics = Arc::new(Metrics::default());
    let namespaces: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    let (synced_tx, synced_rx) = watch::channel(0usize);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stores = Arc::new(Mutex::new(Vec::new()));
    let initial = if args.leader_election {
        Role::Standby
    } else {
        Role::Leading
    };
    let (role_tx, role_rx) = watch::channel(initial);
    let probes = Probes {
        role: role_rx,
        synced: synced_rx,
        controllers: namespaces.len(),
        metrics: metrics.clone(),
        stores: stores.clone(),
    };
    let server = tokio::spawn(probes::serve(
        args.metrics_addr,
        probes,
        stopped(stop_rx.clone()),
    ));

    let mut leadership = None;
    if args.leader_election {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        let manager = LeaseManagerBuilder::new(client.clone(), "cutover-operator")
            .with_namespace(namespace.clone())
            .with_parameters(LeaseParams::new(
                identity.clone(),
                args.lease_duration_seconds,
                (args.lease_duration_seconds / 3).max(1),
            ))
            .build()
            .await
            .context("leader election: cannot use the Lease cutover-operator")?;
        let (mut is_leader, task) = manager.watch().await;
        tracing::info!(%identity, lease = %format!("{namespace}/cutover-operator"), "waiting to lead");
        tokio::select! {
            changed = is_leader.wait_for(|leads| *leads) => { changed.context("leader election stopped")?; }
            _ = shutdown_signal() => { return Ok(()); }
        }
        tracing::info!(%identity, "leading");
        let _ = role_tx.send(Role::Leading);
        leadership = Some((is_leader, task));
    }

    let mut controllers = Vec::new();
    for namespace in namespaces {
        let settings = Settings {
            namespace,
            catalog: catalog.clone(),
            metrics: metrics.clone(),
            synced: synced_tx.clone(),
            stores: stores.clone(),
            instance: Some(identity.clone()),
            retry: Default::default(),
            policy: Policy {
                allow_privileged_patches: args.allow_privileged_patches,
            },
        };
        controllers.push(tokio::spawn(controller::run(
            client.clone(),
            settings,
            stopped(stop_rx.clone()),
        )));
    }

    let lost = async {
        match &mut leadership {
            Some((is_leader, _)) => {
                let _ = is_leader.wait_for(|leads| !*leads).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let lost_lead = tokio::select! {
        _ = shutdown_signal() => false,
        _ = lost => true,
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for c in controllers {
        let _ = c.await;
    }
    if let Some((is_leader, task)) = leadership {
        drop(is_leader);
        let _ = task.await;
    }
    let _ = server.await;
    if lost_lead {
        anyhow::bail!("lost the leader Lease; exiting so that a new leader takes over");
    }
    Ok(())
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => Config::infer()
            .await
            .context("no cluster configuration found (in-cluster or kubeconfig)")?,
    };
    // Refusals (a PodDisruptionBudget's 429) are the controller's to retry, with its own
    // backoff and a status saying why; the client must not hold the reconcile meanwhile.
    let mut config = config;
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}

async fn catalog(client: &Client, args: &Args) -> anyhow::Result<Catalog> {
    if let Some(path) = &args.catalog {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading catalog {}", path.display()))?;
        return Catalog::with_user_file(&text)
            .with_context(|| format!("catalog {}", path.display()));
    }
    if let Some(reference) = &args.catalog_configmap {
        let (namespace, name) = reference.split_once('/').with_context(|| {
            format!("--catalog-configmap {reference:?}: expected NAMESPACE/NAME")
        })?;
        let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .with_context(|| format!("reading ConfigMap {reference}"))?;
        let text = cm
            .data
            .and_then(|d| d.get("catalog.yaml").cloned())
            .with_context(|| format!("ConfigMap {reference} has no key catalog.yaml"))?;
        return Catalog::with_user_file(&text)
            .with_context(|| format!("catalog in ConfigMap {reference}"));
    }
    Ok(Catalog::builtin().clone())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
