//! `drpilot run --sim`, `resume` and `status` as processes: NDJSON on stdout, the lock
//! between concurrent runs, and kill -9 at many points followed by `resume`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use drpilot::journal::{Replay, StateDir};

use crate::text;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drpilot"))
}

fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn drpilot_in(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .arg("--state")
        .arg(state)
        .env_remove("NO_COLOR")
        .output()
        .expect("drpilot runs")
}

fn spawn(state: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .arg("--state")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drpilot starts")
}

#[test]
fn json_output_is_one_event_per_line_and_nothing_else() {
    let state = state_dir("json");
    let out = drpilot_in(
        &state,
        &[
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "5",
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events.len() > 20);
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    for e in &events {
        assert!(e["event"].is_string(), "{e}");
        assert_eq!(e["run_id"], run_id.as_str());
        let at = e["at"].as_str().unwrap();
        assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");
    }
    assert_eq!(events[0]["event"], "run_started");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(last["exit_code"], 0);
    // The journal holds the same events.
    let replay = StateDir::at(&state)
        .replay(&drpilot::engine::RunId(run_id.clone()))
        .unwrap();
    assert_eq!(replay.events.len(), events.len());
    // status knows the run.
    let out = drpilot_in(&state, &["status", "--output", "json"]);
    assert!(text(&out.stdout).contains(&run_id));
    let _ = std::fs::remove_dir_all(&state);
}

/// The shipped unplanned failover gets through a us-east-1 outage end to end: Route 53's
/// control plane is down with the region, and DNS moves by ARC routing controls instead.
#[test]
fn the_unplanned_failover_gets_through_a_us_east_1_outage() {
    let state = state_dir("outage");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = state.join("outage.toml");
    // Down for the whole failover; back after 20 minutes, so the snapshot of the lost
    // writes (which lives in us-east-1) can be taken before its step gives up.
    std::fs::write(
        &cfg,
        "[regions.us-east-1]\nunreachable_from = \"0s\"\nunreachable_until = \"20m\"\n",
    )
    .unwrap();
    let out = drpilot_in(
        &state,
        &[
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--sim-config",
            cfg.to_str().unwrap(),
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let succeeded = |id: &str| {
        events
            .iter()
            .find(|e| e["event"] == "step_succeeded" && e["step"] == id)
            .map(|e| e["summary"].as_str().unwrap_or_default().to_string())
    };
    let dns = succeeded("dns-failover").expect("dns-failover succeeded");
    assert!(dns.contains("at the us-west-2 endpoint"), "{dns}");
    for id in ["db-writer-resolves", "cache-resolves", "api-healthy"] {
        assert!(succeeded(id).is_some(), "{id} did not succeed");
    }
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "succeeded");
    let _ = std::fs::remove_dir_all(&state);
}

/// Reads stdout lines until `n` events were seen; returns the run id.
fn read_events(child: &mut Child, n: usize) -> (String, usize) {
    let stdout = child.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut run_id = String::new();
    let mut seen = 0;
    let mut line = String::new();
    while seen < n {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        run_id = v["run_id"].as_str().unwrap().to_string();
        seen += 1;
    }
    (run_id, seen)
}

#[test]
fn a_second_run_of_the_same_runbook_is_refused_while_the_first_holds_the_lock() {
    let state = state_dir("lock");
    let args = [
        "run",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--sim-speed",
        "1",
        "--yes",
        "--output",
        "json",
    ];
    let mut first = spawn(&state, &args);
    let (run_id, seen) = read_events(&mut first, 1);
    assert_eq!(seen, 1);
    let second = drpilot_in(&state, &args);
    assert_eq!(second.status.code(), Some(6), "{}", text(&second.stderr));
    assert!(text(&second.stderr).contains(&format!("locked by run {run_id}")));
    // Killed, the holder's lock is stale: a new run is still refused (resources may be
    // half-changed), but told how to go on.
    first.kill().unwrap();
    first.wait().unwrap();
    let third = drpilot_in(&state, &args);
    assert_eq!(third.status.code(), Some(6));
    let stderr = text(&third.stderr);
    assert!(
        stderr.contains("stale") && stderr.contains(&format!("drpilot resume {run_id}")),
        "{stderr}"
    );
    // The run itself resumes and finishes.
    let resumed = drpilot_in(&state, &["resume", &run_id, "--sim-speed", "max", "--yes"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    // And then the runbook is free.
    let fourth = drpilot_in(
        &state,
        &[
            "run",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--yes",
        ],
    );
    assert_eq!(fourth.status.code(), Some(0), "{}", text(&fourth.stderr));
    let _ = std::fs::remove_dir_all(&state);
}

/// Kills the run after `n` events, resumes it to the end, and checks no step ran twice.
fn kill_and_resume(state: &Path, n: usize) {
    let mut child = spawn(
        state,
        &[
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "200",
            "--seed",
            "11",
            "--yes",
            "--output",
            "json",
        ],
    );
    let (run_id, seen) = read_events(&mut child, n);
    child.kill().unwrap(); // SIGKILL, by our own child's pid
    child.wait().unwrap();
    let out = drpilot_in(
        state,
        &[
            "resume",
            &run_id,
            "--sim-speed",
            "max",
            "--yes",
            "--output",
            "json",
        ],
    );
    match out.status.code() {
        Some(0) => {}
        // Killed after the run had ended: nothing left to resume.
        Some(2) if text(&out.stderr).contains("already ended") => {}
        other => panic!(
            "after {seen} events, resume exited {other:?}: {}",
            text(&out.stderr)
        ),
    }
    let dir = StateDir::at(state);
    let replay: Replay = dir.replay(&drpilot::engine::RunId(run_id.clone())).unwrap();
    let mut succeeded = std::collections::HashMap::<String, usize>::new();
    for e in &replay.events {
        if let drpilot::engine::EventKind::StepSucceeded { step, .. } = &e.kind {
            *succeeded.entry(step.to_string()).or_default() += 1;
        }
    }
    assert!(
        succeeded.values().all(|&c| c == 1),
        "killed after {n}: {succeeded:?}"
    );
    assert_eq!(
        succeeded.len(),
        drpilot::runbook::load(Path::new("runbooks/region-failover.toml"))
            .unwrap()
            .runbook
            .steps
            .len(),
        "killed after {n}: every step succeeded once"
    );
    // The world's own log: no mutation was applied twice.
    let world: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.run_dir(&replay.header.run_id).join("world.json")).unwrap(),
    )
    .unwrap();
    let world = drpilot::sim::SimWorld::restore(&world, drpilot::clock::Clock::real()).unwrap();
    let mut applied = std::collections::HashMap::<String, usize>::new();
    for op in world
        .op_log()
        .iter()
        .filter(|o| o.applied && o.operation != "PutObject")
    {
        *applied
            .entry(format!("{} {}", op.operation, op.args))
            .or_default() += 1;
    }
    assert!(
        applied.values().all(|&c| c == 1),
        "killed after {n}: {applied:#?}"
    );
}

#[test]
fn kill_9_at_many_points_then_resume_never_repeats_a_step() {
    let state = state_dir("kill");
    for n in [1, 3, 5, 8, 12, 17, 23, 30, 40, 55] {
        kill_and_resume(&state.join(n.to_string()), n);
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn resuming_with_a_changed_runbook_is_refused() {
    let state = state_dir("changed");
    let rb_dir = state.join("rb");
    std::fs::create_dir_all(&rb_dir).unwrap();
    let rb = rb_dir.join("r.toml");
    std::fs::copy("runbooks/planned-switchover.toml", &rb).unwrap();
    let rb_s = rb.to_str().unwrap();
    let mut child = spawn(
        &state,
        &[
            "run",
            rb_s,
            "--sim",
            "--sim-speed",
            "1",
            "--yes",
            "--output",
            "json",
        ],
    );
    let (run_id, _) = read_events(&mut child, 2);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut text_rb = std::fs::read_to_string(&rb).unwrap();
    text_rb.push_str("\n# edited\n");
    std::fs::write(&rb, text_rb).unwrap();
    let out = drpilot_in(&state, &["resume", &run_id, "--sim-speed", "max", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("changed since run"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn bad_flags_are_usage_errors_that_change_nothing() {
    let state = state_dir("usage");
    for args in [
        vec!["run", "runbooks/region-failover.toml", "--sim-speed", "10"],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--max-parallel",
            "0",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--skip-step",
            "no-such-step",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--param",
            "no_such_param=1",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--param",
            "to",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--approve",
            "no-such-step",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--approve",
            "aurora-promote",
        ],
        vec![
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "-3",
        ],
        vec![
            "run",
            "tests/runbooks/broken/18-dependency-cycle.toml",
            "--sim",
        ],
        vec!["resume", "no-such-run"],
    ] {
        let out = drpilot_in(&state, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!state.join("runs").exists(), "a usage error created a run");
    let _ = std::fs::remove_dir_all(&state);
}

/// `status` speaks the run report's words: snake_case tokens in JSON for tools (the
/// same as the events' `outcome` and `report --format json`), spelled out for people.
#[test]
fn status_says_what_became_of_the_run_and_each_step_in_the_reports_words() {
    let state = state_dir("status-words");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = state.join("deny.toml");
    // The routing-control flip is refused for good: the run rolls back what it did.
    std::fs::write(
        &cfg,
        "[[fault]]\nkind = \"error\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"access_denied\"\n",
    )
    .unwrap();
    let out = drpilot_in(
        &state,
        &[
            "run",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--sim-config",
            cfg.to_str().unwrap(),
            "--yes",
            "--on-failure",
            "rollback",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // The last event says why, for tools that read only it.
    let last: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_finished");
    let why = last["reason"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("UpdateRoutingControlStates"), "{last}");
    let run_id = text(&out.stdout)
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["run_id"].as_str().map(str::to_string)
        })
        .expect("events name the run");

    let out = drpilot_in(&state, &["status", &run_id, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["status"], "rolled_back", "{st}");
    assert_eq!(st["exit_code"], 1);
    assert_eq!(st["resumable"], false);
    assert_eq!(st["reason"], why.as_str());
    assert!(st["holder"].is_null());
    let states: std::collections::BTreeMap<String, String> = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let rb = drpilot::runbook::load(Path::new("runbooks/planned-switchover.toml")).unwrap();
    assert_eq!(states.len(), rb.runbook.steps.len(), "every step is listed");
    let allowed = [
        "succeeded",
        "failed",
        "skipped",
        "rolled_back",
        "rollback_failed",
        "not_started",
        "in_flight",
    ];
    assert!(
        states.values().all(|s| allowed.contains(&s.as_str())),
        "{states:?}"
    );
    assert!(states.values().any(|s| s == "failed"), "{states:?}");
    assert_eq!(states["aurora-switchover"], "rolled_back", "{states:?}");

    // The list says the same, and people read words.
    let out = drpilot_in(&state, &["status", "--output", "json"]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["status"], "rolled_back");
    let out = drpilot_in(&state, &["status", &run_id]);
    let human = text(&out.stdout);
    assert!(human.contains(": rolled back (exit 1)"), "{human}");
    assert!(human.contains(&format!("why: {why}")), "{human}");
    let _ = std::fs::remove_dir_all(&state);
}
