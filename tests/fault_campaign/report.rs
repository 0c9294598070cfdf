//! The campaign's report, in words: the runs by flow (so that a reader sees what was
//! covered), outcomes against what was expected, the faults that fired, the kills, run
//! times, and every violation with the line that replays its run. Only formatting: the
//! results come from `run`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::config::RunConfig;
use super::faults::FaultKind;
use super::flows::Flow;
use super::run::RunResult;

pub struct Header {
    pub seed: u64,
    pub jobs: usize,
}

/// The `runs` section: one row per flow and what its runs drew within it, in the order of
/// `Flow::ALL`.
pub fn runs_section(configs: &[&RunConfig]) -> String {
    let mut out = String::new();
    let mut rows: BTreeMap<(usize, String), (usize, usize)> = BTreeMap::new();
    for cfg in configs {
        let order = Flow::ALL
            .iter()
            .position(|f| *f == cfg.flow)
            .unwrap_or(usize::MAX);
        let row = rows.entry((order, cfg.label())).or_default();
        row.0 += 1;
        row.1 += usize::from(cfg.permanent);
    }
    let _ = writeln!(out, "runs");
    for ((_, label), (n, permanent)) in &rows {
        let note = if *permanent > 0 {
            format!("   (of them new pods never Ready: {permanent})")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {label:<72}{n:>5}{note}");
    }
    let count = |r: i32| configs.iter().filter(|c| c.replicas == r).count();
    let _ = writeln!(
        out,
        "  {:<72}{:>5} / {} / {}",
        "replicas 1 / 2 / 3",
        count(1),
        count(2),
        count(3)
    );
    out
}

pub fn report(h: &Header, results: &[RunResult], wall: Duration) -> String {
    let mut out = String::new();
    let w = &mut out;
    let count = |f: &dyn Fn(&RunResult) -> bool| results.iter().filter(|r| f(r)).count();
    let _ = writeln!(
        w,
        "fault campaign: {} runs from seed {} ({:#x}), {} at a time",
        results.len(),
        h.seed,
        h.seed,
        h.jobs
    );
    let configs: Vec<&RunConfig> = results.iter().map(|r| &r.cfg).collect();
    let _ = write!(w, "{}", runs_section(&configs));
    let _ = writeln!(w, "outcomes");
    for label in ["Succeeded", "Failed", "Aborted", "deleted"] {
        let expected = count(&|r| {
            r.cfg
                .expected()
                .map_or("deleted".to_string(), |p| format!("{p:?}"))
                == label
        });
        let _ = writeln!(
            w,
            "  {label:<34}{:>6}   (expected {expected})",
            count(&|r| r.outcome.as_deref() == Some(label))
        );
    }
    let _ = writeln!(
        w,
        "  {:<34}{:>6}",
        "other phase",
        count(&|r| r.outcome.as_deref().is_some_and(|o| ![
            "Succeeded",
            "Failed",
            "Aborted",
            "deleted"
        ]
        .contains(&o)))
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
        .map(|r| r.faults.get(&FaultKind::Latency).copied().unwrap_or(0) * r.cfg.faults.latency_ms)
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
            h.seed,
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
