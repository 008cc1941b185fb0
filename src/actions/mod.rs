//! Actions and checks: what each catalogue entry does, against the [`Cloud`] traits.
//!
//! The engine drives every step through the same five calls, in this order:
//!
//! 1. [`preflight`] (read-only, before the run starts): is this possible and safe?
//! 2. [`capture`] (read-only): the "before" state that rollback restores. The engine
//!    journals it *before* anything is sent, so a crash after a mutation still knows
//!    what to restore.
//! 3. [`execute`]: idempotent. It reads the current state first; "already done" is
//!    success; it sends a mutation at most once per call, and after an error or
//!    timeout whose outcome is unknown it re-reads state instead of resending. A resumed
//!    run calls it again with the journaled capture and gets the same guarantees.
//! 4. [`verify`], polled by the engine: has the action's own effect completed (writer
//!    moved, change INSYNC)? Then the step's `[step.gate]`, polled through [`check`].
//! 5. [`rollback`], in reverse dependency order if a later step fails: the step's
//!    `[step.rollback]` action, or the action's built-in inverse using the capture.
//!
//! A check used as a step action is evaluated once by `execute`; `false` is a retryable
//! failure (the step's retry policy decides how long to keep asking).

// `ActionError` is the engine's contract and carries the `CloudError` behind it, which
// makes it large; errors are the cold path, so boxing it is not worth changing the
// contract while the engine is written against it.

mod arc;
pub mod at_risk;
mod aurora;
mod autoscaling;
pub mod dataplane;
mod ecs;
pub mod fields;
mod generic;
pub mod heartbeats;
pub mod reach;
mod route53;
mod s3;
mod support;
mod valkey;

#[cfg(test)]
mod testing;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, CloudError};
use crate::runbook::catalogue::{Kind as K, Spec};
use crate::runbook::model::{Fields, Rollback, Runbook, Step};

/// What an action or check needs: the cloud, and the step it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct StepContext<'a> {
    /// Every service, behind its trait.
    pub cloud: &'a Cloud,
    /// The whole runbook (mode, objectives, params).
    pub runbook: &'a Runbook,
    /// The step being run.
    pub step: &'a Step,
    /// The run's clock: waits (`wait`, canary polls, the re-reads after a lost
    /// response) use it so `--sim-speed` and virtual time apply to them too.
    pub clock: &'a crate::clock::Clock,
    /// An earlier attempt of this step's action ended without a result: a process that
    /// ended in the middle of it (its capture is journaled, its result is not), or an
    /// attempt of this run that failed and is being retried. The call it was making may
    /// have been sent, so an operation found in progress on the resource may be that
    /// call's.
    pub interrupted: bool,
}

/// How an action failed: the engine's retry and rollback decisions depend only on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionErrorKind {
    /// Try again after the backoff (5xx, unreachable, a check that is not yet true).
    Retryable,
    /// Try again after a longer backoff: the service throttled us.
    Throttled,
    /// Retrying cannot help (not found, access denied, invalid request).
    Permanent,
    /// The action refuses because going ahead would be unsafe or wrong (lag above the
    /// RPO, engine versions differ, a switchover in a degraded topology). Permanent,
    /// and the message says why.
    Refused,
}

/// A failed action, check or rollback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct ActionError {
    /// Classification.
    pub kind: ActionErrorKind,
    /// What happened, for people.
    pub message: String,
    /// The cloud error behind it, if any (boxed: errors travel in every `Result`).
    pub cloud: Option<Box<CloudError>>,
}

impl ActionError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Retryable,
            message: message.into(),
            cloud: None,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Permanent,
            message: message.into(),
            cloud: None,
        }
    }

    /// A refusal: going ahead would be unsafe.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            kind: ActionErrorKind::Refused,
            message: message.into(),
            cloud: None,
        }
    }

    /// Whether the engine may try again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ActionErrorKind::Retryable | ActionErrorKind::Throttled
        )
    }
}

impl From<CloudError> for ActionError {
    fn from(e: CloudError) -> Self {
        use crate::cloud::CloudErrorKind as E;
        let kind = match e.kind {
            E::Throttling => ActionErrorKind::Throttled,
            E::Transient | E::Unreachable => ActionErrorKind::Retryable,
            E::NotFound | E::InvalidState | E::AccessDenied | E::InvalidRequest => {
                ActionErrorKind::Permanent
            }
        };
        Self {
            kind,
            message: e.to_string(),
            cloud: Some(Box::new(e)),
        }
    }
}

/// How much a preflight finding weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Checked and fine (or information: "now ...").
    Ok,
    /// Allows the run, but a person should know (a check that could not be made, a
    /// dependency on the region being left).
    Warn,
    /// Stops the run before anything changes (exit 5).
    Block,
}

/// One finding of a preflight: a fact checked, and how much it weighs.
///
/// In events and reports a finding is `{"ok": bool, "message": "..."}`, a warning's
/// message starting with `warning: `: that form is the documented contract
/// (docs/events.schema.json) and stays; in the code the severity is a type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FindingWire", into = "FindingWire")]
pub struct Finding {
    /// How much it weighs.
    pub severity: Severity,
    /// What was checked and what was seen ("writer of acme-prod is in us-east-1"),
    /// without the `warning: ` of the wire form.
    pub message: String,
    /// The measurements behind the message, when they are ones a dashboard graphs
    /// (`drpilot readiness`). Not on the wire: events and reports carry the message.
    pub facts: Vec<Fact>,
}

/// A measurement a preflight made, typed, so `drpilot readiness` exports the number
/// itself rather than parsing it back out of a message. Only known values: a lag or
/// backlog that could not be read is no fact (and says so in its finding's message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// The replication lag of an Aurora secondary, as read for the preflight.
    AuroraLag {
        /// The global cluster's identifier.
        global_cluster: String,
        /// The secondary's cluster ARN.
        cluster: String,
        /// Its region.
        region: String,
        /// Its lag.
        lag: Duration,
    },
    /// The S3 replication backlog of a source bucket (its enabled rules summed).
    S3Backlog {
        /// The source bucket.
        bucket: String,
        /// `OperationsPendingReplication`.
        operations: u64,
        /// `BytesPendingReplication`, when known for every rule.
        bytes: Option<u64>,
    },
}

impl Finding {
    /// A fact that allows the run.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Ok,
            message: message.into(),
            facts: Vec::new(),
        }
    }

    /// A fact that allows the run but deserves attention.
    pub fn warn(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warn,
            message: message.into(),
            facts: Vec::new(),
        }
    }

    /// A fact that stops the run.
    pub fn block(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Block,
            message: message.into(),
            facts: Vec::new(),
        }
    }

    /// With the measurement behind it.
    pub fn with_fact(mut self, fact: Fact) -> Self {
        self.facts.push(fact);
        self
    }

    /// Fine when `ok`, blocking otherwise.
    pub fn ok_if(ok: bool, message: impl Into<String>) -> Self {
        if ok {
            Self::ok(message)
        } else {
            Self::block(message)
        }
    }

    /// Whether the run may go ahead (a warning allows it).
    pub fn allows(&self) -> bool {
        self.severity != Severity::Block
    }

    /// Whether this is a warning.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warn
    }
}

/// As people and tools have always read it: a warning starts with `warning: `.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.severity {
            Severity::Warn => write!(f, "{WARNING}{}", self.message),
            Severity::Ok | Severity::Block => f.write_str(&self.message),
        }
    }
}

const WARNING: &str = "warning: ";

// A finding as events and reports carry it (the docs below are its JSON Schema's).
/// One finding of a preflight: a fact checked, and whether it allows the run.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Finding")]
struct FindingWire {
    /// Whether this finding allows the run to go ahead.
    ok: bool,
    /// What was checked and what was seen ("writer of acme-prod is in us-east-1").
    message: String,
}

impl From<FindingWire> for Finding {
    fn from(w: FindingWire) -> Self {
        match (w.ok, w.message.strip_prefix(WARNING)) {
            (false, _) => Finding::block(w.message),
            (true, Some(rest)) => Finding::warn(rest),
            (true, None) => Finding::ok(w.message),
        }
    }
}

impl From<Finding> for FindingWire {
    fn from(f: Finding) -> Self {
        FindingWire {
            ok: f.allows(),
            message: f.to_string(),
        }
    }
}

impl schemars::JsonSchema for Finding {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        FindingWire::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FindingWire::json_schema(generator)
    }
}

/// The state an action captured before changing anything: what rollback restores.
/// Stored in the journal as JSON; never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Captured(pub serde_json::Value);

/// What `execute` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Executed {
    /// One line for people: "FailoverGlobalCluster sent to us-west-2" or "already done".
    pub summary: String,
    /// Values later calls need (e.g. `{"change_id": "/change/C1"}` for the INSYNC gate
    /// and for rollback). Journaled.
    pub output: serde_json::Value,
}

/// A step's output or capture, typed in the action's code and journaled as JSON: its
/// field names are the journal's format, so a journal written by an earlier drpilot
/// still reads (fields it lacks take their defaults).
pub(crate) trait Journaled: Serialize + serde::de::DeserializeOwned {
    /// An execution with this output.
    fn executed(&self, summary: impl Into<String>) -> Executed {
        Executed {
            summary: summary.into(),
            output: serde_json::to_value(self).unwrap_or_default(),
        }
    }

    /// A capture holding this.
    fn captured(&self) -> Captured {
        Captured(serde_json::to_value(self).unwrap_or_default())
    }

    /// Reads it back from a journaled value (`None` when the value is not one).
    fn read(value: &serde_json::Value) -> Option<Self> {
        Self::deserialize(value).ok()
    }
}

/// One poll of `verify` or `check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Whether the condition holds.
    pub passed: bool,
    /// What was seen, for the live view and the `gate_observed` event.
    pub observed: String,
}

/// Read-only checks before the run: is the step possible and safe?
///
/// A finding that is not `ok` blocks the run. A read-only step whose resource cannot be
/// reached now (the region being failed away from) is not blocking: it says so and the
/// step checks again when it runs. A mutating step that cannot be assessed because of
/// a transient failure returns the error, so the caller may try again.
pub async fn preflight(ctx: &StepContext<'_>) -> Result<Vec<Finding>, ActionError> {
    let spec = ctx.step.spec;
    let fields = &ctx.step.fields;
    let result = match spec.kind {
        K::AuroraFailover => aurora::preflight_failover(ctx, fields).await,
        K::AuroraSwitchover => aurora::preflight_switchover(ctx, fields).await,
        K::AuroraDetachPromote => aurora::preflight_detach(ctx, fields).await,
        K::AuroraSnapshotLostWrites => aurora::preflight_snapshot(fields),
        K::AuroraServerlessCapacity => aurora::preflight_capacity(ctx, fields).await,
        K::ValkeyFailover => valkey::preflight(ctx, fields).await,
        K::S3ReplicationCheck => s3::preflight(ctx, fields).await,
        K::Route53Cutover => route53::preflight_cutover(ctx, fields).await,
        K::Route53HealthCheckFlip => route53::preflight_flip(ctx, fields).await,
        K::Route53RoutingControl => arc::preflight(ctx, fields).await,
        K::EcsScaleService => ecs::preflight(ctx, fields).await,
        K::AutoscalingSetCapacity => autoscaling::preflight(ctx, fields).await,
        K::Approval | K::Wait => Ok(Vec::new()),
        K::S3CanaryReplicated => s3::preflight_canary(ctx, fields).await,
        // Measuring the RPO never stands in the way of a failover: whatever keeps it
        // from working is said, not blocking.
        K::PostgresHeartbeat | K::ValkeyHeartbeat => {
            let message = match dataplane::heartbeat_flowing(ctx, spec.kind, fields).await {
                Ok(o) => format!("{}: now {}", spec.name, o.observed),
                Err(e) => format!("the RPO will not be measured unless this is fixed: {e}"),
            };
            Ok(vec![Finding::ok(message)])
        }
        // The lags it reads are facts `drpilot readiness` exports.
        K::AuroraLagBelow => aurora::lag_below_facts(ctx, fields)
            .await
            .map(|(o, facts)| {
                vec![Finding {
                    facts,
                    ..Finding::ok(format!("{}: now {}", spec.name, o.observed))
                }]
            }),
        K::AuroraWriterInRegion
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::DnsCheck => {
            // Preflight changes nothing: the data-plane canaries (a row, a key) are
            // left for the run.
            let mut read_only = fields.clone();
            read_only.remove("canary");
            check(ctx, spec, &read_only, None).await.map(|o| {
                // A check step polls until it passes; what it sees now is information.
                vec![Finding::ok(format!("{}: now {}", spec.name, o.observed))]
            })
        }
    };
    match result {
        Ok(findings) => Ok(findings),
        Err(e) if !spec.is_mutating() && e.is_retryable() => Ok(vec![Finding::ok(format!(
            "not checked now ({e}); the step checks again when it runs"
        ))]),
        Err(e) if !e.is_retryable() => Ok(vec![Finding::block(e.message)]),
        Err(e) => Err(e),
    }
}

/// Reads the "before" state rollback restores (`None` for actions that change nothing).
pub async fn capture(ctx: &StepContext<'_>) -> Result<Option<Captured>, ActionError> {
    let fields = &ctx.step.fields;
    match ctx.step.spec.kind {
        K::AuroraFailover | K::AuroraSwitchover | K::AuroraDetachPromote => {
            aurora::capture(ctx, fields).await.map(Some)
        }
        K::AuroraServerlessCapacity => aurora::capture_capacity(ctx, fields).await.map(Some),
        K::ValkeyFailover => valkey::capture(ctx, fields).await.map(Some),
        K::Route53Cutover => route53::capture_records(ctx, fields).await.map(Some),
        K::Route53HealthCheckFlip => route53::capture_flip(ctx, fields).await.map(Some),
        K::Route53RoutingControl => arc::capture(ctx, fields).await.map(Some),
        K::EcsScaleService => ecs::capture(ctx, fields).await.map(Some),
        K::AutoscalingSetCapacity => autoscaling::capture(ctx, fields).await.map(Some),
        // Nothing to restore: these change nothing, or what they create is kept.
        K::AuroraSnapshotLostWrites
        | K::S3ReplicationCheck
        | K::Approval
        | K::Wait
        | K::AuroraWriterInRegion
        | K::AuroraLagBelow
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::S3CanaryReplicated
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::PostgresHeartbeat
        | K::ValkeyHeartbeat
        | K::DnsCheck => Ok(None),
    }
}

/// Runs the step's action once, idempotently (see the module docs).
pub async fn execute(
    ctx: &StepContext<'_>,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    execute_action(ctx, ctx.step.spec, &ctx.step.fields, captured).await
}

/// Runs `spec` with `fields`: the step's own action, or a `[step.rollback]` action
/// with the rollback's fields (the same idempotent code either way).
async fn execute_action(
    ctx: &StepContext<'_>,
    spec: &'static Spec,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    match spec.kind {
        K::AuroraFailover => aurora::failover(ctx, fields, captured).await,
        K::AuroraSwitchover => aurora::switchover(ctx, fields).await,
        K::AuroraDetachPromote => aurora::detach_promote(ctx, fields).await,
        K::AuroraSnapshotLostWrites => aurora::snapshot_lost_writes(ctx, fields).await,
        K::AuroraServerlessCapacity => aurora::set_capacity(ctx, fields, captured).await,
        K::ValkeyFailover => valkey::failover(ctx, fields, captured).await,
        K::S3ReplicationCheck => s3::replication_check(ctx, fields).await,
        K::Route53Cutover => route53::cutover(ctx, fields).await,
        K::Route53HealthCheckFlip => route53::flip(ctx, fields).await,
        K::Route53RoutingControl => arc::execute(ctx, fields).await,
        K::EcsScaleService => ecs::scale(ctx, fields, captured).await,
        K::AutoscalingSetCapacity => autoscaling::set_capacity(ctx, fields, captured).await,
        K::Approval => generic::approval(fields),
        K::Wait => generic::wait(ctx, fields).await,
        K::PostgresHeartbeat | K::ValkeyHeartbeat => {
            dataplane::heartbeat_measure(ctx, spec.kind, fields).await
        }
        K::AuroraWriterInRegion
        | K::AuroraLagBelow
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::S3CanaryReplicated
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::DnsCheck => {
            let o = check(ctx, spec, fields, None).await?;
            if o.passed {
                Ok(Executed {
                    output: serde_json::json!({ "observed": o.observed }),
                    summary: o.observed,
                })
            } else {
                Err(ActionError::retryable(format!("not yet: {}", o.observed)))
            }
        }
    }
}

/// One poll: has the action's own effect completed?
pub async fn verify(
    ctx: &StepContext<'_>,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let fields = &ctx.step.fields;
    match ctx.step.spec.kind {
        K::AuroraFailover | K::AuroraSwitchover => {
            aurora::verify_writer(ctx, fields, executed).await
        }
        K::AuroraDetachPromote => aurora::verify_detach(ctx, fields).await,
        K::AuroraSnapshotLostWrites => aurora::verify_snapshot(ctx, fields, executed).await,
        K::AuroraServerlessCapacity => aurora::verify_capacity(ctx, fields, executed).await,
        K::ValkeyFailover => valkey::verify(ctx, fields, executed).await,
        K::Route53Cutover => route53::verify_cutover(ctx, fields, executed).await,
        K::Route53HealthCheckFlip => route53::verify_flip(ctx, fields).await,
        K::Route53RoutingControl => arc::verify(ctx, fields).await,
        K::EcsScaleService => ecs::verify(ctx, fields, executed).await,
        K::AutoscalingSetCapacity => autoscaling::verify(ctx, fields, executed).await,
        K::S3ReplicationCheck
        | K::Approval
        | K::Wait
        | K::AuroraWriterInRegion
        | K::AuroraLagBelow
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::S3CanaryReplicated
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::PostgresHeartbeat
        | K::ValkeyHeartbeat
        | K::DnsCheck => Ok(Observation {
            passed: true,
            observed: "nothing to verify: the step changes nothing".into(),
        }),
    }
}

/// One evaluation of a check (a gate, or a check used as an action).
///
/// `executed` is the gated step's result: `route53.change_insync` without a
/// `change_id` waits for the changes it lists, and `valkey.primary_in_region` accepts
/// a member that the step disassociated to stand alone.
pub async fn check(
    ctx: &StepContext<'_>,
    spec: &'static Spec,
    fields: &Fields,
    executed: Option<&Executed>,
) -> Result<Observation, ActionError> {
    match spec.kind {
        K::AuroraWriterInRegion => aurora::writer_in_region(ctx, fields).await,
        K::AuroraLagBelow => aurora::lag_below(ctx, fields).await,
        K::AuroraClusterAvailable => aurora::cluster_available(ctx, fields).await,
        K::AuroraGlobalEndpoint => aurora::global_endpoint(ctx, fields).await,
        K::ValkeyPrimaryInRegion => valkey::primary_in_region(ctx, fields, executed).await,
        K::ValkeyAvailable => valkey::available(ctx, fields).await,
        K::Route53ChangeInsync => route53::change_insync(ctx, fields, executed).await,
        K::Route53RecordPointsTo => route53::record_points_to(ctx, fields).await,
        K::Route53HealthCheckHealthy => route53::health_check_healthy(ctx, fields).await,
        K::Route53RoutingControlState => arc::state(ctx, fields).await,
        K::S3CanaryReplicated => s3::canary_replicated(ctx, fields).await,
        K::HttpCheck => dataplane::http(ctx, fields).await,
        K::PostgresCheck => dataplane::postgres(ctx, fields).await,
        K::ValkeyCheck => dataplane::valkey(ctx, fields).await,
        K::DnsCheck => dataplane::dns(ctx, fields).await,
        K::PostgresHeartbeat | K::ValkeyHeartbeat => {
            dataplane::heartbeat_flowing(ctx, spec.kind, fields).await
        }
        // Validation lets only checks be gates; an action is never evaluated as one.
        K::AuroraSwitchover
        | K::AuroraFailover
        | K::AuroraDetachPromote
        | K::AuroraSnapshotLostWrites
        | K::AuroraServerlessCapacity
        | K::ValkeyFailover
        | K::S3ReplicationCheck
        | K::Route53Cutover
        | K::Route53HealthCheckFlip
        | K::Route53RoutingControl
        | K::EcsScaleService
        | K::AutoscalingSetCapacity
        | K::Approval
        | K::Wait => Err(ActionError::permanent(format!(
            "`{}` is an action, not a check",
            spec.name
        ))),
    }
}

/// Undoes the step: its `[step.rollback]` action or the action's built-in inverse.
///
/// Both are idempotent: they read state first, and a rollback that finds everything
/// already restored succeeds without sending anything.
pub async fn rollback(
    ctx: &StepContext<'_>,
    rollback: &Rollback,
    captured: Option<&Captured>,
    executed: Option<&Executed>,
) -> Result<String, ActionError> {
    if let Some(spec) = rollback.spec {
        return execute_action(ctx, spec, &rollback.fields, None)
            .await
            .map(|e| e.summary);
    }
    let fields = &ctx.step.fields;
    let need_capture = || {
        captured.ok_or_else(|| {
            ActionError::permanent(format!(
                "step `{}` has no captured state to restore",
                ctx.step.id
            ))
        })
    };
    match ctx.step.spec.kind {
        K::AuroraSwitchover => aurora::switch_back(ctx, fields, need_capture()?).await,
        K::AuroraServerlessCapacity => aurora::restore_capacity(ctx, need_capture()?).await,
        K::ValkeyFailover => valkey::fail_back(ctx, fields, need_capture()?, executed).await,
        K::Route53Cutover => route53::restore_records(ctx, need_capture()?).await,
        K::Route53HealthCheckFlip => route53::restore_flip(ctx, need_capture()?).await,
        K::Route53RoutingControl => arc::restore(ctx, fields, need_capture()?).await,
        K::EcsScaleService => ecs::restore(ctx, need_capture()?).await,
        K::AutoscalingSetCapacity => autoscaling::restore(ctx, need_capture()?).await,
        K::AuroraFailover
        | K::AuroraDetachPromote
        | K::AuroraSnapshotLostWrites
        | K::S3ReplicationCheck
        | K::Approval
        | K::Wait
        | K::AuroraWriterInRegion
        | K::AuroraLagBelow
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::S3CanaryReplicated
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::PostgresHeartbeat
        | K::ValkeyHeartbeat
        | K::DnsCheck => Err(ActionError::permanent(format!(
            "`{}` has no built-in inverse; name a rollback action",
            ctx.step.spec.name
        ))),
    }
}

/// One poll after a rollback was sent: is the resource back where it was?
///
/// A rollback call returning is not a rollback done: a switchover back takes minutes.
/// The engine polls this until it passes (or the step's timeout), and only then
/// reports the step rolled back, so "rolled back cleanly" means every resource is at
/// its original state, observed.
pub async fn rollback_done(
    ctx: &StepContext<'_>,
    rollback: &Rollback,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    if let Some(spec) = rollback.spec {
        // A named rollback action: its own completion check, on its own fields.
        let mut view = ctx.step.clone();
        view.spec = spec;
        view.fields = rollback.fields.clone();
        view.gate = None;
        let vctx = StepContext {
            step: &view,
            ..*ctx
        };
        let executed = Executed {
            summary: String::new(),
            output: serde_json::Value::Null,
        };
        return verify(&vctx, &executed).await;
    }
    let fields = &ctx.step.fields;
    match ctx.step.spec.kind {
        K::AuroraSwitchover => aurora::verify_switched_back(ctx, fields, captured).await,
        K::AuroraServerlessCapacity => aurora::verify_capacity_restored(ctx, captured).await,
        K::ValkeyFailover => valkey::verify_failed_back(ctx, fields, captured).await,
        K::EcsScaleService => ecs::verify_restored(ctx, captured).await,
        K::AutoscalingSetCapacity => autoscaling::verify_restored(ctx, captured).await,
        // Record, health-check and routing-control restores are single synchronous calls
        // whose success is the restore; propagation (INSYNC, health checks taking a
        // routing control's state) does not change what was restored.
        K::Route53Cutover | K::Route53HealthCheckFlip | K::Route53RoutingControl => {
            Ok(Observation {
                passed: true,
                observed: "restored".into(),
            })
        }
        // No built-in inverse: `rollback` refused, so there is nothing to wait for.
        K::AuroraFailover
        | K::AuroraDetachPromote
        | K::AuroraSnapshotLostWrites
        | K::S3ReplicationCheck
        | K::Approval
        | K::Wait
        | K::AuroraWriterInRegion
        | K::AuroraLagBelow
        | K::AuroraClusterAvailable
        | K::AuroraGlobalEndpoint
        | K::ValkeyPrimaryInRegion
        | K::ValkeyAvailable
        | K::Route53ChangeInsync
        | K::Route53RecordPointsTo
        | K::Route53HealthCheckHealthy
        | K::Route53RoutingControlState
        | K::S3CanaryReplicated
        | K::HttpCheck
        | K::PostgresCheck
        | K::ValkeyCheck
        | K::PostgresHeartbeat
        | K::ValkeyHeartbeat
        | K::DnsCheck => Ok(Observation {
            passed: true,
            observed: "restored".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{HEALTH_CHECK, Harness, RUNBOOK};
    use super::*;

    #[test]
    fn a_finding_keeps_its_wire_form_and_its_severity_round_trips() {
        for (f, wire) in [
            (
                Finding::ok("fine"),
                serde_json::json!({"ok": true, "message": "fine"}),
            ),
            (
                Finding::warn("not checked"),
                serde_json::json!({"ok": true, "message": "warning: not checked"}),
            ),
            (
                Finding::block("bad"),
                serde_json::json!({"ok": false, "message": "bad"}),
            ),
        ] {
            assert_eq!(serde_json::to_value(&f).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Finding>(wire).unwrap(), f);
        }
        assert!(Finding::warn("x").allows() && !Finding::block("x").allows());
        assert_eq!(Finding::warn("x").to_string(), "warning: x");
    }

    #[tokio::test(start_paused = true)]
    async fn preflight_turns_definite_problems_into_blocking_findings() {
        let h = Harness::new(
            RUNBOOK,
            &format!("[health_checks.{HEALTH_CHECK}]\nmissing = true\n"),
        );
        let findings = preflight(&h.ctx("flip")).await.unwrap();
        assert_eq!(
            findings,
            [Finding::block(format!(
                "health check {HEALTH_CHECK} not found"
            ))]
        );
        // A transient failure of a mutating step's assessment is returned, not judged.
        h.fail(
            "DescribeGlobalClusters",
            crate::cloud::CloudErrorKind::Transient,
            None,
            8,
        );
        let e = preflight(&h.ctx("failover")).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.message.contains("injected fault"), "{e}");
        assert_eq!(h.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn preflight_writes_no_canary() {
        // The check's host is the writer's CNAME (the primary cluster, us-east-1).
        let h = Harness::prod();
        let findings = preflight(&h.ctx("pg")).await.unwrap();
        assert_eq!(
            findings[0].message,
            "postgres.check: now db-writer.acme.internal is a writer (not in recovery)"
        );
        let findings = preflight(&h.ctx("canary")).await.unwrap();
        assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
        assert_eq!(h.mutations(), 0, "{:?}", h.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_without_a_built_in_inverse_says_so() {
        let h = Harness::prod();
        let rb = Rollback {
            spec: None,
            fields: Fields::new(),
            describe: String::new(),
        };
        let e = rollback(&h.ctx("failover"), &rb, None, None)
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "`aurora.failover` has no built-in inverse; name a rollback action"
        );
        let e = rollback(&h.ctx("cutover"), &rb, None, None)
            .await
            .unwrap_err();
        assert_eq!(e.message, "step `cutover` has no captured state to restore");
    }
}
