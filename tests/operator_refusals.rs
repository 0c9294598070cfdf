//! Requests the API server refuses for good (403, 404, 422, ...): the plan says in its status
//! and in a Warning Event what was refused and why, tries again less and less often, and goes
//! on by itself once the request is allowed (RBAC granted, say). On the simulated cluster,
//! whose fault rules play the refusing server.

mod support;

use std::time::Duration;

use cutover::api::Phase;
use cutover::operator::retry::RetryPolicy;
use cutover_sim::FaultRule;
use serde_json::json;
use support::{APP, Env, assert_clean_end};

const NEW_IMAGE: &str = "liferay/dxp:7.0.10-de-29";
const OLD_IMAGE: &str = "liferay/dxp:7.0.10-de-28";

fn image_plan() -> serde_json::Value {
    json!({
        "target": {"name": APP}, "service": APP,
        "changes": [{"type": "FixPack", "fixPack": {"from": "de-28", "to": "de-29"}}],
        "update": {"image": NEW_IMAGE}
    })
}

/// Retries of permanent errors at test speed: the same backoff, in milliseconds.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        transient_cap: Duration::from_millis(200),
        permanent_first: Duration::from_millis(50),
        permanent_cap: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn a_forbidden_write_stalls_the_plan_saying_why_until_it_is_allowed() {
    let mut env = Env::on_sim().await;
    env.deploy_app(3).await;
    env.start_operator_retrying(quick_retries());
    // The operator may not replace the Deployment (the first write of a rollout).
    let forbidden = env.sim().inject(
        FaultRule::status(403)
            .verb("update")
            .resource("deployments")
            .name(APP),
    );
    env.apply_plan("fixpack", image_plan()).await;

    let (message, stalled) = env
        .wait(
            "the refusal in the plan's status",
            Duration::from_secs(10),
            || async {
                let status = env.plans().get("fixpack").await.ok()?.status?;
                let stalled = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Stalled" && c.status == "True")?
                    .clone();
                Some((status.message?, stalled))
            },
        )
        .await;
    assert!(
        message.starts_with("forbidden: the operator may not update deployment liferay: ")
            && message.contains("(403 Forbidden)"),
        "{message}"
    );
    assert_eq!(stalled.reason, "Forbidden");
    assert_eq!(stalled.message, message);
    let events = env
        .wait(
            "a Warning Event naming the refusal",
            Duration::from_secs(10),
            || async {
                let found = env.warnings("fixpack", "Forbidden").await;
                (!found.is_empty()).then_some(found)
            },
        )
        .await;
    assert!(events.iter().all(|e| *e == message), "{events:?}");
    // It keeps trying while refused; nothing of the target changed.
    env.wait("another try", Duration::from_secs(10), || async {
        (env.sim().faults().fired(forbidden) >= 3).then_some(())
    })
    .await;
    assert!(env.images().await.iter().all(|i| i == OLD_IMAGE));

    // Allowed again: the plan goes on by itself and ends as it would have.
    env.sim().faults().remove(forbidden);
    let plan = env
        .wait_phase("fixpack", Phase::Succeeded, Duration::from_secs(30))
        .await;
    let conditions = plan.status.unwrap().conditions;
    assert!(
        !conditions.iter().any(|c| c.type_ == "Stalled"),
        "{conditions:?}"
    );
    assert_clean_end(&env, 3, NEW_IMAGE).await;
    env.stop_operator().await;
}

#[tokio::test]
async fn a_refused_status_write_is_said_in_an_event_and_the_plan_goes_on_once_allowed() {
    let mut env = Env::on_sim().await;
    env.deploy_app(1).await;
    env.start_operator_retrying(quick_retries());
    let invalid = env.sim().inject(
        FaultRule::status(422)
            .verb("patch")
            .resource("maintenanceplans/status"),
    );
    env.apply_plan("fixpack", image_plan()).await;
    let events = env
        .wait(
            "a Warning Event naming the refusal",
            Duration::from_secs(10),
            || async {
                let found = env.warnings("fixpack", "Invalid").await;
                (!found.is_empty()).then_some(found)
            },
        )
        .await;
    assert!(
        events[0].starts_with(
            "refused: the API server would not let the operator patch plan fixpack status: "
        ) && events[0].contains("(422 Invalid)"),
        "{events:?}"
    );
    env.sim().faults().remove(invalid);
    env.wait_phase("fixpack", Phase::Succeeded, Duration::from_secs(30))
        .await;
    assert_clean_end(&env, 1, NEW_IMAGE).await;
    env.stop_operator().await;
}
