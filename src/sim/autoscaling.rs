//! EC2 Auto Scaling in the simulated world: groups whose instances take time to come
//! InService and to terminate.
//!
//! A group is found by name in the region the caller names. DescribeAutoScalingGroups
//! answers an unknown name with an empty list, as AWS does; UpdateAutoScalingGroup of
//! an unknown one is a `ValidationError`. An update whose sizes would not satisfy
//! MinSize <= DesiredCapacity <= MaxSize is refused (`ValidationError`), and so is one
//! of a group being deleted. The new sizes show at once; the group then launches the
//! instances it lacks (Pending for `[timing] asg_instance_launch`, then InService and
//! Healthy) unless `Launch` is suspended, and terminates those it has too many of (the
//! Pending ones first, then the newest; Terminating for `asg_instance_terminate`)
//! unless `Terminate` is suspended. A suspended process is resumed by nothing in the
//! world: what it blocked stays undone, as a scale that never settles.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::state::{SimAsg, SimInstance, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    ASG_DELETING, AsgInstance, AutoScaling, AutoScalingGroup, CloudErrorKind as K, CloudResult,
    GroupSizeUpdate, GroupSizes,
};

const SERVICE: &str = "autoscaling";
const VALIDATION: &str = "ValidationError";

impl State {
    /// Terminated instances leave their group.
    pub(super) fn advance_asgs(&mut self, now: Duration) {
        for g in self.asgs.values_mut() {
            g.instances.retain(|i| i.gone_at.is_none_or(|t| t > now));
        }
    }

    fn describe_asg(&self, region: &str, name: &str, now: Duration) -> Option<AutoScalingGroup> {
        let g = self.asgs.get(name).filter(|g| g.region == region)?;
        let instances = g
            .instances
            .iter()
            .filter(|i| i.gone_at.is_none_or(|t| t > now))
            .map(|i| AsgInstance {
                id: i.id.clone(),
                lifecycle_state: if i.gone_at.is_some() {
                    "Terminating"
                } else if i.in_service_at > now {
                    "Pending"
                } else {
                    "InService"
                }
                .to_string(),
                health_status: if i.healthy { "Healthy" } else { "Unhealthy" }.to_string(),
            })
            .collect();
        Some(AutoScalingGroup {
            name: g.name.clone(),
            arn: g.arn.clone(),
            status: g.status.clone(),
            sizes: GroupSizes {
                min_size: g.min,
                desired_capacity: g.desired,
                max_size: g.max,
            },
            instances,
            suspended_processes: g.suspended.clone(),
        })
    }

    fn update_asg(
        &mut self,
        region: &str,
        name: &str,
        update: GroupSizeUpdate,
        now: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateAutoScalingGroup";
        let err = |msg: String| fail(K::InvalidRequest, OP, Some(region), VALIDATION, msg);
        let Some(g) = self.asgs.get(name).filter(|g| g.region == region) else {
            return Err(err(format!("AutoScalingGroup name not found - {name}")));
        };
        if g.status.as_deref() == Some(ASG_DELETING) {
            return Err(err(format!("AutoScalingGroup {name} is pending delete.")));
        }
        let sizes = update.merged(GroupSizes {
            min_size: g.min,
            desired_capacity: g.desired,
            max_size: g.max,
        });
        if !sizes.consistent() {
            return Err(err(format!(
                "Desired capacity:{} must be between the specified min size:{} and max \
                 size:{}",
                sizes.desired_capacity, sizes.min_size, sizes.max_size
            )));
        }
        self.scale_asg(name, sizes, now);
        Ok(())
    }

    /// Sets the sizes and starts what the desired capacity asks for.
    pub(super) fn scale_asg(&mut self, name: &str, sizes: GroupSizes, now: Duration) {
        let (launch, terminate) = (
            self.timing.asg_instance_launch,
            self.timing.asg_instance_terminate,
        );
        let Some(g) = self.asgs.get(name) else {
            return;
        };
        let live = g.instances.iter().filter(|i| i.gone_at.is_none()).count();
        let live = u32::try_from(live).unwrap_or(u32::MAX);
        let want = sizes.desired_capacity;
        let can_launch = !g.suspended.iter().any(|p| p == "Launch");
        let can_terminate = !g.suspended.iter().any(|p| p == "Terminate");
        let stream = format!("asg:{name}");
        let mut starts = Vec::new();
        if can_launch {
            for _ in live..want {
                starts.push(now.saturating_add(self.duration(&stream, launch)));
            }
        }
        let mut stops = Vec::new();
        if can_terminate {
            for _ in want..live {
                stops.push(now.saturating_add(self.duration(&stream, terminate)));
            }
        }
        let Some(g) = self.asgs.get_mut(name) else {
            return;
        };
        g.min = sizes.min_size;
        g.desired = sizes.desired_capacity;
        g.max = sizes.max_size;
        for in_service_at in starts {
            g.launched = g.launched.saturating_add(1);
            g.instances.push(SimInstance {
                id: instance_id(name, g.launched),
                in_service_at,
                gone_at: None,
                healthy: true,
            });
        }
        // Pending instances go first, then the newest InService ones.
        g.instances.sort_by_key(|i| i.in_service_at);
        let mut stops = stops.into_iter();
        for i in g.instances.iter_mut().rev().filter(|i| i.gone_at.is_none()) {
            let Some(at) = stops.next() else { break };
            i.gone_at = Some(at);
        }
    }
}

/// A stable EC2 instance id (`i-` and 17 hex digits) for the `n`-th instance of a group.
fn instance_id(group: &str, n: u64) -> String {
    let h = super::names::fnv1a(&format!("{group}#{n}"));
    format!("i-0{:016x}", h)
}

/// A group of the world, `in_service` of its `desired` instances InService from the
/// start and the others launching over `[timing] asg_instance_launch`.
pub(super) fn new_group(
    state: &mut State,
    name: &str,
    region: &str,
    sizes: GroupSizes,
    in_service: u32,
) -> SimAsg {
    let launch = state.timing.asg_instance_launch;
    let mut g = SimAsg {
        name: name.to_string(),
        arn: format!(
            "arn:aws:autoscaling:{region}:111122223333:autoScalingGroup:{}:autoScalingGroupName/{name}",
            super::build::uuid_like(name)
        ),
        region: region.to_string(),
        min: sizes.min_size,
        desired: sizes.desired_capacity,
        max: sizes.max_size,
        status: None,
        suspended: Vec::new(),
        instances: Vec::new(),
        launched: 0,
    };
    for n in 0..sizes.desired_capacity {
        g.launched += 1;
        let in_service_at = if n < in_service {
            Duration::ZERO
        } else {
            state.duration(&format!("asg:{name}"), launch)
        };
        g.instances.push(SimInstance {
            id: instance_id(name, g.launched),
            in_service_at,
            gone_at: None,
            healthy: true,
        });
    }
    g
}

#[async_trait]
impl AutoScaling for SimWorld {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> CloudResult<Option<AutoScalingGroup>> {
        self.call(
            SERVICE,
            "DescribeAutoScalingGroups",
            Route::Region(region),
            false,
            json!({}),
            |s, now| Ok(s.describe_asg(region, name, now)),
        )
        .await
    }

    async fn update_group_sizes(
        &self,
        region: &str,
        name: &str,
        update: GroupSizeUpdate,
    ) -> CloudResult<()> {
        let args = json!({
            "group": name,
            "min_size": update.min_size,
            "desired_capacity": update.desired_capacity,
            "max_size": update.max_size,
        });
        self.call(
            SERVICE,
            "UpdateAutoScalingGroup",
            Route::Region(region),
            true,
            args,
            |s, now| s.update_asg(region, name, update, now),
        )
        .await
    }
}
