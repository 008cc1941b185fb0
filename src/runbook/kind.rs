//! The action registry's key: one variant per catalogue entry.
//!
//! Every place that knows something per action (its dispatch in `actions`, its IAM
//! needs in [`super::iam`], the world the simulator builds for it in `sim::build`, the
//! services it calls in `actions::reach`, the control-plane warnings of
//! `engine::preflight`) matches on [`Kind`] without a wildcard arm. Adding a variant
//! therefore fails to compile until each of those places says what the new action does
//! there: the compiler lists what a new action lacks instead of a run finding out.
//! The runbook text names an action by string; [`Kind::name`] is that string, and the
//! catalogue's `Spec` carries its `Kind`.

/// One action or check of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // Each variant is documented by its catalogue entry.
pub enum Kind {
    AuroraSwitchover,
    AuroraFailover,
    AuroraDetachPromote,
    AuroraSnapshotLostWrites,
    AuroraServerlessCapacity,
    ValkeyFailover,
    S3ReplicationCheck,
    Route53Cutover,
    Route53HealthCheckFlip,
    Route53RoutingControl,
    EcsScaleService,
    AutoscalingSetCapacity,
    Approval,
    Wait,
    AuroraWriterInRegion,
    AuroraLagBelow,
    AuroraClusterAvailable,
    AuroraGlobalEndpoint,
    ValkeyPrimaryInRegion,
    ValkeyAvailable,
    Route53ChangeInsync,
    Route53RecordPointsTo,
    Route53HealthCheckHealthy,
    Route53RoutingControlState,
    S3CanaryReplicated,
    HttpCheck,
    PostgresCheck,
    ValkeyCheck,
    PostgresHeartbeat,
    ValkeyHeartbeat,
    DnsCheck,
}

impl Kind {
    /// Every kind, in catalogue order.
    pub const ALL: [Kind; 31] = [
        Kind::AuroraSwitchover,
        Kind::AuroraFailover,
        Kind::AuroraDetachPromote,
        Kind::AuroraSnapshotLostWrites,
        Kind::AuroraServerlessCapacity,
        Kind::ValkeyFailover,
        Kind::S3ReplicationCheck,
        Kind::Route53Cutover,
        Kind::Route53HealthCheckFlip,
        Kind::Route53RoutingControl,
        Kind::EcsScaleService,
        Kind::AutoscalingSetCapacity,
        Kind::Approval,
        Kind::Wait,
        Kind::AuroraWriterInRegion,
        Kind::AuroraLagBelow,
        Kind::AuroraClusterAvailable,
        Kind::AuroraGlobalEndpoint,
        Kind::ValkeyPrimaryInRegion,
        Kind::ValkeyAvailable,
        Kind::Route53ChangeInsync,
        Kind::Route53RecordPointsTo,
        Kind::Route53HealthCheckHealthy,
        Kind::Route53RoutingControlState,
        Kind::S3CanaryReplicated,
        Kind::HttpCheck,
        Kind::PostgresCheck,
        Kind::ValkeyCheck,
        Kind::PostgresHeartbeat,
        Kind::ValkeyHeartbeat,
        Kind::DnsCheck,
    ];

    /// The name a runbook uses (`aurora.failover`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::AuroraSwitchover => "aurora.switchover",
            Kind::AuroraFailover => "aurora.failover",
            Kind::AuroraDetachPromote => "aurora.detach_promote",
            Kind::AuroraSnapshotLostWrites => "aurora.snapshot_lost_writes",
            Kind::AuroraServerlessCapacity => "aurora.serverless_capacity",
            Kind::ValkeyFailover => "valkey.failover",
            Kind::S3ReplicationCheck => "s3.replication_check",
            Kind::Route53Cutover => "route53.cutover",
            Kind::Route53HealthCheckFlip => "route53.health_check_flip",
            Kind::Route53RoutingControl => "route53.routing_control",
            Kind::EcsScaleService => "ecs.scale_service",
            Kind::AutoscalingSetCapacity => "autoscaling.set_capacity",
            Kind::Approval => "approval",
            Kind::Wait => "wait",
            Kind::AuroraWriterInRegion => "aurora.writer_in_region",
            Kind::AuroraLagBelow => "aurora.lag_below",
            Kind::AuroraClusterAvailable => "aurora.cluster_available",
            Kind::AuroraGlobalEndpoint => "aurora.global_endpoint",
            Kind::ValkeyPrimaryInRegion => "valkey.primary_in_region",
            Kind::ValkeyAvailable => "valkey.available",
            Kind::Route53ChangeInsync => "route53.change_insync",
            Kind::Route53RecordPointsTo => "route53.record_points_to",
            Kind::Route53HealthCheckHealthy => "route53.health_check_healthy",
            Kind::Route53RoutingControlState => "route53.routing_control_state",
            Kind::S3CanaryReplicated => "s3.canary_replicated",
            Kind::HttpCheck => "http.check",
            Kind::PostgresCheck => "postgres.check",
            Kind::ValkeyCheck => "valkey.check",
            Kind::PostgresHeartbeat => "postgres.heartbeat",
            Kind::ValkeyHeartbeat => "valkey.heartbeat",
            Kind::DnsCheck => "dns.check",
        }
    }

    /// Whether this is one of the RPO heartbeats (`postgres.heartbeat`,
    /// `valkey.heartbeat`), whose writers a run keeps going.
    pub const fn is_heartbeat(self) -> bool {
        matches!(self, Kind::PostgresHeartbeat | Kind::ValkeyHeartbeat)
    }

    /// Whether the action only sizes capacity (`aurora.serverless_capacity`,
    /// `ecs.scale_service`, `autoscaling.set_capacity`): it changes
    /// the world but moves no traffic and no data, so it interrupts no one. A planned
    /// run's RTO clock starts at its first change that is not one of these: capacity
    /// raised while the operator decides costs no availability.
    pub const fn only_sizes_capacity(self) -> bool {
        matches!(
            self,
            Kind::AuroraServerlessCapacity | Kind::EcsScaleService | Kind::AutoscalingSetCapacity
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::catalogue::{CATALOGUE, lookup};

    #[test]
    fn every_kind_has_exactly_one_catalogue_entry_under_its_name() {
        assert_eq!(Kind::ALL.len(), CATALOGUE.len());
        for (kind, spec) in Kind::ALL.iter().zip(CATALOGUE) {
            assert_eq!(spec.kind, *kind, "catalogue order");
            assert_eq!(spec.name, kind.name());
            assert_eq!(lookup(kind.name()).map(|s| s.kind), Some(*kind));
        }
    }
}
