//! Turns each change into findings: which techniques it blocks and why, in an operator's
//! words. Pure: reads the plan and the catalog, decides nothing about the final strategy.

use crate::api::{
    ActivationKeyChange, Change, ChangeType, ClusterCodeChange, CustomChange, DataIsolation,
    EffectiveChange, Finding, FixPackChange, JavaVersionChange, MaintenancePlanSpec, ModuleAction,
    ModuleChange, SchemaChange, Technique,
};

use super::catalog::Catalog;
use super::combine::Relation;
use super::fixpack_id::FixPackId;
use super::{InvalidField, cluster_code, java, schema_version};

/// A setting that would lift a finding's block on BlueGreen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remedy {
    /// `blueGreen.dataIsolation: Isolated`: green runs on its own copy of the data.
    IsolateData,
    /// An activation key that is valid for a virtual cluster.
    VirtualClusterKey,
}

impl Remedy {
    pub fn advice(self) -> &'static str {
        match self {
            Remedy::IsolateData => {
                "give green its own copy of the data with blueGreen.dataIsolation: Isolated"
            }
            Remedy::VirtualClusterKey => {
                "use a virtual cluster activation key (activationKey.virtualCluster: true)"
            }
        }
    }
}

/// A finding plus what would lift its block on BlueGreen, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub finding: Finding,
    pub remedy: Option<Remedy>,
    /// The plan says two things about one change: no technique may carry it out.
    pub contradiction: bool,
    /// The change touches cluster communication: green must not join blue's cluster.
    pub clustering: bool,
}

struct Context<'a> {
    index: u32,
    path: String,
    isolated: bool,
    catalog: &'a Catalog,
}

impl Context<'_> {
    fn finding(&self, rule: &str, blocks: &[Technique], message: String) -> Assessment {
        Assessment {
            finding: Finding {
                change: Some(self.index),
                rule: rule.to_string(),
                blocks: blocks.to_vec(),
                message,
            },
            remedy: None,
            contradiction: false,
            clustering: false,
        }
    }

    /// A finding that blocks RollingRestart, and BlueGreen too unless green has its own data.
    fn breaking_for_shared_data(&self, rule: &str, message: String) -> Assessment {
        if self.isolated {
            self.finding(rule, &[Technique::RollingRestart], message)
        } else {
            let message = format!(
                "{message}; on shared data green's change would break blue too, so BlueGreen needs blueGreen.dataIsolation: Isolated"
            );
            Assessment {
                remedy: Some(Remedy::IsolateData),
                ..self.finding(
                    rule,
                    &[Technique::RollingRestart, Technique::BlueGreen],
                    message,
                )
            }
        }
    }

    fn invalid(&self, field: &str, reason: String) -> InvalidField {
        InvalidField {
            path: format!("{}.{field}", self.path),
            reason,
        }
    }
}

/// The findings of every effective change of a plan, in change order.
pub fn assess_all(
    spec: &MaintenancePlanSpec,
    effective: &[(EffectiveChange, Relation)],
    catalog: &Catalog,
) -> Result<Vec<Assessment>, InvalidField> {
    let mut out = Vec::with_capacity(effective.len());
    for (index, (effective, relation)) in effective.iter().enumerate() {
        let cx = Context {
            index: index as u32,
            path: match relation {
                Relation::Declared => format!("spec.changes[{index}]"),
                _ => format!("status.changes[{index}] (inferred)"),
            },
            isolated: spec.blue_green.data_isolation == DataIsolation::Isolated,
            catalog,
        };
        let read_from = effective.inferred_from.as_deref().unwrap_or_default();
        match relation {
            Relation::Declared => assess_change(&cx, &effective.change, &mut out)?,
            Relation::Contradicts(declared) => {
                out.push(contradiction(&cx, spec, *declared, effective, read_from))
            }
            Relation::UnrecognizedImage { covered_by } => {
                out.push(unrecognized_image(&cx, spec, *covered_by, read_from))
            }
            Relation::New => {
                let first = out.len();
                assess_change(&cx, &effective.change, &mut out)?;
                for a in &mut out[first..] {
                    a.finding.message = format!("{} (read from {read_from})", a.finding.message);
                }
            }
        }
    }
    Ok(out)
}

fn contradiction(
    cx: &Context,
    spec: &MaintenancePlanSpec,
    declared: u32,
    inferred: &EffectiveChange,
    read_from: &str,
) -> Assessment {
    let declared_change = &spec.changes[declared as usize];
    Assessment {
        contradiction: true,
        ..cx.finding(
            "inferred-contradicts-declared",
            &[Technique::RollingRestart, Technique::BlueGreen],
            format!(
                "change {declared} declares {} but the new template says {} ({read_from}); make spec.changes say what the new template does, or fix the template",
                declared_change.summary(),
                inferred.change.summary()
            ),
        )
    }
}

fn unrecognized_image(
    cx: &Context,
    spec: &MaintenancePlanSpec,
    covered_by: Option<u32>,
    read_from: &str,
) -> Assessment {
    match covered_by {
        Some(i) => cx.finding(
            "unrecognized-image",
            &[],
            format!(
                "{read_from}: not a Liferay DXP tag cutover can read; declared change {i} ({}) says what it brings",
                spec.changes[i as usize].kind.as_str()
            ),
        ),
        None => cx.finding(
            "unrecognized-image",
            &[Technique::RollingRestart],
            format!(
                "{read_from}: not a Liferay DXP tag cutover can read, and no declared change says what the new image brings, so nothing says old and new pods can run side by side; declare it in spec.changes (a Custom change with rollingRestartSafe, or a Module, FixPack, AppServer or JavaVersion change)"
            ),
        ),
    }
}

fn assess_change(
    cx: &Context,
    change: &Change,
    out: &mut Vec<Assessment>,
) -> Result<(), InvalidField> {
    check_member(cx, change)?;
    match change.kind {
        ChangeType::FixPack => fix_pack(cx, member(&change.fix_pack), out)?,
        ChangeType::Module => module(cx, member(&change.module), out)?,
        ChangeType::JavaVersion => out.push(java_version(cx, member(&change.java_version))?),
        ChangeType::ClusterCode => out.push(cluster_code(cx, member(&change.cluster_code))?),
        ChangeType::ActivationKey => out.push(activation_key(cx, member(&change.activation_key))),
        ChangeType::Custom => out.push(custom(cx, member(&change.custom))),
        ChangeType::PortalProperties
        | ChangeType::SystemSettings
        | ChangeType::AppServer
        | ChangeType::JvmSettings => out.push(cx.finding(
            "configuration-change",
            &[],
            format!(
                "{} change: old and new pods can run side by side",
                configuration_words(change.kind)
            ),
        )),
    }
    Ok(())
}

fn member<T>(value: &Option<T>) -> &T {
    value
        .as_ref()
        .expect("check_member verified the member is present")
}

/// The union rule: the member named by `type` is present and no other member is.
fn check_member(cx: &Context, change: &Change) -> Result<(), InvalidField> {
    let present = change.members_present();
    let expected = change.kind.member();
    if let Some(other) = present.iter().find(|m| Some(**m) != expected) {
        return Err(InvalidField {
            path: format!("{}.{other}", cx.path),
            reason: format!(
                "member field {other} does not match type {}{}",
                change.kind.as_str(),
                expected
                    .map(|e| format!(" (expected {e})"))
                    .unwrap_or_default()
            ),
        });
    }
    if let Some(expected) = expected
        && !present.contains(&expected)
    {
        return Err(InvalidField {
            path: format!("{}.{expected}", cx.path),
            reason: format!(
                "type {} needs the member field {expected}",
                change.kind.as_str()
            ),
        });
    }
    Ok(())
}

fn configuration_words(kind: ChangeType) -> &'static str {
    match kind {
        ChangeType::PortalProperties => "portal properties",
        ChangeType::SystemSettings => "system settings",
        ChangeType::AppServer => "application server",
        _ => "JVM settings",
    }
}

fn fix_pack(
    cx: &Context,
    fp: &FixPackChange,
    out: &mut Vec<Assessment>,
) -> Result<(), InvalidField> {
    let from = FixPackId::parse(&fp.from).map_err(|e| cx.invalid("fixPack.from", e.to_string()))?;
    let to = FixPackId::parse(&fp.to).map_err(|e| cx.invalid("fixPack.to", e.to_string()))?;
    let catalog = cx.catalog;
    let (from_line, to_line) = (catalog.line_of(&from), catalog.line_of(&to));
    let route = format!("{} -> {}", fp.from, fp.to);
    if from_line != to_line {
        out.push(cx.breaking_for_shared_data(
            "fixpack-product-upgrade",
            format!(
                "{route} is not a fix pack change but a product upgrade ({} to {}): its data upgrade cannot be undone without a database restore",
                catalog.line_name(&from_line),
                catalog.line_name(&to_line)
            ),
        ));
        return Ok(());
    }
    let (low, high) = (from.number.min(to.number), from.number.max(to.number));
    let crossed = catalog.non_revertible_in(&from_line, low, high);
    if crossed.is_empty() {
        out.push(cx.finding(
            "fixpack-revertible",
            &[],
            format!("{route} crosses no non-revertible fix pack"),
        ));
    }
    for c in crossed {
        let id = from.sibling(c.number);
        let (rule, mut message) = if c.presumed {
            (
                "fixpack-presumed-non-revertible",
                format!(
                    "{route} crosses {id}, presumed non-revertible ({}): it lies beyond the catalog's known {} fix packs and its number ends in 0 (list it in the catalog if it is revertible)",
                    c.kind.describe(),
                    catalog.line_name(&from_line)
                ),
            )
        } else {
            (
                "fixpack-crosses-non-revertible",
                format!(
                    "{route} crosses {id}, a non-revertible fix pack ({})",
                    c.kind.describe()
                ),
            )
        };
        let clustering = c.kind.touches_clustering();
        if clustering {
            message.push_str("; green must not join blue's cluster");
        }
        let assessment = if c.kind.touches_schema() {
            cx.breaking_for_shared_data(rule, message)
        } else {
            cx.finding(rule, &[Technique::RollingRestart], message)
        };
        out.push(Assessment {
            clustering,
            ..assessment
        });
    }
    Ok(())
}

fn module(cx: &Context, m: &ModuleChange, out: &mut Vec<Assessment>) -> Result<(), InvalidField> {
    if m.name.trim().is_empty() {
        return Err(cx.invalid("module.name", "must not be empty".to_string()));
    }
    let action = match m.action {
        ModuleAction::Install => "install",
        ModuleAction::Update => "update",
        ModuleAction::Remove => "removal",
    };
    let mut breaking: Vec<SchemaChange> = m
        .schema_changes
        .iter()
        .copied()
        .filter(|c| !c.is_backward_compatible())
        .collect();
    breaking.sort_by_key(|c| *c as u8);
    breaking.dedup();
    let found_before = out.len();
    if !breaking.is_empty() {
        let names: Vec<String> = breaking.iter().map(|c| format!("{c:?}")).collect();
        out.push(cx.breaking_for_shared_data(
            "module-incompatible-schema-change",
            format!(
                "{action} of module {} makes data changes that pods on the old version cannot work with ({}). To roll it out without downtime later, expand and contract over releases: add a new column, copy the data into it, keep both while old code runs, and drop the old one in the next release",
                m.name,
                names.join(", ")
            ),
        ));
    }
    if let Some(v) = &m.require_schema_version {
        let parse = |field: &str, value: &str| {
            schema_version::normalized(value).ok_or_else(|| {
                cx.invalid(
                    &format!("module.requireSchemaVersion.{field}"),
                    format!("{value:?} is not a schema version (expected numbers separated by dots, like 1.0.0)"),
                )
            })
        };
        if parse("from", &v.from)? != parse("to", &v.to)? {
            out.push(cx.breaking_for_shared_data(
                "module-schema-version-change",
                format!(
                    "{action} of module {} moves its required schema version {} -> {}: the upgrade process runs once, nodes still on the old version lose the module's services, and only a database backup restore can revert it",
                    m.name, v.from, v.to
                ),
            ));
        }
    }
    if out.len() == found_before {
        out.push(cx.finding(
            "module-backward-compatible",
            &[],
            format!(
                "{action} of module {} keeps its data backward compatible: old and new pods can run side by side",
                m.name
            ),
        ));
    }
    Ok(())
}

fn java_version(cx: &Context, j: &JavaVersionChange) -> Result<Assessment, InvalidField> {
    let parse = |field: &str, value: &str| {
        java::major_version(value).ok_or_else(|| {
            cx.invalid(
                &format!("javaVersion.{field}"),
                format!("{value:?} is not a Java version (expected e.g. 1.8.0_292, 8u292, 11.0.12, 17 or 21.0.1+12)"),
            )
        })
    };
    let (from, to) = (parse("from", &j.from)?, parse("to", &j.to)?);
    Ok(if from == to {
        cx.finding(
            "java-same-major",
            &[],
            format!(
                "Java {} -> {} stays on major version {from}: safe pod by pod",
                j.from, j.to
            ),
        )
    } else {
        cx.finding(
            "java-major-change",
            &[Technique::RollingRestart],
            format!(
                "Java {} -> {} changes the major version ({from} -> {to}): nodes on different major versions must not run in one cluster",
                j.from, j.to
            ),
        )
    })
}

fn cluster_code(cx: &Context, c: &ClusterCodeChange) -> Result<Assessment, InvalidField> {
    let mut hits = Vec::new();
    for (i, name) in c.packages.iter().enumerate() {
        let normalized = cluster_code::normalize(name).ok_or_else(|| {
            cx.invalid(
                &format!("clusterCode.packages[{i}]"),
                format!("{name:?} is not a Java package or class name"),
            )
        })?;
        if cluster_code::communication_entry(normalized).is_some() {
            hits.push(normalized);
        }
    }
    let categories: Vec<String> = c.categories.iter().map(|k| format!("{k:?}")).collect();
    let mut touched = Vec::new();
    if !hits.is_empty() {
        touched.push(hits.join(", "));
    }
    if !categories.is_empty() {
        touched.push(format!("categories {}", categories.join(", ")));
    }
    let advice =
        "green must not join blue's cluster: give it its own cluster name or discovery settings";
    let clustering = |a: Assessment| Assessment {
        clustering: true,
        ..a
    };
    Ok(if !touched.is_empty() {
        clustering(cx.finding(
            "cluster-code-change",
            &[Technique::RollingRestart],
            format!(
                "changes cluster-communication code ({}): nodes on old and new code cannot talk to each other; {advice}",
                touched.join("; ")
            ),
        ))
    } else if c.packages.is_empty() {
        clustering(cx.finding(
            "cluster-code-change",
            &[Technique::RollingRestart],
            format!(
                "a cluster code change that names no package or category is presumed to touch cluster communication; {advice}"
            ),
        ))
    } else {
        cx.finding(
            "cluster-code-outside-communication",
            &[],
            format!(
                "{} lie outside the cluster-communication packages: old and new nodes keep talking",
                c.packages.join(", ")
            ),
        )
    })
}

fn activation_key(cx: &Context, k: &ActivationKeyChange) -> Assessment {
    if k.virtual_cluster {
        cx.finding(
            "activation-key",
            &[],
            "new activation key valid for a virtual cluster: both techniques can use it"
                .to_string(),
        )
    } else {
        Assessment {
            remedy: Some(Remedy::VirtualClusterKey),
            ..cx.finding(
                "activation-key-not-virtual-cluster",
                &[Technique::BlueGreen],
                "a blue-green cutover runs a second copy of the cluster, which needs a virtual cluster activation key; set activationKey.virtualCluster: true if the key is one".to_string(),
            )
        }
    }
}

fn custom(cx: &Context, c: &CustomChange) -> Assessment {
    let what = if c.description.is_empty() {
        "custom change".to_string()
    } else {
        format!("custom change \"{}\"", c.description)
    };
    if c.rolling_restart_safe {
        cx.finding(
            "custom-rolling-safe",
            &[],
            format!("{what}: declared safe for old and new pods side by side"),
        )
    } else {
        cx.finding(
            "custom-not-rolling-safe",
            &[Technique::RollingRestart],
            format!("{what}: declared unsafe for a rolling restart (rollingRestartSafe: false)"),
        )
    }
}
