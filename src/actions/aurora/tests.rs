//! Tests of the Aurora actions and checks against the simulated world.

use std::time::Duration;

use super::super::testing::{EUW1, Harness, RUNBOOK, USE1, USW2};
use super::super::{ActionErrorKind, capture, check, execute, rollback, verify};
use crate::cloud::CloudErrorKind;
use crate::runbook::catalogue::lookup;

/// Long enough for any operation in progress (a failover, a switchover, a detached
/// cluster's promotion) to complete.
const SETTLE: Duration = Duration::from_secs(600);

/// Past an Aurora operation's `pending` phase (2-8 s) and well before its end (at
/// least 60 s more).
const PAST_PENDING: Duration = Duration::from_secs(10);

/// The world with the writer of acme-prod in `region` from the start.
fn primary_in(region: &str) -> Harness {
    Harness::new(
        RUNBOOK,
        &format!("[global_clusters.acme-prod]\nprimary = \"{region}\"\n"),
    )
}

/// Moves the writer flag of acme-prod to `arn` at once (no operation, no call): for a
/// check observed before and after.
fn writer_to(h: &Harness, arn: &str) {
    h.world.with_state(|s| {
        for c in s.clusters.values_mut() {
            if c.global.as_deref() == Some("acme-prod") {
                c.writer = c.arn == arn;
            }
        }
    });
}

/// The writer of acme-prod, as the world holds it (no call).
fn writer(h: &Harness) -> Option<String> {
    h.world
        .with_state(|s| s.writer_of("acme-prod").map(|c| c.arn.clone()))
}

/// Whether the operation in progress on acme-prod allows data loss (no call).
fn op_allows_data_loss(h: &Harness) -> bool {
    h.world.with_state(|s| {
        s.global_clusters["acme-prod"]
            .op
            .as_ref()
            .expect("an operation in progress")
            .data_loss
    })
}

#[tokio::test(start_paused = true)]
async fn failover_is_sent_once_to_the_target_region_with_data_loss_allowed() {
    let h = Harness::prod();
    // The primary's region is down: nothing may depend on it. (CloudWatch has no lag
    // datapoint then: nothing is replicated to measure.)
    h.down("us-east-1");
    let ctx = h.ctx("failover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.mutations(), 1);
    assert_eq!(h.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
    assert!(
        h.calls()
            .iter()
            .all(|c| c.region.as_deref() != Some("us-east-1")
                || c.operation == "DescribeGlobalClusters"),
        "{:?}",
        h.calls()
    );
    assert!(op_allows_data_loss(&h));
    assert!(
        done.summary
            .starts_with("FailoverGlobalCluster (AllowDataLoss) sent to us-west-2")
    );
    // A missing lag datapoint during an outage is not a refusal, but it is said.
    assert!(done.summary.contains("lag unknown"), "{}", done.summary);

    // The engine polls verify: accepted (pending), in progress, then done.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(o.observed, "pending from acme-prod-use1 to acme-prod-usw2");
    h.wait(PAST_PENDING).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "failing-over from acme-prod-use1 to acme-prod-usw2"
    );
    h.wait(SETTLE).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed);
    assert_eq!(o.observed, "writer acme-prod-usw2 in us-west-2");
    assert_eq!(h.mutations(), 1);
}

#[tokio::test(start_paused = true)]
async fn already_done_is_success_without_a_call() {
    let h = primary_in("us-west-2");
    let done = execute(&h.ctx("failover"), None).await.unwrap();
    assert_eq!(
        done.summary,
        "already done: writer acme-prod-usw2 in us-west-2"
    );
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failover_in_progress_towards_the_target_is_not_resent() {
    let h = Harness::prod();
    // A failover towards acme-prod-usw2 is under way (sent by an earlier attempt).
    h.cloud
        .rds
        .failover_global_cluster("us-west-2", "acme-prod", USW2, true)
        .await
        .unwrap();
    h.wait(PAST_PENDING).await;
    let before = h.mutations();
    let done = execute(&h.ctx("failover"), None).await.unwrap();
    assert!(
        done.summary.contains("already in progress"),
        "{}",
        done.summary
    );
    assert!(
        done.summary
            .contains("failing-over from acme-prod-use1 to acme-prod-usw2"),
        "{}",
        done.summary
    );
    assert_eq!(h.mutations(), before, "nothing sent by the step");
    // Towards another cluster: refused, still nothing sent.
    let e = execute(&h.ctx("failover-euw1"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused);
    assert!(
        e.message.contains("busy with another operation"),
        "{}",
        e.message
    );
    assert_eq!(h.mutations(), before, "nothing sent by the step");
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_never_causes_a_second_failover() {
    let h = Harness::prod();
    h.lose("FailoverGlobalCluster", 1);
    let ctx = h.ctx("failover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert!(done.summary.contains("re-read shows"), "{}", done.summary);
    assert!(done.summary.contains("not resent"));
    assert_eq!(h.mutations(), 1);
    assert_eq!(h.applied(), 1);
    // The engine retries or a resumed run executes again: still one failover.
    execute(&ctx, cap.as_ref()).await.unwrap();
    h.wait(SETTLE).await;
    let again = execute(&ctx, cap.as_ref()).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.calls_of("FailoverGlobalCluster").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failover_whose_outcome_is_unknown_is_looked_for_long_enough_before_a_resend() {
    // The call failed without applying, but the step cannot know that: it looks for
    // the failover for the whole window before calling it not applied (a failover that
    // AWS accepted may take seconds to show in DescribeGlobalClusters).
    let h = Harness::prod();
    h.fail("FailoverGlobalCluster", CloudErrorKind::Transient, None, 1);
    let started = tokio::time::Instant::now();
    let e = execute(&h.ctx("failover"), None).await.unwrap_err();
    assert!(e.is_retryable(), "{}", e.message);
    assert!(
        started.elapsed() >= super::super::support::GLOBAL_REREAD_WINDOW,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.calls_of("FailoverGlobalCluster").len(), 1);
}

#[test]
fn a_cancelling_operation_towards_the_target_is_not_progress() {
    use super::{WriterOutput, settled};
    use crate::cloud::{FailoverState, FailoverStatus, GlobalCluster, GlobalMember};
    let member = |arn: &str, is_writer| GlobalMember {
        cluster_arn: arn.into(),
        region: arn.split(':').nth(3).unwrap().into(),
        is_writer,
    };
    let g = GlobalCluster {
        id: "acme-prod".into(),
        status: "available".into(),
        engine_version: "16.4".into(),
        members: vec![member(USE1, true), member(USW2, false)],
        endpoint: None,
        failover_state: Some(FailoverState {
            status: FailoverStatus::Cancelling,
            from_cluster_arn: USE1.into(),
            to_cluster_arn: USW2.into(),
            is_data_loss_allowed: true,
        }),
    };
    let out = WriterOutput::default();
    let e = settled(&g, USW2, "FailoverGlobalCluster", &out)
        .expect("decided without a call")
        .unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused);
    assert!(
        e.message.contains("is cancelling an operation"),
        "{}",
        e.message
    );
    // Pending or failing over towards the target is progress, not a refusal.
    let mut moving = g.clone();
    moving.failover_state.as_mut().unwrap().status = FailoverStatus::FailingOver;
    let ok = settled(&moving, USW2, "FailoverGlobalCluster", &out)
        .unwrap()
        .unwrap();
    assert!(ok.summary.contains("already in progress"), "{}", ok.summary);
}

#[tokio::test(start_paused = true)]
async fn an_error_that_did_not_apply_is_retryable_and_the_next_attempt_sends_once() {
    let h = Harness::prod();
    h.fail(
        "FailoverGlobalCluster",
        CloudErrorKind::Transient,
        Some("ServiceUnavailable"),
        1,
    );
    let ctx = h.ctx("failover");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(h.mutations(), 1, "no resend inside one attempt");
    assert_eq!(h.applied(), 0);
    // The re-reads happened (three describes after the failed call).
    assert!(h.calls_of("DescribeGlobalClusters").len() >= 4);
    execute(&ctx, None).await.unwrap();
    assert_eq!(h.mutations(), 2);
    assert_eq!(h.applied(), 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_reported_as_such_without_resending() {
    let h = Harness::prod();
    h.fail("FailoverGlobalCluster", CloudErrorKind::Throttling, None, 1);
    let e = execute(&h.ctx("failover"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Throttled);
    assert_eq!(h.mutations(), 1);
}

async fn refusal(h: &Harness, step: &str) -> String {
    let e = execute(&h.ctx(step), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused, "{}", e.message);
    assert_eq!(h.mutations(), 0);
    e.message
}

#[tokio::test(start_paused = true)]
async fn failover_refusals_say_why() {
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\nengine_version = \"15.2\"\n",
    );
    assert_eq!(
        refusal(&h, "failover").await,
        "refusing to fail acme-prod over to acme-prod-usw2: engine versions differ: \
         acme-prod runs 16.4, acme-prod-usw2 runs 15.2"
    );

    let h = Harness::new(RUNBOOK, "[clusters.acme-prod-usw2]\ninstances = 0\n");
    let m = refusal(&h, "failover").await;
    assert!(m.contains("acme-prod-usw2 has no DB instance"), "{m}");

    let h = Harness::new(RUNBOOK, "[clusters.acme-prod-usw2]\nlag = \"45s\"\n");
    let m = refusal(&h, "failover").await;
    assert!(
        m.contains("lag of acme-prod-usw2 is 45s, above max_lag 30s"),
        "{m}"
    );

    // acme-prod-euw1 exists, but as a standalone cluster (no sim-config key detaches
    // a member, so the state is edited).
    let h = Harness::prod();
    h.world.with_state(|s| {
        let c = s.clusters.get_mut(EUW1).unwrap();
        c.global = None;
        c.writer = true;
    });
    let m = refusal(&h, "failover-euw1").await;
    assert!(
        m.contains("acme-prod-euw1 is not a member of global cluster acme-prod (members: acme-prod-use1, acme-prod-usw2)"),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn preflight_reports_the_refusals_as_findings() {
    let h = Harness::new(RUNBOOK, "[clusters.acme-prod-usw2]\nlag = \"45s\"\n");
    let findings = super::super::preflight(&h.ctx("failover")).await.unwrap();
    let bad: Vec<_> = findings.iter().filter(|f| !f.allows()).collect();
    assert_eq!(bad.len(), 1, "{findings:?}");
    assert!(bad[0].message.contains("above max_lag 30s"));
    // The simulated world builds a secondary with one instance.
    assert!(
        findings
            .iter()
            .any(|f| f.message == "acme-prod-usw2 has 1 instance(s)"),
        "{findings:?}"
    );
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn auto_promotes_the_least_lagged_eligible_secondary() {
    // acme-prod-euw1 (a member in the world the runbook builds) is the least lagged.
    let lags = "[clusters.acme-prod-usw2]\nlag = \"2s\"\n\
                [clusters.acme-prod-euw1]\nlag = \"1s\"\n";
    let h = Harness::new(RUNBOOK, lags);
    let ctx = h.ctx("failover-auto");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.regions_of("FailoverGlobalCluster"), ["eu-west-1"]);
    assert_eq!(done.output["target"], EUW1);
    assert!(done.summary.contains("auto"), "{}", done.summary);
    // Done, and the resumed step recognises its own choice.
    h.wait(SETTLE).await;
    assert_eq!(writer(&h).as_deref(), Some(EUW1));
    let again = execute(&ctx, cap.as_ref()).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.mutations(), 1);

    // The least-lagged one cannot be promoted (no instance): the next one wins.
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\nlag = \"2s\"\n\
         [clusters.acme-prod-euw1]\nlag = \"1s\"\ninstances = 0\n",
    );
    execute(&h.ctx("failover-auto"), None).await.unwrap();
    assert_eq!(h.regions_of("FailoverGlobalCluster"), ["us-west-2"]);

    // A known lag beats an unknown one: CloudWatch in eu-west-1 does not answer, so
    // the lag of acme-prod-euw1 (the smaller one) is unknown.
    let h = Harness::new(
        RUNBOOK,
        &format!(
            "{lags}[regions.eu-west-1]\nunreachable_from = \"0s\"\nservices = [\"monitoring\"]\n"
        ),
    );
    let done = execute(&h.ctx("failover-auto"), None).await.unwrap();
    assert_eq!(h.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
    assert!(done.summary.contains("lag 2s"), "{}", done.summary);
    assert_eq!(h.regions_of("GetMetricData"), ["eu-west-1", "us-west-2"]);
}

#[tokio::test(start_paused = true)]
async fn switchover_goes_to_the_primary_region_and_rolls_back_to_the_captured_writer() {
    let h = Harness::prod();
    let ctx = h.ctx("switchover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(h.regions_of("SwitchoverGlobalCluster"), ["us-east-1"]);
    assert!(!op_allows_data_loss(&h));
    assert!(
        done.summary
            .contains("sent to us-east-1 (the primary's region)"),
        "{}",
        done.summary
    );
    h.wait(SETTLE).await;
    assert!(verify(&ctx, &done).await.unwrap().passed);

    let rb = ctx.step.rollback.as_ref().unwrap();
    let summary = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    // Back to acme-prod-use1, sent to the now-primary's region.
    assert_eq!(
        h.regions_of("SwitchoverGlobalCluster"),
        ["us-east-1", "us-west-2"]
    );
    assert!(
        summary.contains("acme-prod-usw2 -> acme-prod-use1"),
        "{summary}"
    );
    h.wait(SETTLE).await;
    let again = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert!(again.starts_with("already done"), "{again}");
    assert_eq!(h.mutations(), 2);
    assert_eq!(writer(&h).as_deref(), Some(USE1));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_waits_for_the_steps_own_switchover_then_switches_back() {
    let h = Harness::prod();
    let ctx = h.ctx("switchover");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    // The switchover is still running (its gate timed out, or the process was killed
    // right after sending it) when the run is rolled back. The world completes it on
    // its own, after a few minutes.
    let completes = h.world.with_state(|s| {
        s.global_clusters["acme-prod"]
            .op
            .as_ref()
            .expect("the switchover is in progress")
            .completes
    });
    let rb = ctx.step.rollback.as_ref().unwrap();
    let started = h.clock.elapsed();
    assert!(started < completes);
    let summary = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert!(
        summary.contains("acme-prod-usw2 -> acme-prod-use1"),
        "{summary}"
    );
    assert!(h.clock.elapsed() >= completes);
    assert_eq!(
        h.regions_of("SwitchoverGlobalCluster"),
        ["us-east-1", "us-west-2"]
    );
    // The switch back was sent only once the step's own switchover had completed, and
    // the world accepted it.
    let log = h.world.op_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[1].at >= completes, "{log:?}");
    assert!(log.iter().all(|r| r.applied), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn switchover_refuses_a_degraded_topology() {
    let h = Harness::prod();
    h.down("us-east-1");
    let m = refusal(&h, "switchover").await;
    assert!(m.contains("the topology is degraded"), "{m}");
    assert!(
        m.contains("the primary's region us-east-1 is not answering"),
        "{m}"
    );
    assert!(m.contains("in an outage use aurora.failover"), "{m}");

    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n",
    );
    let m = refusal(&h, "switchover").await;
    assert!(
        m.contains("acme-prod-usw2 in us-west-2 is modifying"),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_action_runs_with_its_own_fields() {
    let h = Harness::prod();
    let ctx = h.ctx("failover-euw1");
    let done = execute(&ctx, None).await.unwrap();
    h.wait(SETTLE).await;
    assert_eq!(writer(&h).as_deref(), Some(EUW1));
    let rb = ctx.step.rollback.as_ref().unwrap();
    rollback(&ctx, rb, None, Some(&done)).await.unwrap();
    // The rollback is a switchover back to use1, sent to the new primary's region.
    assert_eq!(h.regions_of("SwitchoverGlobalCluster"), ["eu-west-1"]);
    h.wait(SETTLE).await;
    assert_eq!(writer(&h).as_deref(), Some(USE1));
}

#[tokio::test(start_paused = true)]
async fn detach_promote_is_sent_to_the_target_region_once() {
    let h = Harness::prod();
    h.lose("RemoveFromGlobalCluster", 1);
    let ctx = h.ctx("detach");
    let done = execute(&ctx, None).await.unwrap();
    assert!(done.summary.contains("not resent"), "{}", done.summary);
    assert_eq!(h.regions_of("RemoveFromGlobalCluster"), ["us-west-2"]);
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.mutations(), 1);
    // The detached cluster is promoted to a standalone writer, which takes a while.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(o.observed, "acme-prod-usw2 stands alone, promoting");
    h.wait(SETTLE).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed);
    assert_eq!(o.observed, "acme-prod-usw2 stands alone, available");
    assert_eq!(h.mutations(), 1);

    // The writer is never detached.
    let h = primary_in("us-west-2");
    let m = refusal(&h, "detach").await;
    assert!(m.contains("is the writer of acme-prod"), "{m}");
}

/// An available snapshot of acme-prod-use1 in us-east-1, as the world stores it (the
/// world's snapshot type is private to `sim`, hence JSON).
fn snapshot<T: serde::de::DeserializeOwned>(id: &str, kind: &str) -> T {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "cluster_id": "acme-prod-use1",
        "region": "us-east-1",
        "snapshot_type": kind,
        "created": { "secs": 0, "nanos": 0 },
        "available_at": { "secs": 0, "nanos": 0 },
    }))
    .expect("a snapshot")
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
    // Two unplanned failovers in the past, and a daily automated snapshot after them
    // (no sim-config key creates snapshots, so the state is edited).
    h.world.with_state(|s| {
        s.snapshots.extend([
            snapshot(
                "rds:unplanned-global-failover-acme-prod-use1-2024-05-01-10-00",
                "automated",
            ),
            snapshot(
                "rds:unplanned-global-failover-acme-prod-use1-2024-06-01-09-00",
                "automated",
            ),
            snapshot("rds:acme-prod-use1-2024-06-02-03-00", "automated"),
        ]);
    });
    h.lose("CopyDBClusterSnapshot", 1);
    let done = execute(&ctx, None).await.unwrap();
    assert!(done.summary.contains("not resent"), "{}", done.summary);
    assert_eq!(h.regions_of("CopyDBClusterSnapshot"), ["us-east-1"]);
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
    assert_eq!(h.mutations(), 1);
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00 is creating"
    );
    h.wait(SETTLE).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed);
    assert_eq!(
        o.observed,
        "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00 is available"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_cluster_name_still_gets_a_copy_aws_accepts() {
    // 40 characters of cluster name: written out whole, the copy's identifier would be
    // 82 characters, and CopyDBClusterSnapshot takes at most 63.
    let name = "acme-production-aurora-postgres-use1-v2x";
    let runbook = format!(
        r#"
[runbook]
name = "long-names"
mode = "unplanned"
[params]
from = "us-east-1"
to = "us-west-2"
account = "111122223333"

[[step]]
id = "snapshot"
action = "aurora.snapshot_lost_writes"
global_cluster = "acme-prod"
cluster = "arn:aws:rds:us-east-1:111122223333:cluster:{name}"
"#
    );
    let h = Harness::new(&runbook, "");
    let source = format!("rds:unplanned-global-failover-{name}-2024-06-01-09-00");
    h.world.with_state(|s| {
        s.snapshots.push(
            serde_json::from_value(serde_json::json!({
                "id": source, "cluster_id": name, "region": "us-east-1",
                "snapshot_type": "automated",
                "created": { "secs": 0, "nanos": 0 },
                "available_at": { "secs": 0, "nanos": 0 },
            }))
            .expect("a snapshot"),
        );
    });
    let ctx = h.ctx("snapshot");
    let done = execute(&ctx, None).await.unwrap();
    let id = done.output["snapshot"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 63, "{id}");
    assert!(
        id.starts_with("drpilot-lost-writes-acme-production-"),
        "{id}"
    );
    assert!(id.ends_with("-2024-06-01-09-00"), "{id}");
    assert_eq!(h.applied(), 1);
    h.wait(SETTLE).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert_eq!((o.passed, o.observed), (true, format!("{id} is available")));
}

#[tokio::test(start_paused = true)]
async fn aurora_checks_observe_briefly() {
    // One secondary, as `lag_below` without `cluster` reads every secondary.
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-euw1]\nmissing = true\n\
         [clusters.acme-prod-usw2]\nlag = \"4200ms\"\n",
    );
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
    writer_to(&h, USE1);
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!((o.passed, o.observed.as_str()), (true, "lag 4.2s <= 30s"));
    // The primary's region goes down: CloudWatch has no datapoint.
    h.down("us-east-1");
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert_eq!(
        (o.passed, o.observed.as_str()),
        (false, "lag unknown (no recent datapoint)")
    );
    // As a step action, false is a retryable failure.
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.message, "not yet: lag unknown (no recent datapoint)");

    let ctx = h.ctx("cluster-up");
    let spec = lookup("aurora.cluster_available").unwrap();
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    // The simulated world builds a secondary with one instance.
    assert_eq!(
        (o.passed, o.observed.as_str()),
        (true, "acme-prod-usw2 is available (1 instance(s))")
    );
    assert_eq!(h.mutations(), 0);
}

#[test]
fn outputs_and_captures_keep_their_journaled_form() {
    use super::super::{Captured, Journaled};
    use super::{WriterCapture, WriterOutput};
    use serde_json::json;
    // A failover's output as journals have always held it; a switchover's adds
    // `sent_to`.
    let failover = WriterOutput {
        target: USW2.into(),
        target_region: "us-west-2".into(),
        previous_writer: Some(USE1.into()),
        sent_to: None,
    };
    assert_eq!(
        failover.executed("x").output,
        json!({"target": USW2, "target_region": "us-west-2", "previous_writer": USE1})
    );
    let switchover = WriterOutput {
        previous_writer: None,
        sent_to: Some("us-east-1".into()),
        ..failover
    };
    assert_eq!(
        switchover.executed("x").output,
        json!({"target": USW2, "target_region": "us-west-2", "previous_writer": null,
               "sent_to": "us-east-1"})
    );
    // A capture written by an earlier drpilot reads back; one that names no writer
    // gives none (the rollback then refuses instead of guessing).
    let old = Captured(json!({
        "global_cluster": "acme-prod", "writer": USE1, "writer_region": "us-east-1",
        "members": [USE1, USW2],
    }));
    assert_eq!(WriterCapture::writer_of(Some(&old)).as_deref(), Some(USE1));
    let read = WriterCapture::read(&old.0).unwrap();
    assert_eq!(read.captured(), old);
    let junk = Captured(json!({"writer": 7}));
    assert_eq!(WriterCapture::writer_of(Some(&junk)), None);
    assert_eq!(WriterCapture::writer_of(None), None);
}

#[test]
fn engine_versions_must_agree_on_major_and_minor_only() {
    use super::compatible_versions as ok;
    assert!(ok("16.4", "16.4"));
    assert!(ok("16.4", "16.4.2"));
    assert!(!ok("16.4", "16.6"));
    assert!(!ok("16.4", "15.4"));
    assert!(ok("8.0.mysql_aurora.3.04.0", "8.0.mysql_aurora.3.04.1"));
    assert!(!ok("8.0.mysql_aurora.3.04.0", "8.0.mysql_aurora.3.05.0"));
    assert!(!ok("8.0.mysql_aurora.3.04.0", "5.7.mysql_aurora.3.04.0"));
}

#[tokio::test(start_paused = true)]
async fn a_secondary_on_another_patch_level_may_be_promoted() {
    let h = Harness::prod();
    h.world.with_state(|s| {
        let c = s.clusters.get_mut(USW2).expect("the secondary");
        c.engine_version = format!("{}.2", c.engine_version);
    });
    let done = execute(&h.ctx("failover"), None).await.unwrap();
    assert!(
        done.summary.contains("sent to us-west-2"),
        "{}",
        done.summary
    );
}

#[tokio::test(start_paused = true)]
async fn the_global_endpoint_passes_once_it_names_the_new_writer_in_the_region() {
    let h = Harness::prod();
    let ctx = h.ctx("global-endpoint-west");
    let spec = lookup("aurora.global_endpoint").unwrap();
    let endpoint = crate::sim::global_endpoint("acme-prod");
    // Before: the endpoint names us-east-1's writer.
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        format!("{endpoint}: the writer is in us-east-1, not us-west-2")
    );
    // A managed failover: while it runs the endpoint has not moved.
    let failover = h.ctx("failover");
    let cap = capture(&failover).await.unwrap();
    execute(&failover, cap.as_ref()).await.unwrap();
    h.wait(PAST_PENDING).await;
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(!o.passed);
    assert!(o.observed.contains("in progress"), "{o:?}");
    // Completed: it resolves to acme-prod-usw2's cluster endpoint.
    h.wait(SETTLE).await;
    let west = ctx.cloud.rds.describe_cluster(USW2).await.unwrap().endpoint;
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        format!("{endpoint} -> {west} (writer acme-prod-usw2)")
    );
    assert!(
        !h.calls_of("Dns").is_empty(),
        "resolved through the data plane"
    );
}

#[tokio::test(start_paused = true)]
async fn a_detached_cluster_does_not_take_the_global_endpoint_with_it() {
    let h = Harness::prod();
    let ctx = h.ctx("global-endpoint-west");
    let spec = lookup("aurora.global_endpoint").unwrap();
    // us-west-2's cluster leaves the global cluster and becomes a writer on its own:
    // the global endpoint still names the global cluster's writer in us-east-1.
    h.world.with_state(|s| {
        let c = s.clusters.get_mut(USW2).unwrap();
        c.global = None;
        c.writer = true;
    });
    let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
    assert!(!o.passed);
    assert!(
        o.observed
            .ends_with("the writer is in us-east-1, not us-west-2"),
        "{o:?}"
    );
    // Without `region`, it passes on the global cluster's own writer.
    let mut fields = ctx.step.fields.clone();
    fields.remove("region");
    let o = check(&ctx, spec, &fields, None).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert!(o.observed.ends_with("(writer acme-prod-use1)"), "{o:?}");
}

#[tokio::test(start_paused = true)]
async fn a_global_endpoint_pointing_elsewhere_does_not_pass() {
    use std::sync::Arc;
    // The data plane answers with a stale CNAME (the old primary's endpoint).
    let h = Harness::prod();
    writer_to(&h, USW2);
    let east = h
        .ctx("global-endpoint-west")
        .cloud
        .rds
        .describe_cluster(USE1)
        .await
        .unwrap()
        .endpoint;
    struct Stale(String, Arc<dyn crate::cloud::DataPlane>);
    #[async_trait::async_trait]
    impl crate::cloud::DataPlane for Stale {
        async fn http(
            &self,
            p: &crate::cloud::HttpProbe,
        ) -> crate::cloud::CloudResult<crate::cloud::HttpObservation> {
            self.1.http(p).await
        }
        async fn postgres(
            &self,
            e: &crate::cloud::Endpoint,
            d: &str,
            c: bool,
        ) -> crate::cloud::CloudResult<crate::cloud::PostgresObservation> {
            self.1.postgres(e, d, c).await
        }
        async fn valkey(
            &self,
            e: &crate::cloud::Endpoint,
            m: crate::cloud::ClusterMode,
            c: bool,
        ) -> crate::cloud::CloudResult<crate::cloud::ValkeyObservation> {
            self.1.valkey(e, m, c).await
        }
        async fn resolve(
            &self,
            _: &str,
            _: &str,
            _: &[String],
        ) -> crate::cloud::CloudResult<Vec<String>> {
            Ok(vec![format!("{}.", self.0.to_uppercase())])
        }
        async fn heartbeat_shards(
            &self,
            t: &crate::cloud::HeartbeatTarget,
        ) -> crate::cloud::CloudResult<Vec<crate::cloud::HeartbeatShard>> {
            self.1.heartbeat_shards(t).await
        }
        async fn heartbeat_write(
            &self,
            t: &crate::cloud::HeartbeatTarget,
            sh: &crate::cloud::HeartbeatShard,
            b: &crate::cloud::Heartbeat,
            k: Duration,
        ) -> crate::cloud::CloudResult<()> {
            self.1.heartbeat_write(t, sh, b, k).await
        }
        async fn heartbeat_read(
            &self,
            t: &crate::cloud::HeartbeatTarget,
            s: i64,
        ) -> crate::cloud::CloudResult<Vec<crate::cloud::ShardBeats>> {
            self.1.heartbeat_read(t, s).await
        }
    }
    let base = h.ctx("global-endpoint-west").cloud.clone();
    let west = base.rds.describe_cluster(USW2).await.unwrap().endpoint;
    let spec = lookup("aurora.global_endpoint").unwrap();
    // The old primary's endpoint does not pass; the writer's, in another case and
    // with the root dot, does.
    for (answer, passes) in [(east, false), (west, true)] {
        let mut cloud = base.clone();
        cloud.data = Arc::new(Stale(answer, base.data.clone()));
        let mut ctx = h.ctx("global-endpoint-west");
        ctx.cloud = &cloud;
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(o.passed, passes, "{o:?}");
        if !passes {
            assert!(
                o.observed.contains("not the writer acme-prod-usw2's"),
                "{o:?}"
            );
        }
    }
}
