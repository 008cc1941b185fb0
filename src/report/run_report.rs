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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::events::{Approver, Outcome, RunId};
use crate::journal::Header;
use crate::runbook::{self, Mode, Runbook, StepId};

mod build;

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
    /// runbook (the outage began before the run), the start of the first change that
    /// can interrupt service for a planned one (`Spec::starts_rto_clock`). `starts_at + achieved` is when service was back.
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
    /// `flag` (--approve), `yes` (--yes) or `operator` (typed at a prompt); `store`
    /// when only others approved (`drpilot approve`).
    pub by: Option<String>,
    /// How many distinct people it needed (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<u32>,
    /// Everyone who approved: name, how, from where, when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<Approver>,
    /// Who refused it (`drpilot deny`), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<Approver>,
    /// The denial's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_reason: Option<String>,
    /// What approving it might lose, read when it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk: Option<crate::actions::at_risk::AtRisk>,
}

impl ApprovalReport {
    /// The "By" cell's text for a reader, unescaped: who approved (or how, for a
    /// journal without approvers), `None` when nobody did; then a denial and the
    /// number of approvers required, if any (`notes`).
    pub fn by_text(&self) -> (Option<String>, String) {
        let by = match (self.who(), self.by.as_deref()) {
            (_, None) => None,
            (Some(who), Some(_)) => Some(who),
            (_, Some("flag")) => Some("--approve flag".to_string()),
            (_, Some("yes")) => Some("--yes".to_string()),
            (_, Some("operator")) => Some("operator at the prompt".to_string()),
            (_, Some(other)) => Some(other.to_string()),
        };
        let mut notes = String::new();
        if let Some(d) = &self.denied_by {
            notes.push_str(&format!(
                "; denied by {}{}",
                d.name,
                self.denied_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(n) = self.required {
            notes.push_str(&format!(" ({n} approvers required)"));
        }
        (by, notes)
    }

    /// The "Message" cell's text, unescaped: what was approved, and what approving
    /// put at risk when it was asked for.
    pub fn message_text(&self) -> String {
        let mut m = self.message.clone().unwrap_or_default();
        if let Some(r) = &self.at_risk {
            m.push_str(&format!(" — at the time: {}", r.summary));
        }
        m
    }

    /// Who approved, for a reader: each approver's name and how (`alice (store), bob
    /// (operator)`), else the legacy `by`.
    pub fn who(&self) -> Option<String> {
        if self.approvers.is_empty() {
            return None;
        }
        Some(
            self.approvers
                .iter()
                .map(|a| {
                    let how = match a.via.as_str() {
                        "flag" => "--approve",
                        "yes" => "--yes",
                        "operator" => "at the prompt",
                        "store" => "drpilot approve",
                        other => other,
                    };
                    let mut from = Vec::new();
                    if let Some(u) = &a.os_user
                        && u != &a.name
                    {
                        from.push(u.clone());
                    }
                    if let Some(h) = &a.host {
                        from.push(h.clone());
                    }
                    let mut t = format!("{} ({how}", a.name);
                    if !from.is_empty() {
                        t.push_str(&format!(", {}", from.join("@")));
                    }
                    if let Some(arn) = &a.aws_identity {
                        t.push_str(&format!(", {arn}"));
                    }
                    t.push(')');
                    t
                })
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
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

impl RunReport {
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
mod tests;
