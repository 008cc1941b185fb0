//! Aurora Global Database in the simulated world.
//!
//! The rules follow the RDS API reference: `FailoverGlobalCluster` with `AllowDataLoss`
//! is sent to the target's region and works while the primary's region is down;
//! without it (and `SwitchoverGlobalCluster`) the call goes to the primary's region
//! and needs every member reachable, available and on one engine version. While an
//! operation runs the global cluster is `failing-over`/`switching-over` with a
//! `FailoverState`, a second one is refused with `InvalidGlobalClusterStateFault`, and
//! the writer flag moves only when it completes. A switchover whose ends become
//! unreachable before it completes is cancelled (roles unchanged). An unplanned
//! failover loses the writes the target had not received (its lag, ending when the
//! primary last accepted writes), leaves an `rds:unplanned-global-failover-*` snapshot
//! of the old primary in its region, and the old primary stays as a secondary.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::state::{AuroraOp, LostWrites, SimCluster, State};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    Acu, CapacityRange, CloudErrorKind as K, CloudResult, ClusterSnapshot, DbCluster, DbInstance,
    FailoverState, FailoverStatus, GlobalCluster, GlobalMember, Rds,
};
use crate::runbook::catalogue::arn_region;

const GC_NOT_FOUND: &str = "GlobalClusterNotFoundFault";
const CLUSTER_NOT_FOUND: &str = "DBClusterNotFoundFault";
const GC_STATE: &str = "InvalidGlobalClusterStateFault";
const CLUSTER_STATE: &str = "InvalidDBClusterStateFault";
const PARAM: &str = "InvalidParameterValue";
const COMBINATION: &str = "InvalidParameterCombination";

/// The global writer endpoint of global cluster `id`, in AWS's form
/// (`ID.global-HASH.global.rds.amazonaws.com`).
pub(crate) fn global_endpoint(id: &str) -> String {
    format!(
        "{}.global-{}.global.rds.amazonaws.com",
        id.to_ascii_lowercase(),
        super::names::encode(crate::names::fnv1a(id), 10, super::names::LOWER36)
    )
}

impl State {
    fn global_view(&self, id: &str) -> Option<GlobalCluster> {
        let g = self.global_clusters.get(id)?;
        let members = self
            .members(id)
            .into_iter()
            .map(|c| GlobalMember {
                cluster_arn: c.arn.clone(),
                region: c.region.clone(),
                is_writer: c.writer,
            })
            .collect();
        let (status, failover_state) = match &g.op {
            None => ("available".to_string(), None),
            Some(op) => {
                let running = if op.data_loss {
                    FailoverStatus::FailingOver
                } else {
                    FailoverStatus::SwitchingOver
                };
                let status = if self.now < op.starts {
                    FailoverStatus::Pending
                } else {
                    running
                };
                (
                    if op.data_loss {
                        "failing-over"
                    } else {
                        "switching-over"
                    }
                    .to_string(),
                    Some(FailoverState {
                        status,
                        from_cluster_arn: op.from_arn.clone(),
                        to_cluster_arn: op.to_arn.clone(),
                        is_data_loss_allowed: op.data_loss,
                    }),
                )
            }
        };
        Some(GlobalCluster {
            id: g.id.clone(),
            status,
            engine_version: g.engine_version.clone(),
            members,
            failover_state,
            endpoint: Some(global_endpoint(&g.id)),
        })
    }

    /// Where the global writer endpoint `name` points now: the cluster endpoint of the
    /// global cluster's writer (Aurora moves it when a managed failover or switchover
    /// completes, with the writer flag; a detached cluster leaves it behind). `None`
    /// when `name` is no global cluster's endpoint, or the global cluster has no writer.
    pub(crate) fn global_endpoint_target(&self, name: &str) -> Option<String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let g = self
            .global_clusters
            .keys()
            .find(|id| global_endpoint(id) == name)?;
        self.members(g)
            .into_iter()
            .find(|c| c.writer)
            .map(|c| c.endpoint.clone())
    }

    fn cluster_view(&self, c: &SimCluster) -> DbCluster {
        DbCluster {
            arn: c.arn.clone(),
            status: self.cluster_status(c),
            engine_version: c.engine_version.clone(),
            instances: c.instances as usize,
            endpoint: c.endpoint.clone(),
            global_cluster: c.global.clone(),
            scaling: c.scaling,
        }
    }

    /// `ModifyDBCluster` of the capacity range, by the API reference's rules: the
    /// cluster must be `available` (`InvalidDBClusterStateFault`), `MaxCapacity` at least
    /// 1 ACU, `MinCapacity` at most `MaxCapacity`, and no minimum of 0 (auto-pause) for
    /// a member of a global database. The new range shows at once; the cluster is
    /// `modifying` for a moment, then `available`.
    fn modify_capacity(
        &mut self,
        region: &str,
        arn: &str,
        range: CapacityRange,
        now: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "ModifyDBCluster";
        let Some(c) = self.clusters.get(arn).filter(|c| c.region == region) else {
            return Err(fail(
                K::NotFound,
                OP,
                Some(region),
                CLUSTER_NOT_FOUND,
                format!("DBCluster {arn} not found."),
            ));
        };
        if range.max < Acu::MIN_MAX {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!(
                    "The maximum capacity {} ACUs isn't valid: it must be at least {}",
                    range.max,
                    Acu::MIN_MAX
                ),
            ));
        }
        if range.min > range.max {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                COMBINATION,
                format!(
                    "The minimum capacity {} ACUs is above the maximum capacity {} ACUs",
                    range.min, range.max
                ),
            ));
        }
        if range.min == Acu::ZERO && c.global.is_some() {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                COMBINATION,
                format!(
                    "DB cluster {} is a member of a global database: its minimum capacity \
                     can't be 0 ACUs (auto-pause)",
                    c.name
                ),
            ));
        }
        let status = self.cluster_status(c);
        if status != "available" {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                CLUSTER_STATE,
                format!("DB cluster {} is in {status} state.", c.name),
            ));
        }
        let modify = self.duration(&format!("aurora:modify:{arn}"), self.timing.aurora_modify);
        if let Some(c) = self.clusters.get_mut(arn) {
            c.scaling = Some(range);
            c.modifying_until = Some(now.saturating_add(modify));
        }
        Ok(())
    }

    /// The checks every global operation shares: the global cluster exists, the target
    /// is one of its members and not the writer, and nothing else is in progress.
    fn check_target(
        &self,
        op: &str,
        region: &str,
        id: &str,
        target: &str,
    ) -> CloudResult<(SimCluster, Option<SimCluster>)> {
        let Some(g) = self.global_clusters.get(id) else {
            return Err(fail(
                K::NotFound,
                op,
                Some(region),
                GC_NOT_FOUND,
                format!("global cluster {id} not found"),
            ));
        };
        let Some(t) = self.clusters.get(target) else {
            return Err(fail(
                K::NotFound,
                op,
                Some(region),
                CLUSTER_NOT_FOUND,
                format!("DB cluster {target} not found"),
            ));
        };
        if t.global.as_deref() != Some(id) {
            return Err(fail(
                K::NotFound,
                op,
                Some(region),
                CLUSTER_NOT_FOUND,
                format!("DB cluster {target} is not a member of global cluster {id}"),
            ));
        }
        if let Some(running) = &g.op {
            return Err(fail(
                K::InvalidState,
                op,
                Some(region),
                GC_STATE,
                format!(
                    "global cluster {id} is {} (to {}); wait until it is available",
                    if running.data_loss {
                        "failing-over"
                    } else {
                        "switching-over"
                    },
                    running.to_arn
                ),
            ));
        }
        if t.writer {
            return Err(fail(
                K::InvalidState,
                op,
                Some(region),
                CLUSTER_STATE,
                format!("DB cluster {target} is already the primary of global cluster {id}"),
            ));
        }
        if t.instances == 0 {
            return Err(fail(
                K::InvalidState,
                op,
                Some(region),
                CLUSTER_STATE,
                format!("DB cluster {target} has no DB instances to promote"),
            ));
        }
        let writer = self.writer_of(id).cloned();
        Ok((t.clone(), writer))
    }

    /// `FailoverGlobalCluster` with `AllowDataLoss`.
    fn failover(&mut self, region: &str, id: &str, target: &str, now: Duration) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalCluster";
        let (t, writer) = self.check_target(OP, region, id, target)?;
        if region != t.region {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!(
                    "a failover with AllowDataLoss must be sent to the target's region ({}), \
                     not {region}",
                    t.region
                ),
            ));
        }
        let status = self.cluster_status(&t);
        if status != "available" {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                CLUSTER_STATE,
                format!("DB cluster {target} is {status}"),
            ));
        }
        let pending = self.duration(&format!("aurora:pending:{id}"), self.timing.aurora_pending);
        let run = self.duration(
            &format!("aurora:failover:{id}"),
            self.timing.aurora_failover,
        );
        let from_arn = writer.as_ref().map(|w| w.arn.clone()).unwrap_or_default();
        if let Some(w) = &writer {
            // The target has the primary's writes up to its lag before the moment the
            // primary stopped taking writes (now, or when its region went down).
            let end = self.outage_start(&w.region, "data", now).unwrap_or(now);
            self.lost_writes.push(LostWrites {
                global_cluster: id.to_string(),
                from_cluster_arn: w.arn.clone(),
                to_cluster_arn: target.to_string(),
                operation: OP.to_string(),
                at: now,
                start: end.saturating_sub(t.lag),
                end,
                lost: t.lag,
            });
            self.lose_heartbeats(id, target, end, true);
            // The old writer stops taking writes now: in the local lab, for real.
            self.lab_push(super::lab::LabAction::Fence {
                store: format!("cluster:{}", w.arn),
            });
        }
        if let Some(g) = self.global_clusters.get_mut(id) {
            let starts = now.saturating_add(pending);
            g.op = Some(AuroraOp {
                data_loss: true,
                from_arn,
                to_arn: target.to_string(),
                accepted: now,
                starts,
                completes: starts.saturating_add(run),
            });
        }
        Ok(())
    }

    /// `SwitchoverGlobalCluster`, and `FailoverGlobalCluster` without `AllowDataLoss`.
    fn switchover(
        &mut self,
        op: &'static str,
        region: &str,
        id: &str,
        target: &str,
        now: Duration,
    ) -> CloudResult<()> {
        let (t, writer) = self.check_target(op, region, id, target)?;
        let Some(w) = writer else {
            return Err(fail(
                K::InvalidState,
                op,
                Some(region),
                GC_STATE,
                format!("global cluster {id} has no primary to switch over from"),
            ));
        };
        if region != w.region {
            return Err(fail(
                K::InvalidRequest,
                op,
                Some(region),
                PARAM,
                format!(
                    "a switchover must be sent to the primary's region ({}), not {region}",
                    w.region
                ),
            ));
        }
        for m in self.members(id) {
            if !self.reachable(&m.region, "rds", now) {
                return Err(fail(
                    K::InvalidState,
                    op,
                    Some(region),
                    GC_STATE,
                    format!(
                        "member {} in {} is not reachable; a switchover needs every region healthy",
                        m.arn, m.region
                    ),
                ));
            }
            let status = self.cluster_status(m);
            if status != "available" {
                return Err(fail(
                    K::InvalidState,
                    op,
                    Some(region),
                    CLUSTER_STATE,
                    format!("member {} is {status}", m.arn),
                ));
            }
            if !crate::names::compatible_engine_versions(&m.engine_version, &t.engine_version) {
                return Err(fail(
                    K::InvalidState,
                    op,
                    Some(region),
                    GC_STATE,
                    format!(
                        "engine versions differ ({} runs {}, {} runs {}); a switchover needs \
                         every member on the same major and minor version",
                        m.arn, m.engine_version, t.arn, t.engine_version
                    ),
                ));
            }
        }
        let pending = self.duration(&format!("aurora:pending:{id}"), self.timing.aurora_pending);
        let run = self.duration(
            &format!("aurora:switchover:{id}"),
            self.timing.aurora_switchover,
        );
        // Writes pause on the old writer for the switchover.
        self.lab_push(super::lab::LabAction::Fence {
            store: format!("cluster:{}", w.arn),
        });
        if let Some(g) = self.global_clusters.get_mut(id) {
            let starts = now.saturating_add(pending);
            g.op = Some(AuroraOp {
                data_loss: false,
                from_arn: w.arn.clone(),
                to_arn: target.to_string(),
                accepted: now,
                starts,
                // Every secondary catches up first: that is why RPO is 0.
                completes: starts.saturating_add(run).saturating_add(t.lag),
            });
        }
        Ok(())
    }

    fn remove(&mut self, region: &str, id: &str, arn: &str, now: Duration) -> CloudResult<()> {
        const OP: &str = "RemoveFromGlobalCluster";
        let Some(g) = self.global_clusters.get(id) else {
            return Err(fail(
                K::NotFound,
                OP,
                Some(region),
                GC_NOT_FOUND,
                format!("global cluster {id} not found"),
            ));
        };
        let member = self
            .clusters
            .get(arn)
            .filter(|c| c.global.as_deref() == Some(id))
            .cloned();
        let Some(c) = member else {
            return Err(fail(
                K::NotFound,
                OP,
                Some(region),
                CLUSTER_NOT_FOUND,
                format!("DB cluster {arn} is not a member of global cluster {id}"),
            ));
        };
        if region != c.region {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!(
                    "RemoveFromGlobalCluster of {arn} must be sent to its region ({}), not {region}",
                    c.region
                ),
            ));
        }
        if g.op.is_some() {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                GC_STATE,
                format!("global cluster {id} has a failover or switchover in progress"),
            ));
        }
        let others = self.members(id).len() > 1;
        if c.writer && others {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                GC_STATE,
                format!("{arn} is the primary; remove the secondaries first"),
            ));
        }
        if !c.writer
            && let Some(w) = self.writer_of(id).cloned()
        {
            let end = self.outage_start(&w.region, "data", now).unwrap_or(now);
            self.lost_writes.push(LostWrites {
                global_cluster: id.to_string(),
                from_cluster_arn: w.arn,
                to_cluster_arn: arn.to_string(),
                operation: OP.to_string(),
                at: now,
                start: end.saturating_sub(c.lag),
                end,
                lost: c.lag,
            });
            self.lose_heartbeats(id, arn, end, false);
        }
        let promote = self.duration(&format!("aurora:detach:{arn}"), self.timing.aurora_detach);
        if let Some(cluster) = self.clusters.get_mut(arn) {
            cluster.global = None;
            if !cluster.writer {
                cluster.promote_at = Some(now.saturating_add(promote));
            }
        }
        Ok(())
    }

    fn lag(&self, region: &str, id: &str, arn: &str, now: Duration) -> Option<Duration> {
        let c = self.clusters.get(arn)?;
        if c.global.as_deref() != Some(id) || c.writer || c.region != region {
            // CloudWatch has no datapoints for that metric and dimension in this region.
            return None;
        }
        let w = self.writer_of(id)?;
        // The metric stops when the primary is down: nothing is replicated to measure.
        self.reachable(&w.region, "data", now).then_some(c.lag)
    }

    fn snapshot_view(&self, s: &super::state::SimSnapshot) -> ClusterSnapshot {
        ClusterSnapshot {
            id: s.id.clone(),
            cluster_id: s.cluster_id.clone(),
            snapshot_type: s.snapshot_type.clone(),
            status: if self.now >= s.available_at {
                "available".into()
            } else {
                "creating".into()
            },
        }
    }

    fn copy_snapshot(
        &mut self,
        region: &str,
        source: &str,
        target: &str,
        now: Duration,
    ) -> CloudResult<ClusterSnapshot> {
        const OP: &str = "CopyDBClusterSnapshot";
        if let Some(why) = crate::names::cluster_snapshot_id_problem(target) {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!(
                    "The parameter TargetDBClusterSnapshotIdentifier is not a valid identifier: {why}"
                ),
            ));
        }
        // AWS stores the identifier in lowercase.
        let target = target.to_ascii_lowercase();
        let target = target.as_str();
        // A source in another region is named by its ARN.
        let (source_region, source_id) = match source.strip_prefix("arn:") {
            Some(_) => {
                let parts: Vec<&str> = source.splitn(7, ':').collect();
                match (parts.get(3), parts.get(5), parts.get(6)) {
                    (Some(r), Some(&"cluster-snapshot"), Some(id)) => (r.to_string(), *id),
                    _ => {
                        return Err(fail(
                            K::InvalidRequest,
                            OP,
                            Some(region),
                            PARAM,
                            format!("{source} is not a DB cluster snapshot ARN"),
                        ));
                    }
                }
            }
            None => (region.to_string(), source),
        };
        if !self.reachable(&source_region, "rds", now) {
            return Err(fail(
                K::Unreachable,
                OP,
                Some(region),
                "",
                format!("the source region {source_region} cannot be reached"),
            ));
        }
        let Some(src) = self
            .snapshots
            .iter()
            .find(|s| {
                s.region == source_region
                    && s.created <= now
                    && s.id.eq_ignore_ascii_case(source_id)
            })
            .cloned()
        else {
            return Err(fail(
                K::NotFound,
                OP,
                Some(region),
                "DBClusterSnapshotNotFoundFault",
                format!("DB cluster snapshot {source_id} not found in {source_region}"),
            ));
        };
        if let Some(problem) = snapshot_id_problem(target) {
            return Err(fail(K::InvalidRequest, OP, Some(region), PARAM, problem));
        }
        if self
            .snapshots
            .iter()
            .any(|s| s.region == region && s.id.eq_ignore_ascii_case(target))
        {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                "DBClusterSnapshotAlreadyExistsFault",
                format!("DB cluster snapshot {target} already exists"),
            ));
        }
        if now < src.available_at {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                "InvalidDBClusterSnapshotStateFault",
                format!("DB cluster snapshot {source_id} is creating, not available"),
            ));
        }
        let copy_time = self.duration(
            &format!("aurora:snapshot_copy:{region}"),
            self.timing.snapshot_copy,
        );
        let copy = super::state::SimSnapshot {
            id: target.to_string(),
            cluster_id: src.cluster_id.clone(),
            region: region.to_string(),
            snapshot_type: "manual".into(),
            created: now,
            available_at: now.saturating_add(copy_time),
        };
        let view = self.snapshot_view(&copy);
        self.snapshots.push(copy);
        Ok(view)
    }
}

/// AWS's rule for a new snapshot identifier: 1 to 255 letters, digits and hyphens,
/// starting with a letter, no trailing or double hyphen.
fn snapshot_id_problem(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    (!ok).then(|| {
        format!(
            "{id:?} is not a valid snapshot identifier: letters, digits and single hyphens, \
             starting with a letter"
        )
    })
}

fn arn_region_or_fail(op: &'static str, arn: &str) -> CloudResult<String> {
    arn_region(arn).map(str::to_string).ok_or_else(|| {
        fail(
            K::InvalidRequest,
            op,
            None,
            PARAM,
            format!("{arn} is not a DB cluster ARN"),
        )
    })
}

#[async_trait]
impl Rds for SimWorld {
    async fn describe_global_cluster(&self, region: &str, id: &str) -> CloudResult<GlobalCluster> {
        const OP: &str = "DescribeGlobalClusters";
        self.call(
            "rds",
            OP,
            Route::Region(region),
            false,
            json!({}),
            |s, _| {
                s.global_view(id).ok_or_else(|| {
                    fail(
                        K::NotFound,
                        OP,
                        Some(region),
                        GC_NOT_FOUND,
                        format!("global cluster {id} not found"),
                    )
                })
            },
        )
        .await
    }

    async fn describe_cluster(&self, arn: &str) -> CloudResult<DbCluster> {
        const OP: &str = "DescribeDBClusters";
        let region = arn_region_or_fail(OP, arn)?;
        self.call(
            "rds",
            OP,
            Route::Region(&region),
            false,
            json!({}),
            |s, _| {
                // Clusters are regional: the ARN's region is where it must be.
                match s.clusters.get(arn).filter(|c| c.region == region) {
                    Some(c) => Ok(s.cluster_view(c)),
                    None => Err(fail(
                        K::NotFound,
                        OP,
                        Some(&region),
                        CLUSTER_NOT_FOUND,
                        format!("DB cluster {arn} not found"),
                    )),
                }
            },
        )
        .await
    }

    async fn failover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalCluster";
        let args = json!({
            "global_cluster": id,
            "target": target_arn,
            "allow_data_loss": allow_data_loss,
        });
        self.call("rds", OP, Route::Region(region), true, args, |s, now| {
            if allow_data_loss {
                s.failover(region, id, target_arn, now)
            } else {
                s.switchover(OP, region, id, target_arn, now)
            }
        })
        .await
    }

    async fn switchover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "SwitchoverGlobalCluster";
        let args = json!({ "global_cluster": id, "target": target_arn });
        self.call("rds", OP, Route::Region(region), true, args, |s, now| {
            s.switchover(OP, region, id, target_arn, now)
        })
        .await
    }

    async fn remove_from_global_cluster(
        &self,
        region: &str,
        id: &str,
        cluster_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "RemoveFromGlobalCluster";
        let args = json!({ "global_cluster": id, "cluster": cluster_arn });
        self.call("rds", OP, Route::Region(region), true, args, |s, now| {
            s.remove(region, id, cluster_arn, now)
        })
        .await
    }

    async fn replication_lag(
        &self,
        region: &str,
        global_id: &str,
        cluster_arn: &str,
    ) -> CloudResult<Option<Duration>> {
        self.call(
            "cloudwatch",
            "GetMetricData",
            Route::Region(region),
            false,
            json!({}),
            |s, now| Ok(s.lag(region, global_id, cluster_arn, now)),
        )
        .await
    }

    async fn modify_capacity_range(
        &self,
        cluster_arn: &str,
        range: CapacityRange,
    ) -> CloudResult<()> {
        const OP: &str = "ModifyDBCluster";
        let region = arn_region_or_fail(OP, cluster_arn)?;
        let args = json!({
            "cluster": cluster_arn,
            "min_acu": range.min,
            "max_acu": range.max,
            "apply_immediately": true,
        });
        self.call("rds", OP, Route::Region(&region), true, args, |s, now| {
            s.modify_capacity(&region, cluster_arn, range, now)
        })
        .await
    }

    async fn cluster_instances(&self, cluster_arn: &str) -> CloudResult<Vec<DbInstance>> {
        const OP: &str = "DescribeDBInstances";
        let region = arn_region_or_fail(OP, cluster_arn)?;
        self.call(
            "rds",
            OP,
            Route::Region(&region),
            false,
            json!({}),
            |s, _| {
                // A filter that matches no cluster answers an empty list.
                Ok(s.clusters
                    .get(cluster_arn)
                    .filter(|c| c.region == region)
                    .map(|c| {
                        (1..=c.instances)
                            .map(|i| DbInstance {
                                id: format!("{}-{i}", c.name),
                                class: c.instance_class.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default())
            },
        )
        .await
    }

    async fn serverless_capacity(&self, cluster_arn: &str) -> CloudResult<Option<f64>> {
        let region = arn_region_or_fail("GetMetricData", cluster_arn)?;
        self.call(
            "cloudwatch",
            "GetMetricData",
            Route::Region(&region),
            false,
            json!({}),
            |s, now| {
                // The metric stops while the cluster's region is down.
                Ok(s.clusters
                    .get(cluster_arn)
                    .filter(|c| c.region == region && s.reachable(&region, "data", now))
                    .and_then(|c| c.capacity()))
            },
        )
        .await
    }

    async fn list_cluster_snapshots(&self, cluster_arn: &str) -> CloudResult<Vec<ClusterSnapshot>> {
        const OP: &str = "DescribeDBClusterSnapshots";
        let region = arn_region_or_fail(OP, cluster_arn)?;
        let name = cluster_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        self.call(
            "rds",
            OP,
            Route::Region(&region),
            false,
            json!({}),
            |s, _| {
                Ok(s.snapshots
                    .iter()
                    .filter(|snap| {
                        snap.region == region && snap.cluster_id == name && snap.created <= s.now
                    })
                    .map(|snap| s.snapshot_view(snap))
                    .collect())
            },
        )
        .await
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
    ) -> CloudResult<ClusterSnapshot> {
        const OP: &str = "CopyDBClusterSnapshot";
        let args = json!({ "source": source_id, "target": target_id });
        self.call("rds", OP, Route::Region(region), true, args, |s, now| {
            s.copy_snapshot(region, source_id, target_id, now)
        })
        .await
    }
}
