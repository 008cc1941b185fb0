//! Tests of the world through the `cloud` traits, on a paused clock: each operation's
//! AWS semantics, faults, building from the shipped runbooks, persistence, and the
//! shipped runbooks run end to end through the engine.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::cloud::{
    ChangeAction, CloudErrorKind as K, ClusterEndpoint, DataPlane, ElastiCache, Endpoint,
    FailoverStatus, HttpProbe, MemberRole, Rds, RecordChange, RecordSet, ReplicationStatus,
    Route53, RoutingControlState, RoutingControlState::Off, RoutingControlState::On,
    RoutingControls, S3,
};

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
        tls: true,
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
    }
}

fn change(action: ChangeAction, record: RecordSet) -> RecordChange {
    RecordChange { action, record }
}

// ---------------------------------------------------------------- Aurora

#[tokio::test(start_paused = true)]
async fn unplanned_failover_goes_to_the_target_region_and_moves_the_writer_at_the_end() {
    let w = world();
    let e = w
        .failover_global_cluster("us-east-1", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidRequest, Some("InvalidParameterValue"))
    );

    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    let g = w.describe_global_cluster("us-west-2", GC).await.unwrap();
    assert_eq!(g.status, "failing-over");
    let fs = g.failover_state.clone().unwrap();
    assert_eq!(fs.status, FailoverStatus::Pending);
    assert!(fs.is_data_loss_allowed);
    assert_eq!(
        (fs.from_cluster_arn.as_str(), fs.to_cluster_arn.as_str()),
        (USE1, USW2)
    );
    assert_eq!(
        g.writer().unwrap().cluster_arn,
        USE1,
        "the flag moves only at the end"
    );
    let c = w.describe_cluster(USW2).await.unwrap();
    assert_eq!(c.status, "failing-over");

    wait(10).await;
    let g = w.describe_global_cluster("us-west-2", GC).await.unwrap();
    assert_eq!(
        g.failover_state.as_ref().unwrap().status,
        FailoverStatus::FailingOver
    );
    assert_eq!(g.writer().unwrap().cluster_arn, USE1);

    // Pending 2-8 s plus 60-120 s: done within 128 s, not before 62 s.
    let mut done_at = None;
    for t in 11..=130 {
        wait(1).await;
        if writer_region(&w, "us-west-2").await.as_deref() == Some("us-west-2") {
            done_at = Some(t);
            break;
        }
    }
    let done_at = done_at.expect("failover completes");
    assert!((62..=128).contains(&done_at), "completed at {done_at}s");
    let g = w.describe_global_cluster("us-west-2", GC).await.unwrap();
    assert_eq!((g.status.as_str(), &g.failover_state), ("available", &None));
    assert!(
        !g.member(USE1).unwrap().is_writer,
        "the old primary stays, as a secondary"
    );
    assert_eq!(w.describe_cluster(USW2).await.unwrap().status, "available");

    // It lost the target's lag worth of writes, ending when it was accepted.
    let lost = w.lost_writes();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].end, Duration::ZERO);
    assert_eq!(lost[0].operation, "FailoverGlobalCluster");
    assert!(lost[0].window() >= Duration::from_millis(200));
    // And left a snapshot of the old primary in its region, creating then available.
    let snaps = w.list_cluster_snapshots(USE1).await.unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0]
            .id
            .starts_with("rds:unplanned-global-failover-acme-prod-use1-2023-11-14-22-")
    );
    assert_eq!(snaps[0].cluster_id, "acme-prod-use1");
    assert_eq!(snaps[0].status, "creating");
    wait(30).await;
    assert_eq!(
        w.list_cluster_snapshots(USE1).await.unwrap()[0].status,
        "available"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_operation_while_one_runs_is_invalid_state() {
    let w = world();
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidGlobalClusterStateFault"))
    );
    let e = w
        .switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidState);
    let e = w
        .remove_from_global_cluster("us-west-2", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidGlobalClusterStateFault"))
    );
    wait(200).await;
    // Failing over to the writer itself: the cluster is already the primary.
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidDBClusterStateFault"))
    );
    let e = w
        .failover_global_cluster("us-west-2", "nope", USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("GlobalClusterNotFoundFault"))
    );
    let e = w
        .failover_global_cluster("us-west-2", GC, "arn:aws:rds:us-west-2:1:cluster:x", true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("DBClusterNotFoundFault"))
    );
}

#[tokio::test(start_paused = true)]
async fn unplanned_failover_works_while_the_primary_region_is_down() {
    let w = world_with(
        "[regions.us-east-1]\nunreachable_from = \"10s\"\nunreachable_until = \"10m\"\n\
         [clusters.acme-prod-usw2]\nlag = \"4s\"\n",
        1,
    );
    wait(60).await;
    assert_eq!(
        w.describe_global_cluster("us-east-1", GC)
            .await
            .unwrap_err()
            .kind,
        K::Unreachable
    );
    // Reads in the target's region still work; the lag metric has no datapoints.
    assert_eq!(
        writer_region(&w, "us-west-2").await.as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        w.replication_lag("us-west-2", GC, USW2).await.unwrap(),
        None
    );
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    let lost = &w.lost_writes()[0];
    // Writes stopped when the region went down; the last 4 s before were not replicated.
    assert_eq!((lost.start, lost.end), (secs(6), secs(10)));
    assert_eq!(lost.window(), secs(4));
    wait(130).await;
    assert_eq!(
        writer_region(&w, "us-west-2").await.as_deref(),
        Some("us-west-2")
    );
    // The old primary's snapshot is taken once its region is back.
    assert_eq!(
        w.list_cluster_snapshots(USE1).await.unwrap_err().kind,
        K::Unreachable
    );
    wait(600).await;
    let snaps = w.list_cluster_snapshots(USE1).await.unwrap();
    assert_eq!(snaps.len(), 1);
    assert!(snaps[0].id.ends_with("2023-11-14-22-23"), "{}", snaps[0].id);
}

#[tokio::test(start_paused = true)]
async fn switchover_is_sent_to_the_primary_region_and_needs_every_region() {
    let w = world_with("[clusters.acme-prod-usw2]\nlag = \"3s\"\n", 1);
    let e = w
        .switchover_global_cluster("us-west-2", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidRequest, Some("InvalidParameterValue"))
    );
    w.make_unreachable("us-west-2", secs(0), Some(secs(60)));
    let e = w
        .switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidGlobalClusterStateFault"))
    );
    wait(60).await;
    w.switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap();
    let g = w.describe_global_cluster("us-east-1", GC).await.unwrap();
    assert_eq!(g.status, "switching-over");
    assert!(!g.failover_state.unwrap().is_data_loss_allowed);
    // 2-8 s pending + 120-300 s + the 3 s catch-up.
    wait(124).await;
    assert_eq!(
        writer_region(&w, "us-east-1").await.as_deref(),
        Some("us-east-1")
    );
    wait(190).await;
    assert_eq!(
        writer_region(&w, "us-east-1").await.as_deref(),
        Some("us-west-2")
    );
    assert!(w.lost_writes().is_empty(), "a switchover loses nothing");
    assert!(w.list_cluster_snapshots(USE1).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failover_without_data_loss_is_a_switchover_and_fails_in_an_outage() {
    let w = world_with("[regions.us-east-1]\nunreachable_from = \"0s\"\n", 1);
    let e = w
        .failover_global_cluster("us-east-1", GC, USW2, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Unreachable);
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest, "{e}");

    let w = world();
    w.failover_global_cluster("us-east-1", GC, USW2, false)
        .await
        .unwrap();
    let g = w.describe_global_cluster("us-east-1", GC).await.unwrap();
    assert_eq!(g.status, "switching-over");
    assert!(!g.failover_state.unwrap().is_data_loss_allowed);
}

#[tokio::test(start_paused = true)]
async fn a_switchover_cut_off_by_an_outage_is_cancelled() {
    let w = world();
    w.switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap();
    w.make_unreachable("us-west-2", secs(30), None);
    wait(400).await;
    assert_eq!(
        writer_region(&w, "us-east-1").await.as_deref(),
        Some("us-east-1")
    );
    let g = w.describe_global_cluster("us-east-1", GC).await.unwrap();
    assert_eq!((g.status.as_str(), g.failover_state), ("available", None));
}

#[tokio::test(start_paused = true)]
async fn switchover_refuses_a_degraded_topology() {
    let w = world_with("[clusters.acme-prod-usw2]\nengine_version = \"15.4\"\n", 1);
    let e = w
        .switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidState);
    assert!(e.message.contains("engine versions differ"), "{e}");
    let w = world_with("[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n", 1);
    let e = w
        .switchover_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidDBClusterStateFault"))
    );
    let w = world_with("[clusters.acme-prod-usw2]\ninstances = 0\n", 1);
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidDBClusterStateFault"))
    );
}

#[tokio::test(start_paused = true)]
async fn detach_makes_a_standalone_writer_and_loses_the_lag() {
    let w = world_with("[clusters.acme-prod-usw2]\nlag = \"2s\"\n", 1);
    let e = w
        .remove_from_global_cluster("us-east-1", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest, "sent to the member's region");
    let e = w
        .remove_from_global_cluster("us-east-1", GC, USE1)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidGlobalClusterStateFault"))
    );
    w.make_unreachable("us-east-1", secs(5), None);
    wait(10).await;
    w.remove_from_global_cluster("us-west-2", GC, USW2)
        .await
        .unwrap();
    let g = w.describe_global_cluster("us-west-2", GC).await.unwrap();
    assert!(g.member(USW2).is_none());
    assert_eq!(w.describe_cluster(USW2).await.unwrap().status, "promoting");
    let host = "acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com";
    assert!(
        w.postgres(&pg(host), "acme", false)
            .await
            .unwrap()
            .in_recovery
    );
    wait(90).await;
    assert_eq!(w.describe_cluster(USW2).await.unwrap().status, "available");
    let o = w.postgres(&pg(host), "acme", true).await.unwrap();
    assert!(!o.in_recovery);
    assert_eq!(o.canary_ok, Some(true));
    let lost = &w.lost_writes()[0];
    assert_eq!(
        (lost.operation.as_str(), lost.start, lost.end),
        ("RemoveFromGlobalCluster", secs(3), secs(5))
    );
    let e = w
        .remove_from_global_cluster("us-west-2", GC, USW2)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("DBClusterNotFoundFault"))
    );
}

#[tokio::test(start_paused = true)]
async fn replication_lag_is_the_secondary_metric_in_its_region() {
    let w = world_with("[clusters.acme-prod-usw2]\nlag = \"45s\"\n", 1);
    assert_eq!(
        w.replication_lag("us-west-2", GC, USW2).await.unwrap(),
        Some(secs(45))
    );
    assert_eq!(
        w.replication_lag("us-east-1", GC, USW2).await.unwrap(),
        None
    );
    assert_eq!(
        w.replication_lag("us-east-1", GC, USE1).await.unwrap(),
        None,
        "the writer has none"
    );
    w.make_unreachable("us-west-2", secs(1), None);
    wait(1).await;
    assert_eq!(
        w.replication_lag("us-west-2", GC, USW2)
            .await
            .unwrap_err()
            .kind,
        K::Unreachable
    );
    // The default lag is drawn from the seeded range.
    let lag = world()
        .replication_lag("us-west-2", GC, USW2)
        .await
        .unwrap()
        .unwrap();
    assert!((Duration::from_millis(200)..=Duration::from_millis(1500)).contains(&lag));
}

#[tokio::test(start_paused = true)]
async fn cluster_snapshots_copy_with_aws_rules() {
    let w = world();
    let e = w
        .copy_cluster_snapshot("us-east-1", "nope", "copy")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("DBClusterSnapshotNotFoundFault"))
    );
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    wait(130).await;
    let source = w.list_cluster_snapshots(USE1).await.unwrap()[0].id.clone();
    if w.list_cluster_snapshots(USE1).await.unwrap()[0].status == "creating" {
        let e = w
            .copy_cluster_snapshot("us-east-1", &source, "keep-it")
            .await
            .unwrap_err();
        assert_eq!(
            e.code.as_deref(),
            Some("InvalidDBClusterSnapshotStateFault")
        );
    }
    wait(30).await;
    let e = w
        .copy_cluster_snapshot("us-east-1", &source, "1-bad--id-")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    let copy = w
        .copy_cluster_snapshot("us-east-1", &source, "keep-it")
        .await
        .unwrap();
    assert_eq!(
        (copy.snapshot_type.as_str(), copy.status.as_str()),
        ("manual", "creating")
    );
    assert_eq!(copy.cluster_id, "acme-prod-use1");
    let e = w
        .copy_cluster_snapshot("us-east-1", &source, "keep-it")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            K::InvalidRequest,
            Some("DBClusterSnapshotAlreadyExistsFault")
        )
    );
    wait(120).await;
    let snaps = w.list_cluster_snapshots(USE1).await.unwrap();
    assert!(snaps.iter().all(|s| s.status == "available"));
    assert_eq!(snaps.len(), 2);
    // Named by ARN from another region, and in the wrong region.
    let arn = format!("arn:aws:rds:us-east-1:111122223333:cluster-snapshot:{source}");
    w.copy_cluster_snapshot("us-west-2", &arn, "keep-it")
        .await
        .unwrap();
    let e = w
        .copy_cluster_snapshot("us-west-2", &source, "other")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::NotFound);
    let logged: Vec<_> = w
        .op_log()
        .into_iter()
        .filter(|o| o.operation == "CopyDBClusterSnapshot" && o.applied)
        .collect();
    assert_eq!(logged.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn describe_cluster_finds_clusters_by_arn_in_their_region() {
    let w = world();
    let c = w.describe_cluster(USE1).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.instances, c.engine_version.as_str()),
        ("available", 2, "16.4")
    );
    assert_eq!(
        c.endpoint,
        "acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"
    );
    let e = w
        .describe_cluster("arn:aws:rds:us-east-1:111122223333:cluster:nope")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("DBClusterNotFoundFault"))
    );
    assert_eq!(
        w.describe_cluster("not-an-arn").await.unwrap_err().kind,
        K::InvalidRequest
    );
}

// ---------------------------------------------------------------- Valkey

#[tokio::test(start_paused = true)]
async fn valkey_failover_modifies_then_switches_roles() {
    let w = world();
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-use1")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest, "region and group disagree");
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-east-1", "acme-sessions-use1")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest, "already the primary");
    let e = w
        .failover_global_datastore("eu-west-1", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("GlobalReplicationGroupNotFoundFault"))
    );
    w.failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap();
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.status, "modifying");
    assert_eq!(
        d.primary().unwrap().replication_group_id,
        "acme-sessions-use1"
    );
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            K::InvalidState,
            Some("InvalidGlobalReplicationGroupStateFault")
        )
    );
    wait(44).await;
    let d = w.describe_global_datastore("us-east-1", DS).await.unwrap();
    assert_eq!(d.primary().unwrap().region, "us-east-1", "not before 45 s");
    wait(47).await;
    let d = w.describe_global_datastore("us-east-1", DS).await.unwrap();
    assert_eq!(
        (d.status.as_str(), d.primary().unwrap().region.as_str()),
        ("available", "us-west-2")
    );
    assert_eq!(d.members.len(), 2);
    let host = "master.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com";
    let o = w.valkey(&pg(host), true).await.unwrap();
    assert_eq!((o.role.as_str(), o.canary_ok), ("master", Some(true)));
}

#[tokio::test(start_paused = true)]
async fn valkey_failover_is_refused_in_an_outage_and_disassociation_works() {
    let w = world_with("[regions.us-east-1]\nunreachable_from = \"0s\"\n", 1);
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            K::InvalidState,
            Some("InvalidGlobalReplicationGroupStateFault")
        )
    );
    let e = w
        .disassociate_global_datastore("us-west-2", DS, "acme-sessions-use1", "us-east-1")
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        K::InvalidRequest,
        "the primary cannot be disassociated"
    );
    let e = w
        .disassociate_global_datastore("us-west-2", DS, "acme-sessions-usw2", "us-east-1")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    w.disassociate_global_datastore("us-west-2", DS, "acme-sessions-usw2", "us-west-2")
        .await
        .unwrap();
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.status, "modifying");
    let m = d.members.iter().find(|m| m.region == "us-west-2").unwrap();
    assert_eq!(
        (m.role, m.status.as_str()),
        (MemberRole::Secondary, "disassociating")
    );
    let host = "master.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com";
    assert_eq!(w.valkey(&pg(host), false).await.unwrap().role, "slave");
    wait(61).await;
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.members.len(), 1, "it left the global datastore");
    assert_eq!(w.valkey(&pg(host), false).await.unwrap().role, "master");
    let primary = "master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com";
    assert_eq!(
        w.valkey(&pg(primary), false).await.unwrap_err().kind,
        K::Unreachable
    );
}

// ---------------------------------------------------------------- S3

#[tokio::test(start_paused = true)]
async fn s3_objects_replicate_pending_completed_replica() {
    let w = world();
    let rules = w.replication_rules(SRC).await.unwrap();
    assert_eq!(
        (
            rules.len(),
            rules[0].enabled,
            rules[0].destination_bucket.as_str()
        ),
        (1, true, DST)
    );
    assert!(w.replication_rules(DST).await.unwrap().is_empty());
    assert!(w.versioning_enabled(DST).await.unwrap());
    assert_eq!(w.replication_backlog(SRC, &[]).await.unwrap(), Some(0));
    assert_eq!(
        w.replication_backlog(DST, &[]).await.unwrap(),
        None,
        "no replication configured"
    );
    w.put_object(SRC, "canary/1", b"x").await.unwrap();
    assert_eq!(
        w.replication_status(SRC, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Pending)
    );
    assert_eq!(w.replication_backlog(SRC, &[]).await.unwrap(), Some(1));
    assert_eq!(
        w.replication_status(DST, "canary/1")
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
    wait(30).await;
    assert_eq!(
        w.replication_status(SRC, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Completed)
    );
    assert_eq!(
        w.replication_status(DST, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Replica)
    );
    assert_eq!(w.replication_backlog(SRC, &[]).await.unwrap(), Some(0));
    let e = w.put_object("nope", "k", b"x").await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("NoSuchBucket"))
    );
    // A bucket without replication has objects without a status.
    w.put_object(DST, "local", b"x").await.unwrap();
    assert_eq!(w.replication_status(DST, "local").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn s3_replication_waits_for_both_regions() {
    let w = world_with(
        "[regions.us-west-2]\nunreachable_from = \"0s\"\nunreachable_until = \"10m\"\n",
        1,
    );
    w.put_object(SRC, "k", b"x").await.unwrap();
    wait(300).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Pending)
    );
    assert_eq!(
        w.replication_status(DST, "k").await.unwrap_err().kind,
        K::Unreachable
    );
    wait(301).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Completed)
    );
    assert_eq!(
        w.replication_status(DST, "k").await.unwrap(),
        Some(ReplicationStatus::Replica)
    );
}

#[tokio::test(start_paused = true)]
async fn s3_replication_fails_to_an_unversioned_destination_and_backlogs_drain() {
    let w = world_with(
        "[buckets.acme-prod-assets-usw2]\nversioning = false\n\
         [buckets.acme-prod-assets-use1]\nbacklog = 1500\nbacklog_clears = \"2m\"\n",
        1,
    );
    assert_eq!(w.replication_backlog(SRC, &[]).await.unwrap(), Some(1500));
    w.put_object(SRC, "k", b"x").await.unwrap();
    wait(31).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Failed)
    );
    wait(90).await;
    assert_eq!(w.replication_backlog(SRC, &[]).await.unwrap(), Some(0));
    let w = world_with(
        "[buckets.acme-prod-assets-use1]\nreplication_enabled = false\n",
        1,
    );
    assert!(!w.replication_rules(SRC).await.unwrap()[0].enabled);
    w.put_object(SRC, "k", b"x").await.unwrap();
    assert_eq!(w.replication_status(SRC, "k").await.unwrap(), None);
}

// ---------------------------------------------------------------- Route 53

#[tokio::test(start_paused = true)]
async fn record_changes_have_aws_semantics_and_batches_are_atomic() {
    let w = world();
    let db = "db-writer.acme.internal.";
    let old = w.list_record_sets(PRIVATE, db, "CNAME").await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(
        old[0].values,
        ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"]
    );
    let invalid_batch = |e: crate::cloud::CloudError| {
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (K::InvalidRequest, Some("InvalidChangeBatch")),
            "{e}"
        );
        e.message
    };
    let e = w
        .change_record_sets(PRIVATE, &[change(ChangeAction::Create, old[0].clone())])
        .await
        .unwrap_err();
    assert!(invalid_batch(e).contains("but it already exists"));
    let e = w
        .change_record_sets(
            PRIVATE,
            &[change(
                ChangeAction::Delete,
                cname("nope.acme.internal", "x"),
            )],
        )
        .await
        .unwrap_err();
    assert!(invalid_batch(e).contains("but it was not found"));
    let e = w
        .change_record_sets(PRIVATE, &[change(ChangeAction::Delete, cname(db, "other"))])
        .await
        .unwrap_err();
    assert!(invalid_batch(e).contains("do not match the current values"));
    // One bad change and nothing happens, not even the good one.
    let e = w
        .change_record_sets(
            PRIVATE,
            &[
                change(ChangeAction::Upsert, cname("new.acme.internal", "a")),
                change(ChangeAction::Delete, cname("nope.acme.internal", "x")),
            ],
        )
        .await
        .unwrap_err();
    invalid_batch(e);
    assert!(
        w.list_record_sets(PRIVATE, "new.acme.internal", "CNAME")
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting the same record set twice in one batch.
    let e = w
        .change_record_sets(
            PRIVATE,
            &[
                change(ChangeAction::Delete, old[0].clone()),
                change(ChangeAction::Delete, old[0].clone()),
            ],
        )
        .await
        .unwrap_err();
    invalid_batch(e);
    // Outside the zone; a CNAME beside another type; an empty batch; no such zone.
    let e = w
        .change_record_sets(
            PRIVATE,
            &[change(ChangeAction::Upsert, cname("x.other.example", "a"))],
        )
        .await
        .unwrap_err();
    assert!(invalid_batch(e).contains("not permitted in zone"));
    let mut a = cname(db, "10.0.0.1");
    a.record_type = "A".into();
    let e = w
        .change_record_sets(PRIVATE, &[change(ChangeAction::Create, a)])
        .await
        .unwrap_err();
    assert!(invalid_batch(e).contains("conflicting RRSet"));
    assert_eq!(
        w.change_record_sets(PRIVATE, &[]).await.unwrap_err().kind,
        K::InvalidRequest
    );
    assert_eq!(
        w.change_record_sets("ZNOPE", &[change(ChangeAction::Upsert, cname(db, "a"))])
            .await
            .unwrap_err()
            .code
            .as_deref(),
        Some("NoSuchHostedZone")
    );
    let mut unknown_hc = cname("hc.acme.internal", "a");
    unknown_hc.health_check_id = Some("nope".into());
    unknown_hc.set_identifier = Some("x".into());
    unknown_hc.weight = Some(1);
    assert_eq!(
        w.change_record_sets(PRIVATE, &[change(ChangeAction::Upsert, unknown_hc)])
            .await
            .unwrap_err()
            .code
            .as_deref(),
        Some("NoSuchHealthCheck")
    );
    // A DELETE of the identical record set, then a CREATE: fine, in one batch.
    let info = w
        .change_record_sets(
            PRIVATE,
            &[
                change(ChangeAction::Delete, old[0].clone()),
                change(ChangeAction::Create, cname(db, "elsewhere")),
            ],
        )
        .await
        .unwrap();
    assert!(info.id.starts_with("/change/C"));
    assert_eq!(
        w.list_record_sets(PRIVATE, db, "CNAME").await.unwrap()[0].values,
        ["elsewhere"]
    );
    let applied = w.op_log().iter().filter(|o| o.applied).count();
    assert_eq!(applied, 1, "only the valid batch changed anything");
}

#[tokio::test(start_paused = true)]
async fn changes_go_insync_within_a_minute_and_resolvers_see_them_then() {
    let w = world();
    let db = "db-writer.acme.internal";
    let before = w.resolve(db, "CNAME", &[]).await.unwrap();
    let info = w
        .change_record_sets(
            PRIVATE,
            &[change(
                ChangeAction::Upsert,
                cname(db, "new-target.example"),
            )],
        )
        .await
        .unwrap();
    assert_eq!(info.status, crate::cloud::ChangeStatus::Pending);
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        before,
        "not yet propagated"
    );
    let bare = info.id.trim_start_matches("/change/");
    let mut insync_at = None;
    for t in 1..=60 {
        wait(1).await;
        if w.get_change(bare).await.unwrap().status == crate::cloud::ChangeStatus::Insync {
            insync_at = Some(t);
            break;
        }
    }
    let t = insync_at.expect("INSYNC within a minute");
    assert!((10..=55).contains(&t), "{t}");
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        ["new-target.example"]
    );
    assert_eq!(
        w.get_change("/change/CNOPE").await.unwrap_err().kind,
        K::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn health_checks_invert_and_disable_like_route53() {
    let w = world();
    let api = "https://api.acme.example/healthz";
    let probe = HttpProbe {
        url: api.into(),
        method: "GET".into(),
        timeout: secs(5),
    };
    assert!(w.health_check_healthy(HC).await.unwrap());
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-east-1"}"#
    );
    w.update_health_check(HC, Some(true), None).await.unwrap();
    let hc = w.get_health_check(HC).await.unwrap();
    assert!(hc.inverted && !hc.disabled, "settings show at once");
    wait(31).await;
    assert!(
        !w.health_check_healthy(HC).await.unwrap(),
        "the checkers caught up"
    );
    assert_eq!(
        w.resolve("api.acme.example", "CNAME", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-west-2"}"#
    );
    // Disabled is healthy, inverted or not.
    w.update_health_check(HC, None, Some(true)).await.unwrap();
    wait(31).await;
    assert!(w.health_check_healthy(HC).await.unwrap());
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-use1.acme.example"]
    );
    assert_eq!(
        w.get_health_check("nope")
            .await
            .unwrap_err()
            .code
            .as_deref(),
        Some("NoSuchHealthCheck")
    );
    assert_eq!(
        w.update_health_check("nope", Some(true), None)
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn a_region_going_down_fails_dns_over_and_route53_api_lives_in_us_east_1() {
    let w = world();
    w.make_unreachable("us-east-1", secs(10), None);
    wait(20).await;
    // Checkers have not noticed yet (30 s to detect).
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-use1.acme.example"]
    );
    wait(30).await;
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    for e in [
        w.list_record_sets(PRIVATE, "x", "A").await.unwrap_err(),
        w.change_record_sets(PRIVATE, &[]).await.unwrap_err(),
        w.get_change("C1").await.unwrap_err(),
        w.get_health_check(HC).await.unwrap_err(),
        w.update_health_check(HC, Some(true), None)
            .await
            .unwrap_err(),
        w.health_check_healthy(HC).await.unwrap_err(),
    ] {
        assert_eq!(
            (e.kind, e.region.as_deref()),
            (K::Unreachable, Some("us-east-1")),
            "{e}"
        );
    }
    let probe = HttpProbe {
        url: "https://api.acme.example/".into(),
        method: "GET".into(),
        timeout: secs(5),
    };
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-west-2"}"#
    );
    let regional = HttpProbe {
        url: "https://api-use1.acme.example/healthz".into(),
        ..probe
    };
    assert_eq!(w.http(&regional).await.unwrap().status, 503);
}

// ---------------------------------------------------------------- Route 53 ARC

/// The shipped failover's world: routing controls, RECOVERY_CONTROL failover pairs.
fn arc_world(cfg: &str) -> SimWorld {
    SimWorld::from_runbook(&shipped("region-failover.toml"), &config(cfg), 1, clock())
        .expect("world builds")
}

fn update(arn: &str, state: RoutingControlState) -> crate::cloud::RoutingControlUpdate {
    crate::cloud::RoutingControlUpdate {
        arn: arn.into(),
        state,
    }
}

#[tokio::test(start_paused = true)]
async fn routing_controls_answer_at_every_reachable_endpoint_and_dns_follows_them() {
    let w = arc_world("[regions.us-east-1]\nunreachable_from = \"0s\"\n");
    let (use1, usw2) = (arc_endpoint("us-east-1"), arc_endpoint("us-west-2"));
    // The region holds the call (no answer) until the read deadline.
    let t = tokio::time::Instant::now();
    let e = w.routing_control_state(&use1, CELL_USE1).await.unwrap_err();
    assert_eq!(
        (e.kind, e.region.as_deref()),
        (K::Unreachable, Some("us-east-1"))
    );
    assert_eq!(t.elapsed(), crate::cloud::reach::DEFAULT_READ_TIMEOUT);
    assert_eq!(cells(&w).await, (On, Off), "the other endpoints answer");
    let flip = [update(CELL_USW2, On), update(CELL_USE1, Off)];
    // The silent call made the breaker probe the endpoint: the update waits for that
    // verdict and is refused without being sent.
    let e = w
        .update_routing_control_states(&use1, &flip, &[])
        .await
        .unwrap_err();
    assert!(crate::cloud::reach::is_region_unreachable(&e), "{e:?}");
    w.update_routing_control_states(&usw2, &flip, &[])
        .await
        .unwrap();
    assert_eq!(cells(&w).await, (Off, On), "the API shows it at once");
    // The operation log names the endpoint's region; only the us-west-2 call reached
    // the world.
    let log: Vec<(String, Option<String>, bool)> = w
        .op_log()
        .into_iter()
        .map(|o| (o.service, o.region, o.applied))
        .collect();
    assert_eq!(
        log,
        [(
            "route53-recovery-cluster".to_string(),
            Some("us-west-2".to_string()),
            true
        ),]
    );
    // The RECOVERY_CONTROL health checks take the new states within seconds; DNS
    // answers the SECONDARY records then, with no Route 53 API call at all.
    let db = "db-writer.acme.internal";
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"],
        "not propagated yet"
    );
    wait(11).await;
    assert_eq!(
        w.resolve(db, "CNAME", &[]).await.unwrap(),
        ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]
    );
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    let probe = HttpProbe {
        url: "https://api.acme.example/healthz".into(),
        method: "GET".into(),
        timeout: secs(5),
    };
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-west-2"}"#
    );
}

#[tokio::test(start_paused = true)]
async fn routing_control_updates_are_all_or_nothing_and_the_safety_rule_keeps_a_cell_on() {
    let w = arc_world("");
    let ep = arc_endpoint("us-west-2");
    let code = |e: crate::cloud::CloudError| (e.kind, e.code.unwrap_or_default());
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USE1, Off), update(CELL_USW2, Off)], &[])
        .await
        .unwrap_err();
    let (kind, c) = code(e.clone());
    assert_eq!((kind, c.as_str()), (K::InvalidState, "ConflictException"));
    assert!(
        e.message
            .contains("at least one routing control must be On"),
        "{e}"
    );
    let unknown = format!("{}0", CELL_USE1);
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USW2, On), update(&unknown, Off)], &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (K::NotFound, "ResourceNotFoundException".to_string())
    );
    let e = w
        .update_routing_control_states(&ep, &[update(CELL_USW2, On), update(CELL_USW2, Off)], &[])
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        (K::InvalidRequest, "ValidationException".to_string())
    );
    let e = w
        .update_routing_control_states(&ep, &[], &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    assert_eq!(cells(&w).await, (On, Off), "nothing was applied");
    assert!(w.op_log().iter().all(|o| !o.applied));
    // Overriding the rule by its ARN is the break-glass way through.
    let rule = w
        .lock()
        .arc_safety_rule
        .clone()
        .expect("two controls, one rule");
    assert!(rule.contains("/safetyrule/"), "{rule}");
    w.update_routing_control_states(
        &ep,
        &[update(CELL_USE1, Off), update(CELL_USW2, Off)],
        &[rule],
    )
    .await
    .unwrap();
    assert_eq!(cells(&w).await, (Off, Off));
    // Both cells Off: both health checks unhealthy, and Route 53 answers the PRIMARY.
    wait(11).await;
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-use1.acme.example"]
    );
    assert_eq!(
        w.routing_control_state(&ep, &unknown)
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn a_sim_config_sets_a_routing_controls_state_and_names_only_known_ones() {
    let w = arc_world(&format!(
        "[routing_controls.\"{CELL_USE1}\"]\nstate = \"Off\"\n\
         [routing_controls.\"{CELL_USW2}\"]\nstate = \"On\"\n"
    ));
    assert_eq!(cells(&w).await, (Off, On));
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"],
        "the health checks see it from the start"
    );
    let cfg = config(&format!(
        "[routing_controls.\"{CELL_USE1}x\"]\nstate = \"On\"\n"
    ));
    let err =
        SimWorld::from_runbook(&shipped("region-failover.toml"), &cfg, 1, clock()).unwrap_err();
    let out = err.render(crate::runbook::RenderStyle::Short);
    assert!(
        out.contains("the world has no routing control") && out.contains("did you mean"),
        "{out}"
    );
}

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

// ---------------------------------------------------------------- data planes

#[tokio::test(start_paused = true)]
async fn postgres_and_valkey_probes_follow_the_control_plane() {
    let w = world();
    let usw2 = "acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com";
    let o = w.postgres(&pg(usw2), "acme", true).await.unwrap();
    assert_eq!((o.in_recovery, o.canary_ok), (true, Some(false)));
    // Through the private zone's CNAME, as an application connects.
    let o = w
        .postgres(&pg("db-writer.acme.internal"), "acme", false)
        .await
        .unwrap();
    assert_eq!((o.in_recovery, o.canary_ok), (false, None));
    let o = w.valkey(&pg("cache.acme.internal"), false).await.unwrap();
    assert_eq!(o.role, "master");
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    wait(60).await;
    assert!(
        w.postgres(&pg(usw2), "acme", false)
            .await
            .unwrap()
            .in_recovery,
        "not before the end"
    );
    wait(70).await;
    assert!(
        !w.postgres(&pg(usw2), "acme", false)
            .await
            .unwrap()
            .in_recovery
    );
    assert_eq!(
        w.postgres(&pg("nope.example"), "acme", false)
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
    w.make_unreachable("us-west-2", secs(130), None);
    assert_eq!(
        w.postgres(&pg(usw2), "acme", false).await.unwrap_err().kind,
        K::Unreachable
    );
    let w = world_with("[clusters.acme-prod-use1]\ninstances = 0\n", 1);
    let use1 = "acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com";
    assert_eq!(
        w.postgres(&pg(use1), "acme", false).await.unwrap_err().kind,
        K::Transient
    );
}

#[tokio::test(start_paused = true)]
async fn dns_answers_from_the_simulated_zones() {
    let w = world();
    assert_eq!(
        w.resolve("cache.acme.internal.", "CNAME", &[])
            .await
            .unwrap(),
        ["master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"]
    );
    // A follows the CNAME out of the zones and answers where it went.
    assert_eq!(
        w.resolve("cache.acme.internal", "A", &[]).await.unwrap(),
        ["master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"]
    );
    assert!(
        w.resolve("cache.acme.internal", "TXT", &[])
            .await
            .unwrap()
            .is_empty()
    );
    let e = w.resolve("nope.acme.internal", "A", &[]).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (K::NotFound, Some("NXDOMAIN")));
    assert_eq!(
        w.resolve("example.org", "A", &[]).await.unwrap_err().kind,
        K::NotFound
    );
}

#[tokio::test(start_paused = true)]
async fn the_http_model_answers_from_the_routed_region() {
    let w = world_with("[regions.us-west-2]\napp_healthy = false\n", 1);
    let probe = |url: &str, method: &str, timeout: u64| HttpProbe {
        url: url.into(),
        method: method.into(),
        timeout: Duration::from_millis(timeout),
    };
    let started = tokio::time::Instant::now();
    let o = w
        .http(&probe("https://api.acme.example/healthz", "GET", 5000))
        .await
        .unwrap();
    assert_eq!(
        (o.status, o.body.as_str()),
        (200, r#"{"region":"us-east-1"}"#)
    );
    assert!((Duration::from_millis(20)..=Duration::from_millis(120)).contains(&o.latency));
    assert_eq!(
        started.elapsed(),
        o.latency,
        "the latency is spent on the run clock"
    );
    let o = w
        .http(&probe("https://api-usw2.acme.example/healthz", "GET", 5000))
        .await
        .unwrap();
    assert_eq!((o.status, o.body.as_str()), (503, "service unavailable"));
    let o = w
        .http(&probe("https://api.acme.example/", "HEAD", 5000))
        .await
        .unwrap();
    assert_eq!((o.status, o.body.as_str()), (200, ""));
    let e = w
        .http(&probe("https://nowhere.example.org/", "GET", 5000))
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::NotFound);
    let e = w
        .http(&probe("https://api.acme.example/", "GET", 10))
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Transient);
}

// ---------------------------------------------------------------- faults

const FAILOVER_FAULT: &str =
    "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"FailoverGlobalCluster\"\n";

#[tokio::test(start_paused = true)]
async fn throttling_and_5xx_carry_the_service_codes() {
    let w = world_with(
        "[[fault]]\nkind = \"throttle\"\nservice = \"route53\"\n[[fault]]\nkind = \"error\"\nservice = \"s3\"\n",
        1,
    );
    let e = w.get_health_check(HC).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::Throttling, Some("Throttling"))
    );
    let e = w.versioning_enabled(SRC).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::Transient, Some("InternalError"))
    );
    assert_eq!(
        e.region.as_deref(),
        Some("us-east-1"),
        "the bucket's region"
    );
    assert!(
        w.describe_cluster(USE1).await.is_ok(),
        "other services are untouched"
    );
    let w = world_with("[[fault]]\nkind = \"throttle\"\nrate = 0.0\n", 1);
    assert!(w.get_health_check(HC).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_operation_fails_n_times_then_works() {
    let w = world_with(
        &format!("{FAILOVER_FAULT}times = 2\nerror = \"access_denied\"\n"),
        1,
    );
    for _ in 0..2 {
        let e = w
            .failover_global_cluster("us-west-2", GC, USW2, true)
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (K::AccessDenied, Some("AccessDenied"))
        );
    }
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    let log = w.op_log();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter()
            .map(|o| (o.applied, o.injected))
            .collect::<Vec<_>>(),
        [(false, true), (false, true), (true, false)]
    );
    assert_eq!(log[2].args["target"], USW2);
    // Forever, and only inside its window.
    let w = world_with(
        &format!("{FAILOVER_FAULT}from = \"1m\"\nuntil = \"2m\"\n"),
        1,
    );
    wait(60).await;
    for _ in 0..5 {
        assert!(
            w.failover_global_cluster("us-west-2", GC, USW2, true)
                .await
                .is_err()
        );
    }
    wait(60).await;
    assert!(
        w.failover_global_cluster("us-west-2", GC, USW2, true)
            .await
            .is_ok()
    );
    // Only in its region.
    let w = world_with("[[fault]]\nkind = \"error\"\nregion = \"us-east-1\"\n", 1);
    assert!(w.describe_global_cluster("us-east-1", GC).await.is_err());
    assert!(w.describe_global_cluster("us-west-2", GC).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_is_applied_once_and_a_resend_is_refused() {
    let w = world_with(
        &format!("{FAILOVER_FAULT}times = 1\nafter_apply = true\n"),
        1,
    );
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Transient);
    let g = w.describe_global_cluster("us-west-2", GC).await.unwrap();
    assert_eq!(g.status, "failing-over", "it was applied");
    let e = w
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        K::InvalidState,
        "a blind resend is refused, as AWS does"
    );
    let applied: Vec<_> = w.op_log().into_iter().filter(|o| o.applied).collect();
    assert_eq!(applied.len(), 1);
    assert!(applied[0].injected);
}

#[tokio::test(start_paused = true)]
async fn a_hang_never_answers_and_a_timeout_catches_it() {
    let w = world_with(
        "[[fault]]\nkind = \"hang\"\nservice = \"elasticache\"\noperation = \"FailoverGlobalReplicationGroup\"\ntimes = 1\nafter_apply = true\n\
         [[fault]]\nkind = \"hang\"\noperation = \"DescribeGlobalReplicationGroups\"\ntimes = 1\n",
        1,
    );
    // The call hangs; the breaker's deadline for a mutation ends it with an unknown
    // outcome (the caller re-reads before any resend).
    let t = tokio::time::Instant::now();
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(t.elapsed(), crate::cloud::reach::DEFAULT_WRITE_TIMEOUT);
    assert_eq!(
        (e.kind, e.code),
        (K::Unreachable, None),
        "sent, not refused"
    );
    assert!(
        tokio::time::timeout(secs(5), w.describe_global_datastore("us-west-2", DS))
            .await
            .is_err()
    );
    // The failover it started completes on the world's own time.
    wait(600).await;
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(
        d.primary().unwrap().region,
        "us-west-2",
        "the hung call took effect"
    );
    let log = w.op_log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].applied, &log[0].answer), (true, &OpAnswer::Hung));
}

#[tokio::test(start_paused = true)]
async fn latency_is_spent_on_the_run_clock() {
    let w = world_with(
        "[[fault]]\nkind = \"latency\"\nservice = \"rds\"\nlatency = \"3s\"\n",
        1,
    );
    let start = tokio::time::Instant::now();
    w.describe_cluster(USE1).await.unwrap();
    assert_eq!(start.elapsed(), secs(3));
    let w = SimWorld::from_runbook(
        &shipped("region-failover.toml"),
        &config("[[fault]]\nkind = \"latency\"\nservice = \"rds\"\nlatency = \"3s\"\n"),
        1,
        Clock::with_speed(30.0),
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    w.describe_cluster(USE1).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "--sim-speed 30 compresses it"
    );
}

/// A fixed script of calls, racing nothing: the trace must be a function of the seed.
async fn trace(seed: u64) -> (Vec<OpRecord>, Vec<String>) {
    let w = world_with(
        "[[fault]]\nkind = \"throttle\"\nrate = 0.5\n[[fault]]\nkind = \"latency\"\nlatency = \"1s\"\nrate = 0.5\n",
        seed,
    );
    let mut seen = Vec::new();
    for i in 0..20 {
        let r = w.failover_global_cluster("us-west-2", GC, USW2, true).await;
        seen.push(format!(
            "{i} failover {:?} at {:?}",
            r.map_err(|e| e.kind),
            w.clock().elapsed()
        ));
        let r = w.put_object(SRC, &format!("k{i}"), b"x").await;
        seen.push(format!("{i} put {:?}", r.map_err(|e| e.kind)));
        let r = w.describe_global_cluster("us-west-2", GC).await;
        seen.push(format!(
            "{i} describe {:?}",
            r.map(|g| g.status).map_err(|e| e.kind)
        ));
        wait(10).await;
    }
    (w.op_log(), seen)
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_trace() {
    let a = trace(42).await;
    let b = trace(42).await;
    assert_eq!(a, b);
    let c = trace(43).await;
    assert_ne!(a.1, c.1, "another seed, another run");
    assert!(a.0.iter().any(|o| o.injected) && a.0.iter().any(|o| !o.injected));
}

// ---------------------------------------------------------------- building

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

/// The failover roles of `name`'s record sets, each with the routing control its
/// health check follows.
fn pair(w: &SimWorld, name: &str) -> Vec<(String, Option<String>)> {
    let s = w.lock();
    let mut out: Vec<(String, Option<String>)> = s
        .zones
        .values()
        .flat_map(|z| z.records.iter())
        .filter(|r| r.name == name)
        .map(|r| {
            let control = r
                .health_check_id
                .as_ref()
                .and_then(|id| s.health_checks.get(id))
                .and_then(|hc| hc.routing_control.clone());
            (r.failover.clone().unwrap_or_default(), control)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(start_paused = true)]
async fn region_failover_and_planned_switchover_start_in_us_east_1() {
    for name in ["region-failover.toml", "planned-switchover.toml"] {
        let w = SimWorld::from_runbook(&shipped(name), &SimConfig::default(), 1, clock()).unwrap();
        assert_eq!(
            w.regions(),
            ("us-east-1".to_string(), "us-west-2".to_string())
        );
        let g = w.describe_global_cluster("us-east-1", GC).await.unwrap();
        assert_eq!(g.status, "available");
        assert_eq!(g.writer().unwrap().cluster_arn, USE1);
        assert!(g.member(USW2).is_some_and(|m| !m.is_writer));
        let d = w.describe_global_datastore("us-east-1", DS).await.unwrap();
        assert_eq!(
            d.primary().unwrap().replication_group_id,
            "acme-sessions-use1"
        );
        assert_eq!(d.members.len(), 2);
        assert_eq!(
            w.replication_rules(SRC).await.unwrap()[0].destination_bucket,
            DST
        );
        // Traffic flows to the us-east-1 cell; the runbook turns it Off.
        assert_eq!(cells(&w).await, (On, Off));
        assert_eq!(
            w.resolve("api.acme.example", "A", &[]).await.unwrap(),
            ["api-use1.acme.example"]
        );
        assert_eq!(
            w.resolve("db-writer.acme.internal", "CNAME", &[])
                .await
                .unwrap(),
            ["acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com"]
        );
        assert_eq!(
            w.resolve("cache.acme.internal", "CNAME", &[])
                .await
                .unwrap(),
            ["master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"]
        );
        // Every name is a pre-created failover pair bound to the cells' controls.
        for name in [
            "api.acme.example.",
            "db-writer.acme.internal.",
            "cache.acme.internal.",
        ] {
            assert_eq!(
                pair(&w, name),
                [
                    ("PRIMARY".to_string(), Some(CELL_USE1.to_string())),
                    ("SECONDARY".to_string(), Some(CELL_USW2.to_string())),
                ],
                "{name}"
            );
        }
        assert!(w.op_log().is_empty());
        assert!(w.lost_writes().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn failback_starts_where_region_failover_left_off() {
    let w = SimWorld::from_runbook(&shipped("failback.toml"), &SimConfig::default(), 1, clock())
        .unwrap();
    assert_eq!(
        w.regions(),
        ("us-west-2".to_string(), "us-east-1".to_string())
    );
    assert_eq!(
        writer_region(&w, "us-east-1").await.as_deref(),
        Some("us-west-2")
    );
    let d = w.describe_global_datastore("us-east-1", DS).await.unwrap();
    assert_eq!(
        d.primary().unwrap().replication_group_id,
        "acme-sessions-usw2"
    );
    assert_eq!(
        w.replication_rules(DST).await.unwrap()[0].destination_bucket,
        SRC
    );
    // The failover turned the us-east-1 cell Off and the us-west-2 cell On.
    assert_eq!(cells(&w).await, (Off, On));
    assert_eq!(
        w.resolve("api.acme.example", "A", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    let probe = HttpProbe {
        url: "https://api-use1.acme.example/healthz".into(),
        method: "GET".into(),
        timeout: secs(2),
    };
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-east-1"}"#
    );
    let c = w
        .describe_cluster("arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2")
        .await
        .unwrap();
    assert_eq!(
        c.endpoint,
        "acme-prod-usw2.cluster-c4f7gh2jk9lm.us-west-2.rds.amazonaws.com"
    );
    assert_eq!(
        w.resolve("db-writer.acme.internal", "CNAME", &[])
            .await
            .unwrap(),
        [c.endpoint.as_str()]
    );
}

#[tokio::test(start_paused = true)]
async fn a_runbook_without_params_falls_back_sensibly() {
    let text = r#"
[runbook]
name = "bare"
mode = "unplanned"
[[step]]
id = "promote"
action = "aurora.failover"
global_cluster = "orders"
target = "arn:aws:rds:eu-west-1:111122223333:cluster:orders-b"
[[step]]
id = "cache"
action = "valkey.available"
global_datastore = "abcde-cache"
[[step]]
id = "api"
action = "http.check"
url = "https://shop.example.com/"
"#;
    let rb = crate::runbook::load_str(Path::new("bare.toml"), text)
        .unwrap()
        .runbook;
    let w = SimWorld::from_runbook(&rb, &SimConfig::default(), 1, clock()).unwrap();
    assert_eq!(
        w.regions(),
        ("us-east-1".to_string(), "eu-west-1".to_string())
    );
    let g = w
        .describe_global_cluster("eu-west-1", "orders")
        .await
        .unwrap();
    let writer = g.writer().unwrap();
    assert_eq!(
        (writer.cluster_arn.as_str(), writer.region.as_str()),
        (
            "arn:aws:rds:us-east-1:111122223333:cluster:orders-b-use1",
            "us-east-1"
        )
    );
    let d = w
        .describe_global_datastore("us-east-1", "abcde-cache")
        .await
        .unwrap();
    assert_eq!(d.primary().unwrap().replication_group_id, "cache-use1");
    assert_eq!(d.members.len(), 2);
    let probe = HttpProbe {
        url: "https://shop.example.com/".into(),
        method: "GET".into(),
        timeout: secs(2),
    };
    assert_eq!(
        w.http(&probe).await.unwrap().body,
        r#"{"region":"us-east-1"}"#
    );
}

#[tokio::test(start_paused = true)]
async fn config_overrides_shape_the_world() {
    let w = world_with(
        "[global_clusters.acme-prod]\nprimary = \"us-west-2\"\n\
         [datastores.ldgnf-acme-sessions]\nprimary = \"us-west-2\"\n\
         [replication_groups.acme-sessions-use1]\nstatus = \"associating\"\n\
         [zones.Z04517273OE6XQ5LZZ1GO]\nmissing = true\n\
         [buckets.acme-prod-assets-usw2]\nmissing = true\n\
         [health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]\ndisabled = true\nregion = \"us-west-2\"\n",
        1,
    );
    assert_eq!(
        writer_region(&w, "us-west-2").await.as_deref(),
        Some("us-west-2")
    );
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.primary().unwrap().region, "us-west-2");
    assert!(d.members.iter().any(|m| m.status == "associating"));
    assert_eq!(
        w.versioning_enabled(DST).await.unwrap_err().kind,
        K::NotFound
    );
    assert_eq!(
        w.resolve("api.acme.example", "A", &[])
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
    assert!(w.get_health_check(HC).await.unwrap().disabled);
    let w = world_with(
        "[global_clusters.acme-prod]\nmissing = true\n[clusters.acme-prod-usw2]\nmissing = true\n",
        1,
    );
    assert_eq!(
        w.describe_global_cluster("us-east-1", GC)
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
    assert_eq!(
        w.describe_cluster(USW2).await.unwrap_err().kind,
        K::NotFound
    );
}

#[test]
fn config_naming_what_the_world_lacks_points_into_the_file() {
    let cfg = config(
        "[clusters.acme-prod-usw3]\nlag = \"1s\"\n\n[global_clusters.acme-prod]\nprimary = \"eu-west-1\"\n",
    );
    let err =
        SimWorld::from_runbook(&shipped("region-failover.toml"), &cfg, 1, clock()).unwrap_err();
    let out = err.render(crate::runbook::RenderStyle::Short);
    assert!(
        out.contains("sim.toml:1:11: error: the world has no cluster `acme-prod-usw3`"),
        "{out}"
    );
    assert!(out.contains("did you mean `acme-prod-usw2`?"), "{out}");
    assert!(
        out.contains("sim.toml:4:18: error: global cluster `acme-prod` has no member in eu-west-1"),
        "{out}"
    );
}

// ---------------------------------------------------------------- persistence

#[tokio::test(start_paused = true)]
async fn a_world_saved_mid_failover_resumes_exactly() {
    let cfg =
        "[[fault]]\nkind = \"throttle\"\nrate = 0.5\noperation = \"DescribeGlobalClusters\"\n";
    let original = world_with(cfg, 9);
    original
        .failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    original.put_object(SRC, "k", b"x").await.unwrap();
    wait(30).await;
    let saved: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&original.snapshot()).unwrap()).unwrap();
    // A new process: a resumed clock continuing from the same virtual time.
    let origin = original.clock().origin();
    let restored = SimWorld::restore(&saved, Clock::resume(1.0, origin, secs(30))).unwrap();
    assert_eq!(restored.op_log(), original.op_log());
    assert_eq!(restored.lost_writes(), original.lost_writes());
    assert_eq!(restored.seed(), 9);
    // Both worlds go on identically: same completion, same fault rolls.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..20 {
        wait(5).await;
        a.push(
            original
                .describe_global_cluster("us-west-2", GC)
                .await
                .map(|g| g.status)
                .map_err(|e| e.kind),
        );
        b.push(
            restored
                .describe_global_cluster("us-west-2", GC)
                .await
                .map(|g| g.status)
                .map_err(|e| e.kind),
        );
    }
    assert_eq!(a, b);
    assert!(a.iter().any(|r| r.as_deref() == Ok("available")));
    assert_eq!(
        restored.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Completed)
    );
    assert_eq!(restored.snapshot()["state"], original.snapshot()["state"]);
}

#[tokio::test(start_paused = true)]
async fn restoring_garbage_is_refused_and_odd_saved_values_never_panic() {
    for bad in [
        serde_json::json!(null),
        serde_json::json!({"format": "something-else"}),
        serde_json::json!({"format": "drpilot-sim-world", "version": 99, "state": {}}),
        serde_json::json!({"format": "drpilot-sim-world", "version": 1}),
        serde_json::json!({"format": "drpilot-sim-world", "version": 1, "state": {"seed": "x"}}),
    ] {
        assert!(SimWorld::restore(&bad, clock()).is_err(), "{bad}");
    }
    // Extreme but well-typed values: the world must keep answering.
    let w = world();
    w.failover_global_cluster("us-west-2", GC, USW2, true)
        .await
        .unwrap();
    let mut saved = w.snapshot();
    let huge = serde_json::json!({"secs": u64::MAX, "nanos": 999_999_999});
    saved["state"]["timing"]["aurora_failover"]["max"] = huge.clone();
    saved["state"]["timing"]["s3_replication"] =
        serde_json::json!({"min": huge.clone(), "max": {"secs": 0, "nanos": 0}});
    saved["state"]["timing"]["health_check_detect"] = huge.clone();
    saved["state"]["timing"]["http_latency"]["max"] = huge.clone();
    saved["state"]["global_clusters"][GC]["op"]["completes"] = huge.clone();
    saved["state"]["faults"] = serde_json::json!([{"spec": {
        "kind": "latency", "service": null, "operation": null, "region": null, "rate": 1e308,
        "times": null, "from": {"secs": 0, "nanos": 0}, "until": null, "latency": huge,
        "error": "transient", "code": null, "after_apply": false}, "injected": u64::MAX}]);
    let w = SimWorld::restore(&saved, clock()).unwrap();
    // Every call waits out the absurd latency fault until the breaker's deadline.
    let e = w
        .describe_global_cluster("us-west-2", GC)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Unreachable);
    assert!(w.put_object(SRC, "k", b"x").await.is_err());
    assert!(w.health_check_healthy(HC).await.is_err());
    let probe = HttpProbe {
        url: "https://api.acme.example/".into(),
        method: "GET".into(),
        timeout: secs(5),
    };
    let _ = w.http(&probe).await;
    let _ = w.snapshot();
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

// ---------------------------------------------------------------- no panics on any input

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// A table header and the keys it may hold, each with the values to pick from.
    type Section = (&'static str, Vec<(&'static str, &'static [&'static str])>);

    /// One section with its own keys and mostly plausible values (now and then a wrong
    /// one), so most configs parse and the world they shape gets exercised.
    fn section() -> impl Strategy<Value = String> {
        const DUR: &[&str] = &["\"0s\"", "\"30s\"", "\"5m\"", "[\"1s\", \"20s\"]"];
        let sections: Vec<Section> = vec![
            (
                "[timing]",
                vec![
                    ("aurora_failover", DUR),
                    ("route53_insync", DUR),
                    ("health_check_detect", &["\"0s\"", "\"1m\""]),
                    ("http_latency", DUR),
                    ("s3_replication", DUR),
                    ("routing_control_propagation", DUR),
                ],
            ),
            (
                "[regions.us-east-1]",
                vec![
                    ("unreachable_from", &["\"0s\"", "\"30s\""]),
                    ("unreachable_until", &["\"5m\""]),
                    ("app_healthy", &["false", "true"]),
                ],
            ),
            (
                "[regions.us-west-2]",
                vec![
                    ("unreachable_from", &["\"0s\"", "\"1m\""]),
                    ("app_healthy", &["false"]),
                ],
            ),
            (
                "[global_clusters.acme-prod]",
                vec![
                    (
                        "primary",
                        &["\"us-west-2\"", "\"us-east-1\"", "\"eu-west-1\""],
                    ),
                    ("engine_version", &["\"15.4\""]),
                    ("missing", &["true", "false"]),
                ],
            ),
            (
                "[clusters.acme-prod-usw2]",
                vec![
                    ("lag", &["\"40s\"", "\"0s\""]),
                    ("status", &["\"modifying\""]),
                    ("instances", &["0", "3"]),
                    ("engine_version", &["\"15.4\""]),
                    ("missing", &["true"]),
                ],
            ),
            (
                "[clusters.arn:aws:rds:us-east-1:111122223333:cluster:acme-prod-use1]",
                vec![("missing", &["true"]), ("status", &["\"stopped\""])],
            ),
            (
                "[datastores.ldgnf-acme-sessions]",
                vec![
                    ("primary", &["\"us-west-2\""]),
                    ("status", &["\"modifying\""]),
                    ("missing", &["true"]),
                ],
            ),
            (
                "[replication_groups.acme-sessions-usw2]",
                vec![("status", &["\"associating\""]), ("missing", &["true"])],
            ),
            (
                "[buckets.acme-prod-assets-use1]",
                vec![
                    ("versioning", &["false"]),
                    ("replication_enabled", &["false"]),
                    ("backlog", &["7"]),
                    ("backlog_clears", &["\"1m\""]),
                    ("missing", &["true"]),
                ],
            ),
            (
                "[buckets.acme-prod-assets-usw2]",
                vec![("versioning", &["false"]), ("missing", &["true"])],
            ),
            ("[zones.Z0731524T4AKBG1PJWH9]", vec![("missing", &["true"])]),
            (
                "[health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]",
                vec![
                    ("inverted", &["true"]),
                    ("disabled", &["true"]),
                    ("region", &["\"us-west-2\""]),
                    ("missing", &["true"]),
                ],
            ),
            (
                "[[fault]]\nkind = \"error\"",
                vec![
                    ("service", &["\"rds\"", "\"route53\"", "\"s3\""]),
                    ("operation", &["\"FailoverGlobalCluster\"", "\"PutObject\""]),
                    ("rate", &["0.5", "1"]),
                    ("times", &["1", "2"]),
                    ("from", &["\"10s\""]),
                    ("until", &["\"2m\""]),
                    ("error", &["\"invalid_state\"", "\"unreachable\""]),
                    ("after_apply", &["true"]),
                ],
            ),
            (
                "[routing_controls.\"arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460\"]",
                vec![
                    ("state", &["\"On\"", "\"Off\"", "\"on\""]),
                    ("missing", &["true"]),
                ],
            ),
            (
                "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"",
                vec![
                    (
                        "operation",
                        &[
                            "\"UpdateRoutingControlStates\"",
                            "\"GetRoutingControlState\"",
                        ],
                    ),
                    ("region", &["\"us-west-2\"", "\"us-east-1\""]),
                    ("error", &["\"transient\"", "\"invalid_state\""]),
                    ("after_apply", &["true"]),
                ],
            ),
            (
                "[[fault]]\nkind = \"throttle\"",
                vec![
                    ("service", &["\"elasticache\"", "\"cloudwatch\""]),
                    ("rate", &["0.3"]),
                    ("region", &["\"us-west-2\""]),
                ],
            ),
            (
                "[[fault]]\nkind = \"hang\"",
                vec![
                    (
                        "operation",
                        &[
                            "\"Http\"",
                            "\"DescribeGlobalClusters\"",
                            "\"UpdateHealthCheck\"",
                        ],
                    ),
                    ("times", &["1"]),
                    ("after_apply", &["true"]),
                ],
            ),
            (
                "[[fault]]\nkind = \"latency\"\nlatency = \"3s\"",
                vec![
                    ("service", &["\"dataplane\"", "\"rds\""]),
                    ("rate", &["0.5"]),
                ],
            ),
        ];
        let n = sections.len();
        (
            0..n,
            proptest::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
                0..5,
            ),
            0u8..20,
        )
            .prop_map(move |(i, picks, noise)| {
                let (header, keys) = &sections[i];
                let mut out = format!("{header}\n");
                let mut seen = std::collections::BTreeSet::new();
                for (k, v) in picks {
                    let (key, values) = keys[k.index(keys.len())];
                    if seen.insert(key) {
                        out.push_str(&format!("{key} = {}\n", values[v.index(values.len())]));
                    }
                }
                if noise == 0 {
                    out.push_str("bogus = 1\n");
                }
                out
            })
    }

    /// A few calls of every kind; hangs are cut off by a timeout.
    async fn poke(w: &SimWorld) {
        let t = secs(120);
        let _ =
            tokio::time::timeout(t, w.failover_global_cluster("us-west-2", GC, USW2, true)).await;
        let _ = tokio::time::timeout(t, w.switchover_global_cluster("us-east-1", GC, USW2)).await;
        let _ = tokio::time::timeout(t, w.describe_global_cluster("us-east-1", GC)).await;
        let _ = tokio::time::timeout(
            t,
            w.failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2"),
        )
        .await;
        let _ = tokio::time::timeout(t, w.put_object(SRC, "k", b"x")).await;
        let _ = tokio::time::timeout(t, w.replication_backlog(SRC, &[])).await;
        let _ = tokio::time::timeout(t, w.update_health_check(HC, Some(true), None)).await;
        let ep = arc_endpoint("us-west-2");
        let flip = [update(CELL_USW2, On), update(CELL_USE1, Off)];
        let _ = tokio::time::timeout(t, w.update_routing_control_states(&ep, &flip, &[])).await;
        let _ = tokio::time::timeout(t, w.routing_control_state(&ep, CELL_USW2)).await;
        wait(200).await;
        let _ = tokio::time::timeout(t, w.resolve("db-writer.acme.internal", "CNAME", &[])).await;
        let _ = tokio::time::timeout(t, w.health_check_healthy(HC)).await;
        let probe = HttpProbe {
            url: "https://api.acme.example/".into(),
            method: "GET".into(),
            timeout: secs(2),
        };
        let _ = tokio::time::timeout(t, w.http(&probe)).await;
        let _ =
            tokio::time::timeout(t, w.postgres(&pg("db-writer.acme.internal"), "acme", true)).await;
        let _ = tokio::time::timeout(t, w.list_cluster_snapshots(USE1)).await;
        let _ = w.snapshot();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn sim_config_shaped_text_never_panics(parts in proptest::collection::vec(section(), 0..8)) {
            // A repeated [table] header is a TOML error; keep the first of each.
            let mut seen = std::collections::BTreeSet::new();
            let text: String = parts
                .into_iter()
                .filter(|p| p.starts_with("[[") || seen.insert(p.lines().next().unwrap_or("").to_string()))
                .collect();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(cfg) = SimConfig::parse(Path::new("fuzz.toml"), &text) {
                    // DNS by Route 53's control plane, and by ARC routing controls.
                    for rb in [without_arc(), shipped("region-failover.toml")] {
                        if let Ok(w) = SimWorld::from_runbook(&rb, &cfg, 5, clock()) {
                            poke(&w).await;
                        }
                    }
                }
            });
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = SimConfig::parse(Path::new("fuzz.toml"), &text);
        }
    }
}

// ------------------------------------------------------------------ heartbeats

fn pg_target(cluster: &str) -> crate::cloud::HeartbeatTarget {
    crate::cloud::HeartbeatTarget {
        endpoint: Endpoint {
            host: format!("{cluster}.cluster-x.rds.amazonaws.com"),
            port: 5432,
            user: Some("drpilot".into()),
            password_env: None,
            tls: false,
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
    let beats = w.heartbeat_read(&secondary, 0).await.unwrap();
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
    let on_old = w.heartbeat_read(&primary, 0).await.unwrap();
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
    let beats = w.heartbeat_read(&secondary, 0).await.unwrap();
    let m = crate::heartbeat::measure(&beats, 0).unwrap();
    assert_eq!((m.lost(), m.rpo()), (0, Duration::ZERO), "{beats:?}");
    assert_eq!(beats.len(), 6);
}

#[test]
fn a_local_binding_is_checked_where_it_is_written() {
    let ok = config(
        "[clusters.acme-prod-usw2.local]\nhost = \"127.0.0.1\"\nport = 5433\nuser = \"postgres\"\n\
         follow = [\"lab/pg-follow\", \"/tmp/data\"]\n\
         [replication_groups.acme-sessions-usw2.local]\nhost = \"localhost\"\nport = 6380\n",
    );
    let l = ok.clusters[0].local.as_ref().unwrap();
    assert_eq!(
        (l.host.as_str(), l.port, l.follow.len()),
        ("127.0.0.1", 5433, 2)
    );
    assert_eq!(ok.replication_groups[0].local.as_ref().unwrap().port, 6380);
    let bad = |text: &str| match SimConfig::parse(Path::new("sim.toml"), text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.render(crate::runbook::RenderStyle::Short),
    };
    let e = bad("[clusters.x.local]\nhost = \"10.0.0.5\"\nport = 5432\nuser = \"u\"\n");
    assert!(e.contains("is not on this machine"), "{e}");
    let e = bad("[clusters.x.local]\nhost = \"127.0.0.1\"\n");
    assert!(
        e.contains("has no port") && e.contains("has no user"),
        "{e}"
    );
    let e = bad(
        "[clusters.x.local]\nhost = \"127.0.0.1\"\nport = 5432\nuser = \"u\"\nfollow = \"x\"\n",
    );
    assert!(e.contains("`follow`"), "{e}");
    // Valkey members follow with REPLICAOF: no command, no database.
    let e =
        bad("[replication_groups.x.local]\nhost = \"127.0.0.1\"\nport = 6379\nfollow = [\"x\"]\n");
    assert!(e.contains("follow"), "{e}");
}

#[test]
fn a_bound_world_runs_at_real_time_and_says_what_is_bound() {
    let w = SimWorld::from_runbook(
        &shipped("region-failover.toml"),
        &config("[clusters.acme-prod-usw2.local]\nhost = \"127.0.0.1\"\nport = 5433\nuser = \"postgres\"\n"),
        1,
        clock(),
    )
    .expect("world builds");
    assert!(w.binds_local_servers());
    let unbound = SimWorld::from_runbook(&shipped("region-failover.toml"), &config(""), 1, clock())
        .expect("world builds");
    assert!(!unbound.binds_local_servers());
}
