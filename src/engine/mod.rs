//! The engine: runs a planned runbook against a [`Cloud`](crate::cloud::Cloud).
//!
//! Shaped like nextest's runner (see STYLE.md): one dispatcher loop
//! ([`dispatcher`]) owns all run state and selects over step completions, progress
//! from the step executors, operator interrupts and the run deadline. Executors
//! ([`executor`]) report by channel and never share mutable state. Everything that
//! happens becomes an [`events::Event`] handed to the sinks (journal, terminal, NDJSON)
//! in order; the journal sink fsyncs before the engine goes on, and an executor waits
//! for the captured "before" state to be durable before it changes anything.

pub mod approvals;
pub mod dispatcher;
pub mod events;
pub mod executor;
pub mod preflight;
pub mod resume;
pub mod retry;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use dispatcher::{Interrupt, RunCtx, RunResult, run};
pub use events::{Event, EventKind, Outcome, RunId};
pub use resume::{Decision, Prior};

use crate::runbook::StepId;

/// What to do when a step fails for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Roll back the completed steps in reverse dependency order (the default).
    #[default]
    Rollback,
    /// Stop and leave everything as it is for `drpilot resume RUN_ID --retry|--skip|--rollback|--abort`.
    Pause,
    /// Stop and leave everything as it is; exit as aborted (resumable).
    Abort,
}

/// Approvals given up front: `--yes` or `--approve STEP`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// `--yes`: every approval step is approved.
    pub all: bool,
    /// `--approve STEP`, per step.
    pub steps: BTreeSet<StepId>,
}

impl Approvals {
    /// How `step` is approved, if it is.
    pub fn by(&self, step: &StepId) -> Option<&'static str> {
        if self.steps.contains(step) {
            Some("flag")
        } else if self.all {
            Some("yes")
        } else {
            None
        }
    }
}

/// Asks an operator to approve a step (interactive runs only; headless runs never
/// prompt). A parameter rather than a direct read of stdin, so tests pass their own.
#[async_trait::async_trait]
pub trait Prompter: Send + Sync {
    /// Shows what approving `step` will do and waits for the answer. Dropped unanswered
    /// when the step was decided elsewhere (`drpilot approve` / `deny`): then
    /// [`Prompter::withdrawn`] says so.
    async fn approve(&self, step: &StepId, message: &str) -> bool;
    /// The prompt for `step` is withdrawn: `why` (decided from the state store).
    fn withdrawn(&self, _step: &StepId, _why: &str) {}
    /// The operator approved `step`, which needs `need` people: it waits for the others
    /// (`have` so far), who approve with `command`.
    fn waiting(&self, _step: &StepId, _have: &[events::Approver], _need: usize, _command: &str) {}
}

/// How a run behaves, from the command line.
#[derive(Clone, Default)]
pub struct RunConfig {
    /// Who answers approval prompts; `None` in headless runs, where an approval step
    /// without `--approve STEP` or `--yes` fails instead of waiting.
    pub prompter: Option<std::sync::Arc<dyn Prompter>>,
    /// Approvals given up front.
    pub approvals: Approvals,
    /// Where approvals given from elsewhere are read (`drpilot approve`): the run's
    /// state store. `None`: only the operator approves.
    pub approval_source: Option<std::sync::Arc<dyn approvals::ApprovalSource>>,
    /// `--await-approvals`: how long a headless run waits for approvals from the
    /// store (`None`: it fails at once, as tooling expects; a guided run waits on its
    /// prompt and the store together, for as long as its operator does).
    pub await_approvals: Option<Duration>,
    /// The failure policy.
    pub on_failure: OnFailure,
    /// Deadline for the whole run (`--timeout`), in run-clock time.
    pub deadline: Option<Duration>,
    /// Seed for retry jitter, so simulated runs are reproducible.
    pub jitter_seed: Option<u64>,
    /// Default poll interval of a mutating action's completion check.
    pub verify_interval: Option<Duration>,
    /// Steps the operator chose not to run (`--skip-step`): recorded as skipped, not
    /// preflighted, and their dependents go on.
    pub skip: std::collections::BTreeSet<crate::runbook::StepId>,
    /// Findings the caller checked before the run (IAM permissions against AWS),
    /// reported with the engine's own preflight and blocking it when not ok.
    pub extra_preflight: Vec<events::StepFinding>,
    /// At most this many steps run at once (`--max-parallel`; `None`:
    /// [`DEFAULT_MAX_PARALLEL`]). Ready steps beyond it start, in file order, as running
    /// ones end: a wide runbook neither floods the AWS APIs with concurrent calls (and
    /// their throttling) nor holds every ready step's state in memory at once.
    pub max_parallel: Option<usize>,
}

/// Steps running at once when `--max-parallel` is not given: more than any level of a
/// real failover runbook has, so it only binds for generated or very wide runbooks.
pub const DEFAULT_MAX_PARALLEL: usize = 64;

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("approvals", &self.approvals)
            .field("interactive", &self.prompter.is_some())
            .field("on_failure", &self.on_failure)
            .field("deadline", &self.deadline)
            .field("max_parallel", &self.max_parallel)
            .finish()
    }
}
