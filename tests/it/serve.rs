//! `drpilot serve` in a real browser: headless Chromium, driven over the DevTools
//! protocol (`support/cdp.py`), keeps one page of a running simulated failover open
//! while the run waits for its approval, is approved from another process and
//! finishes. The page must show the pending approval with the command that gives it,
//! then, without being reloaded, the steps that finished after it and the run's end.
//! The JSON API and the server's refusals are checked over plain HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approvals::Events;
use crate::text;

const CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Stops a child by its own pid when dropped.
struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// `drpilot serve` on a free loopback port over `state`; its base URL.
fn serve(state: &Path) -> (Stop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(["serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drpilot serve starts");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Stop(child), url)
}

/// One HTTP/1.1 request over a plain socket: the status and the body.
fn http(base: &str, method: &str, path: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// A browser tab kept open on one page.
struct Browser {
    /// The driver's input: closing it closes the browser.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    child: Stop,
}

impl Browser {
    fn open(dir: &Path, url: &str) -> Browser {
        let mut child = Command::new("python3")
            .arg(root().join("tests/it/support/cdp.py"))
            .arg(CHROMIUM)
            .arg(dir.join("profile"))
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the DevTools driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            stdin: Some(stdin),
            stdout,
            child: Stop(child),
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        writeln!(self.stdin.as_mut().unwrap(), "{expr}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the DevTools driver ended");
        serde_json::from_str(&line).unwrap_or(Value::Null)
    }

    /// What the page shows: its status, pending approvals, each step's state, and how
    /// many times it updated itself.
    fn seen(&mut self) -> Value {
        self.eval(
            "JSON.stringify({status: (document.getElementById('status')||{}).textContent, \
             waiting: !(document.getElementById('approvals')||{hidden:true}).hidden, \
             pending: (document.getElementById('pending')||{}).innerText || '', \
             steps: Object.fromEntries([...document.querySelectorAll('#steps tbody tr')]\
             .map(r => [r.cells[0].textContent, r.cells[1].textContent])), \
             updates: Number((document.getElementById('updates')||{}).textContent || 0)})",
        )
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
    }

    /// Waits until what the page shows passes `want`.
    fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.seen();
            if want(&v) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the page never showed {what}: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End of input makes the driver close the browser and end; one that does not
        // within 20 s is stopped by its pid (`Stop`).
        self.stdin.take();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_status_page_follows_a_running_failover_through_its_approval() {
    if !Path::new(CHROMIUM).exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{CHROMIUM} is missing under CI=true: scripts/test.sh installs the `chromium` package"
        );
        eprintln!("!!! {CHROMIUM} not found: the status page was NOT checked in a browser");
        return;
    }
    let dir = std::env::temp_dir().join(format!("serve-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");

    let mut run = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .current_dir(root())
        .args(["--color", "never", "run", "runbooks/region-failover.toml"])
        .args(["--sim", "--sim-speed", "max", "--output", "json"])
        .args(["--await-approvals", "3m", "--state"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = Events::of(&mut run);
    let needed = events.until(Duration::from_secs(60), |e| e["event"] == "approval_needed");
    let run_id = needed["run_id"].as_str().unwrap().to_string();
    let run = Stop(run);

    let (_server, base) = serve(&state);
    // The API: the run is live and waits for its approval.
    let (status, body) = http(&base, "GET", &format!("/api/runs/{run_id}"));
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert!(api["live"]["pid"].as_u64().is_some(), "{api:#}");
    assert_eq!(api["pending_approvals"][0]["step"], "approve-failover");
    let (status, body) = http(&base, "GET", "/api/runs");
    assert_eq!(status, 200);
    assert!(
        body.contains(&run_id) && body.contains("\"running\""),
        "{body}"
    );
    // Read-only, and nothing outside the store.
    for (method, path, want) in [
        ("POST", format!("/api/runs/{run_id}"), 405),
        ("DELETE", "/".to_string(), 405),
        ("GET", "/api/runs/..%2Fx".to_string(), 404),
        ("GET", "/api/runs/no-such-run".to_string(), 404),
        ("GET", "/etc/passwd".to_string(), 404),
    ] {
        let (status, body) = http(&base, method, &path);
        assert_eq!(status, want, "{method} {path}: {body}");
    }

    let mut page = Browser::open(&dir, &format!("{base}/runs/{run_id}"));
    let before = page.until("the pending approval", |v| {
        v["waiting"] == true
            && v["status"] == "running"
            && v["pending"]
                .as_str()
                .is_some_and(|p| p.contains("approve-failover") && p.contains("drpilot approve "))
    });
    assert_eq!(
        before["steps"]["aurora-promote"], "not started",
        "{before:#}"
    );
    assert_eq!(
        before["steps"]["approve-failover"], "waiting for approval",
        "{before:#}"
    );
    assert_eq!(before["steps"]["s3-replication"], "succeeded", "{before:#}");
    let pending = before["pending"].as_str().unwrap();
    assert!(
        pending.contains("If you approve now"),
        "the data at risk is shown: {pending}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args([
            "approve",
            &run_id,
            "approve-failover",
            "--yes",
            "--as",
            "alice",
            "--state",
        ])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The same page, not reloaded, follows the run to its end.
    let after = page.until("the run's end", |v| v["status"] == "succeeded");
    assert_eq!(after["waiting"], false, "{after:#}");
    for step in [
        "approve-failover",
        "aurora-promote",
        "valkey-promote",
        "dns-failover",
    ] {
        assert_eq!(after["steps"][step], "succeeded", "{step}: {after:#}");
    }
    assert!(
        after["updates"].as_u64() > before["updates"].as_u64(),
        "{before:#} {after:#}"
    );
    drop(page);
    drop(run);
    let _ = std::fs::remove_dir_all(&dir);
}
