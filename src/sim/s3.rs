//! S3 buckets and cross-region replication in the simulated world.
//!
//! A bucket answers from its own region. An object written to a bucket with an
//! enabled rule (and versioning, which S3 requires for replication) is `PENDING`,
//! then after a seeded delay `COMPLETED` at the source and `REPLICA` at the
//! destination; `FAILED` when the destination is missing or unversioned. Replication
//! waits while either region is unreachable. The backlog metric
//! (`OperationsPendingReplication`) counts pending objects plus any initial backlog a
//! `--sim-config` gives.

use async_trait::async_trait;
use serde_json::json;

use super::state::{SimObject, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    CloudErrorKind as K, CloudResult, ReplicationBacklog, ReplicationRule, ReplicationStatus, S3,
};

const NO_BUCKET: &str = "NoSuchBucket";

fn no_bucket(op: &str, bucket: &str) -> crate::cloud::CloudError {
    fail(
        K::NotFound,
        op,
        None,
        NO_BUCKET,
        format!("bucket {bucket} does not exist"),
    )
}

impl State {
    fn put(
        &mut self,
        bucket: &str,
        key: &str,
        size: u64,
        now: std::time::Duration,
    ) -> CloudResult<()> {
        const OP: &str = "PutObject";
        if key.is_empty() || key.len() > 1024 {
            return Err(fail(
                K::InvalidRequest,
                OP,
                None,
                "KeyTooLongError",
                "an object key is 1 to 1024 bytes",
            ));
        }
        let Some(b) = self.buckets.get(bucket) else {
            return Err(no_bucket(OP, bucket));
        };
        let destination = b
            .versioning
            .then(|| {
                b.rules
                    .iter()
                    .find(|r| r.enabled && key.starts_with(&r.prefix))
            })
            .flatten()
            .map(|r| r.destination.clone());
        let due = match destination {
            Some(_) => Some(now.saturating_add(self.duration(
                &format!("s3:replication:{bucket}"),
                self.timing.s3_replication,
            ))),
            None => None,
        };
        if let Some(b) = self.buckets.get_mut(bucket) {
            b.objects.insert(
                key.to_string(),
                SimObject {
                    size,
                    status: destination.as_ref().map(|_| ReplicationStatus::Pending),
                    due,
                    destination,
                },
            );
        }
        Ok(())
    }

    /// The pending objects, plus the config's `backlog` (operations only: its bytes are
    /// not modelled, so with one the bytes are unknown).
    fn backlog(&self, bucket: &str, now: std::time::Duration) -> Option<ReplicationBacklog> {
        let b = self.buckets.get(bucket)?;
        if !b.rules.iter().any(|r| r.enabled) {
            return None;
        }
        let synthetic = if b.backlog_clears.is_some_and(|t| now >= t) {
            0
        } else {
            b.backlog
        };
        let (pending, bytes) = b
            .objects
            .values()
            .filter(|o| o.status == Some(ReplicationStatus::Pending))
            .fold((0u64, 0u64), |(n, bytes), o| {
                (n + 1, bytes.saturating_add(o.size))
            });
        Some(ReplicationBacklog {
            operations: synthetic.saturating_add(pending),
            bytes: (synthetic == 0).then_some(bytes),
        })
    }
}

#[async_trait]
impl S3 for SimWorld {
    async fn replication_rules(&self, bucket: &str) -> CloudResult<Vec<ReplicationRule>> {
        const OP: &str = "GetBucketReplication";
        self.call("s3", OP, Route::Bucket(bucket), false, json!({}), |s, _| {
            let b = s.buckets.get(bucket).ok_or_else(|| no_bucket(OP, bucket))?;
            Ok(b.rules
                .iter()
                .map(|r| ReplicationRule {
                    id: r.id.clone(),
                    enabled: r.enabled,
                    destination_bucket: r.destination.clone(),
                    prefix: Some(r.prefix.clone()),
                })
                .collect())
        })
        .await
    }

    async fn versioning_enabled(&self, bucket: &str) -> CloudResult<bool> {
        const OP: &str = "GetBucketVersioning";
        self.call("s3", OP, Route::Bucket(bucket), false, json!({}), |s, _| {
            s.buckets
                .get(bucket)
                .map(|b| b.versioning)
                .ok_or_else(|| no_bucket(OP, bucket))
        })
        .await
    }

    async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> CloudResult<()> {
        let size = body.len() as u64;
        let args = json!({ "bucket": bucket, "key": key, "size": size });
        self.call(
            "s3",
            "PutObject",
            Route::Bucket(bucket),
            true,
            args,
            |s, now| s.put(bucket, key, size, now),
        )
        .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CloudResult<()> {
        const OP: &str = "DeleteObject";
        let args = json!({ "bucket": bucket, "key": key });
        self.call("s3", OP, Route::Bucket(bucket), true, args, |s, _| {
            let b = s
                .buckets
                .get_mut(bucket)
                .ok_or_else(|| no_bucket(OP, bucket))?;
            b.objects.remove(key);
            Ok(())
        })
        .await
    }

    async fn replication_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> CloudResult<Option<ReplicationStatus>> {
        const OP: &str = "HeadObject";
        self.call("s3", OP, Route::Bucket(bucket), false, json!({}), |s, _| {
            let b = s.buckets.get(bucket).ok_or_else(|| no_bucket(OP, bucket))?;
            b.objects.get(key).map(|o| o.status).ok_or_else(|| {
                fail(
                    K::NotFound,
                    OP,
                    None,
                    "NoSuchKey",
                    format!("object {key} does not exist in {bucket}"),
                )
            })
        })
        .await
    }

    async fn replication_backlog(
        &self,
        bucket: &str,
        _rules: &[ReplicationRule],
    ) -> CloudResult<Option<ReplicationBacklog>> {
        // The world keeps one backlog per bucket (all its rules together).
        self.call(
            "cloudwatch",
            "GetMetricData",
            Route::Bucket(bucket),
            false,
            json!({}),
            |s, now| Ok(s.backlog(bucket, now)),
        )
        .await
    }
}
