//! What a command asks of a run, independent of how it was asked: the output, the
//! simulated world's speed, the execution options shared by run, resume and drill, and
//! how the run talks to whoever started it ([`Ui`]). The CLI maps its flags onto these;
//! nothing here knows about argument parsing.

use std::io::IsTerminal;

use crate::engine;

/// Where progress goes: for people (stderr) or one JSON event per line (stdout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Progress for people on stderr.
    Human,
    /// One JSON event per line on stdout (docs/events.md); logs on stderr.
    Json,
}

/// The simulated world's speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SimSpeed {
    /// N times real time.
    Times(f64),
    /// Virtual time: as fast as the machine goes.
    Max,
}

/// The execution options shared by run, resume and drill (the CLI's `ExecArgs`).
#[derive(Clone, Debug)]
pub struct Exec {
    /// Approve every approval step.
    pub yes: bool,
    /// Approve these approval steps.
    pub approve: Vec<String>,
    /// Where progress goes.
    pub output: Output,
    /// `--state` locations (else `DRPILOT_STATE`, the runbook's `[state]`, the default).
    pub state: Vec<String>,
    /// Take over a stale lock.
    pub break_stale_lock: bool,
    /// The simulated world's speed, if given.
    pub sim_speed: Option<SimSpeed>,
    /// The whole run's deadline.
    pub timeout: Option<std::time::Duration>,
    /// AWS profile.
    pub profile: Option<String>,
    /// Send every AWS call here (an emulator).
    pub endpoint_url: Option<String>,
    /// Steps not to run.
    pub skip_step: Vec<String>,
    /// At most this many steps at once.
    pub max_parallel: Option<u32>,
    /// `--notify` receivers' URLs (secrets: never printed).
    pub notify: Vec<String>,
    /// How long a headless run waits for approvals from the state store.
    pub await_approvals: Option<std::time::Duration>,
}

/// How a run talks to whoever started it.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// Where progress goes.
    pub(super) output: Output,
    /// A person at a terminal (stdin and stderr) with human output: prompts possible.
    pub(super) interactive: bool,
    /// Guided mode (interactive, no --yes): plan, preflight and a typed confirmation
    /// before the run.
    pub(super) guided: bool,
    /// Guided and no --on-failure: a failure asks the operator what to do.
    pub(super) menu: bool,
    /// The live view (stderr a capable terminal, human output).
    pub(super) live: bool,
    /// Move the live view's clock once a second (not in virtual time, where a timer
    /// would only make the clock jump).
    pub(super) tick: bool,
    /// Colour in what people read.
    pub(super) color: bool,
}

impl Ui {
    /// From the execution options and `--on-failure`, seeing whether a person is at the terminal.
    pub fn new(exec: &Exec, on_failure: Option<engine::OnFailure>, color: bool) -> Self {
        let human = exec.output == Output::Human;
        let stderr_tty = std::io::stderr().is_terminal();
        let interactive = human && stderr_tty && std::io::stdin().is_terminal();
        let guided = interactive && !exec.yes;
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Ui {
            output: exec.output,
            interactive,
            guided,
            menu: guided && on_failure.is_none(),
            live: human && stderr_tty && !dumb,
            tick: true,
            color,
        }
    }

    /// A scheduled drill: no briefing, confirmation or failure menu (a failed phase
    /// rolls back and the drill reports it), but a person at a terminal without --yes
    /// still answers each approval step's prompt.
    pub fn scheduled(exec: &Exec, color: bool) -> Self {
        let mut ui = Ui::new(exec, Some(engine::OnFailure::Rollback), color);
        ui.guided = false;
        ui.menu = false;
        ui
    }

    /// The engine's failure policy: the operator's flag; pausing for the menu in
    /// guided mode; rolling back otherwise.
    pub fn policy(&self, on_failure: Option<engine::OnFailure>) -> engine::OnFailure {
        match on_failure {
            Some(p) => p,
            None if self.menu => engine::OnFailure::Pause,
            None => engine::OnFailure::Rollback,
        }
    }
}
