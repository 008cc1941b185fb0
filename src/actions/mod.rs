//! Actions and checks: what each catalogue entry does, against the [`Cloud`] traits.
//!
//! The engine drives every step through the same five calls, in this order:
//!
//! 1. [`preflight`] (read-only, before the run starts): is this possible and safe?
//! 2. [`capture`] (read-only): the "before" state that rollback restores. The engine
//!    journals it *before* anything is sent, so a crash after a mutation still knows
//!    what to restore.
//! 3. [`execute`]: idempotent. It reads the current state first; "already done" is
//!    success; it sends a mutation at most once per call, and after an error or
//!    timeout whose outcome is unknown it re-reads state instead of resending. A resumed
//!    run calls it again with the journaled capture and gets the same guarantees.
//! 4. [`verify`], polled by the engine: has the action's own effect completed (writer
//!    moved, change INSYNC)? Then the step's `[step.gate]`, polled through [`check`].
//! 5. [`rollback`], in reverse dependency order if a later step fails: the step's
//!    `[step.rollback]` action, or the action's built-in inverse using the capture.
//!
//! A check used as a step action is evaluated once by `execute`; `false` is a retryable
//! failure (the step's retry policy decides how long to keep asking).

use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, CloudError};
use crate::runbook::catalogue::Spec;
use crate::runbook::model::{Fields, Rollback, Runbook, Step};

/// What an action or check needs: the cloud, and the step it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct StepContext<'a> {
    /// Every service, behind its trait.
    pub cloud: &'a Cloud,
    /// The whole runbook (mode, objectives, params).
    pub runbook: &'a Runbook,
    /// The step being run.
    pub step: &'a Step,
}

/// How an action failed: the engine's retry and rollback decisions depend only on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionErrorKind {
    /// Try again after the backoff (5xx, unreachable, a check that is not yet true).
    Retryable,
    /// Try again after a longer backoff: the service throttled us.
    Throttled,
    /// Retrying cannot help (not found, access denied, invalid request).
    Permanent,
    /// The action refuses because going ahead would be unsafe or wrong (lag above the
    /// RPO, engine versions differ, a switchover in a degraded topology). Permanent,
    /// and the message says why.
    Refused,
}

/// A failed action, check or rollback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct ActionError {
    /// Classification.
    pub kind: ActionErrorKind,
    /// What happened, for people.
    pub message: String,
    /// The cloud error behind it, if any.
    pub cloud: Option<CloudError>,
}

impl ActionError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Retryable,
            message: message.into(),
            cloud: None,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Permanent,
            message: message.into(),
            cloud: None,
        }
    }

    /// A refusal: going ahead would be unsafe.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Refused,
            message: message.into(),
            cloud: None,
        }
    }

    /// Whether the engine may try again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ActionErrorKind::Retryable | ActionErrorKind::Throttled
        )
    }
}

impl From<CloudError> for ActionError {
    fn from(e: CloudError) -> Self {
        use crate::cloud::CloudErrorKind as K;
        let kind = match e.kind {
            K::Throttling => ActionErrorKind::Throttled,
            K::Transient | K::Unreachable => ActionErrorKind::Retryable,
            K::NotFound | K::InvalidState | K::AccessDenied | K::InvalidRequest => {
                ActionErrorKind::Permanent
            }
        };
        Self {
            kind,
            message: e.to_string(),
            cloud: Some(e),
        }
    }
}

/// One finding of a preflight: a fact checked, and whether it allows the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Whether this finding allows the run to go ahead.
    pub ok: bool,
    /// What was checked and what was seen ("writer of acme-prod is in us-east-1").
    pub message: String,
}

/// The state an action captured before changing anything: what rollback restores.
/// Stored in the journal as JSON; never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Captured(pub serde_json::Value);

/// What `execute` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Executed {
    /// One line for people: "FailoverGlobalCluster sent to us-west-2" or "already done".
    pub summary: String,
    /// Values later calls need (e.g. `{"change_id": "/change/C1"}` for the INSYNC gate
    /// and for rollback). Journaled.
    pub output: serde_json::Value,
}

/// One poll of `verify` or `check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Whether the condition holds.
    pub passed: bool,
    /// What was seen, for the live view and the `gate_observed` event.
    pub observed: String,
}

/// Read-only checks before the run: is the step possible and safe?
pub async fn preflight(ctx: &StepContext<'_>) -> Result<Vec<Finding>, ActionError> {
    Err(not_built(ctx.step.spec))
}

/// Reads the "before" state rollback restores (`None` for actions that change nothing).
pub async fn capture(ctx: &StepContext<'_>) -> Result<Option<Captured>, ActionError> {
    Err(not_built(ctx.step.spec))
}

/// Runs the step's action once, idempotently (see the module docs).
pub async fn execute(
    ctx: &StepContext<'_>,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    let _ = captured;
    Err(not_built(ctx.step.spec))
}

/// One poll: has the action's own effect completed?
pub async fn verify(
    ctx: &StepContext<'_>,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let _ = executed;
    Err(not_built(ctx.step.spec))
}

/// One evaluation of a check (a gate, or a check used as an action).
pub async fn check(
    ctx: &StepContext<'_>,
    spec: &'static Spec,
    fields: &Fields,
    executed: Option<&Executed>,
) -> Result<Observation, ActionError> {
    let _ = (ctx, fields, executed);
    Err(not_built(spec))
}

/// Undoes the step: its `[step.rollback]` action or the action's built-in inverse.
pub async fn rollback(
    ctx: &StepContext<'_>,
    rollback: &Rollback,
    captured: Option<&Captured>,
    executed: Option<&Executed>,
) -> Result<String, ActionError> {
    let _ = (rollback, captured, executed);
    Err(not_built(ctx.step.spec))
}

fn not_built(spec: &Spec) -> ActionError {
    ActionError::permanent(format!(
        "action `{}` is not implemented in this build",
        spec.name
    ))
}
