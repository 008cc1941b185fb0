//! `drpilot readiness`: the Prometheus text parsed by the Prometheus project's own
//! parser (`prometheus_client`, in the emulator's venv), exit codes, and the `--every`
//! loop writing its file atomically until a signal stops it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{drpilot, text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drpilot-readiness-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The emulator's venv python, created from the pinned requirements if missing: a test
/// that needs it fails without it, never skips.
fn venv_python() -> PathBuf {
    let py = root().join("chaos/emulator/.venv/bin/python");
    let ok = Command::new("bash")
        .arg("-c")
        .arg("source chaos/emulator/_venv.sh && ensure_venv")
        .current_dir(root())
        .status()
        .expect("bash runs");
    assert!(ok.success(), "the emulator's venv could not be created");
    assert!(py.exists(), "{} is missing", py.display());
    py
}

/// Parses the exposition text with `prometheus_client.parser.text_string_to_metric_families`
/// and returns `{family: {"type": .., "samples": [{"name", "labels", "value"}]}}`.
fn parse_prometheus(exposition: &str) -> Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    if fam.name in out:
        raise SystemExit("family %s twice" % fam.name)
    out[fam.name] = {"type": fam.type, "documentation": fam.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples]}
print(json.dumps(out))
"#;
    let mut child = Command::new(venv_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n{exposition}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// The samples of a family for one runbook.
fn samples<'a>(doc: &'a Value, family: &str, runbook: &str) -> Vec<&'a Value> {
    doc[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}: {doc}"))
        .iter()
        .filter(|s| s["labels"]["runbook"] == runbook)
        .collect()
}

fn value(doc: &Value, family: &str, runbook: &str) -> f64 {
    let s = samples(doc, family, runbook);
    assert_eq!(s.len(), 1, "{family} {runbook}: {s:?}");
    s[0]["value"].as_f64().unwrap()
}

fn sim_config(dir: &Path, body: &str) -> String {
    let p = dir.join("sim.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn prometheus_output_parses_with_the_prometheus_parser_and_says_ready() {
    let dir = temp("ready");
    let state = dir.join("state").display().to_string();
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--state",
        &state,
        "--format",
        "prometheus",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = parse_prometheus(text(&out.stdout));
    for rb in ["region-failover", "planned-switchover"] {
        assert_eq!(value(&doc, "drpilot_ready", rb), 1.0);
        assert_eq!(value(&doc, "drpilot_readiness_check_ok", rb), 1.0);
        let findings = samples(&doc, "drpilot_preflight_findings", rb);
        let by: Vec<(String, f64)> = findings
            .iter()
            .map(|s| {
                (
                    s["labels"]["severity"].as_str().unwrap().to_string(),
                    s["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(by.len(), 3, "{by:?}");
        assert!(by.iter().any(|(s, n)| s == "ok" && *n > 0.0), "{by:?}");
        assert!(by.iter().any(|(s, n)| s == "block" && *n == 0.0), "{by:?}");
        let lag = samples(&doc, "drpilot_aurora_replication_lag_seconds", rb);
        assert_eq!(lag.len(), 1, "{lag:?}");
        assert_eq!(lag[0]["labels"]["cluster"], "acme-prod-usw2");
        assert_eq!(lag[0]["labels"]["region"], "us-west-2");
        assert!(lag[0]["value"].as_f64().unwrap() < 30.0);
        assert_eq!(
            value(&doc, "drpilot_s3_replication_backlog_operations", rb),
            0.0
        );
        assert_eq!(value(&doc, "drpilot_s3_replication_backlog_bytes", rb), 0.0);
        assert!(value(&doc, "drpilot_predicted_rto_seconds", rb) > 0.0);
        // No drill yet: no sample, not a made-up one.
        assert!(samples(&doc, "drpilot_last_successful_drill_age_seconds", rb).is_empty());
        let at = value(&doc, "drpilot_readiness_timestamp_seconds", rb);
        assert!(at > 1.7e9, "{at}");
    }
    assert_eq!(doc["drpilot_ready"]["type"], "gauge");
}

#[test]
fn one_runbook_not_ready_exits_5_and_its_findings_are_counted() {
    let dir = temp("notready");
    let state = dir.join("state").display().to_string();
    // The primary's cluster is busy: a switchover refuses, an unplanned failover (to
    // the secondary) does not care.
    let cfg = sim_config(&dir, "[clusters.acme-prod-use1]\nstatus = \"modifying\"\n");
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--sim-config",
        &cfg,
        "--state",
        &state,
        "--format",
        "prometheus",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let doc = parse_prometheus(text(&out.stdout));
    assert_eq!(value(&doc, "drpilot_ready", "region-failover"), 1.0);
    assert_eq!(value(&doc, "drpilot_ready", "planned-switchover"), 0.0);
    let block = samples(&doc, "drpilot_preflight_findings", "planned-switchover")
        .into_iter()
        .find(|s| s["labels"]["severity"] == "block")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    assert!(block > 0.0, "{doc}");

    // The same as JSON: one document, the blocking finding named.
    let out = drpilot(&[
        "readiness",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--sim-config",
        &cfg,
        "--state",
        &state,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["ready"], false);
    let rb = &doc["runbooks"][0];
    assert_eq!(rb["runbook"], "planned-switchover");
    assert!(rb["findings"]["block"].as_u64().unwrap() > 0);
    assert!(
        rb["blocking"][0].as_str().unwrap().contains("modifying"),
        "{rb}"
    );
}

#[test]
fn a_bad_runbook_or_flag_exits_2_and_checks_nothing() {
    let dir = temp("bad");
    let state = dir.join("state").display().to_string();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[runbook]\nname = \"x\"\nbogus = 1\n").unwrap();
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        bad.to_str().unwrap(),
        "--sim",
        "--state",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "--every",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // "mars-1" is not a region (a region is `xx-name-N`).
    for bad in [
        &["--every", "0s"][..],
        &["--cloudwatch", "AWS/RDS"],
        &["--cloudwatch", "X", "--cloudwatch-region", "mars-1"],
        &["--output-file", dir.to_str().unwrap()],
    ] {
        let mut args = vec![
            "readiness",
            "runbooks/region-failover.toml",
            "--sim",
            "--state",
            &state,
        ];
        args.extend_from_slice(bad);
        let out = drpilot(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "--sim",
        "--skip-step",
        "no-such-step",
        "--state",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "--sim",
        "--state",
        &state,
        "--output-file",
        dir.join("no/such/dir/x.prom").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn every_writes_complete_files_atomically_until_sigterm_then_exits_cleanly() {
    every_until("-TERM");
}

#[test]
fn every_stops_cleanly_on_sigint_too() {
    every_until("-INT");
}

/// Runs `readiness --every` as a child for three rounds, reading its file between
/// them, then sends it `signal` by its own pid.
fn every_until(signal: &str) {
    let dir = temp(&format!("every{signal}"));
    let state = dir.join("state").display().to_string();
    let file = dir.join("drpilot.prom");
    // us-west-2 silently dead: the breaker finds it within its probe timeout and each
    // round still finishes, saying not ready.
    let cfg = sim_config(&dir, "[regions.us-west-2]\nunreachable_from = \"0s\"\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args([
            "readiness",
            "runbooks/planned-switchover.toml",
            "--sim",
            "--seed",
            "7",
            "--sim-config",
            &cfg,
            "--state",
            &state,
            "--format",
            "prometheus",
            "--every",
            "1s",
            "--output-file",
            file.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drpilot starts");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stamps = Vec::new();
    while stamps.len() < 3 {
        assert!(Instant::now() < deadline, "no third round within 120 s");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("drpilot readiness --every ended early: {status}");
        }
        if let Ok(t) = std::fs::read_to_string(&file) {
            // Always a whole document: the parser takes it, and it ends with the last
            // family's sample.
            let doc = parse_prometheus(&t);
            assert_eq!(value(&doc, "drpilot_ready", "planned-switchover"), 0.0);
            let at = value(
                &doc,
                "drpilot_readiness_timestamp_seconds",
                "planned-switchover",
            );
            if stamps.last() != Some(&at) {
                stamps.push(at);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // No temporary file is left for the textfile collector to see.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".prom"))
        .collect();
    assert_eq!(names, vec!["drpilot.prom".to_string()]);
    let killed = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("readiness: stopped"));
    // The last complete round stays.
    parse_prometheus(&std::fs::read_to_string(&file).unwrap());
}

#[test]
fn the_last_successful_drill_comes_from_the_state_store_and_a_plain_run_is_not_one() {
    let dir = temp("drill");
    let state = dir.join("state").display().to_string();
    let readiness = || {
        let out = drpilot(&[
            "readiness",
            "runbooks/region-failover.toml",
            "runbooks/failback.toml",
            "--sim",
            "--seed",
            "7",
            "--state",
            &state,
            "--format",
            "prometheus",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        parse_prometheus(text(&out.stdout))
    };
    // A run of its own is no drill.
    let out = drpilot(&[
        "run",
        "runbooks/region-failover.toml",
        "--sim",
        "--sim-speed",
        "max",
        "--yes",
        "--state",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = readiness();
    assert!(
        samples(
            &doc,
            "drpilot_last_successful_drill_age_seconds",
            "region-failover"
        )
        .is_empty()
    );

    let out = drpilot(&[
        "drill",
        "runbooks/region-failover.toml",
        "--failback",
        "runbooks/failback.toml",
        "--sim",
        "--sim-speed",
        "max",
        "--yes",
        "--state",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = readiness();
    for rb in ["region-failover", "failback"] {
        let age = value(&doc, "drpilot_last_successful_drill_age_seconds", rb);
        assert!((0.0..600.0).contains(&age), "{rb}: {age}");
        let at = value(&doc, "drpilot_last_successful_drill_timestamp_seconds", rb);
        let checked = value(&doc, "drpilot_readiness_timestamp_seconds", rb);
        assert!(at <= checked, "{at} {checked}");
    }

    // The JSON document names the drill phase's run.
    let out = drpilot(&[
        "readiness",
        "runbooks/region-failover.toml",
        "--sim",
        "--state",
        &state,
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let drill = &doc["runbooks"][0]["last_successful_drill"];
    assert!(
        drill["run_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("region-failover-")),
        "{doc}"
    );
}

/// What CloudWatch holds under `namespace` in `region`, read with boto3 (AWS's own
/// client, not drpilot's SDK path): metric name -> the newest value of each of its
/// dimension sets (`Name=Value,...`).
const BOTO3_METRICS: &str = r#"
import json, sys, datetime, boto3
cw = boto3.client("cloudwatch", region_name=sys.argv[2], endpoint_url=sys.argv[1],
                  aws_access_key_id="AKIDEMULATOR", aws_secret_access_key="emulator-secret")
out = {}
now = datetime.datetime.now(datetime.timezone.utc)
for m in cw.list_metrics(Namespace=sys.argv[3])["Metrics"]:
    dims = ",".join("%s=%s" % (d["Name"], d["Value"]) for d in m["Dimensions"])
    stats = cw.get_metric_statistics(Namespace=sys.argv[3], MetricName=m["MetricName"],
        Dimensions=m["Dimensions"], StartTime=now - datetime.timedelta(hours=1),
        EndTime=now + datetime.timedelta(hours=1), Period=60, Statistics=["Maximum"])
    points = sorted(stats["Datapoints"], key=lambda p: p["Timestamp"])
    out.setdefault(m["MetricName"], {})[dims] = points[-1]["Maximum"] if points else None
print(json.dumps(out))
"#;

#[test]
fn against_the_emulator_a_held_region_costs_a_probe_timeout_and_cloudwatch_gets_the_figures() {
    use super::emulator::{Emulator, params_for, run_drpilot, state_dir};
    let emu = Emulator::start();
    let state = state_dir("readiness");
    let file = "runbooks/region-failover.toml";
    // us-east-1, the region the failover leaves, silently dead: requests get no byte.
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(serde_json::json!({"region": "us-east-1", "mode": "hold", "hold_seconds": 600})),
    );
    let started = Instant::now();
    let out = run_drpilot(
        &emu,
        &state,
        &[
            "readiness",
            file,
            "--format",
            "prometheus",
            "--cloudwatch",
            "Drpilot/Readiness",
        ],
        &params_for(&emu, file),
    );
    let took = started.elapsed();
    emu.call("DELETE", "/_drpilot/blackholes", None);
    assert!(
        took < Duration::from_secs(90),
        "took {took:?}: {}",
        out.stderr
    );
    let doc = parse_prometheus(&out.stdout);
    let rds_use1 = samples(&doc, "drpilot_region_reachable", "region-failover")
        .into_iter()
        .find(|s| s["labels"]["region"] == "us-east-1" && s["labels"]["service"] == "rds")
        .unwrap_or_else(|| panic!("no rds probe of us-east-1: {doc}"))["value"]
        .as_f64();
    assert_eq!(rds_use1, Some(0.0), "{doc}");
    // A failover away from the dark region is still possible.
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(value(&doc, "drpilot_ready", "region-failover"), 1.0);
    assert!(
        !out.stderr.contains("CloudWatch"),
        "the metrics were not put: {}",
        out.stderr
    );

    // The same figures are in CloudWatch in the runbook's first region (params.to).
    let got = Command::new(venv_python())
        .args([
            "-c",
            BOTO3_METRICS,
            &emu.url,
            "us-west-2",
            "Drpilot/Readiness",
        ])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("boto3 runs");
    assert!(got.status.success(), "boto3: {}", text(&got.stderr));
    let metrics: Value = serde_json::from_slice(&got.stdout).expect("JSON");
    assert_eq!(
        metrics["Ready"]["Runbook=region-failover"], 1.0,
        "{metrics}"
    );
    assert_eq!(
        metrics["PredictedRto"]["Runbook=region-failover"].as_f64(),
        Some(value(
            &doc,
            "drpilot_predicted_rto_seconds",
            "region-failover"
        )),
        "{metrics}"
    );
    assert!(
        metrics["PreflightFindings"]["Runbook=region-failover,Severity=block"].is_number(),
        "{metrics}"
    );

    // With us-east-1 back, the source bucket's replication metrics read (both of them,
    // from CloudWatch in its region) and so does the secondary's lag.
    let out = run_drpilot(
        &emu,
        &state,
        &["readiness", file, "--format", "prometheus"],
        &params_for(&emu, file),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = parse_prometheus(&out.stdout);
    assert!(
        value(
            &doc,
            "drpilot_s3_replication_backlog_operations",
            "region-failover"
        ) >= 0.0
    );
    assert!(
        value(
            &doc,
            "drpilot_s3_replication_backlog_bytes",
            "region-failover"
        ) >= 0.0
    );
    assert_eq!(
        samples(
            &doc,
            "drpilot_aurora_replication_lag_seconds",
            "region-failover"
        )
        .len(),
        1,
        "{doc}"
    );
}
