//! S3 replication: object statuses, both regions, unversioned destinations, backlogs.

use super::*;

#[tokio::test(start_paused = true)]
async fn s3_objects_replicate_pending_completed_replica() {
    let w = world();
    let rules = w.replication_rules(SRC).await.unwrap();
    assert_eq!(
        (
            rules.len(),
            rules[0].enabled,
            rules[0].destination_bucket.as_str()
        ),
        (1, true, DST)
    );
    assert!(w.replication_rules(DST).await.unwrap().is_empty());
    assert!(w.versioning_enabled(DST).await.unwrap());
    assert_eq!(
        w.replication_backlog(SRC, &[])
            .await
            .unwrap()
            .map(|b| b.operations),
        Some(0)
    );
    assert_eq!(
        w.replication_backlog(DST, &[]).await.unwrap(),
        None,
        "no replication configured"
    );
    w.put_object(SRC, "canary/1", b"x").await.unwrap();
    assert_eq!(
        w.replication_status(SRC, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Pending)
    );
    // One pending object of one byte.
    assert_eq!(
        w.replication_backlog(SRC, &[]).await.unwrap(),
        Some(crate::cloud::ReplicationBacklog {
            operations: 1,
            bytes: Some(1)
        })
    );
    assert_eq!(
        w.replication_status(DST, "canary/1")
            .await
            .unwrap_err()
            .kind,
        K::NotFound
    );
    wait(30).await;
    assert_eq!(
        w.replication_status(SRC, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Completed)
    );
    assert_eq!(
        w.replication_status(DST, "canary/1").await.unwrap(),
        Some(ReplicationStatus::Replica)
    );
    assert_eq!(
        w.replication_backlog(SRC, &[])
            .await
            .unwrap()
            .map(|b| b.operations),
        Some(0)
    );
    let e = w.put_object("nope", "k", b"x").await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("NoSuchBucket"))
    );
    // A bucket without replication has objects without a status.
    w.put_object(DST, "local", b"x").await.unwrap();
    assert_eq!(w.replication_status(DST, "local").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn s3_replication_waits_for_both_regions() {
    let w = world_with(
        "[regions.us-west-2]\nunreachable_from = \"0s\"\nunreachable_until = \"10m\"\n",
        1,
    );
    w.put_object(SRC, "k", b"x").await.unwrap();
    wait(300).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Pending)
    );
    assert_eq!(
        w.replication_status(DST, "k").await.unwrap_err().kind,
        K::Unreachable
    );
    wait(301).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Completed)
    );
    assert_eq!(
        w.replication_status(DST, "k").await.unwrap(),
        Some(ReplicationStatus::Replica)
    );
}

#[tokio::test(start_paused = true)]
async fn s3_replication_fails_to_an_unversioned_destination_and_backlogs_drain() {
    let w = world_with(
        "[buckets.acme-prod-assets-usw2]\nversioning = false\n\
         [buckets.acme-prod-assets-use1]\nbacklog = 1500\nbacklog_clears = \"2m\"\n",
        1,
    );
    assert_eq!(
        w.replication_backlog(SRC, &[])
            .await
            .unwrap()
            .map(|b| b.operations),
        Some(1500)
    );
    // The config's backlog is operations only: its bytes are unknown, not 0.
    assert_eq!(
        w.replication_backlog(SRC, &[])
            .await
            .unwrap()
            .and_then(|b| b.bytes),
        None
    );
    w.put_object(SRC, "k", b"x").await.unwrap();
    wait(31).await;
    assert_eq!(
        w.replication_status(SRC, "k").await.unwrap(),
        Some(ReplicationStatus::Failed)
    );
    wait(90).await;
    assert_eq!(
        w.replication_backlog(SRC, &[])
            .await
            .unwrap()
            .map(|b| b.operations),
        Some(0)
    );
    let w = world_with(
        "[buckets.acme-prod-assets-use1]\nreplication_enabled = false\n",
        1,
    );
    assert!(!w.replication_rules(SRC).await.unwrap()[0].enabled);
    w.put_object(SRC, "k", b"x").await.unwrap();
    assert_eq!(w.replication_status(SRC, "k").await.unwrap(), None);
}
