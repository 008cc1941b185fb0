//! The journal file and the state directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::events::{Event, EventKind, Outcome, RunId};

/// Version of the journal's format; a journal of another version is refused.
pub const JOURNAL_VERSION: u32 = 1;

/// Why the state store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A filesystem operation failed.
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal's content is not what drpilot wrote.
    #[error("journal {} is corrupted at line {line}: {reason}; refusing to resume from it", path.display())]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A journal record in S3 is not what drpilot wrote, or one is missing.
    #[error("journal record {url} is corrupted: {reason}; refusing to resume from it")]
    CorruptedRecord {
        /// `s3://bucket/key` of the record.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No such run in this state store.
    #[error("no run `{0}` in the state directory {1}")]
    UnknownRun(String, PathBuf),
    /// Not a run id at all (a path, or empty).
    #[error("`{0}` is not a run id (see `drpilot status`)")]
    BadRunId(String),
    /// The state location is not usable (a bad `--state`, an unreachable or refusing
    /// store).
    #[error("{0}")]
    Unsupported(String),
    /// This process may no longer write the run: another process took its lock over
    /// (or its lease expired while it was paused or cut off).
    #[error("{0}")]
    Fenced(String),
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> JournalError + 'p {
    move |source| JournalError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A run id names a directory under `<state>/runs/`: nothing that could point outside
/// it (a typo'd or hostile `drpilot resume ../x` must not read or write elsewhere).
pub fn is_run_id(id: &str) -> bool {
    !(id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', '\0']))
}

/// Where runs and locks live.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `--state DIR`, else `$XDG_STATE_HOME/drpilot`, else `~/.local/state/drpilot`.
    pub fn resolve(flag: Option<&str>) -> Result<Self, JournalError> {
        if let Some(f) = flag {
            if f.starts_with("s3://") {
                return Err(JournalError::Unsupported(format!(
                    "--state {f}: an s3:// URL is a shared state store, not a directory"
                )));
            }
            return Ok(Self::at(f));
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
            })
            .ok_or_else(|| {
                JournalError::Unsupported(
                    "neither XDG_STATE_HOME nor HOME is set: pass --state DIR".into(),
                )
            })?;
        Ok(Self::at(base.join("drpilot")))
    }

    /// A state directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one run.
    pub fn run_dir(&self, run_id: &RunId) -> PathBuf {
        self.root.join("runs").join(&run_id.0)
    }

    /// Where locks live.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Every run in the store, newest first (by id, which starts with a UTC time after
    /// the runbook name; sorted by the header's creation time).
    pub fn runs(&self) -> Result<Vec<Replay>, JournalError> {
        let dir = self.root.join("runs");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list runs in", &dir)(e)),
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("list runs in", &dir))?;
            let id = RunId(entry.file_name().to_string_lossy().into_owned());
            runs.push(self.replay(&id)?);
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.header.created_at));
        Ok(runs)
    }

    /// Reads a run's journal.
    pub fn replay(&self, run_id: &RunId) -> Result<Replay, JournalError> {
        if !is_run_id(&run_id.0) {
            return Err(JournalError::BadRunId(run_id.0.clone()));
        }
        let path = self.run_dir(run_id).join("journal.ndjson");
        if !path.exists() {
            return Err(JournalError::UnknownRun(
                run_id.0.clone(),
                self.root.clone(),
            ));
        }
        Replay::read(&path)
    }
}

/// How the simulated world was set up, so a resumed `--sim` run continues in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimHeader {
    /// The world's seed.
    pub seed: u64,
    /// Clock speed (virtual seconds per second); `None` for `max` (virtual time).
    pub speed: Option<f64>,
    /// The `--sim-config` file, if any.
    pub config: Option<PathBuf>,
}

/// How a run against AWS (or the emulator) connects, so a resumed run talks to the same
/// place. Credentials are never stored: only the profile's name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AwsHeader {
    /// `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `--endpoint-url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

/// The first line of a journal: what the run is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`JOURNAL_VERSION`].
    pub journal_version: u32,
    /// The run.
    pub run_id: RunId,
    /// The runbook's name (and lock name).
    pub runbook: String,
    /// The runbook file as given.
    pub runbook_path: PathBuf,
    /// SHA-256 of the runbook's text: a resumed run refuses a changed runbook.
    pub runbook_sha256: String,
    /// When the run was created (wall clock).
    pub created_at: jiff::Timestamp,
    /// The run clock's origin (virtual zero).
    pub clock_origin: jiff::Timestamp,
    /// Set for simulated runs.
    pub sim: Option<SimHeader>,
    /// Set for runs against AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsHeader>,
    /// `--param` overrides of the runbook's `[params]`; a resumed run applies them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Set for a phase of `drpilot drill`: the drill's id. `drpilot readiness` finds a
    /// runbook's last successful drill by it (older journals have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<RunId>,
}

/// SHA-256 of a runbook's text, hex.
pub fn runbook_digest(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Creates a run directory with its journal (header written and synced) and the
    /// runbook's text.
    pub fn create(
        state: &StateDir,
        header: &Header,
        runbook_text: &str,
    ) -> Result<Self, JournalError> {
        let dir = state.run_dir(&header.run_id);
        fs::create_dir_all(&dir).map_err(io("create the run directory", &dir))?;
        let rb = dir.join("runbook.toml");
        fs::write(&rb, runbook_text).map_err(io("write", &rb))?;
        let path = dir.join("journal.ndjson");
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io("create", &path))?;
        let mut j = Self { file, path };
        let line = serde_json::to_string(header).expect("a header always serializes");
        j.write_line(&line)?;
        sync_dir(&dir);
        Ok(j)
    }

    /// Opens an existing run's journal for appending.
    pub fn open(state: &StateDir, run_id: &RunId) -> Result<Self, JournalError> {
        let path = state.run_dir(run_id).join("journal.ndjson");
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        Ok(Self { file, path })
    }

    /// Appends one event and waits until it is on disk.
    pub fn append(&mut self, event: &Event) -> Result<(), JournalError> {
        let line = serde_json::to_string(event).expect("an event always serializes");
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &str) -> Result<(), JournalError> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .map_err(io("append to", &self.path))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn sync_dir(dir: &Path) {
    // Makes the new directory entries durable; best effort (not all filesystems allow it).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A journal read back.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The header.
    pub header: Header,
    /// Every complete event, in order.
    pub events: Vec<Event>,
    /// The last line was cut short (a crash while writing it): it was dropped.
    pub torn_tail: bool,
    /// The simulated world as last saved with a record (S3 stores keep it in the
    /// journal; the directory store keeps `world.json` beside it).
    pub world: Option<serde_json::Value>,
    /// What a reader should know: records ignored, buckets not read, takeovers.
    pub notes: Vec<String>,
}

impl Replay {
    /// Reads and checks a journal file.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let bytes = fs::read(path).map_err(io("read", path))?;
        Self::parse(path, &bytes)
    }

    /// Checks a journal's bytes (`path` names it in errors). Every line but the last
    /// must be a complete JSON object: the header first, then events of its run. A torn
    /// last line (a crash in mid-write) was never acknowledged and is dropped; anything
    /// else unexpected refuses the journal, so a resumption never skips what it cannot
    /// read.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, JournalError> {
        let corrupted = |line: usize, reason: String| JournalError::Corrupted {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut lines: Vec<(String, bool)> = Vec::new();
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let complete = chunk.last() == Some(&b'\n');
            let text = String::from_utf8(chunk.to_vec())
                .map_err(|_| corrupted(lines.len() + 1, "not UTF-8".into()))?;
            lines.push((text, complete));
        }
        let Some((first, first_complete)) = lines.first() else {
            return Err(corrupted(1, "the journal is empty (no header)".into()));
        };
        if !first_complete {
            return Err(corrupted(1, "the header line is incomplete".into()));
        }
        let header: Header = serde_json::from_str(first)
            .map_err(|e| corrupted(1, format!("not a journal header: {e}")))?;
        if header.journal_version != JOURNAL_VERSION {
            return Err(corrupted(
                1,
                format!(
                    "journal version {} (this drpilot reads version {JOURNAL_VERSION})",
                    header.journal_version
                ),
            ));
        }
        let mut events = Vec::with_capacity(lines.len());
        let mut torn_tail = false;
        let last = lines.len() - 1;
        for (i, (text, complete)) in lines.iter().enumerate().skip(1) {
            if !complete {
                // Only the very last line can be torn (`split_inclusive` ends every
                // other one with its newline), by a crash in mid-write; that event was
                // never acknowledged, so it is dropped.
                torn_tail = i == last;
                break;
            }
            let event: Event = serde_json::from_str(text)
                .map_err(|e| corrupted(i + 1, format!("not an event: {e}")))?;
            if event.run_id != header.run_id {
                return Err(corrupted(
                    i + 1,
                    format!(
                        "event of run `{}` in the journal of `{}`",
                        event.run_id, header.run_id
                    ),
                ));
            }
            events.push(event);
        }
        Ok(Self {
            header,
            events,
            torn_tail,
            world: None,
            notes: Vec::new(),
        })
    }

    /// How the run ended, if its last process recorded an end.
    pub fn outcome(&self) -> Option<Outcome> {
        self.events.iter().rev().find_map(|e| match &e.kind {
            EventKind::RunFinished { outcome, .. } => Some(*outcome),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn run_ids_cannot_leave_the_state_directory() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "a\0b"] {
            assert!(!is_run_id(bad), "{bad:?}");
        }
        assert!(is_run_id("region-failover-20260101T000000Z-ab12"));
        let dir = std::env::temp_dir().join(format!("drpilot-runid-{}", std::process::id()));
        let state = StateDir::resolve(Some(dir.to_str().unwrap())).unwrap();
        assert!(matches!(
            state.replay(&RunId("../../etc".into())),
            Err(JournalError::BadRunId(_))
        ));
    }
    use super::*;
    use crate::runbook::StepId;

    fn header(id: &str) -> Header {
        Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId(id.into()),
            runbook: "rb".into(),
            runbook_path: "rb.toml".into(),
            runbook_sha256: runbook_digest("x"),
            created_at: jiff::Timestamp::from_second(1).unwrap(),
            clock_origin: jiff::Timestamp::from_second(1).unwrap(),
            sim: None,
            aws: None,
            params: BTreeMap::new(),
            drill: None,
        }
    }

    fn event(id: &str, step: &str) -> Event {
        Event {
            run_id: RunId(id.into()),
            at: jiff::Timestamp::from_second(2).unwrap(),
            kind: EventKind::StepSucceeded {
                step: StepId::new(step),
                summary: "ok".into(),
            },
        }
    }

    fn tmp() -> StateDir {
        let d = std::env::temp_dir().join(format!(
            "drpilot-journal-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        StateDir::at(d)
    }

    #[test]
    fn write_then_replay() {
        let state = tmp();
        let h = header("r1");
        let mut j = Journal::create(&state, &h, "runbook text").unwrap();
        j.append(&event("r1", "a")).unwrap();
        j.append(&event("r1", "b")).unwrap();
        let r = state.replay(&h.run_id).unwrap();
        assert_eq!(r.header, h);
        assert_eq!(r.events.len(), 2);
        assert!(!r.torn_tail);
        assert_eq!(
            fs::read_to_string(state.run_dir(&h.run_id).join("runbook.toml")).unwrap(),
            "runbook text"
        );
        fs::remove_dir_all(state.root()).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_dropped_but_corruption_elsewhere_is_refused() {
        let state = tmp();
        let h = header("r2");
        let mut j = Journal::create(&state, &h, "x").unwrap();
        j.append(&event("r2", "a")).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        let good = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{good}{{\"run_id\":\"r2\",\"at\":")).unwrap();
        let r = Replay::read(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.events.len(), 1);

        let lines: Vec<&str> = good.lines().collect();
        fs::write(&path, format!("{}\ngarbage\n{}\n", lines[0], lines[1])).unwrap();
        let err = Replay::read(&path).unwrap_err().to_string();
        assert!(err.contains("corrupted at line 2"), "{err}");

        fs::write(&path, format!("{}\n", lines[1])).unwrap();
        let err = Replay::read(&path).unwrap_err().to_string();
        assert!(err.contains("not a journal header"), "{err}");

        fs::write(
            &path,
            format!(
                "{}\n{}\n",
                lines[0],
                serde_json::to_string(&event("other", "a")).unwrap()
            ),
        )
        .unwrap();
        let err = Replay::read(&path).unwrap_err().to_string();
        assert!(err.contains("event of run `other`"), "{err}");
        fs::remove_dir_all(state.root()).unwrap();
    }

    #[test]
    fn s3_state_is_refused_clearly() {
        let err = StateDir::resolve(Some("s3://b/p")).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
