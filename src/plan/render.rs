//! Plan output: text for people, JSON for tools, DOT and Mermaid for diagrams, HTML for
//! sharing.
//!
//! The JSON shape is a contract (`plan_version`): fields are only ever added. Durations
//! appear both as humantime strings and as whole seconds so tools need not parse them.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::Plan;
use crate::runbook::Mode;

/// Version of the JSON plan's shape.
pub const PLAN_VERSION: u32 = 1;

fn human(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::Planned => "planned switchover, no data loss",
        Mode::Unplanned => "unplanned failover, may lose unreplicated writes",
    }
}

/// The plan for a person reading a terminal or a ticket.
pub fn text(plan: &Plan<'_>) -> String {
    let rb = plan.runbook;
    let steps = &rb.steps;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Runbook {} ({})",
        rb.runbook.name,
        mode_words(rb.runbook.mode)
    );
    if let Some(d) = &rb.runbook.description {
        let _ = writeln!(o, "  {}", d.trim());
    }
    let objective = |d: Option<Duration>| d.map_or("not set".to_string(), human);
    let _ = writeln!(
        o,
        "Objectives: RTO {}, RPO {}",
        objective(rb.objectives.rto),
        objective(rb.objectives.rpo)
    );
    let verdict = match (plan.meets_rto(), rb.objectives.rto) {
        (Some(true), Some(rto)) => format!("within the {} objective", human(rto)),
        (Some(false), Some(rto)) => format!("OVER the {} objective", human(rto)),
        _ => "no RTO objective to compare with".into(),
    };
    let _ = writeln!(
        o,
        "Predicted RTO: {} ({verdict})",
        human(plan.predicted_rto)
    );
    if !plan.rto_clock_start.is_zero() {
        let _ = writeln!(
            o,
            "  (counted from the first change; the {} of checks before it cost no availability)",
            human(plan.rto_clock_start)
        );
    }
    if !plan.approvals().is_empty() {
        let _ = writeln!(o, "  (time spent waiting for approvals is not included)");
    }
    let id_width = steps.iter().map(|s| s.id.as_str().len()).max().unwrap_or(0);
    let action_width = steps.iter().map(|s| s.spec.name.len()).max().unwrap_or(0);
    for (l, level) in plan.levels.iter().enumerate() {
        let _ = writeln!(o);
        let parallel = if level.len() > 1 { ", in parallel" } else { "" };
        let _ = writeln!(
            o,
            "Level {} ({} step{}{parallel})",
            l + 1,
            level.len(),
            if level.len() == 1 { "" } else { "s" }
        );
        for &i in level {
            let s = &steps[i];
            let mut flags = Vec::new();
            if plan.is_critical(i) {
                flags.push("critical");
            }
            if s.approval {
                flags.push("approval");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            let _ = writeln!(
                o,
                "  {:id_width$}  {:action_width$}  ~{}{flags}",
                s.id.as_str(),
                s.spec.name,
                human(s.expected)
            );
            let indent = " ".repeat(4);
            if let Some(e) = &plan.effects[i] {
                let _ = writeln!(
                    o,
                    "{indent}mutates {} with {} in {}",
                    e.resource, e.call, e.region
                );
            }
            if !s.after.is_empty() {
                let after: Vec<&str> = s.after.iter().map(|a| a.as_str()).collect();
                let _ = writeln!(o, "{indent}after {}", after.join(", "));
            }
            if let Some(g) = &s.gate {
                let _ = writeln!(
                    o,
                    "{indent}gate {} every {}, up to {}",
                    g.spec.name,
                    human(g.interval),
                    human(g.timeout)
                );
            }
            if let Some(r) = &s.rollback {
                let _ = writeln!(o, "{indent}rollback: {}", r.describe);
            }
        }
    }
    let _ = writeln!(o);
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&i| steps[i].id.as_str())
        .collect();
    let _ = writeln!(
        o,
        "Critical path ({}): {}",
        human(plan.makespan),
        path.join(" -> ")
    );
    let approvals: Vec<&str> = plan
        .approvals()
        .iter()
        .map(|&i| steps[i].id.as_str())
        .collect();
    let _ = writeln!(
        o,
        "Needs approval: {}",
        if approvals.is_empty() {
            "none".to_string()
        } else {
            approvals.join(", ")
        }
    );
    let rollback: Vec<&str> = plan
        .rollback_order
        .iter()
        .map(|&i| steps[i].id.as_str())
        .collect();
    let _ = writeln!(
        o,
        "Rollback order: {}",
        if rollback.is_empty() {
            "no step has a rollback".to_string()
        } else {
            rollback.join(", ")
        }
    );
    o
}

/// The plan as one JSON document (see `docs/plan-json.md` for the fields).
pub fn json(plan: &Plan<'_>) -> Value {
    let rb = plan.runbook;
    let steps = &rb.steps;
    let ids = |v: &[usize]| -> Vec<&str> { v.iter().map(|&i| steps[i].id.as_str()).collect() };
    let secs = |d: Duration| d.as_secs_f64();
    let opt = |d: Option<Duration>| d.map(human);
    json!({
        "plan_version": PLAN_VERSION,
        "runbook": {
            "name": rb.runbook.name,
            "description": rb.runbook.description,
            "mode": rb.runbook.mode,
        },
        "objectives": {
            "rto": opt(rb.objectives.rto),
            "rto_secs": rb.objectives.rto.map(secs),
            "rpo": opt(rb.objectives.rpo),
            "rpo_secs": rb.objectives.rpo.map(secs),
        },
        "params": rb.params,
        "makespan": human(plan.makespan),
        "makespan_secs": secs(plan.makespan),
        "rto_clock_start_secs": secs(plan.rto_clock_start),
        "predicted_rto": human(plan.predicted_rto),
        "predicted_rto_secs": secs(plan.predicted_rto),
        "meets_rto": plan.meets_rto(),
        "levels": plan.levels.iter().map(|l| ids(l)).collect::<Vec<_>>(),
        "critical_path": ids(&plan.critical_path),
        "approvals": ids(&plan.approvals()),
        "rollback_order": ids(&plan.rollback_order),
        "steps": steps.iter().enumerate().map(|(i, s)| json!({
            "id": s.id,
            "action": s.spec.name,
            "description": s.description,
            "after": s.after,
            "level": plan.level_of[i] + 1,
            "critical": plan.is_critical(i),
            "approval": s.approval,
            "expected": human(s.expected),
            "expected_secs": secs(s.expected),
            "earliest_start_secs": secs(plan.earliest_start[i]),
            "timeout": human(s.timeout),
            "retry": s.retry,
            "mutates": plan.effects[i],
            "fields": s.fields,
            "gate": s.gate,
            "rollback": s.rollback,
        })).collect::<Vec<_>>(),
    })
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz: `drpilot plan FILE --format dot | dot -Tsvg > plan.svg`.
pub fn dot(plan: &Plan<'_>) -> String {
    let steps = &plan.runbook.steps;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "digraph \"{}\" {{",
        dot_escape(&plan.runbook.runbook.name)
    );
    let _ = writeln!(o, "  rankdir=LR;");
    let _ = writeln!(
        o,
        "  node [shape=box, style=\"rounded\", fontname=\"Helvetica\"];"
    );
    for (i, s) in steps.iter().enumerate() {
        let mut attrs = vec![format!(
            "label=\"{}\\n{}\\n~{}\"",
            dot_escape(s.id.as_str()),
            dot_escape(s.spec.name),
            human(s.expected)
        )];
        if s.approval {
            attrs.push("shape=hexagon".into());
        }
        let mut style = vec!["rounded"];
        if s.is_mutating() {
            style.push("filled");
            attrs.push("fillcolor=\"#ffe0b2\"".into());
        }
        attrs.push(format!("style=\"{}\"", style.join(",")));
        if plan.is_critical(i) {
            attrs.push("color=\"#c62828\", penwidth=2".into());
        }
        let _ = writeln!(
            o,
            "  \"{}\" [{}];",
            dot_escape(s.id.as_str()),
            attrs.join(", ")
        );
    }
    for (i, ds) in plan.deps.iter().enumerate() {
        for &d in ds {
            let critical = plan
                .critical_path
                .windows(2)
                .any(|w| w[0] == d && w[1] == i);
            let attrs = if critical {
                " [color=\"#c62828\", penwidth=2]"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "  \"{}\" -> \"{}\"{attrs};",
                dot_escape(steps[d].id.as_str()),
                dot_escape(steps[i].id.as_str())
            );
        }
    }
    o.push_str("}\n");
    o
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Mermaid flowchart, for Markdown that renders it (GitHub, GitLab, wikis).
pub fn mermaid(plan: &Plan<'_>) -> String {
    let steps = &plan.runbook.steps;
    let mut o = String::from("flowchart LR\n");
    // Step ids may contain `.`, which Mermaid reads as syntax; nodes get safe names.
    for (i, s) in steps.iter().enumerate() {
        let (open, close) = if s.approval { ("{{", "}}") } else { ("[", "]") };
        let _ = writeln!(
            o,
            "  s{i}{open}\"{}<br/>{}<br/>~{}\"{close}",
            mermaid_escape(s.id.as_str()),
            mermaid_escape(s.spec.name),
            human(s.expected)
        );
    }
    for (i, ds) in plan.deps.iter().enumerate() {
        for &d in ds {
            let _ = writeln!(o, "  s{d} --> s{i}");
        }
    }
    let critical: Vec<String> = plan.critical_path.iter().map(|i| format!("s{i}")).collect();
    if !critical.is_empty() {
        let _ = writeln!(o, "  classDef critical stroke:#c62828,stroke-width:3px");
        let _ = writeln!(o, "  class {} critical", critical.join(","));
    }
    let mutating: Vec<String> = (0..steps.len())
        .filter(|&i| steps[i].is_mutating())
        .map(|i| format!("s{i}"))
        .collect();
    if !mutating.is_empty() {
        let _ = writeln!(o, "  classDef mutating fill:#ffe0b2");
        let _ = writeln!(o, "  class {} mutating", mutating.join(","));
    }
    o
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page (no scripts, no external assets) with the text plan's
/// content as tables, for attaching to a change ticket.
pub fn html(plan: &Plan<'_>) -> String {
    let rb = plan.runbook;
    let steps = &rb.steps;
    let mut o = String::new();
    let title = html_escape(&rb.runbook.name);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Plan: {title}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}tr.critical td:first-child{{border-left:4px solid #c62828}}.mut{{background:#fff3e0}}</style></head><body>\n"
    );
    let _ = writeln!(o, "<h1>Plan: {title}</h1>");
    let _ = writeln!(o, "<p>{}</p>", html_escape(mode_words(rb.runbook.mode)));
    let _ = writeln!(
        o,
        "<pre>{}</pre>",
        html_escape(
            text(plan)
                .lines()
                .take(4)
                .collect::<Vec<_>>()
                .join("\n")
                .as_str()
        )
    );
    let _ = writeln!(
        o,
        "<table><thead><tr><th>Level</th><th>Step</th><th>Action</th><th>Expected</th><th>Mutates</th><th>Gate</th><th>Rollback</th></tr></thead><tbody>"
    );
    for (l, level) in plan.levels.iter().enumerate() {
        for &i in level {
            let s = &steps[i];
            let class = if plan.is_critical(i) {
                " class=\"critical\""
            } else {
                ""
            };
            let mutates = plan.effects[i]
                .as_ref()
                .map(|e| format!("{} with {} in {}", e.resource, e.call, e.region))
                .unwrap_or_default();
            let gate = s.gate.as_ref().map(|g| g.spec.name).unwrap_or("");
            let rollback = s
                .rollback
                .as_ref()
                .map(|r| r.describe.as_str())
                .unwrap_or("");
            let _ = writeln!(
                o,
                "<tr{class}><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{}</td></tr>",
                l + 1,
                html_escape(s.id.as_str()),
                if s.approval { " (approval)" } else { "" },
                html_escape(s.spec.name),
                human(s.expected),
                if mutates.is_empty() {
                    ""
                } else {
                    " class=\"mut\""
                },
                html_escape(&mutates),
                html_escape(gate),
                html_escape(rollback),
            );
        }
    }
    let _ = writeln!(o, "</tbody></table>");
    let tail: Vec<String> = text(plan).lines().rev().take(3).map(html_escape).collect();
    let _ = writeln!(
        o,
        "<pre>{}</pre>",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    o.push_str("</body></html>\n");
    o
}
