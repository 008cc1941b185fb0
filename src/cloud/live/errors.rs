//! Secrets read for one probe and blanked from every message, and driver failures
//! classified into [`CloudErrorKind`](crate::cloud::CloudErrorKind)s.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use super::{OP_PG, OP_VALKEY, SecretLookup};
use crate::cloud::{CloudError, CloudErrorKind as K, CloudResult};

/// A password read from the environment for one probe. Every message from a driver goes
/// through [`Secret::scrub`] before it leaves this module.
pub(super) struct Secret(pub(super) Option<String>);

impl Secret {
    /// Reads the variable `var` names. A named variable that is unset or empty is an
    /// error naming the variable (never a value): connecting without the password
    /// would only fail later with a less clear message.
    pub(super) fn from_env(
        var: Option<&str>,
        lookup: &SecretLookup,
        op: &str,
    ) -> CloudResult<Self> {
        let Some(var) = var else {
            return Ok(Self(None));
        };
        match lookup(var) {
            Some(v) if !v.is_empty() => Ok(Self(Some(v))),
            _ => Err(CloudError::new(
                K::InvalidRequest,
                op,
                None,
                format!("the password variable {var} (password_env) is not set"),
            )),
        }
    }

    pub(super) fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// `text` with the password blanked.
    pub(super) fn scrub(&self, text: &str) -> String {
        match &self.0 {
            Some(s) => text.replace(s.as_str(), "****"),
            None => text.to_string(),
        }
    }
}

/// An error and its sources, one line: drivers put the useful part (the server's
/// message, the OS error) in the sources.
pub(super) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', "; ")
}

/// The first error of type `T` among `e` and its sources. Wrappers whose `source()`
/// skips the error they wrap are looked into: an `io::Error` (where TLS libraries put
/// theirs) and a shared `Arc<dyn Error>` (how redis keeps an `io::Error`).
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    type Shared = Arc<dyn StdError + Send + Sync>;
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        let wrapped = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static))
            .or_else(|| {
                c.downcast_ref::<Shared>()
                    .map(|arc| &**arc as &(dyn StdError + 'static))
            });
        cur = wrapped.or_else(|| c.source());
    }
    None
}

/// A certificate that does not verify (or another TLS failure) is not something a gate
/// should poll through: it is a configuration or security problem.
pub(super) fn tls_failure(e: &(dyn StdError + 'static)) -> Option<String> {
    find::<rustls::Error>(e).map(|t| format!("TLS handshake failed: {t}"))
}

pub(super) fn timed_out(op: &str, at: &str, what: &str, after: Duration) -> CloudError {
    CloudError::new(
        K::Transient,
        op,
        None,
        format!(
            "{at}: {what} timed out after {}",
            humantime::format_duration(after)
        ),
    )
}

/// Classifies a PostgreSQL failure by SQLSTATE when the server sent one, else by the
/// transport failure behind it.
pub(super) fn pg_error(e: &tokio_postgres::Error, at: &str, secret: &Secret) -> CloudError {
    let mut message = secret.scrub(&format!("{at}: {}", chain(e)));
    if e.code().is_some_and(|c| c.code() == "28000") && message.contains("no encryption") {
        // RDS and Aurora with rds.force_ssl refuse plaintext: say what to change.
        message.push_str(" (the server requires TLS: set sslmode = \"require\")");
    }
    let kind = if let Some(code) = e.code() {
        let code = code.code();
        match code {
            // invalid_password, invalid_authorization_specification, insufficient_privilege
            "28P01" | "28000" | "42501" => K::AccessDenied,
            // invalid_catalog_name: the database does not exist
            "3D000" => K::NotFound,
            // read_only_sql_transaction: a write reached a reader
            "25006" => K::InvalidState,
            // too_many_connections and other insufficient resources
            c if c.starts_with("53") => K::Throttling,
            // connection exceptions, operator intervention (shutdown, starting up),
            // serialization failures and deadlocks, system errors
            c if c.starts_with("08")
                || c.starts_with("57")
                || c.starts_with("40")
                || c.starts_with("58") =>
            {
                K::Transient
            }
            _ => K::InvalidRequest,
        }
    } else if tls_failure(e).is_some() {
        K::InvalidRequest
    } else if find::<std::io::Error>(e).is_some() || e.is_closed() {
        K::Unreachable
    } else {
        // The driver's own failures, told apart by its fixed texts: an authentication
        // it cannot complete ("password missing": the server wants one and the step
        // names no password_env), a configuration it refuses, a server without TLS, and
        // protocol surprises.
        let text = chain(e);
        if text.starts_with("authentication error") || text.contains("password missing") {
            K::AccessDenied
        } else if text.starts_with("invalid configuration")
            || text.starts_with("error performing TLS handshake")
        {
            K::InvalidRequest
        } else {
            K::Transient
        }
    };
    let mut err = CloudError::new(kind, OP_PG, None, message);
    if let Some(code) = e.code() {
        err = err.with_code(code.code());
    }
    err
}

pub(super) fn redis_error(e: &redis::RedisError, at: &str, secret: &Secret) -> CloudError {
    use redis::{ErrorKind as RK, ServerErrorKind as SK};
    let message = secret.scrub(&format!("{at}: {}", chain(e)));
    let kind = if tls_failure(e).is_some() {
        K::InvalidRequest
    } else if e.is_timeout() {
        K::Transient
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        K::Unreachable
    } else {
        match e.kind() {
            RK::AuthenticationFailed | RK::Server(SK::NoPerm) => K::AccessDenied,
            RK::Server(SK::ReadOnly) => K::InvalidState,
            RK::Server(SK::BusyLoading | SK::TryAgain | SK::MasterDown | SK::ClusterDown) => {
                K::Transient
            }
            RK::InvalidClientConfig => K::InvalidRequest,
            _ => match e.code() {
                Some("WRONGPASS" | "NOAUTH" | "NOPERM") => K::AccessDenied,
                _ => K::Transient,
            },
        }
    };
    let mut err = CloudError::new(kind, OP_VALKEY, None, message);
    if let Some(code) = e.code() {
        err = err.with_code(code);
    }
    err
}
