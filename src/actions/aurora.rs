//! Aurora Global Database: unplanned failover, planned switchover, detach-and-promote,
//! keeping the lost writes, and the Aurora checks.
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

use serde_json::{Value, json};

use super::support::{self, Reread, arn_name, short};
use super::{ActionError, Captured, Executed, Finding, Observation, StepContext, fields as f};
use crate::cloud::{
    CloudError, CloudErrorKind, ClusterSnapshot, DbCluster, FailoverState, FailoverStatus,
    GlobalCluster,
};
use crate::runbook::catalogue::arn_region;
use crate::runbook::model::Fields;

const AVAILABLE: &str = "available";
/// Prefix of the snapshot Aurora takes of the old primary after an unplanned failover.
const UNPLANNED_PREFIX: &str = "rds:unplanned-global-failover-";
const DEFAULT_SNAPSHOT_PREFIX: &str = "drpilot-lost-writes";

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
    /// Nothing happened yet.
    Needed,
}

fn progress(g: &GlobalCluster, target: &str) -> Progress {
    match &g.failover_state {
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
    output: &Value,
) -> Option<Result<Executed, ActionError>> {
    match progress(g, target) {
        Progress::Done => Some(Ok(Executed {
            summary: format!("already done: {}", writer_text(g)),
            output: output.clone(),
        })),
        Progress::Towards(fs) => Some(Ok(Executed {
            summary: format!(
                "{call} already in progress ({}): not resent",
                state_text(&fs)
            ),
            output: output.clone(),
        })),
        Progress::Busy(fs) => Some(Err(ActionError::refused(format!(
            "global cluster {} is busy with another operation ({}); not sending a second one \
             towards {}",
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
    output: Value,
) -> Result<Executed, ActionError> {
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    let region = arn_region(target).unwrap_or_default();
    let seen = support::reread(ctx, || async move {
        let g = describe_global(ctx, id, &[region]).await?;
        Ok(match progress(&g, target) {
            Progress::Done => Some(writer_text(&g)),
            Progress::Towards(fs) => Some(state_text(&fs)),
            _ => None,
        })
    })
    .await;
    match seen {
        Reread::Applied(text) => Ok(Executed {
            summary: format!("{call} failed ({e}) but a re-read shows {text}: not resent"),
            output,
        }),
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
                "lag unknown (no AuroraGlobalDBRPOLag datapoint, expected while the primary \
                 is down)"
                    .into()
            }
            Err(e) => format!("lag unknown ({e})"),
        }
    }
}

fn finding(ok: bool, message: impl Into<String>) -> Finding {
    Finding {
        ok,
        message: message.into(),
    }
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
            out.push(if cl.engine_version == g.engine_version {
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
            });
        }
        Err(e) => out.push(finding(
            false,
            format!("{name} could not be described: {e}"),
        )),
    }
    out.push(match (&c.lag, max_lag) {
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
        .filter(|x| !x.ok)
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

fn captured_str<'a>(captured: Option<&'a Captured>, key: &str) -> Option<&'a str> {
    captured.and_then(|c| c.0.get(key)).and_then(Value::as_str)
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
    Ok(Captured(json!({
        "global_cluster": id,
        "writer": w.map(|m| m.cluster_arn.as_str()),
        "writer_region": w.map(|m| m.region.as_str()),
        "members": g.members.iter().map(|m| m.cluster_arn.as_str()).collect::<Vec<_>>(),
    })))
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
    let previous = captured_str(captured, "writer")
        .map(str::to_string)
        .or_else(|| g.writer().map(|w| w.cluster_arn.clone()));
    let (target, chosen) = if auto {
        match resolve_auto(ctx, &g, captured_str(captured, "writer"), max_lag).await? {
            Auto::Existing(arn) => (arn, None),
            Auto::Chosen(c) => (c.arn.clone(), Some(*c)),
        }
    } else {
        (target_field.to_string(), None)
    };
    let region = arn_region(&target).unwrap_or_default().to_string();
    let output = json!({
        "target": target,
        "target_region": region,
        "previous_writer": previous,
    });
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
        Ok(()) => Ok(Executed {
            summary: format!(
                "{CALL} (AllowDataLoss) sent to {}: promoting {}{how}; {}",
                c.region,
                arn_name(&target),
                c.lag_text()
            ),
            output,
        }),
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
            Progress::Towards(fs) | Progress::Busy(fs) => {
                out.push(finding(
                    fs.to_cluster_arn == target,
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
                if c.engine_version != g.engine_version {
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
    let mut output = json!({
        "target": target,
        "target_region": target_region,
        "previous_writer": previous,
    });
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
    output["sent_to"] = json!(region);
    match ctx
        .cloud
        .rds
        .switchover_global_cluster(&region, id, target)
        .await
    {
        Ok(()) => Ok(Executed {
            summary: format!(
                "{CALL} sent to {region} (the primary's region): {} -> {}",
                arn_name(&primary.cluster_arn),
                arn_name(target)
            ),
            output,
        }),
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
        Progress::Towards(fs) | Progress::Busy(fs) => out.push(finding(
            fs.to_cluster_arn == target,
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
    let Some(previous) = captured_str(Some(captured), "writer") else {
        return Err(ActionError::permanent(format!(
            "the capture of {id} names no previous writer to switch back to"
        )));
    };
    // The step's own switchover may still be under way (its gate timed out, or the
    // process was killed right after sending it): a second operation would be refused
    // while it runs, so wait for it to finish, then switch back. The rollback's timeout
    // bounds the wait; an operation towards any other cluster is still refused below.
    let own_target = f::str(fields, "target")?;
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

/// Verify of failover and switchover: the writer is the target and nothing is in
/// progress.
pub async fn verify_writer(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let target = match executed.output.get("target").and_then(Value::as_str) {
        Some(t) => t,
        None => f::str(fields, "target")?,
    };
    let preferred: Vec<&str> = arn_region(target).into_iter().collect();
    let g = describe_global(ctx, id, &preferred).await?;
    Ok(match progress(&g, target) {
        Progress::Done => Observation {
            passed: true,
            observed: writer_text(&g),
        },
        Progress::Towards(fs) | Progress::Busy(fs) => Observation {
            passed: false,
            observed: state_text(&fs),
        },
        Progress::Needed => Observation {
            passed: false,
            observed: format!("{}, waiting for {}", writer_text(&g), arn_name(target)),
        },
    })
}

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
    let output = json!({ "target": target, "target_region": region });
    match membership(ctx, id, target, region).await? {
        None => {
            let c = ctx.cloud.rds.describe_cluster(target).await?;
            return Ok(Executed {
                summary: format!(
                    "already done: {name} is not a member of {id} (status {})",
                    c.status
                ),
                output,
            });
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
        Ok(()) => Ok(Executed {
            summary: format!(
                "{CALL} sent to {region}: {name} leaves {id} and becomes a standalone writer; \
                 the global topology is broken (failback must rebuild it)"
            ),
            output,
        }),
        Err(e) if support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState => {
            let seen = support::reread(ctx, || async move {
                Ok(membership(ctx, id, target, region)
                    .await?
                    .is_none()
                    .then_some(()))
            })
            .await;
            match seen {
                Reread::Applied(()) => Ok(Executed {
                    summary: format!(
                        "{CALL} failed ({e}) but a re-read shows {name} detached: not resent"
                    ),
                    output,
                }),
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

/// The manual snapshot's identifier for a source snapshot: deterministic, so an attempt
/// after a lost response finds its own copy. A cluster snapshot identifier has letters,
/// digits and single hyphens, starts with a letter, and is at most 255 characters.
pub fn lost_writes_id(prefix: &str, source_id: &str) -> String {
    let bare = source_id.strip_prefix("rds:").unwrap_or(source_id);
    let suffix = bare
        .strip_prefix("unplanned-global-failover-")
        .unwrap_or(bare);
    let raw = format!("{prefix}-{suffix}");
    let mut id = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let ch = if ch.is_ascii_alphanumeric() { ch } else { '-' };
        if ch == '-' && (id.is_empty() || id.ends_with('-')) {
            continue;
        }
        id.push(ch);
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id.insert_str(0, "s-");
    }
    id.truncate(255);
    while id.ends_with('-') {
        id.pop();
    }
    id
}

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
    let target_id = lost_writes_id(prefix, &source.id);
    let output = json!({ "source_snapshot": source.id, "snapshot": target_id, "region": region });
    if let Some(copy) = snaps.iter().find(|s| s.id == target_id) {
        return Ok(Executed {
            summary: format!("already done: {target_id} exists ({})", copy.status),
            output,
        });
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
        Ok(copy) => Ok(Executed {
            summary: format!(
                "{CALL} sent to {region}: {} -> {target_id} ({})",
                source.id, copy.status
            ),
            output,
        }),
        Err(e) if support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState => {
            let target_id = target_id.as_str();
            let seen = support::reread(ctx, || async move {
                let snaps = ctx.cloud.rds.list_cluster_snapshots(cluster).await?;
                Ok(snaps.iter().any(|s| s.id == target_id).then_some(()))
            })
            .await;
            match seen {
                Reread::Applied(()) => Ok(Executed {
                    summary: format!(
                        "{CALL} failed ({e}) but a re-read shows {target_id} exists: not resent"
                    ),
                    output,
                }),
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
    let Some(target_id) = executed.output.get("snapshot").and_then(Value::as_str) else {
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

/// `aurora.writer_in_region`.
pub async fn writer_in_region(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let region = f::str(fields, "region")?;
    let g = describe_global(ctx, id, &[region]).await?;
    let in_region = g.writer().is_some_and(|w| w.region == region);
    Ok(match &g.failover_state {
        Some(fs) => Observation {
            passed: false,
            observed: format!("{} ({} in progress)", writer_text(&g), state_text(fs)),
        },
        None => Observation {
            passed: in_region,
            observed: writer_text(&g),
        },
    })
}

/// `aurora.lag_below`: every secondary (or the one named) lags at most `max_lag`. An
/// unknown lag does not pass: nothing shows the data is there.
pub async fn lag_below(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let Some(max) = max_lag(ctx, fields)? else {
        return Err(ActionError::permanent(
            "no max_lag and no objectives.rpo to compare the lag with",
        ));
    };
    let secondaries: Vec<String> = match f::opt_str(fields, "cluster")? {
        Some(c) => vec![c.to_string()],
        None => {
            let g = describe_global(ctx, id, &[]).await?;
            g.members
                .iter()
                .filter(|m| !m.is_writer)
                .map(|m| m.cluster_arn.clone())
                .collect()
        }
    };
    if secondaries.is_empty() {
        return Ok(Observation {
            passed: false,
            observed: format!("{id} has no secondary"),
        });
    }
    let mut parts = Vec::new();
    let mut passed = true;
    for arn in &secondaries {
        let region = f::region_of("cluster", arn)?;
        let lag = ctx.cloud.rds.replication_lag(region, id, arn).await?;
        let (ok, text) = match lag {
            Some(l) if l <= max => (true, format!("lag {} <= {}", short(l), short(max))),
            Some(l) => (false, format!("lag {} > {}", short(l), short(max))),
            None => (false, "lag unknown (no datapoint)".to_string()),
        };
        passed &= ok;
        parts.push(if secondaries.len() == 1 {
            text
        } else {
            format!("{} {text}", arn_name(arn))
        });
    }
    Ok(Observation {
        passed,
        observed: parts.join(", "),
    })
}

/// `aurora.cluster_available`.
pub async fn cluster_available(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let arn = f::str(fields, "cluster")?;
    let c = ctx.cloud.rds.describe_cluster(arn).await?;
    Ok(Observation {
        passed: c.status == AVAILABLE,
        observed: format!(
            "{} is {} ({} instance(s))",
            arn_name(arn),
            c.status,
            c.instances
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fake::{EUW1, Harness, USE1, USW2, add_euw1};
    use super::super::{ActionErrorKind, capture, check, execute, rollback, verify};
    use super::*;
    use crate::cloud::{CloudError, CloudErrorKind, FailoverState, FailoverStatus};
    use crate::runbook::catalogue::lookup;

    fn writer_to(h: &Harness, arn: &str) {
        let mut w = h.fake.world();
        let g = w.globals.get_mut("acme-prod").unwrap();
        for m in &mut g.members {
            m.is_writer = m.cluster_arn == arn;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failover_is_sent_once_to_the_target_region_with_data_loss_allowed() {
        let h = Harness::prod();
        // The primary's region is down: nothing may depend on it.
        h.fake.world().down.insert("us-east-1".into());
        h.fake.world().lags.insert(USW2.into(), None);
        let ctx = h.ctx("failover");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(h.fake.mutations(), 1);
        assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
        assert!(
            h.fake
                .calls()
                .iter()
                .all(|c| c.region.as_deref() != Some("us-east-1")
                    || c.op == "DescribeGlobalClusters"),
            "{:?}",
            h.fake.calls()
        );
        let fs = h.fake.world().globals["acme-prod"]
            .failover_state
            .clone()
            .unwrap();
        assert!(fs.is_data_loss_allowed);
        assert!(
            done.summary
                .starts_with("FailoverGlobalCluster (AllowDataLoss) sent to us-west-2")
        );
        // A missing lag datapoint during an outage is not a refusal, but it is said.
        assert!(done.summary.contains("lag unknown"), "{}", done.summary);

        // The engine polls verify: in progress, then done.
        let o = verify(&ctx, &done).await.unwrap();
        assert!(!o.passed);
        assert_eq!(
            o.observed,
            "failing-over from acme-prod-use1 to acme-prod-usw2"
        );
        h.fake.settle();
        let o = verify(&ctx, &done).await.unwrap();
        assert!(o.passed);
        assert_eq!(o.observed, "writer acme-prod-usw2 in us-west-2");
    }

    #[tokio::test(start_paused = true)]
    async fn already_done_is_success_without_a_call() {
        let h = Harness::prod();
        writer_to(&h, USW2);
        let done = execute(&h.ctx("failover"), None).await.unwrap();
        assert_eq!(
            done.summary,
            "already done: writer acme-prod-usw2 in us-west-2"
        );
        assert_eq!(h.fake.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failover_in_progress_towards_the_target_is_not_resent() {
        let h = Harness::prod();
        h.fake
            .world()
            .globals
            .get_mut("acme-prod")
            .unwrap()
            .failover_state = Some(FailoverState {
            status: FailoverStatus::FailingOver,
            from_cluster_arn: USE1.into(),
            to_cluster_arn: USW2.into(),
            is_data_loss_allowed: true,
        });
        let done = execute(&h.ctx("failover"), None).await.unwrap();
        assert!(
            done.summary.contains("already in progress"),
            "{}",
            done.summary
        );
        assert_eq!(h.fake.mutations(), 0);
        // Towards another cluster: refused, still nothing sent.
        let e = execute(&h.ctx("failover-euw1"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Refused);
        assert!(
            e.message.contains("busy with another operation"),
            "{}",
            e.message
        );
        assert_eq!(h.fake.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_response_never_causes_a_second_failover() {
        let h = Harness::prod();
        h.fake.world().lose.insert("FailoverGlobalCluster", 1);
        let ctx = h.ctx("failover");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(done.summary.contains("re-read shows"), "{}", done.summary);
        assert!(done.summary.contains("not resent"));
        assert_eq!(h.fake.mutations(), 1);
        // The engine retries or a resumed run executes again: still one failover.
        execute(&ctx, cap.as_ref()).await.unwrap();
        h.fake.settle();
        execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(h.fake.calls_of("FailoverGlobalCluster").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_that_did_not_apply_is_retryable_and_the_next_attempt_sends_once() {
        let h = Harness::prod();
        h.fake.world().fail.insert(
            "FailoverGlobalCluster",
            vec![CloudError::new(
                CloudErrorKind::Transient,
                "FailoverGlobalCluster",
                Some("us-west-2"),
                "503",
            )],
        );
        let ctx = h.ctx("failover");
        let e = execute(&ctx, None).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(h.fake.mutations(), 1, "no resend inside one attempt");
        // The re-reads happened (three describes after the failed call).
        assert!(h.fake.calls_of("DescribeGlobalClusters").len() >= 4);
        execute(&ctx, None).await.unwrap();
        assert_eq!(h.fake.mutations(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_reported_as_such_without_resending() {
        let h = Harness::prod();
        h.fake.world().fail.insert(
            "FailoverGlobalCluster",
            vec![CloudError::new(
                CloudErrorKind::Throttling,
                "FailoverGlobalCluster",
                Some("us-west-2"),
                "Rate exceeded",
            )],
        );
        let e = execute(&h.ctx("failover"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Throttled);
        assert_eq!(h.fake.mutations(), 1);
    }

    async fn refusal(h: &Harness, step: &str) -> String {
        let e = execute(&h.ctx(step), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Refused, "{}", e.message);
        assert_eq!(h.fake.mutations(), 0);
        e.message
    }

    #[tokio::test(start_paused = true)]
    async fn failover_refusals_say_why() {
        let h = Harness::prod();
        h.fake
            .world()
            .clusters
            .get_mut(USW2)
            .unwrap()
            .engine_version = "15.2".into();
        assert_eq!(
            refusal(&h, "failover").await,
            "refusing to fail acme-prod over to acme-prod-usw2: engine versions differ: \
             acme-prod runs 16.4, acme-prod-usw2 runs 15.2"
        );

        let h = Harness::prod();
        h.fake.world().clusters.get_mut(USW2).unwrap().instances = 0;
        let m = refusal(&h, "failover").await;
        assert!(m.contains("acme-prod-usw2 has no DB instance"), "{m}");

        let h = Harness::prod();
        h.fake
            .world()
            .lags
            .insert(USW2.into(), Some(Duration::from_secs(45)));
        let m = refusal(&h, "failover").await;
        assert!(
            m.contains("lag of acme-prod-usw2 is 45s, above max_lag 30s"),
            "{m}"
        );

        let h = Harness::prod();
        {
            let mut w = h.fake.world();
            let c = w.clusters[USW2].clone();
            w.clusters.insert(EUW1.into(), c);
        }
        let m = refusal(&h, "failover-euw1").await;
        assert!(
            m.contains("acme-prod-euw1 is not a member of global cluster acme-prod (members: acme-prod-use1, acme-prod-usw2)"),
            "{m}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn preflight_reports_the_refusals_as_findings() {
        let h = Harness::prod();
        h.fake
            .world()
            .lags
            .insert(USW2.into(), Some(Duration::from_secs(45)));
        let findings = super::super::preflight(&h.ctx("failover")).await.unwrap();
        let bad: Vec<_> = findings.iter().filter(|f| !f.ok).collect();
        assert_eq!(bad.len(), 1, "{findings:?}");
        assert!(bad[0].message.contains("above max_lag 30s"));
        assert!(
            findings
                .iter()
                .any(|f| f.message == "acme-prod-usw2 has 2 instance(s)")
        );
        assert_eq!(h.fake.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn auto_promotes_the_least_lagged_eligible_secondary() {
        let h = Harness::prod();
        add_euw1(&h.fake, Some(Duration::from_secs(1)));
        let ctx = h.ctx("failover-auto");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["eu-west-1"]);
        assert_eq!(done.output["target"], EUW1);
        assert!(done.summary.contains("auto"), "{}", done.summary);
        // Done, and the resumed step recognises its own choice.
        h.fake.settle();
        let again = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            again.summary.starts_with("already done"),
            "{}",
            again.summary
        );
        assert_eq!(h.fake.mutations(), 1);

        // The least-lagged one cannot be promoted (no instance): the next one wins.
        let h = Harness::prod();
        add_euw1(&h.fake, Some(Duration::from_secs(1)));
        h.fake.world().clusters.get_mut(EUW1).unwrap().instances = 0;
        execute(&h.ctx("failover-auto"), None).await.unwrap();
        assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);

        // A known lag beats an unknown one.
        let h = Harness::prod();
        add_euw1(&h.fake, None);
        execute(&h.ctx("failover-auto"), None).await.unwrap();
        assert_eq!(h.fake.regions_of("FailoverGlobalCluster"), ["us-west-2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn switchover_goes_to_the_primary_region_and_rolls_back_to_the_captured_writer() {
        let h = Harness::prod();
        let ctx = h.ctx("switchover");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(h.fake.regions_of("SwitchoverGlobalCluster"), ["us-east-1"]);
        assert!(
            !h.fake.world().globals["acme-prod"]
                .failover_state
                .as_ref()
                .unwrap()
                .is_data_loss_allowed
        );
        assert!(
            done.summary
                .contains("sent to us-east-1 (the primary's region)"),
            "{}",
            done.summary
        );
        h.fake.settle();
        assert!(verify(&ctx, &done).await.unwrap().passed);

        let rb = ctx.step.rollback.as_ref().unwrap();
        let summary = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        // Back to acme-prod-use1, sent to the now-primary's region.
        assert_eq!(
            h.fake.regions_of("SwitchoverGlobalCluster"),
            ["us-east-1", "us-west-2"]
        );
        assert!(
            summary.contains("acme-prod-usw2 -> acme-prod-use1"),
            "{summary}"
        );
        h.fake.settle();
        let again = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        assert!(again.starts_with("already done"), "{again}");
        assert_eq!(h.fake.mutations(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollback_waits_for_the_steps_own_switchover_then_switches_back() {
        let h = Harness::prod();
        let ctx = h.ctx("switchover");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        // The switchover is still running (its gate timed out, or the process was killed
        // right after sending it) when the run is rolled back.
        let rb = ctx.step.rollback.as_ref().unwrap();
        let started = tokio::time::Instant::now();
        let finish = async {
            tokio::time::sleep(std::time::Duration::from_secs(90)).await;
            h.fake.settle();
        };
        let (summary, ()) = tokio::join!(rollback(&ctx, rb, cap.as_ref(), Some(&done)), finish);
        let summary = summary.unwrap();
        assert!(
            summary.contains("acme-prod-usw2 -> acme-prod-use1"),
            "{summary}"
        );
        assert!(started.elapsed() >= std::time::Duration::from_secs(90));
        assert_eq!(
            h.fake.regions_of("SwitchoverGlobalCluster"),
            ["us-east-1", "us-west-2"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn switchover_refuses_a_degraded_topology() {
        let h = Harness::prod();
        h.fake.world().down.insert("us-east-1".into());
        let m = refusal(&h, "switchover").await;
        assert!(m.contains("the topology is degraded"), "{m}");
        assert!(
            m.contains("the primary's region us-east-1 is not answering"),
            "{m}"
        );
        assert!(m.contains("in an outage use aurora.failover"), "{m}");

        let h = Harness::prod();
        h.fake.world().clusters.get_mut(USW2).unwrap().status = "modifying".into();
        let m = refusal(&h, "switchover").await;
        assert!(
            m.contains("acme-prod-usw2 in us-west-2 is modifying"),
            "{m}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rollback_action_runs_with_its_own_fields() {
        let h = Harness::prod();
        add_euw1(&h.fake, Some(Duration::from_secs(1)));
        let ctx = h.ctx("failover-euw1");
        let done = execute(&ctx, None).await.unwrap();
        h.fake.settle();
        let rb = ctx.step.rollback.as_ref().unwrap();
        rollback(&ctx, rb, None, Some(&done)).await.unwrap();
        // The rollback is a switchover back to use1, sent to the new primary's region.
        assert_eq!(h.fake.regions_of("SwitchoverGlobalCluster"), ["eu-west-1"]);
        h.fake.settle();
        assert_eq!(
            h.fake.world().globals["acme-prod"]
                .writer()
                .unwrap()
                .cluster_arn,
            USE1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn detach_promote_is_sent_to_the_target_region_once() {
        let h = Harness::prod();
        h.fake.world().lose.insert("RemoveFromGlobalCluster", 1);
        let ctx = h.ctx("detach");
        let done = execute(&ctx, None).await.unwrap();
        assert!(done.summary.contains("not resent"), "{}", done.summary);
        assert_eq!(h.fake.regions_of("RemoveFromGlobalCluster"), ["us-west-2"]);
        let again = execute(&ctx, None).await.unwrap();
        assert!(
            again.summary.starts_with("already done"),
            "{}",
            again.summary
        );
        assert_eq!(h.fake.mutations(), 1);
        let o = verify(&ctx, &done).await.unwrap();
        assert!(o.passed);
        assert_eq!(o.observed, "acme-prod-usw2 stands alone, available");

        // The writer is never detached.
        let h = Harness::prod();
        writer_to(&h, USW2);
        let m = refusal(&h, "detach").await;
        assert!(m.contains("is the writer of acme-prod"), "{m}");
    }

    fn snapshot(id: &str, kind: &str, status: &str) -> (String, ClusterSnapshot) {
        (
            USE1.into(),
            ClusterSnapshot {
                id: id.into(),
                cluster_id: "acme-prod-use1".into(),
                snapshot_type: kind.into(),
                status: status.into(),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_newest_unplanned_failover_snapshot_is_copied_under_a_deterministic_name() {
        let h = Harness::prod();
        let ctx = h.ctx("snapshot");
        // Before Aurora took it: retry later.
        let e = execute(&ctx, None).await.unwrap_err();
        assert!(
            e.is_retryable() && e.message.contains("no rds:unplanned-global-failover-*"),
            "{}",
            e.message
        );
        h.fake.world().snapshots.extend([
            snapshot(
                "rds:unplanned-global-failover-acme-prod-use1-2024-05-01-10-00",
                "automated",
                "available",
            ),
            snapshot(
                "rds:unplanned-global-failover-acme-prod-use1-2024-06-01-09-00",
                "automated",
                "available",
            ),
            snapshot(
                "rds:acme-prod-use1-2024-06-02-03-00",
                "automated",
                "available",
            ),
        ]);
        h.fake.world().lose.insert("CopyDBClusterSnapshot", 1);
        let done = execute(&ctx, None).await.unwrap();
        assert_eq!(h.fake.regions_of("CopyDBClusterSnapshot"), ["us-east-1"]);
        assert_eq!(
            done.output["snapshot"],
            "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00"
        );
        assert_eq!(
            done.output["source_snapshot"],
            "rds:unplanned-global-failover-acme-prod-use1-2024-06-01-09-00"
        );
        let again = execute(&ctx, None).await.unwrap();
        assert!(
            again.summary.starts_with("already done"),
            "{}",
            again.summary
        );
        assert_eq!(h.fake.mutations(), 1);
        let o = verify(&ctx, &done).await.unwrap();
        assert!(!o.passed);
        assert_eq!(
            o.observed,
            "drpilot-lost-writes-acme-prod-use1-2024-06-01-09-00 is creating"
        );
    }

    #[test]
    fn lost_writes_ids_are_valid_snapshot_identifiers() {
        assert_eq!(
            lost_writes_id("keep", "rds:unplanned-global-failover-db-2024-06-01-09-00"),
            "keep-db-2024-06-01-09-00"
        );
        assert_eq!(lost_writes_id("9x__y-", "rds:odd:id--"), "s-9x-y-odd-id");
        assert!(lost_writes_id("a", &"b".repeat(400)).len() <= 255);
    }

    #[tokio::test(start_paused = true)]
    async fn aurora_checks_observe_briefly() {
        let h = Harness::prod();
        let ctx = h.ctx("writer-in-west");
        let spec = lookup("aurora.writer_in_region").unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert!(!o.passed);
        assert_eq!(o.observed, "writer acme-prod-use1 in us-east-1");
        writer_to(&h, USW2);
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert!(o.passed);
        assert_eq!(o.observed, "writer acme-prod-usw2 in us-west-2");

        let ctx = h.ctx("lag");
        let spec = lookup("aurora.lag_below").unwrap();
        h.fake
            .world()
            .lags
            .insert(USW2.into(), Some(Duration::from_millis(4200)));
        writer_to(&h, USE1);
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!((o.passed, o.observed.as_str()), (true, "lag 4.2s <= 30s"));
        h.fake.world().lags.insert(USW2.into(), None);
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (false, "lag unknown (no datapoint)")
        );
        // As a step action, false is a retryable failure.
        let e = execute(&ctx, None).await.unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.message, "not yet: lag unknown (no datapoint)");

        let ctx = h.ctx("cluster-up");
        let spec = lookup("aurora.cluster_available").unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (true, "acme-prod-usw2 is available (2 instance(s))")
        );
        assert_eq!(h.fake.mutations(), 0);
    }
}
