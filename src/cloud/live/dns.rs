//! DNS lookups as applications make them: the resolvers asked, absolute names, failures.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;

use super::errors::chain;
use super::{DNS_TIMEOUT, OP_DNS};
use crate::cloud::{CloudError, CloudErrorKind as K, CloudResult};

/// A resolver address from a runbook: `ip` or `ip:port` (`[v6]:port` for IPv6).
pub(super) fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("resolver {text:?} is not an IP address or IP:port"))
}

/// The resolver for one query: the given servers (UDP, then TCP for truncated
/// answers), or the system's configuration when none are given. No cache: each probe
/// asks again.
pub(super) fn build_resolver(resolvers: &[String]) -> CloudResult<hickory_resolver::TokioResolver> {
    let mut builder = if resolvers.is_empty() {
        hickory_resolver::TokioResolver::builder_tokio().map_err(|e| {
            CloudError::new(
                K::InvalidRequest,
                OP_DNS,
                None,
                format!("the system's resolver configuration is unusable: {e}"),
            )
        })?
    } else {
        let mut servers = Vec::new();
        for r in resolvers {
            let addr = parse_resolver(r)
                .map_err(|m| CloudError::new(K::InvalidRequest, OP_DNS, None, m))?;
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            servers.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
        }
        let mut b = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), servers),
            TokioRuntimeProvider::default(),
        );
        // The named servers answer, not /etc/hosts.
        b.options_mut().use_hosts_file = ResolveHosts::Never;
        b
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = DNS_TIMEOUT;
    opts.attempts = 2;
    opts.cache_size = 0;
    opts.try_tcp_on_error = true;
    builder.build().map_err(|e| {
        CloudError::new(
            K::InvalidRequest,
            OP_DNS,
            None,
            format!("resolver setup failed: {e}"),
        )
    })
}

/// A name as asked: absolute (no search domains), so the answer is the same wherever
/// drpilot runs.
pub(super) fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A failed lookup as the check needs it: NXDOMAIN is `NotFound` (the check reports "does
/// not resolve"), a name without records of the type is an empty answer, and a resolver
/// that does not answer is retryable.
pub(super) fn dns_error(e: &NetError, name: &str, record_type: &str) -> CloudResult<Vec<String>> {
    let fail = |kind, message: String| Err(CloudError::new(kind, OP_DNS, None, message));
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            Err(
                CloudError::new(K::NotFound, OP_DNS, None, format!("{name}: no such name"))
                    .with_code("NXDOMAIN"),
            )
        }
        // The name exists without a record of this type: an empty answer.
        NetError::Dns(DnsError::NoRecordsFound(_)) => Ok(Vec::new()),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => fail(
            K::AccessDenied,
            format!("{name} {record_type}: the resolver refused the query"),
        ),
        NetError::Timeout => fail(
            K::Transient,
            format!("{name} {record_type}: no answer (timed out)"),
        ),
        NetError::Io(_) | NetError::NoConnections | NetError::Busy => fail(
            K::Unreachable,
            format!("{name} {record_type}: {}", chain(e)),
        ),
        _ => fail(K::Transient, format!("{name} {record_type}: {}", chain(e))),
    }
}
