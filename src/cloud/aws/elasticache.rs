//! ElastiCache: Valkey global datastores.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Guarded};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    CloudError, CloudErrorKind, CloudResult, DatastoreMember, ElastiCache, GlobalDatastore,
    MemberRole, ReplicationGroup,
};

#[async_trait]
impl ElastiCache for AwsCloud {
    async fn describe_global_datastore(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<GlobalDatastore> {
        const OP: &str = "DescribeGlobalReplicationGroups";
        let out = self
            .elasticache(region)
            .describe_global_replication_groups()
            .global_replication_group_id(id)
            .show_member_info(true)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Elasticache,
                OP,
                region,
            )
            .await?;
        let g = out
            .global_replication_groups()
            .iter()
            .find(|g| g.global_replication_group_id() == Some(id))
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    format!("global datastore {id} not found"),
                )
                .with_code("GlobalReplicationGroupNotFoundFault")
            })?;
        let mut members = Vec::new();
        for m in g.members() {
            let role = match m.role().map(str::to_ascii_uppercase).as_deref() {
                Some("PRIMARY") => MemberRole::Primary,
                Some("SECONDARY") => MemberRole::Secondary,
                other => {
                    return Err(CloudError::new(
                        CloudErrorKind::Transient,
                        OP,
                        Some(region),
                        format!("member with an unknown role {other:?}"),
                    ));
                }
            };
            members.push(DatastoreMember {
                replication_group_id: m.replication_group_id().unwrap_or_default().to_string(),
                region: m.replication_group_region().unwrap_or_default().to_string(),
                role,
                status: m.status().unwrap_or_default().to_string(),
            });
        }
        Ok(GlobalDatastore {
            id: id.to_string(),
            status: g.status().unwrap_or_default().to_string(),
            members,
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
        send_once!(
            self,
            aws_sdk_elasticache,
            Service::Elasticache,
            OP,
            region,
            self.elasticache(region)
                .failover_global_replication_group()
                .global_replication_group_id(id)
                .primary_region(primary_region)
                .primary_replication_group_id(primary_replication_group)
        )?;
        Ok(())
    }

    async fn disassociate_global_datastore(
        &self,
        region: &str,
        id: &str,
        replication_group: &str,
        replication_group_region: &str,
    ) -> CloudResult<()> {
        const OP: &str = "DisassociateGlobalReplicationGroup";
        send_once!(
            self,
            aws_sdk_elasticache,
            Service::Elasticache,
            OP,
            region,
            self.elasticache(region)
                .disassociate_global_replication_group()
                .global_replication_group_id(id)
                .replication_group_id(replication_group)
                .replication_group_region(replication_group_region)
        )?;
        Ok(())
    }

    async fn describe_replication_group(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<ReplicationGroup> {
        const OP: &str = "DescribeReplicationGroups";
        let out = self
            .elasticache(region)
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Elasticache,
                OP,
                region,
            )
            .await?;
        // The id is not case sensitive (API reference).
        let rg = out
            .replication_groups()
            .iter()
            .find(|g| {
                g.replication_group_id()
                    .is_some_and(|g| g.eq_ignore_ascii_case(id))
            })
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    format!("replication group {id} not found"),
                )
                .with_code("ReplicationGroupNotFoundFault")
            })?;
        Ok(ReplicationGroup {
            id: rg.replication_group_id().unwrap_or(id).to_string(),
            status: rg.status().unwrap_or_default().to_string(),
            cluster_enabled: rg.cluster_enabled(),
            shards: rg.node_groups().len(),
            node_type: rg.cache_node_type().map(str::to_string),
        })
    }
}
