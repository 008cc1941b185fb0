//! Route 53 Application Recovery Controller: routing controls, through the cluster's
//! data plane.
//!
//! Why ARC: in a us-east-1 outage Route 53's control plane (ChangeResourceRecordSets,
//! UpdateHealthCheck) is unavailable, so neither a record cutover nor a health-check flip
//! can move traffic. Routing controls live on an ARC cluster with five regional
//! endpoints; flipping them changes the state of RECOVERY_CONTROL health checks, and the
//! Route 53 data plane then answers the other record of each pre-created failover pair.
//!
//! **Endpoints in turn.** Every call tries the step's `cluster_endpoints` in the order
//! given (AWS's guidance: endpoints come and go, at least three of five answer). An
//! endpoint that is unreachable, failing or throttling gives way to the next; a definite
//! answer (not found, access denied, invalid request, or a safety rule's
//! `ConflictException`, which the cloud layer classifies as `InvalidState`) stops at
//! once, since every endpoint of one cluster answers the same. When none answers, the
//! error lists each region's failure.
//!
//! **The mutation** is ONE `UpdateRoutingControlStates` with every state the step sets:
//! ARC applies them together or not at all and evaluates safety rules on the result, so
//! traffic is never left with both cells Off half-way. It is idempotent: the states are
//! read first and "already so" sends nothing. After a failure whose outcome is unknown
//! (transient, unreachable, and throttling too: re-reading is cheap and a blind resend
//! is never allowed), moving on to the next endpoint *is* a resend, so the states are
//! re-read first (through any endpoint) and only a confirmed "not applied" sends again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::support::{self, Reread};
use super::{
    ActionError, ActionErrorKind, Captured, Executed, Finding, Journaled, Observation, StepContext,
    fields as f,
};
use crate::cloud::{
    CloudError, CloudErrorKind, ClusterEndpoint, RoutingControlState, RoutingControlUpdate,
};
use crate::runbook::catalogue::routing_control_label as label;
use crate::runbook::model::Fields;

const GET: &str = "GetRoutingControlState";
const UPDATE: &str = "UpdateRoutingControlStates";

fn endpoints(fields: &Fields) -> Result<Vec<ClusterEndpoint>, ActionError> {
    let eps = f::tables(fields, "cluster_endpoints")?
        .iter()
        .map(|t| {
            Ok(ClusterEndpoint {
                url: f::str(t, "url")?.to_string(),
                region: f::str(t, "region")?.to_string(),
            })
        })
        .collect::<Result<Vec<_>, ActionError>>()?;
    if eps.is_empty() {
        return Err(ActionError::permanent(
            "no cluster endpoint to ask: list the ARC cluster's endpoints in cluster_endpoints",
        ));
    }
    Ok(eps)
}

fn parse_state(s: &str) -> Result<RoutingControlState, ActionError> {
    match s {
        "On" => Ok(RoutingControlState::On),
        "Off" => Ok(RoutingControlState::Off),
        _ => Err(ActionError::permanent("field `state` is not On or Off")),
    }
}

/// The states a step sets, each control once (ARC rejects a batch naming one twice).
fn wanted(fields: &Fields) -> Result<Vec<RoutingControlUpdate>, ActionError> {
    let mut out: Vec<RoutingControlUpdate> = Vec::new();
    for t in f::tables(fields, "states")? {
        let arn = f::str(t, "routing_control_arn")?.to_string();
        if out.iter().any(|u| u.arn == arn) {
            return Err(ActionError::permanent(format!(
                "routing control {arn} is set twice in one step"
            )));
        }
        out.push(RoutingControlUpdate {
            arn,
            state: parse_state(f::str(t, "state")?)?,
        });
    }
    if out.is_empty() {
        return Err(ActionError::permanent("the step sets no routing control"));
    }
    Ok(out)
}

/// Whether another endpoint of the cluster may answer where this one failed.
fn try_next(e: &CloudError) -> bool {
    matches!(
        e.kind,
        CloudErrorKind::Unreachable | CloudErrorKind::Transient | CloudErrorKind::Throttling
    )
}

/// A definite answer from one endpoint: the whole call stops there.
fn stopped(call: &str, ep: &ClusterEndpoint, e: CloudError) -> ActionError {
    let what = e.code.clone().unwrap_or_else(|| format!("{:?}", e.kind));
    let message = format!(
        "{call} at the {} cluster endpoint: {} ({what}; not tried elsewhere: every endpoint \
         of the cluster answers the same)",
        ep.region, e.message
    );
    let mut err = ActionError::from(e);
    err.message = message;
    err
}

/// Every endpoint failed in a way another might not have: retryable, naming each.
fn none_answered(call: &str, failures: Vec<(String, CloudError)>) -> ActionError {
    let throttled = failures
        .iter()
        .all(|(_, e)| e.kind == CloudErrorKind::Throttling);
    let list: Vec<String> = failures
        .iter()
        .map(|(region, e)| format!("{region}: {}", e.message))
        .collect();
    ActionError {
        kind: if throttled {
            ActionErrorKind::Throttled
        } else {
            ActionErrorKind::Retryable
        },
        message: format!("no cluster endpoint answered {call} ({})", list.join("; ")),
        cloud: failures.into_iter().last().map(|(_, e)| Box::new(e)),
    }
}

/// One control's state and the region of the endpoint that answered.
async fn read_one(
    ctx: &StepContext<'_>,
    eps: &[ClusterEndpoint],
    arn: &str,
) -> Result<(RoutingControlState, String), ActionError> {
    let mut failures = Vec::new();
    for ep in eps {
        match ctx.cloud.routing.routing_control_state(ep, arn).await {
            Ok(state) => return Ok((state, ep.region.clone())),
            Err(e) if try_next(&e) => failures.push((ep.region.clone(), e)),
            Err(e) => return Err(stopped(GET, ep, e)),
        }
    }
    Err(none_answered(GET, failures))
}

async fn read_all<'a>(
    ctx: &StepContext<'_>,
    eps: &[ClusterEndpoint],
    arns: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, RoutingControlState>, ActionError> {
    let mut out = BTreeMap::new();
    for arn in arns {
        let (state, _) = read_one(ctx, eps, arn).await?;
        out.insert(arn.to_string(), state);
    }
    Ok(out)
}

fn all_set(want: &[RoutingControlUpdate], now: &BTreeMap<String, RoutingControlState>) -> bool {
    want.iter().all(|u| now.get(&u.arn) == Some(&u.state))
}

/// What [`set_states`] did.
struct Set {
    /// `routingcontrol/ID On -> Off` for each control that changed (empty: nothing sent).
    changed: Vec<String>,
    /// The region of the endpoint that took the update.
    via: Option<String>,
    /// Endpoints that failed before one took it: `region: why`.
    skipped: Vec<String>,
    /// The accepting call's response was lost and a re-read confirmed the states.
    lost: bool,
}

/// Brings the controls to `want` with at most one applied `UpdateRoutingControlStates`
/// (see the module docs).
async fn set_states(
    ctx: &StepContext<'_>,
    eps: &[ClusterEndpoint],
    want: &[RoutingControlUpdate],
    overrides: &[String],
) -> Result<Set, ActionError> {
    let arns = || want.iter().map(|u| u.arn.as_str());
    let current = read_all(ctx, eps, arns()).await?;
    let changed: Vec<String> = want
        .iter()
        .filter_map(|u| {
            let now = current.get(&u.arn)?;
            (*now != u.state)
                .then(|| format!("{} {} -> {}", label(&u.arn), now.as_str(), u.state.as_str()))
        })
        .collect();
    let mut set = Set {
        changed,
        via: None,
        skipped: Vec::new(),
        lost: false,
    };
    if set.changed.is_empty() {
        return Ok(set);
    }
    let mut failures = Vec::new();
    for ep in eps {
        let e = match ctx
            .cloud
            .routing
            .update_routing_control_states(ep, want, overrides)
            .await
        {
            Ok(()) => {
                set.via = Some(ep.region.clone());
                return Ok(set);
            }
            Err(e) => e,
        };
        if !try_next(&e) {
            return Err(stopped(UPDATE, ep, e));
        }
        // The update may have been applied and only the answer lost: sending it to the
        // next endpoint would be a resend. Re-read first.
        let seen = support::reread(ctx, || async {
            let now = read_all(ctx, eps, arns()).await?;
            Ok(all_set(want, &now).then_some(()))
        })
        .await;
        match seen {
            Reread::Applied(()) => {
                set.via = Some(ep.region.clone());
                set.lost = true;
                return Ok(set);
            }
            Reread::NotApplied => {
                set.skipped.push(format!("{}: {}", ep.region, e.message));
                failures.push((ep.region.clone(), e));
            }
            Reread::Unknown(read) => return Err(support::unknown_outcome(UPDATE, &e, &read)),
        }
    }
    Err(none_answered(UPDATE, failures))
}

fn set_text(set: &Set) -> String {
    let mut text = format!(
        "{UPDATE} at the {} endpoint: {}",
        set.via.as_deref().unwrap_or("?"),
        set.changed.join(", ")
    );
    if set.lost {
        text.push_str(" (response lost; a re-read confirms it)");
    }
    if !set.skipped.is_empty() {
        text.push_str(&format!(" (not applied at: {})", set.skipped.join("; ")));
    }
    text
}

/// The capture of `route53.routing_control`: each control's state before the step.
/// Every field is required: a capture that is not one must not restore anything.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ControlStates {
    states: Vec<ControlState>,
}

/// One control's captured state (`On` or `Off`, as ARC spells it).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ControlState {
    arn: String,
    state: String,
}

impl Journaled for ControlStates {}

/// What `route53.routing_control` reports, typed: how many controls it changed and
/// through which cluster endpoint's region.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SetOutput {
    updated: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_region: Option<String>,
}

impl Journaled for SetOutput {}

/// The "before" state: the current state of every control the step sets.
pub async fn capture(ctx: &StepContext<'_>, fields: &Fields) -> Result<Captured, ActionError> {
    let eps = endpoints(fields)?;
    let want = wanted(fields)?;
    let now = read_all(ctx, &eps, want.iter().map(|u| u.arn.as_str())).await?;
    Ok(ControlStates {
        states: now
            .iter()
            .map(|(arn, s)| ControlState {
                arn: arn.to_string(),
                state: s.as_str().to_string(),
            })
            .collect(),
    }
    .captured())
}

/// `route53.routing_control`.
pub async fn execute(ctx: &StepContext<'_>, fields: &Fields) -> Result<Executed, ActionError> {
    let eps = endpoints(fields)?;
    let want = wanted(fields)?;
    let overrides = f::list_or_empty(fields, "override_safety_rules")?;
    let set = set_states(ctx, &eps, &want, overrides).await?;
    if set.changed.is_empty() {
        return Ok(SetOutput::default().executed(format!(
            "already done: {} routing control(s) already as wanted",
            want.len()
        )));
    }
    Ok(SetOutput {
        updated: set.changed.len(),
        endpoint_region: set.via.clone(),
    }
    .executed(set_text(&set)))
}

/// Preflight of `route53.routing_control`: every control is readable through some
/// endpoint; what each is now.
pub async fn preflight(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let eps = endpoints(fields)?;
    let want = wanted(fields)?;
    let mut out = Vec::new();
    for u in &want {
        match read_one(ctx, &eps, &u.arn).await {
            Ok((now, region)) => out.push(Finding::ok(format!(
                "routing control {} is {} (read at the {region} endpoint){}",
                label(&u.arn),
                now.as_str(),
                if now == u.state {
                    " (already as wanted)".to_string()
                } else {
                    format!("; the step sets it {}", u.state.as_str())
                }
            ))),
            Err(e) if !e.is_retryable() => out.push(Finding::block(format!(
                "routing control {}: {}",
                label(&u.arn),
                e.message
            ))),
            Err(e) => return Err(e),
        }
    }
    let overrides = f::list_or_empty(fields, "override_safety_rules")?;
    if !overrides.is_empty() {
        out.push(Finding::ok(format!(
            "the update overrides safety rule(s) {}: nothing stops it from leaving \
                 traffic with no cell",
            overrides.join(", ")
        )));
    }
    Ok(out)
}

/// Verify of `route53.routing_control`: every control reads as set.
pub async fn verify(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let eps = endpoints(fields)?;
    let want = wanted(fields)?;
    let now = read_all(ctx, &eps, want.iter().map(|u| u.arn.as_str())).await?;
    let pending: Vec<String> = want
        .iter()
        .filter(|u| now.get(&u.arn) != Some(&u.state))
        .map(|u| format!("{} (wanted {})", label(&u.arn), u.state.as_str()))
        .collect();
    Ok(Observation {
        passed: pending.is_empty(),
        observed: if pending.is_empty() {
            let all: Vec<String> = want
                .iter()
                .map(|u| format!("{} {}", label(&u.arn), u.state.as_str()))
                .collect();
            format!("routing controls set: {}", all.join(", "))
        } else {
            format!("not yet set: {}", pending.join(", "))
        },
    })
}

/// The built-in inverse: the captured states, in one update.
pub async fn restore(
    ctx: &StepContext<'_>,
    fields: &Fields,
    captured: &Captured,
) -> Result<String, ActionError> {
    let bad = || ActionError::permanent("the captured routing control states are unreadable");
    let list = ControlStates::read(&captured.0).ok_or_else(bad)?.states;
    let mut want = Vec::new();
    for c in list {
        want.push(RoutingControlUpdate {
            state: parse_state(&c.state)?,
            arn: c.arn,
        });
    }
    if want.is_empty() {
        return Err(bad());
    }
    let eps = endpoints(fields)?;
    let overrides = f::list_or_empty(fields, "override_safety_rules")?;
    let set = set_states(ctx, &eps, &want, overrides).await?;
    Ok(if set.changed.is_empty() {
        format!(
            "already restored: {} routing control(s) as captured",
            want.len()
        )
    } else {
        format!("restored {}", set_text(&set))
    })
}

/// `route53.routing_control_state`.
pub async fn state(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let eps = endpoints(fields)?;
    let arn = f::str(fields, "routing_control_arn")?;
    let want = parse_state(f::str(fields, "state")?)?;
    let (now, region) = read_one(ctx, &eps, arn).await?;
    let observed = if now == want {
        format!(
            "routing control {} is {} (read at the {region} endpoint)",
            label(arn),
            now.as_str()
        )
    } else {
        format!(
            "routing control {} is {} (expected {}; read at the {region} endpoint)",
            label(arn),
            now.as_str(),
            want.as_str()
        )
    };
    Ok(Observation {
        passed: now == want,
        observed,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{CELL_USE1, CELL_USW2, Harness, SAFETY_RULE};
    use super::super::{capture, check, execute, preflight, rollback, verify};
    use super::*;
    use serde_json::json;

    /// The states of the two cells as the world holds them: (us-east-1, us-west-2).
    fn states(h: &Harness) -> (RoutingControlState, RoutingControlState) {
        h.world.with_state(|s| {
            (
                s.routing_controls[CELL_USE1].state,
                s.routing_controls[CELL_USW2].state,
            )
        })
    }

    /// A runbook with one `route53.routing_control` step, `arc`, over the two cells.
    fn one_step(states: &[(&str, &str)], extra: &str) -> String {
        let mut t = String::from(
            "[runbook]\nname = \"arc\"\nmode = \"unplanned\"\n[[step]]\nid = \"arc\"\n\
             action = \"route53.routing_control\"\ncluster_endpoints = [\n\
             { url = \"https://a.route53-recovery-cluster.us-east-1.amazonaws.com/v1\", region = \"us-east-1\" },\n\
             { url = \"https://b.route53-recovery-cluster.us-west-2.amazonaws.com/v1\", region = \"us-west-2\" },\n]\n",
        );
        t.push_str(extra);
        for (arn, state) in states {
            t.push_str(&format!(
                "[[step.states]]\nrouting_control_arn = \"{arn}\"\nstate = \"{state}\"\n"
            ));
        }
        t.push_str("[step.rollback]\n");
        t
    }

    /// `one_step`, after a check that the us-west-2 cell is Off: the world then has
    /// both cells (us-west-2 Off, us-east-1 On) and the cluster's safety rule "at least
    /// one cell On" (the one the step overrides, if it overrides one).
    fn after_west_is_off(text: &str) -> String {
        let check = format!(
            "[[step]]\nid = \"west-off\"\naction = \"route53.routing_control_state\"\n\
             cluster_endpoints = [\n\
             {{ url = \"https://a.route53-recovery-cluster.us-east-1.amazonaws.com/v1\", region = \"us-east-1\" }},\n\
             {{ url = \"https://b.route53-recovery-cluster.us-west-2.amazonaws.com/v1\", region = \"us-west-2\" }},\n]\n\
             routing_control_arn = \"{CELL_USW2}\"\nstate = \"Off\"\n"
        );
        text.replacen(
            "[[step]]\nid = \"arc\"",
            &format!("{check}[[step]]\nid = \"arc\""),
            1,
        )
    }

    /// The failover: us-west-2 On, us-east-1 Off; the world starts the other way round.
    fn failover() -> Harness {
        Harness::new(&one_step(&[(CELL_USW2, "On"), (CELL_USE1, "Off")], ""), "")
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_first_endpoint_gives_way_to_the_second() {
        let h = failover();
        h.down("us-east-1");
        let ctx = h.ctx("arc");
        let findings = preflight(&ctx).await.unwrap();
        assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
        assert!(
            findings[0]
                .message
                .contains("read at the us-west-2 endpoint"),
            "{findings:?}"
        );
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        assert_eq!(
            h.regions_of(UPDATE),
            ["us-east-1", "us-west-2"],
            "tried in the order given"
        );
        assert!(
            done.summary.starts_with(
                "UpdateRoutingControlStates at the us-west-2 endpoint: \
                 routingcontrol/c3a85f1d7e2b9460 Off -> On, routingcontrol/4b7d1e9a2c6f8e03 On -> Off"
            ),
            "{}",
            done.summary
        );
        assert!(
            done.summary.contains("not applied at: us-east-1"),
            "{}",
            done.summary
        );
        assert_eq!(
            states(&h),
            (RoutingControlState::Off, RoutingControlState::On)
        );
        assert!(verify(&ctx, &done).await.unwrap().passed);
        // Every read tried us-east-1 first, then moved on.
        let reads = h.regions_of(GET);
        assert!(
            reads.starts_with(&["us-east-1".to_string(), "us-west-2".to_string()]),
            "{reads:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_response_is_re_read_and_never_resent() {
        let h = failover();
        h.lose(UPDATE, 1);
        let ctx = h.ctx("arc");
        let done = execute(&ctx, None).await.unwrap();
        assert_eq!(h.calls_of(UPDATE).len(), 1, "one update call in all");
        assert!(
            done.summary.contains("at the us-east-1 endpoint")
                && done
                    .summary
                    .contains("(response lost; a re-read confirms it)"),
            "{}",
            done.summary
        );
        assert_eq!(
            states(&h),
            (RoutingControlState::Off, RoutingControlState::On)
        );
        // Idempotent: a second run reads, finds everything set, and sends nothing.
        let again = execute(&ctx, None).await.unwrap();
        assert_eq!(
            again.summary,
            "already done: 2 routing control(s) already as wanted"
        );
        assert_eq!(h.mutations(), 1);
        assert_eq!(h.applied(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_update_is_re_read_before_the_next_endpoint_gets_it() {
        let h = failover();
        h.fail(UPDATE, CloudErrorKind::Throttling, None, 1);
        let ctx = h.ctx("arc");
        let done = execute(&ctx, None).await.unwrap();
        assert_eq!(h.regions_of(UPDATE), ["us-east-1", "us-west-2"]);
        // Between the two updates, the states were read again.
        let calls: Vec<&'static str> = h.calls().iter().map(|c| c.operation).collect();
        let first = calls.iter().position(|op| *op == UPDATE).unwrap();
        let second = calls.iter().rposition(|op| *op == UPDATE).unwrap();
        assert!(calls[first..second].contains(&GET), "{calls:?}");
        assert!(done.summary.contains("at the us-west-2 endpoint"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_safety_rule_conflict_stops_at_once_and_an_override_passes_it() {
        // us-west-2 is already Off: turning us-east-1 Off leaves no cell On.
        let text = after_west_is_off(&one_step(&[(CELL_USE1, "Off")], ""));
        let h = Harness::new(&text, "");
        assert_eq!(
            states(&h),
            (RoutingControlState::On, RoutingControlState::Off)
        );
        // The world's rule: the runbook overrides none, so it has one of its own.
        let rule = h.world.with_state(|s| s.arc_safety_rule.clone()).unwrap();
        let e = execute(&h.ctx("arc"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent, "{e:?}");
        assert!(
            e.message.starts_with(
                "UpdateRoutingControlStates at the us-east-1 cluster endpoint: the update \
                 would violate safety rule"
            ) && e.message.contains(&rule)
                && e.message
                    .contains("(ConflictException; not tried elsewhere"),
            "{}",
            e.message
        );
        assert_eq!(h.regions_of(UPDATE), ["us-east-1"], "not retried");
        assert_eq!(states(&h).0, RoutingControlState::On, "nothing changed");
        assert_eq!(h.applied(), 0, "nothing changed");

        let text = after_west_is_off(&one_step(
            &[(CELL_USE1, "Off")],
            &format!("override_safety_rules = [\"{SAFETY_RULE}\"]\n"),
        ));
        let h = Harness::new(&text, "");
        assert_eq!(
            states(&h),
            (RoutingControlState::On, RoutingControlState::Off)
        );
        let rule = h.world.with_state(|s| s.arc_safety_rule.clone());
        assert_eq!(rule.as_deref(), Some(SAFETY_RULE), "the rule overridden");
        let ctx = h.ctx("arc");
        let findings = preflight(&ctx).await.unwrap();
        assert!(
            findings
                .iter()
                .any(|f| f.allows() && f.message.contains("overrides safety rule")),
            "{findings:?}"
        );
        execute(&ctx, None).await.unwrap();
        assert_eq!(
            states(&h),
            (RoutingControlState::Off, RoutingControlState::Off)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rollback_restores_the_captured_states_in_one_update() {
        let h = failover();
        let ctx = h.ctx("arc");
        let cap = capture(&ctx).await.unwrap();
        let done = execute(&ctx, cap.as_ref()).await.unwrap();
        let rb = ctx.step.rollback.as_ref().unwrap();
        let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        assert_eq!(
            s,
            "restored UpdateRoutingControlStates at the us-east-1 endpoint: \
             routingcontrol/4b7d1e9a2c6f8e03 Off -> On, routingcontrol/c3a85f1d7e2b9460 On -> Off"
        );
        assert_eq!(
            states(&h),
            (RoutingControlState::On, RoutingControlState::Off)
        );
        let s = rollback(&ctx, rb, cap.as_ref(), Some(&done)).await.unwrap();
        assert_eq!(s, "already restored: 2 routing control(s) as captured");
        assert_eq!(h.calls_of(UPDATE).len(), 2, "one each way");
        // A capture that is not one fails cleanly.
        let junk = Captured(json!({ "states": [{ "arn": CELL_USE1, "state": "Maybe" }] }));
        assert!(rollback(&ctx, rb, Some(&junk), None).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn when_no_endpoint_answers_the_error_lists_each_region_and_nothing_is_sent() {
        let h = failover();
        h.down("us-east-1");
        h.down("us-west-2");
        let e = execute(&h.ctx("arc"), None).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(
            e.message
                .starts_with("no cluster endpoint answered GetRoutingControlState (")
                && e.message.contains("us-east-1: no answer within")
                && e.message.contains("us-west-2: no answer within"),
            "{}",
            e.message
        );
        assert_eq!(h.mutations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_control_blocks_the_preflight_and_the_check_reads_through_any_endpoint() {
        let h = Harness::new(
            &one_step(&[(CELL_USW2, "On"), (CELL_USE1, "Off")], ""),
            &format!("[routing_controls.\"{CELL_USE1}\"]\nmissing = true\n"),
        );
        let findings = preflight(&h.ctx("arc")).await.unwrap();
        assert_eq!(findings.len(), 2);
        assert!(
            findings[0].allows() && !findings[1].allows(),
            "{findings:?}"
        );
        assert!(
            findings[1].message.contains("ResourceNotFoundException"),
            "{findings:?}"
        );

        let h = Harness::prod();
        h.down("us-east-1");
        let ctx = h.ctx("arc-state");
        let o = check(&ctx, ctx.step.spec, &ctx.step.fields, None)
            .await
            .unwrap();
        assert_eq!(
            (o.passed, o.observed.as_str()),
            (
                true,
                "routing control routingcontrol/4b7d1e9a2c6f8e03 is On (read at the us-west-2 endpoint)"
            )
        );
        // The gate of the failover step, before it ran: not yet.
        let ctx = h.ctx("arc");
        let gate = ctx.step.gate.as_ref().unwrap();
        let o = check(&ctx, gate.spec, &gate.fields, None).await.unwrap();
        assert!(!o.passed);
        assert!(o.observed.contains("is Off (expected On"), "{}", o.observed);
    }
}
