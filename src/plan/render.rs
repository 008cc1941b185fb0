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
    if !plan.recovered_when.is_empty() {
        let ids: Vec<&str> = plan
            .recovered_when
            .iter()
            .map(|&i| steps[i].id.as_str())
            .collect();
        let rest = if plan.recovered_at < plan.makespan {
            format!(
                "; the {} the run goes on after them is not downtime",
                human(plan.makespan - plan.recovered_at)
            )
        } else {
            String::new()
        };
        let _ = writeln!(o, "  (service is back when {} pass{rest})", ids.join(", "));
    }
    if !plan.rto_clock_start.is_zero() {
        let _ = writeln!(
            o,
            "  (counted from the first change that can interrupt service; the {} of checks and capacity changes before it cost no availability)",
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
        "recovered_when": ids(&plan.recovered_when),
        "recovered_at_secs": secs(plan.recovered_at),
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

/// `plan --history` in text: the RTO replanned from earlier runs, and each measured
/// step's median and 90th percentile beside its expectation.
pub fn history_text(plan: &Plan<'_>, h: &super::history::History) -> String {
    let mut o = String::new();
    let _ = writeln!(o);
    match h.predict(plan.runbook) {
        None => {
            let _ = writeln!(
                o,
                "Predicted RTO from history: no earlier run of {} measured a step",
                plan.runbook.runbook.name
            );
            return o;
        }
        Some(p) => {
            let _ = writeln!(
                o,
                "Predicted RTO from history: {}; from the runbook's expectations: {}",
                p.describe(),
                human(plan.predicted_rto)
            );
        }
    }
    let id_width = plan
        .runbook
        .steps
        .iter()
        .map(|s| s.id.as_str().len())
        .max()
        .unwrap_or(0);
    for s in &plan.runbook.steps {
        if let (Some(median), Some(p90), Some(n)) = (
            h.percentile(&s.id, 50),
            h.percentile(&s.id, 90),
            h.steps.get(&s.id).map(Vec::len),
        ) {
            let _ = writeln!(
                o,
                "  {:id_width$}  {} median, {} p90 ({n} sample{}; expected {}){}",
                s.id.as_str(),
                human(median),
                human(p90),
                if n == 1 { "" } else { "s" },
                human(s.expected),
                if s.approval {
                    ", not used: a person's time"
                } else {
                    ""
                }
            );
        }
    }
    o
}

/// `plan --history --format json`: the `history` field (docs/plan-json.md).
pub fn history_json(plan: &Plan<'_>, h: &super::history::History) -> Value {
    let p = h.predict(plan.runbook);
    let steps: serde_json::Map<String, Value> = plan
        .runbook
        .steps
        .iter()
        .filter_map(|s| {
            let n = h.steps.get(&s.id).map(Vec::len)?;
            Some((
                s.id.to_string(),
                json!({
                    "samples": n,
                    "median_secs": h.percentile(&s.id, 50).map(|d| d.as_secs_f64()),
                    "p90_secs": h.percentile(&s.id, 90).map(|d| d.as_secs_f64()),
                }),
            ))
        })
        .collect();
    json!({
        "runs": h.runs,
        "simulated": h.simulated,
        "predicted_rto_median_secs": p.as_ref().map(|p| p.median.as_secs_f64()),
        "predicted_rto_p90_secs": p.as_ref().map(|p| p.p90.as_secs_f64()),
        "steps": steps,
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

/// Cuts a label to `max` characters, ending with `…` when cut; the full text goes in
/// the node's tooltip.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut o: String = s.chars().take(max.saturating_sub(1)).collect();
    o.push('…');
    o
}

/// Node order within each level: level 1 in file order, each later level by the mean
/// position of its dependencies (ties in file order), which keeps most edges short and
/// uncrossed without a layout engine.
fn ordered_levels(plan: &Plan<'_>) -> Vec<Vec<usize>> {
    let mut pos = vec![0.0f64; plan.runbook.steps.len()];
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(plan.levels.len());
    for level in &plan.levels {
        let mut nodes = level.clone();
        if !out.is_empty() {
            let key = |i: usize| {
                let ds = &plan.deps[i];
                if ds.is_empty() {
                    f64::MAX
                } else {
                    ds.iter().map(|&d| pos[d]).sum::<f64>() / ds.len() as f64
                }
            };
            nodes.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        }
        // Positions are centred like the drawing, so columns of different heights
        // compare fairly.
        let n = nodes.len() as f64;
        for (row, &i) in nodes.iter().enumerate() {
            pos[i] = row as f64 - (n - 1.0) / 2.0;
        }
        out.push(nodes);
    }
    out
}

/// The plan's DAG as inline SVG: one column per level, left to right; edges from each
/// dependency to its dependent with an arrowhead; the critical path in red; approval
/// steps as hexagons; mutating steps filled orange (as in the DOT output). Labels are
/// escaped and cut to fit, with the full text in a tooltip.
pub fn dag_svg(plan: &Plan<'_>) -> String {
    const NW: f64 = 176.0;
    const NH: f64 = 46.0;
    const COL: f64 = NW + 48.0;
    const ROW: f64 = NH + 20.0;
    const MARGIN: f64 = 20.0;
    const LEGEND: f64 = 40.0;
    let steps = &plan.runbook.steps;
    let levels = ordered_levels(plan);
    let tallest = levels.iter().map(Vec::len).max().unwrap_or(0).max(1) as f64;
    let width = MARGIN * 2.0 + (levels.len().max(1) as f64) * COL - (COL - NW);
    let graph_h = tallest * ROW - (ROW - NH);
    let height = MARGIN * 2.0 + graph_h + LEGEND;
    let mut at = vec![(0.0f64, 0.0f64); steps.len()];
    for (l, nodes) in levels.iter().enumerate() {
        let offset = (tallest - nodes.len() as f64) * ROW / 2.0;
        for (row, &i) in nodes.iter().enumerate() {
            at[i] = (MARGIN + l as f64 * COL, MARGIN + offset + row as f64 * ROW);
        }
    }
    let critical_edge = |d: usize, i: usize| {
        plan.critical_path
            .windows(2)
            .any(|w| w[0] == d && w[1] == i)
    };

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg class=\"dag\" role=\"img\" aria-label=\"Dependency graph of the steps\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">"
    );
    let _ = writeln!(
        o,
        "<title>Steps of {} by level; the critical path in red</title>",
        html_escape(&plan.runbook.runbook.name)
    );
    let _ = writeln!(
        o,
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#78909c\"/></marker><marker id=\"arrow-critical\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#c62828\"/></marker></defs>"
    );
    // Edges first, so nodes draw over them; critical ones last, on top of the others.
    let mut edges: Vec<(usize, usize, bool)> = Vec::new();
    for (i, ds) in plan.deps.iter().enumerate() {
        for &d in ds {
            edges.push((d, i, critical_edge(d, i)));
        }
    }
    edges.sort_by_key(|e| e.2);
    for (d, i, critical) in edges {
        let (x1, y1) = (at[d].0 + NW, at[d].1 + NH / 2.0);
        let (x2, y2) = (at[i].0, at[i].1 + NH / 2.0);
        let dx = (x2 - x1) / 2.0;
        let (stroke, w, marker) = if critical {
            ("#c62828", 2.5, "arrow-critical")
        } else {
            ("#78909c", 1.4, "arrow")
        };
        let _ = writeln!(
            o,
            "<path d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{w}\" marker-end=\"url(#{marker})\"><title>{} → {}</title></path>",
            x1 + dx,
            x2 - dx,
            html_escape(steps[d].id.as_str()),
            html_escape(steps[i].id.as_str())
        );
    }
    for (i, s) in steps.iter().enumerate() {
        let (x, y) = at[i];
        let critical = plan.is_critical(i);
        let fill = if s.is_mutating() {
            "#ffe0b2"
        } else {
            "#ffffff"
        };
        let (stroke, sw) = if critical {
            ("#c62828", 3.0)
        } else {
            ("#90a4ae", 1.5)
        };
        let mut tip = vec![
            s.id.as_str().to_string(),
            format!("{} ~{}", s.spec.name, human(s.expected)),
        ];
        if critical {
            tip.push("on the critical path".into());
        }
        if s.approval {
            tip.push("needs approval".into());
        }
        if let Some(e) = &plan.effects[i] {
            tip.push(format!(
                "mutates {} with {} in {}",
                e.resource, e.call, e.region
            ));
        }
        let _ = writeln!(
            o,
            "<g class=\"node\"><title>{}</title>",
            html_escape(&tip.join("\n"))
        );
        if s.approval {
            let _ = writeln!(
                o,
                "<polygon points=\"{:.1},{y:.1} {:.1},{y:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {x:.1},{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                x + 14.0,
                x + NW - 14.0,
                x + NW,
                y + NH / 2.0,
                x + NW - 14.0,
                y + NH,
                x + 14.0,
                y + NH,
                y + NH / 2.0
            );
        } else {
            let _ = writeln!(
                o,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NW}\" height=\"{NH}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>"
            );
        }
        // Long labels are squeezed into the box (textLength) rather than cut early;
        // only really long ones are cut.
        let cx = x + NW / 2.0;
        let fit = |text: &str, room: usize| {
            let t = truncate(text, 34);
            let squeeze = if t.chars().count() > room {
                format!(
                    " textLength=\"{:.0}\" lengthAdjust=\"spacingAndGlyphs\"",
                    NW - 14.0
                )
            } else {
                String::new()
            };
            (html_escape(&t), squeeze)
        };
        let (id, id_fit) = fit(s.id.as_str(), 22);
        let (sub, sub_fit) = fit(&format!("{} ~{}", s.spec.name, human(s.expected)), 27);
        let _ = writeln!(
            o,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\"{id_fit}>{id}</text><text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"sub\"{sub_fit}>{sub}</text></g>",
            y + 19.0,
            y + 36.0,
        );
    }
    // Legend.
    let ly = MARGIN + graph_h + 28.0;
    let _ = writeln!(
        o,
        "<rect x=\"{MARGIN}\" y=\"{:.1}\" width=\"26\" height=\"14\" rx=\"3\" fill=\"#ffffff\" stroke=\"#c62828\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{ly:.1}\">critical path</text>",
        ly - 11.0,
        MARGIN + 32.0
    );
    let _ = writeln!(
        o,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"26\" height=\"14\" rx=\"3\" fill=\"#ffe0b2\" stroke=\"#90a4ae\"/><text x=\"{:.1}\" y=\"{ly:.1}\">changes the world</text>",
        MARGIN + 140.0,
        ly - 11.0,
        MARGIN + 172.0
    );
    let hx = MARGIN + 320.0;
    let _ = writeln!(
        o,
        "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {hx:.1},{:.1}\" fill=\"#ffffff\" stroke=\"#90a4ae\"/><text x=\"{:.1}\" y=\"{ly:.1}\">needs approval</text>",
        hx + 6.0,
        ly - 11.0,
        hx + 20.0,
        ly - 11.0,
        hx + 26.0,
        ly - 4.0,
        hx + 20.0,
        ly + 3.0,
        hx + 6.0,
        ly + 3.0,
        ly - 4.0,
        hx + 32.0
    );
    o.push_str("</svg>\n");
    o
}

/// A self-contained HTML page (no scripts, no external assets): a picture of the DAG
/// (inline SVG), then the text plan's content as tables, for attaching to a change
/// ticket.
pub fn html(plan: &Plan<'_>) -> String {
    let rb = plan.runbook;
    let steps = &rb.steps;
    let mut o = String::new();
    let title = html_escape(&rb.runbook.name);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Plan: {title}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}tr.critical td:first-child{{border-left:4px solid #c62828}}.mut{{background:#fff3e0}}svg.dag{{max-width:100%;height:auto;display:block;margin:1em 0}}svg.dag text{{font-family:system-ui,sans-serif;font-size:12px;fill:#212121}}svg.dag text.sub{{font-size:11px;fill:#546e7a}}</style></head><body>\n"
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
    o.push_str(&dag_svg(plan));
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
