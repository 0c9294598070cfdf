//! One run from its config: a fresh simulated cluster with the target, the operator as a
//! process of its own with the run's faults on its requests, the plan, the act on the
//! running plan (abort, deletion, a second plan) at its moment, SIGKILLs and restarts, until
//! the plan ends or the run's deadline passes. Then the verdict of `judge` on what was
//! recorded. How faults are injected is `faults`' business, what is wrong is `judge`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cutover::api::{MaintenancePlan, Phase};
use cutover_sim::SimOptions;
use serde_json::json;

use super::config::{Kill, RunConfig};
use super::faults::{self, FaultKind};
use super::flows::{Act, Technique};
use super::judge::{self, Recorded};
use super::plans::{self, PLAN, SECOND};
use super::support::receiver::Receiver;
use super::support::{self, Env, Killed, stateful};

/// A run that has not ended by then hangs (invariant 7).
pub const RUN_DEADLINE: Duration = Duration::from_secs(45);

/// What a run did and what went wrong.
#[derive(Debug)]
pub struct RunResult {
    pub cfg: RunConfig,
    /// How the plan ended: its final phase, "deleted", or None (it never ended).
    pub outcome: Option<String>,
    pub faults: BTreeMap<FaultKind, u64>,
    pub kills: usize,
    pub violations: Vec<String>,
    pub elapsed: Duration,
}

pub fn is_terminal(phase: Option<Phase>) -> bool {
    matches!(
        phase,
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
    )
}

fn phase_of(plan: &MaintenancePlan) -> Option<Phase> {
    plan.status.as_ref().and_then(|s| s.phase)
}

fn spawn_operator(kubeconfig: &Path, log: Option<PathBuf>) -> Killed {
    let stderr = match log.map(std::fs::File::create) {
        Some(Ok(file)) => Stdio::from(file),
        _ => Stdio::null(),
    };
    let level = std::env::var("CUTOVER_CAMPAIGN_RUST_LOG").unwrap_or_else(|_| "warn".into());
    support::run_operator(kubeconfig, &level, stderr)
}

/// Whether the plan is at the moment of the run's act: read from the Service's endpoints
/// where the target's controller may get there on its own (it goes on rolling while the
/// operator is down, so the plan's status may skip the moment).
fn act_due(
    cfg: &RunConfig,
    act: Act,
    plan: &MaintenancePlan,
    serving: &[String],
    blue: &[String],
) -> bool {
    let status = plan.status.clone().unwrap_or_default();
    if is_terminal(status.phase) {
        return false;
    }
    let new = serving.iter().filter(|n| !blue.contains(n)).count();
    let switched = serving.iter().any(|n| n.starts_with("liferay-green-"));
    // Mid-way: a pod replaced and one left.
    let replaced = new >= 1 && new < cfg.replicas as usize;
    match act {
        Act::AbortBeforeSwitch => status.phase == Some(Phase::AwaitingPromotion),
        Act::AbortAfterSwitch => switched,
        Act::AbortMidway => replaced,
        Act::Delete if cfg.technique == Technique::BlueGreen => switched,
        Act::Delete => replaced,
        Act::SecondPlan => status.phase == Some(Phase::Progressing) || new >= 1,
    }
}

async fn perform(env: &Env, act: Act) {
    match act {
        Act::AbortBeforeSwitch | Act::AbortAfterSwitch | Act::AbortMidway => {
            env.patch_plan(PLAN, json!({"abort": true})).await
        }
        Act::Delete => env.delete_plan(PLAN).await,
        Act::SecondPlan => {
            env.apply_plan(SECOND, plans::second_plan()).await;
        }
    }
}

pub async fn run_one(cfg: RunConfig, logs: Option<PathBuf>) -> RunResult {
    let began = Instant::now();
    let env = Env::with_options(SimOptions {
        seed: cfg.seed,
        ..SimOptions::default()
    })
    .await;
    plans::deploy_target(&env, &cfg).await;
    let start = env.endpoints().len() - 1;
    let blue_pods = judge::live_pods(&env).await;
    let blue: Vec<String> = env.endpoints()[start]
        .ready
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let own_strategy = match cfg.kind() {
        super::flows::Kind::StatefulSet => Some(stateful::strategy_of(&env).await),
        super::flows::Kind::Deployment => None,
    };
    let receiver = match cfg.check {
        Some(check) if !check.job => {
            Some(Receiver::answering(if check.fails { 500 } else { 200 }).await)
        }
        _ => None,
    };
    let installed = faults::install(&env, &cfg.faults);
    let log = |n: usize| {
        logs.as_ref()
            .map(|dir| dir.join(format!("run-{}-{n}.log", cfg.index)))
    };

    let mut incarnation = 0;
    let mut operator = spawn_operator(installed.operator_kubeconfig(), log(incarnation));
    let (mut spawned_at, mut writes_at_spawn) = (Instant::now(), env.operator_writes());
    env.apply_plan(
        PLAN,
        plans::plan(&cfg, receiver.as_ref().map(|r| r.url.as_str())),
    )
    .await;
    let deadline = Instant::now() + RUN_DEADLINE;
    let mut kills = cfg.kills.iter();
    let mut next_kill = kills.next();
    let mut killed = 0;
    let mut pending_act = cfg.act();
    let mut acted = false;
    let mut violations = Vec::new();
    // The second plan's (phase, message) each time it changed while the first still ran.
    let mut second_seen: Vec<(Option<Phase>, String)> = Vec::new();
    let (plan, second) = loop {
        // The second plan is read before the first: if the first still runs after, it ran
        // when the second was read.
        let second = if acted && cfg.act() == Some(Act::SecondPlan) {
            env.plans().get_opt(SECOND).await.expect("plan readable")
        } else {
            None
        };
        let plan = env.plans().get_opt(PLAN).await.expect("plan readable");
        let first_ended = match &plan {
            None => true,
            Some(p) => is_terminal(phase_of(p)),
        };
        if let Some(s) = second.as_ref().filter(|_| !first_ended)
            && let Some(status) = &s.status
        {
            let seen = (status.phase, status.message.clone().unwrap_or_default());
            if second_seen.last() != Some(&seen) {
                second_seen.push(seen);
            }
        }
        let second_ended = pending_act != Some(Act::SecondPlan)
            && second.as_ref().is_none_or(|s| is_terminal(phase_of(s)));
        if first_ended && second_ended {
            break (plan, second);
        }
        if Instant::now() > deadline {
            let status = plan
                .as_ref()
                .and_then(|p| p.status.clone())
                .unwrap_or_default();
            violations.push(format!(
                "nothing hangs: the plan did not end within {RUN_DEADLINE:?}; phase {:?}, step {:?}: {:?}",
                status.phase, status.step, status.message
            ));
            if let Some(s) = second.as_ref().and_then(|s| s.status.as_ref()) {
                violations.push(format!(
                    "nothing hangs: the second plan is {:?} at step {:?}: {:?}",
                    s.phase, s.step, s.message
                ));
            }
            break (plan, second);
        }
        let serving: Vec<String> = env
            .endpoints()
            .last()
            .map(|r| r.ready.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        if let (Some(act), Some(p)) = (pending_act, &plan)
            && act_due(&cfg, act, p, &serving, &blue)
        {
            perform(&env, act).await;
            pending_act = None;
            acted = true;
            continue;
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
            operator = spawn_operator(installed.operator_kubeconfig(), log(incarnation));
            (spawned_at, writes_at_spawn) = (Instant::now(), env.operator_writes());
            continue;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The end state must hold on its own, without an operator fixing it up afterwards.
    drop(operator);
    let faults = installed.finish(&env);
    drop(receiver);

    if let Some(act) = pending_act {
        violations.push(format!(
            "the run's act ({act:?}) never came due: the plan ended first, as {:?}",
            plan.as_ref().and_then(phase_of)
        ));
    }
    let phase = plan.as_ref().and_then(phase_of);
    let ended = match &plan {
        None => Some("deleted".to_string()),
        Some(_) if is_terminal(phase) => phase.map(|p| format!("{p:?}")),
        Some(_) => None,
    };
    let recorded = Recorded {
        traffic: env.endpoints(),
        headless: env.endpoints_of("liferay-headless"),
        twin: env.endpoints_of("liferay-headless-green"),
        start,
    };
    let succeeded = phase == Some(Phase::Succeeded) && cfg.expected() == Some(Phase::Succeeded);
    violations.extend(judge::history_violations(&cfg, &recorded, succeeded));
    if ended.is_some() {
        violations.extend(judge::outcome_violations(&cfg, plan.as_ref()));
        if cfg.act() == Some(Act::SecondPlan) {
            violations.extend(judge::lock_violations(&second_seen));
            violations.extend(judge::second_violations(second.as_ref()));
        }
        if plan.as_ref().map(phase_of).unwrap_or(None) == cfg.expected() {
            violations.extend(judge::end_violations(&env, &cfg, own_strategy, &blue_pods).await);
        }
    }
    RunResult {
        cfg,
        outcome: ended,
        faults,
        kills: killed,
        violations,
        elapsed: began.elapsed(),
    }
}
