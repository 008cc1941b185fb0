//! The invariants of DESIGN.md, checked from the outside after a scenario: from the
//! journal, the saved world (its final state and its own log of mutating calls), what
//! each process printed and how it exited, and every file in the state directory.
//!
//! Each check is a pure function returning the violations it found, so a test can feed
//! it evidence that breaks the invariant and see it fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use drpilot::engine::{Event, EventKind, Outcome};
use drpilot::sim::OpRecord;

/// What the checks need to know about one step of the runbook.
#[derive(Clone, Debug, Default)]
pub struct StepInfo {
    /// Steps it runs after.
    pub after: Vec<String>,
    /// Whether it changes the world.
    pub mutating: bool,
    /// Every string in its definition (ids, ARNs, names): what it may change.
    pub names: Vec<String>,
    /// Its action (`aurora.failover`, ...).
    pub action: String,
}

/// One `drpilot` process of a scenario.
#[derive(Clone, Debug, Default)]
pub struct Proc {
    /// `run`, `resume --retry`, `concurrent run`, ...
    pub label: String,
    /// Exit code (`None`: ended by a signal).
    pub exit: Option<i32>,
    /// Killed by the harness (SIGKILL).
    pub killed: bool,
    /// The second run started while the first held the lock.
    pub contender: bool,
    /// Stdout (NDJSON events).
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

impl Proc {
    fn events(&self) -> impl Iterator<Item = Value> + '_ {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    }
}

/// What a hand-written scenario says it is for (`[expect]`), against the journal's
/// events and the last process's exit code.
pub fn expectations(
    expect: &crate::scenario::Expect,
    events: &[Event],
    last_exit: Option<i32>,
) -> Vec<String> {
    use drpilot::cloud::reach::Reachability as R;
    let mut v = Vec::new();
    if let Some(want) = expect.exit
        && last_exit != Some(want)
    {
        v.push(format!(
            "expected the last process to exit {want}, it exited {last_exit:?}"
        ));
    }
    if let Some(want) = &expect.deferred {
        let got: Vec<String> = events
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::RunFinished { deferred, .. } => {
                    Some(deferred.iter().map(|s| s.as_str().to_string()).collect())
                }
                _ => None,
            })
            .unwrap_or_default();
        if got != *want {
            v.push(format!(
                "expected deferred {want:?}, the last run_finished says {got:?}"
            ));
        }
    }
    let ended = |which: fn(&EventKind) -> Option<&drpilot::runbook::StepId>| -> BTreeSet<String> {
        events
            .iter()
            .filter_map(|e| which(&e.kind).map(|s| s.as_str().to_string()))
            .collect()
    };
    let succeeded = ended(|k| match k {
        EventKind::StepSucceeded { step, .. } => Some(step),
        _ => None,
    });
    let skipped = ended(|k| match k {
        EventKind::StepSkipped { step, .. } => Some(step),
        _ => None,
    });
    for (want, got, what) in [
        (&expect.succeeded, &succeeded, "succeeded"),
        (&expect.skipped, &skipped, "skipped"),
    ] {
        for s in want {
            if !got.contains(s) {
                v.push(format!("expected step `{s}` {what}; it did not"));
            }
        }
    }
    // Each target's verdicts in order.
    let mut verdicts: BTreeMap<String, Vec<R>> = BTreeMap::new();
    for e in events {
        if let EventKind::RegionStatus {
            region,
            service,
            status,
            ..
        } = &e.kind
        {
            verdicts
                .entry(format!("{region} {service}"))
                .or_default()
                .push(*status);
        }
    }
    let seen = |t: &str, s: R| verdicts.get(t).is_some_and(|v| v.contains(&s));
    for t in &expect.unreachable {
        if !seen(t, R::Unreachable) {
            v.push(format!("expected `{t}` reported unreachable; it never was"));
        }
    }
    for t in &expect.never_unreachable {
        if seen(t, R::Unreachable) {
            v.push(format!(
                "`{t}` was reported unreachable; it answers (maybe slowly)"
            ));
        }
    }
    for t in &expect.slow {
        if !seen(t, R::Slow) {
            v.push(format!("expected `{t}` reported slow; it never was"));
        }
    }
    for t in &expect.back {
        let back = verdicts.get(t).is_some_and(|v| {
            v.iter()
                .position(|s| *s == R::Unreachable)
                .is_some_and(|i| v[i..].iter().any(|s| *s != R::Unreachable))
        });
        if !back {
            v.push(format!(
                "expected `{t}` reported unreachable, then answering again; verdicts: {:?}",
                verdicts.get(t)
            ));
        }
    }
    v
}

/// Transitive dependencies of each step.
fn ancestors(steps: &BTreeMap<String, StepInfo>) -> HashMap<&str, BTreeSet<&str>> {
    let mut out: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for id in steps.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = steps[id].after.iter().map(String::as_str).collect();
        while let Some(s) = stack.pop() {
            if seen.insert(s)
                && let Some(info) = steps.get(s)
            {
                stack.extend(info.after.iter().map(String::as_str));
            }
        }
        out.insert(id.as_str(), seen);
    }
    out
}

/// The summary of an `executed` that sent nothing: the action read the world and
/// found its work done or in progress.
fn sent_nothing(summary: &str) -> bool {
    let s = summary.to_lowercase();
    ["already", "nothing to do", "not resent"]
        .iter()
        .any(|m| s.contains(m))
}

/// A step that succeeded is never started or executed again, and a mutating step
/// never sends its change twice (two `executed` that both sent something). A resumed
/// run re-emits a step's journaled `executed` unchanged (it goes on to the gate without
/// running the action again): that copy is a record, not a second send.
pub fn no_step_twice(events: &[Event], steps: &BTreeMap<String, StepInfo>) -> Vec<String> {
    let mut v = Vec::new();
    let mut succeeded = BTreeSet::new();
    let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
    let mut previous: BTreeMap<&str, &drpilot::actions::Executed> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            EventKind::StepSucceeded { step, .. } => {
                succeeded.insert(step.as_str());
            }
            EventKind::StepStarted { step, .. } | EventKind::Executed { step, .. }
                if succeeded.contains(step.as_str()) =>
            {
                v.push(format!(
                    "step {step} ran again after it succeeded (journal event {}: {})",
                    i + 1,
                    e.kind.name()
                ));
            }
            _ => {}
        }
        if let EventKind::Executed { step, executed } = &e.kind
            && steps.get(step.as_str()).is_some_and(|s| s.mutating)
            && !sent_nothing(&executed.summary)
            && previous.insert(step.as_str(), executed) != Some(executed)
        {
            let n = sent.entry(step.as_str()).or_default();
            *n += 1;
            if *n == 2 {
                v.push(format!(
                    "step {step} sent its change twice (journal event {}: {})",
                    i + 1,
                    executed.summary
                ));
            }
        }
    }
    v
}

/// The world's own log: no mutating call with the same arguments took effect twice.
/// Canary objects aside: they are a check's own scratch data, each put a new object,
/// and a check re-run after a crash deletes its canary again (an idempotent delete).
pub fn applied_once(ops: &[OpRecord]) -> Vec<String> {
    let canary = |o: &OpRecord| {
        o.operation == "PutObject"
            || o.args["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("drpilot-canary/"))
    };
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.applied && !canary(o)) {
        seen.entry(format!(
            "{} {} {}",
            op.operation,
            op.region.as_deref().unwrap_or("-"),
            op.args
        ))
        .or_default()
        .push(op.seq);
    }
    seen.into_iter()
        .filter(|(_, seqs)| seqs.len() > 1)
        .map(|(k, seqs)| format!("applied {} times (op log seq {seqs:?}): {k}", seqs.len()))
        .collect()
}

/// Rollback undoes dependents before what they depend on (the announced order and the
/// order it happened in), and its failures are reported in `left_changed`.
pub fn rollback_order(events: &[Event], steps: &BTreeMap<String, StepInfo>) -> Vec<String> {
    let anc = ancestors(steps);
    let depends = |a: &str, b: &str| anc.get(a).is_some_and(|s| s.contains(b));
    let mut v = Vec::new();
    let bad_pairs = |order: &[&str], what: &str, v: &mut Vec<String>| {
        for (i, early) in order.iter().enumerate() {
            for late in &order[i + 1..] {
                if depends(late, early) {
                    v.push(format!(
                        "{what}: {early} before {late}, which depends on it (reverse dependency order expected)"
                    ));
                }
            }
        }
    };
    let mut done: Vec<&str> = Vec::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        match &e.kind {
            EventKind::RollbackStarted { steps: order } => {
                let order: Vec<&str> = order.iter().map(|s| s.as_str()).collect();
                bad_pairs(&order, "rollback_started.steps", &mut v);
            }
            EventKind::StepRolledBack { step, .. } => done.push(step.as_str()),
            EventKind::RollbackFailed { step, .. } => {
                done.push(step.as_str());
                failed.insert(step.as_str());
            }
            EventKind::RollbackFinished {
                clean,
                left_changed,
            } => {
                let left: BTreeSet<&str> = left_changed.iter().map(|s| s.as_str()).collect();
                for f in &failed {
                    if !left.contains(f) {
                        v.push(format!(
                            "rollback of {f} failed but rollback_finished.left_changed does not name it"
                        ));
                    }
                }
                if *clean != left.is_empty() {
                    v.push(format!(
                        "rollback_finished says clean={clean} with left_changed {left_changed:?}"
                    ));
                }
                failed.clear();
            }
            _ => {}
        }
    }
    let mut firsts: Vec<&str> = Vec::new();
    for s in done {
        if !firsts.contains(&s) {
            firsts.push(s);
        }
    }
    bad_pairs(&firsts, "rolled back", &mut v);
    v
}

/// The resources a scenario's runbooks can change, as `kind:id` -> state, from a saved
/// world's `state`.
pub fn resources(state: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let obj = |k: &str| {
        state
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let clusters = obj("clusters");
    for (id, g) in obj("global_clusters") {
        let writers: Vec<&Value> = clusters
            .values()
            .filter(|c| c["global"].as_str() == Some(&id) && c["writer"] == true)
            .map(|c| &c["arn"])
            .collect();
        out.insert(
            format!("global_cluster:{id}"),
            serde_json::json!({"writers": writers, "moving_to": g["op"]["to_arn"]}),
        );
    }
    for c in clusters.values() {
        if let Some(name) = c["name"].as_str() {
            out.insert(
                format!("cluster:{name}"),
                serde_json::json!({"global": c["global"]}),
            );
        }
    }
    let groups = obj("replication_groups");
    for (id, d) in obj("datastores") {
        let members: BTreeMap<&str, &Value> = groups
            .values()
            .filter(|g| g["global"].as_str() == Some(&id))
            .filter_map(|g| Some((g["id"].as_str()?, &g["role"])))
            .collect();
        out.insert(
            format!("datastore:{id}"),
            serde_json::json!({"members": members, "op": d["op"]}),
        );
    }
    for (id, g) in &groups {
        out.insert(
            format!("replication_group:{id}"),
            serde_json::json!({"global": g["global"]}),
        );
    }
    for (arn, r) in obj("routing_controls") {
        out.insert(format!("routing_control:{arn}"), r["state"].clone());
    }
    for (id, h) in obj("health_checks") {
        out.insert(
            format!("health_check:{id}"),
            serde_json::json!({"inverted": h["inverted"], "disabled": h["disabled"]}),
        );
    }
    for (id, z) in obj("zones") {
        out.insert(format!("zone:{id}"), z["records"].clone());
    }
    for (name, g) in obj("asgs") {
        out.insert(
            format!("autoscaling_group:{name}"),
            serde_json::json!([g["min"], g["desired"], g["max"]]),
        );
    }
    // By region and name: each region runs services of the same names (`worker`,
    // `api`); the part after the colon is the name the step that scales it gives
    // (`service = "worker"`).
    for s in obj("ecs_services").values() {
        if let (Some(region), Some(name)) = (s["region"].as_str(), s["name"].as_str()) {
            out.insert(format!("ecs_service@{region}:{name}"), s["desired"].clone());
        }
    }
    out
}

/// Every resource is at its original state after a clean rollback (or a failed
/// preflight); otherwise each changed one is at the state a step the run names moved
/// it to: a step the journal shows started and did not report rolled back (or whose
/// rollback `left_changed` names). A resource changed by no such step is one the run
/// does not say is changed.
pub fn final_state(
    events: &[Event],
    initial: &BTreeMap<String, Value>,
    last: &BTreeMap<String, Value>,
    steps: &BTreeMap<String, StepInfo>,
) -> Vec<String> {
    let changed: Vec<&String> = last
        .iter()
        .filter(|(k, v)| initial.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(initial.keys().filter(|k| !last.contains_key(*k)))
        .collect();
    let outcome = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::RunFinished { outcome, .. } => Some(*outcome),
        _ => None,
    });
    let show = |k: &str| {
        format!(
            "{k}: {} -> {}",
            initial.get(k).unwrap_or(&Value::Null),
            last.get(k).unwrap_or(&Value::Null)
        )
    };
    if outcome == Some(Outcome::RolledBack) || outcome == Some(Outcome::PreflightFailed) {
        return changed
            .iter()
            .map(|k| {
                format!(
                    "run ended {outcome:?} but a resource is not at its original state: {}",
                    show(k)
                )
            })
            .collect();
    }
    let mut started: BTreeSet<&str> = BTreeSet::new();
    let mut rolled_back: BTreeSet<&str> = BTreeSet::new();
    let mut left: BTreeSet<&str> = BTreeSet::new();
    let mut captured: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in events {
        match &e.kind {
            EventKind::StepStarted { step, .. } => {
                started.insert(step.as_str());
            }
            EventKind::StepRolledBack { step, .. } => {
                rolled_back.insert(step.as_str());
            }
            EventKind::RollbackFinished { left_changed, .. } => {
                left.extend(left_changed.iter().map(|s| s.as_str()));
            }
            EventKind::Captured { step, captured: c } => {
                strings(&c.0, captured.entry(step.as_str()).or_default());
            }
            _ => {}
        }
    }
    let named: Vec<&str> = started
        .iter()
        .copied()
        .filter(|s| !rolled_back.contains(s) || left.contains(s))
        .collect();
    let names_of = |step: &str| {
        steps
            .get(step)
            .map(|s| s.names.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(captured.get(step).cloned().unwrap_or_default())
    };
    changed
        .iter()
        .filter(|k| {
            let id = k.split_once(':').map_or(k.as_str(), |(_, id)| id);
            !named
                .iter()
                .any(|s| names_of(s).any(|n| n == id || n.contains(id)))
        })
        .map(|k| {
            format!(
                "resource changed though no step the run left changed touches it: {}",
                show(k)
            )
        })
        .collect()
}

/// The resource a step's action moves, as the emulator checks key it (see
/// `emulator::read_world`): Aurora's global cluster, Valkey's datastore, or the
/// routing controls.
pub fn emulator_resource(action: &str) -> Option<&'static str> {
    use drpilot::runbook::catalogue::{Kind, lookup};
    // Exhaustive: a new action says here whether the emulator checks move with it.
    match lookup(action)?.kind {
        Kind::AuroraFailover | Kind::AuroraSwitchover | Kind::AuroraDetachPromote => {
            Some("global_cluster")
        }
        Kind::ValkeyFailover => Some("datastore"),
        Kind::Route53RoutingControl => Some("routing_control"),
        // Record sets and health checks are not among the emulator's checked
        // resources; the rest change nothing or nothing the emulator records.
        Kind::Route53Cutover
        | Kind::Route53HealthCheckFlip
        | Kind::AuroraSnapshotLostWrites
        // A capacity range moves no writer: the emulator's checks do not follow it.
        | Kind::AuroraServerlessCapacity
        // A scale moves no writer and no traffic: the emulator's checks do not follow it.
        | Kind::EcsScaleService
        | Kind::AutoscalingSetCapacity
        | Kind::S3ReplicationCheck
        | Kind::Approval
        | Kind::Wait
        | Kind::AuroraWriterInRegion
        | Kind::AuroraLagBelow
        | Kind::AuroraClusterAvailable
        | Kind::AuroraGlobalEndpoint
        | Kind::ValkeyPrimaryInRegion
        | Kind::ValkeyAvailable
        | Kind::Route53ChangeInsync
        | Kind::Route53RecordPointsTo
        | Kind::Route53HealthCheckHealthy
        | Kind::Route53RoutingControlState
        | Kind::S3CanaryReplicated
        | Kind::HttpCheck
        | Kind::PostgresCheck
        | Kind::ValkeyCheck
        | Kind::PostgresHeartbeat
        | Kind::ValkeyHeartbeat
        | Kind::DnsCheck => None,
    }
}

/// The emulator's own history of applied changes (`/_drpilot/rds`, `/elasticache` and
/// `/arc` histories, recorded after the topology was seeded): no change was applied
/// twice. Two identical moves of one resource in a row (the same target twice, the
/// same routing-control update twice, the same member disassociated twice) are a
/// change sent again; a move and its rollback back are not. And every move must be
/// accounted for by the journal: a resource cannot move more often than steps that
/// move it started plus rollbacks of those steps ran.
pub fn emulator_applied_once(
    history: &Value,
    events: &[Event],
    steps: &BTreeMap<String, StepInfo>,
) -> Vec<String> {
    let mut v = Vec::new();
    let list = |k: &str| history[k].as_array().cloned().unwrap_or_default();
    // Moves per resource kind, in the order they were applied: (resource, to).
    let mut moves: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for r in list("rds")
        .iter()
        .filter(|r| r["cancelled"] != true && r["kind"] != "detach")
    {
        moves.entry("global_cluster").or_default().push((
            r["global_cluster"].as_str().unwrap_or("?").to_string(),
            format!("{} to {}", r["kind"].as_str().unwrap_or("?"), r["to"]),
        ));
    }
    for r in list("rds").iter().filter(|r| r["kind"] == "detach") {
        moves.entry("global_cluster").or_default().push((
            r["global_cluster"].as_str().unwrap_or("?").to_string(),
            format!("detach {}", r["cluster"]),
        ));
    }
    for r in list("elasticache") {
        let what = match r["kind"].as_str() {
            Some("failover") => format!("failover to {}", r["to"]),
            Some(k) => format!("{k} {}", r["member"]),
            None => continue,
        };
        moves.entry("datastore").or_default().push((
            r["global_replication_group"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            what,
        ));
    }
    for r in list("arc") {
        let changes = r["changes"].as_object().cloned().unwrap_or_default();
        let target: BTreeMap<&String, &Value> =
            changes.iter().map(|(arn, c)| (arn, &c["to"])).collect();
        let noop = changes.values().all(|c| c["from"] == c["to"]);
        // A no-op update after an identical one is a resend; a first one (or a
        // rollback restoring what a failed update never changed) is idempotent.
        moves.entry("routing_control").or_default().push((
            "routing controls".into(),
            format!(
                "{}{}",
                serde_json::to_string(&target).unwrap_or_default(),
                if noop { " (nothing changed)" } else { "" }
            ),
        ));
    }
    for (kind, list) in &moves {
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for (res, what) in list {
            let base = what.trim_end_matches(" (nothing changed)");
            let prev = last.insert(res, what);
            let same = prev.is_some_and(|p| p.trim_end_matches(" (nothing changed)") == base);
            // Route 53 ARC updates are idempotent sets: a repeat changes nothing, so
            // only a repeat that changed nothing is a resend (the first may have been
            // a rollback of a change that never happened).
            if same && (*kind != "routing_control" || what.ends_with("(nothing changed)")) {
                v.push(format!(
                    "the emulator applied the same change to {res} twice in a row: {what}"
                ));
            }
        }
        // Everything that may move this kind of resource: steps started, rollbacks run.
        let moving: BTreeSet<&str> = steps
            .iter()
            .filter(|(_, s)| emulator_resource(&s.action) == Some(kind))
            .map(|(id, _)| id.as_str())
            .collect();
        let accounted = events
            .iter()
            .filter(|e| match &e.kind {
                EventKind::StepStarted { step, .. }
                | EventKind::StepRolledBack { step, .. }
                | EventKind::RollbackFailed { step, .. } => moving.contains(step.as_str()),
                _ => false,
            })
            .count();
        let applied = list
            .iter()
            .filter(|(_, w)| !w.ends_with("(nothing changed)"))
            .count();
        if applied > accounted {
            v.push(format!(
                "the emulator applied {applied} changes to {kind} but the journal accounts for {accounted} (step starts and rollbacks of {moving:?}): {:?}",
                list.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>()
            ));
        }
    }
    v
}

/// After a run that succeeded, every resource a step moved is where the step was to
/// move it: `targets` maps a resource key to the step that moves it and the states
/// that count as arrived (Valkey's, for example: the target member primary, or the
/// target member disassociated to stand alone). A step skipped or rolled back is not
/// held to it.
pub fn at_target(
    events: &[Event],
    last: &BTreeMap<String, Value>,
    targets: &BTreeMap<String, (String, Vec<Value>)>,
) -> Vec<String> {
    let outcome = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::RunFinished { outcome, .. } => Some(*outcome),
        _ => None,
    });
    if outcome != Some(Outcome::Succeeded) {
        return Vec::new();
    }
    let mut succeeded = BTreeSet::new();
    for e in events {
        match &e.kind {
            EventKind::StepSucceeded { step, .. } => {
                succeeded.insert(step.as_str());
            }
            EventKind::StepRolledBack { step, .. } | EventKind::StepSkipped { step, .. } => {
                succeeded.remove(step.as_str());
            }
            _ => {}
        }
    }
    targets
        .iter()
        .filter(|(_, (step, _))| succeeded.contains(step.as_str()))
        .filter_map(|(key, (step, ok))| {
            let now = last.get(key).unwrap_or(&Value::Null);
            (!ok.contains(now)).then(|| {
                format!(
                    "run succeeded and step {step} succeeded, but {key} is {now}, not its target {}",
                    Value::Array(ok.clone())
                )
            })
        })
        .collect()
}

/// `drpilot status RUN_ID --output json` says what the journal says: the last
/// `run_finished` outcome, and every step the journal saw succeed as succeeded.
pub fn status_agrees(status: &Value, events: &[Event]) -> Vec<String> {
    let mut v = Vec::new();
    let Some(last) = events.last() else {
        return v;
    };
    if let EventKind::RunFinished { outcome, .. } = &last.kind {
        // The same token as the event's `outcome` ("rolled_back").
        let want = serde_json::to_value(outcome).unwrap_or_default();
        if status["status"] != want {
            v.push(format!(
                "drpilot status says {} but the journal's run_finished says {want}",
                status["status"]
            ));
        }
    }
    let mut succeeded = BTreeSet::new();
    let mut rollback_failed = BTreeSet::new();
    for e in events {
        match &e.kind {
            EventKind::StepSucceeded { step, .. } => {
                succeeded.insert(step.as_str());
            }
            EventKind::RollbackFailed { step, .. } => {
                rollback_failed.insert(step.as_str());
            }
            _ => {}
        }
    }
    for s in status["steps"].as_array().into_iter().flatten() {
        let (Some(step), Some(state)) = (s["step"].as_str(), s["state"].as_str()) else {
            continue;
        };
        // A succeeded step rolled back since shows as rolled back, and a step whose
        // rollback failed (one that succeeded, or one a killed process was in the
        // middle of) as `rollback_failed`.
        let agrees = match state {
            "succeeded" => succeeded.contains(step),
            "rollback_failed" => rollback_failed.contains(step),
            "rolled_back" => true,
            _ => !succeeded.contains(step),
        };
        if !agrees {
            v.push(format!(
                "drpilot status says step {step} is {state}, the journal disagrees"
            ));
        }
    }
    v
}

/// Every string inside a JSON value.
pub fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Two runs of one runbook never hold the lock at once: a run started while another
/// holds it exits 6 without starting, and only one run exists in the state directory.
pub fn lock_exclusive(procs: &[Proc], runs_in_state: usize) -> Vec<String> {
    let mut v = Vec::new();
    for p in procs.iter().filter(|p| p.contender) {
        if p.exit != Some(6) {
            v.push(format!(
                "{} ran while another run held the lock: exit {:?} (expected 6)",
                p.label, p.exit
            ));
        }
        if p.events().any(|e| e["event"] == "run_started") {
            v.push(format!(
                "{} printed run_started while another run held the lock",
                p.label
            ));
        }
    }
    if procs.iter().any(|p| p.contender) && runs_in_state != 1 {
        v.push(format!(
            "{runs_in_state} runs in the state directory after a refused concurrent run (expected 1)"
        ));
    }
    v
}

/// No canary secret appears in any output or file.
pub fn no_secrets(texts: &[(String, String)], canaries: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    for (place, text) in texts {
        for c in canaries {
            if !c.is_empty() && text.contains(c.as_str()) {
                v.push(format!(
                    "a secret ({}...) leaked into {place}",
                    &c[..c.len().min(6)]
                ));
            }
        }
    }
    v
}

/// Exit codes are ones DESIGN.md documents for what happened, and a process that was
/// not killed and ran the engine says how it ended (`run_finished` last).
pub fn exit_codes(procs: &[Proc]) -> Vec<String> {
    let mut v = Vec::new();
    for p in procs.iter().filter(|p| !p.killed && !p.contender) {
        let usage_ok = p.exit == Some(2)
            && p.label.starts_with("resume")
            && (p.stderr.contains("already ended") || p.stderr.contains("has failed steps"));
        match p.exit {
            Some(0 | 1 | 3 | 4 | 5) => {
                let last = p.events().last();
                let finished = last.as_ref().is_some_and(|e| e["event"] == "run_finished");
                if !finished {
                    v.push(format!(
                        "{} exited {:?} without run_finished as its last event",
                        p.label, p.exit
                    ));
                } else if let Some(e) = last
                    && e["exit_code"].as_i64() != p.exit.map(i64::from)
                {
                    v.push(format!(
                        "{} exited {:?} but run_finished says exit_code {}",
                        p.label, p.exit, e["exit_code"]
                    ));
                }
            }
            _ if usage_ok => {}
            other => {
                let tail: String = p
                    .stderr
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ");
                v.push(format!("{} exited {other:?}: {tail}", p.label));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(lines: &[Value]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l["run_id"] = json!("r");
                l["at"] = json!("2026-01-01T00:00:00Z");
                serde_json::from_value(l.clone()).unwrap_or_else(|e| panic!("{e}: {l}"))
            })
            .collect()
    }

    fn chain() -> BTreeMap<String, StepInfo> {
        // a <- b <- c, all mutating.
        let mut m = BTreeMap::new();
        for (id, after) in [("a", vec![]), ("b", vec!["a"]), ("c", vec!["b"])] {
            m.insert(
                id.to_string(),
                StepInfo {
                    after: after.into_iter().map(String::from).collect(),
                    mutating: true,
                    names: vec![format!("res-{id}")],
                    action: String::new(),
                },
            );
        }
        m
    }

    fn executed(step: &str, summary: &str) -> Value {
        json!({"event": "executed", "step": step, "executed": {"summary": summary, "output": null}})
    }

    #[test]
    fn a_scenarios_expectations_are_checked_against_its_events() {
        use crate::scenario::Expect;
        let region = |r: &str, s: &str, status: &str| json!({"event": "region_status", "region": r, "service": s, "status": status, "decided_by": "probe"});
        let ev = events(&[
            region("us-east-1", "rds", "unreachable"),
            region("us-east-1", "s3", "slow"),
            json!({"event": "step_skipped", "step": "check", "reason": "down"}),
            region("us-east-1", "rds", "reachable"),
            json!({"event": "step_succeeded", "step": "promote", "summary": "ok"}),
            json!({"event": "run_finished", "outcome": "succeeded", "exit_code": 0, "makespan_secs": 1.0, "deferred": ["keep"]}),
        ]);
        let ok = Expect {
            exit: Some(0),
            deferred: Some(vec!["keep".into()]),
            succeeded: vec!["promote".into()],
            skipped: vec!["check".into()],
            unreachable: vec!["us-east-1 rds".into()],
            never_unreachable: vec!["us-east-1 s3".into()],
            slow: vec!["us-east-1 s3".into()],
            back: vec!["us-east-1 rds".into()],
        };
        assert_eq!(expectations(&ok, &ev, Some(0)), Vec::<String>::new());
        let wrong = Expect {
            exit: Some(0),
            deferred: Some(vec![]),
            succeeded: vec!["check".into()],
            skipped: vec!["promote".into()],
            unreachable: vec!["us-east-1 s3".into()],
            never_unreachable: vec!["us-east-1 rds".into()],
            slow: vec!["us-east-1 rds".into()],
            back: vec!["us-east-1 s3".into()],
        };
        let v = expectations(&wrong, &ev, Some(3));
        assert_eq!(v.len(), 8, "one per wrong expectation: {v:#?}");
    }

    #[test]
    fn a_step_run_again_after_success_is_caught() {
        let ok = events(&[
            json!({"event": "step_started", "step": "a", "attempt": 1}),
            executed("a", "Failover sent"),
            json!({"event": "step_succeeded", "step": "a", "summary": "ok"}),
        ]);
        assert!(no_step_twice(&ok, &chain()).is_empty());
        let mut bad = ok.clone();
        bad.extend(events(&[
            json!({"event": "step_started", "step": "a", "attempt": 1}),
        ]));
        assert_eq!(no_step_twice(&bad, &chain()).len(), 1);
    }

    #[test]
    fn a_change_sent_twice_is_caught_but_already_done_is_not() {
        let fine = events(&[
            executed("a", "Failover sent"),
            executed("a", "already done: x"),
        ]);
        assert!(no_step_twice(&fine, &chain()).is_empty());
        // A resumed run re-emits the journaled result unchanged.
        let replayed = events(&[
            executed("a", "Failover sent"),
            json!({"event": "run_started", "event_version": 1, "runbook": "rb", "mode": "planned", "sim": true, "resumed": true}),
            executed("a", "Failover sent"),
        ]);
        assert!(no_step_twice(&replayed, &chain()).is_empty());
        let bad = events(&[
            executed("a", "Failover sent; lag 1s"),
            executed("a", "Failover sent; lag 2s"),
        ]);
        let v = no_step_twice(&bad, &chain());
        assert!(v[0].contains("twice"), "{v:?}");
    }

    fn op(seq: u64, operation: &str, applied: bool) -> OpRecord {
        serde_json::from_value(json!({
            "seq": seq, "at": {"secs": 0, "nanos": 0}, "service": "rds", "operation": operation,
            "region": "us-west-2", "args": {"target": "x"}, "applied": applied,
            "answer": "ok", "injected": false
        }))
        .unwrap()
    }

    #[test]
    fn a_mutation_applied_twice_is_caught() {
        let fine = [
            op(0, "FailoverGlobalCluster", true),
            op(1, "FailoverGlobalCluster", false),
        ];
        assert!(applied_once(&fine).is_empty());
        let bad = [
            op(0, "FailoverGlobalCluster", true),
            op(1, "FailoverGlobalCluster", true),
        ];
        assert_eq!(applied_once(&bad).len(), 1);
        // Canary objects are new objects each time.
        assert!(applied_once(&[op(0, "PutObject", true), op(1, "PutObject", true)]).is_empty());
    }

    #[test]
    fn rollback_in_dependency_order_is_caught() {
        let fine = events(&[
            json!({"event": "rollback_started", "steps": ["c", "b", "a"]}),
            json!({"event": "step_rolled_back", "step": "c", "summary": ""}),
            json!({"event": "step_rolled_back", "step": "b", "summary": ""}),
            json!({"event": "step_rolled_back", "step": "a", "summary": ""}),
            json!({"event": "rollback_finished", "clean": true, "left_changed": []}),
        ]);
        assert!(rollback_order(&fine, &chain()).is_empty());
        let announced = events(&[json!({"event": "rollback_started", "steps": ["a", "c"]})]);
        assert_eq!(rollback_order(&announced, &chain()).len(), 1);
        let done = events(&[
            json!({"event": "step_rolled_back", "step": "b", "summary": ""}),
            json!({"event": "step_rolled_back", "step": "c", "summary": ""}),
        ]);
        assert_eq!(rollback_order(&done, &chain()).len(), 1);
    }

    #[test]
    fn a_swallowed_rollback_failure_is_caught() {
        let bad = events(&[
            json!({"event": "rollback_failed", "step": "a", "error": "boom"}),
            json!({"event": "rollback_finished", "clean": true, "left_changed": []}),
        ]);
        let v = rollback_order(&bad, &chain());
        assert!(v.iter().any(|m| m.contains("does not name it")), "{v:?}");
        let fine = events(&[
            json!({"event": "rollback_failed", "step": "a", "error": "boom"}),
            json!({"event": "rollback_finished", "clean": false, "left_changed": ["a"]}),
        ]);
        assert!(rollback_order(&fine, &chain()).is_empty());
    }

    fn world(primary: &str, rc: &str) -> Value {
        json!({
            "clusters": {
                "arn:1": {"arn": "arn:1", "name": "c1", "global": "g", "writer": primary == "c1"},
                "arn:2": {"arn": "arn:2", "name": "c2", "global": "g", "writer": primary == "c2"},
            },
            "global_clusters": {"g": {"id": "g", "op": null}},
            "routing_controls": {"res-b": {"state": rc}},
        })
    }

    #[test]
    fn resources_not_back_after_a_clean_rollback_are_caught() {
        let initial = resources(&world("c1", "On"));
        let moved = resources(&world("c2", "On"));
        let rolled = events(&[
            json!({"event": "run_finished", "outcome": "rolled_back", "exit_code": 1, "makespan_secs": 1.0}),
        ]);
        assert!(final_state(&rolled, &initial, &initial, &chain()).is_empty());
        let v = final_state(&rolled, &initial, &moved, &chain());
        assert!(v[0].contains("global_cluster:g"), "{v:?}");
    }

    #[test]
    fn a_changed_resource_the_run_does_not_name_is_caught() {
        let initial = resources(&world("c1", "On"));
        let flipped = resources(&world("c1", "Off"));
        // b names res-b: changed by a step that started, the run says so.
        let started = events(&[json!({"event": "step_started", "step": "b", "attempt": 1})]);
        assert!(final_state(&started, &initial, &flipped, &chain()).is_empty());
        // Only a started: nothing names res-b.
        let other = events(&[json!({"event": "step_started", "step": "a", "attempt": 1})]);
        assert_eq!(final_state(&other, &initial, &flipped, &chain()).len(), 1);
        // b reported rolled back, yet its resource is still changed.
        let mut rb = started.clone();
        rb.extend(events(&[
            json!({"event": "step_rolled_back", "step": "b", "summary": ""}),
            json!({"event": "rollback_finished", "clean": false, "left_changed": ["a"]}),
        ]));
        assert_eq!(final_state(&rb, &initial, &flipped, &chain()).len(), 1);
        // Unless its rollback is said to have left it changed.
        let mut left = started.clone();
        left.extend(events(&[
            json!({"event": "rollback_failed", "step": "b", "error": "x"}),
            json!({"event": "rollback_finished", "clean": false, "left_changed": ["b"]}),
        ]));
        assert!(final_state(&left, &initial, &flipped, &chain()).is_empty());
    }

    #[test]
    fn a_status_that_contradicts_the_journal_is_caught() {
        let e = events(&[
            json!({"event": "step_succeeded", "step": "a", "summary": ""}),
            json!({"event": "run_finished", "outcome": "paused", "exit_code": 3, "makespan_secs": 1.0}),
        ]);
        let good = json!({"status": "paused", "steps": [{"step": "a", "state": "succeeded"}, {"step": "b", "state": "failed"}]});
        assert!(status_agrees(&good, &e).is_empty());
        let wrong_outcome = json!({"status": "succeeded", "steps": []});
        assert_eq!(status_agrees(&wrong_outcome, &e).len(), 1);
        let wrong_step =
            json!({"status": "paused", "steps": [{"step": "b", "state": "succeeded"}]});
        assert_eq!(status_agrees(&wrong_step, &e).len(), 1);
        let lost_step = json!({"status": "paused", "steps": [{"step": "a", "state": "pending"}]});
        assert_eq!(status_agrees(&lost_step, &e).len(), 1);
        // A succeeded step rolled back since.
        let rolled = events(&[
            json!({"event": "step_succeeded", "step": "a", "summary": ""}),
            json!({"event": "run_finished", "outcome": "rolled_back", "exit_code": 1, "makespan_secs": 1.0}),
        ]);
        let st = json!({"status": "rolled_back", "steps": [{"step": "a", "state": "rolled_back"}]});
        assert!(status_agrees(&st, &rolled).is_empty());
        // `rollback_failed` only for a step whose rollback the journal saw fail.
        let made_up =
            json!({"status": "rolled_back", "steps": [{"step": "a", "state": "rollback_failed"}]});
        assert_eq!(status_agrees(&made_up, &rolled).len(), 1);
        let failed_rollback = events(&[
            json!({"event": "step_succeeded", "step": "a", "summary": ""}),
            json!({"event": "rollback_failed", "step": "a", "error": "refused"}),
            json!({"event": "run_finished", "outcome": "needs_attention", "exit_code": 5, "makespan_secs": 1.0}),
        ]);
        let st = json!({"status": "needs_attention", "steps": [{"step": "a", "state": "rollback_failed"}]});
        assert!(status_agrees(&st, &failed_rollback).is_empty());
        // Another spelling of the outcome is a disagreement.
        let respelt = json!({"status": "needsattention", "steps": []});
        assert_eq!(status_agrees(&respelt, &failed_rollback).len(), 1);
    }

    #[test]
    fn a_second_lock_holder_is_caught() {
        let refused = Proc {
            label: "concurrent run".into(),
            exit: Some(6),
            contender: true,
            ..Proc::default()
        };
        assert!(lock_exclusive(std::slice::from_ref(&refused), 1).is_empty());
        let ran = Proc {
            exit: Some(0),
            stdout: "{\"event\":\"run_started\"}\n".into(),
            ..refused.clone()
        };
        assert_eq!(lock_exclusive(&[ran], 2).len(), 3);
    }

    #[test]
    fn a_leaked_secret_is_caught() {
        let canaries = vec!["CANARY-abc123".to_string()];
        assert!(no_secrets(&[("stdout".into(), "fine".into())], &canaries).is_empty());
        let v = no_secrets(&[("journal".into(), "pw=CANARY-abc123".into())], &canaries);
        assert!(
            v[0].contains("journal") && !v[0].contains("abc123"),
            "{v:?}"
        );
    }

    #[test]
    fn undocumented_exits_and_silent_ends_are_caught() {
        let ok = Proc {
            label: "run".into(),
            exit: Some(3),
            stdout: "{\"event\":\"run_finished\",\"exit_code\":3}\n".into(),
            ..Proc::default()
        };
        assert!(exit_codes(std::slice::from_ref(&ok)).is_empty());
        let panicked = Proc {
            exit: Some(101),
            ..ok.clone()
        };
        assert_eq!(exit_codes(&[panicked]).len(), 1);
        let silent = Proc {
            stdout: String::new(),
            ..ok.clone()
        };
        assert_eq!(exit_codes(&[silent]).len(), 1);
        let killed = Proc {
            exit: None,
            killed: true,
            ..ok
        };
        assert!(exit_codes(&[killed]).is_empty());
    }
    fn emu_steps() -> BTreeMap<String, StepInfo> {
        let mut m = BTreeMap::new();
        for (id, action) in [
            ("aurora", "aurora.failover"),
            ("valkey", "valkey.failover"),
            ("dns", "route53.routing_control"),
        ] {
            m.insert(
                id.to_string(),
                StepInfo {
                    mutating: true,
                    action: action.into(),
                    ..StepInfo::default()
                },
            );
        }
        m
    }

    #[test]
    fn a_change_the_emulator_applied_twice_is_caught() {
        let started = events(&[
            json!({"event": "step_started", "step": "aurora", "attempt": 1}),
            json!({"event": "step_started", "step": "valkey", "attempt": 1}),
            json!({"event": "step_started", "step": "dns", "attempt": 1}),
        ]);
        let fo =
            |to: &str| json!({"global_cluster": "g", "kind": "failover", "from": "x", "to": to});
        let arc = |from: &str, to: &str| json!({"changes": {"arn:use1": {"from": from, "to": to}}, "region": "us-west-2"});
        let once = json!({
            "rds": [fo("usw2")],
            "elasticache": [{"global_replication_group": "d", "kind": "failover", "from": "a", "to": "b"}],
            "arc": [arc("On", "Off")],
        });
        assert!(emulator_applied_once(&once, &started, &emu_steps()).is_empty());
        // Two identical failovers in a row.
        let twice = json!({"rds": [fo("usw2"), fo("usw2")]});
        let mut again = started.clone();
        again.extend(events(&[
            json!({"event": "step_started", "step": "aurora", "attempt": 2}),
        ]));
        let v = emulator_applied_once(&twice, &again, &emu_steps());
        assert!(v.iter().any(|m| m.contains("twice in a row")), "{v:?}");
        // A failover and its rollback back is fine, when the journal shows the rollback.
        let there_and_back = json!({"rds": [fo("usw2"), fo("use1")]});
        let mut rolled = started.clone();
        rolled.extend(events(&[
            json!({"event": "step_rolled_back", "step": "aurora", "summary": ""}),
        ]));
        assert!(emulator_applied_once(&there_and_back, &rolled, &emu_steps()).is_empty());
        // Without it, the second move is one the journal does not account for.
        let v = emulator_applied_once(&there_and_back, &started, &emu_steps());
        assert!(v.iter().any(|m| m.contains("accounts for 1")), "{v:?}");
        // The same routing-control update sent again changes nothing the second time.
        let resent = json!({"arc": [arc("On", "Off"), arc("Off", "Off")]});
        let v = emulator_applied_once(&resent, &started, &emu_steps());
        assert!(v.iter().any(|m| m.contains("twice in a row")), "{v:?}");
        // A first update that changes nothing (a rollback of a change never made) is fine.
        let idle = json!({"arc": [arc("On", "On")]});
        assert!(emulator_applied_once(&idle, &started, &emu_steps()).is_empty());
        // The same member disassociated twice.
        let dis = json!({"global_replication_group": "d", "kind": "disassociate", "member": "m", "region": "r"});
        let v = emulator_applied_once(
            &json!({"elasticache": [dis.clone(), dis]}),
            &again,
            &emu_steps(),
        );
        assert!(v.iter().any(|m| m.contains("twice in a row")), "{v:?}");
    }

    #[test]
    fn a_successful_run_that_left_a_resource_short_of_its_target_is_caught() {
        let targets: BTreeMap<String, (String, Vec<Value>)> = [(
            "global_cluster:g".to_string(),
            (
                "aurora".to_string(),
                vec![json!({"writers": ["us-west-2"]})],
            ),
        )]
        .into_iter()
        .collect();
        let at = |r: &str| -> BTreeMap<String, Value> {
            [("global_cluster:g".to_string(), json!({"writers": [r]}))]
                .into_iter()
                .collect()
        };
        let ok = events(&[
            json!({"event": "step_succeeded", "step": "aurora", "summary": ""}),
            json!({"event": "run_finished", "outcome": "succeeded", "exit_code": 0, "makespan_secs": 1.0}),
        ]);
        assert!(at_target(&ok, &at("us-west-2"), &targets).is_empty());
        let v = at_target(&ok, &at("us-east-1"), &targets);
        assert!(v[0].contains("not its target"), "{v:?}");
        // A skipped step is not held to its target.
        let skipped = events(&[
            json!({"event": "step_skipped", "step": "aurora", "reason": "operator"}),
            json!({"event": "run_finished", "outcome": "succeeded", "exit_code": 0, "makespan_secs": 1.0}),
        ]);
        assert!(at_target(&skipped, &at("us-east-1"), &targets).is_empty());
        // Nor is a run that did not succeed (final_state covers those).
        let paused = events(&[
            json!({"event": "step_succeeded", "step": "aurora", "summary": ""}),
            json!({"event": "run_finished", "outcome": "paused", "exit_code": 3, "makespan_secs": 1.0}),
        ]);
        assert!(at_target(&paused, &at("us-east-1"), &targets).is_empty());
    }
}
