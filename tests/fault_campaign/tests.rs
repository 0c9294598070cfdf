//! The campaign's own tests, without a cluster: the generator is reproducible and draws every
//! flow (and what a flow leaves open), and each judge finds the violation in a history made
//! to break it.

use std::collections::BTreeMap;

use cutover::api::{MaintenancePlan, MaintenancePlanStatus, Phase};
use cutover_sim::{EndpointPod, EndpointsRecord};

use super::config::{RunConfig, flow_of};
use super::flows::{Act, Check, Flow, Kind, Stage, Technique};
use super::judge::{self, Recorded};
use super::report;
use super::support::{APP, NS};

#[test]
fn the_generator_is_reproducible_and_covers_every_kind_of_run() {
    let a: Vec<String> = (0..50).map(|i| RunConfig::new(7, i).describe()).collect();
    let b: Vec<String> = (0..50).map(|i| RunConfig::new(7, i).describe()).collect();
    assert_eq!(a, b);
    assert_ne!(
        a,
        (0..50)
            .map(|i| RunConfig::new(8, i).describe())
            .collect::<Vec<_>>()
    );
    // Every block of runs draws every flow once, whatever the seed, in an order of its own.
    let n = Flow::ALL.len();
    for seed in [0, 1, 7, 20261201, u64::MAX] {
        for block in 0..3 {
            let mut drawn: Vec<Flow> = (block * n..(block + 1) * n)
                .map(|i| flow_of(seed, i))
                .collect();
            drawn.sort();
            let mut all = Flow::ALL.to_vec();
            all.sort();
            assert_eq!(drawn, all, "seed {seed}, block {block}");
        }
    }
    let order = |seed| (0..n).map(|i| flow_of(seed, i)).collect::<Vec<_>>();
    assert_ne!(order(7), order(8));
    assert_ne!(
        order(7)[..],
        (n..2 * n).map(|i| flow_of(7, i)).collect::<Vec<_>>()[..]
    );

    let configs: Vec<RunConfig> = (0..500).map(|i| RunConfig::new(7, i)).collect();
    for kind in [Kind::Deployment, Kind::StatefulSet] {
        for t in [
            Technique::Rollout,
            Technique::Restart,
            Technique::BlueGreen,
            Technique::FullRestart,
        ] {
            assert!(
                configs
                    .iter()
                    .any(|c| c.kind() == kind && c.technique == t && !c.pending()),
                "{kind:?} {t:?}"
            );
        }
    }
    for t in [
        Technique::Rollout,
        Technique::BlueGreen,
        Technique::FullRestart,
    ] {
        assert!(
            configs
                .iter()
                .any(|c| c.pending() && c.kind() == Kind::Deployment && c.technique == t),
            "pending template, {t:?}"
        );
    }
    for t in [Technique::Rollout, Technique::BlueGreen] {
        assert!(
            configs
                .iter()
                .any(|c| c.act() == Some(Act::Delete) && c.technique == t),
            "deletion of a {t:?}"
        );
    }
    for stage in [
        Stage::PrePromotion,
        Stage::PostPromotion,
        Stage::AfterEachPod,
    ] {
        for job in [false, true] {
            for fails in [false, true] {
                assert!(
                    configs
                        .iter()
                        .any(|c| c.check == Some(Check { stage, job, fails })),
                    "{stage:?} job {job} fails {fails}"
                );
            }
        }
    }
    for n in 1..=3 {
        assert!(configs.iter().any(|c| c.replicas == n), "{n} replicas");
    }
    // A StatefulSet cannot surge: its RollingRestart has two replicas or more, and so has a
    // run that acts once a pod was replaced.
    assert!(configs.iter().all(|c| {
        !(c.replicas == 1
            && (c.slow()
                || (c.kind() == Kind::StatefulSet
                    && matches!(c.technique, Technique::Rollout | Technique::Restart))))
    }));
    let permanent: Vec<&RunConfig> = configs.iter().filter(|c| c.permanent).collect();
    assert!(
        (10..=60).contains(&permanent.len()),
        "{} permanent faults",
        permanent.len()
    );
    for kind in [Kind::Deployment, Kind::StatefulSet] {
        for t in [Technique::Rollout, Technique::BlueGreen] {
            assert!(
                permanent
                    .iter()
                    .any(|c| c.kind() == kind && c.technique == t),
                "permanent {kind:?} {t:?}"
            );
        }
    }
    assert!(permanent.iter().all(|c| matches!(
        c.flow,
        Flow::Plain(_, Technique::Rollout | Technique::BlueGreen)
    )));
    assert!(configs.iter().any(|c| c.kills.is_empty()));
    assert!(configs.iter().any(|c| c.kills.len() == 3));

    // The report's runs section names every flow in the words a reader looks for.
    let forty: Vec<RunConfig> = (0..40).map(|i| RunConfig::new(12345, i)).collect();
    let refs: Vec<&RunConfig> = forty.iter().collect();
    let runs = report::runs_section(&refs);
    for words in [
        "StatefulSet",
        "FullRestart",
        "BlueGreen",
        "RollingRestart (template change)",
        "RollingRestart (plain restart)",
        "PendingTemplate",
        "abort before the switch",
        "abort after the switch",
        "abort mid-way",
        "deletion of a running plan",
        "second plan on the lock",
        "a check that passes",
        "a check that fails",
    ] {
        assert!(runs.contains(words), "{words:?} not in\n{runs}");
    }
    for flow in Flow::ALL {
        assert!(runs.contains(&flow.label()), "{flow:?} not in\n{runs}");
    }
}

fn pod(name: &str, label: &str, hash: &str) -> EndpointPod {
    EndpointPod {
        name: name.into(),
        pod_template_hash: (label == "pod-template-hash").then(|| hash.into()),
        labels: BTreeMap::from([(label.to_string(), hash.to_string())]),
    }
}

fn record(service: &str, ready: Vec<EndpointPod>, not_ready: &[&str]) -> EndpointsRecord {
    EndpointsRecord {
        time: k8s_openapi::jiff::Timestamp::now(),
        namespace: NS.into(),
        service: service.into(),
        ready,
        not_ready: not_ready.iter().map(|n| n.to_string()).collect(),
    }
}

fn traffic(records: Vec<Vec<EndpointPod>>) -> Recorded {
    Recorded {
        traffic: records.into_iter().map(|r| record(APP, r, &[])).collect(),
        headless: Vec::new(),
        twin: Vec::new(),
        start: 0,
    }
}

/// A config of `flow` drawn from some seed (the first run of that flow).
fn config_of(flow: Flow) -> RunConfig {
    (0..)
        .map(|i| RunConfig::new(3, i))
        .find(|c| c.flow == flow)
        .unwrap()
}

#[test]
fn the_checks_find_a_gap_a_mix_and_a_touched_blue() {
    let d = |name: &str, hash: &str| pod(name, "pod-template-hash", hash);
    let mut cfg = config_of(Flow::Plain(Kind::Deployment, Technique::BlueGreen));
    cfg.replicas = 2;
    cfg.permanent = true;
    let fine = vec![
        vec![d("a", "1"), d("b", "1")],
        vec![d("a", "1"), d("b", "1")],
    ];
    assert!(judge::history_violations(&cfg, &traffic(fine.clone()), false).is_empty());
    let broken = vec![
        vec![d("a", "1"), d("b", "1")],
        vec![d("a", "1"), d("c", "2")],
        vec![d("a", "1")],
        vec![],
    ];
    let found = judge::history_violations(&cfg, &traffic(broken.clone()), false);
    for kind in ["no gap", "no mixing", "safe failure"] {
        assert!(
            found.iter().any(|v| v.starts_with(kind)),
            "{kind}: {found:?}"
        );
    }
    // Below the replicas without a gap is a floor violation of its own.
    let thin = vec![vec![d("a", "1"), d("b", "1")], vec![d("a", "1")]];
    let found = judge::history_violations(&cfg, &traffic(thin.clone()), false);
    assert!(
        found.iter().any(|v| v.starts_with("ready floor")),
        "{found:?}"
    );
    // A successful run that never replaced a pod.
    let mut restart = config_of(Flow::Plain(Kind::Deployment, Technique::Restart));
    restart.replicas = 2;
    let found = judge::history_violations(&restart, &traffic(fine.clone()), true);
    assert!(
        found.iter().any(|v| v.starts_with("clean end")),
        "{found:?}"
    );
    let replaced = vec![fine[0].clone(), vec![d("c", "1"), d("d", "1")]];
    assert!(judge::history_violations(&restart, &traffic(replaced.clone()), true).is_empty());

    // A FullRestart may go without endpoints, never serve two versions at once.
    let mut full = config_of(Flow::Plain(Kind::Deployment, Technique::FullRestart));
    full.replicas = 2;
    let downtime = vec![fine[0].clone(), vec![], vec![d("c", "2"), d("d", "2")]];
    assert!(judge::history_violations(&full, &traffic(downtime), true).is_empty());
    let mixed = vec![
        fine[0].clone(),
        vec![d("a", "1"), d("c", "2")],
        vec![d("c", "2")],
    ];
    let found = judge::history_violations(&full, &traffic(mixed), true);
    assert!(
        found.iter().any(|v| v.starts_with("no mixing")),
        "{found:?}"
    );

    // An abort before the switch, a failed check before it: blue is left alone.
    let abort = config_of(Flow::Acted(Act::AbortBeforeSwitch));
    let found = judge::history_violations(&abort, &traffic(replaced.clone()), false);
    assert!(
        found.iter().any(|v| v.starts_with("safe failure")),
        "{found:?}"
    );
    let mut check = config_of(Flow::Checked { fails: true });
    check.check = Some(Check {
        stage: Stage::PrePromotion,
        job: true,
        fails: true,
    });
    check.technique = Technique::BlueGreen;
    let found = judge::history_violations(&check, &traffic(replaced), false);
    assert!(
        found.iter().any(|v| v.starts_with("safe failure")),
        "{found:?}"
    );
}

#[test]
fn the_checks_of_a_stateful_set_read_its_revisions_and_its_discovery_services() {
    let s = |name: &str, rev: &str| pod(name, "controller-revision-hash", rev);
    let mut cfg = config_of(Flow::Plain(Kind::StatefulSet, Technique::BlueGreen));
    cfg.replicas = 2;
    cfg.permanent = false;
    let blue = vec![s("liferay-0", "a"), s("liferay-1", "a")];
    let green = vec![s("liferay-green-0", "b"), s("liferay-green-1", "b")];
    let clean = Recorded {
        traffic: [blue.clone(), green.clone(), green.clone()]
            .into_iter()
            .map(|r| record(APP, r, &[]))
            .collect(),
        headless: vec![record("liferay-headless", blue.clone(), &[])],
        twin: vec![record("liferay-headless-green", green.clone(), &[])],
        start: 0,
    };
    assert!(judge::history_violations(&cfg, &clean, true).is_empty());
    // A StatefulSet's pods carry no pod-template-hash: mixing shows in its own label.
    let mix = Recorded {
        traffic: [
            blue.clone(),
            vec![s("liferay-0", "a"), s("liferay-green-0", "b")],
            green.clone(),
        ]
        .into_iter()
        .map(|r| record(APP, r, &[]))
        .collect(),
        ..clean
    };
    let found = judge::history_violations(&cfg, &mix, true);
    assert!(
        found.iter().any(|v| v.starts_with("no mixing")),
        "{found:?}"
    );
    // Green listed by blue's headless Service (even not Ready), blue by green's twin.
    let joined = Recorded {
        traffic: mix.traffic[..1].to_vec(),
        headless: vec![record(
            "liferay-headless",
            blue.clone(),
            &["liferay-green-0"],
        )],
        twin: vec![record(
            "liferay-headless-green",
            vec![s("liferay-1", "a")],
            &[],
        )],
        start: 0,
    };
    let found = judge::history_violations(&cfg, &joined, false);
    assert!(
        found
            .iter()
            .any(|v| v.contains("blue's headless service") && v.contains("liferay-green-0")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.contains("green's twin") && v.contains("liferay-1")),
        "{found:?}"
    );
    // A RollingRestart of a StatefulSet has one pod out at a time, never two.
    let mut rolling = config_of(Flow::Plain(Kind::StatefulSet, Technique::Rollout));
    rolling.replicas = 3;
    let one_out = vec![
        vec![
            s("liferay-0", "a"),
            s("liferay-1", "a"),
            s("liferay-2", "a"),
        ],
        vec![s("liferay-0", "a"), s("liferay-1", "a")],
        vec![
            s("liferay-0", "a"),
            s("liferay-1", "a"),
            s("liferay-2", "b"),
        ],
    ];
    assert!(judge::history_violations(&rolling, &traffic(one_out.clone()), false).is_empty());
    let two_out = vec![one_out[0].clone(), vec![s("liferay-0", "a")]];
    let found = judge::history_violations(&rolling, &traffic(two_out), false);
    assert!(
        found.iter().any(|v| v.starts_with("ready floor")),
        "{found:?}"
    );
}

fn ended(phase: Phase, message: &str) -> MaintenancePlan {
    let mut plan: MaintenancePlan = serde_json::from_value(serde_json::json!({
        "apiVersion": "cutover.dev/v1alpha1", "kind": "MaintenancePlan",
        "metadata": {"name": "campaign", "namespace": NS},
        "spec": {"target": {"name": APP}, "service": APP}
    }))
    .unwrap();
    plan.status = Some(MaintenancePlanStatus {
        phase: Some(phase),
        message: Some(message.into()),
        ..Default::default()
    });
    plan
}

#[test]
fn the_checks_find_a_plan_that_did_not_wait_and_an_outcome_that_says_too_little() {
    let waiting = "waiting for plan campaign to end".to_string();
    assert!(
        judge::lock_violations(&[
            (None, String::new()),
            (Some(Phase::Pending), waiting.clone())
        ])
        .is_empty()
    );
    let found = judge::lock_violations(&[
        (Some(Phase::Pending), waiting.clone()),
        (Some(Phase::Progressing), "rolling".into()),
    ]);
    assert!(
        found
            .iter()
            .any(|v| v.contains("Some(Progressing) while the first ran")),
        "{found:?}"
    );
    let found = judge::lock_violations(&[(Some(Phase::Pending), "waiting".into())]);
    assert!(
        found.iter().any(|v| v.contains("does not name")),
        "{found:?}"
    );
    assert!(judge::second_violations(Some(&ended(Phase::Succeeded, ""))).is_empty());
    assert!(!judge::second_violations(Some(&ended(Phase::Failed, ""))).is_empty());
    assert!(!judge::second_violations(None).is_empty());

    // A deleted plan must be gone; any other plan must not be.
    let delete = config_of(Flow::Acted(Act::Delete));
    assert!(judge::outcome_violations(&delete, None).is_empty());
    let found = judge::outcome_violations(&delete, Some(&ended(Phase::Succeeded, "")));
    assert!(found.iter().any(|v| v.starts_with("outcome")), "{found:?}");
    let abort = config_of(Flow::Acted(Act::AbortMidway));
    let found = judge::outcome_violations(&abort, None);
    assert!(found.iter().any(|v| v.contains("is gone")), "{found:?}");
    // A failed check must be the reason given, and in status.checks.
    let mut check = config_of(Flow::Checked { fails: true });
    check.check = Some(Check {
        stage: Stage::PostPromotion,
        job: false,
        fails: true,
    });
    check.technique = Technique::BlueGreen;
    let found = judge::outcome_violations(&check, Some(&ended(Phase::Failed, "something else")));
    assert!(
        found
            .iter()
            .any(|v| v.contains("does not say \"check campaign-check (postPromotion) failed\"")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|v| v.contains("status.checks")),
        "{found:?}"
    );
}
