//! The flows the campaign draws from: what kind of target, which technique, and what happens
//! to the plan while it runs (an abort, a deletion, a second plan on the lock, a check). Each
//! flow says what it is in words (the report's rows) and what its end must be; nothing here
//! talks to a cluster or draws a number.

/// The target's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    StatefulSet,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
        }
    }
    /// The label that names a pod's revision (the no-mixing check reads it).
    pub fn revision_label(self) -> &'static str {
        match self {
            Kind::Deployment => "pod-template-hash",
            Kind::StatefulSet => "controller-revision-hash",
        }
    }
}

/// How the plan is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Technique {
    /// RollingRestart with a template change: the workload's own controller, paced.
    Rollout,
    /// RollingRestart without a template change: a surge pod (Deployment), then evictions.
    Restart,
    /// BlueGreen: a green copy, one selector switch.
    BlueGreen,
    /// FullRestart: every pod at once, downtime allowed.
    FullRestart,
}

impl Technique {
    pub fn strategy(self) -> &'static str {
        match self {
            Technique::Rollout | Technique::Restart => "RollingRestart",
            Technique::BlueGreen => "BlueGreen",
            Technique::FullRestart => "FullRestart",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Technique::Rollout => "RollingRestart (template change)",
            Technique::Restart => "RollingRestart (plain restart)",
            Technique::BlueGreen => "BlueGreen",
            Technique::FullRestart => "FullRestart",
        }
    }
    /// Whether the target ends on the new template when the plan succeeds.
    pub fn changes_template(self) -> bool {
        self != Technique::Restart
    }
}

/// What the campaign does to a running plan, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Act {
    /// `spec.abort` while green waits for promotion (before the switch).
    AbortBeforeSwitch,
    /// `spec.abort` once the Service was switched to green (blue still kept).
    AbortAfterSwitch,
    /// `spec.abort` once a pod was replaced.
    AbortMidway,
    /// Deletes the plan while it runs (a pod replaced, or the Service switched).
    Delete,
    /// Applies a second plan for the same target once the first runs: it must wait.
    SecondPlan,
}

/// Where a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    PrePromotion,
    PostPromotion,
    AfterEachPod,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PrePromotion => "prePromotion",
            Stage::PostPromotion => "postPromotion",
            Stage::AfterEachPod => "afterEachPod",
        }
    }
    /// The technique a check of this stage belongs to (a Deployment's template change is
    /// paced by its own controller and cannot be held after each pod: a plain restart).
    pub fn technique(self) -> Technique {
        match self {
            Stage::AfterEachPod => Technique::Restart,
            _ => Technique::BlueGreen,
        }
    }
}

/// A check on the plan: how it asks, and whether it passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub stage: Stage,
    /// A Job (its pods succeed or fail) rather than a webhook to the campaign's receiver.
    pub job: bool,
    pub fails: bool,
}

impl Check {
    pub const NAME: &'static str = "campaign-check";
}

/// One flow: each block of `Flow::ALL.len()` consecutive runs draws each once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    Plain(Kind, Technique),
    /// The GitOps flow: the target holds the new template back (a paused Deployment, a
    /// StatefulSet under OnDelete) and the plan has no `update`.
    PendingTemplate(Kind),
    Acted(Act),
    Checked {
        fails: bool,
    },
}

impl Flow {
    pub const ALL: [Flow; 17] = [
        Flow::Plain(Kind::Deployment, Technique::Rollout),
        Flow::Plain(Kind::Deployment, Technique::Restart),
        Flow::Plain(Kind::Deployment, Technique::BlueGreen),
        Flow::Plain(Kind::Deployment, Technique::FullRestart),
        Flow::PendingTemplate(Kind::Deployment),
        Flow::Acted(Act::AbortBeforeSwitch),
        Flow::Acted(Act::AbortAfterSwitch),
        Flow::Acted(Act::AbortMidway),
        Flow::Acted(Act::Delete),
        Flow::Acted(Act::SecondPlan),
        Flow::Checked { fails: false },
        Flow::Checked { fails: true },
        Flow::Plain(Kind::StatefulSet, Technique::Rollout),
        Flow::Plain(Kind::StatefulSet, Technique::Restart),
        Flow::Plain(Kind::StatefulSet, Technique::BlueGreen),
        Flow::Plain(Kind::StatefulSet, Technique::FullRestart),
        Flow::PendingTemplate(Kind::StatefulSet),
    ];

    /// The flow in words, without what a run draws within it.
    pub fn label(self) -> String {
        match self {
            Flow::Plain(kind, t) => format!("{} {}", kind.as_str(), t.label()),
            Flow::PendingTemplate(kind) => format!("{} PendingTemplate", kind.as_str()),
            Flow::Acted(act) => match act {
                Act::AbortBeforeSwitch => "Deployment BlueGreen, abort before the switch".into(),
                Act::AbortAfterSwitch => "Deployment BlueGreen, abort after the switch".into(),
                Act::AbortMidway => "Deployment RollingRestart, abort mid-way".into(),
                Act::Delete => "Deployment, deletion of a running plan".into(),
                Act::SecondPlan => "Deployment RollingRestart, second plan on the lock".into(),
            },
            Flow::Checked { fails: false } => "Deployment, a check that passes".into(),
            Flow::Checked { fails: true } => "Deployment, a check that fails".into(),
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Flow::Plain(kind, _) | Flow::PendingTemplate(kind) => kind,
            Flow::Acted(_) | Flow::Checked { .. } => Kind::Deployment,
        }
    }

    pub fn act(self) -> Option<Act> {
        match self {
            Flow::Acted(act) => Some(act),
            _ => None,
        }
    }
}
