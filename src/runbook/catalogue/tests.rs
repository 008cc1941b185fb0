//! Tests of the catalogue: its names, its completeness and `docs/catalogue.md`.

use super::*;

#[test]
fn docs_catalogue_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/catalogue.md");
    let want = markdown();
    if std::env::var_os("DRPILOT_UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/catalogue.md is stale: run DRPILOT_UPDATE_DOCS=1 cargo test docs_"
    );
}

#[test]
fn names_are_unique_and_fields_too() {
    let mut names: Vec<_> = CATALOGUE.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CATALOGUE.len());
    for spec in CATALOGUE {
        let mut fields: Vec<_> = spec.fields.iter().map(|f| f.name).collect();
        fields.sort_unstable();
        fields.dedup();
        assert_eq!(fields.len(), spec.fields.len(), "{}", spec.name);
        for f in spec.fields {
            assert!(
                !looks_like_secret_key(f.name),
                "{}.{} looks like a secret",
                spec.name,
                f.name
            );
        }
    }
}

#[test]
fn the_issue_catalogue_is_complete() {
    for name in [
        "aurora.switchover",
        "aurora.failover",
        "aurora.detach_promote",
        "aurora.snapshot_lost_writes",
        "valkey.failover",
        "s3.replication_check",
        "route53.cutover",
        "route53.health_check_flip",
        "route53.routing_control",
        "approval",
        "wait",
        "http.check",
        "postgres.check",
        "valkey.check",
        "dns.check",
    ] {
        assert!(lookup(name).is_some(), "action {name}");
    }
    let checks: Vec<_> = check_names().collect();
    for name in [
        "aurora.writer_in_region",
        "aurora.lag_below",
        "aurora.cluster_available",
        "valkey.primary_in_region",
        "valkey.available",
        "route53.change_insync",
        "route53.record_points_to",
        "route53.health_check_healthy",
        "route53.routing_control_state",
        "s3.canary_replicated",
        "http.check",
        "postgres.check",
        "valkey.check",
        "dns.check",
    ] {
        assert!(checks.contains(&name), "check {name}");
    }
}

#[test]
fn url_credentials_are_found_wherever_the_userinfo_has_one() {
    for (url, want) in [
        ("https://u:s3cret@h.example/x", Some("s3cret")),
        ("postgres://u:p%40ss@db:5432/acme", Some("p%40ss")),
        ("https://ghp_token@h.example", Some("ghp_token")),
        ("https://u:pw@h.example/a@b", Some("pw")),
        ("https://h.example/path?email=a@b.example", None),
        ("https://u:@h.example/", None),
        ("https://h.example:8443/", None),
        ("not a url", None),
    ] {
        assert_eq!(url_credential(url), want, "{url}");
    }
}

#[test]
fn arn_region_reads_the_fourth_field() {
    assert_eq!(
        arn_region("arn:aws:rds:us-west-2:111122223333:cluster:x"),
        Some("us-west-2")
    );
    assert_eq!(arn_region("auto"), None);
    assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
}

#[test]
fn quoted_list_reads_as_english() {
    assert_eq!(quoted_list(&["a"]), "\"a\"");
    assert_eq!(quoted_list(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
}
