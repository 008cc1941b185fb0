//! Aurora global clusters: failovers, switchovers, detach, lag and snapshots.

use super::*;

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

fn acu_range(min: u16, max: u16) -> crate::cloud::CapacityRange {
    // Halves, as `Acu` holds them: (1, 16) is 0.5-8 ACUs.
    crate::cloud::CapacityRange {
        min: crate::names::Acu::from_halves(min),
        max: crate::names::Acu::from_halves(max),
    }
}

#[tokio::test(start_paused = true)]
async fn a_capacity_range_shows_at_once_and_the_cluster_is_modifying_for_a_moment() {
    let w = world();
    let before = w.describe_cluster(USW2).await.unwrap();
    assert_eq!(
        before.scaling,
        Some(acu_range(1, 16)),
        "a standby-sized secondary"
    );
    assert_eq!(before.global_cluster.as_deref(), Some(GC));
    w.modify_capacity_range(USW2, acu_range(4, 128))
        .await
        .unwrap();
    let c = w.describe_cluster(USW2).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.scaling),
        ("modifying", Some(acu_range(4, 128)))
    );
    // A second modification while it runs: InvalidDBClusterStateFault, nothing changes.
    let e = w
        .modify_capacity_range(USW2, acu_range(4, 64))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidState, Some("InvalidDBClusterStateFault"))
    );
    // 5-20 s by default.
    wait(21).await;
    let c = w.describe_cluster(USW2).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.scaling),
        ("available", Some(acu_range(4, 128)))
    );
    let log = w.op_log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].region.as_deref(), Some("us-west-2"));
    assert_eq!(
        log[0].args,
        serde_json::json!({"cluster": USW2, "min_acu": 2, "max_acu": 64, "apply_immediately": true})
    );
    assert!(log[0].applied && !log[1].applied);
}

#[tokio::test(start_paused = true)]
async fn a_capacity_range_aws_refuses_is_refused_with_its_code() {
    let w = world();
    for (range, code) in [
        // A maximum under 1 ACU, a minimum above the maximum, auto-pause in a global
        // database.
        (acu_range(0, 1), "InvalidParameterValue"),
        (acu_range(10, 8), "InvalidParameterCombination"),
        (acu_range(0, 16), "InvalidParameterCombination"),
    ] {
        let e = w.modify_capacity_range(USW2, range).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (K::InvalidRequest, Some(code)),
            "{range}: {e}"
        );
    }
    let e = w
        .modify_capacity_range(
            "arn:aws:rds:us-west-2:111122223333:cluster:nope",
            acu_range(1, 16),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("DBClusterNotFoundFault"));
    assert!(w.op_log().iter().all(|r| !r.applied));
    assert_eq!(
        w.describe_cluster(USW2).await.unwrap().scaling,
        Some(acu_range(1, 16))
    );
}

#[tokio::test(start_paused = true)]
async fn instances_and_the_capacity_metric_follow_the_sim_config() {
    let w = world_with(
        "[clusters.acme-prod-use1]\ncapacity = 100\nmax_acu = 128\n\
         [clusters.acme-prod-usw2]\ninstance_class = \"db.r6g.large\"\ninstances = 2\n",
        1,
    );
    let usw2 = w.cluster_instances(USW2).await.unwrap();
    assert_eq!(usw2.len(), 2);
    assert!(usw2.iter().all(|i| i.class == "db.r6g.large"), "{usw2:?}");
    assert_eq!(
        w.cluster_instances(USE1).await.unwrap()[0].class,
        "db.serverless"
    );
    assert_eq!(w.serverless_capacity(USE1).await.unwrap(), Some(100.0));
    // A provisioned cluster publishes no ServerlessDatabaseCapacity.
    assert_eq!(w.serverless_capacity(USW2).await.unwrap(), None);
    // The load is served within the range: capped by the maximum.
    let w = world_with("[clusters.acme-prod-use1]\ncapacity = 100\n", 1);
    assert_eq!(w.serverless_capacity(USE1).await.unwrap(), Some(64.0));
    // The metric stops while the region is down.
    w.make_unreachable("us-east-1", Duration::ZERO, None);
    assert!(!matches!(w.serverless_capacity(USE1).await, Ok(Some(_))));
    assert!(
        SimConfig::parse(
            Path::new("sim.toml"),
            "[clusters.acme-prod-usw2]\nmin_acu = 0.3\n"
        )
        .is_err()
    );
}
