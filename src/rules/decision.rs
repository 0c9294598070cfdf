//! Picks the technique from the findings (DESIGN section 2, "Decision") and explains the
//! choice, including the settings that would make a rejected plan executable.

use crate::api::{StrategyChoice, Technique, Verdict};

use super::assess::{Assessment, Remedy};

/// What the target says about a rolling restart's gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gap {
    /// A StatefulSet with one replica: it cannot surge, so a rolling restart leaves the
    /// Service without a ready pod while that pod restarts.
    pub single_replica: bool,
    /// A StatefulSet whose replica count is not known here (offline evaluation).
    pub unknown_replicas: bool,
}

/// The verdict for a plan with these findings.
pub fn decide(
    choice: StrategyChoice,
    allow_downtime: bool,
    found: &[Assessment],
    gap: Gap,
) -> Verdict {
    if found.iter().any(|a| a.contradiction) {
        return Verdict::Rejected;
    }
    let open = |t: Technique| !blocked(found, t);
    // A gapless rolling restart; with a single StatefulSet replica only with downtime.
    let rolling = open(Technique::RollingRestart) && (!gap.single_replica || allow_downtime);
    let verdict = match choice {
        StrategyChoice::Auto if gap.single_replica => open(Technique::BlueGreen)
            .then_some(Technique::BlueGreen)
            .or(rolling.then_some(Technique::RollingRestart))
            .or(allow_downtime.then_some(Technique::FullRestart)),
        StrategyChoice::Auto => [Technique::RollingRestart, Technique::BlueGreen]
            .into_iter()
            .find(|t| open(*t))
            .or(allow_downtime.then_some(Technique::FullRestart)),
        StrategyChoice::RollingRestart => rolling.then_some(Technique::RollingRestart),
        StrategyChoice::BlueGreen => open(Technique::BlueGreen).then_some(Technique::BlueGreen),
        StrategyChoice::FullRestart => allow_downtime.then_some(Technique::FullRestart),
    };
    verdict.map_or(Verdict::Rejected, Verdict::from)
}

fn blocked(found: &[Assessment], t: Technique) -> bool {
    found.iter().any(|a| a.finding.blocks(t))
}

/// "change 0 (fixpack-crosses-non-revertible), change 2 (java-major-change)"
fn blockers(found: &[Assessment], t: Technique) -> String {
    let names: Vec<String> = found
        .iter()
        .filter(|a| a.finding.blocks(t))
        .map(|a| format!("{} ({})", a.finding.about(), a.finding.rule))
        .collect();
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique.join(", ")
}

const SINGLE_REPLICA: &str = "a StatefulSet with a single replica cannot surge, so a rolling restart would leave the Service without a ready pod while it restarts";

/// One or two sentences saying why the verdict is what it is.
pub fn explain(
    choice: StrategyChoice,
    allow_downtime: bool,
    found: &[Assessment],
    verdict: Verdict,
    gap: Gap,
) -> String {
    let why = explain_findings(choice, allow_downtime, found, verdict, gap);
    if gap.unknown_replicas && verdict == Verdict::RollingRestart {
        return format!(
            "{why} (if the StatefulSet has a single replica, the operator chooses BlueGreen instead{}: it cannot surge)",
            if choice == StrategyChoice::RollingRestart {
                ", or rejects an explicit RollingRestart without allowDowntime"
            } else {
                ""
            }
        );
    }
    why
}

fn explain_findings(
    choice: StrategyChoice,
    allow_downtime: bool,
    found: &[Assessment],
    verdict: Verdict,
    gap: Gap,
) -> String {
    let rr = blockers(found, Technique::RollingRestart);
    let bg = blockers(found, Technique::BlueGreen);
    let rr_open = rr.is_empty();
    if gap.single_replica && rr_open {
        match verdict {
            Verdict::BlueGreen => return format!("{SINGLE_REPLICA}; nothing blocks BlueGreen"),
            Verdict::RollingRestart => {
                return format!(
                    "{SINGLE_REPLICA}; a rolling restart with that downtime because allowDowntime is true"
                );
            }
            Verdict::Rejected if choice == StrategyChoice::RollingRestart => {
                let mut ways = Vec::new();
                if bg.is_empty() {
                    ways.push("use strategy: BlueGreen (or Auto)".to_string());
                }
                ways.push("accept the downtime with allowDowntime: true".to_string());
                return format!(
                    "rejected: strategy RollingRestart: {SINGLE_REPLICA}. To proceed: {}",
                    ways.join("; or ")
                );
            }
            Verdict::Rejected if choice == StrategyChoice::Auto => {
                return format!(
                    "rejected: {SINGLE_REPLICA}, and BlueGreen is blocked by {bg}. To proceed: {}",
                    ways_out(choice, allow_downtime, found)
                );
            }
            _ => {}
        }
    }
    match verdict {
        Verdict::RollingRestart if found.is_empty() => {
            "no changes declared: a plain rolling restart".to_string()
        }
        Verdict::RollingRestart => "nothing blocks a rolling restart".to_string(),
        Verdict::BlueGreen if choice == StrategyChoice::BlueGreen => {
            "BlueGreen as requested; nothing blocks it".to_string()
        }
        Verdict::BlueGreen => {
            format!("RollingRestart is blocked by {rr}; nothing blocks BlueGreen")
        }
        Verdict::FullRestart if choice == StrategyChoice::FullRestart => {
            "FullRestart as requested, with downtime (allowDowntime: true)".to_string()
        }
        Verdict::FullRestart => format!(
            "RollingRestart is blocked by {rr} and BlueGreen by {bg}; FullRestart with downtime because allowDowntime is true"
        ),
        Verdict::Rejected if found.iter().any(|a| a.contradiction) => {
            let which: Vec<String> = found
                .iter()
                .filter(|a| a.contradiction)
                .map(|a| a.finding.about())
                .collect();
            format!(
                "rejected: the declared changes and the new template disagree ({}), so the rules cannot know what the plan really changes. To proceed: make spec.changes say what the new template does (or fix the template) and create the plan again",
                which.join(", ")
            )
        }
        Verdict::Rejected => {
            let why = match choice {
                StrategyChoice::Auto => format!(
                    "RollingRestart is blocked by {rr}, BlueGreen by {bg}, and FullRestart needs allowDowntime: true"
                ),
                StrategyChoice::RollingRestart => {
                    format!("strategy RollingRestart is blocked by {rr}")
                }
                StrategyChoice::BlueGreen => format!("strategy BlueGreen is blocked by {bg}"),
                StrategyChoice::FullRestart => {
                    "strategy FullRestart stops every pod and needs allowDowntime: true".to_string()
                }
            };
            format!(
                "rejected: {why}. To proceed: {}",
                ways_out(choice, allow_downtime, found)
            )
        }
    }
}

/// The settings that would make a rejected plan executable.
fn ways_out(choice: StrategyChoice, allow_downtime: bool, found: &[Assessment]) -> String {
    let mut ways = Vec::new();
    if choice == StrategyChoice::RollingRestart && !blocked(found, Technique::BlueGreen) {
        ways.push("use strategy: BlueGreen (or Auto)".to_string());
    }
    if choice == StrategyChoice::BlueGreen && !blocked(found, Technique::RollingRestart) {
        ways.push("use strategy: RollingRestart (or Auto)".to_string());
    }
    let bg_blockers: Vec<&Assessment> = found
        .iter()
        .filter(|a| a.finding.blocks(Technique::BlueGreen))
        .collect();
    if matches!(choice, StrategyChoice::Auto | StrategyChoice::BlueGreen)
        && !bg_blockers.is_empty()
        && bg_blockers.iter().all(|a| a.remedy.is_some())
    {
        let mut remedies: Vec<Remedy> = bg_blockers.iter().filter_map(|a| a.remedy).collect();
        remedies.sort();
        remedies.dedup();
        let advice: Vec<&str> = remedies.iter().map(|r| r.advice()).collect();
        ways.push(format!(
            "{} (BlueGreen without downtime)",
            advice.join(" and ")
        ));
    }
    if !allow_downtime || choice != StrategyChoice::FullRestart {
        let strategy = if matches!(choice, StrategyChoice::Auto | StrategyChoice::FullRestart) {
            ""
        } else {
            " and strategy: Auto or FullRestart"
        };
        ways.push(format!(
            "accept a downtime window with allowDowntime: true{strategy} (FullRestart)"
        ));
    }
    ways.join("; or ")
}
