//! No credential or secret reaches a log, event, journal, status or report (DESIGN.md
//! invariants), checked on the binary with canary values wherever secrets come from:
//! AWS credentials in the environment, the variables a runbook names by `password_env`,
//! and a URL carrying `user:password@` (refused before anything runs). Logs run at
//! `DRPILOT_LOG=trace --log-format json`, so every line any crate logs is searched,
//! the AWS SDK's identity dumps included.
//!
//! Against AWS, the binary talks to a local server that denies every request and
//! records what it received: the test proves the canary credentials were really
//! loaded and used to sign, so their absence from the output means something.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::events::{Out, drpilot_env, temp_dir};

/// A realistic access key id: `AKIA` and 16 upper-case letters or digits.
const ACCESS_KEY_ID: &str = "AKIACANARYKEY0000042";
/// The part of the key id that must never show (the `AKIA` prefix may).
const ACCESS_KEY_BODY: &str = "CANARYKEY0000042";
const SECRET_ACCESS_KEY: &str = "canarySecretAccessKey0042xyz";
const SESSION_TOKEN: &str = "canarySessionToken0042xyz";
const PG_PASSWORD: &str = "canaryPgPassword0042";
const VALKEY_PASSWORD: &str = "canaryValkeyPassword0042";
const URL_PASSWORD: &str = "canaryUrlPassword0042";

const CANARIES: &[&str] = &[
    ACCESS_KEY_ID,
    ACCESS_KEY_BODY,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    PG_PASSWORD,
    VALKEY_PASSWORD,
    URL_PASSWORD,
];

/// The environment of every command here: the canaries, every log line, and an AWS
/// configuration that reads nothing from this machine.
fn canary_env(dir: &Path) -> Vec<(String, String)> {
    let none = dir.join("no-such-aws-file").to_str().unwrap().to_string();
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("DRPILOT_PG_PASSWORD", PG_PASSWORD),
        ("DRPILOT_VALKEY_PASSWORD", VALKEY_PASSWORD),
        ("DRPILOT_LOG", "trace"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", &none),
        ("AWS_SHARED_CREDENTIALS_FILE", &none),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs drpilot with JSON logs and the canary environment; checks stdout and stderr.
fn run(dir: &Path, what: &str, args: &[&str]) -> Out {
    let env = canary_env(dir);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut full = vec!["--log-format", "json"];
    full.extend_from_slice(args);
    let out = drpilot_env(&full, &env);
    assert_clean(&format!("{what}: stdout"), &out.stdout);
    assert_clean(&format!("{what}: stderr"), &out.stderr);
    out
}

fn assert_clean(what: &str, text: &str) {
    for c in CANARIES {
        if let Some(at) = text.find(c) {
            let line = text[..at].rsplit('\n').next().unwrap_or("").len();
            let start = at - line.min(at);
            let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
            panic!(
                "{what} holds the canary {c}:\n{}",
                &text[start..end.min(start + 2000)]
            );
        }
    }
}

/// Every file under `dir` (journals, runbook copies, worlds, locks).
fn assert_dir_clean(dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files += assert_dir_clean(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert_clean(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
            files += 1;
        }
    }
    files
}

/// `status` (all runs and each run, human and JSON) and `report` (Markdown and JSON) of
/// every run in `state`.
fn status_and_reports(dir: &Path, state: &Path) {
    let s = state.to_str().unwrap();
    let mut ids = Vec::new();
    for output in ["human", "json"] {
        let out = run(dir, "status", &["status", "--state", s, "--output", output]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        if output == "json" {
            for line in out.stdout.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                ids.push(v["run_id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(!ids.is_empty(), "status lists the runs");
    for id in &ids {
        for output in ["human", "json"] {
            let out = run(
                dir,
                "status RUN_ID",
                &["status", id, "--state", s, "--output", output],
            );
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        for format in ["md", "json"] {
            let out = run(
                dir,
                "report",
                &["report", id, "--state", s, "--format", format],
            );
            assert_eq!(out.code, 0, "report {id} --format {format}: {}", out.stderr);
            assert!(!out.stdout.is_empty());
        }
    }
}

/// Stdout's events, for their run ids.
fn run_id(out: &Out) -> String {
    let first: Value = serde_json::from_str(out.stdout.lines().next().expect("events")).unwrap();
    first["run_id"].as_str().unwrap().to_string()
}

#[test]
fn no_secret_reaches_the_output_journal_status_or_report_of_simulated_runs() {
    let dir = temp_dir("secrets-sim");
    let state = dir.join("state");
    let s = state.to_str().unwrap();
    let sim = [
        "--sim",
        "--sim-speed",
        "max",
        "--seed",
        "9",
        "--output",
        "json",
        "--state",
        s,
    ];
    // A successful failover; its data-plane checks name both password variables.
    let mut args = vec!["run", "runbooks/region-failover.toml", "--yes"];
    args.extend_from_slice(&sim);
    let out = run(&dir, "success", &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.lines().count() > 10,
        "trace logging is on: {}",
        out.stderr
    );
    // The data-plane probes fail a few times once the run is under way (after
    // preflight): error paths echo what drivers say.
    let cfg = dir.join("flaky.toml");
    std::fs::write(
        &cfg,
        "[[fault]]\nkind = \"error\"\nservice = \"dataplane\"\noperation = \"Postgres\"\nerror = \"transient\"\ntimes = 2\nfrom = \"1m\"\n\
         [[fault]]\nkind = \"error\"\nservice = \"dataplane\"\noperation = \"Valkey\"\nerror = \"access_denied\"\ntimes = 1\nfrom = \"1m\"\n\
         [[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\ntimes = 1\n",
    )
    .unwrap();
    let mut args = vec![
        "run",
        "runbooks/planned-switchover.toml",
        "--yes",
        "--on-failure",
        "pause",
        "--sim-config",
        cfg.to_str().unwrap(),
    ];
    args.extend_from_slice(&sim);
    let out = run(&dir, "paused", &args);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let id = run_id(&out);
    let out = run(
        &dir,
        "resumed",
        &[
            "resume", &id, "--retry", "--yes", "--output", "json", "--state", s,
        ],
    );
    assert!(matches!(out.code, 0 | 1 | 3), "{}", out.stderr);
    status_and_reports(&dir, &state);
    assert!(
        assert_dir_clean(&state) >= 6,
        "journals, runbooks and worlds were searched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the fake AWS endpoint received.
#[derive(Default)]
struct Seen {
    requests: usize,
    signed_with_canary_key: usize,
    with_canary_token: usize,
}

/// A local HTTP server that denies every request (`AccessDenied`, in JSON for JSON
/// protocols and XML otherwise) and counts how requests were signed. Stopped on drop.
struct DenyAll {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DenyAll {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = s.clone();
                    std::thread::spawn(move || serve(conn, &s));
                }
            }
        });
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for DenyAll {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers every request on one keep-alive connection with 403.
fn serve(conn: TcpStream, seen: &Mutex<Seen>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        let header = |name: &str| {
            head.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        {
            let mut s = seen.lock().unwrap();
            s.requests += 1;
            if header("authorization")
                .is_some_and(|a| a.contains(&format!("Credential={ACCESS_KEY_ID}/")))
            {
                s.signed_with_canary_key += 1;
            }
            if header("x-amz-security-token").as_deref() == Some(SESSION_TOKEN) {
                s.with_canary_token += 1;
            }
        }
        let json = header("content-type").is_some_and(|c| c.contains("json"));
        let (kind, body) = if json {
            (
                "application/json",
                r#"{"__type":"AccessDeniedException","message":"the test endpoint denies everything"}"#,
            )
        } else {
            (
                "text/xml",
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>the test endpoint denies everything</Message></Error><RequestId>0</RequestId></ErrorResponse>",
            )
        };
        let response = format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: {kind}\r\nx-amzn-errortype: AccessDeniedException\r\nx-amzn-requestid: 0\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn no_aws_credential_reaches_the_output_journal_status_or_report_of_aws_runs() {
    let dir = temp_dir("secrets-aws");
    let state = dir.join("state");
    let s = state.to_str().unwrap();
    let aws = DenyAll::start();
    let url = aws.url();
    let out = run(
        &dir,
        "preflight",
        &[
            "preflight",
            "runbooks/planned-switchover.toml",
            "--output",
            "json",
            "--endpoint-url",
            &url,
            "--state",
            s,
        ],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    let out = run(
        &dir,
        "run",
        &[
            "run",
            "runbooks/region-failover.toml",
            "--yes",
            "--output",
            "json",
            "--endpoint-url",
            &url,
            "--state",
            s,
        ],
    );
    assert_eq!(
        out.code, 5,
        "denied everything: preflight fails; {}",
        out.stderr
    );
    // The SDK logged at trace level, and the canaries were really used.
    assert!(
        out.stderr.contains("\"target\":\"aws_"),
        "the AWS SDK's own trace lines are in the log"
    );
    {
        let seen = aws.seen.lock().unwrap();
        assert!(seen.requests > 0, "drpilot called the endpoint");
        assert!(
            seen.signed_with_canary_key > 0 && seen.with_canary_token > 0,
            "the canary credentials signed the requests ({} with the key, {} with the token, of {})",
            seen.signed_with_canary_key,
            seen.with_canary_token,
            seen.requests
        );
    }
    status_and_reports(&dir, &state);
    assert!(assert_dir_clean(&state) >= 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_url_carrying_a_password_is_refused_before_anything_runs_and_never_shown() {
    let dir = temp_dir("secrets-url");
    let state = dir.join("state");
    let s = state.to_str().unwrap();
    let original = std::fs::read_to_string("runbooks/region-failover.toml").unwrap();
    let plain = "url = \"https://api.acme.example/healthz\"";
    assert!(original.contains(plain));
    // In the runbook itself.
    let in_file = dir.join("in-file.toml");
    std::fs::write(
        &in_file,
        original.replace(
            plain,
            &format!("url = \"https://probe:{URL_PASSWORD}@api.acme.example/healthz\""),
        ),
    )
    .unwrap();
    // Through a parameter override.
    let templated = dir.join("templated.toml");
    std::fs::write(
        &templated,
        original.replace(plain, "url = \"{{api_url}}\"").replacen(
            "[params]\n",
            "[params]\napi_url = \"https://api.acme.example/healthz\"\n",
            1,
        ),
    )
    .unwrap();
    let f = in_file.to_str().unwrap();
    let t = templated.to_str().unwrap();
    let param = format!("api_url=https://probe:{URL_PASSWORD}@api.acme.example/healthz");
    let endpoint = format!("http://probe:{URL_PASSWORD}@127.0.0.1:9");
    let ok = run(&dir, "templated without override", &["validate", t]);
    assert_eq!(ok.code, 0, "the templated runbook is valid: {}", ok.stderr);
    for (what, args) in [
        ("validate", vec!["validate", f]),
        ("plan", vec!["plan", f, "--format", "json"]),
        (
            "run",
            vec![
                "run",
                f,
                "--sim",
                "--sim-speed",
                "max",
                "--yes",
                "--state",
                s,
            ],
        ),
        (
            "run --param",
            vec![
                "run",
                t,
                "--sim",
                "--sim-speed",
                "max",
                "--yes",
                "--param",
                &param,
                "--state",
                s,
            ],
        ),
        (
            "preflight --endpoint-url",
            vec!["preflight", t, "--endpoint-url", &endpoint, "--state", s],
        ),
        (
            "run --endpoint-url",
            vec![
                "run",
                t,
                "--yes",
                "--output",
                "json",
                "--endpoint-url",
                &endpoint,
                "--state",
                s,
            ],
        ),
    ] {
        let out = run(&dir, what, &args);
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(
            out.stderr.contains("credential"),
            "{what} says why: {}",
            out.stderr
        );
    }
    // The same through the environment, as the SDK's own variable.
    let env = canary_env(&dir);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("AWS_ENDPOINT_URL", &endpoint));
    let out = drpilot_env(&["preflight", t, "--state", s], &env);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_clean("AWS_ENDPOINT_URL", &out.stderr);
    assert!(!state.join("runs").exists(), "nothing ran");
    let _ = std::fs::remove_dir_all(&dir);
}
