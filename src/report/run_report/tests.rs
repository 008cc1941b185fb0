//! Tests of the report model folded from journals: segments, rollbacks, gates, times.

use super::build::strip_userinfo;
use super::*;
use crate::actions::{Executed, Finding};
use crate::engine::events::{Event, EventKind, StepFinding};
use crate::journal::{JOURNAL_VERSION, SimHeader};

const RB: &str = r#"
[runbook]
name = "t"
mode = "planned"
[objectives]
rto = "10m"
rpo = "0s"
[[step]]
id = "check"
action = "wait"
duration = "5s"
[[step]]
id = "change"
action = "wait"
duration = "1m"
after = ["check"]
[[step]]
id = "verify"
action = "wait"
duration = "10s"
after = ["change"]
"#;

fn header() -> Header {
    Header {
        journal_version: JOURNAL_VERSION,
        run_id: RunId("t-1".into()),
        runbook: "t".into(),
        runbook_path: "t.toml".into(),
        runbook_sha256: String::new(),
        created_at: jiff::Timestamp::from_second(1_000).unwrap(),
        clock_origin: jiff::Timestamp::from_second(1_000).unwrap(),
        sim: Some(SimHeader {
            seed: 7,
            speed: None,
            config: None,
        }),
        aws: None,
        params: BTreeMap::new(),
        drill: None,
    }
}

/// Events at whole seconds after the origin.
struct Ev(Vec<Event>);

impl Ev {
    fn at(&mut self, secs: i64, kind: EventKind) -> &mut Self {
        self.0.push(Event {
            run_id: RunId("t-1".into()),
            at: jiff::Timestamp::from_second(1_000 + secs).unwrap(),
            kind,
        });
        self
    }
}

fn id(s: &str) -> StepId {
    StepId::new(s)
}

fn started(resumed: bool) -> EventKind {
    EventKind::RunStarted {
        event_version: 1,
        runbook: "t".into(),
        mode: Mode::Planned,
        sim: true,
        seed: Some(7),
        resumed,
    }
}

fn finished(outcome: Outcome, secs: f64, rto: Option<f64>) -> EventKind {
    EventKind::RunFinished {
        outcome,
        exit_code: outcome.exit_code(),
        makespan_secs: secs,
        rto_secs: rto,
        rpo_secs: None,
        reason: None,
        deferred: Vec::new(),
    }
}

fn step_started(s: &str, attempt: u32) -> EventKind {
    EventKind::StepStarted {
        step: id(s),
        attempt,
    }
}

fn ok(s: &str, summary: &str) -> EventKind {
    EventKind::StepSucceeded {
        step: id(s),
        summary: summary.into(),
    }
}

fn runbook() -> Runbook {
    parse_runbook_copy(&header(), RB).unwrap()
}

fn build(ev: &Ev) -> RunReport {
    let rb = runbook();
    RunReport::build(&header(), &ev.0, RunbookCopy::Parsed(&rb))
}

#[test]
fn a_resumed_run_has_one_segment_per_process_and_ends_with_the_last() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false))
        .at(
            0,
            EventKind::Plan {
                levels: vec![vec![id("check")], vec![id("change")], vec![id("verify")]],
                critical_path: vec![id("check"), id("change"), id("verify")],
                predicted_rto_secs: 70.0,
            },
        )
        .at(
            0,
            EventKind::Preflight {
                ok: true,
                findings: vec![
                    StepFinding {
                        step: id("check"),
                        finding: Finding::ok("fine"),
                    },
                    StepFinding {
                        step: id("change"),
                        finding: Finding::warn("us-east-1 unreachable"),
                    },
                ],
            },
        )
        .at(0, step_started("check", 1))
        .at(5, ok("check", "done"))
        .at(5, step_started("change", 1))
        .at(
            20,
            EventKind::AttemptFailed {
                step: id("change"),
                attempt: 1,
                error: "refused".into(),
                will_retry: false,
                retry_in_secs: None,
            },
        )
        .at(
            20,
            EventKind::StepFailed {
                step: id("change"),
                error: "refused".into(),
            },
        )
        .at(20, finished(Outcome::Paused, 20.0, None))
        // Resumed with --retry; that process is killed mid-step...
        .at(20, started(true))
        .at(20, step_started("change", 1))
        // ...and resumed again, to the end.
        .at(30, started(true))
        .at(
            30,
            EventKind::Executed {
                step: id("change"),
                executed: Executed {
                    summary: "x".into(),
                    output: serde_json::Value::Null,
                },
            },
        )
        .at(80, ok("change", "changed"))
        .at(80, step_started("verify", 1))
        .at(90, ok("verify", "verified"))
        .at(90, finished(Outcome::Succeeded, 90.0, Some(85.0)));
    let r = build(&ev);
    assert_eq!(r.segments.len(), 3);
    assert_eq!(
        r.segments.iter().map(|s| s.resumed).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(r.segments[0].outcome, Some(Outcome::Paused));
    assert_eq!(r.segments[1].outcome, None, "killed: no end recorded");
    assert_eq!(r.segments[2].outcome, Some(Outcome::Succeeded));
    assert_eq!(r.outcome.status, RunStatus::Succeeded);
    assert_eq!(r.outcome.exit_code, Some(0));
    let change = &r.steps[1];
    assert_eq!(change.id, id("change"));
    assert_eq!(change.state, StepState::Succeeded);
    assert_eq!(change.started_at_secs, Some(5.0), "the first start");
    assert_eq!(change.ended_at_secs, Some(80.0));
    assert_eq!(change.duration_secs, Some(75.0));
    assert_eq!(change.attempts, 2);
    assert_eq!(change.error, None, "a later success clears the failure");
    assert_eq!(change.retries.len(), 1);
    assert_eq!(r.rto.achieved_secs, Some(85.0));
    assert_eq!(r.rto.objective_secs, Some(600.0));
    assert_eq!(r.rto.verdict(), "met");
    assert_eq!(r.rto.starts_at_secs, Some(5.0));
    assert_eq!(r.rpo.verdict(), "not measured");
    let pf = r.preflight.as_ref().unwrap();
    assert_eq!((pf.checks, pf.failures.len(), pf.warnings.len()), (2, 0, 1));
    assert!(r.steps.iter().all(|s| s.critical));
}

#[test]
fn a_run_whose_last_process_recorded_no_end_is_interrupted() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false))
        .at(0, step_started("check", 1))
        .at(5, ok("check", "done"))
        .at(5, finished(Outcome::Paused, 5.0, None))
        .at(6, started(true))
        .at(6, step_started("change", 1));
    let r = build(&ev);
    assert_eq!(r.outcome.status, RunStatus::Interrupted);
    assert_eq!(r.outcome.exit_code, None);
    assert!(r.outcome.resumable);
    assert_eq!(r.outcome.describe(), "interrupted (resumable)");
    assert_eq!(r.steps[1].state, StepState::InFlight);
    assert_eq!(r.steps[2].state, StepState::NotStarted);
    assert_eq!(r.last_event_at_secs, 6.0);
}

#[test]
fn a_rolled_back_run_records_each_steps_rollback_in_order() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false))
        .at(0, step_started("check", 1))
        .at(1, ok("check", "ok"))
        .at(1, step_started("change", 1))
        .at(61, ok("change", "changed"))
        .at(61, step_started("verify", 1))
        .at(
            71,
            EventKind::StepFailed {
                step: id("verify"),
                error: "still <broken>".into(),
            },
        )
        .at(
            71,
            EventKind::RollbackStarted {
                steps: vec![id("change"), id("check")],
            },
        )
        .at(
            100,
            EventKind::StepRolledBack {
                step: id("change"),
                summary: "undone".into(),
            },
        )
        .at(
            100,
            EventKind::RollbackFailed {
                step: id("check"),
                error: "no rollback is defined for this step; its change remains".into(),
            },
        )
        .at(
            100,
            EventKind::RollbackFinished {
                clean: false,
                left_changed: vec![id("check")],
            },
        )
        .at(100, finished(Outcome::NeedsAttention, 100.0, None));
    let r = build(&ev);
    assert_eq!(r.outcome.describe(), "needs attention (exit 3)");
    assert_eq!(r.rollbacks.len(), 1);
    let rb = &r.rollbacks[0];
    assert_eq!(rb.order, [id("change"), id("check")]);
    assert_eq!(rb.clean, Some(false));
    assert_eq!(rb.left_changed, [id("check")]);
    assert_eq!(rb.results[0].started_at_secs, 71.0);
    assert_eq!(rb.results[0].at_secs, 100.0);
    assert!(rb.results[0].ok && !rb.results[1].ok);
    let states: Vec<StepState> = r.steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::RollbackFailed,
            StepState::RolledBack,
            StepState::Failed
        ]
    );
    // The forward bar keeps its success time; the rollback has its own.
    assert_eq!(r.steps[1].ended_at_secs, Some(61.0));
    assert_eq!(r.rollback_of(&id("change")).unwrap().detail, "undone");
    assert_eq!(r.steps[2].error.as_deref(), Some("still <broken>"));
    assert_eq!(r.rto.verdict(), "not measured");
    assert!(!r.objective_missed());
}

#[test]
fn gate_polls_fold_into_distinct_values_in_order() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false)).at(0, step_started("change", 1));
    let observe = |passed: bool, observed: &str| EventKind::GateObserved {
        step: id("change"),
        check: "verify".into(),
        passed,
        observed: observed.into(),
    };
    for t in 0..1000 {
        ev.at(t, observe(false, "pending"));
    }
    for t in 1000..1500 {
        ev.at(t, observe(false, "failing-over"));
    }
    ev.at(1500, observe(false, "pending"))
        .at(1505, observe(true, "writer in us-west-2"))
        .at(
            1505,
            EventKind::GateObserved {
                step: id("change"),
                check: "aurora.writer_in_region".into(),
                passed: true,
                observed: "writer in us-west-2".into(),
            },
        );
    for t in 0..50 {
        ev.at(1506, observe(false, &format!("lag {t}ms")));
    }
    let r = build(&ev);
    let g = &r.steps[1].gates;
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].check, "verify");
    assert_eq!(g[0].polls, 1502 + 50);
    let values: Vec<&str> = g[0].values.iter().map(|v| v.observed.as_str()).collect();
    assert_eq!(values.len(), MAX_GATE_VALUES);
    assert_eq!(
        &values[..3],
        ["pending", "failing-over", "writer in us-west-2"]
    );
    assert_eq!(g[0].values[0].polls, 1001);
    assert_eq!(g[0].values[0].first_at_secs, 0.0);
    assert_eq!(g[0].values[0].last_at_secs, 1500.0);
    assert_eq!(g[0].more_values, 50 - (MAX_GATE_VALUES - 3));
    assert_eq!(g[1].polls, 1);
    assert!(g[1].last_passed);
}

#[test]
fn an_unusable_runbook_copy_is_a_note_and_the_journal_still_reports() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false))
        .at(0, step_started("zeta", 1))
        .at(3, ok("zeta", "ok"))
        .at(3, finished(Outcome::Succeeded, 3.0, Some(3.0)));
    let r = RunReport::build(&header(), &ev.0, RunbookCopy::Unusable("bad toml"));
    assert!(r.notes[0].contains("bad toml"), "{:?}", r.notes);
    assert!(!r.runbook.copy_parsed);
    assert_eq!(r.steps.len(), 1);
    assert_eq!(r.steps[0].action, None);
    assert_eq!(r.rto.objective_secs, None);
    assert_eq!(r.rto.verdict(), "no objective");
}

#[test]
fn an_objective_missed_is_missed() {
    let mut ev = Ev(Vec::new());
    ev.at(0, started(false))
        .at(700, finished(Outcome::Succeeded, 700.0, Some(700.0)));
    let r = build(&ev);
    assert_eq!(r.rto.verdict(), "MISSED");
    assert!(r.objective_missed());
}

#[test]
fn endpoint_credentials_never_reach_a_report() {
    assert_eq!(
        strip_userinfo("http://AKIA:secret@127.0.0.1:5000/x?y"),
        "http://127.0.0.1:5000/x?y"
    );
    assert_eq!(strip_userinfo("http://localhost:1"), "http://localhost:1");
    assert_eq!(strip_userinfo("u:p@h/p@q"), "h/p@q");
}

#[test]
fn times_read_well() {
    assert_eq!(human_secs(0.0), "0s");
    assert_eq!(human_secs(0.44), "0.4s");
    assert_eq!(human_secs(59.96), "1m");
    assert_eq!(human_secs(238.6), "3m 59s");
    assert_eq!(human_secs(3723.0), "1h 02m 03s");
    assert_eq!(clock_secs(0.0), "+00:00");
    assert_eq!(clock_secs(238.6), "+03:59");
    assert_eq!(human_secs(900.0), "15m");
    assert_eq!(clock_secs(3723.0), "+1:02:03");
}
