//! `drpilot drill FILE --failback FILE2`: a scheduled game day.
//!
//! The sequence: check everything (both runbooks, flags, the window's spec, the sim
//! config) with no side effect; refuse outside `--window` (exit 2, nothing created);
//! make sure `--report-dir` is writable (exit 2 before anything runs); take the drill's
//! lock (`drill-<runbook>`: a second drill exits 6); phase 1 runs FILE as a normal run
//! (its own run id, journal, runbook lock and preflight); if it did not succeed the
//! drill stops there with its exit code; otherwise the failed-over stack soaks for
//! `--soak` on the run clock, then phase 2 runs FILE2 the same way. Each phase's RTO is
//! the one its run measured (until its `recovered_when` steps passed) and its RPO the
//! one its events carry; both are compared with the phase's runbook's objectives. The
//! exit code is the first failed phase's, else 7 when an objective was missed, else 0.
//!
//! With `--sim` both phases run against ONE simulated world, built from FILE with FILE2
//! as a companion (so the failback finds what it names), and phase 2 acts on the state
//! phase 1 left, on a clock that continues the same time line from its own zero.
//!
//! Reports come from the phases' journals like `drpilot report`'s, never from engine
//! state. stdout stays what `--output json` promises (the runs' events, valid against
//! docs/events.schema.json); the drill's summary goes to stderr as a table and to the
//! report directory as `drill.md` and `drill.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::error::AppError;
use super::execute::{Launch, launch, settle};
use super::input::{approvals, load_runbook, new_run_id, skips};
use super::notify::Notify;
use super::settings::{Exec, Output, SimSpeed, Ui};
use super::store::{lock_error, state_store};
use super::target::{
    Built, Target, build, clock_speed, runtime, watch_regions, with_iam_preflight,
};
use super::window::Window;
use crate::clock::Clock;
use crate::engine::{Approvals, OnFailure, RunConfig, RunId, RunResult};
use crate::exit;
use crate::journal::{LockError, RunLock, StateStore};
use crate::plan::Plan;
use crate::plan::history::HistoryPrediction;
use crate::report::Format as ReportFormat;
use crate::report::escape::{md, md_code};
use crate::report::run_report::{Objective, RunReport, RunStatus, human_secs};
use crate::runbook::{self, Runbook, StepId};

/// Version of `drill.json`'s shape (docs/report.md): fields are only ever added.
pub const DRILL_VERSION: u32 = 1;

/// What `drpilot drill` asks for.
#[derive(Clone, Debug)]
pub struct DrillRequest {
    /// The failover runbook.
    pub file: PathBuf,
    /// The failback runbook.
    pub failback: PathBuf,
    /// Where the reports go.
    pub report_dir: Option<PathBuf>,
    /// When the drill may start (`--window`).
    pub window: Option<String>,
    /// How long the failed-over stack soaks before the failback.
    pub soak: Duration,
    /// Against the simulated world instead of AWS.
    pub sim: bool,
    /// The simulated world's config file.
    pub sim_config: Option<PathBuf>,
    /// The simulated world's seed.
    pub seed: Option<u64>,
    /// `--param` overrides, for whichever runbook declares each.
    pub params: Vec<(String, String)>,
    /// The execution options.
    pub exec: Exec,
    /// Colour in what people read.
    pub color: bool,
}

/// Which half of the drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Failover,
    Failback,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Failover => "failover",
            Phase::Failback => "failback",
        }
    }
}

/// A runbook ready for its phase: loaded with its `--param`s, its flags checked.
struct Prepared {
    phase: Phase,
    path: PathBuf,
    rb: Runbook,
    text: String,
    params: BTreeMap<String, String>,
    approvals: Approvals,
    skip: BTreeSet<StepId>,
    /// The RTO earlier runs of it predict (same target kind: simulated or not).
    history: Option<HistoryPrediction>,
    /// Who hears of its run.
    notify: Notify,
}

/// How a phase ended.
struct PhaseEnd {
    /// The run, when one was created.
    run_id: Option<RunId>,
    result: Option<RunResult>,
    /// Its exit code (0: it succeeded).
    code: u8,
    /// Why it did not run, or stopped before its run, for the summary.
    note: Option<String>,
}

impl PhaseEnd {
    fn not_run(code: u8, note: impl Into<String>) -> Self {
        PhaseEnd {
            run_id: None,
            result: None,
            code,
            note: Some(note.into()),
        }
    }
}

/// Loads one runbook with the overrides it declares; returns the keys it used.
fn prepare_runbook(
    path: &Path,
    overrides: &BTreeMap<String, String>,
) -> Result<(Runbook, String, BTreeMap<String, String>), AppError> {
    let declared: BTreeSet<String> = match runbook::load(path) {
        Ok(l) => l.runbook.params.keys().cloned().collect(),
        // Let the run's loader render the problems (and return its exit code).
        Err(_) => BTreeSet::new(),
    };
    let params: BTreeMap<String, String> = overrides
        .iter()
        .filter(|(k, _)| declared.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (loaded, text) = load_runbook(path, &params)?;
    Ok((loaded.runbook, text, params))
}

/// Splits `--approve`/`--skip-step` names between the runbooks that have such a step:
/// one flag serves both phases, and a name neither has is a typo.
fn split_names(
    names: &[String],
    rbs: [&Runbook; 2],
    flag: &str,
) -> Result<[Vec<String>; 2], String> {
    let mut out = [Vec::new(), Vec::new()];
    for name in names {
        let mut found = false;
        for (k, rb) in rbs.iter().enumerate() {
            if rb.steps.iter().any(|s| s.id.as_str() == name) {
                out[k].push(name.clone());
                found = true;
            }
        }
        if !found {
            let ids = rbs
                .iter()
                .flat_map(|rb| rb.steps.iter().map(|s| s.id.as_str()));
            let hint = runbook::diag::did_you_mean(name, ids)
                .map(|m| format!(" (did you mean `{m}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "{flag} {name}: neither runbook has such a step{hint}"
            ));
        }
    }
    Ok(out)
}

/// `--report-dir`: created if missing and proven writable before anything runs.
fn check_report_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--report-dir {}: cannot create it: {e}", dir.display()))?;
    let probe = dir.join(format!(".drpilot-probe-{}", std::process::id()));
    let written = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"probe"));
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| format!("--report-dir {}: cannot write in it: {e}", dir.display()))
}

/// `drpilot drill`.
pub fn drill(args: DrillRequest) -> Result<u8, AppError> {
    let color = args.color;
    // ---- pass 1: check everything, change nothing ----
    let overrides: BTreeMap<String, String> = args.params.iter().cloned().collect();
    let (rb1, text1, params1) = prepare_runbook(&args.file, &overrides)?;
    let (rb2, text2, params2) = prepare_runbook(&args.failback, &overrides)?;
    if let Some(k) = overrides
        .keys()
        .find(|k| !params1.contains_key(*k) && !params2.contains_key(*k))
    {
        return Err(AppError::usage(format!(
            "--param {k}: neither runbook declares a parameter `{k}`"
        )));
    }
    if rb1.runbook.name == rb2.runbook.name {
        return Err(AppError::usage(format!(
            "{} and --failback {} are the same runbook (`{}`): a drill fails over with one and back with the other",
            args.file.display(),
            args.failback.display(),
            rb1.runbook.name
        )));
    }
    let [approve1, approve2] = match split_names(&args.exec.approve, [&rb1, &rb2], "--approve") {
        Ok(x) => x,
        Err(e) => return Err(AppError::usage(e)),
    };
    let [skip1, skip2] = match split_names(&args.exec.skip_step, [&rb1, &rb2], "--skip-step") {
        Ok(x) => x,
        Err(e) => return Err(AppError::usage(e)),
    };
    let with_approve = |names: Vec<String>| Exec {
        approve: names,
        ..args.exec.clone()
    };
    let (approvals1, approvals2) = match (
        approvals(&with_approve(approve1), &rb1),
        approvals(&with_approve(approve2), &rb2),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(AppError::usage(e)),
    };
    let (skip1, skip2) = match (skips(&skip1, &rb1), skips(&skip2, &rb2)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(AppError::usage(e)),
    };
    let (notify1, notify2) = (
        Notify::resolve(&args.exec.notify, &rb1)?.with_report_dir(args.report_dir.clone()),
        Notify::resolve(&args.exec.notify, &rb2)?.with_report_dir(args.report_dir.clone()),
    );
    let window = match args.window.as_deref().map(Window::parse).transpose() {
        Ok(w) => w,
        Err(e) => return Err(AppError::usage(format!("--window: {e}"))),
    };
    let state = state_store(
        &args.exec.state,
        Some(&rb1),
        args.exec.profile.as_deref(),
        args.exec.endpoint_url.as_deref(),
    )?;
    let target = Target::from_args(args.sim, args.sim_config.as_deref(), args.seed, &args.exec)?;
    let speed = target.speed();

    // ---- the window, then the report directory: refused before anything exists ----
    if let Some(w) = &window
        && let Some(why) = w.refusal(jiff::Timestamp::now())
    {
        return Err(AppError::usage(format!("{why}; nothing was started")));
    }
    if let Some(dir) = &args.report_dir
        && let Err(e) = check_report_dir(dir)
    {
        return Err(AppError::usage(format!("{e}; nothing was started")));
    }

    // Earlier runs, read before this drill adds its own.
    let simulated = args.sim;
    let history = |rb: &Runbook| {
        state
            .history(&rb.runbook.name, |h| h.sim.is_some() == simulated)
            .predict(rb)
    };
    let phases = [
        Prepared {
            phase: Phase::Failover,
            path: args.file.clone(),
            history: history(&rb1),
            rb: rb1,
            text: text1,
            params: params1,
            approvals: approvals1,
            skip: skip1,
            notify: notify1,
        },
        Prepared {
            phase: Phase::Failback,
            path: args.failback.clone(),
            history: history(&rb2),
            rb: rb2,
            text: text2,
            params: params2,
            approvals: approvals2,
            skip: skip2,
            notify: notify2,
        },
    ];
    let beats = match crate::actions::heartbeats::declared(&[&phases[0].rb, &phases[1].rb]) {
        Ok(b) => b,
        Err(e) => return Err(AppError::usage(e.message)),
    };
    let rt = match runtime(speed) {
        Ok(rt) => rt,
        Err(e) => return Err(AppError::usage(format!("failed to start the runtime: {e}"))),
    };
    let mut ui = Ui::scheduled(&args.exec, color);
    ui.tick = speed != SimSpeed::Max;
    let drill_id = new_run_id(&format!("drill-{}", phases[0].rb.runbook.name));
    let started_at = jiff::Timestamp::now();

    // ---- the phases ----
    let outcome = rt.block_on(async {
        let clock = Clock::with_speed(clock_speed(speed));
        // Phase 1's world (or AWS connection); in --sim it holds what phase 2 needs.
        let built = build(&target, &phases[0].rb, &[&phases[1].rb], &clock).await?;
        let lock = acquire_drill_lock(&state, &phases[0].rb.runbook.name, &drill_id)?;
        if ui.output == Output::Human {
            eprintln!(
                "drill {drill_id}: {} then, after a {} soak, {} ({})",
                phases[0].rb.runbook.name,
                human_secs(args.soak.as_secs_f64()),
                phases[1].rb.runbook.name,
                match &target {
                    Target::Sim { seed, .. } => format!("simulated world, seed {seed}"),
                    Target::Aws(_) => "AWS".into(),
                }
            );
        }
        // Heartbeats for both phases' heartbeat steps (read before anything is taken),
        // written from before the failover until the failback is verified, so each
        // phase measures its data-loss window.
        // The head start is not part of the failover: its clock starts after it.
        let (_writers, clock) = if beats.is_empty() {
            (None, clock)
        } else {
            let writers =
                crate::actions::heartbeats::Writers::start(built.cloud.data.clone(), &beats, &clock, |_, _| {});
            let head_start = beats
                .iter()
                .map(|b| b.interval)
                .max()
                .unwrap_or_default()
                * 3;
            if ui.output == Output::Human {
                for b in &beats {
                    eprintln!(
                        "heartbeats: writing to {}:{} every {} for {}",
                        b.target.endpoint.host,
                        b.target.endpoint.port,
                        humantime::format_duration(b.interval),
                        b.steps.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
            }
            clock.sleep(head_start).await;
            (Some(writers), clock.restarted())
        };
        let ctx = PhaseCtx {
            state: &state,
            exec: &args.exec,
            ui,
            drill_id: &drill_id,
            sim_seed: match &target {
                Target::Sim { seed, .. } => Some(*seed),
                Target::Aws(_) => None,
            },
        };
        let first = run_phase(&ctx, &phases[0], &built, &clock).await;
        let mut ends = vec![first];
        if ends[0].code != exit::SUCCESS {
            return Ok((lock, ends));
        }
        if ui.output == Output::Human && !args.soak.is_zero() {
            eprintln!(
                "\nfailover verified; soaking {} before the failback",
                human_secs(args.soak.as_secs_f64())
            );
        }
        let soaked = tokio::select! {
            () = clock.sleep(args.soak) => true,
            r = tokio::signal::ctrl_c() => r.is_err(),
        };
        if !soaked {
            ends.push(PhaseEnd::not_run(
                exit::ABORTED,
                "interrupted during the soak; the failover stands: fail back with `drpilot run` when ready",
            ));
            return Ok((lock, ends));
        }
        // The failback's clock continues the same time line from its own zero.
        let clock = clock.restarted();
        let built = match built.same_world() {
            Some(b) => {
                // The same world and breaker: what phase 1 learned stands, and the
                // failback's own targets are probed too.
                watch_regions(&b.cloud, &phases[1].rb, false);
                b
            }
            None => match build(&target, &phases[1].rb, &[], &clock).await {
                Ok(b) => b,
                Err(e) => {
                    ends.push(PhaseEnd::not_run(e.report(), "its target could not be reached"));
                    return Ok((lock, ends));
                }
            },
        };
        ends.push(run_phase(&ctx, &phases[1], &built, &clock).await);
        Ok((lock, ends))
    });
    let (lock, ends) = outcome?;

    // ---- reports and the verdict ----
    let summary = Summary::new(&drill_id, &phases, &ends, &state, started_at);
    let mut code = summary.exit_code();
    eprint!("{}", summary.table(args.report_dir.as_deref()));
    if let Some(dir) = &args.report_dir {
        let doc = summary.json(&args, window.as_ref(), &target);
        if let Err(e) = summary.write(dir, &doc) {
            eprintln!("error: {e}");
            if code == exit::SUCCESS {
                code = exit::USAGE;
            }
        }
    }
    lock.release();
    Ok(code)
}

/// Takes `drill-<runbook>`. A dead drill's lock is taken over: it guards drills
/// against each other, while each phase's runbook lock guards the resources.
fn acquire_drill_lock(
    state: &StateStore,
    runbook: &str,
    drill_id: &RunId,
) -> Result<RunLock, AppError> {
    match state.acquire(&format!("drill-{runbook}"), drill_id, true) {
        Ok(l) => Ok(l),
        Err(LockError::Held { holder, .. }) => Err(AppError::new(
            exit::LOCK_HELD,
            format!(
                "another drill of `{runbook}` is running: {} (pid {} on {}, since {})",
                holder.run_id, holder.pid, holder.host, holder.since
            ),
        )),
        Err(e) => Err(AppError::usage(e)),
    }
}

/// What every phase shares.
struct PhaseCtx<'a> {
    state: &'a StateStore,
    exec: &'a Exec,
    ui: Ui,
    sim_seed: Option<u64>,
    /// The drill's id, in each phase's journal header.
    drill_id: &'a RunId,
}

/// One phase: the runbook's lock, its own run (journal, preflight, steps), the lock
/// settled as `drpilot run` settles it.
async fn run_phase(ctx: &PhaseCtx<'_>, p: &Prepared, built: &Built, clock: &Clock) -> PhaseEnd {
    let run_id = new_run_id(&p.rb.runbook.name);
    let store = ctx.state;
    let lock = match store.acquire(&p.rb.runbook.name, &run_id, ctx.exec.break_stale_lock) {
        Ok(l) => l,
        Err(e) => {
            return PhaseEnd::not_run(
                lock_error(e, "break the lock").report(),
                "its runbook is locked by another run",
            );
        }
    };
    if ctx.ui.output == Output::Human {
        eprintln!("\n{}: {}", p.phase.name(), p.rb.runbook.name);
    }
    let config = RunConfig {
        prompter: None,
        approvals: p.approvals.clone(),
        on_failure: OnFailure::Rollback,
        deadline: ctx.exec.timeout,
        jitter_seed: ctx.sim_seed,
        verify_interval: None,
        skip: p.skip.clone(),
        extra_preflight: Vec::new(),
        max_parallel: ctx.exec.max_parallel.map(|n| n as usize),
        approval_source: Some(std::sync::Arc::new(super::approvals::StoreApprovals::new(
            store.clone(),
            run_id.clone(),
        ))),
        await_approvals: ctx.exec.await_approvals,
    };
    let mut config = with_iam_preflight(&config, built.aws.as_ref(), &p.rb, store).await;
    config.extra_preflight.extend(p.notify.findings(&p.rb));
    let plan = Plan::new(&p.rb);
    let launched = launch(
        Launch {
            rb: &p.rb,
            path: &p.path,
            text: &p.text,
            params: &p.params,
            plan: &plan,
            state: store,
            lock: &lock,
            run_id: run_id.clone(),
            ui: ctx.ui,
            config,
            notify: &p.notify,
            drill: Some(ctx.drill_id.clone()),
        },
        built,
        clock,
    )
    .await;
    match launched {
        Ok(result) => PhaseEnd {
            code: settle(&result, lock, &run_id, ctx.ui.output),
            // Housekeeping a dark region made it leave for later: the drill goes on
            // (service was restored), and says what to finish.
            note: (!result.deferred.is_empty()).then(|| {
                format!(
                    "deferred {} (a region it needs was unreachable): `drpilot resume {run_id}` runs it once the region answers",
                    result
                        .deferred
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
            run_id: Some(run_id),
            result: Some(result),
        },
        Err(e) => {
            lock.release();
            PhaseEnd::not_run(e.report(), "its journal could not be created")
        }
    }
}

/// One phase as the summary shows it.
struct Row<'a> {
    p: &'a Prepared,
    end: Option<&'a PhaseEnd>,
    /// Its report, from its journal.
    report: Option<RunReport>,
    /// Why there is no report.
    report_error: Option<String>,
    predicted: Duration,
}

impl Row<'_> {
    fn status(&self) -> String {
        match (self.end, &self.report) {
            (None, _) => "not run".into(),
            (Some(_), Some(r)) => r.outcome.describe(),
            (Some(e), None) => match &e.result {
                Some(r) => format!("{} (exit {})", RunStatus::from(r.outcome).label(), e.code),
                None => format!("not run (exit {})", e.code),
            },
        }
    }

    fn objectives(&self) -> Option<(&Objective, &Objective)> {
        self.report.as_ref().map(|r| (&r.rto, &r.rpo))
    }

    /// Each missed objective, named.
    fn missed(&self) -> Vec<String> {
        let Some((rto, rpo)) = self.objectives() else {
            return Vec::new();
        };
        [("RTO", rto), ("RPO", rpo)]
            .into_iter()
            .filter(|(_, o)| o.missed())
            .map(|(name, o)| {
                format!(
                    "{} ({}): {name} {} exceeds the objective {}",
                    self.p.phase.name(),
                    self.p.rb.runbook.name,
                    human_secs(o.achieved_secs.unwrap_or_default()),
                    human_secs(o.objective_secs.unwrap_or_default())
                )
            })
            .collect()
    }

    /// "predicted 3m 46s from the runbook's expectations; 3m 50s median / ...".
    fn prediction(&self) -> String {
        let expected = format!(
            "predicted {} from the runbook's expectations",
            human_secs(self.predicted.as_secs_f64())
        );
        match &self.p.history {
            Some(h) => format!("{expected}; {}", h.describe()),
            None => format!("{expected} (no earlier runs to compare)"),
        }
    }

    fn why_not(&self) -> Option<String> {
        match self.end {
            None => Some(format!(
                "not run: the {} did not succeed",
                Phase::Failover.name()
            )),
            Some(e) => e.note.clone().or_else(|| self.report_error.clone()),
        }
    }
}

/// Measure "value (objective) verdict" for the table.
fn measure(o: Option<&Objective>) -> String {
    let Some(o) = o else {
        return "-".into();
    };
    let value = o
        .achieved_secs
        .map_or("not measured".to_string(), human_secs);
    let objective = o
        .objective_secs
        .map_or("no objective".to_string(), human_secs);
    match o.met {
        Some(true) => format!("{value} / {objective} met"),
        Some(false) => format!("{value} / {objective} MISSED"),
        None => format!("{value} / {objective}"),
    }
}

/// The drill's result, built from the phases' journals.
struct Summary<'a> {
    drill_id: &'a RunId,
    rows: Vec<Row<'a>>,
    ends: &'a [PhaseEnd],
    started_at: jiff::Timestamp,
    finished_at: jiff::Timestamp,
}

impl<'a> Summary<'a> {
    fn new(
        drill_id: &'a RunId,
        phases: &'a [Prepared; 2],
        ends: &'a [PhaseEnd],
        state: &StateStore,
        started_at: jiff::Timestamp,
    ) -> Self {
        let rows = phases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let end = ends.get(i);
                let loaded = end
                    .and_then(|e| e.run_id.as_ref())
                    .map(|id| crate::report::load(state, id));
                let (report, report_error) = match loaded {
                    Some(Ok(r)) => (Some(r), None),
                    Some(Err(e)) => (None, Some(e)),
                    None => (None, None),
                };
                Row {
                    p,
                    end,
                    report,
                    report_error,
                    predicted: Plan::new(&p.rb).predicted_rto,
                }
            })
            .collect();
        Summary {
            drill_id,
            rows,
            ends,
            started_at,
            finished_at: jiff::Timestamp::now(),
        }
    }

    fn missed(&self) -> Vec<String> {
        self.rows.iter().flat_map(Row::missed).collect()
    }

    /// The first failed phase's code (a failure says more than a missed objective),
    /// else 7 when an objective was missed, else 0.
    fn exit_code(&self) -> u8 {
        if let Some(e) = self.ends.iter().find(|e| e.code != exit::SUCCESS) {
            return e.code;
        }
        if self.ends.len() < 2 {
            // Cannot happen: a phase that succeeded is always followed by the next.
            return exit::NEEDS_PERSON;
        }
        if self.missed().is_empty() {
            exit::SUCCESS
        } else {
            exit::OBJECTIVE_MISSED
        }
    }

    fn verdict(&self) -> String {
        match self.exit_code() {
            exit::SUCCESS => "every objective met (exit 0)".into(),
            exit::OBJECTIVE_MISSED => "objective MISSED (exit 7)".into(),
            code => format!("FAILED (exit {code})"),
        }
    }

    /// The table on stderr.
    fn table(&self, report_dir: Option<&Path>) -> String {
        let mut rows = vec![[
            "phase".to_string(),
            "run".into(),
            "outcome".into(),
            "RTO / objective".into(),
            "RPO / objective".into(),
        ]];
        for r in &self.rows {
            let objectives = r.objectives();
            rows.push([
                r.p.phase.name().into(),
                r.end
                    .and_then(|e| e.run_id.as_ref())
                    .map_or("-".into(), |id| id.to_string()),
                r.status(),
                measure(objectives.map(|o| o.0)),
                measure(objectives.map(|o| o.1)),
            ]);
        }
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut s = format!("\ndrill {}: {}\n", self.drill_id, self.verdict());
        for row in &rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:w$}"))
                .collect();
            s.push_str(&format!("  {}\n", line.join("  ").trim_end()));
        }
        for r in &self.rows {
            s.push_str(&format!("  {} RTO: {}\n", r.p.phase.name(), r.prediction()));
            if let Some(why) = r.why_not() {
                s.push_str(&format!("  {}: {why}\n", r.p.phase.name()));
            }
        }
        for m in self.missed() {
            s.push_str(&format!("  MISSED {m}\n"));
        }
        if let Some(dir) = report_dir {
            s.push_str(&format!("  reports in {}\n", dir.display()));
        }
        s
    }

    /// `drill.json`.
    fn json(
        &self,
        args: &DrillRequest,
        window: Option<&Window>,
        target: &Target,
    ) -> serde_json::Value {
        let objective = |o: Option<&Objective>| {
            o.map(|o| {
                json!({
                    "achieved_secs": o.achieved_secs,
                    "objective_secs": o.objective_secs,
                    "met": o.met,
                })
            })
        };
        let phases: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let objectives = r.objectives();
                let run_id = r.end.and_then(|e| e.run_id.as_ref());
                let mut rto = objective(objectives.map(|o| o.0)).unwrap_or(json!({
                    "achieved_secs": null,
                    "objective_secs": r.p.rb.objectives.rto.map(|d| d.as_secs_f64()),
                    "met": null,
                }));
                rto["predicted_secs"] = json!(r.predicted.as_secs_f64());
                rto["history"] = match &r.p.history {
                    Some(h) => json!({
                        "median_secs": h.median.as_secs_f64(),
                        "p90_secs": h.p90.as_secs_f64(),
                        "runs": h.runs,
                        "simulated": h.simulated,
                    }),
                    None => serde_json::Value::Null,
                };
                let rpo = objective(objectives.map(|o| o.1)).unwrap_or(json!({
                    "achieved_secs": null,
                    "objective_secs": r.p.rb.objectives.rpo.map(|d| d.as_secs_f64()),
                    "met": null,
                }));
                json!({
                    "phase": r.p.phase.name(),
                    "runbook": r.p.rb.runbook.name,
                    "file": r.p.path.display().to_string(),
                    "run_id": run_id,
                    "status": match (&r.report, r.end) {
                        (Some(rep), _) => serde_json::to_value(rep.outcome.status).unwrap_or_default(),
                        (None, _) => json!("not_run"),
                    },
                    "exit_code": r.end.map(|e| e.code),
                    "note": r.why_not(),
                    "rto": rto,
                    "rpo": rpo,
                    "missed": r.missed(),
                    "reports": run_id.map(|id| json!({
                        "md": format!("{id}.md"),
                        "html": format!("{id}.html"),
                        "junit": format!("{id}.junit.xml"),
                        "json": format!("{id}.json"),
                    })),
                })
            })
            .collect();
        json!({
            "drill_version": DRILL_VERSION,
            "drill_id": self.drill_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "window": window.map(|w| w.to_string()),
            "soak_secs": args.soak.as_secs_f64(),
            "target": match target {
                Target::Sim { seed, speed, config_path, .. } => json!({"sim": {
                    "seed": seed,
                    "speed": match speed { SimSpeed::Times(n) => Some(*n), SimSpeed::Max => None },
                    "config": config_path.as_ref().map(|p| p.display().to_string()),
                }}),
                Target::Aws(h) => json!({"aws": {"profile": h.profile}}),
            },
            "exit_code": self.exit_code(),
            "result": match self.exit_code() {
                exit::SUCCESS => "succeeded",
                exit::OBJECTIVE_MISSED => "objective_missed",
                _ => "failed",
            },
            "missed": self.missed(),
            "phases": phases,
        })
    }

    /// `drill.md`.
    fn markdown(&self, doc: &serde_json::Value) -> String {
        let names: Vec<&str> = self
            .rows
            .iter()
            .map(|r| r.p.rb.runbook.name.as_str())
            .collect();
        let mut s = format!(
            "# Drill: {}, then {}\n\n**{}**\n\n",
            md(names[0]),
            md(names[1]),
            md(&self.verdict())
        );
        s.push_str(&format!(
            "Drill {} started {}, finished {}; soak {}",
            md_code(self.drill_id.as_str()),
            self.started_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            self.finished_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            human_secs(doc["soak_secs"].as_f64().unwrap_or_default())
        ));
        if let Some(w) = doc["window"].as_str() {
            s.push_str(&format!("; window {}", md_code(w)));
        }
        match doc["target"].get("sim") {
            Some(sim) => s.push_str(&format!(
                "; simulated world (seed {}, speed {})",
                sim["seed"],
                sim["speed"]
                    .as_f64()
                    .map_or("max".into(), |n| format!("{n}x"))
            )),
            None => s.push_str("; AWS"),
        }
        s.push_str(".\n\n");
        s.push_str("| phase | runbook | run | outcome | RTO | RTO objective | RPO | RPO objective | verdict |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let o = r.objectives();
            let secs = |v: Option<f64>, none: &str| v.map_or(none.to_string(), human_secs);
            let verdict = if !r.missed().is_empty() {
                "**MISSED**".to_string()
            } else if o.is_some_and(|(rto, rpo)| rto.met == Some(true) || rpo.met == Some(true)) {
                "met".into()
            } else {
                "-".into()
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {verdict} |\n",
                r.p.phase.name(),
                md(&r.p.rb.runbook.name),
                r.end
                    .and_then(|e| e.run_id.as_ref())
                    .map_or("-".into(), |id| format!("[{}]({}.md)", md(id.as_str()), id)),
                md(&r.status()),
                secs(o.and_then(|o| o.0.achieved_secs), "not measured"),
                secs(r.p.rb.objectives.rto.map(|d| d.as_secs_f64()), "none"),
                secs(o.and_then(|o| o.1.achieved_secs), "not measured"),
                secs(r.p.rb.objectives.rpo.map(|d| d.as_secs_f64()), "none"),
            ));
        }
        let missed = self.missed();
        if !missed.is_empty() {
            s.push_str("\n## Missed objectives\n\n");
            for m in &missed {
                s.push_str(&format!("- {}\n", md(m)));
            }
        }
        s.push_str("\n## Predicted RTO\n\n");
        for r in &self.rows {
            s.push_str(&format!(
                "- {}: {}\n",
                r.p.phase.name(),
                md(&r.prediction())
            ));
        }
        let notes: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| r.why_not().map(|w| format!("{}: {w}", r.p.phase.name())))
            .collect();
        if !notes.is_empty() {
            s.push_str("\n## Notes\n\n");
            for n in notes {
                s.push_str(&format!("- {}\n", md(&n)));
            }
        }
        s.push_str("\n## Reports\n\n");
        for r in &self.rows {
            if let Some(id) = r.end.and_then(|e| e.run_id.as_ref())
                && r.report.is_some()
            {
                s.push_str(&format!(
                    "- {}: [Markdown]({id}.md), [HTML]({id}.html), [JUnit]({id}.junit.xml), [JSON]({id}.json)\n",
                    r.p.phase.name()
                ));
            }
        }
        s
    }

    /// Each phase's reports, then `drill.md` and `drill.json`.
    fn write(&self, dir: &Path, doc: &serde_json::Value) -> Result<(), String> {
        let put = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| format!("failed to write {}: {e}", dir.join(name).display()))
        };
        for r in &self.rows {
            let (Some(report), Some(id)) = (&r.report, r.end.and_then(|e| e.run_id.as_ref()))
            else {
                continue;
            };
            for (format, ext) in [
                (ReportFormat::Md, "md"),
                (ReportFormat::Html, "html"),
                (ReportFormat::Junit, "junit.xml"),
                (ReportFormat::Json, "json"),
            ] {
                put(
                    &format!("{id}.{ext}"),
                    &crate::report::render(report, format),
                )?;
            }
        }
        put("drill.md", &self.markdown(doc))?;
        put(
            "drill.json",
            &format!(
                "{}\n",
                serde_json::to_string_pretty(doc).expect("a JSON value always serializes")
            ),
        )
    }
}
