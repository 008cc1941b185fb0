//! `--sim-config FILE`: the world's initial state and its faults, in TOML.
//!
//! Parsed with the same care as a runbook: every problem is reported at once, with its
//! line and column, unknown keys are errors with a "did you mean", and nothing is
//! built until the whole file is valid. Resource names are checked against the world
//! when it is built ([`super::SimWorld::from_runbook`]), still pointing into the file.
//!
//! ```toml
//! [timing]                         # any operation's duration: "90s" or ["60s", "120s"]
//! aurora_failover = ["60s", "120s"]
//!
//! [regions.us-east-1]              # a whole region
//! unreachable_from = "2m"          # virtual time since the run started
//! unreachable_until = "1h"         # default: for good
//! outage = "hold"                  # hold: calls get no answer until the caller's deadline
//!                                  # (default, as real outages); reset: refused at once
//! services = ["s3"]                # only these services go down (default: the whole
//!                                  # region, its databases and caches included)
//! latency = "20s"                  # every call to the region answers this much later
//! app_healthy = true               # the application behind its endpoints (HTTP model)
//!
//! [global_clusters.acme-prod]
//! primary = "us-west-2"            # the writer is elsewhere
//! [clusters.acme-prod-usw2]        # identifier or ARN
//! lag = "45s"                      # also: status, instances, engine_version, missing
//! instance_class = "db.serverless" # a provisioned class (db.r6g.large) is not Serverless v2
//! min_acu = 0.5                    # ServerlessV2ScalingConfiguration (default: a writer
//! max_acu = 16                     #   2-64 ACUs, a secondary 0.5-8)
//! capacity = 8                     # ACUs its load asks for (ServerlessDatabaseCapacity
//!                                  #   reads it within the range; default: 8 on a writer,
//!                                  #   the minimum on a secondary)
//! [datastores.ldgnf-acme-sessions]
//! primary = "us-west-2"            # also: status, missing
//! shards = 3                       # every member a cluster of 3 shards (also: node_type)
//! [replication_groups.acme-sessions-usw2]
//! status = "associating"           # also: missing
//! shards = 2                       # this member only (also: cluster_enabled, node_type)
//! cut_shards = [3]                 # its shard 3 (in slot order) stops receiving from the
//! cut_from = "30s"                 # primary's from then on: a per-shard replication loss
//! [buckets.acme-prod-assets-use1]
//! backlog = 1500                   # also: backlog_clears, versioning, replication_enabled,
//!                                  #       replication_prefix, missing
//! [zones.Z0731524T4AKBG1PJWH9]
//! missing = true
//! [health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]
//! inverted = true                  # also: disabled, region, missing
//! [routing_controls."arn:aws:route53-recovery-control::111122223333:controlpanel/…/routingcontrol/…"]
//! state = "On"                     # also: missing
//!
//! [ecs_services.acme-api]          # name, CLUSTER/NAME or ARN
//! desired = 2                      # desiredCount before the run (default: a quarter
//!                                  #   of what the runbook scales it to)
//! running = 1                      # RUNNING at the start (default: all); the rest start
//! status = "ACTIVE"                # also: DRAINING, INACTIVE
//! launch_type = "FARGATE"          # also: EC2, EXTERNAL
//! rollout_state = false            # no rolloutState (CODE_DEPLOY or EXTERNAL controller)
//! deploying_until = "3m"           # a deployment rolls out until then
//! cluster_missing = true           # its cluster does not exist (also: missing)
//!
//! [autoscaling_groups.acme-web-usw2]
//! min_size = 0                     # the sizes before the run (default: min 0, desired a
//! desired_capacity = 1             #   quarter of what the runbook sets, max the largest
//! max_size = 4                     #   size the runbook names)
//! in_service = 1                   # InService at the start (default: all); the rest launch
//! suspended_processes = ["Launch"] # processes suspended (a scale that cannot happen)
//! deleting = true                  # Status "Delete in progress" (also: missing)
//!
//! [elasticache]                    # where AWS's documents disagree
//! failover_with_unreachable_members = "refuse"
//!                                  # FailoverGlobalReplicationGroup while the datastore
//!                                  # is not available or a member's region does not
//!                                  # answer: "refuse" (the API reference's error text;
//!                                  # the default) or "allow" (the user guide: promotion
//!                                  # "anytime, even if other modifications are in
//!                                  # progress"; the old primary becomes a secondary)
//!
//! [[fault]]
//! kind = "error"                   # throttle | error | latency | hang
//! service = "rds"                  # rds, elasticache, s3, cloudwatch, route53,
//!                                  # route53-recovery-cluster, ecs, dataplane
//! operation = "FailoverGlobalCluster"
//! region = "us-west-2"
//! rate = 1.0                       # probability per matching call
//! times = 2                        # at most N times (default: forever)
//! from = "0s"                      # active window, virtual time
//! until = "10m"
//! error = "transient"              # kind = "error": the class of error
//! code = "InternalFailure"
//! after_apply = true               # mutations: applied, then the answer is lost
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::faults::FaultSpec;
use super::state::{FailoverReading, Timing};
use crate::cloud::RoutingControlState;
use crate::runbook::diag::{Diagnostics, Problem, RenderStyle, SourceFile, render_problems};

mod parser;

use parser::Parser;

/// Sim configs larger than this are refused before parsing (as runbooks are).
pub const MAX_SIM_CONFIG_BYTES: usize = 1024 * 1024;

/// `[regions.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionOverride {
    /// The region.
    pub name: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Unreachable from this virtual time.
    pub unreachable_from: Option<Duration>,
    /// Reachable again at this virtual time.
    pub unreachable_until: Option<Duration>,
    /// Whether the application in it is healthy.
    pub app_healthy: Option<bool>,
    /// `outage = "reset"`: calls into the outage are refused at once instead of held.
    pub outage_reset: Option<bool>,
    /// `services`: the services the outage takes down (their signing names).
    pub services: Option<Vec<String>>,
    /// `latency`: every call to the region answers this much later.
    pub latency: Option<Duration>,
}

/// `local = { host = "127.0.0.1", port = 5433, ... }` in `[clusters.ID]` or
/// `[replication_groups.ID]`: the member's data plane is a real server on this machine.
/// Probes and heartbeats reaching the member go to it, and the simulated control plane
/// acts on it: a promotion runs `pg_promote()` / `REPLICAOF NO ONE`, an old primary is
/// fenced read-only (PostgreSQL) or made to follow the new one (`REPLICAOF`, or the
/// `follow` command for PostgreSQL). Loopback only: a simulation never promotes a
/// server on another machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalServer {
    /// A loopback address or `localhost`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User (default: the step's).
    pub user: Option<String>,
    /// Variable holding the password (default: the step's `password_env`).
    pub password_env: Option<String>,
    /// Database (PostgreSQL; default: the step's).
    pub database: Option<String>,
    /// Command (program and arguments) that rebuilds this PostgreSQL server as a
    /// streaming replica of the new primary, run when a failover demotes it; it gets
    /// `DRPILOT_LAB_PRIMARY_HOST` / `_PORT` and `DRPILOT_LAB_HOST` / `_PORT`.
    /// Without it a demoted server stays fenced read-only and cannot be promoted again.
    pub follow: Vec<String>,
    /// Valkey / redis in cluster mode: this member's nodes in one real cluster
    /// (`host:port`, one per shard, as the cluster announces them), which the other
    /// member's nodes replicate or follow. `host`/`port` is then any node of it (the
    /// seed). A promotion is `CLUSTER FAILOVER TAKEOVER` on each of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// `[global_clusters.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalClusterOverride {
    /// Global cluster identifier.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Region of the writer.
    pub primary: Option<String>,
    /// Its engine version (and its members', unless they set their own).
    pub engine_version: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[clusters.ID]` (identifier or ARN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterOverride {
    /// Cluster identifier or ARN.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Replication lag while a secondary.
    pub lag: Option<Duration>,
    /// Status (e.g. `modifying`, `inaccessible-encryption-credentials`).
    pub status: Option<String>,
    /// Number of DB instances.
    pub instances: Option<u32>,
    /// `DBInstanceClass` of its instances (default `db.serverless`).
    pub instance_class: Option<String>,
    /// `ServerlessV2ScalingConfiguration` `MinCapacity`.
    pub min_acu: Option<crate::names::Acu>,
    /// `ServerlessV2ScalingConfiguration` `MaxCapacity`.
    pub max_acu: Option<crate::names::Acu>,
    /// The capacity its load asks for, in ACUs (`ServerlessDatabaseCapacity` reads it
    /// within the range).
    pub capacity: Option<crate::names::Acu>,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Its data plane is a real PostgreSQL server.
    pub local: Option<LocalServer>,
    /// It does not exist.
    pub missing: bool,
}

/// `[datastores.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatastoreOverride {
    /// Global replication group id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Region of the primary member.
    pub primary: Option<String>,
    /// Status (e.g. `modifying`).
    pub status: Option<String>,
    /// Every member is a cluster (cluster mode enabled) of this many shards.
    pub shards: Option<u16>,
    /// Every member's node type.
    pub node_type: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[replication_groups.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationGroupOverride {
    /// Replication group id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Membership status (e.g. `associating`).
    pub status: Option<String>,
    /// Its shards (node groups); more than one means cluster mode enabled.
    pub shards: Option<u16>,
    /// Cluster mode (`ClusterEnabled`), when it differs from what `shards` implies.
    pub cluster_enabled: Option<bool>,
    /// `CacheNodeType`.
    pub node_type: Option<String>,
    /// Its shards (1 for the first, in slot order) that stop receiving from the
    /// primary's: a replication cut, shard by shard.
    pub cut_shards: Option<Vec<u16>>,
    /// When the cut starts (virtual time; default the start).
    pub cut_from: Option<Duration>,
    /// Its data plane is a real Valkey / redis server.
    pub local: Option<LocalServer>,
    /// It does not exist.
    pub missing: bool,
}

/// `[buckets.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketOverride {
    /// Bucket name.
    pub name: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Versioning enabled.
    pub versioning: Option<bool>,
    /// Its replication rules' `Status`.
    pub replication_enabled: Option<bool>,
    /// The key prefix its replication rules' filter replicates (default: every key).
    pub replication_prefix: Option<String>,
    /// Operations pending replication at the start.
    pub backlog: Option<u64>,
    /// When that backlog has drained (default: never).
    pub backlog_clears: Option<Duration>,
    /// It does not exist.
    pub missing: bool,
}

/// `[zones.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneOverride {
    /// Hosted zone id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// It does not exist.
    pub missing: bool,
}

/// `[health_checks.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheckOverride {
    /// Health check id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// `Inverted`.
    pub inverted: Option<bool>,
    /// `Disabled`.
    pub disabled: Option<bool>,
    /// The region whose application it monitors.
    pub region: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[routing_controls.ARN]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingControlOverride {
    /// Routing control ARN.
    pub arn: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Its state before the run (what its health checks see too).
    pub state: Option<RoutingControlState>,
    /// It does not exist.
    pub missing: bool,
}

/// `[ecs_services.NAME]` (the service's name, `CLUSTER/NAME`, or its ARN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcsServiceOverride {
    /// Service name, `CLUSTER/NAME` or ARN.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// `desiredCount` before the run.
    pub desired: Option<u32>,
    /// How many of its tasks are RUNNING at the start (default: all); the others are
    /// PENDING and start over `[timing] ecs_task_start`.
    pub running: Option<u32>,
    /// `status` (`ACTIVE`, `DRAINING`, `INACTIVE`).
    pub status: Option<String>,
    /// `launchType`.
    pub launch_type: Option<String>,
    /// Whether ECS reports a `rolloutState` (default true: the rolling update
    /// deployment controller; false as for CODE_DEPLOY or EXTERNAL).
    pub rollout_state: Option<bool>,
    /// A deployment rolls out until then (virtual time).
    pub deploying_until: Option<Duration>,
    /// Its cluster does not exist.
    pub cluster_missing: bool,
    /// It does not exist.
    pub missing: bool,
}

/// `[autoscaling_groups.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoScalingGroupOverride {
    /// Group name.
    pub name: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// `MinSize` before the run.
    pub min_size: Option<u32>,
    /// `DesiredCapacity` before the run.
    pub desired_capacity: Option<u32>,
    /// `MaxSize` before the run.
    pub max_size: Option<u32>,
    /// How many of its instances are InService at the start (default: all); the others
    /// are Pending and come InService over `[timing] asg_instance_launch`.
    pub in_service: Option<u32>,
    /// `SuspendedProcesses` (`Launch`, `Terminate`, ...).
    pub suspended_processes: Option<Vec<String>>,
    /// It is being deleted (`Status` `Delete in progress`).
    pub deleting: Option<bool>,
    /// It does not exist.
    pub missing: bool,
}

/// A parsed `--sim-config`: how the world differs from the runbook's "before" state,
/// and what goes wrong in it. `SimConfig::default()` is a healthy world with no faults.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The file, for errors found when the world is built.
    pub source: Option<SourceFile>,
    /// Operation durations.
    pub timing: Timing,
    /// Region outages and application health.
    pub regions: Vec<RegionOverride>,
    /// Aurora global clusters.
    pub global_clusters: Vec<GlobalClusterOverride>,
    /// Aurora clusters.
    pub clusters: Vec<ClusterOverride>,
    /// Valkey global datastores.
    pub datastores: Vec<DatastoreOverride>,
    /// Valkey replication groups.
    pub replication_groups: Vec<ReplicationGroupOverride>,
    /// S3 buckets.
    pub buckets: Vec<BucketOverride>,
    /// Route 53 hosted zones.
    pub zones: Vec<ZoneOverride>,
    /// Route 53 health checks.
    pub health_checks: Vec<HealthCheckOverride>,
    /// Route 53 ARC routing controls.
    pub routing_controls: Vec<RoutingControlOverride>,
    /// ECS services.
    pub ecs_services: Vec<EcsServiceOverride>,
    /// Auto Scaling groups.
    pub autoscaling_groups: Vec<AutoScalingGroupOverride>,
    /// `[elasticache] failover_with_unreachable_members`: which reading of AWS's
    /// documentation `FailoverGlobalReplicationGroup` follows.
    pub failover_with_unreachable_members: FailoverReading,
    /// Faults, in the order they are rolled.
    pub faults: Vec<FaultSpec>,
}

/// Why a sim config could not be used.
#[derive(Debug)]
pub enum SimConfigError {
    /// The file could not be read.
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any sim config could reasonably be.
    TooLarge {
        /// The path given.
        path: PathBuf,
    },
    /// The file (or the world built from it) has problems.
    Invalid {
        /// The file.
        file: SourceFile,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

impl SimConfigError {
    /// Renders every problem (the short form is `file:line:col: error: message`).
    pub fn render(&self, style: RenderStyle) -> String {
        match self {
            SimConfigError::Invalid { file, problems } => render_problems(file, problems, style),
            other => format!("{other}\n"),
        }
    }
}

impl fmt::Display for SimConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimConfigError::Read { path, source } => {
                write!(f, "failed to read sim config {}: {source}", path.display())
            }
            SimConfigError::TooLarge { path } => write!(
                f,
                "sim config {} is larger than {MAX_SIM_CONFIG_BYTES} bytes",
                path.display()
            ),
            SimConfigError::Invalid { file, problems } => {
                let n = problems.len();
                writeln!(
                    f,
                    "sim config {} has {n} error{}:",
                    file.path.display(),
                    if n == 1 { "" } else { "s" }
                )?;
                f.write_str(render_problems(file, problems, RenderStyle::Short).trim_end())
            }
        }
    }
}

impl std::error::Error for SimConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl SimConfig {
    /// Reads and checks a sim config file.
    pub fn load(path: &Path) -> Result<SimConfig, SimConfigError> {
        use std::io::Read;
        let read_error = |source| SimConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(MAX_SIM_CONFIG_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(read_error)?;
        if bytes.len() > MAX_SIM_CONFIG_BYTES {
            return Err(SimConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(e) = std::str::from_utf8(&bytes) {
            let at = e.valid_up_to();
            let mut d = Diagnostics::default();
            d.error(
                at..at + 3,
                "the file is not UTF-8 text",
                "invalid UTF-8 here",
            );
            return Err(SimConfigError::Invalid {
                file: SourceFile::new(path, text),
                problems: d.into_sorted(),
            });
        }
        Self::parse(path, &text)
    }

    /// Checks a sim config given as text (named `path` in messages).
    pub fn parse(path: &Path, text: &str) -> Result<SimConfig, SimConfigError> {
        let file = SourceFile::new(path, text);
        let mut p = Parser {
            src: text,
            d: Diagnostics::default(),
        };
        let config = p.document(text);
        let problems = p.d.into_sorted();
        match config {
            Some(mut c) if problems.is_empty() => {
                c.source = Some(file);
                Ok(c)
            }
            _ => Err(SimConfigError::Invalid { file, problems }),
        }
    }

    /// An error about this config's file, for problems found when the world is built.
    pub(crate) fn error(&self, problems: Vec<Problem>) -> SimConfigError {
        SimConfigError::Invalid {
            file: self
                .source
                .clone()
                .unwrap_or_else(|| SourceFile::new("<sim config>", "")),
            problems,
        }
    }
}

#[cfg(test)]
mod tests;
