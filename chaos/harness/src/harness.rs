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

use serde_json::{Value, json};

use drpilot::clock::Clock;
use drpilot::engine::RunId;
use drpilot::journal::StateDir;
use drpilot::sim::{SimConfig, SimWorld};

use crate::check::{self, Proc, StepInfo};
use crate::emulator::{self, Control, Emulator};
use crate::generate;
use crate::scenario::{Blackhole, Scenario, Target};

/// How to run scenarios.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `drpilot` binary.
    pub drpilot: PathBuf,
    /// The repository root (runbook paths are relative to it).
    pub root: PathBuf,
    /// Longest a scenario may take, all its processes together.
    pub timeout: Duration,
    /// The same for a scenario against the emulator (its runs poll in real time).
    pub emulator_timeout: Duration,
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
    /// Events printed so far by every process of the scenario.
    events: u32,
    /// The emulator blackhole still to start, and its control API.
    blackhole: Option<(Blackhole, Control)>,
    /// Lifts a started blackhole after its time, unless told to stop first.
    lifter: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    /// Harness problems met on the way (a control call that failed).
    problems: Vec<String>,
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
            // Against the emulator: requests are signed for a real region, and nothing
            // from the caller's environment redirects or authenticates them.
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
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
                Ok(line) => {
                    r.stdout.push(line);
                    self.events += 1;
                    self.maybe_blackhole();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.timed_out = true;
                    return false;
                }
            }
        }
        true
    }

    /// Starts the emulator's blackhole once its event count is reached (and a timer
    /// that lifts it, when it has one).
    fn maybe_blackhole(&mut self) {
        if self
            .blackhole
            .as_ref()
            .is_none_or(|(b, _)| self.events < b.after_events)
        {
            return;
        }
        let Some((b, control)) = self.blackhole.take() else {
            return;
        };
        let mut body = json!({"region": b.region, "mode": b.mode});
        if let Some(services) = &b.services {
            body["services"] = json!(services);
        }
        if let Some(secs) = b.hold_seconds {
            body["hold_seconds"] = json!(secs);
        }
        if let Err(e) = control.call("POST", "/_drpilot/blackholes", Some(body)) {
            self.problems
                .push(format!("harness: blackhole not set: {e}"));
            return;
        }
        if let Some(after) = b.lift_after {
            let (tx, rx) = mpsc::channel::<()>();
            let region = b.region.clone();
            let handle = std::thread::spawn(move || {
                // Told to stop (the scenario ended first): the harness lifts it itself.
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(after) {
                    let _ = control.call("DELETE", &format!("/_drpilot/blackholes/{region}"), None);
                }
            });
            self.lifter = Some((tx, handle));
        }
    }

    /// Stops the blackhole timer, if one runs.
    fn stop_lifter(&mut self) {
        if let Some((tx, handle)) = self.lifter.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
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

/// What the emulator target adds to a scenario's runs: the emulator, what seeding
/// printed, and the world before the run.
struct EmuRun<'a> {
    emu: &'a Emulator,
    seed: Value,
    initial: BTreeMap<String, Value>,
    /// History lengths after seeding: what came before is the topology's own making.
    baseline: Value,
    skips: Vec<String>,
}

/// Resets the emulator to a fresh topology and installs the scenario's config and faults.
fn prepare_emulator<'a>(
    emu: &'a Emulator,
    s: &Scenario,
    rb: &drpilot::runbook::Runbook,
) -> Result<EmuRun<'a>, String> {
    let seed = emu.fresh(s.seed)?;
    let initial = emulator::read_world(emu, &seed)?;
    let baseline = emulator::histories(emu)?;
    if !s.emulator.config.is_empty() {
        emu.call(
            "POST",
            "/_drpilot/config",
            Some(Value::Object(s.emulator.config.clone())),
        )?;
    }
    for f in &s.emulator.faults {
        emu.call("POST", "/_drpilot/faults", Some(f.clone()))?;
    }
    Ok(EmuRun {
        emu,
        seed,
        initial,
        baseline,
        skips: emulator::data_plane_steps(rb),
    })
}

/// Runs one scenario in `dir` (created, and removed unless it fails) and checks it.
/// A scenario against the emulator starts one of its own: a harness job reuses one
/// with [`run_scenario_with`].
pub fn run_scenario(opts: &Options, s: &Scenario, dir: &Path, tag: &str) -> Verdict {
    if s.target == Target::Emulator {
        return match Emulator::start(&opts.root) {
            Ok(emu) => run_scenario_with(opts, s, dir, tag, Some(&emu)),
            Err(e) => Verdict {
                violations: vec![format!("harness: {e}")],
                trail: String::new(),
            },
        };
    }
    run_scenario_with(opts, s, dir, tag, None)
}

/// [`run_scenario`], against `emu` when the scenario's target is the emulator.
pub fn run_scenario_with(
    opts: &Options,
    s: &Scenario,
    dir: &Path,
    tag: &str,
    emu: Option<&Emulator>,
) -> Verdict {
    let state = dir.join("state");
    let sim = dir.join("sim.toml");
    let mut violations = Vec::new();
    let harness_error = |e: String| Verdict {
        violations: vec![format!("harness: {e}")],
        trail: String::new(),
    };
    if let Err(e) = std::fs::create_dir_all(&state)
        .and_then(|()| std::fs::write(&sim, s.sim_config()))
        .and_then(|()| std::fs::write(dir.join("scenario.toml"), s.to_toml()))
    {
        return harness_error(format!("cannot prepare {}: {e}", dir.display()));
    }
    let emu = match (s.target, emu) {
        (Target::Sim, _) => None,
        (Target::Emulator, None) => {
            return harness_error("no emulator for an emulator scenario".into());
        }
        (Target::Emulator, Some(emu)) => {
            let rb_path = opts.root.join(&s.runbook);
            let rb = match drpilot::runbook::load(&rb_path) {
                Ok(l) => l.runbook,
                Err(e) => {
                    return harness_error(format!("cannot load {}: {e:?}", rb_path.display()));
                }
            };
            match prepare_emulator(emu, s, &rb) {
                Ok(e) => Some((e, rb)),
                Err(e) => return harness_error(format!("emulator: {e}")),
            }
        }
    };
    let timeout = match s.target {
        Target::Sim => opts.timeout,
        // Against the emulator drpilot's polls run in real time.
        Target::Emulator => opts.emulator_timeout,
    };
    let mut ctx = Ctx {
        opts,
        dir: dir.to_path_buf(),
        state: state.clone(),
        env: canaries(tag),
        deadline: Instant::now() + timeout,
        timed_out: false,
        events: 0,
        blackhole: emu
            .as_ref()
            .and_then(|(e, _)| Some((s.emulator.blackhole.clone()?, e.emu.control()))),
        lifter: None,
        problems: Vec::new(),
    };
    let mut run_args: Vec<String> = vec!["run".into(), s.runbook.clone()];
    let mut resume_extra: Vec<String> = Vec::new();
    match &emu {
        None => {
            run_args.extend(
                [
                    "--sim",
                    "--sim-speed",
                    "max",
                    "--seed",
                    &s.seed.to_string(),
                    "--sim-config",
                    &sim.to_string_lossy(),
                ]
                .iter()
                .map(|a| a.to_string()),
            );
            resume_extra.extend(["--sim-speed".to_string(), "max".to_string()]);
        }
        Some((e, rb)) => {
            for (k, v) in emulator::params_for(&e.seed, rb) {
                run_args.extend(["--param".into(), format!("{k}={v}")]);
            }
            for flags in [&mut run_args, &mut resume_extra] {
                flags.extend(["--endpoint-url".into(), e.emu.url.clone()]);
                for step in &e.skips {
                    flags.extend(["--skip-step".into(), step.clone()]);
                }
            }
        }
    }
    run_args.extend(
        [
            "--yes",
            "--output",
            "json",
            "--on-failure",
            s.on_failure.as_str(),
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    let mut procs: Vec<Proc> = Vec::new();
    let mut kills = s.kills.iter().copied();
    let mut decisions = s.decisions.iter().copied();
    // A blackhole at event 0 is there before the run starts: the region is dark when
    // drpilot first probes it.
    ctx.maybe_blackhole();
    let first = match ctx.spawn("run", &run_args) {
        Ok(r) => r,
        Err(e) => return harness_error(format!("cannot start {}: {e}", opts.drpilot.display())),
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
        args.extend(resume_extra.iter().cloned());
        args.extend(["--yes", "--output", "json"].iter().map(|a| a.to_string()));
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
            "scenario did not finish within {timeout:?} (a hung drpilot?)"
        ));
    }
    ctx.stop_lifter();
    violations.append(&mut ctx.problems);
    // The emulator's view of the world, read once the chaos is over: blackholes
    // lifted and faults removed (the reads must not be refused themselves), every
    // operation a run started finished on the emulator's clock.
    let emu_world = emu.as_ref().map(|(e, _)| {
        let after = e
            .emu
            .call("DELETE", "/_drpilot/blackholes", None)
            .and_then(|_| e.emu.call("DELETE", "/_drpilot/faults", None))
            .and_then(|_| emulator::read_world(e.emu, &e.seed));
        let history = emulator::histories(e.emu).map(|h| since(&h, &e.baseline));
        (after, history)
    });
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
    let world = match (&emu, emu_world) {
        (Some((e, rb)), Some((after, history))) => {
            let _ = std::fs::write(
                dir.join("emulator.json"),
                serde_json::to_string_pretty(&json!({
                    "initial": e.initial,
                    "final": after.as_ref().ok(),
                    "history": history.as_ref().ok(),
                }))
                .unwrap_or_default(),
            );
            match (after, history) {
                (Ok(after), Ok(history)) => World::Emulator {
                    initial: e.initial.clone(),
                    after,
                    history,
                    targets: targets(rb),
                },
                (Err(e), _) | (_, Err(e)) => {
                    violations.push(format!("emulator: cannot read the final state: {e}"));
                    World::Unread
                }
            }
        }
        _ => World::Sim,
    };
    violations.extend(check_all(
        opts,
        s,
        dir,
        run_id.as_deref(),
        &procs,
        &ctx.env,
        status.as_ref(),
        &world,
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

fn step_infos(rb: &drpilot::runbook::Runbook) -> BTreeMap<String, StepInfo> {
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
                    action: s.spec.name.to_string(),
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

/// The emulator's histories without what `baseline` already held (the seeding's).
fn since(history: &Value, baseline: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in history.as_object().into_iter().flatten() {
        let skip = baseline[k].as_array().map_or(0, Vec::len);
        let rest = v
            .as_array()
            .map(|a| a.iter().skip(skip).cloned().collect())
            .unwrap_or_else(|| v.clone());
        out.insert(k.clone(), rest);
    }
    Value::Object(out)
}

/// Where each resource must be after a successful run of `rb` against the emulator,
/// and the step that moves it there.
fn targets(rb: &drpilot::runbook::Runbook) -> BTreeMap<String, (String, Vec<Value>)> {
    let to = rb.params.get("to").cloned().unwrap_or_default();
    let from = rb.params.get("from").cloned().unwrap_or_default();
    let cell = |region: &str| match region {
        "us-east-1" => "cell-use1",
        _ => "cell-usw2",
    };
    let mut both = [to.clone(), from.clone()];
    both.sort();
    let mut out = BTreeMap::new();
    for step in &rb.steps {
        let id = step.id.as_str().to_string();
        match check::emulator_resource(step.spec.name) {
            Some("global_cluster") => {
                out.insert(
                    "global_cluster:acme-prod".to_string(),
                    (id, vec![json!({"writers": [to]})]),
                );
            }
            Some("datastore") => {
                out.insert(
                    "datastore:ldgnf-acme-sessions".to_string(),
                    (
                        id,
                        vec![
                            json!({"primary": [to], "members": both}),
                            // Disassociated: the target member stands alone as a primary.
                            json!({"primary": [from], "members": [from]}),
                        ],
                    ),
                );
            }
            Some("routing_control") => {
                out.insert(
                    format!("routing_control:{}", cell(&to)),
                    (id.clone(), vec![json!("On")]),
                );
                out.insert(
                    format!("routing_control:{}", cell(&from)),
                    (id, vec![json!("Off")]),
                );
            }
            _ => {}
        }
    }
    out
}

/// The world a scenario's final-state checks read.
enum World {
    /// The simulated world saved beside the journal.
    Sim,
    /// The emulator, read after the run.
    Emulator {
        initial: BTreeMap<String, Value>,
        after: BTreeMap<String, Value>,
        history: Value,
        targets: BTreeMap<String, (String, Vec<Value>)>,
    },
    /// The emulator could not be read (already reported).
    Unread,
}

/// The checks over what a scenario left in `dir` (its `state` directory and `sim.toml`)
/// and, for the emulator, in the emulator.
#[allow(clippy::too_many_arguments)]
fn check_all(
    opts: &Options,
    s: &Scenario,
    dir: &Path,
    run_id: Option<&str>,
    procs: &[Proc],
    env: &[(&'static str, String)],
    status: Option<&serde_json::Value>,
    world: &World,
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
    let rb = match drpilot::runbook::load(&rb_path) {
        Ok(l) => l.runbook,
        Err(e) => {
            v.push(format!("harness: cannot load {}: {e:?}", rb_path.display()));
            return v;
        }
    };
    let mut steps = step_infos(&rb);
    if s.target == Target::Emulator {
        // What each step may change, by the keys `emulator::read_world` uses.
        for info in steps.values_mut() {
            match check::emulator_resource(&info.action) {
                Some("global_cluster") => info.names.push("acme-prod".into()),
                Some("datastore") => info.names.push("ldgnf-acme-sessions".into()),
                Some("routing_control") => {
                    info.names.extend(["cell-use1".into(), "cell-usw2".into()])
                }
                _ => {}
            }
        }
    }
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
    let last_exit = runs
        .iter()
        .rev()
        .find(|p| !p.contender)
        .and_then(|p| p.exit);
    v.extend(check::expectations(&s.expect, &replay.events, last_exit));
    match world {
        World::Sim => {}
        World::Unread => return v,
        World::Emulator {
            initial,
            after,
            history,
            targets,
        } => {
            v.extend(check::emulator_applied_once(
                history,
                &replay.events,
                &steps,
            ));
            v.extend(check::final_state(&replay.events, initial, after, &steps));
            v.extend(check::at_target(&replay.events, after, targets));
            return v;
        }
    }
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
                // This job's emulator, started when its first emulator scenario comes and
                // stopped (by its pid) when the job ends, also on a panic (dropped).
                let mut emu: Option<Result<Emulator, String>> = None;
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
                    let began = Instant::now();
                    let verdict = if job.scenario.target == Target::Emulator {
                        match emu.get_or_insert_with(|| Emulator::start(&opts.root)) {
                            Ok(e) => run_scenario_with(opts, &job.scenario, &dir, &tag, Some(e)),
                            Err(e) => Verdict {
                                violations: vec![format!("harness: {e}")],
                                trail: String::new(),
                            },
                        }
                    } else {
                        run_scenario_with(opts, &job.scenario, &dir, &tag, None)
                    };
                    if verdict.violations.is_empty() {
                        if opts.verbose {
                            println!(
                                "ok {} ({}) in {:.1}s: {}",
                                job.origin,
                                job.scenario.name,
                                began.elapsed().as_secs_f64(),
                                verdict.trail
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
    about = "Run seeded chaos scenarios against drpilot (in the simulated world or the AWS emulator) and check its invariants"
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
    /// Longest one scenario may take (default: 60s in the simulated world, 300s
    /// against the emulator).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Generate scenarios against the AWS emulator (`chaos/emulator`) instead of the
    /// simulated world; each job starts one emulator.
    #[arg(long)]
    pub emulator: bool,
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
            scenario: if args.emulator {
                generate::emulator_scenario(args.seed, i)
            } else {
                generate::scenario(args.seed, i)
            },
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
        timeout: args.timeout.unwrap_or(Duration::from_secs(60)),
        emulator_timeout: args.timeout.unwrap_or(Duration::from_secs(300)),
        keep,
        verbose: args.verbose,
    };
    // Against the emulator one job by default: each job runs its own emulator.
    let jobs = args.jobs.unwrap_or_else(|| {
        if args.emulator {
            1
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    });
    let failed = run_all(&opts, &list, jobs);
    u8::from(failed > 0)
}
