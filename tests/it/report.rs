//! `drpilot report` on real runs of the binary against the simulated world: a successful
//! failover, a rolled-back switchover, a paused run resumed with `--retry`, and the
//! ways a report can be asked for a run that is not there or not readable.
//!
//! Markdown reports are snapshotted (run ids and wall-clock times normalised; the run
//! clock is virtual time with a fixed seed, so it is the same on every machine); JUnit
//! is checked to be well-formed XML with the right counts by Python's own parser; JSON
//! is parsed and its outcome compared with the run's exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::text;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drpilot"))
}

/// A fresh state directory for one test.
pub fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-it-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn drpilot_in(state: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--state")
        .arg(state)
        .env_remove("DRPILOT_STATE")
        // Who approves is named in the report: the same name on every machine.
        .env("USER", "oncall")
        .output()
        .expect("drpilot runs")
}

/// Runs `drpilot run RUNBOOK --sim --sim-speed max --yes --output json` with `extra`
/// flags; returns the run id and the exit code.
pub fn sim_run(state: &Path, runbook: &str, extra: &[&str]) -> (String, i32) {
    let mut args = vec![
        "run",
        runbook,
        "--sim",
        "--sim-speed",
        "max",
        "--yes",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = drpilot_in(state, &args);
    let first = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no events: {}", text(&out.stderr)));
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    (
        v["run_id"].as_str().unwrap().to_string(),
        out.status.code().unwrap(),
    )
}

/// `drpilot report RUN_ID --format FORMAT`, which must succeed.
pub fn report(state: &Path, run_id: &str, format: &str) -> String {
    let out = drpilot_in(state, &["report", run_id, "--format", format]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).to_string()
}

/// A fault file that makes ARC refuse the routing-control update (`times` times, or
/// for good), as tests/it/engine.rs does.
fn arc_fault(state: &Path, times: Option<u32>) -> PathBuf {
    let path = state.join("arc-fault.toml");
    let mut t = "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\n".to_string();
    if let Some(n) = times {
        t.push_str(&format!("times = {n}\n"));
    }
    std::fs::write(&path, t).unwrap();
    path
}

/// planned-switchover with ARC refusing for good: both switchovers are rolled back
/// (exit 1). Returns the state directory and the run id.
pub fn rolled_back_run(name: &str) -> (PathBuf, String) {
    let state = state_dir(name);
    let fault = arc_fault(&state, None);
    let (id, code) = sim_run(
        &state,
        "runbooks/planned-switchover.toml",
        &["--seed", "3", "--sim-config", fault.to_str().unwrap()],
    );
    assert_eq!(code, 1, "rolled back cleanly");
    (state, id)
}

/// Replaces what differs between two runs with the same seed: the run id, the
/// wall-clock start, the state directory, and snapshot names that embed the date.
fn normalise(s: &str, run_id: &str, state: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let s = s
        .replace(run_id, "RUN_ID")
        .replace(state.to_str().unwrap(), "STATE")
        .replace(&format!(", {})", host.trim()), ", HOST)");
    let mut out: Vec<String> = Vec::new();
    for line in s.lines() {
        if line.starts_with("| Started | ") {
            out.push("| Started | WALL CLOCK (wall clock) |".into());
        } else {
            out.push(mask_minute_stamps(line));
        }
    }
    out.join("\n") + "\n"
}

/// `2026-11-28-11-38` (a snapshot name's time) becomes `YYYY-MM-DD-hh-mm`.
fn mask_minute_stamps(line: &str) -> String {
    let b = line.as_bytes();
    let shape = b"dddd-dd-dd-dd-dd";
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let fits = i + shape.len() <= b.len()
            && shape.iter().zip(&b[i..]).all(|(s, c)| match s {
                b'd' => c.is_ascii_digit(),
                _ => c == s,
            });
        if fits {
            out.push_str("YYYY-MM-DD-hh-mm");
            i += shape.len();
        } else {
            let ch = line[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// What Python's XML parser makes of a JUnit document: it must parse at all, and
/// these are its counts.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Junit {
    pub(crate) suites: usize,
    pub(crate) name: String,
    pub(crate) testcases: Vec<String>,
    pub(crate) failed: Vec<String>,
    pub(crate) skipped: Vec<String>,
    pub(crate) errors: Vec<String>,
    pub(crate) attr_tests: usize,
    pub(crate) attr_failures: usize,
    pub(crate) attr_skipped: usize,
}

/// Parses JUnit XML with Python's own parser (so a malformed document fails).
pub(crate) fn parse_junit(xml: &str, state: &Path) -> Junit {
    let path = state.join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let script = r#"
import json, sys, xml.dom.minidom as m
d = m.parse(sys.argv[1])
suites = d.getElementsByTagName("testsuite")
cases = d.getElementsByTagName("testcase")
def having(tag):
    return [c.getAttribute("name") for c in cases if c.getElementsByTagName(tag)]
s = suites[0]
print(json.dumps({
    "suites": len(suites),
    "name": s.getAttribute("name"),
    "testcases": [c.getAttribute("name") for c in cases],
    "failed": having("failure"),
    "skipped": having("skipped"),
    "errors": having("error"),
    "attr_tests": int(s.getAttribute("tests")),
    "attr_failures": int(s.getAttribute("failures")),
    "attr_skipped": int(s.getAttribute("skipped")),
}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "the JUnit XML is not well-formed: {}\n{xml}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn steps_of(runbook: &str) -> Vec<String> {
    drpilot::runbook::load(Path::new(runbook))
        .unwrap()
        .runbook
        .steps
        .iter()
        .map(|s| s.id.to_string())
        .collect()
}

#[test]
fn report_of_a_successful_failover() {
    let state = state_dir("success");
    let (id, code) = sim_run(&state, "runbooks/region-failover.toml", &["--seed", "5"]);
    assert_eq!(code, 0);

    let md = report(&state, &id, "md");
    insta::assert_snapshot!("success.md", normalise(&md, &id, &state));

    let junit = parse_junit(&report(&state, &id, "junit"), &state);
    let steps = steps_of("runbooks/region-failover.toml");
    assert_eq!(junit.suites, 1);
    assert_eq!(junit.name, "region-failover");
    assert_eq!(junit.testcases.len(), steps.len() + 2, "{junit:?}");
    assert_eq!(&junit.testcases[..steps.len()], &steps[..]);
    assert_eq!(junit.testcases[steps.len()..], ["preflight", "objectives"]);
    assert!(junit.failed.is_empty() && junit.skipped.is_empty() && junit.errors.is_empty());
    assert_eq!(
        (junit.attr_tests, junit.attr_failures),
        (steps.len() + 2, 0)
    );

    let json: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert_eq!(json["report_version"], 1);
    assert_eq!(json["run_id"], id.as_str());
    assert_eq!(json["outcome"]["status"], "succeeded");
    assert_eq!(json["outcome"]["exit_code"], code);
    assert_eq!(json["rto"]["met"], true);
    assert_eq!(json["rto"]["objective_secs"], 900.0);
    assert_eq!(json["steps"].as_array().unwrap().len(), steps.len());
    assert!(
        json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "succeeded")
    );

    let html = report(&state, &id, "html");
    assert!(html.starts_with("<!doctype html>"));
    for step in &steps {
        assert!(html.contains(step.as_str()), "{step} missing from the page");
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn report_of_a_rolled_back_switchover() {
    let (state, id) = rolled_back_run("rolled-back");
    let md = report(&state, &id, "md");
    insta::assert_snapshot!("rolled-back.md", normalise(&md, &id, &state));

    let junit = parse_junit(&report(&state, &id, "junit"), &state);
    let steps = steps_of("runbooks/planned-switchover.toml");
    assert_eq!(junit.testcases.len(), steps.len() + 2);
    // The failed DNS step fails; the rolled-back switchovers pass; the verification
    // steps never started; nothing was measured against the objectives.
    assert_eq!(junit.failed, ["dns-switchover"]);
    assert_eq!(
        junit.skipped,
        [
            "api-healthy",
            "db-writer-resolves",
            "cache-resolves",
            "objectives"
        ]
    );
    assert_eq!((junit.attr_failures, junit.attr_skipped), (1, 4));

    let json: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert_eq!(json["outcome"]["status"], "rolled_back");
    assert_eq!(json["outcome"]["exit_code"], 1);
    let rollback = &json["rollbacks"][0];
    assert_eq!(rollback["clean"], true);
    assert_eq!(
        rollback["order"],
        serde_json::json!([
            "valkey-switchover",
            "aurora-switchover",
            "aurora-target-capacity",
            "target-api",
            "target-workers",
            "target-hosts"
        ])
    );

    let html = report(&state, &id, "html");
    for needle in ["<script", "http://", "https://", "src=", "href=", "@import"] {
        assert!(!html.contains(needle), "{needle} in the HTML report");
    }
    assert!(html.contains("<svg class=\"gantt\""));
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn report_of_a_paused_run_resumed_with_retry() {
    let state = state_dir("resumed");
    let fault = arc_fault(&state, Some(1));
    let (id, code) = sim_run(
        &state,
        "runbooks/planned-switchover.toml",
        &[
            "--seed",
            "3",
            "--sim-config",
            fault.to_str().unwrap(),
            "--on-failure",
            "pause",
        ],
    );
    assert_eq!(code, 3, "paused");
    let paused: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert_eq!(paused["outcome"]["status"], "paused");
    assert_eq!(paused["outcome"]["resumable"], true);

    let out = drpilot_in(
        &state,
        &["resume", &id, "--retry", "--sim-speed", "max", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let md = report(&state, &id, "md");
    insta::assert_snapshot!("resumed.md", normalise(&md, &id, &state));

    let json: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert_eq!(json["outcome"]["status"], "succeeded");
    let segments = json["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0]["resumed"], false);
    assert_eq!(segments[0]["outcome"], "paused");
    assert_eq!(segments[1]["resumed"], true);
    assert_eq!(segments[1]["outcome"], "succeeded");
    let dns = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "dns-switchover")
        .unwrap();
    assert_eq!(dns["state"], "succeeded");
    assert_eq!(dns["attempts"], 2);

    let junit = parse_junit(&report(&state, &id, "junit"), &state);
    assert!(junit.failed.is_empty(), "{junit:?}");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn an_interrupted_run_and_an_unreadable_runbook_copy_still_report() {
    let (state, id) = rolled_back_run("interrupted");
    let dir = state.join("runs").join(&id);
    // As if the process had been killed before it recorded its end.
    let journal = dir.join("journal.ndjson");
    let text_j = std::fs::read_to_string(&journal).unwrap();
    let kept: Vec<&str> = text_j.lines().collect();
    std::fs::write(&journal, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    std::fs::write(dir.join("runbook.toml"), "[runbook\nnot toml").unwrap();

    let md = report(&state, &id, "md");
    assert!(md.contains("**Outcome: interrupted (resumable)**"), "{md}");
    assert!(md.contains("no end recorded"), "{md}");
    assert!(md.contains("could not be used"), "{md}");
    assert!(md.contains(&format!("drpilot resume {id}")), "{md}");
    let json: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert_eq!(json["outcome"]["status"], "interrupted");
    assert_eq!(json["outcome"]["exit_code"], serde_json::Value::Null);
    assert_eq!(json["runbook"]["copy_parsed"], false);
    parse_junit(&report(&state, &id, "junit"), &state);
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn journal_text_is_escaped_in_every_format() {
    let (state, id) = rolled_back_run("escape");
    let journal = state.join("runs").join(&id).join("journal.ndjson");
    let evil = "<script>alert(1)</script> & \\\"quoted\\\" | `tick` \\u0001";
    let text_j = std::fs::read_to_string(&journal)
        .unwrap()
        .replace("acme-prod-usw2 is available (1 instance(s))", evil);
    std::fs::write(&journal, text_j).unwrap();

    let html = report(&state, &id, "html");
    assert!(!html.contains("<script"), "unescaped in HTML");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let md = report(&state, &id, "md");
    assert!(!md.contains("<script"), "unescaped in Markdown");
    let junit = report(&state, &id, "junit");
    assert!(junit.contains("&lt;script&gt;"));
    parse_junit(&junit, &state);
    let json: serde_json::Value = serde_json::from_str(&report(&state, &id, "json")).unwrap();
    assert!(
        json.to_string().contains("<script>"),
        "JSON keeps the text as it is"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn unknown_runs_and_corrupted_journals_are_usage_errors_with_nothing_written() {
    let (state, id) = rolled_back_run("errors");
    let out = drpilot_in(&state, &["report", "no-such-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("no-such-run") && err.contains(state.to_str().unwrap()),
        "{err}"
    );

    let out = drpilot_in(&state, &["report", "../../etc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    let journal = state.join("runs").join(&id).join("journal.ndjson");
    let good = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(3, "{not json");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    for format in ["md", "html", "junit", "json"] {
        let out = drpilot_in(&state, &["report", &id, "--format", format]);
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(out.stdout.is_empty(), "{format}");
        let err = text(&out.stderr);
        assert!(
            err.contains("corrupted at line 4") && err.contains(journal.to_str().unwrap()),
            "{err}"
        );
    }
    std::fs::write(&journal, "").unwrap();
    let out = drpilot_in(&state, &["report", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no header"));
    let _ = std::fs::remove_dir_all(&state);
}
