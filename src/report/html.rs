//! The report as one self-contained HTML page: inline CSS, an inline SVG Gantt chart of
//! the steps over the run's clock, and the report's tables. No scripts, no external
//! assets, no links: it opens the same from a CI artifact, a mail attachment or a
//! laptop without network.
//!
//! Every string from the journal is escaped with [`escape::html`]; URLs in the data
//! (an endpoint, a health-check address) are shown as text with their `:` written as a
//! character reference, so the page holds no `http://` or `https://` at all and a
//! check for external references stays a plain text search.

use std::fmt::Write as _;

use super::escape;
use super::markdown::{mode_words, step_result, target_words};
use super::run_report::{RunReport, RunStatus, StepReport, StepState, clock_secs, human_secs};

/// Text for the page: escaped, and without a literal `scheme://`.
fn h(s: &str) -> String {
    escape::html(s).replace("://", "&#58;//")
}

fn opt_secs(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), human_secs)
}

fn opt_clock(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), clock_secs)
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#212121;max-width:1300px}\
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #e0e0e0;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f5f5f5}code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.92em}\
.outcome{font-size:1.3em;font-weight:bold;padding:.4em .8em;display:inline-block;border-radius:4px;margin:.4em 0}\
.ok{background:#e8f5e9;color:#1b5e20}.bad{background:#ffebee;color:#b71c1c}.warn{background:#fff8e1;color:#e65100}\
.failed{color:#b71c1c;font-weight:bold}.missed{color:#b71c1c;font-weight:bold}.met{color:#1b5e20;font-weight:bold}\
svg.gantt{max-width:100%;height:auto;border:1px solid #e0e0e0;background:#fff}\
svg text{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:12px;fill:#212121}\
ul.values{margin:.2em 0 .8em}";

/// The report as an HTML page.
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    let name = h(&r.runbook.name);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Run report: {name}</title>\n<style>{CSS}</style></head><body>\n"
    );
    let _ = writeln!(o, "<h1>Run report: {name}</h1>");
    let class = match r.outcome.status {
        RunStatus::Succeeded if !r.objective_missed() => "ok",
        RunStatus::RolledBack | RunStatus::Paused | RunStatus::Aborted | RunStatus::Interrupted => {
            "warn"
        }
        _ => "bad",
    };
    let _ = writeln!(
        o,
        "<div class=\"outcome {class}\">Outcome: {}</div>",
        h(&r.outcome.describe())
    );
    if let Some(why) = &r.outcome.reason {
        let _ = writeln!(o, "<p class=\"why\">Why: {}</p>", h(why));
    }
    if r.objective_missed() {
        let _ = writeln!(o, "<p class=\"missed\">An objective was MISSED.</p>");
    }
    if !r.outcome.deferred.is_empty() {
        let names: Vec<String> = r
            .outcome
            .deferred
            .iter()
            .map(|s| format!("<code>{}</code>", h(s.as_str())))
            .collect();
        let _ = writeln!(
            o,
            "<p class=\"missed\">Deferred: {} (a region they need was unreachable; <code>drpilot resume {}</code> runs them once it answers).</p>",
            names.join(", "),
            h(&r.run_id.0)
        );
    }

    let _ = writeln!(o, "<table>");
    let row = |o: &mut String, k: &str, v: &str| {
        let _ = writeln!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(&mut o, "Run", &format!("<code>{}</code>", h(&r.run_id.0)));
    row(
        &mut o,
        "Runbook",
        &format!("{name} (<code>{}</code>)", h(&r.runbook.path)),
    );
    if let Some(d) = &r.runbook.description {
        row(&mut o, "Description", &h(d));
    }
    row(&mut o, "Mode", mode_words(r.runbook.mode));
    row(
        &mut o,
        "Started",
        &format!(
            "{} (wall clock)",
            r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        ),
    );
    row(
        &mut o,
        "Run clock",
        &format!(
            "{} from start to the last event",
            human_secs(r.last_event_at_secs)
        ),
    );
    row(&mut o, "Target", &h(&target_words(r)));
    if r.outcome.resumable {
        row(
            &mut o,
            "Resume",
            &format!("<code>drpilot resume {}</code>", h(&r.run_id.0)),
        );
    }
    let _ = writeln!(o, "</table>");

    let _ = writeln!(o, "<h2>Timeline</h2>");
    o.push_str(&gantt(r));

    let _ = writeln!(o, "<h2>Objectives</h2>");
    let _ = writeln!(
        o,
        "<table><tr><th></th><th>Predicted</th><th>Achieved</th><th>Objective</th><th>Verdict</th></tr>"
    );
    let verdict = |v: &str| {
        let class = match v {
            "met" => "met",
            "MISSED" => "missed",
            _ => "",
        };
        format!("<td class=\"{class}\">{v}</td>")
    };
    let _ = writeln!(
        o,
        "<tr><th>RTO</th><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
        opt_secs(r.rto.predicted_secs),
        opt_secs(r.rto.achieved_secs),
        opt_secs(r.rto.objective_secs),
        verdict(r.rto.verdict())
    );
    let _ = writeln!(
        o,
        "<tr><th>RPO</th><td>—</td><td>{}</td><td>{}</td>{}</tr></table>",
        r.rpo
            .achieved_secs
            .map_or_else(|| "not measured".to_string(), human_secs),
        opt_secs(r.rpo.objective_secs),
        verdict(r.rpo.verdict())
    );

    let _ = writeln!(o, "<h2>Processes</h2>");
    let _ = writeln!(
        o,
        "<table><tr><th>#</th><th>Command</th><th>Started</th><th>Ended</th><th>Outcome</th></tr>"
    );
    for (i, s) in r.segments.iter().enumerate() {
        let outcome = match (s.outcome, s.exit_code) {
            (Some(out), Some(code)) => {
                format!("{} (exit {code})", RunStatus::from(out).label())
            }
            _ => "no end recorded (crashed or killed)".into(),
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{outcome}</td></tr>",
            i + 1,
            if s.resumed { "resume" } else { "run" },
            clock_secs(s.started_at_secs),
            opt_clock(s.finished_at_secs),
        );
    }
    let _ = writeln!(o, "</table>");

    if !r.params.is_empty() || !r.param_overrides.is_empty() {
        let _ = writeln!(
            o,
            "<h2>Parameters</h2>\n<table><tr><th>Name</th><th>Value</th></tr>"
        );
        let mut names: Vec<&String> = r.params.keys().collect();
        names.extend(
            r.param_overrides
                .keys()
                .filter(|k| !r.params.contains_key(*k)),
        );
        names.sort();
        for k in names {
            let (value, flag) = match r.param_overrides.get(k) {
                Some(v) => (v, " (--param)"),
                None => (&r.params[k], ""),
            };
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td><code>{}</code>{flag}</td></tr>",
                h(k),
                h(value)
            );
        }
        let _ = writeln!(o, "</table>");
    }

    let rows = r.region_rows();
    if !rows.is_empty() {
        use crate::cloud::reach::Reachability as R;
        let (fine, troubled): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|row| row.history.iter().all(|(_, s)| *s == R::Reachable));
        let _ = writeln!(o, "<h2>Regions</h2>");
        let mut by_region: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for row in &fine {
            by_region
                .entry(row.region.as_str())
                .or_default()
                .push(row.service.as_str());
        }
        if !by_region.is_empty() {
            let list: Vec<String> = by_region
                .iter()
                .map(|(region, services)| format!("{} ({})", h(region), h(&services.join(", "))))
                .collect();
            let _ = writeln!(o, "<p>Answered throughout: {}.</p>", list.join("; "));
        }
        if !troubled.is_empty() {
            let _ = writeln!(
                o,
                "<table><tr><th>Region</th><th>Service</th><th>Status</th><th>Latency</th><th>Verdicts</th><th>How it was decided</th></tr>"
            );
        }
        let any = !troubled.is_empty();
        for row in troubled {
            let history: Vec<String> = row
                .history
                .iter()
                .map(|(at, s)| format!("{} {}", s.as_str(), clock_secs(*at)))
                .collect();
            let status = match row.status {
                crate::cloud::reach::Reachability::Reachable => "reachable".to_string(),
                other => format!("<span class=\"failed\">{}</span>", other.as_str()),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&row.region),
                h(&row.service),
                row.latency_ms
                    .map_or_else(|| "—".to_string(), crate::report::human::millis),
                h(&history.join(", ")),
                h(&row.decided_by)
            );
        }
        if any {
            let _ = writeln!(o, "</table>");
        }
    }

    let _ = writeln!(o, "<h2>Preflight</h2>");
    match &r.preflight {
        None => {
            let _ = writeln!(o, "<p>No preflight recorded.</p>");
        }
        Some(p) => {
            let _ = writeln!(
                o,
                "<p>{} ({} checks, {} failures, {} warnings) at {}.</p>",
                if p.ok {
                    "Passed".to_string()
                } else {
                    "<span class=\"failed\">FAILED</span>: nothing was changed".to_string()
                },
                p.checks,
                p.failures.len(),
                p.warnings.len(),
                clock_secs(p.at_secs)
            );
            if !p.failures.is_empty() || !p.warnings.is_empty() {
                let _ = writeln!(o, "<ul>");
                for f in &p.failures {
                    let _ = writeln!(
                        o,
                        "<li><span class=\"failed\">failed</span> <code>{}</code>: {}</li>",
                        h(f.step.as_str()),
                        h(&f.message)
                    );
                }
                for f in &p.warnings {
                    let _ = writeln!(
                        o,
                        "<li><code>{}</code>: {}</li>",
                        h(f.step.as_str()),
                        h(&f.message)
                    );
                }
                let _ = writeln!(o, "</ul>");
            }
        }
    }

    let _ = writeln!(o, "<h2>Steps</h2>");
    let _ = writeln!(
        o,
        "<table><tr><th>Step</th><th>Action</th><th>State</th><th>Start</th><th>End</th><th>Duration</th><th>Attempts</th><th>Result</th></tr>"
    );
    for s in &r.steps {
        let state = if matches!(s.state, StepState::Failed | StepState::RollbackFailed) {
            format!("<span class=\"failed\">{}</span>", s.state.label())
        } else {
            s.state.label().to_string()
        };
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h(s.id.as_str()),
            if s.critical { " (critical)" } else { "" },
            s.action.as_deref().map(h).unwrap_or_default(),
            opt_clock(s.started_at_secs),
            opt_clock(s.ended_at_secs),
            opt_secs(s.duration_secs),
            s.attempts,
            h(&step_result(r, s)),
        );
    }
    let _ = writeln!(o, "</table>");

    if r.steps.iter().any(|s| !s.retries.is_empty()) {
        let _ = writeln!(o, "<h2>Failed attempts and retries</h2>");
        let _ = writeln!(
            o,
            "<table><tr><th>At</th><th>Step</th><th>Attempt</th><th>Error</th><th>Next</th></tr>"
        );
        let mut retries: Vec<_> = r
            .steps
            .iter()
            .flat_map(|s| s.retries.iter().map(move |x| (s, x)))
            .collect();
        retries.sort_by(|a, b| a.1.at_secs.total_cmp(&b.1.at_secs));
        for (s, x) in retries {
            let next = match (x.will_retry, x.retry_in_secs) {
                (true, Some(d)) => format!("retry in {}", human_secs(d)),
                (true, None) => "retried".into(),
                (false, _) => "no retry".into(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{next}</td></tr>",
                clock_secs(x.at_secs),
                h(s.id.as_str()),
                x.attempt,
                h(&x.error)
            );
        }
        let _ = writeln!(o, "</table>");
    }

    if r.steps.iter().any(|s| !s.gates.is_empty()) {
        let _ = writeln!(o, "<h2>Gate observations</h2>");
        for s in r.steps.iter().filter(|s| !s.gates.is_empty()) {
            for g in &s.gates {
                let _ = writeln!(
                    o,
                    "<p><code>{}</code> — {} ({} polls)</p><ul class=\"values\">",
                    h(s.id.as_str()),
                    h(&g.check),
                    g.polls
                );
                for v in &g.values {
                    let _ = writeln!(
                        o,
                        "<li>{}–{} {} {} ×{}</li>",
                        clock_secs(v.first_at_secs),
                        clock_secs(v.last_at_secs),
                        if v.passed { "passed:" } else { "not yet:" },
                        h(&v.observed),
                        v.polls
                    );
                }
                if g.more_values > 0 {
                    let _ = writeln!(
                        o,
                        "<li>… and {} more polls with other values</li>",
                        g.more_values
                    );
                }
                let _ = writeln!(o, "</ul>");
            }
        }
    }

    if !r.approvals.is_empty() {
        let _ = writeln!(o, "<h2>Approvals</h2>");
        let _ = writeln!(
            o,
            "<table><tr><th>Step</th><th>Requested</th><th>Approved</th><th>By</th><th>Message</th></tr>"
        );
        for a in &r.approvals {
            let (by, notes) = a.by_text();
            let by = format!(
                "{}{}",
                by.as_deref().map_or_else(
                    || "<span class=\"failed\">not approved</span>".to_string(),
                    h
                ),
                h(&notes)
            );
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{by}</td><td>{}</td></tr>",
                h(a.step.as_str()),
                opt_clock(a.requested_at_secs),
                opt_clock(a.approved_at_secs),
                h(&a.message_text())
            );
        }
        let _ = writeln!(o, "</table>");
    }

    for rb in &r.rollbacks {
        let _ = writeln!(o, "<h2>Rollback</h2>");
        let order: Vec<String> = rb
            .order
            .iter()
            .map(|s| format!("<code>{}</code>", h(s.as_str())))
            .collect();
        let _ = writeln!(
            o,
            "<p>Started at {}; order: {}.</p>",
            clock_secs(rb.started_at_secs),
            if order.is_empty() {
                "nothing to roll back".to_string()
            } else {
                order.join(" → ")
            }
        );
        if !rb.results.is_empty() {
            let _ = writeln!(
                o,
                "<table><tr><th>Step</th><th>Result</th><th>At</th><th>Detail</th></tr>"
            );
            for x in &rb.results {
                let _ = writeln!(
                    o,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    h(x.step.as_str()),
                    if x.ok {
                        "rolled back"
                    } else {
                        "<span class=\"failed\">FAILED</span>"
                    },
                    clock_secs(x.at_secs),
                    h(&x.detail)
                );
            }
            let _ = writeln!(o, "</table>");
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
                    .map(|s| format!("<code>{}</code>", h(s.as_str())))
                    .collect();
                format!(
                    "Finished at {}: <span class=\"failed\">NOT clean</span>; changes remain from {}.",
                    clock_secs(at),
                    left.join(", ")
                )
            }
            _ => "<span class=\"failed\">Did not finish</span> (the process stopped during the rollback).".into(),
        };
        let _ = writeln!(o, "<p>{end}</p>");
    }

    if !r.notes.is_empty() {
        let _ = writeln!(o, "<h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = writeln!(o, "<li>{}</li>", h(n));
        }
        let _ = writeln!(o, "</ul>");
    }
    o.push_str("</body></html>\n");
    o
}

/// Colours of the chart, shared by bars and legend.
const SUCCEEDED: &str = "#43a047";
const FAILED: &str = "#e53935";
const SKIPPED: &str = "#9e9e9e";
const ROLLED_BACK: &str = "#fbc02d";
const ROLLBACK_FAILED: &str = "#ef6c00";
const IN_FLIGHT: &str = "#1e88e5";
const DEFERRED: &str = "#6d4c41";
const ROLLBACK_BAR: &str = "#8e24aa";
const OBJECTIVE: &str = "#c62828";
const ACHIEVED: &str = "#2e7d32";

fn state_colour(s: StepState) -> &'static str {
    match s {
        StepState::Succeeded => SUCCEEDED,
        StepState::Failed => FAILED,
        StepState::Skipped => SKIPPED,
        StepState::RolledBack => ROLLED_BACK,
        StepState::RollbackFailed => ROLLBACK_FAILED,
        StepState::InFlight => IN_FLIGHT,
        StepState::NotStarted => SKIPPED,
        StepState::Deferred => DEFERRED,
    }
}

/// A round tick interval giving at most about a dozen ticks.
fn tick_step(t_max: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0, 43200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| t_max / s <= 12.0)
        .unwrap_or(86400.0 * (t_max / 86400.0 / 12.0).ceil().max(1.0))
}

/// One row per step, bars over the run's clock coloured by the step's final state;
/// a tick per failed attempt; rollback bars in their own colour below the step's bar;
/// vertical lines where the RTO clock starts, at the objective, and where it was achieved.
fn gantt(r: &RunReport) -> String {
    const W: f64 = 1200.0;
    const LABEL: f64 = 250.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 58.0;
    const ROW: f64 = 26.0;
    let chart = W - LABEL - RIGHT;
    let rows = r.steps.len().max(1) as f64;
    let legend_y = TOP + rows * ROW + 28.0;
    let height = legend_y + 28.0;

    let mut t_end = r.last_event_at_secs;
    for s in &r.steps {
        t_end = t_end.max(s.ended_at_secs.unwrap_or(0.0));
    }
    for rb in &r.rollbacks {
        for x in &rb.results {
            t_end = t_end.max(x.at_secs);
        }
    }
    let objective_at = match (r.rto.starts_at_secs, r.rto.objective_secs) {
        (Some(start), Some(obj)) => Some(start + obj),
        _ => None,
    };
    // Show the objective on the axis unless it would squash the run into a sliver.
    let objective_on_axis = objective_at.filter(|&t| t <= (t_end * 4.0).max(60.0));
    let t_max = objective_on_axis.map_or(t_end, |t| t.max(t_end)).max(1.0) * 1.04;
    let x = |t: f64| LABEL + (t.max(0.0) / t_max) * chart;

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg class=\"gantt\" role=\"img\" aria-label=\"Timeline of the steps\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\">"
    );
    let _ = writeln!(o, "<title>Timeline of {}</title>", h(&r.runbook.name));
    // Row stripes, then the time grid, so bars draw over both.
    for i in 0..r.steps.len() {
        if i % 2 == 1 {
            let _ = writeln!(
                o,
                "<rect x=\"0\" y=\"{:.1}\" width=\"{W}\" height=\"{ROW}\" fill=\"#fafafa\"/>",
                TOP + i as f64 * ROW
            );
        }
    }
    let step = tick_step(t_max);
    let mut t = 0.0;
    while t <= t_max {
        let tx = x(t);
        let _ = writeln!(
            o,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e0e0e0\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#757575\">{}</text>",
            TOP - 4.0,
            TOP + rows * ROW,
            TOP - 8.0,
            clock_secs(t)
        );
        t += step;
    }

    for (i, s) in r.steps.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let label = escape::truncate(s.id.as_str(), 34);
        let weight = if s.critical {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"{weight}><title>{}</title>{}</text>",
            LABEL - 8.0,
            y + 16.0,
            h(s.id.as_str()),
            h(&label)
        );
        bar(&mut o, r, s, y, &x);
    }

    // Where the RTO clock starts (planned runs: at the first change), the objective,
    // and what was achieved.
    let vline = |o: &mut String, t: f64, colour: &str, dash: &str, label: &str, ly: f64| {
        let tx = x(t);
        let anchor = if tx > W - 160.0 { "end" } else { "start" };
        let lx = if anchor == "end" { tx - 4.0 } else { tx + 4.0 };
        let _ = writeln!(
            o,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/><text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\" fill=\"{colour}\" font-weight=\"bold\">{label}</text>",
            ly - 10.0,
            TOP + rows * ROW
        );
    };
    if let Some(start) = r.rto.starts_at_secs.filter(|&s| s > 0.0) {
        vline(&mut o, start, "#757575", "2 3", "RTO clock starts", 32.0);
    }
    if let (Some(start), Some(achieved)) = (r.rto.starts_at_secs, r.rto.achieved_secs) {
        vline(
            &mut o,
            start + achieved,
            ACHIEVED,
            "6 3",
            &format!("RTO achieved {}", human_secs(achieved)),
            32.0,
        );
    }
    match (objective_at, objective_on_axis, r.rto.objective_secs) {
        (Some(_), Some(t), Some(obj)) => vline(
            &mut o,
            t,
            OBJECTIVE,
            "8 4",
            &format!("RTO objective {}", human_secs(obj)),
            16.0,
        ),
        (Some(t), None, Some(obj)) => {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"16\" text-anchor=\"end\" fill=\"{OBJECTIVE}\" font-weight=\"bold\">RTO objective {} (at {}, off the chart) →</text>",
                W - 8.0,
                human_secs(obj),
                clock_secs(t)
            );
        }
        _ => {}
    }

    // Legend.
    let items = [
        (SUCCEEDED, "succeeded"),
        (FAILED, "failed"),
        (ROLLED_BACK, "rolled back"),
        (ROLLBACK_FAILED, "rollback failed"),
        (SKIPPED, "skipped"),
        (IN_FLIGHT, "in flight"),
        (ROLLBACK_BAR, "rollback"),
    ];
    let mut lx = LABEL;
    for (colour, name) in items {
        let _ = writeln!(
            o,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            legend_y - 9.0,
            lx + 18.0,
            legend_y
        );
        lx += 26.0 + name.len() as f64 * 7.0;
    }
    let _ = writeln!(
        o,
        "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{lx:.1}\" y2=\"{:.1}\" stroke=\"#212121\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{legend_y:.1}\">failed attempt (retry)</text>",
        legend_y - 11.0,
        legend_y + 2.0,
        lx + 6.0
    );
    o.push_str("</svg>\n");
    o
}

/// A step's bar, its failed-attempt ticks and its rollback bar.
fn bar(o: &mut String, r: &RunReport, s: &StepReport, y: f64, x: &dyn Fn(f64) -> f64) {
    let colour = state_colour(s.state);
    let tooltip = h(&format!(
        "{}: {}{}{}",
        s.id,
        s.state.label(),
        s.duration_secs
            .map(|d| format!(", {}", human_secs(d)))
            .unwrap_or_default(),
        match step_result(r, s) {
            t if t.is_empty() => String::new(),
            t => format!(" — {t}"),
        }
    ));
    match (s.started_at_secs, s.ended_at_secs, s.state) {
        (_, _, StepState::NotStarted) => {
            let _ = writeln!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#9e9e9e\" font-style=\"italic\">not started</text>",
                x(0.0) + 4.0,
                y + 16.0
            );
        }
        (None, Some(end), _) => {
            // Skipped without starting: a marker at the moment it was skipped.
            let cx = x(end);
            let _ = writeln!(
                o,
                "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"><title>{tooltip}</title></polygon>",
                cx,
                y + 5.0,
                cx + 7.0,
                y + 12.0,
                cx,
                y + 19.0,
                cx - 7.0,
                y + 12.0
            );
        }
        (Some(start), end, state) => {
            let end = match (end, state) {
                (_, StepState::InFlight) | (None, _) => r.last_event_at_secs.max(start),
                (Some(e), _) => e,
            };
            let x0 = x(start);
            let w = (x(end) - x0).max(3.0);
            let outline = if state == StepState::InFlight {
                " stroke=\"#0d47a1\" stroke-dasharray=\"4 2\""
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"13\" rx=\"2\" fill=\"{colour}\"{outline}><title>{tooltip}</title></rect>",
                y + 4.0
            );
        }
        (None, None, _) => {}
    }
    for retry in &s.retries {
        let tx = x(retry.at_secs);
        let _ = writeln!(
            o,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#212121\" stroke-width=\"2\"><title>{}</title></line>",
            y + 1.0,
            y + 20.0,
            h(&format!(
                "{} attempt {} failed at {}: {}",
                s.id,
                retry.attempt,
                clock_secs(retry.at_secs),
                retry.error
            ))
        );
    }
    if let Some(rb) = r.rollback_of(&s.id) {
        let x0 = x(rb.started_at_secs);
        let w = (x(rb.at_secs) - x0).max(3.0);
        let fill = if rb.ok { ROLLBACK_BAR } else { FAILED };
        let _ = writeln!(
            o,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"6\" fill=\"{fill}\" stroke=\"{ROLLBACK_BAR}\"><title>{}</title></rect>",
            y + 18.0,
            h(&format!(
                "{} rollback {}: {}",
                s.id,
                if rb.ok { "done" } else { "FAILED" },
                rb.detail
            ))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Event, EventKind, Outcome, RunId};
    use crate::journal::{Header, JOURNAL_VERSION};
    use crate::report::run_report::RunbookCopy;
    use crate::runbook::StepId;

    fn report(summary: &str) -> RunReport {
        let at = |s: i64| jiff::Timestamp::from_second(100 + s).unwrap();
        let header = Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId("x-1".into()),
            runbook: "<b>x</b>".into(),
            runbook_path: "x.toml".into(),
            runbook_sha256: String::new(),
            created_at: at(0),
            clock_origin: at(0),
            sim: None,
            aws: Some(crate::journal::AwsHeader {
                profile: Some("p".into()),
                endpoint_url: Some("http://127.0.0.1:4566".into()),
            }),
            params: Default::default(),
            drill: None,
        };
        let ev = |s: i64, kind: EventKind| Event {
            run_id: RunId("x-1".into()),
            at: at(s),
            kind,
        };
        let step = StepId::new("a<i>");
        let events = vec![
            ev(
                0,
                EventKind::StepStarted {
                    step: step.clone(),
                    attempt: 1,
                },
            ),
            ev(
                2,
                EventKind::AttemptFailed {
                    step: step.clone(),
                    attempt: 1,
                    error: "<img onerror=alert(1)>".into(),
                    will_retry: true,
                    retry_in_secs: Some(1.0),
                },
            ),
            ev(
                9,
                EventKind::StepSucceeded {
                    step,
                    summary: summary.into(),
                },
            ),
            ev(
                9,
                EventKind::RunFinished {
                    outcome: Outcome::Succeeded,
                    exit_code: 0,
                    makespan_secs: 9.0,
                    rto_secs: Some(9.0),
                    rpo_secs: None,
                    reason: None,
                    deferred: Vec::new(),
                },
            ),
        ];
        RunReport::build(&header, &events, RunbookCopy::Unusable("gone"))
    }

    #[test]
    fn journal_text_is_escaped_and_the_page_is_self_contained() {
        let page = render(&report(
            "<script>alert(1)</script> see https://evil.example/x.js",
        ));
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>x</b>"));
        for needle in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(needle), "{needle} in {page}");
        }
        assert!(page.contains("<svg class=\"gantt\""));
        assert!(page.contains("a&lt;i&gt;"));
    }

    #[test]
    fn the_gantt_chart_has_a_bar_and_a_retry_tick_per_failed_attempt() {
        let svg = gantt(&report("ok"));
        assert_eq!(svg.matches("fill=\"#43a047\"><title>").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("stroke=\"#212121\" stroke-width=\"2\"><title>")
                .count(),
            1
        );
        assert!(svg.contains("RTO achieved 9s"), "{svg}");
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(tick_step(10.0), 1.0);
        assert_eq!(tick_step(250.0), 30.0);
        assert_eq!(tick_step(3600.0), 300.0);
    }
}
