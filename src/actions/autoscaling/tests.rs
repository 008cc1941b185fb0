//! `autoscaling.set_capacity` against the simulated world.

use std::time::Duration;

use super::super::testing::{Harness, RUNBOOK};
use super::super::{ActionErrorKind, capture, execute, preflight, rollback, rollback_done, verify};
use super::*;
use crate::actions::Severity;
use crate::cloud::AsgInstance;

const UPDATE: &str = "UpdateAutoScalingGroup";
const DESCRIBE: &str = "DescribeAutoScalingGroups";
const GROUP: &str = "acme-workers-usw2";
/// Longer than any launch or termination of the world (60-180 s, 30-90 s).
const SETTLED: Duration = Duration::from_secs(200);

fn sizes(min: u32, desired: u32, max: u32) -> GroupSizes {
    GroupSizes {
        min_size: min,
        desired_capacity: desired,
        max_size: max,
    }
}

async fn group(h: &Harness) -> AutoScalingGroup {
    h.cloud
        .autoscaling
        .describe_group("us-west-2", GROUP)
        .await
        .unwrap()
        .unwrap()
}

fn with_group(config: &str) -> Harness {
    Harness::new(
        RUNBOOK,
        &format!("[autoscaling_groups.{GROUP}]\n{config}\n"),
    )
}

/// [`RUNBOOK`] with the group step's sizes replaced.
fn with_sizes(text: &str) -> String {
    RUNBOOK.replacen("min_size = 2\ndesired_capacity = 4\nmax_size = 8", text, 1)
}

#[tokio::test(start_paused = true)]
async fn a_scale_out_is_sent_once_to_the_region_and_verify_waits_for_in_service() {
    let h = Harness::prod();
    let ctx = h.ctx("asg");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings,
        [Finding::ok(
            "acme-workers-usw2 is at min 0, desired 1, max 8 with 1 instance(s); the step sets \
             min 2, desired 4, max 8"
        )]
    );
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(
        done.summary,
        "UpdateAutoScalingGroup sent to us-west-2: acme-workers-usw2 min 0, desired 1, max 8 \
         -> min 2, desired 4, max 8"
    );
    assert_eq!(h.regions_of(UPDATE), ["us-west-2"]);
    assert_eq!(h.mutations(), 1);
    assert_eq!(
        done.output,
        serde_json::json!({
            "region": "us-west-2", "group": GROUP,
            "sizes": {"min_size": 2, "desired_capacity": 4, "max_size": 8},
            "previous": {"min_size": 0, "desired_capacity": 1, "max_size": 8}
        })
    );
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-workers-usw2: waiting for 4 instance(s): 1/4 InService and Healthy, 3 launching"
    );
    h.wait(SETTLED).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-workers-usw2 runs 4 instance(s) InService and Healthy"
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn sizes_already_set_send_nothing_and_a_second_execution_neither() {
    let h = with_group("min_size = 2\ndesired_capacity = 4\nmax_size = 8");
    let ctx = h.ctx("asg");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings[0].message,
        "acme-workers-usw2 already is at min 2, desired 4, max 8: nothing to send"
    );
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(
        done.summary,
        "already done: acme-workers-usw2 is at min 2, desired 4, max 8"
    );
    assert_eq!(h.mutations(), 0);
    assert!(verify(&ctx, &done).await.unwrap().passed);

    let h = Harness::prod();
    let ctx = h.ctx("asg");
    execute(&ctx, None).await.unwrap();
    let again = execute(&ctx, None).await.unwrap();
    assert!(
        again.summary.starts_with("already done"),
        "{}",
        again.summary
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_is_re_read_and_never_resent() {
    let h = Harness::prod();
    h.lose(UPDATE, 1);
    let ctx = h.ctx("asg");
    let done = execute(&ctx, None).await.unwrap();
    assert!(
        done.summary
            .ends_with("-> min 2, desired 4, max 8 (response lost; a re-read confirms it)"),
        "{}",
        done.summary
    );
    assert_eq!(h.calls_of(UPDATE).len(), 1, "one update in all");
    assert_eq!(h.applied(), 1);
    let ops: Vec<&str> = h.calls().iter().map(|c| c.operation).collect();
    let sent = ops.iter().position(|op| *op == UPDATE).unwrap();
    assert!(ops[sent + 1..].iter().all(|op| *op == DESCRIBE), "{ops:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_was_not_applied_is_retryable_and_the_next_attempt_reads_first() {
    let h = Harness::prod();
    h.fail(UPDATE, CloudErrorKind::Transient, None, 1);
    let ctx = h.ctx("asg");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(group(&h).await.sizes, sizes(0, 1, 8), "nothing applied");
    let done = execute(&ctx, None).await.unwrap();
    assert!(done.summary.starts_with(UPDATE), "{}", done.summary);
    assert_eq!(h.calls_of(UPDATE).len(), 2);
    // Another update of the group in progress: AWS's ScalingActivityInProgress is read
    // as a state to wait out, re-read, and not resent by the action.
    let h = Harness::prod();
    h.fail(
        UPDATE,
        CloudErrorKind::InvalidState,
        Some("ScalingActivityInProgress"),
        1,
    );
    let e = execute(&h.ctx("asg"), None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent);
    assert_eq!(h.calls_of(UPDATE).len(), 1);
    assert!(h.calls_of(DESCRIBE).len() > 1, "re-read after the refusal");
}

#[tokio::test(start_paused = true)]
async fn merged_sizes_out_of_order_are_refused_before_sending() {
    // Only a new maximum, below the current desired capacity: AWS would lower the
    // desired capacity silently; the step refuses instead.
    let h = Harness::new(
        &with_sizes("max_size = 3"),
        &format!(
            "[autoscaling_groups.{GROUP}]\nmin_size = 1\ndesired_capacity = 5\nmax_size = 6\n"
        ),
    );
    let ctx = h.ctx("asg");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings,
        [Finding::block(
            "acme-workers-usw2 would have min 1, desired 5, max 3 (now min 1, desired 5, max \
             6): Auto Scaling needs min <= desired <= max; give the other sizes in the step too"
        )]
    );
    let e = execute(&ctx, None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent);
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_all_three_sizes_and_waits_for_the_termination() {
    let h = Harness::prod();
    let ctx = h.ctx("asg");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    h.wait(SETTLED).await;
    let rb = ctx.step.rollback.as_ref().unwrap();
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        "UpdateAutoScalingGroup sent to us-west-2: acme-workers-usw2 back to min 0, desired \
         1, max 8"
    );
    let o = rollback_done(&ctx, rb, cap.as_ref()).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(
        o.observed,
        "acme-workers-usw2: waiting for 1 instance(s): 3 terminating"
    );
    h.wait(SETTLED).await;
    assert!(rollback_done(&ctx, rb, cap.as_ref()).await.unwrap().passed);
    let g = group(&h).await;
    assert_eq!((g.sizes, g.instances.len()), (sizes(0, 1, 8), 1));
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        "already restored: acme-workers-usw2 is at min 0, desired 1, max 8"
    );
    assert_eq!(h.calls_of(UPDATE).len(), 2);
    let junk = Captured(serde_json::json!({ "region": "us-west-2", "group": GROUP }));
    assert!(rollback(&ctx, rb, Some(&junk), None).await.is_err());
    assert_eq!(h.calls_of(UPDATE).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn preflight_blocks_a_missing_group_one_being_deleted_and_a_suspended_launch() {
    let h = with_group("missing = true");
    let findings = preflight(&h.ctx("asg")).await.unwrap();
    assert_eq!(
        findings,
        [Finding::block(
            "Auto Scaling group acme-workers-usw2 not found in us-west-2 \
             (DescribeAutoScalingGroups returned none)"
        )]
    );
    assert_eq!(
        execute(&h.ctx("asg"), None).await.unwrap_err().kind,
        ActionErrorKind::Permanent
    );

    let h = with_group("deleting = true");
    let findings = preflight(&h.ctx("asg")).await.unwrap();
    assert_eq!(
        findings,
        [Finding::block(
            "acme-workers-usw2 is being deleted (Delete in progress): its sizes cannot change"
        )]
    );
    assert!(execute(&h.ctx("asg"), None).await.is_err());
    assert_eq!(h.mutations(), 0);

    let h = with_group("suspended_processes = [\"Launch\", \"Terminate\"]");
    let findings = preflight(&h.ctx("asg")).await.unwrap();
    let severities: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        severities,
        [Severity::Ok, Severity::Block, Severity::Warn],
        "{findings:?}"
    );
    assert!(
        findings[1]
            .message
            .starts_with("acme-workers-usw2 has its Launch process suspended"),
        "{findings:?}"
    );
    // Sent anyway (preflight is what stops a run): the sizes change, nothing launches.
    let done = execute(&h.ctx("asg"), None).await.unwrap();
    h.wait(SETTLED).await;
    let o = verify(&h.ctx("asg"), &done).await.unwrap();
    assert!(!o.passed);
    assert_eq!(
        o.observed,
        "acme-workers-usw2: waiting for 4 instance(s): 1/4 InService and Healthy"
    );
}

#[tokio::test(start_paused = true)]
async fn faults_on_the_reads_and_a_dead_region_send_nothing() {
    let h = Harness::prod();
    h.fail(DESCRIBE, CloudErrorKind::Throttling, None, 1);
    assert_eq!(
        preflight(&h.ctx("asg")).await.unwrap_err().kind,
        ActionErrorKind::Throttled
    );
    h.down("us-west-2");
    let e = execute(&h.ctx("asg"), None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn iam_needs_the_groups_arn_pattern_and_describe_on_everything() {
    let h = Harness::prod();
    let needs = crate::runbook::iam::needs_by_step(&h.runbook)
        .into_iter()
        .find(|(id, _)| id.as_str() == "asg")
        .map(|(_, n)| n)
        .unwrap();
    let got: Vec<(String, String)> = needs.into_iter().map(|n| (n.action, n.resource)).collect();
    assert_eq!(
        got,
        [
            (
                "autoscaling:DescribeAutoScalingGroups".to_string(),
                "*".to_string()
            ),
            (
                "autoscaling:UpdateAutoScalingGroup".into(),
                "arn:aws:autoscaling:us-west-2:111122223333:autoScalingGroup:*:\
                 autoScalingGroupName/acme-workers-usw2"
                    .into()
            ),
        ]
    );
}

#[test]
fn settled_means_desired_in_service_and_healthy_and_nothing_moving() {
    let instance = |state: &str, health: &str| AsgInstance {
        id: "i-0".into(),
        lifecycle_state: state.into(),
        health_status: health.into(),
    };
    let g = |instances| AutoScalingGroup {
        name: "g".into(),
        arn: String::new(),
        status: None,
        sizes: sizes(0, 2, 4),
        instances,
        suspended_processes: Vec::new(),
    };
    let up = || instance("InService", "Healthy");
    assert_eq!(g(vec![up(), up()]).settled(), Ok(()));
    assert_eq!(
        g(vec![up(), instance("InService", "Unhealthy")]).settled(),
        Err("1/2 InService and Healthy".into())
    );
    assert_eq!(
        g(vec![up(), up(), instance("Pending:Wait", "Healthy")]).settled(),
        Err("1 launching".into())
    );
    assert_eq!(
        g(vec![up(), up(), instance("Terminating:Wait", "Healthy")]).settled(),
        Err("1 terminating".into())
    );
    assert_eq!(
        g(Vec::new()).settled(),
        Err("0/2 InService and Healthy".into())
    );
}
