//! `aurora.detach_promote`: a secondary detached from the global cluster, a writer alone.

use serde::{Deserialize, Serialize};

use super::{AVAILABLE, describe_global, finding, is_not_found};
use crate::actions::support::{self, Reread, arn_name};
use crate::actions::{
    ActionError, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::CloudErrorKind;
use crate::runbook::model::Fields;

/// What `aurora.detach_promote` reports, typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct DetachOutput {
    /// The cluster detached to stand alone.
    target: String,
    target_region: String,
}

impl Journaled for DetachOutput {}

/// Whether `target` is a member, reading "no such global cluster" as "not a member".
async fn membership(
    ctx: &StepContext<'_>,
    id: &str,
    target: &str,
    region: &str,
) -> Result<Option<bool>, ActionError> {
    match describe_global(ctx, id, &[region]).await {
        Ok(g) => Ok(g.member(target).map(|m| m.is_writer)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `aurora.detach_promote`: RemoveFromGlobalCluster of the target, sent to its region.
pub async fn detach_promote(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Executed, ActionError> {
    const CALL: &str = "RemoveFromGlobalCluster";
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let region = f::region_of("target", target)?;
    let name = arn_name(target);
    let output = DetachOutput {
        target: target.to_string(),
        target_region: region.to_string(),
    };
    match membership(ctx, id, target, region).await? {
        None => {
            let c = ctx.cloud.rds.describe_cluster(target).await?;
            return Ok(output.executed(format!(
                "already done: {name} is not a member of {id} (status {})",
                c.status
            )));
        }
        Some(true) => {
            return Err(ActionError::refused(format!(
                "{name} is the writer of {id}: detach_promote detaches a secondary so it \
                 stands alone as a writer"
            )));
        }
        Some(false) => {}
    }
    let c = ctx.cloud.rds.describe_cluster(target).await?;
    if c.instances == 0 {
        return Err(ActionError::refused(format!(
            "{name} has no DB instance: detached, it would have no writer"
        )));
    }
    match ctx
        .cloud
        .rds
        .remove_from_global_cluster(region, id, target)
        .await
    {
        Ok(()) => Ok(output.executed(format!(
            "{CALL} sent to {region}: {name} leaves {id} and becomes a standalone writer; \
                 the global topology is broken (failback must rebuild it)"
        ))),
        Err(e) if support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState => {
            let seen = support::reread_within(ctx, support::GLOBAL_REREAD_WINDOW, || async move {
                Ok(membership(ctx, id, target, region)
                    .await?
                    .is_none()
                    .then_some(()))
            })
            .await;
            match seen {
                Reread::Applied(()) => Ok(output.executed(format!(
                    "{CALL} failed ({e}) but a re-read shows {name} detached: not resent"
                ))),
                Reread::NotApplied => Err(e.into()),
                Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Preflight of `aurora.detach_promote`.
pub async fn preflight_detach(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let region = f::region_of("target", target)?;
    let name = arn_name(target);
    let mut out = Vec::new();
    match membership(ctx, id, target, region).await? {
        None => out.push(finding(
            true,
            format!("{name} is not a member of {id}: already detached"),
        )),
        Some(true) => out.push(finding(
            false,
            format!("{name} is the writer of {id}: detach_promote detaches a secondary"),
        )),
        Some(false) => out.push(finding(
            true,
            format!("{name} is a secondary of {id}; detaching it breaks the global topology"),
        )),
    }
    let c = ctx.cloud.rds.describe_cluster(target).await?;
    out.push(finding(
        c.instances > 0,
        format!("{name} has {} instance(s)", c.instances),
    ));
    Ok(out)
}

/// Verify of `aurora.detach_promote`: not a member, and available.
pub async fn verify_detach(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let region = f::region_of("target", target)?;
    let name = arn_name(target);
    if membership(ctx, id, target, region).await?.is_some() {
        return Ok(Observation {
            passed: false,
            observed: format!("{name} still a member of {id}"),
        });
    }
    let c = ctx.cloud.rds.describe_cluster(target).await?;
    Ok(Observation {
        passed: c.status == AVAILABLE,
        observed: format!("{name} stands alone, {}", c.status),
    })
}
