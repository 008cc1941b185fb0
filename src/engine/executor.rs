//! Runs one step: approval, capture, attempts with retries and timeouts, completion,
//! gate. And rolls one step back.
//!
//! An executor owns nothing the dispatcher reads: it reports every transition as an
//! [`EventKind`] through its channel and returns the step's result. It waits for the
//! dispatcher to acknowledge the `captured` event (journaled and fsynced) before it
//! calls `execute`, so a crash at any later point still knows what rollback restores.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::RunConfig;
use super::events::EventKind;
use super::retry::Backoff;
use crate::actions::{self, ActionError, ActionErrorKind, Captured, Executed, StepContext};
use crate::cloud::CloudErrorKind;
use crate::cloud::reach::is_region_unreachable;
use crate::runbook::model::{DEFAULT_GATE_INTERVAL, OnUnreachable};
use crate::runbook::{Mode, Runbook, StepId};

/// A progress report from an executor; `ack` is answered once the event is durable.
#[derive(Debug)]
pub struct Report {
    /// The event.
    pub kind: EventKind,
    /// Answered after every sink has the event.
    pub ack: Option<oneshot::Sender<()>>,
}

/// Sends reports to the dispatcher.
#[derive(Clone, Debug)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<Report>,
}

impl Reporter {
    /// Wraps the dispatcher's channel.
    pub fn new(tx: mpsc::UnboundedSender<Report>) -> Self {
        Self { tx }
    }

    /// Reports without waiting.
    pub fn send(&self, kind: EventKind) {
        // The dispatcher outlives every executor; a closed channel means it is gone
        // and nobody is left to tell.
        let _ = self.tx.send(Report { kind, ack: None });
    }

    /// Reports and waits until the event is durable. Returns false when the
    /// dispatcher could not record it (the journal failed): the caller must not go on.
    pub async fn send_durable(&self, kind: EventKind) -> bool {
        let (ack, done) = oneshot::channel();
        if self
            .tx
            .send(Report {
                kind,
                ack: Some(ack),
            })
            .is_err()
        {
            return false;
        }
        done.await.is_ok()
    }
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq)]
pub enum StepResult {
    /// Done; what it did.
    Succeeded(String),
    /// Failed for good; why.
    Failed(String),
    /// A read-only step could not reach a region and its `on_unreachable` is `skip`
    /// (the default in an unplanned run): skipped, with why. The outage being failed
    /// away from makes some checks impossible; it must not stop the failover. Mutating
    /// steps never end this way.
    Unreachable(String),
    /// A region the step needs is unreachable and its `on_unreachable` is `defer`: left
    /// for `drpilot resume`, with why.
    Deferred(String),
}

/// Each step's effective `on_unreachable`: the runbook's, else the default for its
/// kind. A step the recovery does not depend on (after the `recovered_when` steps) is
/// deferred; one that changes something (or an approval) retries; a read-only one is
/// skipped in an unplanned run, whose outage is the reason for it, and fails in a
/// planned one, which needs every region healthy.
pub fn on_unreachable_policies(rb: &Runbook, deps: &[Vec<usize>]) -> Vec<OnUnreachable> {
    let recovered: Vec<usize> = rb
        .objectives
        .recovered_when
        .iter()
        .filter_map(|id| rb.steps.iter().position(|s| &s.id == id))
        .collect();
    let path = crate::plan::graph::recovery_path(deps, recovered);
    rb.steps
        .iter()
        .zip(path)
        .map(|(s, on_path)| match s.on_unreachable {
            Some(p) => p,
            None if !on_path => OnUnreachable::Defer,
            None if s.is_mutating() || s.approval => OnUnreachable::Retry,
            None if rb.runbook.mode == Mode::Unplanned => OnUnreachable::Skip,
            None => OnUnreachable::Fail,
        })
        .collect()
}

/// How a step whose call was refused because its region is known to be unreachable
/// (or whose last attempt got no answer) ends, by its policy; `None`: keep retrying.
fn unreachable_result(
    policy: OnUnreachable,
    e: &ActionError,
    final_attempt: bool,
) -> Option<StepResult> {
    let unreachable = e
        .cloud
        .as_ref()
        .is_some_and(|c| c.kind == CloudErrorKind::Unreachable);
    let known_down = e.cloud.as_ref().is_some_and(|c| is_region_unreachable(c));
    if !(known_down || (final_attempt && unreachable)) {
        return None;
    }
    let why = &e.message;
    match policy {
        OnUnreachable::Skip => Some(StepResult::Unreachable(format!(
            "could not check ({why}); skipped: on_unreachable = \"skip\""
        ))),
        OnUnreachable::Defer => Some(StepResult::Deferred(why.clone())),
        OnUnreachable::Fail => Some(StepResult::Failed(format!(
            "{why} (on_unreachable = \"fail\")"
        ))),
        // Retried like any failure; the last attempt's error is the step's.
        OnUnreachable::Retry => None,
    }
}

/// What a step starts from on resume.
#[derive(Clone, Debug, Default)]
pub struct Resumed {
    /// The capture journaled before the crash.
    pub captured: Option<Captured>,
    /// What `execute` reported before the crash.
    pub executed: Option<Executed>,
    /// Attempts already made.
    pub attempts: u32,
}

fn seed_for(config: &RunConfig, step: &StepId) -> Option<u64> {
    config.jitter_seed.map(|s| {
        // FNV-1a of the step id, mixed with the run's seed: per-step, reproducible.
        let h = step
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        s ^ h
    })
}

/// Runs `ctx.step` to its end; `policy` is its effective `on_unreachable`.
pub async fn run_step(
    mut ctx: StepContext<'_>,
    config: &RunConfig,
    approved_by: Option<&'static str>,
    resumed: Resumed,
    report: Reporter,
    policy: OnUnreachable,
) -> StepResult {
    let step = ctx.step;
    let id = step.id.clone();
    let clock = ctx.clock;

    if step.approval {
        let message = match step.fields.get("message") {
            Some(crate::runbook::model::FieldValue::Str(m)) => m.clone(),
            _ => format!("approve step `{id}` ({})", step.spec.name),
        };
        // What approving now may lose, read now; recorded (and shown) before anyone is
        // asked.
        let at_risk = match ctx.runbook.steps.iter().position(|s| s.id == id) {
            Some(i) => crate::actions::at_risk::read(ctx.cloud, ctx.runbook, i).await,
            None => None,
        };
        let shown = match &at_risk {
            Some(r) => format!(
                "{message}
{}",
                r.summary
            ),
            None => message.clone(),
        };
        report
            .send_durable(EventKind::ApprovalNeeded {
                step: id.clone(),
                message: message.clone(),
                approvers: step.approvers.max(1),
                at_risk,
                approve_with: config
                    .approval_source
                    .as_ref()
                    .map(|s| s.approve_command(&id)),
            })
            .await;
        match super::approvals::obtain(step, &shown, approved_by, config, &report).await {
            Ok((by, approvers)) => report.send(EventKind::Approved {
                step: id.clone(),
                by,
                approvers,
            }),
            Err(why) => return StepResult::Failed(why),
        }
    }

    // The "before" state, durable before anything changes.
    let captured = match resumed.captured {
        Some(c) => Some(c),
        None => match with_retries(&ctx, config, policy, "capture", |ctx| async move {
            Box::pin(actions::capture(&ctx)).await
        })
        .await
        {
            Ok(Some(c)) => {
                if !report
                    .send_durable(EventKind::Captured {
                        step: id.clone(),
                        captured: c.clone(),
                    })
                    .await
                {
                    return StepResult::Failed("the journal could not record the capture".into());
                }
                Some(c)
            }
            Ok(None) => None,
            Err(e) => {
                if let Some(r) = unreachable_result(policy, &e, true) {
                    return r;
                }
                return StepResult::Failed(format!(
                    "capturing the state before the change failed: {e}"
                ));
            }
        },
    };

    // The action, attempt by attempt.
    let executed = match resumed.executed {
        Some(x) => x,
        None => {
            let mut backoff = Backoff::new(&step.retry, seed_for(config, &id));
            let mut attempt = resumed.attempts;
            loop {
                attempt += 1;
                report.send(EventKind::StepStarted {
                    step: id.clone(),
                    attempt,
                });
                // Actions' futures are boxed here and below: the largest action's state
                // would otherwise be part of every step's future, allocated for every
                // ready step at once however small its own action is.
                let result = tokio::time::timeout(
                    clock.to_real(step.timeout),
                    Box::pin(actions::execute(&ctx, captured.as_ref())),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(ActionError::retryable(format!(
                        "timed out after {}; the outcome is unknown and will be re-read before any resend",
                        humantime::format_duration(step.timeout)
                    )))
                });
                match result {
                    Ok(x) => break x,
                    Err(e) => {
                        // A region known to be down: resolved now by the step's policy,
                        // not retried against a region that does not answer.
                        let resolved = unreachable_result(policy, &e, false);
                        let delay = if e.is_retryable() && resolved.is_none() {
                            backoff.next_delay(e.kind == ActionErrorKind::Throttled)
                        } else {
                            None
                        };
                        report.send(EventKind::AttemptFailed {
                            step: id.clone(),
                            attempt,
                            error: e.message.clone(),
                            will_retry: delay.is_some(),
                            retry_in_secs: delay.map(|d| d.as_secs_f64()),
                        });
                        if let Some(r) = resolved {
                            return r;
                        }
                        // The attempt may have sent its call and got no answer: the
                        // next one may find that call's operation in progress, as a
                        // step resumed after a crash may.
                        ctx.interrupted = true;
                        match delay {
                            Some(d) => clock.sleep(d).await,
                            None => {
                                return unreachable_result(policy, &e, true).unwrap_or_else(|| {
                                    StepResult::Failed(failure_text(&e, attempt))
                                });
                            }
                        }
                    }
                }
            }
        }
    };
    if !report
        .send_durable(EventKind::Executed {
            step: id.clone(),
            executed: executed.clone(),
        })
        .await
    {
        return StepResult::Failed("the journal could not record the step's result".into());
    }

    // The action's own completion.
    if step.is_mutating() {
        let interval = config.verify_interval.unwrap_or(DEFAULT_GATE_INTERVAL);
        if let Err(e) = poll(&ctx, "verify", step.timeout, interval, &report, || {
            Box::pin(actions::verify(&ctx, &executed))
        })
        .await
        {
            return StepResult::Failed(e);
        }
    }

    // The health gate.
    if let Some(gate) = &step.gate {
        let check = gate.spec.name;
        if let Err(e) = poll(&ctx, check, gate.timeout, gate.interval, &report, || {
            Box::pin(actions::check(
                &ctx,
                gate.spec,
                &gate.fields,
                Some(&executed),
            ))
        })
        .await
        {
            return StepResult::Failed(e);
        }
    }
    StepResult::Succeeded(executed.summary)
}

fn failure_text(e: &ActionError, attempts: u32) -> String {
    match e.kind {
        ActionErrorKind::Refused => format!("refused: {}", e.message),
        ActionErrorKind::Permanent => e.message.clone(),
        ActionErrorKind::Retryable | ActionErrorKind::Throttled => {
            format!(
                "{} (gave up after {attempts} attempt{})",
                e.message,
                if attempts == 1 { "" } else { "s" }
            )
        }
    }
}

/// Retries a read-only call per the step's policy (no events: reads are cheap and the
/// attempt events are about the action); a region known to be down ends it at once
/// unless the step's `on_unreachable` is `retry`.
async fn with_retries<'a, T, F, Fut>(
    ctx: &StepContext<'a>,
    config: &RunConfig,
    policy: OnUnreachable,
    what: &str,
    mut call: F,
) -> Result<T, ActionError>
where
    F: FnMut(StepContext<'a>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ActionError>>,
{
    let mut backoff = Backoff::new(&ctx.step.retry, seed_for(config, &ctx.step.id));
    loop {
        let result = tokio::time::timeout(ctx.clock.to_real(ctx.step.timeout), call(*ctx))
            .await
            .unwrap_or_else(|_| Err(ActionError::retryable(format!("{what} timed out"))));
        match result {
            Ok(v) => return Ok(v),
            Err(e) if unreachable_result(policy, &e, false).is_some() => return Err(e),
            Err(e) if e.is_retryable() => {
                match backoff.next_delay(e.kind == ActionErrorKind::Throttled) {
                    Some(d) => ctx.clock.sleep(d).await,
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Polls `observe` every `interval` until it passes or `timeout` passes. Errors that
/// are retryable count as "not yet"; others end the poll.
async fn poll<F, Fut>(
    ctx: &StepContext<'_>,
    check: &str,
    timeout: Duration,
    interval: Duration,
    report: &Reporter,
    mut observe: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<actions::Observation, ActionError>>,
{
    let clock = ctx.clock;
    let deadline = clock.deadline(timeout);
    let id = &ctx.step.id;
    let mut last = String::from("nothing observed yet");
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let obs = tokio::time::timeout(remaining.max(Duration::from_millis(1)), observe()).await;
        match obs {
            Ok(Ok(o)) => {
                report.send(EventKind::GateObserved {
                    step: id.clone(),
                    check: check.to_string(),
                    passed: o.passed,
                    observed: o.observed.clone(),
                });
                if o.passed {
                    return Ok(());
                }
                last = o.observed;
            }
            Ok(Err(e)) if e.is_retryable() => last = e.message,
            Ok(Err(e)) => return Err(format!("{check}: {e}")),
            Err(_) => {}
        }
        if tokio::time::Instant::now() + clock.to_real(interval) > deadline {
            return Err(format!(
                "{check} did not pass within {}; last observed: {last}",
                humantime::format_duration(timeout)
            ));
        }
        clock.sleep(interval).await;
    }
}

/// Rolls one step back, with the step's retry policy. Returns what it did.
pub async fn roll_back_step(
    ctx: StepContext<'_>,
    config: &RunConfig,
    captured: Option<&Captured>,
    executed: Option<&Executed>,
) -> Result<String, String> {
    let Some(rollback) = &ctx.step.rollback else {
        return Err("no rollback is defined".into());
    };
    let mut backoff = Backoff::new(&ctx.step.retry, seed_for(config, &ctx.step.id));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = tokio::time::timeout(
            ctx.clock.to_real(ctx.step.timeout),
            actions::rollback(&ctx, rollback, captured, executed),
        )
        .await
        .unwrap_or_else(|_| Err(ActionError::retryable("the rollback timed out")));
        match result {
            Ok(summary) => {
                // Sent is not done: wait until the resource is observed back.
                let interval = config.verify_interval.unwrap_or(DEFAULT_GATE_INTERVAL);
                let (tx, _rx) = mpsc::unbounded_channel();
                let quiet = Reporter::new(tx);
                poll(&ctx, "rollback", ctx.step.timeout, interval, &quiet, || {
                    actions::rollback_done(&ctx, rollback, captured)
                })
                .await?;
                return Ok(summary);
            }
            Err(e) if e.is_retryable() => {
                match backoff.next_delay(e.kind == ActionErrorKind::Throttled) {
                    Some(d) => ctx.clock.sleep(d).await,
                    None => return Err(failure_text(&e, attempts)),
                }
            }
            Err(e) => return Err(failure_text(&e, attempts)),
        }
    }
}
