//! `ecs.scale_service`: the desired count of an ECS service.
//!
//! A standby region whose services run a task or two (pilot light) carries no
//! production load: before traffic moves there, its services must run production's
//! count. This step sends UpdateService with `desiredCount` alone, to the region the
//! step names: never `forceNewDeployment` and never a task definition, so it is a
//! scale, not a deployment, and nothing but the count changes. Its verify waits until
//! the tasks run; its built-in rollback puts the captured count back and waits the
//! same way.
//!
//! The mutation has the shape of every other: read first ("already at that count"
//! sends nothing), send once, and after an answer that may have been lost re-read
//! instead of resending. Unlike an Aurora modification, ECS accepts an UpdateService
//! while a rollout runs, so nothing waits before sending.
//!
//! What "applied" means, from the ECS API reference: `runningCount` is the new count,
//! `pendingCount` is 0, and the service has one deployment, the PRIMARY one, whose
//! `rolloutState` is `COMPLETED` ("When the service reaches a steady state, the
//! deployment transitions to a COMPLETED state"). `rolloutState` "is only returned for
//! services that use the rolling update (ECS) deployment type that aren't behind a
//! Classic Load Balancer": without it, the counts and a single deployment decide. A
//! rollout in `FAILED` "doesn't launch any new tasks", so waiting for it is pointless:
//! verify fails the step instead of polling until its timeout.

use serde::{Deserialize, Serialize};

use super::support::{self, Reread};
use super::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{CloudErrorKind, ECS_ACTIVE, ECS_ROLLOUT_FAILED, EcsService};
use crate::names::ecs_name;
use crate::runbook::model::Fields;

const CALL: &str = "UpdateService";

/// Where a service is, as the step names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Target {
    region: String,
    cluster: String,
    service: String,
}

impl Target {
    fn of(fields: &Fields) -> Result<Target, ActionError> {
        Ok(Target {
            region: f::str(fields, "region")?.to_string(),
            cluster: f::str(fields, "cluster")?.to_string(),
            service: f::str(fields, "service")?.to_string(),
        })
    }

    /// `CLUSTER/SERVICE`, by their names.
    fn label(&self) -> String {
        format!("{}/{}", ecs_name(&self.cluster), ecs_name(&self.service))
    }
}

/// What `ecs.scale_service` captures: the service's desired count before the step.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ScaleCapture {
    #[serde(flatten)]
    target: Target,
    desired_count: u32,
}

impl Journaled for ScaleCapture {}

/// What `ecs.scale_service` reports: the count set, where, and what it was.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ScaleOutput {
    region: String,
    cluster: String,
    service: String,
    desired_count: Option<u32>,
    previous: Option<u32>,
}

impl Journaled for ScaleOutput {}

/// The step's service and the count it sets.
fn wanted(fields: &Fields) -> Result<(Target, u32), ActionError> {
    let target = Target::of(fields)?;
    let n = f::opt_int(fields, "desired_count")?
        .ok_or_else(|| ActionError::permanent("required field `desired_count` is missing"))?;
    let n = u32::try_from(n)
        .ok()
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| {
            ActionError::permanent("field `desired_count` is not a count ECS takes (0 or more)")
        })?;
    Ok((target, n))
}

/// The service, or why there is none: a cluster ECS does not know is its
/// `ClusterNotFoundException`, a service it does not know is a failure `MISSING`.
async fn read(ctx: &StepContext<'_>, t: &Target) -> Result<EcsService, ActionError> {
    ctx.cloud
        .ecs
        .describe_service(&t.region, &t.cluster, &t.service)
        .await?
        .ok_or_else(|| {
            ActionError::permanent(format!(
                "service {} not found in cluster {} in {} (DescribeServices: MISSING)",
                ecs_name(&t.service),
                ecs_name(&t.cluster),
                t.region
            ))
        })
}

/// What [`apply`] did.
enum Applied {
    /// The service already had the count: nothing was sent.
    Already,
    /// UpdateService was accepted; `lost`: its answer was lost and a re-read shows the
    /// count.
    Sent { lost: bool },
}

/// Brings the service to `want` tasks with at most one accepted UpdateService (see
/// the module docs).
async fn apply(
    ctx: &StepContext<'_>,
    t: &Target,
    want: u32,
) -> Result<(Applied, EcsService), ActionError> {
    let s = read(ctx, t).await?;
    if s.desired_count == want {
        return Ok((Applied::Already, s));
    }
    if s.status != ECS_ACTIVE {
        return Err(ActionError::permanent(format!(
            "service {} is {}: ECS refuses an update of a service that is not {ECS_ACTIVE}",
            t.label(),
            s.status
        )));
    }
    let ecs = &ctx.cloud.ecs;
    let e = match ecs
        .set_desired_count(&t.region, &t.cluster, &t.service, want)
        .await
    {
        Ok(()) => return Ok((Applied::Sent { lost: false }, s)),
        Err(e) => e,
    };
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    // The request may have been applied and only its answer lost: read, never resend.
    let seen = support::reread(ctx, || async {
        let now = read(ctx, t).await?;
        Ok((now.desired_count == want).then_some(()))
    })
    .await;
    match seen {
        Reread::Applied(()) => Ok((Applied::Sent { lost: true }, s)),
        Reread::NotApplied => Err(e.into()),
        Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
    }
}

const LOST: &str = " (response lost; a re-read confirms it)";

/// The "before" state: the service's desired count.
pub async fn capture(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let target = Target::of(fields)?;
    let s = read(ctx, &target).await?;
    Ok(ScaleCapture {
        target,
        desired_count: s.desired_count,
    }
    .captured())
}

/// `ecs.scale_service`: UpdateService of the desired count, sent to the step's region.
pub async fn scale(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    let (t, want) = wanted(fields)?;
    let (applied, before) = apply(ctx, &t, want).await?;
    let previous = captured
        .and_then(|c| ScaleCapture::read(&c.0))
        .map_or(before.desired_count, |c| c.desired_count);
    let output = ScaleOutput {
        region: t.region.clone(),
        cluster: t.cluster.clone(),
        service: t.service.clone(),
        desired_count: Some(want),
        previous: Some(previous),
    };
    let label = t.label();
    Ok(match applied {
        Applied::Already => output.executed(format!(
            "already done: {label} has a desired count of {want}"
        )),
        Applied::Sent { lost } => output.executed(format!(
            "{CALL} sent to {}: {label} desired count {} -> {want}{}",
            t.region,
            before.desired_count,
            if lost { LOST } else { "" }
        )),
    })
}

/// Whether the service runs `want` tasks and nothing moves (see the module docs); a
/// rollout the circuit breaker failed is an error, since it launches nothing more.
async fn settled(ctx: &StepContext<'_>, t: &Target, want: u32) -> Result<Observation, ActionError> {
    let s = read(ctx, t).await?;
    let label = t.label();
    if s.rollout_state() == Some(ECS_ROLLOUT_FAILED) {
        return Err(ActionError::permanent(format!(
            "{label}: its rollout is {ECS_ROLLOUT_FAILED} (the deployment circuit breaker \
             stopped it; ECS launches no more tasks for it): {} of {want} running",
            s.running_count
        )));
    }
    Ok(match s.settled_at(want) {
        Ok(()) => Observation {
            passed: true,
            observed: format!("{label} runs {want} task(s), rollout settled"),
        },
        Err(why) => Observation {
            passed: false,
            observed: format!("{label}: waiting for {want} task(s): {why}"),
        },
    })
}

/// Verify of `ecs.scale_service`: the service runs the new count, settled.
pub async fn verify(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let (t, fallback) = wanted(fields)?;
    let want = ScaleOutput::read(&executed.output)
        .and_then(|o| o.desired_count)
        .unwrap_or(fallback);
    settled(ctx, &t, want).await
}

fn captured_count(captured: &Captured) -> Result<ScaleCapture, ActionError> {
    ScaleCapture::read(&captured.0)
        .ok_or_else(|| ActionError::permanent("the captured desired count is unreadable"))
}

/// The built-in inverse: the captured count, set the same way.
pub async fn restore(ctx: &StepContext<'_>, captured: &Captured) -> Result<String, ActionError> {
    let c = captured_count(captured)?;
    let label = c.target.label();
    Ok(match apply(ctx, &c.target, c.desired_count).await?.0 {
        Applied::Already => format!(
            "already restored: {label} has a desired count of {}",
            c.desired_count
        ),
        Applied::Sent { lost } => format!(
            "{CALL} sent to {}: {label} back to a desired count of {}{}",
            c.target.region,
            c.desired_count,
            if lost { LOST } else { "" }
        ),
    })
}

/// Whether the built-in rollback is done: the captured count runs, settled.
pub async fn verify_restored(
    ctx: &StepContext<'_>,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    let Some(captured) = captured else {
        return Err(ActionError::permanent("the step captured no desired count"));
    };
    let c = captured_count(captured)?;
    settled(ctx, &c.target, c.desired_count).await
}

/// Preflight of `ecs.scale_service`: the cluster and the service exist, the service is
/// ACTIVE, and what it runs now.
pub async fn preflight(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let (t, want) = wanted(fields)?;
    let label = t.label();
    let s = match ctx
        .cloud
        .ecs
        .describe_service(&t.region, &t.cluster, &t.service)
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Ok(vec![Finding::block(format!(
                "service {} not found in cluster {} in {} (DescribeServices: MISSING)",
                ecs_name(&t.service),
                ecs_name(&t.cluster),
                t.region
            ))]);
        }
        Err(e) if e.kind == CloudErrorKind::NotFound => {
            return Ok(vec![Finding::block(format!(
                "cluster {} not found in {} ({e})",
                ecs_name(&t.cluster),
                t.region
            ))]);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    if s.status != ECS_ACTIVE {
        out.push(Finding::block(format!(
            "service {label} is {}: ECS refuses to update a service that is not \
             {ECS_ACTIVE} (it is being deleted, or was)",
            s.status
        )));
        return Ok(out);
    }
    out.push(Finding::ok(if s.desired_count == want {
        format!("{label} already has a desired count of {want}: nothing to send")
    } else {
        format!(
            "{label} is {ECS_ACTIVE} on {}: desired {}, running {}, pending {}; the step \
             sets {want}",
            s.placement(),
            s.desired_count,
            s.running_count,
            s.pending_count
        )
    }));
    match s.rollout_state() {
        Some(ECS_ROLLOUT_FAILED) => out.push(Finding::block(format!(
            "{label}'s rollout is {ECS_ROLLOUT_FAILED}: ECS launches no more tasks for it, \
             so the new count would never run"
        ))),
        _ if s.deployments.len() > 1 => out.push(Finding::warn(format!(
            "{label} has {} deployments (a rollout runs): the step waits until it completes",
            s.deployments.len()
        ))),
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
