//! RDS: Aurora global clusters, their members, snapshots and replication lag.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{
    AwsCloud, Datapoint, Guarded, MetricQuery, arn_name, missing, newest_datapoints, region_of,
};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    Acu, CapacityRange, CloudError, CloudErrorKind, CloudResult, ClusterSnapshot, DbCluster,
    DbInstance, FailoverState, FailoverStatus, GlobalCluster, GlobalMember, Rds,
};
use crate::runbook::catalogue::arn_region;

/// What a failover loses, published by Aurora PostgreSQL (and Aurora MySQL versions
/// that have it).
const RPO_LAG: &str = "AuroraGlobalDBRPOLag";
/// How far the secondary is behind; the only lag metric of Aurora MySQL versions
/// without `AuroraGlobalDBRPOLag`.
const REPLICATION_LAG: &str = "AuroraGlobalDBReplicationLag";
/// The ACUs an Aurora Serverless v2 cluster runs at (per cluster: the average of its
/// Serverless v2 instances').
const SERVERLESS_CAPACITY: &str = "ServerlessDatabaseCapacity";

/// `ServerlessV2ScalingConfiguration` as drpilot reads it: both bounds, in half steps.
fn capacity_range_from(
    c: Option<&aws_sdk_rds::types::ServerlessV2ScalingConfigurationInfo>,
) -> Option<CapacityRange> {
    let c = c?;
    Some(CapacityRange {
        min: Acu::from_f64(c.min_capacity()?)?,
        max: Acu::from_f64(c.max_capacity()?)?,
    })
}

fn global_cluster_from(g: &aws_sdk_rds::types::GlobalCluster) -> GlobalCluster {
    let members = g
        .global_cluster_members()
        .iter()
        .filter_map(|m| {
            let arn = m.db_cluster_arn()?;
            Some(GlobalMember {
                cluster_arn: arn.to_string(),
                region: arn_region(arn).unwrap_or_default().to_string(),
                is_writer: m.is_writer().unwrap_or(false),
            })
        })
        .collect();
    let failover_state = g.failover_state().and_then(|f| {
        // The SDK's enum predates `switching-over`: read the wire value.
        let status = match f.status()?.as_str() {
            "pending" => FailoverStatus::Pending,
            "failing-over" => FailoverStatus::FailingOver,
            "switching-over" => FailoverStatus::SwitchingOver,
            "cancelling" => FailoverStatus::Cancelling,
            _ => return None,
        };
        Some(FailoverState {
            status,
            from_cluster_arn: f.from_db_cluster_arn().unwrap_or_default().to_string(),
            to_cluster_arn: f.to_db_cluster_arn().unwrap_or_default().to_string(),
            is_data_loss_allowed: f.is_data_loss_allowed().unwrap_or(false),
        })
    });
    GlobalCluster {
        id: g
            .global_cluster_identifier()
            .unwrap_or_default()
            .to_string(),
        status: g.status().unwrap_or_default().to_string(),
        engine_version: g.engine_version().unwrap_or_default().to_string(),
        members,
        failover_state,
        endpoint: g.endpoint().filter(|e| !e.is_empty()).map(str::to_string),
    }
}

#[async_trait]
impl Rds for AwsCloud {
    async fn describe_global_cluster(&self, region: &str, id: &str) -> CloudResult<GlobalCluster> {
        const OP: &str = "DescribeGlobalClusters";
        let out = self
            .rds(region)
            .describe_global_clusters()
            .global_cluster_identifier(id)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::Rds, OP, region)
            .await?;
        out.global_clusters()
            .iter()
            .find(|g| g.global_cluster_identifier() == Some(id))
            .map(global_cluster_from)
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    format!("global cluster {id} not found"),
                )
                .with_code("GlobalClusterNotFoundFault")
            })
    }

    async fn describe_cluster(&self, arn: &str) -> CloudResult<DbCluster> {
        const OP: &str = "DescribeDBClusters";
        let region = region_of(OP, arn)?;
        let out = self
            .rds(&region)
            .describe_db_clusters()
            .db_cluster_identifier(arn)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::Rds, OP, &region)
            .await?;
        let c = out.db_clusters().first().ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::NotFound,
                OP,
                Some(&region),
                format!("cluster {arn} not found"),
            )
            .with_code("DBClusterNotFoundFault")
        })?;
        Ok(DbCluster {
            arn: c.db_cluster_arn().unwrap_or(arn).to_string(),
            status: c.status().unwrap_or_default().to_string(),
            engine_version: c.engine_version().unwrap_or_default().to_string(),
            instances: c.db_cluster_members().len(),
            endpoint: c.endpoint().unwrap_or_default().to_string(),
            global_cluster: c
                .global_cluster_identifier()
                .filter(|g| !g.is_empty())
                .map(str::to_string),
            scaling: capacity_range_from(c.serverless_v2_scaling_configuration()),
        })
    }

    async fn modify_capacity_range(
        &self,
        cluster_arn: &str,
        range: CapacityRange,
    ) -> CloudResult<()> {
        const OP: &str = "ModifyDBCluster";
        let region = region_of(OP, cluster_arn)?;
        let config = aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
            .min_capacity(range.min.as_f64())
            .max_capacity(range.max.as_f64())
            .build();
        send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            &region,
            self.rds(&region)
                .modify_db_cluster()
                .db_cluster_identifier(cluster_arn)
                .serverless_v2_scaling_configuration(config)
                .apply_immediately(true)
        )?;
        Ok(())
    }

    async fn cluster_instances(&self, cluster_arn: &str) -> CloudResult<Vec<DbInstance>> {
        const OP: &str = "DescribeDBInstances";
        let region = region_of(OP, cluster_arn)?;
        let client = self.rds(&region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .describe_db_instances()
                .filters(
                    aws_sdk_rds::types::Filter::builder()
                        .name("db-cluster-id")
                        .values(cluster_arn)
                        .build(),
                )
                .set_marker(marker.take())
                .send()
                .guarded(self.reach(), CallKind::Read, Service::Rds, OP, &region)
                .await?;
            out.extend(page.db_instances().iter().map(|i| DbInstance {
                id: i.db_instance_identifier().unwrap_or_default().to_string(),
                class: i.db_instance_class().unwrap_or_default().to_string(),
            }));
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn serverless_capacity(&self, cluster_arn: &str) -> CloudResult<Option<f64>> {
        let region = region_of("GetMetricData", cluster_arn)?;
        let dimensions = [("DBClusterIdentifier", arn_name(cluster_arn))];
        let newest = newest_datapoints(
            self.reach(),
            &self.cloudwatch(&region),
            &region,
            &[MetricQuery {
                id: "capacity",
                namespace: "AWS/RDS",
                name: SERVERLESS_CAPACITY,
                dimensions: &dimensions,
                stat: "Maximum",
            }],
        )
        .await?;
        Ok(newest[0].and_then(|d| d.current(SystemTime::now())))
    }

    async fn failover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalCluster";
        let mut req = self
            .rds(region)
            .failover_global_cluster()
            .global_cluster_identifier(id)
            .target_db_cluster_identifier(target_arn);
        if allow_data_loss {
            req = req.allow_data_loss(true);
        }
        send_once!(self, aws_sdk_rds, Service::Rds, OP, region, req)?;
        Ok(())
    }

    async fn switchover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "SwitchoverGlobalCluster";
        send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .switchover_global_cluster()
                .global_cluster_identifier(id)
                .target_db_cluster_identifier(target_arn)
        )?;
        Ok(())
    }

    async fn remove_from_global_cluster(
        &self,
        region: &str,
        id: &str,
        cluster_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "RemoveFromGlobalCluster";
        send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .remove_from_global_cluster()
                .global_cluster_identifier(id)
                .db_cluster_identifier(cluster_arn)
        )?;
        Ok(())
    }

    async fn replication_lag(
        &self,
        region: &str,
        _global_id: &str,
        cluster_arn: &str,
    ) -> CloudResult<Option<Duration>> {
        // Both lag metrics (milliseconds) are published by the secondary, per
        // DBClusterIdentifier, in the secondary's region; one request asks for both.
        let dimensions = [("DBClusterIdentifier", arn_name(cluster_arn))];
        let query = |id, name| MetricQuery {
            id,
            namespace: "AWS/RDS",
            name,
            dimensions: &dimensions,
            stat: "Maximum",
        };
        let newest = newest_datapoints(
            self.reach(),
            &self.cloudwatch(region),
            region,
            &[query("rpo", RPO_LAG), query("replication", REPLICATION_LAG)],
        )
        .await?;
        Ok(current_lag(newest[0], newest[1], SystemTime::now()))
    }

    async fn list_cluster_snapshots(&self, cluster_arn: &str) -> CloudResult<Vec<ClusterSnapshot>> {
        const OP: &str = "DescribeDBClusterSnapshots";
        let region = region_of(OP, cluster_arn)?;
        let client = self.rds(&region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .describe_db_cluster_snapshots()
                .db_cluster_identifier(arn_name(cluster_arn))
                .set_marker(marker.take())
                .send()
                .guarded(self.reach(), CallKind::Read, Service::Rds, OP, &region)
                .await?;
            out.extend(page.db_cluster_snapshots().iter().map(|s| {
                ClusterSnapshot {
                    id: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .to_string(),
                    cluster_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
                    snapshot_type: s.snapshot_type().unwrap_or_default().to_string(),
                    status: s.status().unwrap_or_default().to_string(),
                }
            }));
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
    ) -> CloudResult<ClusterSnapshot> {
        const OP: &str = "CopyDBClusterSnapshot";
        let out = send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(source_id)
                .target_db_cluster_snapshot_identifier(target_id)
        )?;
        let s = out
            .db_cluster_snapshot()
            .ok_or_else(|| missing(OP, Some(region), "DBClusterSnapshot"))?;
        Ok(ClusterSnapshot {
            id: s
                .db_cluster_snapshot_identifier()
                .unwrap_or(target_id)
                .to_string(),
            cluster_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
            snapshot_type: s.snapshot_type().unwrap_or("manual").to_string(),
            status: s.status().unwrap_or_default().to_string(),
        })
    }
}

/// The lag now, from the newest datapoint of each lag metric: `AuroraGlobalDBRPOLag`
/// when the cluster publishes it (it has a datapoint in the window read), else
/// `AuroraGlobalDBReplicationLag`. `None` when there is neither, or when the newest of
/// the metric used is older than `DATAPOINT_MAX_AGE` at `now` (that the other
/// metric goes on does not make an old value current).
fn current_lag(
    rpo: Option<Datapoint>,
    replication: Option<Datapoint>,
    now: SystemTime,
) -> Option<Duration> {
    let ms = rpo.or(replication)?.current(now)?;
    Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}
