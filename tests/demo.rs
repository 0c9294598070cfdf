//! `cutover demo` end to end, as a newcomer runs it: it must exit 0 with a summary in which
//! every plan ended as expected and every invariant held.

use std::process::Command;

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
        "fixpack-de-29    RollingRestart  Succeeded",
        "java-11          BlueGreen       Succeeded",
        "fixpack-de-40    Rejected        Rejected",
    ] {
        assert!(summary.contains(row), "summary lacks {row:?}:\n{summary}");
    }
    assert_eq!(summary.matches("    ok    ").count(), 8, "{summary}");
    assert!(!summary.contains("FAIL"), "{summary}");
    assert!(
        stdout.contains("switched to green at"),
        "the switch moment is shown"
    );
}
