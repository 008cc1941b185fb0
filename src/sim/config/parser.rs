//! The sim config's parser: its keys, and the walk that reads them into a [`SimConfig`].

use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use super::{
    AutoScalingGroupOverride, BucketOverride, ClusterOverride, DatastoreOverride,
    EcsServiceOverride, GlobalClusterOverride, HealthCheckOverride, LocalServer, RegionOverride,
    ReplicationGroupOverride, RoutingControlOverride, SimConfig, ZoneOverride,
};
use crate::cloud::{CloudErrorKind, RoutingControlState};
use crate::runbook::catalogue::ROUTING_CONTROL_STATES;
use crate::runbook::diag::{Diagnostics, did_you_mean};
use crate::runbook::reader::{self, Table, Val};
use crate::sim::faults::{FaultKind, FaultSpec, OPERATIONS, known_operation};
use crate::sim::names::is_region;
use crate::sim::rng::Between;
use crate::sim::state::{FailoverReading, Timing};

const ROOT_KEYS: &[&str] = &[
    "timing",
    "regions",
    "global_clusters",
    "clusters",
    "datastores",
    "replication_groups",
    "buckets",
    "zones",
    "health_checks",
    "routing_controls",
    "ecs_services",
    "autoscaling_groups",
    "elasticache",
    "fault",
];
const TIMING_KEYS: &[&str] = &[
    "aurora_pending",
    "aurora_failover",
    "aurora_switchover",
    "aurora_detach",
    "aurora_modify",
    "snapshot_create",
    "snapshot_copy",
    "replication_lag",
    "valkey_failover",
    "valkey_disassociate",
    "route53_insync",
    "health_check_update",
    "health_check_detect",
    "s3_replication",
    "http_latency",
    "routing_control_propagation",
    "ecs_task_start",
    "ecs_task_stop",
    "asg_instance_launch",
    "asg_instance_terminate",
];
const REGION_KEYS: &[&str] = &[
    "unreachable_from",
    "unreachable_until",
    "outage",
    "services",
    "latency",
    "app_healthy",
];
const GLOBAL_KEYS: &[&str] = &["primary", "engine_version", "missing"];
const CLUSTER_KEYS: &[&str] = &[
    "lag",
    "status",
    "instances",
    "instance_class",
    "min_acu",
    "max_acu",
    "capacity",
    "engine_version",
    "local",
    "missing",
];
const DATASTORE_KEYS: &[&str] = &["primary", "status", "shards", "node_type", "missing"];
const RG_KEYS: &[&str] = &[
    "status",
    "shards",
    "cluster_enabled",
    "node_type",
    "cut_shards",
    "cut_from",
    "local",
    "missing",
];
/// ElastiCache allows 1 to 500 node groups (shards) in a cluster.
const MAX_SHARDS: i64 = 500;
const PG_LOCAL_KEYS: &[&str] = &["host", "port", "user", "password_env", "database", "follow"];
const VALKEY_LOCAL_KEYS: &[&str] = &["host", "port", "user", "password_env", "nodes"];
const BUCKET_KEYS: &[&str] = &[
    "versioning",
    "replication_enabled",
    "replication_prefix",
    "backlog",
    "backlog_clears",
    "missing",
];
const ZONE_KEYS: &[&str] = &["missing"];
const HC_KEYS: &[&str] = &["inverted", "disabled", "region", "missing"];
const RC_KEYS: &[&str] = &["state", "missing"];
const ECS_SERVICE_KEYS: &[&str] = &[
    "desired",
    "running",
    "status",
    "launch_type",
    "rollout_state",
    "deploying_until",
    "cluster_missing",
    "missing",
];
const ECS_STATUSES: &[&str] = &["ACTIVE", "DRAINING", "INACTIVE"];
const ECS_LAUNCH_TYPES: &[&str] = &["FARGATE", "EC2", "EXTERNAL"];
/// ECS's `desiredCount` is an Integer; what the world holds is bounded well below it
/// (one simulated task each).
const MAX_SIM_TASKS: i64 = 10_000;
const ASG_KEYS: &[&str] = &[
    "min_size",
    "desired_capacity",
    "max_size",
    "in_service",
    "suspended_processes",
    "deleting",
    "missing",
];
/// The processes of an Auto Scaling group that can be suspended.
const ASG_PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];
const ELASTICACHE_KEYS: &[&str] = &["failover_with_unreachable_members"];
const FAILOVER_READINGS: &[&str] = &["refuse", "allow"];
const FAULT_KEYS: &[&str] = &[
    "kind",
    "service",
    "operation",
    "region",
    "rate",
    "times",
    "from",
    "until",
    "latency",
    "error",
    "code",
    "after_apply",
];
const FAULT_KINDS: &[&str] = &["throttle", "error", "latency", "hang"];
const ERROR_KINDS: &[&str] = &[
    "transient",
    "throttling",
    "unreachable",
    "not_found",
    "invalid_state",
    "access_denied",
    "invalid_request",
];

pub(super) struct Parser<'s> {
    pub(super) src: &'s str,
    pub(super) d: Diagnostics,
}

impl Parser<'_> {
    pub(super) fn document(&mut self, text: &str) -> Option<SimConfig> {
        let root = reader::parse_document(text, &mut self.d)?;
        let mut root = Table::new(root.get_ref(), root.span(), "the sim config");
        let mut c = SimConfig::default();
        if let Some(v) = root.take("timing") {
            self.timing(v, &mut c.timing);
        }
        self.named(&mut root, "regions", REGION_KEYS, |p, name, span, t| {
            if !is_region(name) {
                p.d.error(
                    span.clone(),
                    format!("`{name}` is not an AWS region"),
                    "expected a region such as \"us-east-1\"",
                );
            }
            let o = RegionOverride {
                name: name.to_string(),
                span,
                unreachable_from: p.duration(t, "unreachable_from"),
                unreachable_until: p.duration(t, "unreachable_until"),
                app_healthy: p.bool(t, "app_healthy"),
                outage_reset: p.outage(t, "outage"),
                services: p.services(t, "services"),
                latency: p.duration(t, "latency"),
            };
            if let (Some(from), Some(until)) = (o.unreachable_from, o.unreachable_until)
                && until <= from
            {
                p.d.error(
                    o.span.clone(),
                    format!("in [regions.{name}], unreachable_until is not after unreachable_from"),
                    "an empty outage",
                );
            }
            if o.unreachable_until.is_some() && o.unreachable_from.is_none() {
                p.d.error(
                    o.span.clone(),
                    format!("[regions.{name}] sets unreachable_until without unreachable_from"),
                    "say when the outage starts",
                )
                .help = Some("unreachable_from = \"0s\" starts it with the run".into());
            }
            c.regions.push(o);
        });
        self.named(
            &mut root,
            "global_clusters",
            GLOBAL_KEYS,
            |p, id, span, t| {
                c.global_clusters.push(GlobalClusterOverride {
                    id: id.to_string(),
                    span,
                    primary: p.region(t, "primary"),
                    engine_version: p.string(t, "engine_version"),
                    missing: p.bool(t, "missing").unwrap_or(false),
                });
            },
        );
        self.named(&mut root, "clusters", CLUSTER_KEYS, |p, id, span, t| {
            c.clusters.push(ClusterOverride {
                id: id.to_string(),
                span,
                lag: p.duration(t, "lag"),
                status: p.string(t, "status"),
                instances: p
                    .int(t, "instances", 0, 16)
                    .and_then(|n| u32::try_from(n).ok()),
                instance_class: p.string(t, "instance_class"),
                min_acu: p.acu(t, "min_acu"),
                max_acu: p.acu(t, "max_acu"),
                capacity: p.acu(t, "capacity"),
                engine_version: p.string(t, "engine_version"),
                local: p.local(t, true),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "datastores", DATASTORE_KEYS, |p, id, span, t| {
            c.datastores.push(DatastoreOverride {
                id: id.to_string(),
                span,
                primary: p.region(t, "primary"),
                status: p.string(t, "status"),
                shards: p.shards(t, "shards"),
                node_type: p.string(t, "node_type"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(
            &mut root,
            "replication_groups",
            RG_KEYS,
            |p, id, span, t| {
                let o = ReplicationGroupOverride {
                    id: id.to_string(),
                    span,
                    status: p.string(t, "status"),
                    shards: p.shards(t, "shards"),
                    cluster_enabled: p.bool(t, "cluster_enabled"),
                    node_type: p.string(t, "node_type"),
                    cut_shards: p.shard_numbers(t, "cut_shards"),
                    cut_from: p.duration(t, "cut_from"),
                    local: p.local(t, false),
                    missing: p.bool(t, "missing").unwrap_or(false),
                };
                if o.cut_from.is_some() && o.cut_shards.is_none() {
                    p.d.error(
                        o.span.clone(),
                        format!("[replication_groups.{id}] sets cut_from without cut_shards"),
                        "say which shards are cut",
                    )
                    .help = Some("cut_shards = [1] cuts the first shard".into());
                }
                c.replication_groups.push(o);
            },
        );
        self.named(&mut root, "buckets", BUCKET_KEYS, |p, name, span, t| {
            c.buckets.push(BucketOverride {
                name: name.to_string(),
                span,
                versioning: p.bool(t, "versioning"),
                replication_enabled: p.bool(t, "replication_enabled"),
                replication_prefix: p.string(t, "replication_prefix"),
                backlog: p
                    .int(t, "backlog", 0, i64::MAX)
                    .and_then(|n| u64::try_from(n).ok()),
                backlog_clears: p.duration(t, "backlog_clears"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "zones", ZONE_KEYS, |p, id, span, t| {
            c.zones.push(ZoneOverride {
                id: id.to_string(),
                span,
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "health_checks", HC_KEYS, |p, id, span, t| {
            c.health_checks.push(HealthCheckOverride {
                id: id.to_string(),
                span,
                inverted: p.bool(t, "inverted"),
                disabled: p.bool(t, "disabled"),
                region: p.region(t, "region"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "routing_controls", RC_KEYS, |p, arn, span, t| {
            let state = p
                .choice(t, "state", ROUTING_CONTROL_STATES)
                .map(|s| match s.as_str() {
                    "On" => RoutingControlState::On,
                    _ => RoutingControlState::Off,
                });
            c.routing_controls.push(RoutingControlOverride {
                arn: arn.to_string(),
                span,
                state,
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(
            &mut root,
            "ecs_services",
            ECS_SERVICE_KEYS,
            |p, id, span, t| {
                let count = |p: &mut Self, t: &mut Table<'_, '_>, key: &str| {
                    p.int(t, key, 0, MAX_SIM_TASKS)
                        .and_then(|n| u32::try_from(n).ok())
                };
                let o = EcsServiceOverride {
                    id: id.to_string(),
                    span,
                    desired: count(p, t, "desired"),
                    running: count(p, t, "running"),
                    status: p.choice(t, "status", ECS_STATUSES),
                    launch_type: p.choice(t, "launch_type", ECS_LAUNCH_TYPES),
                    rollout_state: p.bool(t, "rollout_state"),
                    deploying_until: p.duration(t, "deploying_until"),
                    cluster_missing: p.bool(t, "cluster_missing").unwrap_or(false),
                    missing: p.bool(t, "missing").unwrap_or(false),
                };
                c.ecs_services.push(o);
            },
        );
        self.named(
            &mut root,
            "autoscaling_groups",
            ASG_KEYS,
            |p, name, span, t| {
                let size = |p: &mut Self, t: &mut Table<'_, '_>, key: &str| {
                    p.int(t, key, 0, MAX_SIM_TASKS)
                        .and_then(|n| u32::try_from(n).ok())
                };
                let o = AutoScalingGroupOverride {
                    name: name.to_string(),
                    span,
                    min_size: size(p, t, "min_size"),
                    desired_capacity: size(p, t, "desired_capacity"),
                    max_size: size(p, t, "max_size"),
                    in_service: size(p, t, "in_service"),
                    suspended_processes: p.processes(t, "suspended_processes"),
                    deleting: p.bool(t, "deleting"),
                    missing: p.bool(t, "missing").unwrap_or(false),
                };
                c.autoscaling_groups.push(o);
            },
        );
        if let Some(v) = root.take("elasticache")
            && let Some(mut t) = self.table(v, "[elasticache]")
        {
            match self
                .choice(
                    &mut t,
                    "failover_with_unreachable_members",
                    FAILOVER_READINGS,
                )
                .as_deref()
            {
                Some("allow") => c.failover_with_unreachable_members = FailoverReading::Allow,
                Some(_) => c.failover_with_unreachable_members = FailoverReading::Refuse,
                None => {}
            }
            self.finish(t, ELASTICACHE_KEYS);
        }
        if let Some(v) = root.take("fault") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(f) = self.fault(item, i + 1) {
                            c.faults.push(f);
                        }
                    }
                }
                other => {
                    self.d
                        .error(
                            v.span(),
                            format!(
                                "`fault` must be an array of tables, found {}",
                                reader::kind_of(other)
                            ),
                            "expected [[fault]] tables",
                        )
                        .help = Some("write each fault as a [[fault]] table".into());
                }
            }
        }
        self.finish(root, ROOT_KEYS);
        Some(c)
    }

    // ---- generic readers ----

    fn table<'a, 'i>(&mut self, v: &'a Val<'i>, what: &str) -> Option<Table<'a, 'i>> {
        reader::as_table(&mut self.d, v, what)
    }

    /// A table of named tables (`[clusters.NAME]`), each read by `read`.
    fn named<'a, 'i>(
        &mut self,
        root: &mut Table<'a, 'i>,
        section: &str,
        keys: &[&str],
        mut read: impl FnMut(&mut Self, &str, Range<usize>, &mut Table<'a, 'i>),
    ) {
        let Some(v) = root.take(section) else {
            return;
        };
        let Some(t) = self.table(v, &format!("[{section}]")) else {
            return;
        };
        for (k, v) in t.map.iter() {
            let name: &str = k.get_ref().as_ref();
            let what = format!("[{section}.{name}]");
            if let Some(mut inner) = self.table(v, &what) {
                read(self, name, k.span(), &mut inner);
                self.finish(inner, keys);
            }
        }
    }

    fn finish(&mut self, t: Table<'_, '_>, valid: &[&str]) {
        // A sim config has no secret to blank: nothing renders it but these errors,
        // and a secret-looking key is still refused as unknown.
        reader::finish(&mut self.d, t, valid, "a sim config");
    }

    fn wrong_type(&mut self, v: &Val<'_>, key: &str, what: &str, expected: &str) {
        reader::wrong_type(&mut self.d, v, key, what, expected);
    }

    fn string(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<String> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                let what = t.what.clone();
                self.wrong_type(v, key, &what, "a string");
                None
            }
        }
    }

    fn bool(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
        reader::bool(&mut self.d, t, key)
    }

    /// `"hold"` or `"reset"`: whether calls into an outage are refused at once.
    fn outage(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "hold" => Some(false),
            DeValue::String(s) if s.as_ref() == "reset" => Some(true),
            _ => {
                let what = t.what.clone();
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} must be \"hold\" or \"reset\""),
                    "hold: no answer until the caller's deadline; reset: refused at once",
                );
                None
            }
        }
    }

    /// A list of service signing names, as `reach::Service` knows them.
    fn services(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Vec<String>> {
        use crate::cloud::reach::Service;
        let v = t.take(key)?;
        let what = t.what.clone();
        let known = || {
            Service::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, key, &what, "a list of service names");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(name) => {
                    match Service::parse(name) {
                        Some(s) => out.push(s.as_str().to_string()),
                        None => {
                            self.d
                            .error(
                                item.span(),
                                format!("`{name}` in `{key}` of {what} is not a service drpilot calls"),
                                "expected a service's signing name",
                            )
                            .help = Some(format!("one of: {}", known()));
                            return None;
                        }
                    }
                }
                _ => {
                    self.wrong_type(item, key, &what, "a service name");
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.d.error(
                v.span(),
                format!("`{key}` in {what} is empty"),
                "leave it out for the whole region",
            );
            return None;
        }
        Some(out)
    }

    /// A list of Auto Scaling process names.
    fn processes(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Vec<String>> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, key, &what, "a list of process names");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) if ASG_PROCESSES.contains(&s.as_ref()) => {
                    out.push(s.to_string());
                }
                _ => {
                    self.d.error(
                        item.span(),
                        format!("`{key}` in {what} names an unknown process"),
                        format!(
                            "expected {}",
                            crate::runbook::catalogue::quoted_list(ASG_PROCESSES)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A shard count.
    fn shards(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<u16> {
        self.int(t, key, 1, MAX_SHARDS)
            .and_then(|n| u16::try_from(n).ok())
    }

    /// A list of shard numbers (1 for the first, in slot order).
    fn shard_numbers(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Vec<u16>> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, key, &what, "a list of shard numbers");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let n = reader::int_value(&mut self.d, item, key, &what, 1, MAX_SHARDS)?;
            out.push(u16::try_from(n).ok()?);
        }
        Some(out)
    }

    fn int(&mut self, t: &mut Table<'_, '_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = t.take(key)?;
        reader::int_value(&mut self.d, v, key, &t.what, min, max)
    }

    /// A number of ACUs, 0 to 256 in half steps.
    fn acu(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<crate::names::Acu> {
        use crate::names::Acu;
        let v = t.take(key)?;
        reader::acu_value(&mut self.d, v, key, &t.what, Acu::ZERO, Acu::LARGEST)
    }

    fn rate(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<f64> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let n = match v.get_ref() {
            DeValue::Float(f) => f
                .as_str()
                .chars()
                .filter(|c| *c != '_')
                .collect::<String>()
                .parse::<f64>()
                .ok(),
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(v, key, &what, "a number from 0 to 1");
                return None;
            }
        };
        match n {
            Some(n) if (0.0..=1.0).contains(&n) => Some(n),
            _ => {
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} must be a probability"),
                    "expected a number from 0 to 1",
                );
                None
            }
        }
    }

    fn duration_value(&mut self, v: &Val<'_>, key: &str, what: &str) -> Option<Duration> {
        let d = reader::duration_value(&mut self.d, v, key, what, |s, _| Some(s.to_string()))?;
        // The world's clock scales durations; a bound keeps that arithmetic finite.
        if d > Duration::from_secs(10 * 365 * 86_400) {
            self.d.error(
                v.span(),
                format!("`{key}` in {what} is longer than ten years"),
                "expected a shorter duration",
            );
            return None;
        }
        Some(d)
    }

    fn duration(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Duration> {
        let v = t.take(key)?;
        let what = t.what.clone();
        self.duration_value(v, key, &what)
    }

    /// `"90s"` (exactly) or `["60s", "120s"]` (drawn from the range).
    fn between(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Between> {
        let v = t.take(key)?;
        let what = t.what.clone();
        match v.get_ref() {
            DeValue::Array(items) => {
                let items: Vec<&Val<'_>> = items.iter().collect();
                let [lo, hi] = items.as_slice() else {
                    self.d.error(
                        v.span(),
                        format!("`{key}` in {what} must be one duration or [min, max]"),
                        format!("expected two durations, found {}", items.len()),
                    );
                    return None;
                };
                let (lo, hi) = (
                    self.duration_value(lo, key, &what),
                    self.duration_value(hi, key, &what),
                );
                let (lo, hi) = (lo?, hi?);
                if lo > hi {
                    self.d.error(
                        v.span(),
                        format!("`{key}` in {what} has its minimum above its maximum"),
                        "expected [min, max]",
                    );
                    return None;
                }
                Some(Between { min: lo, max: hi })
            }
            _ => self
                .duration_value(v, key, &what)
                .map(|d| Between { min: d, max: d }),
        }
    }

    fn region(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<String> {
        let v = t.take(key)?;
        let what = t.what.clone();
        match v.get_ref() {
            DeValue::String(s) if is_region(s) => Some(s.to_string()),
            DeValue::String(s) => {
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} is not an AWS region: \"{s}\""),
                    "expected a region such as \"us-west-2\"",
                );
                None
            }
            _ => {
                self.wrong_type(v, key, &what, "a region such as \"us-west-2\"");
                None
            }
        }
    }

    fn choice(&mut self, t: &mut Table<'_, '_>, key: &str, values: &[&str]) -> Option<String> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let expected = crate::runbook::catalogue::quoted_list(values);
        match v.get_ref() {
            DeValue::String(s) if values.contains(&s.as_ref()) => Some(s.to_string()),
            DeValue::String(s) => {
                let p = self.d.error(
                    v.span(),
                    format!("`{key}` in {what} is not a known value: \"{s}\""),
                    format!("expected {expected}"),
                );
                if let Some(near) = did_you_mean(s, values.iter().copied()) {
                    p.help = Some(format!("did you mean \"{near}\"?"));
                }
                None
            }
            _ => {
                self.wrong_type(v, key, &what, &format!("one of {expected}"));
                None
            }
        }
    }

    /// `local = { ... }` (see [`LocalServer`]).
    fn local(&mut self, t: &mut Table<'_, '_>, postgres: bool) -> Option<LocalServer> {
        let v = t.take("local")?;
        let what = format!("`local` in {}", t.what);
        let mut lt = self.table(v, &what)?;
        let has = |k: &str| lt.map.contains_key(k);
        let (has_host, has_port, has_user) = (has("host"), has("port"), has("user"));
        let host = self.string(&mut lt, "host");
        let port = self
            .int(&mut lt, "port", 1, 65_535)
            .and_then(|n| u16::try_from(n).ok());
        let user = self.string(&mut lt, "user");
        let password_env = self.string(&mut lt, "password_env");
        let database = if postgres {
            self.string(&mut lt, "database")
        } else {
            None
        };
        let follow = if postgres {
            match lt.take("follow") {
                None => Vec::new(),
                Some(f) => {
                    let items: Option<Vec<String>> = match f.get_ref() {
                        DeValue::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|i| match i.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                    match items {
                        Some(items) => items,
                        None => {
                            self.wrong_type(
                                f,
                                "follow",
                                &what,
                                "a command: an array of strings, program first",
                            );
                            Vec::new()
                        }
                    }
                }
            }
        } else {
            Vec::new()
        };
        let loopback = |h: &str| {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let mut ok = true;
        let nodes = if postgres {
            Vec::new()
        } else {
            match lt.take("nodes") {
                None => Vec::new(),
                Some(v) => match self.cluster_nodes(v, &what, &loopback) {
                    Some(nodes) => nodes,
                    None => {
                        ok = false;
                        Vec::new()
                    }
                },
            }
        };
        match &host {
            Some(h) if !loopback(h) => {
                self.d
                    .error(
                        lt.span.clone(),
                        format!("{what}: host \"{h}\" is not on this machine"),
                        "a simulation only drives servers on loopback",
                    )
                    .help = Some(
                    "use 127.0.0.1, ::1 or localhost: a simulated promotion runs pg_promote() \
                     / REPLICAOF NO ONE on the server it is bound to"
                        .into(),
                );
                ok = false;
            }
            Some(_) => {}
            None if has_host => ok = false,
            None => {
                self.d.error(
                    lt.span.clone(),
                    format!("{what} has no host"),
                    "`host` is required",
                );
                ok = false;
            }
        }
        if postgres && user.is_none() && !has_user {
            self.d
                .error(
                    lt.span.clone(),
                    format!("{what} has no user"),
                    "`user` is required for PostgreSQL",
                )
                .help =
                Some("the lab logs in as it to promote and fence the server: a superuser".into());
            ok = false;
        }
        if port.is_none() && !has_port {
            self.d.error(
                lt.span.clone(),
                format!("{what} has no port"),
                "`port` is required",
            );
            ok = false;
        }
        let keys = if postgres {
            PG_LOCAL_KEYS
        } else {
            VALKEY_LOCAL_KEYS
        };
        self.finish(lt, keys);
        Some(LocalServer {
            host: host?,
            port: port?,
            user,
            password_env,
            database,
            follow,
            nodes,
        })
        .filter(|_| ok)
    }

    /// `nodes = ["127.0.0.1:7100", ...]` of a cluster binding: distinct `host:port`
    /// addresses on loopback. `None` (reported) when they are not.
    fn cluster_nodes(
        &mut self,
        v: &Val<'_>,
        what: &str,
        loopback: &dyn Fn(&str) -> bool,
    ) -> Option<Vec<String>> {
        let expected = "an array of \"host:port\" strings, one node per shard";
        let items: Option<Vec<String>> = match v.get_ref() {
            DeValue::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| match i.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let Some(items) = items else {
            self.wrong_type(v, "nodes", what, expected);
            return None;
        };
        let mut seen = Vec::new();
        for item in items {
            let parsed = item.rsplit_once(':').and_then(|(h, p)| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                let port = p.parse::<u16>().ok().filter(|p| *p > 0)?;
                (!h.is_empty()).then(|| (h.to_string(), port))
            });
            let problem = match &parsed {
                None => Some(format!("\"{item}\" is not host:port")),
                Some((h, _)) if !loopback(h) => Some(format!(
                    "\"{item}\" is not on this machine (a simulation only drives servers on \
                     loopback)"
                )),
                Some(_) if seen.contains(&item) => Some(format!("\"{item}\" is listed twice")),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                self.d.error(
                    v.span(),
                    format!("{what}: nodes: {problem}"),
                    expected.to_string(),
                );
                return None;
            }
            seen.push(item);
        }
        Some(seen)
    }

    // ---- sections ----

    fn timing(&mut self, v: &Val<'_>, timing: &mut Timing) {
        let Some(mut t) = self.table(v, "[timing]") else {
            return;
        };
        let fields: [(&str, &mut Between); 19] = [
            ("aurora_pending", &mut timing.aurora_pending),
            ("aurora_failover", &mut timing.aurora_failover),
            ("aurora_switchover", &mut timing.aurora_switchover),
            ("aurora_detach", &mut timing.aurora_detach),
            ("aurora_modify", &mut timing.aurora_modify),
            ("snapshot_create", &mut timing.snapshot_create),
            ("snapshot_copy", &mut timing.snapshot_copy),
            ("replication_lag", &mut timing.replication_lag),
            ("valkey_failover", &mut timing.valkey_failover),
            ("valkey_disassociate", &mut timing.valkey_disassociate),
            ("route53_insync", &mut timing.route53_insync),
            ("health_check_update", &mut timing.health_check_update),
            ("s3_replication", &mut timing.s3_replication),
            ("http_latency", &mut timing.http_latency),
            (
                "routing_control_propagation",
                &mut timing.routing_control_propagation,
            ),
            ("ecs_task_start", &mut timing.ecs_task_start),
            ("ecs_task_stop", &mut timing.ecs_task_stop),
            ("asg_instance_launch", &mut timing.asg_instance_launch),
            ("asg_instance_terminate", &mut timing.asg_instance_terminate),
        ];
        for (key, slot) in fields {
            if let Some(b) = self.between(&mut t, key) {
                *slot = b;
            }
        }
        if let Some(d) = self.duration(&mut t, "health_check_detect") {
            timing.health_check_detect = d;
        }
        self.finish(t, TIMING_KEYS);
    }

    fn fault(&mut self, v: &Val<'_>, n: usize) -> Option<FaultSpec> {
        let what = format!("[[fault]] #{n}");
        let mut t = self.table(v, &what)?;
        let header = self.header(&t.span);
        let mut ok = true;
        let kind = match self.choice(&mut t, "kind", FAULT_KINDS).as_deref() {
            Some("throttle") => Some(FaultKind::Throttle),
            Some("error") => Some(FaultKind::Error),
            Some("latency") => Some(FaultKind::Latency),
            Some("hang") => Some(FaultKind::Hang),
            _ => None,
        };
        if kind.is_none() && !t.map.contains_key("kind") {
            self.d.error(
                header.clone(),
                format!("missing `kind` in {what}"),
                format!(
                    "`kind` ({}) is required here",
                    crate::runbook::catalogue::quoted_list(FAULT_KINDS)
                ),
            );
        }
        let services: Vec<&str> = OPERATIONS.iter().map(|(s, _)| *s).collect();
        let service = self.choice(&mut t, "service", &services);
        if t.map.contains_key("service") && service.is_none() {
            ok = false;
        }
        let operation = match t.take("operation") {
            Some(v) => match v.get_ref() {
                DeValue::String(s) if known_operation(service.as_deref(), s) => Some(s.to_string()),
                DeValue::String(s) => {
                    let all: Vec<&str> = OPERATIONS
                        .iter()
                        .filter(|(svc, _)| service.as_deref().is_none_or(|want| want == *svc))
                        .flat_map(|(_, ops)| ops.iter().copied())
                        .collect();
                    let p = self.d.error(
                        v.span(),
                        match &service {
                            Some(svc) => format!("`operation` in {what}: {svc} has no operation \"{s}\""),
                            None => format!("`operation` in {what} is not an operation the world serves: \"{s}\""),
                        },
                        "unknown operation",
                    );
                    p.help = Some(match did_you_mean(s, all.iter().copied()) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => format!("operations: {}", all.join(", ")),
                    });
                    ok = false;
                    None
                }
                _ => {
                    self.wrong_type(v, "operation", &what, "an API operation name");
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let region = self.region(&mut t, "region");
        let rate = self.rate(&mut t, "rate");
        let times = self
            .int(&mut t, "times", 1, i64::MAX)
            .and_then(|n| u64::try_from(n).ok());
        let from = self.duration(&mut t, "from");
        let until = self.duration(&mut t, "until");
        if let (Some(f), Some(u)) = (from, until)
            && u <= f
        {
            self.d.error(
                header.clone(),
                format!("in {what}, `until` is not after `from`"),
                "an empty window",
            );
            ok = false;
        }
        let latency_value = t.map.get("latency").map(|v| v.span());
        let latency = self.duration(&mut t, "latency");
        let error_span = t.map.get("error").map(|v| v.span());
        let error = self.choice(&mut t, "error", ERROR_KINDS);
        let code = self.string(&mut t, "code");
        let after_span = t.map.get("after_apply").map(|v| v.span());
        let after_apply = self.bool(&mut t, "after_apply").unwrap_or(false);
        match kind {
            Some(FaultKind::Latency) if latency.is_none() && latency_value.is_none() => {
                self.d.error(
                    header.clone(),
                    format!("missing `latency` in {what}"),
                    "kind = \"latency\" needs `latency` (a duration)",
                );
                ok = false;
            }
            Some(k) if k != FaultKind::Latency && latency_value.is_some() => {
                self.d.error(
                    latency_value.clone().unwrap_or_default(),
                    format!("`latency` in {what} only applies to kind = \"latency\""),
                    "not used by this kind",
                );
                ok = false;
            }
            _ => {}
        }
        if let (Some(k), Some(span)) = (kind, error_span)
            && k != FaultKind::Error
        {
            self.d.error(
                span,
                format!("`error` in {what} only applies to kind = \"error\""),
                "not used by this kind",
            );
            ok = false;
        }
        if let (Some(FaultKind::Latency | FaultKind::Throttle), Some(span)) = (kind, after_span) {
            self.d.error(
                span,
                format!("`after_apply` in {what} only applies to kinds \"error\" and \"hang\""),
                "not used by this kind",
            );
            ok = false;
        }
        self.finish(t, FAULT_KEYS);
        let kind = kind?;
        ok.then(|| FaultSpec {
            kind,
            service,
            operation,
            region,
            rate: rate.unwrap_or(1.0),
            times,
            from: from.unwrap_or_default(),
            until,
            latency: latency.unwrap_or_default(),
            error: match error.as_deref() {
                Some("throttling") => CloudErrorKind::Throttling,
                Some("unreachable") => CloudErrorKind::Unreachable,
                Some("not_found") => CloudErrorKind::NotFound,
                Some("invalid_state") => CloudErrorKind::InvalidState,
                Some("access_denied") => CloudErrorKind::AccessDenied,
                Some("invalid_request") => CloudErrorKind::InvalidRequest,
                _ => CloudErrorKind::Transient,
            },
            code,
            after_apply,
        })
    }

    fn header(&self, span: &Range<usize>) -> Range<usize> {
        reader::header_span(self.src, span)
    }
}
