//! The headless contract of issue 6, on the binary: with `--output json` and no TTY,
//! stdout is only NDJSON events; every event, on stdout and in the journal, validates
//! against the checked-in `docs/events.schema.json`; the exit code is
//! `run_finished.exit_code`; and across these runs every event the schema names is
//! emitted at least once. Logs (`--log-format`) go to stderr and never mix with events.
//!
//! Each scenario runs once per test process (cached), so the coverage test and the
//! per-scenario tests share the runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Events the schema names that no scenario here emits, with the reason. Checked both
/// ways: a listed event that does get emitted fails the coverage test, so the list
/// cannot go stale.
const NOT_EMITTED: &[(&str, &str)] = &[];

/// A process's result.
pub struct Out {
    /// The exit code.
    pub code: i32,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
}

/// Runs the built `drpilot` with stdin closed and stdout/stderr piped (no TTY, so
/// nothing may prompt), `env` added to a cleaned environment. A run that does not end
/// within two minutes is killed (by its own pid) and fails the test, so a prompt that
/// waits for input cannot hang the suite.
pub fn drpilot_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drpilot"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "DRPILOT_LOG",
        "DRPILOT_STATE",
        "NO_COLOR",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("drpilot starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8(s).expect("drpilot writes UTF-8")
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("drpilot {args:?} did not finish in 2 minutes (waiting for input?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status
            .code()
            .expect("drpilot exits, not killed by a signal"),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A fresh, empty directory under the temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("evt-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The checked-in schema, compiled with formats (`date-time`) checked. The copy used
/// here also closes the root (`unevaluatedProperties: false`), so an emitted field the
/// schema does not describe fails; the published schema stays open, since fields are
/// added within a version.
pub fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut schema = published_schema();
        assert!(
            jsonschema::meta::is_valid(&schema),
            "docs/events.schema.json is not valid JSON Schema"
        );
        schema["unevaluatedProperties"] = Value::Bool(false);
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the event schema compiles")
    })
}

fn published_schema() -> Value {
    let text = std::fs::read_to_string("docs/events.schema.json").expect("the schema is there");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Parses NDJSON that must hold only events: every line JSON, every line valid.
pub fn events_of(what: &str, ndjson: &str) -> Vec<Value> {
    let v = validator();
    ndjson
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let e: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{what} line {} is not JSON ({err}): {line}", i + 1));
            let errors: Vec<String> = v
                .iter_errors(&e)
                .map(|err| format!("{err} at {}", err.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{what} line {} does not match docs/events.schema.json:\n{line}\n{}",
                i + 1,
                errors.join("\n")
            );
            e
        })
        .collect()
}

/// Checks a run's stdout as the headless contract says, and its journal; returns the
/// stdout events.
fn headless(what: &str, out: &Out, state: &Path) -> Vec<Value> {
    assert!(
        !out.stdout.is_empty(),
        "{what}: no events; stderr: {}",
        out.stderr
    );
    let events = events_of(&format!("{what} stdout"), &out.stdout);
    let finished: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "run_finished")
        .collect();
    assert_eq!(finished.len(), 1, "{what}: one run_finished per process");
    // Only what came of the run's notifications may follow its end.
    let end = events
        .iter()
        .position(|e| e["event"] == "run_finished")
        .unwrap();
    assert!(
        events[end + 1..]
            .iter()
            .all(|e| e["event"] == "notification_sent" || e["event"] == "notification_failed"),
        "{what}: run_finished comes last, but for notifications' results"
    );
    assert_eq!(
        finished[0]["exit_code"].as_i64(),
        Some(i64::from(out.code)),
        "{what}: the exit code is run_finished.exit_code; stderr: {}",
        out.stderr
    );
    let run_id = events[0]["run_id"].as_str().unwrap();
    assert!(events.iter().all(|e| e["run_id"] == run_id), "{what}");
    journal_events(what, state, run_id);
    events
}

/// The journal's event lines (after the header), validated.
fn journal_events(what: &str, state: &Path, run_id: &str) -> Vec<Value> {
    let path = state.join("runs").join(run_id).join("journal.ndjson");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
    let (header, rest) = text.split_once('\n').expect("a header line");
    let header: Value = serde_json::from_str(header).expect("the header is JSON");
    assert_eq!(header["run_id"], run_id, "{what}: {header}");
    assert!(
        header.get("event").is_none(),
        "{what}: the header is not an event"
    );
    events_of(&format!("{what} journal"), rest)
}

fn names(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

fn run_json(state: &Path, runbook: &str, extra: &[&str]) -> Out {
    let state_s = state.to_str().unwrap();
    let mut args = vec![
        "run", runbook, "--sim", "--output", "json", "--state", state_s,
    ];
    args.extend_from_slice(extra);
    drpilot_env(&args, &[])
}

fn resume_json(state: &Path, run_id: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "resume",
        run_id,
        "--output",
        "json",
        "--state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    drpilot_env(&args, &[])
}

fn sim_config(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// ARC refuses every routing-control update: a permanent failure at the DNS step,
/// after the database and cache moved.
const ARC_REFUSES: &str = "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\n";

/// ARC refuses the first routing-control update only: a pause, then a retry works.
const ARC_REFUSES_ONCE: &str = "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\ntimes = 1\n";

/// Events of every scenario, by scenario name; each runs once per process.
fn scenario(name: &'static str) -> &'static [Value] {
    static RUNS: OnceLock<BTreeMap<&'static str, OnceLock<Vec<Value>>>> = OnceLock::new();
    let runs = RUNS.get_or_init(|| {
        SCENARIOS
            .iter()
            .map(|(n, _)| (*n, OnceLock::new()))
            .collect()
    });
    let f = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
        .1;
    runs[name].get_or_init(f)
}

type Scenario = fn() -> Vec<Value>;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("success", success),
    ("approval_without_flag", approval_without_flag),
    ("permanent_fault_rolls_back", permanent_fault_rolls_back),
    ("rollback_incomplete", rollback_incomplete),
    ("pause_then_retry", pause_then_retry),
    ("pause_then_rollback", pause_then_rollback),
    ("pause_then_skip", pause_then_skip),
    ("preflight_failure", preflight_failure),
    ("run_timeout", run_timeout),
    ("us_east_1_held", us_east_1_held),
    ("notified", notified),
    ("denied_from_elsewhere", denied_from_elsewhere),
];

/// Notifications to an SNS topic (the simulated world takes them) and to a webhook
/// where nothing listens: both kinds of result are events, and the run is unchanged.
fn notified() -> Vec<Value> {
    let state = temp_dir("notified");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = format!("http://127.0.0.1:{closed}/hook/t0ken");
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "5",
            "--yes",
            "--notify",
            "sns:arn:aws:sns:us-west-2:111122223333:dr-alerts",
            "--notify",
            &hook,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = headless("notified", &out, &state);
    assert!(events.iter().any(|e| e["event"] == "notification_sent"));
    assert!(events.iter().any(|e| e["event"] == "notification_failed"
        && e["receiver"] == format!("webhook 127.0.0.1:{closed}")));
    assert!(!out.stdout.contains("t0ken"));
    let _ = std::fs::remove_dir_all(&state);
    events
}

/// A run paused at its approval step (headless, no flag) is denied from elsewhere
/// (`drpilot deny`); `resume --retry` asks the store again and the denial fails it.
fn denied_from_elsewhere() -> Vec<Value> {
    let state = temp_dir("denied");
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &["--sim-speed", "max", "--seed", "5", "--on-failure", "pause"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let first = headless("denied", &out, &state);
    let run_id = first[0]["run_id"].as_str().unwrap().to_string();
    let denied = drpilot_env(
        &[
            "deny",
            &run_id,
            "approve-failover",
            "--reason",
            "the sale is on",
            "--as",
            "dana",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    let out = resume_json(&state, &run_id, &["--retry", "--sim-speed", "max"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let second = headless("denied resume", &out, &state);
    let d = second
        .iter()
        .find(|e| e["event"] == "approval_denied")
        .expect("the denial is an event");
    assert_eq!(
        (&d["by"]["name"], &d["reason"]),
        (&Value::from("dana"), &Value::from("the sale is on"))
    );
    let _ = std::fs::remove_dir_all(&state);
    first.into_iter().chain(second).collect()
}

/// us-east-1 holds every request: probed at the start and reported unreachable, the
/// failover goes on, the lost-writes snapshot is deferred (exit 0), and `resume` (no
/// decision needed) tries it again.
fn us_east_1_held() -> Vec<Value> {
    let state = temp_dir("held");
    let cfg = sim_config(
        &state,
        "held.toml",
        "[regions.us-east-1]\nunreachable_from = \"0s\"\noutage = \"hold\"\n",
    );
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "5",
            "--yes",
            "--sim-config",
            &cfg,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = headless("held", &out, &state);
    let down: Vec<&str> = first
        .iter()
        .filter(|e| e["event"] == "region_status" && e["status"] == "unreachable")
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert!(down.contains(&"rds") && down.contains(&"s3"), "{down:?}");
    assert!(
        first
            .iter()
            .filter(|e| e["event"] == "region_status")
            .all(|e| e["region"] == "us-east-1" || e["status"] == "reachable"),
        "only us-east-1 is down"
    );
    let last = first.last().unwrap();
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(
        last["deferred"],
        serde_json::json!(["aurora-keep-lost-writes"])
    );
    assert!(
        first
            .iter()
            .any(|e| e["event"] == "step_deferred" && e["step"] == "aurora-keep-lost-writes")
    );
    // Resumed while the region is still down: the step is deferred again, the run
    // succeeds again (the engine tests resume it once the region is back).
    let run_id = first[0]["run_id"].as_str().unwrap().to_string();
    let out = resume_json(&state, &run_id, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let second = headless("held resume", &out, &state);
    assert_eq!(second.last().unwrap()["outcome"], "succeeded");
    assert_eq!(
        second.last().unwrap()["deferred"],
        serde_json::json!(["aurora-keep-lost-writes"])
    );
    let _ = std::fs::remove_dir_all(&state);
    [first, second].concat()
}

fn success() -> Vec<Value> {
    let state = temp_dir("success");
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &["--sim-speed", "max", "--seed", "5", "--yes"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = headless("success", &out, &state);
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "succeeded");
    assert!(last["rto_secs"].as_f64().is_some(), "{last}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "approved" && e["by"] == "yes")
    );
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn approval_without_flag() -> Vec<Value> {
    let state = temp_dir("approval");
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &["--sim-speed", "max", "--seed", "5"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = headless("approval", &out, &state);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "approval_needed" && e["step"] == "approve-failover")
    );
    let failed = events
        .iter()
        .find(|e| e["event"] == "step_failed")
        .expect("the approval step fails");
    assert_eq!(failed["step"], "approve-failover");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("--approve approve-failover or --yes"),
        "{failed}"
    );
    assert!(!events.iter().any(|e| e["event"] == "approved"));
    assert!(
        !out.stderr.contains("to approve"),
        "headless runs never prompt: {}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn permanent_fault_rolls_back() -> Vec<Value> {
    let state = temp_dir("rollback");
    let cfg = sim_config(&state, "arc.toml", ARC_REFUSES);
    let out = run_json(
        &state,
        "runbooks/planned-switchover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "2",
            "--yes",
            "--sim-config",
            &cfg,
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = headless("rollback", &out, &state);
    let rolled: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_rolled_back")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        rolled,
        [
            "valkey-switchover",
            "aurora-switchover",
            "aurora-target-capacity",
            "target-api",
            "target-workers",
            "target-hosts"
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "rollback_finished" && e["clean"] == true)
    );
    assert_eq!(events.last().unwrap()["outcome"], "rolled_back");
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn rollback_incomplete() -> Vec<Value> {
    // region-failover's Aurora failover has no rollback: a later failure leaves it
    // changed, and the events say so.
    let state = temp_dir("incomplete");
    let cfg = sim_config(&state, "arc.toml", ARC_REFUSES);
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "2",
            "--yes",
            "--sim-config",
            &cfg,
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let events = headless("incomplete", &out, &state);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "rollback_failed" && e["step"] == "aurora-promote")
    );
    assert_eq!(events.last().unwrap()["outcome"], "needs_attention");
    let _ = std::fs::remove_dir_all(&state);
    events
}

/// Runs planned-switchover with `--on-failure pause` into ARC's one refusal; returns
/// the state dir, the run id and the first process's events.
fn paused(name: &str) -> (PathBuf, String, Vec<Value>) {
    let state = temp_dir(name);
    let cfg = sim_config(&state, "arc.toml", ARC_REFUSES_ONCE);
    let out = run_json(
        &state,
        "runbooks/planned-switchover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "2",
            "--yes",
            "--sim-config",
            &cfg,
            "--on-failure",
            "pause",
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let events = headless(name, &out, &state);
    assert_eq!(events.last().unwrap()["outcome"], "paused");
    let run_id = events[0]["run_id"].as_str().unwrap().to_string();
    (state, run_id, events)
}

/// Resumes a paused run with `decision`; checks the resumed process's events and the
/// whole journal (both processes); returns all events.
fn resumed(name: &str, decision: &[&str], code: i32, outcome: &str) -> (PathBuf, Vec<Value>) {
    let (state, run_id, first) = paused(name);
    let out = resume_json(&state, &run_id, decision);
    assert_eq!(out.code, code, "{}", out.stderr);
    let second = headless(&format!("{name} resume"), &out, &state);
    assert_eq!(second[0]["event"], "run_started");
    assert_eq!(second[0]["resumed"], true);
    assert_eq!(second.last().unwrap()["outcome"], outcome);
    let journal = journal_events(name, &state, &run_id);
    assert_eq!(journal.len(), first.len() + second.len(), "{name}");
    (state, first.into_iter().chain(second).collect())
}

fn pause_then_retry() -> Vec<Value> {
    let (state, events) = resumed("retry", &["--retry", "--yes"], 0, "succeeded");
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn pause_then_rollback() -> Vec<Value> {
    let (state, events) = resumed("resume-rollback", &["--rollback"], 1, "rolled_back");
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn pause_then_skip() -> Vec<Value> {
    // Skipping the DNS step leaves the checks behind it unable to pass: the run then
    // fails and rolls back, which is what a skip of a step others need should do.
    let (state, events) = resumed("skip", &["--skip", "--yes"], 1, "rolled_back");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == "dns-switchover"),
        "the skip is an event"
    );
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn preflight_failure() -> Vec<Value> {
    let state = temp_dir("preflight");
    let cfg = sim_config(
        &state,
        "busy.toml",
        "[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n",
    );
    let out = run_json(
        &state,
        "runbooks/region-failover.toml",
        &[
            "--sim-speed",
            "max",
            "--seed",
            "2",
            "--yes",
            "--sim-config",
            &cfg,
        ],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    let events = headless("preflight", &out, &state);
    let pf = events
        .iter()
        .find(|e| e["event"] == "preflight")
        .expect("a preflight event");
    assert_eq!(pf["ok"], false);
    assert!(
        pf["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["ok"] == false),
        "{pf}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "step_started"),
        "nothing ran"
    );
    assert_eq!(events.last().unwrap()["outcome"], "preflight_failed");
    let _ = std::fs::remove_dir_all(&state);
    events
}

fn run_timeout() -> Vec<Value> {
    // At ten times real time the switchover takes about a minute; the run's one-second
    // deadline stops it (running steps finish: the capacity steps that start at once
    // take up to a few virtual minutes) and the failure policy rolls back.
    let state = temp_dir("timeout");
    let started = Instant::now();
    let out = run_json(
        &state,
        "runbooks/planned-switchover.toml",
        &[
            "--sim-speed",
            "10",
            "--timeout",
            "1s",
            "--seed",
            "2",
            "--yes",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    // A bound on "stops instead of running on" (the whole run would take many
    // minutes at this speed), not a performance figure.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
    let events = headless("timeout", &out, &state);
    assert!(events.iter().any(|e| e["event"] == "rollback_started"));
    assert!(
        !events.iter().any(|e| e["event"] == "approved"),
        "the deadline came before the approval step"
    );
    assert_eq!(events.last().unwrap()["outcome"], "rolled_back");
    let _ = std::fs::remove_dir_all(&state);
    events
}

#[test]
fn a_successful_headless_run_emits_only_valid_events() {
    scenario("success");
}

#[test]
fn an_approval_step_without_a_flag_fails_headless_without_prompting() {
    scenario("approval_without_flag");
}

#[test]
fn a_permanent_fault_rolls_back_with_valid_events() {
    scenario("permanent_fault_rolls_back");
}

#[test]
fn a_change_without_rollback_is_reported_by_rollback_failed() {
    scenario("rollback_incomplete");
}

#[test]
fn pause_then_resume_retry_emits_valid_events_in_both_processes() {
    scenario("pause_then_retry");
}

#[test]
fn pause_then_resume_rollback_emits_valid_events() {
    scenario("pause_then_rollback");
}

#[test]
fn pause_then_resume_skip_emits_step_skipped() {
    scenario("pause_then_skip");
}

#[test]
fn a_preflight_failure_exits_5_with_valid_events() {
    scenario("preflight_failure");
}

#[test]
fn the_run_deadline_rolls_back_with_valid_events() {
    scenario("run_timeout");
}

#[test]
fn a_denial_from_elsewhere_is_an_event_and_fails_the_resumed_step() {
    scenario("denied_from_elsewhere");
}

#[test]
fn every_event_in_the_schema_is_emitted_by_some_scenario() {
    let schema = published_schema();
    let known: BTreeSet<String> = schema["properties"]["event"]["enum"]
        .as_array()
        .expect("the schema lists the event names")
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert!(known.len() >= 14, "{known:?}");
    let mut seen = BTreeSet::new();
    for (name, _) in SCENARIOS {
        seen.extend(names(scenario(name)));
    }
    let excused: BTreeSet<String> = NOT_EMITTED.iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<&String> = known
        .iter()
        .filter(|n| !seen.contains(*n) && !excused.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "never emitted by any scenario: {missing:?}; add a scenario or list them in NOT_EMITTED with a reason"
    );
    let stale: Vec<&String> = excused.iter().filter(|n| seen.contains(*n)).collect();
    assert!(
        stale.is_empty(),
        "listed in NOT_EMITTED but emitted: {stale:?}"
    );
    let unknown: Vec<&String> = seen.iter().filter(|n| !known.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "emitted but not in the schema: {unknown:?}"
    );
}

#[test]
fn schema_events_prints_the_checked_in_schema() {
    let out = drpilot_env(&["schema", "--events"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed, published_schema());
    assert!(
        printed["$id"].as_str().unwrap().ends_with(":v1"),
        "{}",
        printed["$id"]
    );
    // Without the flag it is still the runbook's schema.
    let runbook = drpilot_env(&["schema"], &[]);
    let runbook: Value = serde_json::from_str(&runbook.stdout).unwrap();
    assert_eq!(runbook["title"], "drpilot runbook");
}

/// `--log-format json --output json`: stdout is still only events, and every stderr
/// line is a JSON log object; by default (info for drpilot under --output json) each
/// state change is one line under the `drpilot::events` target with its fields, and
/// gate polls (debug) are not.
#[test]
fn json_logs_on_stderr_never_mix_with_events_on_stdout() {
    let state = temp_dir("logs-json");
    let out = drpilot_env(
        &[
            "--log-format",
            "json",
            "run",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "4",
            "--yes",
            "--output",
            "json",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = headless("logs-json", &out, &state);
    let logs: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"));
            assert!(v["level"].is_string(), "{l}");
            assert!(v["fields"].is_object(), "{l}");
            v
        })
        .collect();
    // The wiring in `app::execute::execute` pushes the TracingSink under --output json.
    let logged: Vec<&Value> = logs
        .iter()
        .filter(|l| l["target"] == "drpilot::events")
        .collect();
    let logged_names: BTreeSet<String> = logged
        .iter()
        .map(|l| l["fields"]["event"].as_str().unwrap().to_string())
        .collect();
    let mut want = names(&events);
    want.remove("gate_observed");
    want.remove("captured");
    assert_eq!(logged_names, want, "one log line per state change");
    let finished = logged
        .iter()
        .find(|l| l["fields"]["event"] == "run_finished")
        .unwrap();
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["fields"]["outcome"], "succeeded");
    assert_eq!(finished["fields"]["exit_code"], 0);
    assert_eq!(finished["fields"]["run_id"], events[0]["run_id"]);
    let started = logged
        .iter()
        .find(|l| l["fields"]["event"] == "step_started")
        .unwrap();
    assert!(started["fields"]["step"].is_string(), "{started}");
    assert_eq!(started["fields"]["attempt"], 1);
    let _ = std::fs::remove_dir_all(&state);
}

/// Human output already shows every event on stderr: the log lines of events would
/// repeat it, so the tracing sink is only active with --output json. Text logs are
/// plain lines, without colour codes when colour is off.
#[test]
fn event_logs_are_not_duplicated_for_people_and_text_logs_have_no_colour_codes() {
    let state = temp_dir("logs-human");
    let out = drpilot_env(
        &[
            "--log-format",
            "json",
            "run",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "4",
            "--yes",
            "--state",
            state.to_str().unwrap(),
        ],
        &[("DRPILOT_LOG", "debug")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        !out.stderr.contains("\"drpilot::events\""),
        "human runs log no event lines: {}",
        out.stderr
    );
    let state2 = temp_dir("logs-text");
    let out = drpilot_env(
        &[
            "--color",
            "never",
            "run",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "4",
            "--yes",
            "--output",
            "json",
            "--state",
            state2.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    events_of("logs-text stdout", &out.stdout);
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("INFO") && l.contains("run finished")),
        "text logs at info by default under --output json: {}",
        out.stderr
    );
    assert!(
        out.stderr.lines().all(|l| !l.starts_with('{')),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&state2);
}

#[test]
fn an_invalid_log_filter_is_reported_and_the_run_goes_on() {
    let out = drpilot_env(
        &["schema", "--events"],
        &[("DRPILOT_LOG", "drpilot=notalevel")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("DRPILOT_LOG"), "{}", out.stderr);
    serde_json::from_str::<Value>(&out.stdout).expect("stdout is untouched");
}

/// The validation above would pass anything if the schema were too loose: these are
/// what drpilot must never print, and the schema refuses each.
#[test]
fn the_schema_refuses_malformed_events() {
    let good = serde_json::json!({
        "run_id": "rb-1", "at": "2026-01-01T00:00:00Z",
        "event": "step_started", "step": "a", "attempt": 1
    });
    assert!(validator().is_valid(&good));
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    for (why, bad) in [
        (
            "no run_id",
            broken(&|v| drop(v.as_object_mut().unwrap().remove("run_id"))),
        ),
        (
            "no at",
            broken(&|v| drop(v.as_object_mut().unwrap().remove("at"))),
        ),
        (
            "a step event without step",
            broken(&|v| drop(v.as_object_mut().unwrap().remove("step"))),
        ),
        (
            "an unknown event",
            broken(&|v| v["event"] = "step_exploded".into()),
        ),
        (
            "a time that is not RFC 3339",
            broken(&|v| v["at"] = "yesterday".into()),
        ),
        (
            "a field the schema does not describe",
            broken(&|v| v["secret"] = "x".into()),
        ),
        ("a wrong type", broken(&|v| v["attempt"] = "1".into())),
    ] {
        assert!(!validator().is_valid(&bad), "{why}: {bad}");
    }
    // A field serde leaves out when empty is optional, but never null.
    let retry = serde_json::json!({
        "run_id": "rb-1", "at": "2026-01-01T00:00:00Z", "event": "attempt_failed",
        "step": "a", "attempt": 1, "error": "503", "will_retry": false
    });
    assert!(validator().is_valid(&retry));
    let mut null = retry.clone();
    null["retry_in_secs"] = Value::Null;
    assert!(!validator().is_valid(&null), "{null}");
}
