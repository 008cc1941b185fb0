//! Building the "before" world from a runbook.
//!
//! Every field of every step, gate and rollback is scanned for the resources it names
//! (global clusters, cluster ARNs and endpoints, datastores and replication groups,
//! buckets, zones and records, health checks, URLs, DNS names). Each becomes a healthy,
//! existing resource in the state the runbook expects to start from:
//!
//! - **Regions.** `params.from` and `params.to`. Without them: `from` is the region of
//!   the cluster whose lost writes are kept (the old primary), else of the first
//!   cluster that is not a promotion target, else us-east-1; `to` is the region of the
//!   first promotion target (Aurora or Valkey), else of the first region named that
//!   is not `from`, else us-west-2 (us-east-1 when `from` is us-west-2).
//! - **Aurora.** A global cluster's members are the ARNs steps give with it; other ARNs
//!   join the global cluster whose id prefixes their name, else the only one. Every
//!   global cluster gets a member in `from` (the writer) and one in `to`; a missing one
//!   is derived from a named member by swapping the region in its ARN and name
//!   (`acme-prod-use1` -> `acme-prod-usw2`). Endpoints come from `postgres.check` hosts
//!   whose first label is the cluster's name, else the same swap of another member's,
//!   else `NAME.cluster-HASH.REGION.rds.amazonaws.com`.
//! - **Valkey.** Likewise: the target replication group in `target_region`, groups named
//!   by `valkey.check` hosts (`master.ID.…`), and a primary member in `from` derived by
//!   swapping regions (or `STEM-CODE` from the datastore id without its AWS prefix).
//! - **S3.** Each source/destination pair: versioned buckets, an enabled rule from source
//!   to destination; a bucket's region is the one in its name, else `from` for a source
//!   and `to` for a destination.
//! - **Route 53.** Zones from `hosted_zone_id` fields and zone-id-looking params; a
//!   zone's name is the common suffix of its records' names. A record a step writes
//!   (cutover, `record_points_to`, `dns.check`) exists "before" with its values swapped
//!   from `to` to `from`. A health check's settings are the opposite of what a flip sets
//!   (a step that inverts it finds it not inverted). Each `http.check` URL whose host
//!   names no region gets failover CNAMEs in the zone containing it (or a zone without
//!   records, else a new one): one to `HOST-CODE(from)` and one to `HOST-CODE(to)`,
//!   with a health check (the runbook's, in order) on the PRIMARY. The PRIMARY is in
//!   the region that makes traffic go to `from` before the run: `from`, unless the check
//!   starts inverted (a failback un-inverts it), then `to`.
//! - **Route 53 ARC.** Routing-control ARNs named by `route53.routing_control` steps and
//!   `route53.routing_control_state` checks become the routing controls of one cluster
//!   whose endpoints are the ones the steps list (an endpoint is down while its region
//!   is). Before the run each control is in the opposite of the state the first step
//!   setting it sets; a control only checked is in the state its check expects. The
//!   first control the runbook turns On is the `to` cell, the first it turns Off the
//!   `from` cell; every control gets a RECOVERY_CONTROL health check (healthy exactly
//!   when the control is On). With two controls or more the cluster has the usual
//!   assertion safety rule "at least one control On"; its ARN is the first one a step
//!   overrides, else one in the first control's control panel. In a runbook with cells
//!   the records that checks expect to point at `to` (`dns.check`,
//!   `route53.record_points_to`) are pre-created failover pairs, not plain records: the
//!   PRIMARY holds the `from` value and is bound to the `from` cell's health check, the
//!   SECONDARY holds the `to` value (with the check's set identifier, if it names one)
//!   and is bound to the `to` cell's, so flipping the controls really moves the answer.
//!   Records a cutover writes stay plain, and a pair never replaces them. Likewise each
//!   `http.check` URL's failover CNAMEs are bound to the cells' health checks when the
//!   runbook flips no health check (a flip is then what moves them, as above).
//! - **Companions** ([`SimWorld::from_runbooks`](super::SimWorld::from_runbooks)): runbooks
//!   run later against the same world (a drill's failback) add what they name and the
//!   runbook alone would make up: `postgres.check` hosts (the endpoints above), bucket
//!   pairs (a reverse replication rule), application URLs, and the values their
//!   `dns.check`/`route53.record_points_to` steps expect when those name `from`, which
//!   replace the swapped `from` value of the record (real endpoint names differ across
//!   regions in more than the region). The runbook itself decides regions and states.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::SimConfig;
use super::config::SimConfigError;
use super::faults::FaultSpec;
use super::names::{
    LOWER36, UPPER36, encode, fnv1a, fqdn, in_zone, is_region, parent_domain, region_in,
    short_code, swap_region, url_host,
};
use super::route53::normalize;
use super::state::{
    FaultState, SimBucket, SimCluster, SimDatastore, SimGlobalCluster, SimHealthCheck,
    SimReplicationGroup, SimRoutingControl, SimRule, SimZone, State, Window,
};
use crate::cloud::{AliasTarget, MemberRole, RecordSet, RoutingControlState};
use crate::runbook::catalogue::Kind;
use crate::runbook::diag::{Diagnostics, did_you_mean};
use crate::runbook::model::{FieldValue, Fields};
use crate::runbook::{Runbook, catalogue::arn_region};

const ENGINE_VERSION: &str = "16.4";

/// What a scanned cluster ARN was used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// Promoted by a failover, switchover or detach: a secondary before.
    Target,
    /// Its lost writes are kept: the primary before.
    OldPrimary,
    /// Read only.
    Any,
}

/// How a runbook uses a record it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecordUse {
    /// A cutover writes it: it is a plain record set the step replaces.
    Written,
    /// A check expects it to point at the `to` side (`dns.check`,
    /// `route53.record_points_to`): whatever moves it, the runbook does not write it.
    Observed,
}

/// A routing control a runbook names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ScannedControl {
    arn: String,
    /// The state the first step setting it sets.
    set: Option<RoutingControlState>,
    /// The state the first check of it expects.
    checked: Option<RoutingControlState>,
}

#[derive(Default)]
struct Scan {
    globals: Vec<String>,
    clusters: Vec<(String, Option<String>, Use)>,
    pg_hosts: Vec<String>,
    datastores: Vec<String>,
    /// (replication group, region, datastore, is a failover target).
    groups: Vec<(String, Option<String>, Option<String>, bool)>,
    buckets: Vec<(String, String)>,
    zones: Vec<String>,
    /// (zone, record as the runbook wants it after, how the runbook uses it).
    records: Vec<(Option<String>, RecordSet, RecordUse)>,
    /// Health check -> (invert, disable) a flip sets.
    flips: BTreeMap<String, (Option<bool>, Option<bool>)>,
    health_checks: Vec<String>,
    hosts: Vec<String>,
    regions: Vec<String>,
    promote_regions: Vec<String>,
    /// ARC cluster endpoints, (url, region), as first listed.
    arc_endpoints: Vec<(String, String)>,
    /// Routing controls, in the order first named.
    controls: Vec<ScannedControl>,
    /// Safety rules a step overrides.
    safety_overrides: Vec<String>,
    /// What companion runbooks (run later against the same world) expect a record to
    /// answer when they are done: (fqdn, type) -> values.
    hints: BTreeMap<(String, String), Vec<String>>,
}

fn routing_state(v: &str) -> Option<RoutingControlState> {
    match v {
        "On" => Some(RoutingControlState::On),
        "Off" => Some(RoutingControlState::Off),
        _ => None,
    }
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
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
    })
}

/// The replication group a Valkey host names (`master.ID.…`), else its first label.
fn group_of_host(host: &str) -> String {
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    match first {
        "master" | "replica" => labels.next().unwrap_or_default().to_string(),
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
    fn of(rb: &Runbook) -> Self {
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
        scan
    }

    /// Adds what a companion runbook names that the world must hold for it too: the
    /// endpoints its data-plane checks connect to, its replication pairs (a failback's
    /// reverse rule), its application URLs, and the values its DNS checks expect (which
    /// become the `from` side of the failover pairs, instead of a made-up swap: real
    /// endpoint names differ per region in more than the region).
    fn companion(&mut self, rb: &Runbook) {
        let c = Scan::of(rb);
        for h in c.pg_hosts {
            push(&mut self.pg_hosts, h);
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
            Kind::AuroraLagBelow | Kind::AuroraClusterAvailable => {
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
                if let Some(h) = s(f, "host") {
                    let rg = group_of_host(&h.to_ascii_lowercase());
                    let region = region_in(h, &self.regions);
                    self.groups.push((rg, region, None, false));
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
            // Nothing more: what they read (the global cluster, the datastore, the
            // regions) is noted above for every entry, or they call no service.
            Kind::Approval
            | Kind::Wait
            | Kind::AuroraWriterInRegion
            | Kind::ValkeyPrimaryInRegion
            | Kind::ValkeyAvailable
            | Kind::Route53ChangeInsync
            | Kind::PostgresHeartbeat
            | Kind::ValkeyHeartbeat => {}
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

/// `from` and `to`, by the rules in the module docs.
fn regions(rb: &Runbook, scan: &Scan) -> (String, String) {
    let param = |k: &str| rb.params.get(k).filter(|v| is_region(v)).cloned();
    let from = param("from")
        .or_else(|| {
            scan.clusters
                .iter()
                .find(|c| c.2 == Use::OldPrimary)
                .and_then(|c| arn_region(&c.0).map(str::to_string))
        })
        .or_else(|| {
            scan.clusters
                .iter()
                .find(|c| c.2 != Use::Target)
                .and_then(|c| arn_region(&c.0).map(str::to_string))
        })
        .unwrap_or_else(|| "us-east-1".to_string());
    let to = param("to")
        .or_else(|| scan.promote_regions.iter().find(|r| **r != from).cloned())
        .or_else(|| scan.regions.iter().find(|r| **r != from).cloned())
        .unwrap_or_else(|| {
            if from == "us-west-2" {
                "us-east-1".into()
            } else {
                "us-west-2".into()
            }
        });
    (from, to)
}

/// A name for the counterpart of `name` in `to` (its region swapped, else suffixed).
fn counterpart(name: &str, region: &str, to: &str) -> String {
    let swapped = swap_region(name, region, to);
    if swapped != name {
        swapped
    } else {
        format!("{name}-{}", short_code(to))
    }
}

/// The ARN of the counterpart of cluster `arn` in region `to`.
fn counterpart_arn(arn: &str, to: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let [arn_, partition, service, region, account, kind, name] = parts.as_slice() else {
        return None;
    };
    let name = counterpart(name, region, to);
    Some(format!(
        "{arn_}:{partition}:{service}:{to}:{account}:{kind}:{name}"
    ))
}

fn uuid_like(seed: &str) -> String {
    let hex = encode(fnv1a(seed), 32, b"0123456789abcdef");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The RECOVERY_CONTROL health checks of the two cells: the first routing control the
/// runbook turns Off (`from`) and the first it turns On (`to`).
#[derive(Debug, Default)]
struct Cells {
    from: Option<String>,
    to: Option<String>,
}

impl Cells {
    fn any(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }
}

struct Builder<'a> {
    state: State,
    scan: Scan,
    extra: Vec<String>,
    cfg: &'a SimConfig,
}

/// Builds the world's starting state for a runbook; errors point into the config.
pub(crate) fn build(
    rb: &Runbook,
    companions: &[&Runbook],
    cfg: &SimConfig,
    seed: u64,
    origin: jiff::Timestamp,
) -> Result<State, SimConfigError> {
    let mut scan = Scan::of(rb);
    for c in companions {
        scan.companion(c);
    }
    let (from, to) = regions(rb, &scan);
    let mut extra = scan.regions.clone();
    push(&mut extra, from.clone());
    push(&mut extra, to.clone());
    let mut b = Builder {
        state: State::new(seed, cfg.timing.clone(), &from, &to, origin),
        scan,
        extra,
        cfg,
    };
    b.aurora();
    b.valkey();
    b.buckets();
    let hc_primary = b.health_checks();
    let cells = b.routing_controls();
    b.zones(&hc_primary, &cells);
    for r in b.extra.clone() {
        b.state.regions.entry(r).or_default();
    }
    let regions: Vec<String> = b
        .state
        .clusters
        .values()
        .map(|c| c.region.clone())
        .chain(
            b.state
                .replication_groups
                .values()
                .map(|r| r.region.clone()),
        )
        .chain(b.state.buckets.values().map(|b| b.region.clone()))
        .collect();
    for r in regions {
        b.state.regions.entry(r).or_default();
    }
    b.overrides()?;
    b.state.faults = cfg
        .faults
        .iter()
        .cloned()
        .map(|spec: FaultSpec| FaultState { spec, injected: 0 })
        .collect();
    Ok(b.state)
}

impl Builder<'_> {
    fn from(&self) -> String {
        self.state.from.clone()
    }

    fn to(&self) -> String {
        self.state.to.clone()
    }

    fn aurora(&mut self) {
        let (from, to) = (self.from(), self.to());
        // Which global cluster each scanned ARN belongs to.
        let mut members: BTreeMap<String, Vec<(String, Use)>> = BTreeMap::new();
        let mut standalone = Vec::new();
        for (arn, global, use_) in self.scan.clusters.clone() {
            let name = arn.rsplit(':').next().unwrap_or_default().to_string();
            let global = global
                .or_else(|| {
                    self.scan
                        .globals
                        .iter()
                        .find(|g| name.starts_with(g.as_str()))
                        .cloned()
                })
                .or_else(|| (self.scan.globals.len() == 1).then(|| self.scan.globals[0].clone()));
            match global {
                Some(g) => members.entry(g).or_default().push((arn, use_)),
                None => standalone.push(arn),
            }
        }
        for g in self.scan.globals.clone() {
            let mut list = members.remove(&g).unwrap_or_default();
            let in_region = |list: &[(String, Use)], r: &str| {
                list.iter().any(|(a, _)| arn_region(a) == Some(r))
            };
            if list.is_empty() {
                list.push((
                    format!(
                        "arn:aws:rds:{from}:111122223333:cluster:{g}-{}",
                        short_code(&from)
                    ),
                    Use::Any,
                ));
            }
            for region in [&from, &to] {
                if !in_region(&list, region) {
                    let base = list
                        .iter()
                        .find(|(a, _)| arn_region(a) == Some(from.as_str()))
                        .or_else(|| list.first())
                        .map(|(a, _)| a.clone())
                        .unwrap_or_default();
                    if let Some(arn) = counterpart_arn(&base, region) {
                        list.push((arn, Use::Any));
                    }
                }
            }
            let writer = list
                .iter()
                .find(|(a, u)| *u == Use::OldPrimary && arn_region(a) == Some(from.as_str()))
                .or_else(|| {
                    list.iter()
                        .find(|(a, _)| arn_region(a) == Some(from.as_str()))
                })
                .map(|(a, _)| a.clone())
                .unwrap_or_default();
            self.state.global_clusters.insert(
                g.clone(),
                SimGlobalCluster {
                    id: g.clone(),
                    engine_version: ENGINE_VERSION.into(),
                    op: None,
                },
            );
            for (arn, _) in list {
                let is_writer = arn == writer;
                self.add_cluster(&arn, Some(&g), is_writer);
            }
        }
        for arn in standalone {
            self.add_cluster(&arn, None, true);
        }
    }

    fn add_cluster(&mut self, arn: &str, global: Option<&str>, writer: bool) {
        if self.state.clusters.contains_key(arn) {
            return;
        }
        let Some(region) = arn_region(arn).map(str::to_string) else {
            return;
        };
        let name = arn.rsplit(':').next().unwrap_or_default().to_string();
        let lag = self
            .state
            .duration(&format!("lag:{arn}"), self.state.timing.replication_lag);
        let endpoint = self.endpoint(&name, &region, arn);
        self.state.clusters.insert(
            arn.to_string(),
            SimCluster {
                arn: arn.to_string(),
                name,
                region,
                global: global.map(str::to_string),
                writer,
                status: "available".into(),
                engine_version: ENGINE_VERSION.into(),
                instances: if writer { 2 } else { 1 },
                endpoint,
                lag,
                promote_at: None,
            },
        );
    }

    fn endpoint(&self, name: &str, region: &str, arn: &str) -> String {
        let first = |h: &str| h.split('.').next().unwrap_or_default().to_string();
        if let Some(h) = self.scan.pg_hosts.iter().find(|h| first(h) == name) {
            return h.clone();
        }
        for h in &self.scan.pg_hosts {
            if let Some(r) = region_in(h, &self.extra) {
                let swapped = swap_region(h, &r, region);
                if first(&swapped) == name {
                    return swapped;
                }
            }
        }
        format!(
            "{name}.cluster-{}.{region}.rds.amazonaws.com",
            encode(fnv1a(arn), 12, LOWER36)
        )
    }

    fn valkey(&mut self) {
        let (from, to) = (self.from(), self.to());
        let mut members: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut standalone: Vec<(String, String)> = Vec::new();
        for (rg, region, ds, _) in self.scan.groups.clone() {
            let region = region
                .or_else(|| region_in(&rg, &self.extra))
                .unwrap_or_else(|| from.clone());
            let ds = ds
                .or_else(|| {
                    // The datastore a member with a similar name belongs to.
                    members
                        .iter()
                        .find(|(_, m)| m.iter().any(|(id, r)| swap_region(id, r, &region) == rg))
                        .map(|(d, _)| d.clone())
                })
                .or_else(|| {
                    (self.scan.datastores.len() == 1).then(|| self.scan.datastores[0].clone())
                });
            match ds {
                Some(d) => {
                    let m = members.entry(d).or_default();
                    if !m.iter().any(|(id, _)| *id == rg) {
                        m.push((rg, region));
                    }
                }
                None => push(&mut standalone, (rg, region)),
            }
        }
        for d in self.scan.datastores.clone() {
            let mut list = members.remove(&d).unwrap_or_default();
            if list.is_empty() {
                // `ldgnf-acme-sessions` -> `acme-sessions-use1`: AWS prefixes the id.
                let stem = match d.split_once('-') {
                    Some((p, rest))
                        if p.len() == 5 && p.bytes().all(|b| b.is_ascii_lowercase()) =>
                    {
                        rest.to_string()
                    }
                    _ => d.clone(),
                };
                list.push((format!("{stem}-{}", short_code(&from)), from.clone()));
            }
            for region in [&from, &to] {
                if !list.iter().any(|(_, r)| r == region) {
                    let (base, base_region) = list
                        .iter()
                        .find(|(_, r)| *r == from)
                        .or_else(|| list.first())
                        .cloned()
                        .unwrap_or_default();
                    list.push((counterpart(&base, &base_region, region), region.clone()));
                }
            }
            let primary = list
                .iter()
                .find(|(_, r)| *r == from)
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            self.state.datastores.insert(
                d.clone(),
                SimDatastore {
                    id: d.clone(),
                    status: "available".into(),
                    op: None,
                },
            );
            for (id, region) in list {
                let role = if id == primary {
                    MemberRole::Primary
                } else {
                    MemberRole::Secondary
                };
                self.state
                    .replication_groups
                    .entry(id.clone())
                    .or_insert(SimReplicationGroup {
                        id,
                        region,
                        global: Some(d.clone()),
                        role,
                        status: "associated".into(),
                    });
            }
        }
        for (id, region) in standalone {
            self.state
                .replication_groups
                .entry(id.clone())
                .or_insert(SimReplicationGroup {
                    id,
                    region,
                    global: None,
                    role: MemberRole::Primary,
                    status: "associated".into(),
                });
        }
    }

    fn buckets(&mut self) {
        let (from, to) = (self.from(), self.to());
        for (src, dst) in self.scan.buckets.clone() {
            for (name, default_region) in [(&src, &from), (&dst, &to)] {
                let region = region_in(name, &self.extra).unwrap_or_else(|| default_region.clone());
                self.state
                    .buckets
                    .entry(name.clone())
                    .or_insert_with(|| SimBucket {
                        name: name.clone(),
                        region,
                        versioning: true,
                        rules: Vec::new(),
                        objects: BTreeMap::new(),
                        backlog: 0,
                        backlog_clears: None,
                    });
            }
            if let Some(b) = self.state.buckets.get_mut(&src)
                && !b.rules.iter().any(|r| r.destination == dst)
            {
                b.rules.push(SimRule {
                    id: format!("crr-to-{dst}"),
                    enabled: true,
                    destination: dst.clone(),
                });
            }
        }
    }

    /// Creates the health checks; returns each one's PRIMARY region.
    fn health_checks(&mut self) -> BTreeMap<String, String> {
        let (from, to) = (self.from(), self.to());
        let mut primary = BTreeMap::new();
        for id in self.scan.health_checks.clone() {
            let (invert, disable) = self.scan.flips.get(&id).copied().unwrap_or((None, None));
            let inverted = invert.map(|v| !v).unwrap_or(false);
            let disabled = disable.map(|v| !v).unwrap_or(false);
            // Before the run, traffic goes to `from`: the PRIMARY is there unless the
            // check starts out reporting unhealthy.
            let healthy_before = disabled || !inverted;
            let region = if healthy_before {
                from.clone()
            } else {
                to.clone()
            };
            primary.insert(id.clone(), region.clone());
            self.state.health_checks.insert(
                id.clone(),
                SimHealthCheck {
                    id,
                    region,
                    inverted,
                    disabled,
                    effective_inverted: inverted,
                    effective_disabled: disabled,
                    effective_at: Duration::ZERO,
                    routing_control: None,
                },
            );
        }
        primary
    }

    fn new_zone(&mut self, id: &str, name: &str) {
        self.state
            .zones
            .entry(id.to_string())
            .or_insert_with(|| SimZone {
                id: id.to_string(),
                name: name.to_string(),
                records: Vec::new(),
                published: Vec::new(),
                published_seq: 0,
            });
    }

    /// Creates the routing controls, their RECOVERY_CONTROL health checks and the
    /// cluster's safety rule (rules in the module docs); returns the cells' health checks.
    fn routing_controls(&mut self) -> Cells {
        let (from, to) = (self.from(), self.to());
        let mut cells = Cells::default();
        for c in self.scan.controls.clone() {
            let state = match (c.set, c.checked) {
                (Some(RoutingControlState::On), _) => RoutingControlState::Off,
                (Some(RoutingControlState::Off), _) => RoutingControlState::On,
                (None, Some(checked)) => checked,
                (None, None) => RoutingControlState::On,
            };
            let hc = uuid_like(&c.arn);
            let region = match c.set {
                Some(RoutingControlState::On) => {
                    cells.to.get_or_insert_with(|| hc.clone());
                    to.clone()
                }
                Some(RoutingControlState::Off) => {
                    cells.from.get_or_insert_with(|| hc.clone());
                    from.clone()
                }
                None => from.clone(),
            };
            self.state.routing_controls.insert(
                c.arn.clone(),
                SimRoutingControl {
                    arn: c.arn.clone(),
                    state,
                    effective: state,
                    effective_at: Duration::ZERO,
                },
            );
            self.state.health_checks.insert(
                hc.clone(),
                SimHealthCheck {
                    id: hc,
                    region,
                    inverted: false,
                    disabled: false,
                    effective_inverted: false,
                    effective_disabled: false,
                    effective_at: Duration::ZERO,
                    routing_control: Some(c.arn.clone()),
                },
            );
        }
        if self.scan.controls.len() >= 2 {
            let rule = self.scan.safety_overrides.first().cloned().or_else(|| {
                let first = &self.scan.controls[0].arn;
                let panel = first
                    .rfind("/routingcontrol/")
                    .map_or(first.as_str(), |i| &first[..i]);
                let id = encode(fnv1a(first), 16, b"0123456789abcdef");
                Some(format!("{panel}/safetyrule/{id}"))
            });
            self.state.arc_safety_rule = rule;
        }
        for (_, region) in self.scan.arc_endpoints.clone() {
            self.state.regions.entry(region).or_default();
        }
        cells
    }

    fn zones(&mut self, hc_primary: &BTreeMap<String, String>, cells: &Cells) {
        let (from, to) = (self.from(), self.to());
        // Names of zones from the records the runbook puts in them.
        let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (zone, r, _) in &self.scan.records {
            if let Some(z) = zone {
                names.entry(z.clone()).or_default().push(fqdn(&r.name));
            }
        }
        for z in self.scan.zones.clone() {
            let name = names.get(&z).map(|n| common_suffix(n)).unwrap_or_default();
            self.new_zone(&z, &name);
        }
        // Records as they are before the run: the runbook's, with `to` swapped to `from`;
        // or a failover pair that routing controls move, from `from` to `to`. Records a
        // cutover writes go first: a name is plain or routed, and the cutover needs plain.
        let mut records = self.scan.records.clone();
        records.sort_by_key(|(_, _, use_)| *use_ != RecordUse::Written);
        for (zone, r, use_) in records {
            let mut before = normalize(&r);
            // What a companion expects the record to answer once it has moved traffic
            // back to `from`, when it names `from`; else the runbook's value with the
            // region swapped.
            let hint = self
                .scan
                .hints
                .get(&(fqdn(&r.name), r.record_type.clone()))
                .filter(|vs| {
                    use_ == RecordUse::Observed
                        && vs
                            .iter()
                            .all(|v| region_in(v, &self.extra).as_deref() == Some(from.as_str()))
                })
                .cloned();
            before.values = match hint {
                Some(values) => values,
                None => before
                    .values
                    .iter()
                    .map(|v| swap_region(v, &to, &from))
                    .collect(),
            };
            if let Some(a) = before.alias.as_mut() {
                a.dns_name = swap_region(&a.dns_name, &to, &from);
            }
            let zone_id = match zone {
                Some(z) => z,
                None => match self.zone_containing(&before.name) {
                    Some(z) => z,
                    None => {
                        let Some(parent) = parent_domain(&before.name) else {
                            continue;
                        };
                        let id = format!("Z{}", encode(fnv1a(&parent), 20, UPPER36));
                        self.new_zone(&id, &parent);
                        id
                    }
                },
            };
            if use_ == RecordUse::Observed && cells.any() {
                let mut after = normalize(&r);
                after.weight = None;
                after.failover = Some("SECONDARY".into());
                after.health_check_id = cells.to.clone();
                after.set_identifier = Some(
                    after
                        .set_identifier
                        .unwrap_or_else(|| format!("secondary-{to}")),
                );
                before.weight = None;
                before.failover = Some("PRIMARY".into());
                before.health_check_id = cells.from.clone();
                before.set_identifier = Some(format!("primary-{from}"));
                self.add_record(&zone_id, before);
                self.add_record(&zone_id, after);
                continue;
            }
            self.add_record(&zone_id, before);
        }
        // Failover records for each application URL that names no region: moved by the
        // routing controls when the runbook sets some and flips no health check, else by
        // a health check on the PRIMARY.
        let by_arc = cells.any() && self.scan.flips.is_empty();
        let hcs: Vec<String> = self.scan.health_checks.clone();
        let mut i = 0;
        for host in self.scan.hosts.clone() {
            let name = fqdn(&host);
            if region_in(&host, &self.extra).is_some()
                || self
                    .state
                    .zones
                    .values()
                    .any(|z| z.records.iter().any(|r| r.name == name))
            {
                continue;
            }
            let Some(parent) = parent_domain(&name) else {
                continue;
            };
            let zone_id = match self.zone_containing(&name) {
                Some(z) => z,
                None => match self.state.zones.values().find(|z| z.name.is_empty()) {
                    Some(z) => {
                        let id = z.id.clone();
                        if let Some(z) = self.state.zones.get_mut(&id) {
                            z.name = parent.clone();
                        }
                        id
                    }
                    None => {
                        let id = format!("Z{}", encode(fnv1a(&parent), 20, UPPER36));
                        self.new_zone(&id, &parent);
                        id
                    }
                },
            };
            if by_arc {
                let (first, rest) = host.split_once('.').unwrap_or((host.as_str(), ""));
                for (role, region, check) in [
                    ("PRIMARY", &from, cells.from.clone()),
                    ("SECONDARY", &to, cells.to.clone()),
                ] {
                    self.add_record(
                        &zone_id,
                        RecordSet {
                            name: name.clone(),
                            record_type: "CNAME".into(),
                            set_identifier: Some(format!("{}-{region}", role.to_ascii_lowercase())),
                            ttl: Some(60),
                            values: vec![format!("{first}-{}.{rest}", short_code(region))],
                            alias: None,
                            weight: None,
                            failover: Some(role.into()),
                            health_check_id: check,
                        },
                    );
                }
                continue;
            }
            let hc = match hcs.get(i % hcs.len().max(1)) {
                Some(hc) => hc.clone(),
                None => {
                    let id = uuid_like(&host);
                    self.state.health_checks.insert(
                        id.clone(),
                        SimHealthCheck {
                            id: id.clone(),
                            region: from.clone(),
                            inverted: false,
                            disabled: false,
                            effective_inverted: false,
                            effective_disabled: false,
                            effective_at: Duration::ZERO,
                            routing_control: None,
                        },
                    );
                    id
                }
            };
            i += 1;
            let primary = hc_primary.get(&hc).cloned().unwrap_or_else(|| from.clone());
            let secondary = if primary == from {
                to.clone()
            } else {
                from.clone()
            };
            let (first, rest) = host.split_once('.').unwrap_or((host.as_str(), ""));
            for (role, region, check) in [
                ("PRIMARY", &primary, Some(hc.clone())),
                ("SECONDARY", &secondary, None),
            ] {
                let target = format!("{first}-{}.{rest}", short_code(region));
                self.add_record(
                    &zone_id,
                    RecordSet {
                        name: name.clone(),
                        record_type: "CNAME".into(),
                        set_identifier: Some(format!("{}-{region}", role.to_ascii_lowercase())),
                        ttl: Some(60),
                        values: vec![target],
                        alias: None,
                        weight: None,
                        failover: Some(role.into()),
                        health_check_id: check,
                    },
                );
            }
        }
        // A zone nothing named gets a placeholder name, so it is still well formed.
        for z in self.state.zones.values_mut() {
            if z.name.is_empty() {
                z.name = format!("{}.sim.", z.id.to_ascii_lowercase());
            }
            z.published = z.records.clone();
        }
    }

    fn zone_containing(&self, name: &str) -> Option<String> {
        self.state
            .zones
            .values()
            .filter(|z| !z.name.is_empty() && in_zone(name, &z.name))
            .max_by_key(|z| z.name.len())
            .map(|z| z.id.clone())
    }

    fn add_record(&mut self, zone: &str, r: RecordSet) {
        if let Some(z) = self.state.zones.get_mut(zone) {
            if z.name.is_empty() {
                z.name = parent_domain(&r.name).unwrap_or_else(|| r.name.clone());
            }
            // Route 53 keeps a name and type either one simple record set or only
            // routed ones, and a CNAME alone at its name: the first record wins.
            let same = |x: &RecordSet| {
                x.name == r.name
                    && (x.record_type == r.record_type
                        || x.record_type == "CNAME"
                        || r.record_type == "CNAME")
                    && (x.set_identifier == r.set_identifier
                        || x.set_identifier.is_none() != r.set_identifier.is_none())
            };
            if !z.records.iter().any(same) && in_zone(&r.name, &z.name) {
                z.records.push(r);
                z.records.sort_by(|a, b| {
                    (&a.name, &a.record_type, &a.set_identifier).cmp(&(
                        &b.name,
                        &b.record_type,
                        &b.set_identifier,
                    ))
                });
            }
        }
    }

    /// Applies the config's overrides; a name the world does not have is an error
    /// pointing at it in the file.
    fn overrides(&mut self) -> Result<(), SimConfigError> {
        let cfg = self.cfg;
        let mut d = Diagnostics::default();
        let s = &mut self.state;
        let unknown = |d: &mut Diagnostics,
                       span: &std::ops::Range<usize>,
                       what: &str,
                       name: &str,
                       known: Vec<String>| {
            let p = d.error(
                span.clone(),
                format!("the world has no {what} `{name}`"),
                format!("not a {what} the runbook uses"),
            );
            p.help = Some(match did_you_mean(name, known.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`?"),
                None if known.is_empty() => format!("the runbook uses no {what}"),
                None => format!("the runbook's: {}", known.join(", ")),
            });
        };
        for o in &cfg.regions {
            let r = s.regions.entry(o.name.clone()).or_default();
            if let Some(from) = o.unreachable_from {
                r.unreachable.push(Window {
                    from,
                    until: o.unreachable_until,
                });
            }
            if let Some(h) = o.app_healthy {
                r.app_healthy = h;
            }
            if let Some(reset) = o.outage_reset {
                r.outage = if reset {
                    super::state::OutageMode::Reset
                } else {
                    super::state::OutageMode::Hold
                };
            }
            if let Some(services) = &o.services {
                r.services = Some(services.clone());
            }
            if let Some(l) = o.latency {
                r.latency = l;
            }
        }
        for o in &cfg.global_clusters {
            if !s.global_clusters.contains_key(&o.id) {
                unknown(
                    &mut d,
                    &o.span,
                    "global cluster",
                    &o.id,
                    s.global_clusters.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.global_clusters.remove(&o.id);
                for c in s.clusters.values_mut() {
                    if c.global.as_deref() == Some(o.id.as_str()) {
                        c.global = None;
                    }
                }
                continue;
            }
            if let Some(v) = &o.engine_version {
                if let Some(g) = s.global_clusters.get_mut(&o.id) {
                    g.engine_version = v.clone();
                }
                for c in s.clusters.values_mut() {
                    if c.global.as_deref() == Some(o.id.as_str()) {
                        c.engine_version = v.clone();
                    }
                }
            }
            if let Some(region) = &o.primary {
                let has = s
                    .clusters
                    .values()
                    .any(|c| c.global.as_deref() == Some(o.id.as_str()) && c.region == *region);
                if !has {
                    d.error(
                        o.span.clone(),
                        format!("global cluster `{}` has no member in {region}", o.id),
                        "cannot be the primary's region",
                    );
                    continue;
                }
                for c in s.clusters.values_mut() {
                    if c.global.as_deref() == Some(o.id.as_str()) {
                        c.writer = c.region == *region;
                        c.instances = c.instances.max(1);
                    }
                }
            }
        }
        for o in &cfg.clusters {
            let arn = s
                .clusters
                .values()
                .find(|c| c.arn == o.id || c.name == o.id)
                .map(|c| c.arn.clone());
            let Some(arn) = arn else {
                unknown(
                    &mut d,
                    &o.span,
                    "cluster",
                    &o.id,
                    s.clusters.values().map(|c| c.name.clone()).collect(),
                );
                continue;
            };
            if o.missing {
                s.clusters.remove(&arn);
                continue;
            }
            if let Some(l) = &o.local {
                s.bindings.insert(format!("cluster:{arn}"), l.clone());
            }
            if let Some(c) = s.clusters.get_mut(&arn) {
                if let Some(v) = o.lag {
                    c.lag = v;
                }
                if let Some(v) = &o.status {
                    c.status = v.clone();
                }
                if let Some(v) = o.instances {
                    c.instances = v;
                }
                if let Some(v) = &o.engine_version {
                    c.engine_version = v.clone();
                }
            }
        }
        for o in &cfg.datastores {
            if !s.datastores.contains_key(&o.id) {
                unknown(
                    &mut d,
                    &o.span,
                    "global datastore",
                    &o.id,
                    s.datastores.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.datastores.remove(&o.id);
                for rg in s.replication_groups.values_mut() {
                    if rg.global.as_deref() == Some(o.id.as_str()) {
                        rg.global = None;
                        rg.role = MemberRole::Primary;
                    }
                }
                continue;
            }
            if let Some(v) = &o.status
                && let Some(ds) = s.datastores.get_mut(&o.id)
            {
                ds.status = v.clone();
            }
            if let Some(region) = &o.primary {
                let has = s
                    .replication_groups
                    .values()
                    .any(|rg| rg.global.as_deref() == Some(o.id.as_str()) && rg.region == *region);
                if !has {
                    d.error(
                        o.span.clone(),
                        format!("global datastore `{}` has no member in {region}", o.id),
                        "cannot be the primary's region",
                    );
                    continue;
                }
                for rg in s.replication_groups.values_mut() {
                    if rg.global.as_deref() == Some(o.id.as_str()) {
                        rg.role = if rg.region == *region {
                            MemberRole::Primary
                        } else {
                            MemberRole::Secondary
                        };
                    }
                }
            }
        }
        for o in &cfg.replication_groups {
            if !s.replication_groups.contains_key(&o.id) {
                unknown(
                    &mut d,
                    &o.span,
                    "replication group",
                    &o.id,
                    s.replication_groups.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.replication_groups.remove(&o.id);
                continue;
            }
            if let (Some(v), Some(rg)) = (&o.status, s.replication_groups.get_mut(&o.id)) {
                rg.status = v.clone();
            }
            if let Some(l) = &o.local {
                s.bindings.insert(format!("rg:{}", o.id), l.clone());
            }
        }
        for o in &cfg.buckets {
            if !s.buckets.contains_key(&o.name) {
                unknown(
                    &mut d,
                    &o.span,
                    "bucket",
                    &o.name,
                    s.buckets.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.buckets.remove(&o.name);
                continue;
            }
            if let Some(bk) = s.buckets.get_mut(&o.name) {
                if let Some(v) = o.versioning {
                    bk.versioning = v;
                }
                if let Some(v) = o.replication_enabled {
                    for r in &mut bk.rules {
                        r.enabled = v;
                    }
                }
                if let Some(v) = o.backlog {
                    bk.backlog = v;
                }
                if o.backlog_clears.is_some() {
                    bk.backlog_clears = o.backlog_clears;
                }
            }
        }
        for o in &cfg.zones {
            if !s.zones.contains_key(&o.id) {
                unknown(
                    &mut d,
                    &o.span,
                    "hosted zone",
                    &o.id,
                    s.zones.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.zones.remove(&o.id);
            }
        }
        for o in &cfg.health_checks {
            if !s.health_checks.contains_key(&o.id) {
                unknown(
                    &mut d,
                    &o.span,
                    "health check",
                    &o.id,
                    s.health_checks.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.health_checks.remove(&o.id);
                continue;
            }
            if let Some(hc) = s.health_checks.get_mut(&o.id) {
                if let Some(v) = o.inverted {
                    hc.inverted = v;
                    hc.effective_inverted = v;
                }
                if let Some(v) = o.disabled {
                    hc.disabled = v;
                    hc.effective_disabled = v;
                }
                if let Some(v) = &o.region {
                    hc.region = v.clone();
                }
            }
        }
        for o in &cfg.routing_controls {
            if !s.routing_controls.contains_key(&o.arn) {
                unknown(
                    &mut d,
                    &o.span,
                    "routing control",
                    &o.arn,
                    s.routing_controls.keys().cloned().collect(),
                );
                continue;
            }
            if o.missing {
                s.routing_controls.remove(&o.arn);
                continue;
            }
            if let (Some(v), Some(rc)) = (o.state, s.routing_controls.get_mut(&o.arn)) {
                rc.state = v;
                rc.effective = v;
            }
        }
        if d.has_errors() {
            return Err(cfg.error(d.into_sorted()));
        }
        Ok(())
    }
}

/// The longest common suffix of DNS names, in whole labels, of at least two labels
/// (else the first name's parent domain).
fn common_suffix(names: &[String]) -> String {
    let split: Vec<Vec<&str>> = names
        .iter()
        .map(|n| n.trim_end_matches('.').split('.').rev().collect())
        .collect();
    let Some(first) = split.first() else {
        return String::new();
    };
    let mut common: Vec<&str> = Vec::new();
    for (i, label) in first.iter().enumerate() {
        if split.iter().all(|s| s.get(i) == Some(label)) {
            common.push(label);
        } else {
            break;
        }
    }
    // The zone never is a whole record name: leave at least one label for records.
    let shortest = split.iter().map(Vec::len).min().unwrap_or(0);
    if common.len() >= shortest {
        common.truncate(shortest.saturating_sub(1));
    }
    if common.len() >= 2 {
        common.reverse();
        format!("{}.", common.join("."))
    } else {
        names
            .first()
            .and_then(|n| parent_domain(n))
            .unwrap_or_default()
    }
}
