//! A line per transition on stderr, for people and for logs.

use std::io::Write;

use crate::engine::dispatcher::Sink;
use crate::engine::{Event, EventKind, Outcome};

/// Prints events as short lines, with the run-clock time since the start.
pub struct HumanSink<W: Write> {
    out: W,
    start: Option<jiff::Timestamp>,
    lines: Lines,
}

impl<W: Write> HumanSink<W> {
    /// Wraps a writer (stderr in the CLI).
    pub fn new(out: W) -> Self {
        Self {
            out,
            start: None,
            lines: Lines::default(),
        }
    }
}

impl<W: Write> Sink for HumanSink<W> {
    fn emit(&mut self, e: &Event) -> Result<(), String> {
        if let Some(text) = self.lines.describe(e) {
            let start = *self.start.get_or_insert(e.at);
            let secs = e.at.duration_since(start).as_secs().max(0);
            let _ = writeln!(self.out, "[{:>3}:{:02}] {text}", secs / 60, secs % 60);
        }
        Ok(())
    }
}

/// Turns events into one-line descriptions for people (the line view, and the log
/// above the live view). Gate polls are described only when what they observe changes.
#[derive(Default)]
pub struct Lines {
    last_observed: std::collections::HashMap<String, String>,
    /// The last verdict seen per (region, service): a target that answers is not news
    /// until it stopped answering before.
    regions: std::collections::HashMap<(String, String), crate::cloud::reach::Reachability>,
}

impl Lines {
    /// The line for `e`, or `None` for events people need not see (captures, a gate
    /// poll that saw nothing new).
    pub fn describe(&mut self, e: &Event) -> Option<String> {
        use EventKind::*;
        let text = match &e.kind {
            RunStarted {
                runbook,
                mode,
                sim,
                seed,
                resumed,
                ..
            } => format!(
                "{} {runbook} ({mode:?}{}{}), run {}",
                if *resumed { "resuming" } else { "starting" },
                if *sim { ", simulated world" } else { "" },
                seed.map(|s| format!(", seed {s}")).unwrap_or_default(),
                e.run_id
            ),
            Plan {
                predicted_rto_secs, ..
            } => format!("plan: predicted RTO {}", secs(*predicted_rto_secs)),
            Preflight { ok, findings } => {
                let bad: Vec<String> = findings
                    .iter()
                    .filter(|f| !f.finding.allows())
                    .map(|f| format!("\n        ✗ {}: {}", f.step, f.finding.message))
                    .collect();
                let warnings: Vec<String> = findings
                    .iter()
                    .filter(|f| f.finding.is_warning())
                    .map(|f| format!("\n        ! {}: {}", f.step, f.finding))
                    .collect();
                if *ok {
                    format!(
                        "preflight passed ({} checks){}",
                        findings.len(),
                        warnings.concat()
                    )
                } else {
                    format!("preflight FAILED; nothing was changed{}", bad.concat())
                }
            }
            ApprovalNeeded {
                step,
                message,
                approvers,
                at_risk,
                ..
            } => {
                let who = if *approvers > 1 {
                    format!("the approval of {approvers} people")
                } else {
                    "approval".to_string()
                };
                let risk = at_risk
                    .as_ref()
                    .map(|r| format!("\n  {}", r.summary))
                    .unwrap_or_default();
                format!("? {step} needs {who}: {message}{risk}")
            }
            Approved {
                step, approvers, ..
            } if !approvers.is_empty() => {
                let names: Vec<&str> = approvers.iter().map(|a| a.name.as_str()).collect();
                format!("  {step} approved by {}", names.join(", "))
            }
            Approved { step, by, .. } => format!("  {step} approved ({by})"),
            ApprovalDenied { step, by, reason } => format!(
                "✗ {step} denied by {}{}",
                by.name,
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            StepStarted { step, attempt } if *attempt > 1 => format!("> {step} attempt {attempt}"),
            StepStarted { step, .. } => format!("> {step}"),
            Captured { .. } | Executed { .. } => return None,
            AttemptFailed {
                step,
                attempt,
                error,
                retry_in_secs,
                ..
            } => match retry_in_secs {
                Some(d) => format!(
                    "! {step} attempt {attempt} failed: {error}; retrying in {}",
                    secs(*d)
                ),
                None => format!("! {step} attempt {attempt} failed: {error}"),
            },
            GateObserved {
                step,
                check,
                observed,
                passed,
            } => {
                let key = format!("{step}/{check}");
                if self.last_observed.get(&key) == Some(observed) {
                    return None;
                }
                self.last_observed.insert(key, observed.clone());
                format!(
                    "  {step} {check}: {observed}{}",
                    if *passed { " ✓" } else { "" }
                )
            }
            StepSucceeded { step, summary } => format!("✓ {step}: {summary}"),
            StepFailed { step, error } => format!("✗ {step} FAILED: {error}"),
            StepSkipped { step, reason } => format!("- {step} skipped: {reason}"),
            StepDeferred { step, reason } => format!("~ {step} deferred: {reason}"),
            RegionStatus {
                region,
                service,
                status,
                latency_ms,
                decided_by,
            } => {
                use crate::cloud::reach::Reachability as R;
                let before = self
                    .regions
                    .insert((region.clone(), service.clone()), *status);
                let latency = latency_ms
                    .map(|ms| format!(" in {}", crate::report::human::millis(ms)))
                    .unwrap_or_default();
                match (status, before) {
                    (R::Reachable, None | Some(R::Reachable)) => return None,
                    (R::Reachable, Some(_)) => {
                        format!("✓ {region} {service} answers again{latency}: {decided_by}")
                    }
                    (R::Slow, _) => format!("! {region} {service} is slow ({decided_by})"),
                    (R::Unreachable, _) => {
                        format!(
                            "! {region} {service} UNREACHABLE: {decided_by}; calls to it fail at once"
                        )
                    }
                }
            }
            RollbackStarted { steps } => format!(
                "rolling back {}",
                if steps.is_empty() {
                    "(nothing changed)".to_string()
                } else {
                    steps
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            StepRolledBack { step, summary } => format!("↺ {step} rolled back: {summary}"),
            RollbackFailed { step, error } => format!("✗ {step} NOT rolled back: {error}"),
            RollbackFinished {
                clean,
                left_changed,
            } => {
                if *clean {
                    "rollback finished: every change undone".to_string()
                } else {
                    format!(
                        "rollback finished; STILL CHANGED: {}",
                        left_changed
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
            NotificationSent {
                receiver,
                about,
                attempts,
            } => format!(
                "  notified {receiver} of {about}{}",
                if *attempts > 1 {
                    format!(" (attempt {attempts})")
                } else {
                    String::new()
                }
            ),
            NotificationFailed {
                receiver,
                about,
                error,
                ..
            } => format!("! notification of {about} to {receiver} failed: {error}"),
            RunFinished {
                outcome,
                exit_code,
                makespan_secs,
                rto_secs,
                rpo_secs,
                reason,
                deferred,
            } => {
                let what = match outcome {
                    Outcome::Succeeded => "succeeded",
                    Outcome::RolledBack => "failed and was rolled back",
                    Outcome::PreflightFailed => "stopped at preflight",
                    Outcome::Aborted => "aborted (resumable)",
                    Outcome::Paused => "paused, awaiting a decision",
                    Outcome::NeedsAttention => "failed and NEEDS A PERSON",
                };
                format!(
                    "run {what} after {}{}{} (exit {exit_code}){}",
                    secs(*makespan_secs),
                    rto_secs
                        .map(|r| format!(", RTO {}", secs(r)))
                        .unwrap_or_default(),
                    rpo_secs
                        .map(|r| format!(", RPO {r:.1}s"))
                        .unwrap_or_default(),
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ) + &deferred_note(deferred, &e.run_id)
            }
        };
        Some(text)
    }
}

/// `; deferred: a, b (...)`: what a run left for later and how to finish it.
pub fn deferred_note(deferred: &[crate::runbook::StepId], run: &crate::engine::RunId) -> String {
    if deferred.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = deferred.iter().map(|s| s.as_str()).collect();
    format!(
        "; DEFERRED: {} (a region they need is unreachable; `drpilot resume {run}` runs them once it answers)",
        names.join(", ")
    )
}

/// `84ms`, `1.2s`, `20s`.
pub fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}s", ms / 1000)
    }
}

fn secs(s: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs_f64(s.max(0.0).round())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::reach::Reachability as R;
    use crate::engine::RunId;

    fn region(status: R, latency_ms: Option<u64>) -> Event {
        Event {
            run_id: RunId("r".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind: EventKind::RegionStatus {
                region: "us-east-1".into(),
                service: "rds".into(),
                status,
                latency_ms,
                decided_by: "probe".into(),
            },
        }
    }

    /// A region that answers is not news; one that stops, is slow or comes back is.
    #[test]
    fn region_lines_tell_changes_not_every_verdict() {
        let mut l = Lines::default();
        assert_eq!(l.describe(&region(R::Reachable, Some(40))), None);
        assert_eq!(
            l.describe(&region(R::Unreachable, None)).as_deref(),
            Some("! us-east-1 rds UNREACHABLE: probe; calls to it fail at once")
        );
        assert_eq!(
            l.describe(&region(R::Reachable, Some(1200))).as_deref(),
            Some("✓ us-east-1 rds answers again in 1.2s: probe")
        );
        assert_eq!(
            l.describe(&region(R::Slow, Some(20_000))).as_deref(),
            Some("! us-east-1 rds is slow (probe)")
        );
    }
}
