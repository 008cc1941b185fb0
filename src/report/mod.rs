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
pub mod run_report;

pub use run_report::{RunReport, RunbookCopy};
