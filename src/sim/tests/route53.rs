//! Route 53: record changes, propagation, health checks, a region going down.

use super::*;

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
    // Disabled is healthy before inversion (UpdateHealthCheck `Disabled`: "considers
    // the status ... always healthy. [...] If you want to stop routing traffic to a
    // resource, change the value of Inverted"): disabled and inverted stays unhealthy,
    // traffic stays away.
    w.update_health_check(HC, None, Some(true)).await.unwrap();
    wait(31).await;
    assert!(!w.health_check_healthy(HC).await.unwrap());
    assert_eq!(
        w.resolve("api.acme.example", "CNAME", &[]).await.unwrap(),
        ["api-usw2.acme.example"]
    );
    // Disabled and not inverted is healthy, whatever the checkers would see.
    w.update_health_check(HC, Some(false), None).await.unwrap();
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

#[tokio::test(start_paused = true)]
async fn health_is_read_as_a_cloudwatch_call_in_us_east_1() {
    let w = world();
    w.record_calls();
    assert!(w.health_check_healthy(HC).await.unwrap());
    let calls: Vec<_> = w
        .calls()
        .into_iter()
        .map(|c| (c.service, c.operation, c.region, c.mutating))
        .collect();
    assert_eq!(
        calls,
        [(
            "cloudwatch",
            "GetMetricData",
            Some("us-east-1".to_string()),
            false
        )]
    );
    // CloudWatch publishes nothing for a health check that does not exist: the health
    // is unknown (asked again), not a verdict.
    let e = w.health_check_healthy("nope").await.unwrap_err();
    assert_eq!(e.kind, K::Transient, "{e}");
    assert!(
        e.message
            .contains("health check nope has no current HealthCheckStatus datapoint"),
        "{e}"
    );

    // Faults on CloudWatch in us-east-1 reach it; Route 53's, or CloudWatch's elsewhere,
    // do not.
    let w = world_with(
        "[[fault]]\nkind = \"error\"\nservice = \"route53\"\n\
         [[fault]]\nkind = \"error\"\nservice = \"cloudwatch\"\nregion = \"us-west-2\"\n",
        1,
    );
    assert!(w.health_check_healthy(HC).await.unwrap());
    let w = world_with(
        "[[fault]]\nkind = \"throttle\"\nservice = \"cloudwatch\"\noperation = \"GetMetricData\"\nregion = \"us-east-1\"\n",
        1,
    );
    let e = w.health_check_healthy(HC).await.unwrap_err();
    assert_eq!(
        (e.kind, e.region.as_deref()),
        (K::Throttling, Some("us-east-1"))
    );

    // A Route 53-only outage of us-east-1 leaves it alone; a CloudWatch one does not.
    let outage = |service: &str| {
        format!(
            "[regions.us-east-1]\nunreachable_from = \"0s\"\nservices = [\"{service}\"]\noutage = \"reset\"\n"
        )
    };
    let w = world_with(&outage("route53"), 1);
    assert!(w.health_check_healthy(HC).await.unwrap());
    assert!(w.get_health_check(HC).await.is_err());
    let w = world_with(&outage("monitoring"), 1);
    let e = w.health_check_healthy(HC).await.unwrap_err();
    assert_eq!(
        (e.kind, e.region.as_deref()),
        (K::Unreachable, Some("us-east-1"))
    );
    assert!(w.get_health_check(HC).await.is_ok());
}
