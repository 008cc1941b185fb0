//! The chaos harness against the real binary: the hand-written scenarios hold their
//! invariants, and the regression the harness found stays fixed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drpilot_chaos::Scenario;
use drpilot_chaos::harness::{Options, run_scenario};

fn opts(name: &str) -> (Options, PathBuf) {
    let dir = std::env::temp_dir().join(format!("chaos-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = Options {
        drpilot: PathBuf::from(env!("CARGO_BIN_EXE_drpilot")),
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        timeout: Duration::from_secs(120),
        emulator_timeout: Duration::from_secs(300),
        keep: dir.join("failed"),
        verbose: false,
    };
    (opts, dir)
}

/// One short scenario against the AWS emulator through the harness (its own emulator,
/// started and stopped by pid): the run's lost FailoverGlobalCluster response, a kill
/// and a resume, with every invariant checked from the emulator's own view.
#[test]
fn chaos_an_emulator_scenario_holds_its_invariants() {
    let (opts, dir) = opts("emulator");
    let s = scenario("emulator/lost-failover-response-kill-resume.toml");
    assert_eq!(s.target, drpilot_chaos::Target::Emulator);
    let v = run_scenario(&opts, &s, &dir.join("run"), "it3");
    assert!(v.violations.is_empty(), "{}: {:?}", v.trail, v.violations);
    assert!(v.trail.starts_with("run:killed resume:0"), "{}", v.trail);
    let _ = std::fs::remove_dir_all(&dir);
}

fn scenario(file: &str) -> Scenario {
    let text = std::fs::read_to_string(Path::new("chaos/scenarios").join(file)).unwrap();
    Scenario::from_toml(&text).unwrap()
}

/// Killed after FailoverGlobalReplicationGroup took effect but before its `executed`
/// was journaled. The resumed switchover first failed on the datastore busy with that
/// very failover, and the rollback skipped the step (it had no `executed`): the run
/// reported "rolled back" (exit 1) with the Valkey primary still moved. Now the resumed
/// step waits for its own failover to settle and the run completes, with one failover
/// in the world's log (the rollback of such a step: tests/it/engine.rs).
#[test]
fn chaos_a_step_killed_mid_change_is_resumed_not_repeated() {
    let (opts, dir) = opts("valkey");
    let s = scenario("kill-during-valkey-switchover.toml");
    let v = run_scenario(&opts, &s, &dir.join("run"), "it1");
    assert!(v.violations.is_empty(), "{}: {:?}", v.trail, v.violations);
    // The path the regression needs: killed, then a resume that completes.
    assert!(
        v.trail.starts_with("run:killed resume:0 "),
        "{}: {:?}",
        v.trail,
        v.violations
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chaos_the_hand_written_scenarios_hold_their_invariants() {
    let (opts, dir) = opts("all");
    let mut files: Vec<_> = std::fs::read_dir("chaos/scenarios")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        let v = run_scenario(&opts, &scenario(f), &dir.join(i.to_string()), "it2");
        assert!(
            v.violations.is_empty(),
            "{f} ({}): {:?}",
            v.trail,
            v.violations
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
