//! Amazon ECS in the simulated world: services whose tasks take time to start and to
//! drain.
//!
//! A call goes to the region the caller names and finds a cluster there by name or
//! ARN (`ClusterNotFoundException` otherwise), then the service in it by name or ARN.
//! `DescribeServices` reports an unknown service as a failure `MISSING`, not as an
//! error, as ECS does. `UpdateService` of the desired count answers at once; the
//! service then starts the tasks it lacks (PENDING for `[timing] ecs_task_start`, then
//! RUNNING) or stops those it has too many of (PENDING ones at once, RUNNING ones after
//! `ecs_task_stop`, the newest first, counted as running while they drain). A service
//! that is not ACTIVE refuses it (`ServiceNotActiveException`). A scale creates no
//! deployment: the PRIMARY deployment's `rolloutState` stays as it is, `IN_PROGRESS`
//! only while a deployment the sim config started (`deploying_until`) runs.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::state::{SimEcsService, SimTask, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    CloudErrorKind as K, CloudResult, ECS_ACTIVE, ECS_PRIMARY, ECS_ROLLOUT_COMPLETED, Ecs,
    EcsDeployment, EcsService,
};
use crate::names::ecs_name;

const SERVICE: &str = "ecs";

impl State {
    /// Completed stops leave the service; a deployment whose time is up is done.
    pub(super) fn advance_ecs(&mut self, now: Duration) {
        for s in self.ecs_services.values_mut() {
            s.tasks.retain(|t| t.stops_at.is_none_or(|at| at > now));
            if s.deploying_until.is_some_and(|t| t <= now) {
                s.deploying_until = None;
            }
        }
    }

    /// The ARN of the cluster `cluster` (name or ARN) in `region`.
    fn ecs_cluster(&self, op: &str, region: &str, cluster: &str) -> CloudResult<String> {
        self.ecs_clusters
            .iter()
            .find(|(arn, r)| *r == region && (*arn == cluster || ecs_name(arn) == cluster))
            .map(|(arn, _)| arn.clone())
            .ok_or_else(|| {
                fail(
                    K::NotFound,
                    op,
                    Some(region),
                    "ClusterNotFoundException",
                    "Cluster not found.",
                )
            })
    }

    /// The ARN of `service` (name or ARN) in the cluster `cluster_arn`.
    fn ecs_service_arn(&self, cluster_arn: &str, service: &str) -> Option<String> {
        self.ecs_services
            .values()
            .find(|s| s.cluster_arn == cluster_arn && (s.arn == service || s.name == service))
            .map(|s| s.arn.clone())
    }

    fn describe_ecs_service(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
        now: Duration,
    ) -> CloudResult<Option<EcsService>> {
        let cluster_arn = self.ecs_cluster("DescribeServices", region, cluster)?;
        let Some(s) = self
            .ecs_service_arn(&cluster_arn, service)
            .and_then(|arn| self.ecs_services.get(&arn))
        else {
            return Ok(None);
        };
        let (running, pending) = s.counts(now);
        let deploying = s.deploying_until.is_some_and(|t| t > now);
        let mut deployments = vec![EcsDeployment {
            id: format!("ecs-svc/{}", super::names::fnv1a(&s.arn) % 10_000_000_000),
            status: ECS_PRIMARY.into(),
            rollout_state: s.rollout_reported.then(|| {
                if deploying {
                    "IN_PROGRESS".to_string()
                } else {
                    ECS_ROLLOUT_COMPLETED.to_string()
                }
            }),
            running_count: running,
            pending_count: pending,
        }];
        if deploying {
            deployments.push(EcsDeployment {
                id: format!("ecs-svc/{}", super::names::fnv1a(&s.name) % 10_000_000_000),
                status: "ACTIVE".into(),
                rollout_state: s
                    .rollout_reported
                    .then(|| ECS_ROLLOUT_COMPLETED.to_string()),
                running_count: 0,
                pending_count: 0,
            });
        }
        Ok(Some(EcsService {
            arn: s.arn.clone(),
            name: s.name.clone(),
            cluster_arn: s.cluster_arn.clone(),
            status: s.status.clone(),
            desired_count: s.desired,
            running_count: running,
            pending_count: pending,
            launch_type: s.launch_type.clone(),
            capacity_providers: Vec::new(),
            deployments,
        }))
    }

    fn update_ecs_desired(
        &mut self,
        region: &str,
        cluster: &str,
        service: &str,
        desired: u32,
        now: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateService";
        let cluster_arn = self.ecs_cluster(OP, region, cluster)?;
        let Some(arn) = self.ecs_service_arn(&cluster_arn, service) else {
            return Err(fail(
                K::NotFound,
                OP,
                Some(region),
                "ServiceNotFoundException",
                "Service not found.",
            ));
        };
        let status = self
            .ecs_services
            .get(&arn)
            .map(|s| s.status.clone())
            .unwrap_or_default();
        if status != ECS_ACTIVE {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        let timing = (self.timing.ecs_task_start, self.timing.ecs_task_stop);
        let live = self
            .ecs_services
            .get(&arn)
            .map(|s| s.tasks.iter().filter(|t| t.stops_at.is_none()).count())
            .unwrap_or(0);
        let live = u32::try_from(live).unwrap_or(u32::MAX);
        let mut starts = Vec::new();
        for _ in live..desired {
            starts.push(now.saturating_add(self.duration(&format!("ecs:start:{arn}"), timing.0)));
        }
        let mut stops = Vec::new();
        for _ in desired..live {
            stops.push(now.saturating_add(self.duration(&format!("ecs:stop:{arn}"), timing.1)));
        }
        let Some(s) = self.ecs_services.get_mut(&arn) else {
            return Ok(());
        };
        s.desired = desired;
        s.tasks.extend(starts.into_iter().map(|running_at| SimTask {
            running_at,
            stops_at: None,
        }));
        // PENDING tasks go first (they never started), then the newest RUNNING ones.
        s.tasks.sort_by_key(|t| t.running_at);
        let mut stops = stops.into_iter();
        for t in s.tasks.iter_mut().rev().filter(|t| t.stops_at.is_none()) {
            let Some(at) = stops.next() else { break };
            t.stops_at = Some(if t.running_at > now { now } else { at });
        }
        s.tasks.retain(|t| t.stops_at.is_none_or(|at| at > now));
        Ok(())
    }
}

/// A service of the world with `desired` tasks, `running` of them RUNNING from the
/// start and the rest starting over `[timing] ecs_task_start` from `now`.
pub(super) fn new_service(
    state: &mut State,
    arn: &str,
    cluster_arn: &str,
    region: &str,
    desired: u32,
    running: u32,
) -> SimEcsService {
    let name = ecs_name(arn).to_string();
    let start = state.timing.ecs_task_start;
    let tasks = (0..desired)
        .map(|i| SimTask {
            running_at: if i < running {
                Duration::ZERO
            } else {
                state.duration(&format!("ecs:start:{arn}"), start)
            },
            stops_at: None,
        })
        .collect();
    SimEcsService {
        arn: arn.to_string(),
        name,
        cluster_arn: cluster_arn.to_string(),
        region: region.to_string(),
        status: ECS_ACTIVE.into(),
        desired,
        tasks,
        launch_type: Some("FARGATE".into()),
        rollout_reported: true,
        deploying_until: None,
    }
}

#[async_trait]
impl Ecs for SimWorld {
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
    ) -> CloudResult<Option<EcsService>> {
        self.call(
            SERVICE,
            "DescribeServices",
            Route::Region(region),
            false,
            json!({}),
            |s, now| s.describe_ecs_service(region, cluster, service, now),
        )
        .await
    }

    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        service: &str,
        desired: u32,
    ) -> CloudResult<()> {
        let args = json!({ "cluster": cluster, "service": service, "desiredCount": desired });
        self.call(
            SERVICE,
            "UpdateService",
            Route::Region(region),
            true,
            args,
            |s, now| s.update_ecs_desired(region, cluster, service, desired, now),
        )
        .await
    }
}
