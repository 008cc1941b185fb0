//! The seam between drpilot and the cloud: narrow async traits with our own types.
//!
//! Actions only ever see these traits, so one action implementation runs against AWS
//! (`cloud/aws.rs`, a later issue), the AWS emulator (the same SDK code pointed at
//! another endpoint) and the simulated world (`sim`). Each trait has only the calls
//! the catalogue needs. Every call that AWS routes by region takes the region to send
//! it to explicitly: which region receives a failover is part of its semantics (a
//! switchover goes to the primary's region, an unplanned failover to the target's).
//! Route 53 and S3 resolve their own endpoints (Route 53's control plane is global;
//! a bucket's region is found from the bucket). ECS services and Auto Scaling
//! groups are addressed by the region the step names.
//!
//! [`DataPlane`] is what applications see rather than an AWS API: `live.rs` probes the
//! real endpoints in a run against AWS, and `sim` derives the answers from its
//! simulated control planes.
//!
//! Retries: reads may be retried freely by the caller; a mutating call that fails with
//! a [`CloudErrorKind::Transient`] or [`CloudErrorKind::Unreachable`] error has an
//! unknown outcome, and the caller must re-read state before sending it again.
//!
//! Reachability: both backends send every call through [`reach::Reach`], the breaker of
//! its (region, service). A call it refuses (`reach::REGION_UNREACHABLE`) was not sent:
//! its outcome is known.

pub mod aws;
pub mod cluster;
pub mod error;
pub mod live;
pub mod reach;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use error::{CloudError, CloudErrorKind};
pub use types::*;

/// Result of a cloud call.
pub type CloudResult<T> = Result<T, CloudError>;

/// Aurora Global Database (RDS), plus the CloudWatch lag metric it publishes.
#[async_trait]
pub trait Rds: Send + Sync {
    /// DescribeGlobalClusters for one identifier, sent to `region`.
    async fn describe_global_cluster(&self, region: &str, id: &str) -> CloudResult<GlobalCluster>;
    /// DescribeDBClusters for one cluster ARN, sent to the ARN's region.
    async fn describe_cluster(&self, arn: &str) -> CloudResult<DbCluster>;
    /// FailoverGlobalCluster, sent to `region`. With `allow_data_loss` this is the
    /// unplanned failover (send it to the target's region); without, a switchover.
    async fn failover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> CloudResult<()>;
    /// SwitchoverGlobalCluster, sent to `region` (the current primary's).
    async fn switchover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
    ) -> CloudResult<()>;
    /// RemoveFromGlobalCluster of `cluster_arn`, sent to `region` (the member's).
    async fn remove_from_global_cluster(
        &self,
        region: &str,
        id: &str,
        cluster_arn: &str,
    ) -> CloudResult<()>;
    /// The replication lag of a secondary, read from CloudWatch in `region` (the
    /// secondary's): the newest `AuroraGlobalDBRPOLag` datapoint, or, for a cluster that
    /// publishes none (Aurora MySQL versions without it), the newest
    /// `AuroraGlobalDBReplicationLag`. `None` (unknown) when there is no recent datapoint
    /// of either: none at all, or a newest one too old to be the lag now (a few minutes;
    /// the metrics stop while the primary's region is down, and a value from before the
    /// outage is never returned as the lag).
    async fn replication_lag(
        &self,
        region: &str,
        global_id: &str,
        cluster_arn: &str,
    ) -> CloudResult<Option<Duration>>;
    /// ModifyDBCluster of the cluster's `ServerlessV2ScalingConfiguration`
    /// (`MinCapacity`, `MaxCapacity`) with `ApplyImmediately`, sent once (no SDK retry) to
    /// the cluster's region (the ARN's).
    async fn modify_capacity_range(
        &self,
        cluster_arn: &str,
        range: CapacityRange,
    ) -> CloudResult<()>;
    /// DescribeDBInstances with the filter `db-cluster-id` = the cluster's ARN, sent to
    /// its region: the cluster's instances and their classes.
    async fn cluster_instances(&self, cluster_arn: &str) -> CloudResult<Vec<DbInstance>>;
    /// The capacity an Aurora Serverless v2 cluster runs at now: the newest datapoint
    /// (Maximum over one minute) of CloudWatch `AWS/RDS` `ServerlessDatabaseCapacity`
    /// (dimension `DBClusterIdentifier`), read in the cluster's region. `None` (unknown)
    /// without a recent datapoint: none (a provisioned cluster publishes none), or a
    /// newest one too old to be a reading of now (the metric stops while the region is
    /// down).
    async fn serverless_capacity(&self, cluster_arn: &str) -> CloudResult<Option<f64>>;
    /// DescribeDBClusterSnapshots of a cluster (all types), sent to the cluster's region.
    async fn list_cluster_snapshots(&self, cluster_arn: &str) -> CloudResult<Vec<ClusterSnapshot>>;
    /// CopyDBClusterSnapshot within the cluster's region.
    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
    ) -> CloudResult<ClusterSnapshot>;
}

/// ElastiCache global datastores (Valkey).
#[async_trait]
pub trait ElastiCache: Send + Sync {
    /// DescribeGlobalReplicationGroups with ShowMemberInfo, sent to `region`.
    async fn describe_global_datastore(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<GlobalDatastore>;
    /// FailoverGlobalReplicationGroup, sent to `region`.
    async fn failover_global_datastore(
        &self,
        region: &str,
        id: &str,
        primary_region: &str,
        primary_replication_group: &str,
    ) -> CloudResult<()>;
    /// DisassociateGlobalReplicationGroup of a member, sent to `region`.
    async fn disassociate_global_datastore(
        &self,
        region: &str,
        id: &str,
        replication_group: &str,
        replication_group_region: &str,
    ) -> CloudResult<()>;
    /// DescribeReplicationGroups of one replication group, sent to `region` (its own:
    /// a replication group is known only in its region).
    async fn describe_replication_group(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<ReplicationGroup>;
}

/// S3 buckets and replication.
#[async_trait]
pub trait S3: Send + Sync {
    /// GetBucketReplication: the rules (empty when there is no configuration).
    async fn replication_rules(&self, bucket: &str) -> CloudResult<Vec<ReplicationRule>>;
    /// GetBucketVersioning: whether versioning is `Enabled`.
    async fn versioning_enabled(&self, bucket: &str) -> CloudResult<bool>;
    /// PutObject of a small object.
    async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> CloudResult<()>;
    /// Deletes every version of an object (and its delete markers), so a canary leaves
    /// nothing behind in a versioned bucket. Deleting what does not exist succeeds.
    async fn delete_object(&self, bucket: &str, key: &str) -> CloudResult<()>;
    /// HeadObject: its replication status, `None` when it has none, `NotFound` when the
    /// object does not exist.
    async fn replication_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> CloudResult<Option<ReplicationStatus>>;
    /// The `OperationsPendingReplication` (and `BytesPendingReplication`) metrics of a
    /// bucket's replication, if published: the sums over `rules` (the bucket's rules as
    /// the caller just read them with [`S3::replication_rules`], so they are not read
    /// twice). `None` when the operations are not known for every enabled rule.
    async fn replication_backlog(
        &self,
        bucket: &str,
        rules: &[ReplicationRule],
    ) -> CloudResult<Option<ReplicationBacklog>>;
}

/// How a write to a state object is conditioned: the two S3 conditional writes the
/// shared journal and lock are built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutCondition {
    /// `If-None-Match: *`: only when no object has the key (exactly one of several
    /// racing writers succeeds).
    IfAbsent,
    /// `If-Match: <etag>`: only when the object is still the version read (a lease
    /// renewal, a takeover, a release).
    IfMatch(String),
}

/// A state object read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// The bytes.
    pub body: Vec<u8>,
    /// Its ETag, for a later [`PutCondition::IfMatch`].
    pub etag: String,
}

/// drpilot's own state in S3 (the journal's objects and the runbook lock), as opposed
/// to the stack's buckets behind [`S3`]. Each call finds the bucket's region itself.
/// A failed condition is an error with code `PreconditionFailed` (HTTP 412) or
/// `ConditionalRequestConflict` (HTTP 409, a concurrent conditional write), see
/// [`is_condition_failed`].
#[async_trait]
pub trait StateObjects: Send + Sync {
    /// PutObject with a condition, sent once (no SDK retry: a lost answer is resolved
    /// by the caller reading the object back). Returns the new ETag.
    async fn put_state(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: PutCondition,
    ) -> CloudResult<String>;
    /// GetObject; `None` when there is no such key.
    async fn get_state(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredObject>>;
    /// Every key under `prefix` (ListObjectsV2, all pages), in S3's (lexical) order.
    async fn list_state(&self, bucket: &str, prefix: &str) -> CloudResult<Vec<String>>;
    /// The bucket's region (GetBucketLocation, asked of several regions in turn).
    async fn state_bucket_region(&self, bucket: &str) -> CloudResult<String>;
    /// Who writes the state (STS GetCallerIdentity: an ARN), for an approval's record.
    async fn caller_identity(&self) -> CloudResult<String> {
        Err(CloudError::new(
            CloudErrorKind::InvalidRequest,
            "GetCallerIdentity",
            None,
            "this state store has no AWS identity".to_string(),
        ))
    }
}

/// Whether a conditional write was refused because its condition no longer holds: 412
/// `PreconditionFailed`, or 409 `ConditionalRequestConflict` (another conditional
/// write to the key was in flight; AWS's advice is to read again, which is what a
/// loser of the race does).
pub fn is_condition_failed(e: &CloudError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    )
}

/// Route 53 (control plane in us-east-1; health-check status from CloudWatch in us-east-1).
#[async_trait]
pub trait Route53: Send + Sync {
    /// ListResourceRecordSets: the record sets with this name and type.
    async fn list_record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Vec<RecordSet>>;
    /// ChangeResourceRecordSets with up to 1,000 changes.
    async fn change_record_sets(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<ChangeInfo>;
    /// GetChange.
    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo>;
    /// GetHealthCheck: the settings drpilot flips.
    async fn get_health_check(&self, id: &str) -> CloudResult<HealthCheck>;
    /// UpdateHealthCheck of Inverted and/or Disabled.
    async fn update_health_check(
        &self,
        id: &str,
        inverted: Option<bool>,
        disabled: Option<bool>,
    ) -> CloudResult<()>;
    /// Whether Route 53 considers the health check healthy now (after Inverted and
    /// Disabled are applied, as Route 53 does): the newest datapoint of the CloudWatch
    /// metric `AWS/Route53` `HealthCheckStatus` (dimension `HealthCheckId`; 1 healthy, 0
    /// unhealthy), the Minimum over one minute, read with GetMetricData in us-east-1,
    /// the only region Route 53 publishes it in. Not GetHealthCheckStatus: AWS documents
    /// that API as a development aid that does not support production use, and its
    /// per-checker observations leave the verdict to the caller. No current datapoint
    /// (none, or too old to be a reading of now) is a `Transient` error, never a verdict.
    async fn health_check_healthy(&self, id: &str) -> CloudResult<bool>;
    /// GetHostedZoneLimit `MAX_RRSETS_BY_ZONE`: how many record sets the zone holds
    /// and how many its quota allows.
    async fn zone_record_quota(&self, zone_id: &str) -> CloudResult<Quota>;
}

/// Route 53 Application Recovery Controller routing controls, through a cluster's
/// data plane (the `route53-recovery-cluster` API).
///
/// Each call goes to one of the cluster's regional endpoints, signed for that endpoint's
/// region. The data plane is what keeps working while us-east-1's Route 53 control plane
/// is impaired: callers try the cluster's endpoints in turn until one answers (AWS's
/// guidance), so this trait takes the endpoint and leaves the order to the action.
#[async_trait]
pub trait RoutingControls: Send + Sync {
    /// GetRoutingControlState at `endpoint`.
    async fn routing_control_state(
        &self,
        endpoint: &ClusterEndpoint,
        arn: &str,
    ) -> CloudResult<RoutingControlState>;
    /// UpdateRoutingControlStates at `endpoint`: all updates are applied together or not
    /// at all (safety rules are evaluated on the result). `override_safety_rules` lists
    /// safety rule ARNs to bypass (`SafetyRulesToOverride`).
    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        updates: &[RoutingControlUpdate],
        override_safety_rules: &[String],
    ) -> CloudResult<()>;
}

/// Amazon ECS services: the desired count of a service, and how far its tasks are.
/// Every call goes to the region the step names (a service lives in one region, and the
/// one being failed away from may be down).
#[async_trait]
pub trait Ecs: Send + Sync {
    /// DescribeServices of one service (name or ARN) in `cluster` (name or ARN), sent
    /// to `region`. `None` when ECS answers with a failure `MISSING`: DescribeServices
    /// reports an unknown service in `failures`, not as an error. A cluster that does
    /// not exist is `ClusterNotFoundException` (`NotFound`).
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> CloudResult<Option<EcsService>>;
    /// UpdateService of `desiredCount` alone (never `forceNewDeployment`, never the task
    /// definition: a scale, not a deployment), sent once (no SDK retry) to `region`.
    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> CloudResult<()>;
}

/// EC2 Auto Scaling groups: their sizes and their instances. Every call goes to the
/// region the step names.
#[async_trait]
pub trait AutoScaling: Send + Sync {
    /// DescribeAutoScalingGroups of one group by name, sent to `region`. `None` when
    /// there is none: AWS answers an unknown name with an empty list, not an error.
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> CloudResult<Option<AutoScalingGroup>>;
    /// UpdateAutoScalingGroup of the sizes `update` gives (the others untouched), sent
    /// once (no SDK retry) to `region`.
    async fn update_group_sizes(
        &self,
        region: &str,
        name: &str,
        update: GroupSizeUpdate,
    ) -> CloudResult<()>;
}

/// Amazon SNS: what a run's notifications publish to an `sns:` receiver
/// (`--notify sns:arn:aws:sns:REGION:ACCOUNT:TOPIC`). Not behind the breaker: a
/// notification never holds the run (the notifier bounds each attempt itself, off the
/// engine's path), and a topic in a dark region costs only its own deliveries.
#[async_trait]
pub trait Sns: Send + Sync {
    /// Publish of one message to `topic_arn`, sent once (no SDK retry: the notifier
    /// retries, and a repeated notification is harmless) to `region` (the topic's).
    /// The message id SNS gave it.
    async fn publish(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> CloudResult<String>;
}

/// SNS's limit on a subject: at most 100 printable ASCII characters, one line.
pub const MAX_SNS_SUBJECT: usize = 100;

/// A subject SNS accepts (it refuses the whole Publish otherwise): printable ASCII only
/// (others become `?`), one line, at most [`MAX_SNS_SUBJECT`] characters.
pub fn sns_subject(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .take(MAX_SNS_SUBJECT)
        .collect::<String>()
        .trim()
        .to_string()
}

/// CloudWatch metrics drpilot publishes itself (`drpilot readiness --cloudwatch`), as
/// opposed to the AWS metrics the other traits read.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// PutMetricData of `data` under `namespace`, sent to `region`, in as many requests
    /// as CloudWatch's limit of 1,000 datums per request needs. Repeating a datum is
    /// harmless (CloudWatch keeps one datapoint more), so the SDK's retries stay on.
    async fn put_metric_data(
        &self,
        region: &str,
        namespace: &str,
        data: &[MetricDatum],
    ) -> CloudResult<()>;
}

/// The data planes: what applications see, which a control plane cannot tell.
#[async_trait]
pub trait DataPlane: Send + Sync {
    /// An HTTP request.
    async fn http(&self, probe: &HttpProbe) -> CloudResult<HttpObservation>;
    /// Connects to PostgreSQL; optionally writes and reads back a canary row.
    async fn postgres(
        &self,
        endpoint: &Endpoint,
        database: &str,
        canary: bool,
    ) -> CloudResult<PostgresObservation>;
    /// Connects to Valkey; optionally SETs and GETs a canary key with a TTL. A cluster
    /// (detected, or as `cluster` says) is probed shard by shard: every shard's primary
    /// answers ROLE, and the canary is written to each shard (behind its hash tag).
    async fn valkey(
        &self,
        endpoint: &Endpoint,
        cluster: ClusterMode,
        canary: bool,
    ) -> CloudResult<ValkeyObservation>;
    /// Resolves a name (A, AAAA or CNAME) through the given resolvers (system's if empty).
    async fn resolve(
        &self,
        name: &str,
        record_type: &str,
        resolvers: &[String],
    ) -> CloudResult<Vec<String>>;
    /// The streams heartbeats go to at `target`: the whole store, unless it is a Valkey
    /// cluster, whose shards are read from its topology (afresh: a failover or a
    /// resharding changes it). No I/O for a store that cannot be a cluster.
    async fn heartbeat_shards(&self, target: &HeartbeatTarget) -> CloudResult<Vec<HeartbeatShard>>;
    /// Writes one heartbeat to `shard` at the primary behind `target` (creating the
    /// table on first use) and drops heartbeats older than `keep` before `beat`. A
    /// replica refuses the write (`InvalidState`): the writer must not count it as
    /// acknowledged.
    async fn heartbeat_write(
        &self,
        target: &HeartbeatTarget,
        shard: &HeartbeatShard,
        beat: &Heartbeat,
        keep: Duration,
    ) -> CloudResult<()>;
    /// The heartbeats visible at `target` written at or after `since_ms`, shard by
    /// shard (one entry, the whole store, unless it is a cluster), read from the
    /// primaries.
    async fn heartbeat_read(
        &self,
        target: &HeartbeatTarget,
        since_ms: i64,
    ) -> CloudResult<Vec<ShardBeats>>;
}

/// Every service an action may call, behind its trait.
#[derive(Clone)]
pub struct Cloud {
    /// Aurora.
    pub rds: Arc<dyn Rds>,
    /// ElastiCache.
    pub elasticache: Arc<dyn ElastiCache>,
    /// S3.
    pub s3: Arc<dyn S3>,
    /// Route 53.
    pub route53: Arc<dyn Route53>,
    /// Route 53 ARC routing controls (data plane).
    pub routing: Arc<dyn RoutingControls>,
    /// Amazon ECS.
    pub ecs: Arc<dyn Ecs>,
    /// EC2 Auto Scaling.
    pub autoscaling: Arc<dyn AutoScaling>,
    /// Amazon SNS (notifications only).
    pub sns: Arc<dyn Sns>,
    /// Data planes.
    pub data: Arc<dyn DataPlane>,
    /// drpilot's own CloudWatch metrics.
    pub metrics: Arc<dyn Metrics>,
    /// What is known of each region's reachability, and the breaker every call of
    /// the backend goes through (shared by the per-account clouds).
    pub reach: reach::Reach,
    /// The same services with the credentials of each `[accounts]` entry, by name.
    /// Empty for a cloud that serves every account itself (the simulated world is one
    /// world for all accounts).
    pub accounts: Arc<std::collections::BTreeMap<String, Cloud>>,
}

impl Cloud {
    /// The services for a step's `account` (`None`: the caller's own credentials).
    /// The CLI builds an entry for every account the runbook declares, and validation
    /// refuses a step naming an undeclared one; a cloud without per-account entries
    /// serves every account.
    pub fn for_account(&self, account: Option<&str>) -> &Cloud {
        account.and_then(|a| self.accounts.get(a)).unwrap_or(self)
    }
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cloud")
    }
}
