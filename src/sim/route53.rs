//! Route 53 in the simulated world: zones, record sets, changes and health checks.
//!
//! Every API call goes to the control plane in us-east-1 and fails as `Unreachable`
//! while that region is; DNS answers and health checking are the data plane and keep
//! working. `ChangeResourceRecordSets` validates the whole batch and applies all or
//! nothing (CREATE of an existing record set, DELETE of a missing or non-identical
//! one, CNAME conflicts: `InvalidChangeBatch`); the control plane shows the change at
//! once, resolvers see it when the change is INSYNC. A health check's status comes
//! from the application in the region it monitors (noticed after
//! `health_check_detect`), then Inverted; a Disabled check is healthy, as AWS says.
//! That status is read as drpilot reads it on AWS, from CloudWatch's
//! `HealthCheckStatus` in us-east-1: a CloudWatch call there, not a control-plane one.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::names::{UPPER36, encode, fqdn, in_zone};
use super::state::{SimChange, SimZone, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    ChangeAction, ChangeInfo, ChangeStatus, CloudError, CloudErrorKind as K, CloudResult,
    HealthCheck, Quota, RecordChange, RecordSet, Route53,
};

const BATCH: &str = "InvalidChangeBatch";
const INPUT: &str = "InvalidInput";
const NO_ZONE: &str = "NoSuchHostedZone";
/// Route 53's default quota of record sets per hosted zone.
const MAX_RRSETS_BY_ZONE: u64 = 10_000;
const NO_HC: &str = "NoSuchHealthCheck";
/// Where Route 53 publishes the `HealthCheckStatus` metric: CloudWatch in us-east-1.
const HEALTH_METRICS_REGION: &str = "us-east-1";
/// Route 53's limit of `ResourceRecord` elements per `ChangeResourceRecordSets`, an
/// UPSERT's counting twice (API reference, "Limits").
const MAX_RECORD_ELEMENTS: usize = 1000;
const TYPES: &[&str] = &[
    "A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV",
    "SSHFP", "SVCB", "TLSA", "TXT",
];

/// A record set as stored: the name fully qualified and lowercase.
pub(crate) fn normalize(r: &RecordSet) -> RecordSet {
    let mut r = r.clone();
    r.name = fqdn(&r.name);
    if let Some(a) = r.alias.as_mut() {
        a.dns_name = fqdn(&a.dns_name);
    }
    r
}

/// Name, type and set identifier: what makes two record sets the same one.
fn same_set(a: &RecordSet, b: &RecordSet) -> bool {
    a.name == b.name && a.record_type == b.record_type && a.set_identifier == b.set_identifier
}

/// Whether a DELETE's record set matches the stored one exactly (values as a set).
fn identical(a: &RecordSet, b: &RecordSet) -> bool {
    let sorted = |r: &RecordSet| {
        let mut v: Vec<String> = r.values.iter().map(|v| v.trim().to_string()).collect();
        v.sort();
        v
    };
    same_set(a, b)
        && a.ttl == b.ttl
        && sorted(a) == sorted(b)
        && a.alias == b.alias
        && a.weight == b.weight
        && a.failover == b.failover
        && a.health_check_id == b.health_check_id
}

fn describe(r: &RecordSet) -> String {
    match &r.set_identifier {
        Some(id) => format!(
            "[name='{}', type='{}', set-identifier='{id}']",
            r.name, r.record_type
        ),
        None => format!("[name='{}', type='{}']", r.name, r.record_type),
    }
}

fn sort_records(records: &mut [RecordSet]) {
    records.sort_by(|a, b| {
        (&a.name, &a.record_type, &a.set_identifier).cmp(&(
            &b.name,
            &b.record_type,
            &b.set_identifier,
        ))
    });
}

impl State {
    fn shape_problem(&self, zone_name: &str, r: &RecordSet) -> Option<(K, &'static str, String)> {
        let what = describe(r);
        if !in_zone(&r.name, zone_name) {
            return Some((
                K::InvalidRequest,
                BATCH,
                format!(
                    "RRSet with DNS name {} is not permitted in zone {zone_name}",
                    r.name
                ),
            ));
        }
        if !TYPES.contains(&r.record_type.as_str()) {
            return Some((
                K::InvalidRequest,
                INPUT,
                format!("{what}: type {} is not a record type", r.record_type),
            ));
        }
        match (&r.alias, r.values.is_empty(), r.ttl) {
            (Some(_), false, _) => {
                return Some((
                    K::InvalidRequest,
                    INPUT,
                    format!("{what}: an alias record has no resource records"),
                ));
            }
            (Some(_), true, Some(_)) => {
                return Some((
                    K::InvalidRequest,
                    INPUT,
                    format!("{what}: an alias record has no TTL"),
                ));
            }
            (None, true, _) => {
                return Some((
                    K::InvalidRequest,
                    INPUT,
                    format!("{what}: no resource records"),
                ));
            }
            (None, false, None) => {
                return Some((K::InvalidRequest, INPUT, format!("{what}: TTL is required")));
            }
            _ => {}
        }
        if r.record_type == "CNAME" && r.values.len() > 1 {
            return Some((
                K::InvalidRequest,
                BATCH,
                format!("{what}: a CNAME record set has exactly one value"),
            ));
        }
        if let Some(f) = &r.failover
            && f != "PRIMARY"
            && f != "SECONDARY"
        {
            return Some((
                K::InvalidRequest,
                INPUT,
                format!("{what}: Failover is PRIMARY or SECONDARY"),
            ));
        }
        let routed = r.failover.is_some() || r.weight.is_some();
        if routed != r.set_identifier.is_some() {
            return Some((
                K::InvalidRequest,
                INPUT,
                format!(
                    "{what}: SetIdentifier goes with a routing policy (failover, weight), and only then"
                ),
            ));
        }
        if let Some(hc) = &r.health_check_id
            && !self.health_checks.contains_key(hc)
        {
            return Some((K::NotFound, NO_HC, format!("no health check with id {hc}")));
        }
        None
    }

    fn change(
        &mut self,
        zone_id: &str,
        changes: &[RecordChange],
        now: Duration,
    ) -> CloudResult<ChangeInfo> {
        const OP: &str = "ChangeResourceRecordSets";
        let err =
            |kind: K, code: &str, msg: String| -> CloudError { fail(kind, OP, None, code, msg) };
        let zone_key = zone_id.trim_start_matches("/hostedzone/");
        let Some(zone) = self.zones.get(zone_key) else {
            return Err(err(
                K::NotFound,
                NO_ZONE,
                format!("no hosted zone with id {zone_id}"),
            ));
        };
        if changes.is_empty() {
            return Err(err(
                K::InvalidRequest,
                INPUT,
                "a change batch needs at least one change".into(),
            ));
        }
        let elements: usize = changes
            .iter()
            .map(|c| {
                c.record.values.len()
                    * if c.action == ChangeAction::Upsert {
                        2
                    } else {
                        1
                    }
            })
            .sum();
        if elements > MAX_RECORD_ELEMENTS {
            return Err(err(
                K::InvalidRequest,
                BATCH,
                format!(
                    "Number of records limit of {MAX_RECORD_ELEMENTS} exceeded: the batch counts {elements} ResourceRecord elements"
                ),
            ));
        }
        let mut records = zone.records.clone();
        let mut problems: Vec<String> = Vec::new();
        for c in changes {
            let r = normalize(&c.record);
            if let Some((kind, code, msg)) = self.shape_problem(&zone.name, &r) {
                if kind != K::InvalidRequest || code != BATCH {
                    // Malformed input is reported on its own, as Route 53 does.
                    return Err(err(kind, code, msg));
                }
                problems.push(msg);
                continue;
            }
            let at = records.iter().position(|x| same_set(x, &r));
            match (c.action, at) {
                (ChangeAction::Create, Some(_)) => problems.push(format!(
                    "Tried to create resource record set {} but it already exists",
                    describe(&r)
                )),
                (ChangeAction::Create, None) | (ChangeAction::Upsert, None) => records.push(r),
                (ChangeAction::Upsert, Some(i)) => records[i] = r,
                (ChangeAction::Delete, None) => problems.push(format!(
                    "Tried to delete resource record set {} but it was not found",
                    describe(&r)
                )),
                (ChangeAction::Delete, Some(i)) => {
                    if identical(&records[i], &r) {
                        records.remove(i);
                    } else {
                        problems.push(format!(
                            "Tried to delete resource record set {} but the values provided do not match the current values",
                            describe(&r)
                        ));
                    }
                }
            }
        }
        // Rules on the result: a CNAME stands alone at its name, and record sets of one
        // name and type are either one simple set or all routed.
        for r in &records {
            if r.record_type == "CNAME"
                && let Some(other) = records
                    .iter()
                    .find(|o| o.name == r.name && o.record_type != "CNAME")
            {
                let msg = format!(
                    "RRSet of type CNAME with DNS name {} is not permitted because a conflicting RRSet of type {} with the same DNS name already exists",
                    r.name, other.record_type
                );
                if !problems.contains(&msg) {
                    problems.push(msg);
                }
            }
            let same: Vec<&RecordSet> = records
                .iter()
                .filter(|o| o.name == r.name && o.record_type == r.record_type)
                .collect();
            if same.len() > 1 && same.iter().any(|o| o.set_identifier.is_none()) {
                let msg = format!(
                    "RRSet with DNS name {}, type {} mixes a simple record set with routed ones",
                    r.name, r.record_type
                );
                if !problems.contains(&msg) {
                    problems.push(msg);
                }
            }
        }
        if !problems.is_empty() {
            return Err(err(
                K::InvalidRequest,
                BATCH,
                format!("[{}]", problems.join(", ")),
            ));
        }
        sort_records(&mut records);
        self.change_seq = self.change_seq.saturating_add(1);
        let bits = self.draw(&format!("route53:change_id:{zone_key}"));
        let id = format!("/change/C{}", encode(bits, 13, UPPER36));
        let insync = self.duration(
            &format!("route53:insync:{zone_key}"),
            self.timing.route53_insync,
        );
        if let Some(z) = self.zones.get_mut(zone_key) {
            z.records = records.clone();
        }
        self.changes.insert(
            id.clone(),
            SimChange {
                id: id.clone(),
                zone: zone_key.to_string(),
                seq: self.change_seq,
                submitted: now,
                insync_at: now.saturating_add(insync),
                records_after: Some(records),
            },
        );
        Ok(ChangeInfo {
            id,
            status: ChangeStatus::Pending,
        })
    }
}

fn change_key(id: &str) -> String {
    if id.starts_with("/change/") {
        id.to_string()
    } else {
        format!("/change/{id}")
    }
}

fn no_health_check(op: &str, id: &str) -> CloudError {
    fail(
        K::NotFound,
        op,
        None,
        NO_HC,
        format!("no health check with id {id}"),
    )
}

/// A hosted zone by id (with or without `/hostedzone/`), or `NoSuchHostedZone`.
fn zone_of<'s>(s: &'s State, op: &str, zone_id: &str) -> CloudResult<&'s SimZone> {
    s.zones
        .get(zone_id.trim_start_matches("/hostedzone/"))
        .ok_or_else(|| {
            fail(
                K::NotFound,
                op,
                None,
                NO_ZONE,
                format!("no hosted zone with id {zone_id}"),
            )
        })
}

#[async_trait]
impl Route53 for SimWorld {
    async fn zone_record_quota(&self, zone_id: &str) -> CloudResult<Quota> {
        const OP: &str = "GetHostedZoneLimit";
        self.call("route53", OP, Route::Route53, false, json!({}), |s, _| {
            let zone = zone_of(s, OP, zone_id)?;
            Ok(Quota {
                used: zone.records.len() as u64,
                limit: MAX_RRSETS_BY_ZONE,
            })
        })
        .await
    }

    async fn list_record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Vec<RecordSet>> {
        const OP: &str = "ListResourceRecordSets";
        self.call("route53", OP, Route::Route53, false, json!({}), |s, _| {
            let zone = zone_of(s, OP, zone_id)?;
            let name = fqdn(name);
            Ok(zone
                .records
                .iter()
                .filter(|r| r.name == name && r.record_type == record_type)
                .cloned()
                .collect())
        })
        .await
    }

    async fn change_record_sets(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<ChangeInfo> {
        let args = json!({ "hosted_zone_id": zone_id, "changes": changes });
        self.call(
            "route53",
            "ChangeResourceRecordSets",
            Route::Route53,
            true,
            args,
            |s, now| s.change(zone_id, changes, now),
        )
        .await
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        const OP: &str = "GetChange";
        self.call("route53", OP, Route::Route53, false, json!({}), |s, now| {
            let key = change_key(change_id);
            let c = s.changes.get(&key).ok_or_else(|| {
                fail(
                    K::NotFound,
                    OP,
                    None,
                    "NoSuchChange",
                    format!("no change with id {change_id}"),
                )
            })?;
            Ok(ChangeInfo {
                id: c.id.clone(),
                status: if now >= c.insync_at {
                    ChangeStatus::Insync
                } else {
                    ChangeStatus::Pending
                },
            })
        })
        .await
    }

    async fn get_health_check(&self, id: &str) -> CloudResult<HealthCheck> {
        const OP: &str = "GetHealthCheck";
        self.call("route53", OP, Route::Route53, false, json!({}), |s, _| {
            let hc = s
                .health_checks
                .get(id)
                .ok_or_else(|| no_health_check(OP, id))?;
            Ok(HealthCheck {
                id: hc.id.clone(),
                inverted: hc.inverted,
                disabled: hc.disabled,
            })
        })
        .await
    }

    async fn update_health_check(
        &self,
        id: &str,
        inverted: Option<bool>,
        disabled: Option<bool>,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateHealthCheck";
        let args = json!({ "health_check_id": id, "inverted": inverted, "disabled": disabled });
        self.call("route53", OP, Route::Route53, true, args, |s, now| {
            if !s.health_checks.contains_key(id) {
                return Err(no_health_check(OP, id));
            }
            let delay = s.duration(
                &format!("route53:health_check:{id}"),
                s.timing.health_check_update,
            );
            if let Some(hc) = s.health_checks.get_mut(id) {
                if let Some(v) = inverted {
                    hc.inverted = v;
                }
                if let Some(v) = disabled {
                    hc.disabled = v;
                }
                hc.effective_at = now.saturating_add(delay);
            }
            Ok(())
        })
        .await
    }

    async fn health_check_healthy(&self, id: &str) -> CloudResult<bool> {
        // Read as on AWS: Route 53's HealthCheckStatus metric, from CloudWatch in
        // us-east-1 (its breaker, faults and outages are CloudWatch's there). A health
        // check the world does not have publishes no datapoint.
        self.call(
            "cloudwatch",
            "GetMetricData",
            Route::Region(HEALTH_METRICS_REGION),
            false,
            json!({}),
            |s, now| match s.health_checks.get(id) {
                Some(hc) => Ok(s.health_check_healthy(hc, now)),
                None => Err(CloudError::new(
                    K::Transient,
                    "GetMetricData",
                    Some(HEALTH_METRICS_REGION),
                    format!("health check {id} has no current HealthCheckStatus datapoint"),
                )),
            },
        )
        .await
    }
}
