//! The compute a runbook scales: ECS services in their clusters, Auto Scaling groups.

use super::Builder;
use crate::cloud::GroupSizes;
use crate::names::ecs_name;
use crate::sim::autoscaling::new_group;
use crate::sim::ecs::new_service;

/// The account of resources a runbook names without an ARN.
const ACCOUNT: &str = "111122223333";

/// The `desiredCount` a service has before a step that scales it to `target`.
pub(crate) fn standby_count(target: u32) -> u32 {
    if target == 0 { 2 } else { target / 4 }
}

/// `(cluster ARN, service ARN)` of a service as a step names it (names or ARNs).
pub(crate) fn ecs_arns(region: &str, cluster: &str, service: &str) -> (String, String) {
    let account = [service, cluster]
        .iter()
        .filter(|v| v.starts_with("arn:"))
        .find_map(|v| v.split(':').nth(4).filter(|a| !a.is_empty()))
        .unwrap_or(ACCOUNT);
    let cluster_arn = if cluster.starts_with("arn:") {
        cluster.to_string()
    } else {
        format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}")
    };
    let service_arn = if service.starts_with("arn:") {
        service.to_string()
    } else {
        format!(
            "arn:aws:ecs:{region}:{account}:service/{}/{}",
            ecs_name(cluster),
            ecs_name(service)
        )
    };
    (cluster_arn, service_arn)
}

/// A group's sizes before a step that sets `[min, desired, max]` (each optional): its
/// desired capacity short of the one set ([`standby_count`] of the desired, else of
/// the minimum, else 1), a minimum of 0, and a maximum that holds every size the step
/// names, so the step's merged sizes are valid.
pub(crate) fn standby_sizes([min, desired, max]: [Option<u32>; 3]) -> GroupSizes {
    let target = desired.or(min);
    let mut before = target.map_or(1, standby_count);
    if let Some(hi) = max {
        before = before.min(hi);
    }
    let top = [min, desired, max, Some(before)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(before);
    GroupSizes {
        min_size: 0,
        desired_capacity: before,
        max_size: top.max(1),
    }
}

impl Builder<'_> {
    pub(super) fn compute(&mut self) {
        for (region, name, sizes) in self.scan.asgs.clone() {
            if self.state.asgs.contains_key(&name) {
                continue;
            }
            let sizes = standby_sizes(sizes);
            let g = new_group(
                &mut self.state,
                &name,
                &region,
                sizes,
                sizes.desired_capacity,
            );
            self.state.asgs.insert(name, g);
        }
        for svc in self.scan.ecs_services.clone() {
            let (cluster_arn, arn) = ecs_arns(&svc.region, &svc.cluster, &svc.service);
            self.state
                .ecs_clusters
                .entry(cluster_arn.clone())
                .or_insert_with(|| svc.region.clone());
            if self.state.ecs_services.contains_key(&arn) {
                continue;
            }
            let n = standby_count(svc.desired);
            let s = new_service(&mut self.state, &arn, &cluster_arn, &svc.region, n, n);
            self.state.ecs_services.insert(arn, s);
        }
    }
}
