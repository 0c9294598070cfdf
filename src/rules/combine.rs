//! Puts declared and inferred changes into one list (DESIGN section 2b): the declared ones
//! first, then each inferred one that says something the declared ones do not. An inferred
//! change that a declared one states again is left out; one that disagrees with a declared
//! change is kept and marked, so that the plan is rejected with a finding naming both.
//! Pure; what each change means is `assess`'s business.

use crate::api::{Change, ChangeSource, ChangeType, EffectiveChange};

use super::catalog::Catalog;
use super::fixpack_id::FixPackId;
use super::infer::Inferred;
use super::java::major_version;

/// How an inferred change stands to the declared ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// A change of the plan's own (declared).
    Declared,
    /// Read from the template and not declared.
    New,
    /// An image nothing explains; `covered_by` is a declared change that covers images.
    UnrecognizedImage { covered_by: Option<u32> },
    /// Read from the template and contradicting the declared change at this index.
    Contradicts(u32),
}

/// The effective changes and, for each, how it relates to the declared ones.
pub fn combine(
    declared: &[Change],
    inferred: Vec<Inferred>,
    catalog: &Catalog,
) -> Vec<(EffectiveChange, Relation)> {
    let mut out: Vec<(EffectiveChange, Relation)> = declared
        .iter()
        .map(|c| {
            (
                EffectiveChange {
                    source: ChangeSource::Declared,
                    change: c.clone(),
                    inferred_from: None,
                },
                Relation::Declared,
            )
        })
        .collect();
    for i in inferred {
        let relation = if i.unrecognized_image {
            Relation::UnrecognizedImage {
                covered_by: index_of(declared, |d| covers_images(d.kind)),
            }
        } else {
            match stated(declared, &i.change, catalog) {
                Stated::Again => continue,
                Stated::Otherwise(j) => Relation::Contradicts(j),
                Stated::Not => Relation::New,
            }
        };
        out.push((
            EffectiveChange {
                source: ChangeSource::Inferred,
                change: i.change,
                inferred_from: Some(i.from),
            },
            relation,
        ));
    }
    out
}

/// Declared kinds that say what a new image brings.
fn covers_images(kind: ChangeType) -> bool {
    matches!(
        kind,
        ChangeType::Custom
            | ChangeType::Module
            | ChangeType::FixPack
            | ChangeType::AppServer
            | ChangeType::JavaVersion
    )
}

fn index_of(declared: &[Change], f: impl Fn(&Change) -> bool) -> Option<u32> {
    declared.iter().position(f).map(|i| i as u32)
}

enum Stated {
    /// A declared change says the same.
    Again,
    /// The declared change at this index says something else about the same thing.
    Otherwise(u32),
    /// Nothing declared is about it.
    Not,
}

fn stated(declared: &[Change], inferred: &Change, catalog: &Catalog) -> Stated {
    let same_kind: Vec<(u32, &Change)> = declared
        .iter()
        .enumerate()
        .filter(|(_, d)| d.kind == inferred.kind)
        .map(|(i, d)| (i as u32, d))
        .collect();
    let Some(&(first, _)) = same_kind.first() else {
        return Stated::Not;
    };
    let agrees = |d: &Change| match inferred.kind {
        ChangeType::FixPack => same_fix_packs(d, inferred, catalog),
        ChangeType::JavaVersion => same_java_majors(d, inferred),
        // Kinds without details: declaring the kind says it all.
        _ => true,
    };
    if same_kind.iter().any(|(_, d)| agrees(d)) {
        Stated::Again
    } else {
        Stated::Otherwise(first)
    }
}

fn same_fix_packs(declared: &Change, inferred: &Change, catalog: &Catalog) -> bool {
    let (Some(d), Some(i)) = (&declared.fix_pack, &inferred.fix_pack) else {
        return false;
    };
    let same = |a: &str, b: &str| match (FixPackId::parse(a), FixPackId::parse(b)) {
        (Ok(a), Ok(b)) => a.number == b.number && catalog.line_of(&a) == catalog.line_of(&b),
        _ => false,
    };
    same(&d.from, &i.from) && same(&d.to, &i.to)
}

fn same_java_majors(declared: &Change, inferred: &Change) -> bool {
    let (Some(d), Some(i)) = (&declared.java_version, &inferred.java_version) else {
        return false;
    };
    let same =
        |a: &str, b: &str| major_version(a).is_some() && major_version(a) == major_version(b);
    same(&d.from, &i.from) && same(&d.to, &i.to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JavaVersionChange;

    fn fix_pack(from: &str, to: &str) -> Change {
        serde_json::from_value(
            serde_json::json!({"type": "FixPack", "fixPack": {"from": from, "to": to}}),
        )
        .unwrap()
    }

    fn inferred(change: Change) -> Inferred {
        Inferred {
            change,
            from: "container liferay: image a -> b".into(),
            unrecognized_image: false,
        }
    }

    #[test]
    fn a_declared_fix_pack_in_short_form_states_the_inferred_one_again() {
        let out = combine(
            &[fix_pack("de-28", "de-32")],
            vec![inferred(fix_pack("de-28-7010", "de-32-7010"))],
            Catalog::builtin(),
        );
        assert_eq!(out.len(), 1, "the inferred duplicate is left out");
    }

    #[test]
    fn a_different_declared_fix_pack_is_a_contradiction() {
        let out = combine(
            &[fix_pack("de-28", "de-29")],
            vec![inferred(fix_pack("de-28-7010", "de-32-7010"))],
            Catalog::builtin(),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].1, Relation::Contradicts(0));
        assert_eq!(out[1].0.source, ChangeSource::Inferred);
    }

    #[test]
    fn java_versions_agree_by_major() {
        let java = |from: &str, to: &str| Change {
            java_version: Some(JavaVersionChange {
                from: from.into(),
                to: to.into(),
            }),
            ..fix_pack("de-1", "de-2")
        };
        let mut declared = java("1.8.0_292", "11.0.12");
        declared.kind = ChangeType::JavaVersion;
        declared.fix_pack = None;
        let mut found = java("8", "11");
        found.kind = ChangeType::JavaVersion;
        found.fix_pack = None;
        let again = combine(
            &[declared.clone()],
            vec![inferred(found.clone())],
            Catalog::builtin(),
        );
        assert_eq!(again.len(), 1);
        let mut other = found;
        other.java_version.as_mut().unwrap().to = "17".into();
        let contradiction = combine(&[declared], vec![inferred(other)], Catalog::builtin());
        assert_eq!(contradiction[1].1, Relation::Contradicts(0));
    }

    #[test]
    fn an_unrecognized_image_is_covered_by_a_declared_custom_change() {
        let custom: Change = serde_json::from_value(
            serde_json::json!({"type": "Custom", "custom": {"description": "new base image", "rollingRestartSafe": true}}),
        )
        .unwrap();
        let image = Inferred {
            unrecognized_image: true,
            ..inferred(custom.clone())
        };
        let out = combine(&[custom], vec![image.clone()], Catalog::builtin());
        assert_eq!(
            out[1].1,
            Relation::UnrecognizedImage {
                covered_by: Some(0)
            }
        );
        let alone = combine(&[], vec![image], Catalog::builtin());
        assert_eq!(alone[0].1, Relation::UnrecognizedImage { covered_by: None });
    }
}
