//! [`RunReport::build`]: the fold of a run's header and events into the report model.

use std::collections::HashMap;
use std::path::Path;

use super::{
    ApprovalReport, AwsTarget, FinalOutcome, FindingReport, GateReport, GateValue, MAX_GATE_VALUES,
    Objective, PreflightReport, REPORT_VERSION, RegionReport, RetryReport, RollbackReport,
    RollbackStepReport, RunReport, RunStatus, RunbookCopy, RunbookInfo, Segment, SimTarget,
    StepReport, StepState, Target,
};
use crate::engine::events::{Event, EventKind, Outcome};
use crate::journal::Header;
use crate::runbook::{Mode, StepId};

/// Seconds, rounded to the millisecond so a report's numbers stay readable and stable.
fn round(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// Removes `user:password@` from a URL: a report must not carry a credential even if
/// someone put one in `--endpoint-url`.
pub(super) fn strip_userinfo(url: &str) -> String {
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
                        findings.iter().partition(|f| !f.finding.allows());
                    let finding = |f: &&crate::engine::events::StepFinding| FindingReport {
                        step: f.step.clone(),
                        // The documented form: a warning's starts with `warning: `.
                        message: f.finding.to_string(),
                    };
                    preflight = Some(PreflightReport {
                        ok: *ok,
                        at_secs: at,
                        checks: findings.len(),
                        failures: failures.iter().map(finding).collect(),
                        warnings: rest
                            .iter()
                            .filter(|f| f.finding.is_warning())
                            .map(finding)
                            .collect(),
                    });
                }
                EventKind::ApprovalNeeded {
                    step,
                    message,
                    approvers: required,
                    at_risk,
                    ..
                } => {
                    step_acc(&mut acc, &mut seen_order, step);
                    approvals.push(ApprovalReport {
                        step: step.clone(),
                        message: Some(message.clone()),
                        requested_at_secs: Some(at),
                        approved_at_secs: None,
                        by: None,
                        required: (*required > 1).then_some(*required),
                        approvers: Vec::new(),
                        denied_by: None,
                        denied_reason: None,
                        at_risk: at_risk.clone(),
                    });
                }
                EventKind::ApprovalDenied { step, by, reason } => {
                    step_acc(&mut acc, &mut seen_order, step);
                    if let Some(a) = approvals
                        .iter_mut()
                        .rev()
                        .find(|a| &a.step == step && a.by.is_none())
                    {
                        a.denied_by = Some(by.clone());
                        a.denied_reason = reason.clone();
                    }
                }
                EventKind::Approved {
                    step,
                    by,
                    approvers: people,
                } => {
                    step_acc(&mut acc, &mut seen_order, step);
                    match approvals
                        .iter_mut()
                        .rev()
                        .find(|a| &a.step == step && a.by.is_none())
                    {
                        Some(a) => {
                            a.approved_at_secs = Some(at);
                            a.by = Some(by.clone());
                            a.approvers = people.clone();
                        }
                        None => approvals.push(ApprovalReport {
                            step: step.clone(),
                            message: None,
                            requested_at_secs: None,
                            approved_at_secs: Some(at),
                            by: Some(by.clone()),
                            required: None,
                            approvers: people.clone(),
                            denied_by: None,
                            denied_reason: None,
                            at_risk: None,
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
                // What came of the run's notifications says nothing of the run itself
                // (they may even follow its end).
                EventKind::NotificationSent { .. } | EventKind::NotificationFailed { .. } => {}
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
        let last_event_at_secs = events
            .iter()
            .rev()
            .find(|e| {
                !matches!(
                    e.kind,
                    EventKind::NotificationSent { .. } | EventKind::NotificationFailed { .. }
                )
            })
            .map_or(0.0, |e| secs(e.at));
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
                .filter(|s: &&StepReport| rb.step(&s.id).is_some_and(|x| x.starts_rto_clock()))
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
