//! Tests of the Aurora actions and checks against the fake cloud.

use std::time::Duration;

use super::super::fake::{EUW1, Harness, USE1, USW2, add_euw1};
use super::super::{ActionErrorKind, capture, check, execute, rollback, verify};
use super::lost_writes::lost_writes_id;
use crate::cloud::{CloudError, CloudErrorKind, ClusterSnapshot, FailoverState, FailoverStatus};
use crate::runbook::catalogue::lookup;

fn writer_to(h: &Harness, arn: &str) {
    let mut w = h.fake.world();
    let g = w.globals.get_mut("acme-prod").unwrap();
    for m in &mut g.members {
        m.is_writer = m.cluster_arn == arn;
    }
}

#[tokio::test(start_paused = true)]
async fn failover_is_sent_once_to_the_target_region_with_data_loss_allowed() {
    let h = Harness::prod();
    // The primary's region is down: nothing may depend on it.
    h.fake.world().down.insert("us-east-1".into());
    h.fake.world().lags.insert(USW2.into(), None);
    let ctx = h.ctx("failover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.fake.mutations(), 1);
    assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
    assert!(
        h.fake
            .calls()
            .iter()
            .all(|c| c.region.as_deref() != Some("us-east-1") || c.op == "DescribeGlobalClusters"),
        "{:?}",
        h.fake.calls()
    );
    let fs = h.fake.world().globals["acme-prod"]
        .failover_state
        .clone()
        .unwrap();
    assert!(fs.is_data_loss_allowed);
    assert!(
        done.summary
            .starts_with("FailoverGlobalCluster (AllowDataLoss) sent to us-west-2")
    );
    // A missing lag datapoint during an outage is not a refusal, but it is said.
    assert!(done.summary.contains("lag unknown"), "{}", done.summary);

    // The engine polls verify: in progress, then done.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "failing-over from acme-prod-use1 to acme-prod-usw2"
    );
    h.fake.settle();
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed);
    assert_eq!(o.observed, "writer acme-prod-usw2 in us-west-2");
}

#[tokio::test(start_paused = true)]
async fn already_done_is_success_without_a_call() {
    let h = Harness::prod();
    writer_to(&h, USW2);
    let done = execute(&h.ctx("failover"), None).await.unwrap();
    assert_eq!(
        done.summary,
        "already done: writer acme-prod-usw2 in us-west-2"
    );
    assert_eq!(h.fake.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failover_in_progress_towards_the_target_is_not_resent() {
    let h = Harness::prod();
    h.fake
        .world()
        .globals
        .get_mut("acme-prod")
        .unwrap()
        .failover_state = Some(FailoverState {
        status: FailoverStatus::FailingOver,
        from_cluster_arn: USE1.into(),
        to_cluster_arn: USW2.into(),
        is_data_loss_allowed: true,
    });
    let done = execute(&h.ctx("failover"), None).await.unwrap();
    assert!(
        done.summary.contains("already in progress"),
        "{}",
        done.summary
    );
    assert_eq!(h.fake.mutations(), 0);
    // Towards another cluster: refused, still nothing sent.
    let e = execute(&h.ctx("failover-euw1"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused);
    assert!(
        e.message.contains("busy with another operation"),
        "{}",
        e.message
    );
    assert_eq!(h.fake.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_never_causes_a_second_failover() {
    let h = Harness::prod();
    h.fake.world().lose.insert("FailoverGlobalCluster", 1);
    let ctx = h.ctx("failover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert!(done.summary.contains("re-read shows"), "{}", done.summary);
    assert!(done.summary.contains("not resent"));
    assert_eq!(h.fake.mutations(), 1);
    // The engine retries or a resumed run executes again: still one failover.
    execute(&ctx, cap.as_ref()).await.unwrap();
    h.fake.settle();
    execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.fake.calls_of("FailoverGlobalCluster").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_error_that_did_not_apply_is_retryable_and_the_next_attempt_sends_once() {
    let h = Harness::prod();
    h.fake.world().fail.insert(
        "FailoverGlobalCluster",
        vec![CloudError::new(
            CloudErrorKind::Transient,
            "FailoverGlobalCluster",
            Some("us-west-2"),
            "503",
        )],
    );
    let ctx = h.ctx("failover");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(h.fake.mutations(), 1, "no resend inside one attempt");
    // The re-reads happened (three describes after the failed call).
    assert!(h.fake.calls_of("DescribeGlobalClusters").len() >= 4);
    execute(&ctx, None).await.unwrap();
    assert_eq!(h.fake.mutations(), 2);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_reported_as_such_without_resending() {
    let h = Harness::prod();
    h.fake.world().fail.insert(
        "FailoverGlobalCluster",
        vec![CloudError::new(
            CloudErrorKind::Throttling,
            "FailoverGlobalCluster",
            Some("us-west-2"),
            "Rate exceeded",
        )],
    );
    let e = execute(&h.ctx("failover"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Throttled);
    assert_eq!(h.fake.mutations(), 1);
}

async fn refusal(h: &Harness, step: &str) -> String {
    let e = execute(&h.ctx(step), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused, "{}", e.message);
    assert_eq!(h.fake.mutations(), 0);
    e.message
}

#[tokio::test(start_paused = true)]
async fn failover_refusals_say_why() {
    let h = Harness::prod();
    h.fake
        .world()
        .clusters
        .get_mut(USW2)
        .unwrap()
        .engine_version = "15.2".into();
    assert_eq!(
        refusal(&h, "failover").await,
        "refusing to fail acme-prod over to acme-prod-usw2: engine versions differ: \
         acme-prod runs 16.4, acme-prod-usw2 runs 15.2"
    );

    let h = Harness::prod();
    h.fake.world().clusters.get_mut(USW2).unwrap().instances = 0;
    let m = refusal(&h, "failover").await;
    assert!(m.contains("acme-prod-usw2 has no DB instance"), "{m}");

    let h = Harness::prod();
    h.fake
        .world()
        .lags
        .insert(USW2.into(), Some(Duration::from_secs(45)));
    let m = refusal(&h, "failover").await;
    assert!(
        m.contains("lag of acme-prod-usw2 is 45s, above max_lag 30s"),
        "{m}"
    );

    let h = Harness::prod();
    {
        let mut w = h.fake.world();
        let c = w.clusters[USW2].clone();
        w.clusters.insert(EUW1.into(), c);
    }
    let m = refusal(&h, "failover-euw1").await;
    assert!(
        m.contains("acme-prod-euw1 is not a member of global cluster acme-prod (members: acme-prod-use1, acme-prod-usw2)"),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn preflight_reports_the_refusals_as_findings() {
    let h = Harness::prod();
    h.fake
        .world()
        .lags
        .insert(USW2.into(), Some(Duration::from_secs(45)));
    let findings = super::super::preflight(&h.ctx("failover")).await.unwrap();
    let bad: Vec<_> = findings.iter().filter(|f| !f.allows()).collect();
    assert_eq!(bad.len(), 1, "{findings:?}");
    assert!(bad[0].message.contains("above max_lag 30s"));
    assert!(
        findings
            .iter()
            .any(|f| f.message == "acme-prod-usw2 has 2 instance(s)")
    );
    assert_eq!(h.fake.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn auto_promotes_the_least_lagged_eligible_secondary() {
    let h = Harness::prod();
    add_euw1(&h.fake, Some(Duration::from_secs(1)));
    let ctx = h.ctx("failover-auto");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["eu-west-1"]);
    assert_eq!(done.output["target"], EUW1);
    assert!(done.summary.contains("auto"), "{}", done.summary);
    // Done, and the resumed step recognises its own choice.
    h.fake.settle();
    let again = execute(&ctx, cap.as_ref()).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.fake.mutations(), 1);

    // The least-lagged one cannot be promoted (no instance): the next one wins.
    let h = Harness::prod();
    add_euw1(&h.fake, Some(Duration::from_secs(1)));
    h.fake.world().clusters.get_mut(EUW1).unwrap().instances = 0;
    execute(&h.ctx("failover-auto"), None).await.unwrap();
    assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);

    // A known lag beats an unknown one.
    let h = Harness::prod();
    add_euw1(&h.fake, None);
    execute(&h.ctx("failover-auto"), None).await.unwrap();
    assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
}

#[tokio::test(start_paused = true)]
async fn switchover_goes_to_the_primary_region_and_rolls_back_to_the_captured_writer() {
    let h = Harness::prod();
    let ctx = h.ctx("switchover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.fake.regions_of("SwitchoverGlobalCluster"), ["us-east-1"]);
    assert!(
        !h.fake.world().globals["acme-prod"]
            .failover_state
            .as_ref()
            .unwrap()
            .is_data_loss_allowed
    );
    assert!(
        done.summary
            .contains("sent to us-east-1 (the primary's region)"),
        "{}",
        done.summary
    );
    h.fake.settle();
    assert!(verify(&ctx, &done).await.unwrap().passed);

    let rb = ctx.step.rollback.as_ref().unwrap();
    let summary = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    // Back to acme-prod-use1, sent to the now-primary's region.
    assert_eq!(
        h.fake.regions_of("SwitchoverGlobalCluster"),
        ["us-east-1", "us-west-2"]
    );
    assert!(
        summary.contains("acme-prod-usw2 -> acme-prod-use1"),
        "{summary}"
    );
    h.fake.settle();
    let again = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert!(again.starts_with("already done"), "{again}");
    assert_eq!(h.fake.mutations(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_rollback_waits_for_the_steps_own_switchover_then_switches_back() {
    let h = Harness::prod();
    let ctx = h.ctx("switchover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    // The switchover is still running (its gate timed out, or the process was killed
    // right after sending it) when the run is rolled back.
    let rb = ctx.step.rollback.as_ref().unwrap();
    let started = tokio::time::Instant::now();
    let finish = async {
        tokio::time::sleep(std::time::Duration::from_secs(90)).await;
        h.fake.settle();
    };
    let (summary, ()) = tokio::join!(rollback(&ctx, rb, cap.as_ref(), Some(&done)), finish);
    let summary = summary.unwrap();
    assert!(
        summary.contains("acme-prod-usw2 -> acme-prod-use1"),
        "{summary}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(90));
    assert_eq!(
        h.fake.regions_of("SwitchoverGlobalCluster"),
        ["us-east-1", "us-west-2"]
    );
}

#[tokio::test(start_paused = true)]
async fn switchover_refuses_a_degraded_topology() {
    let h = Harness::prod();
    h.fake.world().down.insert("us-east-1".into());
    let m = refusal(&h, "switchover").await;
    assert!(m.contains("the topology is degraded"), "{m}");
    assert!(
        m.contains("the primary's region us-east-1 is not answering"),
        "{m}"
    );
    assert!(m.contains("in an outage use aurora.failover"), "{m}");

    let h = Harness::prod();
    h.fake.world().clusters.get_mut(USW2).unwrap().status = "modifying".into();
    let m = refusal(&h, "switchover").await;
    assert!(
        m.contains("acme-prod-usw2 in us-west-2 is modifying"),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_action_runs_with_its_own_fields() {
    let h = Harness::prod();
    add_euw1(&h.fake, Some(Duration::from_secs(1)));
    let ctx = h.ctx("failover-euw1");
    let done = execute(&ctx, None).await.unwrap();
    h.fake.settle();
    let rb = ctx.step.rollback.as_ref().unwrap();
    rollback(&ctx, rb, None, Some(&done)).await.unwrap();
    // The rollback is a switchover back to use1, sent to the new primary's region.
    assert_eq!(h.fake.regions_of("SwitchoverGlobalCluster"), ["eu-west-1"]);
    h.fake.settle();
    assert_eq!(
        h.fake.world().globals["acme-prod"]
            .writer()
            .unwrap()
            .cluster_arn,
        USE1
    );
}

#[tokio::test(start_paused = true)]
async fn detach_promote_is_sent_to_the_target_region_once() {
    let h = Harness::prod();
    h.fake.world().lose.insert("RemoveFromGlobalCluster", 1);
    let ctx = h.ctx("detach");
    let done = execute(&ctx, None).await.unwrap();
    assert!(done.summary.contains("not resent"), "{}", done.summary);
    assert_eq!(h.fake.regions_of("RemoveFromGlobalCluster"), ["us-west-2"]);
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.fake.mutations(), 1);
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed);
    assert_eq!(o.observed, "acme-prod-usw2 stands alone, available");

    // The writer is never detached.
    let h = Harness::prod();
    writer_to(&h, USW2);
    let m = refusal(&h, "detach").await;
    assert!(m.contains("is the writer of acme-prod"), "{m}");
}

fn snapshot(id: &str, kind: &str, status: &str) -> (String, ClusterSnapshot) {
    (
        USE1.into(),
        ClusterSnapshot {
            id: id.into(),
            cluster_id: "acme-prod-use1".into(),
            snapshot_type: kind.into(),
            status: status.into(),
        },
    )
}

#[tokio::test(start_paused = true)]
async fn the_newest_unplanned_failover_snapshot_is_copied_under_a_deterministic_name() {
    let h = Harness::prod();
    let ctx = h.ctx("snapshot");
    // Before Aurora took it: retry later.
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(
        e.is_retryable() && e.message.contains("no rds:unplanned-global-failover-*"),
        "{}",
        e.message
    );
    h.fake.world().snapshots.extend([
        snapshot(
            "rds:unplanned-global-failover-acme-prod-use1-2024-05-01-10-00",
            "automated",
            "available",
        ),
        snapshot(
            "rds:unplanned-global-failover-acme-prod-use1-2024-06-01-09-00",
            "automated",
            "available",
        ),
        snapshot(
            "rds:acme-prod-use1-2024-06-02-03-00",
            "automated",
            "available",
        ),
    ]);
    h.fake.world().lose.insert("CopyDBClusterSnapshot", 1);
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(h.fake.regions_of("CopyDBClusterSnapshot"), ["us-east-1"]);
    assert_eq!(
        done.output["snapshot"],
        "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00"
    );
    assert_eq!(
        done.output["source_snapshot"],
        "rds:unplanned-global-failover-acme-prod-use1-2024-06-01-09-00"
    );
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.fake.mutations(), 1);
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00 is creating"
    );
}

#[test]
fn lost_writes_ids_are_valid_snapshot_identifiers() {
    assert_eq!(
        lost_writes_id("keep", "rds:unplanned-global-failover-db-2024-06-01-09-00"),
        "keep-db-2024-06-01-09-00"
    );
    assert_eq!(lost_writes_id("9x__y-", "rds:odd:id--"), "s-9x-y-odd-id");
    assert!(lost_writes_id("a", &"b".repeat(400)).len() <= 255);
}

#[tokio::test(start_paused = true)]
async fn aurora_checks_observe_briefly() {
    let h = Harness::prod();
    let ctx = h.ctx("writer-in-west");
    let spec = lookup("aurora.writer_in_region").unwrap();
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(!o.passed);
    assert_eq!(o.observed, "writer acme-prod-use1 in us-east-1");
    writer_to(&h, USW2);
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(o.passed);
    assert_eq!(o.observed, "writer acme-prod-usw2 in us-west-2");

    let ctx = h.ctx("lag");
    let spec = lookup("aurora.lag_below").unwrap();
    h.fake
        .world()
        .lags
        .insert(USW2.into(), Some(Duration::from_millis(4200)));
    writer_to(&h, USE1);
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!((o.passed, o.observed.as_str()), (true, "lag 4.2s <= 30s"));
    h.fake.world().lags.insert(USW2.into(), None);
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!(
        (o.passed, o.observed.as_str()),
        (false, "lag unknown (no datapoint)")
    );
    // As a step action, false is a retryable failure.
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.message, "not yet: lag unknown (no datapoint)");

    let ctx = h.ctx("cluster-up");
    let spec = lookup("aurora.cluster_available").unwrap();
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!(
        (o.passed, o.observed.as_str()),
        (true, "acme-prod-usw2 is available (2 instance(s))")
    );
    assert_eq!(h.fake.mutations(), 0);
}
