//! Random but seeded scenarios: the same `--seed` gives the same scenarios forever
//! (SplitMix64, keyed by the seed and the scenario's index, so scenario 17 does not
//! change when `--count` does).

use serde_json::{Map, Value, json};

use drpilot::sim::{OPERATIONS, SplitMix64};

use crate::scenario::{Blackhole, Choice, EmulatorSpec, OnFailure, Scenario, Target};

/// The shipped runbooks scenarios run, with how often each is picked.
const RUNBOOKS: &[(&str, u64)] = &[
    ("runbooks/region-failover.toml", 5),
    ("runbooks/planned-switchover.toml", 4),
    ("runbooks/failback.toml", 2),
];

/// Mutating operations: a fault with `after_apply` on one of them is a lost response.
pub const MUTATING: &[&str] = &[
    "FailoverGlobalCluster",
    "SwitchoverGlobalCluster",
    "RemoveFromGlobalCluster",
    "CopyDBClusterSnapshot",
    "ModifyDBCluster",
    "FailoverGlobalReplicationGroup",
    "DisassociateGlobalReplicationGroup",
    "ChangeResourceRecordSets",
    "UpdateHealthCheck",
    "UpdateRoutingControlStates",
    "UpdateService",
    "UpdateAutoScalingGroup",
];

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.next_u64() % n }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn secs(&mut self, lo: u64, hi: u64) -> String {
        format!("{}s", lo + self.below(hi - lo + 1))
    }
}

/// The `index`-th scenario of `seed`.
pub fn scenario(seed: u64, index: u64) -> Scenario {
    let mut rng = Rng(SplitMix64::new(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.wrapping_add(1),
    ));
    // Burn one draw so nearby (seed, index) pairs diverge at once.
    rng.0.next_u64();
    let total: u64 = RUNBOOKS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    let mut runbook = RUNBOOKS[0].0;
    for (rb, w) in RUNBOOKS {
        if roll < *w {
            runbook = rb;
            break;
        }
        roll -= w;
    }
    let mut sim = Map::new();
    if runbook.ends_with("failback.toml") {
        // The world a failover left: writers in us-west-2.
        sim.insert(
            "global_clusters".into(),
            json!({"acme-prod": {"primary": "us-west-2"}}),
        );
        sim.insert(
            "datastores".into(),
            json!({"ldgnf-acme-sessions": {"primary": "us-west-2"}}),
        );
    }
    // A region blackhole starting at a random virtual moment.
    if rng.chance(25) {
        let region = if rng.chance(70) {
            "us-east-1"
        } else {
            "us-west-2"
        };
        let mut r = Map::new();
        r.insert("unreachable_from".into(), json!(rng.secs(0, 600)));
        if rng.chance(60) {
            r.insert("unreachable_until".into(), json!(rng.secs(700, 3600)));
        }
        let mut regions = Map::new();
        regions.insert(region.into(), Value::Object(r));
        sim.insert("regions".into(), Value::Object(regions));
    }
    let mut faults = Vec::new();
    for _ in 0..rng.below(4) {
        faults.push(fault(&mut rng));
    }
    if !faults.is_empty() {
        sim.insert("fault".into(), Value::Array(faults));
    }
    let on_failure = *rng.pick(&[
        OnFailure::Rollback,
        OnFailure::Rollback,
        OnFailure::Pause,
        OnFailure::Pause,
        OnFailure::Abort,
    ]);
    let kills = (0..rng.below(4))
        .map(|_| 1 + rng.below(70) as u32)
        .collect();
    let concurrent = rng.chance(15);
    let decisions = (0..rng.below(3))
        .map(|_| {
            *rng.pick(&[
                Choice::Retry,
                Choice::Skip,
                Choice::Rollback,
                Choice::Rollback,
                Choice::Abort,
            ])
        })
        .collect();
    // The cache's shape, drawn last so the draws above stay what they were: the seed's
    // stack runs a cluster of 3-6 shards (the runbooks probe it with `cluster = true`),
    // and now and then one shard of the member taking over stops receiving from its
    // primary. The checks here do not measure the RPO (tests/it/dataplane_cluster.rs
    // and the sim's own tests do): the run must converge all the same.
    let shards = 3 + rng.below(4);
    if shards != 3 {
        let d = sim
            .entry("datastores")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("datastores is a table");
        let ds = d
            .entry("ldgnf-acme-sessions")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a datastore is a table");
        ds.insert("shards".into(), json!(shards));
    }
    if rng.chance(15) {
        let standby = if runbook.ends_with("failback.toml") {
            "acme-sessions-use1"
        } else {
            "acme-sessions-usw2"
        };
        let cut = json!({
            "cut_shards": [1 + rng.below(shards)],
            "cut_from": rng.secs(0, 300),
        });
        sim.insert("replication_groups".into(), json!({ standby: cut }));
    }
    Scenario {
        name: format!("gen-{seed}-{index}"),
        target: Target::Sim,
        runbook: runbook.into(),
        seed: rng.below(1 << 32),
        on_failure,
        kills,
        concurrent,
        decisions,
        sim,
        emulator: EmulatorSpec::default(),
        expect: Default::default(),
    }
}

/// The runbooks emulator scenarios run. Failback needs the world a failover left;
/// against the emulator that would cost a whole failover run first, so it is left to
/// the simulated world (and to `tests/it/emulator.rs`'s round trip and drill).
const EMULATOR_RUNBOOKS: &[&str] = &[
    "runbooks/region-failover.toml",
    "runbooks/planned-switchover.toml",
];

/// Calls the shipped runbooks make, by the emulator's service (SigV4 signing) name.
const EMULATOR_OPERATIONS: &[(&str, &[&str])] = &[
    (
        "rds",
        &[
            "DescribeGlobalClusters",
            "DescribeDBClusters",
            "FailoverGlobalCluster",
            "SwitchoverGlobalCluster",
            "*",
        ],
    ),
    (
        "elasticache",
        &[
            "DescribeGlobalReplicationGroups",
            "DescribeReplicationGroups",
            "FailoverGlobalReplicationGroup",
            "DisassociateGlobalReplicationGroup",
            "*",
        ],
    ),
    ("s3", &["GetBucketReplication", "GetBucketVersioning", "*"]),
    ("monitoring", &["*"]),
    (
        "route53-recovery-cluster",
        &["GetRoutingControlState", "UpdateRoutingControlStates", "*"],
    ),
    ("*", &["*"]),
];

/// The `index`-th emulator scenario of `seed`: a smaller, cheaper space than the
/// simulated world's (every run polls in real time). Faults always have a count, so a
/// run converges or fails within its retries; a blackhole of us-east-1 starts after a
/// random number of events and is lifted a few seconds later.
pub fn emulator_scenario(seed: u64, index: u64) -> Scenario {
    let mut rng = Rng(SplitMix64::new(
        seed.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ index.wrapping_add(1),
    ));
    rng.0.next_u64();
    let runbook = *rng.pick(EMULATOR_RUNBOOKS);
    let mut faults = Vec::new();
    for _ in 0..rng.below(3) {
        let (service, ops) = rng.pick(EMULATOR_OPERATIONS);
        let kind = *rng.pick(&["throttle", "throttle", "error", "latency"]);
        let mut f = Map::new();
        f.insert("kind".into(), json!(kind));
        f.insert("service".into(), json!(service));
        f.insert("operation".into(), json!(rng.pick(ops)));
        f.insert("rate".into(), json!(*rng.pick(&[0.3, 0.5, 1.0])));
        f.insert("count".into(), json!(1 + rng.below(4)));
        match kind {
            "error" => {
                f.insert("status".into(), json!(*rng.pick(&[500, 503])));
            }
            "latency" => {
                // Emulated milliseconds: at clock speed 60, up to 2 s of real time.
                f.insert("latency_ms".into(), json!(5_000 + 5_000 * rng.below(24)));
            }
            _ => {}
        }
        faults.push(Value::Object(f));
    }
    if rng.chance(35) {
        // A lost response (or a hung call that never answers) on a mutating call.
        let (service, operation) = *rng.pick(&[
            (
                "rds",
                if runbook.ends_with("region-failover.toml") {
                    "FailoverGlobalCluster"
                } else {
                    "SwitchoverGlobalCluster"
                },
            ),
            ("elasticache", "FailoverGlobalReplicationGroup"),
            ("route53-recovery-cluster", "UpdateRoutingControlStates"),
        ]);
        let mut f = Map::new();
        f.insert("kind".into(), json!("drop_response"));
        f.insert("service".into(), json!(service));
        f.insert("operation".into(), json!(operation));
        f.insert("count".into(), json!(1));
        if rng.chance(50) {
            f.insert("mode".into(), json!("reset"));
        } else {
            f.insert("mode".into(), json!("hold"));
            f.insert("hold_seconds".into(), json!(2 + rng.below(5)));
        }
        faults.push(Value::Object(f));
    }
    if rng.chance(15) {
        // us-east-1 slow, not dead: every request answers 2.5-6 s late (real time; the
        // latency is in emulated milliseconds), for a while.
        let mut f = Map::new();
        f.insert("kind".into(), json!("latency"));
        f.insert("service".into(), json!("*"));
        f.insert("operation".into(), json!("*"));
        f.insert("region".into(), json!("us-east-1"));
        let real_ms = 2_500 + 500 * rng.below(8);
        f.insert(
            "latency_ms".into(),
            json!(real_ms as f64 * crate::emulator::CLOCK_SPEED),
        );
        f.insert("count".into(), json!(20 + rng.below(200)));
        faults.push(Value::Object(f));
    }
    // us-east-1 dark: held (an outage's usual shape) or reset, whole or one service,
    // from the start or from a random moment, lifted after a while or never.
    let blackhole = rng.chance(40).then(|| {
        let hold = rng.chance(60);
        Blackhole {
            region: "us-east-1".into(),
            after_events: if rng.chance(35) {
                0
            } else {
                1 + rng.below(30) as u32
            },
            mode: if hold { "hold" } else { "reset" }.into(),
            services: rng.chance(35).then(|| {
                vec![
                    rng.pick(&[
                        "rds",
                        "elasticache",
                        "s3",
                        "route53-recovery-cluster",
                        "monitoring",
                    ])
                    .to_string(),
                ]
            }),
            hold_seconds: hold.then_some(30.0),
            lift_after: (!rng.chance(20))
                .then(|| std::time::Duration::from_secs(2 + rng.below(25))),
        }
    });
    let on_failure = *rng.pick(&[
        OnFailure::Rollback,
        OnFailure::Rollback,
        OnFailure::Pause,
        OnFailure::Abort,
    ]);
    let kills = (0..rng.below(3))
        .map(|_| 1 + rng.below(40) as u32)
        .collect();
    let concurrent = rng.chance(20);
    let decisions = (0..rng.below(2))
        .map(|_| *rng.pick(&[Choice::Retry, Choice::Skip, Choice::Rollback, Choice::Abort]))
        .collect();
    Scenario {
        name: format!("emu-{seed}-{index}"),
        target: Target::Emulator,
        runbook: runbook.into(),
        seed: rng.below(1 << 32),
        on_failure,
        kills,
        concurrent,
        decisions,
        sim: Map::new(),
        emulator: EmulatorSpec {
            faults,
            blackhole,
            config: Map::new(),
        },
        expect: Default::default(),
    }
}

fn fault(rng: &mut Rng) -> Value {
    let (service, ops) = rng.pick(OPERATIONS);
    // Only `drpilot readiness --cloudwatch` puts metrics, never a run: a fault on it
    // would fire on nothing.
    let ops: Vec<&str> = ops
        .iter()
        .copied()
        .filter(|o| *o != "PutMetricData")
        .collect();
    let operation = *rng.pick(&ops);
    let kind = *rng.pick(&["throttle", "error", "error", "latency", "hang"]);
    let mut f = Map::new();
    f.insert("kind".into(), json!(kind));
    f.insert("service".into(), json!(service));
    if rng.chance(80) {
        f.insert("operation".into(), json!(operation));
    }
    if rng.chance(25) {
        f.insert(
            "region".into(),
            json!(if rng.chance(50) {
                "us-east-1"
            } else {
                "us-west-2"
            }),
        );
    }
    f.insert("rate".into(), json!(*rng.pick(&[0.2, 0.5, 1.0])));
    if rng.chance(75) {
        f.insert("times".into(), json!(1 + rng.below(4)));
    }
    if rng.chance(40) {
        f.insert("from".into(), json!(rng.secs(0, 300)));
    }
    if rng.chance(30) {
        f.insert("until".into(), json!(rng.secs(301, 1800)));
    }
    match kind {
        "latency" => {
            f.insert("latency".into(), json!(rng.secs(1, 90)));
        }
        // A lost response: the call takes effect, then its answer is lost.
        "error" | "hang"
            if MUTATING.contains(&operation) && f.contains_key("operation") && rng.chance(60) =>
        {
            f.insert("after_apply".into(), json!(true));
        }
        _ => {}
    }
    Value::Object(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_scenarios() {
        for i in 0..50 {
            assert_eq!(scenario(7, i), scenario(7, i));
        }
        let a: Vec<_> = (0..50).map(|i| scenario(7, i)).collect();
        let b: Vec<_> = (0..50).map(|i| scenario(8, i)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn generated_scenarios_round_trip_through_toml_and_their_sim_config_parses() {
        for i in 0..300 {
            let s = scenario(3, i);
            let text = s.to_toml();
            let back = Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, s, "{text}");
            let cfg = s.sim_config();
            drpilot::sim::SimConfig::parse(std::path::Path::new("sim.toml"), &cfg)
                .unwrap_or_else(|e| panic!("{e}\n{cfg}"));
        }
    }

    #[test]
    fn emulator_scenarios_are_seeded_round_trip_and_cover_their_space() {
        let all: Vec<Scenario> = (0..100).map(|i| emulator_scenario(4, i)).collect();
        for (i, s) in all.iter().enumerate() {
            assert_eq!(*s, emulator_scenario(4, i as u64));
            let text = s.to_toml();
            let back = Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, *s, "{text}");
            assert_eq!(s.target, Target::Emulator);
            assert!(s.sim.is_empty());
            assert!(!s.runbook.ends_with("failback.toml"));
        }
        let faults: Vec<&Value> = all.iter().flat_map(|s| &s.emulator.faults).collect();
        for kind in ["throttle", "error", "latency", "drop_response"] {
            assert!(faults.iter().any(|f| f["kind"] == kind), "no {kind} fault");
        }
        // Every fault ends: a run converges or fails within its retries.
        assert!(faults.iter().all(|f| f["count"].as_u64().is_some()));
        let holes: Vec<&Blackhole> = all
            .iter()
            .filter_map(|s| s.emulator.blackhole.as_ref())
            .collect();
        // Issue 16: every shape of outage, not only resets.
        assert!(holes.iter().any(|b| b.mode == "hold"), "no held region");
        assert!(holes.iter().any(|b| b.mode == "reset"), "no reset region");
        assert!(
            holes.iter().any(|b| b.services.is_some()),
            "no one-service outage"
        );
        assert!(
            holes.iter().any(|b| b.after_events == 0),
            "no outage from the start"
        );
        assert!(
            holes.iter().any(|b| b.lift_after.is_some()),
            "no region coming back"
        );
        assert!(
            holes.iter().any(|b| b.lift_after.is_none()),
            "no region staying down"
        );
        assert!(
            faults
                .iter()
                .any(|f| f["kind"] == "latency" && f["region"] == "us-east-1"),
            "no slow region"
        );
        assert!(
            all.iter().any(|s| s.kills.len() == 2),
            "no repeated kill -9"
        );
        assert!(all.iter().any(|s| s.concurrent), "no concurrent run");
        for c in [Choice::Retry, Choice::Skip, Choice::Rollback, Choice::Abort] {
            assert!(all.iter().any(|s| s.decisions.contains(&c)), "no {c:?}");
        }
        for rb in EMULATOR_RUNBOOKS {
            assert!(all.iter().any(|s| s.runbook == *rb), "no {rb}");
        }
    }

    #[test]
    fn every_kind_of_chaos_appears_across_a_few_hundred_scenarios() {
        let all: Vec<Scenario> = (0..300).map(|i| scenario(1, i)).collect();
        let faults: Vec<&Value> = all
            .iter()
            .filter_map(|s| s.sim.get("fault"))
            .filter_map(Value::as_array)
            .flatten()
            .collect();
        for kind in ["throttle", "error", "latency", "hang"] {
            assert!(faults.iter().any(|f| f["kind"] == kind), "no {kind} fault");
        }
        assert!(
            faults.iter().any(|f| f["after_apply"] == true),
            "no lost response"
        );
        assert!(
            all.iter().any(|s| s.sim.contains_key("regions")),
            "no blackhole"
        );
        assert!(
            all.iter().any(|s| s.kills.len() >= 2),
            "no repeated kill -9"
        );
        assert!(all.iter().any(|s| s.concurrent), "no concurrent run");
        for c in [Choice::Retry, Choice::Skip, Choice::Rollback, Choice::Abort] {
            assert!(all.iter().any(|s| s.decisions.contains(&c)), "no {c:?}");
        }
        for o in [OnFailure::Rollback, OnFailure::Pause, OnFailure::Abort] {
            assert!(all.iter().any(|s| s.on_failure == o), "no {o:?}");
        }
        for (rb, _) in RUNBOOKS {
            assert!(all.iter().any(|s| s.runbook == *rb), "no {rb}");
        }
        let shards: Vec<u64> = all
            .iter()
            .filter_map(|s| s.sim.get("datastores")?["ldgnf-acme-sessions"]["shards"].as_u64())
            .collect();
        for n in 4..=6 {
            assert!(shards.contains(&n), "no cache of {n} shards");
        }
        assert!(
            all.iter().any(|s| s
                .sim
                .get("replication_groups")
                .is_some_and(|g| g.to_string().contains("cut_shards"))),
            "no shard cut off"
        );
    }
}
