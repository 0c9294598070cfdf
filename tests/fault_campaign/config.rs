//! What one run does, drawn from the campaign's seed and the run's number: its flow (each
//! block of consecutive runs draws every flow once, in an order of its own), what the flow
//! leaves open (technique, check, replicas, a permanent fault), the API faults and the kill
//! moments. And what follows from that: the end the plan must reach and which invariants
//! apply. Reproducible: the same seed gives the same runs everywhere. Nothing here talks to
//! a cluster.

use cutover::api::Phase;

use super::faults::FaultRates;
use super::flows::{Act, Check, Flow, Kind, Stage, Technique};
use super::rng::{Rng, splitmix64};

pub const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
pub const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";

/// When an operator process is killed.
#[derive(Clone, Copy, Debug)]
pub enum Kill {
    /// Once this process has made this many writes.
    AfterWrites(usize),
    /// This long after this process started.
    AfterMillis(u64),
}

/// Everything one run does, drawn from its seed.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub index: usize,
    pub seed: u64,
    pub flow: Flow,
    pub technique: Technique,
    pub check: Option<Check>,
    pub replicas: i32,
    /// The new pods never become Ready: the plan must fail safely.
    pub permanent: bool,
    /// Milliseconds until a new pod is Ready (a plain restart keeps the template and the
    /// cluster's default).
    pub ready_after_ms: u64,
    pub faults: FaultRates,
    /// When each operator process is killed (the last one runs to the end).
    pub kills: Vec<Kill>,
    /// Pause between a kill and the next start.
    pub restart_delay_ms: u64,
}

/// The flow of run `index`: the runs come in blocks of `Flow::ALL.len()`, each block a
/// permutation of every flow drawn from the campaign's seed and the block's number.
pub fn flow_of(campaign_seed: u64, index: usize) -> Flow {
    let n = Flow::ALL.len();
    let block = (index / n) as u64;
    let mut rng = Rng(splitmix64(campaign_seed ^ splitmix64(block ^ 0x666c_6f77)));
    Flow::ALL[rng.permutation(n)[index % n]]
}

impl RunConfig {
    pub fn new(campaign_seed: u64, index: usize) -> RunConfig {
        let seed = splitmix64(campaign_seed ^ splitmix64(index as u64));
        let flow = flow_of(campaign_seed, index);
        let mut rng = Rng(seed);
        let check = match flow {
            Flow::Checked { fails } => Some(Check {
                stage: [
                    Stage::PrePromotion,
                    Stage::PostPromotion,
                    Stage::AfterEachPod,
                ][rng.range(0, 2) as usize],
                job: rng.chance(0.5),
                fails,
            }),
            _ => None,
        };
        let technique = match flow {
            Flow::Plain(_, t) => t,
            Flow::PendingTemplate(Kind::Deployment) => [
                Technique::Rollout,
                Technique::BlueGreen,
                Technique::FullRestart,
            ][rng.range(0, 2) as usize],
            Flow::PendingTemplate(Kind::StatefulSet) => Technique::Rollout,
            Flow::Acted(Act::AbortBeforeSwitch | Act::AbortAfterSwitch) => Technique::BlueGreen,
            Flow::Acted(Act::AbortMidway | Act::SecondPlan) => Technique::Rollout,
            Flow::Acted(Act::Delete) => {
                if rng.chance(0.5) {
                    Technique::Rollout
                } else {
                    Technique::BlueGreen
                }
            }
            Flow::Checked { .. } => check
                .map(|c| c.stage.technique())
                .unwrap_or(Technique::Rollout),
        };
        let mut cfg = RunConfig {
            index,
            seed,
            flow,
            technique,
            check,
            replicas: 1,
            permanent: false,
            ready_after_ms: 0,
            faults: FaultRates::draw(&mut rng),
            kills: Vec::new(),
            restart_delay_ms: 0,
        };
        // A StatefulSet cannot surge: replacing one of one replica would leave no endpoint. A
        // plan acted on once a pod was replaced needs a pod left to replace.
        let stateful_rolling = flow.kind() == Kind::StatefulSet
            && matches!(technique, Technique::Rollout | Technique::Restart);
        cfg.replicas = if stateful_rolling || cfg.slow() {
            rng.range(2, 3) as i32
        } else {
            rng.range(1, 3) as i32
        };
        cfg.permanent = matches!(
            flow,
            Flow::Plain(_, Technique::Rollout | Technique::BlueGreen)
        ) && rng.chance(0.2);
        // Slow enough that an act on a replaced pod lands before the next one is replaced.
        cfg.ready_after_ms = if cfg.slow() {
            rng.range(600, 1200)
        } else {
            rng.range(0, 120)
        };
        let kill_count = [0, 1, 1, 2, 2, 3][rng.range(0, 5) as usize];
        cfg.kills = (0..kill_count)
            .map(|_| {
                if rng.chance(0.5) {
                    Kill::AfterWrites(rng.range(1, 25) as usize)
                } else {
                    Kill::AfterMillis(rng.range(0, 1500))
                }
            })
            .collect();
        cfg.restart_delay_ms = rng.range(0, 300);
        cfg
    }

    pub fn kind(&self) -> Kind {
        self.flow.kind()
    }

    pub fn act(&self) -> Option<Act> {
        self.flow.act()
    }

    pub fn pending(&self) -> bool {
        matches!(self.flow, Flow::PendingTemplate(_))
    }

    /// The run acts on the plan once a pod was replaced (its new pods are slow).
    pub fn slow(&self) -> bool {
        matches!(self.act(), Some(Act::AbortMidway | Act::SecondPlan))
            || (self.act() == Some(Act::Delete) && self.technique == Technique::Rollout)
    }

    fn failing_check(&self) -> Option<Check> {
        self.check.filter(|c| c.fails)
    }

    /// The phase the plan must end in; `None`: it must be gone (deleted).
    pub fn expected(&self) -> Option<Phase> {
        if self.act() == Some(Act::Delete) {
            return None;
        }
        if matches!(
            self.act(),
            Some(Act::AbortBeforeSwitch | Act::AbortAfterSwitch | Act::AbortMidway)
        ) {
            return Some(Phase::Aborted);
        }
        if self.permanent || self.failing_check().is_some() {
            return Some(Phase::Failed);
        }
        Some(Phase::Succeeded)
    }

    /// The image the target runs at the end.
    pub fn final_image(&self) -> &'static str {
        if self.expected() == Some(Phase::Succeeded) && self.technique.changes_template() {
            NEW_IMAGE
        } else {
            OLD_IMAGE
        }
    }

    /// Blue must serve alone, the same pods from start to end (invariant 5): a green or a
    /// surge pod that never got Ready, an abort or a failed check before the switch.
    pub fn blue_untouched(&self) -> bool {
        (self.permanent
            && (self.kind() == Kind::Deployment || self.technique == Technique::BlueGreen))
            || self.act() == Some(Act::AbortBeforeSwitch)
            || self
                .failing_check()
                .is_some_and(|c| c.stage == Stage::PrePromotion)
    }

    /// The fewest ready endpoints allowed at any moment; `None` for a FullRestart, which
    /// allows downtime. A StatefulSet's RollingRestart has one pod out at a time.
    pub fn ready_floor(&self) -> Option<usize> {
        match self.technique {
            Technique::FullRestart => None,
            Technique::Rollout | Technique::Restart if self.kind() == Kind::StatefulSet => {
                Some(self.replicas as usize - 1)
            }
            _ => Some(self.replicas as usize),
        }
    }

    /// The label whose values must never mix in the ready endpoints (invariant 2): for
    /// BlueGreen, and for a FullRestart, which never runs two versions at once.
    pub fn mixing_label(&self) -> Option<&'static str> {
        matches!(
            self.technique,
            Technique::BlueGreen | Technique::FullRestart
        )
        .then(|| self.kind().revision_label())
    }

    /// Green must never join blue's cluster (invariant 11): a StatefulSet with a headless
    /// Service, copied.
    pub fn isolation(&self) -> bool {
        self.kind() == Kind::StatefulSet && self.technique == Technique::BlueGreen
    }

    /// The row of the report: the flow and what the run drew within it.
    pub fn label(&self) -> String {
        let base = self.flow.label();
        match self.flow {
            Flow::PendingTemplate(Kind::Deployment) => {
                format!("{base} {}", self.technique.strategy())
            }
            Flow::PendingTemplate(Kind::StatefulSet) => format!("{base} RollingRestart"),
            Flow::Acted(Act::Delete) => format!("{base} ({})", self.technique.strategy()),
            Flow::Checked { .. } => {
                let c = self.check.expect("a check");
                format!(
                    "{base} ({} {} {})",
                    self.technique.strategy(),
                    c.stage.as_str(),
                    if c.job { "Job" } else { "webhook" }
                )
            }
            _ => base,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} x{}{}, new pods Ready after {}ms, {}, kills {:?}, restart after {}ms",
            self.label(),
            self.replicas,
            if self.permanent {
                ", new pods never Ready"
            } else {
                ""
            },
            self.ready_after_ms,
            self.faults.describe(),
            self.kills,
            self.restart_delay_ms
        )
    }
}
