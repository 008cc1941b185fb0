//! What a runbook names: the resources every step, gate and rollback field points at.

use std::collections::BTreeMap;

use crate::cloud::{AliasTarget, RecordSet, RoutingControlState};
use crate::runbook::catalogue::Kind;
use crate::runbook::model::{FieldValue, Fields};
use crate::runbook::{Runbook, catalogue::arn_region};
use crate::sim::names::{fqdn, is_region, region_in, url_host};

/// What a scanned cluster ARN was used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Use {
    /// Promoted by a failover, switchover or detach: a secondary before.
    Target,
    /// Its lost writes are kept: the primary before.
    OldPrimary,
    /// Read only.
    Any,
}

/// How a runbook uses a record it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RecordUse {
    /// A cutover writes it: it is a plain record set the step replaces.
    Written,
    /// A check expects it to point at the `to` side (`dns.check`,
    /// `route53.record_points_to`): whatever moves it, the runbook does not write it.
    Observed,
}

/// An ECS service a runbook scales: where, and the count the first step naming it sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ScannedService {
    pub(super) region: String,
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) desired: u32,
}

/// A routing control a runbook names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ScannedControl {
    pub(super) arn: String,
    /// The state the first step setting it sets.
    pub(super) set: Option<RoutingControlState>,
    /// The state the first check of it expects.
    pub(super) checked: Option<RoutingControlState>,
}

#[derive(Default)]
pub(super) struct Scan {
    pub(super) globals: Vec<String>,
    pub(super) clusters: Vec<(String, Option<String>, Use)>,
    pub(super) pg_hosts: Vec<String>,
    pub(super) datastores: Vec<String>,
    /// (replication group, region, datastore, is a failover target).
    pub(super) groups: Vec<(String, Option<String>, Option<String>, bool)>,
    pub(super) buckets: Vec<(String, String)>,
    pub(super) zones: Vec<String>,
    /// (zone, record as the runbook wants it after, how the runbook uses it).
    pub(super) records: Vec<(Option<String>, RecordSet, RecordUse)>,
    /// Health check -> (invert, disable) a flip sets.
    pub(super) flips: BTreeMap<String, (Option<bool>, Option<bool>)>,
    pub(super) health_checks: Vec<String>,
    pub(super) hosts: Vec<String>,
    pub(super) regions: Vec<String>,
    pub(super) promote_regions: Vec<String>,
    /// ARC cluster endpoints, (url, region), as first listed.
    pub(super) arc_endpoints: Vec<(String, String)>,
    /// Routing controls, in the order first named.
    pub(super) controls: Vec<ScannedControl>,
    /// Safety rules a step overrides.
    pub(super) safety_overrides: Vec<String>,
    /// ECS services, in the order first named.
    pub(super) ecs_services: Vec<ScannedService>,
    /// Auto Scaling groups, in the order first named: (region, name, the sizes the
    /// first step naming it gives).
    pub(super) asgs: Vec<(String, String, [Option<u32>; 3])>,
    /// What companion runbooks (run later against the same world) expect a record to
    /// answer when they are done: (fqdn, type) -> values.
    pub(super) hints: BTreeMap<(String, String), Vec<String>>,
    /// The hosts Valkey checks probe, by their entry in `groups`: each names a
    /// replication group, unless it is a record of the runbook's zones (a CNAME such
    /// as `cache.example.internal`, which leads to a group the records name).
    valkey_hosts: Vec<(usize, String)>,
    /// A Valkey check or heartbeat says `cluster = true`: the runbook's cache is a
    /// cluster (cluster mode enabled), so the world builds its replication groups as
    /// clusters of [`DEFAULT_SHARDS`] shards (a `--sim-config` shape still wins).
    pub(super) cluster_mode: bool,
}

/// Shards of a replication group the runbook probes as a cluster, unless the sim
/// config says otherwise: the seed's stack runs 3 (ElastiCache's slot split of 3).
pub(super) const DEFAULT_SHARDS: u16 = 3;

fn routing_state(v: &str) -> Option<RoutingControlState> {
    match v {
        "On" => Some(RoutingControlState::On),
        "Off" => Some(RoutingControlState::Off),
        _ => None,
    }
}

pub(super) fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn s<'a>(f: &'a Fields, key: &str) -> Option<&'a str> {
    match f.get(key) {
        Some(FieldValue::Str(s)) => Some(s),
        _ => None,
    }
}

fn b(f: &Fields, key: &str) -> Option<bool> {
    match f.get(key) {
        Some(FieldValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn list<'a>(f: &'a Fields, key: &str) -> &'a [String] {
    match f.get(key) {
        Some(FieldValue::List(l)) => l,
        _ => &[],
    }
}

fn record_from(f: &Fields) -> Option<RecordSet> {
    let name = s(f, "name")?;
    let record_type = s(f, "type")?.to_string();
    let alias = s(f, "alias_dns_name").map(|dns| AliasTarget {
        dns_name: dns.to_string(),
        zone_id: s(f, "alias_zone_id").unwrap_or_default().to_string(),
        evaluate_target_health: b(f, "evaluate_target_health").unwrap_or(false),
    });
    let int = |k: &str| match f.get(k) {
        Some(FieldValue::Int(i)) => Some(*i),
        _ => None,
    };
    let ttl = int("ttl").or_else(|| alias.is_none().then_some(60));
    Some(RecordSet {
        name: name.to_string(),
        record_type,
        set_identifier: s(f, "set_identifier").map(str::to_string),
        ttl,
        values: list(f, "values").to_vec(),
        alias,
        weight: int("weight"),
        failover: s(f, "failover").map(str::to_string),
        health_check_id: s(f, "health_check_id").map(str::to_string),
        routing: Default::default(),
    })
}

/// The replication group a Valkey host names (`master.ID.…`, `clustercfg.ID.…`), else its
/// first label.
fn group_of_host(host: &str) -> String {
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    match first {
        "master" | "replica" | "clustercfg" => labels.next().unwrap_or_default().to_string(),
        other => other.to_string(),
    }
}

/// A Route 53 hosted zone id: `Z` and uppercase letters and digits.
fn looks_like_zone_id(v: &str) -> bool {
    v.len() >= 5
        && v.len() <= 32
        && v.starts_with('Z')
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Scan {
    pub(super) fn of(rb: &Runbook) -> Self {
        let mut scan = Scan::default();
        for (k, v) in &rb.params {
            if k.contains("zone") && looks_like_zone_id(v) {
                push(&mut scan.zones, v.clone());
            }
            if is_region(v) {
                push(&mut scan.regions, v.clone());
            }
        }
        for step in &rb.steps {
            scan.entry(step.spec.kind, &step.fields);
            if let Some(g) = &step.gate {
                scan.entry(g.spec.kind, &g.fields);
            }
            if let Some(r) = &step.rollback
                && let Some(spec) = r.spec
            {
                scan.entry(spec.kind, &r.fields);
            }
        }
        let records: Vec<(usize, String)> = std::mem::take(&mut scan.valkey_hosts)
            .into_iter()
            .filter(|(_, host)| {
                scan.records
                    .iter()
                    .any(|(_, r, _)| r.name.trim_end_matches('.').eq_ignore_ascii_case(host))
            })
            .collect();
        for (i, _) in records.into_iter().rev() {
            scan.groups.remove(i);
        }
        scan
    }

    /// Adds what a companion runbook names that the world must hold for it too: the
    /// endpoints its data-plane checks connect to, its replication pairs (a failback's
    /// reverse rule), the ECS services and Auto Scaling groups it scales, its
    /// application URLs, and the values its DNS checks expect (which
    /// become the `from` side of the failover pairs, instead of a made-up swap: real
    /// endpoint names differ per region in more than the region).
    pub(super) fn companion(&mut self, rb: &Runbook) {
        let c = Scan::of(rb);
        for h in c.pg_hosts {
            push(&mut self.pg_hosts, h);
        }
        // The services and groups it scales (a failback's home region, which the
        // failover never names).
        for svc in c.ecs_services {
            let known = self.ecs_services.iter().any(|x| {
                x.region == svc.region && x.cluster == svc.cluster && x.service == svc.service
            });
            if !known {
                self.ecs_services.push(svc);
            }
        }
        for g in c.asgs {
            if !self.asgs.iter().any(|(r, n, _)| *r == g.0 && *n == g.1) {
                self.asgs.push(g);
            }
        }
        for pair in c.buckets {
            push(&mut self.buckets, pair);
        }
        for h in c.hosts {
            push(&mut self.hosts, h);
        }
        for (_, r, use_) in c.records {
            if use_ == RecordUse::Observed && !r.values.is_empty() {
                self.hints
                    .entry((fqdn(&r.name), r.record_type.clone()))
                    .or_insert(r.values);
            }
        }
    }

    fn cluster(&mut self, arn: &str, global: Option<&str>, use_: Use) {
        if arn_region(arn).is_none() {
            return;
        }
        match self.clusters.iter_mut().find(|(a, _, _)| a == arn) {
            Some(entry) => {
                if entry.1.is_none() {
                    entry.1 = global.map(str::to_string);
                }
                if entry.2 == Use::Any {
                    entry.2 = use_;
                }
            }
            None => self
                .clusters
                .push((arn.to_string(), global.map(str::to_string), use_)),
        }
    }

    fn entry(&mut self, kind: Kind, f: &Fields) {
        let global = s(f, "global_cluster");
        if let Some(g) = global {
            push(&mut self.globals, g.to_string());
        }
        let ds = s(f, "global_datastore");
        if let Some(d) = ds {
            push(&mut self.datastores, d.to_string());
        }
        for key in ["region", "target_region"] {
            if let Some(r) = s(f, key) {
                push(&mut self.regions, r.to_string());
            }
        }
        match kind {
            Kind::AuroraFailover | Kind::AuroraSwitchover | Kind::AuroraDetachPromote => {
                if let Some(t) = s(f, "target").filter(|t| *t != "auto") {
                    self.cluster(t, global, Use::Target);
                    if let Some(r) = arn_region(t) {
                        push(&mut self.promote_regions, r.to_string());
                    }
                }
            }
            Kind::AuroraSnapshotLostWrites => {
                if let Some(c) = s(f, "cluster") {
                    self.cluster(c, global, Use::OldPrimary);
                }
            }
            Kind::AuroraLagBelow
            | Kind::AuroraClusterAvailable
            | Kind::AuroraServerlessCapacity => {
                if let Some(c) = s(f, "cluster") {
                    self.cluster(c, global, Use::Any);
                }
            }
            Kind::ValkeyFailover => {
                if let Some(rg) = s(f, "target_replication_group") {
                    let region = s(f, "target_region").map(str::to_string);
                    if let Some(r) = &region {
                        push(&mut self.promote_regions, r.clone());
                    }
                    self.groups
                        .push((rg.to_string(), region, ds.map(str::to_string), true));
                }
            }
            Kind::ValkeyCheck => {
                self.cluster_mode |= b(f, "cluster") == Some(true);
                if let Some(h) = s(f, "host") {
                    let host = h.to_ascii_lowercase();
                    let region = region_in(h, &self.regions);
                    self.valkey_hosts.push((self.groups.len(), host.clone()));
                    self.groups
                        .push((group_of_host(&host), region, None, false));
                }
            }
            Kind::PostgresCheck => {
                if let Some(h) = s(f, "host") {
                    push(&mut self.pg_hosts, h.to_ascii_lowercase());
                }
            }
            Kind::S3ReplicationCheck | Kind::S3CanaryReplicated => {
                if let (Some(src), Some(dst)) = (s(f, "source_bucket"), s(f, "destination_bucket"))
                {
                    push(&mut self.buckets, (src.to_string(), dst.to_string()));
                }
            }
            Kind::Route53Cutover => {
                let zone = s(f, "hosted_zone_id");
                if let Some(z) = zone {
                    push(&mut self.zones, z.to_string());
                }
                if let Some(FieldValue::Tables(tables)) = f.get("records") {
                    for t in tables {
                        if let Some(r) = record_from(t) {
                            self.records
                                .push((zone.map(str::to_string), r, RecordUse::Written));
                        }
                    }
                }
            }
            Kind::Route53RecordPointsTo => {
                let zone = s(f, "hosted_zone_id");
                if let Some(z) = zone {
                    push(&mut self.zones, z.to_string());
                }
                if let (Some(n), Some(t)) = (s(f, "name"), s(f, "type")) {
                    let set_identifier = s(f, "set_identifier").map(str::to_string);
                    self.records.push((
                        zone.map(str::to_string),
                        RecordSet {
                            name: n.to_string(),
                            record_type: t.to_string(),
                            // A routed record needs a policy; a weight is the neutral one.
                            weight: set_identifier.as_ref().map(|_| 1),
                            set_identifier,
                            ttl: Some(60),
                            values: list(f, "expect").to_vec(),
                            alias: None,
                            failover: None,
                            health_check_id: None,
                            routing: Default::default(),
                        },
                        RecordUse::Observed,
                    ));
                }
            }
            Kind::DnsCheck => {
                if let Some(n) = s(f, "name") {
                    self.records.push((
                        None,
                        RecordSet {
                            name: n.to_string(),
                            record_type: s(f, "type").unwrap_or("A").to_string(),
                            set_identifier: None,
                            ttl: Some(60),
                            values: list(f, "expect").to_vec(),
                            alias: None,
                            weight: None,
                            failover: None,
                            health_check_id: None,
                            routing: Default::default(),
                        },
                        RecordUse::Observed,
                    ));
                }
            }
            Kind::Route53HealthCheckFlip => {
                for id in list(f, "health_checks") {
                    push(&mut self.health_checks, id.clone());
                    self.flips
                        .insert(id.clone(), (b(f, "invert"), b(f, "disable")));
                }
            }
            Kind::Route53HealthCheckHealthy => {
                if let Some(id) = s(f, "health_check_id") {
                    push(&mut self.health_checks, id.to_string());
                }
            }
            Kind::HttpCheck => {
                if let Some(h) = s(f, "url").and_then(url_host) {
                    push(&mut self.hosts, h);
                }
            }
            Kind::Route53RoutingControl | Kind::Route53RoutingControlState => {
                if let Some(FieldValue::Tables(eps)) = f.get("cluster_endpoints") {
                    for t in eps {
                        if let (Some(url), Some(region)) = (s(t, "url"), s(t, "region")) {
                            push(
                                &mut self.arc_endpoints,
                                (url.to_string(), region.to_string()),
                            );
                        }
                    }
                }
                if let Some(FieldValue::Tables(states)) = f.get("states") {
                    for t in states {
                        if let Some(arn) = s(t, "routing_control_arn") {
                            self.control(arn, s(t, "state").and_then(routing_state), None);
                        }
                    }
                }
                if let Some(arn) = s(f, "routing_control_arn") {
                    self.control(arn, None, s(f, "state").and_then(routing_state));
                }
                for rule in list(f, "override_safety_rules") {
                    push(&mut self.safety_overrides, rule.clone());
                }
            }
            Kind::EcsScaleService => {
                if let (Some(region), Some(cluster), Some(service)) =
                    (s(f, "region"), s(f, "cluster"), s(f, "service"))
                {
                    let desired = match f.get("desired_count") {
                        Some(FieldValue::Int(n)) => u32::try_from(*n).unwrap_or(0),
                        _ => 0,
                    };
                    let same = |x: &ScannedService| {
                        x.region == region && x.cluster == cluster && x.service == service
                    };
                    if !self.ecs_services.iter().any(same) {
                        self.ecs_services.push(ScannedService {
                            region: region.to_string(),
                            cluster: cluster.to_string(),
                            service: service.to_string(),
                            desired,
                        });
                    }
                }
            }
            Kind::AutoscalingSetCapacity => {
                if let (Some(region), Some(group)) = (s(f, "region"), s(f, "group"))
                    && !self.asgs.iter().any(|(r, g, _)| r == region && g == group)
                {
                    let size = |k: &str| match f.get(k) {
                        Some(FieldValue::Int(n)) => u32::try_from(*n).ok(),
                        _ => None,
                    };
                    self.asgs.push((
                        region.to_string(),
                        group.to_string(),
                        [size("min_size"), size("desired_capacity"), size("max_size")],
                    ));
                }
            }
            // Nothing more: what they read (the global cluster, the datastore, the
            // regions) is noted above for every entry, or they call no service.
            Kind::Approval
            | Kind::Wait
            | Kind::AuroraWriterInRegion
            | Kind::AuroraGlobalEndpoint
            | Kind::ValkeyPrimaryInRegion
            | Kind::ValkeyAvailable
            | Kind::Route53ChangeInsync
            | Kind::PostgresHeartbeat => {}
            Kind::ValkeyHeartbeat => self.cluster_mode |= b(f, "cluster") == Some(true),
        }
    }

    /// Notes a routing control; the first state set and the first state checked count.
    fn control(
        &mut self,
        arn: &str,
        set: Option<RoutingControlState>,
        checked: Option<RoutingControlState>,
    ) {
        match self.controls.iter_mut().find(|c| c.arn == arn) {
            Some(c) => {
                c.set = c.set.or(set);
                c.checked = c.checked.or(checked);
            }
            None => self.controls.push(ScannedControl {
                arn: arn.to_string(),
                set,
                checked,
            }),
        }
    }
}
