//! Random but seeded scenarios: the same `--seed` gives the same scenarios forever
//! (SplitMix64, keyed by the seed and the scenario's index, so scenario 17 does not
//! change when `--count` does).

use serde_json::{Map, Value, json};

use super::scenario::{Choice, OnFailure, Scenario};
use crate::sim::{OPERATIONS, SplitMix64};

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
    "FailoverGlobalReplicationGroup",
    "DisassociateGlobalReplicationGroup",
    "ChangeResourceRecordSets",
    "UpdateHealthCheck",
    "UpdateRoutingControlStates",
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
    Scenario {
        name: format!("gen-{seed}-{index}"),
        runbook: runbook.into(),
        seed: rng.below(1 << 32),
        on_failure,
        kills,
        concurrent,
        decisions,
        sim,
    }
}

fn fault(rng: &mut Rng) -> Value {
    let (service, ops) = rng.pick(OPERATIONS);
    let operation = *rng.pick(ops);
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
            crate::sim::SimConfig::parse(std::path::Path::new("sim.toml"), &cfg)
                .unwrap_or_else(|e| panic!("{e}\n{cfg}"));
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
    }
}
