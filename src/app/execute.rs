//! One run of one runbook, composed: its journal created, the sinks in order (saved
//! world, journal, the person's or the tool's output, logs), Ctrl-C listened for, the
//! engine run, and in guided mode the operator's decision after a failure applied in
//! this process as `drpilot resume` would. Then the lock settled and the summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::error::AppError;
use super::guided;
use super::notify::{Notify, Notifying, NotifyingSinks, after_end, emit_all};
use super::settings::{Output, Ui};
use super::sinks::{JournalSink, MemorySink, WorldSink, WorldStore};
use super::target::Built;
use crate::clock::Clock;
use crate::cloud::aws::AwsCloud;
use crate::engine::dispatcher::Sink;
use crate::engine::{self, Decision, Event, Interrupt, Outcome, Prior, RunConfig, RunId};
use crate::exit;
use crate::journal::{Header, JournalError, JournalWriter, RunLock, StateStore, runbook_digest};
use crate::plan::Plan;
use crate::report::{human::HumanSink, live::LiveView, ndjson::NdjsonSink};
use crate::runbook::{Runbook, StepId};

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

/// One run of one runbook, as `launch` starts it. The caller holds the runbook's lock.
pub struct Launch<'a> {
    /// The runbook.
    pub rb: &'a Runbook,
    /// The runbook file, as the journal records it (a resume re-reads it).
    pub path: &'a Path,
    /// Its exact text: the digest and the run's copy.
    pub text: &'a str,
    /// `--param` overrides the runbook was loaded with.
    pub params: &'a BTreeMap<String, String>,
    /// Its plan.
    pub plan: &'a Plan<'a>,
    /// Where the journal goes.
    pub state: &'a StateStore,
    /// The runbook's lock, held: its lease fences the journal's writes.
    pub lock: &'a RunLock,
    /// The new run's id.
    pub run_id: RunId,
    /// How it talks to whoever started it.
    pub ui: Ui,
    /// The engine's options.
    pub config: RunConfig,
    /// Who hears of the run.
    pub notify: &'a Notify,
    /// The drill this run is a phase of (`None`: a run of its own).
    pub drill: Option<RunId>,
}

/// Creates the run's journal and runs it against what `built` reaches, on `clock`,
/// with the person's or the tool's output: the part of `drpilot run` after the lock
/// and the briefing, and one phase of `drpilot drill`. `Err` is an exit code when the
/// journal cannot be created (nothing ran).
pub async fn launch(
    l: Launch<'_>,
    built: &Built,
    clock: &Clock,
) -> Result<engine::RunResult, AppError> {
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
        notify,
        drill,
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
        drill,
    };
    let journal = match state.create(&header, text, lock) {
        Ok(j) => j,
        Err(JournalError::Fenced(e)) => return Err(AppError::new(exit::LOCK_HELD, e)),
        Err(e) => return Err(AppError::new(exit::USAGE, e)),
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
            notify,
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

/// Guided mode, before anything changes: the plan and the preflight table, then the
/// typed confirmation. `Ok(false)` when the operator did not confirm; exit 5 when
/// preflight blocks the run (nothing is asked, nothing recorded).
pub(super) async fn brief_and_confirm(
    rb: &Runbook,
    plan: &Plan<'_>,
    cloud: &crate::cloud::Cloud,
    clock: &Clock,
    config: &RunConfig,
) -> Result<bool, AppError> {
    eprintln!("checking readiness (read-only)...");
    let (ok, findings) = engine::preflight::all(rb, cloud, clock, config).await;
    let regions = cloud.reach.verdicts().await;
    eprint!("\n{}", guided::briefing(plan, ok, &findings, &regions));
    if !ok {
        return Err(AppError::new(
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
pub(super) fn api_call_summary(aws: &AwsCloud) -> String {
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

/// After `launch` or a resumed execution: the run settled (see [`settle`]), or, when
/// it never started, the lock released and the reason returned.
pub fn finish(
    outcome: Result<engine::RunResult, AppError>,
    lock: RunLock,
    run_id: &RunId,
    output: Output,
) -> Result<u8, AppError> {
    match outcome {
        Ok(result) => Ok(settle(&result, lock, run_id, output)),
        Err(e) => {
            lock.release();
            Err(e)
        }
    }
}

/// After a run: its lock released unless it is resumable, the reason said, the exit
/// code.
pub fn settle(result: &engine::RunResult, lock: RunLock, run_id: &RunId, output: Output) -> u8 {
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

/// What one execution of a run needs besides its journal and world.
pub(super) struct Execution<'a> {
    pub(super) rb: &'a Runbook,
    pub(super) plan: &'a Plan<'a>,
    pub(super) cloud: &'a crate::cloud::Cloud,
    pub(super) clock: &'a Clock,
    pub(super) config: &'a RunConfig,
    pub(super) run_id: RunId,
    pub(super) ui: Ui,
    pub(super) view: Option<LiveView>,
    pub(super) notify: &'a Notify,
}

/// Runs the engine with the sinks (saved world, journal, the person's or the tool's
/// output). `prior` holds the journal's events and the operator's decision for a
/// resumed run. In guided mode a failure pauses the engine, the operator chooses, and
/// the run continues in this process as `drpilot resume` would.
pub(super) async fn execute(
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
    // Notifications: off the engine's path, their results recorded with its events.
    let mut notifying = (!x.notify.is_empty()).then(|| Notifying {
        notifier: crate::notify::Notifier::start(
            x.notify.receivers.clone(),
            x.cloud.sns.clone(),
            crate::notify::Context::new(
                x.plan,
                if sim_seed.is_some() {
                    "the simulated world"
                } else {
                    "AWS"
                },
                x.notify.report(),
                x.config.approvals.clone(),
            ),
        ),
        last: None,
    });
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
            let result = match notifying.as_mut() {
                Some(state) => {
                    let mut both = NotifyingSinks {
                        inner: sinks,
                        state,
                    };
                    let mut one: Vec<&mut dyn Sink> = vec![&mut both];
                    engine::run(ctx, &mut one, interrupts).await
                }
                None => engine::run(ctx, &mut sinks, interrupts).await,
            };
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
        if let Some(Notifying { notifier, last }) = notifying.take() {
            // What is still on its way gets one attempt's time, in real time (the
            // run's clock may be virtual), then is given up on and said so.
            let kinds = tokio::task::spawn_blocking(move || {
                notifier.finish(crate::notify::ATTEMPT_TIMEOUT)
            })
            .await
            .unwrap_or_default();
            let mut sinks: Vec<&mut dyn Sink> = Vec::with_capacity(4);
            if let Some(w) = world_sink.as_mut() {
                sinks.push(w);
            }
            sinks.push(&mut journal_sink);
            sinks.push(out.as_mut());
            if x.ui.output == Output::Json {
                sinks.push(&mut log_sink);
            }
            for e in after_end(last.as_ref(), kinds) {
                if let Err(why) = emit_all(&mut sinks, &e) {
                    eprintln!("warning: a notification's result was not recorded: {why}");
                }
            }
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
