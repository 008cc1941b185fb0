//! ElastiCache global datastores: failover, refusal in an outage, disassociation.

use super::*;

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
    let o = w
        .valkey(&pg(host), ClusterMode::Detect, true)
        .await
        .unwrap();
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
    assert_eq!(
        w.valkey(&pg(host), ClusterMode::Detect, false)
            .await
            .unwrap()
            .role,
        "slave"
    );
    wait(61).await;
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.members.len(), 1, "it left the global datastore");
    assert_eq!(
        w.valkey(&pg(host), ClusterMode::Detect, false)
            .await
            .unwrap()
            .role,
        "master"
    );
    let primary = "master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com";
    assert_eq!(
        w.valkey(&pg(primary), ClusterMode::Detect, false)
            .await
            .unwrap_err()
            .kind,
        K::Unreachable
    );
}

/// `[elasticache] failover_with_unreachable_members = "allow"` (the user guide's
/// reading): promoted with the primary's region dark, even while another promotion
/// runs; the old primary ends a secondary. The reading survives a saved world.
#[tokio::test(start_paused = true)]
async fn under_the_user_guides_reading_a_promotion_is_accepted_in_an_outage() {
    let text = "[elasticache]\nfailover_with_unreachable_members = \"allow\"\n\
                [regions.us-east-1]\nunreachable_from = \"0s\"\n";
    let w = world_with(text, 1);
    // Nothing that cannot be promoted is: the primary, or a member whose region is dark.
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-east-1", "acme-sessions-use1")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            K::InvalidState,
            Some("InvalidGlobalReplicationGroupStateFault")
        )
    );
    w.failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap();
    // A second promotion while the first runs is accepted too (parallel promotions
    // resolve to one primary), where the API reference's reading refuses it.
    wait(10).await;
    w.failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap();
    let saved = w.snapshot();
    assert_eq!(
        saved["state"]["failover_with_unreachable_members"], "allow",
        "{:#}",
        saved["state"]["datastores"]
    );
    assert_eq!(
        saved["state"]["datastores"][DS]["promotions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.status, "modifying");
    // The first has completed: the target is the primary.
    wait(81).await;
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.primary().unwrap().region, "us-west-2");
    wait(100).await;
    let d = w.describe_global_datastore("us-west-2", DS).await.unwrap();
    assert_eq!(d.status, "available");
    let old = d.members.iter().find(|m| m.region == "us-east-1").unwrap();
    assert_eq!(
        (old.role, old.status.as_str()),
        (MemberRole::Secondary, "associated")
    );
    // The default reading refuses the same promotion in the same outage.
    let w = world_with("[regions.us-east-1]\nunreachable_from = \"0s\"\n", 1);
    let e = w
        .failover_global_datastore("us-west-2", DS, "us-west-2", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidState);
}

#[tokio::test(start_paused = true)]
async fn a_cluster_is_probed_shard_by_shard_and_its_shape_described_in_its_region() {
    let w = world_with(
        "[datastores.ldgnf-acme-sessions]\nshards = 3\nnode_type = \"cache.r7g.xlarge\"\n\
         [replication_groups.acme-sessions-usw2]\nshards = 2\n",
        1,
    );
    let o = w
        .valkey(
            &pg("clustercfg.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"),
            ClusterMode::Detect,
            true,
        )
        .await
        .unwrap();
    let c = o.cluster.expect("a cluster");
    let seen: Vec<String> = c
        .shards
        .iter()
        .map(|s| format!("{} {:?} {:?}", s.slots, s.role, s.canary_ok))
        .collect();
    assert_eq!(
        seen,
        [
            "0-5460 Some(\"master\") Some(true)",
            "5461-10922 Some(\"master\") Some(true)",
            "10923-16383 Some(\"master\") Some(true)"
        ]
    );
    assert_eq!((c.unserved_slots, o.canary_ok), (0, Some(true)));
    // Probed as one node, a cluster's canary lands in another shard: MOVED.
    let e = w
        .valkey(
            &pg("clustercfg.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"),
            ClusterMode::Disabled,
            true,
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("MOVED"), "{e}");
    // DescribeReplicationGroups answers in the group's own region only.
    let rg = w
        .describe_replication_group("us-west-2", "acme-sessions-usw2")
        .await
        .unwrap();
    assert_eq!(
        (rg.cluster_enabled, rg.shards, rg.node_type.as_deref()),
        (Some(true), 2, Some("cache.r7g.xlarge"))
    );
    let e = w
        .describe_replication_group("us-east-1", "acme-sessions-usw2")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("ReplicationGroupNotFoundFault"))
    );
    // cluster = true on a server without cluster support is refused.
    let w = world();
    let e = w
        .valkey(
            &pg("master.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"),
            ClusterMode::Enabled,
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest, "{e}");
    assert!(e.message.contains("cluster support disabled"), "{e}");
}
