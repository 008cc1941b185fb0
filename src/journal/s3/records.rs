//! The journal's objects: record bodies, reading a run back (in order, fenced-out
//! writers ignored), and appending each record to every bucket under the lock's token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::lease::{LockSession, S3Lock};
use super::{BUCKET_BACKOFF, Inner, S3State, remote};
use crate::cloud::{PutCondition, is_condition_failed};
use crate::engine::events::{Event, RunId};
use crate::journal::lock::LockHolder;
use crate::journal::store::{Header, JOURNAL_VERSION, JournalError, Replay, is_run_id};

/// The sequence number a record key ends with (`.../0000000012.json`).
pub(super) fn seq_of_key(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What a journal record holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Body {
    /// Record 0: what the run is.
    Header {
        /// The header.
        header: Box<Header>,
    },
    /// An engine event.
    Event {
        /// The event.
        event: Box<Event>,
    },
    /// A process took the run's lock (a resumption, or an explicit break): from here
    /// on only records of this token count.
    Lock {
        /// Who took it.
        holder: LockHolder,
        /// Whose lock it replaced, if it was not released (a takeover).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<LockHolder>,
        /// Whether it was broken with `--break-stale-lock`.
        #[serde(default)]
        broken: bool,
    },
}

/// One journal object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the journal; equal to the key's number.
    pub seq: u64,
    /// The writer's fencing token.
    pub token: u64,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
    /// The simulated world as of this record (`--sim` runs), so a run resumed on
    /// another machine continues in the same world.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<serde_json::Value>,
}

/// A journal read back from S3, beyond what [`Replay`] holds.
#[derive(Clone, Debug)]
pub struct Reassembled {
    /// Header and events.
    pub replay: Replay,
    /// The next free sequence number.
    pub next_seq: u64,
    /// The token of the last lock record (or the header's).
    pub token: u64,
    /// Buckets (or objects) that could not be read: records only they hold are not
    /// in `replay`, which may then end early. A resumption refuses such a read.
    pub unread: Vec<String>,
}

/// Puts records (as read, by the sequence number of their keys) back together: they
/// must be numbered 0, 1, 2... without a gap, record 0 the header; a record written
/// with an older token than the last `lock` record before it is a fenced-out writer's
/// and is ignored (noted); anything else unexpected refuses the journal.
pub fn reassemble(
    where_: &str,
    run: &RunId,
    objects: BTreeMap<u64, Vec<u8>>,
) -> Result<Reassembled, JournalError> {
    let corrupted = |seq: u64, reason: String| JournalError::CorruptedRecord {
        url: format!("{where_}/{seq:010}.json"),
        reason,
    };
    if objects.is_empty() {
        return Err(JournalError::UnknownRun(run.0.clone(), where_.into()));
    }
    let mut header: Option<Header> = None;
    let mut events = Vec::with_capacity(objects.len());
    let mut token = 0;
    let mut world = None;
    let mut notes = Vec::new();
    for (expected, (seq, bytes)) in objects.iter().enumerate() {
        let expected = expected as u64;
        if *seq != expected {
            return Err(corrupted(
                expected,
                format!(
                    "record {expected} is missing (the next is {seq}): a gap, in no reachable state bucket"
                ),
            ));
        }
        let record: Record = serde_json::from_slice(bytes)
            .map_err(|e| corrupted(*seq, format!("not a journal record: {e}")))?;
        if record.seq != *seq {
            return Err(corrupted(
                *seq,
                format!("the object says it is record {}", record.seq),
            ));
        }
        match (record.body, header.is_some()) {
            (Body::Header { header: h }, false) => {
                if h.journal_version != JOURNAL_VERSION {
                    return Err(corrupted(
                        0,
                        format!(
                            "journal version {} (this drpilot reads version {JOURNAL_VERSION})",
                            h.journal_version
                        ),
                    ));
                }
                if h.run_id != *run {
                    return Err(corrupted(0, format!("the header is of run `{}`", h.run_id)));
                }
                token = record.token;
                header = Some(*h);
            }
            (_, false) => return Err(corrupted(0, "record 0 is not a journal header".into())),
            (Body::Header { .. }, true) => {
                return Err(corrupted(*seq, "a second header".into()));
            }
            (
                Body::Lock {
                    holder,
                    replaced,
                    broken,
                },
                true,
            ) => {
                // Equal: the run's creator recording the lock it broke to start.
                if record.token < token {
                    return Err(corrupted(
                        *seq,
                        format!(
                            "a lock record with token {} after token {token}: tokens only grow",
                            record.token
                        ),
                    ));
                }
                token = record.token;
                let how = match (&replaced, broken) {
                    (Some(r), true) => format!(
                        "broke the lock of run {} (pid {} on {}) with --break-stale-lock",
                        r.run_id, r.pid, r.host
                    ),
                    (Some(r), false) => {
                        format!("took the run over from pid {} on {}", r.pid, r.host)
                    }
                    (None, _) => "took the run's released lock".into(),
                };
                notes.push(format!(
                    "record {seq}: pid {} on {} {how} (token {token})",
                    holder.pid, holder.host
                ));
            }
            (Body::Event { event }, true) => {
                if record.token < token {
                    notes.push(format!(
                        "record {seq} ignored: written with token {} after the lock passed to token {token} (a fenced-out writer)",
                        record.token
                    ));
                    continue;
                }
                if record.token > token {
                    return Err(corrupted(
                        *seq,
                        format!(
                            "written with token {} but no lock record gave it (current token {token})",
                            record.token
                        ),
                    ));
                }
                if event.run_id != *run {
                    return Err(corrupted(
                        *seq,
                        format!("event of run `{}` in the journal of `{run}`", event.run_id),
                    ));
                }
                events.push(*event);
            }
        }
        if record.world.is_some() {
            world = record.world;
        }
    }
    let next_seq = objects.len() as u64;
    Ok(Reassembled {
        replay: Replay {
            header: header.expect("record 0 was checked"),
            events,
            torn_tail: false,
            world,
            notes,
        },
        next_seq,
        token,
        unread: Vec::new(),
    })
}

impl S3State {
    /// Reads a run's journal, merging what every reachable bucket has.
    pub fn reassemble(&self, run: &RunId) -> Result<Reassembled, JournalError> {
        if !is_run_id(&run.0) {
            return Err(JournalError::BadRunId(run.0.clone()));
        }
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run2 = run.clone();
        let (merged, unreachable) = self.inner.bridge.call(async move {
            let mut merged: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            let mut unreachable: Vec<String> = Vec::new();
            let mut answered = false;
            for s in &stores {
                let prefix = s.journal_prefix(&run2);
                let keys = match objects.list_state(&s.bucket, &prefix).await {
                    Ok(k) => k,
                    Err(e) => {
                        unreachable.push(remote(&s.url_of(&prefix), &e));
                        continue;
                    }
                };
                answered = true;
                for key in keys {
                    let Some(seq) = seq_of_key(&key) else {
                        return Err(JournalError::CorruptedRecord {
                            url: s.url_of(&key),
                            reason: "an object that is not a journal record".into(),
                        });
                    };
                    if merged.contains_key(&seq) {
                        continue;
                    }
                    match objects.get_state(&s.bucket, &key).await {
                        Ok(Some(o)) => {
                            merged.insert(seq, o.body);
                        }
                        Ok(None) => {}
                        Err(e) => unreachable.push(remote(&s.url_of(&key), &e)),
                    }
                }
            }
            if !answered {
                return Err(JournalError::Unsupported(format!(
                    "no state bucket could be read: {}",
                    unreachable.join("; ")
                )));
            }
            Ok((merged, unreachable))
        })?;
        let where_ = self.primary().url_of(&self.primary().journal_prefix(run));
        let where_ = where_.trim_end_matches('/').to_string();
        let mut r = match reassemble(&where_, run, merged) {
            Err(JournalError::UnknownRun(id, _)) => {
                return Err(JournalError::UnknownRun(id, self.describe().into()));
            }
            other => other?,
        };
        for u in &unreachable {
            r.replay.notes.push(format!(
                "not read: {u} (records only that bucket holds are not shown)"
            ));
        }
        r.unread = unreachable;
        Ok(r)
    }

    /// Every run in the store (any reachable bucket), newest first. A run whose
    /// journal cannot be read is left out with a warning on stderr.
    pub fn runs(&self) -> Result<Vec<Replay>, JournalError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let ids = self.inner.bridge.call(async move {
            let mut ids = std::collections::BTreeSet::new();
            let mut errors = Vec::new();
            let mut answered = false;
            for s in &stores {
                let prefix = s.runs_prefix();
                match objects.list_state(&s.bucket, &prefix).await {
                    Ok(keys) => {
                        answered = true;
                        for k in keys {
                            if let Some(id) =
                                k.strip_prefix(&prefix).and_then(|r| r.split('/').next())
                            {
                                ids.insert(id.to_string());
                            }
                        }
                    }
                    Err(e) => errors.push(remote(&s.url_of(&prefix), &e)),
                }
            }
            if answered {
                Ok(ids)
            } else {
                Err(JournalError::Unsupported(format!(
                    "no state bucket could be read: {}",
                    errors.join("; ")
                )))
            }
        })?;
        let mut runs = Vec::new();
        for id in ids {
            match self.reassemble(&RunId(id.clone())) {
                Ok(r) => runs.push(r.replay),
                Err(e) => eprintln!("warning: run {id}: {e}"),
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.header.created_at));
        Ok(runs)
    }

    /// The run's copy of its runbook, from the first bucket that has it.
    pub fn runbook_copy(&self, run: &RunId) -> Result<String, JournalError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run = run.clone();
        self.inner.bridge.call(async move {
            let mut errors = Vec::new();
            for s in &stores {
                let key = s.runbook_key(&run);
                match objects.get_state(&s.bucket, &key).await {
                    Ok(Some(o)) => {
                        return String::from_utf8(o.body).map_err(|_| {
                            JournalError::Unsupported(format!("{} is not UTF-8", s.url_of(&key)))
                        });
                    }
                    Ok(None) => errors.push(format!("{}: no such object", s.url_of(&key))),
                    Err(e) => errors.push(remote(&s.url_of(&key), &e)),
                }
            }
            Err(JournalError::Unsupported(format!(
                "cannot read the run's runbook copy: {}",
                errors.join("; ")
            )))
        })
    }

    /// Creates the run's journal: the runbook's copy and the header (record 0) in
    /// every bucket that answers.
    pub fn create(
        &self,
        header: &Header,
        runbook_text: &str,
        lock: &S3Lock,
    ) -> Result<S3Journal, JournalError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run = header.run_id.clone();
        let text = runbook_text.as_bytes().to_vec();
        self.inner.bridge.call(async move {
            for s in &stores {
                // A run id is new, so the copy is absent unless a retry already wrote it.
                let _ = objects
                    .put_state(
                        &s.bucket,
                        &s.runbook_key(&run),
                        text.clone(),
                        PutCondition::IfAbsent,
                    )
                    .await;
            }
        });
        let mut j = S3Journal {
            inner: self.inner.clone(),
            run: header.run_id.clone(),
            next_seq: 0,
            lock: lock.session.clone(),
            backoff: vec![None; self.inner.stores.len()],
        };
        j.write(
            Body::Header {
                header: Box::new(header.clone()),
            },
            None,
        )?;
        // Starting by breaking another run's stale lock is recorded.
        if let (Some(replaced), true) = (&lock.replaced, lock.broken) {
            j.write(
                Body::Lock {
                    holder: lock.session.holder.clone(),
                    replaced: Some(replaced.clone()),
                    broken: true,
                },
                None,
            )?;
        }
        Ok(j)
    }

    /// Opens a run's journal to go on writing after `r`: first a `lock` record with
    /// this process's token, so records of an older holder that might still arrive are
    /// ignored by every reader.
    pub fn open(&self, r: &Reassembled, lock: &S3Lock) -> Result<S3Journal, JournalError> {
        let mut j = S3Journal {
            inner: self.inner.clone(),
            run: r.replay.header.run_id.clone(),
            next_seq: r.next_seq,
            lock: lock.session.clone(),
            backoff: vec![None; self.inner.stores.len()],
        };
        j.write(
            Body::Lock {
                holder: lock.session.holder.clone(),
                replaced: lock.replaced.clone(),
                broken: lock.broken,
            },
            None,
        )?;
        Ok(j)
    }
}

/// An open S3 journal, appending.
pub struct S3Journal {
    inner: Arc<Inner>,
    run: RunId,
    next_seq: u64,
    lock: Arc<LockSession>,
    backoff: Vec<Option<Instant>>,
}

impl std::fmt::Debug for S3Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Journal")
            .field("run", &self.run)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl S3Journal {
    /// Appends one event (with the simulated world as of it) and returns once at least
    /// one bucket has it.
    pub fn append(
        &mut self,
        event: &Event,
        world: Option<serde_json::Value>,
    ) -> Result<(), JournalError> {
        self.write(
            Body::Event {
                event: Box::new(event.clone()),
            },
            world,
        )
    }

    /// Where the run's records go, for messages.
    pub fn describe(&self) -> String {
        let s = &self.inner.stores[0];
        s.url_of(&s.journal_prefix(&self.run))
    }

    fn write(&mut self, body: Body, world: Option<serde_json::Value>) -> Result<(), JournalError> {
        let token = self.lock.fence().map_err(JournalError::Fenced)?;
        let seq = self.next_seq;
        let record = Record {
            seq,
            token,
            body,
            world,
        };
        let bytes = serde_json::to_vec(&record).expect("a record serializes");
        let now = Instant::now();
        let targets: Vec<usize> = (0..self.inner.stores.len())
            .filter(|&i| self.backoff[i].is_none_or(|t| t <= now))
            .collect();
        // Every bucket in back-off: try them all rather than write nowhere.
        let targets = if targets.is_empty() {
            (0..self.inner.stores.len()).collect()
        } else {
            targets
        };
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run = self.run.clone();
        let results = self.inner.bridge.call(async move {
            let writes = targets.iter().map(|&i| {
                let s = &stores[i];
                let key = s.record_key(&run, seq);
                let objects = objects.clone();
                let bytes = bytes.clone();
                async move {
                    let r = match objects
                        .put_state(&s.bucket, &key, bytes.clone(), PutCondition::IfAbsent)
                        .await
                    {
                        Ok(_) => Ok(()),
                        // Refused: ours from an attempt whose answer was lost, or
                        // another writer's.
                        Err(e) if is_condition_failed(&e) => {
                            match objects.get_state(&s.bucket, &key).await {
                                Ok(Some(o)) if o.body == bytes => Ok(()),
                                _ => Err((
                                    true,
                                    format!(
                                        "record {seq} {} was written by another process",
                                        s.url_of(&key)
                                    ),
                                )),
                            }
                        }
                        Err(e) => Err((false, remote(&s.url_of(&key), &e))),
                    };
                    (i, r)
                }
            });
            futures_util::future::join_all(writes).await
        });
        let mut ok = 0;
        let mut errors = Vec::new();
        for (i, r) in results {
            match r {
                Ok(()) => {
                    ok += 1;
                    self.backoff[i] = None;
                }
                Err((true, why)) => {
                    let why = format!("this process lost the run: {why}");
                    self.lock.lose(why.clone());
                    return Err(JournalError::Fenced(why));
                }
                Err((false, why)) => {
                    tracing::warn!(target: "drpilot::state", "state bucket left out for {}s: {why}", BUCKET_BACKOFF.as_secs());
                    self.backoff[i] = Some(Instant::now() + BUCKET_BACKOFF);
                    errors.push(why);
                }
            }
        }
        if ok == 0 {
            return Err(JournalError::Unsupported(format!(
                "no state bucket accepted record {seq}: {}",
                errors.join("; ")
            )));
        }
        self.next_seq += 1;
        Ok(())
    }
}
