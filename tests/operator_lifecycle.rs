//! A plan's lifecycle on the simulated cluster: waiting for another plan on the same target,
//! abort, deletion, a PodDisruptionBudget that blocks for a while, FullRestart with and
//! without allowDowntime, a rejected plan that touches nothing.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use kube::api::PostParams;
use serde_json::json;
use support::{APP, Env, assert_clean_end, assert_ready_at_least};

const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";
const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const LONG: Duration = Duration::from_secs(30);

/// A rollout whose new pods take `ready_ms` to become Ready.
fn slow_plan(ready_ms: u32) -> serde_json::Value {
    json!({
        "target": {"name": APP}, "service": APP,
        "update": {"image": NEW_IMAGE,
                   "podTemplatePatch": {"metadata": {"annotations": {"sim.cutover.dev/ready-after-ms": ready_ms.to_string()}}}}
    })
}

async fn wait_progress(env: &Env, name: &str, done: i32) {
    env.wait("progress", LONG, || async {
        let plan = env.plans().get(name).await.ok()?;
        (plan.status?.progress?.done >= done).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_second_plan_waits_for_the_first_then_runs() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    env.start_operator();
    env.apply_plan("first", slow_plan(150)).await;
    wait_progress(&env, "first", 0).await;
    env.apply_plan("second", json!({"target": {"name": APP}, "service": APP}))
        .await;
    let waiting = env.wait_phase("second", Phase::Pending, LONG).await;
    let message = waiting.status.unwrap().message.unwrap();
    assert!(message.contains("waiting for plan first"), "{message}");
    env.wait_phase("first", Phase::Succeeded, LONG).await;
    env.wait_phase("second", Phase::Succeeded, LONG).await;
    assert_clean_end(&env, 3, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn abort_mid_way_rolls_back_one_pod_at_a_time() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    // Slow enough that the abort lands mid-way on either bed (the real one rolls fast).
    env.apply_plan("fixpack", slow_plan(1000)).await;
    wait_progress(&env, "fixpack", 1).await;
    env.patch_plan("fixpack", json!({"abort": true})).await;
    let plan = env.wait_phase("fixpack", Phase::Aborted, LONG).await;
    assert!(
        plan.status
            .unwrap()
            .message
            .unwrap()
            .contains("rolled back")
    );
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn deleting_a_running_plan_aborts_it_before_it_goes() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan("fixpack", slow_plan(1000)).await;
    wait_progress(&env, "fixpack", 1).await;
    env.delete_plan("fixpack").await;
    env.wait_gone("fixpack", LONG).await;
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_disruption_budget_holds_the_restart_until_it_allows_more() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    env.block_disruptions().await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan("restart", json!({"target": {"name": APP}, "service": APP}))
        .await;
    env.wait("an eviction to be refused", LONG, || async {
        let plan = env.plans().get("restart").await.ok()?;
        let status = plan.status?;
        (status.step.as_deref() == Some("Evicting")).then_some(())
    })
    .await;
    // The refusal is a wait the plan says: in its status and in a Warning Event.
    let blocked = env
        .wait("the refusal in the status and an Event", LONG, || async {
            let status = env.plans().get("restart").await.ok()?.status?;
            let message = status
                .message
                .filter(|m| m.contains("PodDisruptionBudget"))?;
            let events = env.warnings("restart", "EvictionBlocked").await;
            (!events.is_empty()).then_some((message, events))
        })
        .await;
    assert!(blocked.0.contains("eviction of pod"), "{}", blocked.0);
    assert!(
        blocked.1.iter().all(|m| m.contains("PodDisruptionBudget")),
        "{:?}",
        blocked.1
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let plan = env.plans().get("restart").await.unwrap();
    assert_eq!(
        plan.status
            .as_ref()
            .unwrap()
            .progress
            .as_ref()
            .unwrap()
            .done,
        0,
        "nothing restarted while the budget forbids it"
    );
    env.allow_one_disruption(3).await;
    env.wait_phase("restart", Phase::Succeeded, LONG).await;
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

/// A budget with `maxUnavailable` is counted by the scale of each pod's controller. The surge
/// pod is owned by the plan but not controlled by it (a plan has no scale, and such a budget
/// would allow nothing): it is an unmanaged spare, so with it serving one of the target's pods
/// may go and the budget is never broken.
#[tokio::test]
async fn a_max_unavailable_budget_lets_the_restart_go_behind_the_surge_pod() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    env.add_budget(json!({"maxUnavailable": 0})).await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan("restart", json!({"target": {"name": APP}, "service": APP}))
        .await;
    env.wait_phase("restart", Phase::Succeeded, LONG).await;
    assert_ready_at_least(&env.endpoints(), start, 3);
    assert_clean_end(&env, 3, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn full_restart_only_with_downtime_allowed() {
    let mut env = Env::new().await;
    env.deploy_app(3).await;
    env.start_operator();
    let spec = json!({
        "target": {"name": APP}, "service": APP, "strategy": "FullRestart",
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": NEW_IMAGE}
    });
    env.apply_plan("no-window", spec.clone()).await;
    let plan = env.wait_phase("no-window", Phase::Rejected, LONG).await;
    assert!(
        plan.status
            .unwrap()
            .message
            .unwrap()
            .contains("allowDowntime: true")
    );
    assert!(
        !env.operator_touched_target().await,
        "a rejected plan touches nothing"
    );
    env.delete_plan("no-window").await;
    env.wait_gone("no-window", LONG).await;

    let mut spec = spec;
    spec["allowDowntime"] = json!(true);
    let start = env.endpoints().len() - 1;
    env.apply_plan("window", spec).await;
    let plan = env.wait_phase("window", Phase::Succeeded, LONG).await;
    let status = plan.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("FullRestart"));
    assert!(
        status.downtime.as_deref().is_some_and(|d| d.ends_with('s')),
        "{:?}",
        status.downtime
    );
    // All old pods were gone before a new one served: no moment mixes the two, and the
    // service was empty in between.
    let records = &env.endpoints()[start..];
    let old: Vec<String> = records[0].ready.iter().map(|p| p.name.clone()).collect();
    for r in records {
        let olds = r.ready.iter().filter(|p| old.contains(&p.name)).count();
        assert!(
            olds == 0 || olds == r.ready.len(),
            "old and new pods served together at {}",
            r.time
        );
    }
    assert!(
        records.iter().any(|r| r.ready.is_empty()),
        "the service went empty between versions"
    );
    assert_clean_end(&env, 3, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn an_unknown_target_is_rejected_and_touches_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(1).await;
    env.start_operator();
    env.apply_plan(
        "typo",
        json!({"target": {"name": "liferya"}, "service": APP}),
    )
    .await;
    let plan = env.wait_phase("typo", Phase::Rejected, LONG).await;
    assert!(
        plan.status
            .unwrap()
            .message
            .unwrap()
            .contains("deployment liferya not found")
    );
    assert!(!env.operator_touched_target().await);
    env.stop_operator().await;
}

#[tokio::test]
async fn a_budget_that_never_allows_an_eviction_fails_the_restart_safely() {
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.block_disruptions().await;
    let start = env.endpoints().len() - 1;
    env.start_operator();
    env.apply_plan(
        "restart",
        json!({"target": {"name": APP}, "service": APP, "rollingRestart": {"podReadyTimeoutSeconds": 1}}),
    )
    .await;
    let plan = env.wait_phase("restart", Phase::Failed, LONG).await;
    let status = plan.status.unwrap();
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("could not be evicted"),
        "{:?}",
        status.message
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
    assert_ready_at_least(&env.endpoints(), start, 2);
    assert_clean_end(&env, 2, OLD_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn plans_that_cannot_act_are_rejected_with_a_clear_message_and_touch_nothing() {
    let mut env = Env::new().await;
    env.deploy_app(1).await;
    for (name, selector) in [
        ("no-selector", json!(null)),
        ("elsewhere", json!({"app": "other"})),
    ] {
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": env.ns},
            "spec": {"selector": selector, "ports": [{"port": 8080}]}
        }))
        .unwrap();
        env.services()
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }
    env.start_operator();
    let cases = [
        (
            "a",
            json!({"target": {"name": APP}, "service": "no-selector"}),
            "has no selector",
        ),
        (
            "b",
            json!({"target": {"name": APP}, "service": "elsewhere"}),
            "selects app=other",
        ),
        (
            "c",
            json!({"target": {"name": APP}, "service": "missing"}),
            "service missing not found",
        ),
        (
            "d",
            json!({"target": {"name": APP}, "service": APP, "update": {"container": "sidecar", "image": "x"}}),
            "has no container \"sidecar\"",
        ),
    ];
    for (plan, spec, words) in cases {
        env.apply_plan(plan, spec).await;
        let rejected = env.wait_phase(plan, Phase::Rejected, LONG).await;
        let message = rejected.status.unwrap().message.unwrap();
        assert!(
            message.contains(words) && message.contains("nothing was touched"),
            "{plan}: {message}"
        );
    }
    assert!(!env.operator_touched_target().await);
    env.stop_operator().await;
}

/// DESIGN section 2b in the cluster: a plan that only bumps the image from de-28 to de-32 and
/// declares nothing is read as the fix pack move it is. On shared data it crosses the
/// non-revertible de-30 and is Rejected touching nothing; with isolated data it goes
/// blue-green. `status.changes` lists the inferred change, as the API server stores it.
#[tokio::test]
async fn an_image_bump_alone_is_read_as_the_fix_pack_it_is() {
    const DE_32: &str = "liferay/dxp:7.0.10-de-32";
    let mut env = Env::new().await;
    env.deploy_app(2).await;
    env.start_operator();
    let spec = json!({"target": {"name": APP}, "service": APP, "update": {"image": DE_32}});
    env.apply_plan("image-only", spec.clone()).await;
    let rejected = env.wait_phase("image-only", Phase::Rejected, LONG).await;
    let status = rejected.status.unwrap();
    let [change] = status.changes.as_slice() else {
        panic!("one inferred change in the status: {:?}", status.changes);
    };
    assert_eq!(change.source, cutover::api::ChangeSource::Inferred);
    let fix_pack = change.change.fix_pack.as_ref().expect("a FixPack change");
    assert_eq!(
        (fix_pack.from.as_str(), fix_pack.to.as_str()),
        ("de-28-7010", "de-32-7010")
    );
    assert!(
        status
            .findings
            .iter()
            .any(|f| f.change == Some(0) && f.message.contains("de-30")),
        "{:?}",
        status.findings
    );
    assert!(
        !env.operator_touched_target().await,
        "a rejected plan touches nothing"
    );
    env.delete_plan("image-only").await;
    env.wait_gone("image-only", LONG).await;

    let mut isolated = spec;
    isolated["blueGreen"] = json!({"dataIsolation": "Isolated", "scaleDownDelaySeconds": 0});
    env.apply_plan("image-isolated", isolated).await;
    let done = env
        .wait_phase("image-isolated", Phase::Succeeded, LONG)
        .await;
    let status = done.status.unwrap();
    assert_eq!(status.strategy.map(|s| s.as_str()), Some("BlueGreen"));
    assert_eq!(status.changes.len(), 1, "{:?}", status.changes);
    assert_clean_end(&env, 2, DE_32).await;
    env.stop_operator().await;
}
