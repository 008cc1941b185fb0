//! Engine overhead: random DAGs of no-op steps (`wait` of 0s) in virtual time.
//!
//! DESIGN.md's targets: 10,000 steps in under 1 s, 100,000 in under 10 s, under 200 MB,
//! on 2 cores. Each size runs in its own process (this binary re-runs itself) so the
//! peak resident memory (VmHWM) is that size's alone. Run with
//! `cargo bench --bench engine` (sizes: DRPILOT_BENCH_SIZES, default 1000,10000,100000).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use drpilot::clock::Clock;
use drpilot::engine::dispatcher::Sink;
use drpilot::engine::{self, Approvals, Event, RunConfig, RunId};
use drpilot::plan::Plan;
use drpilot::runbook;
use drpilot::sim::{SimConfig, SimWorld};

/// SplitMix64, so the DAG is the same on every machine.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Each step runs after up to 3 random steps among the 200 before it.
fn dag(n: usize) -> String {
    let mut s = String::from("[runbook]\nname = \"bench\"\nmode = \"unplanned\"\n");
    let mut rng = 7u64;
    for i in 0..n {
        let mut after = Vec::new();
        if i > 0 {
            for _ in 0..(next(&mut rng) % 4) {
                let back = 1 + (next(&mut rng) as usize % i.min(200));
                after.push(format!("\"s{}\"", i - back));
            }
            after.sort();
            after.dedup();
        }
        s.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\naction = \"wait\"\nduration = \"0s\"\nafter = [{}]\n",
            after.join(", ")
        ));
    }
    s
}

struct Count(usize);

impl Sink for Count {
    fn emit(&mut self, _event: &Event) -> Result<(), String> {
        self.0 += 1;
        Ok(())
    }
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn one(n: usize) {
    let text = dag(n);
    let t0 = Instant::now();
    // Runbooks this size are over the file limit; load_str checks the text directly.
    let loaded = runbook::load_str(Path::new("bench.toml"), &text).expect("the DAG is valid");
    let rb = loaded.runbook;
    let plan = Plan::new(&rb);
    let prepare = t0.elapsed();
    let peak_after_prepare = peak_rss_mb();
    let rss_before = rss_mb();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (elapsed, events, outcome) = rt.block_on(async {
        let clock = Clock::with_speed(1.0);
        let world = SimWorld::from_runbook(&rb, &SimConfig::default(), 1, clock.clone()).unwrap();
        let cloud = world.cloud();
        let config = RunConfig {
            approvals: Approvals::default(),
            ..RunConfig::default()
        };
        let mut sink = Count(0);
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Instant::now();
        let result = {
            let mut sinks: [&mut dyn Sink; 1] = [&mut sink];
            let ctx = engine::RunCtx {
                runbook: &rb,
                plan: &plan,
                cloud: &cloud,
                clock: &clock,
                run_id: RunId("bench".into()),
                config: &config,
                prior: None,
                sim_seed: None,
            };
            engine::run(ctx, &mut sinks, rx).await
        };
        (t.elapsed(), sink.0, result.outcome)
    });
    let rss_after = rss_mb();
    println!(
        "{n:>7} steps: engine {:>8.3} s, parse+validate+plan {:>7.3} s, {events} events, peak RSS {:.0} MB ({:.0} MB before the engine ran; RSS {:.0} -> {:.0} MB across the run), outcome {outcome:?}",
        elapsed.as_secs_f64(),
        prepare.as_secs_f64(),
        peak_rss_mb(),
        peak_after_prepare,
        rss_before,
        rss_after,
    );
}

fn main() {
    if let Ok(n) = std::env::var("DRPILOT_BENCH_ONE") {
        one(n.parse().expect("a size"));
        return;
    }
    // `cargo test --benches` runs this with --bench absent: keep it tiny there.
    let testing = !std::env::args().any(|a| a == "--bench");
    let sizes = std::env::var("DRPILOT_BENCH_SIZES").unwrap_or_else(|_| {
        if testing {
            "200".into()
        } else {
            "1000,10000,100000".into()
        }
    });
    let me = std::env::current_exe().unwrap();
    for n in sizes.split(',') {
        let status = Command::new(&me)
            .env("DRPILOT_BENCH_ONE", n.trim())
            .status()
            .unwrap();
        assert!(status.success(), "size {n} failed");
    }
}
