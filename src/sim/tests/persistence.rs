//! Saving a world mid-failover and restoring it, and refusing garbage.

use super::*;

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
