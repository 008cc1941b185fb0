//! `aurora.snapshot_lost_writes`: keeping the old primary's unreplicated writes.

use serde::{Deserialize, Serialize};

use super::{AVAILABLE, DEFAULT_SNAPSHOT_PREFIX, UNPLANNED_PREFIX, finding};
use crate::actions::support::{self, Reread, arn_name};
use crate::actions::{
    ActionError, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{CloudErrorKind, ClusterSnapshot};
use crate::runbook::model::Fields;

/// What `aurora.snapshot_lost_writes` reports, typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SnapshotOutput {
    /// Aurora's automated snapshot of the old primary.
    source_snapshot: String,
    /// The manual copy that keeps the lost writes.
    snapshot: String,
    region: String,
}

impl Journaled for SnapshotOutput {}

/// The newest `rds:unplanned-global-failover-*` snapshot. Their identifiers end with
/// the failover's timestamp, so the greatest identifier is the newest.
fn newest_unplanned(snaps: &[ClusterSnapshot]) -> Option<&ClusterSnapshot> {
    snaps
        .iter()
        .filter(|s| s.id.starts_with(UNPLANNED_PREFIX))
        .max_by(|a, b| a.id.cmp(&b.id))
}

/// `aurora.snapshot_lost_writes`: copies the unplanned-failover snapshot of the old
/// primary to a manual snapshot so retention does not delete the lost writes.
pub async fn snapshot_lost_writes(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Executed, ActionError> {
    const CALL: &str = "CopyDBClusterSnapshot";
    let cluster = f::str(fields, "cluster")?;
    let region = f::region_of("cluster", cluster)?;
    let prefix = f::str_or(fields, "snapshot_prefix", DEFAULT_SNAPSHOT_PREFIX)?;
    let name = arn_name(cluster);
    let snaps = ctx.cloud.rds.list_cluster_snapshots(cluster).await?;
    let Some(source) = newest_unplanned(&snaps) else {
        return Err(ActionError::retryable(format!(
            "no {UNPLANNED_PREFIX}* snapshot of {name} yet (Aurora takes it when the old \
             primary's region recovers)"
        )));
    };
    // Deterministic, within AWS's 63 characters (the prefix was validated).
    let target_id = crate::names::lost_writes_snapshot_id(prefix, &source.id);
    let output = SnapshotOutput {
        source_snapshot: source.id.clone(),
        snapshot: target_id.clone(),
        region: region.to_string(),
    };
    if let Some(copy) = snaps.iter().find(|s| s.id == target_id) {
        return Ok(output.executed(format!(
            "already done: {target_id} exists ({})",
            copy.status
        )));
    }
    if source.status != AVAILABLE {
        return Err(ActionError::retryable(format!(
            "snapshot {} is {}; it can be copied once available",
            source.id, source.status
        )));
    }
    match ctx
        .cloud
        .rds
        .copy_cluster_snapshot(region, &source.id, &target_id)
        .await
    {
        Ok(copy) => Ok(output.executed(format!(
            "{CALL} sent to {region}: {} -> {target_id} ({})",
            source.id, copy.status
        ))),
        Err(e) if support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState => {
            let target_id = target_id.as_str();
            let seen = support::reread(ctx, || async move {
                let snaps = ctx.cloud.rds.list_cluster_snapshots(cluster).await?;
                Ok(snaps.iter().any(|s| s.id == target_id).then_some(()))
            })
            .await;
            match seen {
                Reread::Applied(()) => Ok(output.executed(format!(
                    "{CALL} failed ({e}) but a re-read shows {target_id} exists: not resent"
                ))),
                Reread::NotApplied => Err(e.into()),
                Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Preflight of `aurora.snapshot_lost_writes`: nothing to read yet (the snapshot only
/// exists after the failover, in a region that may be down), so it says what it will do.
pub fn preflight_snapshot(fields: &Fields) -> Result<Vec<Finding>, ActionError> {
    let cluster = f::str(fields, "cluster")?;
    let region = f::region_of("cluster", cluster)?;
    let prefix = f::str_or(fields, "snapshot_prefix", DEFAULT_SNAPSHOT_PREFIX)?;
    Ok(vec![finding(
        true,
        format!(
            "after the failover, copies the newest {UNPLANNED_PREFIX}* snapshot of {} to a \
             manual snapshot {prefix}-... in {region}",
            arn_name(cluster)
        ),
    )])
}

/// Verify of `aurora.snapshot_lost_writes`: the copy is available.
pub async fn verify_snapshot(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let cluster = f::str(fields, "cluster")?;
    let recorded = SnapshotOutput::read(&executed.output).map(|o| o.snapshot);
    let Some(target_id) = recorded.as_deref().filter(|id| !id.is_empty()) else {
        return Err(ActionError::permanent(
            "the step's output names no snapshot to verify",
        ));
    };
    let snaps = ctx.cloud.rds.list_cluster_snapshots(cluster).await?;
    Ok(match snaps.iter().find(|s| s.id == target_id) {
        Some(s) => Observation {
            passed: s.status == AVAILABLE,
            observed: format!("{target_id} is {}", s.status),
        },
        None => Observation {
            passed: false,
            observed: format!("{target_id} not found"),
        },
    })
}
