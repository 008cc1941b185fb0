//! Reporters: sinks of the event stream, and reports built from a run's journal. They
//! never read engine state.
//!
//! [`ndjson`] prints one JSON event per line on stdout (`--output json`); [`human`]
//! prints a line per transition on stderr. `drpilot report RUN_ID` folds a finished (or
//! interrupted) run's journal into a [`run_report::RunReport`] and renders it as
//! Markdown ([`markdown`]), one self-contained HTML page with a Gantt chart ([`html`]),
//! JUnit XML for CI ([`junit`]) or JSON (the model itself, `docs/report.md`). [`log`]
//! turns events into `tracing` lines: the stderr progress of a `--output json` run.

pub mod escape;
pub mod html;
pub mod human;
pub mod junit;
pub mod live;
pub mod log;
pub mod markdown;
pub mod ndjson;
pub mod preflight;
pub mod prometheus;
pub mod run_report;

pub use run_report::{RunReport, RunbookCopy};

use crate::engine::RunId;
use crate::journal::{JournalError, StateStore};
use run_report::parse_runbook_copy;

/// A report's format (`drpilot report --format`, the drill's report directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// GitHub-flavoured Markdown, for tickets and post-mortems.
    Md,
    /// One self-contained HTML page with a timeline chart.
    Html,
    /// JUnit XML, so CI shows each step (and missed objectives) as a test.
    Junit,
    /// The report model as one JSON document (docs/report.md).
    Json,
}

/// A run's report from its journal and runbook copy; `Err` says why there is none.
pub fn load(state: &StateStore, run_id: &RunId) -> Result<RunReport, String> {
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
pub fn render(report: &RunReport, format: Format) -> String {
    match format {
        Format::Md => markdown::render(report),
        Format::Html => html::render(report),
        Format::Junit => junit::render(report),
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(report).expect("a report always serializes")
        ),
    }
}
