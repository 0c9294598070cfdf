//! `cutover promote|abort|pause|resume NAME` (`kubectl cutover promote`...): each sets one
//! field of the plan's spec with a merge patch, and refuses (writing nothing) when the plan
//! is in a phase where the action means nothing. [`decide`] is the pure part.

use anyhow::{anyhow, bail};
use cutover::api::{MaintenancePlan, Phase};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::plugin::{self, ClusterArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The plan.
    name: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Promote,
    Abort,
    Pause,
    Resume,
}

/// What an action does to a plan in its current state.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Write this merge patch of `spec`, then say this.
    Write(serde_json::Value, String),
    /// The field already says so: nothing to write.
    Already(String),
}

/// What `action` means for `plan` now, or why it means nothing (the error). Pure.
pub fn decide(action: Action, plan: &MaintenancePlan) -> Result<Decision, String> {
    let phase = plan.status.as_ref().and_then(|s| s.phase);
    let phase_name = phase
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "not started yet".into());
    let ended = matches!(
        phase,
        Some(Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::Rejected)
    );
    let spec = &plan.spec;
    match action {
        Action::Promote => {
            if phase != Some(Phase::AwaitingPromotion) {
                return Err(format!(
                    "is {phase_name}, not AwaitingPromotion: promote means nothing now{}",
                    if ended {
                        ""
                    } else {
                        " (a plan waits for promotion once green is Ready, with blueGreen.autoPromote: false)"
                    }
                ));
            }
            if spec.promote {
                return Ok(Decision::Already("is promoted already".into()));
            }
            Ok(Decision::Write(
                json!({"promote": true}),
                format!(
                    "promoted: the operator switches service {} to green",
                    spec.service
                ),
            ))
        }
        Action::Abort => {
            if ended {
                return Err(format!("has ended ({phase_name}): abort means nothing now"));
            }
            if spec.abort {
                return Ok(Decision::Already("is aborting already".into()));
            }
            Ok(Decision::Write(
                json!({"abort": true}),
                "aborted: the operator stops and rolls back to the state before the plan".into(),
            ))
        }
        Action::Pause | Action::Resume => {
            let pause = action == Action::Pause;
            let word = if pause { "pause" } else { "resume" };
            if ended {
                return Err(format!(
                    "has ended ({phase_name}): {word} means nothing now"
                ));
            }
            if spec.paused == pause {
                return Ok(Decision::Already(
                    if pause {
                        "is paused already"
                    } else {
                        "is not paused"
                    }
                    .into(),
                ));
            }
            Ok(Decision::Write(
                json!({"paused": pause}),
                if pause {
                    "paused: the operator holds before the next step".into()
                } else {
                    "resumed: the operator goes on with the next step".into()
                },
            ))
        }
    }
}

pub async fn run(action: Action, args: Args) -> anyhow::Result<()> {
    let cluster = plugin::connect(&args.cluster).await?;
    let (object, plan) = plugin::read_plan(&cluster, &args.name).await?;
    let who = format!("maintenanceplan {}/{}", cluster.namespace, args.name);
    match decide(action, &plan).map_err(|why| anyhow!("{who} {why}; nothing written"))? {
        Decision::Already(what) => println!("{who} {what}; nothing written"),
        Decision::Write(spec, what) => {
            // The resourceVersion makes the write conditional on the state just judged.
            let patch = json!({
                "metadata": {"resourceVersion": object.metadata.resource_version},
                "spec": spec
            });
            let params = PatchParams {
                field_manager: Some("kubectl-cutover".into()),
                ..Default::default()
            };
            match cluster
                .plans()
                .patch(&args.name, &params, &Patch::Merge(patch))
                .await
            {
                Ok(_) => println!("{who} {what}"),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    bail!("{who} changed while it was read; nothing written, try again")
                }
                Err(e) => bail!("{who}: the write was refused: {e}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(phase: Option<Phase>, spec: serde_json::Value) -> MaintenancePlan {
        let mut spec_value = json!({"target": {"name": "app"}, "service": "app"});
        spec_value
            .as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut plan: MaintenancePlan = serde_json::from_value(json!({
            "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
            "metadata": {"name": "p", "namespace": "ns"}, "spec": spec_value
        }))
        .unwrap();
        plan.status = Some(cutover::api::MaintenancePlanStatus {
            phase,
            ..Default::default()
        });
        plan
    }

    #[test]
    fn promote_only_while_awaiting_promotion() {
        let waiting = plan(Some(Phase::AwaitingPromotion), json!({}));
        assert!(matches!(
            decide(Action::Promote, &waiting),
            Ok(Decision::Write(v, _)) if v == json!({"promote": true})
        ));
        let err = decide(Action::Promote, &plan(Some(Phase::Succeeded), json!({}))).unwrap_err();
        assert!(err.contains("Succeeded"), "{err}");
        let err = decide(Action::Promote, &plan(Some(Phase::Progressing), json!({}))).unwrap_err();
        assert!(
            err.contains("Progressing") && err.contains("autoPromote"),
            "{err}"
        );
        let promoted = plan(Some(Phase::AwaitingPromotion), json!({"promote": true}));
        assert!(matches!(
            decide(Action::Promote, &promoted),
            Ok(Decision::Already(_))
        ));
    }

    #[test]
    fn nothing_to_abort_pause_or_resume_once_ended() {
        for phase in [
            Phase::Succeeded,
            Phase::Failed,
            Phase::Aborted,
            Phase::Rejected,
        ] {
            for action in [Action::Abort, Action::Pause, Action::Resume] {
                let err = decide(action, &plan(Some(phase), json!({"paused": true}))).unwrap_err();
                assert!(err.contains(&format!("{phase:?}")), "{action:?}: {err}");
            }
        }
    }

    #[test]
    fn abort_pause_and_resume_set_their_field() {
        let running = plan(Some(Phase::Progressing), json!({}));
        let written = |action| match decide(action, &running) {
            Ok(Decision::Write(v, _)) => v,
            other => panic!("{action:?}: {other:?}"),
        };
        assert_eq!(written(Action::Abort), json!({"abort": true}));
        assert_eq!(written(Action::Pause), json!({"paused": true}));
        assert!(matches!(
            decide(Action::Resume, &running),
            Ok(Decision::Already(_))
        ));
        let paused = plan(Some(Phase::Pending), json!({"paused": true}));
        assert!(matches!(
            decide(Action::Resume, &paused),
            Ok(Decision::Write(v, _)) if v == json!({"paused": false})
        ));
        let none = plan(None, json!({}));
        assert!(decide(Action::Abort, &none).is_ok());
    }
}
