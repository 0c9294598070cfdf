//! The rules of DESIGN section 2, one case per row, every catalogued fix pack, and the
//! decision procedure, checked through the public `evaluate` function.

use cutover::api::{
    ActivationKeyChange, Change, ChangeType, ClusterCodeCategory, ClusterCodeChange, CustomChange,
    DataIsolation, FixPackChange, JavaVersionChange, MaintenancePlanSpec, ModuleAction,
    ModuleChange, SchemaChange, StrategyChoice, TargetKind, TargetRef, Technique, Verdict,
    VersionTransition,
};
use cutover::rules::{Catalog, Evaluation, evaluate};

use Technique::{BlueGreen as BG, RollingRestart as RR};

fn spec(changes: Vec<Change>) -> MaintenancePlanSpec {
    MaintenancePlanSpec {
        target: TargetRef {
            kind: TargetKind::Deployment,
            name: "liferay".into(),
        },
        service: "liferay".into(),
        changes,
        update: None,
        infer_changes: true,
        strategy: StrategyChoice::Auto,
        allow_downtime: false,
        rolling_restart: Default::default(),
        blue_green: Default::default(),
        paused: false,
        promote: false,
        abort: false,
    }
}

fn isolated(mut s: MaintenancePlanSpec) -> MaintenancePlanSpec {
    s.blue_green.data_isolation = DataIsolation::Isolated;
    s
}

fn bare(kind: ChangeType) -> Change {
    Change::bare(kind)
}

fn fix_pack(from: &str, to: &str) -> Change {
    Change {
        fix_pack: Some(FixPackChange {
            from: from.into(),
            to: to.into(),
        }),
        ..bare(ChangeType::FixPack)
    }
}

fn module(changes: &[SchemaChange], versions: Option<(&str, &str)>) -> Change {
    Change {
        module: Some(ModuleChange {
            name: "com.acme.billing.service".into(),
            action: ModuleAction::Update,
            schema_changes: changes.to_vec(),
            require_schema_version: versions.map(|(f, t)| VersionTransition {
                from: f.into(),
                to: t.into(),
            }),
        }),
        ..bare(ChangeType::Module)
    }
}

fn java(from: &str, to: &str) -> Change {
    Change {
        java_version: Some(JavaVersionChange {
            from: from.into(),
            to: to.into(),
        }),
        ..bare(ChangeType::JavaVersion)
    }
}

fn cluster(packages: &[&str], categories: &[ClusterCodeCategory]) -> Change {
    Change {
        cluster_code: Some(ClusterCodeChange {
            packages: packages.iter().map(|p| p.to_string()).collect(),
            categories: categories.to_vec(),
        }),
        ..bare(ChangeType::ClusterCode)
    }
}

fn eval(s: &MaintenancePlanSpec) -> Evaluation {
    evaluate(s, Catalog::builtin()).expect("valid plan")
}

/// The union of what a plan's findings block.
fn blocked(e: &Evaluation) -> Vec<Technique> {
    let mut all: Vec<Technique> = e.findings.iter().flat_map(|f| f.blocks.clone()).collect();
    all.sort();
    all.dedup();
    all
}

/// A row: a change evaluated with Shared and with Isolated data, and what each blocks.
struct Row {
    name: &'static str,
    change: Change,
    shared: &'static [Technique],
    isolated: &'static [Technique],
    rule: &'static str,
}

fn rows() -> Vec<Row> {
    use ClusterCodeCategory::*;
    use SchemaChange::*;
    let mut rows = vec![
        Row {
            name: "module, no schema changes",
            change: module(&[], None),
            shared: &[],
            isolated: &[],
            rule: "module-backward-compatible",
        },
        Row {
            name: "module AddTable+AddColumn, same schema version",
            change: module(&[AddTable, AddColumn], Some(("1.0.0", "1.0"))),
            shared: &[],
            isolated: &[],
            rule: "module-backward-compatible",
        },
        Row {
            name: "module schema version change",
            change: module(&[], Some(("1.0.0", "2.0.0"))),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "module-schema-version-change",
        },
        Row {
            name: "fix pack crossing de-30",
            change: fix_pack("de-28", "de-32"),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "fixpack-crosses-non-revertible",
        },
        Row {
            name: "fix pack crossing de-33 (clustering)",
            change: fix_pack("de-31", "de-34"),
            shared: &[RR],
            isolated: &[RR],
            rule: "fixpack-crosses-non-revertible",
        },
        Row {
            name: "fix pack removal crossing de-30",
            change: fix_pack("de-32", "de-28"),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "fixpack-crosses-non-revertible",
        },
        Row {
            name: "fix pack crossing none",
            change: fix_pack("de-31", "de-32"),
            shared: &[],
            isolated: &[],
            rule: "fixpack-revertible",
        },
        Row {
            name: "fix pack landing just before de-30",
            change: fix_pack("de-28", "de-29"),
            shared: &[],
            isolated: &[],
            rule: "fixpack-revertible",
        },
        Row {
            name: "fix pack removal down to de-30 keeps it",
            change: fix_pack("de-32", "de-30"),
            shared: &[],
            isolated: &[],
            rule: "fixpack-revertible",
        },
        Row {
            name: "product upgrade",
            change: fix_pack("de-28-7010", "dxp-5-7110"),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "fixpack-product-upgrade",
        },
        Row {
            name: "presumed non-revertible de-50",
            change: fix_pack("de-41", "de-52"),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "fixpack-presumed-non-revertible",
        },
        Row {
            name: "cluster package",
            change: cluster(&["com.liferay.portal.kernel.cluster.ClusterExecutor"], &[]),
            shared: &[RR],
            isolated: &[RR],
            rule: "cluster-code-change",
        },
        Row {
            name: "cluster category only",
            change: cluster(&[], &[CacheReplication]),
            shared: &[RR],
            isolated: &[RR],
            rule: "cluster-code-change",
        },
        Row {
            name: "non-cluster package",
            change: cluster(&["com.liferay.portal.kernel.clusterfoo.X"], &[]),
            shared: &[],
            isolated: &[],
            rule: "cluster-code-outside-communication",
        },
        Row {
            name: "java same major",
            change: java("1.8.0_292", "8u302"),
            shared: &[],
            isolated: &[],
            rule: "java-same-major",
        },
        Row {
            name: "java major change",
            change: java("1.8.0_292", "11.0.12"),
            shared: &[RR],
            isolated: &[RR],
            rule: "java-major-change",
        },
        Row {
            name: "activation key, virtual cluster",
            change: Change {
                activation_key: Some(ActivationKeyChange {
                    virtual_cluster: true,
                }),
                ..bare(ChangeType::ActivationKey)
            },
            shared: &[],
            isolated: &[],
            rule: "activation-key",
        },
        Row {
            name: "activation key, not virtual cluster",
            change: Change {
                activation_key: Some(ActivationKeyChange {
                    virtual_cluster: false,
                }),
                ..bare(ChangeType::ActivationKey)
            },
            shared: &[BG],
            isolated: &[BG],
            rule: "activation-key-not-virtual-cluster",
        },
        Row {
            name: "custom, rolling safe",
            change: Change {
                custom: Some(CustomChange {
                    description: "x".into(),
                    rolling_restart_safe: true,
                }),
                ..bare(ChangeType::Custom)
            },
            shared: &[],
            isolated: &[],
            rule: "custom-rolling-safe",
        },
        Row {
            name: "custom, not rolling safe",
            change: Change {
                custom: Some(CustomChange {
                    description: "new session format".into(),
                    rolling_restart_safe: false,
                }),
                ..bare(ChangeType::Custom)
            },
            shared: &[RR],
            isolated: &[RR],
            rule: "custom-not-rolling-safe",
        },
    ];
    for breaking in [
        ModifyColumnData,
        DropColumn,
        RenameColumn,
        ChangeColumnType,
        ChangeDataFormat,
        DropTable,
        RenameTable,
    ] {
        rows.push(Row {
            name: "module with a breaking schema change",
            change: module(&[AddColumn, breaking], None),
            shared: &[RR, BG],
            isolated: &[RR],
            rule: "module-incompatible-schema-change",
        });
    }
    for kind in [
        ChangeType::PortalProperties,
        ChangeType::SystemSettings,
        ChangeType::AppServer,
        ChangeType::JvmSettings,
    ] {
        rows.push(Row {
            name: "configuration change",
            change: bare(kind),
            shared: &[],
            isolated: &[],
            rule: "configuration-change",
        });
    }
    rows
}

#[test]
fn every_row_blocks_what_the_table_says() {
    for row in rows() {
        for (data, s, expected) in [
            ("Shared", spec(vec![row.change.clone()]), row.shared),
            (
                "Isolated",
                isolated(spec(vec![row.change.clone()])),
                row.isolated,
            ),
        ] {
            let e = eval(&s);
            assert_eq!(
                blocked(&e),
                expected,
                "{} with {data} data: {:#?}",
                row.name,
                e.findings
            );
            assert!(
                e.findings.iter().any(|f| f.rule == row.rule),
                "{}: expected rule {}, got {:#?}",
                row.name,
                row.rule,
                e.findings
            );
            assert!(
                e.findings
                    .iter()
                    .all(|f| f.change == Some(0) && !f.message.is_empty()),
                "{}",
                row.name
            );
            let verdict = if !expected.contains(&RR) {
                Verdict::RollingRestart
            } else if !expected.contains(&BG) {
                Verdict::BlueGreen
            } else {
                Verdict::Rejected
            };
            assert_eq!(e.verdict, verdict, "{} with {data} data", row.name);
        }
    }
}

#[test]
fn contract_example_message_is_exact() {
    let e = eval(&isolated(spec(vec![fix_pack("de-28", "de-32")])));
    assert_eq!(e.verdict, Verdict::BlueGreen);
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].rule, "fixpack-crosses-non-revertible");
    assert_eq!(e.findings[0].blocks, vec![RR]);
    assert_eq!(
        e.findings[0].message,
        "de-28 -> de-32 crosses de-30, a non-revertible fix pack (schema)"
    );
}

#[test]
fn every_catalogued_fix_pack_is_crossed_with_its_kind() {
    // (number, blocks with shared data, words in the message)
    let catalog = [
        (8, &[RR, BG][..], "(schema and clustering)"),
        (11, &[RR, BG][..], "(schema)"),
        (14, &[RR, BG][..], "(schema)"),
        (27, &[RR, BG][..], "(schema)"),
        (30, &[RR, BG][..], "(schema)"),
        (33, &[RR][..], "(clustering)"),
        (37, &[RR, BG][..], "(schema)"),
        (39, &[RR][..], "(clustering)"),
        (40, &[RR, BG][..], "(schema)"),
    ];
    for (number, shared_blocks, words) in catalog {
        for (from, to) in [(number - 1, number), (number, number - 1)] {
            for long in [false, true] {
                let id = |n: u32| {
                    if long {
                        format!("de-{n:02}-7010")
                    } else {
                        format!("de-{n}")
                    }
                };
                let e = eval(&spec(vec![fix_pack(&id(from), &id(to))]));
                assert_eq!(e.findings.len(), 1, "de-{number}: {:#?}", e.findings);
                let f = &e.findings[0];
                assert_eq!(f.blocks, shared_blocks, "de-{from} -> de-{to}");
                assert!(
                    f.message.contains(&format!("crosses de-{number:02}"))
                        && f.message.contains(words),
                    "{}",
                    f.message
                );
                if words.contains("clustering") {
                    assert!(
                        f.message.contains("green must not join blue's cluster"),
                        "{}",
                        f.message
                    );
                }
            }
        }
        // Staying on it crosses nothing.
        let same = format!("de-{number}");
        assert_eq!(
            eval(&spec(vec![fix_pack(&same, &same)])).findings[0].rule,
            "fixpack-revertible"
        );
    }
    // Every non-catalogued fix pack of DXP 7.0 up to de-40 is revertible on its own.
    for n in 2..=40u32 {
        if !catalog.iter().any(|(c, _, _)| *c == n) {
            let e = eval(&spec(vec![fix_pack(
                &format!("de-{}", n - 1),
                &format!("de-{n}"),
            )]));
            assert_eq!(e.findings[0].rule, "fixpack-revertible", "de-{n}");
        }
    }
}

#[test]
fn a_long_path_lists_every_non_revertible_fix_pack() {
    let e = eval(&isolated(spec(vec![fix_pack("de-01", "de-40")])));
    let crossed: Vec<&str> = e
        .findings
        .iter()
        .map(|f| {
            f.message
                .split(" crosses ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        crossed,
        [
            "de-08", "de-11", "de-14", "de-27", "de-30", "de-33", "de-37", "de-39", "de-40"
        ]
    );
}

#[test]
fn presumption_says_so_and_the_catalog_can_lift_it() {
    let e = eval(&spec(vec![fix_pack("de-45", "de-50")]));
    assert_eq!(e.findings[0].rule, "fixpack-presumed-non-revertible");
    assert!(
        e.findings[0].message.contains("presumed"),
        "{}",
        e.findings[0].message
    );
    let catalog =
        Catalog::with_user_file("fixPacks:\n  - {id: de-50, kind: Revertible}\n").unwrap();
    let e = evaluate(&spec(vec![fix_pack("de-45", "de-50")]), &catalog).unwrap();
    assert_eq!(e.findings[0].rule, "fixpack-revertible");
    // Inside the known range a number ending in 0 is only what the catalog says.
    assert_eq!(
        eval(&spec(vec![fix_pack("de-19", "de-20")])).findings[0].rule,
        "fixpack-revertible"
    );
}

#[test]
fn decision_procedure() {
    let breaking = || fix_pack("de-28", "de-32");
    let java_major = || java("8", "11");
    let with = |changes: Vec<Change>, strategy: StrategyChoice, downtime: bool, iso: bool| {
        let mut s = spec(changes);
        s.strategy = strategy;
        s.allow_downtime = downtime;
        if iso {
            s = isolated(s);
        }
        eval(&s).verdict
    };
    use StrategyChoice::*;
    // No changes: a plain restart.
    assert_eq!(with(vec![], Auto, false, false), Verdict::RollingRestart);
    // Auto: first technique nothing blocks.
    assert_eq!(
        with(vec![java_major()], Auto, false, false),
        Verdict::BlueGreen
    );
    assert_eq!(
        with(vec![breaking()], Auto, false, true),
        Verdict::BlueGreen
    );
    assert_eq!(
        with(vec![breaking()], Auto, true, false),
        Verdict::FullRestart
    );
    assert_eq!(
        with(vec![breaking()], Auto, false, false),
        Verdict::Rejected
    );
    // Auto prefers RollingRestart even when downtime is allowed.
    assert_eq!(
        with(vec![bare(ChangeType::JvmSettings)], Auto, true, false),
        Verdict::RollingRestart
    );
    // Explicit strategies: accepted only if nothing blocks them.
    assert_eq!(
        with(
            vec![bare(ChangeType::PortalProperties)],
            BlueGreen,
            false,
            false
        ),
        Verdict::BlueGreen
    );
    assert_eq!(
        with(vec![java_major()], RollingRestart, true, false),
        Verdict::Rejected
    );
    assert_eq!(
        with(vec![breaking()], BlueGreen, false, false),
        Verdict::Rejected
    );
    assert_eq!(
        with(vec![breaking()], BlueGreen, false, true),
        Verdict::BlueGreen
    );
    assert_eq!(with(vec![], FullRestart, false, false), Verdict::Rejected);
    assert_eq!(
        with(vec![breaking()], FullRestart, true, false),
        Verdict::FullRestart
    );
    // One blocker anywhere blocks the technique for the whole plan.
    assert_eq!(
        with(
            vec![bare(ChangeType::AppServer), java_major(), breaking()],
            Auto,
            false,
            true
        ),
        Verdict::BlueGreen
    );
}

#[test]
fn rejection_says_how_to_proceed() {
    let e = eval(&spec(vec![fix_pack("de-28", "de-32")]));
    assert_eq!(e.verdict, Verdict::Rejected);
    assert!(
        e.explanation
            .contains("change 0 (fixpack-crosses-non-revertible)"),
        "{}",
        e.explanation
    );
    assert!(
        e.explanation.contains("blueGreen.dataIsolation: Isolated"),
        "{}",
        e.explanation
    );
    assert!(
        e.explanation.contains("allowDowntime: true"),
        "{}",
        e.explanation
    );

    let key = Change {
        activation_key: Some(ActivationKeyChange {
            virtual_cluster: false,
        }),
        ..bare(ChangeType::ActivationKey)
    };
    let mut s = spec(vec![java("8", "17"), key]);
    let e = eval(&s);
    assert!(
        e.explanation.contains("activationKey.virtualCluster: true"),
        "{}",
        e.explanation
    );
    assert!(
        !e.explanation.contains("dataIsolation"),
        "{}",
        e.explanation
    );

    s.strategy = StrategyChoice::RollingRestart;
    s.changes = vec![java("8", "17")];
    let e = eval(&s);
    assert!(
        e.explanation.contains("use strategy: BlueGreen"),
        "{}",
        e.explanation
    );
}

#[test]
fn findings_are_in_change_order_and_name_their_change() {
    let e = eval(&isolated(spec(vec![
        bare(ChangeType::PortalProperties),
        java("11", "17"),
        fix_pack("de-28", "de-32"),
    ])));
    let changes: Vec<Option<u32>> = e.findings.iter().map(|f| f.change).collect();
    assert_eq!(changes, vec![Some(0), Some(1), Some(2)]);
}

#[test]
fn invalid_members_and_values_name_the_field() {
    let cases: Vec<(Change, &str)> = vec![
        (bare(ChangeType::FixPack), "spec.changes[0].fixPack"),
        (
            Change {
                module: module(&[], None).module,
                ..fix_pack("de-1", "de-2")
            },
            "spec.changes[0].module",
        ),
        (
            Change {
                fix_pack: fix_pack("de-1", "de-2").fix_pack,
                ..bare(ChangeType::PortalProperties)
            },
            "spec.changes[0].fixPack",
        ),
        (fix_pack("de28", "de-32"), "spec.changes[0].fixPack.from"),
        (fix_pack("de-28", "32"), "spec.changes[0].fixPack.to"),
        (java("eight", "11"), "spec.changes[0].javaVersion.from"),
        (
            module(&[], Some(("1.0.0", "one"))),
            "spec.changes[0].module.requireSchemaVersion.to",
        ),
        (
            cluster(&["com..liferay"], &[]),
            "spec.changes[0].clusterCode.packages[0]",
        ),
    ];
    for (change, path) in cases {
        let err = evaluate(&spec(vec![change]), Catalog::builtin()).unwrap_err();
        assert_eq!(err.path, path, "{err}");
        assert!(!err.reason.is_empty());
    }
}

/// DESIGN sections 2 and 4: a StatefulSet cannot surge, so a single replica is never rolled
/// without a gap unless downtime is allowed; the operator, which knows the replicas, decides.
#[test]
fn a_single_replica_statefulset_is_not_rolled_without_downtime() {
    use cutover::rules::evaluate_for;
    let stateful = |strategy: StrategyChoice, allow_downtime: bool, changes: Vec<Change>| {
        let mut s = spec(changes);
        s.target.kind = TargetKind::StatefulSet;
        s.strategy = strategy;
        s.allow_downtime = allow_downtime;
        s
    };
    let verdict = |s: &MaintenancePlanSpec, replicas: Option<i32>| {
        evaluate_for(s, Catalog::builtin(), replicas).unwrap()
    };
    let java_major = || vec![java("8", "11")];
    // Auto: BlueGreen for one replica, RollingRestart for more.
    let auto = stateful(StrategyChoice::Auto, false, vec![]);
    let one = verdict(&auto, Some(1));
    assert_eq!(one.verdict, Verdict::BlueGreen);
    assert!(
        one.explanation.contains("cannot surge"),
        "{}",
        one.explanation
    );
    assert_eq!(verdict(&auto, Some(3)).verdict, Verdict::RollingRestart);
    // A Deployment of one replica surges: a rolling restart as ever.
    let mut deployment = auto.clone();
    deployment.target.kind = TargetKind::Deployment;
    assert_eq!(
        verdict(&deployment, Some(1)).verdict,
        Verdict::RollingRestart
    );
    // Offline the replicas are unknown: RollingRestart, saying what one replica would get.
    let offline = verdict(&auto, None);
    assert_eq!(offline.verdict, Verdict::RollingRestart);
    assert!(
        offline.explanation.contains("single replica"),
        "{}",
        offline.explanation
    );
    assert_eq!(evaluate(&auto, Catalog::builtin()).unwrap(), offline);
    // An explicit RollingRestart of one replica needs allowDowntime.
    let explicit = stateful(StrategyChoice::RollingRestart, false, vec![]);
    let rejected = verdict(&explicit, Some(1));
    assert_eq!(rejected.verdict, Verdict::Rejected);
    assert!(
        rejected.explanation.contains("cannot surge")
            && rejected.explanation.contains("allowDowntime: true")
            && rejected.explanation.contains("strategy: BlueGreen"),
        "{}",
        rejected.explanation
    );
    let with_downtime = stateful(StrategyChoice::RollingRestart, true, vec![]);
    assert_eq!(
        verdict(&with_downtime, Some(1)).verdict,
        Verdict::RollingRestart
    );
    assert_eq!(verdict(&explicit, Some(2)).verdict, Verdict::RollingRestart);
    // Findings still rule: a change that blocks RollingRestart gives BlueGreen anyway.
    assert_eq!(
        verdict(
            &stateful(StrategyChoice::Auto, false, java_major()),
            Some(1)
        )
        .verdict,
        Verdict::BlueGreen
    );
    // BlueGreen blocked too (a virtual cluster key is missing): only with downtime.
    let no_key = || {
        vec![Change {
            activation_key: Some(ActivationKeyChange {
                virtual_cluster: false,
            }),
            ..bare(ChangeType::ActivationKey)
        }]
    };
    let stuck = verdict(&stateful(StrategyChoice::Auto, false, no_key()), Some(1));
    assert_eq!(stuck.verdict, Verdict::Rejected);
    assert!(
        stuck.explanation.contains("cannot surge") && stuck.explanation.contains("allowDowntime"),
        "{}",
        stuck.explanation
    );
    assert_eq!(
        verdict(&stateful(StrategyChoice::Auto, true, no_key()), Some(1)).verdict,
        Verdict::RollingRestart
    );
}
