//! `drpilot drill --sim` as a process: both phases against one simulated world, the
//! reports it writes, the objective verdict (exit 7), a failed failover that stops the
//! drill, the drill lock (exit 6) and the window (exit 2, nothing created).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drpilot::engine::{EventKind, RunId};
use drpilot::journal::StateDir;
use drpilot::runbook::Mode;
use serde_json::Value;

use crate::report::parse_junit;
use crate::text;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drpilot"))
}

/// A fresh directory under /tmp for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn drill(dir: &Path, failover: &str, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["--color", "never", "drill", failover])
        .args(["--failback", "runbooks/failback.toml"])
        .args(["--sim", "--sim-speed", "max", "--yes"])
        .arg("--state")
        .arg(dir.join("state"))
        .args(extra)
        .env_remove("NO_COLOR")
        .output()
        .expect("drpilot runs")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The RTO a run's journal shows: from the start (unplanned) or the first change
/// (planned) until the last `recovered_when` step succeeded.
fn rto_from_journal(state: &Path, run_id: &str) -> f64 {
    let dir = StateDir::at(state);
    let replay = dir.replay(&RunId(run_id.into())).unwrap();
    let copy =
        std::fs::read_to_string(dir.run_dir(&replay.header.run_id).join("runbook.toml")).unwrap();
    let rb = drpilot::runbook::load_str(&replay.header.runbook_path, &copy)
        .unwrap()
        .runbook;
    assert!(!rb.objectives.recovered_when.is_empty());
    let secs = |at: jiff::Timestamp| at.duration_since(replay.header.clock_origin).as_secs_f64();
    let start = match rb.runbook.mode {
        Mode::Unplanned => 0.0,
        Mode::Planned => replay
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StepStarted { step, .. }
                    if rb.step(step).is_some_and(|s| s.starts_rto_clock()) =>
                {
                    Some(secs(e.at))
                }
                _ => None,
            })
            .fold(f64::INFINITY, f64::min),
    };
    let end = replay
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepSucceeded { step, .. }
                if rb.objectives.recovered_when.contains(step) =>
            {
                Some(secs(e.at))
            }
            _ => None,
        })
        .fold(0.0, f64::max);
    // The housekeeping after the recovery (the lost writes' snapshot) ends later.
    let last = replay.events.last().map(|e| secs(e.at)).unwrap();
    assert!(end <= last);
    end - start
}

/// Issue 16: us-east-1 is dark (held) for the first six minutes. The failover defers
/// the lost-writes snapshot (it lives in us-east-1), the drill goes on (service was
/// back), fails back once us-east-1 answers, and says what was left for later.
#[test]
fn a_drill_whose_failover_deferred_housekeeping_says_so_and_goes_on() {
    let dir = tmp("deferred");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("held.toml");
    std::fs::write(
        &cfg,
        "[regions.us-east-1]\nunreachable_from = \"0s\"\nunreachable_until = \"6m\"\noutage = \"hold\"\n",
    )
    .unwrap();
    let reports = dir.join("reports");
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &[
            "--seed",
            "3",
            "--sim-config",
            cfg.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc = read_json(&reports.join("drill.json"));
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases[0]["status"], "succeeded", "{doc:#}");
    assert_eq!(phases[1]["status"], "succeeded", "{doc:#}");
    let note = phases[0]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("deferred aurora-keep-lost-writes") && note.contains("drpilot resume"),
        "{doc:#}"
    );
    let md = std::fs::read_to_string(reports.join("drill.md")).unwrap();
    assert!(md.contains("deferred aurora-keep-lost-writes"), "{md}");
    let failover = phases[0]["run_id"].as_str().unwrap();
    let report = read_json(&reports.join(format!("{failover}.json")));
    assert_eq!(
        report["outcome"]["deferred"],
        serde_json::json!(["aurora-keep-lost-writes"])
    );
    assert!(
        report["regions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["region"] == "us-east-1" && r["status"] == "unreachable"),
        "{report:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_simulated_drill_fails_over_soaks_fails_back_and_reports() {
    let dir = tmp("ok");
    let reports = dir.join("reports");
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &["--seed", "3", "--report-dir", reports.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("every objective met (exit 0)"), "{stderr}");

    let doc = read_json(&reports.join("drill.json"));
    assert_eq!(doc["drill_version"], 1);
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["result"], "succeeded");
    assert_eq!(doc["soak_secs"], 300.0);
    assert_eq!(doc["target"]["sim"]["seed"], 3);
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    let state = dir.join("state");
    let mut origins = Vec::new();
    for (p, (phase, runbook)) in phases
        .iter()
        .zip([("failover", "region-failover"), ("failback", "failback")])
    {
        assert_eq!(p["phase"], phase);
        assert_eq!(p["runbook"], runbook);
        assert_eq!(p["status"], "succeeded", "{p:#}");
        assert_eq!(p["rto"]["met"], true, "{p:#}");
        let run_id = p["run_id"].as_str().unwrap();
        // The measured RTO is the journal's: until the recovered_when steps passed.
        let achieved = p["rto"]["achieved_secs"].as_f64().unwrap();
        let journal = rto_from_journal(&state, run_id);
        assert!(
            (achieved - journal).abs() < 0.01,
            "{phase}: drill says {achieved}, journal says {journal}"
        );
        assert!(p["rto"]["predicted_secs"].as_f64().unwrap() > 0.0);
        // Every report exists and parses.
        let md = std::fs::read_to_string(reports.join(format!("{run_id}.md"))).unwrap();
        assert!(md.contains(runbook), "{md}");
        let html = std::fs::read_to_string(reports.join(format!("{run_id}.html"))).unwrap();
        assert!(
            html.starts_with("<!doctype html>"),
            "{}",
            &html[..80.min(html.len())]
        );
        let report = read_json(&reports.join(format!("{run_id}.json")));
        assert_eq!(report["run_id"], run_id);
        assert_eq!(report["outcome"]["status"], "succeeded");
        let junit = std::fs::read_to_string(reports.join(format!("{run_id}.junit.xml"))).unwrap();
        let junit = parse_junit(&junit, &dir);
        assert_eq!(junit.name, runbook);
        assert!(
            junit.failed.is_empty() && junit.errors.is_empty(),
            "{junit:?}"
        );
        origins.push(
            StateDir::at(&state)
                .replay(&RunId(run_id.into()))
                .unwrap()
                .header
                .clock_origin,
        );
    }
    // One world, one time line: the failback starts after the failover and its soak.
    let gap = origins[1].duration_since(origins[0]).as_secs_f64();
    assert!(gap >= 300.0, "{gap}");
    let md = std::fs::read_to_string(reports.join("drill.md")).unwrap();
    assert!(md.contains("every objective met"), "{md}");
    for p in phases {
        assert!(md.contains(p["run_id"].as_str().unwrap()), "{md}");
    }
    assert!(md.contains("(no earlier runs to compare)"), "{md}");

    // The runs are history now: the plan and the next drill predict from them too.
    let out = Command::new(bin())
        .args([
            "plan",
            "runbooks/region-failover.toml",
            "--history",
            "--format",
            "json",
        ])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["history"]["runs"], 1, "{:#}", plan["history"]);
    assert_eq!(plan["history"]["simulated"], 1);
    assert_eq!(plan["history"]["steps"]["aurora-promote"]["samples"], 1);
    assert!(
        plan["history"]["predicted_rto_median_secs"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let again = drill(&dir, "runbooks/region-failover.toml", &["--seed", "5"]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("failover RTO: predicted 5m 39s from the runbook's expectations; ")
            && stderr.contains("p90 from 1 earlier run (simulated)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missed_objective_exits_7_and_is_named_in_the_reports() {
    let dir = tmp("missed");
    std::fs::create_dir_all(&dir).unwrap();
    // The shipped failover, with an RTO objective no failover can meet.
    let shipped = std::fs::read_to_string("runbooks/region-failover.toml").unwrap();
    let tight = shipped.replace("rto = \"15m\"", "rto = \"1s\"");
    assert_ne!(tight, shipped);
    let copy = dir.join("region-failover.toml");
    std::fs::write(&copy, tight).unwrap();
    let reports = dir.join("reports");
    let out = drill(
        &dir,
        copy.to_str().unwrap(),
        &[
            "--seed",
            "4",
            "--soak",
            "1m",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("objective MISSED (exit 7)"), "{stderr}");
    assert!(
        stderr.contains("MISSED failover (region-failover): RTO"),
        "{stderr}"
    );
    let doc = read_json(&reports.join("drill.json"));
    assert_eq!(doc["exit_code"], 7);
    assert_eq!(doc["result"], "objective_missed");
    let missed = doc["missed"].as_array().unwrap();
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(
        missed[0]
            .as_str()
            .unwrap()
            .contains("exceeds the objective 1s"),
        "{missed:?}"
    );
    // Both phases ran: the miss is the failover's; the failback met its objective.
    assert_eq!(doc["phases"][0]["rto"]["met"], false);
    assert_eq!(doc["phases"][1]["status"], "succeeded");
    assert_eq!(doc["phases"][1]["rto"]["met"], true);
    let md = std::fs::read_to_string(reports.join("drill.md")).unwrap();
    assert!(md.contains("## Missed objectives"), "{md}");
    assert!(md.contains("failover (region-failover): RTO"), "{md}");
    assert!(md.contains("exceeds the objective 1s"), "{md}");
    let run_id = doc["phases"][0]["run_id"].as_str().unwrap();
    let xml = std::fs::read_to_string(reports.join(format!("{run_id}.junit.xml"))).unwrap();
    let junit = parse_junit(&xml, &dir);
    assert_eq!(junit.failed, ["objectives"], "{junit:?}");
    assert!(xml.contains("exceeds the objective 1s"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_failover_stops_the_drill_before_the_failback() {
    let dir = tmp("failed");
    std::fs::create_dir_all(&dir).unwrap();
    // The secondary to promote is not available: preflight refuses the failover.
    let cfg = dir.join("sim.toml");
    std::fs::write(&cfg, "[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n").unwrap();
    let reports = dir.join("reports");
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &[
            "--sim-config",
            cfg.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let doc = read_json(&reports.join("drill.json"));
    assert_eq!(doc["exit_code"], 5);
    assert_eq!(doc["phases"][0]["status"], "preflight_failed");
    assert_eq!(doc["phases"][1]["status"], "not_run");
    assert_eq!(doc["phases"][1]["run_id"], Value::Null);
    assert!(
        doc["phases"][1]["note"]
            .as_str()
            .unwrap()
            .contains("the failover did not succeed")
    );
    // No failback run exists at all.
    let runs = StateDir::at(dir.join("state")).runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].header.runbook, "region-failover");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_drill_of_the_same_runbook_exits_6() {
    let dir = tmp("lock");
    // Real time: the first drill holds its lock for minutes.
    let mut first = Command::new(bin())
        .args([
            "drill",
            "runbooks/region-failover.toml",
            "--failback",
            "runbooks/failback.toml",
            "--sim",
            "--sim-speed",
            "1",
            "--yes",
            "--output",
            "json",
            "--state",
        ])
        .arg(dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drpilot starts");
    // Its first event means the drill lock is taken.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("run_started"), "{line}");
    let second = drill(&dir, "runbooks/region-failover.toml", &[]);
    first.kill().unwrap(); // our own child, by its pid
    first.wait().unwrap();
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("another drill of `region-failover` is running"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn outside_its_window_a_drill_refuses_and_creates_nothing() {
    let dir = tmp("window");
    // A one-minute window three days from today (UTC): closed now, whatever the time.
    let day = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .weekday()
        .wrapping_add(3);
    let spec = format!("{} 00:00-00:01 UTC", &format!("{day:?}")[..3]);
    let reports = dir.join("reports");
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &["--window", &spec, "--report-dir", reports.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("outside the drill window \"{spec}\"")),
        "{stderr}"
    );
    assert!(stderr.contains("next opening"), "{stderr}");
    assert!(!dir.exists(), "nothing is created outside the window");

    // A malformed window says what is wrong, and nothing is created either.
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &["--window", "Tue 14:00-16:00"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected DAYS HH:MM-HH:MM ZONE"));
    assert!(!dir.exists());
}

#[test]
fn an_unwritable_report_dir_is_refused_before_anything_runs() {
    let dir = tmp("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    // A file where a directory should be: no --report-dir can be created under it.
    std::fs::write(dir.join("file"), "x").unwrap();
    let out = drill(
        &dir,
        "runbooks/region-failover.toml",
        &["--report-dir", dir.join("file/reports").to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--report-dir"), "{stderr}");
    assert!(!dir.join("state").exists(), "no run, no lock");
    let _ = std::fs::remove_dir_all(&dir);
}
