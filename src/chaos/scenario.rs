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
    /// The runbook, relative to the repository root.
    pub runbook: String,
    /// The simulated world's `--seed`.
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
}

impl Scenario {
    /// Reads a scenario file's text.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| e.to_string())
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
    fn unknown_keys_are_refused() {
        let e = Scenario::from_toml("name = \"x\"\nrunbook = \"r\"\nseed = 1\nkill = [1]\n")
            .unwrap_err();
        assert!(e.contains("kill"), "{e}");
    }
}
