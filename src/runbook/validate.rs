//! Pass 3: checks across steps, and the rules that need the whole runbook.
//!
//! Ids are unique, every `after` names a step, there is no dependency cycle (the error
//! names the cycle in order), and the AWS semantics a runbook can get wrong on paper
//! are caught here: a planned runbook must not fail over with data loss, an unplanned
//! one must not fail over without `AllowDataLoss`, lag limits need an RPO to default
//! to, and so on.

use std::collections::HashMap;

use super::diag::{Diagnostics, did_you_mean};
use super::model::{FieldValue, Mode, Objectives, Step};
use super::parse::Outline;
use crate::plan::graph::find_cycles;

/// Checks `steps` together; problems go to `d`. `outlines` has the id and `after` of
/// every step, including broken ones. Fills in field defaults that come from the
/// runbook as a whole (`max_lag` from `objectives.rpo`).
pub(crate) fn check(
    src: &str,
    outlines: &[Outline],
    steps: &mut [Step],
    mode: Option<Mode>,
    objectives: &Objectives,
    d: &mut Diagnostics,
) {
    let index = unique_ids(src, outlines, d);
    let deps = resolve_after(outlines, &index, d);
    for cycle in find_cycles(&deps) {
        let names: Vec<&str> = cycle.iter().map(|&i| outlines[i].id.as_str()).collect();
        let first = &outlines[cycle[0]];
        let next = cycle.get(1).copied().unwrap_or(cycle[0]);
        let span = first
            .after
            .iter()
            .position(|a| a == &outlines[next].id)
            .map_or(first.spans.id.clone(), |k| first.spans.after[k].clone());
        if names.len() == 1 {
            d.error(
                span,
                format!("step `{}` runs after itself", names[0]),
                "a step cannot depend on itself",
            )
            .help = Some("remove it from its own `after`".into());
            continue;
        }
        let mut chain = names.join("` after `");
        chain.push_str(&format!("` after `{}", names[0]));
        d.error(
            span,
            format!("dependency cycle: `{chain}`"),
            "this dependency closes the cycle",
        )
        .help = Some("remove one of these `after` entries so the steps can be ordered".into());
    }
    for step in steps.iter_mut() {
        step_rules(step, mode, objectives, d);
    }
}

fn unique_ids(src: &str, outlines: &[Outline], d: &mut Diagnostics) -> HashMap<String, usize> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(outlines.len());
    for (i, step) in outlines.iter().enumerate() {
        if let Some(&first) = index.get(step.id.as_str()) {
            d.error(
                step.spans.id.clone(),
                format!("duplicate step id `{}`", step.id),
                "already used by an earlier step",
            )
            .help = Some(format!(
                "step ids must be unique; the first `{}` is on line {}",
                step.id,
                src.get(..outlines[first].spans.id.start)
                    .map_or(0, |before| before.matches('\n').count() + 1)
            ));
        } else {
            index.insert(step.id.as_str().to_string(), i);
        }
    }
    index
}

fn resolve_after(
    outlines: &[Outline],
    index: &HashMap<String, usize>,
    d: &mut Diagnostics,
) -> Vec<Vec<usize>> {
    outlines
        .iter()
        .map(|step| {
            let mut deps: Vec<usize> = Vec::with_capacity(step.after.len());
            for (k, dep) in step.after.iter().enumerate() {
                let span = step.spans.after[k].clone();
                match index.get(dep.as_str()) {
                    Some(&j) if deps.contains(&j) => {
                        d.warning(
                            span,
                            format!("step `{}` lists `{dep}` twice in `after`", step.id),
                            "duplicate dependency",
                        );
                    }
                    Some(&j) => deps.push(j),
                    None => {
                        let p = d.error(
                            span,
                            format!("step `{}` runs after `{dep}`, which is not a step", step.id),
                            "unknown step id",
                        );
                        p.help = did_you_mean(dep.as_str(), index.keys().map(String::as_str))
                            .map(|near| format!("did you mean `{near}`?"));
                    }
                }
            }
            deps
        })
        .collect()
}

fn get_bool(fields: &super::model::Fields, key: &str) -> Option<bool> {
    match fields.get(key) {
        Some(FieldValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn step_rules(step: &mut Step, mode: Option<Mode>, objectives: &Objectives, d: &mut Diagnostics) {
    let span = step.spans.id.clone();
    let id = step.id.clone();
    match step.spec.name {
        "aurora.failover" => {
            if mode == Some(Mode::Planned) {
                d.error(
                    step.spans.action.clone(),
                    format!("step `{id}` fails over with possible data loss in a planned runbook"),
                    "aurora.failover uses AllowDataLoss",
                )
                .help = Some("a planned runbook promises RPO 0: use aurora.switchover".into());
            } else if get_bool(&step.fields, "allow_data_loss") == Some(false) {
                d.error(
                    step.spans
                        .fields
                        .get("allow_data_loss")
                        .cloned()
                        .unwrap_or_else(|| span.clone()),
                    format!("step `{id}` sets allow_data_loss = false in an unplanned runbook"),
                    "FailoverGlobalCluster without AllowDataLoss is a switchover",
                )
                .help = Some(
                    "a switchover needs every region healthy and fails in a real outage; \
                     remove allow_data_loss (it defaults to true) or use aurora.switchover \
                     in a planned runbook"
                        .into(),
                );
            }
            default_max_lag(step, objectives, d, false);
        }
        "aurora.lag_below" => default_max_lag(step, objectives, d, true),
        "aurora.switchover" if mode == Some(Mode::Unplanned) => {
            d.warning(
                span.clone(),
                format!("step `{id}` switches over in an unplanned runbook"),
                "a switchover needs every region healthy",
            )
            .help = Some("in an outage use aurora.failover (AllowDataLoss)".into());
        }
        "aurora.detach_promote" if !step.approval => {
            d.warning(
                span.clone(),
                format!("step `{id}` detaches a cluster from its global database without approval"),
                "breaks the global topology",
            )
            .help = Some("set approval = true so a person confirms the last resort".into());
        }
        "route53.health_check_flip"
            if !step.fields.contains_key("invert") && !step.fields.contains_key("disable") =>
        {
            d.error(
                span.clone(),
                format!("step `{id}` flips health checks but sets nothing"),
                "set invert and/or disable",
            )
            .help = Some("invert = true fails traffic away; invert = false restores it".into());
        }
        "route53.change_insync" if !step.fields.contains_key("change_id") => {
            d.error(
                span.clone(),
                format!("step `{id}` waits for a Route 53 change without a change_id"),
                "no change to wait for",
            )
            .help = Some("as a step action it needs change_id; as a gate of a route53 step it defaults to that step's change".into());
        }
        "wait" => {
            if let Some(FieldValue::Duration(w)) = step.fields.get("duration") {
                if *w >= step.timeout {
                    d.error(
                        span.clone(),
                        format!(
                            "step `{id}` waits {} but times out after {}",
                            humantime::format_duration(*w),
                            humantime::format_duration(step.timeout)
                        ),
                        "the wait can never finish",
                    )
                    .help = Some("raise the step's timeout above the wait".into());
                }
            }
        }
        _ => {}
    }
    if let Some(gate) = &step.gate {
        if gate.spec.name == "route53.change_insync"
            && !gate.fields.contains_key("change_id")
            && !step.spec.name.starts_with("route53.")
        {
            d.error(
                span,
                format!(
                    "the gate of step `{id}` waits for a Route 53 change the step does not make"
                ),
                "route53.change_insync needs a change",
            )
            .help = Some("give the gate a change_id, or gate a route53 step".into());
        }
    }
    if let Some(gate) = step.gate.as_mut() {
        if gate.spec.name == "aurora.lag_below" && !gate.fields.contains_key("max_lag") {
            match objectives.rpo {
                Some(rpo) => {
                    gate.fields
                        .insert("max_lag".into(), FieldValue::Duration(rpo));
                }
                None => {
                    d.error(
                        step.spans.id.clone(),
                        format!(
                            "the aurora.lag_below gate of step `{}` has no max_lag",
                            step.id
                        ),
                        "no max_lag and no objectives.rpo to default to",
                    );
                }
            }
        }
    }
}

/// `max_lag` defaults to the runbook's RPO; without either, a lag check is meaningless.
fn default_max_lag(step: &mut Step, objectives: &Objectives, d: &mut Diagnostics, required: bool) {
    if step.fields.contains_key("max_lag") {
        return;
    }
    match objectives.rpo {
        Some(rpo) => {
            step.fields
                .insert("max_lag".into(), FieldValue::Duration(rpo));
        }
        None if required => {
            d.error(
                step.spans.id.clone(),
                format!("step `{}` checks lag without a limit", step.id),
                "no max_lag and no objectives.rpo to default to",
            )
            .help = Some("set max_lag = \"30s\", or rpo in [objectives]".into());
        }
        None => {
            d.warning(
                step.spans.id.clone(),
                format!("step `{}` promotes a secondary whatever its lag", step.id),
                "no max_lag and no objectives.rpo",
            )
            .help =
                Some("set rpo in [objectives] so a secondary lagging past it is refused".into());
        }
    }
}
