//! Checks end to end (DESIGN section 1, invariant 12): a failing check before the switch leaves
//! blue serving and untouched with no Job left behind; a passing webhook lets the cutover
//! succeed and its receiver saw the plan; a failing check after the switch switches back to
//! blue before blue is removed; checks after each pod of a restart; an operator stopped in
//! the middle of an attempt asks again; and checks that cannot run are refused. HTTP checks
//! need pods that answer HTTP, which only the simulated cluster has: those run there alone.

mod support;

use std::time::Duration;

use cutover::api::{CheckPhase, CheckStage, MaintenancePlan, Phase};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::receiver::Receiver;
use support::stateful::{assert_stateful_clean_end, deploy_stateful, strategy_of};
use support::{
    APP, Env, assert_clean_end, assert_no_mixing, assert_ready_at_least, assert_ready_at_most,
};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-32-jdk11";
const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const LONG: Duration = Duration::from_secs(60);

/// A BlueGreen (a Java upgrade) with `blue_green` settings on top of the defaults.
fn blue_green(blue_green: serde_json::Value) -> serde_json::Value {
    let mut settings = json!({"scaleDownDelaySeconds": 0});
    settings
        .as_object_mut()
        .unwrap()
        .extend(blue_green.as_object().unwrap().clone());
    json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "JavaVersion", "javaVersion": {"from": "8", "to": "11"}}],
        "update": {"image": NEW_IMAGE},
        "blueGreen": settings
    })
}

fn webhook(name: &str, url: &str) -> serde_json::Value {
    json!({"name": name, "webhook": {"url": url}, "intervalSeconds": 1, "failureThreshold": 2})
}

fn jobs(env: &Env) -> Api<Job> {
    Api::namespaced(env.client.clone(), &env.ns)
}

async fn no_job_left(env: &Env) {
    env.wait("the check Jobs to go", Duration::from_secs(30), || async {
        jobs(env)
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

fn result_of(plan: &MaintenancePlan, name: &str) -> cutover::api::CheckResult {
    plan.status
        .as_ref()
        .unwrap()
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no result of check {name}: {:#?}", plan.status))
        .clone()
}

/// Blue served throughout and runs what it ran; green is gone.
async fn blue_untouched(env: &Env, start: usize, replicas: usize) {
    let records = env.endpoints();
    assert_ready_at_least(&records, start, replicas);
    assert_no_mixing(&records, start);
    assert!(
        records[start..]
            .iter()
            .all(|r| r.ready.iter().all(|p| !p.name.contains("-green"))),
        "the service never listed a green pod: {:#?}",
        &records[start..]
    );
    assert_eq!(env.images().await, vec![OLD_IMAGE.to_string(); replicas]);
    let green = env
        .deployments()
        .get_opt(&format!("{APP}-green"))
        .await
        .unwrap();
    assert!(green.is_none(), "green is removed");
}

#[tokio::test]
async fn a_failing_pre_promotion_webhook_leaves_blue_serving() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(503).await;
    env.start_operator();
    let spec = blue_green(json!({"prePromotion": [webhook("change-board", &board.url)]}));
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    let message = plan.status.as_ref().unwrap().message.clone().unwrap();
    assert!(
        message.contains("check change-board (prePromotion) failed") && message.contains("503"),
        "{message}"
    );
    let result = result_of(&plan, "change-board");
    assert_eq!(result.phase, Some(CheckPhase::Failed));
    assert_eq!(result.stage, Some(CheckStage::PrePromotion));
    assert_eq!(
        board.bodies().len(),
        2,
        "two attempts, the failure threshold"
    );
    blue_untouched(&env, start, 3).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_passing_webhook_lets_the_cutover_succeed_and_names_the_plan() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(200).await;
    env.start_operator();
    let spec = blue_green(json!({
        "prePromotion": [webhook("change-board", &board.url)],
        "postPromotion": [webhook("after-switch", &board.url)],
    }));
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Succeeded, LONG).await;
    for name in ["change-board", "after-switch"] {
        assert_eq!(result_of(&plan, name).phase, Some(CheckPhase::Passed));
    }
    let bodies = board.bodies();
    let stages: Vec<&str> = bodies.iter().filter_map(|b| b["stage"].as_str()).collect();
    assert_eq!(stages, ["prePromotion", "postPromotion"], "{bodies:#?}");
    let first = &bodies[0];
    assert_eq!(first["name"], "java");
    assert_eq!(first["namespace"], env.ns.as_str());
    assert_eq!(first["target"]["name"], APP);
    assert_eq!(first["check"], "change-board");
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 2);
    assert_no_mixing(&records, start);
    assert_clean_end(&env, 2, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_failing_pre_promotion_job_leaves_blue_serving_and_no_job() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    env.create_service_like_app("liferay-preview").await;
    env.start_operator();
    let smoke = json!({"name": "smoke", "failureThreshold": 1, "job": {"template": {
        "metadata": {"annotations": {"sim.cutover.dev/job-fails": "true"}},
        "spec": {"containers": [{"name": "smoke", "image": "curlimages/curl"}]}
    }}});
    let spec = blue_green(json!({"previewService": "liferay-preview", "prePromotion": [smoke]}));
    env.apply_plan("java", spec).await;
    // While it runs, the Job carries the plan's facts in its containers' environment.
    let job = env
        .wait("the check's Job", LONG, || async {
            jobs(&env)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        })
        .await;
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    let env_of = |name: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(env_of("CUTOVER_PLAN").as_deref(), Some("java"));
    assert_eq!(env_of("CUTOVER_TARGET").as_deref(), Some(APP));
    assert_eq!(
        env_of("CUTOVER_SERVICE").as_deref(),
        Some("liferay-preview")
    );
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    let message = plan.status.as_ref().unwrap().message.clone().unwrap();
    assert!(
        message.contains("check smoke (prePromotion) failed"),
        "{message}"
    );
    assert_eq!(result_of(&plan, "smoke").phase, Some(CheckPhase::Failed));
    blue_untouched(&env, start, 2).await;
    no_job_left(&env).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_failing_post_promotion_check_switches_back_to_blue_before_blue_is_removed() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(500).await;
    env.start_operator();
    let spec = blue_green(json!({"postPromotion": [webhook("after-switch", &board.url)]}));
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    let status = plan.status.as_ref().unwrap();
    assert!(status.switched_at.is_some(), "it had switched to green");
    let message = status.message.clone().unwrap();
    assert!(
        message.contains("check after-switch (postPromotion) failed")
            && message.contains("serves the original template again"),
        "{message}"
    );
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 2);
    assert_no_mixing(&records, start);
    assert!(
        records[start..]
            .iter()
            .any(|r| r.ready.iter().any(|p| p.name.contains("-green"))),
        "green served for a while"
    );
    let last = records.last().unwrap();
    assert!(
        last.ready.iter().all(|p| !p.name.contains("-green")) && last.ready.len() == 2,
        "blue serves at the end: {last:#?}"
    );
    assert_eq!(env.images().await, vec![OLD_IMAGE.to_string(); 2]);
    env.stop_operator().await;
}

#[tokio::test]
async fn an_operator_stopped_during_an_attempt_asks_again() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    let board = Receiver::answering(200).await;
    board.hold();
    env.start_operator();
    let spec = blue_green(json!({"prePromotion": [
        {"name": "change-board", "webhook": {"url": board.url}, "intervalSeconds": 30}
    ]}));
    env.apply_plan("java", spec).await;
    env.wait("the first attempt to reach the receiver", LONG, || async {
        (!board.bodies().is_empty()).then_some(())
    })
    .await;
    env.stop_operator().await;
    // A process killed at once may not have written the attempt's Running yet: either way
    // the attempt that was not answered is not counted.
    let plan = env.plans().get("java").await.unwrap();
    let phase = plan
        .status
        .iter()
        .flat_map(|s| s.checks.iter())
        .find(|c| c.name == "change-board")
        .and_then(|c| c.phase);
    assert!(
        matches!(phase, None | Some(CheckPhase::Running)),
        "an attempt that was not answered is not counted: {phase:?}"
    );
    board.release();
    env.start_operator();
    env.wait_phase("java", Phase::Succeeded, LONG).await;
    assert!(
        board.bodies().len() >= 2,
        "the restarted operator asked again: {:#?}",
        board.bodies()
    );
    assert_clean_end(&env, 2, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn webhook_checks_after_each_pod_of_a_restart() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(200).await;
    env.start_operator();
    env.apply_plan(
        "restart",
        json!({
            "target": {"name": APP}, "service": APP,
            "rollingRestart": {"afterEachPod": [webhook("pod-ok", &board.url)]}
        }),
    )
    .await;
    let plan = env.wait_phase("restart", Phase::Succeeded, LONG).await;
    assert_eq!(result_of(&plan, "pod-ok").phase, Some(CheckPhase::Passed));
    let subjects: std::collections::BTreeSet<String> = board
        .bodies()
        .iter()
        .filter_map(|b| b["subject"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        subjects.len(),
        3,
        "one check per restarted pod: {subjects:?}"
    );
    assert_ready_at_least(&env.endpoints(), start, 3);
    env.stop_operator().await;
}

#[tokio::test]
async fn http_checks_gate_each_pod_and_green() {
    let mut env = Env::new().await;
    if env.is_real() {
        eprintln!("skipped on the real control plane: its pods answer no HTTP");
        return;
    }
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    let portal = json!({"name": "portal-answers", "http": {"path": "/c/portal/layout", "port": 8080}, "intervalSeconds": 1});
    env.apply_plan(
        "restart",
        json!({
            "target": {"name": APP}, "service": APP,
            "rollingRestart": {"afterEachPod": [portal]}
        }),
    )
    .await;
    let plan = env.wait_phase("restart", Phase::Succeeded, LONG).await;
    let result = result_of(&plan, "portal-answers");
    assert_eq!(result.phase, Some(CheckPhase::Passed));
    assert!(
        result.message.contains("answered 200"),
        "{}",
        result.message
    );
    assert_ready_at_least(&env.endpoints(), start, 3);

    // Green's pods answer 503: the switch never happens.
    let start = env.endpoints().len() - 1;
    let mut spec = blue_green(json!({"prePromotion": [
        {"name": "portal-answers", "http": {"path": "/c/portal/layout", "port": 8080}, "intervalSeconds": 1, "failureThreshold": 2}
    ]}));
    spec["update"]["podTemplatePatch"] =
        json!({"metadata": {"annotations": {"sim.cutover.dev/http-status": "503"}}});
    env.apply_plan("java", spec).await;
    let plan = env.wait_phase("java", Phase::Failed, LONG).await;
    let result = result_of(&plan, "portal-answers");
    assert!(result.message.contains("503"), "{}", result.message);
    blue_untouched(&env, start, 3).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn checks_that_cannot_run_are_refused_and_touch_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    // The schema refuses a check with two kinds and a webhook URL that is not http(s).
    for (check, words) in [
        (
            json!({"name": "two", "webhook": {"url": "http://x/"}, "http": {"port": 8080}}),
            "exactly one of http, job and webhook",
        ),
        (
            json!({"name": "ftp", "webhook": {"url": "ftp://x/"}}),
            "http:// or https://",
        ),
    ] {
        let spec = blue_green(json!({"prePromotion": [check]}));
        let plan: MaintenancePlan = serde_json::from_value(json!({
            "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
            "metadata": {"name": "bad", "namespace": env.ns}, "spec": spec
        }))
        .unwrap();
        let refused = env
            .plans()
            .create(&Default::default(), &plan)
            .await
            .expect_err("the schema refuses it");
        assert!(refused.to_string().contains(words), "{refused}");
    }
    env.start_operator();
    let cases = [
        (
            "port",
            blue_green(json!({"prePromotion": [{"name": "p", "http": {"port": 9090}}]})),
            "spec.blueGreen.prePromotion[0].http.port: 9090 is not a container port",
        ),
        (
            "nocontainers",
            blue_green(
                json!({"previewService": APP, "prePromotion": [{"name": "j", "job": {"template": {"spec": {"containers": []}}}}]}),
            ),
            "spec.blueGreen.prePromotion[0].job.template: has no containers",
        ),
    ];
    for (name, spec, words) in cases {
        env.apply_plan(name, spec).await;
        let plan = env.wait_phase(name, Phase::Rejected, LONG).await;
        let message = plan.status.unwrap().message.unwrap();
        assert!(message.contains(words), "{name}: {message}");
    }
    assert!(!env.operator_touched_target().await, "nothing was touched");
    assert!(
        jobs(&env)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    env.stop_operator().await;
}

/// A Deployment's new template (kubectl flow) under `afterEachPod` webhook checks answered by
/// `board`.
fn deployment_rollout(board: &Receiver) -> serde_json::Value {
    json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": "liferay/dxp:7.0.10-de-29"},
        "strategy": "RollingRestart",
        "rollingRestart": {"afterEachPod": [webhook("pod-ok", &board.url)]}
    })
}

#[tokio::test]
async fn each_pod_of_a_deployment_update_is_checked_before_the_next() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(200).await;
    env.start_operator();
    env.apply_plan("update", deployment_rollout(&board)).await;
    let plan = env.wait_phase("update", Phase::Succeeded, LONG).await;
    assert_eq!(result_of(&plan, "pod-ok").phase, Some(CheckPhase::Passed));
    assert_eq!(subjects(&board).len(), 3, "{:?}", subjects(&board));
    let records = env.endpoints();
    assert_ready_at_least(&records, start, 3);
    // One pod at a time: never more than the replicas and the one pod under test.
    assert_ready_at_most(&records, start, 4);
    // Resumed, with the new template and its own strategy; nothing of the plan's left.
    assert_clean_end(&env, 3, "liferay/dxp:7.0.10-de-29").await;
    // Its controller takes the moved pods' set as its current one: it reports them updated
    // and replaces none of them.
    let moved = pod_names(&env).await;
    env.wait(
        "the deployment to count its pods as updated",
        LONG,
        || async {
            let d = env.deployments().get(APP).await.ok()?;
            let status = d.status?;
            (status.observed_generation == d.metadata.generation
                && status.updated_replicas == Some(3)
                && status.ready_replicas == Some(3))
            .then_some(())
        },
    )
    .await;
    assert_eq!(pod_names(&env).await, moved, "no pod was replaced again");
    env.stop_operator().await;
}

async fn pod_names(env: &Env) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels(&format!("app={APP}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_failing_check_on_a_deployment_update_puts_the_previous_template_back() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(500).await;
    env.start_operator();
    env.apply_plan("update", deployment_rollout(&board)).await;
    let plan = env.wait_phase("update", Phase::Failed, LONG).await;
    let message = plan.status.unwrap().message.unwrap();
    assert!(
        message.contains("check pod-ok (afterEachPod) failed on pod")
            && message.contains("previous template"),
        "{message}"
    );
    assert_eq!(subjects(&board).len(), 1, "no other pod was replaced");
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

/// A StatefulSet's new template under `afterEachPod` webhook checks answered by `board`.
fn stateful_rollout(board: &Receiver) -> serde_json::Value {
    json!({
        "target": {"kind": "StatefulSet", "name": APP}, "service": APP,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": "liferay/dxp:7.0.10-de-29"},
        "rollingRestart": {"afterEachPod": [webhook("pod-ok", &board.url)]}
    })
}

#[tokio::test]
async fn each_pod_of_a_stateful_set_is_checked_before_the_next() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(200).await;
    env.start_operator();
    env.apply_plan("sts", stateful_rollout(&board)).await;
    env.wait_phase("sts", Phase::Succeeded, LONG).await;
    let subjects: Vec<String> = board
        .bodies()
        .iter()
        .filter_map(|b| b["subject"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        subjects,
        [
            format!("pod {APP}-2"),
            format!("pod {APP}-1"),
            format!("pod {APP}-0")
        ],
        "each replacement checked once, in the controller's order"
    );
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_stateful_clean_end(&env, 3, "liferay/dxp:7.0.10-de-29", own_strategy).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_failing_check_on_a_replaced_pod_rolls_the_stateful_set_back() {
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "RollingUpdate"})).await;
    let own_strategy = strategy_of(&env).await;
    let start = env.endpoints().len() - 1;
    let board = Receiver::answering(500).await;
    env.start_operator();
    env.apply_plan("sts", stateful_rollout(&board)).await;
    let plan = env.wait_phase("sts", Phase::Failed, LONG).await;
    let message = plan.status.unwrap().message.unwrap();
    assert!(
        message.contains(&format!(
            "check pod-ok (afterEachPod) failed on pod {APP}-2"
        )) && message.contains("rolled back"),
        "{message}"
    );
    assert!(
        board
            .bodies()
            .iter()
            .all(|b| b["subject"] == format!("pod {APP}-2")),
        "no other pod was replaced: {:#?}",
        board.bodies()
    );
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_stateful_clean_end(&env, 3, OLD_IMAGE, own_strategy).await;
    env.stop_operator().await;
}

/// Subjects of the webhook bodies, in the order they were asked.
fn subjects(board: &Receiver) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for subject in board.bodies().iter().filter_map(|b| b["subject"].as_str()) {
        if !seen.iter().any(|s| s == subject) {
            seen.push(subject.to_string());
        }
    }
    seen
}

#[tokio::test]
async fn a_pending_template_is_checked_after_each_pod_on_both_kinds() {
    // GitOps flow, Deployment: paused with the new template, moved one pod at a time.
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    env.patch_deployment(
        json!({"spec": {"paused": true, "template": {"spec": {"containers": [
        {"name": APP, "image": "liferay/dxp:7.0.10-de-29"}]}}}}),
    )
    .await;
    let board = Receiver::answering(200).await;
    env.start_operator();
    let fixpack = json!([{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}]);
    env.apply_plan(
        "gitops",
        json!({
            "target": {"name": APP}, "service": APP, "changes": fixpack,
            "strategy": "RollingRestart",
            "rollingRestart": {"afterEachPod": [webhook("pod-ok", &board.url)]}
        }),
    )
    .await;
    let plan = env.wait_phase("gitops", Phase::Succeeded, LONG).await;
    assert_eq!(
        plan.status.as_ref().unwrap().flow,
        Some(cutover::api::Flow::PendingTemplate)
    );
    assert_eq!(subjects(&board).len(), 3, "{:?}", subjects(&board));
    env.stop_operator().await;

    // GitOps flow, StatefulSet: a new template held back under OnDelete.
    let mut env = Env::new().await;
    deploy_stateful(&env, 3, json!({"type": "OnDelete"})).await;
    support::stateful::stateful_sets(&env)
        .patch(
            APP,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
                {"name": APP, "image": "liferay/dxp:7.0.10-de-29"}]}}}})),
        )
        .await
        .unwrap();
    let board = Receiver::answering(200).await;
    env.start_operator();
    env.apply_plan(
        "gitops",
        json!({
            "target": {"kind": "StatefulSet", "name": APP}, "service": APP, "changes": fixpack,
            "rollingRestart": {"afterEachPod": [webhook("pod-ok", &board.url)]}
        }),
    )
    .await;
    env.wait_phase("gitops", Phase::Succeeded, LONG).await;
    assert_eq!(
        subjects(&board),
        [
            format!("pod {APP}-2"),
            format!("pod {APP}-1"),
            format!("pod {APP}-0")
        ]
    );
    env.stop_operator().await;
}
