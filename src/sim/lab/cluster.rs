//! A Global Datastore of Valkey clusters, in the local lab: both members bound to the
//! nodes of **one** real cluster with replicas, the primary member to the nodes that
//! are primaries and the secondary member to their replicas (`nodes` in each member's
//! binding). Two real clusters cannot stand for the two members: Redis and Valkey
//! refuse `REPLICAOF` in cluster mode (a node replicates only a node of its own
//! cluster), so one cluster's shards can never follow another's.
//!
//! What the simulated control plane does to a member happens to its nodes:
//! - a promotion is `CLUSTER FAILOVER TAKEOVER` on each of its nodes that is a replica:
//!   the node becomes its shard's primary without its primary's agreement, as a
//!   secondary region does when the primary region is lost, and what the old primary
//!   acknowledged but had not replicated is lost, for real;
//! - following is what the cluster does by itself once a takeover reached the old
//!   primaries (they become replicas of the new ones): the lab waits until they have;
//! - a detach cannot be done: one cluster cannot be split in two. It is refused and
//!   logged, and the member goes on replicating, which its probes then show.

use std::time::Duration;

use super::{LabAction, endpoint_of};
use crate::cloud::Endpoint;
use crate::cloud::live::LiveDataPlane;
use crate::sim::config::LocalServer;

/// How long a takeover, or the old primaries turning into replicas, may take: the
/// cluster bus carries the new configuration within a few of its pings.
const SETTLE: Duration = Duration::from_secs(30);
/// How often the nodes' roles are read meanwhile.
const POLL: Duration = Duration::from_millis(200);

/// Runs `action` on the nodes of the member bound as `b`.
pub(super) async fn execute(
    live: &LiveDataPlane,
    action: &LabAction,
    b: &LocalServer,
    at: &str,
) -> Result<String, String> {
    match action {
        LabAction::Fence { .. } => Ok(format!("{at}: nothing to fence")),
        LabAction::Promote { .. } => take_over(live, b, at).await,
        LabAction::Follow { .. } => {
            let links = settle(live, b, at, Role::Replica).await?;
            Ok(format!(
                "{at}: its nodes are replicas again ({})",
                links.join(", ")
            ))
        }
        LabAction::Detach { .. } => Err(format!(
            "{at} cannot be detached: its nodes are in one real cluster with the other \
             member's, which a lab cannot split; it goes on replicating"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Primary,
    Replica,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Primary => "a primary",
            Role::Replica => "a replica",
        }
    }
}

/// The endpoint of one of the member's nodes, with the binding's credentials.
fn node(b: &LocalServer, addr: &str) -> Result<Endpoint, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse().ok()?,
            ))
        })
        .ok_or_else(|| format!("node {addr:?} is not host:port"))?;
    let mut ep = endpoint_of(b, None, None);
    ep.host = host.to_string();
    ep.port = port;
    Ok(ep)
}

/// A node's role and, for a replica, whether its link to its primary is up, from
/// `INFO replication`.
async fn role_of(live: &LiveDataPlane, ep: &Endpoint) -> Result<(Role, bool), String> {
    let info = live
        .admin_redis(ep, &["INFO", "replication"])
        .await
        .map_err(|e| {
            format!(
                "could not read the role of {}:{}: {}",
                ep.host, ep.port, e.message
            )
        })?;
    parse_replication(&info)
        .ok_or_else(|| format!("{}:{}: INFO replication has no role", ep.host, ep.port))
}

/// `role:` and `master_link_status:` of an `INFO replication` answer.
fn parse_replication(info: &str) -> Option<(Role, bool)> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let role = match field("role")? {
        "master" | "primary" => Role::Primary,
        "slave" | "replica" => Role::Replica,
        _ => return None,
    };
    Some((role, field("master_link_status") == Some("up")))
}

/// `CLUSTER FAILOVER TAKEOVER` on each node of the member that is a replica, then
/// waits until every one of them is a primary.
async fn take_over(live: &LiveDataPlane, b: &LocalServer, at: &str) -> Result<String, String> {
    let mut taken = Vec::new();
    for addr in &b.nodes {
        let ep = node(b, addr)?;
        if role_of(live, &ep).await?.0 == Role::Primary {
            continue;
        }
        live.admin_redis(&ep, &["CLUSTER", "FAILOVER", "TAKEOVER"])
            .await
            .map_err(|e| {
                format!(
                    "CLUSTER FAILOVER TAKEOVER failed on {addr} of {at}: {}",
                    e.message
                )
            })?;
        taken.push(addr.as_str());
    }
    settle(live, b, at, Role::Primary).await?;
    Ok(if taken.is_empty() {
        format!("{at}: its nodes were primaries already")
    } else {
        format!(
            "promoted {at} (CLUSTER FAILOVER TAKEOVER on {})",
            taken.join(", ")
        )
    })
}

/// Waits until every node of the member has `want` as its role; what each one's
/// replication link is then (`addr link up|down`) for replicas.
async fn settle(
    live: &LiveDataPlane,
    b: &LocalServer,
    at: &str,
    want: Role,
) -> Result<Vec<String>, String> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let mut behind = Vec::new();
        let mut links = Vec::new();
        for addr in &b.nodes {
            match role_of(live, &node(b, addr)?).await {
                Ok((role, _)) if role != want => {
                    behind.push(format!("{addr} is not {}", want.name()))
                }
                Ok((_, up)) => {
                    links.push(format!("{addr} link {}", if up { "up" } else { "down" }))
                }
                Err(e) => behind.push(e),
            }
        }
        if behind.is_empty() {
            return Ok(links);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{at} after {}s: {}",
                SETTLE.as_secs(),
                behind.join("; ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_and_link_are_read_from_info_replication() {
        let replica = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n\
                       master_port:7100\r\nmaster_link_status:down\r\n";
        assert_eq!(parse_replication(replica), Some((Role::Replica, false)));
        let primary = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n";
        assert_eq!(parse_replication(primary), Some((Role::Primary, false)));
        let up = "role:slave\nmaster_link_status:up\n";
        assert_eq!(parse_replication(up), Some((Role::Replica, true)));
        assert_eq!(parse_replication("# Replication\r\n"), None);
        assert_eq!(parse_replication("role:sentinel\n"), None);
    }

    #[test]
    fn a_node_is_reached_with_the_bindings_credentials() {
        let b = LocalServer {
            host: "127.0.0.1".into(),
            port: 7100,
            user: Some("probe".into()),
            password_env: Some("LAB_PW".into()),
            nodes: vec!["127.0.0.1:7103".into()],
            ..LocalServer::default()
        };
        let ep = node(&b, "127.0.0.1:7103").unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("127.0.0.1", 7103));
        assert_eq!(ep.user.as_deref(), Some("probe"));
        assert_eq!(ep.password_env.as_deref(), Some("LAB_PW"));
        assert_eq!(node(&b, "[::1]:7104").unwrap().host, "::1");
        assert!(node(&b, "127.0.0.1").is_err());
    }
}
