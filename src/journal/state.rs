//! One state store for the CLI, whichever kind: a local directory (the default) or S3
//! buckets shared by a team. The engine never sees the difference: it writes events
//! to a [`JournalWriter`] and its run holds a [`RunLock`].

use std::sync::Arc;
use std::time::Duration;

use super::lock::{Lock, LockError, LockHolder};
use super::s3::{Reassembled, S3Journal, S3Location, S3Lock, S3State, lease_from_env};
use super::store::{Header, Journal, JournalError, Replay, StateDir};
use crate::clock::Clock;
use crate::cloud::aws::{AwsCloud, AwsOptions};
use crate::cloud::reach::{ProbeTarget, Reach, ReachSettings, Service};
use crate::engine::events::{Event, RunId};

/// How to reach AWS for an S3 store (the same profile and endpoint as the run's).
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// Regions to ask for a bucket's region (the runbook's, target first).
    pub region_hints: Vec<String>,
}

/// How long one request to a state bucket may take: a region that holds connections
/// must not hold the run for the SDK's default. A write's lease arithmetic counts from
/// when it was sent, so a short deadline only makes a lost write fail sooner.
const STATE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where runs and locks live.
#[derive(Clone, Debug)]
pub enum StateStore {
    /// A directory on this machine.
    Dir(StateDir),
    /// One or more S3 buckets.
    S3(S3State),
}

/// Where a run's state is kept, as chosen from the flags and the runbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locations {
    /// A directory (`None`: the local default).
    Dir(Option<String>),
    /// S3 buckets, one per region.
    S3(Vec<S3Location>),
}

impl StateStore {
    /// Where the state is, without reaching it: `--state` (repeatable; `DRPILOT_STATE`
    /// when not given), else the runbook's `[state] stores`; several locations must all
    /// be `s3://` URLs, each given once. `Dir(None)` is the local default directory.
    pub fn locations(flags: &[String], runbook: &[String]) -> Result<Locations, JournalError> {
        let chosen = if !flags.is_empty() { flags } else { runbook };
        let Some(first) = chosen.first() else {
            return Ok(Locations::Dir(None));
        };
        if !chosen.iter().any(|c| c.starts_with("s3://")) {
            if chosen.len() > 1 {
                return Err(JournalError::Unsupported(format!(
                    "--state given {} directories ({}): several locations must be s3:// buckets",
                    chosen.len(),
                    chosen.join(", ")
                )));
            }
            return Ok(Locations::Dir(Some(first.clone())));
        }
        let mut locations = Vec::new();
        for c in chosen {
            if !c.starts_with("s3://") {
                return Err(JournalError::Unsupported(format!(
                    "--state {c}: a directory cannot be mixed with s3:// state buckets"
                )));
            }
            let loc = S3Location::parse(c).map_err(JournalError::Unsupported)?;
            if locations.contains(&loc) {
                return Err(JournalError::Unsupported(format!(
                    "--state {c}: given twice"
                )));
            }
            locations.push(loc);
        }
        Ok(Locations::S3(locations))
    }

    /// The store from `--state` (repeatable; `DRPILOT_STATE` when not given), else the
    /// runbook's `[state] stores`, else the local default directory
    /// ([`StateStore::locations`]).
    pub fn resolve(
        flags: &[String],
        runbook: &[String],
        conn: &Connection,
    ) -> Result<Self, JournalError> {
        let locations = match Self::locations(flags, runbook)? {
            Locations::Dir(dir) => return StateDir::resolve(dir.as_deref()).map(StateStore::Dir),
            Locations::S3(locations) => locations,
        };
        let lease = lease_from_env()?;
        // The state buckets' own breaker, on real time (a `--sim-speed max` run's clock
        // is virtual; the store's requests are not).
        let reach = Reach::new(
            Clock::real(),
            ReachSettings {
                read_timeout: STATE_ATTEMPT_TIMEOUT,
                write_timeout: STATE_ATTEMPT_TIMEOUT,
                ..ReachSettings::default()
            },
        );
        let opts = AwsOptions {
            profile: conn.profile.clone(),
            endpoint_url: conn.endpoint_url.clone(),
            region_hints: conn.region_hints.clone(),
            reach: Some(reach),
        };
        let known: Vec<(String, String)> = locations
            .iter()
            .filter_map(|l| l.region.clone().map(|r| (l.bucket.clone(), r)))
            .collect();
        // S3 in every region a state bucket may be in, probed before the first
        // request: a bucket in a region that holds connections is then left out after
        // one probe timeout, not after a write's deadline.
        let mut probe: Vec<String> = known.iter().map(|(_, r)| r.clone()).collect();
        for r in &conn.region_hints {
            if !probe.contains(r) {
                probe.push(r.clone());
            }
        }
        S3State::new(locations, lease, move || async move {
            let aws = AwsCloud::connect(opts).await;
            for (bucket, region) in &known {
                aws.remember_bucket_region(bucket, region);
            }
            aws.reach()
                .probe(probe.into_iter().map(|region| ProbeTarget {
                    region,
                    service: Service::S3,
                    endpoint: None,
                }));
            Arc::new(aws) as Arc<dyn crate::cloud::StateObjects>
        })
        .map(StateStore::S3)
    }

    /// Where the store is, for messages.
    pub fn describe(&self) -> String {
        match self {
            StateStore::Dir(d) => d.root().display().to_string(),
            StateStore::S3(s) => s.describe(),
        }
    }

    /// Where one run's records are, for messages.
    pub fn run_location(&self, run: &RunId) -> String {
        match self {
            StateStore::Dir(d) => d.run_dir(run).display().to_string(),
            StateStore::S3(s) => {
                let p = s.primary();
                p.url_of(&p.journal_prefix(run))
            }
        }
    }

    /// What earlier runs of `runbook` that `include` accepts (by header) measured of its
    /// steps. A run whose journal cannot be read is left out, and so is an unreachable
    /// S3 store: history informs a prediction, it never stops a plan or a drill.
    pub fn history(
        &self,
        runbook: &str,
        include: impl Fn(&Header) -> bool,
    ) -> crate::plan::history::History {
        let mut h = crate::plan::history::History::default();
        let mut add = |replay: &Replay| {
            if replay.header.runbook == runbook && include(&replay.header) {
                h.add_run(
                    crate::engine::events::step_durations(&replay.events),
                    replay.header.sim.is_some(),
                );
            }
        };
        match self {
            StateStore::Dir(d) => {
                let Ok(entries) = std::fs::read_dir(d.root().join("runs")) else {
                    return h;
                };
                for entry in entries.flatten() {
                    let id = RunId(entry.file_name().to_string_lossy().into_owned());
                    if let Ok(replay) = d.replay(&id) {
                        add(&replay);
                    }
                }
            }
            StateStore::S3(_) => {
                for replay in self.runs().unwrap_or_default() {
                    add(&replay);
                }
            }
        }
        h
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<Replay>, JournalError> {
        match self {
            StateStore::Dir(d) => d.runs(),
            StateStore::S3(s) => s.runs(),
        }
    }

    /// Reads one run's journal.
    pub fn replay(&self, run: &RunId) -> Result<Replay, JournalError> {
        self.read(run).map(|r| r.replay)
    }

    /// Reads one run's journal, with what a writer that goes on needs.
    pub fn read(&self, run: &RunId) -> Result<Reassembled, JournalError> {
        match self {
            StateStore::Dir(d) => d.replay(run).map(|replay| Reassembled {
                replay,
                next_seq: 0,
                token: 0,
                unread: Vec::new(),
            }),
            StateStore::S3(s) => s.reassemble(run),
        }
    }

    /// Reads one run's journal to go on with it: every configured bucket must have
    /// been read, since a record is acknowledged once one bucket has it and the
    /// others may be behind. To resume while a bucket is down, name only the buckets
    /// that answer with `--state` (the operator's explicit decision).
    pub fn read_to_resume(&self, run: &RunId) -> Result<Reassembled, JournalError> {
        let r = self.read(run)?;
        if !r.unread.is_empty() {
            return Err(JournalError::Unsupported(format!(
                "run {run}: not every state bucket could be read ({}); records only those hold would be missed and steps could run twice. Resume when they answer, or pass --state with only the buckets that do, if you accept that risk",
                r.unread.join("; ")
            )));
        }
        Ok(r)
    }

    /// The run's copy of its runbook, as it started.
    pub fn runbook_copy(&self, run: &RunId) -> Result<String, JournalError> {
        match self {
            StateStore::Dir(d) => {
                let path = d.run_dir(run).join("runbook.toml");
                std::fs::read_to_string(&path).map_err(|source| JournalError::Io {
                    what: "read",
                    path,
                    source,
                })
            }
            StateStore::S3(s) => s.runbook_copy(run),
        }
    }

    /// Takes the lock of `runbook` for `run`.
    pub fn acquire(
        &self,
        runbook: &str,
        run: &RunId,
        break_stale: bool,
    ) -> Result<RunLock, LockError> {
        match self {
            StateStore::Dir(d) => Lock::acquire(d, runbook, run, break_stale).map(RunLock::Dir),
            StateStore::S3(s) => s.acquire(runbook, run, break_stale).map(RunLock::S3),
        }
    }

    /// Who holds the lock of `runbook`, and whether the holder looks gone.
    pub fn holder(&self, runbook: &str) -> Result<Option<(LockHolder, bool)>, LockError> {
        match self {
            StateStore::Dir(d) => {
                Lock::holder(d, runbook).map(|h| h.map(|h| (h.clone(), h.is_stale())))
            }
            StateStore::S3(s) => s.holder(runbook),
        }
    }

    /// Creates a run's journal (header and runbook copy), under `lock`.
    pub fn create(
        &self,
        header: &Header,
        runbook_text: &str,
        lock: &RunLock,
    ) -> Result<JournalWriter, JournalError> {
        match (self, lock) {
            (StateStore::Dir(d), _) => {
                Journal::create(d, header, runbook_text).map(JournalWriter::Dir)
            }
            (StateStore::S3(s), RunLock::S3(l)) => {
                s.create(header, runbook_text, l).map(JournalWriter::S3)
            }
            (StateStore::S3(_), RunLock::Dir(_)) => {
                unreachable!("an S3 store's locks are S3 locks")
            }
        }
    }

    /// Opens a run's journal to go on after what was read.
    pub fn open(&self, read: &Reassembled, lock: &RunLock) -> Result<JournalWriter, JournalError> {
        match (self, lock) {
            (StateStore::Dir(d), _) => {
                Journal::open(d, &read.replay.header.run_id).map(JournalWriter::Dir)
            }
            (StateStore::S3(s), RunLock::S3(l)) => s.open(read, l).map(JournalWriter::S3),
            (StateStore::S3(_), RunLock::Dir(_)) => {
                unreachable!("an S3 store's locks are S3 locks")
            }
        }
    }

    /// Whether the simulated world travels inside the journal (S3) rather than in a
    /// `world.json` beside it (a directory).
    pub fn world_in_journal(&self) -> bool {
        matches!(self, StateStore::S3(_))
    }

    /// The local directory, when the store is one.
    pub fn dir(&self) -> Option<&StateDir> {
        match self {
            StateStore::Dir(d) => Some(d),
            StateStore::S3(_) => None,
        }
    }
}

/// A held runbook lock of either store.
#[derive(Debug)]
pub enum RunLock {
    /// A lock file.
    Dir(Lock),
    /// A lock object with a lease.
    S3(S3Lock),
}

impl RunLock {
    /// Lets it go (S3: only where it is still ours).
    pub fn release(self) {
        match self {
            RunLock::Dir(l) => l.release(),
            RunLock::S3(l) => l.release(),
        }
    }

    /// Keeps it for a resumable run: a lock file stays; an S3 lease is no longer
    /// renewed, so it expires and the run's `resume` takes it over.
    pub fn keep(self) {
        match self {
            RunLock::Dir(_) => {}
            RunLock::S3(l) => l.keep(),
        }
    }

    /// Why this process may no longer write, once another took its lock over.
    pub fn lost(&self) -> Option<String> {
        match self {
            RunLock::Dir(_) => None,
            RunLock::S3(l) => l.lost(),
        }
    }
}

/// An open journal of either store.
#[derive(Debug)]
pub enum JournalWriter {
    /// `journal.ndjson` in a run directory.
    Dir(Journal),
    /// Records in S3.
    S3(S3Journal),
}

impl JournalWriter {
    /// Appends one event, durably, with the simulated world as of it when the store
    /// keeps the world in the journal.
    pub fn append(
        &mut self,
        event: &Event,
        world: Option<serde_json::Value>,
    ) -> Result<(), JournalError> {
        match self {
            JournalWriter::Dir(j) => j.append(event),
            JournalWriter::S3(j) => j.append(event, world),
        }
    }
}
