//! The journal and the runbook lock in S3, for teams: several operators and bots on
//! several machines share one state store, and a run started on a laptop that dies is
//! resumed from another machine.
//!
//! Layout under `s3://BUCKET/PREFIX` (see `docs/state.md`):
//! - `PREFIX/runs/RUN_ID/journal/SEQ.json` — one immutable object per record, `SEQ`
//!   zero-padded to 10 digits so S3's lexical listing is the journal's order. Record 0
//!   is the header. Each is written with `If-None-Match: *`: exactly one writer gets a
//!   sequence number, and a writer refused (412) has lost the run.
//! - `PREFIX/runs/RUN_ID/runbook.toml` — the runbook's text as the run started.
//! - `PREFIX/locks/RUNBOOK.lock` — the lock: its holder, a fencing token and a lease.
//!   Taken with `If-None-Match: *` (or `If-Match` on a released or expired one),
//!   renewed with `If-Match: <etag>` every third of the lease, never deleted (so the
//!   token only ever grows).
//!
//! Fencing: a holder writes a record only while its lease is surely valid on its own
//! monotonic clock (with a margin); every record carries the writer's token; a process
//! that takes a run over writes a `lock` record with its new token before anything
//! else, and a reader ignores later records of an older token. A holder that was
//! paused or partitioned past its lease finds its renewal refused or its lease expired
//! and stops writing.
//!
//! Several buckets: every record goes to every bucket, and is acknowledged once at
//! least one has it; reads merge what every reachable bucket has, by sequence number.
//!
//! The SDK's futures run on a private runtime thread: the engine's runtime may be on
//! virtual time (`--sim-speed max`), where network timeouts would fire at once, and its
//! sinks are synchronous (a record is durable before the engine goes on).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::lock::{LockError, LockHolder};
use super::store::{Header, JOURNAL_VERSION, JournalError, Replay, is_run_id};
use crate::cloud::{CloudError, CloudErrorKind, PutCondition, StateObjects, is_condition_failed};
use crate::engine::events::{Event, RunId};

/// The lease of an S3 lock when `DRPILOT_LOCK_LEASE` does not say otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How long a bucket that failed a write is left out before it is tried again, so an
/// unreachable region does not cost every record a timeout.
const BUCKET_BACKOFF: Duration = Duration::from_secs(30);

pub use crate::names::S3Location;

/// The journal's layout under a location (docs/state.md).
impl S3Location {
    /// Where a run's records are.
    pub fn journal_prefix(&self, run: &RunId) -> String {
        self.key(&format!("runs/{}/journal/", run.0))
    }

    /// One record's key.
    pub fn record_key(&self, run: &RunId, seq: u64) -> String {
        format!("{}{seq:010}.json", self.journal_prefix(run))
    }

    /// The run's copy of its runbook.
    pub fn runbook_key(&self, run: &RunId) -> String {
        self.key(&format!("runs/{}/runbook.toml", run.0))
    }

    /// Every run's objects start with this.
    pub fn runs_prefix(&self) -> String {
        self.key("runs/")
    }

    /// The lock of a runbook.
    pub fn lock_key(&self, runbook: &str) -> String {
        self.key(&format!("locks/{runbook}.lock"))
    }
}

/// The sequence number a record key ends with (`.../0000000012.json`).
fn seq_of_key(key: &str) -> Option<u64> {
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

/// The body of a lock object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockBody {
    /// Who holds (or last held) it.
    pub holder: LockHolder,
    /// The fencing token: one more than the previous holder's.
    pub token: u64,
    /// The lease, milliseconds: renewed every third of it.
    pub lease_ms: u64,
    /// When it was last renewed (the holder's wall clock; a hint only, see
    /// [`S3State::acquire`]).
    pub renewed_at: jiff::Timestamp,
    /// The holder let it go.
    #[serde(default)]
    pub released: bool,
}

impl LockBody {
    fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// Whether the lease looks expired by the wall clock.
    fn looks_expired(&self, now: jiff::Timestamp) -> bool {
        let until = self
            .renewed_at
            .checked_add(jiff::SignedDuration::from_millis(self.lease_ms as i64))
            .unwrap_or(self.renewed_at);
        until < now
    }
}

/// How sure a holder must be of its lease before it writes: the lease minus this.
pub fn safety_margin(lease: Duration) -> Duration {
    (lease / 6).max(Duration::from_millis(50))
}

/// Until when a lease renewed by a request sent at `sent` is surely still ours.
pub fn valid_until(sent: Instant, lease: Duration) -> Instant {
    sent + lease - safety_margin(lease)
}

/// A private runtime on its own thread, for the SDK's futures.
struct Bridge {
    handle: tokio::runtime::Handle,
    // Dropped with the last user: the runtime's thread then ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Bridge {
    fn start() -> Result<Self, JournalError> {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("drpilot-state".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = htx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = htx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| {
                JournalError::Unsupported(format!("failed to start the state store's thread: {e}"))
            })?;
        let handle = hrx
            .recv()
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| {
                JournalError::Unsupported(format!("failed to start the state store's runtime: {e}"))
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    /// Runs `fut` on the private runtime and waits for it (from synchronous code, or
    /// from the engine's runtime, which this blocks on purpose: write-ahead).
    fn call<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the state store's runtime outlives its users")
    }
}

struct Inner {
    bridge: Bridge,
    objects: Arc<dyn StateObjects>,
    stores: Vec<S3Location>,
    lease: Duration,
}

/// The state store in one or more S3 buckets.
#[derive(Clone)]
pub struct S3State {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3State")
            .field("stores", &self.inner.stores)
            .finish_non_exhaustive()
    }
}

/// The lease from `DRPILOT_LOCK_LEASE` (a duration such as `2s`; tests shorten it).
pub fn lease_from_env() -> Result<Duration, JournalError> {
    match std::env::var("DRPILOT_LOCK_LEASE") {
        Ok(v) if !v.trim().is_empty() => {
            let d = humantime::parse_duration(v.trim())
                .map_err(|e| JournalError::Unsupported(format!("DRPILOT_LOCK_LEASE={v}: {e}")))?;
            if d < Duration::from_millis(300) {
                return Err(JournalError::Unsupported(format!(
                    "DRPILOT_LOCK_LEASE={v}: a lease shorter than 300ms cannot be renewed reliably"
                )));
            }
            Ok(d)
        }
        _ => Ok(DEFAULT_LEASE),
    }
}

fn remote(what: &str, e: &CloudError) -> String {
    format!("{what}: {e}")
}

impl S3State {
    /// A store over `stores` reached through `objects`, built on the store's own
    /// runtime by `connect` (so the SDK's clients live there).
    pub fn new<F, Fut>(
        stores: Vec<S3Location>,
        lease: Duration,
        connect: F,
    ) -> Result<Self, JournalError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Arc<dyn StateObjects>> + Send + 'static,
    {
        assert!(!stores.is_empty(), "at least one S3 state location");
        let bridge = Bridge::start()?;
        let objects = bridge.call(connect());
        Ok(Self {
            inner: Arc::new(Inner {
                bridge,
                objects,
                stores,
                lease,
            }),
        })
    }

    /// The buckets, in the order given.
    pub fn stores(&self) -> &[S3Location] {
        &self.inner.stores
    }

    /// The first location, for messages.
    pub fn primary(&self) -> &S3Location {
        &self.inner.stores[0]
    }

    /// Each bucket's region, or why it is unknown.
    pub fn bucket_regions(&self) -> Vec<(String, Result<String, String>)> {
        let objects = self.inner.objects.clone();
        let buckets: Vec<String> = self.stores().iter().map(|s| s.bucket.clone()).collect();
        self.inner.bridge.call(async move {
            let mut out = Vec::new();
            for b in buckets {
                let r = objects
                    .state_bucket_region(&b)
                    .await
                    .map_err(|e| e.to_string());
                out.push((b, r));
            }
            out
        })
    }

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

    /// `s3://bucket/prefix[, ...]`, for messages.
    pub fn describe(&self) -> String {
        self.stores()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Who holds the lock of `runbook` (by the first bucket that answers), and whether
    /// it looks stale (released locks are no holder).
    pub fn holder(&self, runbook: &str) -> Result<Option<(LockHolder, bool)>, LockError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let runbook = runbook.to_string();
        self.inner.bridge.call(async move {
            let mut errors = Vec::new();
            for s in &stores {
                let key = s.lock_key(&runbook);
                match objects.get_state(&s.bucket, &key).await {
                    Ok(None) => return Ok(None),
                    Ok(Some(o)) => {
                        let body: LockBody =
                            serde_json::from_slice(&o.body).map_err(|e| LockError::Remote {
                                url: s.url_of(&key),
                                reason: format!("unreadable lock object ({e})"),
                            })?;
                        if body.released {
                            return Ok(None);
                        }
                        let stale =
                            body.holder.is_stale() || body.looks_expired(jiff::Timestamp::now());
                        return Ok(Some((body.holder, stale)));
                    }
                    Err(e) => errors.push(remote(&s.url_of(&key), &e)),
                }
            }
            Err(LockError::Remote {
                url: stores[0].url_of(&stores[0].lock_key(&runbook)),
                reason: errors.join("; "),
            })
        })
    }

    /// Takes the lock of `runbook` for `run` in every bucket that answers (at least
    /// one must). A lock that is released, or whose holder is certainly gone (same
    /// host, no such process), or whose lease expired, is taken over when it is this
    /// run's (a resumption) or when `break_stale` is set; otherwise the caller gets
    /// [`LockError::Held`]. An expired lease is only believed after watching the lock
    /// object not change for a whole lease on this machine's monotonic clock: the
    /// holder's wall clock in the object is a hint, not a proof.
    pub fn acquire(
        &self,
        runbook: &str,
        run: &RunId,
        break_stale: bool,
    ) -> Result<S3Lock, LockError> {
        let inner = self.inner.clone();
        let runbook_s = runbook.to_string();
        let run_c = run.clone();
        let taken = self
            .inner
            .bridge
            .call(async move { acquire(&inner, &runbook_s, &run_c, break_stale).await })?;
        let session = Arc::new(LockSession {
            inner: self.inner.clone(),
            runbook: runbook.to_string(),
            token: taken.token,
            holder: taken.holder,
            lease: self.inner.lease,
            etags: tokio::sync::Mutex::new(taken.etags),
            valid_until: Mutex::new(valid_until(taken.sent, self.inner.lease)),
            lost: Mutex::new(None),
        });
        let renewer = {
            let s = session.clone();
            self.inner.handle_spawn(async move {
                let every = s.lease / 3;
                loop {
                    tokio::time::sleep(every).await;
                    if s.renew().await.is_err() {
                        break;
                    }
                }
            })
        };
        Ok(S3Lock {
            session,
            replaced: taken.replaced,
            broken: taken.broken,
            renewer,
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

impl Inner {
    fn handle_spawn(
        &self,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        self.bridge.handle.spawn(fut).abort_handle()
    }
}

struct Taken {
    token: u64,
    holder: LockHolder,
    etags: Vec<Option<String>>,
    sent: Instant,
    replaced: Option<LockHolder>,
    broken: bool,
}

/// What one bucket's lock object looked like.
enum Seen {
    Absent,
    Present { etag: String, body: LockBody },
    Unreachable(String),
}

async fn read_lock(
    objects: &dyn StateObjects,
    s: &S3Location,
    key: &str,
) -> Result<Seen, LockError> {
    match objects.get_state(&s.bucket, key).await {
        Ok(None) => Ok(Seen::Absent),
        Ok(Some(o)) => {
            let body: LockBody =
                serde_json::from_slice(&o.body).map_err(|e| LockError::Remote {
                    url: s.url_of(key),
                    reason: format!(
                        "unreadable lock object ({e}); delete it by hand if no run is active"
                    ),
                })?;
            Ok(Seen::Present { etag: o.etag, body })
        }
        Err(e)
            if matches!(
                e.kind,
                CloudErrorKind::AccessDenied
                    | CloudErrorKind::NotFound
                    | CloudErrorKind::InvalidRequest
            ) =>
        {
            Err(LockError::Remote {
                url: s.url_of(key),
                reason: e.to_string(),
            })
        }
        Err(e) => Ok(Seen::Unreachable(e.to_string())),
    }
}

async fn acquire(
    inner: &Inner,
    runbook: &str,
    run: &RunId,
    break_stale: bool,
) -> Result<Taken, LockError> {
    let objects = &*inner.objects;
    let stores = &inner.stores;
    let url = |i: usize| stores[i].url_of(&stores[i].lock_key(runbook));
    for _attempt in 0..5 {
        let mut seen = Vec::with_capacity(stores.len());
        for s in stores {
            seen.push(read_lock(objects, s, &s.lock_key(runbook)).await?);
        }
        if seen.iter().all(|s| matches!(s, Seen::Unreachable(_))) {
            let reasons: Vec<String> = seen
                .iter()
                .filter_map(|s| match s {
                    Seen::Unreachable(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            return Err(LockError::Remote {
                url: url(0),
                reason: format!("no state bucket answered: {}", reasons.join("; ")),
            });
        }
        // The live holder, if any bucket shows one.
        let now = jiff::Timestamp::now();
        let mut replaced = None;
        let mut broken = false;
        let mut watch: Vec<(usize, String, Duration)> = Vec::new();
        for (i, s) in seen.iter().enumerate() {
            let Seen::Present { etag, body } = s else {
                continue;
            };
            if body.released {
                continue;
            }
            let gone = body.holder.is_stale();
            let expired = gone || body.looks_expired(now);
            let ours = body.holder.run_id == *run;
            if !expired {
                return Err(LockError::Held {
                    runbook: runbook.to_string(),
                    holder: body.holder.clone(),
                    stale: false,
                });
            }
            if !(ours || break_stale) {
                return Err(LockError::Held {
                    runbook: runbook.to_string(),
                    holder: body.holder.clone(),
                    stale: true,
                });
            }
            broken |= !ours;
            replaced = Some(body.holder.clone());
            if !gone {
                watch.push((i, etag.clone(), body.lease()));
            }
        }
        // An expired-looking lease is believed only if it stays unrenewed for a whole
        // lease as this machine measures it.
        if let Some(wait) = watch.iter().map(|w| w.2).max() {
            tokio::time::sleep(wait + wait / 10).await;
            for (i, etag, _) in &watch {
                let s = &stores[*i];
                // Renewed meanwhile: the holder is alive. (Released meanwhile: the
                // conditional write below fails and the next look takes it.)
                if let Seen::Present {
                    etag: now_etag,
                    body,
                } = read_lock(objects, s, &s.lock_key(runbook)).await?
                    && now_etag != *etag
                    && !body.released
                {
                    return Err(LockError::Held {
                        runbook: runbook.to_string(),
                        holder: body.holder,
                        stale: false,
                    });
                }
            }
        }
        let token = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Present { body, .. } => Some(body.token),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        let holder = LockHolder::current(run);
        let body = LockBody {
            holder: holder.clone(),
            token,
            lease_ms: inner.lease.as_millis() as u64,
            renewed_at: jiff::Timestamp::now(),
            released: false,
        };
        let bytes = serde_json::to_vec(&body).expect("a lock body serializes");
        let sent = Instant::now();
        let mut etags: Vec<Option<String>> = vec![None; stores.len()];
        let mut lost_race = false;
        let mut errors = Vec::new();
        for (i, s) in stores.iter().enumerate() {
            let condition = match &seen[i] {
                Seen::Absent => PutCondition::IfAbsent,
                Seen::Present { etag, .. } => PutCondition::IfMatch(etag.clone()),
                Seen::Unreachable(_) => continue,
            };
            match objects
                .put_state(&s.bucket, &s.lock_key(runbook), bytes.clone(), condition)
                .await
            {
                Ok(etag) => etags[i] = Some(etag),
                Err(e) if is_condition_failed(&e) || e.code.as_deref() == Some("NoSuchKey") => {
                    lost_race = true;
                    break;
                }
                Err(e) => errors.push(remote(&url(i), &e)),
            }
        }
        if lost_race {
            // Someone else got there first: give back what we took and look again
            // (the next look names the winner).
            release_all(objects, stores, runbook, &body, &etags).await;
            continue;
        }
        if etags.iter().all(Option::is_none) {
            return Err(LockError::Remote {
                url: url(0),
                reason: format!("no state bucket took the lock: {}", errors.join("; ")),
            });
        }
        return Ok(Taken {
            token,
            holder,
            etags,
            sent,
            replaced,
            broken,
        });
    }
    Err(LockError::Remote {
        url: url(0),
        reason: "the lock kept changing hands; try again".into(),
    })
}

async fn release_all(
    objects: &dyn StateObjects,
    stores: &[S3Location],
    runbook: &str,
    body: &LockBody,
    etags: &[Option<String>],
) {
    let mut released = body.clone();
    released.released = true;
    released.renewed_at = jiff::Timestamp::now();
    let bytes = serde_json::to_vec(&released).expect("a lock body serializes");
    for (s, etag) in stores.iter().zip(etags) {
        if let Some(etag) = etag {
            let _ = objects
                .put_state(
                    &s.bucket,
                    &s.lock_key(runbook),
                    bytes.clone(),
                    PutCondition::IfMatch(etag.clone()),
                )
                .await;
        }
    }
}

/// A held lock's lease, shared by the renewal task and the journal's writes.
struct LockSession {
    inner: Arc<Inner>,
    runbook: String,
    token: u64,
    holder: LockHolder,
    lease: Duration,
    /// Per bucket, the ETag of our current version (`None`: not held there).
    etags: tokio::sync::Mutex<Vec<Option<String>>>,
    valid_until: Mutex<Instant>,
    lost: Mutex<Option<String>>,
}

impl LockSession {
    fn body(&self, released: bool) -> LockBody {
        LockBody {
            holder: self.holder.clone(),
            token: self.token,
            lease_ms: self.lease.as_millis() as u64,
            renewed_at: jiff::Timestamp::now(),
            released,
        }
    }

    fn lose(&self, why: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        lost.get_or_insert(why);
    }

    fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renews the lease in every bucket where it is held. `Err` once it is lost (a
    /// renewal was refused: another process took the lock).
    async fn renew(&self) -> Result<(), String> {
        if let Some(why) = self.lost() {
            return Err(why);
        }
        let mut etags = self.etags.lock().await;
        let bytes = serde_json::to_vec(&self.body(false)).expect("a lock body serializes");
        let sent = Instant::now();
        let mut renewed = false;
        // In parallel: a bucket whose region holds connections must not delay the
        // others' renewals past the lease.
        let puts = self.inner.stores.iter().enumerate().filter_map(|(i, s)| {
            let etag = etags[i].clone()?;
            let key = s.lock_key(&self.runbook);
            let bytes = bytes.clone();
            Some(async move {
                let r = self
                    .inner
                    .objects
                    .put_state(&s.bucket, &key, bytes, PutCondition::IfMatch(etag))
                    .await;
                (i, s, key, r)
            })
        });
        for (i, s, key, r) in futures_util::future::join_all(puts).await {
            match r {
                Ok(new) => {
                    etags[i] = Some(new);
                    renewed = true;
                }
                Err(e) if is_condition_failed(&e) || e.code.as_deref() == Some("NoSuchKey") => {
                    let seen = read_lock(&*self.inner.objects, s, &key).await;
                    // An earlier renewal whose answer never came (a region that held it
                    // past its deadline) may have landed: the object is then ours, with
                    // our token and an ETag we never heard. That is no takeover.
                    if let Ok(Seen::Present { etag, body }) = &seen
                        && body.token == self.token
                        && body.holder == self.holder
                        && !body.released
                    {
                        let retry = self
                            .inner
                            .objects
                            .put_state(
                                &s.bucket,
                                &key,
                                bytes.clone(),
                                PutCondition::IfMatch(etag.clone()),
                            )
                            .await;
                        match retry {
                            Ok(new) => {
                                tracing::info!(
                                    target: "drpilot::state",
                                    lock = %s.url_of(&key),
                                    "an earlier renewal whose answer was lost had landed; renewed on it"
                                );
                                etags[i] = Some(new);
                                renewed = true;
                                continue;
                            }
                            // Still ours; this renewal's own outcome is unknown: the
                            // next one reads again.
                            Err(e) if !is_condition_failed(&e) => {
                                etags[i] = Some(etag.clone());
                                tracing::warn!(
                                    target: "drpilot::state",
                                    lock = %s.url_of(&key),
                                    "lease renewal failed: {e}"
                                );
                                continue;
                            }
                            Err(_) => {}
                        }
                    }
                    let by = match seen {
                        Ok(Seen::Present { body, .. }) => format!(
                            " by run {} (pid {} on {}, token {})",
                            body.holder.run_id, body.holder.pid, body.holder.host, body.token
                        ),
                        _ => String::new(),
                    };
                    let why = format!(
                        "this process lost the lock {} (token {}): it was taken over{by}",
                        s.url_of(&key),
                        self.token
                    );
                    self.lose(why.clone());
                    return Err(why);
                }
                Err(e) => {
                    tracing::warn!(
                        target: "drpilot::state",
                        lock = %s.url_of(&key),
                        "lease renewal failed: {e}"
                    );
                }
            }
        }
        if renewed {
            let mut v = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
            *v = valid_until(sent, self.lease);
        }
        Ok(())
    }

    /// Before a write: the token, when the lease is surely still ours (renewing it
    /// once if it is due), else why not.
    fn fence(self: &Arc<Self>) -> Result<u64, String> {
        if let Some(why) = self.lost() {
            return Err(why);
        }
        let until = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        if Instant::now() < until {
            return Ok(self.token);
        }
        // Due or overdue (this process was paused, or the buckets did not answer):
        // a renewal that still matches our ETag proves nobody took over.
        let me = self.clone();
        self.inner.bridge.call(async move { me.renew().await })?;
        let until = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        if Instant::now() < until {
            return Ok(self.token);
        }
        let why = format!(
            "the lease of lock token {} expired (this process was paused, or no state bucket answered, for longer than the {} lease): another process may have taken over",
            self.token,
            humantime::format_duration(self.lease)
        );
        self.lose(why.clone());
        Err(why)
    }
}

/// A held S3 lock. Released by [`S3Lock::release`], not on drop: a crashed or paused
/// run keeps its lock until its lease expires.
pub struct S3Lock {
    session: Arc<LockSession>,
    replaced: Option<LockHolder>,
    broken: bool,
    renewer: tokio::task::AbortHandle,
}

impl std::fmt::Debug for S3Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Lock")
            .field("runbook", &self.session.runbook)
            .field("token", &self.session.token)
            .finish_non_exhaustive()
    }
}

impl S3Lock {
    /// The fencing token.
    pub fn token(&self) -> u64 {
        self.session.token
    }

    /// Whose lock this one replaced (a takeover), and whether it was broken.
    pub fn replaced(&self) -> (Option<&LockHolder>, bool) {
        (self.replaced.as_ref(), self.broken)
    }

    /// Why this process may no longer write, once it lost the lock.
    pub fn lost(&self) -> Option<String> {
        self.session.lost()
    }

    /// Stops renewing; lets the lock go (only where it is still ours).
    pub fn release(self) {
        self.renewer.abort();
        if self.session.lost().is_some() {
            return;
        }
        let s = self.session.clone();
        self.session.inner.bridge.call(async move {
            let etags = s.etags.lock().await;
            release_all(
                &*s.inner.objects,
                &s.inner.stores,
                &s.runbook,
                &s.body(false),
                &etags,
            )
            .await;
        });
    }

    /// Stops renewing without releasing: the run stays locked until its lease ends.
    pub fn keep(self) {
        self.renewer.abort();
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use async_trait::async_trait;

    use super::*;
    use crate::cloud::{CloudResult, StoredObject};
    use crate::engine::events::EventKind;
    use crate::runbook::StepId;

    /// (bucket, key) -> (body, ETag).
    type Objects = HashMap<(String, String), (Vec<u8>, String)>;

    /// S3 as far as state needs it: conditional writes, and buckets that can go dark.
    #[derive(Default)]
    struct Mem {
        objects: Mutex<Objects>,
        down: Mutex<HashSet<String>>,
        /// Buckets whose writes land but whose answers are lost (held past the
        /// caller's deadline).
        lose_answers: Mutex<HashSet<String>>,
        next_etag: Mutex<u64>,
    }

    impl Mem {
        fn check(&self, bucket: &str, op: &str) -> CloudResult<()> {
            if self.down.lock().unwrap().contains(bucket) {
                return Err(CloudError::new(
                    CloudErrorKind::Unreachable,
                    op,
                    Some("us-east-1"),
                    "connection reset",
                ));
            }
            Ok(())
        }
        fn set_down(&self, bucket: &str, down: bool) {
            let mut d = self.down.lock().unwrap();
            if down {
                d.insert(bucket.into());
            } else {
                d.remove(bucket);
            }
        }
        fn set_lose_answers(&self, bucket: &str, lose: bool) {
            let mut d = self.lose_answers.lock().unwrap();
            if lose {
                d.insert(bucket.into());
            } else {
                d.remove(bucket);
            }
        }
        fn overwrite(&self, bucket: &str, key: &str, body: Vec<u8>) {
            let etag = self.etag();
            self.objects
                .lock()
                .unwrap()
                .insert((bucket.into(), key.into()), (body, etag));
        }
        fn remove(&self, bucket: &str, key: &str) {
            self.objects
                .lock()
                .unwrap()
                .remove(&(bucket.into(), key.into()));
        }
        fn etag(&self) -> String {
            let mut n = self.next_etag.lock().unwrap();
            *n += 1;
            format!("\"e{n}\"")
        }
    }

    #[async_trait]
    impl StateObjects for Mem {
        async fn put_state(
            &self,
            bucket: &str,
            key: &str,
            body: Vec<u8>,
            condition: PutCondition,
        ) -> CloudResult<String> {
            self.check(bucket, "PutObject")?;
            let k = (bucket.to_string(), key.to_string());
            let current = self.objects.lock().unwrap().get(&k).map(|o| o.1.clone());
            let refused = |code: &str| {
                Err(
                    CloudError::new(CloudErrorKind::InvalidState, "PutObject", None, code)
                        .with_code(code),
                )
            };
            match (&condition, current) {
                (PutCondition::IfAbsent, Some(_)) => return refused("PreconditionFailed"),
                (PutCondition::IfMatch(_), None) => return refused("NoSuchKey"),
                (PutCondition::IfMatch(want), Some(have)) if *want != have => {
                    return refused("PreconditionFailed");
                }
                _ => {}
            }
            let etag = self.etag();
            self.objects.lock().unwrap().insert(k, (body, etag.clone()));
            if self.lose_answers.lock().unwrap().contains(bucket) {
                return Err(CloudError::new(
                    CloudErrorKind::Unreachable,
                    "PutObject",
                    Some("us-east-1"),
                    "no answer within 10s",
                ));
            }
            Ok(etag)
        }
        async fn get_state(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredObject>> {
            self.check(bucket, "GetObject")?;
            Ok(self
                .objects
                .lock()
                .unwrap()
                .get(&(bucket.to_string(), key.to_string()))
                .map(|(body, etag)| StoredObject {
                    body: body.clone(),
                    etag: etag.clone(),
                }))
        }
        async fn list_state(&self, bucket: &str, prefix: &str) -> CloudResult<Vec<String>> {
            self.check(bucket, "ListObjectsV2")?;
            let mut keys: Vec<String> = self
                .objects
                .lock()
                .unwrap()
                .keys()
                .filter(|(b, k)| b == bucket && k.starts_with(prefix))
                .map(|(_, k)| k.clone())
                .collect();
            keys.sort();
            Ok(keys)
        }
        async fn state_bucket_region(&self, _bucket: &str) -> CloudResult<String> {
            Ok("us-east-1".into())
        }
    }

    fn store(mem: &Arc<Mem>, buckets: &[&str], lease: Duration) -> S3State {
        let stores = buckets
            .iter()
            .map(|b| S3Location::parse(&format!("s3://{b}/team")).unwrap())
            .collect();
        let mem = mem.clone();
        S3State::new(stores, lease, move || async move {
            mem as Arc<dyn StateObjects>
        })
        .unwrap()
    }

    fn header(run: &str) -> Header {
        Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId(run.into()),
            runbook: "rb".into(),
            runbook_path: "rb.toml".into(),
            runbook_sha256: super::super::store::runbook_digest("x"),
            created_at: jiff::Timestamp::from_second(1).unwrap(),
            clock_origin: jiff::Timestamp::from_second(1).unwrap(),
            sim: None,
            aws: None,
            params: BTreeMap::new(),
        }
    }

    fn event(run: &str, step: &str) -> Event {
        Event {
            run_id: RunId(run.into()),
            at: jiff::Timestamp::from_second(2).unwrap(),
            kind: EventKind::StepSucceeded {
                step: StepId::new(step),
                summary: "ok".into(),
            },
        }
    }

    fn record(seq: u64, token: u64, body: Body) -> Vec<u8> {
        serde_json::to_vec(&Record {
            seq,
            token,
            body,
            world: None,
        })
        .unwrap()
    }

    fn ev(run: &str, step: &str) -> Body {
        Body::Event {
            event: Box::new(event(run, step)),
        }
    }

    fn hdr(run: &str) -> Body {
        Body::Header {
            header: Box::new(header(run)),
        }
    }

    fn took(run: &str) -> Body {
        Body::Lock {
            holder: LockHolder::current(&RunId(run.into())),
            replaced: None,
            broken: false,
        }
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn locations_parse_strictly_and_keys_sort_in_journal_order() {
        let l = S3Location::parse("s3://team-state/drpilot/prod/?region=us-west-2").unwrap();
        assert_eq!(l.bucket, "team-state");
        assert_eq!(l.prefix, "drpilot/prod");
        assert_eq!(l.region.as_deref(), Some("us-west-2"));
        let run = RunId("rb-20260101T000000Z-ab12".into());
        assert_eq!(
            l.record_key(&run, 12),
            "drpilot/prod/runs/rb-20260101T000000Z-ab12/journal/0000000012.json"
        );
        assert_eq!(l.lock_key("rb"), "drpilot/prod/locks/rb.lock");
        assert_eq!(
            l.runbook_key(&run),
            "drpilot/prod/runs/rb-20260101T000000Z-ab12/runbook.toml"
        );
        assert_eq!(seq_of_key(&l.record_key(&run, 12)), Some(12));
        assert_eq!(seq_of_key("x/runs/r/journal/12.json"), None);
        // Lexical order is numeric order.
        assert!(l.record_key(&run, 9) < l.record_key(&run, 10));
        let bare = S3Location::parse("s3://team-state").unwrap();
        assert_eq!(bare.lock_key("rb"), "locks/rb.lock");
        assert_eq!(bare.to_string(), "s3://team-state");
        for (bad, why) in [
            ("s3://", "not a bucket name"),
            ("s3://Team_State/p", "not a bucket name"),
            ("s3://ab/p", "not a bucket name"),
            ("s3://team-state/a/../b", "`..`"),
            ("s3://team-state/p?region=mars-1", "not an AWS region"),
            ("s3://team-state/p?profile=x", "unknown parameter"),
            ("file:///tmp", "not an s3:// URL"),
        ] {
            let err = S3Location::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn a_journal_is_reassembled_in_order_and_a_gap_or_garbage_is_refused() {
        let run = RunId("r".into());
        let ok: BTreeMap<u64, Vec<u8>> = [
            (0, record(0, 1, hdr("r"))),
            (1, record(1, 1, ev("r", "a"))),
            (2, record(2, 1, ev("r", "b"))),
        ]
        .into();
        let r = reassemble("s3://b/p", &run, ok.clone()).unwrap();
        assert_eq!(r.replay.events.len(), 2);
        assert_eq!((r.next_seq, r.token), (3, 1));

        let mut gap = ok.clone();
        gap.remove(&1);
        let err = reassemble("s3://b/p", &run, gap).unwrap_err().to_string();
        assert!(err.contains("record 1 is missing"), "{err}");
        assert!(err.contains("refusing to resume"), "{err}");

        let mut garbage = ok.clone();
        garbage.insert(2, b"{\"seq\":2,".to_vec());
        let err = reassemble("s3://b/p", &run, garbage)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a journal record"), "{err}");

        let mut misnumbered = ok.clone();
        misnumbered.insert(2, record(7, 1, ev("r", "b")));
        let err = reassemble("s3://b/p", &run, misnumbered)
            .unwrap_err()
            .to_string();
        assert!(err.contains("says it is record 7"), "{err}");

        let mut no_header = ok;
        no_header.insert(0, record(0, 1, ev("r", "a")));
        let err = reassemble("s3://b/p", &run, no_header)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a journal header"), "{err}");
    }

    #[test]
    fn records_of_an_older_token_after_a_takeover_are_ignored_and_tokens_only_grow() {
        let run = RunId("r".into());
        let objects: BTreeMap<u64, Vec<u8>> = [
            (0, record(0, 1, hdr("r"))),
            (1, record(1, 1, ev("r", "a"))),
            (2, record(2, 2, took("r"))),
            (3, record(3, 1, ev("r", "late-from-the-old-holder"))),
            (4, record(4, 2, ev("r", "b"))),
        ]
        .into();
        let r = reassemble("s3://b/p", &run, objects.clone()).unwrap();
        let steps: Vec<String> = r
            .replay
            .events
            .iter()
            .map(|e| match &e.kind {
                EventKind::StepSucceeded { step, .. } => step.as_str().to_string(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(steps, ["a", "b"]);
        assert_eq!(r.token, 2);
        assert!(
            r.replay
                .notes
                .iter()
                .any(|n| n.contains("record 3 ignored")),
            "{:?}",
            r.replay.notes
        );

        let mut unannounced = objects.clone();
        unannounced.insert(4, record(4, 5, ev("r", "b")));
        let err = reassemble("s3://b/p", &run, unannounced)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no lock record gave it"), "{err}");

        let mut backwards = objects;
        backwards.insert(4, record(4, 1, took("r")));
        let err = reassemble("s3://b/p", &run, backwards)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokens only grow"), "{err}");
    }

    #[test]
    fn an_expired_lease_of_another_run_is_broken_only_explicitly_and_recorded() {
        let mem = Arc::new(Mem::default());
        let lease = Duration::from_millis(300);
        let s = store(&mem, &["team-state"], lease);
        // Run a stops renewing (as a paused, aborted or frozen run does).
        s.acquire("rb", &RunId("a".into()), false).unwrap().keep();
        std::thread::sleep(lease + lease / 3);
        match s.acquire("rb", &RunId("b".into()), false) {
            Err(LockError::Held { holder, stale, .. }) => {
                assert_eq!(holder.run_id.0, "a");
                assert!(stale, "an expired lease is stale");
            }
            other => panic!("{other:?}"),
        }
        let b = s.acquire("rb", &RunId("b".into()), true).unwrap();
        assert_eq!(b.token(), 2);
        assert_eq!(b.replaced().0.map(|h| h.run_id.0.as_str()), Some("a"));
        let _j = s.create(&header("b"), "x", &b).unwrap();
        let r = s.reassemble(&RunId("b".into())).unwrap();
        assert!(
            r.replay
                .notes
                .iter()
                .any(|n| n.contains("broke the lock of run a")),
            "{:?}",
            r.replay.notes
        );
        b.release();
    }

    #[test]
    fn a_holder_writes_only_inside_its_lease_with_a_margin() {
        let t0 = Instant::now();
        assert_eq!(
            safety_margin(Duration::from_secs(30)),
            Duration::from_secs(5)
        );
        assert_eq!(
            safety_margin(Duration::from_millis(120)),
            Duration::from_millis(50)
        );
        assert_eq!(valid_until(t0, LEASE), t0 + Duration::from_secs(25));
        let body = LockBody {
            holder: LockHolder::current(&RunId("r".into())),
            token: 1,
            lease_ms: 30_000,
            renewed_at: jiff::Timestamp::from_second(100).unwrap(),
            released: false,
        };
        assert!(!body.looks_expired(jiff::Timestamp::from_second(129).unwrap()));
        assert!(body.looks_expired(jiff::Timestamp::from_second(131).unwrap()));
    }

    #[test]
    fn one_of_two_wins_the_lock_and_the_token_grows_on_every_acquisition() {
        let mem = Arc::new(Mem::default());
        let s = store(&mem, &["team-state"], LEASE);
        let a = s.acquire("rb", &RunId("a".into()), false).unwrap();
        assert_eq!(a.token(), 1);
        match s.acquire("rb", &RunId("b".into()), true) {
            Err(LockError::Held { holder, stale, .. }) => {
                assert_eq!(holder.run_id.0, "a");
                assert!(!stale, "a live lease is never stale");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.holder("rb").unwrap().unwrap().0.run_id.0, "a");
        a.release();
        assert!(s.holder("rb").unwrap().is_none(), "released");
        let b = s.acquire("rb", &RunId("b".into()), false).unwrap();
        assert_eq!(b.token(), 2);
        b.release();
    }

    #[test]
    fn a_holder_whose_lock_was_taken_over_cannot_write_and_its_records_stop() {
        let mem = Arc::new(Mem::default());
        let s = store(&mem, &["team-state"], LEASE);
        let run = RunId("r".into());
        let a = s.acquire("rb", &run, false).unwrap();
        let mut ja = s.create(&header("r"), "x", &a).unwrap();
        ja.append(&event("r", "one"), None).unwrap();
        // Another process takes the run over (here: overwrites the lock with token 2,
        // as a takeover of an expired lease does) and writes its lock record.
        let key = s.primary().lock_key("rb");
        let mut body: LockBody = serde_json::from_slice(
            &mem.objects.lock().unwrap()[&("team-state".into(), key.clone())].0,
        )
        .unwrap();
        body.token = 2;
        mem.overwrite("team-state", &key, serde_json::to_vec(&body).unwrap());
        let read = s.reassemble(&run).unwrap();
        let journal_key = s.primary().record_key(&run, read.next_seq);
        mem.overwrite(
            "team-state",
            &journal_key,
            record(read.next_seq, 2, took("r")),
        );
        // A's next record collides with the takeover record: A lost the run.
        let err = ja.append(&event("r", "two"), None).unwrap_err();
        assert!(matches!(err, JournalError::Fenced(_)), "{err}");
        assert!(a.lost().is_some());
        // And every later write is refused before it is sent.
        let err = ja.append(&event("r", "three"), None).unwrap_err();
        assert!(matches!(err, JournalError::Fenced(_)), "{err}");
        let r = s.reassemble(&run).unwrap();
        assert_eq!(r.replay.events.len(), 1);
        assert_eq!(r.token, 2);
    }

    #[test]
    fn a_renewal_refused_or_a_lease_run_out_stops_the_writer() {
        let mem = Arc::new(Mem::default());
        let lease = Duration::from_millis(400);
        let s = store(&mem, &["team-state"], lease);
        let run = RunId("r".into());
        // Renewal refused: the lock object changed under us.
        let a = s.acquire("rb", &run, false).unwrap();
        let mut ja = s.create(&header("r"), "x", &a).unwrap();
        let key = s.primary().lock_key("rb");
        mem.remove("team-state", &key);
        mem.overwrite("team-state", &key, b"{}".to_vec());
        std::thread::sleep(lease);
        let err = ja.append(&event("r", "a"), None).unwrap_err().to_string();
        assert!(err.contains("lost the lock"), "{err}");

        // Lease run out: the bucket stops answering, so nothing renews it.
        let mem = Arc::new(Mem::default());
        let s = store(&mem, &["team-state"], lease);
        let b = s.acquire("rb", &run, false).unwrap();
        let mut jb = s.create(&header("r"), "x", &b).unwrap();
        mem.set_down("team-state", true);
        std::thread::sleep(lease + lease / 2);
        mem.set_down("team-state", false);
        // The renewal in the fence finds the lock unchanged (nobody took it): the
        // holder may go on.
        jb.append(&event("r", "a"), None).unwrap();
        mem.set_down("team-state", true);
        std::thread::sleep(lease + lease / 2);
        let err = jb.append(&event("r", "b"), None).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
        assert!(b.lost().is_some());
    }

    /// A region that holds a renewal past its deadline may still apply it: the lock
    /// object then carries our own token under an ETag we never heard. The next
    /// renewal's If-Match fails, and that must not read as a takeover.
    #[test]
    fn a_renewal_that_landed_though_its_answer_was_lost_is_no_takeover() {
        let mem = Arc::new(Mem::default());
        let lease = Duration::from_millis(1500);
        let s = store(&mem, &["team-state"], lease);
        let run = RunId("r".into());
        let l = s.acquire("rb", &run, false).unwrap();
        let mut j = s.create(&header("r"), "x", &l).unwrap();
        mem.set_lose_answers("team-state", true);
        // Renewals run every third of the lease: at least one lands unheard.
        std::thread::sleep(lease / 2 + lease / 4);
        mem.set_lose_answers("team-state", false);
        std::thread::sleep(lease / 4);
        j.append(&event("r", "a"), None).unwrap();
        assert!(l.lost().is_none(), "{:?}", l.lost());
        // Someone else's lock object still is a takeover.
        let key = s.primary().lock_key("rb");
        mem.overwrite("team-state", &key, b"{}".to_vec());
        std::thread::sleep(lease);
        let err = j.append(&event("r", "b"), None).unwrap_err().to_string();
        assert!(err.contains("lost the lock"), "{err}");
    }

    #[test]
    fn records_go_to_every_bucket_and_one_is_enough_and_reads_merge() {
        let mem = Arc::new(Mem::default());
        let s = store(&mem, &["state-use1", "state-usw2"], LEASE);
        let run = RunId("r".into());
        let l = s.acquire("rb", &run, false).unwrap();
        let mut j = s.create(&header("r"), "runbook text", &l).unwrap();
        j.append(&event("r", "a"), None).unwrap();
        mem.set_down("state-use1", true);
        j.append(&event("r", "b"), None).unwrap();
        j.append(&event("r", "c"), None).unwrap();
        // Reads use whatever answers.
        let r = s.reassemble(&run).unwrap();
        assert_eq!(r.replay.events.len(), 3);
        assert!(r.replay.notes.iter().any(|n| n.contains("state-use1")));
        assert_eq!(s.runbook_copy(&run).unwrap(), "runbook text");
        // Back, with a hole (records 2 and 3 only in the other bucket): merged.
        mem.set_down("state-use1", false);
        assert_eq!(s.reassemble(&run).unwrap().replay.events.len(), 3);
        // The only bucket left is behind: what it has is a complete-looking prefix,
        // so the read says what it could not see (and a resumption refuses it).
        mem.set_down("state-usw2", true);
        let r = s.reassemble(&run).unwrap();
        assert_eq!(r.replay.events.len(), 1);
        assert!(!r.unread.is_empty());
        mem.set_down("state-usw2", false);
        // Nothing reachable: a clear error, not an empty journal.
        mem.set_down("state-use1", true);
        mem.set_down("state-usw2", true);
        let err = j.append(&event("r", "d"), None).unwrap_err().to_string();
        assert!(err.contains("no state bucket accepted record 4"), "{err}");
        mem.set_down("state-use1", false);
        mem.set_down("state-usw2", false);
        l.release();
        assert_eq!(s.runs().unwrap().len(), 1);
    }
}
