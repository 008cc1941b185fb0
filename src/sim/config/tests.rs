//! Tests of `--sim-config` parsing: a full config, and every problem with its place.

use super::*;
use crate::sim::{Between, FaultKind};

fn errors(text: &str) -> String {
    match SimConfig::parse(Path::new("sim.toml"), text) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(e) => e.render(RenderStyle::Short),
    }
}

#[test]
fn a_full_config_parses() {
    let text = r#"
[timing]
aurora_failover = ["60s", "90s"]
route53_insync = "20s"
health_check_detect = "10s"

[regions.us-east-1]
unreachable_from = "2m"
unreachable_until = "1h"

[regions.us-west-2]
app_healthy = false

[global_clusters.acme-prod]
primary = "us-west-2"

[clusters.acme-prod-usw2]
lag = "45s"
instances = 0

[datastores.ldgnf-acme-sessions]
status = "modifying"

[replication_groups.acme-sessions-usw2]
missing = true

[buckets.acme-prod-assets-use1]
backlog = 1_500
backlog_clears = "5m"

[zones.Z0731524T4AKBG1PJWH9]
missing = false

[health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]
inverted = true

[[fault]]
kind = "throttle"
service = "route53"
rate = 0.25

[[fault]]
kind = "error"
operation = "FailoverGlobalCluster"
times = 2
after_apply = true

[[fault]]
kind = "latency"
service = "dataplane"
latency = "3s"
from = "1m"
until = "2m"

[[fault]]
kind = "hang"
service = "elasticache"
operation = "FailoverGlobalReplicationGroup"
region = "us-west-2"
"#;
    let c = SimConfig::parse(Path::new("sim.toml"), text).unwrap();
    assert_eq!(c.timing.aurora_failover, Between::secs(60, 90));
    assert_eq!(c.timing.route53_insync, Between::secs(20, 20));
    assert_eq!(c.timing.health_check_detect, Duration::from_secs(10));
    assert_eq!(c.regions.len(), 2);
    assert_eq!(
        c.regions[0].unreachable_from,
        Some(Duration::from_secs(120))
    );
    assert_eq!(c.regions[1].app_healthy, Some(false));
    assert_eq!(c.global_clusters[0].primary.as_deref(), Some("us-west-2"));
    assert_eq!(c.clusters[0].lag, Some(Duration::from_secs(45)));
    assert_eq!(c.clusters[0].instances, Some(0));
    assert_eq!(c.buckets[0].backlog, Some(1500));
    assert!(c.replication_groups[0].missing);
    assert_eq!(c.health_checks[0].inverted, Some(true));
    assert_eq!(c.faults.len(), 4);
    assert_eq!(c.faults[0].kind, FaultKind::Throttle);
    assert_eq!(c.faults[0].rate, 0.25);
    assert_eq!(c.faults[1].times, Some(2));
    assert!(c.faults[1].after_apply);
    assert_eq!(c.faults[2].latency, Duration::from_secs(3));
    assert_eq!(c.faults[2].until, Some(Duration::from_secs(120)));
    assert_eq!(c.faults[3].region.as_deref(), Some("us-west-2"));
}

#[test]
fn unknown_keys_are_reported_with_line_and_column() {
    let out =
        errors("[clusters.acme-prod-usw2]\nlagg = \"4s\"\n\n[timing]\n  aurora_failovr = \"1m\"\n");
    assert!(
        out.contains("sim.toml:2:1: error: unknown key `lagg` in [clusters.acme-prod-usw2]"),
        "{out}"
    );
    assert!(out.contains("did you mean `lag`?"), "{out}");
    assert!(
        out.contains("sim.toml:5:3: error: unknown key `aurora_failovr` in [timing]"),
        "{out}"
    );
    assert!(out.contains("did you mean `aurora_failover`?"), "{out}");
    let out = errors("seed = 3\n");
    assert!(
        out.contains("sim.toml:1:1: error: unknown key `seed` in the sim config"),
        "{out}"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let text = "[regions.mars-1]\nunreachable_from = 30\n\n[[fault]]\nkind = \"eror\"\nrate = 1.5\n\n[[fault]]\nkind = \"error\"\noperation = \"FailoverGlobalClster\"\nlatency = \"1s\"\n\n[[fault]]\nkind = \"latency\"\n\n[buckets.b]\nbacklog = -1\n";
    let out = errors(text);
    for want in [
        "sim.toml:1:10: error: `mars-1` is not an AWS region",
        "sim.toml:2:20: error: `unreachable_from` in [regions.mars-1] must be a duration string",
        "sim.toml:5:8: error: `kind` in [[fault]] #1 is not a known value: \"eror\"",
        "did you mean \"error\"?",
        "sim.toml:6:8: error: `rate` in [[fault]] #1 must be a probability",
        "sim.toml:10:13: error: `operation` in [[fault]] #2 is not an operation the world serves",
        "did you mean \"FailoverGlobalCluster\"?",
        "sim.toml:11:11: error: `latency` in [[fault]] #2 only applies to kind = \"latency\"",
        "sim.toml:13:1: error: missing `latency` in [[fault]] #3",
        "sim.toml:17:11: error: `backlog` in [buckets.b] is out of range",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn syntax_errors_and_odd_input_never_panic() {
    for text in [
        "[timing\n",
        "fault = 3\n",
        "[[fault]]\n",
        "[timing]\naurora_failover = [\"2m\", \"1m\"]\n",
        "[timing]\naurora_failover = [\"1m\"]\n",
        "[timing]\naurora_failover = \"1000000000000h\"\n",
        "[clusters]\nx = 1\n",
        "[regions.us-east-1]\nunreachable_until = \"1m\"\n",
        "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"PutObject\"\n",
        "[[fault]]\nkind = \"hang\"\nfrom = \"5m\"\nuntil = \"1m\"\n",
        "[[fault]]\nkind = \"latency\"\nlatency = \"1s\"\nafter_apply = true\n",
        "[[fault]]\nkind = \"throttle\"\nrate = nan\n",
        "[[fault]]\nkind = \"throttle\"\ntimes = 0\n",
        "[health_checks.x]\nregion = \"nowhere\"\n",
    ] {
        let _ = errors(text);
    }
    assert!(SimConfig::parse(Path::new("e.toml"), "").is_ok());
    let out = errors("[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"PutObject\"\n");
    assert!(out.contains("rds has no operation \"PutObject\""), "{out}");
}

#[test]
fn display_names_the_file_and_each_problem() {
    let err = SimConfig::parse(Path::new("bad.toml"), "[zones.Z1]\nmising = true\n").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("sim config bad.toml has 1 error:\n"),
        "{shown}"
    );
    assert!(
        shown.contains("bad.toml:2:1: error: unknown key `mising`"),
        "{shown}"
    );
}

#[test]
fn the_elasticache_failover_reading_is_refuse_unless_allow_is_chosen() {
    use crate::sim::FailoverReading;
    let parse = |text: &str| SimConfig::parse(Path::new("sim.toml"), text).unwrap();
    assert_eq!(
        parse("").failover_with_unreachable_members,
        FailoverReading::Refuse
    );
    for (word, reading) in [
        ("refuse", FailoverReading::Refuse),
        ("allow", FailoverReading::Allow),
    ] {
        let c = parse(&format!(
            "[elasticache]\nfailover_with_unreachable_members = \"{word}\"\n"
        ));
        assert_eq!(c.failover_with_unreachable_members, reading);
        assert_eq!(reading.as_str(), word);
    }
    let out = errors("[elasticache]\nfailover_with_unreachable_members = \"alow\"\n");
    assert!(
        out.contains(
            "sim.toml:2:37: error: `failover_with_unreachable_members` in [elasticache] is not a known value: \"alow\""
        ),
        "{out}"
    );
    assert!(out.contains("did you mean \"allow\"?"), "{out}");
    let out = errors("[elasticache]\nfailover = \"allow\"\n");
    assert!(
        out.contains("sim.toml:2:1: error: unknown key `failover` in [elasticache]"),
        "{out}"
    );
}

#[test]
fn shards_and_replication_cuts_are_read_and_checked() {
    let c = SimConfig::parse(
        Path::new("sim.toml"),
        "[datastores.ds]\nshards = 3\nnode_type = \"cache.r7g.xlarge\"\n\
         [replication_groups.rg]\nshards = 2\ncluster_enabled = true\ncut_shards = [2]\n\
         cut_from = \"30s\"\n",
    )
    .unwrap();
    assert_eq!(c.datastores[0].shards, Some(3));
    assert_eq!(
        c.datastores[0].node_type.as_deref(),
        Some("cache.r7g.xlarge")
    );
    let rg = &c.replication_groups[0];
    assert_eq!(
        (
            rg.shards,
            rg.cluster_enabled,
            rg.cut_shards.clone(),
            rg.cut_from
        ),
        (
            Some(2),
            Some(true),
            Some(vec![2]),
            Some(Duration::from_secs(30))
        )
    );
    let out = errors(
        "[datastores.ds]\nshards = 0\n[replication_groups.rg]\ncut_shards = 2\n\
         [replication_groups.other]\ncut_from = \"1s\"\n[replication_groups.third]\n\
         cut_shards = [0]\n",
    );
    for want in [
        "sim.toml:2:10: error: `shards` in [datastores.ds] is out of range",
        "sim.toml:4:14: error: `cut_shards` in [replication_groups.rg] must be a list of shard numbers",
        "error: [replication_groups.other] sets cut_from without cut_shards",
        "sim.toml:8:15: error: `cut_shards` in [replication_groups.third] is out of range",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
