//! [`SimWorld`]: the handle the engine, the CLI and tests hold, and the path every call
//! takes (apply what is due, roll faults, check the region, run the service's rules,
//! log mutations).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::Deserialize;

use super::faults::{CallMeta, Failure, FaultSpec};
use super::state::{
    FaultState, LostWrites, OpAnswer, OpRecord, OutageMode, STATE_VERSION, SimMetricData, State,
    Window,
};
use crate::clock::Clock;
use crate::cloud::reach::{CallKind, ProbeFuture, Prober, Reach, ReachSettings, Service};
use crate::cloud::{Cloud, CloudError, CloudErrorKind, CloudResult};

/// The `format` field of a saved world.
const FORMAT: &str = "drpilot-sim-world";

/// The simulated world: every `cloud` trait, answered from one seeded, lazily computed
/// state on the run's clock. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct SimWorld {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    state: Mutex<State>,
    /// Talks to the servers of the local lab (`sim/lab.rs`), if any is bound.
    live: crate::cloud::live::LiveDataPlane,
    /// One caller at a time runs the lab's queued actions, in order.
    lab_lock: tokio::sync::Mutex<()>,
    /// The breaker every control-plane call goes through, as against AWS: a region
    /// that holds calls costs one probe timeout, not a deadline per call.
    reach: Reach,
    /// Every call as it was made, once [`SimWorld::record_calls`] asked for it (not
    /// saved with the world: it is for the tests that count and route calls).
    calls: Mutex<Option<Vec<Call>>>,
}

/// One call the world received, as its caller made it: before the breaker, so a call
/// refused at once because its region is known to be down is here too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The service's name, as in [`super::OPERATIONS`].
    pub service: &'static str,
    /// The API operation.
    pub operation: &'static str,
    /// The region it was sent to (`None` for the data plane).
    pub region: Option<String>,
    /// Whether it asks for a change.
    pub mutating: bool,
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimWorld")
            .field("seed", &self.seed())
            .finish_non_exhaustive()
    }
}

/// Why a saved world could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The JSON is not a saved world.
    #[error("not a saved simulated world (expected \"format\": \"{FORMAT}\")")]
    NotAWorld,
    /// Saved by a different version of drpilot.
    #[error("saved world has format version {found}; this drpilot reads version {expected}")]
    Version {
        /// The file's version.
        found: u64,
        /// Ours.
        expected: u32,
    },
    /// The state inside does not parse.
    #[error("saved world is damaged: {0}")]
    Damaged(#[from] serde_json::Error),
}

/// Where a call is sent, for reachability and fault matching.
pub(crate) enum Route<'a> {
    /// A region given by the caller.
    Region(&'a str),
    /// The region of a bucket (S3 finds it from the bucket).
    Bucket(&'a str),
    /// Route 53's control plane, in us-east-1.
    Route53,
    /// The data plane: the service's own rules decide what answers.
    DataPlane,
}

/// The longest the world ever waits in one go (a year of virtual time).
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(365 * 86_400);

/// Route 53's control plane lives here.
pub(crate) const ROUTE53_REGION: &str = "us-east-1";

/// What happened to a call.
enum Outcome<T> {
    Answer(CloudResult<T>),
    Hang,
}

impl SimWorld {
    pub(crate) fn from_state(state: State, clock: Clock) -> Self {
        let reach = Reach::new(clock.clone(), ReachSettings::default());
        let world = Self {
            inner: Arc::new(Inner {
                clock,
                state: Mutex::new(state),
                live: crate::cloud::live::LiveDataPlane::new(),
                lab_lock: tokio::sync::Mutex::new(()),
                reach: reach.clone(),
                calls: Mutex::new(None),
            }),
        };
        reach.set_prober(Arc::new(SimProber {
            world: Arc::downgrade(&world.inner),
        }));
        world
    }

    /// The breaker the world's calls go through (settings from the runbook with
    /// [`Reach::configure`]).
    pub fn reach(&self) -> &Reach {
        &self.inner.reach
    }

    /// The state, current as of now. A poisoned lock (a panic elsewhere while holding
    /// it) still holds consistent data: every mutation completes before unlocking.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut s = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        s.advance(self.inner.clock.elapsed());
        s
    }

    /// Runs `f` on the state, current as of now.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// The real data planes of the local lab.
    pub(crate) fn live(&self) -> &crate::cloud::live::LiveDataPlane {
        &self.inner.live
    }

    pub(crate) fn lab_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.lab_lock
    }

    /// Whether any member is bound to a real local server.
    pub fn binds_local_servers(&self) -> bool {
        !self.lock().bindings.is_empty()
    }

    /// Sleeps on the run clock, at most [`MAX_SLEEP`]: durations from a restored
    /// snapshot can be anything, and the clock's scaling must not overflow.
    pub(crate) async fn sleep(&self, d: Duration) {
        self.inner.clock.sleep(d.min(MAX_SLEEP)).await;
    }

    /// Every service, backed by this world.
    pub fn cloud(&self) -> Cloud {
        Cloud {
            rds: Arc::new(self.clone()),
            elasticache: Arc::new(self.clone()),
            s3: Arc::new(self.clone()),
            route53: Arc::new(self.clone()),
            routing: Arc::new(self.clone()),
            ecs: Arc::new(self.clone()),
            autoscaling: Arc::new(self.clone()),
            sns: Arc::new(self.clone()),
            data: Arc::new(self.clone()),
            metrics: Arc::new(self.clone()),
            reach: self.inner.reach.clone(),
            accounts: Default::default(),
        }
    }

    /// The run clock the world lives on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The seed the world was built with.
    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// Every mutating call received, in order of arrival, with its outcome: the chaos
    /// harness proves from it that no mutation was applied twice.
    pub fn op_log(&self) -> Vec<OpRecord> {
        self.lock().log.clone()
    }

    /// From now on, keeps every call made ([`SimWorld::calls`]).
    pub fn record_calls(&self) {
        let mut calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get_or_insert_with(Vec::new);
    }

    /// Every call made since [`SimWorld::record_calls`], in order (empty before it).
    pub fn calls(&self) -> Vec<Call> {
        let calls = self.inner.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.clone().unwrap_or_default()
    }

    /// Adds a fault, active from now on its own terms (`from` and `until` count from the
    /// world's epoch, like `--sim-config`'s).
    pub fn inject(&self, spec: FaultSpec) {
        self.lock().faults.push(FaultState { spec, injected: 0 });
    }

    /// Messages published to SNS topics so far, in order (a run's `sns:` notifications).
    pub fn published(&self) -> Vec<super::SimPublished> {
        self.raw_state().published.clone()
    }

    /// Records a publish without advancing the world: the notifier calls from its own
    /// thread, where the run's (possibly virtual) clock cannot be read.
    pub(super) fn record_publish(&self, make: impl FnOnce(usize) -> super::SimPublished) -> String {
        let mut s = self.raw_state();
        let p = make(s.published.len() + 1);
        let id = p.message_id.clone();
        s.published.push(p);
        id
    }

    fn raw_state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes lost by unplanned failovers and detaches so far: the achieved RPO.
    pub fn lost_writes(&self) -> Vec<LostWrites> {
        self.lock().lost_writes.clone()
    }

    /// The metrics put to CloudWatch so far (`drpilot readiness --cloudwatch`), in
    /// order of arrival.
    pub fn metric_data(&self) -> Vec<SimMetricData> {
        self.lock().metrics.clone()
    }

    /// The regions the world was built around (`params.from`, `params.to`).
    pub fn regions(&self) -> (String, String) {
        let s = self.lock();
        (s.from.clone(), s.to.clone())
    }

    /// Makes `region` unreachable from virtual time `from` (since the world's epoch)
    /// until `until` (`None`: for good): for tests that cut a region mid-run.
    pub fn make_unreachable(&self, region: &str, from: Duration, until: Option<Duration>) {
        let mut s = self.lock();
        s.regions
            .entry(region.to_string())
            .or_default()
            .unreachable
            .push(Window { from, until });
    }

    /// Sets whether the application in `region` is healthy (the HTTP model and the
    /// health checks that monitor it).
    pub fn set_app_healthy(&self, region: &str, healthy: bool) {
        let mut s = self.lock();
        s.regions.entry(region.to_string()).or_default().app_healthy = healthy;
    }

    /// The whole world as JSON, with times relative to its virtual epoch: saved beside
    /// the run's journal so a killed `--sim` run resumes against the same world.
    pub fn snapshot(&self) -> serde_json::Value {
        let s = self.lock();
        let state = serde_json::to_value(&*s).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "format": FORMAT,
            "version": STATE_VERSION,
            "saved_at_secs": s.now.as_secs_f64(),
            "state": state,
        })
    }

    /// A world saved by [`SimWorld::snapshot`], continuing on `clock` (a resumed run
    /// clock, so the saved times keep their meaning). Any JSON is refused cleanly.
    pub fn restore(saved: &serde_json::Value, clock: Clock) -> Result<SimWorld, RestoreError> {
        if saved.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(RestoreError::NotAWorld);
        }
        let version = saved.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(STATE_VERSION) {
            return Err(RestoreError::Version {
                found: version,
                expected: STATE_VERSION,
            });
        }
        let Some(state) = saved.get("state") else {
            return Err(RestoreError::NotAWorld);
        };
        let state = State::deserialize(state)?;
        if state.version != STATE_VERSION {
            return Err(RestoreError::Version {
                found: u64::from(state.version),
                expected: STATE_VERSION,
            });
        }
        // The world's times count from its own epoch; a run clock that started later
        // (a drill's second phase) is read on it.
        let clock = clock.rebased(state.origin);
        Ok(Self::from_state(state, clock))
    }

    /// Runs one call through the breaker of its (region, service), as the AWS backend
    /// does: refused at once while that region is known to be down, bounded by the
    /// breaker's deadline (a held call ends there), and its outcome learned.
    pub(crate) async fn call<T, F>(
        &self,
        service: &'static str,
        operation: &'static str,
        route: Route<'_>,
        mutating: bool,
        args: serde_json::Value,
        f: F,
    ) -> CloudResult<T>
    where
        F: FnOnce(&mut State, Duration) -> CloudResult<T>,
    {
        debug_assert!(
            super::faults::known_operation(Some(service), operation),
            "{service} {operation} is not in sim::OPERATIONS: faults could not name it"
        );
        let region = {
            let s = self.lock();
            match route {
                Route::Region(r) => Some(r.to_string()),
                Route::Bucket(b) => s.buckets.get(b).map(|b| b.region.clone()),
                Route::Route53 => Some(ROUTE53_REGION.to_string()),
                Route::DataPlane => None,
            }
        };
        if let Some(calls) = self
            .inner
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            calls.push(Call {
                service,
                operation,
                region: region.clone(),
                mutating,
            });
        }
        match (&region, Service::parse(service)) {
            (Some(r), Some(svc)) => {
                let kind = if mutating {
                    CallKind::Write
                } else {
                    CallKind::Read
                };
                let call = self.answer(service, operation, region.clone(), mutating, args, f);
                self.inner.reach.call(operation, r, svc, kind, call).await
            }
            _ => {
                self.answer(service, operation, region, mutating, args, f)
                    .await
            }
        }
    }

    /// Answers one call: applies what is due, rolls the faults, waits out injected
    /// latency and the region's own (on the run clock), checks the region is reachable
    /// for the service, runs `f` (the service's rules), logs it if it mutates, and
    /// answers or hangs (a held call in a region's outage, or a hang fault).
    async fn answer<T, F>(
        &self,
        service: &'static str,
        operation: &'static str,
        region: Option<String>,
        mutating: bool,
        args: serde_json::Value,
        f: F,
    ) -> CloudResult<T>
    where
        F: FnOnce(&mut State, Duration) -> CloudResult<T>,
    {
        let reach_name = Service::parse(service).map(Service::as_str);
        let (meta, decision, region_latency) = {
            let mut s = self.lock();
            let region_latency = region
                .as_deref()
                .map(|r| s.region_behaviour(r).1)
                .unwrap_or_default();
            let meta = CallMeta {
                service,
                operation,
                region,
                mutating,
            };
            let now = s.now;
            let decision = s.decide_faults(&meta, now);
            (meta, decision, region_latency)
        };
        let latency = decision.latency + region_latency;
        if !latency.is_zero() {
            self.sleep(latency).await;
        }
        let outcome = {
            let mut s = self.lock();
            let now = s.now;
            let region = meta.region.as_deref();
            let injected = |kind: CloudErrorKind, code: &Option<String>, message: &str| {
                let mut e = CloudError::new(kind, operation, region, message);
                e.code = code.clone();
                e
            };
            let (outcome, applied, is_injected) = match &decision.failure {
                Some(Failure::Error {
                    kind,
                    code,
                    message,
                    after_apply: false,
                }) => (
                    Outcome::Answer(Err(injected(*kind, code, message))),
                    false,
                    true,
                ),
                Some(Failure::Hang { after_apply: false }) => (Outcome::Hang, false, true),
                failure => {
                    let down = match (route_checks_region(&meta), region, reach_name) {
                        (true, Some(r), Some(name)) if !s.reachable(r, name, now) => {
                            Some(s.region_behaviour(r).0)
                        }
                        _ => None,
                    };
                    if down == Some(OutageMode::Hold) {
                        // No answer: the caller's deadline ends the call. Nothing
                        // reached the service.
                        (Outcome::Hang, false, false)
                    } else {
                        let result = if down.is_some() {
                            Err(CloudError::new(
                                CloudErrorKind::Unreachable,
                                operation,
                                region,
                                format!(
                                    "could not connect to the {service} endpoint in {}: connection refused",
                                    region.unwrap_or("?")
                                ),
                            ))
                        } else {
                            f(&mut s, now)
                        };
                        let applied = mutating && result.is_ok();
                        match failure {
                            Some(Failure::Error {
                                kind,
                                code,
                                message,
                                ..
                            }) => (
                                Outcome::Answer(Err(injected(*kind, code, message))),
                                applied,
                                true,
                            ),
                            Some(Failure::Hang { .. }) => (Outcome::Hang, applied, true),
                            None => (Outcome::Answer(result), applied, false),
                        }
                    }
                }
            };
            if mutating {
                let answer = match &outcome {
                    Outcome::Answer(Ok(_)) => OpAnswer::Ok,
                    Outcome::Answer(Err(e)) => OpAnswer::Error {
                        kind: e.kind,
                        code: e.code.clone(),
                        message: e.message.clone(),
                    },
                    Outcome::Hang => OpAnswer::Hung,
                };
                let seq = s.log.len() as u64;
                s.log.push(OpRecord {
                    seq,
                    at: now,
                    service: service.to_string(),
                    operation: operation.to_string(),
                    region: meta.region.clone(),
                    args,
                    applied,
                    answer,
                    injected: is_injected,
                });
            }
            outcome
        };
        // What the call changed in the simulated world happens to the local lab's
        // servers before the caller hears back.
        self.run_lab().await;
        match outcome {
            Outcome::Answer(r) => r,
            Outcome::Hang => std::future::pending().await,
        }
    }
}

/// Answers the breaker's probes from the world: a region (for a service) in an
/// outage holds the probe or refuses it as its outage mode says, others answer after
/// the region's latency. Probes roll no faults and draw no random numbers, so they
/// change nothing a seed decides.
struct SimProber {
    world: Weak<Inner>,
}

impl Prober for SimProber {
    fn probe(&self, region: &str, service: Service, _endpoint: Option<&str>) -> ProbeFuture {
        let op = service.probe_operation();
        let Some(inner) = self.world.upgrade() else {
            return Box::pin(async move { (op, Ok(())) });
        };
        let world = SimWorld { inner };
        let region = region.to_string();
        Box::pin(async move {
            let (down, (mode, latency)) = {
                let s = world.lock();
                (
                    !s.reachable(&region, service.as_str(), s.now),
                    s.region_behaviour(&region),
                )
            };
            if !latency.is_zero() {
                world.sleep(latency).await;
            }
            match (down, mode) {
                (false, _) => (op, Ok(())),
                (true, OutageMode::Hold) => std::future::pending().await,
                (true, OutageMode::Reset) => (
                    op,
                    Err(CloudError::new(
                        CloudErrorKind::Unreachable,
                        op,
                        Some(&region),
                        "connection refused",
                    )),
                ),
            }
        })
    }
}

/// Data-plane calls have no single endpoint region: their rules decide reachability.
fn route_checks_region(meta: &CallMeta) -> bool {
    meta.service != "dataplane"
}

/// An error the world's rules return, with AWS's error code.
pub(crate) fn fail(
    kind: CloudErrorKind,
    operation: &str,
    region: Option<&str>,
    code: &str,
    message: impl Into<String>,
) -> CloudError {
    let e = CloudError::new(kind, operation, region, message);
    if code.is_empty() {
        e
    } else {
        e.with_code(code)
    }
}
