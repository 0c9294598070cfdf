//! The plan as a tree, for `cutover get` and `cutover demo`: a pure function from a
//! [`Snapshot`] of the objects (the plan, the namespace's workloads, pods, Services and
//! Events) and a `now` to lines of text. No IO and no clock: the caller gathers the objects
//! and passes the time, so that ages are testable. It does not decide anything about the
//! plan; it only shows what the objects say.

mod table;
mod text;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::api::{MaintenancePlan, Phase, TargetKind, Verdict};
use crate::operator::labels::map_matches;
use crate::operator::pods;

pub use text::{Style, age};

use table::Node;
use text::Color;
use workload::Workload;

/// How many of the plan's Events the tree shows (the latest).
pub const EVENTS_SHOWN: usize = 5;

/// The objects the tree is drawn from: the plan and the objects of its namespace (the
/// renderer picks the ones that belong to the plan).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub plan: MaintenancePlan,
    /// `status.checks`, read from the plan as stored (older operators do not write it).
    pub checks: Vec<Check>,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub controller_revisions: Vec<ControllerRevision>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub events: Vec<Event>,
}

/// One check's last result, as in `status.checks`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Check {
    pub name: String,
    pub stage: String,
    pub phase: String,
    pub message: String,
}

impl Check {
    /// The checks of a plan's stored `status` (any shape; what is not a check is skipped).
    pub fn from_status(status: Option<&serde_json::Value>) -> Vec<Check> {
        status
            .and_then(|s| s.get("checks"))
            .and_then(|c| c.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| Check::deserialize(i).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The plan's name, `namespace/name`.
fn plan_name(plan: &MaintenancePlan) -> String {
    format!(
        "{}/{}",
        plan.metadata.namespace.as_deref().unwrap_or_default(),
        plan.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The phase as shown: the status's, or `New` before the operator wrote one.
pub fn phase_text(plan: &MaintenancePlan) -> String {
    plan.status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "New".into())
}

fn phase_color(phase: Option<Phase>) -> Color {
    match phase {
        Some(Phase::Succeeded) => Color::Green,
        Some(Phase::Failed | Phase::Rejected | Phase::Aborted) => Color::Red,
        Some(Phase::AwaitingPromotion) => Color::Yellow,
        Some(Phase::Progressing) => Color::Cyan,
        Some(Phase::Pending) | None => Color::Dim,
    }
}

/// True once the plan has ended (Succeeded, Failed, Aborted or Rejected).
pub fn is_finished(plan: &MaintenancePlan) -> bool {
    matches!(
        plan.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
    )
}

/// One line: name, phase, step, progress and message (the demo's running log).
pub fn headline(plan: &MaintenancePlan) -> String {
    let status = plan.status.clone().unwrap_or_default();
    format!(
        "{}  {:<17} {:<16} {:>5}  {}",
        plan.metadata.name.as_deref().unwrap_or_default(),
        phase_text(plan),
        status.step.unwrap_or_default(),
        status.progress.map(|p| p.text).unwrap_or_default(),
        status.message.unwrap_or_default()
    )
    .trim_end()
    .to_string()
}

/// The namespace's plans as a table, like `kubectl get mp -o wide`.
pub fn render_list(plans: &[MaintenancePlan], now: Timestamp, style: Style) -> Vec<String> {
    if plans.is_empty() {
        return vec!["no maintenance plans".into()];
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "TARGET".into(),
        "STRATEGY".into(),
        "PHASE".into(),
        "PROGRESS".into(),
        "AGE".into(),
        "MESSAGE".into(),
    ]];
    let mut colors = vec![Color::Bold];
    let mut sorted: Vec<&MaintenancePlan> = plans.iter().collect();
    sorted.sort_by_key(|p| p.metadata.name.clone());
    for plan in sorted {
        let status = plan.status.clone().unwrap_or_default();
        rows.push([
            plan.metadata.name.clone().unwrap_or_default(),
            plan.spec.target.name.clone(),
            status.strategy.map(Verdict::as_str).unwrap_or("").into(),
            phase_text(plan),
            status.progress.map(|p| p.text).unwrap_or_default(),
            created_age(&plan.metadata, now),
            status.message.unwrap_or_default(),
        ]);
        colors.push(phase_color(status.phase));
    }
    table::columns(
        &rows,
        |row, col| {
            if row == 0 {
                colors[0]
            } else if col == 3 {
                colors[row]
            } else {
                Color::None
            }
        },
        style,
    )
}

fn created_age(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    now: Timestamp,
) -> String {
    meta.creation_timestamp
        .as_ref()
        .map(|t| age(now, t.0))
        .unwrap_or_default()
}

/// The plan as a tree: its state, findings and checks, the Services and what they select,
/// the target (blue) and green with their revisions and pods, and the latest Events.
pub fn render(snap: &Snapshot, now: Timestamp, style: Style) -> Vec<String> {
    let plan = &snap.plan;
    let spec = &plan.spec;
    let status = plan.status.clone().unwrap_or_default();
    let mut out = Vec::new();
    let field = |out: &mut Vec<String>, key: &str, value: String| {
        out.push(format!("{:<11}{value}", format!("{key}:")));
    };
    field(&mut out, "Plan", style.paint(Color::Bold, &plan_name(plan)));
    field(
        &mut out,
        "Target",
        format!("{:?} {}", spec.target.kind, spec.target.name),
    );
    let mut service = spec.service.clone();
    if !spec.blue_green.preview_service.is_empty() {
        service.push_str(&format!(" (preview {})", spec.blue_green.preview_service));
    }
    field(&mut out, "Service", service);
    field(
        &mut out,
        "Phase",
        style.paint(phase_color(status.phase), &phase_text(plan)),
    );
    let strategy = match status.strategy {
        Some(v) => v.as_str().to_string(),
        None => format!("{:?} (asked)", spec.strategy),
    };
    field(&mut out, "Strategy", strategy);
    if let Some(step) = &status.step {
        field(&mut out, "Step", step.clone());
    }
    if let Some(progress) = &status.progress {
        field(&mut out, "Progress", progress.text.clone());
    }
    if let Some(message) = &status.message {
        field(&mut out, "Message", message.clone());
    }
    let mut flags = Vec::new();
    if spec.paused {
        flags.push("paused");
    }
    if spec.promote {
        flags.push("promote");
    }
    if spec.abort {
        flags.push("abort");
    }
    if !spec.blue_green.auto_promote {
        flags.push("autoPromote: false");
    }
    if !flags.is_empty() {
        field(
            &mut out,
            "Spec",
            style.paint(Color::Yellow, &flags.join(", ")),
        );
    }
    field(&mut out, "Age", created_age(&plan.metadata, now));

    if !status.findings.is_empty() {
        out.push("Findings:".into());
        let rows: Vec<[String; 3]> = status
            .findings
            .iter()
            .map(|f| {
                let blocks = if f.blocks.is_empty() {
                    "ok".to_string()
                } else {
                    let names: Vec<&str> = f.blocks.iter().map(|t| t.as_str()).collect();
                    format!("blocks {}", names.join("+"))
                };
                [f.about(), blocks, format!("[{}] {}", f.rule, f.message)]
            })
            .collect();
        let lines = table::columns(
            &rows,
            |row, col| match (col, rows[row][1].as_str()) {
                (1, "ok") => Color::Green,
                (1, _) => Color::Red,
                _ => Color::None,
            },
            style,
        );
        out.extend(lines.into_iter().map(|l| format!("  {l}")));
    }
    if !snap.checks.is_empty() {
        out.push("Checks:".into());
        let rows: Vec<[String; 4]> = snap
            .checks
            .iter()
            .map(|c| {
                [
                    c.name.clone(),
                    c.stage.clone(),
                    c.phase.clone(),
                    c.message.clone(),
                ]
            })
            .collect();
        let lines = table::columns(
            &rows,
            |row, col| match (col, rows[row][2].as_str()) {
                (2, "Passed") => Color::Green,
                (2, "Failed") => Color::Red,
                (2, _) => Color::Yellow,
                _ => Color::None,
            },
            style,
        );
        out.extend(lines.into_iter().map(|l| format!("  {l}")));
    }

    // Each kind of target has its constructor of the workload (its revisions and pods); a
    // new kind adds its arm here and the rest of the tree is the same.
    let workload_named = |name: &str, role| match spec.target.kind {
        TargetKind::Deployment => workload::deployment_named(snap, name, role),
        TargetKind::StatefulSet => workload::stateful_set_named(snap, name, role),
    };
    let mut target = workload_named(&spec.target.name, workload::Role::Target);
    let green_name =
        crate::operator::step::blue_green::green_name(spec.target.kind.into(), &spec.target.name);
    let green = workload_named(&green_name, workload::Role::Green)
        .filter(|w| w.is_green_of(plan.metadata.name.as_deref().unwrap_or_default()));
    if let (Some(t), Some(_)) = (target.as_mut(), green.as_ref()) {
        t.beside_green();
    }
    let workloads: Vec<&Workload> = target.iter().chain(green.iter()).collect();

    let services = services(snap, &workloads);
    if !services.is_empty() {
        out.push("Services:".into());
        let lines = table::columns(
            &services,
            |_, col| if col == 2 { Color::Cyan } else { Color::None },
            style,
        );
        out.extend(lines.into_iter().map(|l| format!("  {l}")));
    }

    out.push(String::new());
    let selected = service_selectors(snap);
    let mut nodes = Vec::new();
    match &target {
        Some(w) => nodes.push(w.node(now, &selected)),
        None => nodes.push(
            Node::leaf([
                spec.target.name.clone(),
                format!("{:?}", spec.target.kind),
                "Missing".into(),
                String::new(),
                "target not found".into(),
            ])
            .color(Color::Red),
        ),
    }
    if let Some(w) = &green {
        nodes.push(w.node(now, &selected));
    }
    out.extend(table::tree(
        ["NAME", "KIND", "STATUS", "AGE", "INFO"],
        &nodes,
        style,
    ));

    let events = plan_events(snap);
    if !events.is_empty() {
        out.push(String::new());
        out.push("Events:".into());
        let rows: Vec<[String; 4]> = events
            .iter()
            .map(|e| {
                [
                    event_time(e).map(|t| age(now, t)).unwrap_or_default(),
                    e.type_.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let lines = table::columns(
            &rows,
            |row, col| {
                if col == 1 && rows[row][1] == "Warning" {
                    Color::Yellow
                } else {
                    Color::None
                }
            },
            style,
        );
        out.extend(lines.into_iter().map(|l| format!("  {l}")));
    }
    out
}

/// The Services of the plan (the traffic Service, the preview Service) as rows: name,
/// selector, and what the selector selects now.
fn services(snap: &Snapshot, workloads: &[&Workload]) -> Vec<[String; 3]> {
    let spec = &snap.plan.spec;
    let mut names = vec![spec.service.clone()];
    if !spec.blue_green.preview_service.is_empty() {
        names.push(spec.blue_green.preview_service.clone());
    }
    names
        .into_iter()
        .map(|name| {
            let service = snap
                .services
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            let Some(selector) = service.and_then(|s| s.spec.as_ref()?.selector.clone()) else {
                let why = if service.is_some() {
                    "no selector"
                } else {
                    "not found"
                };
                return [name, String::new(), format!("-> {why}")];
            };
            let query = crate::operator::labels::map_query(&selector);
            [
                name,
                query,
                format!("-> {}", selects(snap, &selector, workloads)),
            ]
        })
        .collect()
}

/// "blue liferay-5f4d (3 ready)" for the pods a selector matches, grouped by revision.
fn selects(
    snap: &Snapshot,
    selector: &BTreeMap<String, String>,
    workloads: &[&Workload],
) -> String {
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for pod in snap.pods.iter().filter(|p| !pods::is_terminating(p)) {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if !map_matches(selector, &labels) {
            continue;
        }
        let owner = workloads
            .iter()
            .find_map(|w| w.describe_pod(pod))
            .unwrap_or_else(|| format!("other pod {}", pods::name(pod)));
        let entry = groups.entry(owner).or_default();
        entry.1 += 1;
        if pods::is_ready(pod) {
            entry.0 += 1;
        }
    }
    if groups.is_empty() {
        return "no pods".into();
    }
    groups
        .iter()
        .map(|(owner, (ready, all))| format!("{owner} ({ready}/{all} ready)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The selector of each Service of the plan, by its role ("serving", "preview").
fn service_selectors(snap: &Snapshot) -> Vec<(&'static str, BTreeMap<String, String>)> {
    let spec = &snap.plan.spec;
    [
        ("serving", spec.service.as_str()),
        ("preview", spec.blue_green.preview_service.as_str()),
    ]
    .into_iter()
    .filter(|(_, name)| !name.is_empty())
    .filter_map(|(role, name)| {
        let selector = snap
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))?
            .spec
            .as_ref()?
            .selector
            .clone()?;
        Some((role, selector))
    })
    .collect()
}

/// The plan's Events, oldest first, the latest [`EVENTS_SHOWN`] of them.
fn plan_events(snap: &Snapshot) -> Vec<&Event> {
    let name = snap.plan.metadata.name.as_deref();
    let uid = snap.plan.metadata.uid.as_deref();
    let mut events: Vec<&Event> = snap
        .events
        .iter()
        .filter(|e| {
            let o = &e.involved_object;
            o.kind.as_deref() == Some("MaintenancePlan")
                && o.name.as_deref() == name
                && (uid.is_none() || o.uid.is_none() || o.uid.as_deref() == uid)
        })
        .collect();
    events.sort_by_key(|e| (event_time(e), e.metadata.name.clone()));
    let skip = events.len().saturating_sub(EVENTS_SHOWN);
    events.split_off(skip)
}

fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}
