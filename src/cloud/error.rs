//! What can go wrong talking to a cloud, classified for retry decisions.

use serde::{Deserialize, Serialize};

/// The class of a failed call. Retry policy depends only on this, never on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudErrorKind {
    /// The service asked us to slow down; retry with a longer backoff.
    Throttling,
    /// A 5xx, a timeout or a connection failure: the outcome of a mutation is unknown,
    /// so a mutating action re-reads state before deciding to send again.
    Transient,
    /// The region (or endpoint) could not be reached at all.
    Unreachable,
    /// The resource does not exist.
    NotFound,
    /// The resource is not in a state that allows the call (e.g. a failover in progress).
    InvalidState,
    /// Credentials lack the permission.
    AccessDenied,
    /// The request itself is wrong; retrying cannot help.
    InvalidRequest,
}

impl CloudErrorKind {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            CloudErrorKind::Throttling | CloudErrorKind::Transient | CloudErrorKind::Unreachable
        )
    }
}

/// A failed cloud call: which operation, where, and how it failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{operation}{}: {message}", .region.as_ref().map(|r| format!(" in {r}")).unwrap_or_default())]
pub struct CloudError {
    /// Classification.
    pub kind: CloudErrorKind,
    /// The API operation, e.g. `FailoverGlobalCluster`.
    pub operation: String,
    /// The region the call was sent to.
    pub region: Option<String>,
    /// The service's error code, when it gave one (e.g. `InvalidGlobalClusterStateFault`).
    pub code: Option<String>,
    /// What the service (or the transport) said.
    pub message: String,
}

impl CloudError {
    /// Builds an error.
    pub fn new(
        kind: CloudErrorKind,
        operation: impl Into<String>,
        region: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation: operation.into(),
            region: region.map(str::to_string),
            code: None,
            message: message.into(),
        }
    }

    /// Attaches the service's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}
