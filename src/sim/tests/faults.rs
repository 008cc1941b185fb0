//! Faults: throttles, errors, lost responses, hangs, latency, and seeded traces.

use super::*;

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
