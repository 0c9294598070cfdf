//! A seeded fault campaign against `cutover run` as a separate process. Each run starts a
//! fresh simulated cluster with the sample application, applies a RollingRestart (a new image,
//! or a plain restart) or a BlueGreen plan, injects API errors (409, 429, 500), latency and
//! dropped watches into the operator's own requests (the operator sends a bearer token of its
//! own; the test's client is never faulted), SIGKILLs the operator at random moments and
//! starts it again, and then checks the invariants of DESIGN section 4 over the recorded
//! history: no gap and no fewer ready endpoints than replicas, no mixing for BlueGreen, a
//! clean end on success, a safe failure (blue untouched) for runs whose new pods never become
//! Ready, and an end within a deadline.
//!
//! Everything a run does follows from its seed (strategy, replicas, fault rates, kill moments,
//! permanent fault or not); only process and network timing is not reproducible. Faults are
//! counted from the simulated cluster's record of what fired, not from what was configured.
//!
//! `small_campaign_keeps_every_invariant` runs a few runs on every `cargo test`; the ignored
//! `campaign` runs `CUTOVER_CAMPAIGN_RUNS` runs (default 500) from `CUTOVER_CAMPAIGN_SEED`
//! (default: from the clock), `CUTOVER_CAMPAIGN_JOBS` at a time (default 1), and prints a
//! report; `scripts/fault-campaign` runs it. `CUTOVER_CAMPAIGN_ONLY=N` replays run N alone,
//! `CUTOVER_CAMPAIGN_LOGS=DIR` keeps the operator's logs (at the level
//! `CUTOVER_CAMPAIGN_RUST_LOG`, default `warn`). Not covered here: FullRestart,
//! several plans at once, aborts and deletions, faults in the simulated controllers.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cutover::api::{MaintenancePlan, Phase};
use cutover_sim::{EndpointsRecord, FaultRule, SimOptions};
use futures::StreamExt;
use kube::api::ListParams;
use serde_json::json;
use support::{APP, Env, Killed, NS};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const PLAN: &str = "campaign";
/// The bearer token of the operator process: fault rules match it and nothing else.
const OPERATOR_TOKEN: &str = "cutover-operator";
/// A run that has not ended by then hangs (invariant 7).
const RUN_DEADLINE: Duration = Duration::from_secs(45);
/// How long the end state may take to settle (terminating pods going away).
const SETTLE: Duration = Duration::from_secs(5);
const READY_AFTER: &str = "sim.cutover.dev/ready-after-ms";

// ---------------------------------------------------------------------------------------
// Seeded randomness

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A splitmix64 generator: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Uniform in `[lo, hi)`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// With probability `p`, a rate in `[lo, hi)`; else zero (the fault kind is off).
    fn rate(&mut self, p: f64, lo: f64, hi: f64) -> f64 {
        if self.chance(p) {
            self.between(lo, hi)
        } else {
            0.0
        }
    }
}

// ---------------------------------------------------------------------------------------
// What a run does

/// How the plan is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Technique {
    /// RollingRestart with a new image: the Deployment's controller, paced by the operator.
    Rollout,
    /// RollingRestart without a template change: a surge pod, then evictions.
    Restart,
    /// BlueGreen: a green copy, one selector switch.
    BlueGreen,
}

impl Technique {
    fn strategy(self) -> &'static str {
        match self {
            Technique::Rollout | Technique::Restart => "RollingRestart",
            Technique::BlueGreen => "BlueGreen",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Technique::Rollout => "RollingRestart (new image)",
            Technique::Restart => "RollingRestart (plain restart)",
            Technique::BlueGreen => "BlueGreen",
        }
    }
}

/// When an operator process is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Once this process has made this many writes.
    AfterWrites(usize),
    /// This long after this process started.
    AfterMillis(u64),
}

/// Everything one run does, drawn from its seed.
#[derive(Clone, Debug)]
struct RunConfig {
    index: usize,
    seed: u64,
    technique: Technique,
    replicas: i32,
    /// The new pods never become Ready: the plan must fail safely.
    permanent: bool,
    /// Milliseconds until a new pod is Ready (Rollout and BlueGreen; a plain restart keeps
    /// the template and the cluster's default).
    ready_after_ms: u64,
    /// Probability of a 409 on each of the operator's writes.
    conflict: f64,
    /// Probability of a 429 on each of the operator's requests.
    throttle: f64,
    /// Probability of a 500 on each of the operator's requests.
    server_error: f64,
    /// Probability and size of added latency on each of the operator's requests.
    latency: f64,
    latency_ms: u64,
    /// Probability that a watch of the operator is cut, and after how long.
    drop_watch: f64,
    drop_after_ms: u64,
    /// When each operator process is killed (the last one runs to the end).
    kills: Vec<Kill>,
    /// Pause between a kill and the next start.
    restart_delay_ms: u64,
}

impl RunConfig {
    fn new(campaign_seed: u64, index: usize) -> RunConfig {
        let seed = splitmix64(campaign_seed ^ splitmix64(index as u64));
        let mut rng = Rng(seed);
        let technique = match rng.range(0, 7) {
            0..=2 => Technique::Rollout,
            3 => Technique::Restart,
            _ => Technique::BlueGreen,
        };
        let replicas = rng.range(1, 3) as i32;
        let permanent = technique != Technique::Restart && rng.chance(0.1);
        let ready_after_ms = rng.range(0, 120);
        let conflict = rng.rate(0.75, 0.03, 0.15);
        let throttle = rng.rate(0.75, 0.02, 0.08);
        let server_error = rng.rate(0.75, 0.02, 0.08);
        let latency = rng.rate(0.75, 0.05, 0.3);
        let latency_ms = rng.range(1, 60);
        let drop_watch = rng.rate(0.75, 0.1, 0.6);
        let drop_after_ms = rng.range(0, 400);
        let kill_count = [0, 1, 1, 2, 2, 3][rng.range(0, 5) as usize];
        let kills = (0..kill_count)
            .map(|_| {
                if rng.chance(0.5) {
                    Kill::AfterWrites(rng.range(1, 25) as usize)
                } else {
                    Kill::AfterMillis(rng.range(0, 1500))
                }
            })
            .collect();
        let restart_delay_ms = rng.range(0, 300);
        RunConfig {
            index,
            seed,
            technique,
            replicas,
            permanent,
            ready_after_ms,
            conflict,
            throttle,
            server_error,
            latency,
            latency_ms,
            drop_watch,
            drop_after_ms,
            kills,
            restart_delay_ms,
        }
    }

    fn expected(&self) -> Phase {
        if self.permanent {
            Phase::Failed
        } else {
            Phase::Succeeded
        }
    }

    /// The image the target runs at the end.
    fn final_image(&self) -> &'static str {
        match self.technique {
            _ if self.permanent => OLD_IMAGE,
            Technique::Restart => OLD_IMAGE,
            Technique::Rollout | Technique::BlueGreen => NEW_IMAGE,
        }
    }

    fn plan(&self) -> serde_json::Value {
        let ready = if self.permanent {
            "never".to_string()
        } else {
            self.ready_after_ms.to_string()
        };
        let update = json!({
            "image": NEW_IMAGE,
            "podTemplatePatch": {"metadata": {"annotations": {READY_AFTER: ready}}}
        });
        match self.technique {
            Technique::Restart => json!({"target": {"name": APP}, "service": APP}),
            Technique::Rollout => {
                let mut spec = json!({
                    "target": {"name": APP}, "service": APP,
                    "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
                    "update": update
                });
                if self.permanent {
                    spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 1});
                }
                spec
            }
            Technique::BlueGreen => {
                let mut spec = json!({
                    "target": {"name": APP}, "service": APP,
                    "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
                    "update": update,
                    "blueGreen": {"scaleDownDelaySeconds": 0}
                });
                if self.permanent {
                    spec["blueGreen"]["readyTimeoutSeconds"] = json!(1);
                }
                spec
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} x{}{}, faults 409 {:.2} 429 {:.2} 500 {:.2} latency {:.2}x{}ms drop-watch {:.2}@{}ms, kills {:?}, restart after {}ms",
            self.technique.label(),
            self.replicas,
            if self.permanent {
                ", new pods never Ready"
            } else {
                ""
            },
            self.conflict,
            self.throttle,
            self.server_error,
            self.latency,
            self.latency_ms,
            self.drop_watch,
            self.drop_after_ms,
            self.kills,
            self.restart_delay_ms
        )
    }
}

// ---------------------------------------------------------------------------------------
// Faults

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    Conflict,
    Throttle,
    ServerError,
    Latency,
    DropWatch,
}

impl FaultKind {
    const ALL: [FaultKind; 5] = [
        FaultKind::Conflict,
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::Latency,
        FaultKind::DropWatch,
    ];
    fn label(self) -> &'static str {
        match self {
            FaultKind::Conflict => "409 Conflict",
            FaultKind::Throttle => "429 TooManyRequests",
            FaultKind::ServerError => "500 InternalError",
            FaultKind::Latency => "latency",
            FaultKind::DropWatch => "dropped watches",
        }
    }
}

/// The rules of a run, all limited to the operator's token.
fn install_faults(env: &Env, cfg: &RunConfig) -> Vec<(FaultKind, u64)> {
    let mut rules = Vec::new();
    let operator = |rule: FaultRule| rule.user(OPERATOR_TOKEN);
    if cfg.conflict > 0.0 {
        // A conflict is what a write gets when someone else wrote first.
        for verb in ["create", "update", "patch", "delete"] {
            let rule = operator(FaultRule::status(409).verb(verb).probability(cfg.conflict));
            rules.push((FaultKind::Conflict, env.sim().inject(rule)));
        }
    }
    if cfg.throttle > 0.0 {
        let rule = operator(FaultRule::status(429).probability(cfg.throttle));
        rules.push((FaultKind::Throttle, env.sim().inject(rule)));
    }
    if cfg.server_error > 0.0 {
        let rule = operator(FaultRule::status(500).probability(cfg.server_error));
        rules.push((FaultKind::ServerError, env.sim().inject(rule)));
    }
    if cfg.latency > 0.0 {
        let rule = operator(
            FaultRule::latency(Duration::from_millis(cfg.latency_ms)).probability(cfg.latency),
        );
        rules.push((FaultKind::Latency, env.sim().inject(rule)));
    }
    if cfg.drop_watch > 0.0 {
        let rule = operator(
            FaultRule::drop_watch(Duration::from_millis(cfg.drop_after_ms))
                .probability(cfg.drop_watch),
        );
        rules.push((FaultKind::DropWatch, env.sim().inject(rule)));
    }
    rules
}

// ---------------------------------------------------------------------------------------
// The operator process

fn spawn_operator(kubeconfig: &Path, log: Option<PathBuf>) -> Killed {
    let stderr = match log.map(std::fs::File::create) {
        Some(Ok(file)) => Stdio::from(file),
        _ => Stdio::null(),
    };
    let level = std::env::var("CUTOVER_CAMPAIGN_RUST_LOG").unwrap_or_else(|_| "warn".into());
    support::run_operator(kubeconfig, &level, stderr)
}

// ---------------------------------------------------------------------------------------
// One run

/// What a run did and what went wrong.
#[derive(Debug)]
struct RunResult {
    cfg: RunConfig,
    /// The plan's final phase (None: it never ended).
    outcome: Option<Phase>,
    faults: BTreeMap<FaultKind, u64>,
    kills: usize,
    violations: Vec<String>,
    elapsed: Duration,
}

fn is_terminal(phase: Option<Phase>) -> bool {
    matches!(
        phase,
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
    )
}

async fn run_one(cfg: RunConfig, logs: Option<PathBuf>) -> RunResult {
    let began = Instant::now();
    let env = Env::with_options(SimOptions {
        seed: cfg.seed,
        ..SimOptions::default()
    })
    .await;
    env.deploy_app(cfg.replicas).await;
    let start = env.endpoints().len() - 1;
    let blue: Vec<String> = names(&env.endpoints()[start]);
    let kubeconfig = env.kubeconfig_with_token(OPERATOR_TOKEN);
    let rules = install_faults(&env, &cfg);
    let log = |n: usize| {
        logs.as_ref()
            .map(|dir| dir.join(format!("run-{}-{n}.log", cfg.index)))
    };

    let mut incarnation = 0;
    let mut operator = spawn_operator(&kubeconfig, log(incarnation));
    let (mut spawned_at, mut writes_at_spawn) = (Instant::now(), env.operator_writes());
    env.apply_plan(PLAN, cfg.plan()).await;
    let deadline = Instant::now() + RUN_DEADLINE;
    let mut kills = cfg.kills.iter();
    let mut next_kill = kills.next();
    let mut killed = 0;
    let mut violations = Vec::new();
    let plan = loop {
        let plan = env.plans().get(PLAN).await.expect("plan readable");
        if is_terminal(plan.status.as_ref().and_then(|s| s.phase)) {
            break plan;
        }
        if Instant::now() > deadline {
            let status = plan.status.clone().unwrap_or_default();
            violations.push(format!(
                "nothing hangs: the plan did not end within {RUN_DEADLINE:?}; phase {:?}, step {:?}: {:?}",
                status.phase, status.step, status.message
            ));
            break plan;
        }
        let due = match next_kill {
            Some(Kill::AfterWrites(n)) => env.operator_writes() >= writes_at_spawn + n,
            Some(Kill::AfterMillis(ms)) => spawned_at.elapsed() >= Duration::from_millis(*ms),
            None => false,
        };
        if due {
            drop(operator); // SIGKILL, no chance to clean up
            killed += 1;
            next_kill = kills.next();
            tokio::time::sleep(Duration::from_millis(cfg.restart_delay_ms)).await;
            incarnation += 1;
            operator = spawn_operator(&kubeconfig, log(incarnation));
            (spawned_at, writes_at_spawn) = (Instant::now(), env.operator_writes());
            continue;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The end state must hold on its own, without an operator fixing it up afterwards.
    drop(operator);
    let faults = fired(&env, &rules);
    env.sim().faults().clear();
    let _ = std::fs::remove_file(&kubeconfig);

    let phase = plan.status.as_ref().and_then(|s| s.phase);
    let records = env.endpoints();
    let succeeded = phase == Some(Phase::Succeeded) && !cfg.permanent;
    violations.extend(history_violations(&cfg, &records, start, &blue, succeeded));
    if is_terminal(phase) {
        violations.extend(outcome_violations(&cfg, &plan));
        if phase == Some(cfg.expected()) {
            violations.extend(end_violations(&env, cfg.replicas, cfg.final_image()).await);
        }
    }
    RunResult {
        cfg,
        outcome: phase.filter(|p| is_terminal(Some(*p))),
        faults,
        kills: killed,
        violations,
        elapsed: began.elapsed(),
    }
}

fn fired(env: &Env, rules: &[(FaultKind, u64)]) -> BTreeMap<FaultKind, u64> {
    let mut counts: BTreeMap<FaultKind, u64> = FaultKind::ALL.iter().map(|k| (*k, 0)).collect();
    for (kind, id) in rules {
        *counts.entry(*kind).or_default() += u64::from(env.sim().faults().fired(*id));
    }
    counts
}

fn names(record: &EndpointsRecord) -> Vec<String> {
    record.ready.iter().map(|p| p.name.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// Invariant checks: each returns what it found wrong, in words

/// Over the recorded endpoints from `start` on: no gap (invariant 1), never fewer ready
/// endpoints than replicas (invariants 1 and 3, as the end-to-end tests check), no mixing for
/// BlueGreen (invariant 2), for a permanent fault blue alone serving throughout with no pod
/// restarted (invariant 5), and after a success no pod left from before (invariant 4).
fn history_violations(
    cfg: &RunConfig,
    records: &[EndpointsRecord],
    start: usize,
    blue: &[String],
    succeeded: bool,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Err(gap) = cutover::invariants::ready_at_least(records, start, 1) {
        found.push(format!("no gap: {gap}"));
    } else if let Err(floor) =
        cutover::invariants::ready_at_least(records, start, cfg.replicas as usize)
    {
        found.push(format!("ready floor: {floor}"));
    }
    if cfg.technique == Technique::BlueGreen
        && let Err(mix) = cutover::invariants::no_mixing(records, start)
    {
        found.push(format!("no mixing: {mix}"));
    }
    if cfg.permanent {
        if let Some((i, r)) = records
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, r)| names(r) != blue)
        {
            found.push(format!(
                "safe failure: endpoint change #{i} at {} serves {:?}, not blue's untouched pods {blue:?}",
                r.time,
                names(r)
            ));
        }
    } else if succeeded && !support::survivors(records, start).is_empty() {
        found.push(format!(
            "clean end: pods {:?} served before and after the plan; they were never replaced",
            support::survivors(records, start)
        ));
    }
    found
}

/// The plan ended as it should: Succeeded, or for a permanent fault Failed with the Stalled
/// condition and a message that says what it waited for (invariants 5 and 7).
fn outcome_violations(cfg: &RunConfig, plan: &MaintenancePlan) -> Vec<String> {
    let status = plan.status.clone().unwrap_or_default();
    let mut found = Vec::new();
    if status.phase != Some(cfg.expected()) {
        found.push(format!(
            "outcome: expected {:?}, the plan ended {:?} at step {:?}: {:?}",
            cfg.expected(),
            status.phase,
            status.step,
            status.message
        ));
        return found;
    }
    // The status is the record of the plan, also when the operator was killed or its writes
    // failed (invariant 8: it resumes from the plan's status).
    if status.strategy.map(|s| s.as_str()) != Some(cfg.technique.strategy()) {
        found.push(format!(
            "status: strategy {:?}, expected {}",
            status.strategy,
            cfg.technique.strategy()
        ));
    }
    if !status
        .conditions
        .iter()
        .any(|c| c.type_ == "Evaluated" && c.status == "True")
    {
        found.push("status: no Evaluated condition".into());
    }
    if status.started_at.is_none() || status.completed_at.is_none() {
        found.push(format!(
            "status: startedAt {:?}, completedAt {:?}",
            status.started_at, status.completed_at
        ));
    }
    if cfg.permanent {
        let message = status.message.clone().unwrap_or_default();
        if !message.contains("not Ready within 1s") {
            found.push(format!(
                "safe failure: the message does not say what the plan waited for: {message:?}"
            ));
        }
        if !status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
        {
            found.push("safe failure: no Stalled condition on the failed plan".into());
        }
    } else if !status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
    {
        found.push("outcome: the Succeeded plan is not Ready".into());
    }
    found
}

/// Invariants 4 and 5 on the cluster after the plan ended (the operator already gone): the
/// target runs `image` with its replicas and its own strategy, unpaused, without the
/// operator's marks; the Service's selector is the original; nothing the operator made is
/// left (green Deployment, its ReplicaSets and pods, surge pods). Terminating pods get
/// [`SETTLE`] to go away.
async fn end_violations(env: &Env, replicas: i32, image: &str) -> Vec<String> {
    let mut found = Vec::new();
    let target = env.deployments().get(APP).await.expect("target readable");
    let spec = target.spec.clone().unwrap_or_default();
    if spec.replicas != Some(replicas) {
        found.push(format!(
            "clean end: target has {:?} replicas, expected {replicas}",
            spec.replicas
        ));
    }
    let target_image = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    if target_image.as_deref() != Some(image) {
        found.push(format!(
            "clean end: target template runs {target_image:?}, expected {image}"
        ));
    }
    let marks: Vec<String> = target
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_keys()
        .filter(|k| k.starts_with("cutover.dev/"))
        .collect();
    if !marks.is_empty() {
        found.push(format!(
            "clean end: operator marks left on the target: {marks:?}"
        ));
    }
    let strategy = serde_json::to_value(&spec.strategy).unwrap_or_default();
    let original = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    if strategy != original {
        found.push(format!(
            "clean end: target strategy is {strategy}, expected {original}"
        ));
    }
    if spec.paused == Some(true) {
        found.push("clean end: target left paused".into());
    }
    if spec.min_ready_seconds.unwrap_or(0) != 0 {
        found.push(format!(
            "clean end: target minReadySeconds left at {:?}",
            spec.min_ready_seconds
        ));
    }
    let selector = env
        .services()
        .get(APP)
        .await
        .expect("service readable")
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default();
    if selector != BTreeMap::from([("app".to_string(), APP.to_string())]) {
        found.push(format!(
            "clean end: service selector is {selector:?}, not the original {{app: {APP}}}"
        ));
    }
    let others: Vec<String> = env
        .deployments()
        .list(&ListParams::default())
        .await
        .expect("deployments readable")
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .filter(|n| n != APP)
        .collect();
    if !others.is_empty() {
        found.push(format!("clean end: deployments left behind: {others:?}"));
    }
    // Pods and ReplicaSets go away through the garbage collector and a grace period.
    let settle = Instant::now() + SETTLE;
    loop {
        let leftovers = leftovers(env, replicas, image).await;
        if leftovers.is_empty() {
            break;
        }
        if Instant::now() > settle {
            found.extend(leftovers);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    found
}

/// What is still wrong with the pods and ReplicaSets at the end.
async fn leftovers(env: &Env, replicas: i32, image: &str) -> Vec<String> {
    let mut found = Vec::new();
    let pods = env
        .pods()
        .list(&ListParams::default())
        .await
        .expect("pods readable")
        .items;
    let made: Vec<String> = pods
        .iter()
        .filter(|p| {
            p.metadata.labels.as_ref().is_some_and(|l| {
                l.contains_key("cutover.dev/plan") || l.contains_key("cutover.dev/copy")
            })
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if !made.is_empty() {
        found.push(format!(
            "clean end: pods made by the operator left: {made:?}"
        ));
    }
    let images = env.images().await;
    if images.len() as i32 != replicas || images.iter().any(|i| i != image) {
        found.push(format!(
            "clean end: the application's pods run {images:?}, expected {replicas} x {image}"
        ));
    }
    let replica_sets: Vec<String> = env
        .sim()
        .list(&cutover_sim::keys::REPLICASETS, Some(NS))
        .iter()
        .filter(|rs| !rs["metadata"]["labels"]["cutover.dev/copy"].is_null())
        .filter_map(|rs| rs["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    if !replica_sets.is_empty() {
        found.push(format!(
            "clean end: green ReplicaSets left: {replica_sets:?}"
        ));
    }
    found
}

// ---------------------------------------------------------------------------------------
// The campaign

struct Campaign {
    seed: u64,
    runs: usize,
    jobs: usize,
    only: Option<usize>,
    logs: Option<PathBuf>,
}

async fn run_campaign(c: &Campaign) -> (Vec<RunResult>, Duration) {
    let began = Instant::now();
    let configs: Vec<RunConfig> = match c.only {
        Some(i) => vec![RunConfig::new(c.seed, i)],
        None => (0..c.runs).map(|i| RunConfig::new(c.seed, i)).collect(),
    };
    if let Some(dir) = &c.logs {
        std::fs::create_dir_all(dir).expect("log directory");
    }
    let total = configs.len();
    let logs = c.logs.clone();
    let mut results: Vec<RunResult> = futures::stream::iter(configs)
        .map(|cfg| {
            let logs = logs.clone();
            let fallback = cfg.clone();
            async move {
                // A run that panics (the harness, not the operator) is reported, not fatal.
                match tokio::spawn(run_one(cfg, logs)).await {
                    Ok(result) => result,
                    Err(e) => RunResult {
                        cfg: fallback,
                        outcome: None,
                        faults: BTreeMap::new(),
                        kills: 0,
                        violations: vec![format!("the run itself failed: {e}")],
                        elapsed: Duration::ZERO,
                    },
                }
            }
        })
        .buffer_unordered(c.jobs.max(1))
        .enumerate()
        .map(|(done, r)| {
            if (done + 1) % 50 == 0 && done + 1 < total {
                eprintln!(
                    "  {} of {total} runs done ({:.0} s)",
                    done + 1,
                    began.elapsed().as_secs_f64()
                );
            }
            r
        })
        .inspect(|r| {
            if !r.violations.is_empty() {
                eprintln!(
                    "run {} (seed {:#018x}): {} violation(s)",
                    r.cfg.index,
                    r.cfg.seed,
                    r.violations.len()
                );
            }
        })
        .collect()
        .await;
    results.sort_by_key(|r| r.cfg.index);
    assert_eq!(results.len(), total);
    (results, began.elapsed())
}

fn report(c: &Campaign, results: &[RunResult], wall: Duration) -> String {
    let mut out = String::new();
    let w = &mut out;
    let count = |f: &dyn Fn(&RunResult) -> bool| results.iter().filter(|r| f(r)).count();
    let _ = writeln!(
        w,
        "fault campaign: {} runs from seed {} ({:#x}), {} at a time",
        results.len(),
        c.seed,
        c.seed,
        c.jobs
    );
    let _ = writeln!(w, "runs");
    for t in [Technique::Rollout, Technique::Restart, Technique::BlueGreen] {
        let _ = writeln!(
            w,
            "  {:<34}{:>6}   (of them new pods never Ready: {})",
            t.label(),
            count(&|r| r.cfg.technique == t),
            count(&|r| r.cfg.technique == t && r.cfg.permanent)
        );
    }
    let _ = writeln!(
        w,
        "  replicas 1 / 2 / 3                {:>6} / {} / {}",
        count(&|r| r.cfg.replicas == 1),
        count(&|r| r.cfg.replicas == 2),
        count(&|r| r.cfg.replicas == 3)
    );
    let _ = writeln!(w, "outcomes");
    for (phase, label) in [(Phase::Succeeded, "Succeeded"), (Phase::Failed, "Failed")] {
        let _ = writeln!(
            w,
            "  {label:<34}{:>6}   (expected {})",
            count(&|r| r.outcome == Some(phase)),
            count(&|r| r.cfg.expected() == phase)
        );
    }
    let _ = writeln!(
        w,
        "  {:<34}{:>6}",
        "other phase",
        count(&|r| r
            .outcome
            .is_some_and(|p| p != Phase::Succeeded && p != Phase::Failed))
    );
    let _ = writeln!(
        w,
        "  {:<34}{:>6}",
        "did not end (hung)",
        count(&|r| r.outcome.is_none())
    );
    let _ = writeln!(
        w,
        "faults injected into the operator's requests (fired, as recorded by the cluster)"
    );
    for kind in FaultKind::ALL {
        let n: u64 = results
            .iter()
            .map(|r| r.faults.get(&kind).copied().unwrap_or(0))
            .sum();
        let runs = count(&|r| r.faults.get(&kind).is_some_and(|n| *n > 0));
        let _ = writeln!(w, "  {:<34}{n:>6}   in {runs} runs", kind.label());
    }
    let latency_ms: u64 = results
        .iter()
        .map(|r| r.faults.get(&FaultKind::Latency).copied().unwrap_or(0) * r.cfg.latency_ms)
        .sum();
    let _ = writeln!(
        w,
        "  {:<34}{:>6.1} s",
        "latency added in all",
        latency_ms as f64 / 1000.0
    );
    let kills: usize = results.iter().map(|r| r.kills).sum();
    let _ = writeln!(
        w,
        "operator SIGKILLs (each followed by a restart)\n  {:<34}{kills:>6}   in {} runs",
        "kills",
        count(&|r| r.kills > 0)
    );
    let mut times: Vec<f64> = results.iter().map(|r| r.elapsed.as_secs_f64()).collect();
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        let _ = writeln!(
            w,
            "run time (s)\n  {:<34}{:.2} / {:.2} / {:.2} / {:.2}",
            "min / median / p95 / max",
            times[0],
            times[times.len() / 2],
            times[(times.len() * 95 / 100).min(times.len() - 1)],
            times[times.len() - 1]
        );
    }
    let mut slowest: Vec<&RunResult> = results.iter().collect();
    slowest.sort_by_key(|r| std::cmp::Reverse(r.elapsed));
    let _ = writeln!(w, "slowest runs");
    for r in slowest.iter().take(3) {
        let _ = writeln!(
            w,
            "  run {:<4} {:>6.2} s  {:?}: {}",
            r.cfg.index,
            r.elapsed.as_secs_f64(),
            r.outcome,
            r.cfg.describe()
        );
    }
    let violations: usize = results.iter().map(|r| r.violations.len()).sum();
    let _ = writeln!(
        w,
        "invariant violations\n  {:<34}{violations:>6}   in {} runs",
        "violations",
        count(&|r| !r.violations.is_empty())
    );
    for r in results.iter().filter(|r| !r.violations.is_empty()) {
        let _ = writeln!(
            w,
            "  run {} (seed {:#018x}; replay: CUTOVER_CAMPAIGN_SEED={} CUTOVER_CAMPAIGN_ONLY={}): {}",
            r.cfg.index,
            r.cfg.seed,
            c.seed,
            r.cfg.index,
            r.cfg.describe()
        );
        for v in &r.violations {
            let _ = writeln!(w, "    - {v}");
        }
    }
    let _ = writeln!(w, "wall time\n  {:<34}{:.1} s", "", wall.as_secs_f64());
    out
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}")))
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn the_generator_is_reproducible_and_covers_every_kind_of_run() {
    let a: Vec<String> = (0..50).map(|i| RunConfig::new(7, i).describe()).collect();
    let b: Vec<String> = (0..50).map(|i| RunConfig::new(7, i).describe()).collect();
    assert_eq!(a, b);
    assert_ne!(
        a,
        (0..50)
            .map(|i| RunConfig::new(8, i).describe())
            .collect::<Vec<_>>()
    );
    let configs: Vec<RunConfig> = (0..500).map(|i| RunConfig::new(7, i)).collect();
    for t in [Technique::Rollout, Technique::Restart, Technique::BlueGreen] {
        assert!(configs.iter().any(|c| c.technique == t), "{t:?}");
    }
    for n in 1..=3 {
        assert!(configs.iter().any(|c| c.replicas == n), "{n} replicas");
    }
    let permanent = configs.iter().filter(|c| c.permanent).count();
    assert!(
        (20..=80).contains(&permanent),
        "{permanent} permanent faults"
    );
    assert!(
        configs
            .iter()
            .any(|c| c.permanent && c.technique == Technique::Rollout)
    );
    assert!(
        configs
            .iter()
            .any(|c| c.permanent && c.technique == Technique::BlueGreen)
    );
    assert!(
        !configs
            .iter()
            .any(|c| c.permanent && c.technique == Technique::Restart)
    );
    assert!(configs.iter().any(|c| c.kills.is_empty()));
    assert!(configs.iter().any(|c| c.kills.len() == 3));
}

#[test]
fn the_checks_find_a_gap_a_mix_and_a_touched_blue() {
    use cutover_sim::EndpointPod;
    let pod = |name: &str, hash: &str| EndpointPod {
        name: name.into(),
        pod_template_hash: Some(hash.into()),
        labels: BTreeMap::from([("pod-template-hash".to_string(), hash.to_string())]),
    };
    let record = |ready: Vec<EndpointPod>| EndpointsRecord {
        time: jiff_now(),
        namespace: NS.into(),
        service: APP.into(),
        ready,
        not_ready: Vec::new(),
    };
    let mut cfg = RunConfig::new(1, 0);
    cfg.replicas = 2;
    cfg.technique = Technique::BlueGreen;
    cfg.permanent = true;
    let blue = vec!["a".to_string(), "b".to_string()];
    let fine = vec![
        record(vec![pod("a", "1"), pod("b", "1")]),
        record(vec![pod("a", "1"), pod("b", "1")]),
    ];
    assert!(history_violations(&cfg, &fine, 0, &blue, false).is_empty());
    let broken = vec![
        record(vec![pod("a", "1"), pod("b", "1")]),
        record(vec![pod("a", "1"), pod("c", "2")]),
        record(vec![pod("a", "1")]),
        record(vec![]),
    ];
    let found = history_violations(&cfg, &broken, 0, &blue, false);
    assert!(found.iter().any(|v| v.starts_with("no gap")), "{found:?}");
    assert!(
        found.iter().any(|v| v.starts_with("no mixing")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|v| v.starts_with("safe failure")),
        "{found:?}"
    );
    // Below the replicas without a gap is a floor violation of its own.
    let thin = vec![
        record(vec![pod("a", "1"), pod("b", "1")]),
        record(vec![pod("a", "1")]),
    ];
    let found = history_violations(&cfg, &thin, 0, &blue, false);
    assert!(
        found.iter().any(|v| v.starts_with("ready floor")),
        "{found:?}"
    );
    // A successful run that never replaced a pod.
    cfg.permanent = false;
    cfg.technique = Technique::Restart;
    let found = history_violations(&cfg, &fine, 0, &blue, true);
    assert!(
        found.iter().any(|v| v.starts_with("clean end")),
        "{found:?}"
    );
    let replaced = vec![fine[0].clone(), record(vec![pod("c", "1"), pod("d", "1")])];
    assert!(history_violations(&cfg, &replaced, 0, &blue, true).is_empty());
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// A small fixed campaign on every `cargo test`: both strategies, a permanent fault, kills
/// and every fault kind, with no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_campaign_keeps_every_invariant() {
    let c = Campaign {
        seed: SMALL_SEED,
        runs: 6,
        jobs: 2,
        only: None,
        logs: None,
    };
    let configs: Vec<RunConfig> = (0..c.runs).map(|i| RunConfig::new(c.seed, i)).collect();
    assert!(
        configs
            .iter()
            .any(|c| c.technique.strategy() == "RollingRestart")
    );
    assert!(configs.iter().any(|c| c.technique == Technique::BlueGreen));
    assert!(configs.iter().any(|c| c.permanent));
    assert!(configs.iter().any(|c| !c.kills.is_empty()));
    let (results, wall) = run_campaign(&c).await;
    let text = report(&c, &results, wall);
    println!("{text}");
    assert!(
        results.iter().all(|r| r.violations.is_empty()),
        "invariant violations:\n{text}"
    );
    assert!(
        results.iter().any(|r| r.kills > 0),
        "no kill happened:\n{text}"
    );
    for kind in FaultKind::ALL {
        assert!(
            results
                .iter()
                .any(|r| r.faults.get(&kind).is_some_and(|n| *n > 0)),
            "no {} fired:\n{text}",
            kind.label()
        );
    }
}

/// Six runs: both strategies (a rollout, a plain restart), a BlueGreen whose green never gets
/// Ready, kills in five of them and every fault kind in at least three.
const SMALL_SEED: u64 = 0;

/// The full campaign: `CUTOVER_CAMPAIGN_RUNS` (default 500) runs from `CUTOVER_CAMPAIGN_SEED`;
/// prints the report and fails on any violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long; run with scripts/fault-campaign"]
async fn campaign() {
    let seed = env_number("CUTOVER_CAMPAIGN_SEED").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        splitmix64(nanos) % 1_000_000
    });
    let c = Campaign {
        seed,
        runs: env_number("CUTOVER_CAMPAIGN_RUNS").unwrap_or(500) as usize,
        jobs: env_number("CUTOVER_CAMPAIGN_JOBS").unwrap_or(1) as usize,
        only: env_number("CUTOVER_CAMPAIGN_ONLY").map(|n| n as usize),
        logs: std::env::var_os("CUTOVER_CAMPAIGN_LOGS").map(PathBuf::from),
    };
    eprintln!(
        "fault campaign: {} runs from seed {}, {} at a time",
        c.only.map_or(c.runs, |_| 1),
        c.seed,
        c.jobs
    );
    let (results, wall) = run_campaign(&c).await;
    let text = report(&c, &results, wall);
    println!("{text}");
    assert!(
        results.iter().all(|r| r.violations.is_empty()),
        "the campaign found invariant violations (see the report above)"
    );
}
