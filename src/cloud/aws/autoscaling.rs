//! EC2 Auto Scaling: a group's sizes and instances, and an update of its sizes.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Guarded};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    AsgInstance, AutoScaling, AutoScalingGroup, CloudError, CloudErrorKind, CloudResult,
    GroupSizeUpdate, GroupSizes,
};

/// Auto Scaling sizes are `Integer`s that are never negative; a negative one would be
/// a broken answer, read as 0 rather than trusted.
fn size(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn group_from(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> AutoScalingGroup {
    AutoScalingGroup {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        status: g.status().filter(|s| !s.is_empty()).map(str::to_string),
        sizes: GroupSizes {
            min_size: size(g.min_size()),
            desired_capacity: size(g.desired_capacity()),
            max_size: size(g.max_size()),
        },
        instances: g
            .instances()
            .iter()
            .map(|i| AsgInstance {
                id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle_state: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_string(),
            })
            .collect(),
        suspended_processes: g
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_string))
            .collect(),
    }
}

#[async_trait]
impl AutoScaling for AwsCloud {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> CloudResult<Option<AutoScalingGroup>> {
        const OP: &str = "DescribeAutoScalingGroups";
        let out = self
            .autoscaling(region)
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Autoscaling,
                OP,
                region,
            )
            .await?;
        // An unknown name is an empty list, not an error.
        Ok(out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .map(group_from))
    }

    async fn update_group_sizes(
        &self,
        region: &str,
        name: &str,
        update: GroupSizeUpdate,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateAutoScalingGroup";
        let int = |v: Option<u32>| -> CloudResult<Option<i32>> {
            v.map(|n| {
                i32::try_from(n).map_err(|_| {
                    CloudError::new(
                        CloudErrorKind::InvalidRequest,
                        OP,
                        Some(region),
                        format!("size {n} is above what Auto Scaling takes (an Integer)"),
                    )
                })
            })
            .transpose()
        };
        let (min, desired, max) = (
            int(update.min_size)?,
            int(update.desired_capacity)?,
            int(update.max_size)?,
        );
        send_once!(
            self,
            aws_sdk_autoscaling,
            Service::Autoscaling,
            OP,
            region,
            self.autoscaling(region)
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .set_min_size(min)
                .set_desired_capacity(desired)
                .set_max_size(max)
        )?;
        Ok(())
    }
}
