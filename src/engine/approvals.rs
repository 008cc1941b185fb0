//! Getting a step approved: by the run's own operator (a prompt, `--approve STEP`,
//! `--yes`) and by anyone with access to the run's state store (`drpilot approve
//! RUN_ID STEP`, `drpilot deny`), until as many distinct people as the step's
//! `approvers` agreed, or one refused.
//!
//! Decisions from the store are waited for on the wall clock, in a blocking task: a
//! person approving from another machine takes real seconds however fast a simulated
//! run's clock goes, and the store's own calls block (see `journal::s3`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::RunConfig;
use super::events::{Approver, EventKind};
use super::executor::Reporter;
use crate::runbook::{Step, StepId};

/// How often the store is read while a step waits for approvals.
pub const POLL: Duration = Duration::from_secs(1);

/// Approve or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// `drpilot approve`.
    Approve,
    /// `drpilot deny`.
    Deny,
}

/// One person's decision on one step, as the state store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// The step.
    pub step: StepId,
    /// Approve or deny.
    pub verdict: Verdict,
    /// Who, from where, when.
    pub by: Approver,
    /// Why (a denial's `--reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a run reads the decisions given from elsewhere (its state store).
pub trait ApprovalSource: Send + Sync {
    /// The decisions stored so far for `step`. Blocking: called from a blocking task.
    fn decisions(&self, step: &StepId) -> Result<Vec<ApprovalDecision>, String>;
    /// The command that approves `step` from elsewhere, for prompts and notices.
    fn approve_command(&self, step: &StepId) -> String;
}

/// This process's user and host, approving as `name` (else the OS user) by `via`.
pub fn local_approver(name: Option<&str>, via: &str) -> Approver {
    let os_user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    Approver {
        name: name
            .map(str::to_string)
            .or_else(|| os_user.clone())
            .unwrap_or_else(|| "operator".into()),
        via: via.to_string(),
        os_user,
        host,
        aws_identity: None,
        at: jiff::Timestamp::now(),
    }
}

/// Adds `a` unless the same person already approved.
fn count(got: &mut Vec<Approver>, a: Approver) {
    if !got.iter().any(|g| g.person() == a.person()) {
        got.push(a);
    }
}

/// What the store said while a step waited.
enum Stored {
    /// Enough distinct approvals with those already counted (or the wait is over).
    Approvals(Vec<Approver>),
    /// Someone refused.
    Denied(ApprovalDecision),
    /// The wait ran out; the approvals seen so far.
    TimedOut(Vec<Approver>),
}

/// How long to read the store.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// One read.
    Once,
    /// Until this much time passed.
    For(Duration),
    /// Until decided (a guided run: its operator can always interrupt).
    Forever,
}

/// Reads `source` until `need` distinct people (with `got`) approved, someone denied,
/// `stop` is set, or `wait` is over.
fn poll_store(
    source: &dyn ApprovalSource,
    step: &StepId,
    mut got: Vec<Approver>,
    need: usize,
    wait: Wait,
    stop: &AtomicBool,
) -> Stored {
    let started = Instant::now();
    loop {
        match source.decisions(step) {
            Ok(decisions) => {
                if let Some(d) = decisions.iter().find(|d| d.verdict == Verdict::Deny) {
                    return Stored::Denied(d.clone());
                }
                for d in decisions {
                    count(&mut got, d.by);
                }
                if got.len() >= need {
                    return Stored::Approvals(got);
                }
            }
            Err(e) => {
                tracing::warn!(target: "drpilot::approvals", "reading approvals of {step}: {e}")
            }
        }
        let left = match wait {
            Wait::Once => Duration::ZERO,
            Wait::For(w) => w.saturating_sub(started.elapsed()),
            Wait::Forever => POLL,
        };
        if left.is_zero() || stop.load(Ordering::Relaxed) {
            return Stored::TimedOut(got);
        }
        std::thread::sleep(POLL.min(left));
    }
}

/// Sets the flag when dropped: a blocking wait sees it and ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits on the store in a blocking task (see the module docs).
async fn wait_store(
    source: Arc<dyn ApprovalSource>,
    step: StepId,
    got: Vec<Approver>,
    need: usize,
    wait: Wait,
) -> Stored {
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let polled = got.clone();
    tokio::task::spawn_blocking(move || poll_store(&*source, &step, polled, need, wait, &stop))
        .await
        .unwrap_or(Stored::TimedOut(got))
}

/// Gets `step` approved. `Ok` with how the run's operator approved (`by` of the
/// `approved` event) and everyone who did; `Err` with why the step fails. The
/// `approval_needed` event has been sent.
pub(super) async fn obtain(
    step: &Step,
    message: &str,
    approved_by: Option<&'static str>,
    config: &RunConfig,
    report: &Reporter,
) -> Result<(String, Vec<Approver>), String> {
    let id = &step.id;
    let need = usize::try_from(step.approvers.max(1)).unwrap_or(usize::MAX);
    let mut got = Vec::new();
    let mut by = approved_by.map(str::to_string);
    if let Some(how) = approved_by {
        count(&mut got, local_approver(None, how));
    }
    let source = config.approval_source.clone();
    let denied = |d: ApprovalDecision| {
        report.send(EventKind::ApprovalDenied {
            step: id.clone(),
            by: d.by.clone(),
            reason: d.reason.clone(),
        });
        Err(format!(
            "step `{id}` was denied by {}{}",
            d.by.name,
            d.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ))
    };
    let more = |got: &[Approver]| need.saturating_sub(got.len());

    // Decisions already stored (given before the run got here) count at once, and a
    // denial stops the step even when the operator approved it up front.
    if let Some(source) = &source {
        match wait_store(source.clone(), id.clone(), got.clone(), need, Wait::Once).await {
            Stored::Denied(d) => return denied(d),
            Stored::Approvals(g) | Stored::TimedOut(g) => got = g,
        }
    }
    if got.len() >= need {
        return Ok((by.unwrap_or_else(|| "store".into()), got));
    }

    let elsewhere = source
        .as_ref()
        .map(|s| s.approve_command(id))
        .unwrap_or_default();
    if let Some(prompter) = &config.prompter {
        // A guided run: its operator's prompt and the store, whichever decides first.
        let mut text = message.to_string();
        if need > 1 {
            text.push_str(&format!(
                "\nThis step needs {need} people's approval ({} so far); you count once.",
                got.len()
            ));
        }
        if !elsewhere.is_empty() {
            text.push_str(&format!("\nOthers can approve it with: {elsewhere}"));
        }
        let operator_done = got.iter().any(|a| a.via != "store");
        if !operator_done {
            // One prompt at a time, even when two approval steps are ready together.
            static PROMPT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _turn = PROMPT.lock().await;
            let answered = match &source {
                Some(s) => {
                    let store = wait_store(s.clone(), id.clone(), got.clone(), need, Wait::Forever);
                    tokio::select! {
                        yes = prompter.approve(id, &text) => Some(yes),
                        stored = store => match stored {
                            Stored::Denied(d) => {
                                prompter.withdrawn(id, &format!("denied by {}", d.by.name));
                                return denied(d);
                            }
                            Stored::Approvals(g) | Stored::TimedOut(g) => {
                                let names: Vec<&str> = g.iter().map(|a| a.name.as_str()).collect();
                                prompter.withdrawn(id, &format!("approved by {}", names.join(", ")));
                                got = g;
                                None
                            }
                        },
                    }
                }
                None => Some(prompter.approve(id, &text).await),
            };
            match answered {
                Some(false) => {
                    return Err(format!("step `{id}` was not approved by the operator"));
                }
                Some(true) => {
                    by = Some("operator".into());
                    count(&mut got, local_approver(None, "operator"));
                }
                None => {}
            }
        }
        if got.len() >= need {
            return Ok((by.unwrap_or_else(|| "store".into()), got));
        }
        let Some(source) = &source else {
            return Err(format!(
                "step `{id}` needs {need} people's approval and this run has no state store \
                 to take the others from"
            ));
        };
        prompter.waiting(id, &got, need, &elsewhere);
        return match wait_store(
            source.clone(),
            id.clone(),
            got,
            need,
            config.await_approvals.map_or(Wait::Forever, Wait::For),
        )
        .await
        {
            Stored::Denied(d) => denied(d),
            Stored::Approvals(g) if g.len() >= need => {
                Ok((by.unwrap_or_else(|| "store".into()), g))
            }
            Stored::Approvals(g) | Stored::TimedOut(g) => Err(format!(
                "step `{id}` got {} of the {need} approvals it needs within {}",
                g.len(),
                humantime::format_duration(config.await_approvals.unwrap_or_default())
            )),
        };
    }

    // Headless: wait only when asked to (`--await-approvals`): tooling must never hang
    // by surprise.
    let (Some(source), Some(wait)) = (&source, config.await_approvals) else {
        let have = if got.is_empty() {
            String::new()
        } else {
            format!(" ({} of {need} given)", got.len())
        };
        return Err(if need > 1 {
            format!(
                "step `{id}` needs {need} people's approval{have}: run with --await-approvals \
                 DUR and have {} more approve it{}",
                more(&got),
                if elsewhere.is_empty() {
                    String::new()
                } else {
                    format!(" ({elsewhere})")
                }
            )
        } else {
            format!(
                "step `{id}` needs approval: run with --approve {id} or --yes, or with \
                 --await-approvals DUR to wait for `drpilot approve`"
            )
        });
    };
    match wait_store(source.clone(), id.clone(), got, need, Wait::For(wait)).await {
        Stored::Denied(d) => denied(d),
        Stored::Approvals(g) if g.len() >= need => Ok((by.unwrap_or_else(|| "store".into()), g)),
        Stored::Approvals(g) | Stored::TimedOut(g) => Err(format!(
            "step `{id}` got {} of the {need} approval{} it needs within {} ({elsewhere})",
            g.len(),
            if need == 1 { "" } else { "s" },
            humantime::format_duration(wait)
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;

    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::Prompter;
    use crate::runbook::Runbook;

    fn runbook(approvers: u32) -> Runbook {
        crate::runbook::load_str(
            Path::new("rb.toml"),
            &format!(
                "[runbook]\nname = \"rb\"\nmode = \"planned\"\n\n[[step]]\nid = \"go\"\n\
                 action = \"approval\"\napprovers = {approvers}\n"
            ),
        )
        .unwrap()
        .runbook
    }

    fn person(name: &str) -> Approver {
        local_approver(Some(name), "store")
    }

    /// A store whose decisions a test adds to while a step waits.
    #[derive(Default)]
    struct Store(Mutex<Vec<ApprovalDecision>>);

    impl Store {
        fn add(&self, name: &str, verdict: Verdict) {
            self.0.lock().unwrap().push(ApprovalDecision {
                step: StepId::new("go"),
                verdict,
                by: person(name),
                reason: (verdict == Verdict::Deny).then(|| "no".into()),
            });
        }
    }

    impl ApprovalSource for Store {
        fn decisions(&self, _: &StepId) -> Result<Vec<ApprovalDecision>, String> {
            Ok(self.0.lock().unwrap().clone())
        }
        fn approve_command(&self, step: &StepId) -> String {
            format!("drpilot approve RUN {step}")
        }
    }

    /// A prompt nobody answers; says when it was withdrawn.
    #[derive(Default)]
    struct Silent(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl Prompter for Silent {
        async fn approve(&self, _: &StepId, _: &str) -> bool {
            std::future::pending().await
        }
        fn withdrawn(&self, _: &StepId, why: &str) {
            self.0.lock().unwrap().push(why.to_string());
        }
    }

    async fn obtain_with(
        rb: &Runbook,
        approved_by: Option<&'static str>,
        config: &RunConfig,
    ) -> (Result<(String, Vec<Approver>), String>, Vec<EventKind>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let report = Reporter::new(tx);
        let got = obtain(&rb.steps[0], "go?", approved_by, config, &report).await;
        drop(report);
        let mut events = Vec::new();
        while let Some(r) = rx.recv().await {
            events.push(r.kind);
        }
        (got, events)
    }

    fn names(a: &[Approver]) -> Vec<&str> {
        a.iter().map(|a| a.name.as_str()).collect()
    }

    #[tokio::test]
    async fn two_people_are_two_names_and_one_name_counts_once() {
        let rb = runbook(2);
        let store = Arc::new(Store::default());
        store.add("alice", Verdict::Approve);
        store.add("ALICE", Verdict::Approve);
        let config = RunConfig {
            approval_source: Some(store.clone()),
            ..RunConfig::default()
        };
        // Headless, without --await-approvals: one person is not two, at once.
        let (got, _) = obtain_with(&rb, None, &config).await;
        let why = got.unwrap_err();
        assert!(
            why.contains("needs 2 people's approval (1 of 2 given)")
                && why.contains("drpilot approve RUN go"),
            "{why}"
        );
        // The operator's --approve is a second person (named by the OS user).
        store.0.lock().unwrap().retain(|d| d.by.name == "alice");
        let (got, _) = obtain_with(&rb, Some("flag"), &config).await;
        let (by, people) = got.unwrap();
        assert_eq!(by, "flag");
        assert_eq!(people.len(), 2);
        assert_eq!(people[1].name, "alice");
        assert_eq!(people[0].via, "flag");
    }

    #[tokio::test]
    async fn a_headless_run_waits_for_late_approvals_and_gives_up_after_its_wait() {
        let rb = runbook(2);
        let store = Arc::new(Store::default());
        let config = RunConfig {
            approval_source: Some(store.clone()),
            await_approvals: Some(Duration::from_secs(20)),
            ..RunConfig::default()
        };
        let late = store.clone();
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            late.add("alice", Verdict::Approve);
            std::thread::sleep(Duration::from_millis(300));
            late.add("bob", Verdict::Approve);
        });
        let (got, _) = obtain_with(&rb, None, &config).await;
        adder.join().unwrap();
        let (by, people) = got.unwrap();
        assert_eq!(
            (by.as_str(), names(&people)),
            ("store", vec!["alice", "bob"])
        );

        // Only one comes: the wait ends, and says how many came.
        store.0.lock().unwrap().retain(|d| d.by.name == "alice");
        let config = RunConfig {
            await_approvals: Some(Duration::from_millis(1500)),
            ..config
        };
        let (got, _) = obtain_with(&rb, None, &config).await;
        let why = got.unwrap_err();
        assert!(
            why.contains("got 1 of the 2 approvals it needs within 1s 500ms"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_denial_fails_the_step_and_is_an_event() {
        let rb = runbook(1);
        let store = Arc::new(Store::default());
        store.add("alice", Verdict::Approve);
        store.add("carol", Verdict::Deny);
        let config = RunConfig {
            approval_source: Some(store.clone()),
            ..RunConfig::default()
        };
        // Even with the operator's own approval: a refusal is a refusal.
        let (got, events) = obtain_with(&rb, Some("yes"), &config).await;
        assert_eq!(got.unwrap_err(), "step `go` was denied by carol: no");
        assert!(
            matches!(&events[..], [EventKind::ApprovalDenied { by, .. }] if by.name == "carol"),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_guided_prompt_is_withdrawn_when_the_store_decides_first() {
        let rb = runbook(1);
        let store = Arc::new(Store::default());
        let prompter = Arc::new(Silent::default());
        let config = RunConfig {
            prompter: Some(prompter.clone()),
            approval_source: Some(store.clone()),
            ..RunConfig::default()
        };
        let late = store.clone();
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            late.add("dana", Verdict::Approve);
        });
        let (got, _) = obtain_with(&rb, None, &config).await;
        adder.join().unwrap();
        let (by, people) = got.unwrap();
        assert_eq!((by.as_str(), names(&people)), ("store", vec!["dana"]));
        assert_eq!(*prompter.0.lock().unwrap(), ["approved by dana"]);
    }

    #[tokio::test]
    async fn without_a_store_a_headless_run_fails_as_it_always_did() {
        let rb = runbook(1);
        let (got, _) = obtain_with(&rb, None, &RunConfig::default()).await;
        assert_eq!(
            got.unwrap_err(),
            "step `go` needs approval: run with --approve go or --yes, or with \
             --await-approvals DUR to wait for `drpilot approve`"
        );
        let (got, _) = obtain_with(&rb, Some("flag"), &RunConfig::default()).await;
        assert_eq!(got.unwrap().0, "flag");
    }
}
