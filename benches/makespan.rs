//! Makespan against the critical path: the shipped runbooks in the simulated world.
//!
//! DESIGN.md's target: a run's makespan within 2% of its critical path. Each step's
//! actual duration is read from the run's events (first `step_started` to
//! `step_succeeded`: retries, gates and polls included); the critical path is the
//! longest chain of those durations through the runbook's dependencies; the makespan is
//! from the first step's start to the last step's end. Their ratio is what the engine
//! adds by not starting a step the moment its dependencies are done. Virtual time
//! (`--sim-speed max`), several seeds; the failback runs in the world the failover left.
//! Run with `cargo bench --bench makespan` (seeds: DRPILOT_BENCH_SEEDS, default 1..=20).
//! In virtual time launching costs no time at all; `DRPILOT_BENCH_SPEED=600` runs the
//! world 600 times faster than real time instead, so every real millisecond the engine
//! spends between a step's end and its dependents' start shows, magnified 600 times.

use std::collections::HashMap;
use std::path::Path;

use drpilot::clock::Clock;
use drpilot::engine::dispatcher::Sink;
use drpilot::engine::{self, Approvals, Event, EventKind, Outcome, RunConfig, RunId};
use drpilot::plan::Plan;
use drpilot::runbook::{self, Runbook};
use drpilot::sim::{SimConfig, SimWorld};

struct Record(Vec<Event>);

impl Sink for Record {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        self.0.push(event.clone());
        Ok(())
    }
}

fn shipped(name: &str) -> Runbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runbooks")
        .join(name);
    runbook::load(&path).expect("shipped runbook").runbook
}

/// (makespan, critical path) in seconds of one run's events.
fn measure(rb: &Runbook, events: &[Event]) -> (f64, f64) {
    let mut start: HashMap<&str, jiff::Timestamp> = HashMap::new();
    let mut end: HashMap<&str, jiff::Timestamp> = HashMap::new();
    for e in events {
        match &e.kind {
            EventKind::StepStarted { step, .. } => {
                start.entry(step.as_str()).or_insert(e.at);
            }
            EventKind::StepSucceeded { step, .. } => {
                end.insert(step.as_str(), e.at);
            }
            _ => {}
        }
    }
    let secs = |a: jiff::Timestamp, b: jiff::Timestamp| b.duration_since(a).as_secs_f64();
    let first = start.values().min().copied().expect("steps ran");
    let last = end.values().max().copied().expect("steps ended");
    // Steps are in dependency order in a checked runbook's plan; longest chain ending at
    // each step.
    let plan = Plan::new(rb);
    let mut longest: HashMap<&str, f64> = HashMap::new();
    for level in &plan.levels {
        for &i in level {
            let s = &rb.steps[i];
            let id = s.id.as_str();
            let own = secs(start[id], end[id]);
            let before = s
                .after
                .iter()
                .map(|a| longest[a.as_str()])
                .fold(0.0, f64::max);
            longest.insert(id, before + own);
        }
    }
    let critical = longest.values().copied().fold(0.0, f64::max);
    (secs(first, last), critical)
}

async fn run(rb: &Runbook, world: &SimWorld, clock: &Clock, id: &str) -> Vec<Event> {
    let plan = Plan::new(rb);
    let cloud = world.cloud();
    let config = RunConfig {
        approvals: Approvals {
            all: true,
            ..Approvals::default()
        },
        ..RunConfig::default()
    };
    let mut sink = Record(Vec::new());
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let result = {
        let mut sinks: [&mut dyn Sink; 1] = [&mut sink];
        let ctx = engine::RunCtx {
            runbook: rb,
            plan: &plan,
            cloud: &cloud,
            clock,
            run_id: RunId(id.into()),
            config: &config,
            prior: None,
            sim_seed: Some(world.seed()),
        };
        engine::run(ctx, &mut sinks, rx).await
    };
    assert_eq!(result.outcome, Outcome::Succeeded, "{id}");
    sink.0
}

fn main() {
    let testing = !std::env::args().any(|a| a == "--bench");
    let seeds: Vec<u64> = match std::env::var("DRPILOT_BENCH_SEEDS") {
        Ok(s) => s
            .split(',')
            .map(|n| n.trim().parse().expect("a seed"))
            .collect(),
        Err(_) if testing => vec![1],
        Err(_) => (1..=20).collect(),
    };
    let (failover, switchover, failback) = (
        shipped("region-failover.toml"),
        shipped("planned-switchover.toml"),
        shipped("failback.toml"),
    );
    let speed: Option<f64> = std::env::var("DRPILOT_BENCH_SPEED")
        .ok()
        .map(|s| s.parse().expect("a speed"));
    let mut rows: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    for &seed in &seeds {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(speed.is_none())
            .build()
            .unwrap();
        let clock_speed = speed.unwrap_or(1.0);
        rt.block_on(async {
            let clock = Clock::with_speed(clock_speed);
            let world = SimWorld::from_runbooks(
                &failover,
                &[&failback],
                &SimConfig::default(),
                seed,
                clock.clone(),
            )
            .unwrap();
            let events = run(&failover, &world, &clock, "failover").await;
            rows.entry("region-failover")
                .or_default()
                .push(measure(&failover, &events));
            let clock = clock.restarted();
            let events = run(&failback, &world, &clock, "failback").await;
            rows.entry("failback")
                .or_default()
                .push(measure(&failback, &events));

            let clock = Clock::with_speed(clock_speed);
            let world =
                SimWorld::from_runbook(&switchover, &SimConfig::default(), seed, clock.clone())
                    .unwrap();
            let events = run(&switchover, &world, &clock, "switchover").await;
            rows.entry("planned-switchover")
                .or_default()
                .push(measure(&switchover, &events));
        });
    }
    println!(
        "{} seeds, {}",
        seeds.len(),
        match speed {
            Some(x) => format!("world at {x}x real time"),
            None => "virtual time".into(),
        }
    );
    for name in ["region-failover", "planned-switchover", "failback"] {
        let r = &rows[name];
        let ratios: Vec<f64> = r.iter().map(|(m, c)| m / c).collect();
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let (m, c) = r[0];
        println!(
            "{name:<20} makespan / critical path: mean {mean:.4}, worst {worst:.4} (first seed: {m:.1} s / {c:.1} s)"
        );
    }
}
