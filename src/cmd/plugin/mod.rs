//! What `cutover get|promote|abort|pause|resume` share as a kubectl plugin: the cluster
//! options (`--kubeconfig`, `--context`, `-n`), the connection, reading plans with errors
//! that name what is missing, and drawing on the terminal. The rendering itself is
//! `cutover::tree`'s; nothing here decides what an action means.

pub mod gather;
pub mod screen;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use cutover::api::MaintenancePlan;
use kube::api::{ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Which cluster and namespace, as kubectl takes them.
#[derive(clap::Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the plans (default: the context's namespace, else "default").
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// A connection to the cluster and the namespace to work in.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
}

impl Cluster {
    /// The plans of the namespace, read untyped so that status fields this binary does not
    /// know (a newer operator's) are kept for the tree.
    pub fn plans(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &plan_resource())
    }
}

pub fn plan_resource() -> ApiResource {
    ApiResource::erase::<MaintenancePlan>(&())
}

/// Connects as kubectl would: `--kubeconfig`, else `$KUBECONFIG`, else ~/.kube/config, else
/// the in-cluster service account; the error names what is missing.
pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Cluster> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| anyhow!("cannot read kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| anyhow!("kubeconfig {}: {e}", path.display()))?
        }
        None => match Kubeconfig::read() {
            Ok(kc) => Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| anyhow!("kubeconfig: {e}"))?,
            Err(e) => {
                if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
                    && let Ok(config) = Config::incluster()
                {
                    config
                } else if let Some(value) = std::env::var_os("KUBECONFIG") {
                    bail!(
                        "no kubeconfig: KUBECONFIG={} cannot be read ({e})",
                        value.to_string_lossy()
                    );
                } else {
                    bail!(
                        "no kubeconfig: ~/.kube/config does not exist and neither KUBECONFIG nor --kubeconfig is set"
                    );
                }
            }
        },
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).context("connecting to the cluster")?;
    Ok(Cluster { client, namespace })
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// The message when the API has no MaintenancePlan resource at all.
fn no_crd(cluster: &Cluster) -> anyhow::Error {
    anyhow!(
        "the cluster has no MaintenancePlan resource (maintenanceplans.cutover.dev) for namespace {}: is the CRD installed? (cutover crd | kubectl apply -f -)",
        cluster.namespace
    )
}

/// The plan `name`, as stored and as the typed plan; a missing plan or CRD is a one-line error.
pub async fn read_plan(
    cluster: &Cluster,
    name: &str,
) -> anyhow::Result<(DynamicObject, MaintenancePlan)> {
    let api = cluster.plans();
    let object = match api.get(name).await {
        Ok(object) => object,
        Err(e) if not_found(&e) => {
            return Err(match api.list(&Default::default()).await {
                Err(e) if not_found(&e) => no_crd(cluster),
                _ => anyhow!(
                    "maintenanceplan {name:?} not found in namespace {}",
                    cluster.namespace
                ),
            });
        }
        Err(e) => return Err(anyhow!("reading maintenanceplan {name:?}: {e}")),
    };
    let plan = typed(&object)?;
    Ok((object, plan))
}

/// Every plan of the namespace.
pub async fn list_plans(cluster: &Cluster) -> anyhow::Result<Vec<DynamicObject>> {
    match cluster.plans().list(&Default::default()).await {
        Ok(list) => Ok(list.items),
        Err(e) if not_found(&e) => Err(no_crd(cluster)),
        Err(e) => Err(anyhow!(
            "listing maintenanceplans in namespace {}: {e}",
            cluster.namespace
        )),
    }
}

/// A stored plan as the typed plan (unknown fields are ignored).
pub fn typed(object: &DynamicObject) -> anyhow::Result<MaintenancePlan> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(object)?;
    if let Some(map) = value.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| "cutover.dev/v1alpha1".into());
        map.entry("kind")
            .or_insert_with(|| "MaintenancePlan".into());
    }
    serde_json::from_value(value)
        .with_context(|| format!("maintenanceplan {name:?} cannot be read"))
}

/// Colours on stdout: only on a terminal, and never when `NO_COLOR` is set.
pub fn stdout_style() -> cutover::tree::Style {
    cutover::tree::Style {
        color: std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}
