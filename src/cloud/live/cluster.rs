//! Valkey cluster mode on the wire: the topology (CLUSTER SHARDS, or CLUSTER SLOTS on
//! servers older than 7.0), and commands sent to the shard serving their key,
//! following MOVED and ASK.
//!
//! drpilot routes by itself rather than through the redis crate's cluster client. A
//! probe targets each shard's primary on purpose (ROLE there, a canary and a heartbeat
//! per shard behind the shard's hash tag), so it needs the topology as data, not hidden
//! behind a router; it opens fresh connections for every probe (see the module docs of
//! `live`) to the nodes it uses and no others, where a cluster client connects to every
//! node it learns of (one frozen replica would then stall a probe of the primaries);
//! and it keeps the single-node code path's TLS, credentials, timeouts, error classes
//! and secret scrubbing as they are. The redirections are the protocol's two: MOVED
//! (the slot is served elsewhere now: go there) and ASK (the slot is migrating: send
//! ASKING then the command to the node named, this once), at most
//! [`MAX_REDIRECTS`] times.

use std::collections::HashMap;
use std::fmt;

use futures_util::future::join_all;
use redis::Value;

use super::errors::{Secret, redis_error};
use super::{LiveDataPlane, OP_VALKEY, canary_id, role_of};
use crate::cloud::cluster::{SLOTS, tagged};
use crate::cloud::{
    CloudError, CloudErrorKind as K, CloudResult, ClusterMode, ClusterObservation, DataPlane,
    Endpoint, HeartbeatShard, ShardObservation, Slots, Tls, ValkeyObservation,
};

/// At most this many redirections for one command: a resharding can move a slot while
/// a command follows it once or twice; more is a loop.
const MAX_REDIRECTS: usize = 5;

/// A node of a cluster, as a client reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Node {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Node {
    fn of(endpoint: &Endpoint) -> Node {
        Node {
            host: endpoint.host.clone(),
            port: endpoint.port,
        }
    }

    /// `host:port` (MOVED, ASK, a shard's `primary`), or `[v6]:port`. An empty host
    /// is the one the client connected to (a node that does not know its own
    /// address says so).
    pub(super) fn parse(addr: &str, seed_host: &str) -> Option<Node> {
        let (host, port) = addr.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Node {
            host: if host.is_empty() || host == "?" {
                seed_host.to_string()
            } else {
                host.to_string()
            },
            port: port.parse().ok().filter(|p| *p > 0)?,
        })
    }
}

/// One shard of a cluster: the slots it serves, its primary and all its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shard {
    pub slots: Slots,
    /// `None` when the topology names no primary that is not failed.
    pub primary: Option<Node>,
    /// Every node of the shard that is not failed, primary or replica: the local lab
    /// probes the nodes of one member of a datastore among them (`valkey_member`).
    pub nodes: Vec<Node>,
}

// ------------------------------------------------------------------ reply parsing

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        Value::Attribute { data, .. } => items(data),
        _ => None,
    }
}

/// A RESP3 map, or a RESP2 array of alternating names and values.
fn fields(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| Some((text(k)?, v))).collect(),
        Value::Attribute { data, .. } => fields(data),
        other => {
            let a = items(other)?;
            if !a.len().is_multiple_of(2) {
                return None;
            }
            a.chunks(2)
                .map(|kv| Some((text(&kv[0])?, &kv[1])))
                .collect()
        }
    }
}

fn field<'a>(fields: &[(String, &'a Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

/// Where a node is reached: its preferred `endpoint` (the server's
/// `cluster-preferred-endpoint-type`: an IP, or the hostname TLS certificates name),
/// else its hostname, else its IP, else (`?`: unknown) the host the client connected
/// to.
fn node_host(node: &[(String, &Value)], seed_host: &str) -> String {
    ["endpoint", "hostname", "ip"]
        .iter()
        .filter_map(|k| field(node, k).and_then(text))
        .find(|h| !h.is_empty() && h != "?")
        .unwrap_or_else(|| seed_host.to_string())
}

/// The shards of a CLUSTER SHARDS reply (Valkey and Redis 7.0+): each a map with
/// `slots` (start and end pairs) and `nodes` (maps with `role`, `health`, `port` /
/// `tls-port`, `endpoint`, `hostname`, `ip`). The primary is the `master` whose
/// health is not `fail`; with TLS its `tls-port` is used when it has one.
pub(super) fn parse_shards(
    reply: &Value,
    seed_host: &str,
    tls: bool,
) -> Result<Vec<Shard>, String> {
    let bad = |what: &str| format!("unexpected CLUSTER SHARDS reply ({what})");
    let mut out = Vec::new();
    for shard in items(reply).ok_or_else(|| bad("not an array"))? {
        let f = fields(shard).ok_or_else(|| bad("a shard is not a map"))?;
        let bounds: Vec<i64> = match field(&f, "slots") {
            Some(v) => items(v)
                .ok_or_else(|| bad("slots"))?
                .iter()
                .map(|x| int(x).ok_or_else(|| bad("a slot")))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if !bounds.len().is_multiple_of(2) {
            return Err(bad("an odd number of slot bounds"));
        }
        let slot = |n: i64| u16::try_from(n).ok().filter(|s| *s < SLOTS);
        let ranges: Vec<(u16, u16)> = bounds
            .chunks(2)
            .map(|p| Some((slot(p[0])?, slot(p[1])?)))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a slot out of range"))?;
        let slots = Slots::new(ranges);
        if slots.is_empty() {
            continue;
        }
        let nodes = match field(&f, "nodes") {
            Some(v) => items(v).ok_or_else(|| bad("nodes"))?,
            None => &[],
        };
        let mut primary = None;
        let mut all = Vec::new();
        for n in nodes {
            let n = fields(n).ok_or_else(|| bad("a node is not a map"))?;
            let role = field(&n, "role").and_then(text).unwrap_or_default();
            let health = field(&n, "health").and_then(text).unwrap_or_default();
            if health == "fail" || health == "failed" {
                continue;
            }
            let port_of = |k: &str| {
                field(&n, k)
                    .and_then(int)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0)
            };
            let (first, second) = if tls {
                ("tls-port", "port")
            } else {
                ("port", "tls-port")
            };
            let Some(port) = port_of(first).or_else(|| port_of(second)) else {
                continue;
            };
            let node = Node {
                host: node_host(&n, seed_host),
                port,
            };
            if role == "master" && primary.is_none() {
                primary = Some(node.clone());
            }
            all.push(node);
        }
        out.push(Shard {
            slots,
            primary,
            nodes: all,
        });
    }
    out.sort_by(|a, b| a.slots.cmp(&b.slots));
    Ok(out)
}

/// The shards of a CLUSTER SLOTS reply (before 7.0): entries of a start, an end and
/// the nodes serving them, primary first (`[host, port, id, ...]`). A primary serving
/// several ranges has one entry per range; they are gathered by its id.
pub(super) fn parse_slots(reply: &Value, seed_host: &str) -> Result<Vec<Shard>, String> {
    let bad = |what: &str| format!("unexpected CLUSTER SLOTS reply ({what})");
    /// A primary's id, where it and its replicas are, and its ranges so far.
    type Gathered = (String, Vec<Node>, Vec<(u16, u16)>);
    let mut by_primary: Vec<Gathered> = Vec::new();
    for entry in items(reply).ok_or_else(|| bad("not an array"))? {
        let e = items(entry).ok_or_else(|| bad("an entry is not an array"))?;
        let slot = |v: Option<&Value>| {
            v.and_then(int)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|s| *s < SLOTS)
        };
        let (Some(start), Some(end)) = (slot(e.first()), slot(e.get(1))) else {
            return Err(bad("slot bounds"));
        };
        let node_at = |node: &[Value]| -> Result<Node, String> {
            let host = node
                .first()
                .and_then(text)
                .filter(|h| !h.is_empty() && h != "?")
                .unwrap_or_else(|| seed_host.to_string());
            let port = node
                .get(1)
                .and_then(int)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| bad("a port"))?;
            Ok(Node { host, port })
        };
        let node = e.get(2).and_then(items).ok_or_else(|| bad("no primary"))?;
        let primary = node_at(node)?;
        let id = node
            .get(2)
            .and_then(text)
            .unwrap_or_else(|| primary.to_string());
        match by_primary.iter_mut().find(|(i, _, _)| *i == id) {
            Some((_, _, ranges)) => ranges.push((start, end)),
            None => {
                let mut nodes = vec![primary];
                for replica in &e[3..] {
                    let r = items(replica).ok_or_else(|| bad("a replica is not an array"))?;
                    nodes.push(node_at(r)?);
                }
                by_primary.push((id, nodes, vec![(start, end)]));
            }
        }
    }
    let mut out: Vec<Shard> = by_primary
        .into_iter()
        .map(|(_, nodes, ranges)| Shard {
            slots: Slots::new(ranges),
            primary: nodes.first().cloned(),
            nodes,
        })
        .filter(|s| !s.slots.is_empty())
        .collect();
    out.sort_by(|a, b| a.slots.cmp(&b.slots));
    Ok(out)
}

/// Whether `INFO cluster` says cluster mode is enabled (`cluster_enabled:1`).
pub(super) fn cluster_enabled(info: &str) -> bool {
    info.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .any(|(k, v)| k == "cluster_enabled" && v.trim() == "1")
}

/// A server error that says the command does not exist there: CLUSTER SHARDS before
/// 7.0 (`ERR unknown subcommand`, or 6.x's `Unknown subcommand or wrong number of
/// arguments`).
fn unknown_subcommand(e: &redis::RedisError) -> bool {
    e.code() == Some("ERR")
        && e.detail()
            .is_some_and(|d| d.to_ascii_lowercase().contains("unknown subcommand"))
}

/// A cluster command's failure: a server without cluster support is told apart (only
/// `cluster = true` sends one there, and no retry fixes it).
fn cluster_error(e: &redis::RedisError, at: &str, secret: &Secret) -> CloudError {
    let mut err = redis_error(e, at, secret);
    if e.detail()
        .is_some_and(|d| d.contains("cluster support disabled"))
    {
        err.kind = K::InvalidRequest;
        err.message
            .push_str(" (the step says cluster = true; leave it out to detect the mode)");
    }
    err
}

// ------------------------------------------------------------------------ routing

/// A connection with where it goes and the password, for messages to blank.
type Open = (redis::aio::MultiplexedConnection, String, Secret);

/// Connections to a cluster's nodes for one probe, opened as needed with the seed
/// endpoint's user, password and TLS.
pub(super) struct Router<'a> {
    plane: &'a LiveDataPlane,
    seed: &'a Endpoint,
    open: HashMap<Node, Open>,
}

impl<'a> Router<'a> {
    pub(super) fn new(plane: &'a LiveDataPlane, seed: &'a Endpoint) -> Self {
        Router {
            plane,
            seed,
            open: HashMap::new(),
        }
    }

    async fn connection(&mut self, node: &Node) -> CloudResult<&mut Open> {
        if !self.open.contains_key(node) {
            let endpoint = Endpoint {
                host: node.host.clone(),
                port: node.port,
                ..self.seed.clone()
            };
            let opened = self.plane.valkey_open(&endpoint).await?;
            self.open.insert(node.clone(), opened);
        }
        self.open
            .get_mut(node)
            .ok_or_else(|| CloudError::new(K::Transient, OP_VALKEY, None, "connection lost"))
    }

    /// `cmd` at `node` itself (ROLE, INFO: no key, nothing to follow).
    pub(super) async fn at<T: redis::FromRedisValue>(
        &mut self,
        node: &Node,
        cmd: &redis::Cmd,
    ) -> CloudResult<T> {
        let (con, at, secret) = self.connection(node).await?;
        cmd.query_async(con)
            .await
            .map_err(|e| redis_error(&e, at, secret))
    }

    /// `cmd` (one key) sent to `start`, following MOVED and ASK to the node serving the
    /// key's slot; the answer, and the node that gave it (where the next command on the
    /// same key goes).
    pub(super) async fn routed<T: redis::FromRedisValue>(
        &mut self,
        start: &Node,
        cmd: &redis::Cmd,
    ) -> CloudResult<(T, Node)> {
        let mut node = start.clone();
        let mut asking = false;
        let mut trail = Vec::new();
        for _ in 0..=MAX_REDIRECTS {
            let seed_host = self.seed.host.clone();
            let (con, at, secret) = self.connection(&node).await?;
            if asking {
                redis::cmd("ASKING")
                    .query_async::<()>(con)
                    .await
                    .map_err(|e| redis_error(&e, at, secret))?;
            }
            match cmd.query_async::<T>(con).await {
                Ok(v) => return Ok((v, node)),
                Err(e) => {
                    let next = e
                        .redirect_node()
                        .and_then(|(addr, _slot)| Node::parse(addr, &seed_host));
                    let Some(next) = next else {
                        return Err(redis_error(&e, at, secret));
                    };
                    asking = matches!(
                        e.kind(),
                        redis::ErrorKind::Server(redis::ServerErrorKind::Ask)
                    );
                    trail.push(format!("{node} -> {next}"));
                    node = next;
                }
            }
        }
        Err(CloudError::new(
            K::Transient,
            OP_VALKEY,
            None,
            format!(
                "{start}: more than {MAX_REDIRECTS} redirections ({})",
                trail.join(", ")
            ),
        ))
    }
}

// ------------------------------------------------------------------- the probes

impl LiveDataPlane {
    /// Whether the server behind `con` is probed as a cluster: as `mode` says, or as
    /// its `INFO cluster` does.
    pub(super) async fn is_cluster(
        con: &mut redis::aio::MultiplexedConnection,
        mode: ClusterMode,
        at: &str,
        secret: &Secret,
    ) -> CloudResult<bool> {
        match mode {
            ClusterMode::Enabled => Ok(true),
            ClusterMode::Disabled => Ok(false),
            ClusterMode::Detect => {
                let info: String = redis::cmd("INFO")
                    .arg("cluster")
                    .query_async(con)
                    .await
                    .map_err(|e| {
                        let mut err = redis_error(&e, at, secret);
                        err.message.push_str(
                            " (reading INFO cluster to detect cluster mode; `cluster = \
                             true|false` skips it)",
                        );
                        err
                    })?;
                Ok(cluster_enabled(&info))
            }
        }
    }

    /// The cluster's shards as the node behind `con` sees them: CLUSTER SHARDS, or
    /// CLUSTER SLOTS on a server that does not know it. Shards serving no slot are left
    /// out; in slot order.
    pub(super) async fn topology(
        con: &mut redis::aio::MultiplexedConnection,
        seed: &Endpoint,
        at: &str,
        secret: &Secret,
    ) -> CloudResult<Vec<Shard>> {
        let tls = seed.tls != Tls::Off;
        let parsed = match redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query_async::<Value>(con)
            .await
        {
            Ok(v) => parse_shards(&v, &seed.host, tls),
            Err(e) if unknown_subcommand(&e) => {
                let v: Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(con)
                    .await
                    .map_err(|e| cluster_error(&e, at, secret))?;
                parse_slots(&v, &seed.host)
            }
            Err(e) => return Err(cluster_error(&e, at, secret)),
        };
        parsed.map_err(|m| CloudError::new(K::Transient, OP_VALKEY, None, format!("{at}: {m}")))
    }

    /// The shards of the cluster behind `seed`, or `None` when it is not probed as
    /// one.
    pub(super) async fn cluster_shards(
        &self,
        seed: &Endpoint,
        mode: ClusterMode,
    ) -> CloudResult<Option<Vec<Shard>>> {
        if mode == ClusterMode::Disabled {
            return Ok(None);
        }
        let (mut con, at, secret) = self.valkey_open(seed).await?;
        if !Self::is_cluster(&mut con, mode, &at, &secret).await? {
            return Ok(None);
        }
        Self::topology(&mut con, seed, &at, &secret).await.map(Some)
    }

    /// `valkey.check` of a cluster: every shard's primary, probed at once.
    pub(super) async fn valkey_cluster(
        &self,
        seed: &Endpoint,
        shards: Vec<Shard>,
        canary: bool,
    ) -> CloudResult<ClusterObservation> {
        let served: u32 = shards.iter().map(|s| s.slots.len()).sum();
        let probes = shards.iter().map(|s| self.probe_shard(seed, s, canary));
        let mut out = Vec::with_capacity(shards.len());
        for probed in join_all(probes).await {
            out.push(probed?);
        }
        Ok(ClusterObservation {
            shards: out,
            unserved_slots: u32::from(SLOTS).saturating_sub(served),
        })
    }

    /// `valkey.check` of one member of a datastore that the local lab binds to some of
    /// the nodes of one real cluster (`member`: `host:port` as the cluster announces
    /// them). Each shard is judged at the member's node in it, not at the shard's
    /// primary: a member whose nodes are replicas reads as a replica until a takeover
    /// makes them the primaries, as the members of a Global Datastore do. A shard with
    /// no node of the member is a problem of that shard.
    pub(crate) async fn valkey_member(
        &self,
        seed: &Endpoint,
        member: &[String],
        mode: ClusterMode,
        canary: bool,
    ) -> CloudResult<ValkeyObservation> {
        let Some(shards) = self.cluster_shards(seed, mode).await? else {
            return DataPlane::valkey(self, seed, ClusterMode::Disabled, canary).await;
        };
        let member: Vec<Node> = member
            .iter()
            .filter_map(|a| Node::parse(a, &seed.host))
            .collect();
        let (shards, foreign) = member_shards(shards, &member);
        let mut seen = self.valkey_cluster(seed, shards, canary).await?;
        let listed = member
            .iter()
            .map(Node::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        for (s, none) in seen.shards.iter_mut().zip(foreign) {
            if none {
                s.problem = Some(format!("none of this member's nodes ({listed}) is in it"));
            }
        }
        let canary_ok = canary.then(|| {
            !seen.shards.is_empty() && seen.shards.iter().all(|s| s.canary_ok == Some(true))
        });
        Ok(ValkeyObservation {
            role: seen
                .shards
                .first()
                .and_then(|s| s.role.clone())
                .unwrap_or_else(|| "unknown".into()),
            canary_ok,
            cluster: Some(seen),
        })
    }

    /// One shard: ROLE at its primary and, when asked of a primary, a canary behind
    /// the shard's hash tag. A primary that does not answer is an observation (its
    /// `problem`); what polling cannot fix (a rejected password) is an error.
    async fn probe_shard(
        &self,
        seed: &Endpoint,
        shard: &Shard,
        canary: bool,
    ) -> CloudResult<ShardObservation> {
        let mut seen = ShardObservation {
            slots: shard.slots.clone(),
            primary: shard.primary.as_ref().map(Node::to_string),
            role: None,
            problem: None,
            canary_ok: None,
        };
        let Some(primary) = &shard.primary else {
            seen.problem = Some("the topology names no primary that has not failed".into());
            return Ok(seen);
        };
        let mut router = Router::new(self, seed);
        let reply = match router.at::<Value>(primary, &redis::cmd("ROLE")).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() => {
                seen.problem = Some(e.message);
                return Ok(seen);
            }
            Err(e) => return Err(e),
        };
        let Some(role) = role_of(&reply) else {
            seen.problem = Some(format!("{primary}: unexpected ROLE reply {reply:?}"));
            return Ok(seen);
        };
        let is_primary = matches!(role.as_str(), "master" | "primary");
        seen.role = Some(role);
        if canary && is_primary {
            match self.shard_canary(&mut router, primary, &shard.slots).await {
                Ok(ok) => seen.canary_ok = Some(ok),
                Err(e) if e.is_retryable() => seen.problem = Some(e.message),
                Err(e) => return Err(e),
            }
        }
        Ok(seen)
    }

    /// SET and GET of a canary key behind the shard's hash tag, with a TTL. `false`
    /// when the write was refused as read-only or did not read back.
    async fn shard_canary(
        &self,
        router: &mut Router<'_>,
        primary: &Node,
        slots: &Slots,
    ) -> CloudResult<bool> {
        let Some(tag) = slots.tag() else {
            return Ok(false);
        };
        let id = canary_id();
        let key = tagged(&tag, &format!("drpilot:canary:{id}"));
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&id).arg("EX").arg(60);
        let served = match router.routed::<()>(primary, &set).await {
            Ok(((), node)) => node,
            // READONLY: the shard's primary is a replica now.
            Err(e) if e.kind == K::InvalidState => return Ok(false),
            Err(e) => return Err(e),
        };
        let (got, _) = router
            .routed::<Option<String>>(&served, redis::cmd("GET").arg(&key))
            .await?;
        Ok(got.as_deref() == Some(id.as_str()))
    }

    /// Where a write or read of `shard` starts: its primary as last seen, else the seed.
    pub(super) fn start_of(shard: &HeartbeatShard, seed: &Endpoint) -> Node {
        shard
            .primary
            .as_deref()
            .and_then(|a| Node::parse(a, &seed.host))
            .unwrap_or_else(|| Node::of(seed))
    }
}

/// `shards` with each one's node of `member` in place of its primary, and for each
/// whether it has none (its `primary` is then `None`).
pub(super) fn member_shards(shards: Vec<Shard>, member: &[Node]) -> (Vec<Shard>, Vec<bool>) {
    shards
        .into_iter()
        .map(|mut s| {
            s.primary = s.nodes.iter().find(|n| member.contains(n)).cloned();
            let none = s.primary.is_none();
            (s, none)
        })
        .unzip()
}

/// The heartbeat shards of a topology.
pub(super) fn heartbeat_shards(shards: &[Shard]) -> Vec<HeartbeatShard> {
    shards
        .iter()
        .map(|s| HeartbeatShard::of_slots(s.slots.clone(), s.primary.as_ref().map(Node::to_string)))
        .collect()
}

/// `e` with the shard it concerns named first.
pub(super) fn in_shard(mut e: CloudError, shard: &HeartbeatShard) -> CloudError {
    let label = shard.label();
    if !label.is_empty() {
        e.message = format!("{label}: {}", e.message);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn node(pairs: &[(&str, Value)]) -> Value {
        Value::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [bulk(k), v.clone()])
                .collect(),
        )
    }

    fn shard(slots: &[i64], nodes: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk("slots"),
            Value::Array(slots.iter().map(|s| Value::Int(*s)).collect()),
            bulk("nodes"),
            Value::Array(nodes),
        ])
    }

    fn redis7_node(port: i64, role: &str, health: &str) -> Value {
        node(&[
            ("id", bulk("abc")),
            ("port", Value::Int(port)),
            ("ip", bulk("10.0.0.5")),
            ("endpoint", bulk("10.0.0.5")),
            ("role", bulk(role)),
            ("replication-offset", Value::Int(42)),
            ("health", bulk(health)),
        ])
    }

    /// CLUSTER SHARDS of redis 7.0.15 (RESP2), as `redis-cli` showed it for a 3-shard
    /// cluster with a replica each, one shard's primary replaced after a takeover.
    #[test]
    fn cluster_shards_are_read_in_slot_order_with_their_primaries() {
        let reply = Value::Array(vec![
            shard(
                &[10923, 16383],
                vec![
                    redis7_node(7106, "master", "online"),
                    redis7_node(7103, "replica", "online"),
                ],
            ),
            shard(
                &[0, 5460],
                vec![
                    redis7_node(7104, "replica", "loading"),
                    redis7_node(7101, "master", "online"),
                ],
            ),
            // A primary that serves nothing (just added, or drained).
            shard(&[], vec![redis7_node(7107, "master", "online")]),
            shard(
                &[5461, 6000, 6001, 10922],
                vec![redis7_node(7102, "master", "failed")],
            ),
        ]);
        let shards = parse_shards(&reply, "seed.example", false).unwrap();
        let seen: Vec<(String, Option<String>)> = shards
            .iter()
            .map(|s| (s.slots.to_string(), s.primary.as_ref().map(Node::to_string)))
            .collect();
        assert_eq!(
            seen,
            [
                ("0-5460".into(), Some("10.0.0.5:7101".into())),
                ("5461-10922".into(), None),
                ("10923-16383".into(), Some("10.0.0.5:7106".into())),
            ]
        );
        // Every node that has not failed, whatever its role: a lab member's nodes are
        // found among them.
        let nodes: Vec<Vec<String>> = shards
            .iter()
            .map(|s| s.nodes.iter().map(Node::to_string).collect())
            .collect();
        assert_eq!(
            nodes,
            [
                vec!["10.0.0.5:7104", "10.0.0.5:7101"],
                vec![],
                vec!["10.0.0.5:7106", "10.0.0.5:7103"],
            ]
        );
    }

    #[test]
    fn a_node_is_reached_at_its_preferred_endpoint_and_its_tls_port_under_tls() {
        let n = node(&[
            ("port", Value::Int(6379)),
            ("tls-port", Value::Int(6380)),
            ("ip", bulk("10.0.0.5")),
            ("endpoint", bulk("?")),
            ("hostname", bulk("node-1.cache.example")),
            ("role", bulk("master")),
            ("health", bulk("online")),
        ]);
        let reply = Value::Array(vec![shard(&[0, 16383], vec![n.clone()])]);
        let tls = parse_shards(&reply, "seed", true).unwrap();
        assert_eq!(
            tls[0].primary.as_ref().unwrap().to_string(),
            "node-1.cache.example:6380"
        );
        let plain = parse_shards(&reply, "seed", false).unwrap();
        assert_eq!(plain[0].primary.as_ref().unwrap().port, 6379);
        // Nothing known of its address: the host the client connected to.
        let bare = node(&[
            ("port", Value::Int(7000)),
            ("endpoint", bulk("")),
            ("role", bulk("master")),
            ("health", bulk("online")),
        ]);
        let reply = Value::Array(vec![shard(&[0, 16383], vec![bare])]);
        let s = parse_shards(&reply, "cfg.cache.example", false).unwrap();
        assert_eq!(
            s[0].primary.as_ref().unwrap().to_string(),
            "cfg.cache.example:7000"
        );
    }

    #[test]
    fn resp3_maps_are_read_too() {
        let map = |pairs: Vec<(&str, Value)>| {
            Value::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
        };
        let reply = Value::Array(vec![map(vec![
            (
                "slots",
                Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            ),
            (
                "nodes",
                Value::Array(vec![map(vec![
                    ("port", Value::Int(7000)),
                    ("endpoint", bulk("127.0.0.1")),
                    ("role", bulk("master")),
                    ("health", bulk("online")),
                ])]),
            ),
        ])]);
        let s = parse_shards(&reply, "seed", false).unwrap();
        assert_eq!(s[0].slots.to_string(), "0-16383");
    }

    #[test]
    fn a_malformed_topology_is_an_error_not_a_guess() {
        for bad in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![shard(&[0], vec![])]),
            Value::Array(vec![shard(&[0, 16384], vec![])]),
        ] {
            assert!(parse_shards(&bad, "seed", false).is_err(), "{bad:?}");
        }
    }

    /// CLUSTER SLOTS (redis 6): one entry per range, primary first.
    #[test]
    fn cluster_slots_gather_a_primarys_ranges() {
        let entry = |a: i64, b: i64, host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::Int(a),
                Value::Int(b),
                Value::Array(vec![bulk(host), Value::Int(port), bulk(id)]),
                Value::Array(vec![bulk(host), Value::Int(port + 3), bulk("r")]),
            ])
        };
        let reply = Value::Array(vec![
            entry(5461, 10922, "127.0.0.1", 7002, "b"),
            entry(0, 5000, "127.0.0.1", 7001, "a"),
            entry(5001, 5460, "127.0.0.1", 7001, "a"),
            entry(10923, 16383, "", 7003, "c"),
        ]);
        let shards = parse_slots(&reply, "cfg.example").unwrap();
        let seen: Vec<String> = shards
            .iter()
            .map(|s| format!("{} {}", s.slots, s.primary.as_ref().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                "0-5460 127.0.0.1:7001",
                "5461-10922 127.0.0.1:7002",
                "10923-16383 cfg.example:7003"
            ]
        );
        let nodes: Vec<String> = shards[0].nodes.iter().map(Node::to_string).collect();
        assert_eq!(nodes, ["127.0.0.1:7001", "127.0.0.1:7004"]);
    }

    /// A lab member's nodes stand in for the shards' primaries, wherever they are.
    #[test]
    fn a_members_shards_are_judged_at_its_own_nodes() {
        let n = |port| Node {
            host: "127.0.0.1".into(),
            port,
        };
        let shard = |slots: (u16, u16), nodes: Vec<Node>| Shard {
            slots: Slots::new(vec![slots]),
            primary: nodes.first().cloned(),
            nodes,
        };
        let shards = vec![
            shard((0, 5460), vec![n(7100), n(7103)]),
            // A takeover made the member's node the primary here.
            shard((5461, 10922), vec![n(7104), n(7101)]),
            shard((10923, 16383), vec![n(7102), n(7106)]),
        ];
        let (mine, none) = member_shards(shards, &[n(7103), n(7104), n(7105)]);
        let at: Vec<Option<u16>> = mine
            .iter()
            .map(|s| s.primary.as_ref().map(|p| p.port))
            .collect();
        assert_eq!(at, [Some(7103), Some(7104), None]);
        assert_eq!(none, [false, false, true]);
    }

    #[test]
    fn redirect_addresses_and_cluster_mode_are_read() {
        assert_eq!(
            Node::parse("127.0.0.1:7103", "seed").unwrap().to_string(),
            "127.0.0.1:7103"
        );
        assert_eq!(
            Node::parse(":7103", "seed").unwrap().to_string(),
            "seed:7103"
        );
        let v6 = Node::parse("[::1]:7000", "seed").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 7000));
        assert_eq!(v6.to_string(), "[::1]:7000");
        assert!(Node::parse("nope", "seed").is_none());
        assert!(Node::parse("h:0", "seed").is_none());
        assert!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
        assert!(!cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
        assert!(!cluster_enabled(""));
    }
}
