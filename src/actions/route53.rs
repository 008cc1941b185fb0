//! Route 53: record cutover with exact restore, health-check flips, and the DNS checks.
//!
//! A cutover captures every record set with a name and type it changes, then UPSERTs
//! only the record sets that differ from the target, in batches within Route 53's
//! per-request limits ([`MAX_RECORD_ELEMENTS_PER_CALL`]; a batch is atomic in Route 53:
//! all or nothing). Its
//! inverse puts the zone back exactly: UPSERT what was captured, DELETE what did not
//! exist before. Both compare before they send, so a second run sends nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::support::{self, Reread, short};
use super::{
    ActionError, Captured, Executed, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{
    AliasTarget, ChangeAction, ChangeStatus, CloudErrorKind, HealthCheck, RecordChange, RecordSet,
};
use crate::runbook::model::Fields;

/// Route 53's limits of one ChangeResourceRecordSets request (API reference,
/// ChangeResourceRecordSets, "Limits"): at most 1,000 `ResourceRecord` elements and
/// 32,000 characters of record values, where an UPSERT counts twice ("When the value
/// of the Action element is UPSERT, each ResourceRecord element is counted twice").
/// So N single-value CREATEs or DELETEs cost ceil(N / 1000) calls and N UPSERTs
/// ceil(2N / 1000).
pub const MAX_RECORD_ELEMENTS_PER_CALL: usize = 1000;
/// See [`MAX_RECORD_ELEMENTS_PER_CALL`].
pub const MAX_VALUE_CHARS_PER_CALL: usize = 32_000;

/// What one change costs against the limits: (elements, characters). An alias record
/// has no ResourceRecord elements; it is counted as one, to stay on the safe side.
fn cost(c: &RecordChange) -> (usize, usize) {
    let factor = if c.action == ChangeAction::Upsert {
        2
    } else {
        1
    };
    let elements = c.record.values.len().max(1);
    let chars: usize = c.record.values.iter().map(String::len).sum();
    (elements * factor, chars * factor)
}

/// Splits changes, in order, into the fewest batches within Route 53's limits.
pub fn batches(changes: &[RecordChange]) -> Vec<&[RecordChange]> {
    let mut out = Vec::new();
    let (mut start, mut elements, mut chars) = (0, 0, 0);
    for (i, c) in changes.iter().enumerate() {
        let (e, ch) = cost(c);
        if i > start
            && (elements + e > MAX_RECORD_ELEMENTS_PER_CALL
                || chars + ch > MAX_VALUE_CHARS_PER_CALL)
        {
            out.push(&changes[start..i]);
            (start, elements, chars) = (i, 0, 0);
        }
        elements += e;
        chars += ch;
    }
    if start < changes.len() {
        out.push(&changes[start..]);
    }
    out
}

/// A record name as Route 53 returns it: lower case, fully qualified.
fn fqdn(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

/// A DNS name for comparison: lower case, without the trailing dot.
fn dns_eq_form(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

type Group = (String, String);

fn group(r: &RecordSet) -> Group {
    (fqdn(&r.name), r.record_type.clone())
}

/// What identifies a record set in a zone: name, type and set identifier.
fn identity(r: &RecordSet) -> (String, String, Option<String>) {
    (
        fqdn(&r.name),
        r.record_type.clone(),
        r.set_identifier.clone(),
    )
}

/// Whether two record sets are the same as far as DNS answers go (values compared as
/// a set, names without case or trailing dot).
fn same_record(a: &RecordSet, b: &RecordSet) -> bool {
    let values = |r: &RecordSet| {
        let mut v = r.values.clone();
        v.sort();
        v
    };
    let alias = |r: &RecordSet| {
        r.alias.as_ref().map(|a| {
            (
                dns_eq_form(&a.dns_name),
                a.zone_id.clone(),
                a.evaluate_target_health,
            )
        })
    };
    identity(a) == identity(b)
        && a.ttl == b.ttl
        && values(a) == values(b)
        && a.routing == b.routing
        && alias(a) == alias(b)
        && a.weight == b.weight
        && a.failover == b.failover
        && a.health_check_id == b.health_check_id
}

/// The record sets a step asks for, checked for what Route 53 would reject.
fn desired(fields: &Fields) -> Result<Vec<RecordSet>, ActionError> {
    let mut out: Vec<RecordSet> = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, t) in f::tables(fields, "records")?.iter().enumerate() {
        let name = fqdn(f::str(t, "name")?);
        let record_type = f::str(t, "type")?.to_string();
        let at = format!("records[{i}] ({name} {record_type})");
        let alias = match f::opt_str(t, "alias_dns_name")? {
            Some(dns) => Some(AliasTarget {
                dns_name: dns.to_string(),
                zone_id: f::opt_str(t, "alias_zone_id")?
                    .ok_or_else(|| {
                        ActionError::permanent(format!("{at}: an alias needs alias_zone_id"))
                    })?
                    .to_string(),
                evaluate_target_health: f::bool_or(t, "evaluate_target_health", false)?,
            }),
            None => None,
        };
        let values = f::list_or_empty(t, "values")?.to_vec();
        let ttl = f::opt_int(t, "ttl")?;
        if alias.is_none() && values.is_empty() {
            return Err(ActionError::permanent(format!(
                "{at}: give values or alias_dns_name"
            )));
        }
        if alias.is_none() && ttl.is_none() {
            return Err(ActionError::permanent(format!(
                "{at}: a record with values needs a ttl"
            )));
        }
        let r = RecordSet {
            name,
            record_type,
            set_identifier: f::opt_str(t, "set_identifier")?.map(str::to_string),
            ttl: if alias.is_some() { None } else { ttl },
            values,
            alias,
            weight: f::opt_int(t, "weight")?,
            failover: f::opt_str(t, "failover")?.map(str::to_string),
            health_check_id: f::opt_str(t, "health_check_id")?.map(str::to_string),
            routing: Default::default(),
        };
        if let Some(j) = seen.insert(identity(&r), i) {
            return Err(ActionError::permanent(format!(
                "{at} and records[{j}] are the same record set; Route 53 rejects a batch \
                 that changes one twice"
            )));
        }
        out.push(r);
    }
    Ok(out)
}

/// Reads the current record sets of every group.
async fn read_groups<'g>(
    ctx: &StepContext<'_>,
    zone: &str,
    groups: impl IntoIterator<Item = &'g Group>,
) -> Result<BTreeMap<Group, Vec<RecordSet>>, ActionError> {
    let mut out = BTreeMap::new();
    for g in groups {
        if out.contains_key(g) {
            continue;
        }
        let (name, record_type) = g;
        let sets = ctx
            .cloud
            .route53
            .list_record_sets(zone, name, record_type)
            .await?;
        let sets = sets
            .into_iter()
            .filter(|r| &fqdn(&r.name) == name && &r.record_type == record_type)
            .collect();
        out.insert(g.clone(), sets);
    }
    Ok(out)
}

fn change_applied(c: &RecordChange, current: &[RecordSet]) -> bool {
    match c.action {
        ChangeAction::Upsert | ChangeAction::Create => {
            current.iter().any(|r| same_record(r, &c.record))
        }
        ChangeAction::Delete => !current.iter().any(|r| identity(r) == identity(&c.record)),
    }
}

/// What sending the batches did.
#[derive(Default)]
struct Sent {
    change_ids: Vec<String>,
    /// Batches whose response was lost but a re-read shows applied (no change id).
    unconfirmed: usize,
    /// When the last of those was seen applied (run time).
    unconfirmed_at: Option<Duration>,
    calls: usize,
}

/// Sends `changes` in [`batches`], each once. After a
/// lost response the batch's record sets are re-read: applied means go on, not applied
/// means stop with a retryable error (the next attempt recomputes what is left).
async fn send(
    ctx: &StepContext<'_>,
    zone: &str,
    changes: &[RecordChange],
) -> Result<Sent, ActionError> {
    const CALL: &str = "ChangeResourceRecordSets";
    let all = batches(changes);
    let total = all.len();
    let mut sent = Sent::default();
    for (i, batch) in all.into_iter().enumerate() {
        sent.calls += 1;
        let progress = |mut err: ActionError| {
            if i > 0 {
                err.message = format!(
                    "batch {} of {total}: {} (the {i} batch(es) before it were applied)",
                    i + 1,
                    err.message
                );
            }
            err
        };
        let e = match ctx.cloud.route53.change_record_sets(zone, batch).await {
            Ok(info) => {
                sent.change_ids.push(info.id);
                continue;
            }
            Err(e) => e,
        };
        if !support::outcome_unknown(&e) {
            return Err(progress(e.into()));
        }
        let groups: Vec<Group> = batch.iter().map(|c| group(&c.record)).collect();
        let groups = &groups;
        let seen = support::reread(ctx, || async move {
            let current = read_groups(ctx, zone, groups).await?;
            let applied = batch.iter().all(|c| {
                change_applied(c, current.get(&group(&c.record)).map_or(&[], Vec::as_slice))
            });
            Ok(applied.then_some(()))
        })
        .await;
        match seen {
            Reread::Applied(()) => {
                sent.unconfirmed += 1;
                sent.unconfirmed_at = Some(ctx.clock.elapsed());
            }
            Reread::NotApplied => return Err(progress(e.into())),
            Reread::Unknown(read) => {
                return Err(progress(support::unknown_outcome(CALL, &e, &read)));
            }
        }
    }
    Ok(sent)
}

fn sent_text(sent: &Sent) -> String {
    let ids = match sent.change_ids.len() {
        0 => String::new(),
        1..=3 => format!("; change {}", sent.change_ids.join(", ")),
        n => format!("; {n} changes"),
    };
    let lost = if sent.unconfirmed > 0 {
        format!(
            "; {} batch(es) applied but their response was lost (change id unknown, not \
             resent)",
            sent.unconfirmed
        )
    } else {
        String::new()
    };
    format!(
        "in {} ChangeResourceRecordSets call(s){ids}{lost}",
        sent.calls
    )
}

/// One group of captured record sets.
#[derive(Debug, Serialize, Deserialize)]
struct CapturedGroup {
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    existing: Vec<RecordSet>,
}

/// The capture of a cutover: the zone and every record set with a name and type it
/// changes. Every field is required: a capture that is not one restores nothing.
#[derive(Debug, Serialize, Deserialize)]
struct RecordsCapture {
    hosted_zone_id: String,
    record_sets: Vec<CapturedGroup>,
}

impl Journaled for RecordsCapture {}

/// The "before" state of a cutover: every record set with a name and type it changes.
pub async fn capture_records(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Captured, ActionError> {
    let zone = f::str(fields, "hosted_zone_id")?;
    let desired = desired(fields)?;
    let groups: Vec<Group> = desired.iter().map(group).collect();
    let current = read_groups(ctx, zone, &groups).await?;
    let record_sets: Vec<CapturedGroup> = current
        .into_iter()
        .map(|((name, record_type), existing)| CapturedGroup {
            name,
            record_type,
            existing,
        })
        .collect();
    Ok(RecordsCapture {
        hosted_zone_id: zone.to_string(),
        record_sets,
    }
    .captured())
}

/// `route53.cutover`.
pub async fn cutover(ctx: &StepContext<'_>, fields: &Fields) -> Result<Executed, ActionError> {
    let zone = f::str(fields, "hosted_zone_id")?;
    let desired = desired(fields)?;
    let groups: Vec<Group> = desired.iter().map(group).collect();
    let current = read_groups(ctx, zone, &groups).await?;
    let changes: Vec<RecordChange> = desired
        .iter()
        .filter(|d| {
            !current
                .get(&group(d))
                .is_some_and(|c| c.iter().any(|r| same_record(r, d)))
        })
        .map(|d| RecordChange {
            action: ChangeAction::Upsert,
            record: d.clone(),
        })
        .collect();
    let already = desired.len() - changes.len();
    if changes.is_empty() {
        return Ok(Executed {
            summary: format!(
                "already done: {} record set(s) already as desired",
                desired.len()
            ),
            output: CutoverOutput::of(zone, &Sent::default()),
        });
    }
    let sent = send(ctx, zone, &changes).await?;
    let also = if already > 0 {
        format!(" ({already} already as desired)")
    } else {
        String::new()
    };
    Ok(Executed {
        summary: format!(
            "UPSERT {} record set(s){also} {}",
            changes.len(),
            sent_text(&sent)
        ),
        output: CutoverOutput::of(zone, &sent),
    })
}

/// Preflight of `route53.cutover`: the records are well formed and the zone answers.
pub async fn preflight_cutover(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let zone = f::str(fields, "hosted_zone_id")?;
    let desired = desired(fields)?;
    let groups: Vec<Group> = desired.iter().map(group).collect();
    let current = read_groups(ctx, zone, &groups).await?;
    let to_change: Vec<RecordChange> = desired
        .iter()
        .filter(|d| {
            !current
                .get(&group(d))
                .is_some_and(|c| c.iter().any(|r| same_record(r, d)))
        })
        .map(|d| RecordChange {
            action: ChangeAction::Upsert,
            record: d.clone(),
        })
        .collect();
    let mut out = vec![Finding::ok(format!(
        "zone {zone}: {} of {} record set(s) to change ({} call(s) at most); the prior \
             records are captured for rollback",
        to_change.len(),
        desired.len(),
        batches(&to_change).len()
    ))];
    // Capacity: record sets the cutover creates (no record set of that identity yet)
    // against the zone's quota, which Route 53 enforces by refusing the whole batch.
    let new = desired
        .iter()
        .filter(|d| {
            !current
                .get(&group(d))
                .is_some_and(|c| c.iter().any(|r| identity(r) == identity(d)))
        })
        .count() as u64;
    out.push(match ctx.cloud.route53.zone_record_quota(zone).await {
        Ok(q) if q.used + new > q.limit => Finding::block(format!(
            "zone {zone} holds {} of its {} record sets and this cutover creates {new}: \
                 over the quota (ask AWS for a higher MAX_RRSETS_BY_ZONE)",
            q.used, q.limit
        )),
        Ok(q) => Finding::ok(format!(
            "zone {zone} quota: {} + {new} new of {} record sets",
            q.used, q.limit
        )),
        Err(e) if e.kind == CloudErrorKind::NotFound => return Err(e.into()),
        Err(e) => Finding::warn(format!("the zone's record-set quota was not read: {e}")),
    });
    Ok(out)
}

/// What `route53.cutover` reports, typed: the zone and the ids of the changes its
/// batches got. The `route53.change_insync` gate reads them ([`Changes`]). A batch
/// whose answer was lost (a re-read showed it applied) has no change id to poll: it is
/// counted in `unconfirmed`, with the run time it was confirmed at.
#[derive(Debug, Serialize)]
struct CutoverOutput<'a> {
    hosted_zone_id: &'a str,
    change_ids: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    unconfirmed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    unconfirmed_at_secs: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CutoverOutput<'_> {
    fn of(zone: &str, sent: &Sent) -> Value {
        serde_json::to_value(CutoverOutput {
            hosted_zone_id: zone,
            change_ids: sent.change_ids.clone(),
            unconfirmed: sent.unconfirmed,
            unconfirmed_at_secs: sent.unconfirmed_at.map(|d| d.as_secs_f64()),
        })
        .unwrap_or_default()
    }
}

/// How long a change whose id was lost is given to reach every Route 53 authoritative
/// server: the ChangeResourceRecordSets reference says changes generally propagate
/// within 60 seconds, which is what INSYNC would have confirmed.
const PROPAGATION_ALLOWANCE: Duration = Duration::from_secs(60);

/// The changes a gated step's result names, as the INSYNC gate reads them: a
/// cutover's `change_ids` (and its batches without one), or one `change_id`. Other
/// fields are not read.
#[derive(Debug, Default, Deserialize)]
struct Changes {
    #[serde(default)]
    change_ids: Option<Vec<String>>,
    #[serde(default)]
    change_id: Option<String>,
    #[serde(default)]
    unconfirmed: usize,
    #[serde(default)]
    unconfirmed_at_secs: Option<f64>,
}

/// Batches applied without a change id, and when that was known (run time).
type Unconfirmed = Option<(usize, Duration)>;

/// The change ids a step's result lists; a step that made no record change (already
/// done, or a health-check flip) lists none, which a gate reads as "nothing to wait
/// for". `None` only without a step result.
fn change_ids(executed: Option<&Executed>) -> Option<(Vec<String>, Unconfirmed)> {
    let c = Changes::deserialize(&executed?.output).unwrap_or_default();
    let unconfirmed = (c.unconfirmed > 0).then(|| {
        let at = c
            .unconfirmed_at_secs
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or_default();
        (c.unconfirmed, at)
    });
    Some((
        c.change_ids
            .or_else(|| c.change_id.map(|id| vec![id]))
            .unwrap_or_default(),
        unconfirmed,
    ))
}

async fn insync(
    ctx: &StepContext<'_>,
    ids: &[String],
    unconfirmed: Unconfirmed,
) -> Result<Observation, ActionError> {
    // Batches whose change id was lost cannot be polled: they count as INSYNC once
    // Route 53's propagation time has passed since they were seen applied.
    let waiting = unconfirmed.and_then(|(n, at)| {
        let left = (at + PROPAGATION_ALLOWANCE).saturating_sub(ctx.clock.elapsed());
        (!left.is_zero()).then_some((n, left))
    });
    let lost = match (unconfirmed, waiting) {
        (_, Some((n, left))) => format!(
            "; {n} batch(es) without a change id (answer lost): allowing {} more for \
             propagation",
            short(left)
        ),
        (Some((n, _)), None) => format!(
            "; {n} batch(es) without a change id (answer lost) given {} to propagate",
            short(PROPAGATION_ALLOWANCE)
        ),
        (None, _) => String::new(),
    };
    if ids.is_empty() {
        return Ok(match unconfirmed {
            None => Observation {
                passed: true,
                observed: "no change was submitted".into(),
            },
            Some(_) => Observation {
                passed: waiting.is_none(),
                observed: format!("no change id to poll{lost}"),
            },
        });
    }
    let mut done = 0;
    for id in ids {
        if ctx.cloud.route53.get_change(id).await?.status == ChangeStatus::Insync {
            done += 1;
        }
    }
    let observed = match ids {
        [id] if done == 1 => format!("change {id} INSYNC{lost}"),
        [id] => format!("change {id} PENDING{lost}"),
        _ => format!("{done} of {} changes INSYNC{lost}", ids.len()),
    };
    Ok(Observation {
        passed: done == ids.len() && waiting.is_none(),
        observed,
    })
}

/// Verify of `route53.cutover`: every change INSYNC (unless `wait_insync = false`).
pub async fn verify_cutover(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: &Executed,
) -> Result<Observation, ActionError> {
    if !f::bool_or(fields, "wait_insync", true)? {
        return Ok(Observation {
            passed: true,
            observed: "not waiting for INSYNC (wait_insync = false)".into(),
        });
    }
    let (ids, unconfirmed) = change_ids(Some(executed)).unwrap_or_default();
    insync(ctx, &ids, unconfirmed).await
}

/// `route53.change_insync`: the given change, or every change the gated step made.
pub async fn change_insync(
    ctx: &StepContext<'_>,
    fields: &Fields,
    executed: Option<&Executed>,
) -> Result<Observation, ActionError> {
    let (ids, unconfirmed) = match f::opt_str(fields, "change_id")? {
        Some(id) => (vec![id.to_string()], None),
        None => change_ids(executed).ok_or_else(|| {
            ActionError::permanent(
                "no change to wait for: give change_id, or gate a step that made a change",
            )
        })?,
    };
    insync(ctx, &ids, unconfirmed).await
}

/// The built-in inverse of `route53.cutover`: the captured record sets, exactly.
pub async fn restore_records(
    ctx: &StepContext<'_>,
    captured: &Captured,
) -> Result<String, ActionError> {
    let bad = || ActionError::permanent("the captured record sets are unreadable");
    let RecordsCapture {
        hosted_zone_id,
        record_sets: groups,
    } = RecordsCapture::read(&captured.0).ok_or_else(bad)?;
    let zone = hosted_zone_id.as_str();
    let keys: Vec<Group> = groups
        .iter()
        .map(|g| (g.name.clone(), g.record_type.clone()))
        .collect();
    let current = read_groups(ctx, zone, &keys).await?;
    let mut deletes = Vec::new();
    let mut upserts = Vec::new();
    for g in &groups {
        let now = current
            .get(&(g.name.clone(), g.record_type.clone()))
            .map_or(&[][..], Vec::as_slice);
        for r in now {
            if !g.existing.iter().any(|c| identity(c) == identity(r)) {
                deletes.push(RecordChange {
                    action: ChangeAction::Delete,
                    record: r.clone(),
                });
            }
        }
        for c in &g.existing {
            if !now.iter().any(|r| same_record(r, c)) {
                upserts.push(RecordChange {
                    action: ChangeAction::Upsert,
                    record: c.clone(),
                });
            }
        }
    }
    if deletes.is_empty() && upserts.is_empty() {
        return Ok(format!(
            "already restored: {} record set(s) as captured",
            groups.iter().map(|g| g.existing.len()).sum::<usize>()
        ));
    }
    let (d, u) = (deletes.len(), upserts.len());
    let mut changes = deletes;
    changes.extend(upserts);
    let sent = send(ctx, zone, &changes).await?;
    Ok(format!(
        "restored the captured record sets: UPSERT {u}, DELETE {d} {}",
        sent_text(&sent)
    ))
}

/// `route53.record_points_to`.
pub async fn record_points_to(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let zone = f::str(fields, "hosted_zone_id")?;
    let name = fqdn(f::str(fields, "name")?);
    let record_type = f::str(fields, "type")?;
    let set_identifier = f::opt_str(fields, "set_identifier")?;
    let expect = f::list(fields, "expect")?;
    let sets = ctx
        .cloud
        .route53
        .list_record_sets(zone, &name, record_type)
        .await?;
    let found = sets.iter().find(|r| {
        fqdn(&r.name) == name
            && r.record_type == record_type
            && r.set_identifier.as_deref() == set_identifier
    });
    let Some(r) = found else {
        return Ok(Observation {
            passed: false,
            observed: format!("no {name} {record_type} record"),
        });
    };
    let (got, names) = match &r.alias {
        Some(a) => (vec![a.dns_name.clone()], true),
        None => (r.values.clone(), record_type == "CNAME"),
    };
    let norm = |v: &str| {
        if names { dns_eq_form(v) } else { v.to_string() }
    };
    let mut have: Vec<String> = got.iter().map(|v| norm(v)).collect();
    let mut want: Vec<String> = expect.iter().map(|v| norm(v)).collect();
    have.sort();
    have.dedup();
    want.sort();
    want.dedup();
    let passed = have == want;
    let observed = if passed {
        format!("{name} {record_type} -> {}", got.join(", "))
    } else {
        format!(
            "{name} {record_type} -> {} (expected {})",
            got.join(", "),
            expect.join(", ")
        )
    };
    Ok(Observation { passed, observed })
}

/// `route53.health_check_healthy`.
pub async fn health_check_healthy(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "health_check_id")?;
    let want = f::bool_or(fields, "healthy", true)?;
    let healthy = ctx.cloud.route53.health_check_healthy(id).await?;
    let word = |h: bool| if h { "healthy" } else { "unhealthy" };
    Ok(Observation {
        passed: healthy == want,
        observed: if healthy == want {
            format!("health check {id} is {}", word(healthy))
        } else {
            format!(
                "health check {id} is {} (expected {})",
                word(healthy),
                word(want)
            )
        },
    })
}

/// The Inverted/Disabled settings a flip or its inverse wants for one health check.
struct Wanted {
    id: String,
    inverted: Option<bool>,
    disabled: Option<bool>,
}

impl Wanted {
    fn matches(&self, hc: &HealthCheck) -> bool {
        self.inverted.is_none_or(|v| v == hc.inverted)
            && self.disabled.is_none_or(|v| v == hc.disabled)
    }
}

fn wanted_from_fields(fields: &Fields) -> Result<Vec<Wanted>, ActionError> {
    let inverted = f::opt_bool(fields, "invert")?;
    let disabled = f::opt_bool(fields, "disable")?;
    if inverted.is_none() && disabled.is_none() {
        return Err(ActionError::permanent(
            "route53.health_check_flip sets neither invert nor disable",
        ));
    }
    Ok(f::list(fields, "health_checks")?
        .iter()
        .map(|id| Wanted {
            id: id.clone(),
            inverted,
            disabled,
        })
        .collect())
}

/// Updates only the settings that differ, each health check at most once.
async fn set_checks(ctx: &StepContext<'_>, wanted: &[Wanted]) -> Result<Vec<String>, ActionError> {
    const CALL: &str = "UpdateHealthCheck";
    let r53 = &ctx.cloud.route53;
    let mut changed = Vec::new();
    for w in wanted {
        let hc = r53.get_health_check(&w.id).await?;
        let inverted = w.inverted.filter(|v| *v != hc.inverted);
        let disabled = w.disabled.filter(|v| *v != hc.disabled);
        if inverted.is_none() && disabled.is_none() {
            continue;
        }
        let mut text = format!("{}:", w.id);
        if let Some(v) = inverted {
            text.push_str(&format!(" inverted {} -> {v}", hc.inverted));
        }
        if let Some(v) = disabled {
            text.push_str(&format!(" disabled {} -> {v}", hc.disabled));
        }
        match r53.update_health_check(&w.id, inverted, disabled).await {
            Ok(()) => changed.push(text),
            Err(e) if support::outcome_unknown(&e) => {
                let seen = support::reread(ctx, || async move {
                    Ok(w.matches(&r53.get_health_check(&w.id).await?).then_some(()))
                })
                .await;
                match seen {
                    Reread::Applied(()) => {
                        changed.push(format!("{text} (response lost; a re-read confirms it)"))
                    }
                    Reread::NotApplied => return Err(e.into()),
                    Reread::Unknown(read) => {
                        return Err(support::unknown_outcome(CALL, &e, &read));
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(changed)
}

/// The capture of a flip: each health check's settings before it. Every field is
/// required: a capture that is not one restores nothing.
#[derive(Debug, Serialize, Deserialize)]
struct ChecksCapture {
    health_checks: Vec<CapturedCheck>,
}

/// One health check's captured settings.
#[derive(Debug, Serialize, Deserialize)]
struct CapturedCheck {
    id: String,
    inverted: bool,
    disabled: bool,
}

impl Journaled for ChecksCapture {}

/// What `route53.health_check_flip` reports, typed: how many checks it changed.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct FlipOutput {
    updated: usize,
}

impl Journaled for FlipOutput {}

/// The "before" state of a flip: each health check's Inverted and Disabled.
pub async fn capture_flip(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let mut checks = Vec::new();
    for id in f::list(fields, "health_checks")? {
        let hc = ctx.cloud.route53.get_health_check(id).await?;
        checks.push(CapturedCheck {
            id: hc.id,
            inverted: hc.inverted,
            disabled: hc.disabled,
        });
    }
    Ok(ChecksCapture {
        health_checks: checks,
    }
    .captured())
}

/// `route53.health_check_flip`.
pub async fn flip(ctx: &StepContext<'_>, fields: &Fields) -> Result<Executed, ActionError> {
    let wanted = wanted_from_fields(fields)?;
    let changed = set_checks(ctx, &wanted).await?;
    let summary = if changed.is_empty() {
        format!("already done: {} health check(s) already set", wanted.len())
    } else {
        format!("UpdateHealthCheck {}", changed.join("; "))
    };
    Ok(FlipOutput {
        updated: changed.len(),
    }
    .executed(summary))
}

/// Preflight of `route53.health_check_flip`: every health check exists.
pub async fn preflight_flip(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let mut out = Vec::new();
    for w in wanted_from_fields(fields)? {
        match ctx.cloud.route53.get_health_check(&w.id).await {
            Ok(hc) => out.push(Finding::ok(format!(
                "health check {}: inverted={} disabled={}{}",
                w.id,
                hc.inverted,
                hc.disabled,
                if w.matches(&hc) {
                    " (already as wanted)"
                } else {
                    ""
                }
            ))),
            Err(e) if e.kind == CloudErrorKind::NotFound => {
                out.push(Finding::block(format!("health check {} not found", w.id)))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Verify of `route53.health_check_flip`: every setting took.
pub async fn verify_flip(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let wanted = wanted_from_fields(fields)?;
    let mut pending = Vec::new();
    for w in &wanted {
        let hc = ctx.cloud.route53.get_health_check(&w.id).await?;
        if !w.matches(&hc) {
            pending.push(w.id.clone());
        }
    }
    Ok(Observation {
        passed: pending.is_empty(),
        observed: if pending.is_empty() {
            format!("{} health check(s) set", wanted.len())
        } else {
            format!("not yet set: {}", pending.join(", "))
        },
    })
}

/// The built-in inverse of a flip: the captured settings, exactly.
pub async fn restore_flip(
    ctx: &StepContext<'_>,
    captured: &Captured,
) -> Result<String, ActionError> {
    let bad = || ActionError::permanent("the captured health checks are unreadable");
    let wanted: Vec<Wanted> = ChecksCapture::read(&captured.0)
        .ok_or_else(bad)?
        .health_checks
        .into_iter()
        .map(|c| Wanted {
            id: c.id,
            inverted: Some(c.inverted),
            disabled: Some(c.disabled),
        })
        .collect();
    let changed = set_checks(ctx, &wanted).await?;
    Ok(if changed.is_empty() {
        format!(
            "already restored: {} health check(s) as captured",
            wanted.len()
        )
    } else {
        format!("restored UpdateHealthCheck {}", changed.join("; "))
    })
}

#[cfg(test)]
mod tests;
