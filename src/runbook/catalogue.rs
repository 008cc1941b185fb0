//! The catalogue: every action and gate check a runbook may name, with its fields.
//!
//! This is the single source of truth for the runbook vocabulary. Validation checks
//! fields against it, the planner reads expected durations and effects from it, and the
//! JSON Schema is generated from it, so the three can never disagree. Implementations
//! live elsewhere (`actions/`); an entry here only says what a step may ask for.
//!
//! Every gate check is also usable as a step action: as an action it is evaluated once
//! (retried by the step's retry policy) and fails when false, which is how readiness
//! checks such as "Aurora lag is under the RPO" become steps others can depend on.

use std::time::Duration;

pub use super::kind::Kind;
use super::model::{FieldValue, Fields};

mod markdown;

pub use markdown::markdown;

/// The type of one field, checked during validation.
#[derive(Clone, Copy, Debug)]
pub enum FieldKind {
    /// Any string (after `{{param}}` templating).
    Str,
    /// An AWS region name such as `us-west-2`.
    Region,
    /// An Aurora DB cluster ARN (`arn:aws:rds:REGION:ACCOUNT:cluster:NAME`).
    ClusterArn,
    /// Like [`FieldKind::ClusterArn`], or `auto` for "the least-lagged secondary".
    ClusterArnOrAuto,
    /// A humantime duration string: "90s", "5m", "1h 30m".
    Duration,
    /// `true` or `false`.
    Bool,
    /// An integer within bounds (inclusive).
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A number of Aurora capacity units in half steps (`0.5`, `8`, `40.5`), within
    /// bounds (inclusive).
    Acu {
        /// Smallest allowed value.
        min: crate::names::Acu,
        /// Largest allowed value.
        max: crate::names::Acu,
    },
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A non-empty array of strings.
    StrList,
    /// An `http://` or `https://` URL.
    Url,
    /// An array of tables, each checked against the nested fields.
    TableList(&'static [FieldSpec]),
}

impl FieldKind {
    /// What a value of this kind looks like, for "expected ..." messages.
    pub fn expected(&self) -> String {
        match self {
            FieldKind::Str => "a string".into(),
            FieldKind::Region => "an AWS region such as \"us-west-2\"".into(),
            FieldKind::ClusterArn => {
                "a DB cluster ARN \"arn:aws:rds:REGION:ACCOUNT:cluster:NAME\"".into()
            }
            FieldKind::ClusterArnOrAuto => {
                "a DB cluster ARN \"arn:aws:rds:REGION:ACCOUNT:cluster:NAME\" or \"auto\"".into()
            }
            FieldKind::Duration => "a duration such as \"90s\" or \"5m\"".into(),
            FieldKind::Bool => "true or false".into(),
            FieldKind::Int { min, max } => format!("an integer from {min} to {max}"),
            FieldKind::Acu { min, max } => {
                format!("a number of ACUs from {min} to {max} in steps of 0.5")
            }
            FieldKind::Enum(values) => format!("one of {}", quoted_list(values)),
            FieldKind::StrList => "a non-empty array of strings".into(),
            FieldKind::Url => "an http:// or https:// URL".into(),
            FieldKind::TableList(_) => "an array of tables".into(),
        }
    }
}

/// `"a", "b" or "c"`.
pub fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// One field of an action or check.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// The TOML key.
    pub name: &'static str,
    /// Its type.
    pub kind: FieldKind,
    /// Whether a step must give it.
    pub required: bool,
    /// One line for the schema and for error help.
    pub doc: &'static str,
}

const fn req(name: &'static str, kind: FieldKind, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, kind: FieldKind, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
        doc,
    }
}

/// Where an entry may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// Only as a step's or rollback's `action`.
    Action,
    /// As a `[step.gate]` check, and as a read-only step action.
    Check,
}

/// What a mutating action changes, for the plan ("which steps mutate what where").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Effect {
    /// The API call that changes state, e.g. `FailoverGlobalCluster`.
    pub call: &'static str,
    /// The resource it changes.
    pub resource: String,
    /// The region the call is sent to, or how it is chosen at run time.
    pub region: String,
}

/// One entry of the catalogue.
#[derive(Debug)]
pub struct Spec {
    /// The name used in runbooks, e.g. `aurora.failover` (`kind.name()`).
    pub name: &'static str,
    /// The registry's key: what every per-action `match` dispatches on.
    pub kind: Kind,
    /// Action only, or check (usable as gate and as read-only action).
    pub usage: Usage,
    /// What it does, for the schema and `--help`-style listings.
    pub doc: &'static str,
    /// Its fields.
    pub fields: &'static [FieldSpec],
    /// How long it usually takes, used for the critical path unless a step sets
    /// `expected`. `None` means it is computed from fields (see [`Spec::expected`]).
    expected: Option<Duration>,
    /// What it mutates, `None` for read-only entries.
    effect: Option<fn(&Fields) -> Effect>,
    /// What a `[step.rollback]` without `action` does for this action, if it has a
    /// built-in inverse.
    pub inverse: Option<&'static str>,
}

impl Spec {
    /// Whether the action changes anything in the world.
    pub fn is_mutating(&self) -> bool {
        self.effect.is_some()
    }

    /// Whether a planned run's RTO clock starts when a step of this action starts: it
    /// changes something that may interrupt service (every mutation but a capacity
    /// change, see [`Kind::only_sizes_capacity`]).
    pub fn starts_rto_clock(&self) -> bool {
        self.is_mutating() && !self.kind.only_sizes_capacity()
    }

    /// What the action changes, given a step's validated fields.
    pub fn effect(&self, fields: &Fields) -> Option<Effect> {
        self.effect.map(|f| f(fields))
    }

    /// The expected duration of this action with these fields.
    pub fn expected(&self, fields: &Fields) -> Duration {
        if let Some(d) = self.expected {
            return d;
        }
        // `wait` is the one entry whose duration is a field.
        match fields.get("duration") {
            Some(FieldValue::Duration(d)) => *d,
            _ => Duration::ZERO,
        }
    }

    /// The spec of a field by name.
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Looks an entry up by name.
pub fn lookup(name: &str) -> Option<&'static Spec> {
    CATALOGUE.iter().find(|s| s.name == name)
}

/// Names of entries usable as step actions.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|s| s.name)
}

/// Names of entries usable as gate checks.
pub fn check_names() -> impl Iterator<Item = &'static str> {
    CATALOGUE
        .iter()
        .filter(|s| s.usage == Usage::Check)
        .map(|s| s.name)
}

mod entries;
mod fields;

pub use entries::CATALOGUE;
pub use fields::ROUTING_CONTROL_STATES;

// Region names and ARNs are read below the runbook too (the cloud seam, the state
// store): one definition, in a leaf.
pub use crate::names::{arn_region, is_region};

/// How people name a routing control: `routingcontrol/ID`, the tail of its ARN
/// (`arn:aws:route53-recovery-control::ACCOUNT:controlpanel/ID/routingcontrol/ID`), which
/// is unique within the account; anything else is shown whole.
pub fn routing_control_label(arn: &str) -> &str {
    match arn.rfind("routingcontrol/") {
        Some(i) => &arn[i..],
        None => arn,
    }
}

const SECRET_HELP_FIELDS: &[&str] = &["password", "secret", "token", "auth"];

/// Keys that must never hold a secret: the validator points at `password_env` instead.
pub fn looks_like_secret_key(key: &str) -> bool {
    SECRET_HELP_FIELDS.iter().any(|s| key.contains(s)) && !key.ends_with("_env")
}

/// The credential in a URL's `user:password@` (or `token@`) part: the password, or the
/// whole user part when there is no password (a token used as the user name). A URL
/// with one is refused in a runbook — secrets never go there — and messages that echo
/// a URL blank it in case one arrives some other way.
pub fn url_credential(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let secret = match userinfo.split_once(':') {
        Some((_user, password)) => password,
        None => userinfo,
    };
    (!secret.is_empty()).then_some(secret)
}

#[cfg(test)]
mod tests;
