//! A run's notification receivers, gathered from `--notify` (repeatable), the
//! `DRPILOT_NOTIFY` environment variable (URLs separated by whitespace or commas) and
//! the variables the runbook's `[notify] urls_env` names; and the sink that hands the
//! run's events to the notifier and its results back to the run's other sinks.
//!
//! A bad `--notify` or `DRPILOT_NOTIFY` value is a usage error (exit 2, nothing ran),
//! named without its URL. A variable the runbook names that is unset, empty or holds
//! something else than receivers is a preflight warning: the runbook travels between
//! machines and a missing webhook must not stop a failover.

use std::path::PathBuf;

use super::error::AppError;
use crate::engine::dispatcher::Sink;
use crate::engine::events::StepFinding;
use crate::engine::{Event, EventKind};
use crate::notify::{Notifier, Receiver, split_list};
use crate::runbook::Runbook;

/// The environment variable with receivers for every run, resume and drill.
pub const NOTIFY_ENV: &str = "DRPILOT_NOTIFY";

/// Who a run notifies.
#[derive(Clone, Debug, Default)]
pub struct Notify {
    pub(super) receivers: Vec<Receiver>,
    /// What is wrong with the runbook's `[notify]` variables, for preflight.
    pub(super) warnings: Vec<String>,
    /// Where a drill writes its reports (a run's is `drpilot report RUN_ID`).
    pub(super) report_dir: Option<PathBuf>,
}

impl Notify {
    /// The receivers of `--notify` values, `DRPILOT_NOTIFY` and `rb`'s `[notify]`, read
    /// from this process's environment.
    pub fn resolve(flags: &[String], rb: &Runbook) -> Result<Notify, AppError> {
        Self::resolve_with(flags, rb, |k| std::env::var(k).ok())
    }

    fn resolve_with(
        flags: &[String],
        rb: &Runbook,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Notify, AppError> {
        let mut n = Notify::default();
        for (i, value) in flags.iter().enumerate() {
            let r = Receiver::parse(value).map_err(|e| {
                AppError::usage(format!(
                    "--notify (value {} of {}): {e}",
                    i + 1,
                    flags.len()
                ))
            })?;
            n.add(r);
        }
        if let Some(text) = env(NOTIFY_ENV) {
            for value in split_list(&text) {
                let r = Receiver::parse(value)
                    .map_err(|e| AppError::usage(format!("{NOTIFY_ENV}: {e}")))?;
                n.add(r);
            }
        }
        for var in rb.notify.iter().flat_map(|s| &s.urls_env) {
            let text = env(var).unwrap_or_default();
            let mut found = 0;
            for value in split_list(&text) {
                match Receiver::parse(value) {
                    Ok(r) => {
                        found += 1;
                        n.add(r);
                    }
                    Err(e) => n.warnings.push(format!(
                        "[notify] urls_env: {var} holds something that is not a receiver ({e}); it is not notified"
                    )),
                }
            }
            if found == 0 && text.trim().is_empty() {
                n.warnings.push(format!(
                    "[notify] urls_env: {var} is not set; nobody is notified through it"
                ));
            }
        }
        Ok(n)
    }

    fn add(&mut self, r: Receiver) {
        if !self.receivers.contains(&r) {
            self.receivers.push(r);
        }
    }

    /// The same receivers for a drill's phase, whose reports go to `dir`.
    pub(super) fn with_report_dir(mut self, dir: Option<PathBuf>) -> Notify {
        self.report_dir = dir;
        self
    }

    /// Preflight's warnings about the runbook's `[notify]` variables, on its first
    /// step (preflight findings belong to a step).
    pub fn findings(&self, rb: &Runbook) -> Vec<StepFinding> {
        let Some(first) = rb.steps.first() else {
            return Vec::new();
        };
        self.warnings
            .iter()
            .map(|w| StepFinding {
                step: first.id.clone(),
                finding: crate::actions::Finding::warn(w.clone()),
            })
            .collect()
    }

    /// Whether anybody is notified.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// The report's place, as notifications say it (`{run_id}`: the run's id).
    pub(super) fn report(&self) -> Option<String> {
        self.report_dir.as_ref().map(|d| {
            format!(
                "{}/{{run_id}}.md (written when the drill ends)",
                d.display()
            )
        })
    }
}

/// The notifier of one execution, and the time of the run's last event: what comes
/// back after the run ended is recorded at that time, so a resumed run's clock does
/// not move for it.
pub(super) struct Notifying {
    pub(super) notifier: Notifier,
    pub(super) last: Option<Event>,
}

/// The run's sinks, with the notifier beside them: each event goes to every sink, then
/// to the notifier (queued, never waited for); then whatever the notifier has
/// delivered since goes to every sink as `notification_sent` / `notification_failed`.
pub(super) struct NotifyingSinks<'a, 's> {
    pub(super) inner: Vec<&'s mut dyn Sink>,
    pub(super) state: &'a mut Notifying,
}

impl Sink for NotifyingSinks<'_, '_> {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        let mut result = emit_all(&mut self.inner, event);
        let mut follow = self.state.notifier.observe(event);
        follow.extend(self.state.notifier.ready());
        self.state.last = Some(event.clone());
        for kind in follow {
            let e = Event {
                run_id: event.run_id.clone(),
                at: event.at,
                kind,
            };
            let r = emit_all(&mut self.inner, &e);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// Emits to every sink; the first error, as the engine keeps it.
pub(super) fn emit_all(sinks: &mut [&mut dyn Sink], event: &Event) -> Result<(), String> {
    let mut result = Ok(());
    for s in sinks.iter_mut() {
        if let Err(e) = s.emit(event)
            && result.is_ok()
        {
            result = Err(e);
        }
    }
    result
}

/// The results that came after the run's end, as events at the time of its last one.
pub(super) fn after_end(last: Option<&Event>, kinds: Vec<EventKind>) -> Vec<Event> {
    let Some(last) = last else {
        return Vec::new();
    };
    kinds
        .into_iter()
        .map(|kind| Event {
            run_id: last.run_id.clone(),
            at: last.at,
            kind,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(notify: &str) -> Runbook {
        let text = format!(
            "[runbook]\nname = \"t\"\nmode = \"planned\"\n{notify}\n[[step]]\nid = \"w\"\naction = \"wait\"\nduration = \"1s\"\n"
        );
        crate::runbook::load_str(std::path::Path::new("t.toml"), &text)
            .unwrap()
            .runbook
    }

    #[test]
    fn flags_the_environment_and_the_runbook_add_up_without_repeats() {
        let rb = rb("[notify]\nurls_env = [\"DR_HOOK\", \"DR_UNSET\"]");
        let env = |k: &str| match k {
            NOTIFY_ENV => {
                Some("https://a.example/x, sns:arn:aws:sns:us-west-2:111122223333:t".into())
            }
            "DR_HOOK" => Some("slack+https://hooks.example/T/B/C https://a.example/x".into()),
            _ => None,
        };
        let n = Notify::resolve_with(&["https://a.example/x".into()], &rb, env).unwrap();
        let got: Vec<String> = n.receivers.iter().map(Receiver::describe).collect();
        assert_eq!(
            got,
            [
                "webhook a.example",
                "sns arn:aws:sns:us-west-2:111122223333:t",
                "slack hooks.example"
            ]
        );
        assert_eq!(n.warnings.len(), 1, "{:?}", n.warnings);
        assert!(n.warnings[0].contains("DR_UNSET is not set"));
        assert_eq!(n.findings(&rb).len(), 1);
    }

    #[test]
    fn a_bad_flag_is_a_usage_error_that_does_not_repeat_it() {
        let e =
            Notify::resolve_with(&["ftp://h/sekrit-token".into()], &rb(""), |_| None).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::USAGE);
        let text = e.to_string();
        assert!(text.contains("--notify"), "{text}");
        assert!(!text.contains("sekrit"), "{text}");
        let e = Notify::resolve_with(&[], &rb(""), |k| {
            (k == NOTIFY_ENV).then(|| "gopher://h/sekrit-token".into())
        })
        .unwrap_err();
        assert!(e.to_string().contains(NOTIFY_ENV), "{e}");
        assert!(!e.to_string().contains("sekrit"), "{e}");
    }
}
