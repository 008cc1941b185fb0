//! The live terminal view of a run (indicatif): one line per step, a header with the
//! run clock against the RTO objective, and the run's notable happenings printed above.
//!
//! Used when a person watches a terminal (`--output human`, stderr a TTY). Like every
//! reporter it only sees events; the CLI adds a once-a-second tick with the run clock
//! so the elapsed time moves while nothing happens. All drawing happens under one
//! mutex, from the thread that emits events or ticks, so a prompt can take the
//! terminal without racing a redraw: [`LiveView::pause`] clears the step lines and
//! keeps what happens meanwhile for later, [`LiveView::resume`] draws it all again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::human::Lines;
use crate::engine::dispatcher::Sink;
use crate::engine::{Event, EventKind};
use crate::plan::Plan;
use crate::runbook::StepId;

/// What a step line shows.
#[derive(Clone, Debug, PartialEq)]
enum StepView {
    Waiting,
    AwaitingApproval,
    Running {
        attempt: u32,
        observed: Option<String>,
    },
    Retrying {
        attempt: u32,
        error: String,
        retry_in: Option<f64>,
    },
    Succeeded(String),
    Failed(String),
    Skipped(String),
    Deferred(String),
    ToRollBack,
    RolledBack(String),
    NotRolledBack(String),
}

struct Step {
    id: StepId,
    bar: ProgressBar,
    view: StepView,
    started: Option<jiff::Timestamp>,
    took: Option<Duration>,
}

struct Inner {
    multi: MultiProgress,
    header: ProgressBar,
    steps: Vec<Step>,
    index: HashMap<StepId, usize>,
    id_width: usize,
    title: String,
    objective: Option<Duration>,
    predicted: Duration,
    origin: jiff::Timestamp,
    elapsed: Duration,
    /// The runbook's `recovered_when` steps: once they are all done the RTO clock in
    /// the header stops (housekeeping after recovery is not downtime).
    recovered_when: Vec<StepId>,
    /// When they were all done, on the run's clock.
    recovered: Option<Duration>,
    color: bool,
    /// Prompts currently holding the terminal.
    paused: u32,
    /// False between runs (after `run_finished`): the step lines stay on screen as
    /// text and whatever is printed next goes below them.
    attached: bool,
    /// Lines to print once a prompt gives the terminal back.
    held: Vec<String>,
    lines: Lines,
    /// A paused run asks the operator (guided mode) rather than exiting.
    menu: bool,
    /// Per region, the services known unreachable: shown in the header.
    down: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// A handle on the live view; clones share it.
#[derive(Clone)]
pub struct LiveView(Arc<Mutex<Inner>>);

/// ANSI colours for the view; plain text when colours are off.
#[derive(Clone, Copy)]
enum Paint {
    Green,
    Red,
    Yellow,
    Cyan,
    Dim,
    Bold,
}

impl Inner {
    fn paint(&self, p: Paint, s: &str) -> String {
        if !self.color {
            return s.to_string();
        }
        let style = console::Style::new().force_styling(true);
        let style = match p {
            Paint::Green => style.green(),
            Paint::Red => style.red().bold(),
            Paint::Yellow => style.yellow(),
            Paint::Cyan => style.cyan(),
            Paint::Dim => style.dim(),
            Paint::Bold => style.bold(),
        };
        style.apply_to(s).to_string()
    }

    fn drawing(&self) -> bool {
        self.attached && self.paused == 0
    }

    /// Points the bars at the terminal, or nowhere.
    fn retarget(&mut self, was_drawing: bool, clear: bool) {
        let now = self.drawing();
        if was_drawing && !now {
            if clear {
                let _ = self.multi.clear();
            } else {
                // Leave the last picture on screen, complete, and what follows below it.
                self.multi.suspend(|| {});
            }
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
            if !clear {
                let _ = console::Term::stderr().write_line("");
            }
        } else if !was_drawing && now {
            self.multi
                .set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            for line in std::mem::take(&mut self.held) {
                let _ = self.multi.println(line);
            }
            self.refresh_all();
            self.multi.suspend(|| {});
        }
    }

    fn println(&mut self, line: String) {
        if self.drawing() {
            let _ = self.multi.println(line);
        } else {
            self.held.push(line);
        }
    }

    fn step_line(&self, s: &Step) -> String {
        let id = format!("{:<w$}", s.id.as_str(), w = self.id_width);
        let took = s
            .took
            .map(|d| format!(" in {}", short(d)))
            .unwrap_or_default();
        let (icon, status) = match &s.view {
            StepView::Waiting => (
                self.paint(Paint::Dim, "·"),
                self.paint(Paint::Dim, "waiting"),
            ),
            StepView::AwaitingApproval => (
                self.paint(Paint::Yellow, "?"),
                self.paint(Paint::Yellow, "awaiting approval"),
            ),
            StepView::Running { attempt, observed } => {
                let mut t = "running".to_string();
                if *attempt > 1 {
                    t.push_str(&format!(" (attempt {attempt})"));
                }
                if let Some(o) = observed {
                    t.push_str(&format!(" · {o}"));
                }
                (self.paint(Paint::Cyan, "▸"), t)
            }
            StepView::Retrying {
                attempt,
                error,
                retry_in,
            } => (
                self.paint(Paint::Yellow, "!"),
                self.paint(
                    Paint::Yellow,
                    &format!(
                        "attempt {attempt} failed{}: {error}",
                        retry_in
                            .map(|r| format!(", retrying in {}", short(secs(r))))
                            .unwrap_or_default()
                    ),
                ),
            ),
            StepView::Succeeded(summary) => (
                self.paint(Paint::Green, "✓"),
                format!("{}{took} · {summary}", self.paint(Paint::Green, "done")),
            ),
            StepView::Failed(error) => (
                self.paint(Paint::Red, "✗"),
                format!("{}{took} · {error}", self.paint(Paint::Red, "FAILED")),
            ),
            StepView::Skipped(reason) => (
                self.paint(Paint::Dim, "-"),
                self.paint(Paint::Dim, &format!("skipped · {reason}")),
            ),
            StepView::Deferred(reason) => (
                self.paint(Paint::Yellow, "~"),
                self.paint(Paint::Yellow, &format!("deferred · {reason}")),
            ),
            StepView::ToRollBack => (
                self.paint(Paint::Yellow, "↺"),
                self.paint(Paint::Yellow, "to roll back"),
            ),
            StepView::RolledBack(summary) => (
                self.paint(Paint::Yellow, "↺"),
                format!("{} · {summary}", self.paint(Paint::Yellow, "rolled back")),
            ),
            StepView::NotRolledBack(error) => (
                self.paint(Paint::Red, "✗"),
                format!("{} · {error}", self.paint(Paint::Red, "NOT rolled back")),
            ),
        };
        format!("  {icon} {id}  {status}")
    }

    fn header_line(&self) -> String {
        let done = self
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.view,
                    StepView::Succeeded(_) | StepView::Skipped(_) | StepView::RolledBack(_)
                )
            })
            .count();
        let (rto, back) = match self.recovered {
            Some(at) => (at, "service back at "),
            None => (self.elapsed, ""),
        };
        let clock = match self.objective {
            Some(o) if rto > o => self.paint(
                Paint::Red,
                &format!("{back}{} OVER the {} RTO objective", short(rto), short(o)),
            ),
            Some(o) => format!(
                "{back}{} of {} RTO objective",
                self.paint(Paint::Bold, &short(rto)),
                short(o)
            ),
            None if back.is_empty() => {
                format!("{} elapsed", self.paint(Paint::Bold, &short(rto)))
            }
            None => format!("{back}{}", self.paint(Paint::Bold, &short(rto))),
        };
        let down: Vec<String> = self
            .down
            .iter()
            .filter(|(_, services)| !services.is_empty())
            .map(|(region, services)| {
                format!(
                    "{region} DOWN ({})",
                    services.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        format!(
            "{}  {clock} (predicted {})  {done}/{} steps{}",
            self.paint(Paint::Bold, &self.title),
            short(self.predicted),
            self.steps.len(),
            if down.is_empty() {
                String::new()
            } else {
                format!("  {}", self.paint(Paint::Red, &down.join("; ")))
            }
        )
    }

    fn refresh_header(&self) {
        self.header.set_message(fit(self.header_line()));
    }

    fn refresh(&self, i: usize) {
        self.steps[i]
            .bar
            .set_message(fit(self.step_line(&self.steps[i])));
    }

    fn refresh_all(&self) {
        self.refresh_header();
        for i in 0..self.steps.len() {
            self.refresh(i);
        }
    }

    fn set(&mut self, step: &StepId, view: StepView, at: jiff::Timestamp) {
        let Some(&i) = self.index.get(step) else {
            return;
        };
        let s = &mut self.steps[i];
        match &view {
            StepView::Running { .. } if s.started.is_none() => s.started = Some(at),
            StepView::Succeeded(_) | StepView::Failed(_) => {
                s.took = s
                    .started
                    .and_then(|t| Duration::try_from(at.duration_since(t)).ok());
            }
            _ => {}
        }
        s.view = view;
        self.refresh(i);
        if self.recovered.is_none()
            && !self.recovered_when.is_empty()
            && self.recovered_when.iter().all(|id| {
                self.index.get(id).is_some_and(|&k| {
                    matches!(
                        self.steps[k].view,
                        StepView::Succeeded(_) | StepView::Skipped(_)
                    )
                })
            })
        {
            self.recovered = Duration::try_from(at.duration_since(self.origin)).ok();
        }
    }

    fn on_event(&mut self, e: &Event, quiet: bool) {
        use EventKind::*;
        if let Ok(d) = Duration::try_from(e.at.duration_since(self.origin)) {
            self.elapsed = self.elapsed.max(d);
        }
        if let RunStarted { .. } = e.kind
            && !self.attached
            && !quiet
        {
            let was = self.drawing();
            self.attached = true;
            self.retarget(was, false);
        }
        match &e.kind {
            ApprovalNeeded { step, .. } => self.set(step, StepView::AwaitingApproval, e.at),
            StepStarted { step, attempt } => self.set(
                step,
                StepView::Running {
                    attempt: *attempt,
                    observed: None,
                },
                e.at,
            ),
            GateObserved {
                step,
                check,
                observed,
                ..
            } => {
                let attempt = match self.index.get(step).map(|&i| &self.steps[i].view) {
                    Some(StepView::Running { attempt, .. }) => *attempt,
                    _ => 1,
                };
                self.set(
                    step,
                    StepView::Running {
                        attempt,
                        observed: Some(format!("{check}: {observed}")),
                    },
                    e.at,
                );
            }
            AttemptFailed {
                step,
                attempt,
                error,
                will_retry: true,
                retry_in_secs,
            } => self.set(
                step,
                StepView::Retrying {
                    attempt: *attempt,
                    error: error.clone(),
                    retry_in: *retry_in_secs,
                },
                e.at,
            ),
            StepSucceeded { step, summary } => {
                self.set(step, StepView::Succeeded(summary.clone()), e.at)
            }
            StepFailed { step, error } => self.set(step, StepView::Failed(error.clone()), e.at),
            StepSkipped { step, reason } => self.set(step, StepView::Skipped(reason.clone()), e.at),
            StepDeferred { step, reason } => {
                self.set(step, StepView::Deferred(reason.clone()), e.at)
            }
            RegionStatus {
                region,
                service,
                status,
                ..
            } => {
                let services = self.down.entry(region.clone()).or_default();
                if *status == crate::cloud::reach::Reachability::Unreachable {
                    services.insert(service.clone());
                } else {
                    services.remove(service);
                }
            }
            RollbackStarted { steps } => {
                for s in steps {
                    self.set(s, StepView::ToRollBack, e.at);
                }
            }
            StepRolledBack { step, summary } => {
                self.set(step, StepView::RolledBack(summary.clone()), e.at)
            }
            RollbackFailed { step, error } => {
                self.set(step, StepView::NotRolledBack(error.clone()), e.at)
            }
            _ => {}
        }
        // Step starts and gate polls live on the step's line; everything else is also
        // a line of history above the view.
        let paused_for_menu = self.menu
            && matches!(
                e.kind,
                RunFinished {
                    outcome: crate::engine::Outcome::Paused,
                    ..
                }
            );
        if quiet {
            // Replaying a journal: the view takes the state, the history is not retold.
            let _ = self.lines.describe(e);
            return;
        }
        if paused_for_menu {
            let stamp = self.paint(Paint::Dim, &format!("[{}]", clock(self.elapsed)));
            self.println(format!("{stamp} run paused: your decision is needed"));
        } else if !matches!(e.kind, StepStarted { .. } | GateObserved { .. })
            && let Some(text) = self.lines.describe(e)
        {
            let stamp = self.paint(Paint::Dim, &format!("[{}]", clock(self.elapsed)));
            self.println(format!("{stamp} {text}"));
        }
        self.refresh_header();
        if let RunFinished { .. } = e.kind {
            let was = self.drawing();
            self.attached = false;
            self.retarget(was, false);
        }
    }
}

impl LiveView {
    /// A view of `plan`'s steps in level order. `title` names the run (runbook and
    /// target); `origin` is the run clock's origin (the journal header's), so a resumed
    /// run shows the time since the run first started.
    pub fn new(plan: &Plan<'_>, title: String, origin: jiff::Timestamp, color: bool) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{msg}").expect("a valid template");
        let header = multi.add(ProgressBar::no_length().with_style(style.clone()));
        let rb = plan.runbook;
        let mut steps = Vec::with_capacity(rb.steps.len());
        for level in &plan.levels {
            for &i in level {
                let bar = multi.add(ProgressBar::no_length().with_style(style.clone()));
                steps.push(Step {
                    id: rb.steps[i].id.clone(),
                    bar,
                    view: StepView::Waiting,
                    started: None,
                    took: None,
                });
            }
        }
        let index = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let id_width = steps
            .iter()
            .map(|s| s.id.as_str().chars().count())
            .max()
            .unwrap_or(0)
            .min(32);
        let inner = Inner {
            multi,
            header,
            steps,
            index,
            id_width,
            title,
            objective: rb.objectives.rto,
            predicted: plan.predicted_rto,
            origin,
            elapsed: Duration::ZERO,
            recovered_when: rb.objectives.recovered_when.clone(),
            recovered: None,
            color,
            paused: 0,
            attached: false,
            held: Vec::new(),
            lines: Lines::default(),
            menu: false,
            down: Default::default(),
        };
        inner.refresh_all();
        LiveView(Arc::new(Mutex::new(inner)))
    }

    /// A paused run asks the operator what to do (guided mode) instead of ending.
    pub fn with_menu(self, menu: bool) -> Self {
        self.lock().menu = menu;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while drawing must not take the run down with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the run clock shown in the header (a tick while no event arrives).
    pub fn tick(&self, elapsed: Duration) {
        let mut i = self.lock();
        i.elapsed = i.elapsed.max(elapsed);
        i.refresh_header();
    }

    /// Takes the terminal for a prompt: clears the step lines; events meanwhile update
    /// the view without drawing, and their history lines wait for [`Self::resume`].
    pub fn pause(&self) {
        let mut i = self.lock();
        let was = i.drawing();
        i.paused += 1;
        i.retarget(was, true);
    }

    /// Gives the terminal back after a prompt: prints the history held meanwhile and
    /// draws the steps again.
    pub fn resume(&self) {
        let mut i = self.lock();
        let was = i.drawing();
        i.paused = i.paused.saturating_sub(1);
        i.retarget(was, false);
    }

    /// Takes in a resumed run's earlier events (from its journal) without printing
    /// them, so the view starts where the run stands.
    pub fn replay(&self, events: &[Event]) {
        let mut i = self.lock();
        for e in events {
            i.on_event(e, true);
        }
        i.refresh_all();
    }

    /// Prints a line above the view (or after the prompt holding the terminal): text
    /// written straight to stderr would be drawn over by the next redraw.
    pub fn println(&self, line: String) {
        self.lock().println(line);
    }

    /// The steps' current lines, for a picture of the run beside a prompt.
    pub fn snapshot(&self) -> String {
        let i = self.lock();
        let mut s = format!("{}\n", i.header_line());
        for st in &i.steps {
            s.push_str(&i.step_line(st));
            s.push('\n');
        }
        s
    }

    /// The sink that feeds this view.
    pub fn sink(&self) -> LiveSink {
        LiveSink(self.clone())
    }
}

/// The [`Sink`] of a [`LiveView`].
pub struct LiveSink(LiveView);

impl Sink for LiveSink {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        self.0.lock().on_event(event, false);
        Ok(())
    }
}

/// Cuts a line to one column less than the terminal: a line that never reaches the
/// last column never wraps, on any terminal, so redraws always know how many rows to
/// clear (and a narrow terminal shows the start of each line, not a jumble).
fn fit(line: String) -> String {
    match console::Term::stderr().size_checked() {
        Some((_, w)) if w > 1 => console::truncate_str(&line, usize::from(w) - 1, "…").into_owned(),
        _ => line,
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// `1h02m`, `3m05s`, `12s`: compact, for a line that must fit a narrow terminal.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `mm:ss` (or `h:mm:ss`) of the run clock, for the history lines.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("{:>2}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunId;

    fn plan_of(text: &str) -> crate::runbook::Runbook {
        crate::runbook::load_str(std::path::Path::new("t.toml"), text)
            .expect("valid")
            .runbook
    }

    const RB: &str = r#"
[runbook]
name = "t"
mode = "unplanned"
[objectives]
rto = "1m"
[[step]]
id = "first"
action = "wait"
duration = "10s"
[[step]]
id = "second"
action = "wait"
duration = "10s"
after = ["first"]
"#;

    fn ev(secs: i64, kind: EventKind) -> Event {
        Event {
            run_id: RunId("t-1".into()),
            at: jiff::Timestamp::from_second(secs).unwrap(),
            kind,
        }
    }

    #[test]
    fn the_header_names_the_regions_that_are_down_and_a_deferred_step_says_so() {
        let rb = plan_of(RB);
        let plan = Plan::new(&rb);
        let view = LiveView::new(
            &plan,
            "t → us-west-2".into(),
            jiff::Timestamp::from_second(0).unwrap(),
            false,
        );
        let mut sink = view.sink();
        let region = |service: &str, status| EventKind::RegionStatus {
            region: "us-east-1".into(),
            service: service.into(),
            status,
            latency_ms: None,
            decided_by: "probe: no answer within 3.0s".into(),
        };
        use crate::cloud::reach::Reachability as R;
        sink.emit(&ev(3, region("rds", R::Unreachable))).unwrap();
        sink.emit(&ev(3, region("s3", R::Unreachable))).unwrap();
        let s = view.snapshot();
        assert!(s.contains("us-east-1 DOWN (rds, s3)"), "{s}");
        sink.emit(&ev(
            4,
            EventKind::StepDeferred {
                step: StepId::new("second"),
                reason: "us-east-1 rds unreachable".into(),
            },
        ))
        .unwrap();
        sink.emit(&ev(20, region("rds", R::Reachable))).unwrap();
        let s = view.snapshot();
        assert!(
            s.contains("~ second  deferred · us-east-1 rds unreachable"),
            "{s}"
        );
        assert!(s.contains("us-east-1 DOWN (s3)"), "back in use: {s}");
    }

    #[test]
    fn lines_follow_the_events_and_the_header_turns_red_over_the_objective() {
        let rb = plan_of(RB);
        let plan = Plan::new(&rb);
        let view = LiveView::new(
            &plan,
            "t → us-west-2".into(),
            jiff::Timestamp::from_second(0).unwrap(),
            false,
        );
        let mut sink = view.sink();
        let first = StepId::new("first");
        sink.emit(&ev(
            1,
            EventKind::StepStarted {
                step: first.clone(),
                attempt: 1,
            },
        ))
        .unwrap();
        sink.emit(&ev(
            5,
            EventKind::GateObserved {
                step: first.clone(),
                check: "verify".into(),
                passed: false,
                observed: "failing-over".into(),
            },
        ))
        .unwrap();
        let s = view.snapshot();
        assert!(
            s.contains("▸ first   running · verify: failing-over"),
            "{s}"
        );
        assert!(s.contains("· second  waiting"), "{s}");
        assert!(s.contains("5s of 1m00s RTO objective"), "{s}");
        sink.emit(&ev(
            11,
            EventKind::StepSucceeded {
                step: first.clone(),
                summary: "waited".into(),
            },
        ))
        .unwrap();
        view.tick(Duration::from_secs(61));
        let s = view.snapshot();
        assert!(s.contains("✓ first   done in 10s · waited"), "{s}");
        assert!(s.contains("1m01s OVER the 1m00s RTO objective"), "{s}");
        assert!(s.contains("1/2 steps"), "{s}");
    }

    #[test]
    fn the_rto_clock_stops_once_service_is_back() {
        let rb = plan_of(&RB.replace("rto = \"1m\"", "rto = \"1m\"\nrecovered_when = [\"first\"]"));
        let plan = Plan::new(&rb);
        let view = LiveView::new(
            &plan,
            "t".into(),
            jiff::Timestamp::from_second(0).unwrap(),
            false,
        );
        let mut sink = view.sink();
        let first = StepId::new("first");
        for (at, kind) in [
            (
                1,
                EventKind::StepStarted {
                    step: first.clone(),
                    attempt: 1,
                },
            ),
            (
                11,
                EventKind::StepSucceeded {
                    step: first,
                    summary: "verified".into(),
                },
            ),
        ] {
            sink.emit(&ev(at, kind)).unwrap();
        }
        // Housekeeping goes on past the objective: the header keeps the recovery time.
        view.tick(Duration::from_secs(90));
        let s = view.snapshot();
        assert!(
            s.contains("service back at 11s of 1m00s RTO objective"),
            "{s}"
        );
        assert!(!s.contains("OVER"), "{s}");
    }

    #[test]
    fn a_paused_view_keeps_history_for_later() {
        let rb = plan_of(RB);
        let plan = Plan::new(&rb);
        let view = LiveView::new(
            &plan,
            "t".into(),
            jiff::Timestamp::from_second(0).unwrap(),
            false,
        );
        let mut sink = view.sink();
        sink.emit(&ev(
            0,
            EventKind::RunStarted {
                event_version: 1,
                runbook: "t".into(),
                mode: crate::runbook::Mode::Unplanned,
                sim: true,
                seed: Some(1),
                resumed: false,
            },
        ))
        .unwrap();
        view.pause();
        sink.emit(&ev(
            3,
            EventKind::StepFailed {
                step: StepId::new("first"),
                error: "boom".into(),
            },
        ))
        .unwrap();
        assert_eq!(view.lock().held.len(), 1);
        assert!(view.snapshot().contains("✗ first   FAILED · boom"));
        view.resume();
        assert!(view.lock().held.is_empty());
    }

    #[test]
    fn a_resumed_run_starts_from_its_journal_without_retelling_it() {
        let rb = plan_of(RB);
        let plan = Plan::new(&rb);
        let view = LiveView::new(
            &plan,
            "t".into(),
            jiff::Timestamp::from_second(0).unwrap(),
            false,
        );
        view.replay(&[
            ev(
                1,
                EventKind::StepStarted {
                    step: StepId::new("first"),
                    attempt: 1,
                },
            ),
            ev(
                11,
                EventKind::StepSucceeded {
                    step: StepId::new("first"),
                    summary: "waited".into(),
                },
            ),
        ]);
        let s = view.snapshot();
        assert!(s.contains("✓ first   done in 10s"), "{s}");
        assert!(s.contains("11s of 1m00s"), "{s}");
        assert!(view.lock().held.is_empty());
    }

    #[test]
    fn durations_are_compact() {
        assert_eq!(short(Duration::from_secs(12)), "12s");
        assert_eq!(short(Duration::from_secs(185)), "3m05s");
        assert_eq!(short(Duration::from_secs(3720)), "1h02m");
        assert_eq!(clock(Duration::from_secs(65)), " 1:05");
    }
}
