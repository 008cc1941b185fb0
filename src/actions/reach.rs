//! What a runbook will call, region by region: the targets a run probes at its start
//! (see `cloud::reach`), so a region that does not answer is known within seconds and
//! every step that needs it learns so at once instead of waiting out a deadline.

use std::collections::BTreeSet;

use crate::cloud::reach::{ProbeTarget, Service};
use crate::runbook::catalogue::{arn_region, is_region};
use crate::runbook::model::{FieldValue, Fields, Runbook};

/// Route 53's control plane is served from here.
const ROUTE53_REGION: &str = "us-east-1";

/// The services an action or check calls in the runbook's regions (Route 53's control
/// plane and ARC endpoints are placed by [`probe_targets`] itself).
fn regional_services(name: &str) -> &'static [Service] {
    match name.split('.').next().unwrap_or_default() {
        // Lag (`AuroraGlobalDBRPOLag`) is read from CloudWatch in the secondary's region.
        "aurora" => &[Service::Rds, Service::Cloudwatch],
        "valkey" if name != "valkey.check" && name != "valkey.heartbeat" => &[Service::Elasticache],
        // The replication backlog is a CloudWatch metric in the source's region.
        "s3" => &[Service::S3, Service::Cloudwatch],
        _ => &[],
    }
}

/// Whether an action or check calls Route 53's control plane.
fn uses_route53_control_plane(name: &str) -> bool {
    name.starts_with("route53.") && !name.starts_with("route53.routing_control")
}

/// Every region the runbook names: its parameters (the `from`/`to` pair first) and the
/// regions inside ARNs and `region` fields of its steps.
pub fn runbook_regions(rb: &Runbook) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |r: &str| {
        if is_region(r) && !out.iter().any(|x| x == r) {
            out.push(r.to_string());
        }
    };
    for key in ["to", "from"] {
        if let Some(v) = rb.params.get(key) {
            add(v);
        }
    }
    for v in rb.params.values() {
        add(v);
    }
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
/// included) use, in every region the runbook names; Route 53's control plane in
/// us-east-1; each ARC cluster endpoint in its region. Data planes (PostgreSQL,
/// Valkey, HTTP, DNS) are not AWS endpoints and are not probed.
pub fn probe_targets(rb: &Runbook) -> Vec<ProbeTarget> {
    let regions = runbook_regions(rb);
    let mut services: BTreeSet<Service> = BTreeSet::new();
    let mut out: BTreeSet<ProbeTarget> = BTreeSet::new();
    for s in &rb.steps {
        let mut parts: Vec<(&str, &Fields)> = vec![(s.spec.name, &s.fields)];
        if let Some(g) = &s.gate {
            parts.push((g.spec.name, &g.fields));
        }
        if let Some(r) = &s.rollback {
            parts.push((r.spec.map_or(s.spec.name, |sp| sp.name), &r.fields));
        }
        for (name, fields) in parts {
            services.extend(regional_services(name));
            if uses_route53_control_plane(name) {
                out.insert(ProbeTarget {
                    region: ROUTE53_REGION.to_string(),
                    service: Service::Route53,
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
            .any(|s| uses_route53_control_plane(s.spec.name));
        let probed = probe_targets(&rb)
            .iter()
            .any(|t| t.service == Service::Route53 && t.region == "us-east-1");
        assert_eq!(uses_cutover, probed);
    }
}
