//! Approvals given from elsewhere: `drpilot approve RUN_ID STEP` and `drpilot deny`
//! write a decision into the run's state store, and the run (guided, or headless with
//! `--await-approvals`) reads them while it waits.
//!
//! Each decision is an object of its own, never rewritten: under the run's directory
//! `approvals/STEP/ID.json` (local: written to a temporary file and renamed; S3: a
//! conditional put in every bucket that answers). Nothing is read-modified-written, so
//! two people approving at once cannot lose one another's decision, and the run reads
//! them all by listing.

use std::path::{Path, PathBuf};

use super::state::StateStore;
use super::store::{JournalError, StateDir};
pub use crate::engine::approvals::{ApprovalDecision as Decision, Verdict};
use crate::engine::events::RunId;
use crate::runbook::StepId;

/// The longest reason kept: a sentence for the report, not a document.
pub const MAX_REASON: usize = 500;

/// A decision's object name: when, then who (unique enough for people; a clash is
/// refused by the store, never overwritten).
fn file_name(d: &Decision) -> String {
    let safe: String =
        d.by.name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
    format!(
        "{}-{}-{}.json",
        d.by.at.as_millisecond(),
        safe,
        std::process::id()
    )
}

fn local_dir(d: &StateDir, run: &RunId, step: &StepId) -> PathBuf {
    d.run_dir(run).join("approvals").join(step.as_str())
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> JournalError + 'p {
    move |source| JournalError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl StateStore {
    /// Stores `decision` for `run`, which must exist in this store.
    pub fn record_decision(&self, run: &RunId, decision: &Decision) -> Result<(), JournalError> {
        let body = serde_json::to_vec_pretty(decision)
            .map_err(|e| JournalError::Unsupported(format!("cannot encode the decision: {e}")))?;
        match self {
            StateStore::Dir(d) => {
                if !d.run_dir(run).join("journal.ndjson").exists() {
                    return Err(JournalError::UnknownRun(run.0.clone(), d.root().into()));
                }
                let dir = local_dir(d, run, &decision.step);
                std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
                let path = dir.join(file_name(decision));
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, &body)
                    .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                    .map_err(io("write", &tmp))?;
                std::fs::rename(&tmp, &path).map_err(io("write", &path))
            }
            StateStore::S3(s) => s.record_decision(run, decision, file_name(decision), body),
        }
    }

    /// Every decision stored for `step` of `run`, oldest first. An object that is not a
    /// decision (a torn local write, a stranger's file) is an error naming it: a run
    /// must not guess at who approved.
    pub fn decisions(&self, run: &RunId, step: &StepId) -> Result<Vec<Decision>, JournalError> {
        let mut out = match self {
            StateStore::Dir(d) => {
                let dir = local_dir(d, run, step);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(io("read", &dir)(e)),
                };
                let mut out = Vec::new();
                for entry in entries {
                    let path = entry.map_err(io("read", &dir))?.path();
                    if path.extension().is_none_or(|e| e != "json") {
                        continue;
                    }
                    let text = std::fs::read(&path).map_err(io("read", &path))?;
                    out.push(parse(&text, &path.display().to_string(), step)?);
                }
                out
            }
            StateStore::S3(s) => s
                .decisions(run, step)?
                .into_iter()
                .map(|(url, body)| parse(&body, &url, step))
                .collect::<Result<_, _>>()?,
        };
        out.sort_by_key(|d| d.by.at);
        out.dedup();
        Ok(out)
    }
}

fn parse(body: &[u8], at: &str, step: &StepId) -> Result<Decision, JournalError> {
    let d: Decision = serde_json::from_slice(body)
        .map_err(|e| JournalError::Unsupported(format!("{at} is not an approval decision: {e}")))?;
    if &d.step != step {
        return Err(JournalError::Unsupported(format!(
            "{at} decides step `{}`, not `{step}`",
            d.step
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Approver;

    fn decision(step: &str, name: &str, verdict: Verdict, ms: i64) -> Decision {
        Decision {
            step: StepId::new(step.to_string()),
            verdict,
            by: Approver {
                name: name.into(),
                via: "store".into(),
                os_user: Some("u".into()),
                host: Some("h".into()),
                aws_identity: None,
                at: jiff::Timestamp::from_millisecond(ms).unwrap(),
            },
            reason: (verdict == Verdict::Deny).then(|| "not now".into()),
        }
    }

    #[test]
    fn decisions_are_stored_one_object_each_and_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!("approvals-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = StateDir::at(&dir);
        let run = RunId("rb-20261207T000000Z-abcd".into());
        let store = StateStore::Dir(d.clone());
        let step = StepId::new("approve-failover".to_string());
        // No such run: refused, nothing written.
        let err = store
            .record_decision(
                &run,
                &decision("approve-failover", "alice", Verdict::Approve, 1),
            )
            .unwrap_err();
        assert!(matches!(err, JournalError::UnknownRun(..)), "{err}");
        assert!(!d.run_dir(&run).exists());

        std::fs::create_dir_all(d.run_dir(&run)).unwrap();
        std::fs::write(d.run_dir(&run).join("journal.ndjson"), "").unwrap();
        assert!(store.decisions(&run, &step).unwrap().is_empty());
        let bob = decision("approve-failover", "bob", Verdict::Approve, 2_000);
        let alice = decision("approve-failover", "alice", Verdict::Approve, 1_000);
        let carol = decision("approve-failover", "carol", Verdict::Deny, 3_000);
        for x in [&bob, &alice, &carol] {
            store.record_decision(&run, x).unwrap();
        }
        let other = decision("other-step", "dan", Verdict::Approve, 500);
        store.record_decision(&run, &other).unwrap();
        assert_eq!(
            store.decisions(&run, &step).unwrap(),
            vec![alice, bob, carol]
        );
        // A file that is not a decision is named, not skipped.
        let junk = local_dir(&d, &run, &step).join("junk.json");
        std::fs::write(&junk, "{").unwrap();
        let err = store.decisions(&run, &step).unwrap_err().to_string();
        assert!(
            err.contains("junk.json is not an approval decision"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
