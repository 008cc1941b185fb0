//! Events: the only contract between the engine and everything that reports on it.
//!
//! The terminal view, `--output json`, the journal and (later) drill reports are sinks
//! of this stream and never read engine state. The JSON form of an [`Event`] is a
//! documented, versioned schema (`docs/events.md`): every event has `"event"`,
//! `"run_id"` and `"at"` (RFC 3339 on the run's clock); step events add `"step"`.
//! Fields are only ever added within an [`EVENT_VERSION`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::actions::{Captured, Executed, Finding};
use crate::runbook::StepId;

/// Version of the event schema, carried by `run_started`.
pub const EVENT_VERSION: u32 = 1;

/// A run's id: `<runbook>-<UTC time>-<4 hex>`, unique per state store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a run ended. Ordered by severity so the worst of several can be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded (or was skipped by the operator).
    Succeeded,
    /// A step failed and every change was rolled back: all resources at their original state.
    RolledBack,
    /// Preflight found a problem; nothing changed.
    PreflightFailed,
    /// Stopped by the operator, resumable.
    Aborted,
    /// Paused after a failure, awaiting `drpilot resume RUN_ID --retry|--skip|--rollback|--abort`.
    Paused,
    /// A failure left resources changed: rollback failed, was incomplete, or not possible.
    NeedsAttention,
}

impl Outcome {
    /// The documented exit code (README, `cli::exit`).
    pub fn exit_code(self) -> u8 {
        use crate::cli::exit;
        match self {
            Outcome::Succeeded => exit::SUCCESS,
            Outcome::RolledBack => exit::ROLLED_BACK,
            Outcome::PreflightFailed => exit::PREFLIGHT_FAILED,
            Outcome::Aborted => exit::ABORTED,
            Outcome::Paused | Outcome::NeedsAttention => exit::NEEDS_PERSON,
        }
    }
}

/// One preflight finding, attributed to its step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFinding {
    /// The step checked.
    pub step: StepId,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// What happened. Serialized with the tag `"event"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run (or a resumption of it) started.
    RunStarted {
        /// Schema version of the events.
        event_version: u32,
        /// The runbook's name.
        runbook: String,
        /// planned or unplanned.
        mode: crate::runbook::Mode,
        /// Against the simulated world.
        sim: bool,
        /// The world's seed (sim only), to replay the same run.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        seed: Option<u64>,
        /// A resumption of an earlier process's run.
        resumed: bool,
    },
    /// The plan the run follows.
    Plan {
        /// Step ids by level.
        levels: Vec<Vec<StepId>>,
        /// The critical path.
        critical_path: Vec<StepId>,
        /// Predicted RTO in seconds.
        predicted_rto_secs: f64,
    },
    /// Readiness checks before anything changes.
    Preflight {
        /// Whether the run may go ahead.
        ok: bool,
        /// Every finding.
        findings: Vec<StepFinding>,
    },
    /// A step is waiting for an operator's approval.
    ApprovalNeeded {
        /// The step.
        step: StepId,
        /// What the approver agrees to.
        message: String,
    },
    /// A step was approved.
    Approved {
        /// The step.
        step: StepId,
        /// How: `flag` (--approve), `yes` (--yes) or `operator` (a prompt).
        by: String,
    },
    /// An attempt of a step started.
    StepStarted {
        /// The step.
        step: StepId,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// The state a step's rollback would restore, recorded before any change.
    Captured {
        /// The step.
        step: StepId,
        /// The captured state.
        captured: Captured,
    },
    /// The step's action ran: what it did, and what later calls need.
    Executed {
        /// The step.
        step: StepId,
        /// Its result.
        executed: Executed,
    },
    /// An attempt failed.
    AttemptFailed {
        /// The step.
        step: StepId,
        /// Which attempt.
        attempt: u32,
        /// Why.
        error: String,
        /// Whether another attempt follows.
        will_retry: bool,
        /// Delay before the next attempt, seconds.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        retry_in_secs: Option<f64>,
    },
    /// One poll of the action's completion (`check` is `verify`) or of the step's gate.
    GateObserved {
        /// The step.
        step: StepId,
        /// The check's name, or `verify` for the action's own completion.
        check: String,
        /// Whether it holds.
        passed: bool,
        /// What was seen.
        observed: String,
    },
    /// A step finished successfully.
    StepSucceeded {
        /// The step.
        step: StepId,
        /// What it did.
        summary: String,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step: StepId,
        /// Why.
        error: String,
    },
    /// A step was skipped (by the operator after a failure).
    StepSkipped {
        /// The step.
        step: StepId,
        /// Why.
        reason: String,
    },
    /// Rolling back started.
    RollbackStarted {
        /// Steps to roll back, in order.
        steps: Vec<StepId>,
    },
    /// A step was rolled back.
    StepRolledBack {
        /// The step.
        step: StepId,
        /// What the rollback did.
        summary: String,
    },
    /// A step's rollback failed (reported, and the rollback carries on).
    RollbackFailed {
        /// The step.
        step: StepId,
        /// Why.
        error: String,
    },
    /// Rolling back ended.
    RollbackFinished {
        /// Whether every resource is back at its original state.
        clean: bool,
        /// Steps whose changes remain (no rollback defined, or it failed).
        left_changed: Vec<StepId>,
    },
    /// The run ended (this process's part of it, for paused and aborted runs).
    RunFinished {
        /// How.
        outcome: Outcome,
        /// The exit code drpilot returns.
        exit_code: u8,
        /// Virtual time from start to end, seconds.
        makespan_secs: f64,
        /// Measured RTO (until the last verification passed), seconds.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rto_secs: Option<f64>,
        /// Measured RPO, seconds, when a data-loss window is known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rpo_secs: Option<f64>,
    },
}

impl EventKind {
    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&StepId> {
        use EventKind::*;
        match self {
            ApprovalNeeded { step, .. }
            | Approved { step, .. }
            | StepStarted { step, .. }
            | Captured { step, .. }
            | Executed { step, .. }
            | AttemptFailed { step, .. }
            | GateObserved { step, .. }
            | StepSucceeded { step, .. }
            | StepFailed { step, .. }
            | StepSkipped { step, .. }
            | StepRolledBack { step, .. }
            | RollbackFailed { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// An event with its run and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The run.
    pub run_id: RunId,
    /// When, on the run's clock.
    pub at: jiff::Timestamp,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_has_event_run_id_at_and_step() {
        let e = Event {
            run_id: RunId("rb-1".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind: EventKind::StepStarted {
                step: StepId::new("a"),
                attempt: 1,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "step_started");
        assert_eq!(v["run_id"], "rb-1");
        assert_eq!(v["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["step"], "a");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn outcomes_map_to_the_documented_exit_codes() {
        assert_eq!(Outcome::Succeeded.exit_code(), 0);
        assert_eq!(Outcome::RolledBack.exit_code(), 1);
        assert_eq!(Outcome::NeedsAttention.exit_code(), 3);
        assert_eq!(Outcome::Paused.exit_code(), 3);
        assert_eq!(Outcome::Aborted.exit_code(), 4);
        assert_eq!(Outcome::PreflightFailed.exit_code(), 5);
    }
}
