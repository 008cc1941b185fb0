//! `drpilot run` and `drpilot resume`, composed: the input checked, the state store
//! and its lock, the target (simulated world or AWS), the runtime and clock, the
//! engine's options, then one execution (`execute`). The CLI maps its flags onto a
//! [`RunRequest`] or [`ResumeRequest`] and prints what comes back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::approvals::StoreApprovals;
use super::error::AppError;
use super::execute::{
    Execution, Launch, api_call_summary, brief_and_confirm, execute, finish, launch,
};
use super::guided;
use super::input::{approvals, load_runbook, new_run_id, skips};
use super::notify::Notify;
use super::settings::{Exec, Output, SimSpeed, Ui};
use super::sinks::WorldStore;
use super::store::{lock_error, state_findings, state_store};
use super::target::{
    Target, accounts_cloud, build, clock_speed, connect_aws, runtime, watch_regions,
    with_iam_preflight,
};
use crate::clock::Clock;
use crate::engine::{Decision, OnFailure, Prior, RunConfig, RunId};
use crate::exit;
use crate::journal::{AwsHeader, JournalError, runbook_digest};
use crate::plan::Plan;
use crate::report::live::LiveView;
use crate::runbook::{self, StepId};
use crate::sim::SimWorld;

/// What `drpilot run` asks for.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The runbook file.
    pub file: PathBuf,
    /// `--param` overrides.
    pub params: Vec<(String, String)>,
    /// The execution options.
    pub exec: Exec,
    /// Against the simulated world instead of AWS.
    pub sim: bool,
    /// The simulated world's config file.
    pub sim_config: Option<PathBuf>,
    /// The simulated world's seed (random when not given).
    pub seed: Option<u64>,
    /// What to do when a step fails (else: the menu when guided, roll back otherwise).
    pub on_failure: Option<OnFailure>,
    /// Colour in what people read.
    pub color: bool,
}

/// What `drpilot resume` asks for.
#[derive(Clone, Debug)]
pub struct ResumeRequest {
    /// The run to continue.
    pub run_id: String,
    /// The execution options.
    pub exec: Exec,
    /// The operator's decision about failed steps, if given.
    pub decision: Option<Decision>,
    /// What to do when a step fails from now on.
    pub on_failure: Option<OnFailure>,
    /// Colour in what people read.
    pub color: bool,
}

/// `drpilot run`: the exit code of the finished run, or why none ran to an end.
pub fn run(req: RunRequest) -> Result<u8, AppError> {
    let params: BTreeMap<String, String> = req.params.iter().cloned().collect();
    let (loaded, text) = load_runbook(&req.file, &params)?;
    let rb = loaded.runbook;
    let approvals = approvals(&req.exec, &rb).map_err(AppError::usage)?;
    let skip = skips(&req.exec.skip_step, &rb).map_err(AppError::usage)?;
    let notify = Notify::resolve(&req.exec.notify, &rb)?;
    let state = state_store(
        &req.exec.state,
        Some(&rb),
        req.exec.profile.as_deref(),
        req.exec.endpoint_url.as_deref(),
    )?;
    let target = Target::from_args(req.sim, req.sim_config.as_deref(), req.seed, &req.exec)?;
    let speed = target.speed();
    let run_id = new_run_id(&rb.runbook.name);
    let lock = state
        .acquire(&rb.runbook.name, &run_id, req.exec.break_stale_lock)
        .map_err(|e| lock_error(e, "break the lock"))?;
    let rt = match runtime(speed) {
        Ok(rt) => rt,
        Err(e) => {
            lock.release();
            return Err(AppError::usage(format!("failed to start the runtime: {e}")));
        }
    };
    let mut ui = Ui::new(&req.exec, req.on_failure, req.color);
    ui.tick = speed != SimSpeed::Max;
    let config = RunConfig {
        prompter: None,
        approvals,
        on_failure: ui.policy(req.on_failure),
        deadline: req.exec.timeout,
        jitter_seed: match &target {
            Target::Sim { seed, .. } => Some(*seed),
            Target::Aws(_) => None,
        },
        verify_interval: None,
        skip,
        extra_preflight: Vec::new(),
        max_parallel: req.exec.max_parallel.map(|n| n as usize),
        approval_source: Some(Arc::new(StoreApprovals::new(state.clone(), run_id.clone()))),
        await_approvals: req.exec.await_approvals,
    };
    let plan = Plan::new(&rb);
    let state_warnings = state_findings(&rb, &state);
    let outcome = rt.block_on(async {
        let clock = Clock::with_speed(clock_speed(speed));
        let built = build(&target, &rb, &[], &clock).await?;
        let mut config = with_iam_preflight(&config, built.aws.as_ref(), &rb, &state).await;
        config.extra_preflight.extend(state_warnings);
        config.extra_preflight.extend(notify.findings(&rb));
        let (clock, built) = if ui.guided {
            if !brief_and_confirm(&rb, &plan, &built.cloud, &clock, &config).await? {
                return Err(AppError::new(
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
        launch(
            Launch {
                rb: &rb,
                path: &req.file,
                text: &text,
                params: &params,
                plan: &plan,
                state: &state,
                lock: &lock,
                run_id: run_id.clone(),
                ui,
                config,
                notify: &notify,
                drill: None,
            },
            &built,
            &clock,
        )
        .await
    });
    finish(outcome, lock, &run_id, req.exec.output)
}

/// `drpilot resume`.
/// `drpilot resume`: the exit code of the continued run, or why it could not go on.
pub fn resume(args: ResumeRequest) -> Result<u8, AppError> {
    let state = state_store(
        &args.exec.state,
        None,
        args.exec.profile.as_deref(),
        args.exec.endpoint_url.as_deref(),
    )?;
    let run_id = RunId(args.run_id.clone());
    let read = match state.read_to_resume(&run_id) {
        Ok(r) => r,
        Err(e) => return Err(AppError::usage(e)),
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
        return Err(AppError::usage(format!(
            "run {run_id} already ended ({:?}); nothing to resume",
            prior.last_outcome.expect("final runs have an outcome")
        )));
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
            .map_err(AppError::usage)
            .and_then(|text| {
                runbook::load_str_with(&header.runbook_path, &text, &header.params)
                    .map(|l| (l, text))
                    .map_err(|e| {
                        AppError::usage(format!("the run's runbook copy does not load: {e}"))
                    })
            })
    } else {
        load_runbook(&header.runbook_path, &header.params)
    };
    let (loaded, text) = loaded?;
    let digest = runbook_digest(&text);
    if digest != header.runbook_sha256 {
        return Err(AppError::usage(format!(
            "the runbook {} changed since run {run_id} started (sha256 {} then, {} now); \
                 resuming would mix two plans. Restore the original (a copy is in {}) or start a new run",
            header.runbook_path.display(),
            &header.runbook_sha256[..12],
            &digest[..12],
            state.run_location(&run_id)
        )));
    }
    let rb = loaded.runbook;
    let approvals = approvals(&args.exec, &rb).map_err(AppError::usage)?;
    let mut ui = Ui::new(&args.exec, args.on_failure, args.color);
    let plan = Plan::new(&rb);
    let mut decision = args.decision;
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
        return Err(AppError::usage(format!(
            "run {run_id} has failed steps ({}): choose --retry, --skip, --rollback or --abort",
            failed.join(", ")
        )));
    }
    let skip = skips(&args.exec.skip_step, &rb).map_err(AppError::usage)?;
    let notify = Notify::resolve(&args.exec.notify, &rb)?;
    let sim = header.sim.clone();
    // A run against AWS resumes against the same endpoint and profile unless the
    // operator says otherwise (e.g. another profile on another machine).
    let aws = header.aws.clone().map(|h| AwsHeader {
        profile: args.exec.profile.clone().or(h.profile),
        endpoint_url: args.exec.endpoint_url.clone().or(h.endpoint_url),
    });
    if sim.is_none() && args.exec.sim_speed.is_some() {
        return Err(AppError::usage(
            "--sim-speed applies only to simulated runs",
        ));
    }
    let lock = match state.acquire(&rb.runbook.name, &run_id, args.exec.break_stale_lock) {
        Ok(l) => l,
        Err(e) => return Err(lock_error(e, "take it over")),
    };
    // The lock may have changed hands since the journal was read: read it again
    // under the lock, so this process goes on from the last record.
    let read = match state.read_to_resume(&run_id) {
        Ok(r) => r,
        Err(e) => {
            lock.release();
            return Err(AppError::usage(e));
        }
    };
    let replay = &read.replay;
    let prior = Prior::from_events(&replay.events);
    if prior.is_final() {
        lock.release();
        return Err(AppError::usage(format!(
            "run {run_id} ended while this process waited for its lock"
        )));
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
            return Err(AppError::usage(format!("failed to start the runtime: {e}")));
        }
    };
    ui.tick = speed != SimSpeed::Max;
    let mut config = RunConfig {
        prompter: None,
        approvals,
        on_failure: ui.policy(args.on_failure),
        deadline: args.exec.timeout,
        jitter_seed: sim.as_ref().map(|s| s.seed ^ prior.events as u64),
        verify_interval: None,
        skip,
        extra_preflight: Vec::new(),
        max_parallel: args.exec.max_parallel.map(|n| n as usize),
        approval_source: Some(Arc::new(StoreApprovals::new(state.clone(), run_id.clone()))),
        await_approvals: args.exec.await_approvals,
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
                        return Err(AppError::new(
                            exit::USAGE,
                            format!("cannot read the simulated world: {e}"),
                        ));
                    }
                };
                let world = match SimWorld::restore(&snapshot, clock.clone()) {
                    Ok(w) => Arc::new(w),
                    Err(e) => {
                        return Err(AppError::new(
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
        let mut config = with_iam_preflight(&config, aws_cloud.as_ref(), &rb, &state).await;
        config.extra_preflight.extend(notify.findings(&rb));
        let journal = match state.open(&read, &lock) {
            Ok(j) => j,
            Err(JournalError::Fenced(e)) => return Err(AppError::new(exit::LOCK_HELD, e)),
            Err(e) => return Err(AppError::new(exit::USAGE, e)),
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
                notify: &notify,
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
