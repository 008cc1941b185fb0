//! The journal and the lock in S3 (`--state s3://...`), against the AWS emulator's S3
//! (moto, which honours `If-None-Match: *` and `If-Match` on PutObject): racing
//! processes, a frozen holder fenced out, a run resumed from another machine, and a
//! state bucket's region going dark. The runs are simulated (`--sim`): the store is
//! independent of the world, and a simulated failover takes well under a second.
//!
//! Each "machine" is a HOME/XDG_STATE_HOME of its own under /tmp/wt8-*, so nothing
//! is shared between them but the emulator's buckets.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::text;

const RUNBOOK: &str = "runbooks/region-failover.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory standing for one machine's local state (HOME and
/// XDG_STATE_HOME), removed when the test ends.
struct Machine(PathBuf);

impl std::ops::Deref for Machine {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn machine(name: &str) -> Machine {
    let d = PathBuf::from(format!("/tmp/wt8-state-s3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Machine(d)
}

/// One raw S3 request to the emulator (see [`crate::emulator::raw_s3`]).
fn s3(emu: &Emulator, method: &str, path: &str, region: &str, body: &str) -> (u16, String) {
    crate::emulator::raw_s3(emu, "AKIDTEST", method, path, region, body)
}

fn create_bucket(emu: &Emulator, bucket: &str, region: &str) {
    let body = if region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
        )
    };
    let (status, answer) = s3(emu, "PUT", &format!("/{bucket}"), region, &body);
    assert_eq!(status, 200, "CreateBucket {bucket}: {answer}");
}

/// Keys under a prefix (one page is plenty here).
fn list(emu: &Emulator, bucket: &str, prefix: &str) -> Vec<String> {
    let (status, xml) = s3(
        emu,
        "GET",
        &format!("/{bucket}?list-type=2&max-keys=1000&prefix={prefix}"),
        "us-west-2",
        "",
    );
    assert_eq!(status, 200, "{xml}");
    xml.split("<Key>")
        .skip(1)
        .filter_map(|p| p.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// Every journal record of a run in one bucket, in order.
fn records(emu: &Emulator, bucket: &str, prefix: &str, run: &str) -> Vec<Value> {
    list(emu, bucket, &format!("{prefix}/runs/{run}/journal/"))
        .iter()
        .map(|k| {
            let (status, body) = s3(emu, "GET", &format!("/{bucket}/{k}"), "us-west-2", "");
            assert_eq!(status, 200, "{k}: {body}");
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{k}: {e}: {body}"))
        })
        .collect()
}

/// The runs under a prefix (ListObjectsV2 with a delimiter: one entry per run).
fn runs(emu: &Emulator, bucket: &str, prefix: &str) -> Vec<String> {
    let (status, xml) = s3(
        emu,
        "GET",
        &format!("/{bucket}?list-type=2&max-keys=1000&delimiter=/&prefix={prefix}/runs/"),
        "us-west-2",
        "",
    );
    assert_eq!(status, 200, "{xml}");
    xml.split("<CommonPrefixes><Prefix>")
        .skip(1)
        .filter_map(|p| p.split("</Prefix>").next())
        .filter_map(|p| p.split('/').nth(2).map(str::to_string))
        .collect()
}

/// drpilot on one "machine", its state in the emulator's S3.
fn drpilot(emu: &Emulator, home: &Path, lease: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_drpilot")));
    cmd.current_dir(root())
        .args(["--color", "never"])
        .args(args)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home)
        .env("AWS_ACCESS_KEY_ID", "AKIDEMULATOR")
        .env("AWS_SECRET_ACCESS_KEY", "emulator-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &emu.url)
        .env("DRPILOT_LOCK_LEASE", lease)
        .env_remove("AWS_PROFILE")
        .env_remove("DRPILOT_STATE")
        .env_remove("NO_COLOR");
    cmd
}

fn run_args<'a>(state: &'a [&'a str], speed: &'a str) -> Vec<&'a str> {
    run_file_args(RUNBOOK, state, speed)
}

fn run_file_args<'a>(file: &'a str, state: &'a [&'a str], speed: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "run",
        file,
        "--sim",
        "--sim-speed",
        speed,
        "--yes",
        "--output",
        "json",
    ];
    for s in state {
        a.extend(["--state", s]);
    }
    a
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

/// Waits until the run's journal in `bucket` has at least `n` records; the run id.
fn wait_for_records(emu: &Emulator, bucket: &str, prefix: &str, n: usize, a: &mut Child) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(run) = runs(emu, bucket, prefix).first()
            && records(emu, bucket, prefix, run).len() >= n
        {
            return run.clone();
        }
        if let Ok(Some(status)) = a.try_wait() {
            panic!("the run ended ({status}) before it wrote {n} records");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no {n} records in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child`, reading its output meanwhile: a run's NDJSON events outgrow a
/// pipe's buffer, and a child blocked writing to a full pipe never ends.
fn wait_exit(child: &mut Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut out);
            }
            out
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output {
                status,
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            };
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event_name(r: &Value) -> Option<&str> {
    r["event"]["event"].as_str()
}

fn step_of(r: &Value) -> Option<&str> {
    r["event"]["step"].as_str()
}

/// No step started again after it succeeded, and none succeeded twice.
fn assert_no_step_ran_twice(recs: &[Value]) {
    let mut done = std::collections::BTreeSet::new();
    for r in recs {
        let (Some(ev), Some(step)) = (event_name(r), step_of(r)) else {
            continue;
        };
        match ev {
            "step_started" | "executed" => {
                assert!(
                    !done.contains(step),
                    "{step} ran again after it succeeded: {r}"
                );
            }
            "step_succeeded" => {
                assert!(done.insert(step.to_string()), "{step} succeeded twice");
            }
            _ => {}
        }
    }
}

fn outcome(recs: &[Value]) -> Option<String> {
    recs.iter()
        .rev()
        .find(|r| event_name(r) == Some("run_finished"))
        .and_then(|r| r["event"]["outcome"].as_str().map(str::to_string))
}

#[test]
fn of_two_racing_processes_exactly_one_runs_and_the_other_exits_6_naming_it_100_times() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-race", "us-east-1");
    let (a, b) = (machine("race-a"), machine("race-b"));
    let state = ["s3://wt8-race/team"];
    let args = run_args(&state, "max");
    let t0 = Instant::now();
    for round in 0..100 {
        let start = |home: &Path| {
            drpilot(&emu, home, "30s", &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("drpilot starts")
        };
        let (mut pa, mut pb) = (start(&a), start(&b));
        let (oa, ob) = (
            wait_exit(&mut pa, Duration::from_secs(60)),
            wait_exit(&mut pb, Duration::from_secs(60)),
        );
        let mut codes = [oa.status.code(), ob.status.code()];
        codes.sort();
        assert_eq!(
            codes,
            [Some(0), Some(6)],
            "round {round}: a: {}\nb: {}",
            text(&oa.stderr),
            text(&ob.stderr)
        );
        let (winner, loser) = if oa.status.code() == Some(0) {
            (&oa, &ob)
        } else {
            (&ob, &oa)
        };
        let first: Value = serde_json::from_str(
            text(&winner.stdout)
                .lines()
                .next()
                .expect("the winner prints events"),
        )
        .unwrap();
        let winner_id = first["run_id"].as_str().unwrap();
        let said = text(&loser.stderr);
        assert!(
            said.contains(&format!("is locked by run {winner_id}")),
            "round {round}: the loser must name the holder {winner_id}: {said}"
        );
        assert!(loser.stdout.is_empty(), "the loser ran nothing");
        // The only state bucket is in us-east-1, which the runbook fails away from.
        let out = text(&winner.stdout);
        assert!(
            out.contains("is only in us-east-1, the region this runbook fails away from"),
            "round {round}: preflight must warn: {out}"
        );
    }
    // 100 runs: one per race, none from a loser.
    assert_eq!(runs(&emu, "wt8-race", "team").len(), 100);
    eprintln!("100 races in {:?}", t0.elapsed());
}

#[test]
fn a_holder_frozen_past_its_lease_cannot_write_after_another_process_took_over() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-fence", "us-west-2");
    let (a, b) = (machine("fence-a"), machine("fence-b"));
    let state = ["s3://wt8-fence/team?region=us-west-2"];
    // Slow enough that the run is still going when it is frozen.
    let mut pa = drpilot(&emu, &a, "2s", &run_args(&state, "5"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_for_records(&emu, "wt8-fence", "team", 8, &mut pa);
    signal(&pa, "-STOP");
    let frozen_at = records(&emu, "wt8-fence", "team", &run).len();
    std::thread::sleep(Duration::from_secs(3));
    // B takes the run over explicitly and completes it.
    let out = drpilot(
        &emu,
        &b,
        "2s",
        &[
            "resume",
            &run,
            "--state",
            state[0],
            "--break-stale-lock",
            "--sim-speed",
            "max",
            "--yes",
            "--output",
            "json",
        ],
    )
    .output()
    .unwrap();
    let b_said = text(&out.stderr).to_string();
    if out.status.code() != Some(0) {
        signal(&pa, "-CONT");
        let _ = pa.kill();
        panic!("B did not complete: {b_said}");
    }
    let after_b = records(&emu, "wt8-fence", "team", &run);
    signal(&pa, "-CONT");
    let oa = wait_exit(&mut pa, Duration::from_secs(120));
    let a_said = text(&oa.stderr);
    assert_eq!(
        oa.status.code(),
        Some(6),
        "A must stop with exit 6: {a_said}"
    );
    assert!(
        a_said.contains("lost the lock") || a_said.contains("lost the run"),
        "{a_said}"
    );
    let recs = records(&emu, "wt8-fence", "team", &run);
    assert_eq!(recs.len(), after_b.len(), "A wrote after it woke: {recs:?}");
    // The takeover record, then only B's token.
    let takeover = recs
        .iter()
        .position(|r| r["record"] == "lock")
        .expect("a lock record");
    assert!(takeover >= frozen_at);
    let (old, new) = (recs[0]["token"].as_u64(), recs[takeover]["token"].as_u64());
    assert!(new > old, "{old:?} -> {new:?}");
    // The run's own resumption: a takeover of A's lease, not a break of another run's.
    assert_eq!(recs[takeover]["broken"], json!(false), "{}", recs[takeover]);
    assert_eq!(
        recs[takeover]["replaced"]["pid"].as_u64(),
        Some(u64::from(pa.id())),
        "the lock record names whom it replaced: {}",
        recs[takeover]
    );
    for r in &recs[takeover..] {
        assert_eq!(r["token"].as_u64(), new, "a record of an older token: {r}");
    }
    assert_eq!(outcome(&recs).as_deref(), Some("succeeded"));
    assert_no_step_ran_twice(&recs);
}

#[test]
fn a_run_killed_on_one_machine_is_resumed_from_another_through_s3_without_a_step_twice() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-resume", "us-west-2");
    let (a, b) = (machine("resume-a"), machine("resume-b"));
    let state = ["s3://wt8-resume/team?region=us-west-2"];
    // The runbook is on machine A only: B resumes from the run's copy in S3.
    let file = a.join("region-failover.toml");
    std::fs::copy(root().join(RUNBOOK), &file).unwrap();
    let file = file.to_str().unwrap().to_string();
    let mut pa = drpilot(&emu, &a, "30s", &run_file_args(&file, &state, "5"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = wait_for_records(&emu, "wt8-resume", "team", 12, &mut pa);
    pa.kill().unwrap(); // SIGKILL
    pa.wait().unwrap();
    std::fs::remove_dir_all(&*a).unwrap(); // machine A is gone
    let before = records(&emu, "wt8-resume", "team", &run);
    assert_eq!(outcome(&before), None, "killed mid-run");
    // Machine B has no local state at all.
    let out = drpilot(
        &emu,
        &b,
        "30s",
        &[
            "resume",
            &run,
            "--state",
            state[0],
            "--sim-speed",
            "max",
            "--yes",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("resuming from the run's copy"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !b.join("drpilot").exists(),
        "machine B keeps nothing locally"
    );
    let recs = records(&emu, "wt8-resume", "team", &run);
    assert_eq!(outcome(&recs).as_deref(), Some("succeeded"));
    // No credential reaches the shared state.
    for r in &recs {
        let t = r.to_string();
        assert!(
            !t.contains("emulator-secret") && !t.contains("AKIDEMULATOR"),
            "{t}"
        );
    }
    let (_, lock) = s3(
        &emu,
        "GET",
        "/wt8-resume/team/locks/region-failover.lock",
        "us-west-2",
        "",
    );
    assert!(
        lock.contains("\"released\":true"),
        "released after success: {lock}"
    );
    assert!(!lock.contains("emulator-secret"), "{lock}");
    assert_no_step_ran_twice(&recs);
    // The simulated world travelled in the journal: each failover was applied once.
    let world = recs
        .iter()
        .rev()
        .find_map(|r| r.get("world"))
        .expect("records carry the world");
    let ops: Vec<&str> = world["state"]["log"]
        .as_array()
        .expect("the world's operation log")
        .iter()
        .filter_map(|o| o["operation"].as_str())
        .collect();
    for op in ["FailoverGlobalCluster", "FailoverGlobalReplicationGroup"] {
        assert_eq!(
            ops.iter().filter(|o| **o == op).count(),
            1,
            "{op} in {ops:?}"
        );
    }
    // status and report from a third machine.
    let c = machine("resume-c");
    let status = drpilot(&emu, &c, "30s", &["status", &run, "--state", state[0]])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("succeeded"),
        "{}",
        text(&status.stdout)
    );
    let report = drpilot(
        &emu,
        &c,
        "30s",
        &["report", &run, "--state", state[0], "--format", "json"],
    )
    .output()
    .unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let doc: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(doc["run_id"], json!(run));
}

#[test]
fn with_the_primary_state_buckets_region_dark_the_run_goes_on_in_the_other() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-dark-use1", "us-east-1");
    create_bucket(&emu, "wt8-dark-usw2", "us-west-2");
    let a = machine("dark-a");
    let state = [
        "s3://wt8-dark-use1/team?region=us-east-1",
        "s3://wt8-dark-usw2/team?region=us-west-2",
    ];
    let mut pa = drpilot(&emu, &a, "3s", &run_args(&state, "10"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_for_records(&emu, "wt8-dark-use1", "team", 6, &mut pa);
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(json!({"region": "us-east-1", "mode": "reset"})),
    );
    let out = wait_exit(&mut pa, Duration::from_secs(120));
    let said = text(&out.stderr).to_string();
    // Read while us-east-1 is still dark: only us-west-2 answers.
    let second = records(&emu, "wt8-dark-usw2", "team", &run);
    let b = machine("dark-b");
    let status = drpilot(
        &emu,
        &b,
        "3s",
        &["status", &run, "--state", state[0], "--state", state[1]],
    )
    .output()
    .unwrap();
    let report = drpilot(
        &emu,
        &b,
        "3s",
        &[
            "report", &run, "--state", state[0], "--state", state[1], "--format", "json",
        ],
    )
    .output()
    .unwrap();
    emu.call("DELETE", "/_drpilot/blackholes", None);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        !text(&out.stdout).contains("the region this runbook fails away from; add a state bucket"),
        "a bucket in us-west-2 too: no warning"
    );
    assert_eq!(outcome(&second).as_deref(), Some("succeeded"));
    let first = records(&emu, "wt8-dark-use1", "team", &run);
    assert!(
        first.len() < second.len(),
        "the dark bucket missed the records after the blackhole: {} vs {}",
        first.len(),
        second.len()
    );
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("succeeded"),
        "{}",
        text(&status.stdout)
    );
    assert!(
        text(&status.stderr).contains("not read: s3://wt8-dark-use1"),
        "{}",
        text(&status.stderr)
    );
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let doc: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(doc["outcome"].to_string().contains("succeeded"), "{doc}");
    // The stdout of the run is its events, every one acknowledged.
    let printed = BufReader::new(&out.stdout[..]).lines().count();
    assert!(printed > 0);
}

/// Issue 16: a state bucket whose region holds requests (no answer: a real outage)
/// must not hold the run. Its region is probed when the store opens; the lock and the
/// journal go on in the other bucket within a 3 s lease, which a write waiting out its
/// deadline on the dark bucket (10 s) would have lost.
#[test]
fn with_a_state_buckets_region_held_dark_the_run_keeps_its_lease_in_the_other() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt16-held-use1", "us-east-1");
    create_bucket(&emu, "wt16-held-usw2", "us-west-2");
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(
            json!({"region": "us-east-1", "mode": "hold", "hold_seconds": 60, "services": ["s3"]}),
        ),
    );
    let a = machine("held-a");
    let state = [
        "s3://wt16-held-use1/team?region=us-east-1",
        "s3://wt16-held-usw2/team?region=us-west-2",
    ];
    let mut pa = drpilot(&emu, &a, "3s", &run_args(&state, "max"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_exit(&mut pa, Duration::from_secs(120));
    let said = text(&out.stderr).to_string();
    emu.call("DELETE", "/_drpilot/blackholes", None);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("state bucket left out"), "{said}");
    assert!(said.contains("us-east-1 s3 unreachable"), "{said}");
    let printed = BufReader::new(&out.stdout[..]).lines().count();
    let run = runs(&emu, "wt16-held-usw2", "team");
    assert_eq!(run.len(), 1, "{run:?}");
    let recs = records(&emu, "wt16-held-usw2", "team", &run[0]);
    assert_eq!(outcome(&recs).as_deref(), Some("succeeded"));
    // Every event acknowledged on stdout is in the bucket that answered (the header is
    // record 0; `lock` records may follow a takeover, none here).
    assert_eq!(
        recs.len(),
        printed + 1,
        "{} records, {printed} events",
        recs.len()
    );
    assert_no_step_ran_twice(&recs);
    assert!(
        records(&emu, "wt16-held-use1", "team", &run[0]).is_empty(),
        "nothing reached the dark bucket"
    );
}

#[test]
fn bad_state_locations_and_missing_buckets_are_clear_errors() {
    let emu = Emulator::start();
    let a = machine("bad");
    for (url, code, says) in [
        ("s3://Bad_Bucket/x", 2, "not a bucket name"),
        ("s3://wt8-nope/x?region=moon-1", 2, "not an AWS region"),
        ("s3://wt8-missing/team?region=us-east-1", 2, "wt8-missing"),
    ] {
        let out = drpilot(&emu, &a, "30s", &run_args(&[url], "max"))
            .output()
            .unwrap();
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {said}");
        assert!(said.contains(says), "{url}: {said}");
        assert!(!said.contains("panicked"), "{said}");
        assert!(!said.contains("emulator-secret"), "{said}");
    }
}

#[test]
fn a_corrupted_or_missing_record_in_s3_is_refused_by_status_resume_and_report() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-corrupt", "us-west-2");
    let a = machine("corrupt");
    let state = ["s3://wt8-corrupt/team?region=us-west-2"];
    let out = drpilot(&emu, &a, "30s", &run_args(&state, "max"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run = runs(&emu, "wt8-corrupt", "team").remove(0);
    let key = format!("/wt8-corrupt/team/runs/{run}/journal/0000000003.json");
    let check = |says: &str| {
        for cmd in [
            vec!["status", run.as_str(), "--state", state[0]],
            vec!["report", run.as_str(), "--state", state[0]],
            vec!["resume", run.as_str(), "--state", state[0], "--yes"],
        ] {
            let out = drpilot(&emu, &a, "30s", &cmd).output().unwrap();
            let said = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd:?}: {said}");
            assert!(said.contains(says), "{cmd:?}: {said}");
            assert!(out.stdout.is_empty(), "{cmd:?}");
        }
    };
    let (status, _) = s3(&emu, "PUT", &key, "us-west-2", "{\"seq\":3,");
    assert_eq!(status, 200);
    check("0000000003.json is corrupted: not a journal record");
    let (status, _) = s3(&emu, "DELETE", &key, "us-west-2", "");
    assert_eq!(status, 204);
    check("record 3 is missing");
}

#[test]
fn a_simulated_drill_keeps_its_lock_and_both_runs_in_s3() {
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-drill", "us-west-2");
    let a = machine("drill");
    let state = "s3://wt8-drill/team?region=us-west-2";
    let out = drpilot(
        &emu,
        &a,
        "30s",
        &[
            "drill",
            RUNBOOK,
            "--failback",
            "runbooks/failback.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--yes",
            "--state",
            state,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ids = runs(&emu, "wt8-drill", "team");
    assert_eq!(ids.len(), 2, "the failover and the failback: {ids:?}");
    for id in &ids {
        assert_eq!(
            outcome(&records(&emu, "wt8-drill", "team", id)).as_deref(),
            Some("succeeded"),
            "{id}"
        );
    }
    let locks = list(&emu, "wt8-drill", "team/locks/");
    assert!(
        locks
            .iter()
            .any(|k| k.ends_with("drill-region-failover.lock")),
        "{locks:?}"
    );
    assert!(!a.join("drpilot").exists(), "nothing kept locally");
    // plan --history reads the same store.
    let plan = drpilot(
        &emu,
        &a,
        "30s",
        &["plan", RUNBOOK, "--history", "--state", state],
    )
    .output()
    .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("Predicted RTO from history") && !shown.contains("no earlier run"),
        "{shown}"
    );
}

/// Issue 20: approvals from elsewhere through S3. A headless run waiting on a
/// two-person approval goes on after two `drpilot approve` calls from two other
/// machines (each recorded with its AWS caller identity), and another run is refused
/// by `drpilot deny`. The decisions are objects under the run's prefix.
#[test]
fn approvals_from_two_other_machines_through_s3_let_a_run_go_on_and_a_denial_stops_one() {
    use crate::approvals::{Events, STEP, two_person_runbook};
    let emu = Emulator::start();
    create_bucket(&emu, "wt8-approve", "us-west-2");
    let (a, b, c) = (machine("appr-a"), machine("appr-b"), machine("appr-c"));
    let state = "s3://wt8-approve/team?region=us-west-2";
    let file = two_person_runbook(&a);
    let file = file.to_str().unwrap().to_string();
    let start = |extra: &[&str]| {
        let mut args = vec![
            "run",
            file.as_str(),
            "--sim",
            "--sim-speed",
            "max",
            "--output",
            "json",
            "--state",
            state,
            "--await-approvals",
            "2m",
        ];
        args.extend_from_slice(extra);
        drpilot(&emu, &a, "30s", &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut run = start(&[]);
    let mut events = Events::of(&mut run);
    let needed = events.until(Duration::from_secs(90), |e| e["event"] == "approval_needed");
    let run_id = needed["run_id"].as_str().unwrap().to_string();
    for (home, name) in [(&b, "alice"), (&c, "bob")] {
        let out = drpilot(
            &emu,
            home,
            "30s",
            &[
                "approve", &run_id, STEP, "--as", name, "--yes", "--state", state,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let approved = events.until(Duration::from_secs(60), |e| e["event"] == "approved");
    let people = approved["approvers"].as_array().unwrap();
    let names: Vec<&str> = people.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"], "{approved}");
    for p in people {
        assert!(
            p["aws_identity"]
                .as_str()
                .is_some_and(|a| a.starts_with("arn:aws:")),
            "{p}"
        );
    }
    let out = wait_exit(&mut run, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let decisions = list(
        &emu,
        "wt8-approve",
        &format!("team/runs/{run_id}/approvals/{STEP}/"),
    );
    assert_eq!(decisions.len(), 2, "{decisions:?}");

    // The next run is denied from a third machine.
    let mut run = start(&[]);
    let mut events = Events::of(&mut run);
    let needed = events.until(Duration::from_secs(90), |e| e["event"] == "approval_needed");
    let run_id = needed["run_id"].as_str().unwrap().to_string();
    let out = drpilot(
        &emu,
        &c,
        "30s",
        &[
            "deny",
            &run_id,
            STEP,
            "--as",
            "carol",
            "--reason",
            "not during the sale",
            "--state",
            state,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let failed = events.until(Duration::from_secs(60), |e| e["event"] == "step_failed");
    assert_eq!(
        failed["error"],
        "step `approve-failover` was denied by carol: not during the sale"
    );
    let out = wait_exit(&mut run, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}
