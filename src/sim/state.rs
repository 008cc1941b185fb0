//! The world's state: plain data, computed lazily from the clock.
//!
//! Nothing here runs in the background. Every pending operation stores the virtual
//! time at which it completes, and every call first applies what is due
//! ([`State::advance`]), so the world's state is a pure function of its history and the
//! current virtual time: a paused tokio runtime makes it instant, `--sim-speed`
//! compresses it, and a saved world resumes exactly. Times are [`Duration`]s since the
//! world's virtual epoch (the run clock's zero).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::faults::FaultSpec;
use super::rng::{Between, nth};
use crate::cloud::{CloudErrorKind, MemberRole, RecordSet, ReplicationStatus, RoutingControlState};

/// Version of the saved-world format; [`super::SimWorld::restore`] refuses others.
pub(crate) const STATE_VERSION: u32 = 1;

/// How long operations take. Each is drawn from its range by the world's seeded
/// generator; `--sim-config`'s `[timing]` table overrides any of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// `FailoverState` stays `pending` (verification) before the operation starts.
    pub aurora_pending: Between,
    /// Unplanned failover (`FailoverGlobalCluster` with `AllowDataLoss`): ~1-2 min.
    pub aurora_failover: Between,
    /// Switchover, on top of the secondary's catch-up (its lag): a few minutes.
    pub aurora_switchover: Between,
    /// A detached cluster's promotion to a standalone writer.
    pub aurora_detach: Between,
    /// A `ModifyDBCluster` of the capacity range: the cluster is `modifying` this long.
    #[serde(default = "default_aurora_modify")]
    pub aurora_modify: Between,
    /// Creation of the `rds:unplanned-global-failover-*` snapshot (from when the old
    /// primary's region is reachable).
    pub snapshot_create: Between,
    /// `CopyDBClusterSnapshot`.
    pub snapshot_copy: Between,
    /// Replication lag of each secondary, drawn once when the world is built.
    pub replication_lag: Between,
    /// `FailoverGlobalReplicationGroup`: about a minute.
    pub valkey_failover: Between,
    /// `DisassociateGlobalReplicationGroup`.
    pub valkey_disassociate: Between,
    /// A Route 53 change from PENDING to INSYNC: under a minute.
    pub route53_insync: Between,
    /// An `UpdateHealthCheck` reaching the health checkers.
    pub health_check_update: Between,
    /// How long health checkers take to notice a region going down or coming back
    /// (failure threshold times request interval).
    pub health_check_detect: Duration,
    /// A routing control's new state reaching the RECOVERY_CONTROL health checks bound
    /// to it. AWS publishes no figure; the data plane is built for fast failover, so a
    /// few seconds (an assumption, overridable in `[timing]`).
    #[serde(default = "default_routing_control_propagation")]
    pub routing_control_propagation: Between,
    /// An ECS task from PENDING to RUNNING (placement, image pull, start, health).
    #[serde(default = "default_ecs_task_start")]
    pub ecs_task_start: Between,
    /// A task of a scale-in from the stop ECS decides to gone from `runningCount` (its
    /// load balancer's deregistration delay, then the container's stop timeout).
    #[serde(default = "default_ecs_task_stop")]
    pub ecs_task_stop: Between,
    /// An Auto Scaling instance from Pending to InService (boot, lifecycle hooks, the
    /// health check grace period).
    #[serde(default = "default_asg_instance_launch")]
    pub asg_instance_launch: Between,
    /// An Auto Scaling instance from Terminating to gone (connection draining, shutdown).
    #[serde(default = "default_asg_instance_terminate")]
    pub asg_instance_terminate: Between,
    /// S3 replication of one object.
    pub s3_replication: Between,
    /// Response time of the simulated application (the HTTP model).
    pub http_latency: Between,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            aurora_pending: Between::secs(2, 8),
            aurora_failover: Between::secs(60, 120),
            aurora_switchover: Between::secs(120, 300),
            aurora_detach: Between::secs(30, 90),
            aurora_modify: default_aurora_modify(),
            snapshot_create: Between::secs(10, 30),
            snapshot_copy: Between::secs(30, 120),
            replication_lag: Between::millis(200, 1500),
            valkey_failover: Between::secs(45, 90),
            valkey_disassociate: Between::secs(20, 60),
            route53_insync: Between::secs(10, 55),
            health_check_update: Between::secs(10, 30),
            health_check_detect: Duration::from_secs(30),
            routing_control_propagation: default_routing_control_propagation(),
            ecs_task_start: default_ecs_task_start(),
            ecs_task_stop: default_ecs_task_stop(),
            asg_instance_launch: default_asg_instance_launch(),
            asg_instance_terminate: default_asg_instance_terminate(),
            s3_replication: Between::secs(5, 30),
            http_latency: Between::millis(20, 120),
        }
    }
}

fn default_aurora_modify() -> Between {
    Between::secs(5, 20)
}

fn default_routing_control_propagation() -> Between {
    Between::secs(2, 10)
}

/// A Fargate task takes tens of seconds to a minute or two to reach RUNNING, most of
/// it the image pull: an assumption, overridable in `[timing]`.
fn default_ecs_task_start() -> Between {
    Between::secs(30, 90)
}

/// ALB's default deregistration delay is 300 s; services that fail over usually lower
/// it, so the default here is shorter (an assumption, overridable in `[timing]`).
fn default_ecs_task_stop() -> Between {
    Between::secs(15, 60)
}

/// An EC2 instance boots in a minute or so, and the group counts it InService after
/// its health check grace period: an assumption, overridable in `[timing]`.
fn default_asg_instance_launch() -> Between {
    Between::secs(60, 180)
}

/// Deregistration from load balancers, then shutdown: an assumption, overridable in
/// `[timing]`.
fn default_asg_instance_terminate() -> Between {
    Between::secs(30, 90)
}

/// A span of virtual time during which a region cannot be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Window {
    pub from: Duration,
    /// `None`: for the rest of the run.
    pub until: Option<Duration>,
}

impl Window {
    fn contains(&self, t: Duration) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// A region: when it is reachable, how its outages look to a caller, how fast it
/// answers, and whether the application in it is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimRegion {
    pub unreachable: Vec<Window>,
    pub app_healthy: bool,
    /// What a call sent into an outage gets.
    #[serde(default)]
    pub outage: OutageMode,
    /// The services an outage takes down (their signing names, `reach::Service`), or
    /// `None` for the whole region, its databases and caches included.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Every call to the region (and every probe) answers this much later.
    #[serde(default)]
    pub latency: Duration,
}

impl Default for SimRegion {
    fn default() -> Self {
        Self {
            unreachable: Vec::new(),
            app_healthy: true,
            outage: OutageMode::default(),
            services: None,
            latency: Duration::ZERO,
        }
    }
}

impl SimRegion {
    /// Whether an outage of this region takes `service` down. `"data"` (the databases
    /// and caches themselves) goes down only with the whole region.
    fn affects(&self, service: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == service))
    }
}

/// How a region in an outage treats a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// No answer at all: the call waits until its caller's deadline (what a regional
    /// outage usually looks like).
    #[default]
    Hold,
    /// The connection is refused at once.
    Reset,
}

/// An Aurora DB cluster (standalone, or a member of a global cluster).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimCluster {
    pub arn: String,
    /// `DBClusterIdentifier`, the ARN's last part.
    pub name: String,
    pub region: String,
    /// The global cluster it belongs to.
    pub global: Option<String>,
    /// Whether it accepts writes (`IsWriter` for a member).
    pub writer: bool,
    /// Its status when no operation involves it.
    pub status: String,
    pub engine_version: String,
    pub instances: u32,
    pub endpoint: String,
    /// Replication lag while it is a secondary.
    pub lag: Duration,
    /// A detached secondary becomes a writer at this time (status `promoting` until).
    pub promote_at: Option<Duration>,
    /// `DBInstanceClass` of its instances: `db.serverless` (Aurora Serverless v2) or a
    /// provisioned class.
    #[serde(default = "serverless_class")]
    pub instance_class: String,
    /// `ServerlessV2ScalingConfiguration`, if it has one.
    #[serde(default)]
    pub scaling: Option<crate::cloud::CapacityRange>,
    /// The capacity its load asks for (ACUs); what it runs at is this within `scaling`.
    #[serde(default)]
    pub demand: Option<crate::names::Acu>,
    /// A `ModifyDBCluster` keeps it `modifying` until then.
    #[serde(default)]
    pub modifying_until: Option<Duration>,
}

fn serverless_class() -> String {
    crate::cloud::SERVERLESS_CLASS.to_string()
}

impl SimCluster {
    /// What `ServerlessDatabaseCapacity` reads: its demand within its capacity range.
    /// `None` for a cluster that is not Aurora Serverless v2 (it publishes no such
    /// metric).
    pub fn capacity(&self) -> Option<f64> {
        if self.instance_class != crate::cloud::SERVERLESS_CLASS || self.instances == 0 {
            return None;
        }
        let range = self.scaling?;
        let demand = self.demand.unwrap_or(range.min);
        Some(demand.clamp(range.min, range.max).as_f64())
    }
}

/// A global failover or switchover in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuroraOp {
    pub data_loss: bool,
    pub from_arn: String,
    pub to_arn: String,
    pub accepted: Duration,
    /// `FailoverState.Status` is `pending` until then.
    pub starts: Duration,
    pub completes: Duration,
}

/// An Aurora global cluster; its members are the clusters naming it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimGlobalCluster {
    pub id: String,
    pub engine_version: String,
    pub op: Option<AuroraOp>,
}

/// A DB cluster snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimSnapshot {
    pub id: String,
    /// `DBClusterIdentifier` it was taken of.
    pub cluster_id: String,
    pub region: String,
    pub snapshot_type: String,
    pub created: Duration,
    /// `creating` until then, `available` after.
    pub available_at: Duration,
}

/// Writes an unplanned failover or a detach lost: those committed on the old primary
/// in `[start, end)` (virtual time) that had not reached the promoted cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrites {
    /// The global cluster.
    pub global_cluster: String,
    /// The cluster that was the writer.
    pub from_cluster_arn: String,
    /// The cluster promoted (or detached).
    pub to_cluster_arn: String,
    /// The operation that lost them (`FailoverGlobalCluster`, `RemoveFromGlobalCluster`).
    pub operation: String,
    /// When the operation was accepted.
    pub at: Duration,
    /// First lost write.
    pub start: Duration,
    /// End of the lost window: when the old primary last accepted writes (the call's
    /// time, or when its region became unreachable).
    pub end: Duration,
    /// How much was lost: the promoted cluster's replication lag at that moment. It is
    /// `end - start` unless the window began before the world's epoch (then `start` is
    /// clamped to it).
    pub lost: Duration,
}

impl LostWrites {
    /// The data lost, as a duration of writes: the achieved RPO of the operation.
    pub fn window(&self) -> Duration {
        self.lost
    }
}

/// A heartbeat as one data store holds it: a replica has it once replication
/// delivered it (`visible_at`, virtual time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimBeat {
    pub beat: crate::cloud::Heartbeat,
    pub visible_at: Duration,
}

/// An ElastiCache replication group (a member of a global datastore or standalone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimReplicationGroup {
    pub id: String,
    pub region: String,
    pub global: Option<String>,
    pub role: MemberRole,
    /// Membership status when no operation involves it (`associated`).
    pub status: String,
    /// Its shape (DescribeReplicationGroups); older saved worlds have the default one.
    #[serde(default)]
    pub shape: RgShape,
    /// Its shards (1 for the first, in slot order) that stopped receiving from the
    /// primary's, and from when (virtual time): what the primary's shard takes from
    /// then on never reaches this member (sim config `cut_shards`, `cut_from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut_shards: Vec<u16>,
    #[serde(default)]
    pub cut_from: Duration,
}

/// The shape of a replication group that a Global Datastore needs its members to share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RgShape {
    /// `ClusterEnabled`: its endpoint is a cluster (the data plane answers as one).
    pub cluster_enabled: bool,
    /// Node groups (shards), their slots split as ElastiCache does.
    pub shards: u16,
    /// `CacheNodeType`.
    pub node_type: String,
}

impl Default for RgShape {
    fn default() -> Self {
        RgShape {
            cluster_enabled: false,
            shards: 1,
            node_type: "cache.r7g.large".into(),
        }
    }
}

impl SimReplicationGroup {
    /// A member of `global` (or standalone) with the default shape.
    pub fn new(id: String, region: String, global: Option<String>, role: MemberRole) -> Self {
        SimReplicationGroup {
            id,
            region,
            global,
            role,
            status: "associated".into(),
            shape: RgShape::default(),
            cut_shards: Vec::new(),
            cut_from: Duration::ZERO,
        }
    }

    /// Whether its shard `n` (1-based, in slot order) receives nothing from the
    /// primary at `now`.
    pub fn shard_cut(&self, n: u16, now: Duration) -> bool {
        self.cut_shards.contains(&n) && now >= self.cut_from
    }
}

/// What a global datastore is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ValkeyOpKind {
    Failover { from_rg: String, to_rg: String },
    Disassociate { rg: String },
}

/// A global datastore operation in progress (status `modifying`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ValkeyOp {
    pub kind: ValkeyOpKind,
    pub accepted: Duration,
    pub completes: Duration,
}

/// A Valkey global datastore; its members are the replication groups naming it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimDatastore {
    pub id: String,
    /// Status when no operation runs.
    pub status: String,
    /// The operation in progress (the one that completes first, when there are more).
    pub op: Option<ValkeyOp>,
    /// Further promotions accepted while `op` runs: only the user guide's reading
    /// ([`FailoverReading::Allow`]) accepts them ("promotion is allowed anytime, even
    /// if other modifications are in progress"). Each completes on its own; the last
    /// to complete decides the primary. Never set without `op`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<ValkeyOp>,
}

/// Which reading of the ElastiCache documentation the world follows for
/// `FailoverGlobalReplicationGroup` (sim config `[elasticache]
/// failover_with_unreachable_members`). The two documents disagree:
/// - the API reference's error `InvalidGlobalReplicationGroupState` ("The Global
///   datastore is not available or in primary-only state") reads as a refusal whenever
///   the datastore is not `available`, which a region that does not answer makes it;
/// - the user guide ("Promoting the secondary cluster to primary") says a secondary may
///   be promoted when the primary cluster or its Region is unavailable, "anytime, even
///   if other modifications are in progress".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverReading {
    /// The API reference's (the default): refused unless the datastore is `available`,
    /// nothing else is in progress, and every member is `associated` and in a region
    /// that answers.
    #[default]
    Refuse,
    /// The user guide's: accepted whatever the datastore's status, other operations in
    /// progress and unreachable members included; only the target must be an
    /// `associated` secondary whose region answers. The unreachable old primary becomes
    /// a secondary, as every other member does.
    Allow,
}

impl FailoverReading {
    /// The sim config's (and the emulator's) word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Allow => "allow",
        }
    }
}

/// One replication rule of a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimRule {
    pub id: String,
    pub enabled: bool,
    pub destination: String,
    /// The key prefix its filter replicates (`""`: every object).
    #[serde(default)]
    pub prefix: String,
}

/// One object (only what replication needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimObject {
    pub size: u64,
    pub status: Option<ReplicationStatus>,
    /// Replication is due at this time (then waits while either region is unreachable).
    pub due: Option<Duration>,
    pub destination: Option<String>,
}

/// An S3 bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimBucket {
    pub name: String,
    pub region: String,
    pub versioning: bool,
    pub rules: Vec<SimRule>,
    pub objects: BTreeMap<String, SimObject>,
    /// Operations pending replication that are not modelled as objects (an initial
    /// backlog from `--sim-config`).
    pub backlog: u64,
    /// When that backlog has drained (`None`: never).
    pub backlog_clears: Option<Duration>,
}

/// A hosted zone: the control plane's records, and what the DNS servers answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimZone {
    pub id: String,
    /// Fully qualified, lowercase.
    pub name: String,
    /// What `ListResourceRecordSets` shows (changes apply at once).
    pub records: Vec<RecordSet>,
    /// What resolvers are answered from: the records as of the latest INSYNC change.
    pub published: Vec<RecordSet>,
    pub published_seq: u64,
}

/// A `ChangeResourceRecordSets` batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimChange {
    pub id: String,
    pub zone: String,
    pub seq: u64,
    pub submitted: Duration,
    pub insync_at: Duration,
    /// The zone's records after this change, until it is published.
    pub records_after: Option<Vec<RecordSet>>,
}

/// A Route 53 health check monitoring a region's application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimHealthCheck {
    pub id: String,
    /// The region whose application it checks.
    pub region: String,
    /// Settings as last written (what `GetHealthCheck` returns).
    pub inverted: bool,
    pub disabled: bool,
    /// Settings the checkers apply (they catch up at `effective_at`).
    pub effective_inverted: bool,
    pub effective_disabled: bool,
    pub effective_at: Duration,
    /// A RECOVERY_CONTROL health check: healthy exactly when this routing control is On
    /// (as the health checks see it), instead of watching the region's application.
    #[serde(default)]
    pub routing_control: Option<String>,
}

/// A Route 53 ARC routing control on the world's one ARC cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimRoutingControl {
    pub arn: String,
    /// What `GetRoutingControlState` answers (an update shows there at once).
    pub state: RoutingControlState,
    /// What the RECOVERY_CONTROL health checks see; it becomes `state` at `effective_at`.
    pub effective: RoutingControlState,
    pub effective_at: Duration,
}

/// An ECS service and its tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimEcsService {
    /// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME`.
    pub arn: String,
    pub name: String,
    /// The cluster's ARN (`...:cluster/NAME`), a key of `State::ecs_clusters`.
    pub cluster_arn: String,
    pub region: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    pub desired: u32,
    /// Its tasks, PENDING until `running_at`; a task a scale-in stops leaves at
    /// `stops_at` (it counts as running until then, as a draining task serves).
    pub tasks: Vec<SimTask>,
    /// `launchType`.
    pub launch_type: Option<String>,
    /// Whether ECS reports a `rolloutState` (the rolling update deployment controller).
    pub rollout_reported: bool,
    /// A deployment rolls out (a second, ACTIVE deployment; the PRIMARY one
    /// `IN_PROGRESS`) until then.
    pub deploying_until: Option<Duration>,
}

/// One ECS task of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimTask {
    pub running_at: Duration,
    pub stops_at: Option<Duration>,
}

impl SimEcsService {
    /// (running, pending) at `now`.
    pub fn counts(&self, now: Duration) -> (u32, u32) {
        let (mut running, mut pending) = (0u32, 0u32);
        for t in &self.tasks {
            if t.stops_at.is_some_and(|s| s <= now) {
                continue;
            }
            if t.running_at <= now {
                running = running.saturating_add(1);
            } else {
                pending = pending.saturating_add(1);
            }
        }
        (running, pending)
    }
}

/// An EC2 Auto Scaling group and its instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimAsg {
    pub name: String,
    pub arn: String,
    pub region: String,
    pub min: u32,
    pub desired: u32,
    pub max: u32,
    /// `Delete in progress`, or none.
    pub status: Option<String>,
    pub suspended: Vec<String>,
    pub instances: Vec<SimInstance>,
    /// How many instance ids it has handed out.
    pub launched: u64,
}

/// One instance of an Auto Scaling group: `Pending` until `in_service_at`, then
/// `InService`; `Terminating` from a scale-in until `gone_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SimInstance {
    pub id: String,
    pub in_service_at: Duration,
    pub gone_at: Option<Duration>,
    pub healthy: bool,
}

/// A fault and how often it has fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultState {
    pub spec: FaultSpec,
    pub injected: u64,
}

/// What a call was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum OpAnswer {
    /// A success.
    Ok,
    /// An error (from the world's rules, or injected by a fault).
    Error {
        /// Its class.
        kind: CloudErrorKind,
        /// The AWS error code, when there is one.
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// Never answered (a hang fault): the caller's timeout had to catch it.
    Hung,
}

/// One mutating call the world received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// Order of arrival, from 0.
    pub seq: u64,
    /// Virtual time since the world's epoch when it was processed.
    pub at: Duration,
    /// `rds`, `elasticache`, `s3`, `route53`.
    pub service: String,
    /// The API operation, e.g. `FailoverGlobalCluster`.
    pub operation: String,
    /// The region it was sent to (us-east-1 for Route 53; the bucket's for S3).
    pub region: Option<String>,
    /// Its arguments.
    pub args: serde_json::Value,
    /// Whether it changed the world. A call can be applied and still answered with an
    /// error or never answered (a fault with `after_apply`): a lost response.
    pub applied: bool,
    /// What the caller got.
    #[serde(flatten)]
    pub answer: OpAnswer,
    /// Whether a fault decided the answer.
    pub injected: bool,
}

/// One PutMetricData the world received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimMetricData {
    /// The region it was sent to.
    pub region: String,
    /// Its namespace.
    pub namespace: String,
    /// Its datums.
    pub data: Vec<crate::cloud::MetricDatum>,
}

/// Everything the world is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    pub version: u32,
    pub seed: u64,
    /// How many times each random stream has been drawn from.
    pub draws: BTreeMap<String, u64>,
    pub timing: Timing,
    /// The runbook's regions, as the world was built.
    pub from: String,
    pub to: String,
    pub regions: BTreeMap<String, SimRegion>,
    /// By ARN.
    pub clusters: BTreeMap<String, SimCluster>,
    pub global_clusters: BTreeMap<String, SimGlobalCluster>,
    pub snapshots: Vec<SimSnapshot>,
    pub lost_writes: Vec<LostWrites>,
    pub replication_groups: BTreeMap<String, SimReplicationGroup>,
    pub datastores: BTreeMap<String, SimDatastore>,
    /// How `FailoverGlobalReplicationGroup` treats a datastore that is not available or
    /// has unreachable members (older saved worlds: the API reference's reading).
    #[serde(default)]
    pub failover_with_unreachable_members: FailoverReading,
    pub buckets: BTreeMap<String, SimBucket>,
    pub zones: BTreeMap<String, SimZone>,
    pub changes: BTreeMap<String, SimChange>,
    pub change_seq: u64,
    pub health_checks: BTreeMap<String, SimHealthCheck>,
    /// Route 53 ARC routing controls, by ARN (older saved worlds have none).
    #[serde(default)]
    pub routing_controls: BTreeMap<String, SimRoutingControl>,
    /// The ARN of the cluster's assertion safety rule "at least one routing control
    /// On", when it has one: an update leaving every control Off is refused.
    #[serde(default)]
    pub arc_safety_rule: Option<String>,
    /// ECS clusters (ARN -> region) and services (by ARN); older saved worlds have none.
    #[serde(default)]
    pub ecs_clusters: BTreeMap<String, String>,
    #[serde(default)]
    pub ecs_services: BTreeMap<String, SimEcsService>,
    /// Auto Scaling groups, by name (older saved worlds have none).
    #[serde(default)]
    pub asgs: BTreeMap<String, SimAsg>,
    /// Messages published to SNS topics, in order (older saved worlds have none).
    #[serde(default)]
    pub published: Vec<super::sns::SimPublished>,
    pub faults: Vec<FaultState>,
    pub log: Vec<OpRecord>,
    /// Heartbeats each data store holds, by store (`cluster:ARN`, `rg:ID`); see
    /// `sim/dataplane.rs`. Older saved worlds have none.
    #[serde(default)]
    pub heartbeats: BTreeMap<String, Vec<SimBeat>>,
    /// Members whose data plane is a real local server (`local` in the sim config),
    /// by store (`cluster:ARN`, `rg:ID`).
    #[serde(default)]
    pub bindings: BTreeMap<String, super::config::LocalServer>,
    /// Bound PostgreSQL servers a failover fenced read-only: they answer as readers.
    #[serde(default)]
    pub fenced: std::collections::BTreeSet<String>,
    /// What the bound servers must still be told, in order (see `sim/lab.rs`); saved
    /// with the world, so a resumed run finishes what a crashed one left.
    #[serde(default)]
    pub lab: Vec<super::lab::LabAction>,
    /// The metrics drpilot put to CloudWatch (`drpilot readiness --cloudwatch`), in
    /// order (older saved worlds have none).
    #[serde(default)]
    pub metrics: Vec<SimMetricData>,
    /// Latest virtual time applied by `advance`.
    pub now: Duration,
    /// The wall-clock time at the world's virtual zero (names AWS stamps with a date).
    pub origin: jiff::Timestamp,
}

impl State {
    /// An empty world.
    pub fn new(seed: u64, timing: Timing, from: &str, to: &str, origin: jiff::Timestamp) -> Self {
        Self {
            version: STATE_VERSION,
            seed,
            draws: BTreeMap::new(),
            timing,
            from: from.to_string(),
            to: to.to_string(),
            regions: BTreeMap::new(),
            clusters: BTreeMap::new(),
            global_clusters: BTreeMap::new(),
            snapshots: Vec::new(),
            lost_writes: Vec::new(),
            replication_groups: BTreeMap::new(),
            datastores: BTreeMap::new(),
            failover_with_unreachable_members: FailoverReading::default(),
            buckets: BTreeMap::new(),
            zones: BTreeMap::new(),
            changes: BTreeMap::new(),
            change_seq: 0,
            health_checks: BTreeMap::new(),
            routing_controls: BTreeMap::new(),
            arc_safety_rule: None,
            ecs_clusters: BTreeMap::new(),
            ecs_services: BTreeMap::new(),
            asgs: BTreeMap::new(),
            published: Vec::new(),
            faults: Vec::new(),
            log: Vec::new(),
            heartbeats: BTreeMap::new(),
            bindings: BTreeMap::new(),
            fenced: Default::default(),
            lab: Vec::new(),
            metrics: Vec::new(),
            now: Duration::ZERO,
            origin,
        }
    }

    // ---- randomness ----

    /// The next 64 random bits of `stream`.
    pub fn draw(&mut self, stream: &str) -> u64 {
        let n = self.draws.entry(stream.to_string()).or_insert(0);
        let bits = nth(self.seed, stream, *n);
        *n = n.wrapping_add(1);
        bits
    }

    /// A duration from `range`, drawn from `stream`.
    pub fn duration(&mut self, stream: &str, range: Between) -> Duration {
        let bits = self.draw(stream);
        range.pick(bits)
    }

    // ---- regions ----

    /// Whether `service` in `region` answers at `t` (`"data"`: its databases and
    /// caches, which only a whole-region outage takes down).
    pub fn reachable(&self, region: &str, service: &str, t: Duration) -> bool {
        self.regions
            .get(region)
            .is_none_or(|r| !(r.affects(service) && r.unreachable.iter().any(|w| w.contains(t))))
    }

    /// When the outage that takes `service` in `region` down at `t` began (`None` if it
    /// is reachable).
    pub fn outage_start(&self, region: &str, service: &str, t: Duration) -> Option<Duration> {
        self.regions
            .get(region)
            .filter(|r| r.affects(service))
            .and_then(|r| {
                r.unreachable
                    .iter()
                    .filter(|w| w.contains(t))
                    .map(|w| w.from)
                    .min()
            })
    }

    /// Whether the application in `region` answers (reachable and healthy) at `t`.
    pub fn app_up(&self, region: &str, t: Duration) -> bool {
        self.reachable(region, "data", t) && self.regions.get(region).is_none_or(|r| r.app_healthy)
    }

    /// How a call to `region` that finds it down is treated, and how late every call to
    /// it answers.
    pub fn region_behaviour(&self, region: &str) -> (OutageMode, Duration) {
        self.regions
            .get(region)
            .map(|r| (r.outage, r.latency))
            .unwrap_or_default()
    }

    /// The first time at or after `t` when `service` in both regions is reachable
    /// (`None`: never).
    pub fn both_reachable_from(
        &self,
        a: &str,
        b: &str,
        service: &str,
        t: Duration,
    ) -> Option<Duration> {
        let windows: Vec<&Window> = [a, b]
            .iter()
            .filter_map(|r| self.regions.get(*r))
            .filter(|r| r.affects(service))
            .flat_map(|r| r.unreachable.iter())
            .collect();
        let mut candidate = t;
        // Each step jumps past at least one window, so this ends.
        for _ in 0..=windows.len() {
            let blocking: Vec<&&Window> =
                windows.iter().filter(|w| w.contains(candidate)).collect();
            if blocking.is_empty() {
                return Some(candidate);
            }
            let mut next = candidate;
            for w in blocking {
                next = next.max(w.until?);
            }
            candidate = next;
        }
        None
    }

    // ---- lazy time ----

    /// Applies everything due by `now`: completed failovers, switchovers, promotions,
    /// snapshots, replications, INSYNC changes, health-check updates and routing
    /// control states reaching their health checks.
    pub fn advance(&mut self, now: Duration) {
        let now = now.max(self.now);
        self.now = now;
        self.advance_aurora(now);
        self.advance_valkey(now);
        self.advance_s3(now);
        self.advance_route53(now);
        self.advance_ecs(now);
        self.advance_asgs(now);
    }

    fn advance_aurora(&mut self, now: Duration) {
        let due: Vec<(String, AuroraOp)> = self
            .global_clusters
            .values()
            .filter_map(|g| g.op.clone().map(|op| (g.id.clone(), op)))
            .filter(|(_, op)| op.completes <= now)
            .collect();
        for (id, op) in due {
            if let Some(g) = self.global_clusters.get_mut(&id) {
                g.op = None;
            }
            self.complete_aurora_op(&id, &op);
        }
        let mut promoted = Vec::new();
        for c in self.clusters.values_mut() {
            if c.promote_at.is_some_and(|t| t <= now) {
                c.promote_at = None;
                c.writer = true;
                promoted.push(format!("cluster:{}", c.arn));
            }
        }
        for store in promoted {
            self.lab_push(super::lab::LabAction::Promote {
                store,
                catch_up_from: None,
            });
        }
    }

    fn complete_aurora_op(&mut self, global: &str, op: &AuroraOp) {
        let t = op.completes;
        let (from_region, to_region) = match (
            self.clusters.get(&op.from_arn),
            self.clusters.get(&op.to_arn),
        ) {
            (Some(f), Some(to)) => (f.region.clone(), to.region.clone()),
            // A member deleted under a running operation: nothing left to move.
            _ => return,
        };
        let both_up =
            self.reachable(&from_region, "rds", t) && self.reachable(&to_region, "rds", t);
        let lab = |arn: &str| format!("cluster:{arn}");
        if !op.data_loss && !both_up {
            // A switchover needs both ends until it finishes; AWS cancels it and both
            // clusters return to their previous roles.
            self.lab_push(super::lab::LabAction::Promote {
                store: lab(&op.from_arn),
                catch_up_from: None,
            });
            return;
        }
        for c in self.clusters.values_mut() {
            if c.global.as_deref() == Some(global) {
                c.writer = c.arn == op.to_arn;
            }
        }
        self.lab_push(super::lab::LabAction::Promote {
            store: lab(&op.to_arn),
            catch_up_from: (!op.data_loss).then(|| lab(&op.from_arn)),
        });
        let followers: Vec<String> = self
            .members(global)
            .iter()
            .filter(|c| c.arn != op.to_arn)
            .map(|c| lab(&c.arn))
            .collect();
        for store in followers {
            self.lab_push(super::lab::LabAction::Follow {
                store,
                primary: lab(&op.to_arn),
            });
        }
        if op.data_loss {
            // Aurora snapshots the old primary once it can: when its region is
            // reachable (at once, or when the outage ends).
            let Some(created) = self.both_reachable_from(&from_region, &from_region, "rds", t)
            else {
                return;
            };
            let name = self
                .clusters
                .get(&op.from_arn)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let available_at = created.saturating_add(self.duration(
                &format!("aurora:snapshot_create:{global}"),
                self.timing.snapshot_create,
            ));
            self.snapshots.push(SimSnapshot {
                id: format!(
                    "rds:unplanned-global-failover-{name}-{}",
                    stamp(self.origin, created)
                ),
                cluster_id: name,
                region: from_region,
                snapshot_type: "automated".into(),
                created,
                available_at,
            });
        }
    }

    fn advance_valkey(&mut self, now: Duration) {
        let mut due: Vec<(String, ValkeyOp)> = Vec::new();
        for d in self.datastores.values_mut() {
            if d.op.is_none() {
                continue;
            }
            // Every operation in progress, in completion order; what is not due stays.
            let mut running: Vec<ValkeyOp> =
                d.op.take()
                    .into_iter()
                    .chain(d.promotions.drain(..))
                    .collect();
            running.sort_by_key(|op| op.completes);
            let (done, left): (Vec<ValkeyOp>, Vec<ValkeyOp>) =
                running.into_iter().partition(|op| op.completes <= now);
            let mut left = left.into_iter();
            d.op = left.next();
            d.promotions = left.collect();
            due.extend(done.into_iter().map(|op| (d.id.clone(), op)));
        }
        due.sort_by_key(|(_, op)| op.completes);
        for (id, op) in due {
            match op.kind {
                ValkeyOpKind::Failover { to_rg, .. } => {
                    let member = |rg: &SimReplicationGroup| {
                        rg.id == to_rg && rg.global.as_deref() == Some(id.as_str())
                    };
                    if !self.replication_groups.values().any(member) {
                        // The target left the datastore meanwhile: nothing to promote.
                        continue;
                    }
                    let mut followers = Vec::new();
                    for rg in self.replication_groups.values_mut() {
                        if rg.global.as_deref() == Some(id.as_str()) {
                            rg.role = if rg.id == to_rg {
                                MemberRole::Primary
                            } else {
                                followers.push(format!("rg:{}", rg.id));
                                MemberRole::Secondary
                            };
                        }
                    }
                    let primary = format!("rg:{to_rg}");
                    // The old primary and the other secondaries resynchronise from the
                    // new primary: what only they held (writes it never received) is
                    // gone from every member, shard by shard.
                    self.follow_heartbeats(&primary, &followers);
                    self.lab_push(super::lab::LabAction::Promote {
                        store: primary.clone(),
                        catch_up_from: None,
                    });
                    for store in followers {
                        self.lab_push(super::lab::LabAction::Follow {
                            store,
                            primary: primary.clone(),
                        });
                    }
                }
                ValkeyOpKind::Disassociate { rg } => {
                    if let Some(rg) = self.replication_groups.get_mut(&rg) {
                        rg.global = None;
                        rg.role = MemberRole::Primary;
                    }
                    self.lab_push(super::lab::LabAction::Detach {
                        store: format!("rg:{rg}"),
                    });
                }
            }
        }
    }

    fn advance_s3(&mut self, now: Duration) {
        // Collect first: a replication touches two buckets.
        let mut done: Vec<(String, String, Duration, String)> = Vec::new();
        for b in self.buckets.values() {
            for (key, o) in &b.objects {
                let (Some(due), Some(dest)) = (o.due, o.destination.as_ref()) else {
                    continue;
                };
                if due > now {
                    continue;
                }
                let dest_region = self
                    .buckets
                    .get(dest)
                    .map_or_else(|| b.region.clone(), |d| d.region.clone());
                if let Some(t) = self.both_reachable_from(&b.region, &dest_region, "s3", due)
                    && t <= now
                {
                    done.push((b.name.clone(), key.clone(), t, dest.clone()));
                }
            }
        }
        for (bucket, key, _, dest) in done {
            let replicated = self.buckets.get(&dest).is_some_and(|d| d.versioning);
            if let Some(o) = self
                .buckets
                .get_mut(&bucket)
                .and_then(|b| b.objects.get_mut(&key))
            {
                o.due = None;
                o.status = Some(if replicated {
                    ReplicationStatus::Completed
                } else {
                    ReplicationStatus::Failed
                });
                let size = o.size;
                if replicated && let Some(d) = self.buckets.get_mut(&dest) {
                    d.objects.insert(
                        key,
                        SimObject {
                            size,
                            status: Some(ReplicationStatus::Replica),
                            due: None,
                            destination: None,
                        },
                    );
                }
            }
        }
    }

    fn advance_route53(&mut self, now: Duration) {
        let mut due: Vec<(Duration, u64, String)> = self
            .changes
            .values()
            .filter(|c| c.records_after.is_some() && c.insync_at <= now)
            .map(|c| (c.insync_at, c.seq, c.id.clone()))
            .collect();
        due.sort();
        for (_, seq, id) in due {
            let Some(change) = self.changes.get_mut(&id) else {
                continue;
            };
            let records = change.records_after.take();
            let zone_id = change.zone.clone();
            if let (Some(records), Some(zone)) = (records, self.zones.get_mut(&zone_id)) {
                // An older change going INSYNC after a newer one publishes nothing new.
                if seq > zone.published_seq {
                    zone.published = records;
                    zone.published_seq = seq;
                }
            }
        }
        for hc in self.health_checks.values_mut() {
            if hc.effective_at <= now {
                hc.effective_inverted = hc.inverted;
                hc.effective_disabled = hc.disabled;
            }
        }
        for rc in self.routing_controls.values_mut() {
            if rc.effective_at <= now {
                rc.effective = rc.state;
            }
        }
    }

    // ---- derived views ----

    /// The status a cluster reports now.
    pub fn cluster_status(&self, c: &SimCluster) -> String {
        if c.promote_at.is_some() {
            return "promoting".into();
        }
        if c.modifying_until.is_some_and(|t| self.now < t) {
            return "modifying".into();
        }
        if let Some(op) = c
            .global
            .as_ref()
            .and_then(|g| self.global_clusters.get(g))
            .and_then(|g| g.op.as_ref())
            && (op.from_arn == c.arn || op.to_arn == c.arn)
        {
            return if op.data_loss {
                "failing-over".into()
            } else {
                "switching-over".into()
            };
        }
        c.status.clone()
    }

    /// The members of a global cluster, writer first.
    pub fn members(&self, global: &str) -> Vec<&SimCluster> {
        let mut m: Vec<&SimCluster> = self
            .clusters
            .values()
            .filter(|c| c.global.as_deref() == Some(global))
            .collect();
        m.sort_by_key(|c| !c.writer);
        m
    }

    /// The writer of a global cluster, if there is one.
    /// A cluster of `global` was promoted by an operation that loses data, at a moment
    /// the old primary stopped taking writes at `end`: it keeps the heartbeats that had
    /// reached it by then, and the other members (rebuilt from it by Aurora) hold the
    /// same. With `others_follow` false (a detach) only the promoted cluster changes.
    pub fn lose_heartbeats(
        &mut self,
        global: &str,
        promoted_arn: &str,
        end: Duration,
        others_follow: bool,
    ) {
        let key = format!("cluster:{promoted_arn}");
        let kept: Vec<SimBeat> = self
            .heartbeats
            .get(&key)
            .map(|beats| {
                beats
                    .iter()
                    .filter(|b| b.visible_at <= end)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if others_follow {
            let others: Vec<String> = self
                .members(global)
                .iter()
                .filter(|c| c.arn != promoted_arn)
                .map(|c| format!("cluster:{}", c.arn))
                .collect();
            for other in others {
                self.heartbeats.insert(other, kept.clone());
            }
        }
        self.heartbeats.insert(key, kept);
    }

    /// `followers` (stores) hold exactly the heartbeats `primary` holds, store and shard
    /// stores alike (`rg:ID` and `rg:ID/TAG`).
    pub fn follow_heartbeats(&mut self, primary: &str, followers: &[String]) {
        let of = |store: &str, key: &str| {
            key.strip_prefix(store)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(str::to_string)
        };
        let held: Vec<(String, Vec<SimBeat>)> = self
            .heartbeats
            .iter()
            .filter_map(|(k, v)| Some((of(primary, k)?, v.clone())))
            .collect();
        for f in followers {
            self.heartbeats.retain(|k, _| of(f, k).is_none());
            for (suffix, beats) in &held {
                self.heartbeats
                    .insert(format!("{f}{suffix}"), beats.clone());
            }
        }
    }

    pub fn writer_of(&self, global: &str) -> Option<&SimCluster> {
        self.members(global).into_iter().find(|c| c.writer)
    }

    /// The members of a global datastore.
    pub fn datastore_members(&self, id: &str) -> Vec<&SimReplicationGroup> {
        self.replication_groups
            .values()
            .filter(|rg| rg.global.as_deref() == Some(id))
            .collect()
    }

    /// Whether a health check reports healthy at `t` (Disabled first, then Inverted,
    /// as Route 53 evaluates them). What is inverted is the checkers' view of the
    /// region's application, or for a RECOVERY_CONTROL check its routing control being
    /// On.
    ///
    /// A disabled check is healthy before inversion: "After you disable a health check,
    /// Route 53 considers the status of the health check to always be healthy. [...] If
    /// you want to stop routing traffic to a resource, change the value of Inverted"
    /// (API reference, UpdateHealthCheck `Disabled`): disabled and inverted is unhealthy.
    pub fn health_check_healthy(&self, hc: &SimHealthCheck, t: Duration) -> bool {
        // Checkers notice a change only after several failed (or passed) requests.
        let up = hc.effective_disabled
            || match &hc.routing_control {
                // ARC has no checkers: the control's state is the observation.
                Some(arn) => self
                    .routing_controls
                    .get(arn)
                    .is_some_and(|rc| rc.effective == RoutingControlState::On),
                None => {
                    let seen = t.saturating_sub(self.timing.health_check_detect);
                    self.app_up(&hc.region, seen)
                }
            };
        up != hc.effective_inverted
    }
}

/// `YYYY-MM-DD-HH-MM` of virtual time `t` on the run clock whose zero is `origin`, as
/// AWS stamps the snapshot names it creates.
fn stamp(origin: jiff::Timestamp, t: Duration) -> String {
    let secs = i64::try_from(t.as_secs())
        .unwrap_or(i64::MAX)
        .min(3_000_000_000);
    let ts = origin
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(origin);
    ts.strftime("%Y-%m-%d-%H-%M").to_string()
}

#[cfg(test)]
mod tests;
