//! `drpilot run`, `drpilot resume` and `drpilot status`.
//!
//! Input is validated completely before anything is created: the runbook and its plan,
//! `--approve` names, the state directory, the simulated world's config. Only then is
//! the lock taken and the run directory written. The lock is released when the run
//! ends for good; a paused, aborted or crashed run keeps it, so nobody else starts the
//! same runbook over half-changed resources.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::args::{ExecArgs, Output, ResumeArgs, RunArgs, SimSpeed};
use super::exit;
use super::guided;
use crate::clock::Clock;
use crate::cloud::aws::{AwsCloud, AwsOptions};
use crate::cloud::live::LiveDataPlane;
use crate::cloud::reach::{ProbeTarget, ReachSettings, Service};
use crate::engine::dispatcher::Sink;
use crate::engine::{
    self, Approvals, Decision, Event, Interrupt, Outcome, Prior, RunConfig, RunId,
};
use crate::journal::{
    AwsHeader, Connection, Header, JournalError, JournalWriter, LockError, RunLock, SimHeader,
    StateStore, runbook_digest,
};
use crate::plan::Plan;
use crate::report::run_report::{RunReport, RunStatus, RunbookCopy, parse_runbook_copy};
use crate::report::{human::HumanSink, live::LiveView, ndjson::NdjsonSink};
use crate::runbook::{self, Runbook, StepId};
use crate::sim::{SimConfig, SimWorld};

/// Default `--sim-speed`: the shipped failover (about 6 virtual minutes) takes seconds.
pub const DEFAULT_SIM_SPEED: f64 = 30.0;

pub(super) fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// Checks `--approve` names against the runbook: a typo must not silently leave a step
/// unapproved (or approve nothing).
pub(super) fn approvals(exec: &ExecArgs, rb: &Runbook) -> Result<Approvals, String> {
    let mut a = Approvals {
        all: exec.yes,
        ..Approvals::default()
    };
    for name in &exec.approve {
        match rb.steps.iter().find(|s| s.id.as_str() == name) {
            Some(s) if s.approval => {
                a.steps.insert(s.id.clone());
            }
            Some(_) => {
                return Err(format!(
                    "--approve {name}: step `{name}` does not need approval"
                ));
            }
            None => {
                let ids: Vec<&str> = rb
                    .steps
                    .iter()
                    .filter(|s| s.approval)
                    .map(|s| s.id.as_str())
                    .collect();
                return Err(format!(
                    "--approve {name}: no such step (approval steps: {})",
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids.join(", ")
                    }
                ));
            }
        }
    }
    Ok(a)
}

pub(super) fn new_run_id(runbook: &str) -> RunId {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    let salt =
        (u64::from(std::process::id()) << 20) ^ u64::from(now.subsec_nanosecond().unsigned_abs());
    RunId(format!("{runbook}-{stamp}-{:04x}", salt & 0xffff))
}

pub(super) fn random_seed() -> u64 {
    let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
    // SplitMix64 finaliser: spreads the time's low bits over the whole seed.
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn runtime(speed: SimSpeed) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if speed == SimSpeed::Max {
        // Virtual time: the clock jumps whenever every task waits on a timer.
        b.start_paused(true);
    }
    b.build()
}

pub(super) fn clock_speed(speed: SimSpeed) -> f64 {
    match speed {
        SimSpeed::Times(n) => n,
        SimSpeed::Max => 1.0,
    }
}

/// How a run talks to whoever started it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ui {
    pub(super) output: Output,
    /// A person at a terminal (stdin and stderr) with human output: prompts possible.
    interactive: bool,
    /// Guided mode (interactive, no --yes): plan, preflight and a typed confirmation
    /// before the run.
    guided: bool,
    /// Guided and no --on-failure: a failure asks the operator what to do.
    menu: bool,
    /// The live view (stderr a capable terminal, human output).
    live: bool,
    /// Move the live view's clock once a second (not in virtual time, where a timer
    /// would only make the clock jump).
    pub(super) tick: bool,
    color: bool,
}

impl Ui {
    fn new(exec: &ExecArgs, on_failure: Option<engine::OnFailure>, color: bool) -> Self {
        let human = exec.output == Output::Human;
        let stderr_tty = std::io::stderr().is_terminal();
        let interactive = human && stderr_tty && std::io::stdin().is_terminal();
        let guided = interactive && !exec.yes;
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Ui {
            output: exec.output,
            interactive,
            guided,
            menu: guided && on_failure.is_none(),
            live: human && stderr_tty && !dumb,
            tick: true,
            color,
        }
    }

    /// A scheduled drill: no briefing, confirmation or failure menu (a failed phase
    /// rolls back and the drill reports it), but a person at a terminal without --yes
    /// still answers each approval step's prompt.
    pub(super) fn scheduled(exec: &ExecArgs, color: bool) -> Self {
        let mut ui = Ui::new(exec, Some(engine::OnFailure::Rollback), color);
        ui.guided = false;
        ui.menu = false;
        ui
    }

    /// The engine's failure policy: the operator's flag; pausing for the menu in
    /// guided mode; rolling back otherwise.
    fn policy(&self, on_failure: Option<engine::OnFailure>) -> engine::OnFailure {
        match on_failure {
            Some(p) => p,
            None if self.menu => engine::OnFailure::Pause,
            None => engine::OnFailure::Rollback,
        }
    }
}

/// The journal; for a store that keeps the simulated world in the journal (S3), each
/// record carries the world as of its event.
struct JournalSink {
    journal: JournalWriter,
    world: Option<Arc<SimWorld>>,
}

impl Sink for JournalSink {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        let world = self.world.as_ref().map(|w| w.snapshot());
        self.journal.append(event, world).map_err(|e| e.to_string())
    }
}

/// Saves the simulated world before each event is journaled, so the journal never
/// records an effect the saved world does not have (a crash in between loses at most
/// a call the journal never claimed happened, like a lost request).
struct WorldSink {
    world: Arc<SimWorld>,
    path: PathBuf,
}

impl Sink for WorldSink {
    fn emit(&mut self, _event: &Event) -> Result<(), String> {
        let snapshot = self.world.snapshot();
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(&snapshot).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                format!(
                    "failed to save the simulated world to {}: {e}",
                    self.path.display()
                )
            })
    }
}

/// Keeps the run's events in memory, so a guided run can continue after the
/// operator's decision exactly as `drpilot resume` would from the journal.
struct MemorySink(Vec<Event>);

impl Sink for MemorySink {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        self.0.push(event.clone());
        Ok(())
    }
}

/// Ctrl-C: the first asks for a graceful stop, the second stops now. The listener
/// lives as long as the returned task.
fn listen_for_interrupts(
    on_failure: engine::OnFailure,
    menu: bool,
    view: Option<LiveView>,
) -> (
    mpsc::UnboundedReceiver<Interrupt>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let say = move |text: String| match &view {
        Some(v) => v.println(text),
        None => eprintln!("\n{text}"),
    };
    let task = tokio::spawn(async move {
        let mut count = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            count += 1;
            if count == 1 {
                let then = if menu {
                    "then you choose: retry, skip, roll back or abort"
                } else {
                    match on_failure {
                        engine::OnFailure::Rollback => "then every completed change is rolled back",
                        engine::OnFailure::Pause => {
                            "then the run pauses (resumable with `drpilot resume`)"
                        }
                        engine::OnFailure::Abort => {
                            "then the run stops as it is (resumable with `drpilot resume`)"
                        }
                    }
                };
                say(format!(
                    "interrupt: no new step will start; running steps finish, {then}. Press Ctrl-C again to stop at once (resumable with `drpilot resume`)."
                ));
                let _ = tx.send(Interrupt::Graceful);
            } else {
                say(
                    "interrupt: stopping now; the journal is consistent, resume to continue."
                        .to_string(),
                );
                let _ = tx.send(Interrupt::Immediate);
            }
        }
    });
    (rx, task)
}

pub(super) fn load_runbook(
    path: &Path,
    params: &BTreeMap<String, String>,
) -> Result<(runbook::Loaded, String), u8> {
    let loaded = match runbook::load_with(path, params) {
        Ok(l) => l,
        Err(runbook::LoadError::Invalid(e)) => {
            eprint!(
                "{}",
                e.render(runbook::RenderStyle::Fancy {
                    color: std::io::stderr().is_terminal(),
                    width: 100
                })
            );
            return Err(fail(exit::USAGE, e));
        }
        Err(e) => return Err(fail(exit::USAGE, e)),
    };
    // Re-read the exact bytes for the digest and the run's copy.
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            exit::USAGE,
            format!("failed to read {}: {e}", path.display()),
        )
    })?;
    Ok((loaded, text))
}

pub(super) fn lock_error(e: LockError, run_hint: &str) -> u8 {
    match &e {
        LockError::Held {
            stale: true,
            holder,
            ..
        } => {
            eprintln!("error: {e}");
            eprintln!(
                "help: resume it with `drpilot resume {}`, or {run_hint} with --break-stale-lock",
                holder.run_id
            );
            exit::LOCK_HELD
        }
        LockError::Held { .. } => fail(exit::LOCK_HELD, e),
        LockError::Io { .. } | LockError::Remote { .. } => fail(exit::USAGE, e),
    }
}

/// Checks `--skip-step` names against the runbook.
pub(super) fn skips(
    names: &[String],
    rb: &Runbook,
) -> Result<std::collections::BTreeSet<StepId>, String> {
    let mut out = std::collections::BTreeSet::new();
    for name in names {
        match rb.steps.iter().find(|s| s.id.as_str() == name) {
            Some(s) => {
                out.insert(s.id.clone());
            }
            None => {
                let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.as_str()).collect();
                let hint = crate::runbook::diag::did_you_mean(name, ids.iter().copied())
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                return Err(format!("--skip-step {name}: no such step{hint}"));
            }
        }
    }
    Ok(out)
}

/// Reads `--sim-config`, rendering its problems.
pub(super) fn load_sim_config(path: Option<&Path>) -> Result<SimConfig, u8> {
    let Some(p) = path else {
        return Ok(SimConfig::default());
    };
    SimConfig::load(p).map_err(|e| {
        eprint!(
            "{}",
            e.render(runbook::RenderStyle::Fancy {
                color: std::io::stderr().is_terminal(),
                width: 100
            })
        );
        fail(
            exit::USAGE,
            "the --sim-config file is invalid; nothing was run",
        )
    })
}

/// Where a run's cloud calls go.
pub(super) enum Target {
    /// The simulated world.
    Sim {
        seed: u64,
        speed: SimSpeed,
        config: Box<SimConfig>,
        config_path: Option<PathBuf>,
    },
    /// AWS, or an emulator through `--endpoint-url`.
    Aws(AwsHeader),
}

impl Target {
    /// From the command line: the simulated world (`--sim`, its config read and
    /// checked here) or AWS. Exit 2 on a bad `--sim-config` or `--sim-speed` without
    /// `--sim`.
    pub(super) fn from_args(
        sim: bool,
        sim_config: Option<&Path>,
        seed: Option<u64>,
        exec: &ExecArgs,
    ) -> Result<Target, u8> {
        if !sim {
            if exec.sim_speed.is_some() {
                return Err(fail(exit::USAGE, "--sim-speed needs --sim"));
            }
            return Ok(Target::Aws(AwsHeader {
                profile: exec.profile.clone(),
                endpoint_url: exec.endpoint_url.clone(),
            }));
        }
        let config = load_sim_config(sim_config)?;
        // Real servers run at real time: a sped-up clock would measure their RPO and
        // promotions in virtual seconds that never happened.
        let lab = config.clusters.iter().any(|c| c.local.is_some())
            || config.replication_groups.iter().any(|r| r.local.is_some());
        let speed = match exec.sim_speed {
            Some(SimSpeed::Times(n)) if lab && n != 1.0 => {
                return Err(fail(
                    exit::USAGE,
                    "--sim-speed: the sim config binds local servers (`local = ...`), which run at \
                     real time; use --sim-speed 1 or leave it out",
                ));
            }
            Some(SimSpeed::Max) if lab => {
                return Err(fail(
                    exit::USAGE,
                    "--sim-speed max: the sim config binds local servers (`local = ...`), which \
                     run at real time; use --sim-speed 1 or leave it out",
                ));
            }
            Some(s) => s,
            None if lab => SimSpeed::Times(1.0),
            None => SimSpeed::Times(DEFAULT_SIM_SPEED),
        };
        Ok(Target::Sim {
            seed: seed.unwrap_or_else(random_seed),
            speed,
            config: Box::new(config),
            config_path: sim_config.map(Path::to_path_buf),
        })
    }

    /// How fast the run's clock goes: AWS is real time.
    pub(super) fn speed(&self) -> SimSpeed {
        match self {
            Target::Sim { speed, .. } => *speed,
            Target::Aws(_) => SimSpeed::Times(1.0),
        }
    }
}

/// The regions a runbook names (params first), to find buckets without depending on
/// one region: the region the failover leaves may be down.
fn region_hints(rb: &Runbook) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |r: &str| {
        if crate::runbook::catalogue::is_region(r) && !out.iter().any(|x| x == r) {
            out.push(r.to_string());
        }
    };
    for key in ["to", "from"] {
        if let Some(v) = rb.params.get(key) {
            add(v);
        }
    }
    for v in rb.params.values() {
        add(v);
    }
    out
}

/// The state store from `--state`/`DRPILOT_STATE` (else the runbook's `[state]`),
/// reached with the run's AWS profile and endpoint. Exit 2 on a bad location.
pub(super) fn state_store(
    flags: &[String],
    rb: Option<&Runbook>,
    exec_profile: Option<&str>,
    exec_endpoint: Option<&str>,
) -> Result<StateStore, u8> {
    let from_runbook: Vec<String> = rb
        .and_then(|rb| rb.state.as_ref())
        .map(|s| s.stores.clone())
        .unwrap_or_default();
    let conn = Connection {
        profile: exec_profile.map(str::to_string),
        endpoint_url: exec_endpoint.map(str::to_string),
        region_hints: rb.map(region_hints).unwrap_or_default(),
    };
    StateStore::resolve(flags, &from_runbook, &conn).map_err(|e| fail(exit::USAGE, e))
}

/// Preflight warnings about where the run's own state lives: the journal and lock
/// must not live only in the region the runbook fails away from (`params.from`), or
/// the outage that starts the failover also takes the run's record and lock.
pub(super) fn state_findings(rb: &Runbook, state: &StateStore) -> Vec<engine::events::StepFinding> {
    let StateStore::S3(s3) = state else {
        return Vec::new();
    };
    let Some(first) = rb.steps.first().map(|s| s.id.clone()) else {
        return Vec::new();
    };
    let warn = |message: String| engine::events::StepFinding {
        step: first.clone(),
        finding: crate::actions::Finding { ok: true, message },
    };
    let mut out = Vec::new();
    let mut regions = Vec::new();
    for (bucket, region) in s3.bucket_regions() {
        match region {
            Ok(r) => regions.push((bucket, r)),
            Err(e) => out.push(warn(format!(
                "warning: the region of state bucket {bucket} is unknown ({e})"
            ))),
        }
    }
    if let Some(from) = rb.params.get("from")
        && !regions.is_empty()
        && out.is_empty()
        && regions.iter().all(|(_, r)| r == from)
    {
        let names: Vec<String> = regions.iter().map(|(b, _)| format!("s3://{b}")).collect();
        out.push(warn(format!(
            "warning: the run's state ({}) is only in {from}, the region this runbook fails away from; add a state bucket in another region (repeat --state, or [state] stores)",
            names.join(", ")
        )));
    }
    out
}

/// The breaker settings a runbook asks for (`[defaults]` `read_timeout`,
/// `probe_timeout`), drpilot's defaults otherwise.
pub(super) fn reach_settings(rb: &Runbook) -> ReachSettings {
    let mut s = ReachSettings::default();
    if let Some(d) = rb.deadlines.read_timeout {
        s.read_timeout = d;
    }
    if let Some(d) = rb.deadlines.probe_timeout {
        s.probe_timeout = d;
    }
    s
}

/// Starts probing, all at once, every region and service the runbook calls (IAM and
/// STS too against AWS, for the permission check), with the runbook's deadlines: a
/// region that does not answer is known within the probe timeout, and the run reports
/// it (`region_status`) and stops waiting on it.
pub(super) fn watch_regions(cloud: &crate::cloud::Cloud, rb: &Runbook, aws: bool) {
    cloud.reach.configure(reach_settings(rb));
    let mut targets = crate::actions::reach::probe_targets(rb);
    if aws {
        targets.push(ProbeTarget {
            region: "us-east-1".into(),
            service: Service::Iam,
            endpoint: None,
        });
        if let Some(r) = region_hints(rb).first() {
            targets.push(ProbeTarget {
                region: r.clone(),
                service: Service::Sts,
                endpoint: None,
            });
        }
    }
    cloud.reach.probe(targets);
}

/// Connects to AWS as the header says (credentials come from the environment and the
/// profile, never from the journal).
pub(super) async fn connect_aws(aws: &AwsHeader, rb: &Runbook) -> AwsCloud {
    AwsCloud::connect(AwsOptions {
        profile: aws.profile.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        region_hints: region_hints(rb),
        reach: None,
    })
    .await
}

/// AWS behind every trait, with a set of clients per `[accounts]` entry (its role
/// assumed on first use).
pub(super) async fn accounts_cloud(
    aws: &AwsCloud,
    rb: &Runbook,
) -> (crate::cloud::Cloud, BTreeMap<String, AwsCloud>) {
    let mut cloud = aws.cloud(Arc::new(LiveDataPlane::new()));
    let session = format!("drpilot-{}", rb.runbook.name);
    let mut clouds = BTreeMap::new();
    let mut by_name = BTreeMap::new();
    for (name, account) in &rb.accounts {
        let a = aws.for_account(account, &session).await;
        by_name.insert(name.clone(), a.cloud(Arc::new(LiveDataPlane::new())));
        clouds.insert(name.clone(), a);
    }
    cloud.accounts = Arc::new(by_name);
    (cloud, clouds)
}

/// The run's options; against AWS, with the IAM permission findings added to the
/// engine's preflight (the caller's identity and each account's).
pub(super) async fn with_iam_preflight(
    config: &RunConfig,
    aws: Option<&(AwsCloud, BTreeMap<String, AwsCloud>)>,
    rb: &Runbook,
) -> RunConfig {
    let mut config = config.clone();
    if let Some((aws, accounts)) = aws {
        config.extra_preflight =
            super::preflight::iam_findings(aws, accounts, rb, &config.skip).await;
    }
    config
}

/// `drpilot run`.
pub fn run(args: RunArgs, color: bool) -> u8 {
    let params: BTreeMap<String, String> = args.params.iter().cloned().collect();
    let (loaded, text) = match load_runbook(&args.file, &params) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rb = loaded.runbook;
    let approvals = match approvals(&args.exec, &rb) {
        Ok(a) => a,
        Err(e) => return fail(exit::USAGE, e),
    };
    let skip = match skips(&args.exec.skip_step, &rb) {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let state = match state_store(
        &args.exec.state.state,
        Some(&rb),
        args.exec.profile.as_deref(),
        args.exec.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let target =
        match Target::from_args(args.sim, args.sim_config.as_deref(), args.seed, &args.exec) {
            Ok(t) => t,
            Err(code) => return code,
        };
    let speed = target.speed();
    let run_id = new_run_id(&rb.runbook.name);
    let lock = match state.acquire(&rb.runbook.name, &run_id, args.exec.break_stale_lock) {
        Ok(l) => l,
        Err(e) => return lock_error(e, "break the lock"),
    };
    let rt = match runtime(speed) {
        Ok(rt) => rt,
        Err(e) => {
            lock.release();
            return fail(exit::USAGE, format!("failed to start the runtime: {e}"));
        }
    };
    let mut ui = Ui::new(&args.exec, args.on_failure.map(Into::into), color);
    ui.tick = speed != SimSpeed::Max;
    let config = RunConfig {
        prompter: None,
        approvals,
        on_failure: ui.policy(args.on_failure.map(Into::into)),
        deadline: args.exec.timeout,
        jitter_seed: match &target {
            Target::Sim { seed, .. } => Some(*seed),
            Target::Aws(_) => None,
        },
        verify_interval: None,
        skip,
        extra_preflight: Vec::new(),
        max_parallel: args.exec.max_parallel.map(|n| n as usize),
    };
    let plan = Plan::new(&rb);
    let state_warnings = state_findings(&rb, &state);
    let outcome = rt.block_on(async {
        let clock = Clock::with_speed(clock_speed(speed));
        let built = build(&target, &rb, &[], &clock).await?;
        let mut config = with_iam_preflight(&config, built.aws.as_ref(), &rb).await;
        config.extra_preflight.extend(state_warnings);
        let (clock, built) = if ui.guided {
            if !brief_and_confirm(&rb, &plan, &built.cloud, &clock, &config).await? {
                return Err(fail(
                    exit::ABORTED,
                    "not confirmed: nothing was changed and no run was recorded",
                ));
            }
            // The run's clock starts at the confirmation, not at the briefing; a
            // simulated world is built afresh on it (same seed, same world).
            let clock = Clock::with_speed(clock_speed(speed));
            let built = match target {
                Target::Sim { .. } => build(&target, &rb, &[], &clock).await?,
                Target::Aws(_) => built,
            };
            (clock, built)
        } else {
            (clock, built)
        };
        let result = launch(
            Launch {
                rb: &rb,
                path: &args.file,
                text: &text,
                params: &params,
                plan: &plan,
                state: &state,
                lock: &lock,
                run_id: run_id.clone(),
                ui,
                config,
            },
            &built,
            &clock,
        )
        .await?;
        Ok(result)
    });
    finish(outcome, lock, &run_id, args.exec.output)
}

/// One run of one runbook, as `launch` starts it. The caller holds the runbook's lock.
pub(super) struct Launch<'a> {
    pub rb: &'a Runbook,
    /// The runbook file, as the journal records it (a resume re-reads it).
    pub path: &'a Path,
    /// Its exact text: the digest and the run's copy.
    pub text: &'a str,
    /// `--param` overrides the runbook was loaded with.
    pub params: &'a BTreeMap<String, String>,
    pub plan: &'a Plan<'a>,
    pub state: &'a StateStore,
    /// The runbook's lock, held: its lease fences the journal's writes.
    pub lock: &'a RunLock,
    pub run_id: RunId,
    pub ui: Ui,
    pub config: RunConfig,
}

/// Creates the run's journal and runs it against what `built` reaches, on `clock`,
/// with the person's or the tool's output: the part of `drpilot run` after the lock
/// and the briefing, and one phase of `drpilot drill`. `Err` is an exit code when the
/// journal cannot be created (nothing ran).
pub(super) async fn launch(
    l: Launch<'_>,
    built: &Built,
    clock: &Clock,
) -> Result<engine::RunResult, u8> {
    let Launch {
        rb,
        path,
        text,
        params,
        plan,
        state,
        lock,
        run_id,
        ui,
        mut config,
    } = l;
    let header = Header {
        journal_version: crate::journal::JOURNAL_VERSION,
        run_id: run_id.clone(),
        runbook: rb.runbook.name.clone(),
        runbook_path: path.to_path_buf(),
        runbook_sha256: runbook_digest(text),
        created_at: jiff::Timestamp::now(),
        clock_origin: clock.origin(),
        sim: built.sim_header.clone(),
        aws: built.aws_header.clone(),
        params: params.clone(),
    };
    let journal = match state.create(&header, text, lock) {
        Ok(j) => j,
        Err(JournalError::Fenced(e)) => return Err(fail(exit::LOCK_HELD, e)),
        Err(e) => return Err(fail(exit::USAGE, e)),
    };
    if ui.output == Output::Human {
        eprintln!("run {run_id} (state in {})", state.run_location(&run_id));
    }
    let view = ui.live.then(|| {
        LiveView::new(
            plan,
            guided::title(rb, built.world.is_some()),
            clock.origin(),
            ui.color,
        )
        .with_menu(ui.menu)
    });
    if ui.interactive {
        config.prompter = Some(Arc::new(guided::TerminalPrompter::new(plan, view.clone())));
    }
    let world = built.world.clone().map(|w| match state.dir() {
        Some(d) => WorldStore::File(w, d.run_dir(&run_id).join("world.json")),
        None => WorldStore::Journal(w),
    });
    let result = execute(
        Execution {
            rb,
            plan,
            cloud: &built.cloud,
            clock,
            config: &config,
            run_id,
            ui,
            view,
        },
        world,
        journal,
        None,
    )
    .await;
    if let (Some((aws, _)), Output::Human) = (&built.aws, ui.output) {
        eprint!("{}", api_call_summary(aws));
    }
    Ok(result)
}

/// What a run's cloud calls go to, built for one clock.
pub(super) struct Built {
    pub cloud: crate::cloud::Cloud,
    /// The simulated world (`--sim`), saved beside the journal after every event.
    pub world: Option<Arc<SimWorld>>,
    pub sim_header: Option<SimHeader>,
    pub aws_header: Option<AwsHeader>,
    pub aws: Option<(AwsCloud, BTreeMap<String, AwsCloud>)>,
}

impl Built {
    /// The same simulated world for the next runbook of a drill (its failback sees the
    /// state the failover left); `None` against AWS, where each runbook connects with
    /// its own region hints and accounts.
    pub(super) fn same_world(&self) -> Option<Built> {
        let world = self.world.clone()?;
        Some(Built {
            cloud: world.cloud(),
            world: Some(world),
            sim_header: self.sim_header.clone(),
            aws_header: None,
            aws: None,
        })
    }
}

/// Builds the simulated world on `clock` (holding what `companions`, run later against
/// it, need too), or connects to AWS.
pub(super) async fn build(
    target: &Target,
    rb: &Runbook,
    companions: &[&Runbook],
    clock: &Clock,
) -> Result<Built, u8> {
    match target {
        Target::Sim {
            seed,
            speed,
            config,
            config_path,
        } => {
            let world = match SimWorld::from_runbooks(rb, companions, config, *seed, clock.clone())
            {
                Ok(w) => Arc::new(w),
                Err(e) => {
                    eprint!(
                        "{}",
                        e.render(runbook::RenderStyle::Fancy {
                            color: false,
                            width: 100
                        })
                    );
                    return Err(fail(
                        exit::USAGE,
                        "the simulated world cannot be built from this runbook and --sim-config",
                    ));
                }
            };
            let header = SimHeader {
                seed: *seed,
                speed: match speed {
                    SimSpeed::Times(n) => Some(*n),
                    SimSpeed::Max => None,
                },
                config: config_path.clone(),
            };
            watch_regions(&world.cloud(), rb, false);
            Ok(Built {
                cloud: world.cloud(),
                world: Some(world),
                sim_header: Some(header),
                aws_header: None,
                aws: None,
            })
        }
        Target::Aws(h) => {
            let aws = connect_aws(h, rb).await;
            let (cloud, accounts) = accounts_cloud(&aws, rb).await;
            watch_regions(&cloud, rb, true);
            Ok(Built {
                cloud,
                world: None,
                sim_header: None,
                aws_header: Some(h.clone()),
                aws: Some((aws, accounts)),
            })
        }
    }
}

/// Guided mode, before anything changes: the plan and the preflight table, then the
/// typed confirmation. `Ok(false)` when the operator did not confirm; exit 5 when
/// preflight blocks the run (nothing is asked, nothing recorded).
async fn brief_and_confirm(
    rb: &Runbook,
    plan: &Plan<'_>,
    cloud: &crate::cloud::Cloud,
    clock: &Clock,
    config: &RunConfig,
) -> Result<bool, u8> {
    eprintln!("checking readiness (read-only)...");
    let (ok, findings) = engine::preflight::all(rb, cloud, clock, config).await;
    let regions = cloud.reach.verdicts().await;
    eprint!("\n{}", guided::briefing(plan, ok, &findings, &regions));
    if !ok {
        return Err(fail(
            exit::PREFLIGHT_FAILED,
            "preflight failed: nothing was changed and no run was recorded",
        ));
    }
    let (phrase, what) = (guided::confirmation_phrase(rb), guided::intent(rb));
    Ok(
        tokio::task::spawn_blocking(move || guided::confirm_start(&phrase, &what))
            .await
            .unwrap_or(false),
    )
}

/// API requests per service and operation, for people (SDK retries included).
fn api_call_summary(aws: &AwsCloud) -> String {
    let calls = aws.api_calls();
    if calls.is_empty() {
        return String::new();
    }
    let mut per_service: BTreeMap<&str, u64> = BTreeMap::new();
    for (k, n) in &calls {
        *per_service
            .entry(k.split(':').next().unwrap_or(k))
            .or_default() += n;
    }
    let mut s = format!(
        "  API requests    {} ({})\n",
        calls.values().sum::<u64>(),
        per_service
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (k, n) in &calls {
        s.push_str(&format!("    {n:>5}  {k}\n"));
    }
    s
}

fn finish(
    outcome: Result<engine::RunResult, u8>,
    lock: RunLock,
    run_id: &RunId,
    output: Output,
) -> u8 {
    match outcome {
        Ok(result) => settle(&result, lock, run_id, output),
        Err(code) => {
            lock.release();
            code
        }
    }
}

/// After a run: its lock released unless it is resumable, the reason said, the exit
/// code.
pub(super) fn settle(
    result: &engine::RunResult,
    lock: RunLock,
    run_id: &RunId,
    output: Output,
) -> u8 {
    // Fenced: another process took the run over; this one wrote nothing after it
    // noticed, and its lock is not its own any more.
    if let Some(why) = lock.lost() {
        lock.keep();
        eprintln!("error: {why}");
        eprintln!(
            "error: run {run_id} stopped: this process may no longer write its journal (see `drpilot status {run_id}`)"
        );
        return exit::LOCK_HELD;
    }
    match result.outcome {
        Outcome::Succeeded
        | Outcome::RolledBack
        | Outcome::PreflightFailed
        | Outcome::NeedsAttention => lock.release(),
        // The run is resumable: it keeps its lock.
        Outcome::Paused | Outcome::Aborted => {
            lock.keep();
            if output == Output::Human {
                eprintln!(
                    "the run keeps its lock; continue with `drpilot resume {run_id} --retry|--skip|--rollback|--abort`"
                );
            }
        }
    }
    if let (Some(reason), Output::Human) = (&result.reason, output) {
        eprintln!("reason: {reason}");
    }
    result.outcome.exit_code()
}

/// Where a simulated run's world is saved after every event.
pub(super) enum WorldStore {
    /// `world.json` beside a local journal.
    File(Arc<SimWorld>, PathBuf),
    /// Inside each journal record (S3 stores: another machine resumes it).
    Journal(Arc<SimWorld>),
}

impl WorldStore {
    fn world(&self) -> &Arc<SimWorld> {
        match self {
            WorldStore::File(w, _) | WorldStore::Journal(w) => w,
        }
    }
}

/// What one execution of a run needs besides its journal and world.
struct Execution<'a> {
    rb: &'a Runbook,
    plan: &'a Plan<'a>,
    cloud: &'a crate::cloud::Cloud,
    clock: &'a Clock,
    config: &'a RunConfig,
    run_id: RunId,
    ui: Ui,
    view: Option<LiveView>,
}

/// Runs the engine with the sinks (saved world, journal, the person's or the tool's
/// output). `prior` holds the journal's events and the operator's decision for a
/// resumed run. In guided mode a failure pauses the engine, the operator chooses, and
/// the run continues in this process as `drpilot resume` would.
async fn execute(
    x: Execution<'_>,
    world: Option<WorldStore>,
    journal: JournalWriter,
    prior: Option<(Vec<Event>, Option<Decision>)>,
) -> engine::RunResult {
    let sim_seed = world.as_ref().map(|w| w.world().seed());
    let (mut world_sink, journal_world) = match world {
        Some(WorldStore::File(world, path)) => (Some(WorldSink { world, path }), None),
        Some(WorldStore::Journal(world)) => (None, Some(world)),
        None => (None, None),
    };
    let mut journal_sink = JournalSink {
        journal,
        world: journal_world,
    };
    let mut out: Box<dyn Sink> = match (x.ui.output, &x.view) {
        (Output::Json, _) => Box::new(NdjsonSink::new(std::io::stdout())),
        (Output::Human, Some(view)) => Box::new(view.sink()),
        (Output::Human, None) => Box::new(HumanSink::new(std::io::stderr())),
    };
    let (events, mut decision) = match prior {
        Some((events, d)) => (events, Some(d)),
        None => (Vec::new(), None),
    };
    if let Some(view) = &x.view {
        view.replay(&events);
    }
    let mut memory = MemorySink(events);
    // Under --output json stdout is for machines: a person follows the run in the log
    // lines on stderr. Human output already shows every event there.
    let mut log_sink = crate::report::log::TracingSink::new();
    loop {
        let prior = decision.take().map(|d| (Prior::from_events(&memory.0), d));
        let result = {
            let mut sinks: Vec<&mut dyn Sink> = Vec::with_capacity(5);
            if let Some(w) = world_sink.as_mut() {
                sinks.push(w);
            }
            sinks.push(&mut journal_sink);
            sinks.push(out.as_mut());
            // Only a guided run continues in-process after a pause and needs them.
            if x.ui.menu {
                sinks.push(&mut memory);
            }
            if x.ui.output == Output::Json {
                sinks.push(&mut log_sink);
            }
            let (interrupts, listener) =
                listen_for_interrupts(x.config.on_failure, x.ui.menu, x.view.clone());
            let ticker = match (&x.view, x.ui.tick) {
                (Some(view), true) => {
                    let (view, clock) = (view.clone(), x.clock.clone());
                    Some(tokio::spawn(async move {
                        let mut every = tokio::time::interval(Duration::from_secs(1));
                        loop {
                            every.tick().await;
                            view.tick(clock.elapsed());
                        }
                    }))
                }
                _ => None,
            };
            let ctx = engine::RunCtx {
                runbook: x.rb,
                plan: x.plan,
                cloud: x.cloud,
                clock: x.clock,
                run_id: x.run_id.clone(),
                config: x.config,
                prior,
                sim_seed,
            };
            let result = engine::run(ctx, &mut sinks, interrupts).await;
            listener.abort();
            if let Some(t) = ticker {
                t.abort();
            }
            result
        };
        if x.ui.menu && result.outcome == Outcome::Paused {
            let standing =
                guided::Standing::of(x.plan, &x.run_id.0, &memory.0, result.reason.clone());
            let chosen = tokio::task::spawn_blocking(move || guided::failure_menu(&standing))
                .await
                .unwrap_or(Decision::Abort);
            decision = Some(Some(chosen));
            continue;
        }
        if x.ui.output == Output::Human {
            eprint!(
                "{}",
                summary(x.rb, x.plan, &result, &x.run_id, &x.cloud.reach.current())
            );
        }
        return result;
    }
}

/// The end-of-run summary for people: outcome, makespan, critical path, and the
/// achieved RTO against the prediction and the objective.
fn summary(
    rb: &Runbook,
    plan: &Plan<'_>,
    r: &engine::RunResult,
    run_id: &RunId,
    regions: &[crate::cloud::reach::RegionStatus],
) -> String {
    let d = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&i| rb.steps[i].id.as_str())
        .collect();
    let mut s = format!(
        "\nsummary: {:?}, exit {}\n  makespan        {}\n  critical path   {}\n",
        r.outcome,
        r.outcome.exit_code(),
        d(r.makespan),
        path.join(" -> ")
    );
    let objective = rb
        .objectives
        .rto
        .map(|o| format!(" (objective {})", d(o)))
        .unwrap_or_default();
    match r.rto {
        Some(rto) => s.push_str(&format!(
            "  RTO             {} achieved, {} predicted{objective}{}\n",
            d(rto),
            d(plan.predicted_rto),
            match rb.objectives.rto {
                Some(o) if rto > o => "  MISSED",
                _ => "",
            }
        )),
        None => s.push_str(&format!(
            "  RTO             not measured (the run did not succeed); {} predicted{objective}\n",
            d(plan.predicted_rto)
        )),
    }
    let measures_rpo = rb.steps.iter().any(|st| st.spec.kind.is_heartbeat());
    let rpo_objective = rb
        .objectives
        .rpo
        .map(|o| format!(" (objective {})", d(o)))
        .unwrap_or_default();
    match r.rpo {
        Some(rpo) => s.push_str(&format!(
            "  RPO             {:.1}s measured from heartbeats{rpo_objective}{}\n",
            rpo.as_secs_f64(),
            match rb.objectives.rpo {
                Some(o) if rpo > o => "  MISSED",
                _ => "",
            }
        )),
        None if measures_rpo => s.push_str(&format!(
            "  RPO             not measured (no heartbeat step measured one){rpo_objective}\n"
        )),
        None => {}
    }
    if !r.failed.is_empty() {
        s.push_str(&format!(
            "  failed          {}\n",
            r.failed
                .iter()
                .map(StepId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !r.left_changed.is_empty() {
        s.push_str(&format!(
            "  STILL CHANGED   {} (not rolled back: a person must check these)\n",
            r.left_changed
                .iter()
                .map(StepId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !r.deferred.is_empty() {
        s.push_str(&format!(
            "  DEFERRED        {} (a region they need is unreachable): run `drpilot resume {run_id}` once it answers\n",
            r.deferred
                .iter()
                .map(StepId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Regions not answering normally at the end, grouped by region.
    let mut troubled: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for st in regions {
        if st.status != crate::cloud::reach::Reachability::Reachable {
            troubled
                .entry(st.region.as_str())
                .or_default()
                .push(format!("{} {}", st.service, st.status.as_str()));
        }
    }
    for (region, services) in troubled {
        s.push_str(&format!(
            "  region          {region}: {}\n",
            services.join(", ")
        ));
    }
    s
}

/// `drpilot resume`.
pub fn resume(args: ResumeArgs, color: bool) -> u8 {
    let state = match state_store(
        &args.exec.state.state,
        None,
        args.exec.profile.as_deref(),
        args.exec.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let run_id = RunId(args.run_id.clone());
    let read = match state.read_to_resume(&run_id) {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    let replay = &read.replay;
    for note in &replay.notes {
        eprintln!("note: {note}");
    }
    if replay.torn_tail {
        eprintln!(
            "warning: the journal's last line was cut short by a crash; that event was never acknowledged and is ignored"
        );
    }
    let prior = Prior::from_events(&replay.events);
    if prior.is_final() {
        return fail(
            exit::USAGE,
            format!(
                "run {run_id} already ended ({:?}); nothing to resume",
                prior.last_outcome.expect("final runs have an outcome")
            ),
        );
    }
    let header = &replay.header;
    // On another machine the runbook file may not be where the run started: the
    // store's copy is the exact text it started from (an S3 store is shared).
    let from_copy = !header.runbook_path.exists() && state.dir().is_none();
    let loaded = if from_copy {
        eprintln!(
            "note: {} is not on this machine; resuming from the run's copy in {}",
            header.runbook_path.display(),
            state.describe()
        );
        state
            .runbook_copy(&run_id)
            .map_err(|e| fail(exit::USAGE, e))
            .and_then(|text| {
                runbook::load_str_with(&header.runbook_path, &text, &header.params)
                    .map(|l| (l, text))
                    .map_err(|e| {
                        fail(
                            exit::USAGE,
                            format!("the run's runbook copy does not load: {e}"),
                        )
                    })
            })
    } else {
        load_runbook(&header.runbook_path, &header.params)
    };
    let (loaded, text) = match loaded {
        Ok(x) => x,
        Err(code) => return code,
    };
    let digest = runbook_digest(&text);
    if digest != header.runbook_sha256 {
        return fail(
            exit::USAGE,
            format!(
                "the runbook {} changed since run {run_id} started (sha256 {} then, {} now); \
                 resuming would mix two plans. Restore the original (a copy is in {}) or start a new run",
                header.runbook_path.display(),
                &header.runbook_sha256[..12],
                &digest[..12],
                state.run_location(&run_id)
            ),
        );
    }
    let rb = loaded.runbook;
    let approvals = match approvals(&args.exec, &rb) {
        Ok(a) => a,
        Err(e) => return fail(exit::USAGE, e),
    };
    let decision = if args.retry {
        Some(Decision::Retry)
    } else if args.skip {
        Some(Decision::Skip)
    } else if args.rollback {
        Some(Decision::Rollback)
    } else if args.abort {
        Some(Decision::Abort)
    } else {
        None
    };
    let mut ui = Ui::new(&args.exec, args.on_failure.map(Into::into), color);
    let plan = Plan::new(&rb);
    let mut decision = decision;
    if !prior.failed.is_empty() && decision.is_none() && !prior.rolling_back && ui.interactive {
        decision = Some(guided::failure_menu(&guided::Standing::of(
            &plan,
            &run_id.0,
            &replay.events,
            Some("steps failed and await a decision".into()),
        )));
    }
    if !prior.failed.is_empty() && decision.is_none() && !prior.rolling_back {
        let failed: Vec<&str> = prior.failed.iter().map(StepId::as_str).collect();
        return fail(
            exit::USAGE,
            format!(
                "run {run_id} has failed steps ({}): choose --retry, --skip, --rollback or --abort",
                failed.join(", ")
            ),
        );
    }
    let skip = match skips(&args.exec.skip_step, &rb) {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let sim = header.sim.clone();
    // A run against AWS resumes against the same endpoint and profile unless the
    // operator says otherwise (e.g. another profile on another machine).
    let aws = header.aws.clone().map(|h| AwsHeader {
        profile: args.exec.profile.clone().or(h.profile),
        endpoint_url: args.exec.endpoint_url.clone().or(h.endpoint_url),
    });
    if sim.is_none() && args.exec.sim_speed.is_some() {
        return fail(exit::USAGE, "--sim-speed applies only to simulated runs");
    }
    let lock = match state.acquire(&rb.runbook.name, &run_id, args.exec.break_stale_lock) {
        Ok(l) => l,
        Err(e) => return lock_error(e, "take it over"),
    };
    // The lock may have changed hands since the journal was read: read it again
    // under the lock, so this process goes on from the last record.
    let read = match state.read_to_resume(&run_id) {
        Ok(r) => r,
        Err(e) => {
            lock.release();
            return fail(exit::USAGE, e);
        }
    };
    let replay = &read.replay;
    let prior = Prior::from_events(&replay.events);
    if prior.is_final() {
        lock.release();
        return fail(
            exit::USAGE,
            format!("run {run_id} ended while this process waited for its lock"),
        );
    }
    let speed = match (&sim, args.exec.sim_speed) {
        (Some(_), Some(s)) => s,
        (Some(sim), None) => match sim.speed {
            Some(n) => SimSpeed::Times(n),
            None => SimSpeed::Max,
        },
        (None, _) => SimSpeed::Times(1.0),
    };
    let rt = match runtime(speed) {
        Ok(rt) => rt,
        Err(e) => {
            lock.release();
            return fail(exit::USAGE, format!("failed to start the runtime: {e}"));
        }
    };
    ui.tick = speed != SimSpeed::Max;
    let mut config = RunConfig {
        prompter: None,
        approvals,
        on_failure: ui.policy(args.on_failure.map(Into::into)),
        deadline: args.exec.timeout,
        jitter_seed: sim.as_ref().map(|s| s.seed ^ prior.events as u64),
        verify_interval: None,
        skip,
        extra_preflight: Vec::new(),
        max_parallel: args.exec.max_parallel.map(|n| n as usize),
    };
    let world_path = state.dir().map(|d| d.run_dir(&run_id).join("world.json"));
    let last_at = replay.events.last().map_or(header.clock_origin, |e| e.at);
    let elapsed =
        Duration::try_from(last_at.duration_since(header.clock_origin)).unwrap_or_default();
    let outcome = rt.block_on(async {
        let clock = Clock::resume(clock_speed(speed), header.clock_origin, elapsed);
        let (cloud, world, aws_cloud) = match &sim {
            Some(_) => {
                let saved = match &world_path {
                    Some(path) => std::fs::read(path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            serde_json::from_slice::<serde_json::Value>(&b)
                                .map_err(|e| e.to_string())
                        })
                        .map_err(|e| format!("{}: {e}", path.display())),
                    None => replay.world.clone().ok_or_else(|| {
                        format!("no record of {} holds it", state.run_location(&run_id))
                    }),
                };
                let snapshot = match saved {
                    Ok(v) => v,
                    Err(e) => {
                        return Err(fail(
                            exit::USAGE,
                            format!("cannot read the simulated world: {e}"),
                        ));
                    }
                };
                let world = match SimWorld::restore(&snapshot, clock.clone()) {
                    Ok(w) => Arc::new(w),
                    Err(e) => {
                        return Err(fail(
                            exit::USAGE,
                            format!("cannot restore the simulated world: {e}"),
                        ));
                    }
                };
                let store = match &world_path {
                    Some(p) => WorldStore::File(world.clone(), p.clone()),
                    None => WorldStore::Journal(world.clone()),
                };
                let cloud = world.cloud();
                watch_regions(&cloud, &rb, false);
                (cloud, Some(store), None)
            }
            None => {
                let aws = connect_aws(&aws.clone().unwrap_or_default(), &rb).await;
                let (cloud, accounts) = accounts_cloud(&aws, &rb).await;
                watch_regions(&cloud, &rb, true);
                (cloud, None, Some((aws, accounts)))
            }
        };
        let view = ui.live.then(|| {
            LiveView::new(
                &plan,
                guided::title(&rb, world.is_some()),
                header.clock_origin,
                ui.color,
            )
            .with_menu(ui.menu)
        });
        if ui.interactive {
            config.prompter = Some(Arc::new(guided::TerminalPrompter::new(&plan, view.clone())));
        }
        let config = with_iam_preflight(&config, aws_cloud.as_ref(), &rb).await;
        let journal = match state.open(&read, &lock) {
            Ok(j) => j,
            Err(JournalError::Fenced(e)) => return Err(fail(exit::LOCK_HELD, e)),
            Err(e) => return Err(fail(exit::USAGE, e)),
        };
        let result = execute(
            Execution {
                rb: &rb,
                plan: &plan,
                cloud: &cloud,
                clock: &clock,
                config: &config,
                run_id: run_id.clone(),
                ui,
                view,
            },
            world,
            journal,
            Some((replay.events.clone(), decision)),
        )
        .await;
        if let (Some((aws, _)), Output::Human) = (&aws_cloud, args.exec.output) {
            eprint!("{}", api_call_summary(aws));
        }
        Ok(result)
    });
    finish(outcome, lock, &run_id, args.exec.output)
}

/// `drpilot status [RUN_ID]`.
pub fn status(
    run_id: Option<String>,
    state: &[String],
    aws: &super::args::StoreAwsArgs,
    output: Output,
) -> u8 {
    let state = match state_store(
        state,
        None,
        aws.profile.as_deref(),
        aws.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // The words are the run report's (`report --format json`'s `outcome.status` and
    // step `state`, snake_case in JSON, spelled out for people), plus `running` while a
    // live process holds the run's lock.
    let live = |replay: &crate::journal::Replay| -> Option<crate::journal::LockHolder> {
        state
            .holder(&replay.header.runbook)
            .ok()
            .flatten()
            .filter(|(h, stale)| h.run_id == replay.header.run_id && !stale)
            .map(|(h, _)| h)
    };
    let token = |status: RunStatus| {
        serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let holder_json = |h: &crate::journal::LockHolder| serde_json::json!({"pid": h.pid, "host": h.host, "since": h.since});
    let running_words =
        |h: &crate::journal::LockHolder| format!("running (pid {} on {})", h.pid, h.host);
    match run_id {
        None => {
            let runs = match state.runs() {
                Ok(r) => r,
                Err(e) => return fail(exit::USAGE, e),
            };
            let mut lines = Vec::new();
            for r in &runs {
                let prior = Prior::from_events(&r.events);
                let status = prior
                    .last_outcome
                    .map_or(RunStatus::Interrupted, RunStatus::from);
                let holder = live(r);
                match output {
                    Output::Json => lines.push(
                        serde_json::json!({
                            "run_id": r.header.run_id,
                            "runbook": r.header.runbook,
                            "created_at": r.header.created_at,
                            "status": holder.as_ref().map_or_else(|| token(status), |_| "running".into()),
                            "holder": holder.as_ref().map(holder_json),
                            "succeeded": prior.succeeded.len(),
                        })
                        .to_string(),
                    ),
                    Output::Human => lines.push(format!(
                        "{:<50} {:<28} {}",
                        r.header.run_id.0,
                        holder
                            .as_ref()
                            .map_or_else(|| status.label().to_string(), running_words),
                        r.header.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
                    )),
                }
            }
            if lines.is_empty() && output == Output::Human {
                eprintln!("no runs in {}", state.describe());
            }
            super::print_stdout(&lines.iter().map(|l| format!("{l}\n")).collect::<String>())
        }
        Some(id) => {
            let replay = match state.replay(&RunId(id)) {
                Ok(r) => r,
                Err(e) => return fail(exit::USAGE, e),
            };
            for note in &replay.notes {
                eprintln!("note: {note}");
            }
            let holder = live(&replay);
            // The run's own copy of its runbook, with its `--param` overrides, as the run
            // read it: every step is listed, the ones that never started too.
            let rb_text = state
                .runbook_copy(&replay.header.run_id)
                .unwrap_or_default();
            let parsed = parse_runbook_copy(&replay.header, &rb_text);
            let copy = match &parsed {
                Ok(rb) => RunbookCopy::Parsed(rb),
                Err(why) => RunbookCopy::Unusable(why),
            };
            let report = RunReport::build(&replay.header, &replay.events, copy);
            let outcome = &report.outcome;
            let text = match output {
                Output::Json => format!(
                    "{}\n",
                    serde_json::json!({
                        "run_id": replay.header.run_id,
                        "runbook": replay.header.runbook,
                        "status": holder.as_ref().map_or_else(|| token(outcome.status), |_| "running".into()),
                        "holder": holder.as_ref().map(holder_json),
                        "exit_code": outcome.exit_code,
                        "resumable": outcome.resumable,
                        "reason": outcome.reason,
                        "deferred": outcome.deferred,
                        "steps": report.steps.iter().map(|s| serde_json::json!({"step": s.id, "state": s.state})).collect::<Vec<_>>(),
                    })
                ),
                Output::Human => {
                    let mut t = format!(
                        "run {} of {}: {}\n",
                        replay.header.run_id,
                        replay.header.runbook,
                        holder
                            .as_ref()
                            .map_or_else(|| outcome.describe(), running_words)
                    );
                    if let Some(why) = &outcome.reason {
                        t.push_str(&format!("  why: {why}\n"));
                    }
                    if !outcome.deferred.is_empty() {
                        let names: Vec<&str> =
                            outcome.deferred.iter().map(StepId::as_str).collect();
                        t.push_str(&format!(
                            "  deferred: {} (a region they need was unreachable): `drpilot resume {}` runs them\n",
                            names.join(", "),
                            replay.header.run_id
                        ));
                    }
                    for s in &report.steps {
                        t.push_str(&format!("  {:<32} {}\n", s.id.as_str(), s.state.label()));
                    }
                    t
                }
            };
            super::print_stdout(&text)
        }
    }
}
