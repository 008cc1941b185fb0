//! Our own view of the cloud's resources: only the fields the actions read.
//!
//! The SDK types stay inside `cloud/aws.rs`; the simulated world builds these directly.
//! Field meanings follow the AWS API reference (named in each doc comment) so the two
//! implementations agree on what a value means.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::cluster::Slots;
pub use crate::names::Acu;

/// `FailoverState.Status` of a global cluster (RDS API reference).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverStatus {
    /// Accepted, not started.
    Pending,
    /// An unplanned failover (`AllowDataLoss`) is in progress.
    FailingOver,
    /// A switchover is in progress.
    SwitchingOver,
    /// Being cancelled.
    Cancelling,
}

/// `GlobalCluster.FailoverState`: an operation in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverState {
    /// Where it is.
    pub status: FailoverStatus,
    /// `FromDbClusterArn`.
    pub from_cluster_arn: String,
    /// `ToDbClusterArn`.
    pub to_cluster_arn: String,
    /// `IsDataLossAllowed`: true for a failover, false for a switchover.
    pub is_data_loss_allowed: bool,
}

/// `GlobalClusterMember`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMember {
    /// `DBClusterArn`.
    pub cluster_arn: String,
    /// The member's region (from its ARN).
    pub region: String,
    /// `IsWriter`.
    pub is_writer: bool,
}

/// `GlobalCluster` (DescribeGlobalClusters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalCluster {
    /// `GlobalClusterIdentifier`.
    pub id: String,
    /// `Status`: available, failing-over, switching-over, modifying, ...
    pub status: String,
    /// `EngineVersion`.
    pub engine_version: String,
    /// `GlobalClusterMembers`.
    pub members: Vec<GlobalMember>,
    /// `FailoverState`, when an operation is in progress.
    pub failover_state: Option<FailoverState>,
    /// `Endpoint`: the global writer endpoint, a DNS name Aurora points at the current
    /// primary's cluster endpoint after a managed failover or a switchover. `None` for
    /// engine versions without one.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl GlobalCluster {
    /// The writer member, if there is exactly one.
    pub fn writer(&self) -> Option<&GlobalMember> {
        let mut writers = self.members.iter().filter(|m| m.is_writer);
        let w = writers.next()?;
        writers.next().is_none().then_some(w)
    }

    /// The member with this ARN.
    pub fn member(&self, arn: &str) -> Option<&GlobalMember> {
        self.members.iter().find(|m| m.cluster_arn == arn)
    }
}

/// `DBCluster` (DescribeDBClusters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCluster {
    /// `DBClusterArn`.
    pub arn: String,
    /// `Status`: available, failing-over, ...
    pub status: String,
    /// `EngineVersion`.
    pub engine_version: String,
    /// Number of `DBClusterMembers` (instances).
    pub instances: usize,
    /// `Endpoint` (the writer endpoint).
    pub endpoint: String,
    /// `GlobalClusterIdentifier`: the global database the cluster is a member of.
    #[serde(default)]
    pub global_cluster: Option<String>,
    /// `ServerlessV2ScalingConfiguration` (`MinCapacity`, `MaxCapacity`): the capacity
    /// range of its Aurora Serverless v2 instances; `None` when it has none.
    #[serde(default)]
    pub scaling: Option<CapacityRange>,
}

/// An Aurora Serverless v2 capacity range (`ServerlessV2ScalingConfiguration`), in ACUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityRange {
    /// `MinCapacity`.
    pub min: Acu,
    /// `MaxCapacity`.
    pub max: Acu,
}

impl std::fmt::Display for CapacityRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{} ACUs", self.min, self.max)
    }
}

/// The instance class of every Aurora Serverless v2 DB instance ("The
/// --db-instance-class parameter for Aurora Serverless v2 is always db.serverless",
/// Aurora user guide).
pub const SERVERLESS_CLASS: &str = "db.serverless";

/// A DB instance of a cluster (DescribeDBInstances).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInstance {
    /// `DBInstanceIdentifier`.
    pub id: String,
    /// `DBInstanceClass`: `db.serverless`, or a provisioned class such as `db.r6g.large`.
    pub class: String,
}

/// A DB cluster snapshot (DescribeDBClusterSnapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// `DBClusterSnapshotIdentifier`, e.g. `rds:unplanned-global-failover-...`.
    pub id: String,
    /// `DBClusterIdentifier` it was taken of.
    pub cluster_id: String,
    /// `SnapshotType`: automated, manual, ...
    pub snapshot_type: String,
    /// `Status`: creating, available, ...
    pub status: String,
}

/// Role of a member of a Valkey global datastore (`GlobalReplicationGroupMember.Role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Accepts writes.
    Primary,
    /// Read-only replica of the primary.
    Secondary,
}

/// `GlobalReplicationGroupMember`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreMember {
    /// `ReplicationGroupId`.
    pub replication_group_id: String,
    /// `ReplicationGroupRegion`.
    pub region: String,
    /// `Role`.
    pub role: MemberRole,
    /// `Status`.
    pub status: String,
}

/// `GlobalReplicationGroup` (DescribeGlobalReplicationGroups with ShowMemberInfo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalDatastore {
    /// `GlobalReplicationGroupId`.
    pub id: String,
    /// `Status`: available, modifying, ...
    pub status: String,
    /// `Members`.
    pub members: Vec<DatastoreMember>,
}

impl GlobalDatastore {
    /// The primary member, if there is exactly one.
    pub fn primary(&self) -> Option<&DatastoreMember> {
        let mut p = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Primary);
        let first = p.next()?;
        p.next().is_none().then_some(first)
    }
}

/// One rule of a bucket's replication configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    /// `ID`.
    pub id: String,
    /// `Status` is `Enabled`.
    pub enabled: bool,
    /// Destination bucket name (from the destination bucket ARN).
    pub destination_bucket: String,
    /// The key prefix the rule's filter (or a V1 rule's `Prefix`) replicates, `""` for
    /// every object; `None` when the filter also needs tags, which an object written
    /// without them (a canary) does not carry.
    pub prefix: Option<String>,
}

impl ReplicationRule {
    /// Whether the rule replicates an object written under `key` without tags.
    pub fn replicates_untagged(&self, key: &str) -> bool {
        self.enabled && self.prefix.as_deref().is_some_and(|p| key.starts_with(p))
    }
}

/// `x-amz-replication-status` of an object (HeadObject).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReplicationStatus {
    /// At the source, not yet copied.
    Pending,
    /// At the source, copied. (botocore's enum also lists `COMPLETE`.)
    #[serde(alias = "COMPLETE")]
    Completed,
    /// At the source, copying failed.
    Failed,
    /// At the destination: this object is a replica.
    Replica,
}

/// `ResourceRecordSet.AliasTarget`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasTarget {
    /// `DNSName`.
    pub dns_name: String,
    /// `HostedZoneId`.
    pub zone_id: String,
    /// `EvaluateTargetHealth`.
    pub evaluate_target_health: bool,
}

/// `ResourceRecordSet`: the fields drpilot writes and must restore exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// `Name`, fully qualified with the trailing dot.
    pub name: String,
    /// `Type`.
    pub record_type: String,
    /// `SetIdentifier`.
    pub set_identifier: Option<String>,
    /// `TTL` (absent for aliases).
    pub ttl: Option<i64>,
    /// `ResourceRecords` values.
    pub values: Vec<String>,
    /// `AliasTarget`.
    pub alias: Option<AliasTarget>,
    /// `Weight`.
    pub weight: Option<i64>,
    /// `Failover`: PRIMARY or SECONDARY.
    pub failover: Option<String>,
    /// `HealthCheckId`.
    pub health_check_id: Option<String>,
    /// The other routing policies' fields (latency, geolocation, multivalue, IP-based,
    /// geoproximity): kept as read, so a captured set is restored (and deleted) exactly.
    /// Absent from journals written before they were read.
    #[serde(default, skip_serializing_if = "RecordRouting::is_empty")]
    pub routing: RecordRouting,
}

/// The routing fields of a `ResourceRecordSet` beyond simple, weighted and failover.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordRouting {
    /// `Region` (latency routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `GeoLocation` (geolocation routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocation>,
    /// `MultiValueAnswer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_value_answer: Option<bool>,
    /// `CidrRoutingConfig` (IP-based routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<CidrRouting>,
    /// `GeoProximityLocation` (geoproximity routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geo_proximity: Option<GeoProximity>,
}

impl RecordRouting {
    /// None of these policies.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `GeoLocation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GeoLocation {
    /// `ContinentCode`.
    pub continent_code: Option<String>,
    /// `CountryCode`.
    pub country_code: Option<String>,
    /// `SubdivisionCode`.
    pub subdivision_code: Option<String>,
}

/// `CidrRoutingConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CidrRouting {
    /// `CollectionId`.
    pub collection_id: String,
    /// `LocationName`.
    pub location_name: String,
}

/// `GeoProximityLocation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GeoProximity {
    /// `AWSRegion`.
    pub aws_region: Option<String>,
    /// `LocalZoneGroup`.
    pub local_zone_group: Option<String>,
    /// `Coordinates` (latitude, longitude), as given.
    pub coordinates: Option<(String, String)>,
    /// `Bias`.
    pub bias: Option<i32>,
}

/// `Change.Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeAction {
    /// Create, failing if it exists.
    Create,
    /// Delete, failing if it does not exist exactly as given.
    Delete,
    /// Create or replace.
    Upsert,
}

/// One change of a `ChangeResourceRecordSets` batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    /// What to do.
    pub action: ChangeAction,
    /// The record set.
    pub record: RecordSet,
}

/// `ChangeInfo.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    /// Not yet propagated to all authoritative servers.
    Pending,
    /// Propagated.
    Insync,
}

/// `ChangeInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// `Id`, e.g. `/change/C2682N5HXP0BZ4`.
    pub id: String,
    /// `Status`.
    pub status: ChangeStatus,
}

/// The settings of a health check that drpilot changes and restores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `Id`.
    pub id: String,
    /// `Inverted`.
    pub inverted: bool,
    /// `Disabled`.
    pub disabled: bool,
}

/// A quota and how much of it is used (GetHostedZoneLimit `Count` and `Limit.Value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// In use.
    pub used: u64,
    /// Allowed.
    pub limit: u64,
}

/// One regional endpoint of a Route 53 ARC cluster (`ClusterEndpoint`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEndpoint {
    /// `Endpoint`: the URL of the cluster's data plane in `region`.
    pub url: String,
    /// `Region` the endpoint is in; requests to it are signed for this region.
    pub region: String,
}

/// `RoutingControlState`: On lets traffic flow to the cell the control guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoutingControlState {
    /// `On`.
    On,
    /// `Off`.
    Off,
}

impl RoutingControlState {
    /// The API spelling: `On` or `Off`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingControlState::On => "On",
            RoutingControlState::Off => "Off",
        }
    }
}

/// One entry of `UpdateRoutingControlStates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingControlUpdate {
    /// `RoutingControlArn`.
    pub arn: String,
    /// `RoutingControlState` to set.
    pub state: RoutingControlState,
}

/// An HTTP probe (http.check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// URL.
    pub url: String,
    /// GET, HEAD or POST.
    pub method: String,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What an HTTP probe saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpObservation {
    /// Status code.
    pub status: u16,
    /// Body (truncated by the implementation to a sane size).
    pub body: String,
    /// Time to the full response.
    pub latency: Duration,
}

/// Connection settings of a data-plane probe. The password is read from the named
/// environment variable by the implementation at connect time and never stored here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name, if any.
    pub user: Option<String>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// Whether to use TLS.
    pub tls: Tls,
}

/// How a data-plane connection uses TLS. A server certificate is always verified when
/// TLS is used (system roots, or `SSL_CERT_FILE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tls {
    /// Never (`sslmode = "disable"`, Valkey `tls = false`).
    #[default]
    Off,
    /// Whenever the server offers it, else in plaintext (PostgreSQL `sslmode =
    /// "prefer"`, as libpq: TLS first, then without).
    Prefer,
    /// Always (`sslmode = "require"`, Valkey `tls = true`).
    Require,
}

impl Tls {
    /// `Require` when `on`, else `Off`: Valkey's `tls = true|false`.
    pub fn required(on: bool) -> Self {
        if on { Tls::Require } else { Tls::Off }
    }

    /// PostgreSQL's `sslmode` field.
    pub fn from_sslmode(mode: &str) -> Self {
        match mode {
            "require" => Tls::Require,
            "disable" => Tls::Off,
            _ => Tls::Prefer,
        }
    }
}

/// What a PostgreSQL probe saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresObservation {
    /// `pg_is_in_recovery()`: true on a reader.
    pub in_recovery: bool,
    /// Whether the canary row round-tripped (None when not asked).
    pub canary_ok: Option<bool>,
}

/// Whether a Valkey endpoint is probed as a cluster (cluster mode enabled): detected
/// from `INFO cluster` (`cluster_enabled:1`), unless the step's `cluster` field says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterMode {
    /// Ask the server.
    #[default]
    Detect,
    /// `cluster = true`: a cluster; a server without cluster support is an error.
    Enabled,
    /// `cluster = false`: one node, whatever the server is (no redirection).
    Disabled,
}

impl ClusterMode {
    /// The step's `cluster` field: absent is [`ClusterMode::Detect`].
    pub fn from_field(cluster: Option<bool>) -> Self {
        match cluster {
            None => ClusterMode::Detect,
            Some(true) => ClusterMode::Enabled,
            Some(false) => ClusterMode::Disabled,
        }
    }
}

/// What a Valkey probe saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValkeyObservation {
    /// First element of `ROLE`: master or slave (replica). For a cluster, the node the
    /// endpoint led to; each shard's primary has its own in [`ShardObservation::role`].
    pub role: String,
    /// Whether the canary key round-tripped (None when not asked); for a cluster,
    /// whether it did in every shard.
    pub canary_ok: Option<bool>,
    /// The cluster behind the endpoint, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterObservation>,
}

/// What a probe of a Valkey cluster saw: its topology (CLUSTER SHARDS, or CLUSTER SLOTS
/// before 7.0) and each shard's primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterObservation {
    /// The shards serving slots, in slot order.
    pub shards: Vec<ShardObservation>,
    /// How many of the 16,384 slots no shard serves (the cluster refuses their keys).
    pub unserved_slots: u32,
}

/// One shard of a cluster, as its primary answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardObservation {
    /// The slots it serves.
    pub slots: Slots,
    /// Its primary's address (`host:port`) as the topology names it; `None` when the
    /// topology names no healthy primary.
    pub primary: Option<String>,
    /// First element of `ROLE` at its primary; `None` when it did not answer.
    pub role: Option<String>,
    /// Why its primary could not be probed (scrubbed of secrets), when it could not.
    pub problem: Option<String>,
    /// Whether its canary key round-tripped (None when not asked or not reached).
    pub canary_ok: Option<bool>,
}

/// Where heartbeats are written and read: a table in PostgreSQL or a sorted set in
/// Valkey, behind the endpoint applications write to (the writer endpoint, which a
/// failover moves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatTarget {
    /// Connection settings.
    pub endpoint: Endpoint,
    /// The store behind it.
    pub store: HeartbeatStore,
}

/// The kind of store a heartbeat lives in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeartbeatStore {
    /// A table `(writer, seq, at_ms, prev_at_ms)` in `database`.
    Postgres {
        /// Database.
        database: String,
        /// Table name (`[schema.]name`, checked by validation).
        table: String,
    },
    /// A sorted set, scored by `at_ms`, of `writer:seq:at_ms:prev_at_ms` members. In a
    /// cluster, one per shard: the key behind the shard's hash tag
    /// ([`HeartbeatShard::key`]).
    Valkey {
        /// Key.
        key: String,
        /// Whether the endpoint is a cluster.
        #[serde(default)]
        cluster: ClusterMode,
    },
}

/// Where one stream of heartbeats goes at a target: the whole store, or one shard of a
/// Valkey cluster. Each stream is numbered on its own, so a loss in one shard shows as
/// a gap in that shard's heartbeats only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatShard {
    /// The shard's slots; `None` for a store that is not a cluster.
    pub slots: Option<Slots>,
    /// The hash tag its key carries, which only the slots decide (so every member of a
    /// Global Datastore, and every failover, agrees on it); `None` without slots.
    pub tag: Option<String>,
    /// Where the topology last put its primary (`host:port`): where a write starts.
    /// Not part of its identity; a stale one costs a MOVED.
    pub primary: Option<String>,
}

impl HeartbeatShard {
    /// The whole store of a target that is not a cluster.
    pub fn whole() -> Self {
        HeartbeatShard {
            slots: None,
            tag: None,
            primary: None,
        }
    }

    /// A cluster's shard serving `slots`, its primary last seen at `primary`.
    pub fn of_slots(slots: Slots, primary: Option<String>) -> Self {
        HeartbeatShard {
            tag: slots.tag(),
            slots: Some(slots),
            primary,
        }
    }

    /// The key this shard's heartbeats live under: `key`, behind the shard's hash tag.
    pub fn key(&self, key: &str) -> String {
        match &self.tag {
            Some(tag) => super::cluster::tagged(tag, key),
            None => key.to_string(),
        }
    }

    /// How people read it: `shard 0-5460`, or empty for a whole store.
    pub fn label(&self) -> String {
        self.slots
            .as_ref()
            .map(|s| format!("shard {s}"))
            .unwrap_or_default()
    }

    /// Its identity: the same stream on every member and after every failover.
    pub fn id(&self) -> &str {
        self.tag.as_deref().unwrap_or("")
    }
}

/// The heartbeats read from one shard (or the whole store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardBeats {
    /// Which.
    pub shard: HeartbeatShard,
    /// Its heartbeats.
    pub beats: Vec<Heartbeat>,
}

/// `ReplicationGroup` (DescribeReplicationGroups): the shape a Global Datastore needs
/// all its members to share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationGroup {
    /// `ReplicationGroupId`.
    pub id: String,
    /// `Status`: creating, available, modifying, ...
    pub status: String,
    /// `ClusterEnabled` (cluster mode); `None` when not reported.
    pub cluster_enabled: Option<bool>,
    /// Number of `NodeGroups` (shards).
    pub shards: usize,
    /// `CacheNodeType`, e.g. `cache.r7g.large`; `None` when not reported.
    pub node_type: Option<String>,
}

// A heartbeat is data the measurement reads; it lives in that leaf.
pub use crate::heartbeat::Heartbeat;

/// `Service.status` of a service that runs and takes updates (DescribeServices).
pub const ECS_ACTIVE: &str = "ACTIVE";

/// `Deployment.status` of the deployment a service is moving to (or settled at).
pub const ECS_PRIMARY: &str = "PRIMARY";

/// `Deployment.rolloutState` once the service reached a steady state.
pub const ECS_ROLLOUT_COMPLETED: &str = "COMPLETED";

/// `Deployment.rolloutState` of a rollout the circuit breaker stopped: "A deployment in
/// FAILED state doesn't launch any new tasks" (ECS API reference, `Deployment`).
pub const ECS_ROLLOUT_FAILED: &str = "FAILED";

/// An ECS service (DescribeServices), the counts ECS keeps for it and its deployments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsService {
    /// `serviceArn`.
    pub arn: String,
    /// `serviceName`.
    pub name: String,
    /// `clusterArn`.
    pub cluster_arn: String,
    /// `status`: `ACTIVE`, `DRAINING` (being deleted) or `INACTIVE` (deleted).
    pub status: String,
    /// `desiredCount`.
    pub desired_count: u32,
    /// `runningCount`: tasks in the RUNNING state.
    pub running_count: u32,
    /// `pendingCount`: tasks in the PENDING state.
    pub pending_count: u32,
    /// `launchType` (`FARGATE`, `EC2`, `EXTERNAL`); `None` for a service placed by a
    /// capacity provider strategy.
    pub launch_type: Option<String>,
    /// The capacity providers of its `capacityProviderStrategy`.
    pub capacity_providers: Vec<String>,
    /// `deployments`: one PRIMARY, plus ACTIVE ones a rollout is draining.
    pub deployments: Vec<EcsDeployment>,
}

/// One deployment of an ECS service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsDeployment {
    /// `id`.
    pub id: String,
    /// `status`: `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `rolloutState` (`IN_PROGRESS`, `COMPLETED`, `FAILED`): "only returned for services
    /// that use the rolling update (ECS) deployment type that aren't behind a Classic Load
    /// Balancer" (ECS API reference, `Deployment`), so `None` says nothing either way.
    pub rollout_state: Option<String>,
    /// `runningCount`.
    pub running_count: u32,
    /// `pendingCount`.
    pub pending_count: u32,
}

impl EcsService {
    /// Whether the service runs `desired` tasks and nothing is moving: `runningCount` is
    /// `desired`, `pendingCount` is 0, and its only deployment is the PRIMARY one with its
    /// rollout `COMPLETED` (or no `rolloutState`, for a service ECS does not report one
    /// for). `Err` says what is still moving, for the live view.
    pub fn settled_at(&self, desired: u32) -> Result<(), String> {
        let mut waiting = Vec::new();
        if self.desired_count != desired {
            waiting.push(format!("desiredCount is {}", self.desired_count));
        }
        if self.running_count != desired {
            waiting.push(format!("{}/{desired} running", self.running_count));
        }
        if self.pending_count != 0 {
            waiting.push(format!("{} pending", self.pending_count));
        }
        match self.deployments.as_slice() {
            [only] if only.status == ECS_PRIMARY => match only.rollout_state.as_deref() {
                None | Some(ECS_ROLLOUT_COMPLETED) => {}
                Some(other) => waiting.push(format!("rollout {other}")),
            },
            [] => waiting.push("no deployment".into()),
            list => waiting.push(format!("{} deployments", list.len())),
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join(", "))
        }
    }

    /// The PRIMARY deployment's rollout state, when ECS reports one.
    pub fn rollout_state(&self) -> Option<&str> {
        self.deployments
            .iter()
            .find(|d| d.status == ECS_PRIMARY)
            .and_then(|d| d.rollout_state.as_deref())
    }

    /// Where its tasks run: its launch type, or its capacity providers.
    pub fn placement(&self) -> String {
        match (&self.launch_type, self.capacity_providers.as_slice()) {
            (Some(t), _) => format!("launch type {t}"),
            (None, []) => "the cluster's default capacity provider strategy".into(),
            (None, list) => format!("capacity providers {}", list.join(", ")),
        }
    }
}

/// `AutoScalingGroup.Status` while the group is being deleted (the only status AWS
/// sets).
pub const ASG_DELETING: &str = "Delete in progress";

/// The three sizes of an Auto Scaling group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSizes {
    /// `MinSize`.
    pub min_size: u32,
    /// `DesiredCapacity`.
    pub desired_capacity: u32,
    /// `MaxSize`.
    pub max_size: u32,
}

impl GroupSizes {
    /// Whether AWS would keep them: `MinSize <= DesiredCapacity <= MaxSize`.
    pub fn consistent(&self) -> bool {
        self.min_size <= self.desired_capacity && self.desired_capacity <= self.max_size
    }
}

/// `min 1, desired 2, max 4`.
impl std::fmt::Display for GroupSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {}, desired {}, max {}",
            self.min_size, self.desired_capacity, self.max_size
        )
    }
}

/// What an UpdateAutoScalingGroup sets: the sizes given, the others left as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSizeUpdate {
    /// `MinSize`.
    pub min_size: Option<u32>,
    /// `DesiredCapacity`.
    pub desired_capacity: Option<u32>,
    /// `MaxSize`.
    pub max_size: Option<u32>,
}

impl GroupSizeUpdate {
    /// All three, as a rollback restores them.
    pub fn all(s: GroupSizes) -> Self {
        GroupSizeUpdate {
            min_size: Some(s.min_size),
            desired_capacity: Some(s.desired_capacity),
            max_size: Some(s.max_size),
        }
    }

    /// The sizes the group has once this is applied to `current`.
    pub fn merged(&self, current: GroupSizes) -> GroupSizes {
        GroupSizes {
            min_size: self.min_size.unwrap_or(current.min_size),
            desired_capacity: self.desired_capacity.unwrap_or(current.desired_capacity),
            max_size: self.max_size.unwrap_or(current.max_size),
        }
    }
}

/// An instance of an Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsgInstance {
    /// `InstanceId`.
    pub id: String,
    /// `LifecycleState`: `Pending`, `Pending:Wait`, `InService`, `Terminating`, ...
    pub lifecycle_state: String,
    /// `HealthStatus`: `Healthy` or `Unhealthy`.
    pub health_status: String,
}

/// An Auto Scaling group (DescribeAutoScalingGroups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoScalingGroup {
    /// `AutoScalingGroupName`.
    pub name: String,
    /// `AutoScalingGroupARN`.
    pub arn: String,
    /// `Status`: `Delete in progress` while it is deleted, else absent.
    pub status: Option<String>,
    /// Its sizes.
    pub sizes: GroupSizes,
    /// `Instances`.
    pub instances: Vec<AsgInstance>,
    /// `SuspendedProcesses` (`Launch`, `Terminate`, `HealthCheck`, ...).
    pub suspended_processes: Vec<String>,
}

impl AutoScalingGroup {
    /// Whether the group has settled at its desired capacity: as many instances
    /// `InService` and `Healthy` as it desires, and none launching (`Pending*`) or
    /// terminating (`Terminating*`), so a scale-in is done once only the desired
    /// instances are left. `Err` says what is still moving.
    pub fn settled(&self) -> Result<(), String> {
        let want = self.sizes.desired_capacity;
        let ready = self
            .instances
            .iter()
            .filter(|i| i.lifecycle_state == "InService" && i.health_status == "Healthy")
            .count();
        let moving = |prefix: &str| {
            self.instances
                .iter()
                .filter(|i| i.lifecycle_state.starts_with(prefix))
                .count()
        };
        let (pending, terminating) = (moving("Pending"), moving("Terminating"));
        let mut waiting = Vec::new();
        if u32::try_from(ready).ok() != Some(want) {
            waiting.push(format!("{ready}/{want} InService and Healthy"));
        }
        if pending > 0 {
            waiting.push(format!("{pending} launching"));
        }
        if terminating > 0 {
            waiting.push(format!("{terminating} terminating"));
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join(", "))
        }
    }

    /// Whether `process` (`Launch`, `Terminate`) is suspended.
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended_processes.iter().any(|p| p == process)
    }
}

/// An S3 replication backlog: S3 Replication metrics of a source bucket's enabled rules,
/// summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationBacklog {
    /// `OperationsPendingReplication`.
    pub operations: u64,
    /// `BytesPendingReplication`; `None` when it is not known for every rule.
    pub bytes: Option<u64>,
}

/// The unit of a metric datum, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricUnit {
    /// `Seconds`.
    Seconds,
    /// `Bytes`.
    Bytes,
    /// `Count`.
    Count,
    /// `None`: a plain number (a 1/0 gauge).
    None,
}

impl MetricUnit {
    /// CloudWatch's name of the unit.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricUnit::Seconds => "Seconds",
            MetricUnit::Bytes => "Bytes",
            MetricUnit::Count => "Count",
            MetricUnit::None => "None",
        }
    }
}

/// One datapoint put to CloudWatch (`PutMetricData`'s `MetricDatum`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricDatum {
    /// The metric's name.
    pub name: String,
    /// Its dimensions, name and value, in order (at most 30).
    pub dimensions: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: MetricUnit,
    /// When it was measured.
    pub at: std::time::SystemTime,
}
