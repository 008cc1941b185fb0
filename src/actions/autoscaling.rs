//! `autoscaling.set_capacity`: the sizes of an EC2 Auto Scaling group.
//!
//! The standby region's instances (workers, a fleet behind a load balancer) run at
//! standby size; before traffic moves there their group takes production's sizes. The
//! step sends UpdateAutoScalingGroup with the sizes it gives (MinSize,
//! DesiredCapacity, MaxSize; the others untouched), to the region the step names. Its
//! verify waits for the instances; its built-in rollback puts all three captured sizes
//! back and waits the same way.
//!
//! The merged result (the sizes given over the group's current ones) must satisfy
//! MinSize <= DesiredCapacity <= MaxSize, or the step fails before sending. AWS itself
//! accepts a new MinSize or MaxSize alone that the current DesiredCapacity falls
//! outside of, and moves DesiredCapacity to it implicitly: in a failover a change
//! nobody wrote is the wrong surprise, so the runbook must say it.
//!
//! The mutation has the shape of every other: read first ("already at those sizes"
//! sends nothing), send once, and after an answer that may have been lost re-read
//! instead of resending. "Applied" is the group settled at its desired capacity: that
//! many instances InService and Healthy, none Pending or Terminating.

use serde::{Deserialize, Serialize};

use super::support::{self, Reread};
use super::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{ASG_DELETING, AutoScalingGroup, CloudErrorKind, GroupSizeUpdate, GroupSizes};
use crate::runbook::model::Fields;

const CALL: &str = "UpdateAutoScalingGroup";
const LOST: &str = " (response lost; a re-read confirms it)";

/// What `autoscaling.set_capacity` captures: the group's sizes before the step.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SizesCapture {
    region: String,
    group: String,
    sizes: GroupSizes,
}

impl Journaled for SizesCapture {}

/// What `autoscaling.set_capacity` reports: the sizes the group has after it, where,
/// and what they were.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SizesOutput {
    region: String,
    group: String,
    sizes: Option<GroupSizes>,
    previous: Option<GroupSizes>,
}

impl Journaled for SizesOutput {}

/// A size field, if given.
fn size(fields: &Fields, key: &str) -> Result<Option<u32>, ActionError> {
    f::opt_int(fields, key)?
        .map(|n| {
            u32::try_from(n)
                .ok()
                .filter(|n| i32::try_from(*n).is_ok())
                .ok_or_else(|| {
                    ActionError::permanent(format!(
                        "field `{key}` is not a size Auto Scaling takes (0 or more)"
                    ))
                })
        })
        .transpose()
}

/// The step's region, group and the sizes it gives.
fn wanted(fields: &Fields) -> Result<(String, String, GroupSizeUpdate), ActionError> {
    let update = GroupSizeUpdate {
        min_size: size(fields, "min_size")?,
        desired_capacity: size(fields, "desired_capacity")?,
        max_size: size(fields, "max_size")?,
    };
    if update == GroupSizeUpdate::default() {
        return Err(ActionError::permanent(
            "the step sets no size (min_size, desired_capacity or max_size)",
        ));
    }
    Ok((
        f::str(fields, "region")?.to_string(),
        f::str(fields, "group")?.to_string(),
        update,
    ))
}

/// The group, or why there is none (an unknown name is an empty answer).
async fn read(
    ctx: &StepContext<'_>,
    region: &str,
    group: &str,
) -> Result<AutoScalingGroup, ActionError> {
    ctx.cloud
        .autoscaling
        .describe_group(region, group)
        .await?
        .ok_or_else(|| {
            ActionError::permanent(format!(
                "Auto Scaling group {group} not found in {region} (DescribeAutoScalingGroups \
                 returned none)"
            ))
        })
}

/// The sizes `update` gives the group, or why they cannot be: AWS keeps MinSize <=
/// DesiredCapacity <= MaxSize.
fn merged(group: &str, current: GroupSizes, update: GroupSizeUpdate) -> Result<GroupSizes, String> {
    let m = update.merged(current);
    if m.consistent() {
        Ok(m)
    } else {
        Err(format!(
            "{group} would have {m} (now {current}): Auto Scaling needs min <= desired <= \
             max; give the other sizes in the step too"
        ))
    }
}

/// What [`apply`] did.
enum Applied {
    /// The group already had the sizes: nothing was sent.
    Already,
    /// UpdateAutoScalingGroup was accepted; `lost`: its answer was lost and a re-read
    /// shows the sizes.
    Sent { lost: bool },
}

/// Brings the group to `update` with at most one accepted UpdateAutoScalingGroup (see
/// the module docs): what it did, the group as read before, and the sizes it has now.
async fn apply(
    ctx: &StepContext<'_>,
    region: &str,
    name: &str,
    update: GroupSizeUpdate,
) -> Result<(Applied, AutoScalingGroup, GroupSizes), ActionError> {
    let g = read(ctx, region, name).await?;
    let want = merged(name, g.sizes, update).map_err(ActionError::permanent)?;
    if g.sizes == want {
        return Ok((Applied::Already, g, want));
    }
    if g.status.as_deref() == Some(ASG_DELETING) {
        return Err(ActionError::permanent(format!(
            "{name} is being deleted ({ASG_DELETING}): its sizes cannot change"
        )));
    }
    let asg = &ctx.cloud.autoscaling;
    let e = match asg.update_group_sizes(region, name, update).await {
        Ok(()) => return Ok((Applied::Sent { lost: false }, g, want)),
        Err(e) => e,
    };
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    // The request may have been applied and only its answer lost: read, never resend.
    let seen = support::reread(ctx, || async {
        let now = read(ctx, region, name).await?;
        Ok((now.sizes == want).then_some(()))
    })
    .await;
    match seen {
        Reread::Applied(()) => Ok((Applied::Sent { lost: true }, g, want)),
        Reread::NotApplied => Err(e.into()),
        Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
    }
}

/// The "before" state: the group's three sizes.
pub async fn capture(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let (region, group, _) = wanted(fields)?;
    let g = read(ctx, &region, &group).await?;
    Ok(SizesCapture {
        region,
        group,
        sizes: g.sizes,
    }
    .captured())
}

/// `autoscaling.set_capacity`: UpdateAutoScalingGroup of the sizes, sent to the step's
/// region.
pub async fn set_capacity(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    let (region, group, update) = wanted(fields)?;
    let (applied, before, want) = apply(ctx, &region, &group, update).await?;
    let previous = captured
        .and_then(|c| SizesCapture::read(&c.0))
        .map_or(before.sizes, |c| c.sizes);
    let output = SizesOutput {
        region: region.clone(),
        group: group.clone(),
        sizes: Some(want),
        previous: Some(previous),
    };
    Ok(match applied {
        Applied::Already => output.executed(format!("already done: {group} is at {want}")),
        Applied::Sent { lost } => output.executed(format!(
            "{CALL} sent to {region}: {group} {} -> {want}{}",
            before.sizes,
            if lost { LOST } else { "" }
        )),
    })
}

/// Whether the group has `want` and has settled at its desired capacity.
async fn settled(
    ctx: &StepContext<'_>,
    region: &str,
    name: &str,
    want: GroupSizes,
) -> Result<Observation, ActionError> {
    let g = read(ctx, region, name).await?;
    if g.sizes != want {
        return Ok(Observation {
            passed: false,
            observed: format!("{name} is at {}, waiting for {want}", g.sizes),
        });
    }
    Ok(match g.settled() {
        Ok(()) => Observation {
            passed: true,
            observed: format!(
                "{name} runs {} instance(s) InService and Healthy",
                want.desired_capacity
            ),
        },
        Err(why) => Observation {
            passed: false,
            observed: format!(
                "{name}: waiting for {} instance(s): {why}",
                want.desired_capacity
            ),
        },
    })
}

/// Verify of `autoscaling.set_capacity`: the sizes, and the instances settled.
pub async fn verify(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let (region, group, update) = wanted(fields)?;
    let want = match SizesOutput::read(&executed.output).and_then(|o| o.sizes) {
        Some(s) => s,
        None => {
            let g = read(ctx, &region, &group).await?;
            merged(&group, g.sizes, update).map_err(ActionError::permanent)?
        }
    };
    settled(ctx, &region, &group, want).await
}

fn captured_sizes(captured: &Captured) -> Result<SizesCapture, ActionError> {
    SizesCapture::read(&captured.0)
        .ok_or_else(|| ActionError::permanent("the captured group sizes are unreadable"))
}

/// The built-in inverse: all three captured sizes, set the same way.
pub async fn restore(ctx: &StepContext<'_>, captured: &Captured) -> Result<String, ActionError> {
    let c = captured_sizes(captured)?;
    let update = GroupSizeUpdate::all(c.sizes);
    Ok(match apply(ctx, &c.region, &c.group, update).await?.0 {
        Applied::Already => format!("already restored: {} is at {}", c.group, c.sizes),
        Applied::Sent { lost } => format!(
            "{CALL} sent to {}: {} back to {}{}",
            c.region,
            c.group,
            c.sizes,
            if lost { LOST } else { "" }
        ),
    })
}

/// Whether the built-in rollback is done: the captured sizes, settled.
pub async fn verify_restored(
    ctx: &StepContext<'_>,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    let Some(captured) = captured else {
        return Err(ActionError::permanent("the step captured no group sizes"));
    };
    let c = captured_sizes(captured)?;
    settled(ctx, &c.region, &c.group, c.sizes).await
}

/// Preflight of `autoscaling.set_capacity`: the group exists and is not being deleted,
/// the merged sizes hold, and no suspended process stops the scale (or its rollback).
pub async fn preflight(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let (region, name, update) = wanted(fields)?;
    let Some(g) = ctx.cloud.autoscaling.describe_group(&region, &name).await? else {
        return Ok(vec![Finding::block(format!(
            "Auto Scaling group {name} not found in {region} (DescribeAutoScalingGroups \
             returned none)"
        ))]);
    };
    if g.status.as_deref() == Some(ASG_DELETING) {
        return Ok(vec![Finding::block(format!(
            "{name} is being deleted ({ASG_DELETING}): its sizes cannot change"
        ))]);
    }
    let want = match merged(&name, g.sizes, update) {
        Ok(w) => w,
        Err(why) => return Ok(vec![Finding::block(why)]),
    };
    let mut out = vec![Finding::ok(if g.sizes == want {
        format!("{name} already is at {want}: nothing to send")
    } else {
        format!(
            "{name} is at {} with {} instance(s); the step sets {want}",
            g.sizes,
            g.instances.len()
        )
    })];
    let (now, next) = (g.sizes.desired_capacity, want.desired_capacity);
    // The process the scale needs, and the one its rollback needs.
    let (scale, back) = if next > now {
        (Some("Launch"), Some("Terminate"))
    } else if next < now {
        (Some("Terminate"), Some("Launch"))
    } else {
        (None, None)
    };
    if let Some(p) = scale.filter(|p| g.suspended(p)) {
        out.push(Finding::block(format!(
            "{name} has its {p} process suspended: desired {now} -> {next} would never \
             happen (aws autoscaling resume-processes --scaling-processes {p})"
        )));
    }
    if let Some(p) = back.filter(|p| g.suspended(p)) {
        out.push(Finding::warn(format!(
            "{name} has its {p} process suspended: a rollback to desired {now} would not \
             happen"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
