//! What a resumed run knows from its journal.
//!
//! Replaying the events gives each step's last known state. A step that succeeded is
//! never run again; a step that started but has no ending (the process died while it
//! ran) is run again through `execute`, which reads the world first and treats "already
//! done" as success, with the capture journaled before the crash; a failed step waits
//! for the operator's decision.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::events::{Event, EventKind, Outcome};
use crate::actions::{Captured, Executed};
use crate::runbook::StepId;

/// The operator's choice for a paused or failed run (`drpilot resume --retry|...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Run the failed steps again.
    Retry,
    /// Mark the failed steps skipped and go on.
    Skip,
    /// Roll back every completed change.
    Rollback,
    /// Leave everything as it is.
    Abort,
}

/// Step states recovered from a journal.
#[derive(Clone, Debug, Default)]
pub struct Prior {
    /// Steps that succeeded.
    pub succeeded: HashSet<StepId>,
    /// Steps skipped by the operator.
    pub skipped: HashSet<StepId>,
    /// Steps that failed for good.
    pub failed: HashSet<StepId>,
    /// Steps that started and never ended.
    pub in_flight: HashSet<StepId>,
    /// Steps already rolled back.
    pub rolled_back: HashSet<StepId>,
    /// Steps left for later (a region they need was unreachable) and not run since.
    pub deferred: HashSet<StepId>,
    /// What each step captured before changing anything.
    pub captured: HashMap<StepId, Captured>,
    /// Steps a process died in the middle of: captured, with no `executed`, success or
    /// failure before the next process started. Their change may have taken effect
    /// without the journal knowing (killed between the call and its `executed`), so a
    /// rollback restores their capture too.
    pub interrupted: HashSet<StepId>,
    /// What each step's action did.
    pub executed: HashMap<StepId, Executed>,
    /// Whether preflight already passed (it is not repeated on resume).
    pub preflight_passed: bool,
    /// Whether a rollback had started.
    pub rolling_back: bool,
    /// The last recorded outcome, if a process ended the run.
    pub last_outcome: Option<Outcome>,
    /// How many events the journal holds.
    pub events: usize,
    /// When each step first started, on the run's clock: a resumed planned run's RTO
    /// counts from the first change, made by whichever process made it.
    pub first_started: HashMap<StepId, jiff::Timestamp>,
    /// When each succeeded or skipped step last ended so, on the run's clock: a resumed
    /// run's RTO ends when its `recovered_when` steps were done, whichever process ran
    /// them.
    pub done_at: HashMap<StepId, jiff::Timestamp>,
}

impl Prior {
    /// Rebuilds step states from a run's events.
    pub fn from_events(events: &[Event]) -> Self {
        let mut p = Prior {
            events: events.len(),
            ..Prior::default()
        };
        for e in events {
            match &e.kind {
                // A process ended where the next one starts.
                EventKind::RunStarted { resumed: true, .. } => p.mark_interrupted(),
                EventKind::Preflight { ok, .. } => p.preflight_passed = *ok,
                EventKind::StepStarted { step, .. } => {
                    p.first_started.entry(step.clone()).or_insert(e.at);
                    p.deferred.remove(step);
                    p.failed.remove(step);
                    p.in_flight.insert(step.clone());
                }
                EventKind::Captured { step, captured } => {
                    p.captured.insert(step.clone(), captured.clone());
                    // A capture is durable before the change is sent; the start event
                    // may not be. A process killed between them may have made the
                    // change: the step is in flight, and its resume keeps this capture
                    // instead of capturing the changed state as "before".
                    p.deferred.remove(step);
                    p.failed.remove(step);
                    p.in_flight.insert(step.clone());
                }
                EventKind::Executed { step, executed } => {
                    p.executed.insert(step.clone(), executed.clone());
                }
                EventKind::StepSucceeded { step, .. } => {
                    p.done_at.insert(step.clone(), e.at);
                    p.in_flight.remove(step);
                    p.succeeded.insert(step.clone());
                }
                EventKind::StepFailed { step, .. } => {
                    p.in_flight.remove(step);
                    p.failed.insert(step.clone());
                }
                EventKind::StepSkipped { step, .. } => {
                    p.done_at.insert(step.clone(), e.at);
                    p.failed.remove(step);
                    p.in_flight.remove(step);
                    p.skipped.insert(step.clone());
                }
                EventKind::StepDeferred { step, .. } => {
                    p.in_flight.remove(step);
                    p.failed.remove(step);
                    p.deferred.insert(step.clone());
                }
                EventKind::RollbackStarted { .. } => p.rolling_back = true,
                EventKind::StepRolledBack { step, .. } => {
                    p.rolled_back.insert(step.clone());
                }
                EventKind::RunFinished { outcome, .. } => p.last_outcome = Some(*outcome),
                _ => {}
            }
        }
        // And the journal's end, where the process resuming it starts.
        p.mark_interrupted();
        p
    }

    /// Steps captured with no `executed`, success or failure: a process ended (died,
    /// or was stopped) in the middle of them.
    fn mark_interrupted(&mut self) {
        let cut: Vec<StepId> = self
            .captured
            .keys()
            .filter(|s| {
                !self.executed.contains_key(*s)
                    && !self.succeeded.contains(*s)
                    && !self.failed.contains(*s)
                    && !self.skipped.contains(*s)
            })
            .cloned()
            .collect();
        self.interrupted.extend(cut);
    }

    /// Whether the run ended in a state no resumption can change. A run that
    /// succeeded with deferred steps is not: `resume` runs them.
    pub fn is_final(&self) -> bool {
        match self.last_outcome {
            Some(Outcome::Succeeded) => self.deferred.is_empty(),
            Some(Outcome::RolledBack | Outcome::PreflightFailed) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(lines: &[serde_json::Value]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l["run_id"] = json!("r");
                l["at"] = json!("2026-01-01T00:00:00Z");
                serde_json::from_value(l).unwrap()
            })
            .collect()
    }

    /// The chaos suite's regression (chaos/scenarios/kill-during-valkey-switchover.toml):
    /// a step captured and cut off before its `executed` is one whose change may have
    /// taken effect; one that failed or succeeded in its own process is not.
    #[test]
    fn a_step_cut_off_after_its_capture_is_interrupted() {
        let captured = |s: &str| json!({"event": "captured", "step": s, "captured": {}});
        let e = events(&[
            captured("cut"),
            captured("done"),
            json!({"event": "executed", "step": "done", "executed": {"summary": "sent", "output": {}}}),
            captured("refused"),
            json!({"event": "step_failed", "step": "refused", "error": "invalid"}),
        ]);
        let p = Prior::from_events(&e);
        assert_eq!(
            p.interrupted,
            HashSet::from([StepId::new("cut")]),
            "{:?}",
            p.interrupted
        );
    }
}
