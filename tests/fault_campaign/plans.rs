//! The manifests of a run: the plan (and the second plan of the lock flow) for its flow, and
//! the target it acts on (a Deployment or a StatefulSet, with its new template held back for
//! the GitOps flow). Nothing here injects faults or judges.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::config::{NEW_IMAGE, RunConfig};
use super::flows::{Act, Check, Kind, Stage, Technique};
use super::support::{APP, Env, stateful};

pub const PLAN: &str = "campaign";
/// The plan that waits on the lock of the first.
pub const SECOND: &str = "campaign-second";
/// The preview Service a Job check before the switch reaches green through.
pub const PREVIEW: &str = "liferay-preview";
pub const READY_AFTER: &str = "sim.cutover.dev/ready-after-ms";
const JOB_FAILS: &str = "sim.cutover.dev/job-fails";

fn ready_annotation(cfg: &RunConfig) -> Value {
    let ready = if cfg.permanent {
        "never".to_string()
    } else {
        cfg.ready_after_ms.to_string()
    };
    json!({READY_AFTER: ready})
}

fn check_spec(check: Check, webhook_url: Option<&str>) -> Value {
    let mut spec = json!({"name": Check::NAME, "intervalSeconds": 1, "failureThreshold": 1});
    if check.job {
        let mut template = json!({"spec": {
            "containers": [{"name": "smoke", "image": "curlimages/curl"}],
            "restartPolicy": "Never"
        }});
        if check.fails {
            template["metadata"] = json!({"annotations": {JOB_FAILS: "true"}});
        }
        spec["job"] = json!({"template": template});
    } else {
        spec["webhook"] = json!({"url": webhook_url.expect("a receiver for the webhook")});
    }
    spec
}

/// The plan of a run; `webhook_url` is the campaign's receiver for a webhook check.
pub fn plan(cfg: &RunConfig, webhook_url: Option<&str>) -> Value {
    let kind = cfg.kind();
    let mut spec = json!({"target": {"kind": kind.as_str(), "name": APP}, "service": APP});
    let fix_pack = json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]);
    match cfg.technique {
        Technique::Restart => {}
        Technique::Rollout => spec["changes"] = fix_pack,
        Technique::FullRestart => {
            spec["changes"] = fix_pack;
            spec["strategy"] = json!("FullRestart");
            spec["allowDowntime"] = json!(true);
        }
        Technique::BlueGreen if kind == Kind::StatefulSet => {
            spec["changes"] = fix_pack;
            spec["strategy"] = json!("BlueGreen");
        }
        Technique::BlueGreen => {
            spec["changes"] =
                json!([{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}]);
        }
    }
    if cfg.technique.changes_template() && !cfg.pending() {
        spec["update"] = json!({
            "image": NEW_IMAGE,
            "podTemplatePatch": {"metadata": {"annotations": ready_annotation(cfg)}}
        });
    }
    if cfg.technique == Technique::Rollout && cfg.permanent {
        spec["rollingRestart"] = json!({"podReadyTimeoutSeconds": 1});
    }
    if cfg.technique == Technique::BlueGreen {
        let mut bg = json!({"scaleDownDelaySeconds": 0});
        if cfg.permanent {
            bg["readyTimeoutSeconds"] = json!(1);
        }
        match cfg.act() {
            Some(Act::AbortBeforeSwitch) => bg["autoPromote"] = json!(false),
            // Blue is kept a while after the switch, so that the act lands before it goes.
            Some(Act::AbortAfterSwitch | Act::Delete) => bg["scaleDownDelaySeconds"] = json!(3),
            _ => {}
        }
        if kind == Kind::StatefulSet {
            bg["greenOnly"] = json!({"env": [
                {"name": "DNS_MEMBERSHIP_SERVICE_NAME", "value": "liferay-headless-green"}]});
        }
        spec["blueGreen"] = bg;
    }
    if let Some(check) = cfg.check {
        let (section, field) = match check.stage {
            Stage::PrePromotion => ("blueGreen", "prePromotion"),
            Stage::PostPromotion => ("blueGreen", "postPromotion"),
            Stage::AfterEachPod => ("rollingRestart", "afterEachPod"),
        };
        if spec[section].is_null() {
            spec[section] = json!({});
        }
        spec[section][field] = json!([check_spec(check, webhook_url)]);
        if check.job && check.stage == Stage::PrePromotion {
            spec[section]["previewService"] = json!(PREVIEW);
        }
    }
    spec
}

/// The second plan of the lock flow: a plain restart of the same target.
pub fn second_plan() -> Value {
    json!({"target": {"name": APP}, "service": APP})
}

/// Deploys the run's target, all pods Ready; for the GitOps flow, then holds a new template
/// back on it (a paused Deployment, a StatefulSet under OnDelete), as Git would.
pub async fn deploy_target(env: &Env, cfg: &RunConfig) {
    let pending_template = json!({
        "metadata": {"annotations": ready_annotation(cfg)},
        "spec": {"containers": [{"name": APP, "image": NEW_IMAGE, "ports": [{"containerPort": 8080}]}]}
    });
    match cfg.kind() {
        Kind::Deployment => {
            env.deploy_app(cfg.replicas).await;
            if cfg
                .check
                .is_some_and(|c| c.job && c.stage == Stage::PrePromotion)
            {
                env.create_service_like_app(PREVIEW).await;
            }
            if cfg.pending() {
                env.patch_deployment(
                    json!({"spec": {"paused": true, "template": pending_template}}),
                )
                .await;
            }
        }
        Kind::StatefulSet => {
            let strategy = if cfg.pending() {
                json!({"type": "OnDelete"})
            } else {
                json!({"type": "RollingUpdate"})
            };
            stateful::deploy_stateful(env, cfg.replicas, strategy).await;
            if cfg.pending() {
                let sets: Api<StatefulSet> = stateful::stateful_sets(env);
                sets.patch(
                    APP,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"template": pending_template}})),
                )
                .await
                .expect("pending template written");
            }
        }
    }
}
