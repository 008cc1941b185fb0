//! One active run per runbook per state store.
//!
//! The lock is a file created with `O_EXCL`, so of two racing processes exactly one
//! wins. It names the run holding it and that run's process (pid, host, and the
//! process's start time, so a recycled pid is not mistaken for the holder). A run that
//! ends (succeeded, rolled back, needs a person) releases it; a paused, aborted or
//! crashed run keeps it, because its resources may be half-changed: only that run's
//! `resume` may take it over, or an operator may break it explicitly when its process is
//! gone.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::StateDir;
use crate::engine::events::RunId;

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The run.
    pub run_id: RunId,
    /// Its process.
    pub pid: u32,
    /// The process's host.
    pub host: String,
    /// The process's start time (Linux `/proc/PID/stat` field 22), to tell a recycled pid.
    pub process_start: Option<u64>,
    /// When the lock was taken.
    pub since: jiff::Timestamp,
}

impl LockHolder {
    /// This process, holding for `run_id`.
    pub(crate) fn current(run_id: &RunId) -> Self {
        let pid = std::process::id();
        Self {
            run_id: run_id.clone(),
            pid,
            host: hostname(),
            process_start: process_start(pid),
            since: jiff::Timestamp::now(),
        }
    }

    /// Whether the holding process is certainly gone (same host, no such process).
    /// A holder on another host is never considered stale: we cannot tell.
    pub fn is_stale(&self) -> bool {
        self.host == hostname() && process_start(self.pid) != self.process_start
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("runbook `{runbook}` is locked by run {} (pid {} on {}, since {}){}", .holder.run_id, .holder.pid, .holder.host, .holder.since, if *.stale { "; its process is gone (stale)" } else { "" })]
    Held {
        /// The runbook.
        runbook: String,
        /// The holder.
        holder: LockHolder,
        /// Whether the holder's process is gone.
        stale: bool,
    },
    /// The lock object in S3 could not be read or written.
    #[error("failed to use the lock {url}: {reason}")]
    Remote {
        /// `s3://bucket/key`.
        url: String,
        /// Why.
        reason: String,
    },
    /// The lock file could not be read or written.
    #[error("failed to use the lock {}: {reason}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A held lock; released by [`Lock::release`] (not on drop: a crashed or paused run
/// keeps its lock on purpose).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    run_id: RunId,
}

/// A per-process counter, so two threads' temporary lock files never collide.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Lock {
    fn path(state: &StateDir, runbook: &str) -> PathBuf {
        state.locks_dir().join(format!("{runbook}.lock"))
    }

    /// Takes the lock of `runbook` for `run_id`. It is taken over when it is held by the
    /// same run (a resumption) whose process is gone, or by any run whose process is gone
    /// when `break_stale` is set (recorded by the caller in the journal).
    pub fn acquire(
        state: &StateDir,
        runbook: &str,
        run_id: &RunId,
        break_stale: bool,
    ) -> Result<Self, LockError> {
        let path = Self::path(state, runbook);
        let err = |reason: String| LockError::Io {
            path: path.clone(),
            reason,
        };
        fs::create_dir_all(state.locks_dir()).map_err(|e| err(e.to_string()))?;
        for _ in 0..3 {
            match Self::create(&path, run_id) {
                Ok(lock) => return Ok(lock),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
            let holder = match Self::holder_at(&path) {
                Ok(Some(h)) => h,
                Ok(None) => continue, // released meanwhile: try again
                Err(reason) => return Err(err(reason)),
            };
            let stale = holder.is_stale();
            let ours = holder.run_id == *run_id;
            if !(stale && (ours || break_stale)) {
                return Err(LockError::Held {
                    runbook: runbook.to_string(),
                    holder,
                    stale,
                });
            }
            // Take over: move the stale file aside atomically (only one of several
            // racing processes can), then create ours.
            let tomb = path.with_extension(format!("stale-{}", std::process::id()));
            if fs::rename(&path, &tomb).is_ok() {
                let _ = fs::remove_file(&tomb);
            }
        }
        Err(err("the lock kept changing hands; try again".into()))
    }

    /// Creates the lock file with its content in one atomic step: the content goes to a
    /// private file first, which is then hard-linked to the lock's name. `link` fails if
    /// the name exists, so no other process ever sees a lock file without its holder.
    fn create(path: &Path, run_id: &RunId) -> std::io::Result<Self> {
        let tmp = path.with_extension(format!("new-{}-{}", std::process::id(), unique()));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let holder = LockHolder::current(run_id);
            f.write_all(
                serde_json::to_string(&holder)
                    .expect("serializes")
                    .as_bytes(),
            )?;
            f.sync_all()?;
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        result?;
        Ok(Self {
            path: path.to_path_buf(),
            run_id: run_id.clone(),
        })
    }

    fn holder_at(path: &Path) -> Result<Option<LockHolder>, String> {
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                format!("unreadable lock file ({e}); remove it by hand if no run is active")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Who holds the lock of `runbook`, if anyone.
    pub fn holder(state: &StateDir, runbook: &str) -> Result<Option<LockHolder>, LockError> {
        let path = Self::path(state, runbook);
        Self::holder_at(&path).map_err(|reason| LockError::Io { path, reason })
    }

    /// Releases the lock (only if it is still ours).
    pub fn release(self) {
        if let Ok(Some(h)) = Self::holder_at(&self.path)
            && h.run_id == self.run_id
            && h.pid == std::process::id()
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> StateDir {
        StateDir::at(
            std::env::temp_dir().join(format!("drpilot-lock-{name}-{}", std::process::id())),
        )
    }

    #[test]
    fn a_second_acquire_is_refused_until_release() {
        let state = tmp("second");
        let a = RunId("a".into());
        let b = RunId("b".into());
        let lock = Lock::acquire(&state, "rb", &a, false).unwrap();
        match Lock::acquire(&state, "rb", &b, true) {
            Err(LockError::Held { holder, stale, .. }) => {
                assert_eq!(holder.run_id, a);
                assert!(!stale, "our own process is alive");
            }
            other => panic!("{other:?}"),
        }
        lock.release();
        Lock::acquire(&state, "rb", &b, false).unwrap().release();
        let _ = fs::remove_dir_all(state.root());
    }

    #[test]
    fn a_stale_lock_is_taken_over_only_by_its_run_or_explicitly() {
        let state = tmp("stale");
        fs::create_dir_all(state.locks_dir()).unwrap();
        let dead = LockHolder {
            run_id: RunId("old".into()),
            pid: u32::MAX - 1,
            host: hostname(),
            process_start: Some(1),
            since: jiff::Timestamp::now(),
        };
        let path = Lock::path(&state, "rb");
        fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(dead.is_stale());
        match Lock::acquire(&state, "rb", &RunId("new".into()), false) {
            Err(LockError::Held { stale: true, .. }) => {}
            other => panic!("{other:?}"),
        }
        // The same run resuming takes it over.
        Lock::acquire(&state, "rb", &RunId("old".into()), false)
            .unwrap()
            .release();
        fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        // Another run only with break_stale.
        Lock::acquire(&state, "rb", &RunId("new".into()), true)
            .unwrap()
            .release();
        let _ = fs::remove_dir_all(state.root());
    }

    #[test]
    fn a_holder_on_another_host_is_never_stale() {
        let h = LockHolder {
            run_id: RunId("x".into()),
            pid: u32::MAX - 1,
            host: "elsewhere".into(),
            process_start: None,
            since: jiff::Timestamp::now(),
        };
        assert!(!h.is_stale());
    }

    #[test]
    fn racing_threads_never_both_hold_the_lock() {
        let state = tmp("race");
        for round in 0..50 {
            let winners: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|t| {
                        let state = &state;
                        s.spawn(move || {
                            Lock::acquire(state, "rb", &RunId(format!("r{round}-{t}")), false).ok()
                        })
                    })
                    .collect();
                let locks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
                let won = locks.iter().map(Option::is_some).collect();
                for l in locks.into_iter().flatten() {
                    l.release();
                }
                won
            });
            assert_eq!(winners.iter().filter(|w| **w).count(), 1, "round {round}");
        }
        let _ = fs::remove_dir_all(state.root());
    }
}
