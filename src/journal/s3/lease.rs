//! The runbook lock in S3: its object, taking it, renewing its lease, fencing, release.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Inner, S3Location, S3State, remote};
use crate::cloud::{CloudErrorKind, PutCondition, StateObjects, is_condition_failed};
use crate::engine::events::RunId;
use crate::journal::lock::{LockError, LockHolder};

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
    pub(super) fn looks_expired(&self, now: jiff::Timestamp) -> bool {
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

impl S3State {
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
pub(super) struct LockSession {
    inner: Arc<Inner>,
    runbook: String,
    token: u64,
    pub(super) holder: LockHolder,
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

    pub(super) fn lose(&self, why: String) {
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
    pub(super) fn fence(self: &Arc<Self>) -> Result<u64, String> {
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
    pub(super) session: Arc<LockSession>,
    pub(super) replaced: Option<LockHolder>,
    pub(super) broken: bool,
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
