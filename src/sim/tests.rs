//! Tests of the world through the `cloud` traits, on a paused clock: each operation's
//! AWS semantics, faults, building from the shipped runbooks, persistence, and the
//! shipped runbooks run end to end through the engine.
//!
//! One file per subject under `tests/`; this one holds the helpers they share and the
//! tests that drive the world through the engine or the actions. Those stay here
//! because `tests/it/layers.rs` knows test modules by the file name `tests.rs`: from
//! `tests/<subject>.rs` their imports would read as `sim` reaching up.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::cloud::{
    ChangeAction, CloudErrorKind as K, ClusterEndpoint, ClusterMode, DataPlane, ElastiCache,
    Endpoint, FailoverStatus, HttpProbe, MemberRole, Rds, RecordChange, RecordSet,
    ReplicationStatus, Route53, RoutingControlState, RoutingControlState::Off,
    RoutingControlState::On, RoutingControls, S3,
};

mod arc;
mod aurora;
mod autoscaling;
mod building;
mod dataplane;
mod ecs;
mod faults;
mod fuzz;
mod persistence;
mod route53;
mod s3;
mod valkey;

const USE1: &str = "arn:aws:rds:us-east-1:111122223333:cluster:acme-prod-use1";
const USW2: &str = "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2";
const GC: &str = "acme-prod";
const DS: &str = "ldgnf-acme-sessions";
const HC: &str = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b";
const PRIVATE: &str = "Z0731524T4AKBG1PJWH9";
const SRC: &str = "acme-prod-assets-use1";
const DST: &str = "acme-prod-assets-usw2";

fn shipped(name: &str) -> Runbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runbooks")
        .join(name);
    crate::runbook::load(&path)
        .expect("shipped runbook loads")
        .runbook
}

fn clock() -> Clock {
    let origin = jiff::Timestamp::from_second(1_700_000_000).expect("valid");
    Clock::resume(1.0, origin, Duration::ZERO)
}

fn config(text: &str) -> SimConfig {
    match SimConfig::parse(Path::new("sim.toml"), text) {
        Ok(c) => c,
        Err(e) => panic!("{}", e.render(crate::runbook::RenderStyle::Short)),
    }
}

/// The failover runbook that moves DNS through Route 53's control plane (a cutover of
/// plain records, a health-check flip): its world has what the Route 53 tests need.
fn without_arc() -> Runbook {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/runbooks/valid/region-failover-without-arc.toml");
    crate::runbook::load(&path)
        .expect("the test runbook loads")
        .runbook
}

/// The world of [`without_arc`], shaped by `cfg`.
fn world_with(cfg: &str, seed: u64) -> SimWorld {
    SimWorld::from_runbook(&without_arc(), &config(cfg), seed, clock()).expect("world builds")
}

fn world() -> SimWorld {
    world_with("", 1)
}

async fn wait(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

async fn writer_region(w: &SimWorld, region: &str) -> Option<String> {
    let g = w
        .describe_global_cluster(region, GC)
        .await
        .expect("describe");
    g.writer().map(|m| m.region.clone())
}

fn pg(host: &str) -> Endpoint {
    Endpoint {
        host: host.into(),
        port: 5432,
        user: Some("u".into()),
        password_env: None,
        tls: crate::cloud::Tls::Require,
    }
}

fn cname(name: &str, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: "CNAME".into(),
        set_identifier: None,
        ttl: Some(30),
        values: vec![value.into()],
        alias: None,
        weight: None,
        failover: None,
        health_check_id: None,
        routing: Default::default(),
    }
}

fn change(action: ChangeAction, record: RecordSet) -> RecordChange {
    RecordChange { action, record }
}

fn update(arn: &str, state: RoutingControlState) -> crate::cloud::RoutingControlUpdate {
    crate::cloud::RoutingControlUpdate {
        arn: arn.into(),
        state,
    }
}

/// The routing control of the us-east-1 cell in the shipped runbooks.
const CELL_USE1: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03";
/// The routing control of the us-west-2 cell.
const CELL_USW2: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460";

/// The shipped runbooks' ARC cluster endpoint in `region`.
fn arc_endpoint(region: &str) -> ClusterEndpoint {
    let host = match region {
        "us-east-1" => "aaaaaaaa",
        "us-west-2" => "bbbbbbbb",
        _ => "cccccccc",
    };
    ClusterEndpoint {
        url: format!("https://{host}.route53-recovery-cluster.{region}.amazonaws.com/v1"),
        region: region.into(),
    }
}

/// (us-east-1 cell, us-west-2 cell), read at the us-west-2 endpoint.
async fn cells(w: &SimWorld) -> (RoutingControlState, RoutingControlState) {
    let ep = arc_endpoint("us-west-2");
    (
        w.routing_control_state(&ep, CELL_USE1).await.unwrap(),
        w.routing_control_state(&ep, CELL_USW2).await.unwrap(),
    )
}

// ------------------------------------------------ Route 53 ARC, through the engine

/// A runbook that only moves DNS by ARC, its cluster's us-east-1 endpoint listed first.
const ARC_ONLY: &str = r#"
[runbook]
name = "arc-only"
mode = "unplanned"
[params]
from = "us-east-1"
to = "us-west-2"
[defaults]
retry = { attempts = 10, initial = "2s", max = "5s" }
[[step]]
id = "traffic"
action = "route53.routing_control"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
states = [
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460", state = "On" },
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03", state = "Off" },
]
[[step]]
id = "writer-resolves"
action = "dns.check"
after = ["traffic"]
name = "db-writer.acme.internal"
type = "CNAME"
expect = ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]
[[step]]
id = "api"
action = "http.check"
after = ["traffic"]
url = "https://api.acme.example/healthz"
body_contains = "\"region\":\"us-west-2\""
"#;

#[tokio::test(start_paused = true)]
async fn with_the_from_region_down_the_routing_control_step_uses_the_second_endpoint() {
    let rb = crate::runbook::load_str(Path::new("arc-only.toml"), ARC_ONLY)
        .unwrap()
        .runbook;
    let cfg = config("[regions.us-east-1]\nunreachable_from = \"0s\"\n");
    let w = SimWorld::from_runbook(&rb, &cfg, 3, clock()).unwrap();
    assert_eq!(
        w.resolve("db-writer.acme.internal", "CNAME", &[])
            .await
            .unwrap(),
        ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"]
    );
    let (result, events) = run_engine(&rb, &w).await;
    assert_eq!(
        result.outcome,
        crate::engine::Outcome::Succeeded,
        "{:?}",
        result.reason
    );
    // us-east-1's endpoint was probed at the start and found silent: the update was
    // never sent there (the breaker refused it), and went to us-west-2, once.
    let updates: Vec<(Option<String>, bool)> = w
        .op_log()
        .into_iter()
        .filter(|o| o.operation == "UpdateRoutingControlStates")
        .map(|o| (o.region, o.applied))
        .collect();
    assert_eq!(updates, [(Some("us-west-2".to_string()), true)]);
    let down: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            crate::engine::EventKind::RegionStatus {
                region,
                service,
                status: crate::cloud::reach::Reachability::Unreachable,
                ..
            } => Some((region.as_str(), service.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(down, [("us-east-1", "route53-recovery-cluster")]);
    let summary = events
        .iter()
        .find_map(|e| match &e.kind {
            crate::engine::EventKind::StepSucceeded { step, summary, .. }
                if step.as_str() == "traffic" =>
            {
                Some(summary.clone())
            }
            _ => None,
        })
        .expect("the step succeeded");
    assert!(summary.contains("at the us-west-2 endpoint"), "{summary}");
    assert_eq!(
        w.resolve("db-writer.acme.internal", "CNAME", &[])
            .await
            .unwrap(),
        ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"],
        "the answer moved"
    );
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
}

// ---------------------------------------------------------------- end to end

struct Collect(Vec<crate::engine::Event>);

impl crate::engine::dispatcher::Sink for Collect {
    fn emit(&mut self, event: &crate::engine::Event) -> Result<(), String> {
        self.0.push(event.clone());
        Ok(())
    }
}

/// Runs a runbook through the real engine and actions against `world`, approving all.
async fn run_engine(
    rb: &Runbook,
    world: &SimWorld,
) -> (crate::engine::RunResult, Vec<crate::engine::Event>) {
    run_engine_on(rb, world, world.clock()).await
}

/// As [`run_engine`], with the run's own clock (a drill's second phase counts from its
/// own start on the world's time line).
async fn run_engine_on(
    rb: &Runbook,
    world: &SimWorld,
    clock: &Clock,
) -> (crate::engine::RunResult, Vec<crate::engine::Event>) {
    let plan = crate::plan::Plan::new(rb);
    let cloud = world.cloud();
    // As the CLI does: every region the runbook calls is probed at the start.
    cloud.reach.probe(crate::actions::reach::probe_targets(rb));
    let config = crate::engine::RunConfig {
        approvals: crate::engine::Approvals {
            all: true,
            ..Default::default()
        },
        jitter_seed: Some(1),
        ..Default::default()
    };
    let ctx = crate::engine::RunCtx {
        runbook: rb,
        plan: &plan,
        cloud: &cloud,
        clock,
        run_id: crate::engine::RunId("sim-test".into()),
        config: &config,
        prior: None,
        sim_seed: Some(1),
    };
    let mut sink = Collect(Vec::new());
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let result = crate::engine::run(ctx, &mut [&mut sink], rx).await;
    (result, sink.0)
}

#[tokio::test(start_paused = true)]
async fn the_shipped_runbooks_run_to_success_against_their_worlds() {
    for seed in 0..4 {
        for name in [
            "region-failover.toml",
            "planned-switchover.toml",
            "failback.toml",
        ] {
            let rb = shipped(name);
            let w = SimWorld::from_runbook(&rb, &SimConfig::default(), seed, clock()).unwrap();
            let (result, events) = run_engine(&rb, &w).await;
            let log: Vec<String> = events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap_or_default())
                .collect();
            assert_eq!(
                result.outcome,
                crate::engine::Outcome::Succeeded,
                "{name} with seed {seed}:\n{}",
                log.join("\n")
            );
            // Each mutation reached the world once.
            let mut applied: Vec<(String, String)> = w
                .op_log()
                .into_iter()
                .filter(|o| o.applied)
                .map(|o| (o.operation, o.args.to_string()))
                .collect();
            let n = applied.len();
            applied.sort();
            applied.dedup();
            assert_eq!(applied.len(), n, "{name}: a mutation was applied twice");
            assert!(
                result.makespan < secs(15 * 60),
                "{name}: {:?}",
                result.makespan
            );
        }
    }
}

/// A drill: the failover, then the failback against the world it left. Built from the
/// failover alone, the world has no reverse replication rule and answers the DNS names
/// with endpoints the failback does not expect; with the failback as a companion it has
/// what both need.
#[tokio::test(start_paused = true)]
async fn a_failback_runs_against_the_world_its_failover_left() {
    let (failover, failback) = (shipped("region-failover.toml"), shipped("failback.toml"));
    for seed in 0..3 {
        let w = SimWorld::from_runbooks(
            &failover,
            &[&failback],
            &SimConfig::default(),
            seed,
            clock(),
        )
        .unwrap();
        let (first, _) = run_engine(&failover, &w).await;
        assert_eq!(
            first.outcome,
            crate::engine::Outcome::Succeeded,
            "seed {seed}"
        );
        assert_eq!(
            writer_region(&w, "us-west-2").await.as_deref(),
            Some("us-west-2")
        );
        w.clock().sleep(secs(300)).await;
        let second_clock = w.clock().restarted();
        let (second, events) = run_engine_on(&failback, &w, &second_clock).await;
        let log: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        assert_eq!(
            second.outcome,
            crate::engine::Outcome::Succeeded,
            "seed {seed}:\n{}",
            log.join("\n")
        );
        assert_eq!(
            writer_region(&w, "us-east-1").await.as_deref(),
            Some("us-east-1")
        );
        // The failback's times count from its own start.
        assert!(
            second.makespan < first.makespan + secs(30 * 60),
            "{second:?}"
        );
        assert_eq!(events[0].at, second_clock.origin());
    }
    // Without the failback as a companion the world lacks what it needs.
    let w = SimWorld::from_runbook(&failover, &SimConfig::default(), 0, clock()).unwrap();
    let (first, _) = run_engine(&failover, &w).await;
    assert_eq!(first.outcome, crate::engine::Outcome::Succeeded);
    let (second, _) = run_engine_on(&failback, &w, &w.clock().restarted()).await;
    assert_ne!(second.outcome, crate::engine::Outcome::Succeeded);
}

// ------------------------------------------------------------------ heartbeats

fn pg_target(cluster: &str) -> crate::cloud::HeartbeatTarget {
    crate::cloud::HeartbeatTarget {
        endpoint: Endpoint {
            host: format!("{cluster}.cluster-x.rds.amazonaws.com"),
            port: 5432,
            user: Some("drpilot".into()),
            password_env: None,
            tls: crate::cloud::Tls::Off,
        },
        store: crate::cloud::HeartbeatStore::Postgres {
            database: "app".into(),
            table: "drpilot_heartbeat".into(),
        },
    }
}

#[tokio::test(start_paused = true)]
async fn an_unplanned_failover_loses_the_heartbeats_its_target_had_not_replicated() {
    let w = world_with("[clusters.acme-prod-usw2]\nlag = \"5s\"\n", 1);
    let clock = w.clock().clone();
    let (primary, secondary) = (pg_target("acme-prod-use1"), pg_target("acme-prod-usw2"));
    let mut writer = crate::heartbeat::Writer::with_id("w");
    // Heartbeats at 0..=9 s, acknowledged by the primary.
    for _ in 0..10 {
        crate::actions::heartbeats::beat(&mut writer, &w, &primary, &clock)
            .await
            .unwrap();
        wait(1).await;
    }
    // A replica refuses writes, and so does the primary once the failover is accepted.
    assert_eq!(
        crate::actions::heartbeats::beat(&mut writer, &w, &secondary, &clock)
            .await
            .unwrap_err()
            .kind,
        K::InvalidState
    );
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    assert_eq!(
        crate::actions::heartbeats::beat(&mut writer, &w, &primary, &clock)
            .await
            .unwrap_err()
            .kind,
        K::InvalidState
    );
    assert_eq!(writer.acknowledged(), 10);
    wait(130).await;
    assert_eq!(
        writer_region(&w, "us-west-2").await.as_deref(),
        Some("us-west-2")
    );
    crate::actions::heartbeats::beat(&mut writer, &w, &secondary, &clock)
        .await
        .unwrap();
    let beats = w
        .heartbeat_read(&secondary, 0)
        .await
        .unwrap()
        .remove(0)
        .beats;
    let seqs: Vec<u64> = beats.iter().map(|b| b.seq).collect();
    // 5 s of lag at the failover (10 s): the heartbeats of 0..=5 s had arrived.
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 11]);
    let m = crate::heartbeat::measure(&beats, 0).unwrap();
    assert_eq!(m.lost(), 4);
    // Survived: 5 s; last lost: 9 s. The world's own account agrees on the lag.
    assert_eq!(m.rpo(), secs(4));
    assert_eq!(w.lost_writes()[0].window(), secs(5));
    // The old primary, now a secondary, holds what the new primary holds (once the
    // last heartbeat has replicated).
    wait(5).await;
    let on_old = w.heartbeat_read(&primary, 0).await.unwrap().remove(0).beats;
    assert_eq!(on_old.len(), 7, "{on_old:?}");
}

#[tokio::test(start_paused = true)]
async fn a_switchover_loses_no_heartbeat() {
    let w = world_with("[clusters.acme-prod-usw2]\nlag = \"3s\"\n", 1);
    let clock = w.clock().clone();
    let (primary, secondary) = (pg_target("acme-prod-use1"), pg_target("acme-prod-usw2"));
    let mut writer = crate::heartbeat::Writer::with_id("w");
    for _ in 0..5 {
        crate::actions::heartbeats::beat(&mut writer, &w, &primary, &clock)
            .await
            .unwrap();
        wait(1).await;
    }
    w.switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap();
    wait(400).await;
    assert_eq!(
        writer_region(&w, "us-west-2").await.as_deref(),
        Some("us-west-2")
    );
    crate::actions::heartbeats::beat(&mut writer, &w, &secondary, &clock)
        .await
        .unwrap();
    let beats = w
        .heartbeat_read(&secondary, 0)
        .await
        .unwrap()
        .remove(0)
        .beats;
    let m = crate::heartbeat::measure(&beats, 0).unwrap();
    assert_eq!((m.lost(), m.rpo()), (0, Duration::ZERO), "{beats:?}");
    assert_eq!(beats.len(), 6);
}

/// `aurora.serverless_capacity` through the engine: the step ends only once the cluster
/// is available at the new range, and when a later step fails its built-in rollback
/// puts the captured range back, each change sent once.
#[tokio::test(start_paused = true)]
async fn a_capacity_range_is_set_then_rolled_back_through_the_engine() {
    let text = format!(
        "[runbook]\nname = \"scale\"\nmode = \"unplanned\"\n[params]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
         [[step]]\nid = \"scale\"\naction = \"aurora.serverless_capacity\"\ncluster = \"{USW2}\"\n\
         min_acu = 2\nmax_acu = 64\n[step.rollback]\n\
         [[step]]\nid = \"lag\"\nafter = [\"scale\"]\naction = \"aurora.lag_below\"\n\
         global_cluster = \"{GC}\"\nmax_lag = \"1ms\"\nretry = {{ attempts = 2, initial = \"1s\" }}\n"
    );
    let rb = crate::runbook::load_str(Path::new("scale.toml"), &text)
        .unwrap_or_else(|e| panic!("{}", e.render(crate::runbook::RenderStyle::Short)))
        .runbook;
    let w = SimWorld::from_runbook(&rb, &SimConfig::default(), 3, clock()).unwrap();
    let before = w.describe_cluster(USW2).await.unwrap().scaling;
    let (result, events) = run_engine(&rb, &w).await;
    let log: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    assert_eq!(
        result.outcome,
        crate::engine::Outcome::RolledBack,
        "{}",
        log.join("\n")
    );
    let c = w.describe_cluster(USW2).await.unwrap();
    assert_eq!((c.status.as_str(), c.scaling), ("available", before));
    let sent: Vec<(bool, serde_json::Value)> = w
        .op_log()
        .into_iter()
        .filter(|o| o.operation == "ModifyDBCluster")
        .map(|o| (o.applied, o.args))
        .collect();
    assert_eq!(
        sent,
        [
            (
                true,
                serde_json::json!({"cluster": USW2, "min_acu": 2, "max_acu": 64, "apply_immediately": true})
            ),
            (
                true,
                serde_json::json!({"cluster": USW2, "min_acu": 0.5, "max_acu": 8, "apply_immediately": true})
            ),
        ]
    );
    // The step succeeded only after the cluster was available at 2-64.
    assert!(
        log.iter()
            .any(|l| l.contains("\"step_succeeded\"") && l.contains("\"scale\"")),
        "{}",
        log.join("\n")
    );
}

/// A heartbeat target at a replication group's primary endpoint, cluster mode detected.
fn vk_target(rg: &str) -> crate::cloud::HeartbeatTarget {
    crate::cloud::HeartbeatTarget {
        endpoint: pg(&format!("clustercfg.{rg}.x1y2z3.cache.amazonaws.com")),
        store: crate::cloud::HeartbeatStore::Valkey {
            key: "drpilot:heartbeat".into(),
            cluster: ClusterMode::Detect,
        },
    }
}

#[tokio::test(start_paused = true)]
async fn a_cut_shard_loses_its_heartbeats_at_a_failover_and_the_others_keep_theirs() {
    // Shard 3 of the us-west-2 member stops receiving at 5 s.
    let w = world_with(
        "[datastores.ldgnf-acme-sessions]\nshards = 3\n\
         [replication_groups.acme-sessions-usw2]\ncut_shards = [3]\ncut_from = \"5s\"\n",
        1,
    );
    let clock = w.clock().clone();
    let (primary, secondary) = (
        vk_target("acme-sessions-use1"),
        vk_target("acme-sessions-usw2"),
    );
    let mut writer = crate::heartbeat::Writer::with_id("w");
    // Rounds at 1..=8 s, one heartbeat per shard each.
    for _ in 0..8 {
        wait(1).await;
        let written = crate::actions::heartbeats::beat(&mut writer, &w, &primary, &clock)
            .await
            .unwrap();
        assert_eq!(written.len(), 3);
    }
    w.failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap();
    wait(120).await;
    crate::actions::heartbeats::beat(&mut writer, &w, &secondary, &clock)
        .await
        .unwrap();
    let shards = w.heartbeat_read(&secondary, 0).await.unwrap();
    let seqs: Vec<(String, Vec<u64>)> = shards
        .iter()
        .map(|s| {
            (
                s.shard.label(),
                s.beats.iter().map(|b| b.seq).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("shard 0-5460".into(), (1..=9).collect::<Vec<_>>()),
            ("shard 5461-10922".into(), (1..=9).collect()),
            // 1..=4 (1-4 s) reached it; 5..=8 (5-8 s) did not.
            ("shard 10923-16383".into(), vec![1, 2, 3, 4, 9]),
        ]
    );
    let rpo: Vec<(u64, Duration)> = shards
        .iter()
        .map(|s| {
            let m = crate::heartbeat::measure(&s.beats, 0).unwrap();
            (m.lost(), m.rpo())
        })
        .collect();
    // Survived: 4 s; last lost: 8 s.
    assert_eq!(
        rpo,
        [(0, Duration::ZERO), (0, Duration::ZERO), (4, secs(4))]
    );
    // The old primary resynchronised from the new one: it lost them too.
    wait(1).await;
    let old = w.heartbeat_read(&primary, 0).await.unwrap();
    assert_eq!(old[2].beats.len(), 5, "{:?}", old[2].beats);
    assert_eq!(old[0].beats.len(), 9);
}

/// `ecs.scale_service` through the engine: the step ends only once the new tasks run,
/// and when a later step fails its built-in rollback puts the captured count back and
/// waits for the drain, each UpdateService sent once.
#[tokio::test(start_paused = true)]
async fn a_service_is_scaled_then_rolled_back_through_the_engine() {
    let text = format!(
        "{}[[step]]\nid = \"lag\"\nafter = [\"api\"]\naction = \"aurora.lag_below\"\n\
         global_cluster = \"{GC}\"\nmax_lag = \"1ms\"\nretry = {{ attempts = 2, initial = \"1s\" }}\n",
        ecs::SCALE
    );
    let rb = ecs::scale_runbook(&text);
    let w = SimWorld::from_runbook(&rb, &SimConfig::default(), 3, clock()).unwrap();
    let (result, events) = run_engine(&rb, &w).await;
    let log: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    assert_eq!(
        result.outcome,
        crate::engine::Outcome::RolledBack,
        "{}",
        log.join("\n")
    );
    let s = crate::cloud::Ecs::describe_service(&w, "us-west-2", "acme-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.desired_count, s.running_count, s.pending_count),
        (2, 2, 0)
    );
    let sent: Vec<(bool, serde_json::Value)> = w
        .op_log()
        .into_iter()
        .filter(|o| o.operation == "UpdateService")
        .map(|o| (o.applied, o.args["desiredCount"].clone()))
        .collect();
    assert_eq!(
        sent,
        [(true, serde_json::json!(8)), (true, serde_json::json!(2))]
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"step_succeeded\"") && l.contains("\"api\"")),
        "{}",
        log.join("\n")
    );
}
