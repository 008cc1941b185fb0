//! The actions' unit tests run against the simulated world (`sim/`), the one
//! in-memory cloud: it is built from the test's runbook in the state that runbook
//! expects, shaped by a `--sim-config` text where a test needs another state, and
//! records every call with the region it was sent to, so tests count mutating calls
//! and check routing. Faults are the world's own (`FaultSpec`): "apply, then lose the
//! response", "fail without applying", a region that stops answering.

use std::path::Path;
use std::time::Duration;

use crate::clock::Clock;
use crate::cloud::{Cloud, CloudErrorKind};
use crate::runbook::{RenderStyle, Runbook};
use crate::sim::{Call, FaultKind, FaultSpec, SimConfig, SimWorld};

pub const USE1: &str = "arn:aws:rds:us-east-1:111122223333:cluster:acme-prod-use1";
pub const USW2: &str = "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2";
pub const EUW1: &str = "arn:aws:rds:eu-west-1:111122223333:cluster:acme-prod-euw1";
pub const DATASTORE: &str = "ldgnf-acme-sessions";
pub const HEALTH_CHECK: &str = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b";
pub const ZONE: &str = "Z0731524T4AKBG1PJWH9";
/// The routing control of the us-east-1 cell (On before a failover).
pub const CELL_USE1: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03";
/// The routing control of the us-west-2 cell (Off before a failover).
pub const CELL_USW2: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460";
/// The control panel's "at least one cell On" assertion rule.
pub const SAFETY_RULE: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/safetyrule/9e1a7c3f5b2d8046";

/// A runbook with one step per catalogue entry (and a few variants): the world it
/// expects (every primary in us-east-1, healthy) is what [`Harness::prod`] builds.
pub const RUNBOOK: &str = r#"
[runbook]
name = "actions-test"
mode = "unplanned"
[objectives]
rpo = "30s"
[params]
from = "us-east-1"
to = "us-west-2"
account = "111122223333"

[[step]]
id = "failover"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"
[step.gate]
check = "aurora.writer_in_region"
global_cluster = "acme-prod"
region = "{{to}}"

[[step]]
id = "failover-auto"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "auto"

[[step]]
id = "failover-euw1"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "arn:aws:rds:eu-west-1:{{account}}:cluster:acme-prod-euw1"
[step.rollback]
action = "aurora.switchover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{from}}:{{account}}:cluster:acme-prod-use1"

[[step]]
id = "switchover"
action = "aurora.switchover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"
[step.rollback]

[[step]]
id = "detach"
action = "aurora.detach_promote"
approval = true
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"

[[step]]
id = "snapshot"
action = "aurora.snapshot_lost_writes"
global_cluster = "acme-prod"
cluster = "arn:aws:rds:{{from}}:{{account}}:cluster:acme-prod-use1"

[[step]]
id = "capacity"
action = "aurora.serverless_capacity"
cluster = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"
min_acu = 2
max_acu = 64
[step.rollback]

[[step]]
id = "valkey"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
allow_disassociate = true
[step.gate]
check = "valkey.primary_in_region"
global_datastore = "ldgnf-acme-sessions"
region = "{{to}}"

[[step]]
id = "valkey-strict"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
[step.rollback]

[[step]]
id = "s3"
action = "s3.replication_check"
source_bucket = "acme-prod-assets-use1"
destination_bucket = "acme-prod-assets-usw2"
canary_timeout = "1m"
max_backlog = 10

[[step]]
id = "cutover"
action = "route53.cutover"
hosted_zone_id = "Z0731524T4AKBG1PJWH9"
[[step.records]]
name = "db-writer.acme.internal."
type = "CNAME"
ttl = 30
values = ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]
[[step.records]]
name = "cache.acme.internal"
type = "CNAME"
ttl = 30
values = ["master.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com"]
[[step.records]]
name = "new.acme.internal."
type = "A"
ttl = 60
values = ["10.0.0.2", "10.0.0.1"]
[step.gate]
check = "route53.change_insync"
[step.rollback]

[[step]]
id = "flip"
action = "route53.health_check_flip"
health_checks = ["8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"]
invert = true
[step.gate]
check = "route53.health_check_healthy"
health_check_id = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"
healthy = false
[step.rollback]

[[step]]
id = "arc"
action = "route53.routing_control"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
states = [
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460", state = "On" },
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03", state = "Off" },
]
[step.gate]
check = "route53.routing_control_state"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460"
state = "On"
[step.rollback]

[[step]]
id = "arc-state"
action = "route53.routing_control_state"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03"
state = "On"

[[step]]
id = "ecs"
action = "ecs.scale_service"
cluster = "acme-prod-usw2"
service = "acme-api"
region = "{{to}}"
desired_count = 8
[step.rollback]

[[step]]
id = "asg"
action = "autoscaling.set_capacity"
group = "acme-workers-usw2"
region = "{{to}}"
min_size = 2
desired_capacity = 4
max_size = 8
[step.rollback]

[[step]]
id = "approve"
action = "approval"
message = "Promote {{to}}"

[[step]]
id = "soak"
action = "wait"
duration = "90s"

[[step]]
id = "writer-in-west"
action = "aurora.writer_in_region"
global_cluster = "acme-prod"
region = "{{to}}"

[[step]]
id = "global-endpoint-west"
action = "aurora.global_endpoint"
global_cluster = "acme-prod"
region = "{{to}}"

[[step]]
id = "lag"
action = "aurora.lag_below"
global_cluster = "acme-prod"

[[step]]
id = "cluster-up"
action = "aurora.cluster_available"
cluster = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"

[[step]]
id = "cache-primary-west"
action = "valkey.primary_in_region"
global_datastore = "ldgnf-acme-sessions"
region = "{{to}}"

[[step]]
id = "cache-up"
action = "valkey.available"
global_datastore = "ldgnf-acme-sessions"

[[step]]
id = "record"
action = "route53.record_points_to"
hosted_zone_id = "Z0731524T4AKBG1PJWH9"
name = "db-writer.acme.internal"
type = "CNAME"
expect = ["acme-prod-use1.cluster-c4f7gh2jk9lm.us-east-1.rds.amazonaws.com."]

[[step]]
id = "hc"
action = "route53.health_check_healthy"
health_check_id = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"

[[step]]
id = "canary"
action = "s3.canary_replicated"
source_bucket = "acme-prod-assets-use1"
destination_bucket = "acme-prod-assets-usw2"

[[step]]
id = "http"
action = "http.check"
url = "https://api.acme.example/healthz"
body_contains = "\"region\":\"us-west-2\""
max_latency = "2s"

[[step]]
id = "pg"
action = "postgres.check"
host = "db-writer.acme.internal"
user = "drpilot_check"
password_env = "PATH"
expect = "writer"
canary = true

[[step]]
id = "vk"
action = "valkey.check"
host = "cache.acme.internal"
expect = "primary"

[[step]]
id = "dns"
action = "dns.check"
name = "db-writer.acme.internal"
type = "CNAME"
expect = ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]

[[step]]
id = "pgbeat"
action = "postgres.heartbeat"
host = "db-writer.acme.internal"
user = "drpilot"
wait = "10s"

[[step]]
id = "vkbeat"
action = "valkey.heartbeat"
host = "cache.acme.internal"
"#;

/// A loaded runbook over the simulated world it expects, with the run clock: everything
/// a [`super::StepContext`] borrows. Build it inside a paused tokio runtime: the
/// world's operations take minutes of virtual time.
pub struct Harness {
    pub world: SimWorld,
    pub cloud: Cloud,
    pub runbook: Runbook,
    pub clock: Clock,
}

impl Harness {
    /// [`RUNBOOK`] over the world it expects.
    pub fn prod() -> Self {
        Self::new(RUNBOOK, "")
    }

    /// A runbook text over its world, shaped by a `--sim-config` text.
    pub fn new(runbook: &str, sim_config: &str) -> Self {
        let runbook = match crate::runbook::load_str(Path::new("test.toml"), runbook) {
            Ok(l) => l.runbook,
            Err(e) => panic!("{}", e.render(RenderStyle::Short)),
        };
        let config = match SimConfig::parse(Path::new("sim.toml"), sim_config) {
            Ok(c) => c,
            Err(e) => panic!("{}", e.render(RenderStyle::Short)),
        };
        let origin = jiff::Timestamp::from_second(1_700_000_000).expect("a valid time");
        let clock = Clock::resume(1.0, origin, Duration::ZERO);
        let world = SimWorld::from_runbook(&runbook, &config, 7, clock.clone())
            .unwrap_or_else(|e| panic!("{}", e.render(RenderStyle::Short)));
        world.record_calls();
        Self {
            cloud: world.cloud(),
            world,
            runbook,
            clock,
        }
    }

    /// The context of one step.
    pub fn ctx(&self, id: &str) -> super::StepContext<'_> {
        let step = self
            .runbook
            .steps
            .iter()
            .find(|s| s.id.as_str() == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        super::StepContext {
            cloud: &self.cloud,
            runbook: &self.runbook,
            step,
            clock: &self.clock,
            interrupted: false,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.world.calls()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, op: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == op)
            .collect()
    }

    /// The region each call of `op` was sent to, in order ("" for the data plane).
    pub fn regions_of(&self, op: &str) -> Vec<String> {
        self.calls_of(op)
            .into_iter()
            .map(|c| c.region.unwrap_or_default())
            .collect()
    }

    /// How many calls asked for a change.
    pub fn mutations(&self) -> usize {
        self.calls().iter().filter(|c| c.mutating).count()
    }

    /// The mutating calls the world applied (a lost response included).
    pub fn applied(&self) -> usize {
        self.world.op_log().iter().filter(|r| r.applied).count()
    }

    /// `region` stops answering from now on, as a dead region does: calls to it get
    /// no answer until their deadline.
    pub fn down(&self, region: &str) {
        self.world
            .make_unreachable(region, self.clock.elapsed(), None);
    }

    /// The next `times` calls of `op` take effect, then their answer is lost (a
    /// transient error, as a reset connection gives).
    pub fn lose(&self, op: &str, times: u64) {
        self.world.inject(FaultSpec {
            kind: FaultKind::Error,
            operation: Some(op.to_string()),
            times: Some(times),
            from: self.clock.elapsed(),
            after_apply: true,
            ..FaultSpec::default()
        });
    }

    /// The next `times` calls of `op` fail with `kind` (and AWS's `code`, if given)
    /// without taking effect.
    pub fn fail(&self, op: &str, kind: CloudErrorKind, code: Option<&str>, times: u64) {
        self.world.inject(FaultSpec {
            kind: FaultKind::Error,
            operation: Some(op.to_string()),
            times: Some(times),
            from: self.clock.elapsed(),
            error: kind,
            code: code.map(str::to_string),
            ..FaultSpec::default()
        });
    }

    /// Lets `d` of virtual time pass (operations in progress complete on their own).
    pub async fn wait(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_test_runbook_builds_its_world() {
    let h = Harness::prod();
    assert!(h.calls().is_empty());
    assert_eq!(h.world.regions(), ("us-east-1".into(), "us-west-2".into()));
}
