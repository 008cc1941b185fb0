//! What a runbook will call, region by region: the targets a run probes at its start
//! (see `cloud::reach`), so a region that does not answer is known within seconds and
//! every step that needs it learns so at once instead of waiting out a deadline.

use std::collections::BTreeSet;

use crate::cloud::reach::{ProbeTarget, Service};
use crate::runbook::catalogue::{Kind, arn_region, is_region};
use crate::runbook::model::{FieldValue, Fields, Runbook};

/// Route 53's control plane is served from here, and Route 53 publishes its CloudWatch
/// metrics (`HealthCheckStatus`) here only.
const ROUTE53_REGION: &str = "us-east-1";

/// The services an action or check calls in the runbook's regions (Route 53's control
/// plane and ARC endpoints are placed by [`probe_targets`] itself).
fn regional_services(kind: Kind) -> &'static [Service] {
    match kind {
        // Lag (`AuroraGlobalDBRPOLag`, else `AuroraGlobalDBReplicationLag`) is read from
        // CloudWatch in the secondary's region.
        Kind::AuroraSwitchover
        | Kind::AuroraFailover
        | Kind::AuroraDetachPromote
        | Kind::AuroraSnapshotLostWrites
        | Kind::AuroraWriterInRegion
        | Kind::AuroraLagBelow
        | Kind::AuroraClusterAvailable => &[Service::Rds, Service::Cloudwatch],
        // ModifyDBCluster, DescribeDBClusters and DescribeDBInstances in the cluster's
        // region; the primary's ServerlessDatabaseCapacity from CloudWatch in its own.
        Kind::AuroraServerlessCapacity => &[Service::Rds, Service::Cloudwatch],
        // DescribeGlobalClusters and DescribeDBClusters; the name is resolved through
        // the data plane's resolvers.
        Kind::AuroraGlobalEndpoint => &[Service::Rds],
        Kind::ValkeyFailover | Kind::ValkeyPrimaryInRegion | Kind::ValkeyAvailable => {
            &[Service::Elasticache]
        }
        // DescribeServices and UpdateService in the step's region.
        Kind::EcsScaleService => &[Service::Ecs],
        // DescribeAutoScalingGroups and UpdateAutoScalingGroup in the step's region.
        Kind::AutoscalingSetCapacity => &[Service::Autoscaling],
        // The replication backlog is a CloudWatch metric in the source's region.
        Kind::S3ReplicationCheck | Kind::S3CanaryReplicated => &[Service::S3, Service::Cloudwatch],
        // Route 53 and ARC are placed by `probe_targets`; data planes, waits and
        // approvals call no AWS endpoint.
        Kind::Route53Cutover
        | Kind::Route53HealthCheckFlip
        | Kind::Route53ChangeInsync
        | Kind::Route53RecordPointsTo
        | Kind::Route53HealthCheckHealthy
        | Kind::Route53RoutingControl
        | Kind::Route53RoutingControlState
        | Kind::Approval
        | Kind::Wait
        | Kind::HttpCheck
        | Kind::PostgresCheck
        | Kind::ValkeyCheck
        | Kind::PostgresHeartbeat
        | Kind::ValkeyHeartbeat
        | Kind::DnsCheck => &[],
    }
}

/// Whether an action or check calls Route 53's control plane (served from us-east-1).
pub fn uses_route53_control_plane(kind: Kind) -> bool {
    match kind {
        Kind::Route53Cutover
        | Kind::Route53HealthCheckFlip
        | Kind::Route53ChangeInsync
        | Kind::Route53RecordPointsTo => true,
        // Reads CloudWatch in us-east-1 instead (`reads_route53_health_metric`).
        Kind::Route53HealthCheckHealthy => false,
        // ARC's routing controls are its data plane, in five regions.
        Kind::Route53RoutingControl
        | Kind::Route53RoutingControlState
        | Kind::AuroraSwitchover
        | Kind::AuroraFailover
        | Kind::AuroraDetachPromote
        | Kind::AuroraSnapshotLostWrites
        | Kind::AuroraServerlessCapacity
        | Kind::EcsScaleService
        | Kind::AutoscalingSetCapacity
        | Kind::AuroraWriterInRegion
        | Kind::AuroraLagBelow
        | Kind::AuroraClusterAvailable
        | Kind::AuroraGlobalEndpoint
        | Kind::ValkeyFailover
        | Kind::ValkeyPrimaryInRegion
        | Kind::ValkeyAvailable
        | Kind::S3ReplicationCheck
        | Kind::S3CanaryReplicated
        | Kind::Approval
        | Kind::Wait
        | Kind::HttpCheck
        | Kind::PostgresCheck
        | Kind::ValkeyCheck
        | Kind::PostgresHeartbeat
        | Kind::ValkeyHeartbeat
        | Kind::DnsCheck => false,
    }
}

/// Whether an action or check reads Route 53's `HealthCheckStatus` metric, which Route 53
/// publishes to CloudWatch in us-east-1 only (whatever regions the runbook names).
pub fn reads_route53_health_metric(kind: Kind) -> bool {
    kind == Kind::Route53HealthCheckHealthy
}

/// The regions a runbook's parameters name, the `to`/`from` pair first.
pub fn param_regions(rb: &Runbook) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let first = ["to", "from"].into_iter().filter_map(|k| rb.params.get(k));
    for v in first.chain(rb.params.values()) {
        if is_region(v) && !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// Every region the runbook names: its parameters (the `from`/`to` pair first) and the
/// regions inside ARNs and `region` fields of its steps.
pub fn runbook_regions(rb: &Runbook) -> Vec<String> {
    let mut out = param_regions(rb);
    let mut add = |r: &str| {
        if is_region(r) && !out.iter().any(|x| x == r) {
            out.push(r.to_string());
        }
    };
    let mut strings = Vec::new();
    for s in &rb.steps {
        collect_strings(&s.fields, &mut strings);
        if let Some(g) = &s.gate {
            collect_strings(&g.fields, &mut strings);
        }
        if let Some(r) = &s.rollback {
            collect_strings(&r.fields, &mut strings);
        }
    }
    for v in strings {
        if is_region(v) {
            add(v);
        } else if v.starts_with("arn:")
            && let Some(r) = arn_region(v)
        {
            add(r);
        }
    }
    out
}

fn collect_strings<'a>(fields: &'a Fields, out: &mut Vec<&'a str>) {
    for (k, v) in fields.iter() {
        // An ARC cluster's endpoints are in five regions the stack does not live in:
        // they are probed as ARC endpoints only.
        if k == "cluster_endpoints" {
            continue;
        }
        match v {
            FieldValue::Str(s) => out.push(s),
            FieldValue::List(l) => out.extend(l.iter().map(String::as_str)),
            FieldValue::Tables(ts) => {
                for t in ts {
                    collect_strings(t, out);
                }
            }
            _ => {}
        }
    }
}

/// The ARC cluster endpoints of a step's, gate's or rollback's fields.
fn arc_endpoints(fields: &Fields, out: &mut BTreeSet<ProbeTarget>) {
    let Some(FieldValue::Tables(ts)) = fields.get("cluster_endpoints") else {
        return;
    };
    for t in ts {
        if let (Some(FieldValue::Str(url)), Some(FieldValue::Str(region))) =
            (t.get("url"), t.get("region"))
        {
            out.insert(ProbeTarget {
                region: region.clone(),
                service: Service::RoutingControl,
                endpoint: Some(url.clone()),
            });
        }
    }
}

/// What a run of `rb` will call: each service its steps (gates and rollbacks
/// included) use, in every region the runbook names; Route 53's control plane, and
/// CloudWatch for Route 53's health-check metric, in us-east-1; each ARC cluster
/// endpoint in its region. Data planes (PostgreSQL,
/// Valkey, HTTP, DNS) are not AWS endpoints and are not probed.
pub fn probe_targets(rb: &Runbook) -> Vec<ProbeTarget> {
    let regions = runbook_regions(rb);
    let mut services: BTreeSet<Service> = BTreeSet::new();
    let mut out: BTreeSet<ProbeTarget> = BTreeSet::new();
    for s in &rb.steps {
        let mut parts: Vec<(Kind, &Fields)> = vec![(s.spec.kind, &s.fields)];
        if let Some(g) = &s.gate {
            parts.push((g.spec.kind, &g.fields));
        }
        if let Some(r) = &s.rollback {
            parts.push((r.spec.map_or(s.spec.kind, |sp| sp.kind), &r.fields));
        }
        for (kind, fields) in parts {
            services.extend(regional_services(kind));
            if uses_route53_control_plane(kind) {
                out.insert(ProbeTarget {
                    region: ROUTE53_REGION.to_string(),
                    service: Service::Route53,
                    endpoint: None,
                });
            }
            if reads_route53_health_metric(kind) {
                out.insert(ProbeTarget {
                    region: ROUTE53_REGION.to_string(),
                    service: Service::Cloudwatch,
                    endpoint: None,
                });
            }
            arc_endpoints(fields, &mut out);
        }
    }
    for r in &regions {
        for &service in &services {
            out.insert(ProbeTarget {
                region: r.clone(),
                service,
                endpoint: None,
            });
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a kind calls any AWS endpoint, by what this module probes for it.
    fn calls_aws(kind: Kind) -> bool {
        !regional_services(kind).is_empty()
            || uses_route53_control_plane(kind)
            || reads_route53_health_metric(kind)
            || matches!(
                kind,
                Kind::Route53RoutingControl | Kind::Route53RoutingControlState
            )
    }

    /// The registry's places agree: a step whose action calls AWS has IAM needs, one
    /// that calls none has none. The harness runbook names every catalogue entry.
    #[tokio::test(start_paused = true)]
    async fn iam_needs_and_probed_services_agree_for_every_entry() {
        let h = super::super::testing::Harness::prod();
        let mut seen = BTreeSet::new();
        for (id, needs) in crate::runbook::iam::needs_by_step(&h.runbook) {
            let step = h.runbook.step(&id).unwrap();
            let kind = step.spec.kind;
            seen.insert(kind);
            if calls_aws(kind) {
                assert!(
                    !needs.is_empty(),
                    "step {id} ({kind}) calls AWS: no IAM needs"
                );
            } else if step.gate.is_none() && step.rollback.is_none() {
                assert!(
                    needs.is_empty(),
                    "step {id} ({kind}) calls no AWS: {needs:?}"
                );
            }
        }
        // A change id exists only after a cutover: that check is a gate there.
        seen.insert(Kind::Route53ChangeInsync);
        let missing: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| !seen.contains(k))
            .collect();
        assert!(missing.is_empty(), "no harness step for {missing:?}");
    }

    fn shipped(name: &str) -> Runbook {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("runbooks")
            .join(name);
        crate::runbook::load(&path).unwrap().runbook
    }

    #[test]
    fn the_region_failover_probes_what_it_calls_and_nothing_else() {
        let rb = shipped("region-failover.toml");
        let targets: Vec<(String, &str)> = probe_targets(&rb)
            .into_iter()
            .map(|t| (t.region, t.service.as_str()))
            .collect();
        for region in ["us-east-1", "us-west-2"] {
            for service in ["rds", "monitoring", "elasticache", "s3"] {
                assert!(
                    targets.contains(&(region.to_string(), service)),
                    "{region} {service} in {targets:?}"
                );
            }
        }
        // ARC at all five cluster endpoints; no Route 53 control plane (the runbook
        // moves traffic with routing controls only).
        let arc: Vec<&str> = targets
            .iter()
            .filter(|(_, s)| *s == "route53-recovery-cluster")
            .map(|(r, _)| r.as_str())
            .collect();
        assert_eq!(
            arc,
            [
                "ap-northeast-1",
                "ap-southeast-2",
                "eu-west-1",
                "us-east-1",
                "us-west-2"
            ]
        );
        assert!(!targets.iter().any(|(_, s)| *s == "route53"));
        // Only regions the runbook names.
        assert!(targets.iter().all(|(r, s)| *s == "route53-recovery-cluster"
            || r == "us-east-1"
            || r == "us-west-2"));
    }

    #[test]
    fn route53_record_changes_probe_the_control_plane_in_us_east_1() {
        let rb = shipped("planned-switchover.toml");
        let uses_cutover = rb
            .steps
            .iter()
            .any(|s| uses_route53_control_plane(s.spec.kind));
        let probed = probe_targets(&rb)
            .iter()
            .any(|t| t.service == Service::Route53 && t.region == "us-east-1");
        assert_eq!(uses_cutover, probed);
    }

    #[test]
    fn a_health_check_gate_probes_cloudwatch_in_us_east_1_not_the_control_plane() {
        let rb = crate::runbook::load_str(
            std::path::Path::new("t.toml"),
            r#"
[runbook]
name = "t"
mode = "planned"
[params]
from = "eu-west-1"
to = "eu-central-1"
[[step]]
id = "wait"
action = "wait"
duration = "1s"
[step.gate]
check = "route53.health_check_healthy"
health_check_id = "hc-1"
"#,
        )
        .unwrap()
        .runbook;
        let targets: Vec<(String, &str)> = probe_targets(&rb)
            .into_iter()
            .map(|t| (t.region, t.service.as_str()))
            .collect();
        assert_eq!(targets, [("us-east-1".to_string(), "monitoring")]);
    }
}
