//! Amazon ECS: a service's counts and deployments, and its desired count.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Guarded};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{CloudError, CloudErrorKind, CloudResult, Ecs, EcsDeployment, EcsService};

/// DescribeServices' `failures[].reason` for a service the cluster does not have.
const MISSING: &str = "MISSING";

/// ECS counts are `Integer`s that are never negative; a negative one would be a broken
/// answer, read as 0 rather than trusted.
fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn service_from(s: &aws_sdk_ecs::types::Service) -> EcsService {
    EcsService {
        arn: s.service_arn().unwrap_or_default().to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired_count: count(s.desired_count()),
        running_count: count(s.running_count()),
        pending_count: count(s.pending_count()),
        launch_type: s.launch_type().map(|t| t.as_str().to_string()),
        capacity_providers: s
            .capacity_provider_strategy()
            .iter()
            .map(|c| c.capacity_provider().to_string())
            .collect(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| EcsDeployment {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                running_count: count(d.running_count()),
                pending_count: count(d.pending_count()),
            })
            .collect(),
    }
}

#[async_trait]
impl Ecs for AwsCloud {
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> CloudResult<Option<EcsService>> {
        const OP: &str = "DescribeServices";
        let out = self
            .ecs(region)
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::Ecs, OP, region)
            .await?;
        if let Some(s) = out.services().first() {
            return Ok(Some(service_from(s)));
        }
        match out.failures().first() {
            // The one answer that says "no such service": not an error in ECS's API.
            Some(f) if f.reason() == Some(MISSING) => Ok(None),
            Some(f) => Err(CloudError::new(
                CloudErrorKind::InvalidRequest,
                OP,
                Some(region),
                format!(
                    "service {service} in cluster {cluster}: {}{}",
                    f.reason().unwrap_or("a failure without a reason"),
                    f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
                ),
            )
            .with_code(f.reason().unwrap_or("Failure"))),
            None => Err(super::missing(OP, Some(region), "service and no failure")),
        }
    }

    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateService";
        let desired = i32::try_from(desired).map_err(|_| {
            CloudError::new(
                CloudErrorKind::InvalidRequest,
                OP,
                Some(region),
                format!("desiredCount {desired} is above what ECS takes (an Integer)"),
            )
        })?;
        send_once!(
            self,
            aws_sdk_ecs,
            Service::Ecs,
            OP,
            region,
            self.ecs(region)
                .update_service()
                .cluster(cluster)
                .service(service)
                .desired_count(desired)
        )?;
        Ok(())
    }
}
