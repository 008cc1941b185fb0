//! Aurora Global Database: unplanned failover, planned switchover, detach-and-promote,
//! keeping the lost writes, the Serverless v2 capacity range, and the Aurora checks.
//!
//! Where each call goes is the heart of it (DESIGN.md, "AWS semantics"): an unplanned
//! failover is sent to the *target's* region, because the primary's may be down; a
//! switchover to the current primary's, because it coordinates the catch-up; a detach
//! to the detached member's. Reads prefer the target's region for the same reason.
//!
//! Every mutation follows the same shape: read state; "already done" and "already in
//! progress towards the target" are success without a call; otherwise check it is safe,
//! send once, and if the response is lost re-read instead of resending.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::support::{self, Reread, arn_name, short};
use super::{
    ActionError, Captured, Executed, Fact, Finding, Journaled, Observation, StepContext,
    fields as f,
};
use crate::cloud::{
    CloudError, CloudErrorKind, DbCluster, FailoverState, FailoverStatus, GlobalCluster,
};
use crate::runbook::catalogue::arn_region;
use crate::runbook::model::Fields;

mod capacity;
mod checks;
mod detach;
mod lost_writes;
mod switchover;

pub use capacity::{
    capture_capacity, preflight_capacity, restore_capacity, set_capacity, verify_capacity,
    verify_capacity_restored,
};
pub use checks::{
    cluster_available, global_endpoint, lag_below, lag_below_facts, writer_in_region,
};
pub use detach::{detach_promote, preflight_detach, verify_detach};
pub use lost_writes::{preflight_snapshot, snapshot_lost_writes, verify_snapshot};
pub use switchover::{preflight_switchover, switch_back, switchover, verify_switched_back};

const AVAILABLE: &str = "available";
/// Prefix of the snapshot Aurora takes of the old primary after an unplanned failover.
const UNPLANNED_PREFIX: &str = "rds:unplanned-global-failover-";
const DEFAULT_SNAPSHOT_PREFIX: &str = "drpilot-lost-writes";

/// What the writer moves (`aurora.failover`, `aurora.switchover`) report, typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct WriterOutput {
    /// The cluster promoted (an `auto` failover's choice).
    target: String,
    target_region: String,
    /// The writer before the step, if there was one.
    previous_writer: Option<String>,
    /// Where a switchover was sent (the primary's region); a failover goes to
    /// `target_region`.
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_to: Option<String>,
}

impl Journaled for WriterOutput {}

/// What the Aurora mutations capture before changing anything: who was the writer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct WriterCapture {
    global_cluster: String,
    writer: Option<String>,
    writer_region: Option<String>,
    members: Vec<String>,
}

impl Journaled for WriterCapture {}

impl WriterCapture {
    /// The captured writer, if a capture names one.
    fn writer_of(captured: Option<&Captured>) -> Option<String> {
        captured
            .and_then(|c| Self::read(&c.0))
            .and_then(|c| c.writer)
    }
}

/// Describes the global cluster, asking `preferred` regions first.
async fn describe_global(
    ctx: &StepContext<'_>,
    id: &str,
    preferred: &[&str],
) -> Result<GlobalCluster, ActionError> {
    let regions = support::regions_to_ask(ctx, preferred);
    let rds = &ctx.cloud.rds;
    support::first_answer(&regions, &format!("global cluster {id}"), |r| async move {
        rds.describe_global_cluster(&r, id).await
    })
    .await
}

pub(super) use crate::names::compatible_engine_versions as compatible_versions;

fn is_not_found(e: &ActionError) -> bool {
    e.cloud
        .as_ref()
        .is_some_and(|c| c.kind == CloudErrorKind::NotFound)
}

fn status_name(s: FailoverStatus) -> &'static str {
    match s {
        FailoverStatus::Pending => "pending",
        FailoverStatus::FailingOver => "failing-over",
        FailoverStatus::SwitchingOver => "switching-over",
        FailoverStatus::Cancelling => "cancelling",
    }
}

fn state_text(fs: &FailoverState) -> String {
    format!(
        "{} from {} to {}",
        status_name(fs.status),
        arn_name(&fs.from_cluster_arn),
        arn_name(&fs.to_cluster_arn)
    )
}

fn writer_text(g: &GlobalCluster) -> String {
    match g.writer() {
        Some(w) => format!("writer {} in {}", arn_name(&w.cluster_arn), w.region),
        None => format!("{} has no single writer", g.id),
    }
}

/// Where a global cluster stands relative to moving its writer to `target`.
enum Progress {
    /// The writer is the target and nothing is in progress.
    Done,
    /// An operation towards the target is under way.
    Towards(FailoverState),
    /// An operation towards another cluster is under way.
    Busy(FailoverState),
    /// An operation is being cancelled (towards the target or not): it will not move
    /// the writer there, and a new one cannot start until the cancellation ends.
    Cancelling(FailoverState),
    /// Nothing happened yet.
    Needed,
}

fn progress(g: &GlobalCluster, target: &str) -> Progress {
    match &g.failover_state {
        Some(fs) if fs.status == FailoverStatus::Cancelling => Progress::Cancelling(fs.clone()),
        Some(fs) if fs.to_cluster_arn == target => Progress::Towards(fs.clone()),
        Some(fs) => Progress::Busy(fs.clone()),
        None if g.writer().is_some_and(|w| w.cluster_arn == target) => Progress::Done,
        None => Progress::Needed,
    }
}

/// "already done" / "already in progress" as a success, or a refusal when another
/// operation is under way; `None` when the mutation is still needed.
fn settled(
    g: &GlobalCluster,
    target: &str,
    call: &str,
    output: &WriterOutput,
) -> Option<Result<Executed, ActionError>> {
    match progress(g, target) {
        Progress::Done => Some(Ok(
            output.executed(format!("already done: {}", writer_text(g)))
        )),
        Progress::Towards(fs) => Some(Ok(output.executed(format!(
            "{call} already in progress ({}): not resent",
            state_text(&fs)
        )))),
        Progress::Busy(fs) => Some(Err(ActionError::refused(format!(
            "global cluster {} is busy with another operation ({}); not sending a second one \
             towards {}",
            g.id,
            state_text(&fs),
            arn_name(target)
        )))),
        // Someone (an operator, or AWS giving up) is cancelling: sending again would
        // fight that decision, and AWS refuses a new operation until it ends anyway.
        Progress::Cancelling(fs) => Some(Err(ActionError::refused(format!(
            "global cluster {} is cancelling an operation ({}); not sending {call} towards \
             {} (once the cancellation ends, retry the step to send it, or roll back)",
            g.id,
            state_text(&fs),
            arn_name(target)
        )))),
        Progress::Needed => None,
    }
}

/// After a failed mutation whose outcome may be "applied", re-reads the global cluster
/// and turns "the writer moved or is moving to the target" into success.
async fn recover(
    ctx: &StepContext<'_>,
    call: &str,
    e: CloudError,
    id: &str,
    target: &str,
    output: WriterOutput,
) -> Result<Executed, ActionError> {
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    let region = arn_region(target).unwrap_or_default();
    let seen = support::reread_within(ctx, support::GLOBAL_REREAD_WINDOW, || async move {
        let g = describe_global(ctx, id, &[region]).await?;
        Ok(match progress(&g, target) {
            Progress::Done => Some(writer_text(&g)),
            Progress::Towards(fs) => Some(state_text(&fs)),
            _ => None,
        })
    })
    .await;
    match seen {
        Reread::Applied(text) => Ok(output.executed(format!(
            "{call} failed ({e}) but a re-read shows {text}: not resent"
        ))),
        Reread::NotApplied => Err(e.into()),
        Reread::Unknown(read) => Err(support::unknown_outcome(call, &e, &read)),
    }
}

/// A secondary considered for promotion, with what was read about it.
struct Candidate {
    arn: String,
    region: String,
    cluster: Result<DbCluster, CloudError>,
    lag: Result<Option<Duration>, CloudError>,
}

async fn read_candidate(ctx: &StepContext<'_>, global_id: &str, arn: &str) -> Candidate {
    let region = arn_region(arn).unwrap_or_default().to_string();
    let cluster = ctx.cloud.rds.describe_cluster(arn).await;
    let lag = ctx.cloud.rds.replication_lag(&region, global_id, arn).await;
    Candidate {
        arn: arn.to_string(),
        region,
        cluster,
        lag,
    }
}

impl Candidate {
    /// A transient failure to read the candidate: retry rather than judge it.
    fn transient_error(&self) -> Option<ActionError> {
        match &self.cluster {
            Err(e) if e.is_retryable() => Some(e.clone().into()),
            _ => None,
        }
    }

    fn lag_text(&self) -> String {
        match &self.lag {
            Ok(Some(l)) => format!("lag {}", short(*l)),
            Ok(None) => {
                "lag unknown (no recent AuroraGlobalDBRPOLag or AuroraGlobalDBReplicationLag \
                 datapoint, expected while the primary is down)"
                    .into()
            }
            Err(e) => format!("lag unknown ({e})"),
        }
    }
}

fn finding(ok: bool, message: impl Into<String>) -> Finding {
    Finding::ok_if(ok, message)
}

/// Everything that decides whether `c` may be promoted by an unplanned failover.
fn assess(g: &GlobalCluster, c: &Candidate, max_lag: Option<Duration>) -> Vec<Finding> {
    let name = arn_name(&c.arn);
    let mut out = Vec::new();
    match g.member(&c.arn) {
        Some(m) if m.is_writer => out.push(finding(true, format!("{name} is the writer"))),
        Some(_) => out.push(finding(true, format!("{name} is a secondary of {}", g.id))),
        None => out.push(finding(
            false,
            format!(
                "{name} is not a member of global cluster {} (members: {})",
                g.id,
                members_text(g)
            ),
        )),
    }
    match &c.cluster {
        Ok(cl) => {
            if cl.status != AVAILABLE {
                out.push(finding(false, format!("{name} is {}", cl.status)));
            }
            out.push(if cl.instances > 0 {
                finding(true, format!("{name} has {} instance(s)", cl.instances))
            } else {
                finding(
                    false,
                    format!("{name} has no DB instance: promoting it would leave no writer"),
                )
            });
            out.push(
                if compatible_versions(&cl.engine_version, &g.engine_version) {
                    finding(
                        true,
                        format!("engine version {} matches", cl.engine_version),
                    )
                } else {
                    finding(
                        false,
                        format!(
                            "engine versions differ: {} runs {}, {name} runs {}",
                            g.id, g.engine_version, cl.engine_version
                        ),
                    )
                },
            );
        }
        Err(e) => out.push(finding(
            false,
            format!("{name} could not be described: {e}"),
        )),
    }
    let lag_finding = match (&c.lag, max_lag) {
        (Ok(Some(l)), Some(max)) if *l > max => finding(
            false,
            format!(
                "lag of {name} is {}, above max_lag {}: promoting it would lose more writes \
                 than allowed",
                short(*l),
                short(max)
            ),
        ),
        (Ok(Some(l)), Some(max)) => finding(
            true,
            format!("lag of {name} is {} <= {}", short(*l), short(max)),
        ),
        _ => finding(true, format!("{name}: {}", c.lag_text())),
    };
    out.push(match &c.lag {
        Ok(Some(l)) => lag_finding.with_fact(Fact::AuroraLag {
            global_cluster: g.id.clone(),
            cluster: c.arn.clone(),
            region: c.region.clone(),
            lag: *l,
        }),
        _ => lag_finding,
    });
    out
}

fn members_text(g: &GlobalCluster) -> String {
    let names: Vec<&str> = g.members.iter().map(|m| arn_name(&m.cluster_arn)).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn blocking(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .filter(|x| !x.allows())
        .map(|x| x.message.as_str())
        .collect()
}

/// The target of an `auto` failover.
enum Auto {
    /// A previous attempt already chose it (an operation is in progress towards it, or
    /// the writer moved away from the captured one).
    Existing(String),
    /// Chosen now: the least-lagged eligible secondary.
    Chosen(Box<Candidate>),
}

async fn resolve_auto(
    ctx: &StepContext<'_>,
    g: &GlobalCluster,
    previous_writer: Option<&str>,
    max_lag: Option<Duration>,
) -> Result<Auto, ActionError> {
    if let Some(fs) = &g.failover_state {
        return Ok(Auto::Existing(fs.to_cluster_arn.clone()));
    }
    if let (Some(prev), Some(w)) = (previous_writer, g.writer())
        && w.cluster_arn != prev
    {
        return Ok(Auto::Existing(w.cluster_arn.clone()));
    }
    let mut eligible = Vec::new();
    let mut reasons = Vec::new();
    for m in g.members.iter().filter(|m| !m.is_writer) {
        let c = read_candidate(ctx, &g.id, &m.cluster_arn).await;
        let findings = assess(g, &c, max_lag);
        let no = blocking(&findings);
        if no.is_empty() {
            eligible.push(c);
        } else {
            reasons.push(no.join(", "));
        }
    }
    // Known lags first, least first; unknown lags after; ties keep member order.
    eligible.sort_by_key(|c| match &c.lag {
        Ok(Some(l)) => (0, *l),
        _ => (1, Duration::ZERO),
    });
    match eligible.into_iter().next() {
        Some(c) => Ok(Auto::Chosen(Box::new(c))),
        None if reasons.is_empty() => Err(ActionError::refused(format!(
            "global cluster {} has no secondary to promote",
            g.id
        ))),
        None => Err(ActionError::refused(format!(
            "no secondary of {} can be promoted: {}",
            g.id,
            reasons.join("; ")
        ))),
    }
}

fn max_lag(ctx: &StepContext<'_>, fields: &Fields) -> Result<Option<Duration>, ActionError> {
    Ok(f::opt_duration(fields, "max_lag")?.or(ctx.runbook.objectives.rpo))
}

const NO_DATA_LOSS: &str = "aurora.failover always sends AllowDataLoss=true (without it \
    FailoverGlobalCluster is a switchover and fails in an outage); use aurora.switchover for \
    a planned move";

/// The "before" state of the Aurora mutations: who was the writer.
pub async fn capture(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let preferred: Vec<&str> = arn_region(target).into_iter().collect();
    let g = describe_global(ctx, id, &preferred).await?;
    let w = g.writer();
    Ok(WriterCapture {
        global_cluster: id.to_string(),
        writer: w.map(|m| m.cluster_arn.clone()),
        writer_region: w.map(|m| m.region.clone()),
        members: g.members.iter().map(|m| m.cluster_arn.clone()).collect(),
    }
    .captured())
}

/// `aurora.failover`: FailoverGlobalCluster with AllowDataLoss, sent to the target's
/// region.
pub async fn failover(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    const CALL: &str = "FailoverGlobalCluster";
    if !f::bool_or(fields, "allow_data_loss", true)? {
        return Err(ActionError::refused(NO_DATA_LOSS));
    }
    let id = f::str(fields, "global_cluster")?;
    let target_field = f::str(fields, "target")?;
    let max_lag = max_lag(ctx, fields)?;
    let auto = target_field == "auto";
    let preferred = if auto {
        Vec::new()
    } else {
        vec![f::region_of("target", target_field)?]
    };
    let g = describe_global(ctx, id, &preferred).await?;
    let captured_writer = WriterCapture::writer_of(captured);
    let previous = captured_writer
        .clone()
        .or_else(|| g.writer().map(|w| w.cluster_arn.clone()));
    let (target, chosen) = if auto {
        match resolve_auto(ctx, &g, captured_writer.as_deref(), max_lag).await? {
            Auto::Existing(arn) => (arn, None),
            Auto::Chosen(c) => (c.arn.clone(), Some(*c)),
        }
    } else {
        (target_field.to_string(), None)
    };
    let region = arn_region(&target).unwrap_or_default().to_string();
    let output = WriterOutput {
        target: target.clone(),
        target_region: region,
        previous_writer: previous,
        sent_to: None,
    };
    if let Some(done) = settled(&g, &target, CALL, &output) {
        return done;
    }
    let c = match chosen {
        Some(c) => c,
        None => {
            let c = read_candidate(ctx, id, &target).await;
            if let Some(e) = c.transient_error() {
                return Err(e);
            }
            c
        }
    };
    let findings = assess(&g, &c, max_lag);
    let no = blocking(&findings);
    if !no.is_empty() {
        return Err(ActionError::refused(format!(
            "refusing to fail {id} over to {}: {}",
            arn_name(&target),
            no.join("; ")
        )));
    }
    let how = if auto {
        " (auto: the least-lagged eligible secondary)"
    } else {
        ""
    };
    match ctx
        .cloud
        .rds
        .failover_global_cluster(&c.region, id, &target, true)
        .await
    {
        Ok(()) => Ok(output.executed(format!(
            "{CALL} (AllowDataLoss) sent to {}: promoting {}{how}; {}",
            c.region,
            arn_name(&target),
            c.lag_text()
        ))),
        Err(e) => recover(ctx, CALL, e, id, &target, output).await,
    }
}

/// Preflight of `aurora.failover`: the same facts `failover` refuses on, as findings.
pub async fn preflight_failover(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let mut out = Vec::new();
    if !f::bool_or(fields, "allow_data_loss", true)? {
        out.push(finding(false, NO_DATA_LOSS));
    }
    let id = f::str(fields, "global_cluster")?;
    let target = f::str(fields, "target")?;
    let max_lag = max_lag(ctx, fields)?;
    let preferred: Vec<&str> = arn_region(target).into_iter().collect();
    let g = describe_global(ctx, id, &preferred).await?;
    out.push(finding(
        true,
        format!(
            "global cluster {id}: {}, {} member(s), engine {}",
            writer_text(&g),
            g.members.len(),
            g.engine_version
        ),
    ));
    let c = if target == "auto" {
        match resolve_auto(ctx, &g, None, max_lag).await {
            Ok(Auto::Chosen(c)) => {
                let c = *c;
                out.push(finding(
                    true,
                    format!(
                        "target auto: {} in {} (the least-lagged eligible secondary)",
                        arn_name(&c.arn),
                        c.region
                    ),
                ));
                c
            }
            Ok(Auto::Existing(arn)) => read_candidate(ctx, id, &arn).await,
            Err(e) => {
                out.push(finding(false, e.message));
                return Ok(out);
            }
        }
    } else {
        match progress(&g, target) {
            Progress::Done => {
                out.push(finding(
                    true,
                    format!("{} already is the writer: nothing to do", arn_name(target)),
                ));
                return Ok(out);
            }
            Progress::Towards(fs) | Progress::Busy(fs) | Progress::Cancelling(fs) => {
                out.push(finding(
                    fs.to_cluster_arn == target && fs.status != FailoverStatus::Cancelling,
                    format!("an operation is in progress: {}", state_text(&fs)),
                ));
                return Ok(out);
            }
            Progress::Needed => {}
        }
        let c = read_candidate(ctx, id, target).await;
        if let Some(e) = c.transient_error() {
            return Err(e);
        }
        c
    };
    out.extend(assess(&g, &c, max_lag));
    Ok(out)
}

/// Verify of failover and switchover: the writer is the target and nothing is in
/// progress.
pub async fn verify_writer(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let recorded = WriterOutput::read(&executed.output)
        .map(|o| o.target)
        .filter(|t| !t.is_empty());
    let target = match &recorded {
        Some(t) => t.as_str(),
        None => f::str(fields, "target")?,
    };
    let preferred: Vec<&str> = arn_region(target).into_iter().collect();
    let g = describe_global(ctx, id, &preferred).await?;
    Ok(match progress(&g, target) {
        Progress::Done => Observation {
            passed: true,
            observed: writer_text(&g),
        },
        Progress::Towards(fs) | Progress::Busy(fs) | Progress::Cancelling(fs) => Observation {
            passed: false,
            observed: state_text(&fs),
        },
        Progress::Needed => Observation {
            passed: false,
            observed: format!("{}, waiting for {}", writer_text(&g), arn_name(target)),
        },
    })
}

#[cfg(test)]
mod tests;
