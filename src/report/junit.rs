//! The report as JUnit XML, so a scheduled drill's result shows in CI like a test run.
//!
//! One `<testsuite>` named after the runbook; one `<testcase>` per step (failed steps
//! fail, skipped and never-started steps are skipped, a step that succeeded and was
//! later rolled back passes and says so in `<system-out>`, a step whose change remains
//! after a rollback fails, a step the run stopped in is an error), then `preflight`
//! (when it ran) and `objectives`, which fails when the RTO or RPO was missed: a drill
//! that worked but was too slow must turn CI red, not green with a footnote.

use std::fmt::Write as _;

use super::escape::xml;
use super::run_report::{RunReport, StepState, human_secs};

/// Seconds as JUnit's `time` attribute.
fn time(secs: Option<f64>) -> String {
    format!("{:.3}", secs.unwrap_or(0.0))
}

struct Case {
    name: String,
    time: String,
    /// `failure`, `error` or `skipped`, with its message and body.
    verdict: Option<(&'static str, String, String)>,
    out: Option<String>,
}

/// The report as a JUnit XML document.
pub fn render(r: &RunReport) -> String {
    let suite = &r.runbook.name;
    let mut cases: Vec<Case> = Vec::new();
    for s in &r.steps {
        let rollback = r.rollback_of(&s.id);
        // The attempts that were retried; the last failure is the step's own error.
        let retries: String = s
            .retries
            .iter()
            .filter(|x| x.will_retry)
            .map(|x| format!("attempt {} failed: {}\n", x.attempt, x.error))
            .collect();
        let verdict = match s.state {
            StepState::Failed => {
                let error = s.error.clone().unwrap_or_else(|| "failed".into());
                Some(("failure", error.clone(), format!("{retries}{error}")))
            }
            StepState::RollbackFailed => {
                let detail = rollback.map_or("rollback failed", |x| x.detail.as_str());
                let msg = format!("its change remains after the rollback: {detail}");
                Some(("failure", msg.clone(), msg))
            }
            StepState::InFlight => {
                let msg = "the run stopped during this step (resumable)".to_string();
                Some(("error", msg.clone(), format!("{retries}{msg}")))
            }
            StepState::Skipped => Some((
                "skipped",
                s.skip_reason.clone().unwrap_or_else(|| "skipped".into()),
                String::new(),
            )),
            StepState::NotStarted => Some((
                "skipped",
                "not started: the run ended before it".into(),
                String::new(),
            )),
            StepState::Deferred => Some((
                "skipped",
                format!(
                    "deferred: {}",
                    s.skip_reason
                        .as_deref()
                        .unwrap_or("a region it needs was unreachable")
                ),
                String::new(),
            )),
            StepState::Succeeded | StepState::RolledBack => None,
        };
        let mut out = s.summary.clone().unwrap_or_default();
        if s.state == StepState::RolledBack {
            let detail = rollback.map_or("", |x| x.detail.as_str());
            out = format!("{out}\nrolled back afterwards: {detail}");
        }
        if !retries.is_empty() && verdict.is_none() {
            out = format!("{retries}{out}");
        }
        cases.push(Case {
            name: s.id.to_string(),
            time: time(s.duration_secs),
            verdict,
            out: (!out.trim().is_empty()).then(|| out.trim().to_string()),
        });
    }

    if let Some(p) = &r.preflight {
        let lines: String = p
            .failures
            .iter()
            .map(|f| format!("{}: {}\n", f.step, f.message))
            .collect();
        let warnings: String = p
            .warnings
            .iter()
            .map(|f| format!("{}: {}\n", f.step, f.message))
            .collect();
        cases.push(Case {
            name: "preflight".into(),
            time: time(None),
            verdict: (!p.ok).then(|| {
                (
                    "failure",
                    format!(
                        "{} preflight check(s) failed; nothing was changed",
                        p.failures.len()
                    ),
                    lines,
                )
            }),
            out: (!warnings.is_empty()).then_some(warnings),
        });
    }

    let mut problems = Vec::new();
    let mut measured = Vec::new();
    for (name, o) in [("RTO", &r.rto), ("RPO", &r.rpo)] {
        match (o.achieved_secs, o.objective_secs) {
            (Some(a), Some(obj)) if a > obj => problems.push(format!(
                "{name} {} exceeds the objective {}",
                human_secs(a),
                human_secs(obj)
            )),
            (Some(a), Some(obj)) => measured.push(format!(
                "{name} {} within the objective {}",
                human_secs(a),
                human_secs(obj)
            )),
            (Some(a), None) => measured.push(format!("{name} {} (no objective)", human_secs(a))),
            (None, _) => {}
        }
    }
    let verdict = if !problems.is_empty() {
        Some(("failure", problems.join("; "), problems.join("\n")))
    } else if measured.is_empty() {
        Some((
            "skipped",
            format!(
                "not measured: the run {} without measuring its RTO",
                match r.outcome.exit_code {
                    Some(_) => "ended",
                    None => "stopped",
                }
            ),
            String::new(),
        ))
    } else {
        None
    };
    cases.push(Case {
        name: "objectives".into(),
        time: time(None),
        verdict,
        out: (!measured.is_empty()).then(|| measured.join("\n")),
    });

    let count = |kind: &str| {
        cases
            .iter()
            .filter(|c| c.verdict.as_ref().is_some_and(|v| v.0 == kind))
            .count()
    };
    let (failures, errors, skipped) = (count("failure"), count("error"), count("skipped"));
    let total_time = time(Some(r.last_event_at_secs));
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"drpilot\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total_time}\">",
        cases.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total_time}\" timestamp=\"{}\">",
        xml(suite),
        cases.len(),
        r.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    );
    let _ = writeln!(o, "    <properties>");
    let mut props = vec![
        ("run_id", r.run_id.to_string()),
        ("outcome", r.outcome.describe()),
        ("runbook_path", r.runbook.path.clone()),
    ];
    if let Some(sim) = &r.target.sim {
        props.push(("sim_seed", sim.seed.to_string()));
    }
    for (k, v) in props {
        let _ = writeln!(o, "      <property name=\"{k}\" value=\"{}\"/>", xml(&v));
    }
    let _ = writeln!(o, "    </properties>");
    for c in &cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            xml(suite),
            xml(&c.name),
            c.time
        );
        if c.verdict.is_none() && c.out.is_none() {
            let _ = writeln!(o, "{open}/>");
            continue;
        }
        let _ = writeln!(o, "{open}>");
        if let Some((kind, message, body)) = &c.verdict {
            let ty = match *kind {
                "failure" => " type=\"failed\"",
                "error" => " type=\"interrupted\"",
                _ => "",
            };
            if body.is_empty() {
                let _ = writeln!(o, "      <{kind} message=\"{}\"{ty}/>", xml(message));
            } else {
                let _ = writeln!(
                    o,
                    "      <{kind} message=\"{}\"{ty}>{}</{kind}>",
                    xml(message),
                    xml(body.trim_end())
                );
            }
        }
        if let Some(out) = &c.out {
            let _ = writeln!(o, "      <system-out>{}</system-out>", xml(out));
        }
        let _ = writeln!(o, "    </testcase>");
    }
    let _ = writeln!(o, "  </testsuite>");
    o.push_str("</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Event, EventKind, Outcome, RunId};
    use crate::journal::{Header, JOURNAL_VERSION};
    use crate::report::run_report::{RunReport, RunbookCopy, parse_runbook_copy};
    use crate::runbook::StepId;

    const RB: &str = "[runbook]\nname = \"t\"\nmode = \"unplanned\"\n[objectives]\nrto = \"10s\"\n\
        [[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\n\
        [[step]]\nid = \"b\"\naction = \"wait\"\nduration = \"1s\"\nafter = [\"a\"]\n\
        [[step]]\nid = \"c\"\naction = \"wait\"\nduration = \"1s\"\nafter = [\"b\"]\n";

    fn report(events: Vec<EventKind>) -> RunReport {
        let header = Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId("r".into()),
            runbook: "t&t".into(),
            runbook_path: "t.toml".into(),
            runbook_sha256: String::new(),
            created_at: jiff::Timestamp::from_second(0).unwrap(),
            clock_origin: jiff::Timestamp::from_second(0).unwrap(),
            sim: None,
            aws: None,
            params: Default::default(),
            drill: None,
        };
        let rb = parse_runbook_copy(&header, RB).unwrap();
        let events: Vec<Event> = events
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event {
                run_id: RunId("r".into()),
                at: jiff::Timestamp::from_second(i as i64 * 5).unwrap(),
                kind,
            })
            .collect();
        RunReport::build(&header, &events, RunbookCopy::Parsed(&rb))
    }

    fn id(s: &str) -> StepId {
        StepId::new(s)
    }

    #[test]
    fn a_slow_success_fails_the_objectives_case_only() {
        let xml = render(&report(vec![
            EventKind::StepStarted {
                step: id("a"),
                attempt: 1,
            },
            EventKind::StepSucceeded {
                step: id("a"),
                summary: "done <ok> \u{1}".into(),
            },
            EventKind::StepStarted {
                step: id("b"),
                attempt: 1,
            },
            EventKind::StepSucceeded {
                step: id("b"),
                summary: "done".into(),
            },
            EventKind::StepStarted {
                step: id("c"),
                attempt: 1,
            },
            EventKind::StepSucceeded {
                step: id("c"),
                summary: "done".into(),
            },
            EventKind::RunFinished {
                outcome: Outcome::Succeeded,
                exit_code: 0,
                makespan_secs: 30.0,
                rto_secs: Some(30.0),
                rpo_secs: None,
                reason: None,
                deferred: Vec::new(),
            },
        ]));
        assert!(
            xml.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"objectives\""));
        assert!(xml.contains("RTO 30s exceeds the objective 10s"));
        assert!(
            xml.contains("classname=\"t&amp;t\" name=\"a\" time=\"5.000\""),
            "{xml}"
        );
        assert!(xml.contains("done &lt;ok&gt; \u{fffd}"));
    }

    #[test]
    fn rolled_back_steps_pass_and_failed_ones_fail() {
        let xml = render(&report(vec![
            EventKind::StepStarted {
                step: id("a"),
                attempt: 1,
            },
            EventKind::StepSucceeded {
                step: id("a"),
                summary: "done".into(),
            },
            EventKind::StepStarted {
                step: id("b"),
                attempt: 1,
            },
            EventKind::StepFailed {
                step: id("b"),
                error: "\"bad\" & worse".into(),
            },
            EventKind::RollbackStarted {
                steps: vec![id("a")],
            },
            EventKind::StepRolledBack {
                step: id("a"),
                summary: "undone".into(),
            },
            EventKind::RollbackFinished {
                clean: true,
                left_changed: vec![],
            },
            EventKind::RunFinished {
                outcome: Outcome::RolledBack,
                exit_code: 1,
                makespan_secs: 35.0,
                rto_secs: None,
                rpo_secs: None,
                reason: Some("step b failed".into()),
                deferred: Vec::new(),
            },
        ]));
        // a passes (rolled back), b fails, c not started (skipped), objectives skipped.
        assert!(
            xml.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""),
            "{xml}"
        );
        assert!(xml.contains("rolled back afterwards: undone"));
        assert!(
            xml.contains("<failure message=\"&quot;bad&quot; &amp; worse\""),
            "{xml}"
        );
    }
}
