//! `drpilot report RUN_ID [--format md|html|junit|json]`.
//!
//! Reads the run's journal and its runbook copy, and nothing else: not the environment,
//! not the cloud, not the runbook file as it is now (it may have changed since). A run
//! that cannot be found or whose journal cannot be read is a usage error (exit 2) and
//! nothing is written on stdout; a runbook copy that does not parse only costs the
//! objectives and action names, and the report says so.

use super::args::{ReportArgs, ReportFormat};
use super::exit;
use super::run::fail;
use crate::engine::RunId;
use crate::journal::{JournalError, StateStore};
use crate::report::run_report::{RunReport, RunbookCopy, parse_runbook_copy};
use crate::report::{html, junit, markdown};

/// `drpilot report`.
pub fn report(args: ReportArgs) -> u8 {
    let state = match super::run::state_store(
        &args.state.state,
        None,
        args.aws.profile.as_deref(),
        args.aws.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match load(&state, &RunId(args.run_id)) {
        Ok(report) => super::print_stdout(&render(&report, args.format)),
        Err(why) => fail(exit::USAGE, why),
    }
}

/// A run's report from its journal and runbook copy; `Err` says why there is none.
pub(super) fn load(state: &StateStore, run_id: &RunId) -> Result<RunReport, String> {
    let replay = match state.replay(run_id) {
        Ok(r) => r,
        Err(JournalError::Corrupted { path, line, reason }) => {
            return Err(format!(
                "cannot report on run {run_id}: its journal {} is corrupted at line {line}: {reason}",
                path.display()
            ));
        }
        Err(e) => return Err(format!("cannot report on run {run_id}: {e}")),
    };
    let copy_path = format!(
        "{}/runbook.toml",
        state.run_location(run_id).trim_end_matches("/journal/")
    );
    let parsed = state
        .runbook_copy(run_id)
        .map_err(|e| format!("cannot read the runbook copy: {e}"))
        .and_then(|text| {
            parse_runbook_copy(&replay.header, &text)
                .map_err(|e| format!("{copy_path} does not parse: {e}"))
        });
    let copy = match &parsed {
        Ok(rb) => RunbookCopy::Parsed(rb),
        Err(why) => RunbookCopy::Unusable(why),
    };
    let mut report = RunReport::build(&replay.header, &replay.events, copy);
    report.notes.extend(replay.notes.iter().cloned());
    if replay.torn_tail {
        report.notes.push(
            "the journal's last line was cut short by a crash; that event was never acknowledged and is not shown"
                .into(),
        );
    }
    Ok(report)
}

/// The report in one format.
pub(super) fn render(report: &RunReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Md => markdown::render(report),
        ReportFormat::Html => html::render(report),
        ReportFormat::Junit => junit::render(report),
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(report).expect("a report always serializes")
        ),
    }
}
