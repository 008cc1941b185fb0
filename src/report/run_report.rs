//! The report model: what one run did, rebuilt from its journal alone.
//!
//! [`RunReport::build`] folds a run's header and events (and, when it parses, the exact
//! runbook copy the run started from, for the objectives and action names) into a plain
//! data model that the Markdown, HTML, JUnit and JSON renderers share. Like every
//! reporter it never looks at engine state: a run that crashed, was resumed twice and
//! then rolled back reads the same from its journal as it did live. Times are seconds on
//! the run's clock, counted from the journal's `clock_origin` (virtual time in a
//! `--sim-speed max` run), so two runs with one seed give the same report.
//!
//! The JSON form (`drpilot report --format json`) is a documented contract
//! (`docs/report.md`, [`REPORT_VERSION`]): fields are only ever added.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::events::{Event, EventKind, Outcome, RunId};
use crate::journal::Header;
use crate::runbook::{self, Mode, Runbook, StepId};

/// Version of the report's JSON shape.
pub const REPORT_VERSION: u32 = 1;

/// At most this many distinct observed values are kept per step and check: a poll
/// whose text embeds a changing number would otherwise list every poll of a long gate.
pub const MAX_GATE_VALUES: usize = 20;

/// One run, as a report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The run.
    pub run_id: RunId,
    /// Which runbook, and whether its copy could be read.
    pub runbook: RunbookInfo,
    /// How the run ended, as far as its journal knows.
    pub outcome: FinalOutcome,
    /// When the run was created (wall clock, from the journal header).
    pub started_at: jiff::Timestamp,
    /// Zero of the run's clock: every `*_secs` time in the report counts from here.
    pub clock_origin: jiff::Timestamp,
    /// The time of the journal's last event, seconds on the run's clock.
    pub last_event_at_secs: f64,
    /// Where the run acted: the simulated world or AWS.
    pub target: Target,
    /// `--param` overrides the run was given (the header's; nothing else).
    pub param_overrides: BTreeMap<String, String>,
    /// The runbook's `[params]` with the overrides applied, when its copy parses.
    pub params: BTreeMap<String, String>,
    /// One entry per process that worked on the run: the first `run`, then each
    /// `resume`.
    pub segments: Vec<Segment>,
    /// Predicted vs achieved RTO against the objective.
    pub rto: Objective,
    /// Measured RPO against the objective.
    pub rpo: Objective,
    /// The readiness checks, when they ran.
    pub preflight: Option<PreflightReport>,
    /// Every step of the runbook (file order), then any step only the journal knows.
    pub steps: Vec<StepReport>,
    /// Approval requests and who granted them.
    pub approvals: Vec<ApprovalReport>,
    /// Each rollback the run went through (usually none or one).
    pub rollbacks: Vec<RollbackReport>,
    /// What the run learned of each region's reachability, in order: the probes at
    /// its start and every change after (`region_status` events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionReport>,
    /// Things a reader should know about the report itself (an unreadable runbook copy,
    /// a torn last journal line).
    pub notes: Vec<String>,
}

/// The runbook a run followed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookInfo {
    /// Its name (and lock name).
    pub name: String,
    /// The file as given to `drpilot run`.
    pub path: String,
    /// planned or unplanned (from `run_started`, else the runbook copy).
    pub mode: Option<Mode>,
    /// Its description, when the copy parses.
    pub description: Option<String>,
    /// Whether the run directory's `runbook.toml` parsed; without it objectives and
    /// action names are unknown.
    pub copy_parsed: bool,
}

/// How the run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step succeeded (or was skipped).
    Succeeded,
    /// Failed, and every change was rolled back.
    RolledBack,
    /// Preflight found a problem; nothing changed.
    PreflightFailed,
    /// Stopped by the operator; resumable.
    Aborted,
    /// Paused after a failure, awaiting a decision.
    Paused,
    /// A failure left resources changed.
    NeedsAttention,
    /// The last process never recorded an end (it crashed or was killed): resumable.
    Interrupted,
}

impl From<Outcome> for RunStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::RolledBack => RunStatus::RolledBack,
            Outcome::PreflightFailed => RunStatus::PreflightFailed,
            Outcome::Aborted => RunStatus::Aborted,
            Outcome::Paused => RunStatus::Paused,
            Outcome::NeedsAttention => RunStatus::NeedsAttention,
        }
    }
}

impl RunStatus {
    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::RolledBack => "rolled back",
            RunStatus::PreflightFailed => "preflight failed",
            RunStatus::Aborted => "aborted",
            RunStatus::Paused => "paused",
            RunStatus::NeedsAttention => "needs attention",
            RunStatus::Interrupted => "interrupted (resumable)",
        }
    }
}

/// The run's final outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalOutcome {
    /// The last process's outcome, or `interrupted`.
    pub status: RunStatus,
    /// The exit code the last process returned (none when interrupted).
    pub exit_code: Option<u8>,
    /// Whether `drpilot resume` can continue it.
    pub resumable: bool,
    /// Why it did not succeed, as the last process's `run_finished` said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Steps left for later because a region they need was unreachable: the run
    /// succeeded without them, and `drpilot resume RUN_ID` runs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<StepId>,
}

/// One verdict about a region's service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionReport {
    /// When it was reached, seconds on the run's clock.
    pub at_secs: f64,
    /// The region.
    pub region: String,
    /// The service's signing name.
    pub service: String,
    /// `reachable`, `slow` or `unreachable`.
    pub status: crate::cloud::reach::Reachability,
    /// How long the deciding answer took, when something answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// How it was decided.
    pub decided_by: String,
}

/// One (region, service) as the run last knew it, with every verdict it had.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionRow {
    /// The region.
    pub region: String,
    /// The service's signing name.
    pub service: String,
    /// The last verdict.
    pub status: crate::cloud::reach::Reachability,
    /// The last deciding answer's latency.
    pub latency_ms: Option<u64>,
    /// How the last verdict was decided.
    pub decided_by: String,
    /// Every verdict, in order: when (seconds on the run's clock) and what.
    pub history: Vec<(f64, crate::cloud::reach::Reachability)>,
}

impl RunReport {
    /// The region verdicts folded per (region, service), those ever not reachable
    /// first, then by region and service.
    pub fn region_rows(&self) -> Vec<RegionRow> {
        let mut rows: Vec<RegionRow> = Vec::new();
        for r in &self.regions {
            match rows
                .iter_mut()
                .find(|x| x.region == r.region && x.service == r.service)
            {
                // A resumed process probes again: the same verdict again is no change.
                Some(row) if row.status == r.status => {}
                Some(row) => {
                    row.status = r.status;
                    row.latency_ms = r.latency_ms;
                    row.decided_by.clone_from(&r.decided_by);
                    row.history.push((r.at_secs, r.status));
                }
                None => rows.push(RegionRow {
                    region: r.region.clone(),
                    service: r.service.clone(),
                    status: r.status,
                    latency_ms: r.latency_ms,
                    decided_by: r.decided_by.clone(),
                    history: vec![(r.at_secs, r.status)],
                }),
            }
        }
        use crate::cloud::reach::Reachability as R;
        rows.sort_by(|a, b| {
            let healthy = |r: &RegionRow| r.history.iter().all(|(_, s)| *s == R::Reachable);
            (healthy(a), &a.region, &a.service).cmp(&(healthy(b), &b.region, &b.service))
        });
        rows
    }
}

impl FinalOutcome {
    /// "succeeded (exit 0)", "interrupted (resumable)".
    pub fn describe(&self) -> String {
        match self.exit_code {
            Some(code) => format!("{} (exit {code})", self.status.label()),
            None => self.status.label().to_string(),
        }
    }
}

/// Where the run acted. Credentials are never part of a journal, so never of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The simulated world, for `--sim` runs.
    pub sim: Option<SimTarget>,
    /// AWS (or an emulator), for the others.
    pub aws: Option<AwsTarget>,
}

/// A simulated world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimTarget {
    /// Its seed: the same seed replays the same run.
    pub seed: u64,
    /// Clock speed (virtual seconds per second); `None` is `max` (virtual time).
    pub speed: Option<f64>,
    /// The `--sim-config` file, if any.
    pub config: Option<String>,
}

/// An AWS connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwsTarget {
    /// `--profile`: a name, never a credential.
    pub profile: Option<String>,
    /// `--endpoint-url`, with any `user:password@` part removed.
    pub endpoint_url: Option<String>,
}

/// One process's part of the run, from its `run_started` to its `run_finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// `false` for the first `drpilot run`, `true` for each `drpilot resume`.
    pub resumed: bool,
    /// When it started, seconds on the run's clock.
    pub started_at_secs: f64,
    /// When it recorded its end; `None` if it never did (crashed, killed).
    pub finished_at_secs: Option<f64>,
    /// Its outcome; `None` if it never recorded one.
    pub outcome: Option<Outcome>,
    /// The exit code it returned.
    pub exit_code: Option<u8>,
    /// Its `makespan_secs`: run-clock time from the run's start to this end.
    pub makespan_secs: Option<f64>,
    /// Its measured RTO, when it measured one.
    pub rto_secs: Option<f64>,
    /// Its measured RPO, when it measured one.
    pub rpo_secs: Option<f64>,
    /// Why it did not succeed, as its `run_finished` said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An objective: what was predicted and achieved against what the runbook asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The plan's prediction (RTO only).
    pub predicted_secs: Option<f64>,
    /// What the run measured (the last `run_finished`'s `rto_secs` / `rpo_secs`).
    pub achieved_secs: Option<f64>,
    /// The runbook's objective, when its copy parses and sets one.
    pub objective_secs: Option<f64>,
    /// `achieved <= objective`, when both are known.
    pub met: Option<bool>,
    /// Where the RTO clock starts on the run's clock (RTO only): 0 for an unplanned
    /// runbook (the outage began before the run), the first change's start for a
    /// planned one. `starts_at + achieved` is when service was back.
    pub starts_at_secs: Option<f64>,
}

impl Objective {
    /// "met", "MISSED", or "not measured" / "no objective".
    pub fn verdict(&self) -> &'static str {
        match (self.met, self.achieved_secs, self.objective_secs) {
            (Some(true), ..) => "met",
            (Some(false), ..) => "MISSED",
            (None, None, _) => "not measured",
            (None, Some(_), None) => "no objective",
            (None, Some(_), Some(_)) => "unknown",
        }
    }

    /// Whether the objective was measured and missed.
    pub fn missed(&self) -> bool {
        self.met == Some(false)
    }
}

/// One preflight finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingReport {
    /// The step checked.
    pub step: StepId,
    /// What was seen.
    pub message: String,
}

/// The readiness checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreflightReport {
    /// Whether the run could go ahead.
    pub ok: bool,
    /// When, seconds on the run's clock.
    pub at_secs: f64,
    /// How many findings there were in all.
    pub checks: usize,
    /// Findings that blocked the run.
    pub failures: Vec<FindingReport>,
    /// Findings that let the run go ahead but say `warning:`.
    pub warnings: Vec<FindingReport>,
}

/// Where a step ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// It succeeded and its change (if any) stands.
    Succeeded,
    /// It failed for good.
    Failed,
    /// Skipped (`--skip-step`, or by the operator after a failure).
    Skipped,
    /// It succeeded, then its change was rolled back.
    RolledBack,
    /// It succeeded, then its rollback failed or none was defined: its change remains.
    RollbackFailed,
    /// It never started.
    NotStarted,
    /// It started and the journal holds no end (the process stopped mid-step).
    InFlight,
    /// Left for later: a region it needs was unreachable; `drpilot resume` runs it.
    Deferred,
}

impl StepState {
    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::RolledBack => "rolled back",
            StepState::RollbackFailed => "rollback failed",
            StepState::NotStarted => "not started",
            StepState::InFlight => "in flight",
            StepState::Deferred => "deferred",
        }
    }
}

/// One failed attempt of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryReport {
    /// Which attempt (1-based).
    pub attempt: u32,
    /// When it failed, seconds on the run's clock.
    pub at_secs: f64,
    /// Why.
    pub error: String,
    /// Whether another attempt followed.
    pub will_retry: bool,
    /// The delay before the next attempt.
    pub retry_in_secs: Option<f64>,
}

/// One distinct value a gate or verification observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateValue {
    /// What was seen.
    pub observed: String,
    /// Whether the condition held.
    pub passed: bool,
    /// First seen, seconds on the run's clock.
    pub first_at_secs: f64,
    /// Last seen.
    pub last_at_secs: f64,
    /// How many polls saw it.
    pub polls: u64,
}

/// The polls of one check of one step, with repeated values folded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// The check's name, or `verify` for the action's own completion.
    pub check: String,
    /// Every poll, counted.
    pub polls: u64,
    /// The distinct values in the order first seen (at most [`MAX_GATE_VALUES`]).
    pub values: Vec<GateValue>,
    /// Distinct values beyond the first [`MAX_GATE_VALUES`], counted, not listed.
    pub more_values: usize,
    /// Whether the last poll passed.
    pub last_passed: bool,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step.
    pub id: StepId,
    /// Its action (when the runbook copy parses).
    pub action: Option<String>,
    /// Whether it is on the plan's critical path.
    pub critical: bool,
    /// Whether it needs an operator's approval.
    pub approval: bool,
    /// Where it ended up.
    pub state: StepState,
    /// Its first attempt's start, seconds on the run's clock.
    pub started_at_secs: Option<f64>,
    /// When it last succeeded, failed or was skipped.
    pub ended_at_secs: Option<f64>,
    /// `ended - started`.
    pub duration_secs: Option<f64>,
    /// How many attempts started.
    pub attempts: u32,
    /// What it did (its last success's summary).
    pub summary: Option<String>,
    /// Why it failed (its last failure).
    pub error: Option<String>,
    /// Why it was skipped, or deferred.
    pub skip_reason: Option<String>,
    /// Every failed attempt, retried or not.
    pub retries: Vec<RetryReport>,
    /// Its gate and verification polls, folded.
    pub gates: Vec<GateReport>,
}

/// An approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalReport {
    /// The step.
    pub step: StepId,
    /// What the approver agreed to.
    pub message: Option<String>,
    /// When it was asked for.
    pub requested_at_secs: Option<f64>,
    /// When it was granted; `None` if never.
    pub approved_at_secs: Option<f64>,
    /// `flag` (--approve), `yes` (--yes) or `operator` (typed at a prompt).
    pub by: Option<String>,
}

/// What rolling back one step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackStepReport {
    /// The step.
    pub step: StepId,
    /// Whether its change was undone.
    pub ok: bool,
    /// The rollback's summary, or why it failed.
    pub detail: String,
    /// When this step's rollback began: rollbacks run one at a time, so this is when
    /// the previous one ended (or the rollback started).
    pub started_at_secs: f64,
    /// When it ended.
    pub at_secs: f64,
}

/// One rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// When it started.
    pub started_at_secs: f64,
    /// The steps to roll back, in order.
    pub order: Vec<StepId>,
    /// Each step's result, in the order they ran.
    pub results: Vec<RollbackStepReport>,
    /// When it ended; `None` if the process stopped during it.
    pub finished_at_secs: Option<f64>,
    /// Whether every resource is back at its original state (`None` until it ended).
    pub clean: Option<bool>,
    /// Steps whose changes remain.
    pub left_changed: Vec<StepId>,
}

/// The run's runbook copy, as [`RunReport::build`] gets it.
#[derive(Clone, Copy, Debug)]
pub enum RunbookCopy<'a> {
    /// It parsed.
    Parsed(&'a Runbook),
    /// It could not be read or parsed: why (shown as a note).
    Unusable(&'a str),
}

/// Parses a run's `runbook.toml` copy with the run's `--param` overrides, as the run did.
pub fn parse_runbook_copy(header: &Header, text: &str) -> Result<Runbook, String> {
    runbook::load_str_with(&header.runbook_path, text, &header.params)
        .map(|l| l.runbook)
        .map_err(|e| e.to_string())
}

/// Seconds, rounded to the millisecond so a report's numbers stay readable and stable.
fn round(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// Removes `user:password@` from a URL: a report must not carry a credential even if
/// someone put one in `--endpoint-url`.
fn strip_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// The step's facts while the events are folded.
#[derive(Default)]
struct StepAcc {
    state: Option<StepState>,
    started: Option<f64>,
    ended: Option<f64>,
    attempts: u32,
    summary: Option<String>,
    error: Option<String>,
    skip_reason: Option<String>,
    retries: Vec<RetryReport>,
    gates: Vec<GateReport>,
}

impl StepAcc {
    fn observe(&mut self, check: &str, observed: &str, passed: bool, at: f64) {
        let gate = match self.gates.iter().position(|g| g.check == check) {
            Some(i) => &mut self.gates[i],
            None => {
                self.gates.push(GateReport {
                    check: check.to_string(),
                    polls: 0,
                    values: Vec::new(),
                    more_values: 0,
                    last_passed: false,
                });
                self.gates.last_mut().expect("just pushed")
            }
        };
        gate.polls += 1;
        gate.last_passed = passed;
        if let Some(v) = gate
            .values
            .iter_mut()
            .find(|v| v.observed == observed && v.passed == passed)
        {
            v.polls += 1;
            v.last_at_secs = at;
        } else if gate.values.len() < MAX_GATE_VALUES {
            gate.values.push(GateValue {
                observed: observed.to_string(),
                passed,
                first_at_secs: at,
                last_at_secs: at,
                polls: 1,
            });
        } else {
            // Counting exactly which values beyond the cap were distinct would mean
            // keeping them all; count the polls that did not match a listed value.
            gate.more_values += 1;
        }
    }
}

impl RunReport {
    /// Folds a run's journal into a report. Never fails: whatever the events say (in
    /// whatever order a crash left them) becomes the best account of it.
    pub fn build(header: &Header, events: &[Event], copy: RunbookCopy<'_>) -> RunReport {
        let origin = header.clock_origin;
        let secs = |at: jiff::Timestamp| -> f64 {
            round(at.duration_since(origin).as_secs_f64().max(0.0))
        };
        let runbook = match copy {
            RunbookCopy::Parsed(rb) => Some(rb),
            RunbookCopy::Unusable(_) => None,
        };
        let mut notes = Vec::new();
        if let RunbookCopy::Unusable(why) = copy {
            notes.push(format!(
                "the run's runbook copy could not be used ({why}); objectives and action names are unknown"
            ));
        }

        let mut mode = None;
        let mut segments: Vec<Segment> = Vec::new();
        let mut predicted_rto = None;
        let mut plan_order: Vec<StepId> = Vec::new();
        let mut critical: Vec<StepId> = Vec::new();
        let mut preflight = None;
        let mut acc: HashMap<StepId, StepAcc> = HashMap::new();
        let mut seen_order: Vec<StepId> = Vec::new();
        let mut approvals: Vec<ApprovalReport> = Vec::new();
        let mut rollbacks: Vec<RollbackReport> = Vec::new();
        let mut regions: Vec<RegionReport> = Vec::new();
        let mut deferred: Vec<StepId> = Vec::new();

        for e in events {
            let at = secs(e.at);

            match &e.kind {
                EventKind::RunStarted {
                    mode: m, resumed, ..
                } => {
                    mode = Some(*m);
                    segments.push(Segment {
                        resumed: *resumed,
                        started_at_secs: at,
                        finished_at_secs: None,
                        outcome: None,
                        exit_code: None,
                        makespan_secs: None,
                        rto_secs: None,
                        rpo_secs: None,
                        reason: None,
                    });
                }
                EventKind::Plan {
                    levels,
                    critical_path,
                    predicted_rto_secs,
                } => {
                    predicted_rto = Some(round(*predicted_rto_secs));
                    plan_order = levels.iter().flatten().cloned().collect();
                    critical = critical_path.clone();
                }
                EventKind::Preflight { ok, findings } => {
                    let (failures, rest): (Vec<_>, Vec<_>) =
                        findings.iter().partition(|f| !f.finding.ok);
                    let finding = |f: &&crate::engine::events::StepFinding| FindingReport {
                        step: f.step.clone(),
                        message: f.finding.message.clone(),
                    };
                    preflight = Some(PreflightReport {
                        ok: *ok,
                        at_secs: at,
                        checks: findings.len(),
                        failures: failures.iter().map(finding).collect(),
                        warnings: rest
                            .iter()
                            .filter(|f| f.finding.message.starts_with("warning:"))
                            .map(finding)
                            .collect(),
                    });
                }
                EventKind::ApprovalNeeded { step, message } => {
                    step_acc(&mut acc, &mut seen_order, step);
                    approvals.push(ApprovalReport {
                        step: step.clone(),
                        message: Some(message.clone()),
                        requested_at_secs: Some(at),
                        approved_at_secs: None,
                        by: None,
                    });
                }
                EventKind::Approved { step, by } => {
                    step_acc(&mut acc, &mut seen_order, step);
                    match approvals
                        .iter_mut()
                        .rev()
                        .find(|a| &a.step == step && a.by.is_none())
                    {
                        Some(a) => {
                            a.approved_at_secs = Some(at);
                            a.by = Some(by.clone());
                        }
                        None => approvals.push(ApprovalReport {
                            step: step.clone(),
                            message: None,
                            requested_at_secs: None,
                            approved_at_secs: Some(at),
                            by: Some(by.clone()),
                        }),
                    }
                }
                EventKind::StepStarted { step, .. } => {
                    let s = step_acc(&mut acc, &mut seen_order, step);
                    s.started.get_or_insert(at);
                    // Each process numbers its attempts from 1: count the starts.
                    s.attempts += 1;
                    s.state = Some(StepState::InFlight);
                }
                EventKind::Captured { step, .. } | EventKind::Executed { step, .. } => {
                    step_acc(&mut acc, &mut seen_order, step);
                }
                EventKind::AttemptFailed {
                    step,
                    attempt,
                    error,
                    will_retry,
                    retry_in_secs,
                } => {
                    step_acc(&mut acc, &mut seen_order, step)
                        .retries
                        .push(RetryReport {
                            attempt: *attempt,
                            at_secs: at,
                            error: error.clone(),
                            will_retry: *will_retry,
                            retry_in_secs: retry_in_secs.map(round),
                        });
                }
                EventKind::GateObserved {
                    step,
                    check,
                    passed,
                    observed,
                } => {
                    step_acc(&mut acc, &mut seen_order, step).observe(check, observed, *passed, at)
                }
                EventKind::StepSucceeded { step, summary } => {
                    let s = step_acc(&mut acc, &mut seen_order, step);
                    s.state = Some(StepState::Succeeded);
                    s.ended = Some(at);
                    s.summary = Some(summary.clone());
                    s.error = None;
                }
                EventKind::StepFailed { step, error } => {
                    let s = step_acc(&mut acc, &mut seen_order, step);
                    s.state = Some(StepState::Failed);
                    s.ended = Some(at);
                    s.error = Some(error.clone());
                }
                EventKind::StepSkipped { step, reason } => {
                    let s = step_acc(&mut acc, &mut seen_order, step);
                    s.state = Some(StepState::Skipped);
                    s.ended = Some(at);
                    s.skip_reason = Some(reason.clone());
                }
                EventKind::StepDeferred { step, reason } => {
                    let s = step_acc(&mut acc, &mut seen_order, step);
                    s.state = Some(StepState::Deferred);
                    s.ended = Some(at);
                    s.skip_reason = Some(reason.clone());
                }
                EventKind::RegionStatus {
                    region,
                    service,
                    status,
                    latency_ms,
                    decided_by,
                } => regions.push(RegionReport {
                    at_secs: at,
                    region: region.clone(),
                    service: service.clone(),
                    status: *status,
                    latency_ms: *latency_ms,
                    decided_by: decided_by.clone(),
                }),
                EventKind::RollbackStarted { steps } => rollbacks.push(RollbackReport {
                    started_at_secs: at,
                    order: steps.clone(),
                    results: Vec::new(),
                    finished_at_secs: None,
                    clean: None,
                    left_changed: Vec::new(),
                }),
                EventKind::StepRolledBack { step, summary } => {
                    step_acc(&mut acc, &mut seen_order, step).state = Some(StepState::RolledBack);
                    push_rollback(&mut rollbacks, step, true, summary, at);
                }
                EventKind::RollbackFailed { step, error } => {
                    step_acc(&mut acc, &mut seen_order, step).state =
                        Some(StepState::RollbackFailed);
                    push_rollback(&mut rollbacks, step, false, error, at);
                }
                EventKind::RollbackFinished {
                    clean,
                    left_changed,
                } => {
                    if rollbacks.is_empty() {
                        rollbacks.push(RollbackReport {
                            started_at_secs: at,
                            order: Vec::new(),
                            results: Vec::new(),
                            finished_at_secs: None,
                            clean: None,
                            left_changed: Vec::new(),
                        });
                    }
                    let r = rollbacks.last_mut().expect("one exists");
                    r.finished_at_secs = Some(at);
                    r.clean = Some(*clean);
                    r.left_changed = left_changed.clone();
                }
                EventKind::RunFinished {
                    outcome,
                    exit_code,
                    makespan_secs,
                    rto_secs,
                    rpo_secs,
                    reason,
                    deferred: left,
                } => {
                    deferred.clone_from(left);
                    // A `run_finished` without a `run_started` (a journal cut at the
                    // front cannot happen, but a report must not assume it) still counts.
                    if segments.last().is_none_or(|s| s.outcome.is_some()) {
                        segments.push(Segment {
                            resumed: !segments.is_empty(),
                            started_at_secs: at,
                            finished_at_secs: None,
                            outcome: None,
                            exit_code: None,
                            makespan_secs: None,
                            rto_secs: None,
                            rpo_secs: None,
                            reason: None,
                        });
                    }
                    let s = segments.last_mut().expect("one exists");
                    s.reason.clone_from(reason);
                    s.finished_at_secs = Some(at);
                    s.outcome = Some(*outcome);
                    s.exit_code = Some(*exit_code);
                    s.makespan_secs = Some(round(*makespan_secs));
                    s.rto_secs = rto_secs.map(round);
                    s.rpo_secs = rpo_secs.map(round);
                }
            }
        }

        // The final outcome is the last process's: one that never recorded an end
        // crashed, whatever an earlier process said.
        let outcome = match segments.last() {
            Some(Segment {
                outcome: Some(o),
                exit_code,
                reason,
                ..
            }) => FinalOutcome {
                status: (*o).into(),
                exit_code: *exit_code,
                resumable: matches!(o, Outcome::Paused | Outcome::Aborted)
                    || (*o == Outcome::Succeeded && !deferred.is_empty()),
                reason: reason.clone(),
                deferred: if *o == Outcome::Succeeded {
                    deferred.clone()
                } else {
                    Vec::new()
                },
            },
            _ => FinalOutcome {
                status: RunStatus::Interrupted,
                exit_code: None,
                resumable: true,
                reason: None,
                deferred: Vec::new(),
            },
        };
        let last_finished = segments.iter().rev().find(|s| s.outcome.is_some());
        let last_event_at_secs = events.last().map_or(0.0, |e| secs(e.at));
        let mode = mode.or(runbook.map(|rb| rb.runbook.mode));

        // Steps: the runbook's in file order; then the plan's; then whatever else the
        // journal mentions, in order of first mention.
        let mut order: Vec<StepId> = Vec::new();
        if let Some(rb) = runbook {
            order.extend(rb.steps.iter().map(|s| s.id.clone()));
        }
        for id in plan_order.iter().chain(seen_order.iter()) {
            if !order.contains(id) {
                order.push(id.clone());
            }
        }
        let steps: Vec<StepReport> = order
            .into_iter()
            .map(|id| {
                let a = acc.remove(&id).unwrap_or_default();
                let spec = runbook.and_then(|rb| rb.step(&id));
                StepReport {
                    action: spec.map(|s| s.spec.name.to_string()),
                    critical: critical.contains(&id),
                    approval: spec.is_some_and(|s| s.approval)
                        || approvals.iter().any(|ap| ap.step == id),
                    state: a.state.unwrap_or(StepState::NotStarted),
                    started_at_secs: a.started,
                    ended_at_secs: a.ended,
                    duration_secs: match (a.started, a.ended) {
                        (Some(s), Some(e)) => Some(round((e - s).max(0.0))),
                        _ => None,
                    },
                    attempts: a.attempts,
                    summary: a.summary,
                    error: a.error,
                    skip_reason: a.skip_reason,
                    retries: a.retries,
                    gates: a.gates,
                    id,
                }
            })
            .collect();

        let objectives = runbook.map(|rb| &rb.objectives);
        let rto_objective = objectives
            .and_then(|o| o.rto)
            .map(|d| round(d.as_secs_f64()));
        let rpo_objective = objectives
            .and_then(|o| o.rpo)
            .map(|d| round(d.as_secs_f64()));
        let achieved_rto = last_finished.and_then(|s| s.rto_secs);
        let achieved_rpo = last_finished.and_then(|s| s.rpo_secs);
        let met = |achieved: Option<f64>, objective: Option<f64>| match (achieved, objective) {
            (Some(a), Some(o)) => Some(a <= o),
            _ => None,
        };
        // Where the RTO clock started, as the engine counts it: from zero in an
        // unplanned runbook, from the first change in a planned one (whichever process
        // made it). The measured RTO ends when service was back (`recovered_when`), not
        // at the run's end, so the end minus the RTO is no longer the start.
        let first_change = runbook.and_then(|rb| {
            steps
                .iter()
                .filter(|s: &&StepReport| rb.step(&s.id).is_some_and(|x| x.is_mutating()))
                .filter_map(|s| s.started_at_secs)
                .min_by(f64::total_cmp)
        });
        let rto_start = match mode {
            Some(Mode::Unplanned) => Some(0.0),
            _ => first_change.or_else(|| {
                // No runbook copy to tell which steps change things: as the engine
                // did if the recovery ended the run.
                match (achieved_rto, last_finished.and_then(|s| s.finished_at_secs)) {
                    (Some(rto), Some(end)) => Some(round((end - rto).max(0.0))),
                    _ => None,
                }
            }),
        };

        let target = Target {
            sim: header.sim.as_ref().map(|s| SimTarget {
                seed: s.seed,
                speed: s.speed,
                config: s.config.as_deref().map(|p| p.display().to_string()),
            }),
            aws: header.aws.as_ref().map(|a| AwsTarget {
                profile: a.profile.clone(),
                endpoint_url: a.endpoint_url.as_deref().map(strip_userinfo),
            }),
        };

        RunReport {
            report_version: REPORT_VERSION,
            run_id: header.run_id.clone(),
            runbook: RunbookInfo {
                name: header.runbook.clone(),
                path: display_path(&header.runbook_path),
                mode,
                description: runbook.and_then(|rb| rb.runbook.description.clone()),
                copy_parsed: runbook.is_some(),
            },
            outcome,
            started_at: header.created_at,
            clock_origin: origin,
            last_event_at_secs,
            target,
            param_overrides: header.params.clone(),
            params: runbook.map(|rb| rb.params.clone()).unwrap_or_default(),
            segments,
            rto: Objective {
                predicted_secs: predicted_rto,
                achieved_secs: achieved_rto,
                objective_secs: rto_objective,
                met: met(achieved_rto, rto_objective),
                starts_at_secs: rto_start,
            },
            rpo: Objective {
                predicted_secs: None,
                achieved_secs: achieved_rpo,
                objective_secs: rpo_objective,
                met: met(achieved_rpo, rpo_objective),
                starts_at_secs: None,
            },
            preflight,
            steps,
            approvals,
            rollbacks,
            regions,
            notes,
        }
    }

    /// What rolling back `step` did, in the last rollback that touched it.
    pub fn rollback_of(&self, step: &StepId) -> Option<&RollbackStepReport> {
        self.rollbacks
            .iter()
            .rev()
            .find_map(|r| r.results.iter().rev().find(|x| &x.step == step))
    }

    /// Whether an objective (RTO or RPO) was measured and missed.
    pub fn objective_missed(&self) -> bool {
        self.rto.missed() || self.rpo.missed()
    }
}

/// A step's facts, recording the order in which the journal first mentions steps.
fn step_acc<'a>(
    acc: &'a mut HashMap<StepId, StepAcc>,
    seen_order: &mut Vec<StepId>,
    id: &StepId,
) -> &'a mut StepAcc {
    if !acc.contains_key(id) {
        seen_order.push(id.clone());
    }
    acc.entry(id.clone()).or_default()
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

fn push_rollback(
    rollbacks: &mut Vec<RollbackReport>,
    step: &StepId,
    ok: bool,
    detail: &str,
    at: f64,
) {
    if rollbacks.is_empty() {
        rollbacks.push(RollbackReport {
            started_at_secs: at,
            order: Vec::new(),
            results: Vec::new(),
            finished_at_secs: None,
            clean: None,
            left_changed: Vec::new(),
        });
    }
    let r = rollbacks.last_mut().expect("one exists");
    let started = r
        .results
        .last()
        .map_or(r.started_at_secs, |prev| prev.at_secs);
    r.results.push(RollbackStepReport {
        step: step.clone(),
        ok,
        detail: detail.to_string(),
        started_at_secs: started,
        at_secs: at,
    });
}

/// Durations for people: "0.4s", "12.3s", "15m", "4m 05s", "1h 02m 03s".
pub fn human_secs(secs: f64) -> String {
    if secs < 59.95 {
        let s = format!("{secs:.1}s");
        return s.replace(".0s", "s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    match (h, s) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// Times on the run's clock for people, to the nearest second (as [`human_secs`]
/// rounds): "+00:00", "+03:59", "+1:02:03".
pub fn clock_secs(secs: f64) -> String {
    let total = secs.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("+{h}:{m:02}:{s:02}")
    } else {
        format!("+{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{Executed, Finding};
    use crate::engine::events::StepFinding;
    use crate::journal::{JOURNAL_VERSION, SimHeader};

    const RB: &str = r#"
[runbook]
name = "t"
mode = "planned"
[objectives]
rto = "10m"
rpo = "0s"
[[step]]
id = "check"
action = "wait"
duration = "5s"
[[step]]
id = "change"
action = "wait"
duration = "1m"
after = ["check"]
[[step]]
id = "verify"
action = "wait"
duration = "10s"
after = ["change"]
"#;

    fn header() -> Header {
        Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId("t-1".into()),
            runbook: "t".into(),
            runbook_path: "t.toml".into(),
            runbook_sha256: String::new(),
            created_at: jiff::Timestamp::from_second(1_000).unwrap(),
            clock_origin: jiff::Timestamp::from_second(1_000).unwrap(),
            sim: Some(SimHeader {
                seed: 7,
                speed: None,
                config: None,
            }),
            aws: None,
            params: BTreeMap::new(),
        }
    }

    /// Events at whole seconds after the origin.
    struct Ev(Vec<Event>);

    impl Ev {
        fn at(&mut self, secs: i64, kind: EventKind) -> &mut Self {
            self.0.push(Event {
                run_id: RunId("t-1".into()),
                at: jiff::Timestamp::from_second(1_000 + secs).unwrap(),
                kind,
            });
            self
        }
    }

    fn id(s: &str) -> StepId {
        StepId::new(s)
    }

    fn started(resumed: bool) -> EventKind {
        EventKind::RunStarted {
            event_version: 1,
            runbook: "t".into(),
            mode: Mode::Planned,
            sim: true,
            seed: Some(7),
            resumed,
        }
    }

    fn finished(outcome: Outcome, secs: f64, rto: Option<f64>) -> EventKind {
        EventKind::RunFinished {
            outcome,
            exit_code: outcome.exit_code(),
            makespan_secs: secs,
            rto_secs: rto,
            rpo_secs: None,
            reason: None,
            deferred: Vec::new(),
        }
    }

    fn step_started(s: &str, attempt: u32) -> EventKind {
        EventKind::StepStarted {
            step: id(s),
            attempt,
        }
    }

    fn ok(s: &str, summary: &str) -> EventKind {
        EventKind::StepSucceeded {
            step: id(s),
            summary: summary.into(),
        }
    }

    fn runbook() -> Runbook {
        parse_runbook_copy(&header(), RB).unwrap()
    }

    fn build(ev: &Ev) -> RunReport {
        let rb = runbook();
        RunReport::build(&header(), &ev.0, RunbookCopy::Parsed(&rb))
    }

    #[test]
    fn a_resumed_run_has_one_segment_per_process_and_ends_with_the_last() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false))
            .at(
                0,
                EventKind::Plan {
                    levels: vec![vec![id("check")], vec![id("change")], vec![id("verify")]],
                    critical_path: vec![id("check"), id("change"), id("verify")],
                    predicted_rto_secs: 70.0,
                },
            )
            .at(
                0,
                EventKind::Preflight {
                    ok: true,
                    findings: vec![
                        StepFinding {
                            step: id("check"),
                            finding: Finding {
                                ok: true,
                                message: "fine".into(),
                            },
                        },
                        StepFinding {
                            step: id("change"),
                            finding: Finding {
                                ok: true,
                                message: "warning: us-east-1 unreachable".into(),
                            },
                        },
                    ],
                },
            )
            .at(0, step_started("check", 1))
            .at(5, ok("check", "done"))
            .at(5, step_started("change", 1))
            .at(
                20,
                EventKind::AttemptFailed {
                    step: id("change"),
                    attempt: 1,
                    error: "refused".into(),
                    will_retry: false,
                    retry_in_secs: None,
                },
            )
            .at(
                20,
                EventKind::StepFailed {
                    step: id("change"),
                    error: "refused".into(),
                },
            )
            .at(20, finished(Outcome::Paused, 20.0, None))
            // Resumed with --retry; that process is killed mid-step...
            .at(20, started(true))
            .at(20, step_started("change", 1))
            // ...and resumed again, to the end.
            .at(30, started(true))
            .at(
                30,
                EventKind::Executed {
                    step: id("change"),
                    executed: Executed {
                        summary: "x".into(),
                        output: serde_json::Value::Null,
                    },
                },
            )
            .at(80, ok("change", "changed"))
            .at(80, step_started("verify", 1))
            .at(90, ok("verify", "verified"))
            .at(90, finished(Outcome::Succeeded, 90.0, Some(85.0)));
        let r = build(&ev);
        assert_eq!(r.segments.len(), 3);
        assert_eq!(
            r.segments.iter().map(|s| s.resumed).collect::<Vec<_>>(),
            [false, true, true]
        );
        assert_eq!(r.segments[0].outcome, Some(Outcome::Paused));
        assert_eq!(r.segments[1].outcome, None, "killed: no end recorded");
        assert_eq!(r.segments[2].outcome, Some(Outcome::Succeeded));
        assert_eq!(r.outcome.status, RunStatus::Succeeded);
        assert_eq!(r.outcome.exit_code, Some(0));
        let change = &r.steps[1];
        assert_eq!(change.id, id("change"));
        assert_eq!(change.state, StepState::Succeeded);
        assert_eq!(change.started_at_secs, Some(5.0), "the first start");
        assert_eq!(change.ended_at_secs, Some(80.0));
        assert_eq!(change.duration_secs, Some(75.0));
        assert_eq!(change.attempts, 2);
        assert_eq!(change.error, None, "a later success clears the failure");
        assert_eq!(change.retries.len(), 1);
        assert_eq!(r.rto.achieved_secs, Some(85.0));
        assert_eq!(r.rto.objective_secs, Some(600.0));
        assert_eq!(r.rto.verdict(), "met");
        assert_eq!(r.rto.starts_at_secs, Some(5.0));
        assert_eq!(r.rpo.verdict(), "not measured");
        let pf = r.preflight.as_ref().unwrap();
        assert_eq!((pf.checks, pf.failures.len(), pf.warnings.len()), (2, 0, 1));
        assert!(r.steps.iter().all(|s| s.critical));
    }

    #[test]
    fn a_run_whose_last_process_recorded_no_end_is_interrupted() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false))
            .at(0, step_started("check", 1))
            .at(5, ok("check", "done"))
            .at(5, finished(Outcome::Paused, 5.0, None))
            .at(6, started(true))
            .at(6, step_started("change", 1));
        let r = build(&ev);
        assert_eq!(r.outcome.status, RunStatus::Interrupted);
        assert_eq!(r.outcome.exit_code, None);
        assert!(r.outcome.resumable);
        assert_eq!(r.outcome.describe(), "interrupted (resumable)");
        assert_eq!(r.steps[1].state, StepState::InFlight);
        assert_eq!(r.steps[2].state, StepState::NotStarted);
        assert_eq!(r.last_event_at_secs, 6.0);
    }

    #[test]
    fn a_rolled_back_run_records_each_steps_rollback_in_order() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false))
            .at(0, step_started("check", 1))
            .at(1, ok("check", "ok"))
            .at(1, step_started("change", 1))
            .at(61, ok("change", "changed"))
            .at(61, step_started("verify", 1))
            .at(
                71,
                EventKind::StepFailed {
                    step: id("verify"),
                    error: "still <broken>".into(),
                },
            )
            .at(
                71,
                EventKind::RollbackStarted {
                    steps: vec![id("change"), id("check")],
                },
            )
            .at(
                100,
                EventKind::StepRolledBack {
                    step: id("change"),
                    summary: "undone".into(),
                },
            )
            .at(
                100,
                EventKind::RollbackFailed {
                    step: id("check"),
                    error: "no rollback is defined for this step; its change remains".into(),
                },
            )
            .at(
                100,
                EventKind::RollbackFinished {
                    clean: false,
                    left_changed: vec![id("check")],
                },
            )
            .at(100, finished(Outcome::NeedsAttention, 100.0, None));
        let r = build(&ev);
        assert_eq!(r.outcome.describe(), "needs attention (exit 3)");
        assert_eq!(r.rollbacks.len(), 1);
        let rb = &r.rollbacks[0];
        assert_eq!(rb.order, [id("change"), id("check")]);
        assert_eq!(rb.clean, Some(false));
        assert_eq!(rb.left_changed, [id("check")]);
        assert_eq!(rb.results[0].started_at_secs, 71.0);
        assert_eq!(rb.results[0].at_secs, 100.0);
        assert!(rb.results[0].ok && !rb.results[1].ok);
        let states: Vec<StepState> = r.steps.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                StepState::RollbackFailed,
                StepState::RolledBack,
                StepState::Failed
            ]
        );
        // The forward bar keeps its success time; the rollback has its own.
        assert_eq!(r.steps[1].ended_at_secs, Some(61.0));
        assert_eq!(r.rollback_of(&id("change")).unwrap().detail, "undone");
        assert_eq!(r.steps[2].error.as_deref(), Some("still <broken>"));
        assert_eq!(r.rto.verdict(), "not measured");
        assert!(!r.objective_missed());
    }

    #[test]
    fn gate_polls_fold_into_distinct_values_in_order() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false)).at(0, step_started("change", 1));
        let observe = |passed: bool, observed: &str| EventKind::GateObserved {
            step: id("change"),
            check: "verify".into(),
            passed,
            observed: observed.into(),
        };
        for t in 0..1000 {
            ev.at(t, observe(false, "pending"));
        }
        for t in 1000..1500 {
            ev.at(t, observe(false, "failing-over"));
        }
        ev.at(1500, observe(false, "pending"))
            .at(1505, observe(true, "writer in us-west-2"))
            .at(
                1505,
                EventKind::GateObserved {
                    step: id("change"),
                    check: "aurora.writer_in_region".into(),
                    passed: true,
                    observed: "writer in us-west-2".into(),
                },
            );
        for t in 0..50 {
            ev.at(1506, observe(false, &format!("lag {t}ms")));
        }
        let r = build(&ev);
        let g = &r.steps[1].gates;
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].check, "verify");
        assert_eq!(g[0].polls, 1502 + 50);
        let values: Vec<&str> = g[0].values.iter().map(|v| v.observed.as_str()).collect();
        assert_eq!(values.len(), MAX_GATE_VALUES);
        assert_eq!(
            &values[..3],
            ["pending", "failing-over", "writer in us-west-2"]
        );
        assert_eq!(g[0].values[0].polls, 1001);
        assert_eq!(g[0].values[0].first_at_secs, 0.0);
        assert_eq!(g[0].values[0].last_at_secs, 1500.0);
        assert_eq!(g[0].more_values, 50 - (MAX_GATE_VALUES - 3));
        assert_eq!(g[1].polls, 1);
        assert!(g[1].last_passed);
    }

    #[test]
    fn an_unusable_runbook_copy_is_a_note_and_the_journal_still_reports() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false))
            .at(0, step_started("zeta", 1))
            .at(3, ok("zeta", "ok"))
            .at(3, finished(Outcome::Succeeded, 3.0, Some(3.0)));
        let r = RunReport::build(&header(), &ev.0, RunbookCopy::Unusable("bad toml"));
        assert!(r.notes[0].contains("bad toml"), "{:?}", r.notes);
        assert!(!r.runbook.copy_parsed);
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.steps[0].action, None);
        assert_eq!(r.rto.objective_secs, None);
        assert_eq!(r.rto.verdict(), "no objective");
    }

    #[test]
    fn an_objective_missed_is_missed() {
        let mut ev = Ev(Vec::new());
        ev.at(0, started(false))
            .at(700, finished(Outcome::Succeeded, 700.0, Some(700.0)));
        let r = build(&ev);
        assert_eq!(r.rto.verdict(), "MISSED");
        assert!(r.objective_missed());
    }

    #[test]
    fn endpoint_credentials_never_reach_a_report() {
        assert_eq!(
            strip_userinfo("http://AKIA:secret@127.0.0.1:5000/x?y"),
            "http://127.0.0.1:5000/x?y"
        );
        assert_eq!(strip_userinfo("http://localhost:1"), "http://localhost:1");
        assert_eq!(strip_userinfo("u:p@h/p@q"), "h/p@q");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(human_secs(0.0), "0s");
        assert_eq!(human_secs(0.44), "0.4s");
        assert_eq!(human_secs(59.96), "1m");
        assert_eq!(human_secs(238.6), "3m 59s");
        assert_eq!(human_secs(3723.0), "1h 02m 03s");
        assert_eq!(clock_secs(0.0), "+00:00");
        assert_eq!(clock_secs(238.6), "+03:59");
        assert_eq!(human_secs(900.0), "15m");
        assert_eq!(clock_secs(3723.0), "+1:02:03");
    }
}
