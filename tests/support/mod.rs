//! A simulated cluster with the operator running in-process, a sample application, and
//! checks of the invariants of DESIGN section 4 over the recorded history.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cutover::api::{MaintenancePlan, Phase};
use cutover::operator::controller::{self, Settings};
use cutover::operator::metrics::Metrics;
use cutover::operator::retry::RetryPolicy;
use cutover::rules::Catalog;
use cutover_sim::{EndpointsRecord, SimCluster, SimOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::json;
use tokio::sync::watch;

pub mod audit;
pub mod bed;
pub mod receiver;
pub mod recorder;
pub mod stateful;

pub use bed::Bed;

/// The namespace of the tests on the simulated cluster (each test has a cluster of its own
/// there); on the real control plane each test gets a namespace of its own (`Env::ns`).
pub const NS: &str = "portal";
pub const APP: &str = "liferay";

pub struct Env {
    pub bed: Bed,
    pub client: Client,
    /// The namespace of this test's objects.
    pub ns: String,
    recorder: recorder::Recorder,
    stop: Option<watch::Sender<bool>>,
    operator: Option<tokio::task::JoinHandle<()>>,
    operator_process: Option<Killed>,
    /// The real control plane's audit log from this test's start, for its namespace.
    audit: Option<std::sync::Mutex<audit::AuditTail>>,
}

impl Env {
    /// A cluster with the CRD and the namespace, and no operator yet: the simulated cluster,
    /// or the real control plane when `CUTOVER_BED=real` (see `bed`).
    pub async fn new() -> Env {
        match bed::RealBed::from_env() {
            Some(real) => Self::on_real(real).await,
            None => Self::with_options(SimOptions::default()).await,
        }
    }

    /// The simulated cluster, whatever the bed: for a test that needs what only it has.
    pub async fn on_sim() -> Env {
        Self::with_options(SimOptions::default()).await
    }

    /// The simulated cluster started with `options` (a fault seed, say), whatever the bed:
    /// for the tests that need what only the simulated cluster has.
    pub async fn with_options(options: SimOptions) -> Env {
        let sim = SimCluster::start(options)
            .await
            .expect("simulated cluster starts");
        let client = sim.client().expect("client");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &MaintenancePlan::crd())
            .await
            .expect("CRD created");
        Self::finish(Bed::Sim(Box::new(sim)), client, NS.to_string()).await
    }

    async fn on_real(real: bed::RealBed) -> Env {
        let client = real.client().await;
        bed::install_crd(&client).await;
        let ns = bed::unique_namespace();
        Self::finish(Bed::Real(real), client, ns).await
    }

    async fn finish(bed: Bed, client: Client, ns: String) -> Env {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .expect("namespace created");
        let recorder = recorder::Recorder::start(client.clone(), &ns);
        let audit = match &bed {
            Bed::Real(real) => Some(std::sync::Mutex::new(audit::AuditTail::from_now(
                real.audit_log(),
                &ns,
            ))),
            Bed::Sim(_) => None,
        };
        Env {
            audit,
            bed,
            client,
            ns,
            recorder,
            stop: None,
            operator: None,
            operator_process: None,
        }
    }

    /// The simulated cluster; panics on the real control plane, naming what needed it.
    pub fn sim(&self) -> &SimCluster {
        match &self.bed {
            Bed::Sim(sim) => sim,
            Bed::Real(_) => panic!(
                "this test needs the simulated cluster (fault injection, the write history or the kubelet's knobs)"
            ),
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self.bed, Bed::Real(_))
    }

    /// The operator, watching this test's namespace: in this process on the simulated
    /// cluster; on the real control plane as `cutover run`, a process of its own with the
    /// token of a ServiceAccount bound to the chart's ClusterRole.
    pub fn start_operator(&mut self) {
        self.start_operator_retrying(RetryPolicy::default());
    }

    /// As [`Env::start_operator`], with failed reconciles tried again as `retry` says (on the
    /// simulated cluster; the operator process of the real control plane keeps its default).
    pub fn start_operator_retrying(&mut self, retry: RetryPolicy) {
        if let Bed::Real(real) = &self.bed {
            self.operator_process = Some(run_operator_in(
                &real.operator_kubeconfig(),
                Some(&self.ns),
                "info",
                std::process::Stdio::inherit(),
            ));
            return;
        }
        let (stop, stopped) = watch::channel(false);
        let (synced, _) = watch::channel(0usize);
        let settings = Settings {
            namespace: None,
            catalog: Catalog::builtin().clone(),
            metrics: std::sync::Arc::new(Metrics::default()),
            synced,
            stores: Default::default(),
            instance: Some("test".into()),
            retry,
            policy: Default::default(),
        };
        let client = self.client.clone();
        self.operator = Some(tokio::spawn(async move {
            let mut stopped = stopped;
            controller::run(client, settings, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        }));
        self.stop = Some(stop);
    }

    pub async fn stop_operator(&mut self) {
        self.operator_process = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.operator.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// The kubeconfig an operator process of a test uses: the simulated cluster's, or on the
    /// real control plane the ServiceAccount's with the chart's permissions.
    pub fn operator_kubeconfig(&self) -> std::path::PathBuf {
        match &self.bed {
            Bed::Real(real) => real.operator_kubeconfig(),
            Bed::Sim(_) => self.kubeconfig(),
        }
    }

    /// A kubeconfig for this cluster, for an operator running as a separate process.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        if let Bed::Real(real) = &self.bed {
            return real.admin_kubeconfig();
        }
        let path = std::env::temp_dir().join(format!(
            "cutover-test-{}-{}.kubeconfig",
            std::process::id(),
            self.sim().addr().port()
        ));
        self.sim()
            .write_kubeconfig(&path)
            .expect("kubeconfig written");
        path
    }

    /// A kubeconfig for this cluster whose user sends the bearer token `token`, so that the
    /// cluster can tell that client's requests apart (in its request log and fault rules).
    pub fn kubeconfig_with_token(&self, token: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "cutover-test-{}-{}-{token}.kubeconfig",
            std::process::id(),
            self.sim().addr().port()
        ));
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: {token}\n\
             current-context: sim\nusers:\n- name: {token}\n  user:\n    token: {token}\n",
            self.sim().url()
        );
        std::fs::write(&path, kubeconfig).expect("kubeconfig written");
        path
    }

    /// Writes the operator made: on the simulated cluster those of its field manager, on the
    /// real control plane those of ServiceAccounts in this test's namespace (the audit log).
    pub fn operator_writes(&self) -> usize {
        if let Some(audit) = &self.audit {
            let mut audit = audit.lock().unwrap_or_else(|e| e.into_inner());
            return audit.requests().iter().filter(|r| r.is_write()).count();
        }
        self.sim()
            .history()
            .writes()
            .iter()
            .filter(|w| w.manager == "cutover")
            .count()
    }

    /// Whether the operator ever wrote to the target Deployment: from the write history on the
    /// simulated cluster, from the target's managed fields (the operator's field manager) on
    /// the real control plane.
    pub async fn operator_touched_target(&self) -> bool {
        if self.is_real() {
            let target = self.deployments().get(APP).await.expect("target readable");
            return target
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .any(|m| m.manager.as_deref() == Some(cutover::operator::actuate::FIELD_MANAGER));
        }
        self.sim()
            .history()
            .writes_of("deployments.apps")
            .iter()
            .any(|w| w.manager == "cutover" && w.name == APP)
    }

    /// The API requests in this test's namespace made by ServiceAccounts, from the real
    /// control plane's audit log; panics on the simulated cluster (its request history has
    /// them: `sim().history().requests()`).
    pub fn audited_requests(&self) -> Vec<audit::ApiRequest> {
        let audit = self
            .audit
            .as_ref()
            .expect("the audit log is the real control plane's");
        let mut audit = audit.lock().unwrap_or_else(|e| e.into_inner());
        audit.requests().to_vec()
    }

    /// On the real control plane, deletes this test's namespace (and so everything in it),
    /// for the tests that make many: a control plane shared by a whole run slows down with
    /// hundreds of namespaces of pods left behind. Nothing on the simulated cluster, which
    /// each test has to itself.
    pub async fn delete_namespace(&self) {
        if self.is_real() {
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
        }
    }

    /// The Events about `plan` with `reason`, as core Events.
    async fn plan_events(
        &self,
        plan: &str,
        reason: &str,
    ) -> Vec<k8s_openapi::api::core::v1::Event> {
        let events: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(plan))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect()
    }

    /// Warning Events about `plan` with `reason`: their messages.
    pub async fn warnings(&self, plan: &str, reason: &str) -> Vec<String> {
        self.plan_events(plan, reason)
            .await
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.message)
            .collect()
    }

    /// How often the Event about `plan` with `reason` was reported: its series' count (an
    /// Event written once has none).
    pub async fn event_count(&self, plan: &str, reason: &str) -> i32 {
        self.plan_events(plan, reason)
            .await
            .into_iter()
            .map(|e| e.series.and_then(|s| s.count).unwrap_or(1))
            .max()
            .unwrap_or(0)
    }

    /// A PodDisruptionBudget over the application that allows no disruption at all: it wants
    /// more pods available than any test runs, the restart's surge pod included.
    pub async fn block_disruptions(&self) {
        self.add_budget(json!({"minAvailable": 100})).await;
    }

    /// A PodDisruptionBudget over the application with this spec (the selector added).
    pub async fn add_budget(&self, mut spec: serde_json::Value) {
        spec["selector"] = json!({"matchLabels": {"app": APP}});
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": APP, "namespace": self.ns},
            "spec": spec
        }))
        .unwrap();
        self.pdbs()
            .create(&PostParams::default(), &pdb)
            .await
            .expect("budget created");
    }

    /// Lets the budget of `block_disruptions` keep `replicas` pods available: with the
    /// restart's surge pod serving, one of the application's pods may go at a time.
    pub async fn allow_one_disruption(&self, replicas: i32) {
        self.pdbs()
            .patch(
                APP,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"minAvailable": replicas}})),
            )
            .await
            .expect("budget relaxed");
    }

    fn pdbs(&self) -> Api<PodDisruptionBudget> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn plans(&self) -> Api<MaintenancePlan> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// The sample application: a Deployment of `replicas` pods and its Service, all Ready.
    pub async fn deploy_app(&self, replicas: i32) {
        self.deploy_app_named(APP, replicas).await;
    }

    /// The sample application with its Deployment named `name` (its Service is still `APP`).
    pub async fn deploy_app_named(&self, name: &str, replicas: i32) {
        self.deploy_app_with(name, replicas, json!({})).await;
    }

    /// The sample application whose pod template carries `annotations` (say, the simulated
    /// kubelet's `sim.cutover.dev/ready-after-ms`, so that every pod made from it behaves so).
    pub async fn deploy_app_with(&self, name: &str, replicas: i32, annotations: serde_json::Value) {
        let mut metadata = json!({"labels": {"app": APP}});
        if annotations.as_object().is_some_and(|a| !a.is_empty()) {
            metadata["annotations"] = annotations;
        }
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": APP}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": metadata,
                    "spec": {"containers": [{"name": APP, "image": "liferay/dxp:7.0.10-de-28", "ports": [{"containerPort": 8080}]}]}
                }
            }
        }))
        .unwrap();
        self.deployments()
            .create(&PostParams::default(), &deployment)
            .await
            .expect("deployment created");
        self.create_service_like_app(APP).await;
        // Generous: on a real control plane shared by the whole run, ten pods take a while.
        self.wait(
            "the application to be available",
            Duration::from_secs(30),
            || async {
                let d = self.deployments().get(name).await.ok()?;
                let status = d.status?;
                (status.available_replicas == Some(replicas)
                    && status.updated_replicas == Some(replicas))
                .then_some(())
            },
        )
        .await;
        self.wait(
            "the service to list every pod",
            Duration::from_secs(10),
            || async {
                let last = self.endpoints().last().cloned()?;
                (last.ready.len() as i32 == replicas).then_some(())
            },
        )
        .await;
    }

    /// A Service `name` like the application's (a preview Service for green, say).
    pub async fn create_service_like_app(&self, name: &str) {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"selector": {"app": APP}, "ports": [{"port": 8080}]}
        }))
        .unwrap();
        self.services()
            .create(&PostParams::default(), &service)
            .await
            .expect("service created");
    }

    /// Applies a plan from YAML (the spec under `spec:`), named `name`.
    pub async fn apply_plan(&self, name: &str, spec: serde_json::Value) -> MaintenancePlan {
        let plan: MaintenancePlan = serde_json::from_value(json!({
            "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec
        }))
        .expect("plan parses");
        self.plans()
            .create(&PostParams::default(), &plan)
            .await
            .expect("plan created")
    }

    pub async fn patch_plan(&self, name: &str, spec: serde_json::Value) {
        self.plans()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("plan patched");
    }

    /// A merge patch of the application's Deployment (as a person or a sync tool would).
    pub async fn patch_deployment(&self, patch: serde_json::Value) {
        self.deployments()
            .patch(APP, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("deployment patched");
    }

    pub async fn delete_plan(&self, name: &str) {
        self.plans()
            .delete(name, &DeleteParams::default())
            .await
            .expect("plan deleted");
    }

    /// Waits until the plan reaches `phase`; panics with its status if it ends otherwise.
    pub async fn wait_phase(&self, name: &str, phase: Phase, timeout: Duration) -> MaintenancePlan {
        let deadline = Instant::now() + timeout;
        loop {
            let plan = self.plans().get(name).await.expect("plan readable");
            let current = plan.status.as_ref().and_then(|s| s.phase);
            if current == Some(phase) {
                return plan;
            }
            let terminal = matches!(
                current,
                Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
            );
            if terminal || Instant::now() > deadline {
                panic!(
                    "plan {name}: waited for {phase:?}, status is {:#?}",
                    plan.status
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        self.wait("the plan to be deleted", timeout, || async {
            self.plans()
                .get_opt(name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
    }

    pub async fn wait<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The application Service's endpoints as the test's own watch recorded them.
    pub fn endpoints(&self) -> Vec<EndpointsRecord> {
        self.recorder.endpoints_of(APP)
    }

    /// Another Service's endpoints as the test's own watch recorded them.
    pub fn endpoints_of(&self, service: &str) -> Vec<EndpointsRecord> {
        self.recorder.endpoints_of(service)
    }

    /// Pods of the application that are not terminating, with their image.
    pub async fn images(&self) -> Vec<String> {
        let pods = self
            .pods()
            .list(&ListParams::default().labels(&format!("app={APP}")))
            .await
            .unwrap();
        pods.items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Invariant 1 (no gap) and, for a RollingRestart, invariant 3's "never below the replicas":
/// from `from` on, every change of the Service's endpoints leaves at least `min_ready`
/// ready endpoints.
pub fn assert_ready_at_least(records: &[EndpointsRecord], from: usize, min_ready: usize) {
    if let Err(violation) = cutover::invariants::ready_at_least(records, from, min_ready) {
        panic!("{violation}");
    }
}

/// One pod at a time: from `from` on, never more than `max_ready` ready endpoints (the
/// replicas and one surge pod), so no second replacement started before the first was done.
pub fn assert_ready_at_most(records: &[EndpointsRecord], from: usize, max_ready: usize) {
    for (i, r) in records.iter().enumerate().skip(from) {
        let names: Vec<&str> = r.ready.iter().map(|p| p.name.as_str()).collect();
        assert!(
            r.ready.len() <= max_ready,
            "endpoint change #{i} at {} lists {} ready endpoints (at most {max_ready} expected): {names:?}",
            r.time,
            r.ready.len()
        );
    }
}

/// Invariant 2 (BlueGreen): the ready endpoints are pods of one template at every moment.
pub fn assert_no_mixing(records: &[EndpointsRecord], from: usize) {
    if let Err(violation) = cutover::invariants::no_mixing(records, from) {
        panic!("{violation}");
    }
}

/// Invariant 4: the target runs the wanted image with its replicas, carries none of the
/// operator's marks, keeps its own strategy; the Service's selector is the original; no
/// surge pod is left.
pub async fn assert_clean_end(env: &Env, replicas: i32, image: &str) {
    let d = env.deployments().get(APP).await.unwrap();
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(replicas));
    assert_eq!(
        spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some(image)
    );
    let annotations: BTreeMap<String, String> = d.metadata.annotations.clone().unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("cutover.dev/")),
        "operator marks left: {annotations:?}"
    );
    let strategy = serde_json::to_value(spec.strategy.as_ref().unwrap()).unwrap();
    assert_eq!(
        strategy,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_ne!(spec.paused, Some(true));
    let svc = env.services().get(APP).await.unwrap();
    assert_eq!(
        svc.spec.unwrap().selector.unwrap(),
        BTreeMap::from([("app".to_string(), APP.to_string())])
    );
    env.wait(
        "the surge pod to be gone",
        Duration::from_secs(5),
        || async {
            let surge = env
                .pods()
                .list(&ListParams::default().labels("cutover.dev/role=surge"))
                .await
                .ok()?;
            surge.items.is_empty().then_some(())
        },
    )
    .await;
    env.wait(
        "every pod to run the wanted image",
        Duration::from_secs(5),
        || async {
            let images = env.images().await;
            (images.len() as i32 == replicas && images.iter().all(|i| i == image)).then_some(())
        },
    )
    .await;
}

/// Pod names that served before `at` and still serve at the end: pods the plan never replaced.
pub fn survivors(records: &[EndpointsRecord], at: usize) -> Vec<String> {
    let before: Vec<&String> = records[at].ready.iter().map(|p| &p.name).collect();
    let after = records.last().unwrap();
    after
        .ready
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| before.contains(&n))
        .collect()
}

/// A child process that is killed when dropped, so that a failing test leaves none behind.
pub struct Killed(pub std::process::Child);

/// `cutover run` as a process of its own (no leader election, metrics on a free port) against
/// the cluster of `kubeconfig`, logging at `rust_log` to `stderr`.
pub fn run_operator(
    kubeconfig: &std::path::Path,
    rust_log: &str,
    stderr: std::process::Stdio,
) -> Killed {
    run_operator_in(kubeconfig, None, rust_log, stderr)
}

/// As [`run_operator`], watching only `namespace` when one is given.
pub fn run_operator_in(
    kubeconfig: &std::path::Path,
    namespace: Option<&str>,
    rust_log: &str,
    stderr: std::process::Stdio,
) -> Killed {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
    command.args([
        "run",
        "--leader-election",
        "false",
        "--metrics-addr",
        "127.0.0.1:0",
        "--kubeconfig",
    ]);
    command.arg(kubeconfig);
    if let Some(ns) = namespace {
        command.args(["--namespace", ns]);
    }
    Killed(
        command
            .env("RUST_LOG", rust_log)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("cutover run starts"),
    )
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Over the whole run, blue's headless Service never listed a green pod and green's twin
/// never listed anything else, the twin did list green, and at the end the headless
/// Service selects what it did before and the twin is gone.
pub async fn assert_isolated(env: &Env, green_prefix: &str, selector: serde_json::Value) {
    let listed = |r: &EndpointsRecord| -> Vec<String> {
        r.ready
            .iter()
            .map(|p| p.name.clone())
            .chain(r.not_ready.iter().cloned())
            .collect()
    };
    for r in env.endpoints_of("liferay-headless") {
        let names = listed(&r);
        assert!(
            names.iter().all(|n| !n.starts_with(green_prefix)),
            "blue's headless service listed green: {names:?}"
        );
    }
    let twin = env.endpoints_of("liferay-headless-green");
    assert!(
        twin.iter().any(|r| !r.ready.is_empty()),
        "the twin listed green's pods"
    );
    for r in twin {
        let names = listed(&r);
        assert!(
            names.iter().all(|n| n.starts_with(green_prefix)),
            "green's twin listed blue: {names:?}"
        );
    }
    // Blue's headless Service follows the target's own pods: it never lists two revisions at
    // once, and once the target takes the new template (green serving) it lists the target's
    // new pods only, before the switch back: listing blue's old pods to them would let them
    // join the old cluster.
    let revision = |p: &cutover_sim::EndpointPod| {
        p.labels
            .get("pod-template-hash")
            .or_else(|| p.labels.get("controller-revision-hash"))
            .cloned()
    };
    let headless = env.endpoints_of("liferay-headless");
    for r in &headless {
        let mut revisions: Vec<String> = r.ready.iter().filter_map(revision).collect();
        revisions.dedup();
        assert!(
            revisions.len() <= 1,
            "blue's headless service listed pods of two revisions at {}: {:?}",
            r.time,
            listed(r)
        );
    }
    let blue: Vec<String> = headless
        .iter()
        .find(|r| !r.ready.is_empty())
        .map(|r| r.ready.iter().filter_map(revision).collect())
        .expect("blue's headless service listed blue's pods");
    // Until the traffic Service's first change after the last one that listed green.
    let traffic = env.endpoints();
    let last_green = traffic
        .iter()
        .rposition(|r| r.ready.iter().any(|p| p.name.starts_with(green_prefix)))
        .expect("green served");
    let green_served_until = traffic
        .get(last_green + 1)
        .map_or(traffic[last_green].time, |r| r.time);
    assert!(
        headless
            .iter()
            .filter(|r| r.time < green_served_until)
            .any(|r| {
                !r.ready.is_empty()
                    && r.ready
                        .iter()
                        .all(|p| revision(p).is_some_and(|v| !blue.contains(&v)))
            }),
        "while green served, blue's headless service never listed the target's new pods (blue's revision {blue:?})"
    );
    let headless = env.services().get("liferay-headless").await.unwrap();
    assert_eq!(
        serde_json::to_value(headless.spec.unwrap().selector).unwrap(),
        selector
    );
    assert!(
        env.services()
            .get_opt("liferay-headless-green")
            .await
            .unwrap()
            .is_none(),
        "the twin is removed"
    );
}
