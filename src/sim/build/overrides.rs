//! The config's overrides applied to the built world.

use super::Builder;
use crate::cloud::MemberRole;
use crate::runbook::diag::{Diagnostics, did_you_mean};
use crate::sim::config::SimConfigError;
use crate::sim::state::{OutageMode, Window};

impl Builder<'_> {
    /// Applies the config's overrides; a name the world does not have is an error
    /// pointing at it in the file.
    pub(super) fn overrides(&mut self) -> Result<(), SimConfigError> {
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
                    OutageMode::Reset
                } else {
                    OutageMode::Hold
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
                if let Some(v) = &o.instance_class {
                    c.instance_class = v.clone();
                }
                if o.min_acu.is_some() || o.max_acu.is_some() {
                    let now = c.scaling.unwrap_or(crate::cloud::CapacityRange {
                        min: crate::names::Acu::from_halves(1),
                        max: crate::names::Acu::from_halves(32),
                    });
                    let range = crate::cloud::CapacityRange {
                        min: o.min_acu.unwrap_or(now.min),
                        max: o.max_acu.unwrap_or(now.max),
                    };
                    if range.min > range.max {
                        d.error(
                            o.span.clone(),
                            format!(
                                "[clusters.{}] would have min_acu {} above max_acu {}",
                                o.id, range.min, range.max
                            ),
                            "AWS keeps MinCapacity at or below MaxCapacity",
                        );
                    }
                    c.scaling = Some(range);
                }
                if let Some(v) = o.capacity {
                    c.demand = Some(v);
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
            for rg in s.replication_groups.values_mut() {
                if rg.global.as_deref() != Some(o.id.as_str()) {
                    continue;
                }
                if let Some(n) = o.shards {
                    rg.shape.shards = n;
                    rg.shape.cluster_enabled = true;
                }
                if let Some(t) = &o.node_type {
                    rg.shape.node_type = t.clone();
                }
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
            if let Some(rg) = s.replication_groups.get_mut(&o.id) {
                if let Some(v) = &o.status {
                    rg.status = v.clone();
                }
                if let Some(n) = o.shards {
                    rg.shape.shards = n;
                    rg.shape.cluster_enabled = n > 1 || rg.shape.cluster_enabled;
                }
                if let Some(c) = o.cluster_enabled {
                    rg.shape.cluster_enabled = c;
                }
                if let Some(t) = &o.node_type {
                    rg.shape.node_type = t.clone();
                }
                if let Some(cut) = &o.cut_shards {
                    if let Some(n) = cut.iter().find(|n| **n > rg.shape.shards) {
                        d.error(
                            o.span.clone(),
                            format!(
                                "replication group `{}` has {} shard{}: it has no shard {n} to cut",
                                o.id,
                                rg.shape.shards,
                                if rg.shape.shards == 1 { "" } else { "s" }
                            ),
                            "cut_shards names a shard it does not have",
                        )
                        .help = Some("set `shards` here or in its [datastores.ID]".into());
                    }
                    rg.cut_shards = cut.clone();
                    rg.cut_from = o.cut_from.unwrap_or_default();
                }
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
                if let Some(p) = &o.replication_prefix {
                    for r in &mut bk.rules {
                        r.prefix = p.clone();
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
        for o in &cfg.ecs_services {
            // A service by its ARN, `CLUSTER/NAME`, or name.
            let found = s
                .ecs_services
                .values()
                .find(|v| {
                    v.arn == o.id
                        || v.name == o.id
                        || v.arn.ends_with(&format!(":service/{}", o.id))
                })
                .map(|v| v.arn.clone());
            let Some(arn) = found else {
                unknown(
                    &mut d,
                    &o.span,
                    "ECS service",
                    &o.id,
                    s.ecs_services.values().map(|v| v.name.clone()).collect(),
                );
                continue;
            };
            if o.missing {
                s.ecs_services.remove(&arn);
                continue;
            }
            let Some(old) = s.ecs_services.get(&arn).cloned() else {
                continue;
            };
            if o.cluster_missing {
                s.ecs_clusters.remove(&old.cluster_arn);
            }
            let desired = o.desired.unwrap_or(old.desired);
            let running = o.running.unwrap_or(desired);
            if running > desired {
                d.error(
                    o.span.clone(),
                    format!(
                        "[ecs_services.{}] would run {running} task(s) with a desired count of \
                         {desired}",
                        o.id
                    ),
                    "`running` is at most `desired`",
                );
                continue;
            }
            let mut svc = crate::sim::ecs::new_service(
                s,
                &arn,
                &old.cluster_arn,
                &old.region,
                desired,
                running,
            );
            if let Some(v) = &o.status {
                svc.status = v.clone();
            }
            svc.launch_type = o.launch_type.clone().or(old.launch_type);
            svc.rollout_reported = o.rollout_state.unwrap_or(old.rollout_reported);
            svc.deploying_until = o.deploying_until.or(old.deploying_until);
            s.ecs_services.insert(arn, svc);
        }
        for o in &cfg.autoscaling_groups {
            let Some(old) = s.asgs.get(&o.name).cloned() else {
                unknown(
                    &mut d,
                    &o.span,
                    "Auto Scaling group",
                    &o.name,
                    s.asgs.keys().cloned().collect(),
                );
                continue;
            };
            if o.missing {
                s.asgs.remove(&o.name);
                continue;
            }
            let sizes = crate::cloud::GroupSizes {
                min_size: o.min_size.unwrap_or(old.min),
                desired_capacity: o.desired_capacity.unwrap_or(old.desired),
                max_size: o.max_size.unwrap_or(old.max),
            };
            let in_service = o.in_service.unwrap_or(sizes.desired_capacity);
            if !sizes.consistent() || in_service > sizes.desired_capacity {
                d.error(
                    o.span.clone(),
                    format!(
                        "[autoscaling_groups.{}] would have {sizes} with {in_service} \
                         InService",
                        o.name
                    ),
                    "Auto Scaling keeps min <= desired <= max, and in_service is at most desired",
                );
                continue;
            }
            let mut g =
                crate::sim::autoscaling::new_group(s, &o.name, &old.region, sizes, in_service);
            g.suspended = o.suspended_processes.clone().unwrap_or(old.suspended);
            g.status = match o.deleting {
                Some(true) => Some(crate::cloud::ASG_DELETING.to_string()),
                Some(false) => None,
                None => old.status,
            };
            s.asgs.insert(o.name.clone(), g);
        }
        if d.has_errors() {
            return Err(cfg.error(d.into_sorted()));
        }
        Ok(())
    }
}
