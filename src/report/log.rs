//! Events as log lines: the progress a person watching stderr sees when stdout carries
//! `--output json`.
//!
//! Each event becomes one `tracing` event under the target [`TARGET`], with the event's
//! facts as structured fields (`run_id`, `event`, `step`, `attempt`, `error`,
//! `outcome`, ...), so `--log-format json` gives a log pipeline fields to index instead
//! of sentences to parse. Levels follow what a person needs at 3 a.m.: gate polls and
//! captured state at `debug` (many, and only interesting when debugging), state changes
//! at `info`, failures at `warn`. The sink logs only what the event carries: events
//! never hold a secret, so neither do these lines.

use crate::engine::dispatcher::Sink;
use crate::engine::{Event, EventKind, Outcome};
use crate::runbook::Mode;

/// The `tracing` target of event lines: `DRPILOT_LOG=drpilot::events=debug` shows gate
/// polls without turning on every other module's debug logs.
pub const TARGET: &str = "drpilot::events";

/// Logs each event as one `tracing` event (see the module docs).
#[derive(Debug, Default)]
pub struct TracingSink;

impl TracingSink {
    /// A sink; where the lines go and which are kept is the subscriber's business
    /// (`--log-format`, `DRPILOT_LOG`).
    pub fn new() -> Self {
        Self
    }
}

/// One `tracing` event at `$level` with the fields every line has (`run_id`, `at` on
/// the run's clock, `event`), then the event's own.
macro_rules! log {
    ($level:ident, $e:expr, $($rest:tt)*) => {
        tracing::$level!(
            target: TARGET,
            run_id = $e.run_id.as_str(),
            at = %$e.at,
            event = $e.kind.name(),
            $($rest)*
        )
    };
}

impl Sink for TracingSink {
    fn emit(&mut self, e: &Event) -> Result<(), String> {
        use EventKind::*;
        match &e.kind {
            RunStarted {
                event_version,
                runbook,
                mode,
                sim,
                seed,
                resumed,
            } => log!(
                info,
                e,
                runbook = runbook.as_str(),
                mode = mode_name(*mode),
                sim,
                seed = *seed,
                resumed,
                event_version,
                "{} {runbook}",
                if *resumed { "resuming" } else { "starting" }
            ),
            Plan {
                levels,
                critical_path,
                predicted_rto_secs,
            } => log!(
                info, e, levels = levels.len(), critical_path = %join(critical_path),
                predicted_rto_secs = *predicted_rto_secs,
                "plan: {} levels, predicted RTO {predicted_rto_secs:.0}s", levels.len()
            ),
            Preflight { ok: true, findings } => {
                log!(
                    info,
                    e,
                    ok = true,
                    findings = findings.len(),
                    "preflight passed"
                )
            }
            Preflight {
                ok: false,
                findings,
            } => {
                let blocking: Vec<_> = findings.iter().filter(|f| !f.finding.allows()).collect();
                for f in &blocking {
                    log!(
                        warn,
                        e,
                        step = f.step.as_str(),
                        error = f.finding.message.as_str(),
                        "preflight finding blocks the run"
                    );
                }
                log!(
                    warn,
                    e,
                    ok = false,
                    findings = findings.len(),
                    blocking = blocking.len(),
                    "preflight failed; nothing was changed"
                );
            }
            ApprovalNeeded {
                step,
                message,
                approvers,
                at_risk,
                ..
            } => log!(
                info,
                e,
                step = step.as_str(),
                message = message.as_str(),
                approvers,
                at_risk = at_risk.as_ref().map_or("", |r| r.summary.as_str()),
                "approval needed"
            ),
            Approved {
                step,
                by,
                approvers,
            } => {
                let names: Vec<&str> = approvers.iter().map(|a| a.name.as_str()).collect();
                let names = names.join(",");
                log!(
                    info,
                    e,
                    step = step.as_str(),
                    by = by.as_str(),
                    approvers = names.as_str(),
                    "approved"
                )
            }
            ApprovalDenied { step, by, reason } => log!(
                warn,
                e,
                step = step.as_str(),
                by = by.name.as_str(),
                reason = reason.as_deref().unwrap_or(""),
                "approval denied"
            ),
            StepStarted { step, attempt } => {
                log!(info, e, step = step.as_str(), attempt, "step started")
            }
            Captured { step, .. } => {
                log!(
                    debug,
                    e,
                    step = step.as_str(),
                    "state captured for rollback"
                )
            }
            Executed { step, executed } => log!(
                info,
                e,
                step = step.as_str(),
                summary = executed.summary.as_str(),
                "action executed"
            ),
            AttemptFailed {
                step,
                attempt,
                error,
                will_retry,
                retry_in_secs,
            } => log!(
                warn,
                e,
                step = step.as_str(),
                attempt,
                error = error.as_str(),
                will_retry,
                retry_in_secs = *retry_in_secs,
                "attempt failed"
            ),
            GateObserved {
                step,
                check,
                passed,
                observed,
            } => log!(
                debug,
                e,
                step = step.as_str(),
                check = check.as_str(),
                passed,
                observed = observed.as_str(),
                "gate observed"
            ),
            StepSucceeded { step, summary } => log!(
                info,
                e,
                step = step.as_str(),
                summary = summary.as_str(),
                "step succeeded"
            ),
            StepFailed { step, error } => {
                log!(
                    warn,
                    e,
                    step = step.as_str(),
                    error = error.as_str(),
                    "step failed"
                )
            }
            StepSkipped { step, reason } => {
                log!(
                    info,
                    e,
                    step = step.as_str(),
                    reason = reason.as_str(),
                    "step skipped"
                )
            }
            StepDeferred { step, reason } => {
                log!(
                    warn,
                    e,
                    step = step.as_str(),
                    reason = reason.as_str(),
                    "step deferred"
                )
            }
            RegionStatus {
                region,
                service,
                status,
                latency_ms,
                decided_by,
            } => {
                if *status == crate::cloud::reach::Reachability::Unreachable {
                    log!(
                        warn,
                        e,
                        region = region.as_str(),
                        service = service.as_str(),
                        status = status.as_str(),
                        decided_by = decided_by.as_str(),
                        "region unreachable; calls to it fail at once"
                    )
                } else {
                    log!(
                        info,
                        e,
                        region = region.as_str(),
                        service = service.as_str(),
                        status = status.as_str(),
                        latency_ms = *latency_ms,
                        decided_by = decided_by.as_str(),
                        "region {}",
                        status.as_str()
                    )
                }
            }
            RollbackStarted { steps } => {
                log!(info, e, steps = %join(steps), "rollback started")
            }
            StepRolledBack { step, summary } => log!(
                info,
                e,
                step = step.as_str(),
                summary = summary.as_str(),
                "step rolled back"
            ),
            RollbackFailed { step, error } => log!(
                warn,
                e,
                step = step.as_str(),
                error = error.as_str(),
                "step NOT rolled back"
            ),
            RollbackFinished {
                clean: true,
                left_changed,
            } => log!(
                info, e, clean = true, left_changed = %join(left_changed),
                "rollback finished: every change undone"
            ),
            RollbackFinished {
                clean: false,
                left_changed,
            } => log!(
                warn, e, clean = false, left_changed = %join(left_changed),
                "rollback finished; resources are STILL CHANGED"
            ),
            NotificationSent {
                receiver,
                about,
                attempts,
            } => log!(
                info,
                e,
                receiver = receiver.as_str(),
                about = about.as_str(),
                attempts = *attempts,
                "notification sent"
            ),
            NotificationFailed {
                receiver,
                about,
                error,
                attempts,
            } => log!(
                warn,
                e,
                receiver = receiver.as_str(),
                about = about.as_str(),
                error = error.as_str(),
                attempts = *attempts,
                "notification failed"
            ),
            RunFinished {
                outcome,
                exit_code,
                makespan_secs,
                rto_secs,
                rpo_secs,
                reason,
                deferred,
            } => {
                let outcome = outcome_name(*outcome);
                if outcome == "succeeded" {
                    log!(
                        info,
                        e,
                        outcome,
                        exit_code,
                        makespan_secs = *makespan_secs,
                        rto_secs = *rto_secs,
                        rpo_secs = *rpo_secs,
                        deferred = %join(deferred),
                        "run finished: {outcome}"
                    );
                } else {
                    log!(
                        warn,
                        e,
                        outcome,
                        exit_code,
                        makespan_secs = *makespan_secs,
                        rto_secs = *rto_secs,
                        rpo_secs = *rpo_secs,
                        reason = reason.as_deref().unwrap_or_default(),
                        "run finished: {outcome}"
                    );
                }
            }
        }
        Ok(())
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Planned => "planned",
        Mode::Unplanned => "unplanned",
    }
}

/// The outcome as the events spell it (`rolled_back`, not `RolledBack`), so a log
/// query and an event query use the same words.
fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Succeeded => "succeeded",
        Outcome::RolledBack => "rolled_back",
        Outcome::PreflightFailed => "preflight_failed",
        Outcome::Aborted => "aborted",
        Outcome::Paused => "paused",
        Outcome::NeedsAttention => "needs_attention",
    }
}

fn join(steps: &[crate::runbook::StepId]) -> String {
    steps
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::RunId;
    use crate::runbook::StepId;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(kind: EventKind) -> Event {
        Event {
            run_id: RunId("rb-1".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind,
        }
    }

    /// Runs `f` under a JSON subscriber at `level`; returns the lines as JSON.
    fn logged(level: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn events_become_structured_lines_at_their_level() {
        let lines = logged("debug", || {
            let mut sink = TracingSink::new();
            for kind in [
                EventKind::StepStarted {
                    step: StepId::new("promote"),
                    attempt: 2,
                },
                EventKind::AttemptFailed {
                    step: StepId::new("promote"),
                    attempt: 2,
                    error: "throttled".into(),
                    will_retry: true,
                    retry_in_secs: Some(4.0),
                },
                EventKind::GateObserved {
                    step: StepId::new("promote"),
                    check: "verify".into(),
                    passed: false,
                    observed: "failing-over".into(),
                },
                EventKind::RunFinished {
                    outcome: Outcome::RolledBack,
                    exit_code: 1,
                    makespan_secs: 60.0,
                    rto_secs: None,
                    rpo_secs: None,
                    reason: Some("step a failed".into()),
                    deferred: Vec::new(),
                },
            ] {
                sink.emit(&event(kind)).unwrap();
            }
        });
        let summary: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["level"].as_str().unwrap().to_string(),
                    l["fields"]["event"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("INFO", "step_started"),
                ("WARN", "attempt_failed"),
                ("DEBUG", "gate_observed"),
                ("WARN", "run_finished"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        for l in &lines {
            assert_eq!(l["target"], TARGET);
            assert_eq!(l["fields"]["run_id"], "rb-1");
        }
        assert_eq!(lines[0]["fields"]["step"], "promote");
        assert_eq!(lines[0]["fields"]["attempt"], 2);
        assert_eq!(lines[1]["fields"]["error"], "throttled");
        assert_eq!(lines[1]["fields"]["will_retry"], true);
        assert_eq!(lines[3]["fields"]["outcome"], "rolled_back");
        assert_eq!(lines[3]["fields"]["exit_code"], 1);
        // The run's clock, to line logs up with events; absent options are absent.
        assert_eq!(lines[0]["fields"]["at"], "1970-01-01T00:00:00Z");
        assert_eq!(lines[1]["fields"]["retry_in_secs"], 4.0);
        assert!(lines[3]["fields"].get("rto_secs").is_none(), "{}", lines[3]);
    }

    #[test]
    fn gate_polls_stay_out_of_the_default_info_level() {
        let lines = logged("info", || {
            TracingSink::new()
                .emit(&event(EventKind::GateObserved {
                    step: StepId::new("a"),
                    check: "verify".into(),
                    passed: true,
                    observed: "done".into(),
                }))
                .unwrap();
        });
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn outcome_and_mode_names_are_the_event_spelling() {
        for o in [
            Outcome::Succeeded,
            Outcome::RolledBack,
            Outcome::PreflightFailed,
            Outcome::Aborted,
            Outcome::Paused,
            Outcome::NeedsAttention,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), outcome_name(o));
        }
        for m in [Mode::Planned, Mode::Unplanned] {
            assert_eq!(serde_json::to_value(m).unwrap(), mode_name(m));
        }
    }
}
