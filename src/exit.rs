//! The exit codes of `drpilot`: a contract with scripts and incident tooling.
//!
//! A leaf: the engine maps a run's outcome to its code, and the CLI maps every other
//! expected failure; neither depends on the other for it.
//!
//! Each expected outcome maps to exactly one code, documented in the README and in
//! `drpilot --help`. Internal bugs are not given a code of their own: they panic, which
//! Rust reports with code 101, distinct from every code here.

/// Success.
pub const SUCCESS: u8 = 0;
/// The run failed and was rolled back cleanly: every resource is at its original state.
pub const ROLLED_BACK: u8 = 1;
/// Usage or runbook error; nothing ran.
pub const USAGE: u8 = 2;
/// Failed and needs a person: rollback incomplete, or paused awaiting a decision.
pub const NEEDS_PERSON: u8 = 3;
/// Aborted by the operator; resumable.
pub const ABORTED: u8 = 4;
/// Preflight failed; nothing changed.
pub const PREFLIGHT_FAILED: u8 = 5;
/// The runbook's lock is held by another run, or (S3 state) this process lost it to
/// another mid-run and stopped writing: either way another process owns the run.
pub const LOCK_HELD: u8 = 6;
/// A drill finished but missed an objective (RTO or RPO).
pub const OBJECTIVE_MISSED: u8 = 7;

/// The table shown at the end of `drpilot --help`.
pub const TABLE: &str = "\
Exit codes:
  0  success
  1  failed, rolled back cleanly (every resource at its original state)
  2  usage or runbook error; nothing ran
  3  failed and needs a person: rollback incomplete, or paused awaiting a decision
  4  aborted by the operator; resumable
  5  preflight failed; nothing changed
  6  lock held by another run (or lost to another process mid-run: S3 state)
  7  drill finished but missed an objective (RTO or RPO)";
