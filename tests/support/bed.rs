//! The two test beds (DESIGN section 5): the simulated cluster, started by each test, and
//! the real control plane of `scripts/control-plane`, shared by the tests of a run and chosen
//! with `CUTOVER_BED=real` and `CUTOVER_BED_DIR` (the directory `scripts/real-bed up` wrote:
//! `kubeconfig` for cluster-admin, `operator.kubeconfig` for the operator's ServiceAccount).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cutover::api::MaintenancePlan;
use cutover_sim::SimCluster;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, CustomResourceExt};
use tokio::sync::OnceCell;

/// Where a test runs.
pub enum Bed {
    Sim(Box<SimCluster>),
    Real(RealBed),
}

/// The real control plane of this run.
pub struct RealBed {
    dir: PathBuf,
}

impl RealBed {
    /// The real bed when the environment asks for it.
    pub fn from_env() -> Option<RealBed> {
        if std::env::var("CUTOVER_BED").ok().as_deref() != Some("real") {
            return None;
        }
        let dir = std::env::var("CUTOVER_BED_DIR")
            .expect("CUTOVER_BED=real needs CUTOVER_BED_DIR: the directory of scripts/real-bed up");
        Some(RealBed { dir: dir.into() })
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The kube-apiserver's audit log (see `controlplane/audit-policy.yaml`).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    pub fn operator_kubeconfig(&self) -> PathBuf {
        self.dir.join("operator.kubeconfig")
    }

    /// A cluster-admin client.
    pub async fn client(&self) -> Client {
        let path = self.admin_kubeconfig();
        let kubeconfig =
            Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig of the real bed");
        Client::try_from(config).expect("client of the real bed")
    }
}

static CRD: OnceCell<()> = OnceCell::const_new();

/// Installs this build's CRD once per test process (server-side apply, so a CRD of another
/// build is brought up to date) and waits until it is served.
pub async fn install_crd(client: &Client) {
    CRD.get_or_init(|| async {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = MaintenancePlan::crd();
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("cutover-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applied");
        for _ in 0..300 {
            let established = crds
                .get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("CRD {name} not established after 30 s");
    })
    .await;
}

/// A namespace name no other test of any run on this control plane uses.
pub fn unique_namespace() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "t-{}-{}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}
