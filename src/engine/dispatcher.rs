//! The dispatcher: one loop that owns the run.
//!
//! It launches every step whose dependencies are done, and selects over step
//! completions, executor reports, operator interrupts and the run deadline. On a
//! failure it stops launching, lets running steps finish, then applies the failure
//! policy; a rollback runs the completed changes' compensations one by one in reverse
//! dependency order and reports each failure instead of stopping at it. All events pass
//! through [`Dispatcher::emit`], which stamps them and hands them to every sink in order.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::events::{Event, EventKind, Outcome, RunId};
use super::executor::{self, Report, Reporter, Resumed, StepResult};
use super::resume::{Decision, Prior};
use super::{OnFailure, RunConfig};
use crate::actions::dataplane::HeartbeatOutput;
use crate::actions::{Captured, Executed, StepContext};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::plan::Plan;
use crate::runbook::{Runbook, StepId};

/// An operator's interrupt (Ctrl-C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// First Ctrl-C: launch nothing new, let running steps finish, then apply the
    /// failure policy.
    Graceful,
    /// Second Ctrl-C: stop now. The journal stays consistent: steps in flight are
    /// re-checked by a later `resume`.
    Immediate,
}

/// Somewhere events go: the journal, the terminal, NDJSON on stdout.
pub trait Sink {
    /// Takes one event. An error from the journal stops the run: drpilot never goes on
    /// without a durable record.
    fn emit(&mut self, event: &Event) -> Result<(), String>;
}

/// Everything a run needs.
pub struct RunCtx<'a> {
    /// The runbook.
    pub runbook: &'a Runbook,
    /// Its plan.
    pub plan: &'a Plan<'a>,
    /// The cloud (AWS or the simulated world).
    pub cloud: &'a Cloud,
    /// The run's clock.
    pub clock: &'a Clock,
    /// The run's id.
    pub run_id: RunId,
    /// Options.
    pub config: &'a RunConfig,
    /// For a resumed run: what the journal says, and the operator's decision.
    pub prior: Option<(Prior, Option<Decision>)>,
    /// The world's seed, for simulated runs.
    pub sim_seed: Option<u64>,
}

/// How the run went.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// The outcome.
    pub outcome: Outcome,
    /// Run-clock time from the start of this run (including earlier processes).
    pub makespan: Duration,
    /// Measured RTO: from the start (unplanned) or from the first change (planned)
    /// until the runbook's `recovered_when` steps were all done (the last step when it
    /// names none). Only for successful runs.
    pub rto: Option<Duration>,
    /// When service was restored, on the run's clock: the end of the RTO. Only for
    /// successful runs.
    pub recovered_at: Option<Duration>,
    /// Measured RPO: the largest data-loss window the run's heartbeat steps measured
    /// (`rpo_secs` in an executed step's output), by this process or an earlier one.
    pub rpo: Option<Duration>,
    /// Steps that failed.
    pub failed: Vec<StepId>,
    /// Steps left for later because a region they need is unreachable (and those
    /// after them): the run succeeded without them; `drpilot resume` runs them.
    pub deferred: Vec<StepId>,
    /// Steps whose changes remain after a rollback (none defined, or it failed).
    pub left_changed: Vec<StepId>,
    /// Why the run stopped, when it did not succeed.
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Deferred,
}

/// The largest data-loss window measured by the heartbeat steps that ran (each reports
/// it in its typed output; one that could not measure reports none).
fn measured_rpo(runbook: &Runbook, executed: &HashMap<StepId, Executed>) -> Option<Duration> {
    runbook
        .steps
        .iter()
        .filter(|s| s.spec.kind.is_heartbeat())
        .filter_map(|s| HeartbeatOutput::of(executed.get(&s.id)?)?.rpo())
        .max()
}

struct Dispatcher<'a, 's, 't> {
    ctx: &'a RunCtx<'a>,
    sinks: &'s mut [&'t mut dyn Sink],
    state: Vec<State>,
    captured: HashMap<StepId, Captured>,
    executed: HashMap<StepId, Executed>,
    rolled_back: HashSet<StepId>,
    /// Steps an earlier process died in the middle of (see [`Prior::interrupted`]).
    interrupted: HashSet<StepId>,
    journal_broken: Option<String>,
    first_change_at: Option<Duration>,
    /// When each `recovered_when` step succeeded or was skipped (by this process or an
    /// earlier one), on the run's clock: the RTO ends with the last of them.
    recovered: HashMap<StepId, Duration>,
    /// The `recovered_when` steps, or the empty set when the runbook names none.
    recovered_when: HashSet<StepId>,
    /// Step index by id.
    index: HashMap<StepId, usize>,
    /// Per step: dependencies not yet succeeded or skipped.
    unmet: Vec<usize>,
    /// Per step: the steps that run after it.
    dependents: Vec<Vec<usize>>,
    /// Pending steps whose dependencies are all done, in file order. Kept up to date as
    /// steps finish, so launching is O(1) per step however large the runbook.
    ready: std::collections::BTreeSet<usize>,
    /// Steps whose dependencies are done but that the operator skipped
    /// (`--skip-step`): they end without running, taking no slot.
    skip_ready: Vec<usize>,
    /// Each step's effective `on_unreachable`.
    policies: Vec<crate::runbook::model::OnUnreachable>,
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = (usize, StepResult)> + 'a>>;

impl<'a, 's, 't> Dispatcher<'a, 's, 't> {
    fn emit(&mut self, kind: EventKind) -> bool {
        match &kind {
            EventKind::Captured { step, captured } => {
                self.captured.insert(step.clone(), captured.clone());
            }
            EventKind::Executed { step, executed } => {
                self.executed.insert(step.clone(), executed.clone());
            }
            EventKind::StepSucceeded { step, .. } | EventKind::StepSkipped { step, .. }
                if self.recovered_when.contains(step) =>
            {
                self.recovered
                    .insert(step.clone(), self.ctx.clock.elapsed());
            }
            EventKind::StepStarted { step, .. } => {
                let planned = self.ctx.runbook.runbook.mode == crate::runbook::Mode::Planned;
                let disrupting = self
                    .index
                    .get(step)
                    .is_some_and(|&i| self.ctx.runbook.steps[i].starts_rto_clock());
                if planned && disrupting && self.first_change_at.is_none() {
                    self.first_change_at = Some(self.ctx.clock.elapsed());
                }
            }
            _ => {}
        }
        let event = Event {
            run_id: self.ctx.run_id.clone(),
            at: self.ctx.clock.now(),
            kind,
        };
        let mut ok = true;
        for sink in self.sinks.iter_mut() {
            if let Err(e) = sink.emit(&event) {
                ok = false;
                self.journal_broken.get_or_insert(e);
            }
        }
        ok
    }

    fn handle(&mut self, r: Report) {
        let ok = self.emit(r.kind);
        if let Some(ack) = r.ack
            && ok
        {
            let _ = ack.send(());
        }
    }

    fn step_ctx(&self, i: usize) -> StepContext<'a> {
        StepContext {
            cloud: self
                .ctx
                .cloud
                .for_account(self.ctx.runbook.steps[i].account.as_deref()),
            runbook: self.ctx.runbook,
            step: &self.ctx.runbook.steps[i],
            clock: self.ctx.clock,
            interrupted: false,
        }
    }

    /// Recomputes readiness from the states (at start, and after a resume's decisions).
    fn init_readiness(&mut self) {
        let done = |s: State| matches!(s, State::Succeeded | State::Skipped);
        for i in 0..self.state.len() {
            self.unmet[i] = self.ctx.plan.deps[i]
                .iter()
                .filter(|&&d| !done(self.state[d]))
                .count();
        }
        self.ready.clear();
        self.skip_ready.clear();
        for i in 0..self.state.len() {
            if self.state[i] == State::Pending && self.unmet[i] == 0 {
                self.make_ready(i);
            }
        }
    }

    /// Step `i` has every dependency done: it may start, or end at once when the
    /// operator skipped it (`--skip-step`).
    fn make_ready(&mut self, i: usize) {
        if self.ctx.config.skip.contains(&self.ctx.runbook.steps[i].id) {
            self.skip_ready.push(i);
        } else {
            self.ready.insert(i);
        }
    }

    /// Records that step `i` succeeded or was skipped: its dependents may be ready.
    fn set_done(&mut self, i: usize, state: State) {
        self.state[i] = state;
        for k in 0..self.dependents[i].len() {
            let j = self.dependents[i][k];
            self.unmet[j] -= 1;
            if self.unmet[j] == 0 && self.state[j] == State::Pending {
                self.make_ready(j);
            }
        }
    }

    /// Step `i` is deferred (a region it needs is down): so is every step after it,
    /// which cannot run without it. Each gets its `step_deferred` event.
    fn defer(&mut self, i: usize, reason: String) {
        let steps = &self.ctx.runbook.steps;
        self.state[i] = State::Deferred;
        self.emit(EventKind::StepDeferred {
            step: steps[i].id.clone(),
            reason,
        });
        let mut todo: Vec<(usize, usize)> = self.dependents[i].iter().map(|&j| (j, i)).collect();
        todo.sort_unstable();
        while let Some((j, after)) = todo.pop() {
            if self.state[j] != State::Pending {
                continue;
            }
            self.state[j] = State::Deferred;
            self.ready.remove(&j);
            let reason = format!("runs after `{}`, which was deferred", steps[after].id);
            self.emit(EventKind::StepDeferred {
                step: steps[j].id.clone(),
                reason,
            });
            let mut more: Vec<(usize, usize)> =
                self.dependents[j].iter().map(|&k| (k, j)).collect();
            more.sort_unstable();
            todo.extend(more);
        }
    }

    /// Hands what the region breakers learned to the sinks as `region_status` events.
    fn region_status(&mut self, s: crate::cloud::reach::RegionStatus) {
        self.emit(EventKind::RegionStatus {
            region: s.region,
            service: s.service,
            status: s.status,
            latency_ms: s.latency_ms,
            decided_by: s.decided_by,
        });
    }

    /// Steps in reverse dependency order (deterministic: level, then file order).
    fn reverse_topological(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.state.len()).collect();
        order.sort_by_key(|&i| (self.ctx.plan.level_of[i], i));
        order.reverse();
        order
    }

    /// Read-only readiness of every step. A check that could not reach the cloud
    /// (unreachable, 5xx, throttled) blocks a planned run, which needs every region
    /// healthy; in an unplanned run it is expected during the very outage being handled,
    /// so it is reported and the step checks again when it runs.
    /// Region verdicts that arrive meanwhile are reported as they come.
    async fn preflight(
        &mut self,
        regions: &mut mpsc::UnboundedReceiver<crate::cloud::reach::RegionStatus>,
    ) -> bool {
        let ctx = self.ctx;
        let checks = super::preflight::all(ctx.runbook, ctx.cloud, ctx.clock, ctx.config);
        tokio::pin!(checks);
        let (ok, findings) = loop {
            tokio::select! {
                biased;
                Some(s) = regions.recv() => self.region_status(s),
                r = &mut checks => break r,
            }
        };
        while let Ok(s) = regions.try_recv() {
            self.region_status(s);
        }
        self.emit(EventKind::Preflight { ok, findings });
        ok
    }

    async fn roll_back(&mut self) -> (bool, Vec<StepId>) {
        let steps = &self.ctx.runbook.steps;
        let order: Vec<usize> = self
            .reverse_topological()
            .into_iter()
            .filter(|&i| {
                let s = &steps[i];
                // A step an earlier process died in the middle of may have changed the
                // world without a journaled `executed` (killed after its call took
                // effect; on resume it can fail on the resource busy with that very
                // change). Its rollback restores the capture and is idempotent, so it
                // runs too; "nothing to do" costs one read.
                let may_have_changed = self.executed.contains_key(&s.id)
                    || (s.rollback.is_some()
                        && self.captured.contains_key(&s.id)
                        && self.interrupted.contains(&s.id));
                s.is_mutating() && may_have_changed && !self.rolled_back.contains(&s.id)
            })
            .collect();
        // Changes that can interrupt service and cannot be undone (a promotion without a
        // rollback, traffic moved for good): once one is made, the capacity raised for
        // it is what production runs on, and sizing it down would starve it.
        let irreversible: Vec<String> = order
            .iter()
            .map(|&i| &steps[i])
            .filter(|s| s.starts_rto_clock() && s.rollback.is_none())
            .map(|s| s.id.to_string())
            .collect();
        self.emit(EventKind::RollbackStarted {
            steps: order.iter().map(|&i| steps[i].id.clone()).collect(),
        });
        let mut left_changed = Vec::new();
        for i in order {
            let id = steps[i].id.clone();
            if steps[i].spec.kind.only_sizes_capacity()
                && steps[i].rollback.is_some()
                && !irreversible.is_empty()
            {
                self.emit(EventKind::RollbackFailed {
                    step: id.clone(),
                    error: format!(
                        "kept: production may now run on this capacity ({} cannot be undone); \
                         size it down once production has left it",
                        irreversible.join(", ")
                    ),
                });
                left_changed.push(id);
                continue;
            }
            if steps[i].rollback.is_none() {
                self.emit(EventKind::RollbackFailed {
                    step: id.clone(),
                    error: "no rollback is defined for this step; its change remains".into(),
                });
                left_changed.push(id);
                continue;
            }
            let ctx = self.step_ctx(i);
            let captured = self.captured.get(&id).cloned();
            let executed = self.executed.get(&id).cloned();
            let result = executor::roll_back_step(
                ctx,
                self.ctx.config,
                captured.as_ref(),
                executed.as_ref(),
            )
            .await;
            match result {
                Ok(summary) => {
                    self.rolled_back.insert(id.clone());
                    self.emit(EventKind::StepRolledBack { step: id, summary });
                }
                Err(error) => {
                    self.emit(EventKind::RollbackFailed {
                        step: id.clone(),
                        error,
                    });
                    left_changed.push(id);
                }
            }
        }
        let clean = left_changed.is_empty();
        self.emit(EventKind::RollbackFinished {
            clean,
            left_changed: left_changed.clone(),
        });
        (clean, left_changed)
    }
}

/// Runs (or resumes) a run to its end. Events go to `sinks`; `interrupts` carries the
/// operator's Ctrl-C.
pub async fn run(
    ctx: RunCtx<'_>,
    sinks: &mut [&mut dyn Sink],
    mut interrupts: mpsc::UnboundedReceiver<Interrupt>,
) -> RunResult {
    let steps = &ctx.runbook.steps;
    let (prior, decision) = match &ctx.prior {
        Some((p, d)) => (Some(p.clone()), *d),
        None => (None, None),
    };
    let mut d = Dispatcher {
        ctx: &ctx,
        sinks,
        state: vec![State::Pending; steps.len()],
        captured: HashMap::new(),
        executed: HashMap::new(),
        rolled_back: HashSet::new(),
        interrupted: HashSet::new(),
        journal_broken: None,
        first_change_at: None,
        recovered: HashMap::new(),
        recovered_when: ctx
            .runbook
            .objectives
            .recovered_when
            .iter()
            .cloned()
            .collect(),
        index: steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect(),
        unmet: vec![0; steps.len()],
        dependents: {
            let mut dependents = vec![Vec::new(); steps.len()];
            for (i, ds) in ctx.plan.deps.iter().enumerate() {
                for &d in ds {
                    dependents[d].push(i);
                }
            }
            dependents
        },
        ready: Default::default(),
        skip_ready: Vec::new(),
        policies: super::executor::on_unreachable_policies(ctx.runbook, &ctx.plan.deps),
    };
    let mut resumed_steps: HashMap<usize, Resumed> = HashMap::new();
    let mut failed_before = Vec::new();
    if let Some(p) = &prior {
        // The RTO of a planned run counts from its first change, even when an earlier
        // process made it.
        if ctx.runbook.runbook.mode == crate::runbook::Mode::Planned {
            d.first_change_at = steps
                .iter()
                .filter(|s| s.starts_rto_clock())
                .filter_map(|s| p.first_started.get(&s.id))
                .min()
                .map(|at| {
                    Duration::try_from(at.duration_since(ctx.clock.origin())).unwrap_or_default()
                });
        }
        // Recovery steps an earlier process finished keep their time.
        for (step, at) in &p.done_at {
            if d.recovered_when.contains(step) {
                d.recovered.insert(
                    step.clone(),
                    Duration::try_from(at.duration_since(ctx.clock.origin())).unwrap_or_default(),
                );
            }
        }
        d.captured = p.captured.clone();
        d.executed = p.executed.clone();
        d.rolled_back = p.rolled_back.clone();
        d.interrupted = p.interrupted.clone();
        for (i, s) in steps.iter().enumerate() {
            if p.succeeded.contains(&s.id) {
                d.state[i] = State::Succeeded;
            } else if p.skipped.contains(&s.id) {
                d.state[i] = State::Skipped;
            } else if p.failed.contains(&s.id) {
                d.state[i] = State::Failed;
                failed_before.push(i);
            }
            if p.in_flight.contains(&s.id) || p.failed.contains(&s.id) {
                resumed_steps.insert(
                    i,
                    Resumed {
                        captured: p.captured.get(&s.id).cloned(),
                        // A failed step is retried from its action; an in-flight one
                        // continues after what it recorded.
                        executed: if p.in_flight.contains(&s.id) {
                            p.executed.get(&s.id).cloned()
                        } else {
                            None
                        },
                        attempts: 0,
                    },
                );
            }
        }
    }

    d.emit(EventKind::RunStarted {
        event_version: super::events::EVENT_VERSION,
        runbook: ctx.runbook.runbook.name.clone(),
        mode: ctx.runbook.runbook.mode,
        sim: ctx.sim_seed.is_some(),
        seed: ctx.sim_seed,
        resumed: prior.is_some(),
    });
    // What the region breakers learn, from the probes the caller started (verdicts
    // reached before this point first) to the end of the run.
    let (known_regions, mut regions) = ctx.cloud.reach.subscribe();
    for s in known_regions {
        d.region_status(s);
    }
    let finish = |d: &mut Dispatcher<'_, '_, '_>,
                  outcome: Outcome,
                  failed: Vec<StepId>,
                  left: Vec<StepId>,
                  reason: Option<String>| {
        let makespan = ctx.clock.elapsed();
        let deferred: Vec<StepId> = (0..d.state.len())
            .filter(|&i| d.state[i] == State::Deferred)
            .map(|i| ctx.runbook.steps[i].id.clone())
            .collect();
        // Service is back when the last `recovered_when` step is done; housekeeping
        // after it (a snapshot copy of the lost writes) is not downtime.
        let recovered_at = (outcome == Outcome::Succeeded).then(|| {
            if d.recovered_when.is_empty() {
                makespan
            } else {
                d.recovered.values().max().copied().unwrap_or(makespan)
            }
        });
        let rto =
            recovered_at.map(|end| end.saturating_sub(d.first_change_at.unwrap_or(Duration::ZERO)));
        let rpo = measured_rpo(d.ctx.runbook, &d.executed);
        d.emit(EventKind::RunFinished {
            outcome,
            exit_code: outcome.exit_code(),
            makespan_secs: makespan.as_secs_f64(),
            rto_secs: rto.map(|r| r.as_secs_f64()),
            rpo_secs: rpo.map(|r| r.as_secs_f64()),
            reason: reason.clone(),
            deferred: deferred.clone(),
        });
        RunResult {
            outcome,
            makespan,
            rto,
            recovered_at,
            rpo,
            failed,
            deferred,
            left_changed: left,
            reason,
        }
    };

    if prior.is_none() {
        d.emit(EventKind::Plan {
            levels: ctx
                .plan
                .levels
                .iter()
                .map(|l| l.iter().map(|&i| steps[i].id.clone()).collect())
                .collect(),
            critical_path: ctx
                .plan
                .critical_path
                .iter()
                .map(|&i| steps[i].id.clone())
                .collect(),
            predicted_rto_secs: ctx.plan.predicted_rto.as_secs_f64(),
        });
    }
    if !prior.as_ref().is_some_and(|p| p.preflight_passed) && !d.preflight(&mut regions).await {
        return finish(
            &mut d,
            Outcome::PreflightFailed,
            vec![],
            vec![],
            Some("preflight failed; nothing was changed".into()),
        );
    }

    // A resumed run: the operator's decision about failed steps, or a rollback that was
    // interrupted.
    let mut go_rollback = prior.as_ref().is_some_and(|p| p.rolling_back);
    if !failed_before.is_empty() && !go_rollback {
        match decision {
            Some(Decision::Retry) => {
                for &i in &failed_before {
                    d.state[i] = State::Pending;
                }
            }
            Some(Decision::Skip) => {
                for &i in &failed_before {
                    d.state[i] = State::Skipped;
                    d.emit(EventKind::StepSkipped {
                        step: steps[i].id.clone(),
                        reason: "skipped by the operator after it failed".into(),
                    });
                }
            }
            Some(Decision::Rollback) => go_rollback = true,
            Some(Decision::Abort) => {
                let failed = failed_before.iter().map(|&i| steps[i].id.clone()).collect();
                return finish(
                    &mut d,
                    Outcome::Aborted,
                    failed,
                    vec![],
                    Some("aborted by the operator".into()),
                );
            }
            None => {
                let failed = failed_before.iter().map(|&i| steps[i].id.clone()).collect();
                return finish(
                    &mut d,
                    Outcome::Paused,
                    failed,
                    vec![],
                    Some("failed steps await a decision: resume with --retry, --skip, --rollback or --abort".into()),
                );
            }
        }
    } else if decision == Some(Decision::Rollback) {
        go_rollback = true;
    } else if decision == Some(Decision::Abort) {
        return finish(
            &mut d,
            Outcome::Aborted,
            vec![],
            vec![],
            Some("aborted by the operator".into()),
        );
    }

    // Forward: launch what is ready, until everything is done or something stops us.
    let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
    let mut failure: Option<String> = None;
    let mut graceful = false;
    let mut immediate = false;
    let deadline = ctx.config.deadline.map(|t| {
        let left = t.saturating_sub(ctx.clock.elapsed());
        tokio::time::sleep_until(ctx.clock.deadline(left))
    });
    let mut deadline = deadline.map(Box::pin);
    d.init_readiness();
    if !go_rollback {
        let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
        loop {
            if failure.is_none() && !graceful && d.journal_broken.is_none() {
                // Steps skipped by `--skip-step` end at once (in file order) and may
                // make their dependents ready in turn.
                while !d.skip_ready.is_empty() {
                    let mut skipped = std::mem::take(&mut d.skip_ready);
                    skipped.sort_unstable();
                    for i in skipped {
                        d.set_done(i, State::Skipped);
                        d.emit(EventKind::StepSkipped {
                            step: steps[i].id.clone(),
                            reason: "skipped with --skip-step".into(),
                        });
                    }
                }
                // Then as many ready steps as there is room for, in file order; the
                // rest wait in `ready` until running ones end.
                let cap = ctx
                    .config
                    .max_parallel
                    .unwrap_or(super::DEFAULT_MAX_PARALLEL)
                    .max(1);
                while running.len() < cap {
                    let Some(i) = d.ready.pop_first() else {
                        break;
                    };
                    d.state[i] = State::Running;
                    let mut step_ctx = d.step_ctx(i);
                    step_ctx.interrupted = d.interrupted.contains(&steps[i].id);
                    let approved_by = ctx.config.approvals.by(&steps[i].id);
                    let resumed = resumed_steps.remove(&i).unwrap_or_default();
                    let reporter = Reporter::new(tx.clone());
                    let config = ctx.config;
                    let policy = d.policies[i];
                    running.push(Box::pin(async move {
                        (
                            i,
                            executor::run_step(
                                step_ctx,
                                config,
                                approved_by,
                                resumed,
                                reporter,
                                policy,
                            )
                            .await,
                        )
                    }));
                }
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some(report) = rx.recv() => d.handle(report),
                Some(s) = regions.recv() => d.region_status(s),
                Some((i, result)) = running.next() => {
                    // Everything the step reported comes before its ending.
                    while let Ok(report) = rx.try_recv() {
                        d.handle(report);
                    }
                    let id = steps[i].id.clone();
                    match result {
                        StepResult::Succeeded(summary) => {
                            d.set_done(i, State::Succeeded);
                            d.emit(EventKind::StepSucceeded { step: id, summary });
                        }
                        StepResult::Unreachable(reason) => {
                            d.set_done(i, State::Skipped);
                            d.emit(EventKind::StepSkipped { step: id, reason });
                        }
                        StepResult::Deferred(reason) => d.defer(i, reason),
                        StepResult::Failed(error) => {
                            d.state[i] = State::Failed;
                            failure.get_or_insert_with(|| format!("step `{id}` failed: {error}"));
                            d.emit(EventKind::StepFailed { step: id, error });
                        }
                    }
                }
                Some(interrupt) = interrupts.recv() => match interrupt {
                    Interrupt::Graceful if !graceful => graceful = true,
                    _ => {
                        immediate = true;
                        break;
                    }
                },
                () = async { deadline.as_mut().expect("guarded").await }, if deadline.is_some() => {
                    deadline = None;
                    failure.get_or_insert_with(|| "the run's --timeout passed".into());
                }
            }
        }
        drop(running);
        while let Ok(report) = rx.try_recv() {
            d.handle(report);
        }
    }
    while let Ok(s) = regions.try_recv() {
        d.region_status(s);
    }

    let failed: Vec<StepId> = (0..steps.len())
        .filter(|&i| d.state[i] == State::Failed)
        .map(|i| steps[i].id.clone())
        .collect();
    if let Some(e) = d.journal_broken.clone() {
        return finish(
            &mut d,
            Outcome::NeedsAttention,
            failed,
            vec![],
            Some(format!(
                "the journal could not be written ({e}); stopped without a durable record"
            )),
        );
    }
    if immediate {
        return finish(
            &mut d,
            Outcome::Aborted,
            failed,
            vec![],
            Some("stopped by the operator (second interrupt); resume to continue".into()),
        );
    }
    let all_done = d
        .state
        .iter()
        .all(|s| matches!(s, State::Succeeded | State::Skipped | State::Deferred));
    if all_done && !go_rollback {
        return finish(&mut d, Outcome::Succeeded, failed, vec![], None);
    }
    let reason = failure.or_else(|| graceful.then(|| "stopped by the operator".to_string()));
    let policy = if go_rollback {
        OnFailure::Rollback
    } else {
        ctx.config.on_failure
    };
    match policy {
        OnFailure::Rollback => {
            let (clean, left) = d.roll_back().await;
            let outcome = if clean {
                Outcome::RolledBack
            } else {
                Outcome::NeedsAttention
            };
            finish(&mut d, outcome, failed, left, reason)
        }
        OnFailure::Pause => finish(&mut d, Outcome::Paused, failed, vec![], reason),
        OnFailure::Abort => finish(&mut d, Outcome::Aborted, failed, vec![], reason),
    }
}
