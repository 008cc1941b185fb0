//! Route 53's control plane: record sets, changes, health checks, the zone quota.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Datapoint, GLOBAL_REGION, Guarded, MetricQuery, missing, newest_datapoints};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    AliasTarget, ChangeAction, ChangeInfo, ChangeStatus, CidrRouting, CloudError, CloudErrorKind,
    CloudResult, GeoLocation, GeoProximity, HealthCheck, Quota, RecordChange, RecordRouting,
    RecordSet, Route53,
};

/// A record name as Route 53 returns it: lower case, absolute, `*` as `\052`.
pub(super) fn normalize_name(name: &str) -> String {
    let mut n = name.to_ascii_lowercase().replace('*', "\\052");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

fn record_from(r: &aws_sdk_route53::types::ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: r.name().to_string(),
        record_type: r.r#type().as_str().to_string(),
        set_identifier: r.set_identifier().map(str::to_string),
        ttl: r.ttl(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| AliasTarget {
            dns_name: a.dns_name().to_string(),
            zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        weight: r.weight(),
        failover: r.failover().map(|f| f.as_str().to_string()),
        health_check_id: r.health_check_id().map(str::to_string),
        routing: RecordRouting {
            region: r.region().map(|x| x.as_str().to_string()),
            geo_location: r.geo_location().map(|g| GeoLocation {
                continent_code: g.continent_code().map(str::to_string),
                country_code: g.country_code().map(str::to_string),
                subdivision_code: g.subdivision_code().map(str::to_string),
            }),
            multi_value_answer: r.multi_value_answer(),
            cidr: r.cidr_routing_config().map(|c| CidrRouting {
                collection_id: c.collection_id().to_string(),
                location_name: c.location_name().to_string(),
            }),
            geo_proximity: r.geo_proximity_location().map(|g| GeoProximity {
                aws_region: g.aws_region().map(str::to_string),
                local_zone_group: g.local_zone_group().map(str::to_string),
                coordinates: g
                    .coordinates()
                    .map(|c| (c.latitude().to_string(), c.longitude().to_string())),
                bias: g.bias(),
            }),
        },
    }
}

fn record_to(op: &str, r: &RecordSet) -> CloudResult<aws_sdk_route53::types::ResourceRecordSet> {
    use aws_sdk_route53::types::{
        CidrRoutingConfig, Coordinates, GeoProximityLocation, ResourceRecord, ResourceRecordSet,
        ResourceRecordSetFailover, ResourceRecordSetRegion, RrType,
    };
    let bad = |e: &dyn std::error::Error| {
        CloudError::new(
            CloudErrorKind::InvalidRequest,
            op,
            Some(GLOBAL_REGION),
            format!("record {} {}: {e}", r.name, r.record_type),
        )
    };
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.record_type.as_str()))
        .set_set_identifier(r.set_identifier.clone())
        .set_ttl(r.ttl)
        .set_weight(r.weight)
        .set_failover(r.failover.as_deref().map(ResourceRecordSetFailover::from))
        .set_health_check_id(r.health_check_id.clone())
        .set_region(
            r.routing
                .region
                .as_deref()
                .map(ResourceRecordSetRegion::from),
        )
        .set_geo_location(r.routing.geo_location.as_ref().map(|g| {
            aws_sdk_route53::types::GeoLocation::builder()
                .set_continent_code(g.continent_code.clone())
                .set_country_code(g.country_code.clone())
                .set_subdivision_code(g.subdivision_code.clone())
                .build()
        }))
        .set_multi_value_answer(r.routing.multi_value_answer);
    if let Some(c) = &r.routing.cidr {
        b = b.cidr_routing_config(
            CidrRoutingConfig::builder()
                .collection_id(&c.collection_id)
                .location_name(&c.location_name)
                .build()
                .map_err(|e| bad(&e))?,
        );
    }
    if let Some(g) = &r.routing.geo_proximity {
        let coordinates = match &g.coordinates {
            Some((lat, lon)) => Some(
                Coordinates::builder()
                    .latitude(lat)
                    .longitude(lon)
                    .build()
                    .map_err(|e| bad(&e))?,
            ),
            None => None,
        };
        b = b.geo_proximity_location(
            GeoProximityLocation::builder()
                .set_aws_region(g.aws_region.clone())
                .set_local_zone_group(g.local_zone_group.clone())
                .set_coordinates(coordinates)
                .set_bias(g.bias)
                .build(),
        );
    }
    for v in &r.values {
        b = b.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| bad(&e))?,
        );
    }
    if let Some(a) = &r.alias {
        b = b.alias_target(
            aws_sdk_route53::types::AliasTarget::builder()
                .dns_name(&a.dns_name)
                .hosted_zone_id(&a.zone_id)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(|e| bad(&e))?,
        );
    }
    b.build().map_err(|e| bad(&e))
}

fn change_info(c: &aws_sdk_route53::types::ChangeInfo) -> ChangeInfo {
    ChangeInfo {
        id: c.id().to_string(),
        status: match c.status() {
            aws_sdk_route53::types::ChangeStatus::Insync => ChangeStatus::Insync,
            _ => ChangeStatus::Pending,
        },
    }
}

#[async_trait]
impl Route53 for AwsCloud {
    async fn list_record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Vec<RecordSet>> {
        use aws_sdk_route53::types::RrType;
        const OP: &str = "ListResourceRecordSets";
        let want = normalize_name(name);
        let client = self.route53();
        let mut out = Vec::new();
        // Start at (name, type): record sets are listed in name-then-type order, so
        // the ones we want come first and the listing stops at the first other one.
        let mut identifier: Option<String> = None;
        loop {
            let page = client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(&want)
                .start_record_type(RrType::from(record_type))
                .set_start_record_identifier(identifier.take())
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::Route53,
                    OP,
                    GLOBAL_REGION,
                )
                .await?;
            let mut past = false;
            for r in page.resource_record_sets() {
                if normalize_name(r.name()) == want && r.r#type().as_str() == record_type {
                    out.push(record_from(r));
                } else {
                    past = true;
                }
            }
            let more = page.is_truncated()
                && page.next_record_name().map(normalize_name).as_deref() == Some(&want)
                && page.next_record_type().map(|t| t.as_str()) == Some(record_type)
                && page.next_record_identifier().is_some();
            if past || !more {
                break;
            }
            identifier = page.next_record_identifier().map(str::to_string);
        }
        Ok(out)
    }

    async fn change_record_sets(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<ChangeInfo> {
        use aws_sdk_route53::types::{Change, ChangeBatch};
        const OP: &str = "ChangeResourceRecordSets";
        let invalid =
            |m: String| CloudError::new(CloudErrorKind::InvalidRequest, OP, Some(GLOBAL_REGION), m);
        let mut batch = ChangeBatch::builder().comment("drpilot");
        for c in changes {
            let action = match c.action {
                ChangeAction::Create => aws_sdk_route53::types::ChangeAction::Create,
                ChangeAction::Delete => aws_sdk_route53::types::ChangeAction::Delete,
                ChangeAction::Upsert => aws_sdk_route53::types::ChangeAction::Upsert,
            };
            batch = batch.changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(record_to(OP, &c.record)?)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            );
        }
        let out = send_once!(
            self,
            aws_sdk_route53,
            Service::Route53,
            OP,
            GLOBAL_REGION,
            self.route53()
                .change_resource_record_sets()
                .hosted_zone_id(zone_id)
                .change_batch(batch.build().map_err(|e| invalid(e.to_string()))?)
        )?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "ChangeInfo"))
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        const OP: &str = "GetChange";
        let out = self
            .route53()
            .get_change()
            .id(change_id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "ChangeInfo"))
    }

    async fn get_health_check(&self, id: &str) -> CloudResult<HealthCheck> {
        const OP: &str = "GetHealthCheck";
        let out = self
            .route53()
            .get_health_check()
            .health_check_id(id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        let cfg = out
            .health_check()
            .and_then(|h| h.health_check_config())
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "HealthCheckConfig"))?;
        Ok(HealthCheck {
            id: id.to_string(),
            inverted: cfg.inverted().unwrap_or(false),
            disabled: cfg.disabled().unwrap_or(false),
        })
    }

    async fn update_health_check(
        &self,
        id: &str,
        inverted: Option<bool>,
        disabled: Option<bool>,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateHealthCheck";
        send_once!(
            self,
            aws_sdk_route53,
            Service::Route53,
            OP,
            GLOBAL_REGION,
            self.route53()
                .update_health_check()
                .health_check_id(id)
                .set_inverted(inverted)
                .set_disabled(disabled)
        )?;
        Ok(())
    }

    async fn health_check_healthy(&self, id: &str) -> CloudResult<bool> {
        // Route 53 publishes a health check's status (1 healthy, 0 unhealthy, Inverted
        // and Disabled applied) as a CloudWatch metric in us-east-1 only. The Minimum
        // over a minute is healthy only if the whole minute was.
        let dimensions = [("HealthCheckId", id)];
        let newest = newest_datapoints(
            self.reach(),
            &self.cloudwatch(HEALTH_METRICS_REGION),
            HEALTH_METRICS_REGION,
            &[MetricQuery {
                id: "status",
                namespace: "AWS/Route53",
                name: "HealthCheckStatus",
                dimensions: &dimensions,
                stat: "Minimum",
            }],
        )
        .await?;
        health_from(id, newest[0], SystemTime::now())
    }

    async fn zone_record_quota(&self, zone_id: &str) -> CloudResult<Quota> {
        self.hosted_zone_limit(zone_id).await
    }
}

impl AwsCloud {
    async fn hosted_zone_limit(&self, zone_id: &str) -> CloudResult<Quota> {
        use aws_sdk_route53::types::HostedZoneLimitType;
        const OP: &str = "GetHostedZoneLimit";
        let out = self
            .route53()
            .get_hosted_zone_limit()
            .hosted_zone_id(zone_id)
            .r#type(HostedZoneLimitType::MaxRrsetsByZone)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        let limit = out
            .limit()
            .map(|l| l.value())
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "Limit"))?;
        Ok(Quota {
            used: u64::try_from(out.count()).unwrap_or(0),
            limit: u64::try_from(limit).unwrap_or(0),
        })
    }
}

/// Where Route 53 publishes its health-check metrics ("Monitoring health checks using
/// CloudWatch", Route 53 Developer Guide): us-east-1, whatever the endpoint's region.
const HEALTH_METRICS_REGION: &str = "us-east-1";

/// A health check's status now, from the newest `HealthCheckStatus` datapoint: healthy
/// at 1, unhealthy below. Without a current one (none in the window read, or older than
/// `DATAPOINT_MAX_AGE`: us-east-1 is dark, the check is new or unknown) the status is
/// unknown, a `Transient` error: a gate asks again, and it never reads as healthy.
fn health_from(id: &str, newest: Option<Datapoint>, now: SystemTime) -> CloudResult<bool> {
    match newest.and_then(|p| p.current(now)) {
        Some(v) => Ok(v >= 1.0),
        None => Err(CloudError::new(
            CloudErrorKind::Transient,
            "GetMetricData",
            Some(HEALTH_METRICS_REGION),
            format!("health check {id} has no current HealthCheckStatus datapoint"),
        )),
    }
}
