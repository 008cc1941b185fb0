//! S3: the state store's objects, and replication of the runbook's buckets.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Guarded, MetricQuery, map_sdk_error, newest_datapoints};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    CloudError, CloudErrorKind, CloudResult, PutCondition, ReplicationBacklog, ReplicationRule,
    ReplicationStatus, S3, StateObjects, StoredObject,
};

/// `arn:aws:s3:::NAME` (or a bare name) to the bucket name.
pub(super) fn bucket_name(dest: &str) -> String {
    dest.strip_prefix("arn:aws:s3:::")
        .or_else(|| dest.rsplit(":::").next())
        .unwrap_or(dest)
        .to_string()
}

/// Gives a conditional write's refusal its code even when S3 sent none (a 412 or 409
/// with an empty body, as a HEAD-like answer may be), so callers match on the code.
fn condition_code(mut err: CloudError, status: Option<u16>) -> CloudError {
    if err.code.is_none() {
        match status {
            Some(412) => err.code = Some("PreconditionFailed".into()),
            Some(409) => err.code = Some("ConditionalRequestConflict".into()),
            _ => {}
        }
    }
    err
}

#[async_trait]
impl StateObjects for AwsCloud {
    async fn put_state(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: PutCondition,
    ) -> CloudResult<String> {
        const OP: &str = "PutObject";
        let region = self.bucket_region(bucket).await?;
        let req = self
            .s3(&region)
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body));
        let req = match condition {
            PutCondition::IfAbsent => req.if_none_match("*"),
            PutCondition::IfMatch(etag) => req.if_match(etag),
        };
        let send = async {
            let res = req
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            match res {
                Ok(out) => out.e_tag().map(str::to_string).ok_or_else(|| {
                    CloudError::new(
                        CloudErrorKind::Transient,
                        OP,
                        Some(&region),
                        format!("s3://{bucket}/{key}: the answer has no ETag"),
                    )
                }),
                Err(e) => {
                    let status = e.raw_response().map(|r| r.status().as_u16());
                    Err(condition_code(map_sdk_error(OP, Some(&region), e), status))
                }
            }
        };
        self.reach()
            .call(OP, &region, Service::S3, CallKind::Write, send)
            .await
    }

    async fn get_state(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredObject>> {
        const OP: &str = "GetObject";
        let region = self.bucket_region(bucket).await?;
        // The body is read inside the breaker's deadline too: a region may answer
        // the headers and hold the rest.
        let get = async {
            let res = self
                .s3(&region)
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                Err(e) => {
                    let err = map_sdk_error(OP, Some(&region), e);
                    if err.code.as_deref() == Some("NoSuchKey") {
                        return Ok(None);
                    }
                    return Err(err);
                }
            };
            let etag = out.e_tag().unwrap_or_default().to_string();
            let body = out.body.collect().await.map_err(|e| {
                CloudError::new(
                    CloudErrorKind::Unreachable,
                    OP,
                    Some(&region),
                    format!("s3://{bucket}/{key}: the body could not be read: {e}"),
                )
            })?;
            Ok(Some(StoredObject {
                body: body.into_bytes().to_vec(),
                etag,
            }))
        };
        self.reach()
            .call(OP, &region, Service::S3, CallKind::Read, get)
            .await
    }

    async fn list_state(&self, bucket: &str, prefix: &str) -> CloudResult<Vec<String>> {
        const OP: &str = "ListObjectsV2";
        let region = self.bucket_region(bucket).await?;
        let client = self.s3(&region);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
                .await?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn state_bucket_region(&self, bucket: &str) -> CloudResult<String> {
        self.bucket_region(bucket).await
    }

    async fn caller_identity(&self) -> CloudResult<String> {
        self.whoami().await.map(|(arn, _)| arn)
    }
}

#[async_trait]
impl S3 for AwsCloud {
    async fn replication_rules(&self, bucket: &str) -> CloudResult<Vec<ReplicationRule>> {
        const OP: &str = "GetBucketReplication";
        let region = self.bucket_region(bucket).await?;
        let res = self
            .s3(&region)
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await;
        let out = match res {
            Ok(out) => out,
            // No configuration at all is an answer: no rules.
            Err(err) if err.code.as_deref() == Some("ReplicationConfigurationNotFoundError") => {
                return Ok(Vec::new());
            }
            Err(err) => return Err(err),
        };
        Ok(out
            .replication_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|r| ReplicationRule {
                        id: r.id().unwrap_or_default().to_string(),
                        enabled: r.status().as_str() == "Enabled",
                        destination_bucket: r
                            .destination()
                            .map(|d| bucket_name(d.bucket()))
                            .unwrap_or_default(),
                        prefix: rule_prefix(r),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn versioning_enabled(&self, bucket: &str) -> CloudResult<bool> {
        const OP: &str = "GetBucketVersioning";
        let region = self.bucket_region(bucket).await?;
        let out = self
            .s3(&region)
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await?;
        Ok(out.status().map(|s| s.as_str()) == Some("Enabled"))
    }

    async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> CloudResult<()> {
        const OP: &str = "PutObject";
        let region = self.bucket_region(bucket).await?;
        // A canary: writing it twice makes a second version of a throwaway object, so
        // the SDK's retries may stay on.
        self.s3(&region)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .guarded(self.reach(), CallKind::Write, Service::S3, OP, &region)
            .await?;
        Ok(())
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CloudResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let region = self.bucket_region(bucket).await?;
        let client = self.s3(&region);
        // Every version and delete marker of exactly this key (the listing is by
        // prefix). A canary has one or two; pages are followed anyway.
        let mut ids: Vec<ObjectIdentifier> = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = client
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::S3,
                    "ListObjectVersions",
                    &region,
                )
                .await?;
            let versions = page
                .versions()
                .iter()
                .filter_map(|v| Some((v.key()?, v.version_id())));
            let markers = page
                .delete_markers()
                .iter()
                .filter_map(|m| Some((m.key()?, m.version_id())));
            for (k, v) in versions.chain(markers).filter(|(k, _)| *k == key) {
                let id = ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .map_err(|e| {
                        CloudError::new(
                            CloudErrorKind::InvalidRequest,
                            "DeleteObjects",
                            Some(&region),
                            e.to_string(),
                        )
                    })?;
                ids.push(id);
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        // DeleteObjects takes up to 1,000 keys per request.
        for chunk in ids.chunks(1000) {
            let delete = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| {
                    CloudError::new(
                        CloudErrorKind::InvalidRequest,
                        "DeleteObjects",
                        Some(&region),
                        e.to_string(),
                    )
                })?;
            let out = client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Write,
                    Service::S3,
                    "DeleteObjects",
                    &region,
                )
                .await?;
            if let Some(e) = out.errors().first() {
                return Err(CloudError::new(
                    super::errors::classify(e.code(), None),
                    "DeleteObjects",
                    Some(&region),
                    format!(
                        "{}: {}",
                        e.key().unwrap_or(key),
                        e.message().unwrap_or("not deleted")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn replication_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> CloudResult<Option<ReplicationStatus>> {
        const OP: &str = "HeadObject";
        let region = self.bucket_region(bucket).await?;
        let out = self
            .s3(&region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await?;
        Ok(match out.replication_status().map(|s| s.as_str()) {
            None => None,
            Some("PENDING") => Some(ReplicationStatus::Pending),
            Some("COMPLETED") | Some("COMPLETE") => Some(ReplicationStatus::Completed),
            Some("FAILED") => Some(ReplicationStatus::Failed),
            Some("REPLICA") => Some(ReplicationStatus::Replica),
            Some(other) => {
                return Err(CloudError::new(
                    CloudErrorKind::Transient,
                    OP,
                    Some(&region),
                    format!("unknown replication status {other:?}"),
                ));
            }
        })
    }

    async fn replication_backlog(
        &self,
        bucket: &str,
        rules: &[ReplicationRule],
    ) -> CloudResult<Option<ReplicationBacklog>> {
        // OperationsPendingReplication and BytesPendingReplication are published per
        // rule (SourceBucket, DestinationBucket, RuleId) in the source's region, when the
        // rule has replication metrics enabled. The backlog is the sum over enabled
        // rules, both metrics of every rule asked in one request (GetMetricData takes up
        // to 500 queries: 250 rules).
        let region = self.bucket_region(bucket).await?;
        let cw = self.cloudwatch(&region);
        let enabled: Vec<&ReplicationRule> = rules.iter().filter(|r| r.enabled).collect();
        let mut operations: Option<u64> = None;
        let mut bytes: Option<u64> = Some(0);
        for chunk in enabled.chunks(250) {
            let ids: Vec<(String, String)> = (0..chunk.len())
                .map(|i| (format!("r{i}"), format!("b{i}")))
                .collect();
            let dimensions: Vec<[(&str, &str); 3]> = chunk
                .iter()
                .map(|r| {
                    [
                        ("SourceBucket", bucket),
                        ("DestinationBucket", r.destination_bucket.as_str()),
                        ("RuleId", r.id.as_str()),
                    ]
                })
                .collect();
            let mut queries: Vec<MetricQuery<'_>> = Vec::with_capacity(2 * chunk.len());
            for ((ops_id, bytes_id), d) in ids.iter().zip(&dimensions) {
                queries.push(MetricQuery {
                    id: ops_id,
                    namespace: "AWS/S3",
                    name: "OperationsPendingReplication",
                    dimensions: d,
                    stat: "Maximum",
                });
                queries.push(MetricQuery {
                    id: bytes_id,
                    namespace: "AWS/S3",
                    name: "BytesPendingReplication",
                    dimensions: d,
                    stat: "Maximum",
                });
            }
            let now = std::time::SystemTime::now();
            let points = newest_datapoints(self.reach(), &cw, &region, &queries).await?;
            for pair in points.chunks(2) {
                let current = |p: Option<&Option<super::Datapoint>>| {
                    p.copied()
                        .flatten()
                        .and_then(|p| p.current(now))
                        .map(|v| v.max(0.0).round() as u64)
                };
                // A rule without a current datapoint (its replication metrics are off,
                // or stopped) leaves the total unknown: never read it as zero.
                let Some(ops) = current(pair.first()) else {
                    return Ok(None);
                };
                *operations.get_or_insert(0) += ops;
                bytes = match (bytes, current(pair.get(1))) {
                    (Some(total), Some(b)) => Some(total + b),
                    _ => None,
                };
            }
        }
        Ok(operations.map(|operations| ReplicationBacklog { operations, bytes }))
    }
}

/// The key prefix a replication rule replicates (see [`ReplicationRule::prefix`]): its
/// filter's `Prefix` (alone or in an `And`), a V1 rule's `Prefix`, `""` without either;
/// `None` when the filter needs a tag.
fn rule_prefix(r: &aws_sdk_s3::types::ReplicationRule) -> Option<String> {
    let Some(f) = r.filter() else {
        #[allow(deprecated)]
        return Some(r.prefix().unwrap_or_default().to_string());
    };
    if f.tag().is_some() {
        return None;
    }
    match f.and() {
        Some(and) if !and.tags().is_empty() => None,
        Some(and) => Some(and.prefix().unwrap_or_default().to_string()),
        None => Some(f.prefix().unwrap_or_default().to_string()),
    }
}
