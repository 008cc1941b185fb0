//! `aurora.serverless_capacity`: the capacity range of an Aurora Serverless v2 cluster.
//!
//! A secondary kept at standby size (0.5-8 ACUs, say) and promoted as it is cannot carry
//! production: its instances scale up only as far as its `MaxCapacity`, and from its
//! `MinCapacity` upwards a few ACUs at a time. This step raises the range before the
//! promotion (ModifyDBCluster `ServerlessV2ScalingConfiguration`, `ApplyImmediately`,
//! sent to the cluster's region), and its built-in rollback puts the captured range
//! back.
//!
//! The mutation has the shape of every other: read first ("already at that range"
//! sends nothing), never send while the cluster is not `available` (AWS refuses a
//! modification then, and an operation in progress may be our own), send once, and
//! after an answer that may have been lost re-read instead of resending.

use serde::{Deserialize, Serialize};

use super::{AVAILABLE, describe_global};
use crate::actions::support::{self, Reread, arn_name};
use crate::actions::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{Acu, CapacityRange, CloudErrorKind, DbCluster, SERVERLESS_CLASS};
use crate::runbook::model::Fields;

const CALL: &str = "ModifyDBCluster";

/// Why a minimum of 0 ACUs is refused for a member of a global database.
///
/// A minimum capacity of 0 ACUs is how auto-pause is turned on ("You do so by
/// specifying a minimum ACU value of zero for your DB cluster", Aurora User Guide,
/// "Scaling to Zero ACUs with automatic pause and resume for Aurora Serverless v2"), and
/// only engine versions with auto-pause accept it ("For Aurora versions that support the
/// Aurora Serverless v2 auto-pause feature, the smallest value that you can use is 0",
/// RDS API reference, `ServerlessV2ScalingConfiguration.MinCapacity`). The same user
/// guide page, section "Prerequisites and Limitations"
/// (aurora-serverless-v2-auto-pause.html#auto-pause-prereqs), is where AWS lists the
/// cluster configurations auto-pause is not available for, and drpilot reads it as
/// excluding the clusters of an Aurora global database, primary and secondaries alike.
/// That section's own sentence is to be confirmed against the live page: the copies at
/// hand when this was written held only the page's opening (the quotes above are
/// verbatim). Whatever the wording, a paused secondary is the opposite of a warm
/// standby, so refusing it costs nothing.
const AUTO_PAUSE_IN_GLOBAL: &str = "a minimum of 0 ACUs turns on auto-pause, which AWS does \
    not allow for a cluster of an Aurora global database (Aurora User Guide, \"Scaling to Zero \
    ACUs with automatic pause and resume\", Prerequisites and Limitations); use 0.5 or more";

/// What `aurora.serverless_capacity` captures: the cluster's range before the step.
/// Every field is required: a capacity that is not one must not restore anything.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CapacityCapture {
    cluster: String,
    /// `None`: the cluster had no `ServerlessV2ScalingConfiguration`.
    range: Option<CapacityRange>,
    /// Whether the cluster was its global database's writer before the step (`None`:
    /// not a member, or not known; also what a capture written before this field reads
    /// as). A rollback never shrinks a cluster that has become the writer since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<bool>,
}

impl Journaled for CapacityCapture {}

/// What `aurora.serverless_capacity` reports: the range set, where, and what it was.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct CapacityOutput {
    cluster: String,
    /// Where ModifyDBCluster was sent (the cluster's region).
    region: String,
    range: Option<CapacityRange>,
    previous: Option<CapacityRange>,
}

impl Journaled for CapacityOutput {}

/// The step's cluster and the range it sets.
fn wanted(fields: &Fields) -> Result<(&str, CapacityRange), ActionError> {
    let arn = f::str(fields, "cluster")?;
    let range = CapacityRange {
        min: f::acu(fields, "min_acu")?,
        max: f::acu(fields, "max_acu")?,
    };
    if range.min > range.max {
        return Err(ActionError::permanent(format!(
            "min_acu ({}) is above max_acu ({})",
            range.min, range.max
        )));
    }
    Ok((arn, range))
}

fn range_text(r: Option<CapacityRange>) -> String {
    match r {
        Some(r) => r.to_string(),
        None => "no capacity range (not Aurora Serverless v2)".into(),
    }
}

/// What [`apply`] did.
enum Applied {
    /// The cluster already had the range: nothing was sent.
    Already,
    /// ModifyDBCluster was accepted; `lost`: its answer was lost and a re-read shows
    /// the range.
    Sent { lost: bool },
}

/// Brings the cluster to `want` with at most one accepted ModifyDBCluster (see the
/// module docs).
async fn apply(
    ctx: &StepContext<'_>,
    arn: &str,
    want: CapacityRange,
) -> Result<(Applied, DbCluster), ActionError> {
    let rds = &ctx.cloud.rds;
    let c = rds.describe_cluster(arn).await?;
    if c.scaling == Some(want) {
        return Ok((Applied::Already, c));
    }
    if want.min == Acu::ZERO
        && let Some(g) = &c.global_cluster
    {
        return Err(ActionError::refused(format!(
            "refusing to set {} to {want}: it is a member of global cluster {g}, and \
             {AUTO_PAUSE_IN_GLOBAL}",
            arn_name(arn)
        )));
    }
    if c.status != AVAILABLE {
        // AWS refuses a modification while the cluster is not available, and the
        // operation running may be this step's own: wait for it, then read again.
        return Err(ActionError::retryable(format!(
            "{} is {}; {CALL} is sent once it is available",
            arn_name(arn),
            c.status
        )));
    }
    let e = match rds.modify_capacity_range(arn, want).await {
        Ok(()) => return Ok((Applied::Sent { lost: false }, c)),
        Err(e) => e,
    };
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    // The request may have been applied and only its answer lost: read, never resend.
    let seen = support::reread(ctx, || async {
        let now = rds.describe_cluster(arn).await?;
        Ok((now.scaling == Some(want)).then_some(()))
    })
    .await;
    match seen {
        Reread::Applied(()) => Ok((Applied::Sent { lost: true }, c)),
        Reread::NotApplied => Err(e.into()),
        Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
    }
}

/// The "before" state: the cluster's capacity range.
pub async fn capture_capacity(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Captured, ActionError> {
    let arn = f::str(fields, "cluster")?;
    let c = ctx.cloud.rds.describe_cluster(arn).await?;
    // Unknown when the global cluster cannot be read (its other regions may be down):
    // a rollback then treats the cluster as a secondary, the cautious reading.
    let writer = is_global_writer(ctx, &c).await.ok().flatten();
    Ok(CapacityCapture {
        cluster: arn.to_string(),
        range: c.scaling,
        writer,
    }
    .captured())
}

/// Whether `c` is the writer of its global database; `None` when it is not a member.
async fn is_global_writer(
    ctx: &StepContext<'_>,
    c: &DbCluster,
) -> Result<Option<bool>, ActionError> {
    let Some(id) = &c.global_cluster else {
        return Ok(None);
    };
    let region = f::region_of("cluster", &c.arn)?;
    let g = describe_global(ctx, id, &[region]).await?;
    Ok(Some(g.writer().is_some_and(|w| w.cluster_arn == c.arn)))
}

/// Whether going from `now` to `to` lowers either bound.
fn shrinks(now: Option<CapacityRange>, to: CapacityRange) -> bool {
    now.is_some_and(|n| to.min < n.min || to.max < n.max)
}

/// `aurora.serverless_capacity`: ModifyDBCluster of the range, sent to the cluster's
/// region.
pub async fn set_capacity(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    let (arn, want) = wanted(fields)?;
    let region = f::region_of("cluster", arn)?;
    let (applied, before) = apply(ctx, arn, want).await?;
    let previous = captured
        .and_then(|c| CapacityCapture::read(&c.0))
        .map(|c| c.range)
        .unwrap_or(before.scaling);
    let output = CapacityOutput {
        cluster: arn.to_string(),
        region: region.to_string(),
        range: Some(want),
        previous,
    };
    let name = arn_name(arn);
    Ok(match applied {
        Applied::Already => output.executed(format!("already done: {name} is at {want}")),
        Applied::Sent { lost } => output.executed(format!(
            "{CALL} sent to {region}: {name} {} -> {want}{}",
            range_text(before.scaling),
            if lost {
                " (response lost; a re-read confirms it)"
            } else {
                ""
            }
        )),
    })
}

/// Whether the cluster reports `want` and is available.
async fn at_range(
    ctx: &StepContext<'_>,
    arn: &str,
    want: CapacityRange,
) -> Result<Observation, ActionError> {
    let c = ctx.cloud.rds.describe_cluster(arn).await?;
    let name = arn_name(arn);
    let passed = c.scaling == Some(want) && c.status == AVAILABLE;
    Ok(Observation {
        passed,
        observed: if passed {
            format!("{name} is available at {want}")
        } else if c.scaling == Some(want) {
            format!("{name} is {} at {want}", c.status)
        } else {
            format!(
                "{name} is {} at {}, waiting for {want}",
                c.status,
                range_text(c.scaling)
            )
        },
    })
}

/// Verify of `aurora.serverless_capacity`: the cluster reports the new range and is
/// available again.
pub async fn verify_capacity(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let recorded = CapacityOutput::read(&executed.output).and_then(|o| o.range);
    let (arn, want) = match recorded {
        Some(r) => (f::str(fields, "cluster")?, r),
        None => wanted(fields)?,
    };
    at_range(ctx, arn, want).await
}

/// How often a rollback re-reads a cluster still `modifying` (the step's own change).
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The captured range, or why there is none to restore.
fn captured_range(captured: &Captured) -> Result<(String, CapacityRange), ActionError> {
    let c = CapacityCapture::read(&captured.0)
        .ok_or_else(|| ActionError::permanent("the captured capacity range is unreadable"))?;
    match c.range {
        Some(r) => Ok((c.cluster, r)),
        None => Err(ActionError::permanent(format!(
            "{} had no capacity range before the step: there is none to restore",
            arn_name(&c.cluster)
        ))),
    }
}

/// The built-in inverse: the captured range, set the same way.
pub async fn restore_capacity(
    ctx: &StepContext<'_>,
    captured: &Captured,
) -> Result<String, ActionError> {
    let (arn, previous) = captured_range(captured)?;
    let was_writer = CapacityCapture::read(&captured.0).and_then(|c| c.writer);
    // The step's own modification may still be running: AWS would refuse a second one.
    // The rollback's timeout bounds the wait.
    let mut now = ctx.cloud.rds.describe_cluster(&arn).await?;
    while now.status == "modifying" {
        ctx.clock.sleep(SETTLE_POLL).await;
        now = ctx.cloud.rds.describe_cluster(&arn).await?;
    }
    let name = arn_name(&arn);
    // A standby raised before its promotion and rolled back after it (a runbook whose
    // promotion has no rollback, such as an unplanned failover) is the writer now: its
    // standby range would starve production. The range stays; the operator decides.
    if was_writer != Some(true)
        && shrinks(now.scaling, previous)
        && is_global_writer(ctx, &now).await? == Some(true)
    {
        return Err(ActionError::permanent(format!(
            "not restored: {name} has become its global database's writer since the step; \
             its range before ({previous}) would starve production, so it stays at {} \
             (size it down once the writer is elsewhere)",
            range_text(now.scaling)
        )));
    }
    Ok(match apply(ctx, &arn, previous).await?.0 {
        Applied::Already => format!("already restored: {name} is at {previous}"),
        Applied::Sent { lost } => format!(
            "{CALL} sent to {}: {name} back to {previous}{}",
            f::region_of("cluster", &arn)?,
            if lost {
                " (response lost; a re-read confirms it)"
            } else {
                ""
            }
        ),
    })
}

/// Whether the built-in rollback is done: the captured range, available.
pub async fn verify_capacity_restored(
    ctx: &StepContext<'_>,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    let Some(captured) = captured else {
        return Err(ActionError::permanent(
            "the step captured no capacity range",
        ));
    };
    let (arn, previous) = captured_range(captured)?;
    at_range(ctx, &arn, previous).await
}

/// Preflight of `aurora.serverless_capacity`: the cluster exists and is Aurora
/// Serverless v2, no setting AWS refuses for a global database member, and, for a
/// secondary, the new maximum covers what the primary runs at now.
pub async fn preflight_capacity(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let (arn, want) = wanted(fields)?;
    let name = arn_name(arn);
    let region = f::region_of("cluster", arn)?;
    let rds = &ctx.cloud.rds;
    let c = rds.describe_cluster(arn).await?;
    let mut out = vec![Finding::ok(if c.scaling == Some(want) {
        format!("{name} already is at {want}: nothing to do")
    } else {
        format!(
            "{name} is {} at {}; the step sets {want}",
            c.status,
            range_text(c.scaling)
        )
    })];
    match rds.cluster_instances(arn).await {
        Ok(list) if list.is_empty() => out.push(Finding::warn(format!(
            "{name} has no DB instance: the range applies to the Serverless v2 instances it \
             gets, and a cluster without an instance cannot be promoted"
        ))),
        Ok(list) => {
            let provisioned: Vec<String> = list
                .iter()
                .filter(|i| i.class != SERVERLESS_CLASS)
                .map(|i| format!("{} is {}", i.id, i.class))
                .collect();
            out.push(if provisioned.is_empty() {
                Finding::ok(format!(
                    "{name}'s {} instance(s) are {SERVERLESS_CLASS}",
                    list.len()
                ))
            } else {
                Finding::block(format!(
                    "{name} has provisioned instances ({}): a capacity range sizes only \
                     {SERVERLESS_CLASS} instances, so the step would not change what \
                     they can carry",
                    provisioned.join(", ")
                ))
            });
        }
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => out.push(Finding::block(format!(
            "the instances of {name} could not be listed: {e}"
        ))),
    }
    let Some(gid) = c.global_cluster.clone() else {
        out.push(Finding::ok(format!(
            "{name} is not a member of a global database"
        )));
        if want.min == Acu::ZERO {
            out.push(Finding::ok(
                "min_acu 0 turns on auto-pause: AWS accepts it only on engine versions with \
                 auto-pause, and a paused instance takes seconds to resume",
            ));
        }
        return Ok(out);
    };
    if want.min == Acu::ZERO {
        out.push(Finding::block(format!(
            "{name} is a member of global cluster {gid}: {AUTO_PAUSE_IN_GLOBAL}"
        )));
    }
    let g = match describe_global(ctx, &gid, &[region]).await {
        Ok(g) => g,
        Err(e) => {
            out.push(Finding::warn(format!(
                "global cluster {gid} could not be read ({e}): the primary's capacity is not \
                 compared with max_acu {}",
                want.max
            )));
            return Ok(out);
        }
    };
    let Some(writer) = g.writer().filter(|w| w.cluster_arn != arn) else {
        out.push(Finding::ok(format!(
            "{name} is {} of global cluster {gid}",
            if g.writer().is_some() {
                "the primary"
            } else {
                "a member (no single writer now)"
            }
        )));
        return Ok(out);
    };
    let primary = arn_name(&writer.cluster_arn);
    out.push(match rds.serverless_capacity(&writer.cluster_arn).await {
        Ok(Some(now)) if now > want.max.as_f64() => Finding::block(format!(
            "the primary {primary} runs at {now} ACUs now (ServerlessDatabaseCapacity), above \
             max_acu {}: promoted with this range, {name} could not carry its load",
            want.max
        )),
        Ok(Some(now)) => Finding::ok(format!(
            "the primary {primary} runs at {now} ACUs now, within max_acu {}",
            want.max
        )),
        Ok(None) => Finding::warn(format!(
            "the primary {primary}'s current capacity is unknown (no recent \
             ServerlessDatabaseCapacity datapoint: its region may be down, or it is not \
             Serverless v2); max_acu {} is not compared with it",
            want.max
        )),
        Err(e) => Finding::warn(format!(
            "the primary {primary}'s current capacity could not be read ({e}); max_acu {} \
             is not compared with it",
            want.max
        )),
    });
    Ok(out)
}

#[cfg(test)]
mod tests;
