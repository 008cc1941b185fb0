//! Approvals from elsewhere: `drpilot approve RUN_ID STEP` and `drpilot deny RUN_ID
//! STEP --reason TEXT` write a decision into the run's state store (local or S3, so any
//! machine with access can decide), and a run reads them through [`StoreApprovals`].

use std::io::{IsTerminal, Write};

use crate::engine::approvals::{ApprovalDecision, ApprovalSource, Verdict, local_approver};
use crate::engine::events::{EventKind, RunId};
use crate::exit;
use crate::journal::approvals::MAX_REASON;
use crate::journal::{StateDir, StateStore};
use crate::plan::Plan;
use crate::runbook::StepId;

use super::AppError;
use super::store::state_store;

/// A run's state store as the source of its approvals.
pub struct StoreApprovals {
    state: StateStore,
    run: RunId,
}

impl StoreApprovals {
    /// Approvals of `run` in `state`.
    pub fn new(state: StateStore, run: RunId) -> Self {
        Self { state, run }
    }
}

/// `--state ...` as `approve` needs it to find `state` (nothing for the default
/// directory).
fn state_flags(state: &StateStore) -> String {
    match state {
        StateStore::Dir(d) => match StateDir::resolve(None) {
            Ok(default) if default.root() == d.root() => String::new(),
            _ => format!(" --state {}", shell_word(&d.root().display().to_string())),
        },
        StateStore::S3(s) => s
            .stores()
            .iter()
            .map(|l| format!(" --state {}", shell_word(&l.to_string())))
            .collect(),
    }
}

/// `w` quoted for a POSIX shell when it needs it.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=@+,".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

impl ApprovalSource for StoreApprovals {
    fn decisions(&self, step: &StepId) -> Result<Vec<ApprovalDecision>, String> {
        self.state
            .decisions(&self.run, step)
            .map_err(|e| e.to_string())
    }

    fn approve_command(&self, step: &StepId) -> String {
        format!(
            "drpilot approve {} {}{}",
            self.run,
            step,
            state_flags(&self.state)
        )
    }
}

/// `drpilot approve` / `drpilot deny`.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step: String,
    /// Approve or deny.
    pub verdict: Verdict,
    /// `--as NAME` (else the OS user).
    pub as_name: Option<String>,
    /// `--reason` (deny).
    pub reason: Option<String>,
    /// `--yes`: do not ask to type the step id.
    pub yes: bool,
    /// `--state`.
    pub state: Vec<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
}

/// Records an approval or a denial of `req.step` of `req.run_id`; the exit code.
pub fn decide(req: &DecideRequest) -> Result<u8, AppError> {
    if !crate::journal::is_run_id(&req.run_id) {
        return Err(AppError::usage(format!(
            "`{}` is not a run id (see `drpilot status`)",
            req.run_id
        )));
    }
    let name = match req.as_name.as_deref().map(str::trim) {
        Some("") => return Err(AppError::usage("--as needs a name")),
        Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
            return Err(AppError::usage(
                "--as: a name of at most 100 characters, with no control characters",
            ));
        }
        other => other,
    };
    let reason = match (req.verdict, req.reason.as_deref().map(str::trim)) {
        (Verdict::Deny, None | Some("")) => {
            return Err(AppError::usage(
                "deny needs --reason TEXT: the run's report says why",
            ));
        }
        (_, Some(r)) if r.chars().count() > MAX_REASON => {
            return Err(AppError::usage(format!(
                "--reason: at most {MAX_REASON} characters"
            )));
        }
        (_, r) => r.filter(|r| !r.is_empty()).map(str::to_string),
    };
    let state = state_store(
        &req.state,
        None,
        req.profile.as_deref(),
        req.endpoint_url.as_deref(),
    )?;
    let run = RunId(req.run_id.clone());
    let replay = state.replay(&run).map_err(AppError::usage)?;
    let text = state.runbook_copy(&run).map_err(AppError::usage)?;
    let loaded = crate::runbook::load_str_with(
        &replay.header.runbook_path,
        &text,
        &replay.header.params,
    )
    .map_err(|_| {
        AppError::usage(format!(
            "run {run}: its copy of the runbook does not load; decide with the run's own prompt"
        ))
    })?;
    let rb = &loaded.runbook;
    let step = StepId::new(req.step.clone());
    let Some(index) = rb.steps.iter().position(|s| s.id == step) else {
        let ids: Vec<&str> = rb
            .steps
            .iter()
            .filter(|s| s.approval)
            .map(|s| s.id.as_str())
            .collect();
        return Err(AppError::usage(format!(
            "run {run} has no step `{step}` (its approval steps: {})",
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        )));
    };
    let s = &rb.steps[index];
    if !s.approval {
        return Err(AppError::usage(format!(
            "step `{step}` of run {run} needs no approval"
        )));
    }
    let prior = crate::engine::Prior::from_events(&replay.events);
    if prior.is_final() {
        return Err(AppError::usage(format!(
            "run {run} has ended ({}): nothing is waiting for a decision",
            replay
                .outcome()
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        )));
    }
    // Where the step stands: waiting for a decision, approved (until a failure makes
    // a retry ask again), or done.
    let (mut waiting, mut approved, mut asked) = (false, false, false);
    for e in &replay.events {
        match &e.kind {
            EventKind::ApprovalNeeded { step: s, .. } if *s == step => {
                (waiting, asked) = (true, true);
            }
            EventKind::Approved { step: s, .. } if *s == step => {
                (waiting, approved) = (false, true);
            }
            EventKind::StepFailed { step: s, .. } if *s == step => {
                (waiting, approved) = (false, false);
            }
            EventKind::StepSucceeded { step: s, .. } | EventKind::StepSkipped { step: s, .. }
                if *s == step =>
            {
                return Err(AppError::usage(format!(
                    "step `{step}` of run {run} already ended: nothing to decide"
                )));
            }
            _ => {}
        }
    }
    if approved {
        return Err(AppError::usage(format!(
            "step `{step}` of run {run} is approved already: nothing to decide"
        )));
    }
    let mut by = local_approver(name, "store");
    if let StateStore::S3(s3) = &state {
        match s3.caller_identity() {
            Ok(arn) => by.aws_identity = Some(arn),
            Err(e) => eprintln!("warning: the AWS caller identity is not recorded: {e}"),
        }
    }

    // What deciding means, before anything is written.
    let plan = Plan::new(rb);
    let mut err = std::io::stderr();
    let message = match s.fields.get("message") {
        Some(crate::runbook::model::FieldValue::Str(m)) => m.clone(),
        _ => s.description.clone().unwrap_or_default(),
    };
    let _ = writeln!(
        err,
        "run {run} ({}), step `{step}`{}: {message}",
        rb.runbook.name,
        if waiting {
            " is waiting for approval"
        } else if asked {
            " (not waiting now: the run asked and stopped; its resumption asks again)"
        } else {
            " (the run has not reached it yet)"
        }
    );
    if s.approvers > 1 {
        let _ = writeln!(
            err,
            "it needs {} people's approval; you count once",
            s.approvers
        );
    }
    let next = super::guided::next_steps(&plan, index);
    if req.verdict == Verdict::Approve && !next.is_empty() {
        let _ = writeln!(err, "Approving it unlocks:");
        for l in &next {
            let _ = writeln!(err, "{l}");
        }
    }
    if req.verdict == Verdict::Approve && !req.yes {
        if !std::io::stdin().is_terminal() {
            return Err(AppError::usage(
                "approve asks to type the step id at a terminal; pass --yes to approve without",
            ));
        }
        let _ = write!(
            err,
            "Type `{step}` to approve as {}; anything else cancels: ",
            by.name
        );
        let _ = err.flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if line.trim() != step.as_str() {
            let _ = writeln!(err, "not approved: nothing was recorded");
            return Ok(exit::ABORTED);
        }
    }
    let decision = ApprovalDecision {
        step: step.clone(),
        verdict: req.verdict,
        by,
        reason,
    };
    state
        .record_decision(&run, &decision)
        .map_err(AppError::usage)?;
    let _ = writeln!(
        err,
        "{} `{step}` of run {run} as {}, in {}{}",
        match req.verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        },
        decision.by.name,
        state.describe(),
        if waiting {
            ": the run picks it up within seconds"
        } else {
            ""
        }
    );
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approve_command_quotes_what_a_shell_would_split() {
        assert_eq!(shell_word("/tmp/state"), "/tmp/state");
        assert_eq!(
            shell_word("s3://b/p?region=us-east-1"),
            "'s3://b/p?region=us-east-1'"
        );
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        let src = StoreApprovals::new(
            StateStore::Dir(StateDir::at("/tmp/x y")),
            RunId("rb-1".into()),
        );
        assert_eq!(
            src.approve_command(&StepId::new("approve-failover".to_string())),
            "drpilot approve rb-1 approve-failover --state '/tmp/x y'"
        );
    }
}
