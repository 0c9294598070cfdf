//! A kubectl-flow update of a Deployment under `afterEachPod` checks, on the handover model:
//! the plan pauses the Deployment with the new template in one write, moves its pods one at a
//! time with each checked before the next, and resumes it at the end; a failed check moves
//! the pods back and puts the previous template back, or, with `rollbackOnFailure: false`,
//! halts with the Deployment paused and every pod kept.

use std::cell::Cell;

use serde_json::{Value, json};

use super::handover_model::{Model, run_to_end};
use super::tests::{base_spec, plan, run};
use crate::api::Phase;
use crate::operator::action::Action;
use crate::operator::pods;
use crate::operator::workload::saved;

const OLD: &str = "liferay/dxp:7.0.10-de-28";
const NEW: &str = "liferay/dxp:7.0.10-de-29";

fn spec(rollback: bool) -> Value {
    let mut spec = base_spec();
    spec["changes"] = json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]);
    spec["update"] = json!({"image": NEW});
    spec["strategy"] = json!("RollingRestart");
    spec["rollingRestart"] = json!({
        "rollbackOnFailure": rollback,
        "afterEachPod": [{"name": "portal", "webhook": {"url": "http://board.example/"},
                          "intervalSeconds": 1, "failureThreshold": 1}]
    });
    spec
}

fn image(m: &Model) -> String {
    m.target
        .template()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Pods that are not on the running sets of the model.
fn new_pods(m: &Model) -> usize {
    m.pods
        .iter()
        .filter(|p| !matches!(pods::template_hash(p), Some("old" | "older")))
        .count()
}

/// The pods the check attempts were about, each once, in the order first asked.
fn subjects(m: &Model) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for key in &m.asked {
        let subject = key.split('/').nth(2).unwrap().to_string();
        if !seen.contains(&subject) {
            seen.push(subject);
        }
    }
    seen
}

fn no_marks(m: &Model) -> bool {
    let annotations = m.target.metadata().annotations.clone().unwrap_or_default();
    !annotations.keys().any(|k| k.starts_with("cutover.dev/"))
}

#[test]
fn each_pod_is_checked_before_the_next_and_the_deployment_resumes_with_the_new_template() {
    let mut m = Model::running(3, OLD);
    // The first step is one write: the new template with the Deployment paused, and the
    // record of its own template and pause.
    let first = run(&m.snapshot(plan(spec(true))), 0);
    let writes: Vec<&Action> = first
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::Event { .. } | Action::AddFinalizer))
        .collect();
    let [Action::ReplaceWorkload(written)] = writes.as_slice() else {
        panic!("one write of the target: {writes:?}");
    };
    assert_eq!(written.paused(), Some(true));
    let record = saved::read(written, "p1").unwrap().expect("a record");
    assert_eq!(record.paused, Some(false));
    assert_eq!(
        record.template.unwrap().spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some(OLD)
    );

    let most = Cell::new(0);
    let watch = |m: &mut Model| {
        // A new pod is started only once every new pod before it passed its check.
        let unchecked = new_pods(m).saturating_sub(subjects(m).len());
        assert!(
            unchecked <= 1,
            "{} new pods, checked {:?}",
            new_pods(m),
            subjects(m)
        );
        most.set(most.get().max(new_pods(m)));
    };
    let (phase, events, lowest) = run_to_end(&mut m, spec(true), Some(&watch));
    assert_eq!(phase, Phase::Succeeded, "{}", m.message);
    assert!(lowest >= 3, "never fewer than 3 pods; saw {lowest}");
    assert_eq!(subjects(&m).len(), 3, "{:?}", m.asked);
    assert_eq!(events.iter().filter(|e| *e == "PodReplaced").count(), 3);
    assert!(m.message.contains("resumes"), "{}", m.message);

    // The cleanup resumes the Deployment with the new template, its set adoptable.
    m.turn();
    assert_eq!(m.target.paused(), Some(false));
    assert_eq!(image(&m), NEW);
    assert!(no_marks(&m), "{:?}", m.target.metadata().annotations);
    assert_eq!(new_pods(&m), 3);
    let new = m
        .sets
        .iter()
        .find(|rs| {
            !matches!(
                Model::labels(rs)["pod-template-hash"].as_str(),
                "old" | "older"
            )
        })
        .expect("the new set");
    assert_eq!(new.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(Model::labels(new)["app"], "liferay");
    assert_eq!(
        m.set_mut("liferay-old").spec.as_ref().unwrap().replicas,
        Some(0)
    );
}

#[test]
fn a_failed_check_moves_the_pods_back_and_puts_the_previous_template_back() {
    let mut m = Model::running(3, OLD);
    m.checks_pass = false;
    let most = Cell::new(0);
    let watch = |m: &mut Model| most.set(most.get().max(new_pods(m)));
    let (phase, events, lowest) = run_to_end(&mut m, spec(true), Some(&watch));
    assert_eq!(phase, Phase::Failed);
    assert!(
        m.message.contains("check portal (afterEachPod) failed"),
        "{}",
        m.message
    );
    assert_eq!(most.get(), 1, "no second pod was replaced");
    assert_eq!(subjects(&m).len(), 1, "{:?}", m.asked);
    assert!(events.contains(&"RollingBack".to_string()), "{events:?}");
    assert!(lowest >= 3, "never fewer than 3 pods; saw {lowest}");
    // Every pod is back on the old set, which carries the previous template again; the
    // set the plan made is gone.
    assert_eq!(m.images(), ["old"]);
    assert_eq!(m.set_names(), ["liferay-old", "liferay-older"]);
    assert_eq!(image(&m), OLD);
    m.turn();
    assert_eq!(m.target.paused(), Some(false));
    assert_eq!(image(&m), OLD);
    assert!(no_marks(&m));
}

#[test]
fn without_rollback_a_failed_check_halts_with_the_deployment_paused_and_every_pod_kept() {
    let mut m = Model::running(3, OLD);
    m.checks_pass = false;
    let (phase, events, lowest) = run_to_end(&mut m, spec(false), None);
    assert_eq!(phase, Phase::Failed);
    assert!(m.message.contains("rollout halted"), "{}", m.message);
    assert!(m.message.contains("stays paused"), "{}", m.message);
    assert!(events.contains(&"RolloutHalted".to_string()), "{events:?}");
    assert!(lowest >= 3);
    m.turn();
    assert_eq!(m.target.paused(), Some(true), "a halt leaves it paused");
    assert_eq!(image(&m), NEW);
    assert!(no_marks(&m));
    // The checked pod came up beside the three old ones, and all four stay.
    assert_eq!(new_pods(&m), 1);
    assert_eq!(m.pods.len(), 4);
    // Both sets are the Deployment's again (its selector matches them).
    for rs in &m.sets {
        let labels = Model::labels(rs);
        assert_eq!(
            labels.get("app").map(String::as_str),
            Some("liferay"),
            "{labels:?}"
        );
        assert!(!labels.contains_key("cutover.dev/held-by"), "{labels:?}");
    }
}
