//! The catalogue's entries, in the order they are documented, and how each describes
//! its target and effect for the plan.

use std::time::Duration;

use super::fields::*;
use super::{Effect, FieldKind, Kind, Spec, Usage, arn_region, opt, req, routing_control_label};
use crate::names::{Acu, ecs_name};
use crate::runbook::model::{FieldValue, Fields};

const fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn s(fields: &Fields, key: &str) -> String {
    match fields.get(key) {
        Some(FieldValue::Str(s)) => s.clone(),
        Some(FieldValue::List(l)) => l.join(", "),
        Some(FieldValue::Tables(t)) => format!("{} record set(s)", t.len()),
        Some(FieldValue::Acu(a)) => a.to_string(),
        Some(FieldValue::Int(i)) => i.to_string(),
        _ => String::from("?"),
    }
}

fn target_region(fields: &Fields) -> String {
    let target = s(fields, "target");
    match arn_region(&target) {
        Some(r) => r.to_string(),
        None => "the least-lagged secondary's region (chosen at run time)".into(),
    }
}

const ROUTE53_REGION: &str = "us-east-1 (Route 53 control plane)";

/// The routing controls a step sets, for the plan: `routingcontrol/ID On, ...` (the ARN's
/// last part identifies a control within its account; the whole ARN makes plans unreadable).
fn routing_updates(fields: &Fields) -> String {
    let Some(FieldValue::Tables(states)) = fields.get("states") else {
        return "?".into();
    };
    let parts: Vec<String> = states
        .iter()
        .map(|t| {
            let arn = s(t, "routing_control_arn");
            format!("{} {}", routing_control_label(&arn), s(t, "state"))
        })
        .collect();
    parts.join(", ")
}

/// The regions of a step's cluster endpoints, in the order they are tried.
fn endpoint_regions(fields: &Fields) -> String {
    let Some(FieldValue::Tables(eps)) = fields.get("cluster_endpoints") else {
        return "?".into();
    };
    let regions: Vec<String> = eps.iter().map(|t| s(t, "region")).collect();
    regions.join(", ")
}

/// The sizes an `autoscaling.set_capacity` step sets: `min 2, desired 4, max 8`, the
/// ones it gives.
fn asg_sizes(fields: &Fields) -> String {
    let parts: Vec<String> = [
        ("min", "min_size"),
        ("desired", "desired_capacity"),
        ("max", "max_size"),
    ]
    .iter()
    .filter(|(_, k)| fields.contains_key(k))
    .map(|(label, k)| format!("{label} {}", s(fields, k)))
    .collect();
    parts.join(", ")
}

/// The catalogue itself, in the order it is documented.
pub static CATALOGUE: &[Spec] = &[
    // ---- Aurora Global Database ----
    Spec {
        name: "aurora.switchover",
        kind: Kind::AuroraSwitchover,
        usage: Usage::Action,
        doc: "Planned switchover (SwitchoverGlobalCluster): RPO 0, needs every region healthy; sent to the primary's region.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            req(
                "target",
                FieldKind::ClusterArn,
                "ARN of the secondary cluster that becomes the primary",
            ),
        ],
        expected: secs(300),
        effect: Some(|f| Effect {
            call: "SwitchoverGlobalCluster",
            resource: format!("global cluster {}", s(f, "global_cluster")),
            region: "the current primary's region (found at run time)".into(),
        }),
        inverse: Some("switch back to the cluster that was primary before the step"),
    },
    Spec {
        name: "aurora.failover",
        kind: Kind::AuroraFailover,
        usage: Usage::Action,
        doc: "Unplanned failover (FailoverGlobalCluster with AllowDataLoss=true), sent to the target's region; works while the primary's region is down.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            req(
                "target",
                FieldKind::ClusterArnOrAuto,
                "ARN of the secondary to promote, or \"auto\" for the least-lagged secondary",
            ),
            opt(
                "allow_data_loss",
                BOOL,
                "Must be true (the default): without it FailoverGlobalCluster is a switchover and fails in an outage",
            ),
            opt(
                "max_lag",
                DURATION,
                "Refuse to promote a secondary lagging more than this (default: objectives.rpo)",
            ),
        ],
        expected: secs(120),
        effect: Some(|f| Effect {
            call: "FailoverGlobalCluster (AllowDataLoss)",
            resource: format!("global cluster {}", s(f, "global_cluster")),
            region: target_region(f),
        }),
        inverse: None,
    },
    Spec {
        name: "aurora.detach_promote",
        kind: Kind::AuroraDetachPromote,
        usage: Usage::Action,
        doc: "Last resort: RemoveFromGlobalCluster on the secondary so it stands alone as a writer. Breaks the global topology; failback must rebuild it.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            req(
                "target",
                FieldKind::ClusterArn,
                "ARN of the secondary cluster to detach and promote",
            ),
        ],
        expected: secs(120),
        effect: Some(|f| Effect {
            call: "RemoveFromGlobalCluster",
            resource: format!("cluster {}", s(f, "target")),
            region: target_region(f),
        }),
        inverse: None,
    },
    Spec {
        name: "aurora.snapshot_lost_writes",
        kind: Kind::AuroraSnapshotLostWrites,
        usage: Usage::Action,
        doc: "After an unplanned failover, copies the rds:unplanned-global-failover-* snapshot of the old primary to a manual snapshot so retention does not delete the lost writes.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            req(
                "cluster",
                FieldKind::ClusterArn,
                "ARN of the old primary cluster whose snapshot is kept",
            ),
            opt(
                "snapshot_prefix",
                STR,
                "Prefix of the manual snapshot's identifier (default \"drpilot-lost-writes\")",
            ),
        ],
        expected: secs(60),
        effect: Some(|f| Effect {
            call: "CopyDBClusterSnapshot",
            resource: format!("snapshots of cluster {}", s(f, "cluster")),
            region: arn_region(&s(f, "cluster")).unwrap_or("?").to_string(),
        }),
        inverse: None,
    },
    Spec {
        name: "aurora.serverless_capacity",
        kind: Kind::AuroraServerlessCapacity,
        usage: Usage::Action,
        doc: "Sets an Aurora Serverless v2 cluster's capacity range (ModifyDBCluster \
              ServerlessV2ScalingConfiguration MinCapacity/MaxCapacity, ApplyImmediately), \
              sent to the cluster's region, so a standby-sized cluster can take production \
              load before it is promoted; waits until the cluster reports the new range and \
              is available. Preflight: the cluster's instances are db.serverless, the new \
              maximum covers the primary's current capacity (CloudWatch \
              ServerlessDatabaseCapacity) when the cluster is a secondary of a global \
              database, and no setting AWS refuses for a global database member (a minimum \
              of 0, auto-pause).",
        fields: &[
            req(
                "cluster",
                FieldKind::ClusterArn,
                "ARN of the cluster whose capacity range changes (the call goes to its region)",
            ),
            req(
                "min_acu",
                FieldKind::Acu {
                    min: Acu::ZERO,
                    max: Acu::LARGEST,
                },
                "MinCapacity in ACUs, in steps of 0.5; 0 (auto-pause) only where the engine \
                 version supports it, never for a member of a global database",
            ),
            req(
                "max_acu",
                FieldKind::Acu {
                    min: Acu::MIN_MAX,
                    max: Acu::LARGEST,
                },
                "MaxCapacity in ACUs, in steps of 0.5, at least min_acu (256 on recent \
                 engine versions, 128 on older ones)",
            ),
        ],
        expected: secs(60),
        effect: Some(|f| Effect {
            call: "ModifyDBCluster (ServerlessV2ScalingConfiguration)",
            resource: format!(
                "cluster {} to {}-{} ACUs",
                s(f, "cluster"),
                s(f, "min_acu"),
                s(f, "max_acu")
            ),
            region: arn_region(&s(f, "cluster")).unwrap_or("?").to_string(),
        }),
        inverse: Some("restore the capacity range captured before the step"),
    },
    // ---- ElastiCache (Valkey) Global Datastore ----
    Spec {
        name: "valkey.failover",
        kind: Kind::ValkeyFailover,
        usage: Usage::Action,
        doc: "FailoverGlobalReplicationGroup to the target region's member, sent whatever the datastore's status (the user guide allows a promotion while other modifications run or the primary's region is down; the API reference's error text refuses it while the datastore is not available: AWS decides). Only if it is refused and the primary's region is unreachable, with allow_disassociate, falls back to DisassociateGlobalReplicationGroup of the target (breaks the topology); without it, the refusal fails the step (retried while the datastore is modifying).",
        fields: &[
            req(
                "global_datastore",
                STR,
                "Global replication group id (with its AWS prefix)",
            ),
            req(
                "target_region",
                FieldKind::Region,
                "Region of the new primary",
            ),
            req(
                "target_replication_group",
                STR,
                "Replication group id of the member in target_region",
            ),
            opt(
                "allow_disassociate",
                BOOL,
                "When the failover is refused and the primary's region is unreachable, disassociate the target so it stands alone (default false)",
            ),
        ],
        expected: secs(60),
        effect: Some(|f| Effect {
            call: "FailoverGlobalReplicationGroup",
            resource: format!("global datastore {}", s(f, "global_datastore")),
            region: s(f, "target_region"),
        }),
        inverse: Some("fail the datastore back to the member that was primary before the step"),
    },
    // ---- S3 ----
    Spec {
        name: "s3.replication_check",
        kind: Kind::S3ReplicationCheck,
        usage: Usage::Action,
        doc: "Read-only: replication rules enabled, destination versioning on, a canary object reaches REPLICA in time, metrics show no backlog.",
        fields: &[
            req("source_bucket", STR, "Source bucket name"),
            req("destination_bucket", STR, "Destination bucket name"),
            opt(
                "canary",
                BOOL,
                "Write a canary object and wait for it to replicate (default true)",
            ),
            opt(
                "canary_timeout",
                DURATION,
                "How long the canary may take (default \"5m\")",
            ),
            opt(
                "max_backlog",
                FieldKind::Int {
                    min: 0,
                    max: i64::MAX,
                },
                "Largest acceptable count of operations pending replication (default 0)",
            ),
        ],
        expected: secs(60),
        effect: None,
        inverse: None,
    },
    // ---- Route 53 ----
    Spec {
        name: "route53.cutover",
        kind: Kind::Route53Cutover,
        usage: Usage::Action,
        doc: "UPSERTs record sets (batched, at most 1,000 changes per call), captures the prior records so rollback restores them exactly, waits for INSYNC.",
        fields: &[
            req("hosted_zone_id", STR, "Hosted zone id"),
            req(
                "records",
                FieldKind::TableList(RECORD_FIELDS),
                "Record sets as they must be after the cutover",
            ),
            opt(
                "wait_insync",
                BOOL,
                "Wait until the change is INSYNC (default true)",
            ),
        ],
        expected: secs(60),
        effect: Some(|f| Effect {
            call: "ChangeResourceRecordSets",
            resource: format!("zone {} ({})", s(f, "hosted_zone_id"), s(f, "records")),
            region: ROUTE53_REGION.into(),
        }),
        inverse: Some("restore the record sets captured before the change, exactly"),
    },
    Spec {
        name: "route53.health_check_flip",
        kind: Kind::Route53HealthCheckFlip,
        usage: Usage::Action,
        doc: "Inverts or disables pre-created health checks so failover records move traffic without record changes.",
        fields: &[
            req("health_checks", FieldKind::StrList, "Health check ids"),
            opt("invert", BOOL, "Set Inverted to this value"),
            opt("disable", BOOL, "Set Disabled to this value"),
        ],
        expected: secs(60),
        effect: Some(|f| Effect {
            call: "UpdateHealthCheck",
            resource: format!("health checks {}", s(f, "health_checks")),
            region: ROUTE53_REGION.into(),
        }),
        inverse: Some("restore the health checks' previous Inverted/Disabled settings"),
    },
    Spec {
        name: "route53.routing_control",
        kind: Kind::Route53RoutingControl,
        usage: Usage::Action,
        doc: "Sets Route 53 ARC routing controls in one UpdateRoutingControlStates through the cluster's data plane, trying its regional endpoints in turn: unlike UpdateHealthCheck or ChangeResourceRecordSets it works while us-east-1's Route 53 control plane is impaired. Pre-created failover records whose RECOVERY_CONTROL health checks follow the controls then answer from the other cell.",
        fields: &[
            CLUSTER_ENDPOINTS,
            req(
                "states",
                FieldKind::TableList(ROUTING_CONTROL_UPDATE_FIELDS),
                "Routing controls and the state each must have; applied together or not at all",
            ),
            opt(
                "override_safety_rules",
                FieldKind::StrList,
                "ARNs of safety rules to bypass (SafetyRulesToOverride): break glass only",
            ),
        ],
        // The call itself returns in about a second; what takes time is Route 53's
        // RECOVERY_CONTROL health checks taking the new states and resolvers dropping the
        // old answer, which the records' TTL bounds (30 s in the shipped stack, and AWS
        // recommends short TTLs for failover records). 30 s covers both; the dns.check
        // and http.check steps after it measure the real figure.
        expected: secs(30),
        effect: Some(|f| Effect {
            call: "UpdateRoutingControlStates",
            resource: format!("routing controls {}", routing_updates(f)),
            region: format!(
                "the region of the first cluster endpoint that answers (tried in order: {})",
                endpoint_regions(f)
            ),
        }),
        inverse: Some("restore the routing control states captured before the step, in one update"),
    },
    // ---- Compute ----
    Spec {
        name: "ecs.scale_service",
        kind: Kind::EcsScaleService,
        usage: Usage::Action,
        doc: "Sets an ECS service's desired count (UpdateService with desiredCount alone: no \
              new deployment, the task definition untouched), sent to `region`, so the \
              standby region's service runs production's tasks before traffic moves; \
              waits until runningCount is the new count, pendingCount is 0 and the only \
              deployment is the PRIMARY one with its rolloutState COMPLETED (services \
              without a rolloutState: the counts and one deployment). It reads first \
              (already at the count: nothing sent) and after a lost answer reads again \
              instead of resending. Preflight: the cluster and the service exist \
              (DescribeServices reports a missing service as a failure MISSING) and the \
              service is ACTIVE. Not checked: the per-service task quota and the capacity \
              to place the tasks (ECS has no API to read quotas; Service Quotas is not \
              called): AWS enforces them, not drpilot. A count AWS refuses fails the step; \
              one it cannot place shows as a step that does not settle before its \
              timeout.",
        fields: &[
            req(
                "cluster",
                STR,
                "Name or ARN of the ECS cluster that runs the service",
            ),
            req("service", STR, "Name or ARN of the service"),
            req(
                "region",
                FieldKind::Region,
                "Region of the cluster: every call goes there",
            ),
            req(
                "desired_count",
                FieldKind::Int {
                    min: 0,
                    max: i32::MAX as i64,
                },
                "Number of tasks the service is to run (desiredCount)",
            ),
        ],
        // Tasks start in a minute or two (image pull, start, health checks).
        expected: secs(120),
        effect: Some(|f| Effect {
            call: "UpdateService (desiredCount)",
            resource: format!(
                "service {}/{} to {} task(s)",
                ecs_name(&s(f, "cluster")),
                ecs_name(&s(f, "service")),
                s(f, "desired_count")
            ),
            region: s(f, "region"),
        }),
        inverse: Some("restore the desired count captured before the step, and wait for it"),
    },
    Spec {
        name: "autoscaling.set_capacity",
        kind: Kind::AutoscalingSetCapacity,
        usage: Usage::Action,
        doc: "Sets an EC2 Auto Scaling group's sizes (UpdateAutoScalingGroup MinSize, \
              DesiredCapacity, MaxSize: the ones the step gives, the others untouched), \
              sent to `region`; waits until as many instances are InService and Healthy \
              as the group desires and none is launching (Pending) or terminating \
              (Terminating). The sizes the step gives, merged with the group's current \
              ones, must satisfy min <= desired <= max: drpilot refuses anything else \
              before sending, rather than rely on the change AWS implies for a new \
              MinSize or MaxSize alone. It reads first (already at the sizes: nothing \
              sent) and after a lost answer reads again instead of resending. \
              Preflight: the group exists (an unknown name is an empty answer, not an \
              error), is not being deleted, the merged sizes hold, and no suspended \
              process (Launch, Terminate) stops the scale.",
        fields: &[
            req("group", STR, "Name of the Auto Scaling group"),
            req(
                "region",
                FieldKind::Region,
                "Region of the group: every call goes there",
            ),
            opt(
                "min_size",
                ASG_SIZE,
                "MinSize; at least one of min_size, desired_capacity and max_size",
            ),
            opt(
                "desired_capacity",
                ASG_SIZE,
                "DesiredCapacity: how many instances the group is to run",
            ),
            opt("max_size", ASG_SIZE, "MaxSize"),
        ],
        // Instances boot, pass lifecycle hooks and their health check grace period.
        expected: secs(300),
        effect: Some(|f| Effect {
            call: "UpdateAutoScalingGroup",
            resource: format!("group {} to {}", s(f, "group"), asg_sizes(f)),
            region: s(f, "region"),
        }),
        inverse: Some(
            "restore the min, desired and max sizes captured before the step, and wait for them",
        ),
    },
    // ---- Generic ----
    Spec {
        name: "approval",
        kind: Kind::Approval,
        usage: Usage::Action,
        doc: "Waits for an operator (a prompt, or --approve STEP / --yes headless).",
        fields: &[opt("message", STR, "What the approver is agreeing to")],
        expected: secs(0),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "wait",
        kind: Kind::Wait,
        usage: Usage::Action,
        doc: "Waits a fixed time (a soak, a TTL to expire).",
        fields: &[req("duration", DURATION, "How long to wait")],
        expected: None,
        effect: None,
        inverse: None,
    },
    // ---- Checks: gates, and read-only actions ----
    Spec {
        name: "aurora.writer_in_region",
        kind: Kind::AuroraWriterInRegion,
        usage: Usage::Check,
        doc: "The global cluster's writer is in the region.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            req("region", FieldKind::Region, "Region the writer must be in"),
        ],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "aurora.lag_below",
        kind: Kind::AuroraLagBelow,
        usage: Usage::Check,
        doc: "Replication lag (AuroraGlobalDBRPOLag, else AuroraGlobalDBReplicationLag) of the \
              secondaries is below max_lag; an unknown lag (no recent datapoint) does not pass.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            opt(
                "max_lag",
                DURATION,
                "Largest acceptable lag (default: objectives.rpo)",
            ),
            opt(
                "cluster",
                FieldKind::ClusterArn,
                "Only this secondary (default: every secondary)",
            ),
        ],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "aurora.cluster_available",
        kind: Kind::AuroraClusterAvailable,
        usage: Usage::Check,
        doc: "The cluster's status is available.",
        fields: &[req("cluster", FieldKind::ClusterArn, "Cluster ARN")],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "aurora.global_endpoint",
        kind: Kind::AuroraGlobalEndpoint,
        usage: Usage::Check,
        doc: "The global cluster's writer endpoint (GlobalCluster.Endpoint, which Aurora moves \
              with a managed failover or a switchover, not with a detach) resolves, through \
              the given resolvers, to the cluster endpoint of the current writer (in `region` \
              when given): applications that connect through it reach the new primary.",
        fields: &[
            req("global_cluster", STR, "Global cluster identifier"),
            opt(
                "region",
                FieldKind::Region,
                "Region the writer must be in (default: wherever it is)",
            ),
            opt(
                "resolvers",
                FieldKind::StrList,
                "Resolver addresses (ip or ip:port); default: the system's",
            ),
        ],
        expected: secs(30),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "valkey.primary_in_region",
        kind: Kind::ValkeyPrimaryInRegion,
        usage: Usage::Check,
        doc: "The global datastore's primary member is in the region.",
        fields: &[
            req("global_datastore", STR, "Global replication group id"),
            req("region", FieldKind::Region, "Region the primary must be in"),
        ],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "valkey.available",
        kind: Kind::ValkeyAvailable,
        usage: Usage::Check,
        doc: "The global datastore and its members are available.",
        fields: &[req("global_datastore", STR, "Global replication group id")],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "route53.change_insync",
        kind: Kind::Route53ChangeInsync,
        usage: Usage::Check,
        doc: "A Route 53 change is INSYNC: the change given, or the one this step submitted.",
        fields: &[opt(
            "change_id",
            STR,
            "Change id (default: the change submitted by the gated step)",
        )],
        expected: secs(30),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "route53.record_points_to",
        kind: Kind::Route53RecordPointsTo,
        usage: Usage::Check,
        doc: "A record set in the zone has exactly these values (or alias target).",
        fields: &[
            req("hosted_zone_id", STR, "Hosted zone id"),
            req("name", STR, "Record name"),
            req(
                "type",
                FieldKind::Enum(&["A", "AAAA", "CNAME", "TXT"]),
                "Record type",
            ),
            opt(
                "set_identifier",
                STR,
                "SetIdentifier, for routing-policy records",
            ),
            req(
                "expect",
                FieldKind::StrList,
                "Values (or the alias DNS name) the record must hold",
            ),
        ],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "route53.health_check_healthy",
        kind: Kind::Route53HealthCheckHealthy,
        usage: Usage::Check,
        doc: "A health check reports the expected status, as Route 53 publishes it: the newest one-minute Minimum of the CloudWatch metric `AWS/Route53` `HealthCheckStatus`, read in us-east-1 (GetHealthCheckStatus is not for production use). A change shows a minute or two after the checkers see it; without a current datapoint the check is not passed and is asked again.",
        fields: &[
            req("health_check_id", STR, "Health check id"),
            opt(
                "healthy",
                BOOL,
                "Expected status (default true; false to confirm a flip took effect)",
            ),
        ],
        // The checkers' detection (about 30 s) plus the metric's one-minute period and
        // publication delay.
        expected: secs(120),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "route53.routing_control_state",
        kind: Kind::Route53RoutingControlState,
        usage: Usage::Check,
        doc: "A Route 53 ARC routing control is in the state, read through the cluster's data plane (its endpoints tried in turn).",
        fields: &[
            CLUSTER_ENDPOINTS,
            req("routing_control_arn", STR, "Routing control ARN"),
            req(
                "state",
                FieldKind::Enum(ROUTING_CONTROL_STATES),
                "The state it must be in",
            ),
        ],
        expected: secs(5),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "s3.canary_replicated",
        kind: Kind::S3CanaryReplicated,
        usage: Usage::Check,
        doc: "A canary object written at the source has ReplicationStatus REPLICA at the destination.",
        fields: &[
            req("source_bucket", STR, "Source bucket name"),
            req("destination_bucket", STR, "Destination bucket name"),
            opt(
                "key_prefix",
                STR,
                "Prefix of the canary key (default \"drpilot-canary/\")",
            ),
        ],
        expected: secs(60),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "http.check",
        kind: Kind::HttpCheck,
        usage: Usage::Check,
        doc: "An HTTP endpoint answers with the expected status, body and latency.",
        fields: HTTP_FIELDS,
        expected: secs(2),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "postgres.check",
        kind: Kind::PostgresCheck,
        usage: Usage::Check,
        doc: "A PostgreSQL endpoint is a writer (or reader); optionally a canary row round-trips.",
        fields: PG_FIELDS,
        expected: secs(2),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "valkey.check",
        kind: Kind::ValkeyCheck,
        usage: Usage::Check,
        doc: "A Valkey endpoint has the expected ROLE; optionally a canary key round-trips. A cluster (cluster mode enabled, detected or `cluster = true`) passes when every shard's primary has the expected role, every slot is served and, when asked, the canary round-trips in every shard.",
        fields: VALKEY_DATA_FIELDS,
        expected: secs(2),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "postgres.heartbeat",
        kind: Kind::PostgresHeartbeat,
        usage: Usage::Check,
        doc: "Measures the RPO from heartbeats: waits until a heartbeat written after the step \
              started is visible through `host`, then reports the data-loss window (heartbeats \
              the old primary acknowledged that the new one lacks). A writer must run: \
              `drpilot heartbeat FILE` or a drill. Passes with \"not measured\" when no writer \
              ever wrote; the run's RPO is the largest window its heartbeat steps measured.",
        fields: PG_HEARTBEAT_FIELDS,
        expected: secs(3),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "valkey.heartbeat",
        kind: Kind::ValkeyHeartbeat,
        usage: Usage::Check,
        doc: "As `postgres.heartbeat`, with the heartbeats in a Valkey sorted set. In a cluster each shard has its own heartbeats (behind a hash tag in its slots): each shard's data-loss window is measured, and the step's RPO is the worst shard's, named in its output.",
        fields: VALKEY_HEARTBEAT_FIELDS,
        expected: secs(3),
        effect: None,
        inverse: None,
    },
    Spec {
        name: "dns.check",
        kind: Kind::DnsCheck,
        usage: Usage::Check,
        doc: "A name resolves, through the given resolvers, to exactly the expected set.",
        fields: DNS_FIELDS,
        expected: secs(2),
        effect: None,
        inverse: None,
    },
];
