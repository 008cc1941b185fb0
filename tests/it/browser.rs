//! The HTML pages in a real browser: headless Chromium renders the report of a
//! rolled-back run and the `plan --format html` page of the shipped failover, takes a
//! screenshot of each (a valid, non-blank PNG of the window's size) and dumps the DOM it
//! parsed (the SVG and the step names are in it).
//!
//! scripts/test.sh installs Debian's `chromium`. Without it this test fails under
//! `CI=true`; elsewhere it says loudly that it checked nothing and returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::text;

const CHROMIUM: &str = "/usr/bin/chromium";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

/// Whether the browser is there; under CI its absence is a failure, not a skip.
fn chromium_or_skip() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{CHROMIUM} is missing under CI=true: scripts/test.sh installs the `chromium` package"
        );
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! {CHROMIUM} not found: the HTML pages were NOT checked in a browser.\n\
         !!! Install Debian's `chromium` (scripts/test.sh does) to run this test.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// Runs Chromium headless on `page` with `mode` (`--screenshot=...` or `--dump-dom`),
/// with a fresh profile and nothing that reaches the network; kills it (by its own pid)
/// if it takes over 60 s. Returns stdout.
fn chromium(dir: &Path, page: &Path, mode: &str) -> String {
    let profile = dir.join(format!("profile-{}", mode.len()));
    let _ = std::fs::remove_dir_all(&profile);
    let out_path = dir.join(format!("chromium-{}.out", mode.len()));
    let err_path = dir.join(format!("chromium-{}.err", mode.len()));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        // Files, not pipes: a chatty browser cannot block on a full pipe while we wait.
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            // Our own child, by its pid.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {mode} did not finish within 60 s; stderr: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium {mode} exited {status}: {}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::read_to_string(&out_path).unwrap()
}

/// Screenshots `page` and checks the PNG: its signature, an IHDR of the window's size,
/// and enough bytes that it is not a blank page (a white 1280x2000 PNG is ~10 KB).
fn screenshot(dir: &Path, page: &Path) -> PathBuf {
    let png = dir.join(format!(
        "{}.png",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&png);
    chromium(dir, page, &format!("--screenshot={}", png.display()));
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert!(
        bytes.len() > 40_000,
        "{} is only {} bytes: a blank page?",
        png.display(),
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
    png
}

#[test]
fn the_html_report_and_plan_render_in_chromium() {
    if !chromium_or_skip() {
        return;
    }
    let (state, id) = crate::report::rolled_back_run("browser");
    let dir = state.join("pages");
    std::fs::create_dir_all(&dir).unwrap();

    let report = dir.join("report.html");
    std::fs::write(&report, crate::report::report(&state, &id, "html")).unwrap();
    screenshot(&dir, &report);
    let dom = chromium(&dir, &report, "--dump-dom");
    assert!(dom.contains("<svg class=\"gantt\""), "{dom}");
    for step in ["aurora-switchover", "valkey-switchover", "dns-switchover"] {
        assert!(dom.contains(step), "{step} missing from the DOM");
    }
    assert!(dom.contains("Outcome: rolled back (exit 1)"));

    let out = crate::drpilot(&["plan", "runbooks/region-failover.toml", "--format", "html"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = dir.join("plan.html");
    std::fs::write(&plan, &out.stdout).unwrap();
    screenshot(&dir, &plan);
    let dom = chromium(&dir, &plan, "--dump-dom");
    assert!(dom.contains("<svg class=\"dag\""), "{dom}");
    for step in [
        "aurora-promote",
        "approve-failover",
        "dns-failover",
        "api-healthy",
    ] {
        assert!(dom.contains(step), "{step} missing from the DOM");
    }
    // Kept for a person to look at when DRPILOT_KEEP_SCREENSHOTS is set.
    if std::env::var_os("DRPILOT_KEEP_SCREENSHOTS").is_none() {
        let _ = std::fs::remove_dir_all(&state);
    }
}
