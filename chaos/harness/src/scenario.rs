//! A scenario as data: the TOML file a generated scenario is written to and a
//! hand-written one is read from, so any failure replays from its file.
//!
//! ```toml
//! name = "lost-failover-response-then-kill"
//! runbook = "runbooks/region-failover.toml"   # relative to the repository root
//! seed = 11                                   # the world's --seed
//! on_failure = "pause"                        # the run's --on-failure
//! kills = [9, 4]                              # SIGKILL after this many events: the run, then each resume
//! concurrent = true                           # a second run races the first for the lock
//! decisions = ["abort", "retry"]              # operator choices, in order, each time the run stops
//!
//! [sim.regions.us-east-1]                     # `[sim]` is the --sim-config, verbatim
//! unreachable_from = "2m"
//! [[sim.fault]]
//! kind = "error"
//! operation = "FailoverGlobalCluster"
//! after_apply = true
//! times = 1
//! ```
//!
//! Against the AWS emulator (`chaos/emulator`) instead of the simulated world:
//!
//! ```toml
//! name = "lost-failover-response-emulator"
//! target = "emulator"
//! runbook = "runbooks/region-failover.toml"
//! seed = 5                                    # the emulator's fault RNG (`/_drpilot/seed`)
//! kills = [12]
//!
//! [emulator]
//! blackhole = { region = "us-east-1", after_events = 9, mode = "reset", lift_after = "10s" }
//! # or held from before the run, one service only, back after 25 s:
//! # blackhole = { region = "us-east-1", after_events = 0, mode = "hold", hold_seconds = 60,
//! #               services = ["s3"], lift_after = "25s" }
//! [[emulator.faults]]                         # POSTed to /_drpilot/faults, verbatim
//! kind = "drop_response"
//! service = "rds"
//! operation = "FailoverGlobalCluster"
//! mode = "reset"
//! count = 1
//! ```

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `--on-failure` for the scenario's first run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Roll back at once.
    Rollback,
    /// Stop and wait for an operator (exit 3).
    Pause,
    /// Stop, resumable (exit 4).
    Abort,
}

impl OnFailure {
    /// The flag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Pause => "pause",
            OnFailure::Abort => "abort",
        }
    }
}

/// An operator's choice when the run stops for one (`drpilot resume --<choice>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// `--retry`.
    Retry,
    /// `--skip`.
    Skip,
    /// `--rollback`.
    Rollback,
    /// `--abort`.
    Abort,
}

impl Choice {
    /// The `resume` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Choice::Retry => "--retry",
            Choice::Skip => "--skip",
            Choice::Rollback => "--rollback",
            Choice::Abort => "--abort",
        }
    }
}

/// What a scenario runs against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The simulated world (`--sim`), configured by `[sim]`.
    #[default]
    Sim,
    /// The AWS emulator (`chaos/emulator`), configured by `[emulator]`.
    Emulator,
}

impl Target {
    fn is_sim(&self) -> bool {
        *self == Target::Sim
    }
}

/// A region blackhole set through the emulator's control API once the scenario's
/// processes have printed `after_events` events in all (the "random moment"; 0: before
/// the first process starts, so the run begins with the region already dark).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackhole {
    /// The region whose requests get no answer (by their SigV4 scope).
    pub region: String,
    /// Events printed (by every process of the scenario, counted together) before it starts.
    pub after_events: u32,
    /// `reset` (connections reset at once) or `hold` (held without an answer).
    #[serde(default = "default_blackhole_mode")]
    pub mode: String,
    /// Only these services' requests (SigV4 signing names: `rds`, `s3`, ...): a
    /// one-service outage. Absent: the whole region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// How long (real seconds) a held request is kept before its connection closes;
    /// absent: the emulator's `blackhole.hold_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<f64>,
    /// Lifted this long (real time) after it started; absent: until the runs end.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde_opt"
    )]
    pub lift_after: Option<std::time::Duration>,
}

fn default_blackhole_mode() -> String {
    "reset".into()
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// The `[emulator]` table: what the AWS emulator does during the scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorSpec {
    /// Fault rules, each POSTed to `/_drpilot/faults` verbatim before the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Value>,
    /// A region blackhole starting at an event count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<Blackhole>,
    /// A partial `/_drpilot/config` update, POSTed before the run.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
}

impl EmulatorSpec {
    fn is_empty(&self) -> bool {
        *self == EmulatorSpec::default()
    }
}

/// What a hand-written scenario is for, checked on top of the invariants: the last
/// process's exit, the steps' ends, what the run reported of the regions. Region
/// entries are `"REGION SERVICE"` (`"us-east-1 rds"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exit code of the scenario's last `drpilot` process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// Exactly these steps deferred by the last `run_finished`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<Vec<String>>,
    /// Steps the journal shows succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded: Vec<String>,
    /// Steps the journal shows skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Reported unreachable at some point (`region_status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
    /// Never reported unreachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_unreachable: Vec<String>,
    /// Reported slow at some point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow: Vec<String>,
    /// Reported reachable after having been reported unreachable: back in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub back: Vec<String>,
}

impl Expect {
    fn is_empty(&self) -> bool {
        *self == Expect::default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_on_failure() -> OnFailure {
    OnFailure::Pause
}

/// One chaos scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for people (generated ones: `gen-SEED-INDEX`).
    pub name: String,
    /// The simulated world (default) or the AWS emulator.
    #[serde(default, skip_serializing_if = "Target::is_sim")]
    pub target: Target,
    /// The runbook, relative to the repository root.
    pub runbook: String,
    /// The simulated world's `--seed`; against the emulator, the seed of its fault RNG.
    pub seed: u64,
    /// The first run's `--on-failure`.
    #[serde(default = "default_on_failure")]
    pub on_failure: OnFailure,
    /// Kill -9 points: the run is killed after this many events, then each `resume`
    /// after the next number of events, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kills: Vec<u32>,
    /// A second `drpilot run` of the same runbook starts while the first holds the lock.
    #[serde(default, skip_serializing_if = "is_false")]
    pub concurrent: bool,
    /// What the operator answers, in order, each time the run stops for a decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Choice>,
    /// The `--sim-config`, as a TOML table.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub sim: Map<String, Value>,
    /// The emulator's faults and blackhole (`target = "emulator"` only).
    #[serde(default, skip_serializing_if = "EmulatorSpec::is_empty")]
    pub emulator: EmulatorSpec,
    /// What the scenario is for (hand-written ones), checked besides the invariants.
    #[serde(default, skip_serializing_if = "Expect::is_empty")]
    pub expect: Expect,
}

impl Scenario {
    /// Reads a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        match s.target {
            Target::Emulator if !s.sim.is_empty() => Err(
                "[sim] configures the simulated world: a scenario with target = \"emulator\" \
                 sets its faults and blackhole in [emulator]"
                    .into(),
            ),
            Target::Sim if !s.emulator.is_empty() => Err(
                "[emulator] needs target = \"emulator\" (this scenario runs in the simulated world)"
                    .into(),
            ),
            _ => Ok(s),
        }
    }

    /// The scenario as a TOML file.
    pub fn to_toml(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut out = String::new();
        if let Value::Object(m) = v {
            emit_table(&mut out, &[], &m);
        }
        out
    }

    /// The `--sim-config` file's text.
    pub fn sim_config(&self) -> String {
        let mut out = String::new();
        emit_table(&mut out, &[], &self.sim);
        out
    }
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object))
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn dotted(path: &[String]) -> String {
    path.iter().map(|k| key(k)).collect::<Vec<_>>().join(".")
}

fn inline(v: &Value) -> String {
    match v {
        // JSON string escapes are valid in a TOML basic string.
        Value::String(_) | Value::Bool(_) => v.to_string(),
        Value::Number(n) => {
            let s = n.to_string();
            if n.is_f64() && !s.contains(['.', 'e', 'E']) {
                format!("{s}.0")
            } else {
                s
            }
        }
        Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Null => "\"\"".into(),
    }
}

/// Writes a table the way a person would: its plain keys, then its sub-tables, then
/// its arrays of tables.
fn emit_table(out: &mut String, path: &[String], m: &Map<String, Value>) {
    for (k, v) in m {
        if v.is_null() || v.is_object() || is_table_array(v) {
            continue;
        }
        let _ = writeln!(out, "{} = {}", key(k), inline(v));
    }
    for (k, v) in m {
        if let Value::Object(sub) = v {
            let mut p = path.to_vec();
            p.push(k.clone());
            // A table holding only tables needs no header of its own.
            if sub.values().any(|v| !(v.is_object() || is_table_array(v))) || sub.is_empty() {
                let _ = writeln!(out, "\n[{}]", dotted(&p));
            }
            emit_table(out, &p, sub);
        }
    }
    for (k, v) in m {
        if let (true, Value::Array(items)) = (is_table_array(v), v) {
            let mut p = path.to_vec();
            p.push(k.clone());
            for item in items {
                let _ = writeln!(out, "\n[[{}]]", dotted(&p));
                if let Value::Object(t) = item {
                    emit_table(out, &p, t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_scenario_round_trips() {
        let text = r#"
name = "x"
runbook = "runbooks/region-failover.toml"
seed = 11
on_failure = "rollback"
kills = [9, 4]
concurrent = true
decisions = ["abort", "retry"]

[sim.regions.us-east-1]
unreachable_from = "2m"

[sim.routing_controls."arn:aws:x/y"]
state = "On"

[[sim.fault]]
kind = "error"
operation = "FailoverGlobalCluster"
rate = 0.5
after_apply = true
times = 1
"#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(s.kills, vec![9, 4]);
        assert_eq!(s.decisions, vec![Choice::Abort, Choice::Retry]);
        let again = Scenario::from_toml(&s.to_toml()).unwrap();
        assert_eq!(again, s, "{}", s.to_toml());
        let cfg = s.sim_config();
        assert!(cfg.contains("[regions.us-east-1]"), "{cfg}");
        assert!(cfg.contains("[[fault]]"), "{cfg}");
        assert!(cfg.contains("[routing_controls.\"arn:aws:x/y\"]"), "{cfg}");
    }

    #[test]
    fn an_emulator_scenario_round_trips_and_refuses_sim_tables() {
        let text = r#"
name = "e"
target = "emulator"
runbook = "runbooks/region-failover.toml"
seed = 5
kills = [12]

[emulator]
blackhole = { region = "us-east-1", after_events = 9, mode = "reset", lift_after = "10s" }
config = { rds = { failover_seconds = 30 } }

[[emulator.faults]]
kind = "drop_response"
service = "rds"
operation = "FailoverGlobalCluster"
mode = "reset"
count = 1
"#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(s.target, Target::Emulator);
        let bh = s.emulator.blackhole.clone().unwrap();
        assert_eq!(bh.lift_after, Some(std::time::Duration::from_secs(10)));
        assert_eq!(s.emulator.faults[0]["kind"], "drop_response");
        let again = Scenario::from_toml(&s.to_toml()).unwrap();
        assert_eq!(again, s, "{}", s.to_toml());
        let with_sim = format!("{text}\n[sim.regions.us-east-1]\nunreachable_from = \"1s\"\n");
        let e = Scenario::from_toml(&with_sim).unwrap_err();
        assert!(e.contains("[sim]"), "{e}");
        let e = Scenario::from_toml(&text.replace("target = \"emulator\"\n", "")).unwrap_err();
        assert!(e.contains("[emulator]"), "{e}");
        let e = Scenario::from_toml(
            &text.replace("mode = \"reset\", ", "mode = \"reset\", when = 3, "),
        )
        .unwrap_err();
        assert!(e.contains("when"), "{e}");
        // A held, one-service outage from the start.
        let held = Scenario::from_toml(&text.replace(
            "after_events = 9, mode = \"reset\"",
            "after_events = 0, mode = \"hold\", hold_seconds = 60, services = [\"s3\"]",
        ))
        .unwrap();
        let bh = held.emulator.blackhole.clone().unwrap();
        assert_eq!(
            (
                bh.after_events,
                bh.mode.as_str(),
                bh.hold_seconds,
                bh.services
            ),
            (0, "hold", Some(60.0), Some(vec!["s3".to_string()]))
        );
        assert_eq!(Scenario::from_toml(&held.to_toml()).unwrap(), held);
    }

    /// The hand-written scenarios in chaos/scenarios parse (the test command runs them).
    #[test]
    fn the_hand_written_scenarios_parse() {
        // This crate is chaos/harness; the scenarios are beside it.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for dir in [root.clone(), root.join("emulator")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    Scenario::from_toml(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Scenario::from_toml("name = \"x\"\nrunbook = \"r\"\nseed = 1\nkill = [1]\n")
            .unwrap_err();
        assert!(e.contains("kill"), "{e}");
    }
}
