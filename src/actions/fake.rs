//! An in-memory fake of the cloud traits for the actions' unit tests.
//!
//! It is deliberately small and literal: every call is logged with the region it was
//! sent to, so tests can count mutating calls and check routing; faults are injected
//! per operation ("apply, then lose the response", "fail without applying", "region
//! down"). The realistic simulated world (`sim/`) is a separate thing; these tests must
//! not depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::cloud::*;

/// One call the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// API operation name.
    pub op: &'static str,
    /// Region it was sent to (None for global services).
    pub region: Option<String>,
    /// Whether it changes state.
    pub mutating: bool,
}

/// The fake world's state; tests edit it directly.
#[derive(Default)]
pub struct World {
    pub globals: BTreeMap<String, GlobalCluster>,
    pub clusters: BTreeMap<String, DbCluster>,
    pub lags: BTreeMap<String, Option<Duration>>,
    /// (cluster ARN, snapshot).
    pub snapshots: Vec<(String, ClusterSnapshot)>,
    /// When true an Aurora failover/switchover completes at once; otherwise it stays in
    /// progress until [`Fake::settle`].
    pub aurora_instant: bool,
    pub datastores: BTreeMap<String, GlobalDatastore>,
    pub rules: BTreeMap<String, Vec<ReplicationRule>>,
    pub versioning: BTreeMap<String, bool>,
    pub objects: BTreeMap<(String, String), Option<ReplicationStatus>>,
    /// How many destination reads of a canary return "not found" before it appears.
    pub replication_delay: u32,
    pub replication_reads: BTreeMap<String, u32>,
    pub backlog: BTreeMap<String, Option<u64>>,
    pub zones: BTreeMap<String, Vec<RecordSet>>,
    /// MAX_RRSETS_BY_ZONE of every zone (Route 53's default, 10,000, when unset).
    pub zone_quota: Option<u64>,
    pub changes: BTreeMap<String, ChangeStatus>,
    pub next_change: u32,
    pub health_checks: BTreeMap<String, HealthCheck>,
    /// What the checkers see before Inverted/Disabled apply.
    pub checker_healthy: BTreeMap<String, bool>,
    pub http: Option<Result<HttpObservation, CloudError>>,
    pub postgres: Option<PostgresObservation>,
    pub valkey: Option<ValkeyObservation>,
    pub dns: BTreeMap<String, Vec<String>>,
    /// Heartbeats the data store behind every heartbeat target holds.
    pub heartbeats: Vec<Heartbeat>,
    /// When true, heartbeat writes are refused as by a replica.
    pub heartbeats_read_only: bool,
    /// Route 53 ARC routing controls, by ARN.
    pub routing: BTreeMap<String, RoutingControlState>,
    /// An ARC assertion rule "at least one routing control On", by ARN: an update that
    /// leaves every control Off is refused (`ConflictException`) unless it overrides it.
    pub safety_rule: Option<String>,
    /// Regions that do not answer.
    pub down: BTreeSet<String>,
    /// Operations that apply and then lose their response (a Transient error), n times.
    pub lose: BTreeMap<&'static str, u32>,
    /// Operations that fail without applying, with these errors in order.
    pub fail: BTreeMap<&'static str, Vec<CloudError>>,
}

/// The fake cloud.
#[derive(Default)]
pub struct Fake {
    world: Mutex<World>,
    calls: Mutex<Vec<Call>>,
}

fn err(kind: CloudErrorKind, op: &str, region: Option<&str>, msg: &str) -> CloudError {
    CloudError::new(kind, op, region, msg)
}

impl Fake {
    /// A fake behind every trait.
    pub fn cloud(self: &Arc<Self>) -> Cloud {
        Cloud {
            rds: self.clone(),
            elasticache: self.clone(),
            s3: self.clone(),
            route53: self.clone(),
            routing: self.clone(),
            data: self.clone(),
            reach: Default::default(),
            accounts: Default::default(),
        }
    }

    /// The world, for a test to arrange or inspect.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls of one operation.
    pub fn calls_of(&self, op: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }

    /// The region each call of `op` was sent to, in order ("" for global services).
    pub fn regions_of(&self, op: &str) -> Vec<String> {
        self.calls_of(op)
            .into_iter()
            .map(|c| c.region.unwrap_or_default())
            .collect()
    }

    /// How many mutating calls were made.
    pub fn mutations(&self) -> usize {
        self.calls().iter().filter(|c| c.mutating).count()
    }

    /// Completes every operation in progress (Aurora failovers and switchovers).
    pub fn settle(&self) {
        let mut w = self.world();
        for g in w.globals.values_mut() {
            if let Some(fs) = g.failover_state.take() {
                for m in &mut g.members {
                    m.is_writer = m.cluster_arn == fs.to_cluster_arn;
                }
                g.status = "available".into();
            }
        }
    }

    /// Logs a call and applies the injected faults. `Ok(true)` means "apply, then
    /// return a lost-response error".
    fn enter(
        &self,
        op: &'static str,
        region: Option<&str>,
        mutating: bool,
    ) -> Result<bool, CloudError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Call {
                op,
                region: region.map(str::to_string),
                mutating,
            });
        let mut w = self.world();
        if let Some(r) = region
            && w.down.contains(r)
        {
            return Err(err(
                CloudErrorKind::Unreachable,
                op,
                region,
                "connection timed out",
            ));
        }
        if let Some(list) = w.fail.get_mut(op)
            && !list.is_empty()
        {
            return Err(list.remove(0));
        }
        if let Some(n) = w.lose.get_mut(op)
            && *n > 0
        {
            *n -= 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn lost(op: &str, region: Option<&str>) -> CloudError {
        err(
            CloudErrorKind::Transient,
            op,
            region,
            "response lost (connection reset)",
        )
    }
}

fn region_of(arn: &str) -> String {
    arn.split(':').nth(3).unwrap_or_default().to_string()
}

#[async_trait]
impl Rds for Fake {
    async fn describe_global_cluster(&self, region: &str, id: &str) -> CloudResult<GlobalCluster> {
        const OP: &str = "DescribeGlobalClusters";
        self.enter(OP, Some(region), false)?;
        self.world().globals.get(id).cloned().ok_or_else(|| {
            err(
                CloudErrorKind::NotFound,
                OP,
                Some(region),
                "GlobalClusterNotFoundFault",
            )
        })
    }

    async fn describe_cluster(&self, arn: &str) -> CloudResult<DbCluster> {
        const OP: &str = "DescribeDBClusters";
        let region = region_of(arn);
        self.enter(OP, Some(&region), false)?;
        self.world().clusters.get(arn).cloned().ok_or_else(|| {
            err(
                CloudErrorKind::NotFound,
                OP,
                Some(&region),
                "DBClusterNotFoundFault",
            )
        })
    }

    async fn failover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalCluster";
        let lose = self.enter(OP, Some(region), true)?;
        self.start(OP, region, id, target_arn, allow_data_loss)?;
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(())
        }
    }

    async fn switchover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "SwitchoverGlobalCluster";
        let lose = self.enter(OP, Some(region), true)?;
        self.start(OP, region, id, target_arn, false)?;
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(())
        }
    }

    async fn remove_from_global_cluster(
        &self,
        region: &str,
        id: &str,
        cluster_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "RemoveFromGlobalCluster";
        let lose = self.enter(OP, Some(region), true)?;
        {
            let mut w = self.world();
            let g = w.globals.get_mut(id).ok_or_else(|| {
                err(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    "GlobalClusterNotFoundFault",
                )
            })?;
            let before = g.members.len();
            g.members.retain(|m| m.cluster_arn != cluster_arn);
            if g.members.len() == before {
                return Err(err(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    "DBClusterNotFoundFault",
                ));
            }
        }
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(())
        }
    }

    async fn replication_lag(
        &self,
        region: &str,
        _global_id: &str,
        cluster_arn: &str,
    ) -> CloudResult<Option<Duration>> {
        self.enter("GetMetricData", Some(region), false)?;
        Ok(self.world().lags.get(cluster_arn).copied().flatten())
    }

    async fn list_cluster_snapshots(&self, cluster_arn: &str) -> CloudResult<Vec<ClusterSnapshot>> {
        let region = region_of(cluster_arn);
        self.enter("DescribeDBClusterSnapshots", Some(&region), false)?;
        Ok(self
            .world()
            .snapshots
            .iter()
            .filter(|(arn, _)| arn == cluster_arn)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
    ) -> CloudResult<ClusterSnapshot> {
        const OP: &str = "CopyDBClusterSnapshot";
        let lose = self.enter(OP, Some(region), true)?;
        let copy = {
            let mut w = self.world();
            if w.snapshots.iter().any(|(_, s)| s.id == target_id) {
                return Err(err(
                    CloudErrorKind::InvalidState,
                    OP,
                    Some(region),
                    "DBClusterSnapshotAlreadyExistsFault",
                ));
            }
            let (arn, src) = w
                .snapshots
                .iter()
                .find(|(_, s)| s.id == source_id)
                .cloned()
                .ok_or_else(|| {
                    err(
                        CloudErrorKind::NotFound,
                        OP,
                        Some(region),
                        "DBClusterSnapshotNotFoundFault",
                    )
                })?;
            let copy = ClusterSnapshot {
                id: target_id.into(),
                cluster_id: src.cluster_id,
                snapshot_type: "manual".into(),
                status: "creating".into(),
            };
            w.snapshots.push((arn, copy.clone()));
            copy
        };
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(copy)
        }
    }
}

impl Fake {
    fn start(
        &self,
        op: &str,
        region: &str,
        id: &str,
        target: &str,
        data_loss: bool,
    ) -> CloudResult<()> {
        let mut w = self.world();
        let instant = w.aurora_instant;
        let g = w.globals.get_mut(id).ok_or_else(|| {
            err(
                CloudErrorKind::NotFound,
                op,
                Some(region),
                "GlobalClusterNotFoundFault",
            )
        })?;
        if g.failover_state.is_some() {
            return Err(err(
                CloudErrorKind::InvalidState,
                op,
                Some(region),
                "InvalidGlobalClusterStateFault",
            )
            .with_code("InvalidGlobalClusterStateFault"));
        }
        if g.member(target).is_none() {
            return Err(err(
                CloudErrorKind::InvalidRequest,
                op,
                Some(region),
                "target is not a member",
            ));
        }
        let from = g
            .writer()
            .map(|m| m.cluster_arn.clone())
            .unwrap_or_default();
        if instant {
            for m in &mut g.members {
                m.is_writer = m.cluster_arn == target;
            }
        } else {
            g.status = if data_loss {
                "failing-over"
            } else {
                "switching-over"
            }
            .into();
            g.failover_state = Some(FailoverState {
                status: if data_loss {
                    FailoverStatus::FailingOver
                } else {
                    FailoverStatus::SwitchingOver
                },
                from_cluster_arn: from,
                to_cluster_arn: target.into(),
                is_data_loss_allowed: data_loss,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ElastiCache for Fake {
    async fn describe_global_datastore(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<GlobalDatastore> {
        const OP: &str = "DescribeGlobalReplicationGroups";
        self.enter(OP, Some(region), false)?;
        self.world().datastores.get(id).cloned().ok_or_else(|| {
            err(
                CloudErrorKind::NotFound,
                OP,
                Some(region),
                "GlobalReplicationGroupNotFoundFault",
            )
        })
    }

    async fn failover_global_datastore(
        &self,
        region: &str,
        id: &str,
        primary_region: &str,
        primary_replication_group: &str,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalReplicationGroup";
        let lose = self.enter(OP, Some(region), true)?;
        {
            let mut w = self.world();
            let down = w.down.clone();
            let ds = w.datastores.get_mut(id).ok_or_else(|| {
                err(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    "GlobalReplicationGroupNotFoundFault",
                )
            })?;
            if ds.primary().is_some_and(|p| down.contains(&p.region)) {
                return Err(err(
                    CloudErrorKind::InvalidState,
                    OP,
                    Some(region),
                    "the primary replication group cannot be reached",
                )
                .with_code("InvalidGlobalReplicationGroupState"));
            }
            for m in &mut ds.members {
                m.role = if m.replication_group_id == primary_replication_group
                    && m.region == primary_region
                {
                    MemberRole::Primary
                } else {
                    MemberRole::Secondary
                };
            }
        }
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(())
        }
    }

    async fn disassociate_global_datastore(
        &self,
        region: &str,
        id: &str,
        replication_group: &str,
        replication_group_region: &str,
    ) -> CloudResult<()> {
        const OP: &str = "DisassociateGlobalReplicationGroup";
        let lose = self.enter(OP, Some(region), true)?;
        {
            let mut w = self.world();
            let ds = w.datastores.get_mut(id).ok_or_else(|| {
                err(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    "GlobalReplicationGroupNotFoundFault",
                )
            })?;
            ds.members.retain(|m| {
                !(m.replication_group_id == replication_group
                    && m.region == replication_group_region)
            });
        }
        if lose {
            Err(Self::lost(OP, Some(region)))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl S3 for Fake {
    async fn replication_rules(&self, bucket: &str) -> CloudResult<Vec<ReplicationRule>> {
        self.enter("GetBucketReplication", Some(bucket), false)?;
        Ok(self.world().rules.get(bucket).cloned().unwrap_or_default())
    }

    async fn versioning_enabled(&self, bucket: &str) -> CloudResult<bool> {
        self.enter("GetBucketVersioning", Some(bucket), false)?;
        Ok(self
            .world()
            .versioning
            .get(bucket)
            .copied()
            .unwrap_or(false))
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CloudResult<()> {
        self.enter("DeleteObject", Some(bucket), true)?;
        self.world().objects.remove(&(bucket.into(), key.into()));
        Ok(())
    }

    async fn put_object(&self, bucket: &str, key: &str, _body: &[u8]) -> CloudResult<()> {
        self.enter("PutObject", Some(bucket), true)?;
        let mut w = self.world();
        let replicated = w
            .rules
            .get(bucket)
            .is_some_and(|r| r.iter().any(|r| r.enabled));
        let status = replicated.then_some(ReplicationStatus::Pending);
        w.objects.insert((bucket.into(), key.into()), status);
        if let Some(rule) = w
            .rules
            .get(bucket)
            .and_then(|r| r.iter().find(|r| r.enabled))
            .cloned()
        {
            w.objects.insert(
                (rule.destination_bucket.clone(), key.into()),
                Some(ReplicationStatus::Replica),
            );
        }
        Ok(())
    }

    async fn replication_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> CloudResult<Option<ReplicationStatus>> {
        const OP: &str = "HeadObject";
        self.enter(OP, Some(bucket), false)?;
        let mut w = self.world();
        let found = w
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .copied();
        match found {
            Some(Some(ReplicationStatus::Replica)) => {
                let reads = w.replication_reads.entry(key.to_string()).or_default();
                *reads += 1;
                if *reads <= w.replication_delay {
                    return Err(err(
                        CloudErrorKind::NotFound,
                        OP,
                        Some(bucket),
                        "404 Not Found",
                    ));
                }
                Ok(Some(ReplicationStatus::Replica))
            }
            Some(s) => Ok(s),
            None => Err(err(
                CloudErrorKind::NotFound,
                OP,
                Some(bucket),
                "404 Not Found",
            )),
        }
    }

    async fn replication_backlog(
        &self,
        bucket: &str,
        _rules: &[ReplicationRule],
    ) -> CloudResult<Option<u64>> {
        self.enter("GetMetricData", Some(bucket), false)?;
        Ok(self.world().backlog.get(bucket).copied().flatten())
    }
}

fn same_identity(a: &RecordSet, b: &RecordSet) -> bool {
    a.name == b.name && a.record_type == b.record_type && a.set_identifier == b.set_identifier
}

#[async_trait]
impl Route53 for Fake {
    async fn list_record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Vec<RecordSet>> {
        self.enter("ListResourceRecordSets", None, false)?;
        Ok(self
            .world()
            .zones
            .get(zone_id)
            .map(|z| {
                z.iter()
                    .filter(|r| r.name == name && r.record_type == record_type)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn change_record_sets(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<ChangeInfo> {
        const OP: &str = "ChangeResourceRecordSets";
        let lose = self.enter(OP, None, true)?;
        if changes.len() > 1000 {
            return Err(err(
                CloudErrorKind::InvalidRequest,
                OP,
                None,
                "InvalidChangeBatch: too many changes",
            ));
        }
        let info = {
            let mut w = self.world();
            let mut zone = w.zones.get(zone_id).cloned().unwrap_or_default();
            for c in changes {
                let existing = zone.iter().position(|r| same_identity(r, &c.record));
                match (c.action, existing) {
                    (ChangeAction::Create, Some(_)) => {
                        return Err(err(
                            CloudErrorKind::InvalidRequest,
                            OP,
                            None,
                            "InvalidChangeBatch: exists",
                        ));
                    }
                    (ChangeAction::Delete, Some(i)) if zone[i] == c.record => {
                        zone.remove(i);
                    }
                    (ChangeAction::Delete, _) => {
                        return Err(err(
                            CloudErrorKind::InvalidRequest,
                            OP,
                            None,
                            "InvalidChangeBatch: not found",
                        ));
                    }
                    (_, Some(i)) => zone[i] = c.record.clone(),
                    (_, None) => zone.push(c.record.clone()),
                }
            }
            w.zones.insert(zone_id.into(), zone);
            w.next_change += 1;
            let id = format!("/change/C{}", w.next_change);
            w.changes.insert(id.clone(), ChangeStatus::Pending);
            ChangeInfo {
                id,
                status: ChangeStatus::Pending,
            }
        };
        if lose {
            Err(Self::lost(OP, None))
        } else {
            Ok(info)
        }
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        const OP: &str = "GetChange";
        self.enter(OP, None, false)?;
        let mut w = self.world();
        let status = w
            .changes
            .get_mut(change_id)
            .ok_or_else(|| err(CloudErrorKind::NotFound, OP, None, "NoSuchChange"))?;
        let seen = *status;
        // Pending on the first read, INSYNC afterwards.
        *status = ChangeStatus::Insync;
        Ok(ChangeInfo {
            id: change_id.into(),
            status: seen,
        })
    }

    async fn get_health_check(&self, id: &str) -> CloudResult<HealthCheck> {
        const OP: &str = "GetHealthCheck";
        self.enter(OP, None, false)?;
        self.world()
            .health_checks
            .get(id)
            .cloned()
            .ok_or_else(|| err(CloudErrorKind::NotFound, OP, None, "NoSuchHealthCheck"))
    }

    async fn update_health_check(
        &self,
        id: &str,
        inverted: Option<bool>,
        disabled: Option<bool>,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateHealthCheck";
        let lose = self.enter(OP, None, true)?;
        {
            let mut w = self.world();
            let hc = w
                .health_checks
                .get_mut(id)
                .ok_or_else(|| err(CloudErrorKind::NotFound, OP, None, "NoSuchHealthCheck"))?;
            if let Some(i) = inverted {
                hc.inverted = i;
            }
            if let Some(d) = disabled {
                hc.disabled = d;
            }
        }
        if lose {
            Err(Self::lost(OP, None))
        } else {
            Ok(())
        }
    }

    async fn zone_record_quota(&self, zone_id: &str) -> CloudResult<Quota> {
        const OP: &str = "GetHostedZoneLimit";
        self.enter(OP, None, false)?;
        let w = self.world();
        let zone = w
            .zones
            .get(zone_id)
            .ok_or_else(|| err(CloudErrorKind::NotFound, OP, None, "NoSuchHostedZone"))?;
        Ok(Quota {
            used: zone.len() as u64,
            limit: w.zone_quota.unwrap_or(10_000),
        })
    }

    async fn health_check_healthy(&self, id: &str) -> CloudResult<bool> {
        const OP: &str = "GetHealthCheckStatus";
        self.enter(OP, None, false)?;
        let w = self.world();
        let hc = w
            .health_checks
            .get(id)
            .ok_or_else(|| err(CloudErrorKind::NotFound, OP, None, "NoSuchHealthCheck"))?;
        let seen = w.checker_healthy.get(id).copied().unwrap_or(true);
        // Route 53: a disabled check is healthy, unless it is also inverted.
        Ok(if hc.disabled {
            !hc.inverted
        } else {
            seen != hc.inverted
        })
    }
}

#[async_trait]
impl RoutingControls for Fake {
    async fn routing_control_state(
        &self,
        endpoint: &ClusterEndpoint,
        arn: &str,
    ) -> CloudResult<RoutingControlState> {
        const OP: &str = "GetRoutingControlState";
        let region = Some(endpoint.region.as_str());
        self.enter(OP, region, false)?;
        self.world().routing.get(arn).copied().ok_or_else(|| {
            err(
                CloudErrorKind::NotFound,
                OP,
                region,
                "ResourceNotFoundException",
            )
        })
    }

    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        updates: &[RoutingControlUpdate],
        override_safety_rules: &[String],
    ) -> CloudResult<()> {
        const OP: &str = "UpdateRoutingControlStates";
        let region = Some(endpoint.region.as_str());
        let lose = self.enter(OP, region, true)?;
        {
            let mut w = self.world();
            let mut after = w.routing.clone();
            for u in updates {
                let Some(s) = after.get_mut(&u.arn) else {
                    return Err(err(
                        CloudErrorKind::NotFound,
                        OP,
                        region,
                        "ResourceNotFoundException",
                    ));
                };
                *s = u.state;
            }
            if let Some(rule) = &w.safety_rule {
                let all_off = after.values().all(|s| *s == RoutingControlState::Off);
                if all_off && !override_safety_rules.contains(rule) {
                    return Err(err(
                        CloudErrorKind::InvalidState,
                        OP,
                        region,
                        &format!("the update violates safety rule {rule}"),
                    )
                    .with_code("ConflictException"));
                }
            }
            w.routing = after;
        }
        if lose {
            Err(Self::lost(OP, region))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl DataPlane for Fake {
    async fn http(&self, probe: &HttpProbe) -> CloudResult<HttpObservation> {
        self.enter("http", None, false)?;
        let _ = probe;
        self.world().http.clone().unwrap_or_else(|| {
            Err(err(
                CloudErrorKind::Unreachable,
                "http",
                None,
                "connection refused",
            ))
        })
    }

    async fn postgres(
        &self,
        _endpoint: &Endpoint,
        _database: &str,
        canary: bool,
    ) -> CloudResult<PostgresObservation> {
        self.enter("postgres", None, false)?;
        let mut o = self.world().postgres.clone().ok_or_else(|| {
            err(
                CloudErrorKind::Unreachable,
                "postgres",
                None,
                "connection refused",
            )
        })?;
        if !canary {
            o.canary_ok = None;
        }
        Ok(o)
    }

    async fn valkey(&self, _endpoint: &Endpoint, canary: bool) -> CloudResult<ValkeyObservation> {
        self.enter("valkey", None, false)?;
        let mut o = self.world().valkey.clone().ok_or_else(|| {
            err(
                CloudErrorKind::Unreachable,
                "valkey",
                None,
                "connection refused",
            )
        })?;
        if !canary {
            o.canary_ok = None;
        }
        Ok(o)
    }

    async fn resolve(
        &self,
        name: &str,
        _record_type: &str,
        _resolvers: &[String],
    ) -> CloudResult<Vec<String>> {
        self.enter("resolve", None, false)?;
        self.world()
            .dns
            .get(name)
            .cloned()
            .ok_or_else(|| err(CloudErrorKind::NotFound, "resolve", None, "NXDOMAIN"))
    }

    async fn heartbeat_write(
        &self,
        _target: &HeartbeatTarget,
        beat: &Heartbeat,
        _keep: Duration,
    ) -> CloudResult<()> {
        self.enter("heartbeat_write", None, false)?;
        let mut w = self.world();
        if w.heartbeats_read_only {
            return Err(err(
                CloudErrorKind::InvalidState,
                "heartbeat_write",
                None,
                "cannot execute INSERT in a read-only transaction",
            ));
        }
        w.heartbeats.push(beat.clone());
        Ok(())
    }

    async fn heartbeat_read(
        &self,
        _target: &HeartbeatTarget,
        since_ms: i64,
    ) -> CloudResult<Vec<Heartbeat>> {
        self.enter("heartbeat_read", None, false)?;
        Ok(self
            .world()
            .heartbeats
            .iter()
            .filter(|b| b.at_ms >= since_ms)
            .cloned()
            .collect())
    }
}

pub const USE1: &str = "arn:aws:rds:us-east-1:111122223333:cluster:acme-prod-use1";
pub const USW2: &str = "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2";
pub const EUW1: &str = "arn:aws:rds:eu-west-1:111122223333:cluster:acme-prod-euw1";
pub const DATASTORE: &str = "ldgnf-acme-sessions";
pub const HEALTH_CHECK: &str = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b";
pub const ZONE: &str = "Z0731524T4AKBG1PJWH9";
/// The routing control of the us-east-1 cell (On before a failover).
pub const CELL_USE1: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03";
/// The routing control of the us-west-2 cell (Off before a failover).
pub const CELL_USW2: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460";
/// The control panel's "at least one cell On" assertion rule.
pub const SAFETY_RULE: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/safetyrule/9e1a7c3f5b2d8046";

fn cluster(arn: &str) -> DbCluster {
    DbCluster {
        arn: arn.into(),
        status: "available".into(),
        engine_version: "16.4".into(),
        instances: 2,
        endpoint: format!(
            "{}.cluster-x.rds.amazonaws.com",
            arn.rsplit(':').next().unwrap_or("")
        ),
    }
}

fn member(arn: &str, writer: bool) -> GlobalMember {
    GlobalMember {
        cluster_arn: arn.into(),
        region: region_of(arn),
        is_writer: writer,
    }
}

pub fn cname(name: &str, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: "CNAME".into(),
        set_identifier: None,
        ttl: Some(30),
        values: vec![value.into()],
        alias: None,
        weight: None,
        failover: None,
        health_check_id: None,
    }
}

/// The production stack of the shipped runbooks, in its "before" state: every
/// primary in us-east-1, healthy, lag 2s.
pub fn prod() -> Arc<Fake> {
    let fake = Arc::new(Fake::default());
    {
        let mut w = fake.world();
        w.globals.insert(
            "acme-prod".into(),
            GlobalCluster {
                id: "acme-prod".into(),
                status: "available".into(),
                engine_version: "16.4".into(),
                members: vec![member(USE1, true), member(USW2, false)],
                failover_state: None,
            },
        );
        for arn in [USE1, USW2] {
            w.clusters.insert(arn.into(), cluster(arn));
        }
        w.lags.insert(USW2.into(), Some(Duration::from_secs(2)));
        w.datastores.insert(
            DATASTORE.into(),
            GlobalDatastore {
                id: DATASTORE.into(),
                status: "available".into(),
                members: vec![
                    DatastoreMember {
                        replication_group_id: "acme-sessions-use1".into(),
                        region: "us-east-1".into(),
                        role: MemberRole::Primary,
                        status: "associated".into(),
                    },
                    DatastoreMember {
                        replication_group_id: "acme-sessions-usw2".into(),
                        region: "us-west-2".into(),
                        role: MemberRole::Secondary,
                        status: "associated".into(),
                    },
                ],
            },
        );
        w.rules.insert(
            "acme-prod-assets-use1".into(),
            vec![ReplicationRule {
                id: "to-usw2".into(),
                enabled: true,
                destination_bucket: "acme-prod-assets-usw2".into(),
            }],
        );
        w.versioning.insert("acme-prod-assets-use1".into(), true);
        w.versioning.insert("acme-prod-assets-usw2".into(), true);
        w.backlog.insert("acme-prod-assets-use1".into(), Some(0));
        w.zones.insert(
            ZONE.into(),
            vec![
                cname(
                    "db-writer.acme.internal.",
                    "acme-prod-use1.cluster-c4f7gh2jk9lm.us-east-1.rds.amazonaws.com",
                ),
                cname(
                    "cache.acme.internal.",
                    "master.acme-sessions-use1.a9b8c7.use1.cache.amazonaws.com",
                ),
            ],
        );
        w.health_checks.insert(
            HEALTH_CHECK.into(),
            HealthCheck {
                id: HEALTH_CHECK.into(),
                inverted: false,
                disabled: false,
            },
        );
        w.routing.insert(CELL_USE1.into(), RoutingControlState::On);
        w.routing.insert(CELL_USW2.into(), RoutingControlState::Off);
        w.safety_rule = Some(SAFETY_RULE.into());
    }
    fake
}

/// Adds a third region's secondary with the given lag.
pub fn add_euw1(fake: &Fake, lag: Option<Duration>) {
    let mut w = fake.world();
    if let Some(g) = w.globals.get_mut("acme-prod") {
        g.members.push(member(EUW1, false));
    }
    w.clusters.insert(EUW1.into(), cluster(EUW1));
    w.lags.insert(EUW1.into(), lag);
}

/// A runbook with one step per catalogue entry (and a few variants), over the stack
/// [`prod`] builds.
pub const RUNBOOK: &str = r#"
[runbook]
name = "actions-test"
mode = "unplanned"
[objectives]
rpo = "30s"
[params]
from = "us-east-1"
to = "us-west-2"
account = "111122223333"

[[step]]
id = "failover"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"
[step.gate]
check = "aurora.writer_in_region"
global_cluster = "acme-prod"
region = "{{to}}"

[[step]]
id = "failover-auto"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "auto"

[[step]]
id = "failover-euw1"
action = "aurora.failover"
global_cluster = "acme-prod"
target = "arn:aws:rds:eu-west-1:{{account}}:cluster:acme-prod-euw1"
[step.rollback]
action = "aurora.switchover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{from}}:{{account}}:cluster:acme-prod-use1"

[[step]]
id = "switchover"
action = "aurora.switchover"
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"
[step.rollback]

[[step]]
id = "detach"
action = "aurora.detach_promote"
approval = true
global_cluster = "acme-prod"
target = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"

[[step]]
id = "snapshot"
action = "aurora.snapshot_lost_writes"
global_cluster = "acme-prod"
cluster = "arn:aws:rds:{{from}}:{{account}}:cluster:acme-prod-use1"

[[step]]
id = "valkey"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
allow_disassociate = true
[step.gate]
check = "valkey.primary_in_region"
global_datastore = "ldgnf-acme-sessions"
region = "{{to}}"

[[step]]
id = "valkey-strict"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
[step.rollback]

[[step]]
id = "s3"
action = "s3.replication_check"
source_bucket = "acme-prod-assets-use1"
destination_bucket = "acme-prod-assets-usw2"
canary_timeout = "1m"
max_backlog = 10

[[step]]
id = "cutover"
action = "route53.cutover"
hosted_zone_id = "Z0731524T4AKBG1PJWH9"
[[step.records]]
name = "db-writer.acme.internal."
type = "CNAME"
ttl = 30
values = ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]
[[step.records]]
name = "cache.acme.internal"
type = "CNAME"
ttl = 30
values = ["master.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com"]
[[step.records]]
name = "new.acme.internal."
type = "A"
ttl = 60
values = ["10.0.0.2", "10.0.0.1"]
[step.gate]
check = "route53.change_insync"
[step.rollback]

[[step]]
id = "flip"
action = "route53.health_check_flip"
health_checks = ["8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"]
invert = true
[step.gate]
check = "route53.health_check_healthy"
health_check_id = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"
healthy = false
[step.rollback]

[[step]]
id = "arc"
action = "route53.routing_control"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
states = [
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460", state = "On" },
  { routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03", state = "Off" },
]
[step.gate]
check = "route53.routing_control_state"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460"
state = "On"
[step.rollback]

[[step]]
id = "arc-state"
action = "route53.routing_control_state"
cluster_endpoints = [
  { url = "https://aaaaaaaa.route53-recovery-cluster.us-east-1.amazonaws.com/v1", region = "us-east-1" },
  { url = "https://bbbbbbbb.route53-recovery-cluster.us-west-2.amazonaws.com/v1", region = "us-west-2" },
]
routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03"
state = "On"

[[step]]
id = "approve"
action = "approval"
message = "Promote {{to}}"

[[step]]
id = "soak"
action = "wait"
duration = "90s"

[[step]]
id = "writer-in-west"
action = "aurora.writer_in_region"
global_cluster = "acme-prod"
region = "{{to}}"

[[step]]
id = "lag"
action = "aurora.lag_below"
global_cluster = "acme-prod"

[[step]]
id = "cluster-up"
action = "aurora.cluster_available"
cluster = "arn:aws:rds:{{to}}:{{account}}:cluster:acme-prod-usw2"

[[step]]
id = "cache-primary-west"
action = "valkey.primary_in_region"
global_datastore = "ldgnf-acme-sessions"
region = "{{to}}"

[[step]]
id = "cache-up"
action = "valkey.available"
global_datastore = "ldgnf-acme-sessions"

[[step]]
id = "record"
action = "route53.record_points_to"
hosted_zone_id = "Z0731524T4AKBG1PJWH9"
name = "db-writer.acme.internal"
type = "CNAME"
expect = ["acme-prod-use1.cluster-c4f7gh2jk9lm.us-east-1.rds.amazonaws.com."]

[[step]]
id = "hc"
action = "route53.health_check_healthy"
health_check_id = "8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b"

[[step]]
id = "canary"
action = "s3.canary_replicated"
source_bucket = "acme-prod-assets-use1"
destination_bucket = "acme-prod-assets-usw2"

[[step]]
id = "http"
action = "http.check"
url = "https://api.acme.example/healthz"
body_contains = "\"region\":\"us-west-2\""
max_latency = "2s"

[[step]]
id = "pg"
action = "postgres.check"
host = "db.example"
user = "drpilot_check"
password_env = "PATH"
expect = "writer"
canary = true

[[step]]
id = "vk"
action = "valkey.check"
host = "cache.example"
expect = "primary"

[[step]]
id = "dns"
action = "dns.check"
name = "db-writer.acme.internal"
type = "CNAME"
expect = ["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"]

[[step]]
id = "pgbeat"
action = "postgres.heartbeat"
host = "db-writer.acme.internal"
user = "drpilot"
wait = "10s"

[[step]]
id = "vkbeat"
action = "valkey.heartbeat"
host = "cache.acme.internal"
"#;

/// A loaded runbook over a fake cloud, with a clock: everything a [`StepContext`]
/// borrows.
pub struct Harness {
    pub fake: Arc<Fake>,
    pub cloud: Cloud,
    pub runbook: crate::runbook::Runbook,
    pub clock: crate::clock::Clock,
}

impl Harness {
    /// [`RUNBOOK`] over [`prod`].
    pub fn prod() -> Self {
        Self::new(prod(), RUNBOOK)
    }

    /// A runbook text over a fake. Call inside a (paused) tokio runtime.
    pub fn new(fake: Arc<Fake>, text: &str) -> Self {
        let loaded = match crate::runbook::load_str(std::path::Path::new("test.toml"), text) {
            Ok(l) => l,
            Err(e) => panic!("{}", e.render(crate::runbook::RenderStyle::Short)),
        };
        Self {
            cloud: fake.cloud(),
            fake,
            runbook: loaded.runbook,
            clock: crate::clock::Clock::with_speed(1.0),
        }
    }

    /// The context of one step.
    pub fn ctx(&self, id: &str) -> super::StepContext<'_> {
        let step = self
            .runbook
            .steps
            .iter()
            .find(|s| s.id.as_str() == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        super::StepContext {
            cloud: &self.cloud,
            runbook: &self.runbook,
            step,
            clock: &self.clock,
            interrupted: false,
        }
    }
}
