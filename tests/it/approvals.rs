//! Approvals from elsewhere (`drpilot approve` / `drpilot deny`): a headless run
//! started with `--await-approvals` waits on its state store for a two-person approval
//! given from two other processes, and is refused by a denial. The runs are simulated
//! failovers of the shipped runbook with `approvers = 2` on its approval step; the
//! waits are real (people approve in real seconds), so the runs use `--sim-speed max`
//! and only the approval takes time. The same against S3 is in `state_s3.rs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::text;

pub const STEP: &str = "approve-failover";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped failover with `approvers = 2` on its approval step, in `dir`.
pub fn two_person_runbook(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("runbooks/region-failover.toml")).unwrap();
    let marked = format!("id = \"{STEP}\"\naction = \"approval\"\n");
    assert!(text.contains(&marked), "the shipped approval step moved");
    let text = text.replace(&marked, &format!("{marked}approvers = 2\n"));
    let path = dir.join("region-failover.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A headless run's NDJSON events, read as they come on a thread of their own.
pub struct Events {
    rx: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
}

impl Events {
    pub fn of(child: &mut Child) -> Events {
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Events {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first event (from now on) that `want` accepts, within `limit`.
    pub fn until(&mut self, limit: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if want(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no such event within {limit:?}; seen: {:#?}", self.seen),
            }
        }
    }

    /// Every remaining event, once the run's stdout closed.
    pub fn rest(&mut self) -> &[Value] {
        while let Ok(v) = self.rx.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(v);
        }
        &self.seen
    }
}

fn drpilot(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drpilot"));
    c.current_dir(root())
        .args(["--color", "never"])
        .env("DRPILOT_STATE", state)
        .env_remove("NO_COLOR");
    c
}

fn decide(state: &Path, args: &[&str]) -> Output {
    drpilot(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("drpilot runs")
}

fn start_run(state: &Path, file: &Path, extra: &[&str]) -> Child {
    drpilot(state)
        .arg("run")
        .arg(file)
        .args(["--sim", "--sim-speed", "max", "--output", "json"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drpilot runs")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("approvals-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status.code(), err)
}

#[test]
fn a_two_person_approval_from_two_other_processes_lets_a_headless_run_go_on() {
    let dir = tempdir("two");
    let state = dir.join("state");
    let file = two_person_runbook(&dir);
    let mut run = start_run(&state, &file, &["--await-approvals", "2m"]);
    let mut events = Events::of(&mut run);
    let needed = events.until(Duration::from_secs(60), |e| {
        e["event"] == "approval_needed" && e["step"] == STEP
    });
    assert_eq!(needed["approvers"], 2, "{needed}");
    let run_id = needed["run_id"].as_str().unwrap().to_string();

    // One person is not enough, however often they approve.
    for _ in 0..2 {
        let out = decide(
            &state,
            &["approve", &run_id, STEP, "--as", "alice", "--yes"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("is waiting for approval"), "{err}");
        assert!(err.contains("it needs 2 people's approval"), "{err}");
        assert!(err.contains("Approving it unlocks:"), "{err}");
        assert!(err.contains("aurora-promote"), "{err}");
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !events.seen.iter().any(|e| e["event"] == "approved"),
        "approved by one person: {:#?}",
        events.seen
    );
    assert!(run.try_wait().unwrap().is_none(), "the run stopped waiting");

    // Without --yes and without a terminal, approve refuses rather than guess.
    let out = decide(&state, &["approve", &run_id, STEP, "--as", "bob"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );

    let out = decide(&state, &["approve", &run_id, STEP, "--as", "Bob", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let approved = events.until(Duration::from_secs(30), |e| e["event"] == "approved");
    let names: Vec<&str> = approved["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "Bob"], "{approved}");
    assert_eq!(approved["by"], "store");
    assert!(
        approved["approvers"][0]["host"].as_str().is_some(),
        "{approved}"
    );
    let (code, err) = finish(run);
    assert_eq!(code, Some(0), "{err}");
    assert!(events.rest().iter().any(|e| e["event"] == "run_finished"));

    // The report says who approved; the step is decided: approving again is refused.
    let out = decide(&state, &["report", &run_id, "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let approvals = &report["approvals"][0];
    assert_eq!(approvals["required"], 2, "{report:#}");
    assert_eq!(approvals["approvers"].as_array().map(Vec::len), Some(2));
    let out = decide(
        &state,
        &["approve", &run_id, STEP, "--as", "carol", "--yes"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_denial_fails_the_step_with_its_reason_and_the_run_rolls_back() {
    let dir = tempdir("deny");
    let state = dir.join("state");
    let file = two_person_runbook(&dir);
    let mut run = start_run(
        &state,
        &file,
        &["--await-approvals", "2m", "--approve", STEP],
    );
    let mut events = Events::of(&mut run);
    let needed = events.until(Duration::from_secs(60), |e| e["event"] == "approval_needed");
    let run_id = needed["run_id"].as_str().unwrap().to_string();
    // A denial needs a reason.
    let out = decide(&state, &["deny", &run_id, STEP, "--as", "carol"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = decide(
        &state,
        &[
            "deny",
            &run_id,
            STEP,
            "--as",
            "carol",
            "--reason",
            "replica lag is 40s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let denied = events.until(Duration::from_secs(30), |e| e["event"] == "approval_denied");
    assert_eq!(denied["by"]["name"], "carol");
    assert_eq!(denied["reason"], "replica lag is 40s");
    let failed = events.until(Duration::from_secs(30), |e| e["event"] == "step_failed");
    assert_eq!(
        failed["error"],
        "step `approve-failover` was denied by carol: replica lag is 40s"
    );
    let (code, err) = finish(run);
    // Only reversible capacity steps ran before the approval: rolled back cleanly.
    assert_eq!(code, Some(1), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_await_approvals_a_headless_run_fails_at_once_and_says_how_to_wait() {
    let dir = tempdir("fast");
    let state = dir.join("state");
    let file = two_person_runbook(&dir);
    let mut run = start_run(&state, &file, &["--approve", STEP]);
    let mut events = Events::of(&mut run);
    let failed = events.until(Duration::from_secs(60), |e| e["event"] == "step_failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("needs 2 people's approval (1 of 2 given)")
            && error.contains("--await-approvals")
            && error.contains("drpilot approve "),
        "{error}"
    );
    let (code, err) = finish(run);
    assert_eq!(code, Some(1), "{err}");

    // approve / deny on what is not there: usage errors, nothing written.
    for (args, says) in [
        (vec!["approve", "no-such-run", STEP, "--yes"], "no run"),
        (vec!["approve", "../x", STEP, "--yes"], "is not a run id"),
        (
            vec!["approve", "x", STEP, "--as", "", "--yes"],
            "--as needs a name",
        ),
    ] {
        let out = decide(&state, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
