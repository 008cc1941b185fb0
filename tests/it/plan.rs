//! Plans: the shipped runbooks' plans are snapshot-tested in every format and checked
//! against the plan's invariants; small runbooks pin the planner's arithmetic.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use drpilot::plan::{Plan, render};
use drpilot::runbook::{self, Runbook};

use crate::{drpilot, shipped, text};

fn load(path: &Path) -> Runbook {
    match runbook::load(path) {
        Ok(l) => l.runbook,
        Err(runbook::LoadError::Invalid(e)) => {
            panic!("{}", e.render(runbook::RenderStyle::Short))
        }
        Err(e) => panic!("{e}"),
    }
}

fn load_str(text: &str) -> Runbook {
    match runbook::load_str(Path::new("t.toml"), text) {
        Ok(l) => l.runbook,
        Err(e) => panic!("{}", e.render(runbook::RenderStyle::Short)),
    }
}

/// Checks what every plan must satisfy; used on shipped and generated runbooks.
pub fn check_invariants(plan: &Plan<'_>) {
    let n = plan.runbook.steps.len();
    let mut seen = vec![0; n];
    for (l, level) in plan.levels.iter().enumerate() {
        assert!(!level.is_empty(), "level {l} is empty");
        for &i in level {
            seen[i] += 1;
            assert_eq!(plan.level_of[i], l);
            for &d in &plan.deps[i] {
                assert!(
                    plan.level_of[d] < l,
                    "step {i} is not after its dependency {d}"
                );
                // Nothing starts before what it runs after has finished.
                let d_finish = plan.earliest_start[d] + plan.runbook.steps[d].expected;
                assert!(plan.earliest_start[i] >= d_finish);
            }
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "every step in exactly one level"
    );
    // The critical path is a chain of dependencies whose length is the makespan.
    if n > 0 {
        let path = &plan.critical_path;
        assert!(
            plan.deps[path[0]].is_empty(),
            "the critical path starts at a root"
        );
        for w in path.windows(2) {
            assert!(
                plan.deps[w[1]].contains(&w[0]),
                "critical path is not a chain"
            );
        }
        let length: Duration = path.iter().map(|&i| plan.runbook.steps[i].expected).sum();
        assert_eq!(length, plan.makespan);
        let latest = (0..n)
            .map(|i| plan.earliest_start[i] + plan.runbook.steps[i].expected)
            .max()
            .unwrap();
        assert_eq!(latest, plan.makespan);
    }
    // The RTO ends when service is expected back: the `recovered_when` steps' finish
    // (the makespan without them); housekeeping after it is not downtime.
    assert!(plan.recovered_at <= plan.makespan);
    let expected_back = plan
        .recovered_when
        .iter()
        .map(|&i| plan.earliest_start[i] + plan.runbook.steps[i].expected)
        .max()
        .unwrap_or(plan.makespan);
    assert_eq!(plan.recovered_at, expected_back);
    assert_eq!(
        plan.predicted_rto,
        plan.recovered_at.saturating_sub(plan.rto_clock_start)
    );
    // Rollback: every step with a rollback once, each before the steps it runs after.
    let with_rollback = (0..n)
        .filter(|&i| plan.runbook.steps[i].rollback.is_some())
        .count();
    assert_eq!(plan.rollback_order.len(), with_rollback);
    for (k, &i) in plan.rollback_order.iter().enumerate() {
        for &later in &plan.rollback_order[k + 1..] {
            assert!(
                !depends_on(plan, later, i),
                "step {later} is rolled back after {i}, which depends on it"
            );
        }
    }
}

/// Whether `a` (transitively) runs after `b`.
fn depends_on(plan: &Plan<'_>, a: usize, b: usize) -> bool {
    let mut stack = plan.deps[a].clone();
    let mut seen = vec![false; plan.deps.len()];
    while let Some(x) = stack.pop() {
        if x == b {
            return true;
        }
        if !std::mem::replace(&mut seen[x], true) {
            stack.extend(&plan.deps[x]);
        }
    }
    false
}

#[test]
fn shipped_runbooks_plan_within_their_objectives() {
    for path in shipped() {
        let rb = load(&path);
        let plan = Plan::new(&rb);
        check_invariants(&plan);
        assert_eq!(
            plan.meets_rto(),
            Some(true),
            "{}: predicted {:?} over the objective",
            path.display(),
            plan.predicted_rto
        );
        // A human gate stands before the first change that can interrupt service in
        // every shipped runbook (capacity is raised while the operator decides).
        let first_mutation = (0..rb.steps.len())
            .filter(|&i| rb.steps[i].starts_rto_clock())
            .min_by_key(|&i| plan.level_of[i])
            .expect("a failover mutates something");
        assert!(
            plan.approvals()
                .iter()
                .any(|&a| plan.level_of[a] < plan.level_of[first_mutation]),
            "{}: no approval before {}",
            path.display(),
            rb.steps[first_mutation].id
        );
    }
}

#[test]
fn shipped_plans_snapshot_in_every_format() {
    for path in shipped() {
        let rb = load(&path);
        let plan = Plan::new(&rb);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("{name}.text"), render::text(&plan));
        insta::assert_snapshot!(format!("{name}.mermaid"), render::mermaid(&plan));
        insta::assert_snapshot!(format!("{name}.dot"), render::dot(&plan));
        insta::assert_json_snapshot!(format!("{name}.json"), render::json(&plan));
    }
}

#[test]
fn dot_output_renders_with_graphviz() {
    // scripts/test.sh installs graphviz; without it this test fails rather than skips.
    for path in shipped() {
        let rb = load(&path);
        let dot = render::dot(&Plan::new(&rb));
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("graphviz `dot` is installed (scripts/test.sh installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = String::from_utf8_lossy(&out.stdout);
        assert!(svg.contains("<svg"), "no SVG for {}", path.display());
        for step in &rb.steps {
            // SVG text escapes `-` as `&#45;`.
            let label = step.id.as_str().replace('-', "&#45;");
            assert!(
                svg.contains(&format!(">{label}</text>")),
                "{} missing",
                step.id
            );
        }
    }
}

#[test]
fn html_plan_is_self_contained_and_escaped() {
    let rb = load_str(
        r#"
[runbook]
name = "x"
description = "<script>alert(1)</script>"
mode = "unplanned"
[[step]]
id = "a"
action = "approval"
message = "go?"
"#,
    );
    let html = render::html(&Plan::new(&rb));
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external assets"
    );
}

/// The HTML plan's picture of the DAG: a node per step, an arrow per dependency, the
/// critical path's edges in red, approvals as hexagons, mutating steps filled.
#[test]
fn html_plan_draws_the_dag() {
    let rb = load(Path::new("runbooks/region-failover.toml"));
    let plan = Plan::new(&rb);
    let svg = render::dag_svg(&plan);
    assert_eq!(svg.matches("<g class=\"node\">").count(), rb.steps.len());
    let edges: usize = plan.deps.iter().map(Vec::len).sum();
    assert_eq!(svg.matches("marker-end=").count(), edges);
    assert_eq!(
        svg.matches("marker-end=\"url(#arrow-critical)\"").count(),
        plan.critical_path.len() - 1
    );
    // One hexagon per approval step, plus the legend's.
    assert_eq!(svg.matches("<polygon").count(), plan.approvals().len() + 1);
    assert!(
        svg.contains("fill=\"#ffe0b2\""),
        "mutating steps are filled"
    );
    for s in &rb.steps {
        assert!(
            svg.contains(&format!(">{}</text>", s.id)),
            "{} has no label",
            s.id
        );
    }
    let page = render::html(&plan);
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("no {needle}"));
    assert!(
        at("<svg class=\"dag\"") < at("<table>"),
        "the picture, then the tables"
    );
}

#[test]
fn html_plan_long_labels_are_squeezed_then_cut() {
    let rb = load_str(
        r#"
[runbook]
name = "x"
mode = "unplanned"
[[step]]
id = "a-very-long-step-identifier-that-goes-on-and-on-and-on"
action = "wait"
duration = "1s"
"#,
    );
    let svg = render::dag_svg(&Plan::new(&rb));
    assert!(svg.contains("a-very-long-step-identifier-that-…"), "{svg}");
    assert!(svg.contains("lengthAdjust=\"spacingAndGlyphs\""));
    // The full id stays in the tooltip.
    assert!(svg.contains("<title>a-very-long-step-identifier-that-goes-on-and-on-and-on"));
}

const HEAD: &str = "[runbook]\nname = \"t\"\nmode = \"unplanned\"\n[objectives]\nrto = \"10m\"\n";

#[test]
fn parallel_branches_share_a_level_and_the_longer_one_is_critical() {
    let rb = load_str(&format!(
        "{HEAD}
[[step]]
id = \"start\"
action = \"wait\"
duration = \"10s\"
[[step]]
id = \"short\"
action = \"wait\"
duration = \"30s\"
after = [\"start\"]
[[step]]
id = \"long\"
action = \"wait\"
duration = \"2m\"
after = [\"start\"]
[[step]]
id = \"end\"
action = \"wait\"
duration = \"5s\"
after = [\"short\", \"long\"]
"
    ));
    let plan = Plan::new(&rb);
    check_invariants(&plan);
    assert_eq!(plan.levels, vec![vec![0], vec![1, 2], vec![3]]);
    assert_eq!(plan.critical_path, vec![0, 2, 3]);
    assert_eq!(plan.makespan, Duration::from_secs(135));
    assert_eq!(plan.predicted_rto, Duration::from_secs(135));
    assert_eq!(plan.meets_rto(), Some(true));
}

#[test]
fn expected_overrides_the_catalogue_and_a_gate_adds_its_own_time() {
    let rb = load_str(&format!(
        "{HEAD}
[[step]]
id = \"promote\"
action = \"aurora.failover\"
global_cluster = \"g\"
target = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"
max_lag = \"30s\"
[step.gate]
check = \"aurora.writer_in_region\"
global_cluster = \"g\"
region = \"us-west-2\"
[[step]]
id = \"fixed\"
action = \"aurora.failover\"
global_cluster = \"g\"
target = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"
max_lag = \"30s\"
expected = \"7m\"
"
    ));
    // aurora.failover is 2m in the catalogue; the writer_in_region gate adds 5s.
    assert_eq!(rb.steps[0].expected, Duration::from_secs(125));
    assert_eq!(rb.steps[1].expected, Duration::from_secs(420));
    let plan = Plan::new(&rb);
    assert_eq!(plan.critical_path, vec![1]);
    assert_eq!(plan.meets_rto(), Some(true));
}

#[test]
fn rollback_order_is_reverse_dependency_order() {
    let flip = |id: &str, after: &str| {
        format!(
            "[[step]]\nid = \"{id}\"\naction = \"route53.health_check_flip\"\nhealth_checks = [\"h-{id}\"]\ninvert = true\nafter = [{after}]\n[step.rollback]\n"
        )
    };
    // c after b after a; d independent (file order after c).
    let rb = load_str(&format!(
        "{HEAD}{}{}{}{}",
        flip("a", ""),
        flip("b", "\"a\""),
        flip("c", "\"b\""),
        flip("d", "")
    ));
    let plan = Plan::new(&rb);
    check_invariants(&plan);
    let ids: Vec<&str> = plan
        .rollback_order
        .iter()
        .map(|&i| rb.steps[i].id.as_str())
        .collect();
    assert_eq!(ids, ["d", "c", "b", "a"]);
}

#[test]
fn planned_rto_counts_from_the_first_change() {
    let rb = load_str(
        "[runbook]\nname = \"t\"\nmode = \"planned\"
[[step]]
id = \"catch-up\"
action = \"wait\"
duration = \"20m\"
timeout = \"30m\"
[[step]]
id = \"switch\"
action = \"aurora.switchover\"
global_cluster = \"g\"
target = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"
after = [\"catch-up\"]
",
    );
    let plan = Plan::new(&rb);
    assert_eq!(plan.makespan, Duration::from_secs(20 * 60 + 300));
    assert_eq!(plan.rto_clock_start, Duration::from_secs(20 * 60));
    assert_eq!(plan.predicted_rto, Duration::from_secs(300));
}

#[test]
fn planned_rto_does_not_count_from_a_capacity_change() {
    let rb = load_str(
        "[runbook]\nname = \"t\"\nmode = \"planned\"
[[step]]
id = \"size-up\"
action = \"aurora.serverless_capacity\"
cluster = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"
min_acu = 2
max_acu = 64
[[step]]
id = \"switch\"
action = \"aurora.switchover\"
global_cluster = \"g\"
target = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"
after = [\"size-up\"]
",
    );
    let plan = Plan::new(&rb);
    // The capacity change moves no traffic: the clock starts with the switchover.
    assert_eq!(plan.rto_clock_start, Duration::from_secs(60));
    assert_eq!(plan.predicted_rto, Duration::from_secs(300));
}

#[test]
fn cli_plan_formats() {
    let file = "runbooks/region-failover.toml";
    for format in ["text", "json", "dot", "mermaid", "html"] {
        let out = drpilot(&["plan", file, "--format", format]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{format}");
    }
    let out = drpilot(&["plan", file, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON parses");
    assert_eq!(v["plan_version"], 1);
    assert_eq!(v["runbook"]["mode"], "unplanned");
    assert_eq!(v["meets_rto"], true);
    assert_eq!(v["approvals"], serde_json::json!(["approve-failover"]));
    let promote = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "aurora-promote")
        .unwrap();
    assert_eq!(promote["mutates"]["region"], "us-west-2");
    assert_eq!(
        promote["fields"]["target"], "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2",
        "templates are resolved in the plan"
    );
}

#[test]
fn cli_plan_of_a_broken_runbook_exits_2_and_prints_nothing_on_stdout() {
    let out = drpilot(&["plan", "tests/runbooks/broken/18-dependency-cycle.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("dependency cycle"),
        "{}",
        text(&out.stderr)
    );
}
