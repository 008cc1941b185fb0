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
    /// What each step captured before changing anything.
    pub captured: HashMap<StepId, Captured>,
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
                EventKind::Preflight { ok, .. } => p.preflight_passed = *ok,
                EventKind::StepStarted { step, .. } => {
                    p.first_started.entry(step.clone()).or_insert(e.at);
                    p.failed.remove(step);
                    p.in_flight.insert(step.clone());
                }
                EventKind::Captured { step, captured } => {
                    p.captured.insert(step.clone(), captured.clone());
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
                EventKind::RollbackStarted { .. } => p.rolling_back = true,
                EventKind::StepRolledBack { step, .. } => {
                    p.rolled_back.insert(step.clone());
                }
                EventKind::RunFinished { outcome, .. } => p.last_outcome = Some(*outcome),
                _ => {}
            }
        }
        p
    }

    /// Whether the run ended in a state no resumption can change.
    pub fn is_final(&self) -> bool {
        matches!(
            self.last_outcome,
            Some(Outcome::Succeeded | Outcome::RolledBack | Outcome::PreflightFailed)
        )
    }
}
