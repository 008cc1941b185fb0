//! `aurora.switchover`: the planned switchover, its topology check and its rollback.

use super::{
    AVAILABLE, Progress, WriterCapture, WriterOutput, blocking, compatible_versions,
    describe_global, finding, members_text, progress, recover, settled, state_text, verify_writer,
    writer_text,
};
use crate::actions::support::arn_name;
use crate::actions::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{CloudErrorKind, FailoverStatus, GlobalCluster};
use crate::runbook::model::Fields;

/// Whether the whole topology is healthy enough for a switchover to `target`. A
/// region that does not answer is a finding (the topology is degraded); a transient
/// error is returned so the caller retries instead of judging.
async fn topology(
    ctx: &StepContext<'_>,
    g: &GlobalCluster,
    target: &str,
) -> Result<Vec<Finding>, ActionError> {
    let mut out = Vec::new();
    out.push(if g.status == AVAILABLE {
        finding(true, format!("global cluster {} is available", g.id))
    } else {
        finding(false, format!("global cluster {} is {}", g.id, g.status))
    });
    if g.member(target).is_none() {
        out.push(finding(
            false,
            format!(
                "{} is not a member of {} (members: {})",
                arn_name(target),
                g.id,
                members_text(g)
            ),
        ));
    }
    for m in &g.members {
        let name = arn_name(&m.cluster_arn);
        match ctx.cloud.rds.describe_cluster(&m.cluster_arn).await {
            Ok(c) => {
                out.push(if c.status == AVAILABLE {
                    finding(true, format!("{name} in {} is available", m.region))
                } else {
                    finding(false, format!("{name} in {} is {}", m.region, c.status))
                });
                if !compatible_versions(&c.engine_version, &g.engine_version) {
                    out.push(finding(
                        false,
                        format!(
                            "engine versions differ: {} runs {}, {name} runs {}",
                            g.id, g.engine_version, c.engine_version
                        ),
                    ));
                }
                if m.cluster_arn == target && c.instances == 0 {
                    out.push(finding(
                        false,
                        format!("{name} has no DB instance to become the writer"),
                    ));
                }
            }
            Err(e) if e.kind == CloudErrorKind::Unreachable => out.push(finding(
                false,
                if m.is_writer {
                    format!("the primary's region {} is not answering ({e})", m.region)
                } else {
                    format!("region {} ({name}) is not answering ({e})", m.region)
                },
            )),
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => out.push(finding(
                false,
                format!("{name} could not be described: {e}"),
            )),
        }
    }
    Ok(out)
}

/// `aurora.switchover`: SwitchoverGlobalCluster, sent to the current primary's region.
pub async fn switchover(ctx: &StepContext<'_>, fields: &Fields) -> Result<Executed, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    switch_to(ctx, id, target).await
}

async fn switch_to(ctx: &StepContext<'_>, id: &str, target: &str) -> Result<Executed, ActionError> {
    const CALL: &str = "SwitchoverGlobalCluster";
    let target_region = f::region_of("target", target)?;
    let g = describe_global(ctx, id, &[target_region]).await?;
    let previous = g.writer().map(|w| w.cluster_arn.clone());
    let mut output = WriterOutput {
        target: target.to_string(),
        target_region: target_region.to_string(),
        previous_writer: previous,
        sent_to: None,
    };
    if let Some(done) = settled(&g, target, CALL, &output) {
        return done;
    }
    let Some(primary) = g.writer() else {
        return Err(ActionError::refused(format!(
            "global cluster {id} has no single writer to switch over from"
        )));
    };
    let findings = topology(ctx, &g, target).await?;
    let no = blocking(&findings);
    if !no.is_empty() {
        return Err(ActionError::refused(format!(
            "refusing to switch {id} over to {}: the topology is degraded ({}); a switchover \
             needs every region healthy (in an outage use aurora.failover)",
            arn_name(target),
            no.join("; ")
        )));
    }
    let region = primary.region.clone();
    output.sent_to = Some(region.clone());
    match ctx
        .cloud
        .rds
        .switchover_global_cluster(&region, id, target)
        .await
    {
        Ok(()) => Ok(output.executed(format!(
            "{CALL} sent to {region} (the primary's region): {} -> {}",
            arn_name(&primary.cluster_arn),
            arn_name(target)
        ))),
        Err(e) => recover(ctx, CALL, e, id, target, output).await,
    }
}

/// Preflight of `aurora.switchover`: the topology must be whole.
pub async fn preflight_switchover(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let g = describe_global(ctx, id, &[f::region_of("target", target)?]).await?;
    let mut out = vec![finding(
        true,
        format!("global cluster {id}: {}", writer_text(&g)),
    )];
    match progress(&g, target) {
        Progress::Done => out.push(finding(
            true,
            format!("{} already is the writer: nothing to do", arn_name(target)),
        )),
        Progress::Towards(fs) | Progress::Busy(fs) | Progress::Cancelling(fs) => out.push(finding(
            fs.to_cluster_arn == target && fs.status != FailoverStatus::Cancelling,
            format!("an operation is in progress: {}", state_text(&fs)),
        )),
        Progress::Needed => out.extend(topology(ctx, &g, target).await?),
    }
    Ok(out)
}

/// The built-in inverse of `aurora.switchover`: switch back to the captured writer.
pub async fn switch_back(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: &Captured,
) -> Result<String, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let Some(previous) = WriterCapture::writer_of(Some(captured)) else {
        return Err(ActionError::permanent(format!(
            "the capture of {id} names no previous writer to switch back to"
        )));
    };
    // The step's own switchover may still be under way (its gate timed out, or the
    // process was killed right after sending it): a second operation would be refused
    // while it runs, so wait for it to finish, then switch back. The rollback's timeout
    // bounds the wait; an operation towards any other cluster is still refused below.
    let own_target = f::str(fields, "target")?;
    let previous = previous.as_str();
    let target_region = f::region_of("target", previous)?;
    loop {
        let g = describe_global(ctx, id, &[target_region]).await?;
        match &g.failover_state {
            Some(fs) if fs.to_cluster_arn == own_target && own_target != previous => {
                ctx.clock.sleep(SETTLE_POLL).await;
            }
            _ => break,
        }
    }
    switch_to(ctx, id, previous).await.map(|e| e.summary)
}

/// How often a rollback re-reads a global cluster still busy with its step's own
/// operation.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the built-in rollback of a switchover is done: the captured writer is the
/// writer again, with nothing in progress.
pub async fn verify_switched_back(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    let Some(previous) = WriterCapture::writer_of(captured) else {
        return Err(ActionError::permanent(
            "the capture names no previous writer",
        ));
    };
    let back = WriterOutput {
        target: previous,
        ..WriterOutput::default()
    };
    verify_writer(ctx, fields, &back.executed("")).await
}
