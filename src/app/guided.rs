//! Guided mode: a person at a terminal runs a failover.
//!
//! Before anything changes the operator sees the plan (levels, critical path, predicted
//! RTO against the objective, what each step mutates where) and the preflight table,
//! and types one confirmation naming the runbook and the target region — a typed
//! phrase, not a reflexive "y". Approval steps show what happens next and ask for the
//! step's id. When a step fails, the operator chooses: retry, skip (with a warning),
//! roll back, or abort (leave everything as it is, resumable) — the decisions that
//! `--on-failure pause` leaves to `drpilot resume RUN_ID --retry|--skip|--rollback|--abort`
//! in headless mode, applied the same way.
//!
//! Every prompt reads the terminal on a blocking thread and pauses the live view while
//! it holds the screen, so steps running in parallel keep going.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::events::StepFinding;
use crate::engine::{self, Decision};
use crate::plan::Plan;
use crate::report::live::LiveView;
use crate::runbook::{Runbook, StepId, catalogue};

/// The region a runbook moves service to: its `to` parameter, when that is a region.
pub fn target_region(rb: &Runbook) -> Option<&str> {
    rb.params
        .get("to")
        .map(String::as_str)
        .filter(|r| catalogue::is_region(r))
}

/// What the operator types to start: the runbook's name and the target region.
pub fn confirmation_phrase(rb: &Runbook) -> String {
    match target_region(rb) {
        Some(r) => format!("{} {r}", rb.runbook.name),
        None => rb.runbook.name.clone(),
    }
}

/// The run's title in the live view: `region-failover → us-west-2`.
pub fn title(rb: &Runbook, sim: bool) -> String {
    let mut t = rb.runbook.name.clone();
    if let Some(r) = target_region(rb) {
        t.push_str(&format!(" → {r}"));
    }
    if sim {
        t.push_str(" (simulated)");
    }
    t
}

/// The plan and the preflight table, as the operator sees them before confirming.
pub fn briefing(
    plan: &Plan<'_>,
    ok: bool,
    findings: &[StepFinding],
    regions: &[crate::cloud::reach::RegionStatus],
) -> String {
    let r = crate::report::preflight::regions_table(regions);
    format!(
        "{}\n{}{}",
        crate::plan::render::text(plan),
        crate::report::preflight::table(plan.runbook, findings, ok),
        if r.is_empty() {
            String::new()
        } else {
            format!("\nregions\n{r}")
        }
    )
}

/// Reads one line from the terminal; `None` at end of input or on an error.
fn read_line() -> Option<String> {
    read_line_unless(&AtomicBool::new(false))
}

/// Reads one line from the terminal, giving up (`None`) once `cancel` is set: stdin is
/// polled, and read unbuffered, so a withdrawn prompt leaves no read behind that would
/// take the next prompt's keys, and no line sits in a buffer `poll` cannot see.
fn read_line_unless(cancel: &AtomicBool) -> Option<String> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let mut line = Vec::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(fd, &mut byte) {
            // End of input: a last line without its newline still counts.
            Ok(0) if line.is_empty() => return None,
            Ok(0) => return Some(String::from_utf8_lossy(&line).trim().to_string()),
            Ok(_) if byte[0] == b'\n' => {
                return Some(String::from_utf8_lossy(&line).trim().to_string());
            }
            Ok(_) => line.push(byte[0]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return None,
        }
    }
}

/// One sentence on what confirming does: `This failover moves service to us-west-2.`
pub fn intent(rb: &Runbook) -> String {
    match target_region(rb) {
        Some(r) => format!(
            "This {} moves service to {r}.",
            match rb.runbook.mode {
                crate::runbook::Mode::Planned => "switchover",
                crate::runbook::Mode::Unplanned => "failover",
            }
        ),
        None => "This runs the steps above.".to_string(),
    }
}

/// Asks for the typed confirmation (blocks on the terminal). True only for the exact
/// phrase.
pub fn confirm_start(phrase: &str, intent: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\n{intent} Type `{phrase}` to start; anything else cancels: "
    );
    let _ = err.flush();
    read_line().is_some_and(|l| l == phrase)
}

/// What the steps that wait for `step` will do, one line each.
pub(crate) fn next_steps(plan: &Plan<'_>, step: usize) -> Vec<String> {
    let rb = plan.runbook;
    let width = rb
        .steps
        .iter()
        .map(|s| s.id.as_str().len())
        .max()
        .unwrap_or(0);
    plan.deps
        .iter()
        .enumerate()
        .filter(|(_, ds)| ds.contains(&step))
        .map(|(i, _)| {
            let s = &rb.steps[i];
            let what = match &plan.effects[i] {
                Some(e) => format!("{} on {} in {}", e.call, e.resource, e.region),
                None => format!("{} (changes nothing)", s.spec.name),
            };
            format!("  {:<width$}  {what}", s.id.as_str())
        })
        .collect()
}

/// Approval prompts on the terminal: the operator types the step's id to approve;
/// anything else, or end of input, refuses (the run then follows its failure policy,
/// which in guided mode is the operator's next choice).
pub struct TerminalPrompter {
    live: Option<LiveView>,
    /// Per approval step: what the steps waiting for it will do.
    next: BTreeMap<StepId, Vec<String>>,
}

impl TerminalPrompter {
    /// A prompter for `plan`'s approval steps; `live` is paused while it asks.
    pub fn new(plan: &Plan<'_>, live: Option<LiveView>) -> Self {
        let next = plan
            .approvals()
            .into_iter()
            .map(|i| (plan.runbook.steps[i].id.clone(), next_steps(plan, i)))
            .collect();
        Self { live, next }
    }
}

#[async_trait::async_trait]
impl engine::Prompter for TerminalPrompter {
    async fn approve(&self, step: &StepId, message: &str) -> bool {
        let mut text = format!("\n=== approval needed: {step}\n{message}\n");
        if let Some(next) = self.next.get(step).filter(|n| !n.is_empty()) {
            text.push_str("Once approved, next:\n");
            for l in next {
                text.push_str(l);
                text.push('\n');
            }
        }
        text.push_str(&format!(
            "Type `{step}` to approve; anything else refuses: "
        ));
        let step = step.as_str().to_string();
        let live = self.live.clone();
        // Set when this future is dropped: the step was decided from the state store.
        let cancel = Arc::new(AtomicBool::new(false));
        let _withdraw = CancelOnDrop(cancel.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(l) = &live {
                l.pause();
            }
            let mut err = std::io::stderr();
            let _ = write!(err, "{text}");
            let _ = err.flush();
            let Some(answer) = read_line_unless(&cancel) else {
                if cancel.load(Ordering::Relaxed) {
                    // Withdrawn: `withdrawn` says why; the live view goes on.
                    if let Some(l) = &live {
                        l.resume();
                    }
                    return false;
                }
                let _ = writeln!(err, "NOT approved: {step} fails");
                if let Some(l) = &live {
                    l.resume();
                }
                return false;
            };
            let approved = answer == step;
            let _ = writeln!(
                err,
                "{}",
                if approved {
                    format!("approved {step}")
                } else {
                    format!("NOT approved: {step} fails")
                }
            );
            if let Some(l) = &live {
                l.resume();
            }
            approved
        })
        .await
        .unwrap_or(false)
    }

    fn withdrawn(&self, step: &StepId, why: &str) {
        eprintln!("\n{step}: {why} (from the state store); the prompt is withdrawn");
    }

    fn waiting(
        &self,
        step: &StepId,
        have: &[crate::engine::events::Approver],
        need: usize,
        command: &str,
    ) {
        let names: Vec<&str> = have.iter().map(|a| a.name.as_str()).collect();
        eprintln!(
            "{step}: approved by {} ({} of {need}); waiting for {} more: {command}",
            names.join(", "),
            have.len(),
            need.saturating_sub(have.len())
        );
    }
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Where a paused run stands, for the operator's choice.
pub struct Standing {
    /// The run.
    pub run_id: String,
    /// The failed steps.
    pub failed: Vec<StepId>,
    /// What runs after them, directly or not.
    pub dependents: Vec<StepId>,
    /// Completed changes that have no rollback: a rollback leaves them as they are.
    pub irreversible: Vec<StepId>,
    /// Why the run stopped.
    pub reason: Option<String>,
}

impl Standing {
    /// Reads where the run stands from its events so far.
    pub fn of(
        plan: &Plan<'_>,
        run_id: &str,
        events: &[engine::Event],
        reason: Option<String>,
    ) -> Self {
        let prior = engine::Prior::from_events(events);
        let steps = &plan.runbook.steps;
        let mut failed: Vec<StepId> = steps
            .iter()
            .filter(|s| prior.failed.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        failed.dedup();
        let irreversible = steps
            .iter()
            .filter(|s| {
                s.is_mutating()
                    && s.rollback.is_none()
                    && prior.executed.contains_key(&s.id)
                    && !prior.rolled_back.contains(&s.id)
            })
            .map(|s| s.id.clone())
            .collect();
        Standing {
            run_id: run_id.to_string(),
            dependents: dependents_of(plan, &failed),
            failed,
            irreversible,
            reason,
        }
    }
}

/// After a failure (or a Ctrl-C) paused the run: what now? Blocks on the terminal.
/// Escape or end of input is "abort": nothing more changes and the run stays
/// resumable.
pub fn failure_menu(at: &Standing) -> Decision {
    let (run_id, failed, dependents) = (&at.run_id, &at.failed[..], &at.dependents[..]);
    let reason = at.reason.as_deref();
    let term = console::Term::stderr();
    let names = |ids: &[StepId]| {
        ids.iter()
            .map(StepId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = term.write_line("");
    if let Some(r) = reason {
        let _ = term.write_line(&format!("the run stopped: {r}"));
    }
    let mut items: Vec<(Decision, String)> = Vec::new();
    if failed.is_empty() {
        items.push((
            Decision::Retry,
            "continue    start the remaining steps".to_string(),
        ));
    } else {
        items.push((
            Decision::Retry,
            format!("retry       run {} again", names(failed)),
        ));
        items.push((
            Decision::Skip,
            format!(
                "skip        mark {} skipped and go on (its change is NOT made)",
                names(failed)
            ),
        ));
    }
    items.push((
        Decision::Rollback,
        if at.irreversible.is_empty() {
            "roll back   undo every completed change, last first".to_string()
        } else {
            format!(
                "roll back   undo every completed change, last first ({} cannot be undone)",
                names(&at.irreversible)
            )
        },
    ));
    items.push((
        Decision::Abort,
        format!("abort       leave everything as it is (resume later: drpilot resume {run_id})"),
    ));
    let labels: Vec<&str> = items.iter().map(|(_, l)| l.as_str()).collect();
    loop {
        let chosen = dialoguer::Select::new()
            .with_prompt("What now? (arrows, Enter)")
            .items(&labels)
            .default(labels.len() - 1)
            .interact_on_opt(&term);
        let decision = match chosen {
            Ok(Some(i)) => items[i].0,
            _ => Decision::Abort,
        };
        if decision == Decision::Skip {
            let warning = if dependents.is_empty() {
                format!(
                    "Skip {}? Its change will not be made, and the run will say so.",
                    names(failed)
                )
            } else {
                format!(
                    "Skip {}? Its change will not be made, and {} will run without it.",
                    names(failed),
                    names(dependents)
                )
            };
            let sure = dialoguer::Confirm::new()
                .with_prompt(warning)
                .default(false)
                .interact_on_opt(&term);
            if !matches!(sure, Ok(Some(true))) {
                continue;
            }
        }
        return decision;
    }
}

/// The steps that run after any of `failed`, directly or not, in file order.
pub fn dependents_of(plan: &Plan<'_>, failed: &[StepId]) -> Vec<StepId> {
    plan.dependents_of(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(text: &str) -> Runbook {
        crate::runbook::load_str(std::path::Path::new("t.toml"), text)
            .expect("valid")
            .runbook
    }

    const RB: &str = r#"
[runbook]
name = "t"
mode = "unplanned"
[params]
to = "us-west-2"
[[step]]
id = "a"
action = "wait"
duration = "1s"
[[step]]
id = "ok"
action = "approval"
message = "go?"
after = ["a"]
[[step]]
id = "b"
action = "wait"
duration = "1s"
after = ["ok"]
[[step]]
id = "c"
action = "wait"
duration = "1s"
after = ["b"]
"#;

    #[test]
    fn the_phrase_names_the_runbook_and_the_target_region() {
        let r = rb(RB);
        assert_eq!(confirmation_phrase(&r), "t us-west-2");
        assert_eq!(title(&r, true), "t → us-west-2 (simulated)");
        let no_region = rb(&RB.replace("to = \"us-west-2\"", "to = \"somewhere\""));
        assert_eq!(confirmation_phrase(&no_region), "t");
    }

    #[test]
    fn dependents_are_transitive_and_exclude_the_failed() {
        let r = rb(RB);
        let plan = Plan::new(&r);
        assert_eq!(
            dependents_of(&plan, &[StepId::new("ok")]),
            vec![StepId::new("b"), StepId::new("c")]
        );
        assert!(dependents_of(&plan, &[StepId::new("c")]).is_empty());
    }

    #[test]
    fn an_approval_says_what_runs_next() {
        let r = rb(RB);
        let plan = Plan::new(&r);
        let p = TerminalPrompter::new(&plan, None);
        let next = &p.next[&StepId::new("ok")];
        assert_eq!(next.len(), 1, "{next:?}");
        assert!(
            next[0].contains("b") && next[0].contains("wait (changes nothing)"),
            "{next:?}"
        );
    }
}
