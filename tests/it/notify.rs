//! Notifications (`--notify`, `DRPILOT_NOTIFY`, `[notify] urls_env`) as a run sends
//! them: to receivers these tests start on 127.0.0.1, in order, without a secret; a
//! receiver that hangs or fails changes nothing of the run and is reported; an SNS
//! topic in the simulated world records what was published.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use crate::text;

/// A secret path, as a Slack webhook's token is.
const TOKEN: &str = "T0DRPILOT/B0NOTIFY/xoxbSecretToken42";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drpilot"))
}

fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-it-notify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The chaos suite's canary secrets (chaos/harness/src/harness.rs), set in the run's
/// environment: none may reach a payload, an event, the journal or a report.
fn canaries() -> Vec<(&'static str, String)> {
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "DRPILOT_PG_PASSWORD",
        "DRPILOT_VALKEY_PASSWORD",
        "DRPILOT_DB_PASSWORD",
    ]
    .into_iter()
    .enumerate()
    .map(|(i, k)| (k, format!("chaosCanary{i}xnotifyZq")))
    .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    ServerError,
    /// Accepts and reads the request, never answers.
    Hang,
}

/// A webhook receiver on a free port: records each request's path and body.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let seen = got.clone();
        // The thread ends with the test process; it holds hung connections open.
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((path, body)) = read_request(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push((path, body));
                match answer {
                    Answer::Ok => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                    }
                    Answer::ServerError => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                    }
                    Answer::Hang => held.push(stream),
                }
            }
        });
        Receiver { port, got }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/hooks/{TOKEN}", self.port)
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(path, body)| {
                assert_eq!(path, &format!("/hooks/{TOKEN}"));
                serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
            })
            .collect()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, String::from_utf8(body).ok()?))
}

fn run(state: &Path, runbook: &Path, extra: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["run"])
        .arg(runbook)
        .args([
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "7",
            "--yes",
            "--output",
            "json",
        ])
        .args(extra)
        .arg("--state")
        .arg(state)
        .env_remove("DRPILOT_NOTIFY")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("drpilot runs")
}

fn events(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn finished(events: &[serde_json::Value]) -> &serde_json::Value {
    events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .expect("a run_finished event")
}

/// Everything a run left in its state directory, as text.
fn all_files(dir: &Path) -> String {
    let mut s = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                s.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    s
}

fn assert_no_secret(what: &str, haystack: &str) {
    for secret in [TOKEN, "xoxbSecretToken42", "B0NOTIFY"] {
        assert!(
            !haystack.contains(secret),
            "{what} holds the webhook's token"
        );
    }
    for (k, v) in canaries() {
        assert!(!haystack.contains(&v), "{what} holds the canary of {k}");
    }
}

/// The shipped failover with `[notify]` naming one more variable (unset).
fn runbook_with_notify(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string("runbooks/region-failover.toml").unwrap();
    let path = dir.join("region-failover.toml");
    std::fs::write(
        &path,
        format!("{text}\n[notify]\nurls_env = [\"DR_TEST_SLACK\", \"DR_TEST_UNSET\"]\n"),
    )
    .unwrap();
    path
}

#[test]
fn receivers_get_the_runs_notifications_in_order_and_no_secret() {
    let state = state_dir("order");
    let files = state_dir("order-files");
    let runbook = runbook_with_notify(&files);
    let hook = Receiver::start(Answer::Ok);
    let slack = Receiver::start(Answer::Ok);
    let mut env = canaries();
    env.push(("DR_TEST_SLACK", slack.url("slack+http")));
    env.push(("DR_TEST_UNSET", String::new()));
    // Every line the HTTP client and drpilot log, for the secrets check below.
    env.push(("DRPILOT_LOG", "debug,hyper=trace,hyper_util=trace".into()));
    let out = run(&state, &runbook, &["--notify", &hook.url("http")], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let evs = events(&out);

    // The webhook: the events as documented, plus `text`, in the run's order.
    let got = hook.bodies();
    let names: Vec<&str> = got.iter().map(|b| b["event"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"run_started"), "{names:?}");
    assert_eq!(names.last(), Some(&"run_finished"), "{names:?}");
    let run_id = evs[0]["run_id"].as_str().unwrap();
    for b in &got {
        assert_eq!(b["run_id"], run_id);
        assert!(b["text"].as_str().unwrap().contains(run_id), "{b}");
    }
    // Each notification is the run's own event: same fields, in the same order.
    let sent: Vec<&serde_json::Value> = evs
        .iter()
        .filter(|e| names.contains(&e["event"].as_str().unwrap()) && e["event"] != "attempt_failed")
        .collect();
    let without_text = |b: &serde_json::Value| {
        let mut b = b.clone();
        b.as_object_mut().unwrap().remove("text");
        b
    };
    let from_hook: Vec<serde_json::Value> = got
        .iter()
        .filter(|b| b["event"] != "attempt_failed")
        .map(without_text)
        .collect();
    assert_eq!(
        from_hook,
        sent.into_iter().cloned().collect::<Vec<_>>(),
        "the webhook's notifications are the run's events, in order"
    );
    let started = got[0]["text"].as_str().unwrap();
    assert!(started.contains("predicted RTO"), "{started}");
    assert!(started.contains("us-west-2"), "{started}");

    // Slack: {"text": ...} only, the same messages in the same order.
    let texts: Vec<String> = slack
        .bodies()
        .iter()
        .map(|b| {
            assert_eq!(b.as_object().unwrap().len(), 1, "{b}");
            b["text"].as_str().unwrap().to_string()
        })
        .collect();
    let hook_texts: Vec<String> = got
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, hook_texts);

    // Each delivery is an event, naming the receiver by kind and host only.
    let delivered: Vec<&serde_json::Value> = evs
        .iter()
        .filter(|e| e["event"] == "notification_sent")
        .collect();
    assert_eq!(
        delivered.len(),
        got.len() + texts.len(),
        "{}",
        text(&out.stdout)
    );
    assert!(
        delivered
            .iter()
            .any(|e| e["receiver"] == format!("slack 127.0.0.1:{}", slack.port))
    );
    assert!(
        delivered
            .iter()
            .any(|e| e["receiver"] == format!("webhook 127.0.0.1:{}", hook.port))
    );
    // The unset variable is a preflight warning, not a failure.
    let preflight = evs.iter().find(|e| e["event"] == "preflight").unwrap();
    assert!(
        preflight.to_string().contains("DR_TEST_UNSET is not set"),
        "{preflight}"
    );

    // No secret anywhere.
    let report = Command::new(bin())
        .args(["report", run_id, "--format", "md", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    assert_no_secret("stdout", text(&out.stdout));
    assert_no_secret("stderr", text(&out.stderr));
    assert_no_secret("the state directory", &all_files(&state));
    assert_no_secret("the report", text(&report.stdout));
    for b in got.iter().chain(slack.bodies().iter()) {
        assert_no_secret("a notification", &b.to_string());
    }
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&files);
}

#[test]
fn a_receiver_that_hangs_or_fails_changes_nothing_of_the_run_and_is_reported() {
    let runbook = Path::new("runbooks/region-failover.toml");
    let base_state = state_dir("base");
    let base = run(&base_state, runbook, &[], &[]);
    assert_eq!(base.status.code(), Some(0), "{}", text(&base.stderr));
    let base_end = finished(&events(&base)).clone();

    let hang = Receiver::start(Answer::Hang);
    let broken = Receiver::start(Answer::ServerError);
    let state = state_dir("dead");
    let out = run(
        &state,
        runbook,
        &[
            "--notify",
            &hang.url("http"),
            "--notify",
            &broken.url("http"),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        base.status.code(),
        "{}",
        text(&out.stderr)
    );
    let evs = events(&out);
    let end = finished(&evs);
    assert_eq!(end["outcome"], base_end["outcome"]);
    let (rto, base_rto) = (
        end["rto_secs"].as_f64().unwrap(),
        base_end["rto_secs"].as_f64().unwrap(),
    );
    assert!(
        (rto - base_rto).abs() <= drpilot::notify::ATTEMPT_TIMEOUT.as_secs_f64(),
        "RTO {rto} with dead receivers, {base_rto} without"
    );
    for r in [&hang, &broken] {
        let receiver = format!("webhook 127.0.0.1:{}", r.port);
        let failed: Vec<&serde_json::Value> = evs
            .iter()
            .filter(|e| e["event"] == "notification_failed" && e["receiver"] == receiver)
            .collect();
        assert!(!failed.is_empty(), "no notification_failed for {receiver}");
        assert!(
            !evs.iter()
                .any(|e| e["event"] == "notification_sent" && e["receiver"] == receiver)
        );
        for f in failed {
            assert_no_secret("notification_failed", &f.to_string());
        }
        assert!(
            !r.got.lock().unwrap().is_empty(),
            "{receiver} was never tried"
        );
    }
    // The 500 was retried: at least one notification took every attempt.
    assert!(
        evs.iter().any(|e| e["event"] == "notification_failed"
            && e["error"] == "HTTP 500"
            && e["attempts"] == drpilot::notify::ATTEMPTS),
        "{}",
        text(&out.stdout)
    );
    // The journal, read back, is the stdout's events: resume and reports read it.
    let run_id = evs[0]["run_id"].as_str().unwrap();
    let replay = drpilot::journal::StateDir::at(&state)
        .replay(&drpilot::engine::RunId(run_id.into()))
        .unwrap();
    assert_eq!(replay.events.len(), evs.len());
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&base_state);
}

#[test]
fn an_sns_topic_in_the_simulated_world_records_what_was_published() {
    let state = state_dir("sns");
    let topic = "arn:aws:sns:us-west-2:111122223333:dr-alerts";
    let out = run(
        &state,
        Path::new("runbooks/region-failover.toml"),
        &["--notify", &format!("sns:{topic}")],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let evs = events(&out);
    let run_id = evs[0]["run_id"].as_str().unwrap();
    let world: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("runs").join(run_id).join("world.json")).unwrap(),
    )
    .unwrap();
    let published = world["state"]["published"].as_array().unwrap();
    assert!(published.len() >= 2, "{published:?}");
    for p in published {
        assert_eq!(p["topic_arn"], topic);
        assert_eq!(p["region"], "us-west-2");
        assert!(p["subject"].as_str().unwrap().len() <= 100);
    }
    assert!(
        published[0]["message"]
            .as_str()
            .unwrap()
            .contains("started")
    );
    assert!(
        published.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("succeeded")
    );
    let sent = evs
        .iter()
        .filter(|e| e["event"] == "notification_sent" && e["receiver"] == format!("sns {topic}"))
        .count();
    assert_eq!(sent, published.len());
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_bad_receiver_is_a_usage_error_that_does_not_repeat_its_url() {
    let state = state_dir("bad");
    for (flag, env) in [
        (Some(format!("ftp://hooks.example.com/{TOKEN}")), None),
        (
            None,
            Some(format!("https://ok.example/x gopher://h/{TOKEN}")),
        ),
    ] {
        let mut cmd = Command::new(bin());
        cmd.args([
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--yes",
            "--state",
        ])
        .arg(&state)
        .env_remove("DRPILOT_NOTIFY");
        if let Some(f) = &flag {
            cmd.args(["--notify", f]);
        }
        if let Some(e) = &env {
            cmd.env("DRPILOT_NOTIFY", e);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(if flag.is_some() {
                "--notify"
            } else {
                "DRPILOT_NOTIFY"
            }),
            "{stderr}"
        );
        assert_no_secret("stderr", stderr);
        assert!(!state.join("runs").exists(), "nothing runs");
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// A run paused by a failure, then resumed: each process notifies (the failure and the
/// pause, then the resumption and the end), the results recorded after the pause's
/// `run_finished` do not disturb the resume, and the journal reads back whole.
#[test]
fn a_paused_run_and_its_resumption_both_notify_and_resume_as_usual() {
    let state = state_dir("pause");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = state.join("arc.toml");
    std::fs::write(
        &cfg,
        "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\ntimes = 1\n",
    )
    .unwrap();
    let hook = Receiver::start(Answer::Ok);
    let url = hook.url("http");
    let out = run(
        &state,
        Path::new("runbooks/planned-switchover.toml"),
        &[
            "--sim-config",
            cfg.to_str().unwrap(),
            "--on-failure",
            "pause",
            "--notify",
            &url,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let first = events(&out);
    let run_id = first[0]["run_id"].as_str().unwrap().to_string();
    let resumed = Command::new(bin())
        .args([
            "resume", &run_id, "--retry", "--yes", "--output", "json", "--notify", &url,
        ])
        .arg("--state")
        .arg(&state)
        .env_remove("DRPILOT_NOTIFY")
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let second = events(&resumed);
    assert_eq!(finished(&second)["outcome"], "succeeded");

    let got: Vec<(String, serde_json::Value)> = hook
        .bodies()
        .into_iter()
        .map(|b| (b["event"].as_str().unwrap().to_string(), b))
        .collect();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let at = |name: &str, pick: &dyn Fn(&serde_json::Value) -> bool| {
        got.iter()
            .position(|(n, b)| n == name && pick(b))
            .unwrap_or_else(|| panic!("no {name}: {names:?}"))
    };
    let failed = at("step_failed", &|_| true);
    let paused = at("run_finished", &|b| b["outcome"] == "paused");
    let again = at("run_started", &|b| b["resumed"] == true);
    let done = at("run_finished", &|b| b["outcome"] == "succeeded");
    assert!(
        failed < paused && paused < again && again < done,
        "{names:?}"
    );
    assert!(got[failed].1["text"].as_str().unwrap().contains("failed"));

    // The journal is both processes' events, notifications' results included.
    let replay = drpilot::journal::StateDir::at(&state)
        .replay(&drpilot::engine::RunId(run_id.clone()))
        .unwrap();
    assert_eq!(replay.events.len(), first.len() + second.len());
    let _ = std::fs::remove_dir_all(&state);
}

/// A drill's phases notify too, and a run's end says where the drill writes its report.
#[test]
fn a_drill_notifies_each_phase_and_names_its_report() {
    let state = state_dir("drill");
    let reports = state.join("reports");
    let topic = "arn:aws:sns:us-west-2:111122223333:dr-drills";
    let hook = Receiver::start(Answer::Ok);
    let out = Command::new(bin())
        .args([
            "drill",
            "runbooks/region-failover.toml",
            "--failback",
            "runbooks/failback.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "3",
            "--yes",
            "--output",
            "json",
            "--notify",
            &hook.url("http"),
            "--notify",
            &format!("sns:{topic}"),
            "--report-dir",
        ])
        .arg(&reports)
        .arg("--state")
        .arg(&state)
        .env_remove("DRPILOT_NOTIFY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ends: Vec<serde_json::Value> = hook
        .bodies()
        .into_iter()
        .filter(|b| b["event"] == "run_finished")
        .collect();
    assert_eq!(ends.len(), 2, "one end per phase");
    for end in &ends {
        let run_id = end["run_id"].as_str().unwrap();
        let text = end["text"].as_str().unwrap();
        assert!(
            text.contains(&format!("{}/{run_id}.md", reports.display())),
            "{text}"
        );
        assert!(reports.join(format!("{run_id}.md")).exists(), "{run_id}.md");
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// Headless without `--yes`, the approval step is refused: the receiver hears that an
/// approval is needed (what it unlocks, how to give it), that the step failed, the
/// rollback's start and end, and the end, in that order.
#[test]
fn a_refused_approval_notifies_the_approval_the_failure_and_the_rollback_in_order() {
    let state = state_dir("refused");
    let hook = Receiver::start(Answer::Ok);
    let out = Command::new(bin())
        .args([
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "7",
            "--output",
            "json",
            "--notify",
            &hook.url("http"),
            "--state",
        ])
        .arg(&state)
        .env_remove("DRPILOT_NOTIFY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let got = hook.bodies();
    let names: Vec<&str> = got.iter().map(|b| b["event"].as_str().unwrap()).collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("no {n}: {names:?}"))
    };
    assert_eq!(pos("run_started"), 0, "{names:?}");
    assert!(pos("approval_needed") < pos("step_failed"), "{names:?}");
    assert!(pos("step_failed") < pos("rollback_started"), "{names:?}");
    assert!(
        pos("rollback_started") < pos("rollback_finished"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"run_finished"), "{names:?}");
    let run_id = got[0]["run_id"].as_str().unwrap();
    let approval = got[pos("approval_needed")]["text"].as_str().unwrap();
    assert!(
        approval.contains(&format!("drpilot approve {run_id} approve-failover")),
        "{approval}"
    );
    assert!(approval.contains("unlocks: aurora-promote"), "{approval}");
    let _ = std::fs::remove_dir_all(&state);
}

/// The use the approval notice is for: a headless run waits (`--await-approvals`), the
/// receiver hears it while it waits, and the command the notice names approves it.
#[test]
fn the_approval_notice_arrives_while_the_run_waits_and_its_command_approves_it() {
    let state = state_dir("await");
    let hook = Receiver::start(Answer::Ok);
    let child = Command::new(bin())
        .args([
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "7",
            "--output",
            "json",
            "--await-approvals",
            "2m",
            "--notify",
            &hook.url("http"),
        ])
        .env("DRPILOT_STATE", &state)
        .env_remove("DRPILOT_NOTIFY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (at most a minute) for the notice, as a person would.
    let mut notice = None;
    for _ in 0..600 {
        if let Some(b) = hook
            .bodies()
            .into_iter()
            .find(|b| b["event"] == "approval_needed")
        {
            notice = Some(b);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let notice = notice.expect("the approval notice arrives while the run waits");
    let text_of = notice["text"].as_str().unwrap();
    let command = text_of
        .split('`')
        .find(|s| s.starts_with("drpilot approve "))
        .unwrap_or_else(|| panic!("no approve command in {text_of}"));
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let approved = Command::new(bin())
        .args(&args)
        .args(["--as", "oncall", "--yes"])
        .env("DRPILOT_STATE", &state)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        text(&approved.stderr)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ends: Vec<serde_json::Value> = hook
        .bodies()
        .into_iter()
        .filter(|b| b["event"] == "run_finished")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["outcome"], "succeeded");
    let _ = std::fs::remove_dir_all(&state);
}
