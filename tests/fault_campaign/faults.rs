//! How faults reach the operator, apart from what a run does: the fault rates of a run, and
//! the bed that injects them. On the simulated bed every rule matches the bearer token of the
//! operator's kubeconfig, so the test's own client and the simulated controllers are never
//! faulted; what fired is read back from the cluster's record. Another bed (a proxy in front
//! of a real API server) would give the operator its kubeconfig and count what fired the same
//! way. Nothing here decides which plan runs or judges it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cutover_sim::FaultRule;

use super::rng::Rng;
use super::support::Env;

/// The bearer token of the operator process: fault rules match it and nothing else.
const OPERATOR_TOKEN: &str = "cutover-operator";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Conflict,
    Throttle,
    ServerError,
    Latency,
    DropWatch,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Conflict,
        FaultKind::Throttle,
        FaultKind::ServerError,
        FaultKind::Latency,
        FaultKind::DropWatch,
    ];
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Conflict => "409 Conflict",
            FaultKind::Throttle => "429 TooManyRequests",
            FaultKind::ServerError => "500 InternalError",
            FaultKind::Latency => "latency",
            FaultKind::DropWatch => "dropped watches",
        }
    }
}

/// The API faults of one run, each kind off (0) or at a rate per request.
#[derive(Clone, Debug)]
pub struct FaultRates {
    /// Probability of a 409 on each of the operator's writes.
    pub conflict: f64,
    /// Probability of a 429 on each of the operator's requests.
    pub throttle: f64,
    /// Probability of a 500 on each of the operator's requests.
    pub server_error: f64,
    /// Probability and size of added latency on each of the operator's requests.
    pub latency: f64,
    pub latency_ms: u64,
    /// Probability that a watch of the operator is cut, and after how long.
    pub drop_watch: f64,
    pub drop_after_ms: u64,
}

impl FaultRates {
    /// Each kind on with probability 3/4, at a rate drawn from `rng`.
    pub fn draw(rng: &mut Rng) -> FaultRates {
        FaultRates {
            conflict: rng.rate(0.75, 0.03, 0.15),
            throttle: rng.rate(0.75, 0.02, 0.08),
            server_error: rng.rate(0.75, 0.02, 0.08),
            latency: rng.rate(0.75, 0.05, 0.3),
            latency_ms: rng.range(1, 60),
            drop_watch: rng.rate(0.75, 0.1, 0.6),
            drop_after_ms: rng.range(0, 400),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "faults 409 {:.2} 429 {:.2} 500 {:.2} latency {:.2}x{}ms drop-watch {:.2}@{}ms",
            self.conflict,
            self.throttle,
            self.server_error,
            self.latency,
            self.latency_ms,
            self.drop_watch,
            self.drop_after_ms
        )
    }
}

/// The faults of a run installed on the simulated bed: the rules, by kind.
pub struct Installed {
    rules: Vec<(FaultKind, u64)>,
    kubeconfig: PathBuf,
}

/// Installs `rates` for the operator of `env` (the simulated cluster).
pub fn install(env: &Env, rates: &FaultRates) -> Installed {
    let mut rules = Vec::new();
    let operator = |rule: FaultRule| rule.user(OPERATOR_TOKEN);
    if rates.conflict > 0.0 {
        // A conflict is what a write gets when someone else wrote first.
        for verb in ["create", "update", "patch", "delete"] {
            let rule = operator(
                FaultRule::status(409)
                    .verb(verb)
                    .probability(rates.conflict),
            );
            rules.push((FaultKind::Conflict, env.sim().inject(rule)));
        }
    }
    if rates.throttle > 0.0 {
        let rule = operator(FaultRule::status(429).probability(rates.throttle));
        rules.push((FaultKind::Throttle, env.sim().inject(rule)));
    }
    if rates.server_error > 0.0 {
        let rule = operator(FaultRule::status(500).probability(rates.server_error));
        rules.push((FaultKind::ServerError, env.sim().inject(rule)));
    }
    if rates.latency > 0.0 {
        let rule = operator(
            FaultRule::latency(Duration::from_millis(rates.latency_ms)).probability(rates.latency),
        );
        rules.push((FaultKind::Latency, env.sim().inject(rule)));
    }
    if rates.drop_watch > 0.0 {
        let rule = operator(
            FaultRule::drop_watch(Duration::from_millis(rates.drop_after_ms))
                .probability(rates.drop_watch),
        );
        rules.push((FaultKind::DropWatch, env.sim().inject(rule)));
    }
    Installed {
        rules,
        kubeconfig: env.kubeconfig_with_token(OPERATOR_TOKEN),
    }
}

impl Installed {
    /// The kubeconfig the operator process uses: its requests, and only they, are faulted.
    pub fn operator_kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// How often each kind fired, as the cluster recorded it; then no fault fires any more
    /// (the end state is read without them).
    pub fn finish(self, env: &Env) -> BTreeMap<FaultKind, u64> {
        let mut counts: BTreeMap<FaultKind, u64> = FaultKind::ALL.iter().map(|k| (*k, 0)).collect();
        for (kind, id) in &self.rules {
            *counts.entry(*kind).or_default() += u64::from(env.sim().faults().fired(*id));
        }
        env.sim().faults().clear();
        let _ = std::fs::remove_file(&self.kubeconfig);
        counts
    }
}
