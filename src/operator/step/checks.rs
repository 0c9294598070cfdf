//! The gate of a stage's checks: given what is under test (green, or a replaced pod), the
//! checks of the stage and their last results, it asks for the next attempt of each check
//! (an `Action::Probe` for HTTP and webhook checks, a Job for a Job check), counts the answers
//! that came back through the snapshot, and says whether the stage passed, is still running
//! or failed. An attempt is counted once, and only from its own answer: an operator restarted
//! during a check asks for the attempt again. Pure.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::check_job;
use super::{Cx, Progressed};
use crate::api::{Check, CheckPhase, CheckResult, CheckStage, MaintenancePlanSpec};
use crate::operator::action::Action;
use crate::operator::probe::{ProbeKind, ProbeRequest};
use crate::operator::template::with_green_only;
use crate::operator::workload::Workload;
use crate::operator::{pods, time};

/// The longest one HTTP or webhook attempt may take, whatever the interval.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(30);

/// What a stage's checks look at.
pub(crate) struct Subject<'a> {
    pub stage: CheckStage,
    /// Identifies what is under test across steps: green's revision, or a pod's UID.
    pub key: String,
    /// The same, in words: `green (<revision>)`, `pod liferay-2`.
    pub what: String,
    /// The pods an HTTP check asks.
    pub pods: Vec<&'a Pod>,
    /// The Service that reaches them (a Job check's `CUTOVER_SERVICE`).
    pub service: String,
}

/// Where a stage stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Passed,
    /// Still running; look again after this long at the latest.
    Running(Duration),
    /// A check failed; why, in a sentence naming it.
    Failed(String),
}

/// The outcome of one look at a stage.
pub(crate) struct Gate {
    pub verdict: Verdict,
    pub actions: Vec<Action>,
    /// The stage's results, to replace those of the same stage in `status.checks`.
    pub results: Vec<CheckResult>,
    /// A sentence on the checks still running, for the status message.
    pub running: String,
}

/// One look at the `checks` of `subject`'s stage.
pub(crate) fn gate(cx: &Cx, checks: &[Check], subject: &Subject) -> Gate {
    let previous: &[CheckResult] = cx
        .snap
        .plan
        .status
        .as_ref()
        .map(|s| s.checks.as_slice())
        .unwrap_or_default();
    let mut actions = Vec::new();
    let mut results = Vec::new();
    let mut next: Option<Duration> = None;
    let mut failed = None;
    let mut running = Vec::new();
    for check in checks {
        let same_check = |r: &&CheckResult| r.name == check.name && r.stage == Some(subject.stage);
        let before = previous
            .iter()
            .filter(same_check)
            .find(|r| r.subject == subject.key);
        let (mut result, wait) = look(cx, check, subject, before, &mut actions);
        if before.is_none()
            && let Some(last) = previous.iter().find(same_check)
        {
            // The check moves on to another subject: what it passed on stays known.
            result.passed_on = last.passed_on.clone();
            if last.phase == Some(CheckPhase::Passed) && !result.passed_on.contains(&last.subject) {
                result.passed_on.push(last.subject.clone());
            }
        }
        let said = |verb: &str| {
            format!(
                "check {} ({}) {verb} on {}: {}",
                check.name,
                subject.stage.word(),
                subject.what,
                result.message
            )
        };
        let changed = before.is_none_or(|b| b.phase != result.phase);
        match result.phase {
            Some(CheckPhase::Failed) => {
                if changed {
                    actions.push(Action::warning("CheckFailed", said("failed")));
                }
                failed = failed.or_else(|| Some(said("failed")));
            }
            Some(CheckPhase::Passed) if changed => {
                actions.push(Action::event("CheckPassed", said("passed")))
            }
            Some(CheckPhase::Running) => {
                running.push(format!("{}: {}", check.name, result.message));
                next = time::earliest(next, wait);
            }
            _ => {}
        }
        results.push(result);
    }
    let verdict = match failed {
        Some(why) => Verdict::Failed(why),
        None if running.is_empty() => Verdict::Passed,
        None => Verdict::Running(next.unwrap_or(Duration::from_secs(5))),
    };
    Gate {
        verdict,
        actions,
        results,
        running: running.join("; "),
    }
}

/// One check's next move and its result after it; how soon to look again while it runs.
fn look(
    cx: &Cx,
    check: &Check,
    subject: &Subject,
    before: Option<&CheckResult>,
    actions: &mut Vec<Action>,
) -> (CheckResult, Option<Duration>) {
    let mut r = before.cloned().unwrap_or_else(|| CheckResult {
        name: check.name.clone(),
        stage: Some(subject.stage),
        phase: Some(CheckPhase::Running),
        message: "starting".into(),
        subject: subject.key.clone(),
        started_at: Some(Time(cx.now)),
        last_time: Some(Time(cx.now)),
        ..Default::default()
    });
    if r.phase != Some(CheckPhase::Running) {
        return (r, None);
    }
    let started = r.started_at.as_ref().map_or(cx.now, |t| t.0);
    let deadline = pods::add_seconds(started, check.timeout_seconds as f64);
    let wait = if check.job.is_some() {
        job(cx, check, subject, &mut r, actions)
    } else {
        attempt(cx, check, subject, &mut r, actions)
    };
    if r.phase == Some(CheckPhase::Running) && cx.now >= deadline {
        let message = format!(
            "did not pass within {}s (last: {})",
            check.timeout_seconds, r.message
        );
        settle(&mut r, CheckPhase::Failed, message, cx.now);
        return (r, None);
    }
    let wait = time::earliest(wait, Some(time::until(cx.now, deadline)));
    (r, wait)
}

fn settle(r: &mut CheckResult, phase: CheckPhase, message: String, now: Timestamp) {
    if r.phase != Some(phase) || r.message != message {
        r.last_time = Some(Time(now));
    }
    r.phase = Some(phase);
    r.message = message;
}

/// The key of attempt `n` of `check` on `subject`.
fn attempt_key(subject: &Subject, check: &Check, n: i32) -> String {
    format!(
        "{}/{}/{}/{n}",
        subject.stage.word(),
        check.name,
        subject.key
    )
}

/// An HTTP or webhook check: count the answer to the attempt in flight, or ask for the next
/// one once the interval since the last answer has passed.
fn attempt(
    cx: &Cx,
    check: &Check,
    subject: &Subject,
    r: &mut CheckResult,
    actions: &mut Vec<Action>,
) -> Option<Duration> {
    let interval = Duration::from_secs(check.interval_seconds.max(1) as u64);
    if r.answered < r.attempts {
        let key = attempt_key(subject, check, r.attempts);
        match cx.snap.probes.iter().find(|a| a.key == key) {
            Some(answer) => {
                r.answered = r.attempts;
                if answer.passed {
                    r.failures = 0;
                    settle(r, CheckPhase::Passed, answer.message.clone(), answer.at);
                    return None;
                }
                r.failures += 1;
                let message = format!(
                    "attempt {} failed ({} of {} in a row): {}",
                    r.attempts, r.failures, check.failure_threshold, answer.message
                );
                if r.failures >= check.failure_threshold {
                    settle(r, CheckPhase::Failed, message, answer.at);
                    return None;
                }
                settle(r, CheckPhase::Running, message, answer.at);
            }
            None => {
                // In flight, or lost with an operator that stopped: ask again (the runner
                // makes an attempt once).
                actions.push(probe(cx, check, subject, r.attempts));
                return Some(interval);
            }
        }
    }
    let last = r.last_time.as_ref().map_or(cx.now, |t| t.0);
    let due = if r.attempts == 0 {
        cx.now
    } else {
        pods::add_seconds(last, interval.as_secs_f64())
    };
    if cx.now < due {
        return Some(time::until(cx.now, due));
    }
    r.attempts += 1;
    if r.attempts == 1 {
        r.message = format!("attempt 1 on {}", subject.what);
    }
    actions.push(probe(cx, check, subject, r.attempts));
    Some(interval)
}

fn probe(cx: &Cx, check: &Check, subject: &Subject, n: i32) -> Action {
    let interval = Duration::from_secs(check.interval_seconds.max(1) as u64);
    let kind = match (&check.http, &check.webhook) {
        (Some(http), _) => ProbeKind::Http {
            urls: subject
                .pods
                .iter()
                .map(|p| {
                    let ip = p
                        .status
                        .as_ref()
                        .and_then(|s| s.pod_ip.as_deref())
                        .unwrap_or_default();
                    (
                        pods::name(p).to_string(),
                        format!("http://{ip}:{}{}", http.port, http.path),
                    )
                })
                .collect(),
            expect: http.expect_status,
        },
        (None, Some(webhook)) => {
            let status = cx.snap.plan.status.as_ref();
            ProbeKind::Webhook {
                url: webhook.url.clone(),
                body: serde_json::json!({
                    "name": cx.plan,
                    "namespace": cx.snap.plan.metadata.namespace,
                    "target": {"kind": cx.target.kind().word(), "name": cx.spec.target.name},
                    "phase": status.and_then(|s| s.phase).map(|p| format!("{p:?}")),
                    "step": status.and_then(|s| s.step.clone()),
                    "stage": subject.stage.word(),
                    "check": check.name,
                    "subject": subject.what,
                    "attempt": n,
                }),
            }
        }
        (None, None) => ProbeKind::Http {
            urls: Vec::new(),
            expect: 200,
        },
    };
    Action::Probe(Box::new(ProbeRequest {
        plan_uid: cx.snap.plan.metadata.uid.clone().unwrap_or_default(),
        key: attempt_key(subject, check, n),
        kind,
        timeout: interval.min(ATTEMPT_LIMIT),
    }))
}

/// A Job check: make its Job once, then read how it ended.
fn job(
    cx: &Cx,
    check: &Check,
    subject: &Subject,
    r: &mut CheckResult,
    actions: &mut Vec<Action>,
) -> Option<Duration> {
    let name = check_job::job_name(cx.plan, subject.stage, &check.name, &subject.key);
    let Some(job) = cx
        .snap
        .jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some(name.as_str()))
    else {
        // Not there yet (or its creation was lost): creating it again is harmless.
        if let Some(job) =
            check_job::build(cx, subject.stage, check, &subject.key, &subject.service)
        {
            actions.push(Action::CreateJob(Box::new(job)));
        }
        r.attempts = 1;
        settle(
            r,
            CheckPhase::Running,
            format!("job {name} started on {}", subject.what),
            cx.now,
        );
        return Some(Duration::from_secs(5));
    };
    match check_job::ended(job) {
        Some(Ok(())) => settle(
            r,
            CheckPhase::Passed,
            format!("job {name} succeeded"),
            cx.now,
        ),
        Some(Err(why)) => settle(
            r,
            CheckPhase::Failed,
            format!("job {name} failed: {why}"),
            cx.now,
        ),
        None => {
            r.failures = check_job::failed_pods(job);
            let message = match r.failures {
                0 => format!("job {name} running"),
                n => format!("job {name} running ({n} of its pods failed)"),
            };
            settle(r, CheckPhase::Running, message, cx.now);
        }
    }
    Some(Duration::from_secs(5))
}

/// Replaces the results of `stage` in `all` with `results`.
pub(crate) fn merge(all: &mut Vec<CheckResult>, stage: CheckStage, results: Vec<CheckResult>) {
    all.retain(|r| r.stage != Some(stage));
    all.extend(results);
}

/// The subject of `afterEachPod`: one replaced pod, reached through the plan's Service.
pub(crate) fn pod_subject<'a>(cx: &Cx, pod: &'a Pod) -> Subject<'a> {
    Subject {
        stage: CheckStage::AfterEachPod,
        key: subject_key(pod),
        what: format!("pod {}", pods::name(pod)),
        pods: vec![pod],
        service: cx.spec.service.clone(),
    }
}

/// One look at `afterEachPod` on an available pod of `replaced` (the pods on the new template,
/// or restarted) that the checks have not all passed on yet; `None` when the plan has no such
/// checks or every available replacement passed them.
pub(crate) fn after_each_pod(cx: &Cx, replaced: &[&Pod]) -> Option<Gate> {
    let list = &cx.spec.rolling_restart.after_each_pod;
    if list.is_empty() {
        return None;
    }
    let min_ready = cx.spec.rolling_restart.min_ready_seconds;
    let previous: Vec<&CheckResult> = cx
        .snap
        .plan
        .status
        .iter()
        .flat_map(|s| s.checks.iter())
        .filter(|r| r.stage == Some(CheckStage::AfterEachPod))
        .collect();
    // A pod is done once every check passed on it: known by its UID, a server fact, never by
    // when it was made (whole seconds on a real API server, too coarse to order replacements).
    let done = |uid: &str| {
        list.iter().all(|check| {
            previous.iter().any(|r| {
                r.name == check.name
                    && (r.passed_on.iter().any(|p| p == uid)
                        || (r.subject == uid && r.phase == Some(CheckPhase::Passed)))
            })
        })
    };
    let mut waiting: Vec<&Pod> = replaced
        .iter()
        .copied()
        .filter(|p| pods::is_available(p, min_ready, cx.now) && !done(&subject_key(p)))
        .collect();
    waiting.sort_by_key(|p| pods::name(p).to_string());
    // The pod under test stays so until it is done; then the next one, by name.
    let current = previous.first().map(|r| r.subject.as_str());
    let pod = waiting
        .iter()
        .copied()
        .find(|p| Some(subject_key(p).as_str()) == current)
        .or_else(|| waiting.first().copied())?;
    Some(gate(cx, list, &pod_subject(cx, pod)))
}

/// What identifies a pod under test: its UID (its name when it has none yet).
fn subject_key(pod: &Pod) -> String {
    pod.metadata
        .uid
        .clone()
        .unwrap_or_else(|| pods::name(pod).to_string())
}

/// Why the plan's checks cannot run as the plan would be carried out, if they cannot: an HTTP
/// check on a port the pods it asks do not expose.
pub(crate) fn unusable(
    spec: &MaintenancePlanSpec,
    target: &Workload,
    new_template: &PodTemplateSpec,
) -> Option<String> {
    let green = with_green_only(spec, &target.to_string(), new_template)
        .unwrap_or_else(|_| new_template.clone());
    for (stage, list) in crate::rules::checks::stages(spec) {
        let template = match stage {
            CheckStage::AfterEachPod => new_template,
            _ => &green,
        };
        let exposed: Vec<i32> = template
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
            .map(|p| p.container_port)
            .collect();
        for (i, check) in list.iter().enumerate() {
            if let Some(http) = &check.http
                && !exposed.contains(&http.port)
            {
                let them = match exposed.as_slice() {
                    [] => "they declare no TCP container port".to_string(),
                    ports => format!(
                        "they expose {}",
                        ports
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Some(format!(
                    "{}[{i}].http.port: {} is not a container port of the pods check {} asks ({them})",
                    stage.field(),
                    http.port,
                    check.name
                ));
            }
        }
    }
    None
}

/// Why `gate` failed, if it did.
pub(crate) fn failure(gate: &Option<Gate>) -> Option<String> {
    match gate.as_ref().map(|g| &g.verdict) {
        Some(Verdict::Failed(why)) => Some(why.clone()),
        _ => None,
    }
}

/// The wait of a rollout while `afterEachPod` still runs on the pod under test (`so_far` says
/// how far the rollout is, `replaced` is the event of a replacement counted in this turn);
/// `None` unless `gate` is still running.
pub(crate) fn checking_pod(
    gate: &mut Option<Gate>,
    so_far: &str,
    progress: Option<crate::api::Progress>,
    replaced: Option<Action>,
) -> Option<Progressed> {
    let (next, running) = match gate.as_ref()? {
        Gate {
            verdict: Verdict::Running(next),
            running,
            ..
        } => (*next, running.clone()),
        _ => return None,
    };
    let mut p = Progressed::wait(
        "CheckingPod",
        format!("{so_far}; checks: {running}"),
        Some(next),
    )
    .with_progress(progress);
    p.actions.extend(replaced);
    Some(p.with_gate(CheckStage::AfterEachPod, gate.take()))
}
