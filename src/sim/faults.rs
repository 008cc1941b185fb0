//! Injected faults: throttling, 5xx, latency, failures N times or forever, hangs.
//!
//! A fault matches calls by service, operation and region, inside a window of virtual
//! time, and fires with a probability (`rate`) at most `times` times. Whether it fires
//! is drawn from the fault's own random stream, so the same seed and the same calls
//! give the same faults however tasks interleave. Region outages are not faults: they
//! are part of the world (`[regions.NAME]`), because Aurora, Valkey, S3 and Route 53
//! each react to them in their own way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::State;
use crate::cloud::CloudErrorKind;

/// The services the world answers for, with the operations each serves (the names
/// faults, the operation log and `--sim-config` use).
pub const OPERATIONS: &[(&str, &[&str])] = &[
    (
        "rds",
        &[
            "DescribeGlobalClusters",
            "DescribeDBClusters",
            "FailoverGlobalCluster",
            "SwitchoverGlobalCluster",
            "RemoveFromGlobalCluster",
            "DescribeDBClusterSnapshots",
            "CopyDBClusterSnapshot",
            "ModifyDBCluster",
            "DescribeDBInstances",
        ],
    ),
    (
        "elasticache",
        &[
            "DescribeGlobalReplicationGroups",
            "FailoverGlobalReplicationGroup",
            "DisassociateGlobalReplicationGroup",
            "DescribeReplicationGroups",
        ],
    ),
    (
        "s3",
        &[
            "GetBucketReplication",
            "GetBucketVersioning",
            "PutObject",
            "HeadObject",
            "DeleteObject",
        ],
    ),
    // Lag, Serverless v2 capacity and replication backlog in their regions; Route 53's
    // HealthCheckStatus in us-east-1. drpilot's own readiness metrics
    // (`drpilot readiness --cloudwatch`) are put in the region it chooses.
    ("cloudwatch", &["GetMetricData", "PutMetricData"]),
    (
        "route53",
        &[
            "ListResourceRecordSets",
            "ChangeResourceRecordSets",
            "GetChange",
            "GetHealthCheck",
            "UpdateHealthCheck",
            "GetHostedZoneLimit",
        ],
    ),
    (
        "route53-recovery-cluster",
        &["GetRoutingControlState", "UpdateRoutingControlStates"],
    ),
    ("ecs", &["DescribeServices", "UpdateService"]),
    (
        "autoscaling",
        &["DescribeAutoScalingGroups", "UpdateAutoScalingGroup"],
    ),
    (
        "dataplane",
        &[
            "Http",
            "Postgres",
            "Valkey",
            "Dns",
            "HeartbeatShards",
            "HeartbeatWrite",
            "HeartbeatRead",
        ],
    ),
];

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with a throttling error.
    Throttle,
    /// Answer with an error (a 5xx unless `error` says otherwise).
    Error,
    /// Answer late: add `latency`.
    Latency,
    /// Never answer.
    Hang,
}

/// One fault, as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// What it does.
    pub kind: FaultKind,
    /// Only calls to this service (see [`OPERATIONS`]).
    pub service: Option<String>,
    /// Only this operation.
    pub operation: Option<String>,
    /// Only calls sent to this region.
    pub region: Option<String>,
    /// Probability of firing on a matching call.
    pub rate: f64,
    /// Fire at most this many times (`None`: forever).
    pub times: Option<u64>,
    /// Active from this virtual time.
    pub from: Duration,
    /// Active until this virtual time (`None`: forever).
    pub until: Option<Duration>,
    /// Added latency (kind `latency`).
    pub latency: Duration,
    /// The error's class (kind `error`; `transient` by default).
    pub error: CloudErrorKind,
    /// The error's code (default: the service's usual code for the class).
    pub code: Option<String>,
    /// For mutating calls: the call takes effect, then the answer is lost (an error or
    /// a hang after the change): the case where a blind resend would fail over twice.
    pub after_apply: bool,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            kind: FaultKind::Error,
            service: None,
            operation: None,
            region: None,
            rate: 1.0,
            times: None,
            from: Duration::ZERO,
            until: None,
            latency: Duration::ZERO,
            error: CloudErrorKind::Transient,
            code: None,
            after_apply: false,
        }
    }
}

/// A call, as faults see it.
#[derive(Clone, Debug)]
pub(crate) struct CallMeta {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: Option<String>,
    pub mutating: bool,
}

/// How a fault ends a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    Error {
        kind: CloudErrorKind,
        code: Option<String>,
        message: String,
        after_apply: bool,
    },
    Hang {
        after_apply: bool,
    },
}

/// What the faults decided for one call.
#[derive(Clone, Debug, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub failure: Option<Failure>,
}

fn default_code(service: &str, kind: CloudErrorKind) -> Option<String> {
    let code = match (service, kind) {
        ("s3", CloudErrorKind::Throttling) => "SlowDown",
        ("s3", CloudErrorKind::Transient) => "InternalError",
        ("ecs", CloudErrorKind::Throttling) => "ThrottlingException",
        ("ecs", CloudErrorKind::Transient) => "ServerException",
        ("ecs", CloudErrorKind::AccessDenied) => "AccessDeniedException",
        ("ecs", CloudErrorKind::InvalidRequest) => "InvalidParameterException",
        ("autoscaling", CloudErrorKind::Transient) => "InternalFailure",
        ("autoscaling", CloudErrorKind::InvalidRequest) => "ValidationError",
        (_, CloudErrorKind::Throttling) => "Throttling",
        (_, CloudErrorKind::Transient) => "InternalFailure",
        (_, CloudErrorKind::AccessDenied) => "AccessDenied",
        (_, CloudErrorKind::InvalidRequest) => "InvalidParameterValue",
        _ => return None,
    };
    (service != "dataplane").then(|| code.to_string())
}

fn message(kind: CloudErrorKind) -> &'static str {
    match kind {
        CloudErrorKind::Throttling => "Rate exceeded (injected fault)",
        CloudErrorKind::Transient => "We encountered an internal error (injected fault)",
        CloudErrorKind::Unreachable => "connection timed out (injected fault)",
        CloudErrorKind::NotFound => "not found (injected fault)",
        CloudErrorKind::InvalidState => "invalid state (injected fault)",
        CloudErrorKind::AccessDenied => "access denied (injected fault)",
        CloudErrorKind::InvalidRequest => "invalid request (injected fault)",
    }
}

impl State {
    /// Rolls the faults for one call at virtual time `now`. Latency faults add up; the
    /// first error or hang that fires ends the roll.
    pub(crate) fn decide_faults(&mut self, call: &CallMeta, now: Duration) -> Decision {
        let mut d = Decision::default();
        for i in 0..self.faults.len() {
            let Some(f) = self.faults.get(i) else { break };
            let spec = &f.spec;
            let matches = spec.service.as_deref().is_none_or(|s| s == call.service)
                && spec
                    .operation
                    .as_deref()
                    .is_none_or(|o| o == call.operation)
                && spec
                    .region
                    .as_deref()
                    .is_none_or(|r| call.region.as_deref() == Some(r))
                && spec.from <= now
                && spec.until.is_none_or(|u| now < u)
                && spec.times.is_none_or(|t| f.injected < t);
            if !matches {
                continue;
            }
            let rate = spec.rate;
            let bits = self.draw(&format!("fault:{i}:{}", call.operation));
            if !super::rng::chance(bits, rate) {
                continue;
            }
            let Some(f) = self.faults.get_mut(i) else {
                break;
            };
            f.injected = f.injected.saturating_add(1);
            let spec = &f.spec;
            let after_apply = spec.after_apply && call.mutating;
            match spec.kind {
                FaultKind::Latency => d.latency = d.latency.saturating_add(spec.latency),
                FaultKind::Throttle | FaultKind::Error => {
                    let kind = if spec.kind == FaultKind::Throttle {
                        CloudErrorKind::Throttling
                    } else {
                        spec.error
                    };
                    d.failure = Some(Failure::Error {
                        kind,
                        code: spec
                            .code
                            .clone()
                            .or_else(|| default_code(call.service, kind)),
                        message: message(kind).into(),
                        after_apply,
                    });
                    break;
                }
                FaultKind::Hang => {
                    d.failure = Some(Failure::Hang { after_apply });
                    break;
                }
            }
        }
        d
    }
}

/// Whether `operation` is served by `service` (or by any service when `None`).
pub(crate) fn known_operation(service: Option<&str>, operation: &str) -> bool {
    OPERATIONS
        .iter()
        .filter(|(s, _)| service.is_none_or(|want| want == *s))
        .any(|(_, ops)| ops.contains(&operation))
}
