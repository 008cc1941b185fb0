//! What is sent, and how it reads. Only what a person acts on: the run started (who,
//! where, the plan), an approval is needed (what it unlocks, how to give it), a step
//! failed or keeps failing, a rollback started and finished, the run finished (outcome,
//! RTO and RPO against the objectives, where the report is).

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::{Event, EventKind, Outcome};
use crate::plan::Plan;
use crate::runbook::StepId;

/// Failed attempts after which a step that keeps retrying is worth a notification (or
/// fewer: when only its last attempt is left). Not fewer: the shipped runbooks'
/// verification checks poll by retrying, and fail 3 or 4 attempts in a normal run
/// while DNS and health checks catch up.
pub const RETRIED_NOTICE_AFTER: u32 = 5;

/// The failed attempt of a step with `attempts` in its retry policy that notifies:
/// the 5th, or the one before its last when that comes first.
pub fn retried_notice_at(attempts: u32) -> u32 {
    RETRIED_NOTICE_AFTER.min(attempts.saturating_sub(1)).max(1)
}

/// What a notification says besides its event: fixed for the run.
#[derive(Clone, Debug)]
pub struct Context {
    /// The runbook's name.
    pub runbook: String,
    /// `planned` switchover or `unplanned` failover.
    pub mode: String,
    /// Who started it: OS user and host.
    pub who: String,
    /// What it runs against: AWS or the simulated world.
    pub target: String,
    /// The regions the runbook names, the failover's target first.
    pub regions: Vec<String>,
    /// How many steps the plan has.
    pub steps: usize,
    /// The plan's predicted RTO.
    pub predicted_rto: Duration,
    /// The runbook's objectives.
    pub rto_objective: Option<Duration>,
    /// The runbook's objectives.
    pub rpo_objective: Option<Duration>,
    /// The steps that run after each step: what approving it unlocks.
    pub dependents: HashMap<StepId, Vec<StepId>>,
    /// Each step's attempts (its retry policy's): when its retrying is notified.
    pub attempts: HashMap<StepId, u32>,
    /// Approvals given up front (`--yes`, `--approve`): nobody needs asking for these.
    pub approvals: crate::engine::Approvals,
    /// Where the run's report is, in words (`drpilot report RUN_ID`, or the file a
    /// drill writes), with `{run_id}` for the run's id.
    pub report: String,
}

impl Context {
    /// From the plan; `target` says what the run acts on, `report` where its report
    /// will be (`{run_id}` replaced by the run's id).
    pub fn new(
        plan: &Plan<'_>,
        target: &str,
        report: Option<String>,
        approvals: crate::engine::Approvals,
    ) -> Self {
        let rb = plan.runbook;
        let mut dependents: HashMap<StepId, Vec<StepId>> = HashMap::new();
        for (i, deps) in plan.deps.iter().enumerate() {
            for &d in deps {
                dependents
                    .entry(rb.steps[d].id.clone())
                    .or_default()
                    .push(rb.steps[i].id.clone());
            }
        }
        Context {
            runbook: rb.runbook.name.clone(),
            mode: match rb.runbook.mode {
                crate::runbook::Mode::Planned => "planned switchover",
                crate::runbook::Mode::Unplanned => "unplanned failover",
            }
            .to_string(),
            who: who(),
            target: target.to_string(),
            regions: crate::actions::reach::runbook_regions(rb),
            steps: rb.steps.len(),
            predicted_rto: plan.predicted_rto,
            rto_objective: rb.objectives.rto,
            rpo_objective: rb.objectives.rpo,
            dependents,
            attempts: rb
                .steps
                .iter()
                .map(|s| (s.id.clone(), s.retry.attempts))
                .collect(),
            approvals,
            report: report.unwrap_or_else(|| "`drpilot report {run_id}`".to_string()),
        }
    }
}

/// `user@host` of this process, from the environment and the kernel: names, never a
/// credential.
fn who() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown-user".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

/// One notification, as each kind of receiver gets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// The event it is about (its name).
    pub about: &'static str,
    /// One line (an SNS subject: ASCII, at most 100 characters).
    pub subject: String,
    /// For people: what happened and what to do.
    pub text: String,
    /// For machines: the event as `docs/events.md` has it, plus `text`.
    pub json: serde_json::Value,
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn secs(s: f64) -> String {
    human(Duration::from_secs_f64(s.max(0.0)))
}

fn list(steps: &[StepId]) -> String {
    if steps.is_empty() {
        return "nothing".into();
    }
    steps
        .iter()
        .map(StepId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Against an objective: "6m (objective 15m, met)".
fn against(measured: f64, objective: Option<Duration>) -> String {
    match objective {
        Some(o) if measured > o.as_secs_f64() => {
            format!("{} (objective {}, MISSED)", secs(measured), human(o))
        }
        Some(o) => format!("{} (objective {}, met)", secs(measured), human(o)),
        None => secs(measured),
    }
}

/// The notification an event calls for, if any.
pub fn compose(ctx: &Context, e: &Event) -> Option<Notice> {
    let run = &e.run_id;
    let rb = &ctx.runbook;
    let (about, subject, text) = match &e.kind {
        EventKind::RunStarted { resumed, sim, .. } => {
            let verb = if *resumed { "resumed" } else { "started" };
            let target = if *sim {
                "the simulated world"
            } else {
                ctx.target.as_str()
            };
            let objective = ctx
                .rto_objective
                .map(|o| format!(" (objective {})", human(o)))
                .unwrap_or_default();
            (
                "run_started",
                format!("drpilot: {rb} {verb} ({run})"),
                format!(
                    "drpilot: run {run} of `{rb}` ({}) {verb} by {} against {}, regions {}: {} steps, predicted RTO {}{objective}.",
                    ctx.mode,
                    ctx.who,
                    target,
                    if ctx.regions.is_empty() {
                        "(none named)".to_string()
                    } else {
                        ctx.regions.join(", ")
                    },
                    ctx.steps,
                    human(ctx.predicted_rto),
                ),
            )
        }
        // Approved up front, by the one approval it needs: the run goes straight on,
        // and nobody is to be asked.
        EventKind::ApprovalNeeded {
            step, approvers, ..
        } if *approvers <= 1 && ctx.approvals.by(step).is_some() => return None,
        EventKind::ApprovalNeeded {
            step,
            message,
            approvers,
            at_risk,
            approve_with,
        } => {
            let message = message.trim_end_matches('.');
            let who = if *approvers > 1 {
                format!(" ({approvers} distinct people must approve)")
            } else {
                String::new()
            };
            let unlocks = ctx.dependents.get(step).cloned().unwrap_or_default();
            let risk = at_risk
                .as_ref()
                .map(|r| format!(" {}.", r.summary.trim_end_matches('.')))
                .unwrap_or_default();
            let approve = approve_with
                .clone()
                .unwrap_or_else(|| format!("drpilot approve {run} {step}"));
            let deny = approve.replacen("drpilot approve ", "drpilot deny ", 1);
            (
                "approval_needed",
                format!("drpilot: {rb} needs approval of {step} ({run})"),
                format!(
                    "drpilot: run {run} of `{rb}` waits for approval of step `{step}`{who}: {message}.{risk} \
                     Approving it unlocks: {}. Approve with `{approve}`, or refuse with `{deny} --reason TEXT`.",
                    list(&unlocks)
                ),
            )
        }
        EventKind::StepFailed { step, error } => (
            "step_failed",
            format!("drpilot: {rb} step {step} failed ({run})"),
            format!("drpilot: run {run} of `{rb}`: step `{step}` failed: {error}"),
        ),
        EventKind::AttemptFailed {
            step,
            attempt,
            error,
            will_retry: true,
            retry_in_secs,
        } if *attempt == retried_notice_at(ctx.attempts.get(step).copied().unwrap_or(u32::MAX)) => {
            (
                "attempt_failed",
                format!("drpilot: {rb} step {step} keeps failing ({run})"),
                format!(
                    "drpilot: run {run} of `{rb}`: step `{step}` failed {attempt} attempts (last: {error}); retrying{}.",
                    retry_in_secs
                        .map(|s| format!(" in {}", secs(s)))
                        .unwrap_or_default()
                ),
            )
        }
        EventKind::RollbackStarted { steps } => (
            "rollback_started",
            format!("drpilot: {rb} rolling back ({run})"),
            format!(
                "drpilot: run {run} of `{rb}` is rolling back {} step(s): {}.",
                steps.len(),
                list(steps)
            ),
        ),
        EventKind::RollbackFinished {
            clean,
            left_changed,
        } => (
            "rollback_finished",
            format!("drpilot: {rb} rollback finished ({run})"),
            if *clean {
                format!("drpilot: run {run} of `{rb}`: rollback finished, every change undone.")
            } else {
                format!(
                    "drpilot: run {run} of `{rb}`: rollback finished, but STILL CHANGED: {} (a person must check these).",
                    list(left_changed)
                )
            },
        ),
        EventKind::RunFinished {
            outcome,
            exit_code,
            makespan_secs,
            rto_secs,
            rpo_secs,
            reason,
            deferred,
        } => {
            let what = match outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::RolledBack => "failed and was rolled back",
                Outcome::PreflightFailed => "stopped at preflight (nothing changed)",
                Outcome::Aborted => "was aborted (resumable)",
                Outcome::Paused => "paused, awaiting a decision",
                Outcome::NeedsAttention => "failed and NEEDS A PERSON",
            };
            let mut text = format!(
                "drpilot: run {run} of `{rb}` {what} (exit {exit_code}) after {}",
                secs(*makespan_secs)
            );
            if let Some(rto) = rto_secs {
                text.push_str(&format!("; RTO {}", against(*rto, ctx.rto_objective)));
            }
            if let Some(rpo) = rpo_secs {
                text.push_str(&format!("; RPO {}", against(*rpo, ctx.rpo_objective)));
            }
            if let Some(r) = reason {
                text.push_str(&format!("; reason: {r}"));
            }
            if !deferred.is_empty() {
                text.push_str(&format!(
                    "; deferred {} (`drpilot resume {run}` runs them)",
                    list(deferred)
                ));
            }
            text.push_str(&format!(
                ". Report: {}.",
                ctx.report.replace("{run_id}", run.as_str())
            ));
            (
                "run_finished",
                format!("drpilot: {rb} {what} ({run})"),
                text,
            )
        }
        _ => return None,
    };
    let mut json = serde_json::to_value(e).ok()?;
    if let Some(o) = json.as_object_mut() {
        o.insert("text".into(), serde_json::Value::String(text.clone()));
    }
    Some(Notice {
        about,
        subject: crate::cloud::sns_subject(&subject),
        text,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunId;

    fn ctx() -> Context {
        Context {
            runbook: "region-failover".into(),
            mode: "unplanned failover".into(),
            who: "oncall@box".into(),
            target: "AWS".into(),
            regions: vec!["us-west-2".into(), "us-east-1".into()],
            steps: 12,
            predicted_rto: Duration::from_secs(390),
            rto_objective: Some(Duration::from_secs(900)),
            rpo_objective: Some(Duration::from_secs(30)),
            dependents: HashMap::from([(
                StepId::new("approve"),
                vec![StepId::new("aurora-promote"), StepId::new("valkey-promote")],
            )]),
            attempts: HashMap::from([(StepId::new("s"), 6), (StepId::new("short"), 3)]),
            approvals: crate::engine::Approvals {
                all: false,
                steps: [StepId::new("pre-approved")].into(),
            },
            report: "`drpilot report {run_id}`".into(),
        }
    }

    fn event(kind: EventKind) -> Event {
        Event {
            run_id: RunId("rf-1".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind,
        }
    }

    #[test]
    fn an_approval_says_what_it_unlocks_and_how_to_give_it() {
        let n = compose(
            &ctx(),
            &event(EventKind::ApprovalNeeded {
                step: StepId::new("approve"),
                message: "promote us-west-2".into(),
                approvers: 2,
                at_risk: None,
                approve_with: None,
            }),
        )
        .unwrap();
        assert!(
            n.text.contains("unlocks: aurora-promote, valkey-promote"),
            "{}",
            n.text
        );
        assert!(
            n.text.contains("`drpilot approve rf-1 approve`"),
            "{}",
            n.text
        );
        assert_eq!(n.json["event"], "approval_needed");
        assert_eq!(n.json["step"], "approve");
        assert_eq!(n.json["text"], n.text);

        // With what approving now may lose, and the run's own approve command (its
        // state store named).
        let n = compose(
            &ctx(),
            &event(EventKind::ApprovalNeeded {
                step: StepId::new("approve"),
                message: "promote us-west-2".into(),
                approvers: 1,
                at_risk: Some(crate::actions::at_risk::AtRisk {
                    aurora: Vec::new(),
                    s3: Vec::new(),
                    valkey: Vec::new(),
                    window_secs: Some(4.0),
                    summary: "If you approve now, writes in the last 4.0s may be lost".into(),
                }),
                approve_with: Some("drpilot approve rf-1 approve --state /srv/dr".into()),
            }),
        )
        .unwrap();
        assert!(
            n.text.contains(
                "promote us-west-2. If you approve now, writes in the last 4.0s may be lost. \
                 Approving it unlocks"
            ),
            "{}",
            n.text
        );
        assert!(
            n.text
                .contains("`drpilot approve rf-1 approve --state /srv/dr`")
                && n.text
                    .contains("`drpilot deny rf-1 approve --state /srv/dr --reason TEXT`"),
            "{}",
            n.text
        );
    }

    #[test]
    fn only_what_a_person_acts_on_is_sent() {
        let c = ctx();
        let failed_of = |step: &str, attempt, will_retry| {
            compose(
                &c,
                &event(EventKind::AttemptFailed {
                    step: StepId::new(step),
                    attempt,
                    error: "503".into(),
                    will_retry,
                    retry_in_secs: will_retry.then_some(2.0),
                }),
            )
        };
        let failed = |attempt, will_retry| failed_of("s", attempt, will_retry);
        for routine in 1..RETRIED_NOTICE_AFTER {
            assert!(failed(routine, true).is_none(), "{routine}");
        }
        assert!(failed(RETRIED_NOTICE_AFTER, true).is_some());
        assert!(failed(RETRIED_NOTICE_AFTER + 1, true).is_none());
        assert!(failed(RETRIED_NOTICE_AFTER, false).is_none());
        // Three attempts: the second failure leaves only the last.
        assert!(failed_of("short", 1, true).is_none());
        assert!(failed_of("short", 2, true).is_some());
        // Approved by flag: nobody is asked.
        assert!(
            compose(
                &c,
                &event(EventKind::ApprovalNeeded {
                    step: StepId::new("pre-approved"),
                    message: "go".into(),
                    approvers: 1,
                    at_risk: None,
                    approve_with: None,
                })
            )
            .is_none()
        );
        assert!(
            compose(
                &c,
                &event(EventKind::StepStarted {
                    step: StepId::new("s"),
                    attempt: 1
                })
            )
            .is_none()
        );
    }

    #[test]
    fn the_end_compares_with_the_objectives_and_says_where_the_report_is() {
        let n = compose(
            &ctx(),
            &event(EventKind::RunFinished {
                outcome: Outcome::Succeeded,
                exit_code: 0,
                makespan_secs: 400.0,
                rto_secs: Some(1000.0),
                rpo_secs: Some(2.0),
                reason: None,
                deferred: vec![],
            }),
        )
        .unwrap();
        assert!(
            n.text.contains("RTO 16m 40s (objective 15m, MISSED)"),
            "{}",
            n.text
        );
        assert!(n.text.contains("RPO 2s (objective 30s, met)"), "{}", n.text);
        assert!(
            n.text.contains("Report: `drpilot report rf-1`"),
            "{}",
            n.text
        );
    }
}
