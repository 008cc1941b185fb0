//! No panics on any input: sim configs and the worlds they shape, by property tests.

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
    let _ = tokio::time::timeout(t, w.failover_global_cluster("us-west-2", GC, USW2, true)).await;
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
    let _ = tokio::time::timeout(t, w.postgres(&pg("db-writer.acme.internal"), "acme", true)).await;
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
