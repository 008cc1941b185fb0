//! ElastiCache (Valkey) global datastores: failover, its last-resort fallback, and the
//! datastore checks.
//!
//! `FailoverGlobalReplicationGroup` is sent to the target's region (a surviving
//! member's) whatever the datastore's status. AWS's documents disagree on when it is
//! accepted: the user guide ("Promoting the secondary cluster to primary") allows a
//! promotion when the primary or its region is unavailable, "anytime, even if other
//! modifications are in progress"; the API reference's error text refuses it while the
//! datastore is not available. So the promotion is always tried first and AWS decides.
//! Only when it is refused, the primary's region cannot be reached, and the runbook
//! allows it, is the target disassociated instead: it then stands alone as a primary
//! and the global datastore is broken until failback rebuilds it, which every summary
//! says plainly.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::support::{self, Reread};
use super::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{
    CloudError, CloudErrorKind, DatastoreMember, GlobalDatastore, MemberRole, ReplicationGroup,
};
use crate::runbook::model::{FieldValue, Fields};

const AVAILABLE: &str = "available";
/// A global datastore's status while a failover or disassociation is under way.
const MODIFYING: &str = "modifying";
/// A member leaving its global datastore (GlobalReplicationGroupMember.Status).
const DISASSOCIATING: &str = "disassociating";
/// How often a resumed step re-reads a datastore it found modifying.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_secs(5);

async fn describe(
    ctx: &StepContext<'_>,
    id: &str,
    preferred: &[&str],
) -> Result<GlobalDatastore, ActionError> {
    let regions = support::regions_to_ask(ctx, preferred);
    let ec = &ctx.cloud.elasticache;
    support::first_answer(
        &regions,
        &format!("global datastore {id}"),
        |r| async move { ec.describe_global_datastore(&r, id).await },
    )
    .await
}

fn find<'a>(ds: &'a GlobalDatastore, rg: &str, region: &str) -> Option<&'a DatastoreMember> {
    ds.members
        .iter()
        .find(|m| m.replication_group_id == rg && m.region == region)
}

fn primary_text(ds: &GlobalDatastore) -> String {
    match ds.primary() {
        Some(p) => format!("primary {} in {}", p.replication_group_id, p.region),
        None => format!("{} has no single primary", ds.id),
    }
}

/// Member statuses that mean "healthy member" (`associated` is what AWS reports for a
/// member in service; `available` is accepted too).
fn member_ok(m: &DatastoreMember) -> bool {
    matches!(m.status.as_str(), "associated" | "available")
}

/// Whether the primary's region does not answer at all: the one case where the
/// disassociation fallback is allowed.
async fn primary_unreachable(ctx: &StepContext<'_>, ds: &GlobalDatastore) -> Option<String> {
    let p = ds.primary()?;
    match ctx
        .cloud
        .elasticache
        .describe_global_datastore(&p.region, &ds.id)
        .await
    {
        Err(e) if e.kind == CloudErrorKind::Unreachable => Some(p.region.clone()),
        _ => None,
    }
}

/// The "before" state: who was primary, and every member (a disassociated target is
/// recognised by having been one).
pub async fn capture(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let region = f::str(fields, "target_region")?;
    let ds = describe(ctx, id, &[region]).await?;
    let member = |m: &DatastoreMember| Member {
        replication_group: m.replication_group_id.clone(),
        region: m.region.clone(),
    };
    Ok(DatastoreCapture {
        global_datastore: id.to_string(),
        primary: ds.primary().map(member),
        members: ds.members.iter().map(member).collect(),
    }
    .captured())
}

/// The capture of `valkey.failover`: who was primary, and every member.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct DatastoreCapture {
    global_datastore: String,
    primary: Option<Member>,
    members: Vec<Member>,
}

/// A member, as captured and reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Member {
    replication_group: String,
    region: String,
}

impl Journaled for DatastoreCapture {}

impl DatastoreCapture {
    fn of(captured: Option<&Captured>) -> Option<Self> {
        captured.and_then(|c| Self::read(&c.0))
    }
}

fn was_member(captured: Option<&Captured>, rg: &str, region: &str) -> bool {
    DatastoreCapture::of(captured).is_some_and(|c| {
        c.members
            .iter()
            .any(|m| m.replication_group == rg && m.region == region)
    })
}

/// `valkey.failover`.
pub async fn failover(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Executed, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let region = f::str(fields, "target_region")?;
    let rg = f::str(fields, "target_replication_group")?;
    let allow_disassociate = f::bool_or(fields, "allow_disassociate", false)?;
    // On a retry, or after a crash in the middle of this step, a modifying datastore may
    // be carrying out the call an earlier attempt sent. A first attempt has sent
    // nothing: whatever modifies the datastore is someone else's, and the promotion is
    // sent all the same.
    let settle = ctx.interrupted;
    failover_to(ctx, id, region, rg, allow_disassociate, captured, settle).await
}

async fn failover_to(
    ctx: &StepContext<'_>,
    id: &str,
    region: &str,
    rg: &str,
    allow_disassociate: bool,
    captured: Option<&Captured>,
    settle: bool,
) -> Result<Executed, ActionError> {
    const CALL: &str = "FailoverGlobalReplicationGroup";
    let mut ds = describe(ctx, id, &[region]).await?;
    // With `settle`, a modifying datastore may be carrying out a failover (or
    // disassociation) this step itself sent, and the API does not say which member an
    // operation in progress favours: its primary is still the old one until it
    // completes. Wait until it settles and judge what it left, rather than failing the
    // step for a change that is its own, or calling a rollback "already done" while the
    // step's own failover is still moving the primary away. The step's (or rollback's)
    // timeout bounds the wait.
    if settle {
        while ds.status == MODIFYING {
            ctx.clock.sleep(SETTLE_POLL).await;
            ds = describe(ctx, id, &[region]).await?;
        }
    }
    let mut output = FailoverOutput {
        global_datastore: id.to_string(),
        target_region: region.to_string(),
        target_replication_group: rg.to_string(),
        previous_primary: ds.primary().map(|p| Member {
            replication_group: p.replication_group_id.clone(),
            region: p.region.clone(),
        }),
        disassociated: false,
    };
    let Some(member) = find(&ds, rg, region) else {
        if was_member(captured, rg, region) {
            output.disassociated = true;
            return Ok(output.executed(format!(
                "already done: {rg} was disassociated from {id} and stands alone as a primary"
            )));
        }
        return Err(ActionError::refused(format!(
            "{rg} in {region} is not a member of global datastore {id}"
        )));
    };
    if member.role == MemberRole::Primary {
        return Ok(output.executed(format!("already done: {}", primary_text(&ds))));
    }
    if member.status == DISASSOCIATING {
        // Leaving the datastore: it can never become its primary, only stand alone.
        // With allow_disassociate that is this step's own last resort (sent by an
        // attempt whose answer was lost, or by a process that crashed): never send it
        // twice, AWS refuses the second one.
        if allow_disassociate {
            output.disassociated = true;
            return Ok(output.executed(format!(
                "DisassociateGlobalReplicationGroup already under way ({rg} in {region} is \
                 disassociating from {id}): not resent; {rg} will stand alone as a primary"
            )));
        }
        return Err(ActionError::refused(format!(
            "{rg} in {region} is disassociating from global datastore {id}: it will stand \
             alone and can no longer be failed over to"
        )));
    }
    // The promotion is sent whatever the datastore's status: the user guide allows it
    // "anytime, even if other modifications are in progress" (the way out of a regional
    // outage), the API reference's error text says a datastore that is not available
    // refuses it. AWS decides; only its refusal leads to the fallback.
    let was = (ds.status != AVAILABLE).then(|| ds.status.clone());
    let e = match ctx
        .cloud
        .elasticache
        .failover_global_datastore(region, id, region, rg)
        .await
    {
        Ok(()) => {
            let while_busy = was
                .as_deref()
                .map(|s| format!(" while {id} was {s}"))
                .unwrap_or_default();
            return Ok(output.executed(format!(
                "{CALL} sent to {region}{while_busy}: {rg} becomes the primary (was {})",
                primary_text(&ds)
            )));
        }
        Err(e) => e,
    };
    if matches!(
        e.kind,
        CloudErrorKind::Throttling
            | CloudErrorKind::AccessDenied
            | CloudErrorKind::InvalidRequest
            | CloudErrorKind::NotFound
    ) {
        return Err(e.into());
    }
    // The response is lost or the call was refused: read before doing anything else.
    let lost = support::outcome_unknown(&e);
    // The datastore's status as the last re-read saw it.
    let status = std::cell::RefCell::new(ds.status.clone());
    let seen = support::reread(ctx, || {
        let status = &status;
        async move {
            let ds = describe(ctx, id, &[region]).await?;
            status.replace(ds.status.clone());
            let primary = find(&ds, rg, region).is_some_and(|m| m.role == MemberRole::Primary);
            Ok(if primary {
                Some(Seen::Primary(primary_text(&ds)))
            } else if lost && ds.status != AVAILABLE {
                Some(Seen::Modifying(ds.status))
            } else {
                None
            })
        }
    })
    .await;
    let status = status.into_inner();
    match seen {
        Reread::Applied(Seen::Primary(text)) => Ok(output.executed(format!(
            "{CALL} failed ({e}) but a re-read shows {text}: not resent"
        ))),
        // The datastore was available when the call was sent: what modifies it now is
        // that call.
        Reread::Applied(Seen::Modifying(now)) if was.is_none() => Ok(output.executed(format!(
            "{CALL} failed ({e}) but a re-read shows {id} {now} (failover under way): not \
             resent"
        ))),
        // It was already modifying: a re-read cannot tell whether the call was taken.
        // Never a disassociation on this evidence; the next attempt (a retry) waits
        // for the datastore to settle and judges what it left.
        Reread::Applied(Seen::Modifying(now)) => Err(ActionError::retryable(format!(
            "{CALL} outcome unknown ({e}): {id} was already {} before it was sent and is \
             {now}, so a re-read cannot tell whether it was accepted; the next attempt \
             waits for it to settle before sending anything",
            was.as_deref().unwrap_or(MODIFYING)
        ))),
        Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
        // Not taken, but not refused either (a 5xx, a connection that failed): the
        // promotion may well work on the next attempt, so it is retried, never answered
        // with the last resort that breaks the global datastore.
        Reread::NotApplied if e.kind != CloudErrorKind::InvalidState => Err(e.into()),
        Reread::NotApplied => {
            let busy = status != AVAILABLE;
            match primary_unreachable(ctx, &ds).await {
                Some(down) if allow_disassociate => {
                    let why = format!(
                        "{CALL} was refused ({e}) and the primary's region {down} is unreachable"
                    );
                    disassociate(ctx, id, region, rg, &why, output).await
                }
                Some(down) => Err(ActionError {
                    kind: if busy {
                        super::ActionErrorKind::Retryable
                    } else {
                        super::ActionErrorKind::Refused
                    },
                    message: format!(
                        "{CALL} was refused ({e}): the primary's region {down} is unreachable{}; \
                         allow_disassociate = true would disassociate {rg} so it stands alone \
                         (this breaks the global datastore)",
                        if busy {
                            format!(" and {id} is {status} (retried while it is)")
                        } else {
                            String::new()
                        }
                    ),
                    cloud: Some(Box::new(e)),
                }),
                // Refused while something else modifies the datastore: that operation
                // may be why; try again once it settles.
                None if busy && e.kind == CloudErrorKind::InvalidState => Err(ActionError {
                    kind: super::ActionErrorKind::Retryable,
                    message: format!(
                        "global datastore {id} is {status}: {CALL} was refused ({e}); \
                             retried until it settles"
                    ),
                    cloud: Some(Box::new(e)),
                }),
                None => Err(e.into()),
            }
        }
    }
}

/// What a re-read after a failed `FailoverGlobalReplicationGroup` saw.
enum Seen {
    /// The target is the primary (the text names it).
    Primary(String),
    /// The datastore is modifying (its status), after a lost answer.
    Modifying(String),
}

/// What `valkey.failover` reports, typed (its journaled output).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct FailoverOutput {
    global_datastore: String,
    target_region: String,
    target_replication_group: String,
    /// The primary before the step, if the datastore had one.
    previous_primary: Option<Member>,
    /// The target was disassociated to stand alone (the global datastore is broken).
    disassociated: bool,
}

impl Journaled for FailoverOutput {}

/// The last resort: DisassociateGlobalReplicationGroup of the target, sent to its
/// (surviving) region.
async fn disassociate(
    ctx: &StepContext<'_>,
    id: &str,
    region: &str,
    rg: &str,
    why: &str,
    mut output: FailoverOutput,
) -> Result<Executed, ActionError> {
    const CALL: &str = "DisassociateGlobalReplicationGroup";
    let broken = format!(
        "{rg} now stands alone as a primary and global datastore {id} is broken (failback \
         must rebuild it)"
    );
    output.disassociated = true;
    let e: CloudError = match ctx
        .cloud
        .elasticache
        .disassociate_global_datastore(region, id, rg, region)
        .await
    {
        Ok(()) => {
            return Ok(output.executed(format!("{why}: {CALL} of {rg} sent to {region}; {broken}")));
        }
        Err(e) => e,
    };
    if !(support::outcome_unknown(&e) || e.kind == CloudErrorKind::InvalidState) {
        return Err(e.into());
    }
    // Applied once the member is gone or on its way out (`disassociating`: the
    // datastore is modifying until it completes).
    let status = std::cell::RefCell::new(String::from(AVAILABLE));
    let seen = support::reread(ctx, || {
        let status = &status;
        async move {
            let ds = describe(ctx, id, &[region]).await?;
            status.replace(ds.status.clone());
            Ok(match find(&ds, rg, region) {
                None => Some("disassociated"),
                Some(m) if m.status == DISASSOCIATING => Some("disassociating"),
                Some(_) => None,
            })
        }
    })
    .await;
    let status = status.into_inner();
    match seen {
        Reread::Applied(state) => Ok(output.executed(format!(
            "{why}: {CALL} failed ({e}) but a re-read shows {rg} {state}: not resent; \
             {broken}"
        ))),
        // Refused while another operation modifies the datastore: the next attempt
        // reads state again (and tries the promotion first again).
        Reread::NotApplied if e.kind == CloudErrorKind::InvalidState && status != AVAILABLE => {
            Err(ActionError {
                kind: super::ActionErrorKind::Retryable,
                message: format!(
                    "{why}; {CALL} of {rg} was refused too ({e}) while global datastore {id} \
                     is {status}: retried until it settles"
                ),
                cloud: Some(Box::new(e)),
            })
        }
        Reread::NotApplied => Err(e.into()),
        Reread::Unknown(read) => Err(support::unknown_outcome(CALL, &e, &read)),
    }
}

/// Preflight of `valkey.failover`.
pub async fn preflight(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let region = f::str(fields, "target_region")?;
    let rg = f::str(fields, "target_replication_group")?;
    let ds = describe(ctx, id, &[region]).await?;
    let mut out = vec![Finding::ok(format!(
        "global datastore {id}: {}, {}",
        ds.status,
        primary_text(&ds)
    ))];
    match find(&ds, rg, region) {
        None => out.push(Finding::block(format!(
            "{rg} in {region} is not a member of {id}"
        ))),
        Some(m) if m.role == MemberRole::Primary => out.push(Finding::ok(format!(
            "{rg} already is the primary: nothing to do"
        ))),
        Some(m) => out.push(Finding::ok_if(
            member_ok(m),
            format!("{rg} in {region} is a secondary ({})", m.status),
        )),
    }
    out.extend(member_shapes(ctx, &ds).await);
    if f::bool_or(fields, "allow_disassociate", false)? {
        out.push(Finding::ok(format!(
            "allow_disassociate: if the failover is refused because the primary's region \
                 is unreachable, {rg} is disassociated (breaks the global datastore)"
        )));
    }
    Ok(out)
}

/// Whether the members of a Global Datastore have the shape it requires them to share:
/// cluster mode (`ClusterEnabled`), shard count (node groups) and node type. Each
/// member is read in its own region (DescribeReplicationGroups), all at once. A member
/// that cannot be read is a warning (its shape is unknown), never a block: in an
/// outage the primary's region is the one that does not answer.
async fn member_shapes(ctx: &StepContext<'_>, ds: &GlobalDatastore) -> Vec<Finding> {
    let ec = &ctx.cloud.elasticache;
    let reads = ds.members.iter().map(|m| async move {
        let read = ec
            .describe_replication_group(&m.region, &m.replication_group_id)
            .await;
        (m, read)
    });
    let mut out = Vec::new();
    let mut known = Vec::new();
    for (m, read) in futures_util::future::join_all(reads).await {
        match read {
            Ok(rg) => known.push((m, rg)),
            Err(e) => out.push(Finding::warn(format!(
                "the shape of {} in {} is unknown (not compared): {}",
                m.replication_group_id, m.region, e.message
            ))),
        }
    }
    let Some((_, first)) = known.first() else {
        return out;
    };
    let name = |m: &DatastoreMember| format!("{} ({})", m.replication_group_id, m.region);
    fn mode(rg: &ReplicationGroup) -> String {
        match rg.cluster_enabled {
            Some(true) => "enabled".into(),
            Some(false) => "disabled".into(),
            None => "not reported".into(),
        }
    }
    fn shards(rg: &ReplicationGroup) -> String {
        rg.shards.to_string()
    }
    fn node_type(rg: &ReplicationGroup) -> String {
        rg.node_type
            .clone()
            .unwrap_or_else(|| "not reported".into())
    }
    /// What a member is compared on: a name, and how to read it.
    type Aspect = (&'static str, fn(&ReplicationGroup) -> String);
    let aspects: [Aspect; 3] = [
        ("cluster mode", mode),
        ("shard count", shards),
        ("node type", node_type),
    ];
    let mut differ = Vec::new();
    for (what, of) in &aspects {
        if known.iter().any(|(_, rg)| of(rg) != of(first)) {
            let each: Vec<String> = known
                .iter()
                .map(|(m, rg)| format!("{} {}", name(m), of(rg)))
                .collect();
            differ.push(format!("{what}: {}", each.join(", ")));
        }
    }
    if differ.is_empty() {
        let compared = if known.len() == 1 {
            format!("only {} read", name(known[0].0))
        } else {
            format!("all {} members read", known.len())
        };
        out.push(Finding::ok(format!(
            "members match as a Global Datastore requires: cluster mode {}, {} shard{}, node \
             type {} ({compared})",
            mode(first),
            first.shards,
            if first.shards == 1 { "" } else { "s" },
            node_type(first),
        )));
    } else {
        out.push(Finding::block(format!(
            "the members of {} differ, which a Global Datastore does not allow (cluster mode, \
             shard count and node type must match): {}",
            ds.id,
            differ.join("; ")
        )));
    }
    out
}

/// Verify of `valkey.failover`: the target is the primary (or stands alone, when the
/// step disassociated it).
pub async fn verify(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let region = f::str(fields, "target_region")?;
    let rg = f::str(fields, "target_replication_group")?;
    target_is_primary(ctx, id, region, rg, Some(executed)).await
}

/// Whether the step's result says it disassociated the target (its typed output's
/// `disassociated`; anything else reads as no).
fn disassociated(executed: Option<&Executed>) -> bool {
    executed
        .and_then(|e| FailoverOutput::read(&e.output))
        .is_some_and(|o| o.disassociated)
}

async fn target_is_primary(
    ctx: &StepContext<'_>,
    id: &str,
    region: &str,
    rg: &str,
    executed: Option<&Executed>,
) -> Result<Observation, ActionError> {
    let ds = describe(ctx, id, &[region]).await?;
    if disassociated(executed) {
        let gone = find(&ds, rg, region).is_none();
        return Ok(Observation {
            passed: gone,
            observed: if gone {
                format!("{rg} in {region} stands alone as a primary (disassociated from {id})")
            } else {
                format!("{rg} still a member of {id}, waiting for the disassociation")
            },
        });
    }
    let primary = find(&ds, rg, region).is_some_and(|m| m.role == MemberRole::Primary);
    Ok(Observation {
        passed: primary && ds.status == AVAILABLE,
        observed: format!("{}, {}", primary_text(&ds), ds.status),
    })
}

/// The built-in inverse: fail back to the member that was primary before the step. A
/// disassociation cannot be undone this way; it says so instead.
pub async fn fail_back(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: &Captured,
    executed: Option<&Executed>,
) -> Result<String, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    if disassociated(executed) {
        return Err(ActionError::permanent(format!(
            "the step disassociated {} from {id}: the global datastore must be rebuilt \
             (re-add a member) before it can fail back",
            f::str(fields, "target_replication_group")?
        )));
    }
    let Some(previous) = DatastoreCapture::of(Some(captured)).and_then(|c| c.primary) else {
        return Err(ActionError::permanent(format!(
            "the capture of {id} names no previous primary to fail back to"
        )));
    };
    let (rg, region) = (
        previous.replication_group.as_str(),
        previous.region.as_str(),
    );
    // The step's own failover may still be under way (its gate timed out, or a process
    // was killed right after sending it): judge only what it leaves.
    failover_to(ctx, id, region, rg, false, Some(captured), true)
        .await
        .map(|e| e.summary)
}

/// Whether the built-in rollback is done: the captured primary is primary again.
pub async fn verify_failed_back(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: Option<&Captured>,
) -> Result<Observation, ActionError> {
    let Some(previous) = DatastoreCapture::of(captured).and_then(|c| c.primary) else {
        return Err(ActionError::permanent(
            "the capture names no previous primary",
        ));
    };
    let mut back = fields.clone();
    back.insert("target_region".into(), FieldValue::Str(previous.region));
    back.insert(
        "target_replication_group".into(),
        FieldValue::Str(previous.replication_group),
    );
    let executed = Executed {
        summary: String::new(),
        output: Value::Null,
    };
    verify(ctx, &back, &executed).await
}

/// `valkey.primary_in_region`. As the gate of a step that disassociated its target,
/// the standalone target in the region counts: it is the primary applications use.
pub async fn primary_in_region(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: Option<&Executed>,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let region = f::str(fields, "region")?;
    if disassociated(executed) {
        let out = executed.map(|e| &e.output);
        let rg = out
            .and_then(|o| o.get("target_replication_group"))
            .and_then(Value::as_str);
        let target_region = out
            .and_then(|o| o.get("target_region"))
            .and_then(Value::as_str);
        if let (Some(rg), Some(target_region)) = (rg, target_region)
            && target_region == region
        {
            return target_is_primary(ctx, id, region, rg, executed).await;
        }
    }
    let ds = describe(ctx, id, &[region]).await?;
    Ok(Observation {
        passed: ds.primary().is_some_and(|p| p.region == region),
        observed: primary_text(&ds),
    })
}

/// `valkey.available`: the datastore and every member are in service.
pub async fn available(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_datastore")?;
    let ds = describe(ctx, id, &[]).await?;
    let unhealthy: Vec<String> = ds
        .members
        .iter()
        .filter(|m| !member_ok(m))
        .map(|m| format!("{} in {} is {}", m.replication_group_id, m.region, m.status))
        .collect();
    let passed = ds.status == AVAILABLE && unhealthy.is_empty() && !ds.members.is_empty();
    let observed = if unhealthy.is_empty() {
        format!(
            "{id} {}, {} member(s) in service",
            ds.status,
            ds.members.len()
        )
    } else {
        format!("{id} {}; {}", ds.status, unhealthy.join(", "))
    };
    Ok(Observation { passed, observed })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{DATASTORE, Harness, RUNBOOK};
    use super::super::{ActionErrorKind, capture, check, execute, rollback, verify};
    use crate::cloud::{CloudErrorKind, MemberRole};
    use crate::runbook::catalogue::lookup;

    #[test]
    fn a_failovers_output_keeps_its_journaled_form_and_reads_back() {
        let out = super::FailoverOutput {
            global_datastore: "ds".into(),
            target_region: "us-west-2".into(),
            target_replication_group: "rg-usw2".into(),
            previous_primary: Some(super::Member {
                replication_group: "rg-use1".into(),
                region: "us-east-1".into(),
            }),
            disassociated: true,
        };
        let done = super::Journaled::executed(&out, "x");
        assert_eq!(
            done.output,
            serde_json::json!({
                "global_datastore": "ds", "target_region": "us-west-2",
                "target_replication_group": "rg-usw2",
                "previous_primary": {"replication_group": "rg-use1", "region": "us-east-1"},
                "disassociated": true,
            })
        );
        assert!(super::disassociated(Some(&done)));
        let other = super::Executed {
            summary: String::new(),
            output: serde_json::json!({"updated": 1}),
        };
        assert!(!super::disassociated(Some(&other)) && !super::disassociated(None));
    }

    /// Long enough for any operation of the world to complete (a Valkey failover or
    /// disassociation takes about a minute).
    const SETTLE: Duration = Duration::from_secs(600);

    /// The world of [`RUNBOOK`]: the datastore's primary `acme-sessions-use1` in
    /// us-east-1, its secondary `acme-sessions-usw2` in us-west-2.
    fn harness() -> Harness {
        Harness::prod()
    }

    /// The same, with a third member, `acme-sessions-euw1` in eu-west-1.
    fn three_members() -> Harness {
        three_members_with("")
    }

    /// Three members, in a world shaped by a `--sim-config` text.
    fn three_members_with(sim_config: &str) -> Harness {
        let runbook = format!(
            "{}\n[[step]]\nid = \"vk-euw1\"\naction = \"valkey.check\"\n\
             host = \"master.acme-sessions-euw1.x1y2z3.euw1.cache.amazonaws.com\"\n\
             expect = \"replica\"\n",
            RUNBOOK
        );
        Harness::new(&runbook, sim_config)
    }

    /// The user guide's reading of FailoverGlobalReplicationGroup: a promotion is
    /// accepted while the datastore is not available and whatever members are
    /// unreachable.
    const ALLOW: &str = "[elasticache]\nfailover_with_unreachable_members = \"allow\"\n";
    /// The API reference's (the world's default), said explicitly.
    const REFUSE: &str = "[elasticache]\nfailover_with_unreachable_members = \"refuse\"\n";

    /// The replication group each DisassociateGlobalReplicationGroup the world
    /// received named, in order.
    fn disassociated_groups(h: &Harness) -> Vec<String> {
        h.world
            .op_log()
            .iter()
            .filter(|o| o.operation == "DisassociateGlobalReplicationGroup")
            .map(|o| {
                o.args["replication_group"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// The position of each mutating call, by operation, in arrival order.
    fn mutating_calls(h: &Harness) -> Vec<&'static str> {
        h.calls()
            .into_iter()
            .filter(|c| c.mutating)
            .map(|c| c.operation)
            .collect()
    }

    /// Each member's role now: "GROUP REGION ROLE".
    fn roles(h: &Harness) -> Vec<String> {
        h.world.with_state(|s| {
            s.datastore_members(DATASTORE)
                .into_iter()
                .map(|m| format!("{} {} {:?}", m.id, m.region, m.role))
                .collect()
        })
    }

    /// The primary member now: "GROUP REGION".
    fn primary(h: &Harness) -> String {
        h.world.with_state(|s| {
            let p = s
                .datastore_members(DATASTORE)
                .into_iter()
                .find(|m| m.role == MemberRole::Primary)
                .expect("a primary");
            format!("{} {}", p.id, p.region)
        })
    }

    /// Another operation starts modifying the datastore, leaving its primary where it
    /// is: the disassociation of the eu-west-1 member. Returns when it completes.
    async fn disassociating_euw1(h: &Harness) -> Duration {
        h.cloud
            .elasticache
            .disassociate_global_datastore(
                "eu-west-1",
                DATASTORE,
                "acme-sessions-euw1",
                "eu-west-1",
            )
            .await
            .unwrap();
        completes(h)
    }

    /// When the datastore's operation in progress completes (virtual time).
    fn completes(h: &Harness) -> Duration {
        h.world
            .with_state(|s| s.datastores[DATASTORE].op.as_ref().map(|op| op.completes))
            .expect("an operation in progress")
    }

    #[tokio::test(start_paused = true)]
    async fn failover_is_sent_to_the_target_region_and_rolls_back_to_the_captured_primary() {
        let h = harness();
        let ctx = h.ctx("valkey-strict");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(
            h.regions_of("FailoverGlobalReplicationGroup"),
            ["us-west-2"]
        );
        assert_eq!(
            done.summary,
            "FailoverGlobalReplicationGroup sent to us-west-2: acme-sessions-usw2 becomes the \
             primary (was primary acme-sessions-use1 in us-east-1)"
        );
        // The failover takes a while: verify passes once it is done.
        let o = verify(&ctx, &done).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (false, "primary acme-sessions-use1 in us-east-1, modifying")
        );
        h.wait(SETTLE).await;
        assert_eq!(primary(&h), "acme-sessions-usw2 us-west-2");
        let o = verify(&ctx, &done).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (true, "primary acme-sessions-usw2 in us-west-2, available")
        );

        // Already primary: nothing sent.
        let again = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(
            again.summary,
            "already done: primary acme-sessions-usw2 in us-west-2"
        );
        assert_eq!(h.mutations(), 1);

        let rb = ctx.step.rollback.as_ref().unwrap();
        rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        assert_eq!(
            h.regions_of("FailoverGlobalReplicationGroup"),
            ["us-west-2", "us-east-1"]
        );
        h.wait(SETTLE).await;
        assert_eq!(primary(&h), "acme-sessions-use1 us-east-1");
        let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        assert!(s.starts_with("already done"), "{s}");
        assert_eq!(h.mutations(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_resumed_after_a_crash_waits_for_the_failover_already_under_way() {
        let h = harness();
        let mut ctx = h.ctx("valkey-strict");
        let cap = capture(&ctx).await.unwrap();
        // The process that sent FailoverGlobalReplicationGroup died before journaling it:
        // the datastore is modifying, its primary not moved yet.
        h.cloud
            .elasticache
            .failover_global_datastore("us-west-2", DATASTORE, "us-west-2", "acme-sessions-usw2")
            .await
            .unwrap();
        let settled = completes(&h);
        // Had the step not been marked interrupted, it would take itself for a first
        // attempt (which sent nothing, so what modifies the datastore is someone
        // else's): it sends the promotion whatever the datastore's status, the world
        // (the API reference's reading) refuses it while modifying, and the step waits
        // for the backoff.
        let e = execute(&ctx, cap.as_ref()).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Retryable, "{e}");
        assert_eq!(
            h.mutations(),
            2,
            "the earlier process's, and the refused one"
        );
        // Resumed after the crash, it waits for the operation to settle and sees its own
        // failover done: nothing is sent.
        ctx.interrupted = true;
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(
            done.summary,
            "already done: primary acme-sessions-usw2 in us-west-2"
        );
        assert!(h.clock.elapsed() >= settled);
        assert_eq!(h.mutations(), 2, "nothing more");
        assert_eq!(h.applied(), 1, "the earlier process's failover only");
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_step_still_fails_over_when_what_settled_was_not_its_change() {
        let h = three_members();
        let mut ctx = h.ctx("valkey-strict");
        let cap = capture(&ctx).await.unwrap();
        // Whatever was modifying the datastore leaves the primary where it was.
        let settled = disassociating_euw1(&h).await;
        ctx.interrupted = true;
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            done.summary
                .starts_with("FailoverGlobalReplicationGroup sent to us-west-2"),
            "{}",
            done.summary
        );
        assert!(h.clock.elapsed() >= settled);
        assert_eq!(
            h.regions_of("FailoverGlobalReplicationGroup"),
            ["us-west-2"]
        );
        assert_eq!(
            h.mutations(),
            2,
            "the disassociation, then the step's failover"
        );
        h.wait(SETTLE).await;
        assert_eq!(primary(&h), "acme-sessions-usw2 us-west-2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_response_is_not_resent() {
        let h = harness();
        h.lose("FailoverGlobalReplicationGroup", 1);
        let ctx = h.ctx("valkey-strict");
        let done = execute(&ctx, None).await.unwrap();
        assert!(
            done.summary.contains(
                "re-read shows ldgnf-acme-sessions modifying (failover under way): not resent"
            ),
            "{}",
            done.summary
        );
        // Retried while it runs (the engine marks a retry `interrupted`: its earlier
        // attempt may have sent the call): the step waits for the datastore to settle,
        // sending nothing, and finds its failover done.
        let mut retry = h.ctx("valkey-strict");
        retry.interrupted = true;
        let again = execute(&retry, None).await.unwrap();
        assert_eq!(
            again.summary,
            "already done: primary acme-sessions-usw2 in us-west-2"
        );
        assert_eq!(h.mutations(), 1);
        assert_eq!(h.applied(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_modifying_datastore_is_sent_the_failover_and_its_refusal_is_retried() {
        let h = three_members();
        let settled = disassociating_euw1(&h).await;
        let ctx = h.ctx("valkey-strict");
        let e = execute(&ctx, None).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(
            e.message.starts_with(
                "global datastore ldgnf-acme-sessions is modifying: \
                 FailoverGlobalReplicationGroup was refused"
            ),
            "{}",
            e.message
        );
        assert_eq!(
            mutating_calls(&h),
            [
                "DisassociateGlobalReplicationGroup",
                "FailoverGlobalReplicationGroup"
            ],
            "the other operation, then the step's refused promotion"
        );
        assert_eq!(h.applied(), 1, "the disassociation only");
        // The engine's retry waits for the datastore to settle, then the promotion is
        // accepted.
        let mut retry = h.ctx("valkey-strict");
        retry.interrupted = true;
        let done = execute(&retry, None).await.unwrap();
        assert!(h.clock.elapsed() >= settled);
        assert!(
            done.summary
                .starts_with("FailoverGlobalReplicationGroup sent to us-west-2: "),
            "{}",
            done.summary
        );
        assert_eq!(h.applied(), 2);
    }

    /// H1: the datastore is modifying (another operation) when the primary's region
    /// goes dark. Under the user guide's reading the promotion is accepted all the
    /// same, so it must be sent: never straight to the disassociation, never a wait
    /// for a status that may not come back.
    #[tokio::test(start_paused = true)]
    async fn under_the_user_guides_reading_a_busy_datastore_is_failed_over_with_its_primary_region_down()
     {
        for step in ["valkey", "valkey-strict"] {
            let h = three_members_with(ALLOW);
            let ctx = h.ctx(step);
            let cap = capture(&ctx).await.unwrap();
            disassociating_euw1(&h).await;
            h.down("us-east-1");
            let done = execute(&ctx, cap.as_ref()).await.unwrap();
            assert_eq!(
                done.summary,
                "FailoverGlobalReplicationGroup sent to us-west-2 while ldgnf-acme-sessions \
                 was modifying: acme-sessions-usw2 becomes the primary (was primary \
                 acme-sessions-use1 in us-east-1)",
                "{step}"
            );
            assert_eq!(done.output["disassociated"], false, "{step}");
            assert_eq!(
                h.regions_of("FailoverGlobalReplicationGroup"),
                ["us-west-2"],
                "{step}"
            );
            assert_eq!(
                disassociated_groups(&h),
                ["acme-sessions-euw1"],
                "{step}: the other operation's only"
            );
            // The promotion and the other operation both complete: the target is the
            // primary, the unreachable old primary a secondary, the datastore intact.
            h.wait(SETTLE).await;
            assert_eq!(primary(&h), "acme-sessions-usw2 us-west-2", "{step}");
            assert_eq!(
                roles(&h),
                [
                    "acme-sessions-use1 us-east-1 Secondary",
                    "acme-sessions-usw2 us-west-2 Primary"
                ],
                "{step}"
            );
            let o = verify(&ctx, &done).await.unwrap();
            assert_eq!(
                (o.passed, o.observed.as_str()),
                (true, "primary acme-sessions-usw2 in us-west-2, available"),
                "{step}"
            );
            assert_eq!(
                h.applied(),
                2,
                "{step}: the other operation and the promotion"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn under_the_user_guides_reading_an_available_datastore_is_failed_over_with_its_primary_region_down()
     {
        let h = Harness::new(RUNBOOK, ALLOW);
        h.down("us-east-1");
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            done.summary.starts_with(
                "FailoverGlobalReplicationGroup sent to us-west-2: acme-sessions-usw2 becomes \
                 the primary"
            ),
            "{}",
            done.summary
        );
        assert_eq!(done.output["disassociated"], false);
        assert!(h.calls_of("DisassociateGlobalReplicationGroup").is_empty());
        h.wait(SETTLE).await;
        assert_eq!(primary(&h), "acme-sessions-usw2 us-west-2");
        let gate = ctx.step.gate.as_ref().unwrap();
        let o = check(&ctx, gate.spec, &gate.fields, Some(&done))
            .await
            .unwrap();
        assert!(o.passed, "{}", o.observed);
        assert_eq!(h.mutations(), 1);
    }

    /// A lost answer to a promotion sent while the datastore was already modifying: a
    /// re-read cannot tell whether it was taken, so nothing else is sent; the retry
    /// waits for the datastore to settle and finds it done.
    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_to_a_promotion_sent_while_busy_is_not_resent() {
        let h = three_members_with(ALLOW);
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        disassociating_euw1(&h).await;
        h.down("us-east-1");
        h.lose("FailoverGlobalReplicationGroup", 1);
        let e = execute(&ctx, cap.as_ref()).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(
            e.message
                .contains("was already modifying before it was sent"),
            "{}",
            e.message
        );
        let mut retry = h.ctx("valkey");
        retry.interrupted = true;
        let done = execute(&retry, cap.as_ref()).await.unwrap();
        assert_eq!(
            done.summary,
            "already done: primary acme-sessions-usw2 in us-west-2"
        );
        assert_eq!(h.calls_of("FailoverGlobalReplicationGroup").len(), 1);
        assert_eq!(disassociated_groups(&h), ["acme-sessions-euw1"]);
        assert_eq!(h.applied(), 2, "the other operation and the one promotion");
    }

    /// H1 under the API reference's reading: the promotion is still sent first; its
    /// refusal (with allow_disassociate and the primary's region dark) leads to the
    /// disassociation, which waits while the other operation runs and is then sent.
    #[tokio::test(start_paused = true)]
    async fn under_the_api_references_reading_the_failover_is_sent_first_then_the_disassociation() {
        let h = three_members_with(REFUSE);
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        let settled = disassociating_euw1(&h).await;
        h.down("us-east-1");
        let e = execute(&ctx, cap.as_ref()).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(
            e.message.contains(
                "FailoverGlobalReplicationGroup was refused (FailoverGlobalReplicationGroup in us-west-2"
            ) && e.message.contains("the primary's region us-east-1 is unreachable"),
            "{}",
            e.message
        );
        assert_eq!(
            mutating_calls(&h),
            [
                "DisassociateGlobalReplicationGroup",
                "FailoverGlobalReplicationGroup",
                "DisassociateGlobalReplicationGroup"
            ],
            "the other operation, the refused promotion, the refused fallback"
        );
        assert_eq!(
            disassociated_groups(&h),
            ["acme-sessions-euw1", "acme-sessions-usw2"]
        );
        assert_eq!(h.applied(), 1, "the other operation only");
        // The engine's retry waits for the other operation to complete: then the
        // promotion first again (refused: the primary's region is dark), then the
        // disassociation, accepted.
        let mut retry = h.ctx("valkey");
        retry.interrupted = true;
        let done = execute(&retry, cap.as_ref()).await.unwrap();
        assert!(h.clock.elapsed() >= settled);
        assert!(
            done.summary.starts_with(
                "FailoverGlobalReplicationGroup was refused (FailoverGlobalReplicationGroup in us-west-2"
            ) && done.summary.contains("DisassociateGlobalReplicationGroup of acme-sessions-usw2 sent to us-west-2"),
            "{}",
            done.summary
        );
        assert_eq!(done.output["disassociated"], true);
        assert_eq!(
            &mutating_calls(&h)[3..],
            [
                "FailoverGlobalReplicationGroup",
                "DisassociateGlobalReplicationGroup"
            ]
        );
        assert_eq!(
            h.regions_of("FailoverGlobalReplicationGroup"),
            ["us-west-2"; 2]
        );
        assert_eq!(h.applied(), 2);
        // Without allow_disassociate the refusal is the clear Refused it always was.
        let h = three_members_with(REFUSE);
        h.down("us-east-1");
        let e = execute(&h.ctx("valkey-strict"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Refused, "{e}");
        assert!(
            e.message.contains("allow_disassociate = true"),
            "{}",
            e.message
        );
        assert_eq!(mutating_calls(&h), ["FailoverGlobalReplicationGroup"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_primary_region_falls_back_to_disassociation_only_when_allowed() {
        let h = harness();
        h.down("us-east-1");
        let e = execute(&h.ctx("valkey-strict"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Refused);
        assert!(
            e.message
                .contains("the primary's region us-east-1 is unreachable"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("allow_disassociate = true"),
            "{}",
            e.message
        );
        assert_eq!(h.mutations(), 1, "the refused failover only");
        assert_eq!(h.applied(), 0);

        let h = harness();
        h.down("us-east-1");
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(
            h.regions_of("FailoverGlobalReplicationGroup"),
            ["us-west-2"]
        );
        assert_eq!(
            h.regions_of("DisassociateGlobalReplicationGroup"),
            ["us-west-2"]
        );
        assert!(
            done.summary
                .contains("global datastore ldgnf-acme-sessions is broken"),
            "{}",
            done.summary
        );
        assert!(done.summary.contains("stands alone as a primary"));
        assert_eq!(done.output["disassociated"], true);
        // Once the disassociation is done, a retry recognises it from the capture.
        h.wait(SETTLE).await;
        let again = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            again.summary.starts_with("already done"),
            "{}",
            again.summary
        );
        assert_eq!(h.mutations(), 2);
        // The gate accepts the standalone primary in the region.
        let gate = ctx.step.gate.as_ref().unwrap();
        let o = check(&ctx, gate.spec, &gate.fields, Some(&done))
            .await
            .unwrap();
        assert!(o.passed, "{}", o.observed);
        assert_eq!(
            o.observed,
            "acme-sessions-usw2 in us-west-2 stands alone as a primary (disassociated from ldgnf-acme-sessions)"
        );
        // Its inverse cannot rebuild the datastore and says so.
        let rb = super::super::Rollback {
            spec: None,
            fields: Default::default(),
            describe: String::new(),
        };
        let e = rollback(&ctx, &rb, cap.as_ref(), Some(&done))
            .await
            .unwrap_err();
        assert!(e.message.contains("must be rebuilt"), "{}", e.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_disassociation_answer_is_not_resent_while_it_is_under_way() {
        let h = harness();
        h.down("us-east-1");
        h.lose("DisassociateGlobalReplicationGroup", 1);
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            done.summary
                .contains("a re-read shows acme-sessions-usw2 disassociating: not resent"),
            "{}",
            done.summary
        );
        assert_eq!(done.output["disassociated"], true);
        // The engine retries (or a resumed run executes again) while the member is still
        // leaving: nothing is sent again.
        let again = execute(&ctx, cap.as_ref()).await.unwrap();
        assert!(
            again.summary.starts_with(
                "DisassociateGlobalReplicationGroup already under way (acme-sessions-usw2 in \
                 us-west-2 is disassociating"
            ),
            "{}",
            again.summary
        );
        assert_eq!(again.output["disassociated"], true);
        assert_eq!(h.calls_of("DisassociateGlobalReplicationGroup").len(), 1);
        assert_eq!(h.applied(), 1);
        // Without allow_disassociate the member's departure is a refusal, not a retry.
        let e = execute(&h.ctx("valkey-strict"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Refused);
        assert!(
            e.message.contains("can no longer be failed over to"),
            "{}",
            e.message
        );
        assert_eq!(h.calls_of("DisassociateGlobalReplicationGroup").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failover_that_failed_without_a_refusal_is_retried_not_answered_by_disassociation() {
        // The primary's region is down and allow_disassociate is set, but the promotion
        // failed with a 5xx, not a refusal: the last resort must wait for a refusal.
        let h = harness();
        h.down("us-east-1");
        h.fail(
            "FailoverGlobalReplicationGroup",
            CloudErrorKind::Transient,
            None,
            1,
        );
        let ctx = h.ctx("valkey");
        let cap = capture(&ctx).await.unwrap();
        let e = execute(&ctx, cap.as_ref()).await.unwrap_err();
        assert!(e.is_retryable(), "{}", e.message);
        assert!(
            h.calls_of("DisassociateGlobalReplicationGroup").is_empty(),
            "{:?}",
            h.calls()
        );
        assert_eq!(h.applied(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn valkey_checks_observe_briefly() {
        let h = harness();
        let ctx = h.ctx("cache-primary-west");
        let spec = lookup("valkey.primary_in_region").unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (false, "primary acme-sessions-use1 in us-east-1")
        );

        let ctx = h.ctx("cache-up");
        let spec = lookup("valkey.available").unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (
                true,
                "ldgnf-acme-sessions available, 2 member(s) in service"
            )
        );
        h.cloud
            .elasticache
            .disassociate_global_datastore(
                "us-west-2",
                DATASTORE,
                "acme-sessions-usw2",
                "us-west-2",
            )
            .await
            .unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (
                false,
                "ldgnf-acme-sessions modifying; acme-sessions-usw2 in us-west-2 is disassociating"
            )
        );
    }

    /// The messages of `valkey-strict`'s preflight, each with `!` before a block and
    /// `?` before a warning.
    async fn preflight_of(h: &Harness) -> Vec<String> {
        let ctx = h.ctx("valkey-strict");
        super::preflight(&ctx, &ctx.step.fields)
            .await
            .unwrap()
            .into_iter()
            .map(|f| {
                let mark = if !f.allows() {
                    "! "
                } else if f.is_warning() {
                    "? "
                } else {
                    ""
                };
                format!("{mark}{}", f.message)
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn preflight_compares_the_members_shapes_each_read_in_its_region() {
        let h = Harness::new(RUNBOOK, "[datastores.ldgnf-acme-sessions]\nshards = 3\n");
        let seen = preflight_of(&h).await;
        assert!(
            seen.contains(
                &"members match as a Global Datastore requires: cluster mode enabled, 3 \
                  shards, node type cache.r7g.large (all 2 members read)"
                    .to_string()
            ),
            "{seen:?}"
        );
        let mut regions = h.regions_of("DescribeReplicationGroups");
        regions.sort();
        assert_eq!(regions, ["us-east-1", "us-west-2"]);

        // A member that differs: the failover is blocked, saying how.
        let h = Harness::new(
            RUNBOOK,
            "[datastores.ldgnf-acme-sessions]\nshards = 3\n\
             [replication_groups.acme-sessions-usw2]\nshards = 2\nnode_type = \"cache.r6g.large\"\n",
        );
        let seen = preflight_of(&h).await;
        let block = seen
            .iter()
            .find(|m| m.starts_with("! "))
            .unwrap_or_else(|| panic!("no block in {seen:?}"));
        assert_eq!(
            block,
            "! the members of ldgnf-acme-sessions differ, which a Global Datastore does not \
             allow (cluster mode, shard count and node type must match): shard count: \
             acme-sessions-use1 (us-east-1) 3, acme-sessions-usw2 (us-west-2) 2; node type: \
             acme-sessions-use1 (us-east-1) cache.r7g.large, acme-sessions-usw2 (us-west-2) \
             cache.r6g.large"
        );
        let h = Harness::new(
            RUNBOOK,
            "[replication_groups.acme-sessions-usw2]\ncluster_enabled = true\n",
        );
        let seen = preflight_of(&h).await;
        assert!(
            seen.iter().any(|m| m.starts_with("! ")
                && m.ends_with(
                    "cluster mode: acme-sessions-use1 (us-east-1) disabled, acme-sessions-usw2 \
                     (us-west-2) enabled"
                )),
            "{seen:?}"
        );
        assert_eq!(h.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_whose_shape_cannot_be_read_is_a_warning_not_a_block() {
        // The primary's region is down: its shape is unknown, the survivor's is read.
        let h = Harness::new(
            RUNBOOK,
            "[regions.us-east-1]\nunreachable_from = \"0s\"\n[datastores.ldgnf-acme-sessions]\nshards = 3\n",
        );
        let seen = preflight_of(&h).await;
        assert!(seen.iter().all(|m| !m.starts_with("! ")), "{seen:?}");
        assert!(
            seen.iter().any(|m| m.starts_with(
                "? the shape of acme-sessions-use1 in us-east-1 is unknown (not compared): "
            )),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|m| m.ends_with(
                "3 shards, node type cache.r7g.large (only acme-sessions-usw2 (us-west-2) read)"
            )),
            "{seen:?}"
        );
        // A read refused (a fault on the new call): a warning too.
        let h = Harness::prod();
        h.fail(
            "DescribeReplicationGroups",
            CloudErrorKind::AccessDenied,
            Some("AccessDenied"),
            1,
        );
        let seen = preflight_of(&h).await;
        assert_eq!(
            seen.iter()
                .filter(|m| m.starts_with("? the shape of"))
                .count(),
            1,
            "{seen:?}"
        );
        assert!(seen.iter().all(|m| !m.starts_with("! ")), "{seen:?}");
    }
}
