//! The preflight for people: the findings table (blocking, warnings, fine) and the
//! regions the probes found not answering normally. Shown by `drpilot preflight` and
//! by the guided briefing.

use crate::actions::Severity;
use crate::engine::events::StepFinding;
use std::collections::BTreeMap;

use crate::runbook::{Runbook, StepId};

/// What the probes found of each region the runbook calls, for people: a table of the
/// ones that do not answer normally, and one line for those that do.
pub fn regions_table(regions: &[crate::cloud::reach::RegionStatus]) -> String {
    use crate::cloud::reach::Reachability as R;
    if regions.is_empty() {
        return String::new();
    }
    let mut fine: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in regions.iter().filter(|r| r.status == R::Reachable) {
        fine.entry(r.region.as_str())
            .or_default()
            .push(r.service.as_str());
    }
    let fine_line = if fine.is_empty() {
        String::new()
    } else {
        format!(
            "answering: {}\n",
            fine.iter()
                .map(|(region, services)| format!("{region} ({})", services.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let mut rows: Vec<&crate::cloud::reach::RegionStatus> = regions
        .iter()
        .filter(|r| r.status != R::Reachable)
        .collect();
    if rows.is_empty() {
        return fine_line;
    }
    rows.sort_by_key(|r| (r.region.clone(), r.service.clone()));
    let rw = rows
        .iter()
        .map(|r| r.region.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let sw = rows
        .iter()
        .map(|r| r.service.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut s = format!(
        "{:<rw$}  {:<sw$}  {:<11}  {:>7}  HOW IT WAS DECIDED\n",
        "REGION", "SERVICE", "STATUS", "LATENCY"
    );
    for r in &rows {
        let status = match r.status {
            R::Reachable => "reachable",
            R::Slow => "SLOW",
            R::Unreachable => "UNREACHABLE",
        };
        let latency = r
            .latency_ms
            .map_or_else(|| "-".to_string(), crate::report::human::millis);
        s.push_str(&format!(
            "{:<rw$}  {:<sw$}  {status:<11}  {latency:>7}  {}\n",
            r.region, r.service, r.decided_by
        ));
    }
    let down = rows.iter().filter(|r| r.status == R::Unreachable).count();
    if down > 0 {
        s.push_str(&format!(
            "{down} unreachable: calls to them fail at once; read-only checks there are skipped (unplanned) or fail (planned)\n"
        ));
    }
    s.push_str(&fine_line);
    s
}

/// The findings as a table for people: step, result, what was seen.
pub fn table(rb: &Runbook, findings: &[StepFinding], ok: bool) -> String {
    let width = findings
        .iter()
        .map(|f| f.step.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "preflight of {} ({:?})\n\n{:<width$}  {:<7}  FINDING\n",
        rb.runbook.name, rb.runbook.mode, "STEP", "RESULT"
    );
    let mut order: Vec<&StepFinding> = findings.iter().collect();
    let index: BTreeMap<&StepId, usize> = rb
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| (&st.id, i))
        .collect();
    order.sort_by_key(|f| index.get(&f.step).copied().unwrap_or(usize::MAX));
    for f in order {
        let result = match f.finding.severity {
            Severity::Block => "FAIL",
            Severity::Warn => "warn",
            Severity::Ok => "ok",
        };
        let message = &f.finding.message;
        s.push_str(&format!(
            "{:<width$}  {result:<7}  {message}\n",
            f.step.as_str()
        ));
    }
    let failed = findings.iter().filter(|f| !f.finding.allows()).count();
    let warned = findings.iter().filter(|f| f.finding.is_warning()).count();
    s.push_str(&format!(
        "\n{}: {} finding(s), {failed} blocking, {warned} warning(s)\n",
        if ok { "ready" } else { "NOT READY" },
        findings.len()
    ));
    s
}
