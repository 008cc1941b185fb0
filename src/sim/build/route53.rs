//! Route 53: health checks, hosted zones and the records as they are before the run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::scan::RecordUse;
use super::{Builder, Cells, uuid_like};
use crate::cloud::RecordSet;
use crate::sim::names::{
    UPPER36, encode, fnv1a, fqdn, in_zone, parent_domain, region_in, short_code, swap_region,
};
use crate::sim::route53::normalize;
use crate::sim::state::{SimHealthCheck, SimZone};

impl Builder<'_> {
    /// Creates the health checks; returns each one's PRIMARY region.
    pub(super) fn health_checks(&mut self) -> BTreeMap<String, String> {
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

    pub(super) fn zones(&mut self, hc_primary: &BTreeMap<String, String>, cells: &Cells) {
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
                            routing: Default::default(),
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
                        routing: Default::default(),
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
