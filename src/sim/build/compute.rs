//! The compute a runbook scales: ECS services in their clusters.

use super::Builder;
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
    let name = |v: &str| {
        if v.starts_with("arn:") {
            v.rsplit('/').next().unwrap_or(v).to_string()
        } else {
            v.to_string()
        }
    };
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
            name(cluster),
            name(service)
        )
    };
    (cluster_arn, service_arn)
}

impl Builder<'_> {
    pub(super) fn compute(&mut self) {
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
