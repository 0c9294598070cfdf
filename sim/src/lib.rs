//! A simulated Kubernetes cluster for tests and demos: an HTTP server on 127.0.0.1 that speaks
//! the Kubernetes REST API closely enough for the `kube` client, an operator process and
//! `kubectl`, with in-process controllers (Deployment, ReplicaSet, StatefulSet, kubelet,
//! EndpointSlices, volume binding, PodDisruptionBudgets, Jobs, garbage collection), fault
//! injection and a recorded history.
//!
//! It is a test bed, never a production path: plain HTTP, no authentication, everything in
//! memory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = cutover_sim::SimCluster::start(cutover_sim::SimOptions::default()).await?;
//! let client = sim.client()?;
//! # let _ = client;
//! sim.shutdown();
//! # Ok(()) }
//! ```

pub mod admission;
#[cfg(feature = "cel")]
pub mod cel;
pub mod controllers;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod history;
pub mod http;
pub mod kubeconfig;
pub mod managed;
pub mod openapi;
pub mod patch;
pub mod pod_http;
pub mod resources;
pub mod selectors;
pub mod store;
pub mod util;
pub mod watch;

pub use controllers::kubelet::{PodBehaviour, PodRule, ReadyAfter};
pub use error::ApiError;
pub use faults::{FaultAction, FaultRule};
pub use history::{EndpointPod, EndpointsRecord, History, HistoryMode, RequestRecord, WriteRecord};
pub use resources::{ResKey, keys};
pub use store::{DeleteOpts, Part, Propagation, Store, WriteCtx};

use controllers::kubelet::{Kubelet, KubeletSettings, SharedSettings};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Options of a simulated cluster.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Port on 127.0.0.1 (None: a free one).
    pub port: Option<u16>,
    /// Write a kubeconfig pointing at the server to this path.
    pub kubeconfig: Option<PathBuf>,
    /// How many past events watches can resume from.
    pub watch_window: usize,
    /// Interval of BOOKMARK events.
    pub bookmark_interval: Duration,
    /// How long a deleted pod stays terminating.
    pub pod_grace_period: Duration,
    /// How long a pod takes to become Ready by default.
    pub default_ready_delay: Duration,
    /// What the history keeps.
    pub history: HistoryMode,
    /// Seed of probabilistic faults.
    pub seed: u64,
    /// Run the simulated controllers (off: a bare API server).
    pub controllers: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            port: None,
            kubeconfig: None,
            watch_window: 20_000,
            bookmark_interval: Duration::from_secs(1),
            pod_grace_period: Duration::from_millis(30),
            default_ready_delay: Duration::from_millis(5),
            history: HistoryMode::Full,
            seed: 1,
            controllers: true,
        }
    }
}

/// Errors starting a simulated cluster or building a client for it.
#[derive(Debug)]
pub enum SimError {
    /// Binding or serving failed.
    Io(std::io::Error),
    /// The kube client could not be built.
    Client(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Io(e) => write!(f, "simulated cluster: {e}"),
            SimError::Client(e) => write!(f, "simulated cluster client: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        SimError::Io(e)
    }
}

/// Control of the simulated kubelet.
#[derive(Clone)]
pub struct KubeletHandle {
    settings: SharedSettings,
    trigger: Option<controllers::Trigger>,
    store: Arc<Store>,
}

impl KubeletHandle {
    fn with(&self, f: impl FnOnce(&mut KubeletSettings)) {
        f(&mut self.settings.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn poke_all(&self) {
        if let Some(t) = &self.trigger {
            for p in self.store.list(&keys::PODS, None).0 {
                let _ = t.send((util::namespace(&p).to_string(), util::name(&p).to_string()));
            }
        }
    }

    /// Sets the Ready delay of pods without annotation or rule.
    pub fn set_default_ready_delay(&self, d: Duration) {
        self.with(|s| s.default_ready_delay = d);
        self.poke_all();
    }

    /// Sets how long deleted pods stay terminating.
    pub fn set_grace_period(&self, d: Duration) {
        self.with(|s| s.grace_period = d);
    }

    /// Adds a behaviour rule (later rules win over earlier ones; annotations win over rules).
    pub fn add_rule(&self, rule: PodRule) {
        self.with(|s| s.rules.push(rule));
        self.poke_all();
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.with(|s| s.rules.clear());
        self.poke_all();
    }

    /// Forces a pod Ready or not Ready from now on (e.g. to make a running pod fail).
    pub fn set_pod_ready(&self, namespace: &str, name: &str, ready: bool) {
        self.with(|s| {
            s.overrides
                .insert((namespace.to_string(), name.to_string()), ready);
        });
        if let Some(t) = &self.trigger {
            let _ = t.send((namespace.to_string(), name.to_string()));
        }
    }

    /// Lets a pod follow its behaviour again.
    pub fn clear_pod_override(&self, namespace: &str, name: &str) {
        self.with(|s| {
            s.overrides
                .remove(&(namespace.to_string(), name.to_string()));
        });
        if let Some(t) = &self.trigger {
            let _ = t.send((namespace.to_string(), name.to_string()));
        }
    }
}

/// A running simulated cluster. Dropping it stops the server and the controllers.
pub struct SimCluster {
    store: Arc<Store>,
    faults: Arc<faults::Faults>,
    addr: SocketAddr,
    kubelet: KubeletHandle,
    tasks: Vec<JoinHandle<()>>,
    kubeconfig: Mutex<Option<PathBuf>>,
}

impl SimCluster {
    /// Starts the server (and the controllers unless disabled).
    pub async fn start(opts: SimOptions) -> Result<SimCluster, SimError> {
        let history = Arc::new(History::new(opts.history));
        let store = Store::new(opts.watch_window, history);
        let faults = Arc::new(faults::Faults::new(opts.seed));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port.unwrap_or(0))).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(http::App {
            store: store.clone(),
            faults: faults.clone(),
            bookmark_interval: opts.bookmark_interval,
            server_addr: addr.to_string(),
            eviction_lock: tokio::sync::Mutex::new(()),
        });
        let router = http::router(app);
        // Watch events and small responses go out at once rather than waiting for the
        // client's acknowledgement of the previous segment (Nagle's algorithm, which with
        // delayed acknowledgements holds a write for milliseconds).
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        });
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "simulated API server stopped");
            }
        })];
        let settings: SharedSettings = Arc::new(Mutex::new(KubeletSettings {
            default_ready_delay: opts.default_ready_delay,
            grace_period: opts.pod_grace_period,
            rules: Vec::new(),
            overrides: HashMap::new(),
        }));
        let mut trigger = None;
        if opts.controllers {
            let (h, t) = controllers::spawn(store.clone(), Kubelet::new(settings.clone(), &store));
            tasks.push(h);
            trigger = Some(t);
            tasks.push(
                controllers::spawn(store.clone(), controllers::replicaset::ReplicaSetController).0,
            );
            tasks.push(
                controllers::spawn(store.clone(), controllers::deployment::DeploymentController).0,
            );
            tasks.push(
                controllers::spawn(
                    store.clone(),
                    controllers::statefulset::StatefulSetController,
                )
                .0,
            );
            tasks.push(controllers::spawn(store.clone(), controllers::volumes::VolumeBinder).0);
            tasks.push(
                controllers::spawn(
                    store.clone(),
                    controllers::endpoints::EndpointsController::default(),
                )
                .0,
            );
            tasks.push(controllers::spawn(store.clone(), controllers::pdb::PdbController).0);
            tasks.push(controllers::spawn(store.clone(), controllers::job::JobController).0);
            tasks.push(controllers::spawn(store.clone(), controllers::gc::GarbageCollector).0);
            tasks.push(
                controllers::spawn(store.clone(), controllers::namespace::NamespaceController).0,
            );
        }
        let kubelet = KubeletHandle {
            settings,
            trigger,
            store: store.clone(),
        };
        let sim = SimCluster {
            store,
            faults,
            addr,
            kubelet,
            tasks,
            kubeconfig: Mutex::new(None),
        };
        if let Some(p) = &opts.kubeconfig {
            sim.write_kubeconfig(p)?;
        }
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A `kube` client configuration for the server (kube's defaults, including its automatic
    /// retry of 429/503/504 answers).
    pub fn config(&self) -> Result<kube::Config, SimError> {
        let uri: axum::http::Uri = self
            .url()
            .parse()
            .map_err(|e: axum::http::uri::InvalidUri| SimError::Client(e.to_string()))?;
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        config.read_timeout = None;
        Ok(config)
    }

    /// A `kube` client for the server, with kube's automatic retry of 429/503/504 turned off so
    /// that a test sees budget refusals and injected faults as they happen.
    pub fn client(&self) -> Result<kube::Client, SimError> {
        let mut config = self.config()?;
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|e| SimError::Client(e.to_string()))
    }

    /// Writes a kubeconfig for the server (also remembered as [`SimCluster::kubeconfig_path`]).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        kubeconfig::write(path, &self.url())?;
        *self.kubeconfig.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
        Ok(())
    }

    /// The last kubeconfig written, if any.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.kubeconfig
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The store, for direct access from tests.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The recorded history.
    pub fn history(&self) -> &Arc<History> {
        self.store.history()
    }

    /// The fault rules.
    pub fn faults(&self) -> &Arc<faults::Faults> {
        &self.faults
    }

    /// Adds a fault rule; returns its id.
    pub fn inject(&self, rule: FaultRule) -> u64 {
        self.faults.add(rule)
    }

    /// Control of the simulated kubelet.
    pub fn kubelet(&self) -> &KubeletHandle {
        &self.kubelet
    }

    /// Closes every open watch stream (of one type, or all).
    pub fn drop_watches(&self, resource: Option<&ResKey>) -> usize {
        self.store.drop_watches(resource)
    }

    /// Forgets past events: watches from older resourceVersions then get 410 Gone.
    pub fn compact(&self) {
        self.store.compact()
    }

    /// Gets an object directly from the store.
    pub fn get(&self, resource: &ResKey, namespace: &str, name: &str) -> Option<Value> {
        self.store
            .get(resource, namespace, name)
            .map(|o| (*o).clone())
    }

    /// Lists objects directly from the store (namespace None or "": all).
    pub fn list(&self, resource: &ResKey, namespace: Option<&str>) -> Vec<Value> {
        self.store
            .list(resource, namespace)
            .0
            .iter()
            .map(|o| (**o).clone())
            .collect()
    }

    /// Creates or replaces an object directly in the store (a forced server-side apply by
    /// `manager`), e.g. to seed a test. The type comes from the object's apiVersion and kind.
    pub fn apply(&self, obj: Value, manager: &str) -> Result<Value, ApiError> {
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rt = self
            .store
            .registry()
            .by_kind(&av, &kind)
            .ok_or_else(|| ApiError::bad_request(format!("unknown kind {av}/{kind}")))?;
        let res = rt.key();
        let ns = if rt.namespaced {
            util::namespace(&obj).to_string()
        } else {
            String::new()
        };
        let ns = if rt.namespaced && ns.is_empty() {
            "default".to_string()
        } else {
            ns
        };
        let name = util::name(&obj).to_string();
        let ctx = WriteCtx {
            manager: manager.to_string(),
            verb: "apply",
            track_fields: true,
            dry_run: false,
        };
        let out = if self.store.get(&res, &ns, &name).is_some() {
            self.store
                .modify(&res, &ns, &name, Part::Main, &ctx, |cur| {
                    patch::apply(Some(cur), &obj, manager, None, true)
                })?
        } else {
            let mut o = patch::apply(None, &obj, manager, None, true)?;
            if rt.namespaced {
                util::meta_mut(&mut o).insert("namespace".into(), ns.clone().into());
            }
            self.store.create(&res, o, &ctx)?
        };
        Ok((*out).clone())
    }

    /// Stops the server and the controllers.
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
