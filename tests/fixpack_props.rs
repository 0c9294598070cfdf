//! Property tests of the fix pack path logic and the version parsers.

use cutover::api::{Change, ChangeType, FixPackChange, MaintenancePlanSpec, Technique, Verdict};
use cutover::rules::{Catalog, FixPackId, evaluate, major_version};
use proptest::prelude::*;

fn plan(from: &str, to: &str) -> MaintenancePlanSpec {
    let yaml = format!(
        "target: {{name: t}}\nservice: s\nchanges:\n- type: FixPack\n  fixPack: {{from: {from}, to: {to}}}\n"
    );
    serde_yaml_ng::from_str(&yaml).unwrap()
}

/// The fix pack numbers a move crosses, as the evaluation reports them.
fn crossed(from: u32, to: u32) -> Vec<u32> {
    let e = evaluate(
        &plan(&format!("de-{from}"), &format!("de-{to}")),
        Catalog::builtin(),
    )
    .unwrap();
    e.findings
        .iter()
        .filter(|f| !f.blocks.is_empty())
        .map(|f| {
            let id = f
                .message
                .split(" crosses ")
                .nth(1)
                .unwrap()
                .split([',', ' '])
                .next()
                .unwrap();
            FixPackId::parse(id).unwrap().number
        })
        .collect()
}

fn blocks(from: u32, to: u32) -> Vec<Technique> {
    let e = evaluate(
        &plan(&format!("de-{from}"), &format!("de-{to}")),
        Catalog::builtin(),
    )
    .unwrap();
    let mut all: Vec<Technique> = e.findings.iter().flat_map(|f| f.blocks.clone()).collect();
    all.sort();
    all.dedup();
    all
}

proptest! {
    #[test]
    fn a_path_crosses_what_its_legs_cross(a in 1u32..90, b in 1u32..90, c in 1u32..90) {
        let mut v = [a, b, c];
        v.sort();
        let [a, b, c] = v;
        let mut legs = crossed(a, b);
        legs.extend(crossed(b, c));
        prop_assert_eq!(crossed(a, c), legs);
        if crossed(a, c).is_empty() {
            prop_assert!(crossed(a, b).is_empty() && crossed(b, c).is_empty());
        }
    }

    #[test]
    fn upgrade_and_removal_are_symmetric(a in 1u32..90, b in 1u32..90) {
        prop_assert_eq!(crossed(a, b), crossed(b, a));
        prop_assert_eq!(blocks(a, b), blocks(b, a));
        let up = evaluate(&plan(&format!("de-{a}"), &format!("de-{b}")), Catalog::builtin()).unwrap();
        let down = evaluate(&plan(&format!("de-{b}"), &format!("de-{a}")), Catalog::builtin()).unwrap();
        prop_assert_eq!(up.verdict, down.verdict);
    }

    #[test]
    fn longer_paths_block_at_least_as_much(a in 1u32..90, b in 1u32..90, c in 1u32..90) {
        let mut v = [a, b, c];
        v.sort();
        let [a, b, c] = v;
        let whole = blocks(a, c);
        for t in blocks(a, b).into_iter().chain(blocks(b, c)) {
            prop_assert!(whole.contains(&t));
        }
    }

    #[test]
    fn short_and_long_ids_agree(a in 1u32..90, b in 1u32..90) {
        let short = evaluate(&plan(&format!("de-{a}"), &format!("de-{b}")), Catalog::builtin()).unwrap();
        let long = evaluate(&plan(&format!("de-{a}-7010"), &format!("de-{b}-7010")), Catalog::builtin()).unwrap();
        prop_assert_eq!(short.verdict, long.verdict);
        prop_assert_eq!(short.findings.len(), long.findings.len());
    }

    #[test]
    fn any_fix_pack_text_is_evaluated_or_named_invalid(from in "\\PC{0,12}", to in "[a-z]{1,3}-[0-9]{1,3}(-[0-9]{4})?") {
        let change = Change {
            kind: ChangeType::FixPack,
            fix_pack: Some(FixPackChange { from: from.clone(), to }),
            module: None, java_version: None, cluster_code: None, activation_key: None, custom: None,
        };
        let mut spec = plan("de-1", "de-2");
        spec.changes = vec![change];
        match evaluate(&spec, Catalog::builtin()) {
            Ok(e) => prop_assert!(e.verdict != Verdict::Rejected || !e.findings.is_empty()),
            Err(err) => prop_assert!(err.path.starts_with("spec.changes[0].fixPack.") && err.reason.contains("malformed")),
        }
    }

    #[test]
    fn java_forms_read_their_major(major in 2u32..40, minor in 0u32..30, update in 0u32..500) {
        prop_assert_eq!(major_version(&format!("{major}")), Some(major));
        prop_assert_eq!(major_version(&format!("{major}u{update}")), Some(major));
        prop_assert_eq!(major_version(&format!("1.{major}.0_{update}")), Some(major));
        prop_assert_eq!(major_version(&format!("{major}.{minor}.{update}+7")), Some(major));
    }

    #[test]
    fn java_parser_never_panics(s in "\\PC{0,16}") {
        let _ = major_version(&s);
    }
}
