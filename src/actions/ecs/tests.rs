//! `ecs.scale_service` against the simulated world.

use std::time::Duration;

use super::super::testing::{Harness, RUNBOOK};
use super::super::{ActionErrorKind, capture, execute, preflight, rollback, rollback_done, verify};
use super::*;
use crate::actions::Severity;
use crate::cloud::{ECS_PRIMARY, EcsDeployment};

const UPDATE: &str = "UpdateService";
const DESCRIBE: &str = "DescribeServices";
/// Longer than any task start or stop of the world (30-90 s, 15-60 s).
const SETTLED: Duration = Duration::from_secs(120);

async fn counts(h: &Harness) -> (u32, u32, u32) {
    let s = h
        .cloud
        .ecs
        .describe_service("us-west-2", "acme-prod-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    (s.desired_count, s.running_count, s.pending_count)
}

fn with_service(config: &str) -> Harness {
    Harness::new(RUNBOOK, &format!("[ecs_services.acme-api]\n{config}\n"))
}

#[tokio::test(start_paused = true)]
async fn a_scale_up_is_sent_once_to_the_region_and_verify_waits_for_the_tasks() {
    let h = Harness::prod();
    let ctx = h.ctx("ecs");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings,
        [Finding::ok(
            "acme-prod-usw2/acme-api is ACTIVE on launch type FARGATE: desired 2, running 2, \
             pending 0; the step sets 8"
        )]
    );
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(
        done.summary,
        "UpdateService sent to us-west-2: acme-prod-usw2/acme-api desired count 2 -> 8"
    );
    assert_eq!(h.regions_of(UPDATE), ["us-west-2"]);
    assert_eq!(h.mutations(), 1);
    assert_eq!(
        done.output,
        serde_json::json!({
            "region": "us-west-2", "cluster": "acme-prod-usw2", "service": "acme-api",
            "desired_count": 8, "previous": 2
        })
    );
    // The new tasks are PENDING: not yet.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-prod-usw2/acme-api: waiting for 8 task(s): 2/8 running, 6 pending"
    );
    h.wait(SETTLED).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-prod-usw2/acme-api runs 8 task(s), rollout settled"
    );
    assert_eq!(counts(&h).await, (8, 8, 0));
    assert_eq!(h.calls_of(UPDATE).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_count_already_set_sends_nothing_and_a_second_execution_neither() {
    let h = with_service("desired = 8");
    let ctx = h.ctx("ecs");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings[0].message,
        "acme-prod-usw2/acme-api already has a desired count of 8: nothing to send"
    );
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(
        done.summary,
        "already done: acme-prod-usw2/acme-api has a desired count of 8"
    );
    assert_eq!(h.mutations(), 0);
    assert!(verify(&ctx, &done).await.unwrap().passed);

    let h = Harness::prod();
    let ctx = h.ctx("ecs");
    execute(&ctx, None).await.unwrap();
    let again = execute(&ctx, None).await.unwrap();
    assert_eq!(
        again.summary,
        "already done: acme-prod-usw2/acme-api has a desired count of 8"
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_is_re_read_and_never_resent() {
    let h = Harness::prod();
    h.lose(UPDATE, 1);
    let ctx = h.ctx("ecs");
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(
        done.summary,
        "UpdateService sent to us-west-2: acme-prod-usw2/acme-api desired count 2 -> 8 \
         (response lost; a re-read confirms it)"
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1, "one UpdateService in all");
    assert_eq!(h.applied(), 1);
    let ops: Vec<&str> = h.calls().iter().map(|c| c.operation).collect();
    let sent = ops.iter().position(|op| *op == UPDATE).unwrap();
    assert!(ops[sent + 1..].iter().all(|op| *op == DESCRIBE), "{ops:?}");
    // A resumed run that executes again finds the count and sends nothing.
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_was_not_applied_is_retryable_and_the_next_attempt_reads_first() {
    let h = Harness::prod();
    h.fail(UPDATE, CloudErrorKind::Transient, None, 1);
    let ctx = h.ctx("ecs");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(h.calls_of(UPDATE).len(), 1);
    assert_eq!(counts(&h).await.0, 2, "nothing applied");
    let done = execute(&ctx, None).await.unwrap();
    assert!(
        done.summary.starts_with("UpdateService sent"),
        "{}",
        done.summary
    );
    assert_eq!(h.calls_of(UPDATE).len(), 2);
    // A refusal that says nothing was applied (access denied) is not re-read.
    let h = Harness::prod();
    h.fail(
        UPDATE,
        CloudErrorKind::AccessDenied,
        Some("AccessDeniedException"),
        1,
    );
    let ctx = h.ctx("ecs");
    let e = execute(&ctx, None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent);
    let ops: Vec<&str> = h.calls().iter().map(|c| c.operation).collect();
    assert_eq!(ops, [DESCRIBE, UPDATE]);
}

#[tokio::test(start_paused = true)]
async fn a_region_that_does_not_answer_gets_no_update() {
    let h = Harness::prod();
    h.down("us-west-2");
    let ctx = h.ctx("ecs");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_the_captured_count_and_waits_for_the_drain() {
    let h = Harness::prod();
    let ctx = h.ctx("ecs");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    h.wait(SETTLED).await;
    let rb = ctx.step.rollback.as_ref().unwrap();
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        "UpdateService sent to us-west-2: acme-prod-usw2/acme-api back to a desired count of 2"
    );
    assert_eq!(h.regions_of(UPDATE), ["us-west-2", "us-west-2"]);
    // The six tasks stopped drain first: still counted as running.
    let o = rollback_done(&ctx, rb, cap.as_ref()).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-prod-usw2/acme-api: waiting for 2 task(s): 8/2 running"
    );
    h.wait(SETTLED).await;
    let o = rollback_done(&ctx, rb, cap.as_ref()).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(counts(&h).await, (2, 2, 0));
    // Idempotent.
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        "already restored: acme-prod-usw2/acme-api has a desired count of 2"
    );
    assert_eq!(h.calls_of(UPDATE).len(), 2);
    // A capture that is not one restores nothing.
    let junk = Captured(serde_json::json!({ "region": "us-west-2", "desired_count": -1 }));
    assert!(rollback(&ctx, rb, Some(&junk), None).await.is_err());
    assert_eq!(h.calls_of(UPDATE).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_scale_in_stops_pending_tasks_at_once_and_drains_running_ones() {
    // Scaling back while the scale-up's tasks are still starting.
    let h = Harness::prod();
    let ctx = h.ctx("ecs");
    let cap = capture(&ctx).await.unwrap();
    execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(counts(&h).await, (8, 2, 6));
    let rb = ctx.step.rollback.as_ref().unwrap();
    rollback(&ctx, rb, cap.as_ref(), None).await.unwrap();
    assert_eq!(counts(&h).await, (2, 2, 0), "the PENDING tasks never ran");
    assert!(rollback_done(&ctx, rb, cap.as_ref()).await.unwrap().passed);
}

#[tokio::test(start_paused = true)]
async fn preflight_blocks_a_missing_service_a_missing_cluster_and_one_not_active() {
    let h = with_service("missing = true");
    let findings = preflight(&h.ctx("ecs")).await.unwrap();
    assert_eq!(
        findings,
        [Finding::block(
            "service acme-api not found in cluster acme-prod-usw2 in us-west-2 \
             (DescribeServices: MISSING)"
        )]
    );
    // Execute fails the same way, permanently, sending nothing.
    let e = execute(&h.ctx("ecs"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent);
    assert_eq!(h.mutations(), 0);

    let h = with_service("cluster_missing = true");
    let findings = preflight(&h.ctx("ecs")).await.unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Block);
    assert!(
        findings[0]
            .message
            .starts_with("cluster acme-prod-usw2 not found in us-west-2"),
        "{findings:?}"
    );

    let h = with_service("status = \"DRAINING\"");
    let findings = preflight(&h.ctx("ecs")).await.unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Block);
    assert!(
        findings[0]
            .message
            .starts_with("service acme-prod-usw2/acme-api is DRAINING"),
        "{findings:?}"
    );
    let e = execute(&h.ctx("ecs"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent);
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_in_progress_is_waited_for() {
    let h = with_service("deploying_until = \"5m\"");
    let ctx = h.ctx("ecs");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(findings[1].severity, Severity::Warn, "{findings:?}");
    assert_eq!(
        findings[1].message,
        "acme-prod-usw2/acme-api has 2 deployments (a rollout runs): the step waits until it \
         completes"
    );
    let done = execute(&ctx, None).await.unwrap();
    h.wait(SETTLED).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "acme-prod-usw2/acme-api: waiting for 8 task(s): 2 deployments"
    );
    h.wait(Duration::from_secs(300)).await;
    assert!(verify(&ctx, &done).await.unwrap().passed);
}

#[tokio::test(start_paused = true)]
async fn a_service_without_a_rollout_state_settles_on_its_counts() {
    let h = with_service("rollout_state = false");
    let ctx = h.ctx("ecs");
    let done = execute(&ctx, None).await.unwrap();
    h.wait(SETTLED).await;
    assert!(verify(&ctx, &done).await.unwrap().passed);
}

#[tokio::test(start_paused = true)]
async fn faults_on_the_reads_are_retryable_and_send_nothing() {
    let h = Harness::prod();
    h.fail(DESCRIBE, CloudErrorKind::Throttling, None, 1);
    let e = preflight(&h.ctx("ecs")).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Throttled);
    h.fail(DESCRIBE, CloudErrorKind::Transient, None, 1);
    let e = execute(&h.ctx("ecs"), None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(h.mutations(), 0);
}

#[test]
fn settled_means_the_counts_and_one_completed_primary_deployment() {
    let deployment = |status: &str, rollout: Option<&str>| EcsDeployment {
        id: "ecs-svc/1".into(),
        status: status.into(),
        rollout_state: rollout.map(str::to_string),
        running_count: 4,
        pending_count: 0,
    };
    let service = |running, pending, deployments| EcsService {
        arn: String::new(),
        name: "api".into(),
        cluster_arn: String::new(),
        status: ECS_ACTIVE.into(),
        desired_count: 4,
        running_count: running,
        pending_count: pending,
        launch_type: None,
        capacity_providers: vec!["FARGATE_SPOT".into()],
        deployments,
    };
    let done = |r| vec![deployment(ECS_PRIMARY, r)];
    assert_eq!(service(4, 0, done(Some("COMPLETED"))).settled_at(4), Ok(()));
    // No rolloutState (CODE_DEPLOY, EXTERNAL, a Classic Load Balancer): the counts.
    assert_eq!(service(4, 0, done(None)).settled_at(4), Ok(()));
    assert_eq!(
        service(3, 1, done(Some("IN_PROGRESS"))).settled_at(4),
        Err("3/4 running, 1 pending, rollout IN_PROGRESS".into())
    );
    let two = vec![deployment(ECS_PRIMARY, None), deployment("ACTIVE", None)];
    assert_eq!(
        service(4, 0, two).settled_at(4),
        Err("2 deployments".into())
    );
    assert_eq!(
        service(4, 0, Vec::new()).settled_at(4),
        Err("no deployment".into())
    );
    assert_eq!(
        service(4, 0, done(None)).settled_at(5),
        Err("desiredCount is 4, 4/5 running".into())
    );
    assert_eq!(
        service(4, 0, done(None)).placement(),
        "capacity providers FARGATE_SPOT"
    );
}

#[tokio::test(start_paused = true)]
async fn iam_needs_are_the_services_arn_and_calls_are_probed_in_its_region() {
    let h = Harness::prod();
    let needs = crate::runbook::iam::needs_by_step(&h.runbook)
        .into_iter()
        .find(|(id, _)| id.as_str() == "ecs")
        .map(|(_, n)| n)
        .unwrap();
    let got: Vec<(String, String)> = needs.into_iter().map(|n| (n.action, n.resource)).collect();
    let arn = "arn:aws:ecs:us-west-2:111122223333:service/acme-prod-usw2/acme-api";
    assert_eq!(
        got,
        [
            ("ecs:DescribeServices".to_string(), arn.to_string()),
            ("ecs:UpdateService".into(), arn.into()),
        ]
    );
    let probed = crate::actions::reach::probe_targets(&h.runbook);
    assert!(
        probed
            .iter()
            .any(|t| t.region == "us-west-2" && t.service == crate::cloud::reach::Service::Ecs),
        "{probed:?}"
    );
}
