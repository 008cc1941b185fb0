//! Worlds built from the shipped runbooks and shaped by a sim config (local servers too).

use super::*;

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
            ["clustercfg.acme-sessions-use1.x1y2z3.use1.cache.amazonaws.com"]
        );
        // The runbook probes the cache with `cluster = true`: both members are clusters
        // of the same shape, as a Global Datastore requires.
        for (region, id) in [
            ("us-east-1", "acme-sessions-use1"),
            ("us-west-2", "acme-sessions-usw2"),
        ] {
            let rg = w.describe_replication_group(region, id).await.unwrap();
            assert_eq!((rg.cluster_enabled, rg.shards), (Some(true), 3), "{id}");
        }
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
    // A member of a datastore bound to its nodes of a real cluster.
    let nodes = |list: &str| {
        format!("[replication_groups.x.local]\nhost = \"127.0.0.1\"\nport = 7100\nnodes = {list}\n")
    };
    let ok = config(&nodes(
        "[\"127.0.0.1:7103\", \"localhost:7104\", \"[::1]:7105\"]",
    ));
    assert_eq!(
        ok.replication_groups[0].local.as_ref().unwrap().nodes,
        ["127.0.0.1:7103", "localhost:7104", "[::1]:7105"]
    );
    for (list, says) in [
        (
            "[\"10.0.0.5:7100\"]",
            "sim.toml:4:9: error: `local` in [replication_groups.x]: nodes: \"10.0.0.5:7100\" is not on this machine",
        ),
        ("[\"127.0.0.1\"]", "nodes: \"127.0.0.1\" is not host:port"),
        (
            "[\"127.0.0.1:0\"]",
            "nodes: \"127.0.0.1:0\" is not host:port",
        ),
        (
            "[\"127.0.0.1:7100\", \"127.0.0.1:7100\"]",
            "is listed twice",
        ),
        ("[]", "one node per shard"),
        ("\"127.0.0.1:7100\"", "one node per shard"),
    ] {
        let e = bad(&nodes(list));
        assert!(e.contains(says), "{list}: {e}");
    }
    // PostgreSQL has no nodes.
    let e = bad(
        "[clusters.x.local]\nhost = \"127.0.0.1\"\nport = 5432\nuser = \"u\"\nnodes = [\"127.0.0.1:1\"]\n",
    );
    assert!(e.contains("nodes"), "{e}");
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

#[test]
fn a_cut_of_a_shard_a_member_does_not_have_points_into_the_file() {
    let cfg = config("[replication_groups.acme-sessions-usw2]\nshards = 2\ncut_shards = [3]\n");
    let err =
        SimWorld::from_runbook(&shipped("region-failover.toml"), &cfg, 1, clock()).unwrap_err();
    let out = err.render(crate::runbook::RenderStyle::Short);
    assert!(
        out.contains(
            "sim.toml:1:21: error: replication group `acme-sessions-usw2` has 2 shards: it has \
             no shard 3 to cut"
        ),
        "{out}"
    );
}
