//! `aurora.serverless_capacity` against the simulated world.

use std::time::Duration;

use super::super::super::testing::{Harness, RUNBOOK, USW2};
use super::super::super::{
    ActionErrorKind, capture, execute, preflight, rollback, rollback_done, verify,
};
use super::*;
use crate::actions::Severity;

const MODIFY: &str = "ModifyDBCluster";
/// Longer than any `modifying` period of the world (5-20 s).
const SETTLED: Duration = Duration::from_secs(30);

fn range(min: f64, max: f64) -> CapacityRange {
    CapacityRange {
        min: Acu::from_f64(min).unwrap(),
        max: Acu::from_f64(max).unwrap(),
    }
}

async fn usw2_range(h: &Harness) -> (String, Option<CapacityRange>) {
    let c = h.cloud.rds.describe_cluster(USW2).await.unwrap();
    (c.status, c.scaling)
}

/// [`RUNBOOK`] with the capacity step's range replaced.
fn with_range(min: &str, max: &str) -> String {
    RUNBOOK.replacen(
        "min_acu = 2\nmax_acu = 64",
        &format!("min_acu = {min}\nmax_acu = {max}"),
        1,
    )
}

#[tokio::test(start_paused = true)]
async fn the_range_is_sent_once_to_the_clusters_region_and_the_gate_waits_for_available() {
    let h = Harness::prod();
    let ctx = h.ctx("capacity");
    let findings = preflight(&ctx).await.unwrap();
    assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    assert_eq!(
        done.summary,
        "ModifyDBCluster sent to us-west-2: acme-prod-usw2 0.5-8 ACUs -> 2-64 ACUs"
    );
    assert_eq!(h.regions_of(MODIFY), ["us-west-2"]);
    assert_eq!(h.mutations(), 1);
    assert_eq!(
        done.output,
        serde_json::json!({
            "cluster": USW2, "region": "us-west-2",
            "range": {"min": 2, "max": 64}, "previous": {"min": 0.5, "max": 8}
        })
    );
    // The new range shows at once, but the cluster is still modifying: not yet.
    let o = verify(&ctx, &done).await.unwrap();
    assert!(!o.passed, "{o:?}");
    assert_eq!(o.observed, "acme-prod-usw2 is modifying at 2-64 ACUs");
    h.wait(SETTLED).await;
    let o = verify(&ctx, &done).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(o.observed, "acme-prod-usw2 is available at 2-64 ACUs");
}

#[tokio::test(start_paused = true)]
async fn a_range_already_set_sends_nothing() {
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\nmin_acu = 2\nmax_acu = 64\n",
    );
    let ctx = h.ctx("capacity");
    let findings = preflight(&ctx).await.unwrap();
    assert_eq!(
        findings[0].message,
        "acme-prod-usw2 already is at 2-64 ACUs: nothing to do"
    );
    let done = execute(&ctx, None).await.unwrap();
    assert_eq!(done.summary, "already done: acme-prod-usw2 is at 2-64 ACUs");
    assert_eq!(h.mutations(), 0);
    assert!(verify(&ctx, &done).await.unwrap().passed);

    // And after a first execution, a second (a resumed run) sends nothing either.
    let h = Harness::prod();
    let ctx = h.ctx("capacity");
    execute(&ctx, None).await.unwrap();
    let again = execute(&ctx, None).await.unwrap();
    assert_eq!(
        again.summary,
        "already done: acme-prod-usw2 is at 2-64 ACUs"
    );
    assert_eq!(h.calls_of(MODIFY).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_is_re_read_and_never_resent() {
    let h = Harness::prod();
    h.lose(MODIFY, 1);
    let ctx = h.ctx("capacity");
    let done = execute(&ctx, None).await.unwrap();
    assert!(
        done.summary
            .ends_with("-> 2-64 ACUs (response lost; a re-read confirms it)"),
        "{}",
        done.summary
    );
    assert_eq!(h.calls_of(MODIFY).len(), 1, "one ModifyDBCluster in all");
    assert_eq!(h.applied(), 1);
    // Reads came after the lost answer, none of them a resend.
    let ops: Vec<&str> = h.calls().iter().map(|c| c.operation).collect();
    let sent = ops.iter().position(|op| *op == MODIFY).unwrap();
    assert!(
        ops[sent + 1..].iter().all(|op| *op == "DescribeDBClusters"),
        "{ops:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_that_was_not_applied_is_not_resent_by_the_action() {
    // Failed without taking effect (a 5xx): the re-reads show the old range, the step
    // fails retryable and its next attempt reads before sending.
    let h = Harness::prod();
    h.fail(MODIFY, CloudErrorKind::Transient, None, 1);
    let ctx = h.ctx("capacity");
    let e = execute(&ctx, None).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(h.calls_of(MODIFY).len(), 1);
    assert_eq!(usw2_range(&h).await.1, Some(range(0.5, 8.0)));
    let done = execute(&ctx, None).await.unwrap();
    assert!(
        done.summary.starts_with("ModifyDBCluster sent"),
        "{}",
        done.summary
    );
    assert_eq!(h.calls_of(MODIFY).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_modifying_cluster_is_waited_for_not_sent_to() {
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n",
    );
    let ctx = h.ctx("capacity");
    let e = execute(&ctx, None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Retryable);
    assert_eq!(
        e.message,
        "acme-prod-usw2 is modifying; ModifyDBCluster is sent once it is available"
    );
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_the_captured_range_and_knows_when_it_is_back() {
    let h = Harness::prod();
    let ctx = h.ctx("capacity");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    let rb = ctx.step.rollback.as_ref().unwrap();
    // The step's own change is still modifying: the rollback waits for it, then sends.
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(
        s,
        "ModifyDBCluster sent to us-west-2: acme-prod-usw2 back to 0.5-8 ACUs"
    );
    assert_eq!(h.regions_of(MODIFY), ["us-west-2", "us-west-2"]);
    let o = rollback_done(&ctx, rb, cap.as_ref()).await.unwrap();
    assert!(!o.passed, "modifying: {o:?}");
    h.wait(SETTLED).await;
    let o = rollback_done(&ctx, rb, cap.as_ref()).await.unwrap();
    assert!(o.passed, "{o:?}");
    assert_eq!(
        usw2_range(&h).await,
        ("available".into(), Some(range(0.5, 8.0)))
    );
    // Idempotent.
    let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
    assert_eq!(s, "already restored: acme-prod-usw2 is at 0.5-8 ACUs");
    assert_eq!(h.calls_of(MODIFY).len(), 2);
    // A capture that is not one restores nothing.
    let junk = Captured(serde_json::json!({ "cluster": USW2, "range": { "min": 0.3, "max": 8 } }));
    assert!(rollback(&ctx, rb, Some(&junk), None).await.is_err());
    assert_eq!(h.calls_of(MODIFY).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn rollback_never_shrinks_a_standby_that_became_the_writer() {
    let h = Harness::prod();
    let ctx = h.ctx("capacity");
    let cap = capture(&ctx).await.unwrap();
    let done = execute(&ctx, cap.as_ref()).await.unwrap();
    h.wait(SETTLED).await;
    // The promotion the capacity was raised for (an unplanned failover has no rollback).
    h.cloud
        .rds
        .failover_global_cluster("us-west-2", "acme-prod", USW2, true)
        .await
        .unwrap();
    h.wait(Duration::from_secs(600)).await;
    let g = h
        .cloud
        .rds
        .describe_global_cluster("us-west-2", "acme-prod")
        .await
        .unwrap();
    assert_eq!(g.writer().unwrap().cluster_arn, USW2);
    let rb = ctx.step.rollback.as_ref().unwrap();
    let e = rollback(&ctx, rb, cap.as_ref(), Some(&done))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Permanent, "{e}");
    assert!(
        e.message
            .contains("has become its global database's writer"),
        "{e}"
    );
    // One ModifyDBCluster: the step's. The writer keeps its production range.
    assert_eq!(h.regions_of(MODIFY), ["us-west-2"]);
    assert_eq!(
        usw2_range(&h).await,
        ("available".into(), Some(range(2.0, 64.0)))
    );
}

#[tokio::test(start_paused = true)]
async fn preflight_blocks_a_cluster_with_provisioned_instances() {
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-usw2]\ninstance_class = \"db.r6g.large\"\n",
    );
    let findings = preflight(&h.ctx("capacity")).await.unwrap();
    let blocks: Vec<&Finding> = findings.iter().filter(|f| !f.allows()).collect();
    assert_eq!(blocks.len(), 1, "{findings:?}");
    assert_eq!(
        blocks[0].message,
        "acme-prod-usw2 has provisioned instances (acme-prod-usw2-1 is db.r6g.large): a \
         capacity range sizes only db.serverless instances, so the step would not change \
         what they can carry"
    );
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn auto_pause_for_a_global_database_member_is_refused_with_the_reason() {
    let h = Harness::new(&with_range("0", "64"), "");
    let ctx = h.ctx("capacity");
    let findings = preflight(&ctx).await.unwrap();
    let blocks: Vec<&str> = findings
        .iter()
        .filter(|f| !f.allows())
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        blocks,
        [format!(
            "acme-prod-usw2 is a member of global cluster acme-prod: {AUTO_PAUSE_IN_GLOBAL}"
        )]
    );
    // And the action itself refuses, sending nothing.
    let e = execute(&ctx, None).await.unwrap_err();
    assert_eq!(e.kind, ActionErrorKind::Refused);
    assert!(
        e.message
            .contains("does not allow for a cluster of an Aurora global database")
    );
    assert_eq!(h.mutations(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_max_below_the_primarys_capacity_now_blocks() {
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-use1]\nmax_acu = 128\ncapacity = 100\n",
    );
    let findings = preflight(&h.ctx("capacity")).await.unwrap();
    let blocks: Vec<&str> = findings
        .iter()
        .filter(|f| !f.allows())
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        blocks,
        [
            "the primary acme-prod-use1 runs at 100 ACUs now (ServerlessDatabaseCapacity), \
          above max_acu 64: promoted with this range, acme-prod-usw2 could not carry its load"
        ]
    );
    // The same load within the new maximum is fine, and said.
    let h = Harness::new(
        &with_range("2", "128"),
        "[clusters.acme-prod-use1]\nmax_acu = 128\ncapacity = 100\n",
    );
    let findings = preflight(&h.ctx("capacity")).await.unwrap();
    assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.message
                == "the primary acme-prod-use1 runs at 100 ACUs now, within max_acu 128"),
        "{findings:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_primary_capacity_is_a_warning_never_a_block() {
    // The primary's region is down: its metric cannot be read.
    let h = Harness::prod();
    h.down("us-east-1");
    let findings = preflight(&h.ctx("capacity")).await.unwrap();
    assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
    let warning = findings
        .iter()
        .find(|f| f.severity == Severity::Warn)
        .unwrap_or_else(|| panic!("a warning: {findings:?}"));
    assert!(
        warning
            .message
            .starts_with("the primary acme-prod-use1's current capacity could not be read"),
        "{warning:?}"
    );
    // A provisioned primary publishes no ServerlessDatabaseCapacity: unknown too.
    let h = Harness::new(
        RUNBOOK,
        "[clusters.acme-prod-use1]\ninstance_class = \"db.r6g.large\"\n",
    );
    let findings = preflight(&h.ctx("capacity")).await.unwrap();
    assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
    assert!(
        findings.iter().any(|f| f.is_warning()
            && f.message.starts_with(
                "the primary acme-prod-use1's current capacity is unknown (no recent \
                 ServerlessDatabaseCapacity datapoint"
            )),
        "{findings:?}"
    );
}

#[test]
fn a_range_the_runbook_gets_wrong_is_an_error_naming_the_field() {
    let render = |text: &str| match crate::runbook::load_str(std::path::Path::new("rb.toml"), text)
    {
        Ok(_) => panic!("loads"),
        Err(e) => e.render(crate::runbook::RenderStyle::Short),
    };
    let out = render(&with_range("8", "4"));
    assert!(
        out.contains("error: step `capacity`: min_acu (8) is above max_acu (4)"),
        "{out}"
    );
    let out = render(&with_range("2.25", "64"));
    assert!(
        out.contains("`min_acu` in step `capacity` is invalid: 2.25 is not a multiple of 0.5"),
        "{out}"
    );
    let out = render(&with_range("2", "0.5"));
    assert!(
        out.contains("`max_acu` in step `capacity` is invalid: 0.5 ACUs is outside 1 to 256"),
        "{out}"
    );
    let out = render(&with_range("\"2\"", "64"));
    assert!(
        out.contains("write the number without quotes: min_acu = 8"),
        "{out}"
    );
}
