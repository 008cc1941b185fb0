//! What applications see, derived from the simulated control planes.
//!
//! A verification gate must pass only once a failover really happened, so every
//! probe reads the same state the control-plane calls change (see the module docs of
//! `sim` for the models). Host names are first resolved through the simulated zones
//! (a probe of `db-writer.acme.internal` follows its CNAME, as a client would).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::names::{fqdn, in_zone, region_in, url_host};
use super::state::{SimZone, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    CloudErrorKind as K, CloudResult, DataPlane, Endpoint, HttpObservation, HttpProbe, MemberRole,
    PostgresObservation, RecordSet, ValkeyObservation,
};

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

    fn known_regions(&self) -> Vec<String> {
        let mut r: Vec<String> = self.regions.keys().cloned().collect();
        r.push(self.from.clone());
        r.push(self.to.clone());
        r
    }
}

/// The replication group a Valkey host names: `master.<id>.…` / `replica.<id>.…`
/// (ElastiCache's primary and reader endpoints), else the first label.
fn replication_group_of(host: &str) -> &str {
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    match first {
        "master" | "replica" => labels.next().unwrap_or_default(),
        other => other,
    }
}

const OP_HTTP: &str = "Http";

#[async_trait]
impl DataPlane for SimWorld {
    async fn http(&self, probe: &HttpProbe) -> CloudResult<HttpObservation> {
        let started = self.clock().elapsed();
        let (status, body, latency) = self
            .call(
                "dataplane",
                OP_HTTP,
                Route::DataPlane,
                false,
                json!({}),
                |s, now| {
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
                },
            )
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
        _database: &str,
        canary: bool,
    ) -> CloudResult<PostgresObservation> {
        const OP: &str = "Postgres";
        self.call(
            "dataplane",
            OP,
            Route::DataPlane,
            false,
            json!({}),
            |s, now| {
                let host = s.final_host(&endpoint.host, now);
                let name = host.split('.').next().unwrap_or_default();
                let Some(c) = s
                    .clusters
                    .values()
                    .find(|c| c.name.eq_ignore_ascii_case(name))
                else {
                    return Err(fail(
                        K::NotFound,
                        OP,
                        None,
                        "",
                        format!(
                            "could not translate host name \"{}\" to address",
                            endpoint.host
                        ),
                    ));
                };
                if !s.reachable(&c.region, now) {
                    return Err(fail(
                        K::Unreachable,
                        OP,
                        Some(&c.region),
                        "",
                        format!(
                            "connection to {}:{} timed out",
                            endpoint.host, endpoint.port
                        ),
                    ));
                }
                if c.instances == 0 {
                    return Err(fail(
                        K::Transient,
                        OP,
                        Some(&c.region),
                        "",
                        format!(
                            "connection to {}:{} refused: no instances",
                            endpoint.host, endpoint.port
                        ),
                    ));
                }
                let in_recovery = !c.writer;
                Ok(PostgresObservation {
                    in_recovery,
                    canary_ok: canary.then_some(!in_recovery),
                })
            },
        )
        .await
    }

    async fn valkey(&self, endpoint: &Endpoint, canary: bool) -> CloudResult<ValkeyObservation> {
        const OP: &str = "Valkey";
        self.call(
            "dataplane",
            OP,
            Route::DataPlane,
            false,
            json!({}),
            |s, now| {
                let host = s.final_host(&endpoint.host, now);
                let id = replication_group_of(&host);
                let Some(rg) = s
                    .replication_groups
                    .values()
                    .find(|rg| rg.id.eq_ignore_ascii_case(id))
                else {
                    return Err(fail(
                        K::NotFound,
                        OP,
                        None,
                        "",
                        format!("could not resolve host {}", endpoint.host),
                    ));
                };
                if !s.reachable(&rg.region, now) {
                    return Err(fail(
                        K::Unreachable,
                        OP,
                        Some(&rg.region),
                        "",
                        format!(
                            "connection to {}:{} timed out",
                            endpoint.host, endpoint.port
                        ),
                    ));
                }
                let primary = rg.role == MemberRole::Primary;
                Ok(ValkeyObservation {
                    role: if primary { "master" } else { "slave" }.into(),
                    canary_ok: canary.then_some(primary),
                })
            },
        )
        .await
    }

    async fn resolve(
        &self,
        name: &str,
        record_type: &str,
        _resolvers: &[String],
    ) -> CloudResult<Vec<String>> {
        const OP: &str = "Dns";
        self.call(
            "dataplane",
            OP,
            Route::DataPlane,
            false,
            json!({}),
            |s, now| match s.resolve_name(name, &record_type.to_ascii_uppercase(), now) {
                Answer::NxDomain => Err(fail(
                    K::NotFound,
                    OP,
                    None,
                    "NXDOMAIN",
                    format!("{name}: no such name"),
                )),
                Answer::Values(v) => Ok(v),
            },
        )
        .await
    }
}
