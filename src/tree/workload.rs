//! A workload as the tree shows it: the object, its revisions, and the pods of each revision
//! (Ready, restarts, age). A Deployment's revisions are its ReplicaSets, keyed by the
//! `pod-template-hash` label; a StatefulSet's are the ControllerRevisions it owns, numbered by
//! their `revision` field, and its pods (owned by the StatefulSet itself) are grouped by their
//! `controller-revision-hash` label. Everything after the constructors ([`Workload::node`],
//! [`Workload::describe_pod`]) is the same for both. Pure.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use super::Snapshot;
use super::table::Node;
use super::text::{Color, age};
use crate::operator::labels::map_matches;
use crate::operator::pods;
use crate::operator::step::blue_green::{COPY_LABEL, PLAN_LABEL};

/// A Service's selector.
type Selector = std::collections::BTreeMap<String, String>;

/// What a workload is to the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The plan's target: blue during a BlueGreen cutover.
    Target,
    /// The green copy of a BlueGreen cutover.
    Green,
}

pub(super) struct Workload<'a> {
    kind: &'static str,
    meta: &'a ObjectMeta,
    role: Role,
    /// The target while a green copy runs beside it.
    blue: bool,
    ready: i32,
    replicas: i32,
    info: Vec<String>,
    revisions: Vec<Revision<'a>>,
    /// Pods of the workload that belong to none of its revisions (a surge pod, say).
    loose: Vec<&'a Pod>,
}

struct Revision<'a> {
    kind: &'static str,
    meta: &'a ObjectMeta,
    number: Option<i64>,
    hash: String,
    ready: i32,
    replicas: i32,
    pods: Vec<&'a Pod>,
}

fn owned_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r: &OwnerReference| {
            Some(r.name.as_str()) == owner.name.as_deref()
                && owner.uid.as_deref().is_none_or(|uid| uid == r.uid)
        })
}

/// The Deployment called `name` in the snapshot, with its ReplicaSets (newest first) and
/// their pods.
pub(super) fn deployment_named<'a>(
    snap: &'a Snapshot,
    name: &str,
    role: Role,
) -> Option<Workload<'a>> {
    let d: &Deployment = snap
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))?;
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let mut revisions: Vec<Revision> = snap
        .replica_sets
        .iter()
        .filter(|rs| owned_by(&rs.metadata, &d.metadata))
        .map(|rs| {
            let pods = snap
                .pods
                .iter()
                .filter(|p| owned_by(&p.metadata, &rs.metadata))
                .collect();
            Revision {
                kind: "ReplicaSet",
                meta: &rs.metadata,
                number: rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                    .and_then(|r| r.parse().ok()),
                hash: rs
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(pods::TEMPLATE_HASH))
                    .cloned()
                    .unwrap_or_default(),
                ready: rs
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
                replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                pods,
            }
        })
        .collect();
    revisions.sort_by(|a, b| {
        (b.number, b.meta.name.as_deref()).cmp(&(a.number, a.meta.name.as_deref()))
    });
    let selector = spec.selector.clone();
    let loose = snap
        .pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            crate::operator::labels::selector_matches(&selector, &labels)
                && (role == Role::Green || !labels.contains_key(COPY_LABEL))
                && !revisions
                    .iter()
                    .any(|r| r.pods.iter().any(|q| q.metadata.name == p.metadata.name))
                && !snap
                    .replica_sets
                    .iter()
                    .any(|rs| owned_by(&p.metadata, &rs.metadata))
        })
        .collect();
    let mut info = Vec::new();
    if spec.paused == Some(true) {
        info.push("paused".to_string());
    }
    Some(Workload {
        kind: "Deployment",
        meta: &d.metadata,
        role,
        blue: false,
        ready: status.ready_replicas.unwrap_or(0),
        replicas: spec.replicas.unwrap_or(1),
        info,
        revisions,
        loose,
    })
}

/// The StatefulSet called `name` in the snapshot, with its ControllerRevisions (newest first)
/// and their pods.
pub(super) fn stateful_set_named<'a>(
    snap: &'a Snapshot,
    name: &str,
    role: Role,
) -> Option<Workload<'a>> {
    let s: &StatefulSet = snap
        .stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))?;
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let own_pods: Vec<&Pod> = snap
        .pods
        .iter()
        .filter(|p| owned_by(&p.metadata, &s.metadata))
        .collect();
    let mut revisions: Vec<Revision> = snap
        .controller_revisions
        .iter()
        .filter(|r| owned_by(&r.metadata, &s.metadata))
        .map(|r| {
            let hash = r.metadata.name.clone().unwrap_or_default();
            let pods: Vec<&Pod> = own_pods
                .iter()
                .copied()
                .filter(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(STATEFUL_REVISION))
                        == Some(&hash)
                })
                .collect();
            let ready = pods.iter().filter(|p| pods::is_ready(p)).count() as i32;
            Revision {
                kind: "ControllerRevision",
                meta: &r.metadata,
                number: Some(r.revision),
                replicas: pods.len() as i32,
                ready,
                hash,
                pods,
            }
        })
        .collect();
    revisions.retain(|r| {
        !r.pods.is_empty()
            || status.update_revision.as_deref() == Some(r.hash.as_str())
            || status.current_revision.as_deref() == Some(r.hash.as_str())
    });
    revisions.sort_by(|a, b| {
        (b.number, b.meta.name.as_deref()).cmp(&(a.number, a.meta.name.as_deref()))
    });
    let loose = own_pods
        .iter()
        .copied()
        .filter(|p| {
            !revisions
                .iter()
                .any(|r| r.pods.iter().any(|q| q.metadata.name == p.metadata.name))
        })
        .collect();
    let mut info = Vec::new();
    if let Some(partition) = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .filter(|p| *p > 0)
    {
        info.push(format!("partition {partition}"));
    }
    if spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete")
    {
        info.push("OnDelete".to_string());
    }
    Some(Workload {
        kind: "StatefulSet",
        meta: &s.metadata,
        role,
        blue: false,
        ready: status.ready_replicas.unwrap_or(0),
        replicas: spec.replicas.unwrap_or(1),
        info,
        revisions,
        loose,
    })
}

/// The pod label that names a StatefulSet pod's revision.
const STATEFUL_REVISION: &str = "controller-revision-hash";

impl Workload<'_> {
    /// True when this workload carries the green labels of `plan`.
    pub fn is_green_of(&self, plan: &str) -> bool {
        self.meta.labels.as_ref().is_some_and(|l| {
            l.get(COPY_LABEL).is_some_and(|c| c == "green")
                && l.get(PLAN_LABEL).is_some_and(|p| p == plan)
        })
    }

    /// Calls the target "blue" only while there is a green copy beside it.
    pub fn beside_green(&mut self) {
        self.blue = true;
    }

    fn role_word(&self) -> &'static str {
        match (self.role, self.blue) {
            (Role::Green, _) => "green",
            (Role::Target, true) => "blue",
            (Role::Target, false) => "target",
        }
    }

    /// "blue liferay-5f4d" when the pod is one of this workload's, by its revision.
    pub fn describe_pod(&self, pod: &Pod) -> Option<String> {
        let same = |p: &&Pod| p.metadata.name == pod.metadata.name;
        if let Some(r) = self.revisions.iter().find(|r| r.pods.iter().any(same)) {
            return Some(format!(
                "{} {}",
                self.role_word(),
                r.meta.name.as_deref().unwrap_or_default()
            ));
        }
        self.loose
            .iter()
            .any(same)
            .then(|| format!("{} pod {}", self.role_word(), pods::name(pod)))
    }

    /// The workload's row, its revisions below it and their pods below them. A revision is
    /// marked with the role of each Service (`selectors`: "serving", "preview") that selects
    /// one of its pods.
    pub fn node(&self, now: Timestamp, selectors: &[(&'static str, Selector)]) -> Node {
        let mut info = vec![match (self.role, self.blue) {
            (Role::Target, true) => "target (blue)".to_string(),
            (Role::Target, false) => "target".to_string(),
            (Role::Green, _) => "green copy".to_string(),
        }];
        info.extend(self.info.iter().cloned());
        let status_color = if self.ready >= self.replicas {
            Color::Green
        } else {
            Color::Yellow
        };
        let mut children: Vec<Node> = self
            .revisions
            .iter()
            .map(|r| r.node(now, selectors))
            .collect();
        children.extend(
            self.loose
                .iter()
                .map(|p| pod_node(p, now, "not in a revision")),
        );
        Node::leaf([
            self.meta.name.clone().unwrap_or_default(),
            self.kind.to_string(),
            format!("{}/{}", self.ready, self.replicas),
            meta_age(self.meta, now),
            info.join(", "),
        ])
        .color(status_color)
        .with(children)
    }
}

impl Revision<'_> {
    fn node(&self, now: Timestamp, selectors: &[(&'static str, Selector)]) -> Node {
        let mut info = Vec::new();
        if let Some(n) = self.number {
            info.push(format!("revision {n}"));
        }
        if !self.hash.is_empty() {
            info.push(format!("hash {}", self.hash));
        }
        for (role, selector) in selectors {
            let selects = self.pods.iter().any(|p| {
                !pods::is_terminating(p)
                    && p.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| map_matches(selector, l))
            });
            if selects {
                info.push(role.to_string());
            }
        }
        let (status, color) = if self.replicas == 0 && self.pods.is_empty() {
            ("ScaledDown".to_string(), Color::Dim)
        } else if self.ready >= self.replicas {
            (format!("{}/{}", self.ready, self.replicas), Color::Green)
        } else {
            (format!("{}/{}", self.ready, self.replicas), Color::Yellow)
        };
        let mut pods = self.pods.clone();
        pods.sort_by_key(|p| p.metadata.name.clone());
        Node::leaf([
            self.meta.name.clone().unwrap_or_default(),
            self.kind.to_string(),
            status,
            meta_age(self.meta, now),
            info.join(", "),
        ])
        .color(color)
        .with(pods.iter().map(|p| pod_node(p, now, "")).collect())
    }
}

fn meta_age(meta: &ObjectMeta, now: Timestamp) -> String {
    meta.creation_timestamp
        .as_ref()
        .map(|t| age(now, t.0))
        .unwrap_or_default()
}

/// A pod's row: Ready, NotReady, Terminating or its phase; restarts; age.
fn pod_node(pod: &Pod, now: Timestamp, note: &str) -> Node {
    let (status, color) = if pods::is_terminating(pod) {
        ("Terminating".to_string(), Color::Dim)
    } else if pods::is_ready(pod) {
        ("Ready".to_string(), Color::Green)
    } else {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        let waiting = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            });
        let word = match (phase.as_str(), waiting) {
            (_, Some(reason)) => reason,
            ("Running", None) => "NotReady".into(),
            (other, None) => other.to_string(),
        };
        (word, Color::Yellow)
    };
    let restarts: i32 = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    let mut info = vec![format!("restarts {restarts}")];
    if let Some(hash) = pods::template_hash(pod) {
        info.push(format!("hash {hash}"));
    }
    if !note.is_empty() {
        info.push(note.to_string());
    }
    Node::leaf([
        pods::name(pod).to_string(),
        "Pod".into(),
        status,
        meta_age(&pod.metadata, now),
        info.join(", "),
    ])
    .color(color)
}
