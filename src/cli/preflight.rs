//! `drpilot preflight` and `drpilot iam-policy`.
//!
//! The preflight is the engine's own (the same checks `drpilot run` makes before
//! changing anything), plus, against AWS, whether IAM lets the caller do what the
//! runbook needs. It never changes anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::args::{Output, PreflightArgs};
use super::exit;
use super::run::{connect_aws, fail, load_runbook, load_sim_config, random_seed, skips};
use crate::actions::Finding;
use crate::clock::Clock;
use crate::cloud::aws::AwsCloud;
use crate::engine::events::StepFinding;
use crate::engine::preflight;
use crate::journal::AwsHeader;
use crate::runbook::{Runbook, StepId, iam};
use crate::sim::SimWorld;

/// How long the IAM permission check may take in all: a few seconds. IAM is served from
/// us-east-1, the region a failover most often leaves; when it does not answer, the
/// check is a warning, never a wait (a silent IAM is refused by the breaker after one
/// probe timeout, within this bound).
const IAM_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// What IAM says about the runbook's needs, as preflight findings per step: a denied
/// permission blocks; when nothing could be simulated, one warning says why. Steps of
/// an `[accounts]` entry are simulated with that account's (assumed) identity.
pub(super) async fn iam_findings(
    aws: &AwsCloud,
    accounts: &BTreeMap<String, AwsCloud>,
    rb: &Runbook,
    skip: &BTreeSet<StepId>,
) -> Vec<StepFinding> {
    let by_step = iam::needs_by_step(rb);
    // Group the steps by the identity that acts for them.
    let mut groups: BTreeMap<Option<&str>, Vec<(StepId, BTreeSet<iam::Need>)>> = BTreeMap::new();
    for (id, needs) in by_step {
        if skip.contains(&id) || needs.is_empty() {
            continue;
        }
        let account = rb.step(&id).and_then(|s| s.account.as_deref());
        groups.entry(account).or_default().push((id, needs));
    }
    let mut out = Vec::new();
    for (account, steps) in groups {
        let who = account.and_then(|a| accounts.get(a)).unwrap_or(aws);
        out.extend(simulate_group(who, account, &steps).await);
    }
    out
}

/// One identity's simulation, as findings for its steps.
async fn simulate_group(
    aws: &AwsCloud,
    account: Option<&str>,
    by_step: &[(StepId, BTreeSet<iam::Need>)],
) -> Vec<StepFinding> {
    let Some(first) = by_step.first().map(|(s, _)| s.clone()) else {
        return Vec::new();
    };
    let all: BTreeSet<iam::Need> = by_step.iter().flat_map(|(_, n)| n.clone()).collect();
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
        Err(e) => {
            return vec![StepFinding {
                step: first,
                finding: Finding {
                    ok: true,
                    message: format!("warning: IAM permissions{whose} were not checked: {e}"),
                },
            }];
        }
    };
    let decided: BTreeMap<&iam::Need, (bool, &str)> = results
        .iter()
        .map(|r| (&r.need, (r.allowed, r.decision.as_str())))
        .collect();
    let mut out = Vec::new();
    for (step, needs) in by_step {
        let mut denied = Vec::new();
        let mut unchecked = 0;
        for n in needs {
            match decided.get(n) {
                Some((true, _)) => {}
                Some((false, decision)) => {
                    denied.push(format!("{} on {} ({decision})", n.action, n.resource))
                }
                None => unchecked += 1,
            }
        }
        if denied.is_empty() {
            let checked = needs.len() - unchecked;
            out.push(StepFinding {
                step: step.clone(),
                finding: Finding {
                    ok: true,
                    message: if unchecked == 0 {
                        format!("IAM allows the {checked} permission(s) this step needs")
                    } else {
                        format!(
                            "warning: IAM allows {checked} permission(s); {unchecked} in other accounts were not checked"
                        )
                    },
                },
            });
        }
        for d in denied {
            out.push(StepFinding {
                step: step.clone(),
                finding: Finding {
                    ok: false,
                    message: format!("IAM denies {d}"),
                },
            });
        }
    }
    out
}

/// `drpilot preflight FILE`.
pub fn preflight(args: PreflightArgs) -> u8 {
    let params: BTreeMap<String, String> = args.params.iter().cloned().collect();
    let (loaded, _text) = match load_runbook(&args.file, &params) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rb = loaded.runbook;
    let skip = match skips(&args.skip_step, &rb) {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let state = match super::run::state_store(
        &args.state.state,
        Some(&rb),
        args.profile.as_deref(),
        args.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // A live holder of the runbook's lock means a run would be refused (exit 6).
    let holder = state
        .holder(&rb.runbook.name)
        .ok()
        .flatten()
        .filter(|(_, stale)| !stale)
        .map(|(h, _)| h);
    let sim_config = if args.sim {
        match load_sim_config(args.sim_config.as_deref()) {
            Ok(c) => Some(c),
            Err(code) => return code,
        }
    } else {
        None
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(exit::USAGE, format!("failed to start the runtime: {e}")),
    };
    let state_warnings = super::run::state_findings(&rb, &state);
    let findings = rt.block_on(async {
        let clock = Clock::with_speed(1.0);
        let mut findings;
        let regions;
        match sim_config {
            Some(config) => {
                let seed = args.seed.unwrap_or_else(random_seed);
                let world = match SimWorld::from_runbook(&rb, &config, seed, clock.clone()) {
                    Ok(w) => w,
                    Err(e) => {
                        eprint!(
                            "{}",
                            e.render(crate::runbook::RenderStyle::Fancy {
                                color: false,
                                width: 100
                            })
                        );
                        return Err(fail(
                            exit::USAGE,
                            "the simulated world cannot be built from this runbook and --sim-config",
                        ));
                    }
                };
                let cloud = world.cloud();
                super::run::watch_regions(&cloud, &rb, false);
                findings = preflight::steps(
                    &rb,
                    &cloud,
                    &clock,
                    &skip,
                    crate::engine::DEFAULT_MAX_PARALLEL,
                )
                .await;
                regions = cloud.reach.verdicts().await;
            }
            None => {
                let aws = connect_aws(
                    &AwsHeader {
                        profile: args.profile.clone(),
                        endpoint_url: args.endpoint_url.clone(),
                    },
                    &rb,
                )
                .await;
                let (cloud, accounts) = super::run::accounts_cloud(&aws, &rb).await;
                super::run::watch_regions(&cloud, &rb, true);
                findings = preflight::steps(&rb, &cloud, &clock, &skip, crate::engine::DEFAULT_MAX_PARALLEL)
                    .await;
                findings.extend(iam_findings(&aws, &accounts, &rb, &skip).await);
                regions = cloud.reach.verdicts().await;
            }
        }
        findings.extend(preflight::control_plane_warnings(&rb));
        findings.extend(state_warnings);
        Ok((findings, regions))
    });
    let (findings, regions) = match findings {
        Ok(f) => f,
        Err(code) => return code,
    };
    let lock = holder.as_ref().map(|h| {
        format!(
            "the runbook's lock is held by run {} (pid {} on {}): a run now would be refused",
            h.run_id, h.pid, h.host
        )
    });
    let ok = findings.iter().all(|f| f.finding.ok) && lock.is_none();
    let text = match args.output {
        Output::Json => format!(
            "{}\n",
            serde_json::json!({
                "runbook": rb.runbook.name,
                "mode": rb.runbook.mode,
                "ok": ok,
                "lock": lock,
                "findings": findings,
                "regions": regions,
            })
        ),
        Output::Human => {
            let mut t = table(&rb, &findings, ok);
            let r = regions_table(&regions);
            if !r.is_empty() {
                t.push_str(&format!("\nregions\n{r}"));
            }
            if let Some(l) = &lock {
                t.push_str(&format!("blocking: {l}\n"));
            }
            t
        }
    };
    let code = super::print_stdout(&text);
    if code != exit::SUCCESS {
        return code;
    }
    if ok {
        exit::SUCCESS
    } else {
        exit::PREFLIGHT_FAILED
    }
}

/// What the probes found of each region the runbook calls, for people: a table of the
/// ones that do not answer normally, and one line for those that do.
pub(super) fn regions_table(regions: &[crate::cloud::reach::RegionStatus]) -> String {
    use crate::cloud::reach::Reachability as R;
    if regions.is_empty() {
        return String::new();
    }
    let mut fine: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in regions.iter().filter(|r| r.status == R::Reachable) {
        fine.entry(r.region.as_str())
            .or_default()
            .push(r.service.as_str());
    }
    let fine_line = if fine.is_empty() {
        String::new()
    } else {
        format!(
            "answering: {}\n",
            fine.iter()
                .map(|(region, services)| format!("{region} ({})", services.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let mut rows: Vec<&crate::cloud::reach::RegionStatus> = regions
        .iter()
        .filter(|r| r.status != R::Reachable)
        .collect();
    if rows.is_empty() {
        return fine_line;
    }
    rows.sort_by_key(|r| (r.region.clone(), r.service.clone()));
    let rw = rows
        .iter()
        .map(|r| r.region.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let sw = rows
        .iter()
        .map(|r| r.service.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut s = format!(
        "{:<rw$}  {:<sw$}  {:<11}  {:>7}  HOW IT WAS DECIDED\n",
        "REGION", "SERVICE", "STATUS", "LATENCY"
    );
    for r in &rows {
        let status = match r.status {
            R::Reachable => "reachable",
            R::Slow => "SLOW",
            R::Unreachable => "UNREACHABLE",
        };
        let latency = r
            .latency_ms
            .map_or_else(|| "-".to_string(), crate::report::human::millis);
        s.push_str(&format!(
            "{:<rw$}  {:<sw$}  {status:<11}  {latency:>7}  {}\n",
            r.region, r.service, r.decided_by
        ));
    }
    let down = rows.iter().filter(|r| r.status == R::Unreachable).count();
    if down > 0 {
        s.push_str(&format!(
            "{down} unreachable: calls to them fail at once; read-only checks there are skipped (unplanned) or fail (planned)\n"
        ));
    }
    s.push_str(&fine_line);
    s
}

/// The findings as a table for people: step, result, what was seen.
pub(super) fn table(rb: &Runbook, findings: &[StepFinding], ok: bool) -> String {
    let width = findings
        .iter()
        .map(|f| f.step.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "preflight of {} ({:?})\n\n{:<width$}  {:<7}  FINDING\n",
        rb.runbook.name, rb.runbook.mode, "STEP", "RESULT"
    );
    let mut order: Vec<&StepFinding> = findings.iter().collect();
    let index: BTreeMap<&StepId, usize> = rb
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| (&st.id, i))
        .collect();
    order.sort_by_key(|f| index.get(&f.step).copied().unwrap_or(usize::MAX));
    for f in order {
        let result = match (f.finding.ok, f.finding.message.starts_with("warning:")) {
            (false, _) => "FAIL",
            (true, true) => "warn",
            (true, false) => "ok",
        };
        let message = f
            .finding
            .message
            .strip_prefix("warning: ")
            .unwrap_or(&f.finding.message);
        s.push_str(&format!(
            "{:<width$}  {result:<7}  {message}\n",
            f.step.as_str()
        ));
    }
    let failed = findings.iter().filter(|f| !f.finding.ok).count();
    let warned = findings
        .iter()
        .filter(|f| f.finding.ok && f.finding.message.starts_with("warning:"))
        .count();
    s.push_str(&format!(
        "\n{}: {} finding(s), {failed} blocking, {warned} warning(s)\n",
        if ok { "ready" } else { "NOT READY" },
        findings.len()
    ));
    s
}

/// `drpilot iam-policy FILE`.
pub fn iam_policy(file: &Path, params: Vec<(String, String)>) -> u8 {
    let params: BTreeMap<String, String> = params.into_iter().collect();
    let (loaded, _text) = match load_runbook(file, &params) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let needs = iam::needs(&loaded.runbook);
    let policies = iam::policies(&needs);
    // One account: the policy document itself, ready for `aws iam put-role-policy`.
    // Several: an object keyed by account.
    let doc = if policies.len() == 1 {
        policies.into_values().next().unwrap_or_default()
    } else {
        serde_json::to_value(&policies).unwrap_or_default()
    };
    super::print_stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    ))
}
