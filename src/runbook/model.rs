//! The checked runbook: what the rest of drpilot works from.
//!
//! Every value here has passed validation: durations are parsed, `{{param}}` templates
//! are resolved, action fields match the catalogue, step ids are unique and every
//! `after` names an existing step. Defaults are already applied, so the planner and
//! engine never re-derive them. Spans are kept where a later pass (the plan) may need
//! to point back into the file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::catalogue::Spec;

/// A step's id: unique within a runbook, `[a-z0-9][a-z0-9._-]*`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct StepId(String);

impl StepId {
    /// Wraps an id. Ids read from a runbook are checked by validation; one built
    /// elsewhere (a flag, a test) is only ever compared against those.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Planned switchover (no data loss, every region healthy) or unplanned failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A switchover with RPO 0; needs every region healthy.
    Planned,
    /// A failover during an outage; may lose the writes not yet replicated.
    Unplanned,
}

/// What a step does when a region it calls is known to be unreachable: the breaker
/// (`cloud::reach`) refuses the call at once, and the step resolves at once instead of
/// retrying against a region that does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreachable {
    /// Recorded as skipped, with a warning (read-only steps only): the default for a
    /// read-only step of an unplanned runbook, whose outage is the reason for the run.
    Skip,
    /// Fails at once: the default for a read-only step of a planned runbook, which
    /// needs every region healthy.
    Fail,
    /// Left for later: recorded as deferred, the run ends once everything else is done
    /// (exit 0 when it succeeded), and `drpilot resume RUN_ID` runs it when the region
    /// is back. The default for a step the run's recovery does not depend on
    /// (housekeeping after `[objectives] recovered_when`, such as the lost-writes
    /// snapshot); only such steps may be deferred.
    Defer,
    /// Keeps retrying by the step's policy (each attempt refused at once while the
    /// region stays down; a half-open probe lets one through when it answers again):
    /// the default for a step that changes something.
    Retry,
}

impl OnUnreachable {
    /// Every value, as the runbook writes it.
    pub const NAMES: [&'static str; 4] = ["skip", "fail", "defer", "retry"];

    /// The runbook's word.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnreachable::Skip => "skip",
            OnUnreachable::Fail => "fail",
            OnUnreachable::Defer => "defer",
            OnUnreachable::Retry => "retry",
        }
    }

    /// The value for a runbook's word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(OnUnreachable::Skip),
            "fail" => Some(OnUnreachable::Fail),
            "defer" => Some(OnUnreachable::Defer),
            "retry" => Some(OnUnreachable::Retry),
            _ => None,
        }
    }
}

/// `[defaults]` deadlines of the calls every step makes, for the breaker of each
/// region (`cloud::reach`); `None` keeps drpilot's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// `read_timeout`: how long one read or poll may wait for an answer.
    pub read_timeout: Option<Duration>,
    /// `probe_timeout`: how long a region has to answer a probe before it counts as
    /// unreachable.
    pub probe_timeout: Option<Duration>,
}

/// Serializes a duration as a humantime string ("2m 30s").
pub fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

/// The `[runbook]` table.
#[derive(Clone, Debug, Serialize)]
pub struct RunbookMeta {
    /// Name of the runbook; also the name of its lock.
    pub name: String,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Planned or unplanned.
    pub mode: Mode,
}

/// The `[state]` table: a team's shared state store for this runbook, so every
/// operator and bot running it coordinates through the same journal and lock.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StateSection {
    /// `s3://bucket/prefix[?region=R]` locations (one bucket per region), or one
    /// directory.
    pub stores: Vec<String>,
}

/// The `[notify]` table: who hears of this runbook's runs, beside `--notify` and
/// `DRPILOT_NOTIFY`. A receiver's URL is a secret (a webhook's token is in it), so the
/// runbook names the environment variables that hold the URLs, never a URL.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NotifySection {
    /// Names of environment variables, each holding one or more receiver URLs
    /// (separated by whitespace or commas). An unset one is a preflight warning.
    pub urls_env: Vec<String>,
}

/// The `[objectives]` table: what a drill is measured against.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Objectives {
    /// Recovery time objective.
    #[serde(serialize_with = "ser_opt_duration")]
    pub rto: Option<Duration>,
    /// Recovery point objective.
    #[serde(serialize_with = "ser_opt_duration")]
    pub rpo: Option<Duration>,
    /// The steps whose success means service is restored (typically the verification
    /// checks): the RTO ends when the last of them is done, so housekeeping after
    /// recovery (a snapshot copy of the lost writes) does not count as downtime. Empty:
    /// the RTO ends with the run's last step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered_when: Vec<StepId>,
    /// Where each `recovered_when` entry is in the file, for validation's diagnostics.
    #[serde(skip)]
    pub recovered_when_spans: Vec<Range<usize>>,
}

/// How a failing step is retried: exponential backoff with optional jitter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub attempts: u32,
    /// Delay before the second attempt.
    #[serde(serialize_with = "ser_duration")]
    pub initial: Duration,
    /// Largest delay between attempts.
    #[serde(serialize_with = "ser_duration")]
    pub max: Duration,
    /// No new attempt starts after this much time since the first.
    #[serde(serialize_with = "ser_duration")]
    pub max_elapsed: Duration,
    /// Randomise delays so parallel retries do not synchronise.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            jitter: true,
        }
    }
}

/// The default per-step timeout when neither the step nor `[defaults]` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The most `approvers` a step may ask for: more people than a bridge call has.
pub const MAX_APPROVERS: u32 = 10;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(n: &u32) -> bool {
    *n == 1
}
/// The default gate poll interval.
pub const DEFAULT_GATE_INTERVAL: Duration = Duration::from_secs(5);

/// A field value after templating and type checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A string (also regions, ARNs, URLs and enum values).
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A capacity in Aurora capacity units (half steps).
    Acu(crate::names::Acu),
    /// A duration.
    #[serde(serialize_with = "ser_duration")]
    Duration(Duration),
    /// An array of strings.
    List(Vec<String>),
    /// An array of tables (e.g. Route 53 record sets).
    Tables(Vec<Fields>),
}

/// The action-specific fields of a step, gate or rollback, by key: a list kept sorted
/// by key, read like a map. A step has a handful of fields, and a `BTreeMap` allocates
/// a node of eleven slots for even one of them: with a map per step, the fields were the
/// largest part of a big runbook's checked model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, FieldValue)>);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether there is a value under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: FieldValue) -> Option<FieldValue> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    /// Key and value pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values, by key.
    pub fn values(&self) -> impl Iterator<Item = &FieldValue> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, FieldValue)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, FieldValue)>>(iter: I) -> Self {
        let mut fields = Fields::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a String, &'a FieldValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, FieldValue)>,
        fn(&'a (String, FieldValue)) -> (&'a String, &'a FieldValue),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// A `[step.gate]`: a check polled after the action until true or timeout.
#[derive(Clone, Debug, Serialize)]
pub struct Gate {
    /// The check's catalogue entry.
    #[serde(rename = "check", serialize_with = "ser_spec")]
    pub spec: &'static Spec,
    /// Its fields.
    pub fields: Fields,
    /// Give up after this long.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Time between polls.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
}

/// A `[step.rollback]`: the compensation run if a later failure rolls the run back.
#[derive(Clone, Debug, Serialize)]
pub struct Rollback {
    /// The action, or `None` for the step action's built-in inverse.
    #[serde(rename = "action", serialize_with = "ser_opt_spec")]
    pub spec: Option<&'static Spec>,
    /// Its fields (empty for the built-in inverse).
    pub fields: Fields,
    /// What the rollback does, in words (for plans and prompts).
    pub describe: String,
}

fn ser_spec<S: Serializer>(spec: &&'static Spec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(spec.name)
}

fn ser_opt_spec<S: Serializer>(spec: &Option<&'static Spec>, s: S) -> Result<S::Ok, S::Error> {
    match spec {
        Some(spec) => s.serialize_str(spec.name),
        None => s.serialize_str("inverse"),
    }
}

/// Where a step's parts are in the file, for diagnostics raised after validation.
#[derive(Clone, Debug, Default)]
pub struct StepSpans {
    /// The step's `id` value.
    pub id: Range<usize>,
    /// The step's `action` value.
    pub action: Range<usize>,
    /// Each `after` entry, in order.
    pub after: Vec<Range<usize>>,
    /// The keys of the step's table with their values' spans. A plain list of
    /// catalogue-interned names: a step has a handful of keys, and a map per step
    /// (plus an owned copy of each key) made spans the largest part of a big
    /// runbook's checked model.
    pub fields: Vec<(&'static str, Range<usize>)>,
}

impl StepSpans {
    /// The span of the value under `key`, if the step's table has that key.
    pub fn field(&self, key: &str) -> Option<Range<usize>> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, span)| span.clone())
    }
}

/// An `[accounts.NAME]` entry: an AWS account the runbook's steps act in, and how
/// drpilot gets credentials for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The role to assume in it (`sts:AssumeRole` from the caller's credentials);
    /// `None`: the caller's own credentials are for this account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `ExternalId` of the AssumeRole call, when the role's trust policy asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `RoleSessionName` (default `drpilot-<runbook name>`): shows in CloudTrail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// One step, with defaults applied.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Unique id.
    pub id: StepId,
    /// The action's catalogue entry.
    #[serde(rename = "action", serialize_with = "ser_spec")]
    pub spec: &'static Spec,
    /// What the step is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Steps that must succeed first.
    pub after: Vec<StepId>,
    /// Action-specific fields.
    pub fields: Fields,
    /// The `[accounts]` entry whose credentials the step (its gate and rollback too)
    /// uses; `None`: the caller's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Health gate polled after the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Compensation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Retry policy (the step's own, or `[defaults]`).
    pub retry: RetryPolicy,
    /// Timeout of the action (the gate has its own).
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Whether an operator must approve before the step runs.
    pub approval: bool,
    /// How many distinct people must approve it (`approvers`; 1 unless the runbook
    /// asks for a two-person rule). The run's own operator counts once.
    #[serde(skip_serializing_if = "is_one")]
    pub approvers: u32,
    /// `on_unreachable`: what the step does when a region it calls is known to be
    /// down; `None`: the default for its kind (see [`OnUnreachable`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_unreachable: Option<OnUnreachable>,
    /// Expected duration: `expected` if set, else the catalogue's figure plus the gate's.
    #[serde(serialize_with = "ser_duration")]
    pub expected: Duration,
    /// Positions in the file.
    #[serde(skip)]
    pub spans: StepSpans,
}

impl Step {
    /// Whether running this step changes anything in the world.
    pub fn is_mutating(&self) -> bool {
        self.spec.is_mutating()
    }

    /// Whether a planned run's RTO clock starts with this step ([`Spec::starts_rto_clock`]).
    pub fn starts_rto_clock(&self) -> bool {
        self.spec.starts_rto_clock()
    }
}

/// A whole runbook that passed validation.
#[derive(Clone, Debug, Serialize)]
pub struct Runbook {
    /// `[runbook]`.
    pub runbook: RunbookMeta,
    /// `[objectives]`.
    pub objectives: Objectives,
    /// `[params]`, as strings.
    pub params: BTreeMap<String, String>,
    /// `[accounts]`, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, Account>,
    /// `[state]`: where this runbook's runs and lock live, unless `--state` or
    /// `DRPILOT_STATE` say otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSection>,
    /// `[notify]`: the environment variables holding notification receivers' URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySection>,
    /// `[defaults]` `read_timeout` and `probe_timeout`.
    #[serde(skip)]
    pub deadlines: Deadlines,
    /// The steps in file order.
    pub steps: Vec<Step>,
}

impl Runbook {
    /// A step by id.
    pub fn step(&self, id: &StepId) -> Option<&Step> {
        self.steps.iter().find(|s| &s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_like_a_sorted_map() {
        let mut f = Fields::new();
        assert!(f.is_empty());
        assert_eq!(f.insert("region".into(), FieldValue::Str("b".into())), None);
        assert_eq!(f.insert("cluster".into(), FieldValue::Int(1)), None);
        assert_eq!(f.insert("wait".into(), FieldValue::Bool(true)), None);
        // Replacing keeps one entry and hands back the old value.
        assert_eq!(
            f.insert("cluster".into(), FieldValue::Int(2)),
            Some(FieldValue::Int(1))
        );
        assert_eq!(f.len(), 3);
        assert_eq!(
            f.keys().map(String::as_str).collect::<Vec<_>>(),
            ["cluster", "region", "wait"]
        );
        assert_eq!(f.get("cluster"), Some(&FieldValue::Int(2)));
        assert!(f.contains_key("wait") && !f.contains_key("nope"));
        assert_eq!(f.remove("region"), Some(FieldValue::Str("b".into())));
        assert_eq!(f.remove("region"), None);
        // Serialized as a map in key order, exactly as the BTreeMap it replaced was.
        let built: Fields = [
            ("z".to_string(), FieldValue::Int(1)),
            ("a".to_string(), FieldValue::Bool(false)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            r#"{"a":false,"z":1}"#
        );
        let from_map: BTreeMap<String, FieldValue> =
            built.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(
            serde_json::to_string(&from_map).unwrap(),
            serde_json::to_string(&built).unwrap()
        );
    }

    #[test]
    fn step_spans_find_a_key_or_nothing() {
        let spans = StepSpans {
            fields: vec![("id", 3..7), ("gate", 40..90)],
            ..StepSpans::default()
        };
        assert_eq!(spans.field("gate"), Some(40..90));
        assert_eq!(spans.field("rollback"), None);
    }
}
