//! The outage tax: how much longer the shipped failover takes to move traffic when the
//! region it leaves is silently down (requests held without an answer) than when every
//! region is up. DESIGN.md's target: at most 1.25x, and the dead region detected and
//! reported within 10 s of the run's start.
//!
//! Against the AWS emulator (`chaos/emulator`, started here on a free 127.0.0.1 port and
//! stopped by its pid), through the real SDK: `drpilot run runbooks/region-failover.toml
//! --yes --output json` with the seeded ids as `--param`s and the data-plane steps
//! skipped (the emulator has no databases), the emulator clock at the same speed for
//! both kinds of run (`DRPILOT_BENCH_CLOCK`, default 4). "Traffic moved" is the moment
//! the emulator shows the ARC routing controls flipped (cell-usw2 On, cell-use1 Off:
//! what moves every failover record's DNS answer), polled every 50 ms from outside,
//! timed from the process's start. After each run the writer, the cache primary and the
//! cells are checked in us-west-2 from the emulator's own state, and the exit code must
//! be 0. `hold` blackholes us-east-1 before the run starts (`mode: hold`: requests are
//! held open without a byte for 60 s, then closed).
//!
//! Run with `cargo bench --bench outage` (`DRPILOT_BENCH_REPS` runs of each kind,
//! default 3; medians compared). Under `cargo test` it measures nothing and says so.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drpilot::runbook;
use drpilot_chaos::emulator::{self, Emulator};
use serde_json::{Value, json};

const RUNBOOK: &str = "runbooks/region-failover.toml";

struct Measured {
    /// From the process's start until the cells had flipped.
    moved: Duration,
    /// From the process's start until the first `region_status` saying us-east-1 is
    /// unreachable was printed (hold runs).
    detected: Option<Duration>,
    exit: i32,
    deferred: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cells_flipped(emu: &Emulator, seed: &Value) -> bool {
    let Ok(arc) = emu.call("GET", "/_drpilot/arc", None) else {
        return false;
    };
    let state = |name: &str| {
        let arn = seed["arc"]["routing_controls"][name]["arn"]
            .as_str()
            .unwrap_or_default();
        arc["routing_controls"][arn]["State"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    state("cell-usw2") == "On" && state("cell-use1") == "Off"
}

fn one(emu: &Emulator, clock: f64, hold: bool, state: &Path) -> Measured {
    let seed = emu.fresh(7).expect("the emulator resets and seeds");
    emu.call("POST", "/_drpilot/clock", Some(json!({ "speed": clock })))
        .expect("clock speed");
    if hold {
        emu.call(
            "POST",
            "/_drpilot/blackholes",
            Some(json!({"region": "us-east-1", "mode": "hold", "hold_seconds": 60})),
        )
        .expect("blackhole");
    }
    let rb = runbook::load(&root().join(RUNBOOK))
        .expect("the shipped runbook loads")
        .runbook;
    let _ = std::fs::remove_dir_all(state);
    let mut args: Vec<String> = vec![
        "run".into(),
        RUNBOOK.into(),
        "--yes".into(),
        "--output".into(),
        "json".into(),
        "--endpoint-url".into(),
        emu.url.clone(),
        "--state".into(),
        state.display().to_string(),
    ];
    for (k, v) in emulator::params_for(&seed, &rb) {
        args.extend(["--param".into(), format!("{k}={v}")]);
    }
    for s in emulator::data_plane_steps(&rb) {
        args.extend(["--skip-step".into(), s]);
    }
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(&args)
        .current_dir(root())
        .env("AWS_ACCESS_KEY_ID", "AKIDOUTAGEBENCH00000")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drpilot runs");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send((Instant::now(), v));
            }
        }
    });
    let mut moved = None;
    let mut detected = None;
    let mut deferred = Vec::new();
    let exit = loop {
        while let Ok((at, e)) = rx.try_recv() {
            if detected.is_none()
                && e["event"] == "region_status"
                && e["region"] == "us-east-1"
                && e["status"] == "unreachable"
            {
                detected = Some(at.duration_since(start));
            }
            if e["event"] == "run_finished" {
                deferred = e["deferred"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect();
            }
        }
        if moved.is_none() && cells_flipped(emu, &seed) {
            moved = Some(start.elapsed());
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "a run took over 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok((at, e)) = rx.recv_timeout(Duration::from_millis(200)) {
        if detected.is_none()
            && e["event"] == "region_status"
            && e["region"] == "us-east-1"
            && e["status"] == "unreachable"
        {
            detected = Some(at.duration_since(start));
        }
        if e["event"] == "run_finished" {
            deferred = e["deferred"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect();
        }
    }
    // What the emulator itself says moved (its state, read with the region lifted).
    emu.call("DELETE", "/_drpilot/blackholes", None).ok();
    let world = emulator::read_world(emu, &seed).expect("the emulator's state");
    assert_eq!(
        world["global_cluster:acme-prod"]["writers"],
        json!(["us-west-2"]),
        "{world:?}"
    );
    let ds = &world["datastore:ldgnf-acme-sessions"];
    assert!(
        ds["primary"] == json!(["us-west-2"]) || ds["members"] == json!(["us-east-1"]),
        "the cache primary moved or the us-west-2 member stands alone: {ds}"
    );
    assert_eq!(world["routing_control:cell-usw2"], "On");
    assert_eq!(world["routing_control:cell-use1"], "Off");
    Measured {
        moved: moved.expect("traffic moved"),
        detected,
        exit,
        deferred,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "outage: measures nothing under `cargo test` (it runs the failover against the AWS emulator for minutes); run `cargo bench --bench outage`"
        );
        return;
    }
    let clock: f64 = std::env::var("DRPILOT_BENCH_CLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    let reps: usize = std::env::var("DRPILOT_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let emu = Emulator::start(&root()).expect("the emulator starts");
    let state = std::env::temp_dir().join(format!("drpilot-outage-bench-{}", std::process::id()));
    println!("outage: emulator clock x{clock}, {reps} runs of each kind, runbook {RUNBOOK}");
    println!(
        "{:<6} {:>3}  {:>13}  {:>13}  {:>4}  deferred",
        "kind", "#", "traffic moved", "detected", "exit"
    );
    let mut up = Vec::new();
    let mut held = Vec::new();
    let mut detections = Vec::new();
    for rep in 1..=reps {
        for hold in [false, true] {
            let m = one(&emu, clock, hold, &state);
            assert_eq!(m.exit, 0, "the failover exits 0");
            println!(
                "{:<6} {:>3}  {:>12.1}s  {:>13}  {:>4}  {}",
                if hold { "hold" } else { "up" },
                rep,
                m.moved.as_secs_f64(),
                m.detected
                    .map_or_else(|| "-".to_string(), |d| format!("{:.1}s", d.as_secs_f64())),
                m.exit,
                m.deferred.join(",")
            );
            if hold {
                held.push(m.moved.as_secs_f64());
                detections.push(
                    m.detected
                        .expect("a held us-east-1 is reported unreachable")
                        .as_secs_f64(),
                );
            } else {
                up.push(m.moved.as_secs_f64());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&state);
    let (u, h) = (median(up), median(held));
    let worst_detect = detections.iter().copied().fold(0.0, f64::max);
    println!(
        "outage: traffic moved in {u:.1}s with every region up, {h:.1}s with us-east-1 held (medians): {:.3}x (target <= 1.25x); unreachable reported at most {worst_detect:.1}s after the start (target <= 10s)",
        h / u
    );
}
