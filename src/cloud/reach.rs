//! Region reachability: what a run knows about each region's endpoints, and the circuit
//! breaker that keeps a silent region from costing a timeout per call.
//!
//! A region in an outage usually does not refuse connections: requests to it hang until
//! the caller gives up. Without memory every read against it waits its whole deadline,
//! every retry again, and a failover spends minutes on checks of the very region it is
//! leaving. [`Reach`] is that memory, one per (region, service):
//!
//! - **Probed at the start.** [`Reach::probe`] sends one cheap signed read per
//!   (region, service) the runbook uses, all at once. An answer of any kind (even an
//!   error response: the endpoint spoke) is *reachable*, or *slow* when it took longer
//!   than [`ReachSettings::slow_after`]; no answer within
//!   [`ReachSettings::probe_timeout`], or a failed connection, is *unreachable*.
//! - **A breaker.** While a target is unreachable every call to it fails at once with
//!   [`CloudErrorKind::Unreachable`] and the code [`REGION_UNREACHABLE`] ("not sent"),
//!   instead of waiting again. Once per [`ReachSettings::reprobe_every`] the next call
//!   starts a half-open probe and waits for it (at most the probe timeout): a region
//!   that answers again is used again.
//! - **Slow is not dead.** A probe that got no answer within its timeout keeps
//!   listening for [`ReachSettings::patience`]: a late answer turns the verdict into
//!   *slow*, and later calls to a slow target get deadlines that fit its latency.
//! - **Learned from calls.** A call that got no answer (a failed connection or a
//!   deadline) makes the target suspect and starts a confirming probe; one that got any
//!   answer proves it alive. A single lost request never takes a region out.
//! - **Deadlines.** Reads get [`ReachSettings::read_timeout`] per call (SDK retries
//!   included), mutations [`ReachSettings::write_timeout`]; both stretch for a slow
//!   target. A call waiting on a first verdict is cut short when the verdict is
//!   *unreachable* (a read), or waits for the verdict before it is sent (a mutation: a
//!   change must not be sent into a region that may hold it and apply it later).
//!
//! Every change of a verdict is a [`RegionStatus`], handed to subscribers (the engine
//! turns them into `region_status` events) and logged. Time is the run's [`Clock`], so
//! the simulated world's held connections and a `--sim-speed max` run behave the same.
//!
//! The backends (the AWS SDK, the simulated world) route every call through
//! [`Reach::call`] and answer probes through [`Prober`]; actions never see any of it
//! except as errors that arrive sooner.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::{CloudError, CloudErrorKind, CloudResult};
use crate::clock::Clock;

/// The error code of a call the breaker refused without sending it: its region (for
/// that service) is known to be unreachable. Unlike a call that got no answer, its
/// outcome is known: nothing was sent.
pub const REGION_UNREACHABLE: &str = "RegionUnreachable";

/// Whether `e` is the breaker's refusal: the target is known to be down and the call
/// was not sent.
pub fn is_region_unreachable(e: &CloudError) -> bool {
    e.kind == CloudErrorKind::Unreachable && e.code.as_deref() == Some(REGION_UNREACHABLE)
}

/// A service whose regional endpoints drpilot calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// RDS (Aurora).
    Rds,
    /// ElastiCache.
    Elasticache,
    /// S3.
    S3,
    /// CloudWatch (replication lag and backlog metrics).
    Cloudwatch,
    /// Route 53's control plane (served from us-east-1).
    Route53,
    /// Route 53 ARC's data plane (`route53-recovery-cluster`), at a cluster endpoint.
    RoutingControl,
    /// IAM (served from us-east-1).
    Iam,
    /// STS.
    Sts,
    /// Amazon ECS.
    Ecs,
    /// EC2 Auto Scaling.
    Autoscaling,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 10] = [
        Service::Rds,
        Service::Elasticache,
        Service::S3,
        Service::Cloudwatch,
        Service::Route53,
        Service::RoutingControl,
        Service::Iam,
        Service::Sts,
        Service::Ecs,
        Service::Autoscaling,
    ];

    /// The name events and messages use: the service's SigV4 signing name, as the AWS
    /// emulator's fault rules and blackholes use it (`monitoring` is CloudWatch's).
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Rds => "rds",
            Service::Elasticache => "elasticache",
            Service::S3 => "s3",
            Service::Cloudwatch => "monitoring",
            Service::Route53 => "route53",
            Service::RoutingControl => "route53-recovery-cluster",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Ecs => "ecs",
            Service::Autoscaling => "autoscaling",
        }
    }

    /// The cheap read a probe of this service sends: what the AWS SDK backend sends, and
    /// the name the simulated world's probes report.
    pub fn probe_operation(self) -> &'static str {
        match self {
            Service::Rds => "DescribeGlobalClusters",
            Service::Elasticache => "DescribeGlobalReplicationGroups",
            Service::S3 => "ListBuckets",
            Service::Cloudwatch => "ListMetrics",
            Service::Route53 => "GetHostedZoneCount",
            Service::RoutingControl => "ListRoutingControls",
            Service::Iam => "GetAccountSummary",
            Service::Sts => "GetCallerIdentity",
            Service::Ecs => "ListClusters",
            Service::Autoscaling => "DescribeAccountLimits",
        }
    }

    /// The service for a name as [`Service::as_str`] writes it (`cloudwatch` too).
    pub fn parse(name: &str) -> Option<Service> {
        match name {
            "cloudwatch" => Some(Service::Cloudwatch),
            _ => Service::ALL.into_iter().find(|s| s.as_str() == name),
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of one (region, service).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// It answers.
    Reachable,
    /// It answers, but slower than `slow_after`: alive, with longer deadlines.
    Slow,
    /// No answer (a failed connection, or nothing within the deadline): calls fail at
    /// once until a probe gets an answer again.
    Unreachable,
}

impl Reachability {
    /// The word for people and for `--output json` alike.
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Reachable => "reachable",
            Reachability::Slow => "slow",
            Reachability::Unreachable => "unreachable",
        }
    }
}

/// A verdict about one (region, service), as it changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegionStatus {
    /// The region.
    pub region: String,
    /// The service's signing name (`rds`, `s3`, `route53-recovery-cluster`, ...).
    pub service: String,
    /// The verdict.
    pub status: Reachability,
    /// How long the answer that decided it took (none when nothing answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// How it was decided: which probe or call, and what it saw.
    pub decided_by: String,
}

/// The deadlines and intervals of the breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReachSettings {
    /// How long a probe waits for an answer before the target counts as unreachable.
    pub probe_timeout: Duration,
    /// Deadline of a read (SDK retries included).
    pub read_timeout: Duration,
    /// Deadline of one attempt of a mutation.
    pub write_timeout: Duration,
    /// How often an unreachable target is probed again (half-open), at most.
    pub reprobe_every: Duration,
    /// An answer slower than this makes a target slow rather than reachable.
    pub slow_after: Duration,
    /// How long a probe keeps listening for a late answer after its timeout, so a slow
    /// target is told from a dead one; also the longest deadline a slow target gets.
    pub patience: Duration,
}

/// [`ReachSettings::probe_timeout`] unless the runbook says otherwise.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// [`ReachSettings::read_timeout`] unless the runbook says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// [`ReachSettings::write_timeout`] unless the runbook says otherwise.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for ReachSettings {
    /// AWS answers control-plane reads in well under a second, cross-region included:
    /// 3 s without a byte is an outage, not latency, and 10 s bounds a read that is
    /// merely slow or throttled. Mutations keep 20 s (a failover's call may take a few
    /// seconds to be accepted). A dead region is asked again every 10 s.
    fn default() -> Self {
        Self {
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            reprobe_every: Duration::from_secs(10),
            slow_after: Duration::from_secs(2),
            patience: Duration::from_secs(60),
        }
    }
}

/// Whether a call changes anything: a mutation is never sent while its target's
/// verdict is pending or unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// A read or a poll.
    Read,
    /// A change.
    Write,
}

/// Sends one cheap signed read to a (region, service) for [`Reach`]: any answer, an
/// error response included, is `Ok`; only "no answer" (a failed connection, a timeout:
/// [`CloudErrorKind::Unreachable`]) is an error. The future must not be bounded by the
/// prober itself beyond [`ReachSettings::patience`]: the breaker decides when to stop
/// listening.
pub trait Prober: Send + Sync {
    /// Probes `service` in `region` (at `endpoint`, for a service whose endpoints are
    /// not the region's own, such as an ARC cluster's); the operation's name for
    /// messages comes with the result.
    fn probe(&self, region: &str, service: Service, endpoint: Option<&str>) -> ProbeFuture;
}

/// Something a run will call: probed at its start.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeTarget {
    /// The region.
    pub region: String,
    /// The service.
    pub service: Service,
    /// The endpoint, when the service's is not the region's own (an ARC cluster's).
    pub endpoint: Option<String>,
}

/// What a [`Prober`] returns: the operation it sent, and whether anything answered.
pub type ProbeFuture = Pin<Box<dyn Future<Output = (&'static str, CloudResult<()>)> + Send>>;

type Key = (String, Service);

#[derive(Clone, Debug, PartialEq)]
enum Health {
    /// Never decided (a first probe may be in flight).
    Unknown,
    /// Answering, this fast (the last answer's latency).
    Up { latency: Duration },
    /// Not answering since `since` (run clock), for `reason`.
    Down {
        since: Duration,
        since_at: jiff::Timestamp,
        reason: String,
        /// Probes that found it still down since: a change callers waiting for a
        /// half-open probe's verdict wake on.
        tries: u64,
    },
}

struct Entry {
    health: watch::Sender<Health>,
    /// A probe is in flight.
    probing: bool,
    /// When a probe was last started (run clock).
    last_probe: Option<Duration>,
    /// The last verdict published, to publish changes only.
    published: Option<Reachability>,
    /// Where a probe is sent, when the service's endpoint is not the region's own.
    endpoint: Option<String>,
    /// When the backend last heard anything from it (run clock).
    last_heard: Option<Duration>,
}

impl Entry {
    fn new() -> Self {
        Self {
            health: watch::Sender::new(Health::Unknown),
            probing: false,
            last_probe: None,
            published: None,
            endpoint: None,
            last_heard: None,
        }
    }
}

struct Inner {
    clock: Clock,
    settings: Mutex<ReachSettings>,
    entries: Mutex<BTreeMap<Key, Entry>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<RegionStatus>>>,
    /// Every verdict published, in order, for late subscribers and reports.
    history: Mutex<Vec<RegionStatus>>,
    prober: Mutex<Option<Arc<dyn Prober>>>,
}

/// Reachability of every (region, service) a run calls, with its circuit breakers.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Reach {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("settings", &self.settings())
            .finish_non_exhaustive()
    }
}

impl Default for Reach {
    fn default() -> Self {
        Self::new(Clock::real(), ReachSettings::default())
    }
}

/// Whether a call's error proves that the endpoint answered.
fn answered(r: &CloudResult<impl Sized>) -> bool {
    !matches!(r, Err(e) if e.kind == CloudErrorKind::Unreachable)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `1.2s`, `84ms`: short durations for messages.
fn short(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        let s = d.as_secs_f64();
        if s >= 10.0 {
            format!("{s:.0}s")
        } else {
            format!("{s:.1}s")
        }
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Reach {
    /// A breaker on `clock` (the run's: virtual in a simulated run) with `settings`.
    pub fn new(clock: Clock, settings: ReachSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                settings: Mutex::new(settings),
                entries: Mutex::new(BTreeMap::new()),
                subscribers: Mutex::new(Vec::new()),
                history: Mutex::new(Vec::new()),
                prober: Mutex::new(None),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> ReachSettings {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// New deadlines and intervals from now on (a runbook's `[defaults]`, known once
    /// the backend exists); what is known of each target stays.
    pub fn configure(&self, settings: ReachSettings) {
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// Who answers probes: the backend that owns this breaker.
    /// Who answers probes: the backend that owns this breaker. The first one stays:
    /// connections derived from it (another account's assumed role) share the breaker
    /// but probe with the caller's own identity, so a role that cannot be assumed does
    /// not make every region look silent.
    pub fn set_prober(&self, prober: Arc<dyn Prober>) {
        let mut p = self.inner.prober_lock();
        if p.is_none() {
            *p = Some(prober);
        }
    }

    /// The backend heard from `service` in `region` (any response, an error or a
    /// throttle included): a deadline that passes while the endpoint keeps answering
    /// is not an outage. Backends that see responses below the call (the AWS SDK's
    /// interceptors see every attempt) tell the breaker here.
    pub fn heard(&self, region: &str, service: Service) {
        let now = self.inner.clock.elapsed();
        let mut entries = self.entries();
        if let Some(e) = entries.get_mut(&(region.to_string(), service)) {
            e.last_heard = Some(now);
        }
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<Key, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every verdict published so far, in order, and a channel that carries the ones
    /// to come.
    pub fn subscribe(&self) -> (Vec<RegionStatus>, mpsc::UnboundedReceiver<RegionStatus>) {
        let (tx, rx) = mpsc::unbounded_channel();
        // Under the history's lock, so nothing is published between the two.
        let history = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        (history.clone(), rx)
    }

    /// The current verdict of every target decided so far.
    pub fn current(&self) -> Vec<RegionStatus> {
        let history = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        let mut last: BTreeMap<(String, String), RegionStatus> = BTreeMap::new();
        for s in history.iter() {
            last.insert((s.region.clone(), s.service.clone()), s.clone());
        }
        last.into_values().collect()
    }

    /// Every verdict once the probes in flight for a first verdict have one (at most a
    /// probe timeout from now): what `preflight` and the guided briefing show.
    pub async fn verdicts(&self) -> Vec<RegionStatus> {
        let pending: Vec<watch::Receiver<Health>> = self
            .entries()
            .values()
            .filter(|e| e.probing && matches!(*e.health.borrow(), Health::Unknown))
            .map(|e| e.health.subscribe())
            .collect();
        let bound = self.inner.clock.to_real(self.settings().probe_timeout);
        let _ = tokio::time::timeout(bound, async {
            for mut rx in pending {
                let _ = rx.wait_for(|h| !matches!(h, Health::Unknown)).await;
            }
        })
        .await;
        self.current()
    }

    /// What is known of `service` in `region` now (`None`: nothing yet).
    pub fn status(&self, region: &str, service: Service) -> Option<Reachability> {
        let entries = self.entries();
        entries
            .get(&(region.to_string(), service))
            .and_then(|e| match &*e.health.borrow() {
                Health::Unknown => None,
                Health::Up { latency } => Some(self.up_kind(*latency)),
                Health::Down { .. } => Some(Reachability::Unreachable),
            })
    }

    fn up_kind(&self, latency: Duration) -> Reachability {
        if latency > self.settings().slow_after {
            Reachability::Slow
        } else {
            Reachability::Reachable
        }
    }

    /// Probes every target at once (those already probing or known to answer are left
    /// alone; those known down are asked again), without waiting: verdicts arrive
    /// through [`Reach::subscribe`] within the probe timeout, and calls to a target
    /// wait for its verdict as described above.
    pub fn probe(&self, targets: impl IntoIterator<Item = ProbeTarget>) {
        let Some(prober) = self.inner.prober_lock().clone() else {
            return;
        };
        for t in targets {
            let key = (t.region, t.service);
            let start = {
                let mut entries = self.entries();
                let e = entries.entry(key.clone()).or_insert_with(Entry::new);
                if t.endpoint.is_some() {
                    e.endpoint = t.endpoint;
                }
                // Known up: nothing to ask. Known down (a drill's second phase, a
                // resume): asked again, so the run starts from a fresh picture.
                let fresh = !e.probing && !matches!(*e.health.borrow(), Health::Up { .. });
                if fresh {
                    e.probing = true;
                    e.last_probe = Some(self.inner.clock.elapsed());
                }
                fresh
            };
            if start {
                let me = self.clone();
                let prober = prober.clone();
                tokio::spawn(async move {
                    me.run_probe(key, prober, "probe", None).await;
                });
            }
        }
    }

    /// Where `service` in `region` is reached when that is not the region's own
    /// endpoint (an ARC cluster's): remembered for the probes that follow.
    pub fn note_endpoint(&self, region: &str, service: Service, endpoint: &str) {
        let mut entries = self.entries();
        let e = entries
            .entry((region.to_string(), service))
            .or_insert_with(Entry::new);
        if e.endpoint.as_deref() != Some(endpoint) {
            e.endpoint = Some(endpoint.to_string());
        }
    }

    /// Sends one probe and publishes what it shows; `verdict` hears whether the target
    /// answered within the probe timeout as soon as that is known. Keeps listening
    /// after that, up to the patience, so a late answer marks the target slow instead
    /// of dead.
    async fn run_probe(
        &self,
        key: Key,
        prober: Arc<dyn Prober>,
        why: &'static str,
        verdict: Option<tokio::sync::oneshot::Sender<bool>>,
    ) {
        let settings = &self.settings();
        let clock = &self.inner.clock;
        let started = clock.elapsed();
        let endpoint = self.entries().get(&key).and_then(|e| e.endpoint.clone());
        let mut fut = prober.probe(&key.0, key.1, endpoint.as_deref());
        let first = tokio::select! {
            r = &mut fut => Some(r),
            () = clock.sleep(settings.probe_timeout) => None,
        };
        // The verdict is in: another probe may start from now on (a half-open one, when
        // this one keeps listening below for a late answer on a connection that may be
        // dead even once the region is back).
        if let Some(e) = self.entries().get_mut(&key) {
            e.probing = false;
        }
        let tell = |alive: bool| {
            if let Some(v) = verdict {
                let _ = v.send(alive);
            }
        };
        match first {
            Some((op, Err(e))) if e.kind == CloudErrorKind::Unreachable => {
                self.mark_down(&key, format!("{why} ({op}): {}", e.message));
                tell(false);
            }
            Some((op, _)) => {
                let latency = clock.elapsed().saturating_sub(started);
                self.mark_up(
                    &key,
                    latency,
                    format!("{why} ({op}) answered in {}", short(latency)),
                );
                tell(true);
            }
            None => {
                self.mark_down(
                    &key,
                    format!("{why}: no answer within {}", short(settings.probe_timeout)),
                );
                tell(false);
                let rest = settings.patience.saturating_sub(settings.probe_timeout);
                if let Ok((op, r)) = tokio::time::timeout(clock.to_real(rest), fut).await
                    && answered(&r)
                {
                    let latency = clock.elapsed().saturating_sub(started);
                    self.mark_up(
                        &key,
                        latency,
                        format!("{why} ({op}) answered late, in {}", short(latency)),
                    );
                }
            }
        }
    }

    fn mark_up(&self, key: &Key, latency: Duration, decided_by: String) {
        let status = self.up_kind(latency);
        let publish = {
            let mut entries = self.entries();
            let e = entries.entry(key.clone()).or_insert_with(Entry::new);
            e.health.send_replace(Health::Up { latency });
            (e.published != Some(status)).then(|| {
                e.published = Some(status);
            })
        };
        if publish.is_some() {
            self.publish(RegionStatus {
                region: key.0.clone(),
                service: key.1.as_str().to_string(),
                status,
                latency_ms: Some(ms(latency)),
                decided_by,
            });
        }
    }

    fn mark_down(&self, key: &Key, reason: String) {
        let publish = {
            let mut entries = self.entries();
            let e = entries.entry(key.clone()).or_insert_with(Entry::new);
            let already = matches!(*e.health.borrow(), Health::Down { .. });
            if already {
                // Still down: the reason of the first verdict stands, the time of the
                // last try moves (it is `last_probe`), and whoever waits for this
                // probe's verdict hears it.
                e.health.send_modify(|h| {
                    if let Health::Down { tries, .. } = h {
                        *tries += 1;
                    }
                });
                false
            } else {
                e.health.send_replace(Health::Down {
                    since: self.inner.clock.elapsed(),
                    since_at: self.inner.clock.now(),
                    reason: reason.clone(),
                    tries: 0,
                });
                e.published = Some(Reachability::Unreachable);
                true
            }
        };
        if publish {
            self.publish(RegionStatus {
                region: key.0.clone(),
                service: key.1.as_str().to_string(),
                status: Reachability::Unreachable,
                latency_ms: None,
                decided_by: reason,
            });
        }
    }

    fn publish(&self, status: RegionStatus) {
        // Debug only: a run reports verdicts as `region_status` events (and its log
        // sink logs those); this line is for the breakers nobody subscribes to.
        tracing::debug!(
            target: "drpilot::reach",
            region = status.region.as_str(),
            service = status.service.as_str(),
            "{}: {}",
            status.status.as_str(),
            status.decided_by
        );
        let mut history = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push(status.clone());
        let mut subs = self
            .inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| tx.send(status.clone()).is_ok());
    }

    /// The breaker's refusal of `op`: the target is down.
    fn refusal(&self, op: &str, key: &Key, since_at: jiff::Timestamp, reason: &str) -> CloudError {
        let last = self
            .entries()
            .get(key)
            .and_then(|e| e.last_probe)
            .map(|t| self.inner.clock.elapsed().saturating_sub(t));
        let since = since_at.strftime("%H:%M:%S").to_string();
        let tried = last
            .map(|d| format!(", last tried {} ago", short(d)))
            .unwrap_or_default();
        CloudError::new(
            CloudErrorKind::Unreachable,
            op,
            Some(&key.0),
            format!(
                "{} {} unreachable since {since} UTC ({reason}){tried}; not sent",
                key.0,
                key.1.as_str()
            ),
        )
        .with_code(REGION_UNREACHABLE)
    }

    /// The deadline of a call of `kind` to a target last seen answering in `latency`.
    fn deadline(&self, kind: CallKind, latency: Option<Duration>) -> Duration {
        let s = &self.settings();
        let base = match kind {
            CallKind::Read => s.read_timeout,
            CallKind::Write => s.write_timeout,
        };
        match latency {
            // A slow target gets three of its answers' time, up to the patience.
            Some(l) if l > s.slow_after => base.max((l * 3).min(s.patience)),
            _ => base,
        }
    }

    /// Runs `call` (operation `op` to `service` in `region`) through the breaker: at
    /// once refused when the target is down, cut short or held back while its first
    /// verdict is pending, bounded by the deadline of `kind`, and its outcome learned.
    ///
    /// A call that gets no answer does not by itself declare the target down: it
    /// starts a confirming probe (see [`Reach::suspect`]).
    pub async fn call<T, F>(
        &self,
        op: &str,
        region: &str,
        service: Service,
        kind: CallKind,
        call: F,
    ) -> CloudResult<T>
    where
        F: Future<Output = CloudResult<T>>,
    {
        let key: Key = (region.to_string(), service);
        let clock = &self.inner.clock;
        let settings = &self.settings();
        // What is known, and whether this call is the one that asks a down target again.
        let (mut rx, half_open, pending, awaiting) = {
            let mut entries = self.entries();
            let e = entries.entry(key.clone()).or_insert_with(Entry::new);
            let rx = e.health.subscribe();
            let health = e.health.borrow().clone();
            let now = clock.elapsed();
            let due = e
                .last_probe
                .is_none_or(|t| now.saturating_sub(t) >= settings.reprobe_every);
            let half_open = matches!(health, Health::Down { .. }) && !e.probing && due;
            // Another call's half-open probe is on its way: its verdict (due within a
            // probe timeout) decides this call too.
            let awaiting = match &health {
                Health::Down { tries, .. } if e.probing && !half_open => Some(*tries),
                _ => None,
            };
            if half_open {
                e.probing = true;
                e.last_probe = Some(now);
            }
            let pending = matches!(health, Health::Unknown) && e.probing;
            (rx, half_open, pending, awaiting)
        };
        if half_open {
            let prober = self.inner.prober_lock().clone();
            let alive = match prober {
                Some(p) => {
                    let me = self.clone();
                    let k = key.clone();
                    // Spawned, so a late answer is still heard after this call gives up
                    // waiting; the call waits for the verdict only.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tokio::spawn(async move {
                        me.run_probe(k, p, "half-open probe", Some(tx)).await;
                    });
                    rx.await.unwrap_or(false)
                }
                None => {
                    // Nobody to probe with: let this call be the trial.
                    if let Some(e) = self.entries().get_mut(&key) {
                        e.probing = false;
                    }
                    true
                }
            };
            if !alive && let Some(err) = self.refuse_if_down(op, &key) {
                return Err(err);
            }
        } else if let Some(tries) = awaiting {
            let bound = clock.to_real(settings.probe_timeout + settings.probe_timeout);
            let _ = tokio::time::timeout(
                bound,
                rx.wait_for(|h| !matches!(h, Health::Down { tries: t, .. } if *t == tries)),
            )
            .await;
            if let Some(err) = self.refuse_if_down(op, &key) {
                return Err(err);
            }
        } else if let Some(err) = self.refuse_if_down(op, &key) {
            return Err(err);
        }
        if pending && kind == CallKind::Write {
            // A change is not sent into a region that may hold it and apply it later:
            // wait for the first verdict (it comes within the probe timeout).
            let bound = clock.to_real(settings.probe_timeout + settings.probe_timeout);
            let _ =
                tokio::time::timeout(bound, rx.wait_for(|h| !matches!(h, Health::Unknown))).await;
            if let Some(err) = self.refuse_if_down(op, &key) {
                return Err(err);
            }
        }
        let latency = match &*rx.borrow_and_update() {
            Health::Up { latency } => Some(*latency),
            _ => None,
        };
        let deadline = self.deadline(kind, latency);
        let started = clock.elapsed();
        let call = tokio::time::timeout(clock.to_real(deadline), call);
        // A read gives up as soon as its target is declared down.
        let declared_down = async {
            if kind == CallKind::Write {
                return std::future::pending().await;
            }
            let _ = rx.wait_for(|h| matches!(h, Health::Down { .. })).await;
        };
        let result = tokio::select! {
            r = call => match r {
                Ok(r) => r,
                Err(_) if self.heard_since(&key, started) => Err(CloudError::new(
                    CloudErrorKind::Transient,
                    op,
                    Some(region),
                    format!(
                        "no final answer within {}: the endpoint answers, but failed or throttled every try",
                        short(deadline)
                    ),
                )),
                Err(_) => Err(CloudError::new(
                    CloudErrorKind::Unreachable,
                    op,
                    Some(region),
                    format!("no answer within {}", short(deadline)),
                )),
            },
            () = declared_down => {
                // This read was sent: it is given up on, not refused. A read has no
                // effect, so the step resolves as for a refusal (same code).
                let mut e = self.refuse_if_down(op, &key).unwrap_or_else(|| {
                    CloudError::new(CloudErrorKind::Unreachable, op, Some(region), "")
                        .with_code(REGION_UNREACHABLE)
                });
                e.message = match e.message.strip_suffix("; not sent") {
                    Some(m) => format!("{m}; given up waiting for its answer"),
                    None => "its region was declared unreachable while it waited".into(),
                };
                return Err(e);
            }
        };
        let took = clock.elapsed().saturating_sub(started);
        if answered(&result) {
            self.answered_call(&key, took, op);
        } else if !self.heard_since(&key, started) {
            self.suspect(&key, op);
        }
        result
    }

    /// Whether the backend heard from `key` since `t`.
    fn heard_since(&self, key: &Key, t: Duration) -> bool {
        self.entries()
            .get(key)
            .and_then(|e| e.last_heard)
            .is_some_and(|h| h >= t)
    }

    /// A call got an answer: the target is up. A call's time includes the SDK's own
    /// retries and their pauses, so it never makes a target slow (probes, one attempt
    /// each, judge that); it only brings back one that was down, at the latency known.
    fn answered_call(&self, key: &Key, took: Duration, op: &str) {
        let (was, known) = {
            let entries = self.entries();
            match entries.get(key) {
                Some(e) => match &*e.health.borrow() {
                    Health::Up { latency } => (Some(true), Some(*latency)),
                    Health::Down { .. } => (Some(false), None),
                    Health::Unknown => (None, None),
                },
                None => (None, None),
            }
        };
        let slow_after = self.settings().slow_after;
        let latency = known.unwrap_or_else(|| took.min(slow_after));
        if was == Some(true) {
            // Still up: nothing new to publish, and the probe's latency stands.
            return;
        }
        self.mark_up(key, latency, format!("{op} answered in {}", short(took)));
    }

    /// The refusal when `key` is down now.
    fn refuse_if_down(&self, op: &str, key: &Key) -> Option<CloudError> {
        let (since_at, reason) = {
            let entries = self.entries();
            let e = entries.get(key)?;
            match &*e.health.borrow() {
                Health::Down {
                    since_at, reason, ..
                } => (*since_at, reason.clone()),
                _ => return None,
            }
        };
        Some(self.refusal(op, key, since_at, &reason))
    }

    /// A call to `key` got no answer: probe it (unless a probe is already on its way
    /// or it is known down), so one lost request does not take a region out but a dead
    /// one is declared within a probe timeout.
    fn suspect(&self, key: &Key, op: &str) {
        let Some(prober) = self.inner.prober_lock().clone() else {
            // Nobody to confirm with: the call's own silence decides.
            self.mark_down(key, format!("{op}: no answer"));
            return;
        };
        let start = {
            let mut entries = self.entries();
            let e = entries.entry(key.clone()).or_insert_with(Entry::new);
            let down = matches!(*e.health.borrow(), Health::Down { .. });
            let start = !e.probing && !down;
            if start {
                e.probing = true;
                e.last_probe = Some(self.inner.clock.elapsed());
            }
            start
        };
        if start {
            let me = self.clone();
            let key = key.clone();
            tokio::spawn(async move {
                me.run_probe(key, prober, "confirming probe", None).await;
            });
        }
    }

    /// Forgets `region`'s verdicts for every service: for tests and for a run that
    /// is told a region is back.
    #[cfg(test)]
    fn forget(&self, region: &str) {
        self.entries().retain(|k, _| k.0 != region);
    }
}

impl Inner {
    fn prober_lock(&self) -> MutexGuard<'_, Option<Arc<dyn Prober>>> {
        self.prober.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
