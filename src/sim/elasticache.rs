//! ElastiCache (Valkey) global datastores in the simulated world.
//!
//! `FailoverGlobalReplicationGroup` follows one of two readings of AWS's documentation
//! (sim config `[elasticache] failover_with_unreachable_members`, see
//! [`FailoverReading`]). Under `"refuse"` (the API reference's, the default) it needs the
//! datastore `available` and every member reachable, the old primary's region
//! included: in a real outage it is refused (`InvalidGlobalReplicationGroupStateFault`)
//! and the fallback is `DisassociateGlobalReplicationGroup` of the surviving secondary,
//! which works with the primary's region down and leaves the member a standalone
//! primary. Under `"allow"` (the user guide's) a promotion is accepted whatever the
//! datastore's status and whichever members are unreachable: the target becomes the
//! primary, every other member (the unreachable old primary too) a secondary, and
//! promotions may run in parallel (the last to complete decides). Either operation
//! runs for a while (the datastore is `modifying`, roles switch only at the end). A
//! disassociation always needs the datastore `available`. Global datastore calls are
//! accepted in any region that has a member.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::state::{FailoverReading, State, ValkeyOp, ValkeyOpKind};
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    CloudErrorKind as K, CloudResult, DatastoreMember, ElastiCache, GlobalDatastore, MemberRole,
    ReplicationGroup,
};

const NOT_FOUND: &str = "GlobalReplicationGroupNotFoundFault";
const STATE: &str = "InvalidGlobalReplicationGroupStateFault";
const PARAM: &str = "InvalidParameterValue";
const COMBINATION: &str = "InvalidParameterCombination";

impl State {
    fn datastore_view(&self, id: &str) -> Option<GlobalDatastore> {
        let d = self.datastores.get(id)?;
        let disassociating =
            d.op.iter()
                .chain(&d.promotions)
                .find_map(|op| match &op.kind {
                    ValkeyOpKind::Disassociate { rg } => Some(rg.as_str()),
                    ValkeyOpKind::Failover { .. } => None,
                });
        Some(GlobalDatastore {
            id: d.id.clone(),
            status: if d.op.is_some() {
                "modifying".into()
            } else {
                d.status.clone()
            },
            members: self
                .datastore_members(id)
                .into_iter()
                .map(|rg| DatastoreMember {
                    replication_group_id: rg.id.clone(),
                    region: rg.region.clone(),
                    role: rg.role,
                    status: if disassociating == Some(rg.id.as_str()) {
                        "disassociating".into()
                    } else {
                        rg.status.clone()
                    },
                })
                .collect(),
        })
    }

    /// The datastore exists and is known in the region the call was sent to.
    fn datastore_known(&self, op: &str, region: &str, id: &str) -> CloudResult<()> {
        if !self.datastores.contains_key(id) {
            return Err(fail(
                K::NotFound,
                op,
                Some(region),
                NOT_FOUND,
                format!("global datastore {id} not found"),
            ));
        }
        if !self
            .datastore_members(id)
            .iter()
            .any(|m| m.region == region)
        {
            return Err(fail(
                K::NotFound,
                op,
                Some(region),
                NOT_FOUND,
                format!("global datastore {id} has no member in {region}"),
            ));
        }
        Ok(())
    }

    /// The checks both operations share under the API reference's reading: the
    /// datastore is known in the call's region, and it is `available` with nothing in
    /// progress.
    fn check_datastore(&self, op: &str, region: &str, id: &str) -> CloudResult<()> {
        self.datastore_known(op, region, id)?;
        let Some(d) = self.datastores.get(id) else {
            return Ok(());
        };
        if d.op.is_some() || d.status != "available" {
            return Err(fail(
                K::InvalidState,
                op,
                Some(region),
                STATE,
                format!(
                    "global datastore {id} is {}, not available",
                    if d.op.is_some() {
                        "modifying"
                    } else {
                        &d.status
                    }
                ),
            ));
        }
        Ok(())
    }

    fn valkey_failover(
        &mut self,
        region: &str,
        id: &str,
        primary_region: &str,
        target: &str,
        now: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalReplicationGroup";
        let allow = self.failover_with_unreachable_members == FailoverReading::Allow;
        if allow {
            // Only the datastore's existence and the call's region: its status and
            // the operations in progress do not matter under this reading.
            self.datastore_known(OP, region, id)?;
        } else {
            self.check_datastore(OP, region, id)?;
        }
        let members = self.datastore_members(id);
        let Some(t) = members.iter().find(|m| m.id == target) else {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!("replication group {target} is not a member of {id}"),
            ));
        };
        if t.region != primary_region {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                COMBINATION,
                format!(
                    "replication group {target} is in {}, not {primary_region}",
                    t.region
                ),
            ));
        }
        if allow {
            // Other operations may be in progress; the target itself must be a member
            // in service (not associating, not leaving).
            let leaving = self.datastores.get(id).is_some_and(|d| {
                d.op.iter()
                    .chain(&d.promotions)
                    .any(|op| matches!(&op.kind, ValkeyOpKind::Disassociate { rg } if rg == target))
            });
            let status = if leaving {
                "disassociating"
            } else {
                t.status.as_str()
            };
            if status != "associated" {
                return Err(fail(
                    K::InvalidState,
                    OP,
                    Some(region),
                    STATE,
                    format!("member {target} is {status}"),
                ));
            }
            if !self.reachable(&t.region, "elasticache", now) {
                return Err(fail(
                    K::InvalidState,
                    OP,
                    Some(region),
                    STATE,
                    format!("member {target} in {} is unreachable", t.region),
                ));
            }
        }
        if t.role == MemberRole::Primary {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!("replication group {target} is already the primary of {id}"),
            ));
        }
        if !allow {
            for m in &members {
                if !self.reachable(&m.region, "elasticache", now) {
                    let which = if m.role == MemberRole::Primary {
                        "the primary"
                    } else {
                        "member"
                    };
                    return Err(fail(
                        K::InvalidState,
                        OP,
                        Some(region),
                        STATE,
                        format!(
                            "{which} {} in {} is unreachable; the global datastore is not available",
                            m.id, m.region
                        ),
                    ));
                }
                if m.status != "associated" {
                    return Err(fail(
                        K::InvalidState,
                        OP,
                        Some(region),
                        STATE,
                        format!("member {} is {}", m.id, m.status),
                    ));
                }
            }
        }
        let from_rg = members
            .iter()
            .find(|m| m.role == MemberRole::Primary)
            .map(|m| m.id.clone())
            .unwrap_or_default();
        let run = self.duration(
            &format!("valkey:failover:{id}"),
            self.timing.valkey_failover,
        );
        let op = ValkeyOp {
            kind: ValkeyOpKind::Failover {
                from_rg,
                to_rg: target.to_string(),
            },
            accepted: now,
            completes: now.saturating_add(run),
        };
        if let Some(d) = self.datastores.get_mut(id) {
            if d.op.is_some() {
                d.promotions.push(op);
            } else {
                d.op = Some(op);
            }
        }
        Ok(())
    }

    fn disassociate(
        &mut self,
        region: &str,
        id: &str,
        rg: &str,
        rg_region: &str,
        now: Duration,
    ) -> CloudResult<()> {
        const OP: &str = "DisassociateGlobalReplicationGroup";
        self.check_datastore(OP, region, id)?;
        let Some(m) = self.datastore_members(id).into_iter().find(|m| m.id == rg) else {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!("replication group {rg} is not a member of {id}"),
            ));
        };
        if m.region != rg_region {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                COMBINATION,
                format!("replication group {rg} is in {}, not {rg_region}", m.region),
            ));
        }
        if m.role == MemberRole::Primary {
            return Err(fail(
                K::InvalidRequest,
                OP,
                Some(region),
                PARAM,
                format!("{rg} is the primary; only a secondary can be disassociated"),
            ));
        }
        if !self.reachable(&m.region, "elasticache", now) {
            return Err(fail(
                K::InvalidState,
                OP,
                Some(region),
                STATE,
                format!("member {rg} in {} is unreachable", m.region),
            ));
        }
        let run = self.duration(
            &format!("valkey:disassociate:{id}"),
            self.timing.valkey_disassociate,
        );
        if let Some(d) = self.datastores.get_mut(id) {
            d.op = Some(ValkeyOp {
                kind: ValkeyOpKind::Disassociate { rg: rg.to_string() },
                accepted: now,
                completes: now.saturating_add(run),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ElastiCache for SimWorld {
    async fn describe_global_datastore(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<GlobalDatastore> {
        const OP: &str = "DescribeGlobalReplicationGroups";
        self.call(
            "elasticache",
            OP,
            Route::Region(region),
            false,
            json!({}),
            |s, _| {
                s.datastore_view(id).ok_or_else(|| {
                    fail(
                        K::NotFound,
                        OP,
                        Some(region),
                        NOT_FOUND,
                        format!("global datastore {id} not found"),
                    )
                })
            },
        )
        .await
    }

    async fn failover_global_datastore(
        &self,
        region: &str,
        id: &str,
        primary_region: &str,
        primary_replication_group: &str,
    ) -> CloudResult<()> {
        let args = json!({
            "global_datastore": id,
            "primary_region": primary_region,
            "primary_replication_group": primary_replication_group,
        });
        self.call(
            "elasticache",
            "FailoverGlobalReplicationGroup",
            Route::Region(region),
            true,
            args,
            |s, now| s.valkey_failover(region, id, primary_region, primary_replication_group, now),
        )
        .await
    }

    async fn disassociate_global_datastore(
        &self,
        region: &str,
        id: &str,
        replication_group: &str,
        replication_group_region: &str,
    ) -> CloudResult<()> {
        let args = json!({
            "global_datastore": id,
            "replication_group": replication_group,
            "replication_group_region": replication_group_region,
        });
        self.call(
            "elasticache",
            "DisassociateGlobalReplicationGroup",
            Route::Region(region),
            true,
            args,
            |s, now| s.disassociate(region, id, replication_group, replication_group_region, now),
        )
        .await
    }

    async fn describe_replication_group(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<ReplicationGroup> {
        const OP: &str = "DescribeReplicationGroups";
        self.call(
            "elasticache",
            OP,
            Route::Region(region),
            false,
            json!({}),
            |s, _| {
                s.replication_groups
                    .values()
                    .find(|rg| rg.id.eq_ignore_ascii_case(id) && rg.region == region)
                    .map(|rg| ReplicationGroup {
                        id: rg.id.clone(),
                        status: "available".into(),
                        cluster_enabled: Some(rg.shape.cluster_enabled),
                        shards: usize::from(rg.shape.shards),
                        node_type: Some(rg.shape.node_type.clone()),
                    })
                    .ok_or_else(|| {
                        fail(
                            K::NotFound,
                            OP,
                            Some(region),
                            "ReplicationGroupNotFoundFault",
                            format!("replication group {id} not found"),
                        )
                    })
            },
        )
        .await
    }
}
