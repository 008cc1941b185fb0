//! SDK errors mapped onto [`CloudErrorKind`]s.
//!
//! The engine's retry and re-read decisions depend only on the kind, so this mapping is
//! where "what AWS said" becomes "what drpilot does next". It reads the error code the
//! service returned (`ProvideErrorMetadata::code`) and the HTTP status, never the
//! message text. Codes come from the services' models (botocore's `service-2.json`) and
//! the SDKs' standard retry classifier (throttling codes).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloud::{CloudError, CloudErrorKind};

/// Error codes the services use to ask callers to slow down. The list of the SDKs'
/// standard retry mode (`THROTTLING_ERRORS`), plus ARC's, S3's and SNS's spellings.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    // SNS Publish.
    "Throttled",
];

/// Codes of a service-side transient failure (also classified by status >= 500).
const TRANSIENT: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "EndpointTemporarilyUnavailableException",
    // Auto Scaling: "You already have a pending update to an Amazon EC2 Auto Scaling
    // resource" (HTTP 500): another update of the group, to be tried again.
    "ResourceContention",
];

/// Codes of a resource whose state refuses the call for now, beyond RDS's and
/// ElastiCache's `Invalid...State...` faults.
const IN_PROGRESS_OR_INACTIVE: &[&str] =
    &["ServiceNotActiveException", "ScalingActivityInProgress"];

/// Codes that mean the caller's identity may not do this.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "AuthFailure",
    "OptInRequired",
    // SNS: the caller may not publish to the topic.
    "AuthorizationError",
];

/// Classifies a service's error code and HTTP status.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>) -> CloudErrorKind {
    use CloudErrorKind as K;
    let code = code.unwrap_or("");
    if THROTTLING.contains(&code) || status == Some(429) {
        return K::Throttling;
    }
    if TRANSIENT.contains(&code) || status.is_some_and(|s| s >= 500) {
        return K::Transient;
    }
    if ACCESS_DENIED.contains(&code) || status == Some(403) {
        return K::AccessDenied;
    }
    // RDS: DBClusterNotFoundFault, GlobalClusterNotFoundFault, DBClusterSnapshotNotFoundFault;
    // ECS: ClusterNotFoundException, ServiceNotFoundException;
    // ElastiCache: GlobalReplicationGroupNotFoundFault; Route 53: NoSuchHostedZone,
    // NoSuchHealthCheck, NoSuchChange; S3: NoSuchBucket, NoSuchKey, NotFound (HEAD);
    // ARC: ResourceNotFoundException.
    if code.contains("NotFound") || code.starts_with("NoSuch") || status == Some(404) {
        return K::NotFound;
    }
    // RDS: InvalidDBClusterStateFault, InvalidGlobalClusterStateFault; ElastiCache:
    // InvalidGlobalReplicationGroupState(Fault), InvalidReplicationGroupState(Fault);
    // ARC: ConflictException (a safety rule would be violated); S3: OperationAborted,
    // and a conditional write's PreconditionFailed (412) / ConditionalRequestConflict (409).
    // ECS: ServiceNotActiveException (the service is DRAINING or INACTIVE); Auto
    // Scaling: ScalingActivityInProgress (a scaling activity of the group runs).
    if code.starts_with("Invalid") && code.contains("State")
        || IN_PROGRESS_OR_INACTIVE.contains(&code)
        || code == "ConflictException"
        || code == "OperationAborted"
        || code == "PreconditionFailed"
        || status == Some(409)
        || status == Some(412)
    {
        return K::InvalidState;
    }
    K::InvalidRequest
}

/// Maps an SDK error of operation `op` sent to `region`.
///
/// Transport failures: a request that never got an answer (connection refused or reset,
/// a timeout, a region that holds connections without a byte) is `Unreachable`. For a
/// mutation its outcome is unknown either way, and the trait contract makes the caller
/// re-read before sending again; `Unreachable` additionally tells unplanned runs that
/// the region is down rather than slow. A response that could not be parsed is
/// `Transient`. A request the SDK refused to build is `InvalidRequest` (drpilot's bug or
/// bad input, never worth retrying).
pub(crate) fn map_sdk_error<E>(
    op: &str,
    region: Option<&str>,
    err: SdkError<E, HttpResponse>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use CloudErrorKind as K;
    let detail = chain(&err);
    match err {
        SdkError::ConstructionFailure(_) => CloudError::new(
            K::InvalidRequest,
            op,
            region,
            format!("the request could not be built: {detail}"),
        ),
        SdkError::TimeoutError(_) => {
            log_unreachable(op, region, "no answer within the attempt timeout");
            CloudError::new(
                K::Unreachable,
                op,
                region,
                "no answer within the request timeout",
            )
        }
        SdkError::DispatchFailure(e) => {
            // Only a connection that failed or timed out says nothing answered. Another
            // dispatch failure (credentials that could not be loaded, say) happened
            // before anything was sent: retryable, but no sign of an outage.
            let kind = if e.is_user() {
                K::InvalidRequest
            } else if e.is_timeout() || e.is_io() {
                K::Unreachable
            } else {
                K::Transient
            };
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_io() {
                "connection failed"
            } else {
                "could not be sent"
            };
            if kind != K::InvalidRequest {
                log_unreachable(op, region, what);
            }
            CloudError::new(kind, op, region, format!("{what}: {detail}"))
        }
        SdkError::ResponseError(e) => {
            let status = e.raw().status().as_u16();
            CloudError::new(
                K::Transient,
                op,
                region,
                format!("unreadable response (HTTP {status})"),
            )
        }
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            let err = e.err();
            let code = err.code().map(str::to_string);
            let kind = classify(code.as_deref(), Some(status));
            if kind == K::Throttling {
                tracing::info!(
                    target: "drpilot::aws",
                    operation = op,
                    region = region.unwrap_or("-"),
                    status,
                    code = code.as_deref().unwrap_or("-"),
                    "throttled by AWS; the step's retry policy backs off"
                );
            }
            let message = match err.message() {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => format!(
                    "HTTP {status}{}",
                    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
                ),
            };
            let mut out = CloudError::new(kind, op, region, message);
            if let Some(c) = code {
                out = out.with_code(c);
            }
            out
        }
        _ => CloudError::new(K::Transient, op, region, detail),
    }
}

/// One log line per request that got no answer: what a person debugging a stuck step
/// wants first (which call, which region). Only the operation, the region and the kind
/// of failure: never the request, whose URL or body may hold what a log must not.
fn log_unreachable(op: &str, region: Option<&str>, what: &str) {
    tracing::info!(
        target: "drpilot::aws",
        operation = op,
        region = region.unwrap_or("-"),
        failure = what,
        "AWS did not answer: {what}"
    );
}

/// An error and its sources on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use CloudErrorKind as K;

    #[test]
    fn a_request_without_an_answer_is_one_log_line_naming_the_call_not_the_request() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("drpilot::aws=info"))
            .with_writer(move || w.clone())
            .finish();
        let err = tracing::subscriber::with_default(subscriber, || {
            let e: SdkError<
                aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError,
                HttpResponse,
            > = SdkError::timeout_error("https://u:pw@rds.us-east-1.example/?Action=x");
            map_sdk_error("DescribeDBClusters", Some("us-east-1"), e)
        });
        assert_eq!(err.kind, K::Unreachable);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["target"], "drpilot::aws");
        assert_eq!(lines[0]["fields"]["operation"], "DescribeDBClusters");
        assert_eq!(lines[0]["fields"]["region"], "us-east-1");
        assert!(!text.contains("pw@") && !text.contains("Action"), "{text}");
    }

    /// Only a failed or timed-out connection says the region did not answer; a
    /// request that could not be sent for another reason (credentials that would not
    /// load: an identity problem, not an outage) must not open a region's breaker.
    #[test]
    fn only_a_failed_or_silent_connection_is_unreachable() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        type E = aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError;
        let kind = |c: ConnectorError| {
            let e: SdkError<E, HttpResponse> = SdkError::dispatch_failure(c);
            map_sdk_error("DescribeDBClusters", Some("us-east-1"), e).kind
        };
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
        assert_eq!(kind(ConnectorError::io(io())), K::Unreachable);
        assert_eq!(kind(ConnectorError::timeout(io())), K::Unreachable);
        assert_eq!(
            kind(ConnectorError::other(
                "an error occurred while loading credentials".into(),
                None
            )),
            K::Transient
        );
        assert_eq!(kind(ConnectorError::user(io())), K::InvalidRequest);
    }

    #[test]
    fn codes_of_every_service_map_to_the_kind_the_engine_needs() {
        let cases = [
            (Some("Throttling"), 400, K::Throttling),
            (Some("ThrottlingException"), 400, K::Throttling),
            (Some("SlowDown"), 503, K::Throttling),
            (Some("PriorRequestNotComplete"), 400, K::Throttling),
            (Some("InternalFailure"), 500, K::Transient),
            (Some("ServiceUnavailable"), 503, K::Transient),
            (None, 502, K::Transient),
            (Some("AccessDenied"), 403, K::AccessDenied),
            (Some("AccessDeniedException"), 400, K::AccessDenied),
            (Some("ExpiredToken"), 400, K::AccessDenied),
            (Some("GlobalClusterNotFoundFault"), 404, K::NotFound),
            (Some("DBClusterNotFoundFault"), 404, K::NotFound),
            (
                Some("GlobalReplicationGroupNotFoundFault"),
                400,
                K::NotFound,
            ),
            (Some("NoSuchHostedZone"), 404, K::NotFound),
            (Some("NoSuchHealthCheck"), 404, K::NotFound),
            (Some("NotFound"), 404, K::NotFound),
            (Some("ResourceNotFoundException"), 404, K::NotFound),
            (Some("InvalidGlobalClusterStateFault"), 400, K::InvalidState),
            (Some("InvalidDBClusterStateFault"), 400, K::InvalidState),
            (
                Some("InvalidGlobalReplicationGroupState"),
                400,
                K::InvalidState,
            ),
            (Some("ConflictException"), 409, K::InvalidState),
            (Some("InvalidParameterValue"), 400, K::InvalidRequest),
            (Some("InvalidParameterCombination"), 400, K::InvalidRequest),
            (Some("InvalidChangeBatch"), 400, K::InvalidRequest),
            (Some("ValidationException"), 400, K::InvalidRequest),
            // ECS (JSON protocol, `__type` codes).
            (Some("ClusterNotFoundException"), 400, K::NotFound),
            (Some("ServiceNotFoundException"), 400, K::NotFound),
            (Some("ServiceNotActiveException"), 400, K::InvalidState),
            (Some("AccessDeniedException"), 400, K::AccessDenied),
            (Some("InvalidParameterException"), 400, K::InvalidRequest),
            // Auto Scaling (awsQuery protocol).
            (Some("ValidationError"), 400, K::InvalidRequest),
            (Some("ScalingActivityInProgress"), 400, K::InvalidState),
            (Some("ResourceContention"), 500, K::Transient),
            (Some("ResourceContention"), 400, K::Transient),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify(code, Some(status)), want, "{code:?} {status}");
        }
    }
}
