//! The data planes: PostgreSQL, Valkey, DNS and HTTP answering from the model.

use super::*;

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
    let o = w
        .valkey(&pg("cache.acme.internal"), ClusterMode::Detect, false)
        .await
        .unwrap();
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
