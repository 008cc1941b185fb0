//! The run's durable record: an append-only journal per run, and the runbook lock.
//!
//! A run directory (`<state>/runs/<RUN_ID>/`) holds `journal.ndjson` — a header line,
//! then every event, each line fsynced before the engine goes on — and `runbook.toml`,
//! the exact text the run started from. Replaying the journal tells a resumed run which
//! steps succeeded (never run again), which were in flight (re-checked by reading state
//! before anything is resent), and what each step captured for rollback. A journal
//! whose runbook no longer matches, or that is corrupted anywhere but a torn last line,
//! is refused with a clear error rather than guessed at.
//!
//! The same journal and lock can live in S3 buckets shared by a team ([`s3`]): one
//! immutable object per record written with `If-None-Match: *`, and a lock with a
//! lease and a fencing token. [`StateStore`] hides which store a command uses.

pub mod approvals;
mod lock;
pub mod s3;
mod state;
mod store;

pub use lock::{Lock, LockError, LockHolder};
pub use state::{Connection, JournalWriter, Locations, RunLock, StateStore};
pub use store::{
    AwsHeader, Header, JOURNAL_VERSION, Journal, JournalError, Replay, SimHeader, StateDir,
    is_run_id, runbook_digest,
};
