//! Preflight: read-only readiness of a whole runbook, before anything changes.
//!
//! Shared by `drpilot run` (the engine runs it first and stops with exit 5 when a
//! blocking finding fails) and `drpilot preflight` (which only reports). Every step's
//! action is asked what it can check without changing anything (resources exist and
//! are in the expected state, versions match, lag vs the RPO, ...); on top of that the
//! runbook as a whole is checked for dependencies an unplanned failover cannot afford.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::actions::reach::{reads_route53_health_metric, uses_route53_control_plane};
use crate::actions::{self, Finding, StepContext};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::cloud::aws::AwsCloud;
use crate::runbook::catalogue::Kind;
use crate::runbook::iam;
use crate::runbook::{Mode, Runbook, StepId};

use super::events::StepFinding;

/// Runs every step's preflight (skipping `skip`), `max_parallel` at a time as the run
/// itself would, each bounded by the step's timeout; findings in file order. A check
/// that could not reach the cloud blocks a planned run, which needs every region
/// healthy; in an unplanned run it is expected during the very outage being handled,
/// so it is a warning and the step checks again when it runs.
pub async fn steps(
    runbook: &Runbook,
    cloud: &Cloud,
    clock: &Clock,
    skip: &std::collections::BTreeSet<StepId>,
    max_parallel: usize,
) -> Vec<StepFinding> {
    use futures_util::StreamExt as _;
    let unplanned = runbook.runbook.mode == Mode::Unplanned;
    let futures = runbook
        .steps
        .iter()
        .filter(|s| !skip.contains(&s.id))
        .map(|step| {
            let ctx = StepContext {
                cloud: cloud.for_account(step.account.as_deref()),
                runbook,
                step,
                clock,
                interrupted: false,
            };
            async move {
                let findings = match tokio::time::timeout(
                    ctx.clock.to_real(ctx.step.timeout),
                    patient(&ctx),
                )
                .await
                {
                    Ok(Ok(f)) => f,
                    Ok(Err(e)) if unplanned && e.is_retryable() => vec![Finding::warn(format!(
                            "could not check ({e}); going ahead in an unplanned failover, the step checks again when it runs"
                        ))],
                    Ok(Err(e)) => vec![Finding::block(format!("preflight could not check: {e}"))],
                    Err(_) => vec![Finding::block("preflight timed out")],
                };
                findings
                    .into_iter()
                    .map(|finding| StepFinding {
                        step: step.id.clone(),
                        finding,
                    })
                    .collect::<Vec<_>>()
            }
        });
    futures_util::stream::iter(futures)
        .buffered(max_parallel.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Pauses between preflight attempts of one step when the cloud asked to slow down or
/// failed transiently: a throttled read must not stop a run (the SDK's own retries are
/// already spent when an error gets here).
const PREFLIGHT_BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(8),
];

/// A step's preflight, asked again after a retryable error (throttling, 5xx, no
/// answer) with [`PREFLIGHT_BACKOFF`]; the last error stands.
///
/// In an unplanned run a region that does not answer at all is the outage being
/// handled: that is reported at once, not waited for.
async fn patient(ctx: &StepContext<'_>) -> Result<Vec<Finding>, actions::ActionError> {
    let unplanned = ctx.runbook.runbook.mode == Mode::Unplanned;
    let mut pauses = PREFLIGHT_BACKOFF.iter();
    loop {
        match actions::preflight(ctx).await {
            Err(e) if worth_asking_again(&e, unplanned) => match pauses.next() {
                Some(p) => ctx.clock.sleep(*p).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// The whole readiness check of a run: every step's own checks, the control-plane
/// warnings, and what the caller checked before (IAM against AWS). Whether the run may
/// go ahead, and every finding. The engine runs it before the first step; guided mode
/// runs it before asking the operator to confirm.
pub async fn all(
    runbook: &Runbook,
    cloud: &Cloud,
    clock: &Clock,
    config: &crate::engine::RunConfig,
) -> (bool, Vec<StepFinding>) {
    let max_parallel = config
        .max_parallel
        .unwrap_or(crate::engine::DEFAULT_MAX_PARALLEL);
    let mut findings = steps(runbook, cloud, clock, &config.skip, max_parallel).await;
    findings.extend(control_plane_warnings(runbook));
    findings.extend(config.extra_preflight.iter().cloned());
    let ok = findings.iter().all(|f| f.finding.allows());
    (ok, findings)
}

/// Throttling and transient errors are; an unreachable region in an unplanned run is
/// the outage itself, and a region the breaker knows to be down is not asked again in
/// either kind of run (a planned one then stops at once: it needs every region).
fn worth_asking_again(e: &actions::ActionError, unplanned: bool) -> bool {
    let unreachable = e
        .cloud
        .as_ref()
        .is_some_and(|c| c.kind == crate::cloud::CloudErrorKind::Unreachable);
    let known_down = e
        .cloud
        .as_ref()
        .is_some_and(|c| crate::cloud::reach::is_region_unreachable(c));
    e.is_retryable() && !(unplanned && unreachable) && !known_down
}

/// Where Route 53's control plane is served (ChangeResourceRecordSets,
/// UpdateHealthCheck, GetChange, ListResourceRecordSets), and where Route 53 publishes
/// the CloudWatch `HealthCheckStatus` metric a health-check gate reads.
const ROUTE53_CONTROL_PLANE: &str = "us-east-1";

/// Warnings (never blocking) about an unplanned runbook that depends on a control
/// plane in the region it fails away from (`params.from`): in the outage it exists
/// for, those steps will fail. Route 53's control plane is in us-east-1; a switchover
/// is sent to the current primary's region.
pub fn control_plane_warnings(runbook: &Runbook) -> Vec<StepFinding> {
    if runbook.runbook.mode != Mode::Unplanned {
        return Vec::new();
    }
    let Some(from) = runbook.params.get("from") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for step in &runbook.steps {
        let mut kinds = vec![step.spec.kind];
        if let Some(g) = &step.gate {
            kinds.push(g.spec.kind);
        }
        if let Some(spec) = step.rollback.as_ref().and_then(|r| r.spec) {
            kinds.push(spec.kind);
        }
        for kind in kinds {
            let name = kind.name();
            let message = if from == ROUTE53_CONTROL_PLANE && uses_route53_control_plane(kind) {
                format!(
                    "{name} uses Route 53's control plane, served from {ROUTE53_CONTROL_PLANE}, the region this runbook fails away from; prefer route53.routing_control (ARC's data plane answers in five regions)"
                )
            } else if from == ROUTE53_CONTROL_PLANE && reads_route53_health_metric(kind) {
                format!(
                    "{name} reads Route 53's HealthCheckStatus from CloudWatch in {ROUTE53_CONTROL_PLANE}, the only region it is published in and the region this runbook fails away from; prefer a data-plane check (http.check, dns.check)"
                )
            } else if kind == Kind::AuroraSwitchover {
                format!(
                    "aurora.switchover is sent to the current primary's region ({from}) and needs every region healthy; an unplanned failover uses aurora.failover"
                )
            } else {
                continue;
            };
            out.push(StepFinding {
                step: step.id.clone(),
                finding: Finding::warn(message),
            });
        }
    }
    out
}
/// How long the IAM permission check may take in all: a few seconds. IAM is served from
/// us-east-1, the region a failover most often leaves; when it does not answer, the
/// check is a warning, never a wait (a silent IAM is refused by the breaker after one
/// probe timeout, within this bound).
const IAM_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// What IAM says about the runbook's needs, as preflight findings per step: a denied
/// permission blocks; when nothing could be simulated, one warning says why. Steps of
/// an `[accounts]` entry are simulated with that account's (assumed) identity.
/// `state` is what the run's S3 state store needs (`iam::state_needs`), checked for
/// the caller and reported on the first step.
///
/// `strict` is `drpilot preflight`'s reading: IAM *refusing* the simulation itself
/// (AccessDenied on `iam:SimulatePrincipalPolicy`, which `drpilot iam-policy` grants)
/// blocks, since readiness is then unproven. A run only warns: a missing diagnostic
/// permission must not stop a failover. An IAM that does not answer is a warning in
/// both.
pub async fn iam_findings(
    aws: &AwsCloud,
    accounts: &BTreeMap<String, AwsCloud>,
    rb: &Runbook,
    skip: &BTreeSet<StepId>,
    state: &BTreeSet<iam::Need>,
    strict: bool,
) -> Vec<StepFinding> {
    let by_step = iam::needs_by_step(rb);
    // Group the steps by the identity that acts for them.
    let mut groups: BTreeMap<Option<&str>, Vec<Checked>> = BTreeMap::new();
    for (id, needs) in by_step {
        if skip.contains(&id) || needs.is_empty() {
            continue;
        }
        let account = rb.step(&id).and_then(|s| s.account.as_deref());
        groups.entry(account).or_default().push(Checked {
            step: id,
            needs,
            what: "this step",
        });
    }
    if let Some(first) = rb.steps.first().filter(|_| !state.is_empty()) {
        groups.entry(None).or_default().push(Checked {
            step: first.id.clone(),
            needs: state.clone(),
            what: "the run's state store",
        });
    }
    let mut out = Vec::new();
    for (account, checked) in groups {
        let who = account.and_then(|a| accounts.get(a)).unwrap_or(aws);
        out.extend(simulate_group(who, account, &checked, strict).await);
    }
    out
}

/// Permissions checked together, reported on `step`.
struct Checked {
    step: StepId,
    needs: BTreeSet<iam::Need>,
    /// Whose needs, in the findings: "this step", "the run's state store".
    what: &'static str,
}

/// One identity's simulation, as findings for its steps.
async fn simulate_group(
    aws: &AwsCloud,
    account: Option<&str>,
    checked: &[Checked],
    strict: bool,
) -> Vec<StepFinding> {
    let Some(first) = checked.first().map(|c| c.step.clone()) else {
        return Vec::new();
    };
    let all: BTreeSet<iam::Need> = checked.iter().flat_map(|c| c.needs.clone()).collect();
    // A best-effort check: IAM's control plane (us-east-1) may be slow or down in the
    // very outage being handled, and must not hold the failover's preflight.
    let simulated = tokio::time::timeout(IAM_CHECK_TIMEOUT, aws.simulate(&all))
        .await
        .unwrap_or_else(|_| {
            Err(crate::cloud::CloudError::new(
                crate::cloud::CloudErrorKind::Unreachable,
                "SimulatePrincipalPolicy",
                None,
                format!("IAM did not answer within {}s", IAM_CHECK_TIMEOUT.as_secs()),
            ))
        });
    let whose = account
        .map(|a| format!(" for account `{a}`"))
        .unwrap_or_default();
    let results = match simulated {
        Ok(r) => r,
        Err(e) if strict && e.kind == crate::cloud::CloudErrorKind::AccessDenied => {
            return vec![StepFinding {
                step: first,
                finding: Finding::block(format!(
                    "IAM denies iam:SimulatePrincipalPolicy{whose}, which preflight needs to check the runbook's permissions (`drpilot iam-policy` grants it): {e}"
                )),
            }];
        }
        Err(e) => {
            return vec![StepFinding {
                step: first,
                finding: Finding::warn(format!("IAM permissions{whose} were not checked: {e}")),
            }];
        }
    };
    let decided: BTreeMap<&iam::Need, (bool, &str)> = results
        .iter()
        .map(|r| (&r.need, (r.allowed, r.decision.as_str())))
        .collect();
    let mut out = Vec::new();
    for c in checked {
        let mut denied = Vec::new();
        let mut unchecked = 0;
        for n in &c.needs {
            match decided.get(n) {
                Some((true, _)) => {}
                Some((false, decision)) => {
                    denied.push(format!("{} on {} ({decision})", n.action, n.resource))
                }
                None => unchecked += 1,
            }
        }
        let what = c.what;
        if denied.is_empty() {
            let checked = c.needs.len() - unchecked;
            out.push(StepFinding {
                step: c.step.clone(),
                finding: if unchecked == 0 {
                    Finding::ok(format!(
                        "IAM allows the {checked} permission(s) {what} needs"
                    ))
                } else {
                    Finding::warn(format!(
                        "IAM allows {checked} permission(s) {what} needs; {unchecked} in other accounts were not checked"
                    ))
                },
            });
        }
        for d in denied {
            let suffix = if what == "this step" {
                String::new()
            } else {
                format!(", which {what} needs")
            };
            out.push(StepFinding {
                step: c.step.clone(),
                finding: Finding::block(format!("IAM denies {d}{suffix}")),
            });
        }
    }
    out
}
