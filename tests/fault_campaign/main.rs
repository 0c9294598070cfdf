//! A seeded fault campaign against `cutover run` as a separate process, over every flow the
//! operator carries out: both target kinds (Deployment, StatefulSet); RollingRestart with a
//! template change and as a plain restart, BlueGreen and FullRestart; the GitOps
//! pending-template flow; an abort before and after the switch and mid-way; the deletion of a
//! running plan; a second plan waiting on the lock; and checks (Job or webhook, before or
//! after the switch or after each pod) that pass or fail. Each run starts a fresh simulated
//! cluster, injects API errors (409, 429, 500), latency and dropped watches into the
//! operator's own requests (the test's client is never faulted), SIGKILLs the operator at
//! random moments and starts it again, and then judges the invariants of DESIGN section 4
//! over the recorded history and the cluster's end state.
//!
//! The modules: `rng` (seeded numbers), `flows` (what a flow is), `config` (what one run
//! draws, and what its end must be), `plans` (its manifests), `faults` (how faults reach the
//! operator: the bed's part), `run` (one run), `judge` (the invariants), `report`.
//! Everything a run does follows from its seed; only process and network timing is not
//! reproducible. Runs come in blocks of one run per flow (runs 0-16, 17-33, ...), so a
//! campaign of 17 runs or more covers every flow.
//!
//! `small_campaign_keeps_every_invariant` runs one run of each flow on every `cargo test`;
//! the ignored `campaign` runs `CUTOVER_CAMPAIGN_RUNS` runs (default 500) from
//! `CUTOVER_CAMPAIGN_SEED` (default: from the clock), `CUTOVER_CAMPAIGN_JOBS` at a time
//! (default 1), and prints a report; `scripts/fault-campaign` runs it.
//! `CUTOVER_CAMPAIGN_ONLY=N` replays run N alone, `CUTOVER_CAMPAIGN_LOGS=DIR` keeps the
//! operator's logs (at the level `CUTOVER_CAMPAIGN_RUST_LOG`, default `warn`). Not covered
//! here: the real control plane (faults are injected by the simulated cluster), faults in
//! the simulated controllers, checks on a StatefulSet target, several targets at once.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod faults;
mod flows;
mod judge;
mod plans;
mod report;
mod rng;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;

use config::RunConfig;
use run::RunResult;

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
                match tokio::spawn(run::run_one(cfg, logs)).await {
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

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}")))
}

#[cfg(test)]
mod tests;

/// The small campaign's seed: one run of each flow, among them three whose new pods never get
/// Ready (a Deployment's rollout, a StatefulSet's rollout and BlueGreen), kills in 14 of
/// the 17 runs, and every fault kind switched on in ten or more.
const SMALL_SEED: u64 = 12;

/// A small fixed campaign on every `cargo test`: one run of every flow, with no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_campaign_keeps_every_invariant() {
    let c = Campaign {
        seed: SMALL_SEED,
        runs: flows::Flow::ALL.len(),
        // Runs mostly wait (on the operator's back-off and the pods' delays): four at a time
        // keep it well under a minute.
        jobs: 4,
        only: None,
        logs: None,
    };
    let configs: Vec<RunConfig> = (0..c.runs).map(|i| RunConfig::new(c.seed, i)).collect();
    for flow in flows::Flow::ALL {
        assert!(configs.iter().any(|c| c.flow == flow), "{flow:?}");
    }
    assert!(configs.iter().filter(|c| c.permanent).count() >= 3);
    assert!(configs.iter().filter(|c| !c.kills.is_empty()).count() >= 14);
    let (results, text) = run_and_report(&c).await;
    assert!(
        results.iter().all(|r| r.violations.is_empty()),
        "invariant violations:\n{text}"
    );
    assert!(
        results.iter().any(|r| r.kills > 0),
        "no kill happened:\n{text}"
    );
    for kind in faults::FaultKind::ALL {
        assert!(
            results
                .iter()
                .any(|r| r.faults.get(&kind).is_some_and(|n| *n > 0)),
            "no {} fired:\n{text}",
            kind.label()
        );
    }
}

/// Runs the campaign `c` and prints its report; the results and the report's text.
async fn run_and_report(c: &Campaign) -> (Vec<RunResult>, String) {
    let (results, wall) = run_campaign(c).await;
    let header = report::Header {
        seed: c.seed,
        jobs: c.jobs,
    };
    let text = report::report(&header, &results, wall);
    println!("{text}");
    (results, text)
}

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
        rng::splitmix64(nanos) % 1_000_000
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
    let (results, _) = run_and_report(&c).await;
    assert!(
        results.iter().all(|r| r.violations.is_empty()),
        "the campaign found invariant violations (see the report above)"
    );
}
