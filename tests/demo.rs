//! `cutover demo` end to end, as a newcomer runs it: it must exit 0 with a summary in which
//! every plan ended as expected and every invariant held, and the StatefulSet's cutover must
//! show, change by change, that green formed a cluster of its own: the discovery timeline it
//! prints (read from the simulated cluster's recorded endpoints) is checked here line by line.

use std::process::Command;

/// One line of the discovery timeline: when, which Service, which pods it listed.
struct Listing {
    at: String,
    service: String,
    pods: Vec<String>,
}

/// The timeline printed after the StatefulSet's plan.
fn discovery_timeline(section: &str) -> Vec<Listing> {
    let mut lines = section
        .lines()
        .skip_while(|l| !l.contains("discovery services, each change of the pods they list"));
    assert!(lines.next().is_some(), "no discovery timeline:\n{section}");
    lines
        .take_while(|l| {
            let first = l.split_whitespace().next().unwrap_or_default();
            first == "before" || (first.starts_with('+') && first.ends_with('s'))
        })
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            let at = words.next().unwrap();
            let service = words.next().expect("a service on each line");
            let pods = words.filter(|w| w != "(none)").collect();
            Listing { at, service, pods }
        })
        .collect()
}

fn is_green(pod: &str) -> bool {
    // DESIGN section 4: green's StatefulSet is `<name>-green`, so its pods are `liferay-green-N`.
    pod.starts_with("liferay-green-")
}

#[test]
fn the_demo_runs_every_technique_and_passes_its_checks() {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["demo", "--ready-after-ms", "20"])
        .output()
        .expect("cutover demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.split("== Summary").nth(1).expect("a summary");
    for row in [
        "portal/fixpack-de-29   RollingRestart  Succeeded",
        "portal/java-11         BlueGreen       Succeeded",
        "portal/fixpack-de-40   Rejected        Rejected",
        "dxp/fixpack-de-33      BlueGreen       Succeeded",
    ] {
        assert!(summary.contains(row), "summary lacks {row:?}:\n{summary}");
    }
    assert_eq!(summary.matches("    ok    ").count(), 14, "{summary}");
    assert!(!summary.contains("FAIL"), "{summary}");
    assert!(
        stdout.contains("switched to green at"),
        "the switch moment is shown"
    );

    let section = stdout
        .split("== Clustering fix pack de-31 -> de-33 on the StatefulSet")
        .nth(1)
        .and_then(|s| s.split("== Summary").next())
        .expect("the StatefulSet's part");
    let timeline = discovery_timeline(section);
    let of = |service: &str| -> Vec<&Listing> {
        timeline.iter().filter(|l| l.service == service).collect()
    };
    let blue = ["liferay-0", "liferay-1", "liferay-2"];

    // Blue's headless Service: all of blue before the plan and after it, never a green pod.
    let headless = of("liferay-headless");
    let (first, last) = (headless.first().unwrap(), headless.last().unwrap());
    assert_eq!(first.at, "before");
    assert_eq!(first.pods, blue, "blue's cluster before the plan");
    assert_eq!(last.pods, blue, "the target's cluster after the plan");
    for l in &headless {
        assert!(
            l.pods.iter().all(|p| !is_green(p)),
            "blue's headless service listed green at {}: {:?}",
            l.at,
            l.pods
        );
    }

    // Green's twin: green's three pods at some point, never one of blue's.
    let twin = of("liferay-headless-green");
    assert!(
        twin.iter().any(|l| l.pods.len() == 3),
        "the twin listed green's three pods: {:?}",
        twin.iter().map(|l| &l.pods).collect::<Vec<_>>()
    );
    for l in &twin {
        assert!(
            l.at != "before" && l.pods.iter().all(|p| is_green(p)),
            "green's twin listed blue at {}: {:?}",
            l.at,
            l.pods
        );
    }
    assert!(
        timeline
            .iter()
            .all(|l| l.service == "liferay-headless" || l.service == "liferay-headless-green"),
        "only the discovery services are in the timeline"
    );
}
