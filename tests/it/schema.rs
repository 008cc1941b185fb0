//! The runbook JSON Schema: valid JSON Schema, accepts every shipped runbook, and
//! rejects what `drpilot validate` rejects for the reasons a schema can see.

use std::path::Path;

use serde_json::Value;

use crate::{drpilot, shipped, text};

fn schema() -> Value {
    let out = drpilot(&["schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("drpilot schema prints JSON")
}

fn as_json(toml_text: &str) -> Value {
    toml::from_str(toml_text).expect("the test input is valid TOML")
}

fn validator() -> jsonschema::Validator {
    let schema = schema();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the schema is not valid JSON Schema"
    );
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn every_shipped_runbook_matches_the_schema() {
    let v = validator();
    for path in shipped()
        .iter()
        .chain(crate::validate_corpus::corpus("tests/runbooks/valid").iter())
    {
        let doc = as_json(&std::fs::read_to_string(path).unwrap());
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn the_schema_rejects_what_it_can_see() {
    let v = validator();
    let base = std::fs::read_to_string(Path::new("tests/runbooks/valid/minimal.toml")).unwrap();
    assert!(v.is_valid(&as_json(&base)));
    let cases = [
        (
            "unknown top-level key",
            base.replace("[objectives]", "[objectivs]"),
        ),
        (
            "unknown mode",
            base.replace("mode = \"unplanned\"", "mode = \"sometimes\""),
        ),
        (
            "unknown action",
            base.replace(
                "action = \"aurora.failover\"",
                "action = \"aurora.failovr\"",
            ),
        ),
        (
            "unknown step key",
            base.replace(
                "global_cluster = \"acme-prod\"\ntarget",
                "global_clustr = \"acme-prod\"\ntarget",
            ),
        ),
        (
            "wrong type",
            base.replace("timeout = \"10m\"", "timeout = 10"),
        ),
        (
            "action used as a check",
            base.replace(
                "check = \"aurora.writer_in_region\"",
                "check = \"aurora.failover\"",
            ),
        ),
        (
            "missing required field",
            base.replace(
                "target = \"arn:aws:rds:{{to}}:111122223333:cluster:acme-prod-usw2\"\n",
                "",
            ),
        ),
        (
            "attempts out of range",
            base.replace("attempts = 6", "attempts = 0"),
        ),
        (
            "account id not 12 digits",
            base.replace("[defaults]", "[accounts.dns]\nid = \"4444\"\n[defaults]"),
        ),
        (
            "external_id without role_arn",
            base.replace(
                "[defaults]",
                "[accounts.dns]\nid = \"444455556666\"\nexternal_id = \"acme-dr\"\n[defaults]",
            ),
        ),
        (
            "credentials in an account",
            base.replace(
                "[defaults]",
                "[accounts.dns]\nid = \"444455556666\"\nsecret_access_key = \"x\"\n[defaults]",
            ),
        ),
        (
            "recovered_when empty",
            base.replace("rpo = \"30s\"", "rpo = \"30s\"\nrecovered_when = []"),
        ),
        (
            "recovered_when not a list",
            base.replace(
                "rpo = \"30s\"",
                "rpo = \"30s\"\nrecovered_when = \"aurora-promote\"",
            ),
        ),
    ];
    for (what, text) in cases {
        assert_ne!(text, base, "{what}: the replacement did not apply");
        assert!(
            !v.is_valid(&as_json(&text)),
            "{what}: accepted by the schema"
        );
        // drpilot agrees.
        assert!(
            drpilot::runbook::load_str(Path::new("x.toml"), &text).is_err(),
            "{what}: accepted by drpilot"
        );
    }
}

#[test]
fn a_capacity_range_is_checked_by_the_schema_and_by_drpilot_alike() {
    let v = validator();
    let base = r#"
[runbook]
name = "scale"
mode = "unplanned"
[[step]]
id = "acu"
action = "aurora.serverless_capacity"
cluster = "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2"
min_acu = 0.5
max_acu = 64
[step.rollback]
"#;
    assert!(
        v.is_valid(&as_json(base)),
        "{:?}",
        v.validate(&as_json(base)).err()
    );
    drpilot::runbook::load_str(Path::new("x.toml"), base).expect("loads");
    for (what, text) in [
        (
            "not a half step",
            base.replace("min_acu = 0.5", "min_acu = 0.25"),
        ),
        ("above 256", base.replace("max_acu = 64", "max_acu = 300")),
        (
            "a maximum under 1",
            base.replace("max_acu = 64", "max_acu = 0.5"),
        ),
        (
            "a string",
            base.replace("min_acu = 0.5", "min_acu = \"0.5\""),
        ),
        ("negative", base.replace("min_acu = 0.5", "min_acu = -1")),
    ] {
        assert_ne!(text, base, "{what}: the replacement did not apply");
        assert!(
            !v.is_valid(&as_json(&text)),
            "{what}: accepted by the schema"
        );
        assert!(
            drpilot::runbook::load_str(Path::new("x.toml"), &text).is_err(),
            "{what}: accepted by drpilot"
        );
    }
    // What a schema cannot say, drpilot does.
    let text = base.replace("min_acu = 0.5", "min_acu = 128");
    assert!(v.is_valid(&as_json(&text)));
    let e = drpilot::runbook::load_str(Path::new("x.toml"), &text).unwrap_err();
    let shown = e.render(drpilot::runbook::RenderStyle::Short);
    assert!(
        shown.contains("x.toml:9:11: error: step `acu`: min_acu (128) is above max_acu (64)"),
        "{shown}"
    );
}

#[test]
fn an_ecs_scale_is_listed_and_checked_by_the_schema_and_by_drpilot_alike() {
    let schema = schema();
    let text = schema.to_string();
    assert!(
        text.contains("ecs.scale_service"),
        "the schema lists the action"
    );
    let v = validator();
    let base = r#"
[runbook]
name = "scale"
mode = "unplanned"
[[step]]
id = "api"
action = "ecs.scale_service"
cluster = "acme-usw2"
service = "acme-api"
region = "us-west-2"
desired_count = 8
[step.rollback]
"#;
    assert!(
        v.is_valid(&as_json(base)),
        "{:?}",
        v.validate(&as_json(base)).err()
    );
    drpilot::runbook::load_str(Path::new("x.toml"), base).expect("loads");
    for (what, text) in [
        (
            "negative",
            base.replace("desired_count = 8", "desired_count = -1"),
        ),
        (
            "a string",
            base.replace("desired_count = 8", "desired_count = \"8\""),
        ),
        (
            "above an Integer",
            base.replace("desired_count = 8", "desired_count = 2147483648"),
        ),
        ("no region", base.replace("region = \"us-west-2\"\n", "")),
        (
            "not a region",
            base.replace("region = \"us-west-2\"", "region = \"west\""),
        ),
        (
            "an unknown key",
            base.replace("desired_count = 8", "desired_count = 8\ncount = 8"),
        ),
    ] {
        assert_ne!(text, base, "{what}: the replacement did not apply");
        assert!(
            !v.is_valid(&as_json(&text)),
            "{what}: accepted by the schema"
        );
        assert!(
            drpilot::runbook::load_str(Path::new("x.toml"), &text).is_err(),
            "{what}: accepted by drpilot"
        );
    }
    // What a schema cannot say, drpilot does: an ARN in another region than `region`.
    let text = base.replace(
        "cluster = \"acme-usw2\"",
        "cluster = \"arn:aws:ecs:us-east-1:111122223333:cluster/acme-use1\"",
    );
    assert!(v.is_valid(&as_json(&text)));
    let e = drpilot::runbook::load_str(Path::new("x.toml"), &text).unwrap_err();
    let shown = e.render(drpilot::runbook::RenderStyle::Short);
    assert!(
        shown.contains(
            "x.toml:8:11: error: step `api`: `cluster` is in us-east-1, but `region` is us-west-2"
        ),
        "{shown}"
    );
}

#[test]
fn group_sizes_are_checked_by_the_schema_and_by_drpilot_alike() {
    let v = validator();
    let base = r#"
[runbook]
name = "size"
mode = "unplanned"
[[step]]
id = "workers"
action = "autoscaling.set_capacity"
group = "acme-workers-usw2"
region = "us-west-2"
min_size = 2
desired_capacity = 4
max_size = 8
[step.rollback]
"#;
    assert!(
        v.is_valid(&as_json(base)),
        "{:?}",
        v.validate(&as_json(base)).err()
    );
    drpilot::runbook::load_str(Path::new("x.toml"), base).expect("loads");
    for (what, text) in [
        ("negative", base.replace("min_size = 2", "min_size = -2")),
        ("a string", base.replace("max_size = 8", "max_size = \"8\"")),
        (
            "no group",
            base.replace("group = \"acme-workers-usw2\"\n", ""),
        ),
    ] {
        assert_ne!(text, base, "{what}: the replacement did not apply");
        assert!(
            !v.is_valid(&as_json(&text)),
            "{what}: accepted by the schema"
        );
        assert!(
            drpilot::runbook::load_str(Path::new("x.toml"), &text).is_err(),
            "{what}: accepted by drpilot"
        );
    }
    // What a schema cannot say, drpilot does: the sizes' order, and at least one.
    for (text, want) in [
        (
            base.replace("min_size = 2", "min_size = 9"),
            "x.toml:8:9: error: step `workers`: min_size (9) is above max_size (8)",
        ),
        (
            base.replace("desired_capacity = 4", "desired_capacity = 1"),
            "step `workers`: desired_capacity (1) is below min_size (2)",
        ),
        (
            base.replace("min_size = 2\ndesired_capacity = 4\nmax_size = 8\n", ""),
            "step `workers` sets no size",
        ),
    ] {
        assert!(v.is_valid(&as_json(&text)));
        let e = drpilot::runbook::load_str(Path::new("x.toml"), &text).unwrap_err();
        let shown = e.render(drpilot::runbook::RenderStyle::Short);
        assert!(shown.contains(want), "{shown}");
    }
}
