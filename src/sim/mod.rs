//! The simulated world: an in-process, deterministic, seeded AWS for `drpilot run --sim`
//! and for the engine and chaos tests.
//!
//! [`SimWorld`] implements every `cloud` trait, so the same action code that will run
//! against AWS runs here unchanged. It is built from a runbook in the state the runbook
//! expects to start from ([`SimWorld::from_runbook`]; the rules are in `build.rs`),
//! shaped by `--sim-config` ([`SimConfig`]: initial-state overrides, operation timing,
//! region outages and faults), and behaves as the AWS API reference describes: the
//! region each call must be sent to, the `InvalidState` errors where AWS returns them,
//! states that take time (Aurora failover ~1-2 min, switchover a few minutes, Valkey
//! failover ~1 min, Route 53 INSYNC under a minute, ECS tasks starting and draining, Auto
//! Scaling instances launching and terminating), replication lag and the writes an
//! unplanned failover loses ([`SimWorld::lost_writes`]).
//!
//! **Time.** Everything is on the run's [`Clock`]: nothing runs in the background; each
//! pending operation has a completion time and every call first applies what is due.
//! With a paused tokio runtime the world is fully virtual; `--sim-speed` compresses it.
//!
//! **Determinism.** Durations and fault decisions come from a self-written SplitMix64
//! keyed by (seed, stream, draw number), so a seed gives the same run forever, whatever
//! the crate versions and however tasks interleave across operations.
//!
//! **Regions.** A region can be unreachable for a window of virtual time, as a real
//! outage usually is: a call sent to it gets no answer until its caller's deadline
//! (`outage = "hold"`, the default; `"reset"` refuses it at once), both as `Unreachable`.
//! An outage may take down only some services (`services = ["s3"]`: its databases and
//! caches keep running), and a region may be slow (`latency`). Every call goes through
//! the same breaker as against AWS (`cloud::reach`: probes, deadlines, refusals), and
//! the world answers its probes without drawing a random number. Route 53's control
//! plane is in us-east-1 (all its API calls fail while that region is down) but its DNS
//! answers and health checks go on, and so do Route 53 ARC's routing controls at the
//! cluster's endpoints in other regions (`arc.rs`: the data plane that moves traffic in
//! a us-east-1 outage).
//!
//! **Data planes** are derived from the control planes, so a verification gate passes
//! only once a failover really happened. Hosts are first resolved through the
//! simulated zones (following CNAMEs):
//! - *PostgreSQL*: the host's first label is a cluster identifier
//!   (`acme-prod-usw2.cluster-…`). `in_recovery` is false exactly when that cluster is
//!   the writer (the global cluster's writer flag, or a detached cluster once promoted);
//!   a cluster in an unreachable region times out (`Unreachable`), one without
//!   instances refuses connections. A canary round-trips on a writer only.
//! - *Valkey*: `master.<replication-group>.…`: `ROLE` is `master` for the datastore's
//!   primary member (or a standalone group) and `slave` for a secondary; unreachable
//!   regions time out. A canary round-trips on a primary only.
//! - *DNS*: names in the simulated zones, as resolvers see them (a change counts once
//!   INSYNC): CNAME values; failover records answer from the PRIMARY while its health
//!   check is healthy (a RECOVERY_CONTROL check: while its routing control is On, once
//!   the change has propagated), else the SECONDARY (the PRIMARY when both are unhealthy);
//!   weighted ones from the heaviest. A/AAAA queries follow CNAMEs while they stay in
//!   the simulated zones and answer the last name when they leave them (the world has
//!   no addresses). A name no zone has is NXDOMAIN (`NotFound`).
//! - *HTTP*: each region runs the application, which answers any request with
//!   `200 {"region":"<region>"}`. The serving region is the one named (in full, or as a
//!   short code such as `usw2`) by where the URL's host leads through the simulated
//!   DNS: for `https://api.acme.example/…` that is the failover record's current answer
//!   (`api-use1.acme.example`), for a regional host (`api-usw2.acme.example`) the host
//!   itself. The answer is `503 service unavailable` while that region is unreachable
//!   or its application unhealthy (`[regions.NAME] app_healthy = false`), `502` when the
//!   host resolves to something that names no region, and `NotFound` when the host
//!   resolves nowhere. It takes a seeded 20-120 ms plus injected latency; a probe
//!   whose timeout is shorter fails as `Transient` when it runs out.
//!
//! **Operation log.** Every mutating call is recorded with its virtual time, region,
//! arguments, whether it changed the world and what the caller got
//! ([`SimWorld::op_log`]): the chaos harness proves no mutation was applied twice.
//!
//! **Persistence.** [`SimWorld::snapshot`] / [`SimWorld::restore`]: the whole world as
//! JSON with times relative to its virtual epoch, saved beside the run's journal.

mod arc;
mod autoscaling;
mod build;
mod cloudwatch;
mod config;
mod dataplane;
mod ecs;
mod elasticache;
mod faults;
mod lab;
mod names;
mod rds;
mod rng;
mod route53;
mod s3;
mod sns;
mod state;
mod world;

#[cfg(test)]
mod tests;

pub use config::{
    AutoScalingGroupOverride, BucketOverride, ClusterOverride, DatastoreOverride,
    EcsServiceOverride, GlobalClusterOverride, HealthCheckOverride, LocalServer,
    MAX_SIM_CONFIG_BYTES, RegionOverride, ReplicationGroupOverride, RoutingControlOverride,
    SimConfig, SimConfigError, ZoneOverride,
};
pub use faults::{FaultKind, FaultSpec, OPERATIONS};
#[cfg(test)]
pub(crate) use rds::global_endpoint;
pub use rng::{Between, SplitMix64};
pub use sns::SimPublished;
pub use state::{FailoverReading, LostWrites, OpAnswer, OpRecord, SimMetricData, Timing};
pub use world::{Call, RestoreError, SimWorld};

use crate::clock::Clock;
use crate::runbook::Runbook;

/// The seed a caller uses when the user gives none and wants a reproducible world.
pub const DEFAULT_SEED: u64 = 0x5eed_d15a_57e2;

impl SimWorld {
    /// The world a runbook expects to start from, shaped by `config` (whose errors,
    /// e.g. a resource the runbook does not use, point into its file), with `seed`
    /// driving every random choice, on the run's `clock`.
    pub fn from_runbook(
        runbook: &Runbook,
        config: &SimConfig,
        seed: u64,
        clock: Clock,
    ) -> Result<SimWorld, SimConfigError> {
        Self::from_runbooks(runbook, &[], config, seed, clock)
    }

    /// The world `runbook` expects to start from, in which the `companions` (run
    /// after it against the same world, like a drill's failback) find their resources
    /// too: endpoints, records and replication rules they name that `runbook` alone
    /// would have to make up (rules in `build.rs`). `runbook` decides the regions and
    /// every starting state.
    pub fn from_runbooks(
        runbook: &Runbook,
        companions: &[&Runbook],
        config: &SimConfig,
        seed: u64,
        clock: Clock,
    ) -> Result<SimWorld, SimConfigError> {
        let state = build::build(runbook, companions, config, seed, clock.origin())?;
        Ok(SimWorld::from_state(state, clock))
    }
}
