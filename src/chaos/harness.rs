//! Runs scenarios: the real `drpilot` binary for every run and resume, in its own
//! temporary directory, killed with SIGKILL by its own pid at event boundaries, within
//! a deadline; then the invariant checks over what it left behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::check::{self, Proc, StepInfo};
use super::generate;
use super::scenario::Scenario;
use crate::clock::Clock;
use crate::engine::RunId;
use crate::journal::StateDir;
use crate::sim::{SimConfig, SimWorld};

/// How to run scenarios.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `drpilot` binary.
    pub drpilot: PathBuf,
    /// The repository root (runbook paths are relative to it).
    pub root: PathBuf,
    /// Longest a scenario may take, all its processes together.
    pub timeout: Duration,
    /// Where failing scenarios' files and directories are kept.
    pub keep: PathBuf,
    /// Print a line for every scenario, passed or not.
    pub verbose: bool,
}

/// What a scenario came to.
#[derive(Debug)]
pub struct Verdict {
    /// Invariant violations (empty: passed).
    pub violations: Vec<String>,
    /// How each process exited, for people: `run:3 resume--retry:0`.
    pub trail: String,
}

/// The canary secrets every process gets in its environment, and must never print.
fn canaries(tag: &str) -> Vec<(&'static str, String)> {
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "DRPILOT_PG_PASSWORD",
        "DRPILOT_VALKEY_PASSWORD",
        "DRPILOT_DB_PASSWORD",
    ]
    .into_iter()
    .enumerate()
    .map(|(i, k)| (k, format!("chaosCanary{i}x{tag}Zq")))
    .collect()
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    stdout: Vec<String>,
    label: String,
    contender: bool,
}

struct Ctx<'a> {
    opts: &'a Options,
    dir: PathBuf,
    state: PathBuf,
    env: Vec<(&'static str, String)>,
    deadline: Instant,
    timed_out: bool,
}

impl Ctx<'_> {
    fn spawn(&self, label: &str, args: &[String]) -> std::io::Result<Running> {
        let mut child = Command::new(&self.opts.drpilot)
            .args(args)
            .arg("--state")
            .arg(&self.state)
            .current_dir(&self.opts.root)
            .env("HOME", &self.dir)
            .env("XDG_STATE_HOME", &self.dir)
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "AKIACHAOSHARNESS0000")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Ok(Running {
            child,
            lines: rx,
            stderr,
            stdout: Vec::new(),
            label: label.to_string(),
            contender: false,
        })
    }

    /// Reads events until `n` were seen (or the end); false when the deadline passed.
    fn read(&mut self, r: &mut Running, n: Option<u32>) -> bool {
        while n.is_none_or(|n| r.stdout.len() < n as usize) {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match r.lines.recv_timeout(left) {
                Ok(line) => r.stdout.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.timed_out = true;
                    return false;
                }
            }
        }
        true
    }

    /// Lets the process end (killing it first with SIGKILL when `kill`), and collects it.
    fn finish(&mut self, mut r: Running, kill: bool) -> Proc {
        let killed = kill || self.timed_out;
        if killed {
            // SIGKILL, to our own child's pid.
            let _ = r.child.kill();
        }
        let status = r.child.wait().ok();
        // What it printed before it died.
        r.stdout.extend(r.lines.iter());
        let stderr = r.stderr.join().unwrap_or_default();
        Proc {
            label: r.label,
            exit: status.and_then(|s| s.code()),
            killed,
            contender: r.contender,
            stdout: r.stdout.join("\n"),
            stderr,
        }
    }

    /// Runs a process to its end, or kills it after `kill_at` events.
    fn drive(&mut self, mut r: Running, kill_at: Option<u32>) -> Proc {
        let complete = self.read(&mut r, kill_at);
        let reached = kill_at.is_some_and(|k| r.stdout.len() >= k as usize);
        if complete && !reached {
            // Ended by itself before the kill point.
            return self.finish(r, false);
        }
        self.finish(r, reached)
    }
}

fn signal(pid: u32, sig: &str) {
    // By our own child's pid, never by name.
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn run_id_of(p: &Proc) -> Option<String> {
    p.stdout.lines().find_map(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()?
            .get("run_id")?
            .as_str()
            .map(String::from)
    })
}

/// Runs one scenario in `dir` (created, and removed unless it fails) and checks it.
pub fn run_scenario(opts: &Options, s: &Scenario, dir: &Path, tag: &str) -> Verdict {
    let state = dir.join("state");
    let sim = dir.join("sim.toml");
    let mut violations = Vec::new();
    if let Err(e) = std::fs::create_dir_all(&state)
        .and_then(|()| std::fs::write(&sim, s.sim_config()))
        .and_then(|()| std::fs::write(dir.join("scenario.toml"), s.to_toml()))
    {
        return Verdict {
            violations: vec![format!("harness: cannot prepare {}: {e}", dir.display())],
            trail: String::new(),
        };
    }
    let mut ctx = Ctx {
        opts,
        dir: dir.to_path_buf(),
        state: state.clone(),
        env: canaries(tag),
        deadline: Instant::now() + opts.timeout,
        timed_out: false,
    };
    let run_args: Vec<String> = [
        "run",
        &s.runbook,
        "--sim",
        "--sim-speed",
        "max",
        "--seed",
        &s.seed.to_string(),
        "--sim-config",
        &sim.to_string_lossy(),
        "--yes",
        "--output",
        "json",
        "--on-failure",
        s.on_failure.as_str(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut procs: Vec<Proc> = Vec::new();
    let mut kills = s.kills.iter().copied();
    let mut decisions = s.decisions.iter().copied();
    let first = match ctx.spawn("run", &run_args) {
        Ok(r) => r,
        Err(e) => {
            return Verdict {
                violations: vec![format!(
                    "harness: cannot start {}: {e}",
                    opts.drpilot.display()
                )],
                trail: String::new(),
            };
        }
    };
    let mut first = first;
    if s.concurrent {
        // Once the first run has said run_started it holds the lock: freeze it there
        // so the second certainly overlaps, and let the second run to its end.
        if ctx.read(&mut first, Some(1)) && first.stdout.len() == 1 {
            let pid = first.child.id();
            signal(pid, "-STOP");
            match ctx.spawn("concurrent run", &run_args) {
                Ok(mut second) => {
                    second.contender = true;
                    let p = ctx.drive(second, None);
                    procs.push(p);
                }
                Err(e) => violations.push(format!("harness: cannot start a second run: {e}")),
            }
            signal(pid, "-CONT");
        }
    }
    let p = ctx.drive(first, kills.next());
    let run_id = run_id_of(&p);
    procs.push(p);
    for _ in 0..16 {
        if ctx.timed_out {
            break;
        }
        let Some(run_id) = run_id.as_deref() else {
            break;
        };
        let last = procs.last().expect("the first run");
        let choice = if last.killed {
            None
        } else {
            let awaits = matches!(last.exit, Some(3 | 4))
                || (last.exit == Some(2) && last.stderr.contains("has failed steps"));
            if !awaits {
                break;
            }
            match decisions.next() {
                Some(c) => Some(c),
                // No decision left: the run stays paused, as it says.
                None => break,
            }
        };
        let mut args: Vec<String> = vec!["resume".into(), run_id.into()];
        if let Some(c) = choice {
            args.push(c.flag().into());
        }
        args.extend(
            ["--sim-speed", "max", "--yes", "--output", "json"]
                .iter()
                .map(|a| a.to_string()),
        );
        let label = match choice {
            Some(c) => format!("resume {}", c.flag()),
            None => "resume".to_string(),
        };
        match ctx.spawn(&label, &args) {
            Ok(r) => {
                let p = ctx.drive(r, kills.next());
                procs.push(p);
            }
            Err(e) => {
                violations.push(format!("harness: cannot resume: {e}"));
                break;
            }
        }
    }
    if ctx.timed_out {
        violations.push(format!(
            "scenario did not finish within {:?} (a hung drpilot?)",
            opts.timeout
        ));
    }
    // What `drpilot status` says about the run, checked against its journal.
    let status = run_id.as_deref().and_then(|id| {
        let out = Command::new(&opts.drpilot)
            .args(["status", id, "--output", "json", "--state"])
            .arg(&state)
            .current_dir(&opts.root)
            .env("HOME", dir)
            .env("NO_COLOR", "1")
            .envs(ctx.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .ok()?;
        procs.push(Proc {
            label: "status".into(),
            exit: out.status.code(),
            killed: false,
            contender: false,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    });
    violations.extend(check_all(
        opts,
        s,
        dir,
        run_id.as_deref(),
        &procs,
        &ctx.env,
        status.as_ref(),
    ));
    let trail = procs
        .iter()
        .map(|p| {
            let end = if p.killed {
                "killed".to_string()
            } else {
                p.exit.map_or("signal".into(), |c| c.to_string())
            };
            format!("{}:{end}", p.label.replace(' ', ""))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Verdict { violations, trail }
}

fn step_infos(rb: &crate::runbook::Runbook) -> BTreeMap<String, StepInfo> {
    rb.steps
        .iter()
        .map(|s| {
            let mut names = Vec::new();
            check::strings(&serde_json::to_value(s).unwrap_or_default(), &mut names);
            (
                s.id.as_str().to_string(),
                StepInfo {
                    after: s.after.iter().map(|a| a.as_str().to_string()).collect(),
                    mutating: s.is_mutating(),
                    names,
                },
            )
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

/// The checks over what a scenario left in `dir` (its `state` directory and `sim.toml`).
fn check_all(
    opts: &Options,
    s: &Scenario,
    dir: &Path,
    run_id: Option<&str>,
    procs: &[Proc],
    env: &[(&'static str, String)],
    status: Option<&serde_json::Value>,
) -> Vec<String> {
    let (sim, state) = (&dir.join("sim.toml"), &dir.join("state"));
    let mut v = Vec::new();
    // `status` is not a run: its output is checked against the journal below.
    let runs: Vec<Proc> = procs
        .iter()
        .filter(|p| p.label != "status")
        .cloned()
        .collect();
    v.extend(check::exit_codes(&runs));
    let in_state = std::fs::read_dir(state.join("runs")).map_or(0, |d| d.count());
    v.extend(check::lock_exclusive(&runs, in_state));
    let mut texts: Vec<(String, String)> = Vec::new();
    for p in procs {
        texts.push((format!("{} stdout", p.label), p.stdout.clone()));
        texts.push((format!("{} stderr", p.label), p.stderr.clone()));
    }
    files_under(state, &mut texts);
    let canaries: Vec<String> = env.iter().map(|(_, v)| v.clone()).collect();
    v.extend(check::no_secrets(&texts, &canaries));

    let Some(run_id) = run_id else {
        return v;
    };
    let rb_path = opts.root.join(&s.runbook);
    let rb = match crate::runbook::load(&rb_path) {
        Ok(l) => l.runbook,
        Err(e) => {
            v.push(format!("harness: cannot load {}: {e:?}", rb_path.display()));
            return v;
        }
    };
    let steps = step_infos(&rb);
    let dir = StateDir::at(state);
    let replay = match dir.replay(&RunId(run_id.to_string())) {
        Ok(r) => r,
        Err(e) => {
            v.push(format!("journal of {run_id} unreadable: {e}"));
            return v;
        }
    };
    match status {
        Some(st) => v.extend(check::status_agrees(st, &replay.events)),
        None => v.push(format!(
            "drpilot status {run_id} --output json printed no JSON"
        )),
    }
    v.extend(check::no_step_twice(&replay.events, &steps));
    v.extend(check::rollback_order(&replay.events, &steps));
    let world_path = dir.run_dir(&replay.header.run_id).join("world.json");
    let saved: serde_json::Value = match std::fs::read(&world_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(w) => w,
        Err(e) => {
            v.push(format!(
                "saved world {} unreadable: {e}",
                world_path.display()
            ));
            return v;
        }
    };
    match SimWorld::restore(&saved, Clock::real()) {
        Ok(w) => v.extend(check::applied_once(&w.op_log())),
        Err(e) => v.push(format!("saved world does not restore: {e}")),
    }
    let text = std::fs::read_to_string(sim).unwrap_or_default();
    let initial = SimConfig::parse(sim, &text)
        .map_err(|e| e.to_string())
        .and_then(|cfg| {
            SimWorld::from_runbook(&rb, &cfg, s.seed, Clock::real()).map_err(|e| e.to_string())
        });
    match initial {
        Ok(w) => {
            let before = check::resources(&w.snapshot()["state"]);
            let after = check::resources(&saved["state"]);
            v.extend(check::final_state(&replay.events, &before, &after, &steps));
        }
        Err(e) => v.push(format!("harness: cannot build the initial world: {e}")),
    }
    v
}

/// A scenario to run: where it came from, for the failure line.
pub struct Job {
    /// The scenario.
    pub scenario: Scenario,
    /// `seed S index I`, or the file it was read from.
    pub origin: String,
}

/// Runs every job on `jobs` threads; prints one line per failure and a summary line;
/// returns the number of failures.
pub fn run_all(opts: &Options, list: &[Job], jobs: usize) -> usize {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = list.get(i) else { break };
                    let tag = format!("{}{i}", std::process::id());
                    let dir = std::env::temp_dir().join(format!(
                        "chaos-{}-{i}-{}",
                        std::process::id(),
                        job.scenario.name
                    ));
                    let _ = std::fs::remove_dir_all(&dir);
                    let verdict = run_scenario(opts, &job.scenario, &dir, &tag);
                    if verdict.violations.is_empty() {
                        if opts.verbose {
                            println!(
                                "ok {} ({}): {}",
                                job.origin, job.scenario.name, verdict.trail
                            );
                        }
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    }
                    failed.fetch_add(1, Ordering::SeqCst);
                    let kept = opts.keep.join(&job.scenario.name);
                    let _ = std::fs::create_dir_all(&opts.keep);
                    let _ = std::fs::remove_dir_all(&kept);
                    let file = opts.keep.join(format!("{}.toml", job.scenario.name));
                    let _ = std::fs::write(&file, job.scenario.to_toml());
                    if std::fs::rename(&dir, &kept).is_err() {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    println!(
                        "FAIL {}: replay with chaos/run --scenario {} ({}; evidence in {}): {}",
                        job.origin,
                        file.display(),
                        verdict.trail,
                        kept.display(),
                        verdict.violations.join("; ")
                    );
                }
            });
        }
    });
    let failed = failed.into_inner();
    println!(
        "chaos: {} scenarios in {:.1}s: {} passed, {} failed",
        list.len(),
        started.elapsed().as_secs_f64(),
        list.len() - failed,
        failed
    );
    failed
}

/// `drpilot-chaos` command-line arguments.
#[derive(Debug, clap::Parser)]
#[command(
    name = "drpilot-chaos",
    about = "Run seeded chaos scenarios against drpilot in the simulated world and check its invariants"
)]
pub struct Args {
    /// Seed of the generated scenarios.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many scenarios to generate from the seed.
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// A scenario file to run (repeatable): a hand-written one, or one a failure wrote.
    #[arg(long)]
    pub scenario: Vec<PathBuf>,
    /// Where failing scenarios' files and evidence are kept.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Scenarios run in parallel (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Longest one scenario may take.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The drpilot binary (default: beside this one).
    #[arg(long)]
    pub drpilot: Option<PathBuf>,
    /// The repository root (default: the current directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Print a line for every scenario (how each process ended), not only failures.
    #[arg(long)]
    pub verbose: bool,
    /// Write the generated scenarios into this directory as TOML and run nothing.
    #[arg(long)]
    pub write: Option<PathBuf>,
}

/// The harness's `main`: returns the process exit code (0: every scenario passed).
pub fn main(args: Args) -> u8 {
    println!("chaos: seed {}", args.seed);
    let mut list = Vec::new();
    for path in &args.scenario {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| Scenario::from_toml(&t))
        {
            Ok(s) => list.push(Job {
                scenario: s,
                origin: format!("scenario file {}", path.display()),
            }),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return 2;
            }
        }
    }
    for i in 0..args.count {
        list.push(Job {
            scenario: generate::scenario(args.seed, i),
            origin: format!("seed {} scenario {i}", args.seed),
        });
    }
    if let Some(dir) = &args.write {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: {}: {e}", dir.display());
            return 2;
        }
        for job in &list {
            let f = dir.join(format!("{}.toml", job.scenario.name));
            if let Err(e) = std::fs::write(&f, job.scenario.to_toml()) {
                eprintln!("error: {}: {e}", f.display());
                return 2;
            }
        }
        return 0;
    }
    let drpilot = args.drpilot.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("drpilot")))
            .unwrap_or_else(|| PathBuf::from("drpilot"))
    });
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let keep = args.keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("chaos-failed-{}-{}", args.seed, std::process::id()))
    });
    let opts = Options {
        drpilot,
        root,
        timeout: args.timeout,
        keep,
        verbose: args.verbose,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let failed = run_all(&opts, &list, jobs);
    u8::from(failed > 0)
}
