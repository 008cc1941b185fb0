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
/// standard retry mode (`THROTTLING_ERRORS`), plus ARC's and S3's spellings.
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
];

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
    // ElastiCache: GlobalReplicationGroupNotFoundFault; Route 53: NoSuchHostedZone,
    // NoSuchHealthCheck, NoSuchChange; S3: NoSuchBucket, NoSuchKey, NotFound (HEAD);
    // ARC: ResourceNotFoundException.
    if code.contains("NotFound") || code.starts_with("NoSuch") || status == Some(404) {
        return K::NotFound;
    }
    // RDS: InvalidDBClusterStateFault, InvalidGlobalClusterStateFault; ElastiCache:
    // InvalidGlobalReplicationGroupState(Fault), InvalidReplicationGroupState(Fault);
    // ARC: ConflictException (a safety rule would be violated); S3: OperationAborted.
    if code.starts_with("Invalid") && code.contains("State")
        || code == "ConflictException"
        || code == "OperationAborted"
        || status == Some(409)
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
        SdkError::TimeoutError(_) => CloudError::new(
            K::Unreachable,
            op,
            region,
            "no answer within the request timeout",
        ),
        SdkError::DispatchFailure(e) => {
            let kind = if e.is_user() {
                K::InvalidRequest
            } else {
                K::Unreachable
            };
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_io() {
                "connection failed"
            } else {
                "could not be sent"
            };
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
        ];
        for (code, status, want) in cases {
            assert_eq!(classify(code, Some(status)), want, "{code:?} {status}");
        }
    }
}
