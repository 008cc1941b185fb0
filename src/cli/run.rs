//! `drpilot run`, `drpilot resume` and `drpilot status`.
//!
//! Run and resume map their flags onto the application's requests (`crate::app::run`)
//! and print what comes back; the composition (store, lock, target, sinks, engine) is
//! the application's. Input is validated completely before anything is created: the
//! runbook and its plan, `--approve` names, the state directory, the simulated world's
//! config. Only then is the lock taken and the run directory written. The lock is
//! released when the run ends for good; a paused, aborted or crashed run keeps it, so
//! nobody else starts the same runbook over half-changed resources.

use super::args::{DrillArgs, Output, ResumeArgs, RunArgs};
use super::exit;
use crate::app::run::{ResumeRequest, RunRequest};
use crate::app::store::state_store;
use crate::engine::{Decision, Prior, RunId};
use crate::report::run_report::{RunReport, RunStatus, RunbookCopy, parse_runbook_copy};
use crate::runbook::StepId;

/// Prints `error: MESSAGE` and returns `code`: for the CLI's own flag checks.
pub(super) fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// `drpilot run`.
pub fn run(args: RunArgs, color: bool) -> u8 {
    let req = RunRequest {
        exec: args.exec.settings(),
        file: args.file,
        params: args.params,
        sim: args.sim,
        sim_config: args.sim_config,
        seed: args.seed,
        on_failure: args.on_failure.map(Into::into),
        color,
    };
    crate::app::run::run(req).unwrap_or_else(|e| e.report())
}

/// `drpilot drill`.
pub fn drill(args: DrillArgs, color: bool) -> u8 {
    let req = crate::app::drill::DrillRequest {
        exec: args.exec.settings(),
        file: args.file,
        failback: args.failback,
        report_dir: args.report_dir,
        window: args.window,
        soak: args.soak,
        sim: args.sim,
        sim_config: args.sim_config,
        seed: args.seed,
        params: args.params,
        color,
    };
    crate::app::drill::drill(req).unwrap_or_else(|e| e.report())
}

/// `drpilot resume`.
pub fn resume(args: ResumeArgs, color: bool) -> u8 {
    let decision = if args.retry {
        Some(Decision::Retry)
    } else if args.skip {
        Some(Decision::Skip)
    } else if args.rollback {
        Some(Decision::Rollback)
    } else if args.abort {
        Some(Decision::Abort)
    } else {
        None
    };
    let req = ResumeRequest {
        exec: args.exec.settings(),
        run_id: args.run_id,
        decision,
        on_failure: args.on_failure.map(Into::into),
        color,
    };
    crate::app::run::resume(req).unwrap_or_else(|e| e.report())
}

/// `drpilot status [RUN_ID]`.
pub fn status(
    run_id: Option<String>,
    state: &[String],
    aws: &super::args::StoreAwsArgs,
    output: Output,
) -> u8 {
    let state = match state_store(
        state,
        None,
        aws.profile.as_deref(),
        aws.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => return e.report(),
    };
    // The words are the run report's (`report --format json`'s `outcome.status` and
    // step `state`, snake_case in JSON, spelled out for people), plus `running` while a
    // live process holds the run's lock.
    let live = |replay: &crate::journal::Replay| -> Option<crate::journal::LockHolder> {
        state
            .holder(&replay.header.runbook)
            .ok()
            .flatten()
            .filter(|(h, stale)| h.run_id == replay.header.run_id && !stale)
            .map(|(h, _)| h)
    };
    let token = |status: RunStatus| {
        serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let holder_json = |h: &crate::journal::LockHolder| serde_json::json!({"pid": h.pid, "host": h.host, "since": h.since});
    let running_words =
        |h: &crate::journal::LockHolder| format!("running (pid {} on {})", h.pid, h.host);
    match run_id {
        None => {
            let runs = match state.runs() {
                Ok(r) => r,
                Err(e) => return fail(exit::USAGE, e),
            };
            let mut lines = Vec::new();
            for r in &runs {
                let prior = Prior::from_events(&r.events);
                let status = prior
                    .last_outcome
                    .map_or(RunStatus::Interrupted, RunStatus::from);
                let holder = live(r);
                match output {
                    Output::Json => lines.push(
                        serde_json::json!({
                            "run_id": r.header.run_id,
                            "runbook": r.header.runbook,
                            "created_at": r.header.created_at,
                            "status": holder.as_ref().map_or_else(|| token(status), |_| "running".into()),
                            "holder": holder.as_ref().map(holder_json),
                            "succeeded": prior.succeeded.len(),
                        })
                        .to_string(),
                    ),
                    Output::Human => lines.push(format!(
                        "{:<50} {:<28} {}",
                        r.header.run_id.0,
                        holder
                            .as_ref()
                            .map_or_else(|| status.label().to_string(), running_words),
                        r.header.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
                    )),
                }
            }
            if lines.is_empty() && output == Output::Human {
                eprintln!("no runs in {}", state.describe());
            }
            super::print_stdout(&lines.iter().map(|l| format!("{l}\n")).collect::<String>())
        }
        Some(id) => {
            let replay = match state.replay(&RunId(id)) {
                Ok(r) => r,
                Err(e) => return fail(exit::USAGE, e),
            };
            for note in &replay.notes {
                eprintln!("note: {note}");
            }
            let holder = live(&replay);
            // The run's own copy of its runbook, with its `--param` overrides, as the run
            // read it: every step is listed, the ones that never started too.
            let rb_text = state
                .runbook_copy(&replay.header.run_id)
                .unwrap_or_default();
            let parsed = parse_runbook_copy(&replay.header, &rb_text);
            let copy = match &parsed {
                Ok(rb) => RunbookCopy::Parsed(rb),
                Err(why) => RunbookCopy::Unusable(why),
            };
            let report = RunReport::build(&replay.header, &replay.events, copy);
            let outcome = &report.outcome;
            let text = match output {
                Output::Json => format!(
                    "{}\n",
                    serde_json::json!({
                        "run_id": replay.header.run_id,
                        "runbook": replay.header.runbook,
                        "status": holder.as_ref().map_or_else(|| token(outcome.status), |_| "running".into()),
                        "holder": holder.as_ref().map(holder_json),
                        "exit_code": outcome.exit_code,
                        "resumable": outcome.resumable,
                        "reason": outcome.reason,
                        "deferred": outcome.deferred,
                        "steps": report.steps.iter().map(|s| serde_json::json!({"step": s.id, "state": s.state})).collect::<Vec<_>>(),
                    })
                ),
                Output::Human => {
                    let mut t = format!(
                        "run {} of {}: {}\n",
                        replay.header.run_id,
                        replay.header.runbook,
                        holder
                            .as_ref()
                            .map_or_else(|| outcome.describe(), running_words)
                    );
                    if let Some(why) = &outcome.reason {
                        t.push_str(&format!("  why: {why}\n"));
                    }
                    if !outcome.deferred.is_empty() {
                        let names: Vec<&str> =
                            outcome.deferred.iter().map(StepId::as_str).collect();
                        t.push_str(&format!(
                            "  deferred: {} (a region they need was unreachable): `drpilot resume {}` runs them\n",
                            names.join(", "),
                            replay.header.run_id
                        ));
                    }
                    for s in &report.steps {
                        t.push_str(&format!("  {:<32} {}\n", s.id.as_str(), s.state.label()));
                    }
                    t
                }
            };
            super::print_stdout(&text)
        }
    }
}
