//! Pass 3: checks across steps, and the rules that need the whole runbook.
//!
//! Ids are unique, every `after` names a step, there is no dependency cycle (the error
//! names the cycle in order), and the AWS semantics a runbook can get wrong on paper
//! are caught here: a planned runbook must not fail over with data loss, an unplanned
//! one must not fail over without `AllowDataLoss`, lag limits need an RPO to default
//! to, Route 53 ARC ARNs have their shape and an update names each control once, and so
//! on.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::catalogue::arn_region;
use super::diag::{Diagnostics, did_you_mean};
use super::graph::find_cycles;
use super::kind::Kind;
use super::model::{FieldValue, Fields, Mode, Objectives, OnUnreachable, Step};
use super::parse::Outline;

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
    let all: &[Step] = steps;
    let index = unique_ids(src, outlines, all, d);
    let deps = resolve_after(outlines, all, &index, d);
    recovered_when(objectives, &index, d);
    for cycle in find_cycles(&deps) {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| outlines[i].parts(all).0.as_str())
            .collect();
        let (_, first_spans, first_after) = outlines[cycle[0]].parts(all);
        let next = cycle.get(1).copied().unwrap_or(cycle[0]);
        let next_id = outlines[next].parts(all).0;
        let span = first_after
            .iter()
            .position(|a| a == next_id)
            .map_or(first_spans.id.clone(), |k| first_spans.after[k].clone());
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
    deferrable(outlines, all, &index, &deps, objectives, d);
    for step in steps.iter_mut() {
        step_rules(step, mode, objectives, d);
    }
}

/// `on_unreachable = "defer"` only on steps the recovery does not depend on: a deferred
/// step ends the run without it, and a run whose recovery waits on it has not recovered.
fn deferrable(
    outlines: &[Outline],
    steps: &[Step],
    index: &HashMap<&str, usize>,
    deps: &[Vec<usize>],
    objectives: &Objectives,
    d: &mut Diagnostics,
) {
    let deferred: Vec<(usize, &Step)> = outlines
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Outline::Valid(k) => Some((i, &steps[*k])),
            Outline::Broken(_) => None,
        })
        .filter(|(_, s)| s.on_unreachable == Some(OnUnreachable::Defer))
        .collect();
    if deferred.is_empty() {
        return;
    }
    let recovered: Vec<usize> = objectives
        .recovered_when
        .iter()
        .filter_map(|id| index.get(id.as_str()).copied())
        .collect();
    let path = super::graph::recovery_path(deps, recovered.iter().copied());
    for (i, step) in deferred {
        if !path[i] {
            continue;
        }
        let span = step
            .spans
            .fields
            .iter()
            .find(|(k, _)| *k == "on_unreachable")
            .map_or(step.spans.id.clone(), |(_, s)| s.clone());
        let p = if recovered.is_empty() {
            d.error(
                span,
                format!("step `{}` may be deferred, but the runbook does not say when service is restored", step.id),
                "defer needs [objectives] recovered_when",
            )
        } else {
            d.error(
                span,
                format!(
                    "step `{}` may be deferred, but service restoration depends on it",
                    step.id
                ),
                "a step before a recovered_when step cannot be left for later",
            )
        };
        p.help = Some(
            "only housekeeping after the recovered_when steps (a snapshot of the lost writes) can be deferred; use `retry` or `fail` here"
                .into(),
        );
    }
}

fn unique_ids<'a>(
    src: &str,
    outlines: &'a [Outline],
    steps: &'a [Step],
    d: &mut Diagnostics,
) -> HashMap<&'a str, usize> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(outlines.len());
    for (i, outline) in outlines.iter().enumerate() {
        let (id, spans, _) = outline.parts(steps);
        if let Some(&first) = index.get(id.as_str()) {
            d.error(
                spans.id.clone(),
                format!("duplicate step id `{id}`"),
                "already used by an earlier step",
            )
            .help = Some(format!(
                "step ids must be unique; the first `{id}` is on line {}",
                src.get(..outlines[first].parts(steps).1.id.start)
                    .map_or(0, |before| before.matches('\n').count() + 1)
            ));
        } else {
            index.insert(id.as_str(), i);
        }
    }
    index
}

fn resolve_after(
    outlines: &[Outline],
    steps: &[Step],
    index: &HashMap<&str, usize>,
    d: &mut Diagnostics,
) -> Vec<Vec<usize>> {
    outlines
        .iter()
        .map(|outline| {
            let (id, spans, after) = outline.parts(steps);
            let mut deps: Vec<usize> = Vec::with_capacity(after.len());
            for (k, dep) in after.iter().enumerate() {
                let span = spans.after[k].clone();
                match index.get(dep.as_str()) {
                    Some(&j) if deps.contains(&j) => {
                        d.warning(
                            span,
                            format!("step `{id}` lists `{dep}` twice in `after`"),
                            "duplicate dependency",
                        );
                    }
                    Some(&j) => deps.push(j),
                    None => {
                        let p = d.error(
                            span,
                            format!("step `{id}` runs after `{dep}`, which is not a step"),
                            "unknown step id",
                        );
                        p.help = did_you_mean(dep.as_str(), index.keys().copied())
                            .map(|near| format!("did you mean `{near}`?"));
                    }
                }
            }
            deps
        })
        .collect()
}

/// Every `recovered_when` entry names a step: a typo must not end the RTO at the wrong
/// moment (or never).
fn recovered_when(objectives: &Objectives, index: &HashMap<&str, usize>, d: &mut Diagnostics) {
    let mut seen = BTreeSet::new();
    for (id, span) in objectives
        .recovered_when
        .iter()
        .zip(&objectives.recovered_when_spans)
    {
        if !index.contains_key(id.as_str()) {
            d.error(
                span.clone(),
                format!("`recovered_when` names `{id}`, which is not a step"),
                "unknown step id",
            )
            .help = did_you_mean(id.as_str(), index.keys().copied())
                .map(|near| format!("did you mean `{near}`?"));
        } else if !seen.insert(id.as_str()) {
            d.warning(
                span.clone(),
                format!("`recovered_when` lists `{id}` twice"),
                "duplicate step id",
            );
        }
    }
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
    match step.spec.kind {
        Kind::AuroraFailover => {
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
                        .field("allow_data_loss")
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
        Kind::AuroraLagBelow => default_max_lag(step, objectives, d, true),
        Kind::AuroraSwitchover if mode == Some(Mode::Unplanned) => {
            d.warning(
                span.clone(),
                format!("step `{id}` switches over in an unplanned runbook"),
                "a switchover needs every region healthy",
            )
            .help = Some("in an outage use aurora.failover (AllowDataLoss)".into());
        }
        Kind::AuroraDetachPromote if !step.approval => {
            d.warning(
                span.clone(),
                format!("step `{id}` detaches a cluster from its global database without approval"),
                "breaks the global topology",
            )
            .help = Some("set approval = true so a person confirms the last resort".into());
        }
        Kind::Route53HealthCheckFlip
            if !step.fields.contains_key("invert") && !step.fields.contains_key("disable") =>
        {
            d.error(
                span.clone(),
                format!("step `{id}` flips health checks but sets nothing"),
                "set invert and/or disable",
            )
            .help = Some("invert = true fails traffic away; invert = false restores it".into());
        }
        Kind::Route53ChangeInsync if !step.fields.contains_key("change_id") => {
            d.error(
                span.clone(),
                format!("step `{id}` waits for a Route 53 change without a change_id"),
                "no change to wait for",
            )
            .help = Some("as a step action it needs change_id; as a gate of a route53 step it defaults to that step's change".into());
        }
        Kind::AuroraSnapshotLostWrites => {
            if let Some(FieldValue::Str(p)) = step.fields.get("snapshot_prefix")
                && let Some(why) = crate::names::snapshot_prefix_problem(p)
            {
                let at = step.spans.field("snapshot_prefix").unwrap_or(span.clone());
                d.error(
                    at,
                    format!("step `{id}`: snapshot_prefix {why}"),
                    "not a usable snapshot identifier prefix",
                )
                .help = Some(
                    "CopyDBClusterSnapshot takes 1 to 63 letters, digits and single hyphens, \
                     a letter first; drpilot adds the cluster's name and the failover's time"
                        .into(),
                );
            }
        }
        Kind::PostgresHeartbeat | Kind::ValkeyHeartbeat => {
            if let Some(FieldValue::Str(t)) = step.fields.get("table")
                && let Err(why) = crate::heartbeat::quoted_table(t)
            {
                let at = step.spans.field("table").unwrap_or(span.clone());
                d.error(at, format!("step `{id}`: {why}"), "not a table name");
            }
            if let Some(FieldValue::Duration(w)) = step.fields.get("wait")
                && *w >= step.timeout
            {
                d.error(
                    span.clone(),
                    format!(
                        "step `{id}` waits up to {} for a heartbeat but times out after {}",
                        humantime::format_duration(*w),
                        humantime::format_duration(step.timeout)
                    ),
                    "the step would time out before it measured",
                )
                .help = Some("raise the step's timeout above the wait".into());
            }
        }
        Kind::Wait => {
            if let Some(FieldValue::Duration(w)) = step.fields.get("duration")
                && *w >= step.timeout
            {
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
        _ => {}
    }
    routing_control_rules(step, d);
    capacity_range_rule(step, d);
    ecs_region_rule(step, d);
    group_sizes_rule(step, d);
    if let Some(gate) = &step.gate
        && gate.spec.kind == Kind::Route53ChangeInsync
        && !gate.fields.contains_key("change_id")
        && !step.spec.name.starts_with("route53.")
    {
        d.error(
            span,
            format!("the gate of step `{id}` waits for a Route 53 change the step does not make"),
            "route53.change_insync needs a change",
        )
        .help = Some("give the gate a change_id, or gate a route53 step".into());
    }
    if let Some(gate) = step.gate.as_mut()
        && gate.spec.kind == Kind::AuroraLagBelow
        && !gate.fields.contains_key("max_lag")
    {
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

/// `aurora.serverless_capacity`: `min_acu` may not exceed `max_acu` (AWS refuses the
/// pair, and in the middle of a failover is the wrong time to learn it). Checked in the
/// step and in a `[step.rollback]` that sets a capacity range.
fn capacity_range_rule(step: &Step, d: &mut Diagnostics) {
    let id = step.id.as_str();
    let mut parts: Vec<(&Fields, Option<Range<usize>>, &str)> = Vec::new();
    if step.spec.kind == Kind::AuroraServerlessCapacity {
        parts.push((&step.fields, step.spans.field("min_acu"), "step"));
    }
    if let Some(r) = &step.rollback
        && r.spec
            .is_some_and(|s| s.kind == Kind::AuroraServerlessCapacity)
    {
        parts.push((&r.fields, step.spans.field("rollback"), "rollback of step"));
    }
    for (fields, at, what) in parts {
        if let (Some(FieldValue::Acu(min)), Some(FieldValue::Acu(max))) =
            (fields.get("min_acu"), fields.get("max_acu"))
            && min > max
        {
            d.error(
                at.unwrap_or_else(|| step.spans.id.clone()),
                format!("{what} `{id}`: min_acu ({min}) is above max_acu ({max})"),
                "MinCapacity must not exceed MaxCapacity",
            )
            .help = Some(format!(
                "raise max_acu to at least {min}, or lower min_acu to at most {max}"
            ));
        }
    }
}

/// `ecs.scale_service`: a cluster or service given as an ARN is in `region`, where every
/// call goes (ECS would answer that it does not know them, in the middle of a failover).
/// Checked in the step and in a `[step.rollback]` that scales a service.
fn ecs_region_rule(step: &Step, d: &mut Diagnostics) {
    let id = step.id.as_str();
    let mut parts: Vec<(&Fields, &str)> = Vec::new();
    if step.spec.kind == Kind::EcsScaleService {
        parts.push((&step.fields, "step"));
    }
    if let Some(r) = &step.rollback
        && r.spec.is_some_and(|s| s.kind == Kind::EcsScaleService)
    {
        parts.push((&r.fields, "rollback of step"));
    }
    for (fields, what) in parts {
        let Some(FieldValue::Str(region)) = fields.get("region") else {
            continue;
        };
        for key in ["cluster", "service"] {
            if let Some(FieldValue::Str(v)) = fields.get(key)
                && v.starts_with("arn:")
                && let Some(in_arn) = arn_region(v)
                && in_arn != region
            {
                let at = step
                    .spans
                    .field(key)
                    .filter(|_| what == "step")
                    .or_else(|| step.spans.field("rollback"))
                    .unwrap_or_else(|| step.spans.id.clone());
                d.error(
                    at,
                    format!("{what} `{id}`: `{key}` is in {in_arn}, but `region` is {region}"),
                    "every call goes to `region`",
                )
                .help = Some(format!(
                    "set region = \"{in_arn}\", or name the {key} in {region}"
                ));
            }
        }
    }
}

/// `autoscaling.set_capacity`: at least one size, and the sizes given in order
/// (`min_size <= desired_capacity <= max_size`, AWS refuses anything else). Whether
/// they hold merged with the group's other sizes is known only at run time. Checked in
/// the step and in a `[step.rollback]` that sets sizes.
fn group_sizes_rule(step: &Step, d: &mut Diagnostics) {
    let id = step.id.as_str();
    let mut parts: Vec<(&Fields, Option<Range<usize>>, &str)> = Vec::new();
    if step.spec.kind == Kind::AutoscalingSetCapacity {
        parts.push((&step.fields, step.spans.field("group"), "step"));
    }
    if let Some(r) = &step.rollback
        && r.spec
            .is_some_and(|s| s.kind == Kind::AutoscalingSetCapacity)
    {
        parts.push((&r.fields, step.spans.field("rollback"), "rollback of step"));
    }
    for (fields, at, what) in parts {
        let at = at.unwrap_or_else(|| step.spans.id.clone());
        let size = |k: &str| match fields.get(k) {
            Some(FieldValue::Int(n)) => Some(*n),
            _ => None,
        };
        let (min, desired, max) = (size("min_size"), size("desired_capacity"), size("max_size"));
        if min.is_none() && desired.is_none() && max.is_none() {
            d.error(
                at,
                format!("{what} `{id}` sets no size"),
                "give min_size, desired_capacity or max_size",
            )
            .help = Some("desired_capacity = 4 sets the number of instances".into());
            continue;
        }
        let problem = match (min, desired, max) {
            (Some(lo), _, Some(hi)) if lo > hi => {
                Some(format!("min_size ({lo}) is above max_size ({hi})"))
            }
            (Some(lo), Some(n), _) if n < lo => {
                Some(format!("desired_capacity ({n}) is below min_size ({lo})"))
            }
            (_, Some(n), Some(hi)) if n > hi => {
                Some(format!("desired_capacity ({n}) is above max_size ({hi})"))
            }
            _ => None,
        };
        if let Some(p) = problem {
            d.error(
                at,
                format!("{what} `{id}`: {p}"),
                "Auto Scaling keeps MinSize <= DesiredCapacity <= MaxSize",
            );
        }
    }
}

/// What the field kinds of the ARC entries cannot say: routing control and safety rule
/// ARNs have their shape (a typo would only show as `ResourceNotFoundException` in the
/// middle of a failover), one update names a control once (ARC rejects the batch), one
/// endpoint is listed once, and turning every control of a step Off is worth a warning.
/// Checked in the step, its gate and its rollback action alike.
fn routing_control_rules(step: &Step, d: &mut Diagnostics) {
    let id = step.id.as_str();
    let span_of = |key: &str| {
        step.spans
            .field(key)
            .unwrap_or_else(|| step.spans.id.clone())
    };
    let mut parts: Vec<(Kind, &Fields, Range<usize>, Option<&str>)> = Vec::new();
    parts.push((step.spec.kind, &step.fields, step.spans.id.clone(), None));
    if let Some(g) = &step.gate {
        parts.push((g.spec.kind, &g.fields, span_of("gate"), Some("gate")));
    }
    if let Some(spec) = step.rollback.as_ref().and_then(|r| r.spec)
        && let Some(r) = &step.rollback
    {
        parts.push((spec.kind, &r.fields, span_of("rollback"), Some("rollback")));
    }
    for (kind, fields, table_span, part) in parts {
        if !matches!(
            kind,
            Kind::Route53RoutingControl | Kind::Route53RoutingControlState
        ) {
            continue;
        }
        // A key's own span when the step's table holds it, else the gate or rollback.
        let at = |key: &str| match part {
            None => span_of(key),
            Some(_) => table_span.clone(),
        };
        let whose = match part {
            None => format!("step `{id}`"),
            Some(p) => format!("the {p} of step `{id}`"),
        };
        if let Some(FieldValue::Tables(eps)) = fields.get("cluster_endpoints") {
            let mut seen = BTreeSet::new();
            for ep in eps {
                if let Some(FieldValue::Str(url)) = ep.get("url")
                    && !seen.insert(url.trim_end_matches('/').to_ascii_lowercase())
                {
                    d.error(
                        at("cluster_endpoints"),
                        format!("{whose} lists the cluster endpoint {url} twice"),
                        "duplicate endpoint",
                    )
                    .help = Some(
                        "list each of the cluster's endpoints once, in the order to try them"
                            .into(),
                    );
                }
            }
        }
        let mut arns: Vec<(&str, &str)> = Vec::new();
        if let Some(FieldValue::Str(arn)) = fields.get("routing_control_arn") {
            arns.push((arn, "routing_control_arn"));
        }
        let mut states: Vec<&str> = Vec::new();
        if let Some(FieldValue::Tables(entries)) = fields.get("states") {
            let mut seen = BTreeSet::new();
            for e in entries {
                if let Some(FieldValue::Str(arn)) = e.get("routing_control_arn") {
                    arns.push((arn, "states"));
                    if !seen.insert(arn.as_str()) {
                        d.error(
                            at("states"),
                            format!("{whose} sets routing control {arn} twice"),
                            "duplicate routing control",
                        )
                        .help = Some(
                            "UpdateRoutingControlStates takes each control once; keep one entry"
                                .into(),
                        );
                    }
                }
                if let Some(FieldValue::Str(state)) = e.get("state") {
                    states.push(state);
                }
            }
        }
        for (arn, key) in arns {
            if let Some(why) = arc_arn_problem(arn, "routingcontrol") {
                d.error(
                    at(key),
                    format!("{whose} names an invalid routing control ARN: {why}"),
                    "expected a routing control ARN",
                )
                .help = Some(
                    "arn:aws:route53-recovery-control::ACCOUNT:controlpanel/ID/routingcontrol/ID \
                     (ListRoutingControls shows them)"
                        .into(),
                );
            }
        }
        if let Some(FieldValue::List(rules)) = fields.get("override_safety_rules") {
            for rule in rules {
                if let Some(why) = arc_arn_problem(rule, "safetyrule") {
                    d.error(
                        at("override_safety_rules"),
                        format!("{whose} overrides an invalid safety rule ARN: {why}"),
                        "expected a safety rule ARN",
                    )
                    .help = Some(
                        "arn:aws:route53-recovery-control::ACCOUNT:controlpanel/ID/safetyrule/ID"
                            .into(),
                    );
                }
            }
        }
        if states.len() > 1 && states.iter().all(|s| *s == "Off") {
            d.warning(
                at("states"),
                format!("{whose} turns every routing control it names Off"),
                "traffic is sent to no cell",
            )
            .help = Some(
                "with every cell Off Route 53 answers the PRIMARY records (fail open), and an \
                 \"at least one cell On\" safety rule refuses it: set the other cell On in the \
                 same step"
                    .into(),
            );
        }
    }
}

/// Why `arn` is not an ARC ARN of `kind` (`routingcontrol`, `safetyrule`):
/// `arn:PARTITION:route53-recovery-control::ACCOUNT:controlpanel/ID/KIND/ID`.
fn arc_arn_problem(arn: &str, kind: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [head, partition, service, region, account, resource] = parts.as_slice() else {
        return Some(format!("`{arn}` is not an ARN"));
    };
    if *head != "arn" || !partition.starts_with("aws") {
        return Some(format!("`{arn}` is not an ARN"));
    }
    if *service != "route53-recovery-control" {
        return Some(format!(
            "the ARN's service is `{service}`, not route53-recovery-control"
        ));
    }
    if !region.is_empty() {
        return Some(format!(
            "the ARN has a region (`{region}`); ARC control ARNs are global and have none"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "the ARN's account `{account}` is not a 12-digit account id"
        ));
    }
    let segments: Vec<&str> = resource.split('/').collect();
    match segments.as_slice() {
        ["controlpanel", panel, k, id] if !panel.is_empty() && !id.is_empty() && *k == kind => None,
        _ => Some(format!(
            "the ARN's resource `{resource}` is not \"controlpanel/ID/{kind}/ID\""
        )),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    const CELL: &str = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol";

    fn routing_step(states: &[(&str, &str)]) -> String {
        let mut t = String::from(
            "[runbook]\nname = \"r\"\nmode = \"unplanned\"\n[[step]]\nid = \"cells\"\n\
             action = \"route53.routing_control\"\ncluster_endpoints = [\
             { url = \"https://a.route53-recovery-cluster.us-west-2.amazonaws.com/v1\", region = \"us-west-2\" }]\n",
        );
        for (id, state) in states {
            t.push_str(&format!(
                "[[step.states]]\nrouting_control_arn = \"{CELL}/{id}\"\nstate = \"{state}\"\n"
            ));
        }
        t
    }

    #[test]
    fn turning_every_cell_off_is_a_warning_and_one_cell_is_not() {
        let all_off = routing_step(&[("aaaa", "Off"), ("bbbb", "Off")]);
        let loaded = crate::runbook::load_str(Path::new("r.toml"), &all_off).unwrap();
        let messages: Vec<&str> = loaded.warnings.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            ["step `cells` turns every routing control it names Off"]
        );
        for fine in [
            routing_step(&[("aaaa", "Off")]),
            routing_step(&[("aaaa", "Off"), ("bbbb", "On")]),
        ] {
            let loaded = crate::runbook::load_str(Path::new("r.toml"), &fine).unwrap();
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        }
    }

    #[test]
    fn arc_arns_are_checked_for_their_shape() {
        assert_eq!(
            super::arc_arn_problem(&format!("{CELL}/aaaa"), "routingcontrol"),
            None
        );
        for (arn, want) in [
            ("cell-use1", "not an ARN"),
            (
                "arn:aws:route53:::healthcheck/x/routingcontrol/y",
                "service is `route53`",
            ),
            (
                "arn:aws:route53-recovery-control::1111:controlpanel/p/routingcontrol/r",
                "12-digit",
            ),
            (
                "arn:aws:route53-recovery-control::111122223333:controlpanel/p/safetyrule/r",
                "controlpanel/ID/routingcontrol/ID",
            ),
            (
                "arn:aws:route53-recovery-control::111122223333:controlpanel/p/routingcontrol/",
                "controlpanel/ID/routingcontrol/ID",
            ),
        ] {
            let got = super::arc_arn_problem(arn, "routingcontrol").unwrap_or_default();
            assert!(got.contains(want), "{arn}: {got}");
        }
    }
}
