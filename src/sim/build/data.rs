//! The data the runbook fails over: Aurora global clusters, Valkey global datastores
//! and S3 buckets with their replication rules.

use std::collections::BTreeMap;

use super::scan::{DEFAULT_SHARDS, Use, push};
use super::{Builder, counterpart, counterpart_arn};
use crate::cloud::{Acu, CapacityRange, MemberRole};
use crate::runbook::catalogue::arn_region;
use crate::sim::names::{LOWER36, encode, fnv1a, region_in, short_code, swap_region};
use crate::sim::state::{
    SimBucket, SimCluster, SimDatastore, SimGlobalCluster, SimReplicationGroup, SimRule,
};

const ENGINE_VERSION: &str = "16.4";

impl Builder<'_> {
    pub(super) fn aurora(&mut self) {
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
                // The seed's stack runs Aurora Serverless v2: the primary sized for
                // production, a secondary for standby.
                instance_class: crate::cloud::SERVERLESS_CLASS.to_string(),
                scaling: Some(if writer {
                    CapacityRange {
                        min: Acu::from_halves(4),
                        max: Acu::from_halves(128),
                    }
                } else {
                    CapacityRange {
                        min: Acu::from_halves(1),
                        max: Acu::from_halves(16),
                    }
                }),
                demand: Some(if writer {
                    Acu::from_halves(16)
                } else {
                    Acu::from_halves(1)
                }),
                modifying_until: None,
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

    pub(super) fn valkey(&mut self) {
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
                    promotions: Vec::new(),
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
                    .or_insert(SimReplicationGroup::new(id, region, Some(d.clone()), role));
            }
        }
        for (id, region) in standalone {
            self.state
                .replication_groups
                .entry(id.clone())
                .or_insert(SimReplicationGroup::new(
                    id,
                    region,
                    None,
                    MemberRole::Primary,
                ));
        }
        if self.scan.cluster_mode {
            // Every member alike: a Global Datastore's members must match in cluster
            // mode and shard count.
            for rg in self.state.replication_groups.values_mut() {
                rg.shape.cluster_enabled = true;
                rg.shape.shards = DEFAULT_SHARDS;
            }
        }
    }

    pub(super) fn buckets(&mut self) {
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
                    prefix: String::new(),
                });
            }
        }
    }
}
