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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::store::JournalError;
use crate::cloud::{CloudError, StateObjects};
use crate::engine::events::RunId;

mod approvals;
mod lease;
mod records;

pub use lease::{LockBody, S3Lock, safety_margin, valid_until};
pub use records::{Body, Reassembled, Record, S3Journal, reassemble};

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

    /// `s3://bucket/prefix[, ...]`, for messages.
    pub fn describe(&self) -> String {
        self.stores()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
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

#[cfg(test)]
mod tests;
