//! The report as GitHub-flavoured Markdown: what a person reads after a drill or an
//! incident, pasted into a ticket or a post-mortem.
//!
//! Every string from the journal goes through [`super::escape::md`] or
//! [`super::escape::md_code`]: it cannot break a table, inject HTML or start a link.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape::{md, md_code};
use super::run_report::{RunReport, StepState, clock_secs, human_secs};
use crate::runbook::Mode;

fn opt_secs(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), human_secs)
}

fn opt_clock(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), clock_secs)
}

/// Words for a run's mode.
pub(crate) fn mode_words(mode: Option<Mode>) -> &'static str {
    match mode {
        Some(Mode::Planned) => "planned switchover (no data loss)",
        Some(Mode::Unplanned) => "unplanned failover (may lose unreplicated writes)",
        None => "unknown",
    }
}

/// Where the run acted, in words; never a credential (the journal holds none).
pub(crate) fn target_words(r: &RunReport) -> String {
    if let Some(sim) = &r.target.sim {
        let speed = sim
            .speed
            .map_or_else(|| "max (virtual time)".to_string(), |s| format!("{s}x"));
        let mut t = format!("simulated world, seed {}, speed {speed}", sim.seed);
        if let Some(c) = &sim.config {
            let _ = write!(t, ", sim config {c}");
        }
        t
    } else if let Some(aws) = &r.target.aws {
        format!(
            "AWS, profile {}, endpoint {}",
            aws.profile.as_deref().unwrap_or("(default)"),
            aws.endpoint_url.as_deref().unwrap_or("(AWS)")
        )
    } else {
        "unknown".into()
    }
}

/// What the step did or why not, in one line.
pub(crate) fn step_result(r: &RunReport, s: &super::run_report::StepReport) -> String {
    let mut parts = Vec::new();
    match s.state {
        StepState::Failed => parts.push(s.error.clone().unwrap_or_default()),
        StepState::Skipped => parts.push(s.skip_reason.clone().unwrap_or_default()),
        StepState::Deferred => parts.push(format!(
            "deferred: {}",
            s.skip_reason.clone().unwrap_or_default()
        )),
        _ => {
            if let Some(sum) = &s.summary {
                parts.push(sum.clone());
            }
        }
    }
    if let Some(rb) = r.rollback_of(&s.id) {
        parts.push(if rb.ok {
            format!("rolled back: {}", rb.detail)
        } else {
            format!("rollback failed: {}", rb.detail)
        });
    }
    if s.state == StepState::InFlight
        && let Some(last) = s.retries.last()
    {
        parts.push(format!("last attempt failed: {}", last.error));
    }
    parts.retain(|p| !p.is_empty());
    parts.join("; ")
}

/// The report as Markdown.
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Run report: {}\n", md(&r.runbook.name));
    let _ = writeln!(o, "**Outcome: {}**\n", md(&r.outcome.describe()));
    if let Some(why) = &r.outcome.reason {
        let _ = writeln!(o, "Why: {}\n", md(why));
    }
    if r.objective_missed() {
        let _ = writeln!(o, "**An objective was MISSED** (see Objectives).\n");
    }
    if !r.outcome.deferred.is_empty() {
        let names: Vec<String> = r
            .outcome
            .deferred
            .iter()
            .map(|s| md_code(s.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "**Deferred:** {} (a region they need was unreachable; {} runs them once it answers).\n",
            names.join(", "),
            md_code(&format!("drpilot resume {}", r.run_id))
        );
    }

    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Run | {} |", md_code(&r.run_id.0));
    let _ = writeln!(
        o,
        "| Runbook | {} ({}) |",
        md(&r.runbook.name),
        md_code(&r.runbook.path)
    );
    if let Some(d) = &r.runbook.description {
        let _ = writeln!(o, "| Description | {} |", md(d));
    }
    let _ = writeln!(o, "| Mode | {} |", mode_words(r.runbook.mode));
    let _ = writeln!(
        o,
        "| Started | {} (wall clock) |",
        r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(
        o,
        "| Run clock | {} from start to the last event |",
        human_secs(r.last_event_at_secs)
    );
    let _ = writeln!(o, "| Target | {} |", md(&target_words(r)));
    if r.outcome.resumable {
        let _ = writeln!(
            o,
            "| Resume | {} |",
            md_code(&format!("drpilot resume {}", r.run_id))
        );
    }
    o.push('\n');

    let _ = writeln!(o, "## Objectives\n");
    let _ = writeln!(o, "| | Predicted | Achieved | Objective | Verdict |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    let _ = writeln!(
        o,
        "| RTO | {} | {} | {} | {} |",
        opt_secs(r.rto.predicted_secs),
        opt_secs(r.rto.achieved_secs),
        opt_secs(r.rto.objective_secs),
        r.rto.verdict()
    );
    let _ = writeln!(
        o,
        "| RPO | — | {} | {} | {} |",
        r.rpo
            .achieved_secs
            .map_or_else(|| "not measured".to_string(), human_secs),
        opt_secs(r.rpo.objective_secs),
        r.rpo.verdict()
    );
    o.push('\n');

    let _ = writeln!(o, "## Processes\n");
    let _ = writeln!(o, "| # | Command | Started | Ended | Outcome |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for (i, s) in r.segments.iter().enumerate() {
        let outcome = match (s.outcome, s.exit_code) {
            (Some(out), Some(code)) => {
                let status: super::run_report::RunStatus = out.into();
                format!("{} (exit {code})", status.label())
            }
            _ => "no end recorded (crashed or killed)".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            if s.resumed { "resume" } else { "run" },
            clock_secs(s.started_at_secs),
            opt_clock(s.finished_at_secs),
            outcome
        );
    }
    o.push('\n');

    if !r.params.is_empty() || !r.param_overrides.is_empty() {
        let _ = writeln!(o, "## Parameters\n");
        let _ = writeln!(o, "| Name | Value |\n|---|---|");
        let mut names: Vec<&String> = r.params.keys().collect();
        for k in r.param_overrides.keys() {
            if !r.params.contains_key(k) {
                names.push(k);
            }
        }
        names.sort();
        for k in names {
            let (value, flag) = match r.param_overrides.get(k) {
                Some(v) => (v, " (--param)"),
                None => (&r.params[k], ""),
            };
            let _ = writeln!(o, "| {} | {}{flag} |", md(k), md(value));
        }
        o.push('\n');
    }

    let rows = r.region_rows();
    if !rows.is_empty() {
        use crate::cloud::reach::Reachability as R;
        let _ = writeln!(o, "## Regions\n");
        let (fine, troubled): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|row| row.history.iter().all(|(_, s)| *s == R::Reachable));
        let mut by_region: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for row in &fine {
            by_region
                .entry(row.region.as_str())
                .or_default()
                .push(row.service.as_str());
        }
        if !by_region.is_empty() {
            let list: Vec<String> = by_region
                .iter()
                .map(|(region, services)| format!("{} ({})", md(region), md(&services.join(", "))))
                .collect();
            let _ = writeln!(o, "Answered throughout: {}.\n", list.join("; "));
        }
        let any_troubled = !troubled.is_empty();
        if troubled.is_empty() {
            let _ = writeln!(o, "No region the run calls was unreachable or slow.\n");
        } else {
            let _ = writeln!(
                o,
                "| Region | Service | Status | Latency | Verdicts | How it was decided |"
            );
            let _ = writeln!(o, "|---|---|---|---|---|---|");
        }
        for row in troubled {
            let history: Vec<String> = row
                .history
                .iter()
                .map(|(at, s)| format!("{} {}", s.as_str(), clock_secs(*at)))
                .collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md(&row.region),
                md(&row.service),
                match row.status {
                    crate::cloud::reach::Reachability::Reachable => "reachable".to_string(),
                    other => format!("**{}**", other.as_str()),
                },
                row.latency_ms
                    .map_or_else(|| "—".to_string(), crate::report::human::millis),
                history.join(", "),
                md(&row.decided_by)
            );
        }
        if any_troubled {
            o.push('\n');
        }
    }

    let _ = writeln!(o, "## Preflight\n");
    match &r.preflight {
        None => {
            let _ = writeln!(o, "No preflight recorded.\n");
        }
        Some(p) => {
            let _ = writeln!(
                o,
                "{} ({} check{}, {} failure{}, {} warning{}) at {}.\n",
                if p.ok {
                    "Passed"
                } else {
                    "**FAILED**: nothing was changed"
                },
                p.checks,
                plural(p.checks),
                p.failures.len(),
                plural(p.failures.len()),
                p.warnings.len(),
                plural(p.warnings.len()),
                clock_secs(p.at_secs)
            );
            for f in &p.failures {
                let _ = writeln!(
                    o,
                    "- **failed** {}: {}",
                    md_code(f.step.as_str()),
                    md(&f.message)
                );
            }
            for f in &p.warnings {
                let _ = writeln!(o, "- {}: {}", md_code(f.step.as_str()), md(&f.message));
            }
            if !p.failures.is_empty() || !p.warnings.is_empty() {
                o.push('\n');
            }
        }
    }

    let _ = writeln!(o, "## Timeline\n");
    let _ = writeln!(
        o,
        "Times are on the run's clock from its start; `*` marks the critical path.\n"
    );
    let _ = writeln!(
        o,
        "| Step | Action | State | Start | End | Duration | Attempts | Result |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &r.steps {
        let _ = writeln!(
            o,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
            md_code(s.id.as_str()),
            if s.critical { " \\*" } else { "" },
            s.action.as_deref().map(md).unwrap_or_default(),
            if matches!(s.state, StepState::Failed | StepState::RollbackFailed) {
                format!("**{}**", s.state.label())
            } else {
                s.state.label().to_string()
            },
            opt_clock(s.started_at_secs),
            opt_clock(s.ended_at_secs),
            opt_secs(s.duration_secs),
            s.attempts,
            md(&step_result(r, s))
        );
    }
    o.push('\n');

    let mut retries: Vec<_> = r
        .steps
        .iter()
        .flat_map(|s| s.retries.iter().map(move |x| (s, x)))
        .collect();
    // In the order they happened (stable: steps in runbook order at equal times).
    retries.sort_by(|a, b| a.1.at_secs.total_cmp(&b.1.at_secs));
    if !retries.is_empty() {
        let _ = writeln!(o, "## Failed attempts and retries\n");
        for (s, x) in retries {
            let next = match (x.will_retry, x.retry_in_secs) {
                (true, Some(d)) => format!("retry in {}", human_secs(d)),
                (true, None) => "retried".into(),
                (false, _) => "no retry".into(),
            };
            let _ = writeln!(
                o,
                "- {} {} attempt {}: {} ({next})",
                clock_secs(x.at_secs),
                md_code(s.id.as_str()),
                x.attempt,
                md(&x.error)
            );
        }
        o.push('\n');
    }

    if r.steps.iter().any(|s| !s.gates.is_empty()) {
        let _ = writeln!(o, "## Gate observations\n");
        let _ = writeln!(
            o,
            "Each distinct value a check observed, first seen to last seen, with its poll count.\n"
        );
        for s in r.steps.iter().filter(|s| !s.gates.is_empty()) {
            for g in &s.gates {
                let _ = writeln!(
                    o,
                    "**{}** — {} ({} poll{}):\n",
                    md_code(s.id.as_str()),
                    md(&g.check),
                    g.polls,
                    plural(g.polls as usize)
                );
                for v in &g.values {
                    let span = if v.first_at_secs == v.last_at_secs {
                        clock_secs(v.first_at_secs)
                    } else {
                        format!(
                            "{}–{}",
                            clock_secs(v.first_at_secs),
                            clock_secs(v.last_at_secs)
                        )
                    };
                    let _ = writeln!(
                        o,
                        "- {span} {} {} ×{}",
                        if v.passed { "passed:" } else { "not yet:" },
                        md(&v.observed),
                        v.polls
                    );
                }
                if g.more_values > 0 {
                    let _ = writeln!(
                        o,
                        "- … and {} more poll{} with other values",
                        g.more_values,
                        plural(g.more_values)
                    );
                }
                o.push('\n');
            }
        }
    }

    if !r.approvals.is_empty() {
        let _ = writeln!(o, "## Approvals\n");
        let _ = writeln!(o, "| Step | Requested | Approved | By | Message |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for a in &r.approvals {
            let (by, notes) = a.by_text();
            let by = format!(
                "{}{}",
                by.as_deref()
                    .map_or_else(|| "**not approved**".to_string(), md),
                md(&notes)
            );
            let _ = writeln!(
                o,
                "| {} | {} | {} | {by} | {} |",
                md_code(a.step.as_str()),
                opt_clock(a.requested_at_secs),
                opt_clock(a.approved_at_secs),
                md(&a.message_text())
            );
        }
        o.push('\n');
    }

    for (i, rb) in r.rollbacks.iter().enumerate() {
        let n = if r.rollbacks.len() > 1 {
            format!(" {}", i + 1)
        } else {
            String::new()
        };
        let _ = writeln!(o, "## Rollback{n}\n");
        let order: Vec<String> = rb.order.iter().map(|s| md_code(s.as_str())).collect();
        let _ = writeln!(
            o,
            "Started at {}; order: {}.\n",
            clock_secs(rb.started_at_secs),
            if order.is_empty() {
                "nothing to roll back".to_string()
            } else {
                order.join(" → ")
            }
        );
        if !rb.results.is_empty() {
            let _ = writeln!(o, "| Step | Result | At | Detail |\n|---|---|---|---|");
            for x in &rb.results {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    md_code(x.step.as_str()),
                    if x.ok { "rolled back" } else { "**FAILED**" },
                    clock_secs(x.at_secs),
                    md(&x.detail)
                );
            }
            o.push('\n');
        }
        let end = match (rb.clean, rb.finished_at_secs) {
            (Some(true), Some(at)) => format!(
                "Finished at {}: clean, every resource is back at its original state.",
                clock_secs(at)
            ),
            (Some(false), Some(at)) => {
                let left: Vec<String> = rb
                    .left_changed
                    .iter()
                    .map(|s| md_code(s.as_str()))
                    .collect();
                format!(
                    "Finished at {}: **NOT clean**; changes remain from {}.",
                    clock_secs(at),
                    left.join(", ")
                )
            }
            _ => "**Did not finish** (the process stopped during the rollback).".into(),
        };
        let _ = writeln!(o, "{end}\n");
    }

    if !r.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {}", md(n));
        }
        o.push('\n');
    }
    while o.ends_with("\n\n") {
        o.pop();
    }
    o
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
