//! Guided mode for real: the binary in a pseudo-terminal (tmux), driven by keystrokes,
//! its screens snapshotted. Each test has its own tmux server on its own socket and
//! stops it by that socket (and its pid), never by name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drpilot"))
}

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        // The test script installs tmux; in CI its absence is a failure, not a pass.
        assert!(
            std::env::var("CI").is_err(),
            "tmux is not installed (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED (not counted as a pass): tmux is not installed");
    }
    found
}

/// One tmux server with one pane running one command.
struct Pane {
    socket: String,
    server_pid: Option<u32>,
}

impl Pane {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Pane {
        let socket = format!("drpilot-it-{name}-{}", std::process::id());
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-s", "s", command])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        let pid = Command::new("tmux")
            .args(["-L", &socket, "display-message", "-p", "#{pid}"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
        Pane {
            socket,
            server_pid: pid,
        }
    }

    /// The visible screen as shown, trailing blanks trimmed.
    fn screen(&self) -> String {
        self.capture(&[])
    }

    /// The screen with wrapped lines joined: what was written, for finding text that
    /// wraps on a narrow pane.
    fn joined(&self) -> String {
        self.capture(&["-J"])
    }

    /// The screen with its colour escapes.
    fn coloured(&self) -> String {
        self.capture(&["-e"])
    }

    fn capture(&self, flags: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "s"])
            .args(flags)
            .output()
            .expect("tmux capture-pane");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        lines[..end].join("\n")
    }

    /// Waits until the screen shows `needle` (and stops changing), up to a minute;
    /// returns the screen as shown.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        // Both captures must show the needle's screen and stay the same over one poll:
        // the output may arrive between two captures.
        let mut last = (String::new(), String::new());
        while Instant::now() < deadline {
            let now = (self.joined(), self.screen());
            if now.0.contains(needle) && now == last {
                return now.1;
            }
            last = now;
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!("the screen never showed {needle:?}; it shows:\n{}", last.0);
    }

    fn send(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "s"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Types a line of text literally, then Enter.
    fn type_line(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "s", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        self.send(&["Enter"]);
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
        if let Some(pid) = self.server_pid {
            // Only if it outlived kill-server: our own server's pid.
            let alive = Command::new("kill")
                .args(["-0", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if alive {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-guided-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A shell command for the pane: drpilot, then its exit code, then a pause so the
/// last screen can be read.
fn command(state: &Path, args: &str) -> String {
    command_with(state, "NO_COLOR=1", args)
}

/// As [`command`], with `env` (e.g. `NO_COLOR=1`) in drpilot's environment.
fn command_with(state: &Path, env: &str, args: &str) -> String {
    format!(
        "cd {root} && env -u NO_COLOR USER=oncall {env} TERM=xterm-256color {bin} {args} --state {state}; echo EXIT=$?; sleep 120",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = bin().display(),
        state = state.display(),
    )
}

/// Run ids and state paths differ per run; everything else on screen is determined by
/// the seed (virtual time).
fn normalize(screen: &str, state: &Path) -> String {
    let mut s = screen.replace(&state.display().to_string(), "[STATE]");
    while let Some(i) = s.find("region-failover-2") {
        // region-failover-YYYYMMDDTHHMMSSZ-xxxx
        let len = s[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(s.len() - i);
        s.replace_range(i..i + len, "[RUN_ID]");
    }
    s
}

/// The Valkey promotion is refused. The standby already has its production capacity
/// range, so the capacity step sends nothing and the Aurora promotion starts beside the
/// Valkey one: when the run stops, it is a change that cannot be undone.
fn faults(state: &Path) -> PathBuf {
    let p = state.join("faults.toml");
    std::fs::write(
        &p,
        "[clusters.acme-prod-usw2]\nmin_acu = 2\nmax_acu = 64\n\n[[fault]]\nkind = \"error\"\nservice = \"elasticache\"\noperation = \"FailoverGlobalReplicationGroup\"\nerror = \"invalid_request\"\n",
    )
    .unwrap();
    p
}

#[test]
fn a_guided_failover_confirms_shows_progress_asks_approval_and_offers_the_failure_menu() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("session");
    let faults = faults(&state);
    let pane = Pane::start(
        "session",
        // Wide enough that no run id or state path wraps (they are normalised away).
        200,
        50,
        &command(
            &state,
            &format!(
                "run runbooks/region-failover.toml --sim --sim-speed max --seed 7 --sim-config {}",
                faults.display()
            ),
        ),
    );
    // 1. Plan and preflight, then the typed confirmation.
    let confirm = pane.wait_for("anything else cancels:");
    assert!(
        confirm.contains("ready: 30 finding(s), 0 blocking"),
        "{confirm}"
    );
    insta::assert_snapshot!("guided-1-confirm", normalize(&confirm, &state));
    pane.type_line("region-failover us-west-2");

    // 2. The approval prompt says what happens next.
    let approval = pane.wait_for("anything else refuses:");
    assert!(approval.contains("Once approved, next:"), "{approval}");
    insta::assert_snapshot!("guided-2-approval", normalize(&approval, &state));
    pane.type_line("approve-failover");

    // 3. Valkey's failover is refused for good: the live view shows where the run
    //    stands, and the menu offers retry / skip / roll back / abort.
    let menu = pane.wait_for("What now?");
    for choice in ["retry", "skip", "roll back", "abort"] {
        assert!(menu.contains(choice), "{choice}: {menu}");
    }
    assert!(menu.contains("✗ valkey-promote"), "{menu}");
    insta::assert_snapshot!("guided-3-failure-menu", normalize(&menu, &state));

    // 4. Skip asks again with a warning; refusing it comes back to the menu.
    pane.send(&["Up", "Up", "Enter"]);
    let warning = pane.wait_for("will run without it");
    assert!(warning.contains("Skip valkey-promote?"), "{warning}");
    pane.send(&["n"]);
    pane.wait_for("What now?");

    // 5. Roll back: the run continues in this process and ends as the journal says.
    pane.send(&["Up", "Enter"]);
    let end = pane.wait_for("EXIT=");
    insta::assert_snapshot!("guided-4-rolled-back", normalize(&end, &state));
    assert!(end.contains("EXIT=3"), "{end}");
    assert!(end.contains("STILL CHANGED   aurora-promote"), "{end}");

    // The journal has the operator's approval and the rollback after the decision.
    let run = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(run.join("journal.ndjson")).unwrap();
    assert!(journal.contains(r#""by":"operator""#), "{journal}");
    assert!(journal.contains(r#""event":"rollback_started""#));
    assert_eq!(journal.matches(r#""event":"run_started""#).count(), 2);
    assert!(journal.contains(r#""resumed":true"#));
}

#[test]
fn anything_but_the_phrase_cancels_and_records_nothing() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("cancel");
    let pane = Pane::start(
        "cancel",
        100,
        30,
        &command(
            &state,
            "run runbooks/region-failover.toml --sim --sim-speed max --seed 3",
        ),
    );
    pane.wait_for("anything else cancels:");
    pane.type_line("yes");
    let end = pane.wait_for("EXIT=");
    assert!(
        end.contains("not confirmed: nothing was changed and no run was recorded"),
        "{end}"
    );
    assert!(end.contains("EXIT=4"), "{end}");
    assert!(
        !state.join("runs").exists()
            || std::fs::read_dir(state.join("runs"))
                .unwrap()
                .next()
                .is_none()
    );
    // The lock was released: a headless run goes ahead.
    let out = Command::new(bin())
        .args([
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
            "--seed",
            "3",
            "--yes",
            "--output",
            "json",
            "--state",
        ])
        .arg(&state)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_live_view_fits_a_narrow_terminal_and_leaves_one_clean_picture() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("narrow");
    // --yes: approvals given, no confirmation; the live view still runs. A real speed
    // (about 8 s for the shipped failover) makes it redraw many times.
    let pane = Pane::start(
        "narrow",
        60,
        40,
        &command(
            &state,
            "run runbooks/region-failover.toml --sim --sim-speed 50 --seed 11 --yes",
        ),
    );
    let end = pane.wait_for("EXIT=");
    assert!(end.contains("EXIT=0"), "{end}");
    // Every step's line appears once in the final picture: a redraw that lost count of
    // its lines would leave stale copies behind.
    for step in [
        "aurora-promote ",
        "valkey-promote ",
        "dns-failover ",
        "cache-resolves ",
    ] {
        let n = end
            .lines()
            .filter(|l| l.starts_with("  ✓ ") && l.contains(step))
            .count();
        assert_eq!(n, 1, "{step}: {end}");
    }
}

#[test]
fn ctrl_c_says_what_it_will_do_then_offers_the_menu() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("interrupt");
    // A real speed (20x): the Ctrl-C lands while Aurora's failover is in progress.
    let pane = Pane::start(
        "interrupt",
        160,
        50,
        &command(
            &state,
            "run runbooks/region-failover.toml --sim --sim-speed 20 --seed 5",
        ),
    );
    pane.wait_for("anything else cancels:");
    pane.type_line("region-failover us-west-2");
    pane.wait_for("anything else refuses:");
    pane.type_line("approve-failover");
    pane.wait_for("▸ aurora-promote");
    pane.send(&["C-c"]);
    let menu = pane.wait_for("What now?");
    let joined = pane.joined();
    assert!(
        joined.contains("interrupt: no new step will start; running steps finish, then you choose: retry, skip, roll back or abort"),
        "{joined}"
    );
    // Nothing failed: the first choice continues the run.
    assert!(
        menu.contains("continue    start the remaining steps"),
        "{menu}"
    );
    assert!(!menu.contains("skip  "), "{menu}");
    // Enter takes the default, abort: everything stays as it is, resumable.
    pane.send(&["Enter"]);
    let end = pane.wait_for("EXIT=");
    assert!(end.contains("EXIT=4"), "{end}");
    let run = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(run.join("journal.ndjson")).unwrap();
    assert!(journal.contains(r#""outcome":"aborted""#), "{journal}");
}

#[test]
fn colours_follow_the_terminal_no_color_and_the_flag() {
    if !tmux_available() {
        return;
    }
    let run = "run runbooks/region-failover.toml --sim --sim-speed max --seed 2 --yes";
    let cases = [
        ("auto", "", run.to_string(), true),
        ("nocolor", "NO_COLOR=1", run.to_string(), false),
        ("never", "", format!("--color never {run}"), false),
    ];
    for (name, env, args, coloured) in cases {
        let state = state_dir(&format!("colour-{name}"));
        let pane = Pane::start(
            &format!("colour-{name}"),
            120,
            40,
            &command_with(&state, env, &args),
        );
        pane.wait_for("EXIT=0");
        // Green ticks (SGR 32) mark finished steps when colours are on.
        let escapes = pane.coloured();
        assert_eq!(
            escapes.contains("\u{1b}[32m"),
            coloured,
            "{name}: {escapes}"
        );
    }
}

#[test]
fn resume_on_a_terminal_asks_what_to_do_with_a_paused_run() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("resume");
    let faults = faults(&state);
    // Headless first: the failure pauses the run (exit 3).
    let out = Command::new(bin())
        .args([
            "run",
            "runbooks/region-failover.toml",
            "--sim",
            "--sim-speed",
            "max",
        ])
        .args([
            "--seed",
            "7",
            "--yes",
            "--on-failure",
            "pause",
            "--output",
            "json",
        ])
        .arg("--sim-config")
        .arg(&faults)
        .arg("--state")
        .arg(&state)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    // Then a person resumes it on a terminal without a decision flag: the menu.
    let pane = Pane::start(
        "resume",
        160,
        60,
        &command(&state, &format!("resume {run_id} --sim-speed max --yes")),
    );
    let menu = pane.wait_for("What now?");
    assert!(
        menu.contains("retry       run valkey-promote again"),
        "{menu}"
    );
    assert!(menu.contains("(aurora-promote cannot be undone)"), "{menu}");
    // Retry: the fault is permanent, so it fails again and (with --yes, not guided)
    // the default policy rolls back.
    pane.send(&["Up", "Up", "Up", "Enter"]);
    let end = pane.wait_for("EXIT=");
    assert!(end.contains("valkey-promote FAILED"), "{end}");
    assert!(end.contains("rolling back "), "{end}");
    // The view starts where the run stood: the steps done before the pause show done.
    assert!(end.contains("✓ aurora-secondary-available"), "{end}");
    assert!(end.contains("EXIT=3"), "{end}");
}

/// An approval from elsewhere in a guided run: while the operator's prompt is on the
/// screen, `drpilot approve` from another process approves the step within seconds,
/// the prompt is withdrawn and the run goes on; the terminal still answers the next
/// prompt's keys (no read of the withdrawn prompt is left behind to take them).
#[test]
fn an_approval_from_another_process_withdraws_the_guided_prompt() {
    if !tmux_available() {
        return;
    }
    let state = state_dir("elsewhere");
    let faults = faults(&state);
    let pane = Pane::start(
        "elsewhere",
        200,
        50,
        &command(
            &state,
            &format!(
                "run runbooks/region-failover.toml --sim --sim-speed max --seed 7 --sim-config {}",
                faults.display()
            ),
        ),
    );
    pane.wait_for("anything else cancels:");
    pane.type_line("region-failover us-west-2");
    let prompt = pane.wait_for("anything else refuses:");
    assert!(
        prompt.contains("Others can approve it with: drpilot approve "),
        "{prompt}"
    );
    let run = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let out = Command::new(bin())
        .args([
            "approve",
            &run,
            "approve-failover",
            "--yes",
            "--as",
            "alice",
            "--state",
        ])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let withdrawn = pane.wait_for("the prompt is withdrawn");
    assert!(
        withdrawn.contains("approve-failover: approved by alice (from the state store)"),
        "{withdrawn}"
    );
    // The Valkey promotion is refused (the faults): the menu answers the keys.
    pane.wait_for("What now?");
    pane.send(&["Up", "Enter"]);
    let end = pane.wait_for("EXIT=");
    assert!(end.contains("EXIT=3"), "{end}");
    let journal =
        std::fs::read_to_string(state.join("runs").join(&run).join("journal.ndjson")).unwrap();
    assert!(
        journal.contains(r#""name":"alice","via":"store""#),
        "{journal}"
    );
    assert!(journal.contains(r#""event":"rollback_started""#));
}
