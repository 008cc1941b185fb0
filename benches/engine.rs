//! Engine overhead: random DAGs of no-op steps (`wait` of 0s) in virtual time.
//!
//! DESIGN.md's targets: 10,000 steps in under 1 s, 100,000 in under 10 s, under 200 MB,
//! on 2 cores. Each size runs in its own process (this binary re-runs itself) so the
//! peak resident memory (VmHWM) is that size's alone. Run with
//! `cargo bench --bench engine` (sizes: DRPILOT_BENCH_SIZES, default 1000,10000,100000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use drpilot::clock::Clock;
use drpilot::engine::dispatcher::Sink;
use drpilot::engine::{self, Approvals, Event, RunConfig, RunId};
use drpilot::plan::Plan;
use drpilot::runbook;
use drpilot::sim::{SimConfig, SimWorld};

/// The system allocator, counting the bytes in use and their high-water mark, so each
/// phase's heap is measured on its own: peak RSS only says the process's highest point,
/// and freed memory the allocator keeps still counts in RSS.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `layout` is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through this wrapper).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes in use now, in MB.
fn live_mb() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / 1e6
}

/// The high-water mark since the last call, in MB; starts a new phase.
fn phase_peak_mb() -> f64 {
    let peak = PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    peak as f64 / 1e6
}

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
    let text_mb = live_mb();
    phase_peak_mb();
    let t0 = Instant::now();
    // Runbooks this size are over the file limit; load_str checks the text directly.
    let loaded = runbook::load_str(Path::new("bench.toml"), &text).expect("the DAG is valid");
    let parse_peak = phase_peak_mb();
    // The checked model, with the copy of the source `Loaded` keeps for diagnostics.
    let model_mb = live_mb() - text_mb;
    let rb = loaded.runbook;
    let plan = Plan::new(&rb);
    let prepare = t0.elapsed();
    let plan_mb = live_mb() - text_mb - model_mb;
    let peak_after_prepare = peak_rss_mb();
    phase_peak_mb();
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
    let run_peak = phase_peak_mb();
    println!(
        "{n:>7} steps: engine {:>8.3} s, parse+validate+plan {:>7.3} s, {events} events, peak RSS {:.0} MB ({:.0} MB before the engine ran; RSS {:.0} -> {:.0} MB across the run), outcome {outcome:?}",
        elapsed.as_secs_f64(),
        prepare.as_secs_f64(),
        peak_rss_mb(),
        peak_after_prepare,
        rss_before,
        rss_after,
    );
    println!(
        "{n:>7} steps: heap in use: text {text_mb:.1} MB; parsing peaked at {parse_peak:.1} MB; checked model {model_mb:.1} MB, plan {plan_mb:.1} MB; engine run peaked at {run_peak:.1} MB (all of it: text, model, plan, world, engine)",
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
