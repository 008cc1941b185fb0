//! What applications see, derived from the simulated control planes.
//!
//! A verification gate must pass only once a failover really happened, so every
//! probe reads the same state the control-plane calls change (see the module docs of
//! `sim` for the models). Host names are first resolved through the simulated zones
//! (a probe of `db-writer.acme.internal` follows its CNAME, as a client would).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::config::LocalServer;
use super::lab::endpoint_of;
use super::names::{fqdn, in_zone, region_in, url_host};
use super::state::{RgShape, SimBeat, SimZone, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::cluster::key_slot;
use crate::cloud::{
    CloudErrorKind as K, CloudResult, ClusterMode, ClusterObservation, DataPlane, Endpoint,
    Heartbeat, HeartbeatShard, HeartbeatStore, HeartbeatTarget, HttpObservation, HttpProbe,
    MemberRole, PostgresObservation, RecordSet, ShardBeats, ShardObservation, Slots,
    ValkeyObservation,
};

/// A data store as a client reaches it: its key (`cluster:ARN`, `rg:ID`), its region,
/// its role, whether a failover away from it is under way (it takes no writes then), its
/// instances, and the stores replicating from it with their lag.
struct Store {
    key: String,
    region: String,
    writer: bool,
    failing_away: bool,
    instances: u32,
    replicas: Vec<(String, Duration)>,
}

/// Who answers a probe: the simulated data plane, or a bound local server (and whether
/// a failover fenced it).
enum Reach<T> {
    Sim(T),
    Bound(LocalServer, bool),
}

/// A heartbeat target as the bound server behind it is reached.
fn bound_target(target: &HeartbeatTarget, b: &LocalServer) -> HeartbeatTarget {
    let e = &target.endpoint;
    HeartbeatTarget {
        endpoint: endpoint_of(b, e.user.as_deref(), e.password_env.as_deref()),
        store: match &target.store {
            HeartbeatStore::Postgres { database, table } => HeartbeatStore::Postgres {
                database: b.database.clone().unwrap_or_else(|| database.clone()),
                table: table.clone(),
            },
            other => other.clone(),
        },
    }
}

/// CNAME chains longer than this are answered as they stand (resolvers give up too).
const MAX_CHAIN: usize = 8;

/// What the simulated resolver found for a name.
enum Answer {
    /// No zone has the name: NXDOMAIN.
    NxDomain,
    /// The answer's values (empty: the name exists, with no record of that type).
    Values(Vec<String>),
}

impl State {
    /// The zone answering for `name`: the one with the longest matching name.
    fn zone_for(&self, name: &str) -> Option<&SimZone> {
        self.zones
            .values()
            .filter(|z| in_zone(name, &z.name))
            .max_by_key(|z| z.name.len())
    }

    /// The record set a resolver is answered from among those of one name and type:
    /// failover records answer from the healthy PRIMARY, else the SECONDARY (the
    /// PRIMARY when both are unhealthy); weighted ones from the heaviest.
    fn pick<'a>(&self, sets: &[&'a RecordSet], now: Duration) -> Option<&'a RecordSet> {
        let healthy = |r: &RecordSet| {
            r.health_check_id.as_ref().is_none_or(|id| {
                self.health_checks
                    .get(id)
                    .is_none_or(|hc| self.health_check_healthy(hc, now))
            })
        };
        let role = |want: &str| {
            sets.iter()
                .copied()
                .find(|r| r.failover.as_deref() == Some(want))
        };
        if let Some(primary) = role("PRIMARY") {
            if healthy(primary) {
                return Some(primary);
            }
            return match role("SECONDARY") {
                Some(s) if healthy(s) => Some(s),
                _ => Some(primary),
            };
        }
        if let Some(secondary) = role("SECONDARY") {
            return Some(secondary);
        }
        if sets.iter().any(|r| r.weight.is_some()) {
            return sets.iter().copied().max_by_key(|r| r.weight.unwrap_or(0));
        }
        sets.first().copied()
    }

    fn values_of(r: &RecordSet) -> Vec<String> {
        match &r.alias {
            Some(a) => vec![a.dns_name.trim_end_matches('.').to_string()],
            None => r.values.clone(),
        }
    }

    /// Resolves `name` for `record_type` against the published records, following
    /// CNAMEs for A and AAAA queries while they stay inside the simulated zones.
    fn resolve_name(&self, name: &str, record_type: &str, now: Duration) -> Answer {
        // Aurora's global writer endpoints are AWS's own names (no simulated zone): a
        // CNAME to the writer's cluster endpoint, where the chain leaves the world.
        if let Some(target) = self.global_endpoint_target(name) {
            return Answer::Values(vec![target]);
        }
        let mut name = fqdn(name);
        let mut followed = Vec::new();
        for _ in 0..MAX_CHAIN {
            let Some(zone) = self.zone_for(&name) else {
                return if followed.is_empty() {
                    Answer::NxDomain
                } else {
                    // The chain left the simulated zones: answer with where it went.
                    Answer::Values(followed)
                };
            };
            let at_name: Vec<&RecordSet> =
                zone.published.iter().filter(|r| r.name == name).collect();
            if at_name.is_empty() {
                return if followed.is_empty() {
                    Answer::NxDomain
                } else {
                    Answer::Values(followed)
                };
            }
            let of_type: Vec<&RecordSet> = at_name
                .iter()
                .copied()
                .filter(|r| r.record_type == record_type)
                .collect();
            if let Some(r) = self.pick(&of_type, now) {
                return Answer::Values(Self::values_of(r));
            }
            let cnames: Vec<&RecordSet> = at_name
                .iter()
                .copied()
                .filter(|r| r.record_type == "CNAME")
                .collect();
            match self.pick(&cnames, now) {
                Some(c) if matches!(record_type, "A" | "AAAA") => {
                    let Some(target) = Self::values_of(c).into_iter().next() else {
                        return Answer::Values(Vec::new());
                    };
                    followed = vec![target.clone()];
                    name = fqdn(&target);
                }
                _ => return Answer::Values(Vec::new()),
            }
        }
        Answer::Values(followed)
    }

    /// The host a client ends up connecting to: `host` after following CNAMEs through
    /// the simulated zones.
    fn final_host(&self, host: &str, now: Duration) -> String {
        match self.resolve_name(host, "A", now) {
            Answer::Values(v) if !v.is_empty() => v[0].trim_end_matches('.').to_ascii_lowercase(),
            _ => host.trim_end_matches('.').to_ascii_lowercase(),
        }
    }

    /// The data store a client of `endpoint` reaches: its host through the simulated
    /// zones to a cluster (PostgreSQL: the host's first label is the cluster's name) or
    /// a replication group (Valkey), which must be in a reachable region.
    fn data_store(
        &self,
        endpoint: &Endpoint,
        postgres: bool,
        op: &'static str,
        now: Duration,
    ) -> CloudResult<Store> {
        let host = self.final_host(&endpoint.host, now);
        let found = if postgres {
            let name = host.split('.').next().unwrap_or_default();
            self.clusters
                .values()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .map(|c| {
                    let failing_away = c.global.as_ref().is_some_and(|g| {
                        self.global_clusters
                            .get(g)
                            .and_then(|g| g.op.as_ref())
                            .is_some_and(|op| op.from_arn == c.arn)
                    });
                    let replicas = c
                        .global
                        .as_ref()
                        .map(|g| {
                            self.members(g)
                                .into_iter()
                                .filter(|m| m.arn != c.arn)
                                .map(|m| (format!("cluster:{}", m.arn), m.lag))
                                .collect()
                        })
                        .unwrap_or_default();
                    Store {
                        key: format!("cluster:{}", c.arn),
                        region: c.region.clone(),
                        writer: c.writer,
                        failing_away,
                        instances: c.instances,
                        replicas,
                    }
                })
        } else {
            let id = replication_group_of(&host);
            self.replication_groups
                .values()
                .find(|rg| rg.id.eq_ignore_ascii_case(id))
                .map(|rg| {
                    let replicas = rg
                        .global
                        .as_ref()
                        .map(|g| {
                            self.replication_groups
                                .values()
                                .filter(|m| m.global.as_ref() == Some(g) && m.id != rg.id)
                                .map(|m| (format!("rg:{}", m.id), Duration::ZERO))
                                .collect()
                        })
                        .unwrap_or_default();
                    Store {
                        key: format!("rg:{}", rg.id),
                        region: rg.region.clone(),
                        writer: rg.role == MemberRole::Primary,
                        failing_away: false,
                        instances: 1,
                        replicas,
                    }
                })
        };
        let Some(store) = found else {
            return Err(fail(
                K::NotFound,
                op,
                None,
                "",
                if postgres {
                    format!(
                        "could not translate host name \"{}\" to address",
                        endpoint.host
                    )
                } else {
                    format!("could not resolve host {}", endpoint.host)
                },
            ));
        };
        if !self.reachable(&store.region, "data", now) {
            return Err(fail(
                K::Unreachable,
                op,
                Some(&store.region),
                "",
                format!(
                    "connection to {}:{} timed out",
                    endpoint.host, endpoint.port
                ),
            ));
        }
        if store.instances == 0 {
            return Err(fail(
                K::Transient,
                op,
                Some(&store.region),
                "",
                format!(
                    "connection to {}:{} refused: no instances",
                    endpoint.host, endpoint.port
                ),
            ));
        }
        Ok(store)
    }

    /// The data store a heartbeat target reaches.
    fn heartbeat_store(
        &self,
        target: &HeartbeatTarget,
        op: &'static str,
        now: Duration,
    ) -> CloudResult<Store> {
        let postgres = matches!(target.store, HeartbeatStore::Postgres { .. });
        self.data_store(&target.endpoint, postgres, op, now)
    }

    fn known_regions(&self) -> Vec<String> {
        let mut r: Vec<String> = self.regions.keys().cloned().collect();
        r.push(self.from.clone());
        r.push(self.to.clone());
        r
    }
}

/// The replication group a Valkey host names: `master.<id>.…` / `replica.<id>.…` /
/// `clustercfg.<id>.…` (ElastiCache's primary, reader and configuration endpoints),
/// else the first label.
fn replication_group_of(host: &str) -> &str {
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    match first {
        "master" | "replica" | "clustercfg" => labels.next().unwrap_or_default(),
        other => other,
    }
}

/// A simulated cluster's shards (as ElastiCache splits the slots), each with its
/// number (1 for the first) and its primary node's address.
fn sim_shards(rg: &str, shape: &RgShape) -> Vec<(u16, Slots, String)> {
    Slots::even_split(shape.shards)
        .into_iter()
        .zip(1u16..)
        .map(|(slots, n)| (n, slots, format!("{rg}-{n:04}-001.cache.sim:6379")))
        .collect()
}

/// The number of the shard of a simulated cluster serving `shard`'s key (its tag's
/// slot), or `None` when the shard has no tag.
fn shard_number(shape: &RgShape, shard: &HeartbeatShard) -> Option<u16> {
    let slot = key_slot(shard.tag.as_deref()?.as_bytes());
    Slots::even_split(shape.shards)
        .iter()
        .zip(1u16..)
        .find(|(s, _)| s.contains(slot))
        .map(|(_, n)| n)
}

/// The heartbeats of one shard of a store are kept under `STORE/TAG`.
fn shard_store(store: &str, shard: &HeartbeatShard) -> String {
    match &shard.tag {
        Some(tag) => format!("{store}/{tag}"),
        None => store.to_string(),
    }
}

impl State {
    /// The shape of a data store (`rg:ID`); the default for anything else.
    fn shape_of(&self, store: &str) -> RgShape {
        store
            .strip_prefix("rg:")
            .and_then(|id| self.replication_groups.get(id))
            .map(|rg| rg.shape.clone())
            .unwrap_or_default()
    }

    /// Whether a probe of `store` with `mode` treats it as a cluster. A server without
    /// cluster support refuses `cluster = true` as Valkey does.
    fn probed_as_cluster(
        &self,
        store: &str,
        host: &str,
        mode: ClusterMode,
        op: &'static str,
    ) -> CloudResult<bool> {
        let enabled = self.shape_of(store).cluster_enabled;
        match mode {
            ClusterMode::Detect => Ok(enabled),
            ClusterMode::Disabled => Ok(false),
            ClusterMode::Enabled if enabled => Ok(true),
            ClusterMode::Enabled => Err(fail(
                K::InvalidRequest,
                op,
                None,
                "",
                format!(
                    "{host}: ERR This instance has cluster support disabled (the step says \
                     cluster = true; leave it out to detect the mode)"
                ),
            )),
        }
    }
}

const OP_HTTP: &str = "Http";

impl SimWorld {
    /// A data-plane call: read-only, routed by the world's rules rather than a region.
    async fn data_call<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut State, Duration) -> CloudResult<T>,
    ) -> CloudResult<T> {
        self.call("dataplane", op, Route::DataPlane, false, json!({}), f)
            .await
    }
}

#[async_trait]
impl DataPlane for SimWorld {
    async fn http(&self, probe: &HttpProbe) -> CloudResult<HttpObservation> {
        let started = self.clock().elapsed();
        let (status, body, latency) = self
            .data_call(OP_HTTP, |s, now| {
                let Some(host) = url_host(&probe.url) else {
                    return Err(fail(
                        K::InvalidRequest,
                        OP_HTTP,
                        None,
                        "",
                        format!("{} is not an http(s) URL", probe.url),
                    ));
                };
                let served_by = s.final_host(&host, now);
                let known = s.known_regions();
                let region = region_in(&served_by, &known).or_else(|| region_in(&host, &known));
                let latency = s.duration(&format!("http:{host}"), s.timing.http_latency);
                let resolvable = !matches!(s.resolve_name(&host, "A", now), Answer::NxDomain);
                let (status, body) = match region {
                    Some(r) if s.app_up(&r, now) => (200, json!({ "region": r }).to_string()),
                    Some(_) => (503, "service unavailable".to_string()),
                    None if resolvable => {
                        (502, format!("no simulated application behind {served_by}"))
                    }
                    None => {
                        return Err(fail(
                            K::NotFound,
                            OP_HTTP,
                            None,
                            "",
                            format!("could not resolve host {host}"),
                        ));
                    }
                };
                let body = if probe.method.eq_ignore_ascii_case("HEAD") {
                    String::new()
                } else {
                    body
                };
                Ok((status, body, latency))
            })
            .await?;
        let so_far = self.clock().elapsed().saturating_sub(started);
        let total = so_far.saturating_add(latency);
        if total > probe.timeout {
            self.sleep(probe.timeout.saturating_sub(so_far)).await;
            return Err(fail(
                K::Transient,
                OP_HTTP,
                None,
                "",
                format!("{} timed out after {:?}", probe.url, probe.timeout),
            ));
        }
        self.sleep(latency).await;
        Ok(HttpObservation {
            status,
            body,
            latency: self.clock().elapsed().saturating_sub(started),
        })
    }

    async fn postgres(
        &self,
        endpoint: &Endpoint,
        database: &str,
        canary: bool,
    ) -> CloudResult<PostgresObservation> {
        const OP: &str = "Postgres";
        let reach = self
            .data_call(OP, |s, now| {
                let c = s.data_store(endpoint, true, OP, now)?;
                if let Some(b) = s.bindings.get(&c.key) {
                    return Ok(Reach::Bound(b.clone(), s.fenced.contains(&c.key)));
                }
                let in_recovery = !c.writer;
                Ok(Reach::Sim(PostgresObservation {
                    in_recovery,
                    canary_ok: canary.then_some(!in_recovery),
                }))
            })
            .await?;
        match reach {
            Reach::Sim(o) => Ok(o),
            Reach::Bound(b, fenced) => {
                let ep = endpoint_of(
                    &b,
                    endpoint.user.as_deref(),
                    endpoint.password_env.as_deref(),
                );
                let db = b.database.as_deref().unwrap_or(database);
                let mut o = self.live().postgres(&ep, db, canary).await?;
                // Fenced by a failover: a reader to every client, as Aurora's old writer.
                o.in_recovery |= fenced;
                Ok(o)
            }
        }
    }

    async fn valkey(
        &self,
        endpoint: &Endpoint,
        cluster: ClusterMode,
        canary: bool,
    ) -> CloudResult<ValkeyObservation> {
        const OP: &str = "Valkey";
        let reach = self
            .data_call(OP, |s, now| {
                let rg = s.data_store(endpoint, false, OP, now)?;
                if let Some(b) = s.bindings.get(&rg.key) {
                    return Ok(Reach::Bound(b.clone(), false));
                }
                let primary = rg.writer;
                let role = if primary { "master" } else { "slave" };
                let shape = s.shape_of(&rg.key);
                if s.probed_as_cluster(&rg.key, &endpoint.host, cluster, OP)? {
                    let id = rg.key.trim_start_matches("rg:");
                    let shards = sim_shards(id, &shape)
                        .into_iter()
                        .map(|(_, slots, address)| ShardObservation {
                            slots,
                            primary: Some(address),
                            role: Some(role.into()),
                            problem: None,
                            canary_ok: (canary && primary).then_some(true),
                        })
                        .collect();
                    return Ok(Reach::Sim(ValkeyObservation {
                        role: role.into(),
                        canary_ok: canary.then_some(primary),
                        cluster: Some(ClusterObservation {
                            shards,
                            unserved_slots: 0,
                        }),
                    }));
                }
                if canary && primary && shape.shards > 1 {
                    // A cluster probed as one node: the canary's key belongs to another
                    // shard (as it does for most keys), and the node says so.
                    let slot = key_slot(b"drpilot:canary");
                    let (_, _, owner) = sim_shards(rg.key.trim_start_matches("rg:"), &shape)
                        .into_iter()
                        .find(|(_, slots, _)| slots.contains(slot))
                        .unwrap_or((0, Slots::default(), String::new()));
                    return Err(fail(
                        K::Transient,
                        OP,
                        None,
                        "MOVED",
                        format!("{}: MOVED {slot} {owner}", endpoint.host),
                    ));
                }
                Ok(Reach::Sim(ValkeyObservation {
                    role: role.into(),
                    canary_ok: canary.then_some(primary),
                    cluster: None,
                }))
            })
            .await?;
        match reach {
            Reach::Sim(o) => Ok(o),
            Reach::Bound(b, _) => {
                let ep = endpoint_of(
                    &b,
                    endpoint.user.as_deref(),
                    endpoint.password_env.as_deref(),
                );
                if b.nodes.is_empty() {
                    self.live().valkey(&ep, cluster, canary).await
                } else {
                    // One member of a datastore bound to its nodes of a real cluster.
                    self.live()
                        .valkey_member(&ep, &b.nodes, cluster, canary)
                        .await
                }
            }
        }
    }

    async fn resolve(
        &self,
        name: &str,
        record_type: &str,
        _resolvers: &[String],
    ) -> CloudResult<Vec<String>> {
        const OP: &str = "Dns";
        self.data_call(OP, |s, now| {
            match s.resolve_name(name, &record_type.to_ascii_uppercase(), now) {
                Answer::NxDomain => Err(fail(
                    K::NotFound,
                    OP,
                    None,
                    "NXDOMAIN",
                    format!("{name}: no such name"),
                )),
                Answer::Values(v) => Ok(v),
            }
        })
        .await
    }
    async fn heartbeat_shards(&self, target: &HeartbeatTarget) -> CloudResult<Vec<HeartbeatShard>> {
        const OP: &str = "HeartbeatShards";
        let HeartbeatStore::Valkey { cluster: mode, .. } = &target.store else {
            // A table is one stream: nothing to ask.
            return Ok(vec![HeartbeatShard::whole()]);
        };
        let reach = self
            .data_call(OP, |s, now| {
                let store = s.heartbeat_store(target, OP, now)?;
                if let Some(b) = s.bindings.get(&store.key) {
                    return Ok(Reach::Bound(b.clone(), false));
                }
                if !s.probed_as_cluster(&store.key, &target.endpoint.host, *mode, OP)? {
                    return Ok(Reach::Sim(vec![HeartbeatShard::whole()]));
                }
                let id = store.key.trim_start_matches("rg:").to_string();
                Ok(Reach::Sim(
                    sim_shards(&id, &s.shape_of(&store.key))
                        .into_iter()
                        .map(|(_, slots, address)| HeartbeatShard::of_slots(slots, Some(address)))
                        .collect(),
                ))
            })
            .await?;
        match reach {
            Reach::Sim(shards) => Ok(shards),
            Reach::Bound(b, _) => {
                self.live()
                    .heartbeat_shards(&bound_target(target, &b))
                    .await
            }
        }
    }

    async fn heartbeat_write(
        &self,
        target: &HeartbeatTarget,
        shard: &HeartbeatShard,
        beat: &Heartbeat,
        keep: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "HeartbeatWrite";
        let bound = self
            .data_call(OP, |s, now| {
                let Store {
                    key,
                    region,
                    writer,
                    failing_away,
                    replicas,
                    ..
                } = s.heartbeat_store(target, OP, now)?;
                let writable = writer && !failing_away;
                if let Some(b) = s.bindings.get(&key) {
                    return Ok(Some(b.clone()));
                }
                if !writable {
                    return Err(fail(
                        K::InvalidState,
                        OP,
                        Some(&region),
                        "",
                        format!(
                            "{}: cannot write: the server is read-only (a replica, or \
                             failing over)",
                            target.endpoint.host
                        ),
                    ));
                }
                let shape = s.shape_of(&key);
                let number = if shard.tag.is_some() {
                    if !shape.cluster_enabled {
                        return Err(fail(
                            K::InvalidRequest,
                            OP,
                            Some(&region),
                            "",
                            format!(
                                "{}: ERR This instance has cluster support disabled",
                                target.endpoint.host
                            ),
                        ));
                    }
                    shard_number(&shape, shard)
                } else {
                    None
                };
                // A replica whose shard is cut receives nothing of it.
                let replicas: Vec<(String, Duration)> = replicas
                    .into_iter()
                    .filter(|(store, _)| {
                        let cut = number.is_some_and(|n| {
                            store
                                .strip_prefix("rg:")
                                .and_then(|id| s.replication_groups.get(id))
                                .is_some_and(|rg| rg.shard_cut(n, now))
                        });
                        !cut
                    })
                    .collect();
                let cutoff = crate::heartbeat::before(beat.at_ms, keep);
                let mut deliver = |store: String, visible_at: Duration| {
                    let store = shard_store(&store, shard);
                    let beats = s.heartbeats.entry(store).or_default();
                    beats.retain(|b| b.beat.at_ms >= cutoff);
                    if !beats
                        .iter()
                        .any(|b| b.beat.writer == beat.writer && b.beat.seq == beat.seq)
                    {
                        beats.push(SimBeat {
                            beat: beat.clone(),
                            visible_at,
                        });
                    }
                };
                deliver(key, now);
                for (replica, lag) in replicas {
                    deliver(replica, now.saturating_add(lag));
                }
                Ok(None)
            })
            .await?;
        match bound {
            None => Ok(()),
            Some(b) => {
                self.live()
                    .heartbeat_write(&bound_target(target, &b), shard, beat, keep)
                    .await
            }
        }
    }

    async fn heartbeat_read(
        &self,
        target: &HeartbeatTarget,
        since_ms: i64,
    ) -> CloudResult<Vec<ShardBeats>> {
        const OP: &str = "HeartbeatRead";
        let reach = self
            .data_call(OP, |s, now| {
                let key = s.heartbeat_store(target, OP, now)?.key;
                if let Some(b) = s.bindings.get(&key) {
                    return Ok(Reach::Bound(b.clone(), false));
                }
                let cluster = match &target.store {
                    HeartbeatStore::Valkey { cluster: mode, .. } => {
                        s.probed_as_cluster(&key, &target.endpoint.host, *mode, OP)?
                    }
                    HeartbeatStore::Postgres { .. } => false,
                };
                let shards = if cluster {
                    let id = key.trim_start_matches("rg:").to_string();
                    sim_shards(&id, &s.shape_of(&key))
                        .into_iter()
                        .map(|(_, slots, address)| HeartbeatShard::of_slots(slots, Some(address)))
                        .collect()
                } else {
                    vec![HeartbeatShard::whole()]
                };
                Ok(Reach::Sim(
                    shards
                        .into_iter()
                        .map(|shard| {
                            let beats = s
                                .heartbeats
                                .get(&shard_store(&key, &shard))
                                .map(|beats| {
                                    beats
                                        .iter()
                                        .filter(|b| b.visible_at <= now && b.beat.at_ms >= since_ms)
                                        .map(|b| b.beat.clone())
                                        .collect()
                                })
                                .unwrap_or_default();
                            ShardBeats { shard, beats }
                        })
                        .collect(),
                ))
            })
            .await?;
        match reach {
            Reach::Sim(beats) => Ok(beats),
            Reach::Bound(b, _) => {
                self.live()
                    .heartbeat_read(&bound_target(target, &b), since_ms)
                    .await
            }
        }
    }
}
