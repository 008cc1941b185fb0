//! Pass 1 and 2: TOML syntax, then the runbook's structure, types and templates.
//!
//! The TOML parser recovers from syntax errors and reports all of them with spans. If
//! the syntax is sound, a walker reads the spanned tree table by table: every key is
//! either consumed by a reader or reported as unknown (with a "did you mean"), every
//! value is type-checked against the catalogue, and problems are collected rather than
//! returned, so one pass reports everything wrong with a file. Cross-step checks (ids,
//! `after`, cycles, mode rules) are the next pass, in `validate`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::catalogue::{self, is_region};
use super::diag::{Diagnostics, did_you_mean};
use super::model::{
    Account, DEFAULT_TIMEOUT, Deadlines, NotifySection, Objectives, RetryPolicy, RunbookMeta,
    StateSection, Step, StepId, StepSpans,
};
use super::reader::{self, Table, Val};
use super::template;

mod fields;
mod sections;
mod steps;

const ROOT_KEYS: &[&str] = &[
    "runbook",
    "objectives",
    "params",
    "accounts",
    "defaults",
    "state",
    "notify",
    "step",
];
const STATE_KEYS: &[&str] = &["stores"];
const NOTIFY_KEYS: &[&str] = &["urls_env"];
const RUNBOOK_KEYS: &[&str] = &["name", "description", "mode"];
const OBJECTIVE_KEYS: &[&str] = &["rto", "rpo", "recovered_when"];
const DEFAULT_KEYS: &[&str] = &["retry", "timeout", "read_timeout", "probe_timeout"];
/// The longest `probe_timeout`: a probe listens this long for a late answer anyway
/// (`cloud::reach`'s patience), and a region silent for longer is not slow.
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `read_timeout`: a read that needs more is a step's job (`timeout`).
const MAX_READ_TIMEOUT: Duration = Duration::from_secs(600);
const RETRY_KEYS: &[&str] = &["attempts", "initial", "max", "max_elapsed", "jitter"];
const STEP_KEYS: &[&str] = &[
    "id",
    "action",
    "description",
    "after",
    "account",
    "approval",
    "approvers",
    "timeout",
    "retry",
    "on_unreachable",
    "expected",
    "gate",
    "rollback",
];
const GATE_KEYS: &[&str] = &["check", "timeout", "interval"];
const ROLLBACK_KEYS: &[&str] = &["action"];
pub(crate) const ACCOUNT_KEYS: &[&str] = &["id", "role_arn", "external_id", "session_name"];
/// Parts of key names that say the value would be a credential. An account table takes
/// none, not even an `_env` indirection: credentials come from the caller's environment
/// and from the roles it assumes, never from the runbook.
const CREDENTIAL_HINTS: &[&str] = &[
    "access_key",
    "accesskey",
    "secret",
    "token",
    "password",
    "credential",
];

/// What AWS accepts in a string parameter of `sts:AssumeRole`: letters, digits, `_` and
/// `extra`, `min..=max` characters. Shared with the JSON Schema so both say the same.
pub(crate) struct Charset {
    /// Accepted besides ASCII letters, digits and `_` (AWS's `\w`).
    pub extra: &'static str,
    /// Fewest characters.
    pub min: usize,
    /// Most characters.
    pub max: usize,
}

/// `ExternalId`: `[\w+=,.@:/-]{2,1224}`.
pub(crate) const EXTERNAL_ID: Charset = Charset {
    extra: "+=,.@:/-",
    min: 2,
    max: 1224,
};
/// `RoleSessionName`: `[\w+=,.@-]{2,64}`.
pub(crate) const SESSION_NAME: Charset = Charset {
    extra: "+=,.@-",
    min: 2,
    max: 64,
};

impl Charset {
    /// Why AWS would refuse `s`, if it would.
    fn problem(&self, s: &str) -> Option<String> {
        if let Some(c) = s
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || self.extra.contains(c)))
        {
            return Some(format!("`{c}` is not accepted"));
        }
        let n = s.chars().count();
        (n < self.min || n > self.max).then(|| format!("it is {n} characters long"))
    }

    /// "2-64 letters, digits or `_+=,.@-`", for labels.
    fn expected(&self) -> String {
        format!(
            "{}-{} letters, digits or `_{}`",
            self.min, self.max, self.extra
        )
    }

    /// The same rule as a regular expression (ECMA 262 and Rust's `regex` alike).
    pub(crate) fn pattern(&self) -> String {
        // Only `-` means something inside a class; escaped, it is literal in both.
        let extra = self.extra.replace('-', "\\-");
        format!("^[A-Za-z0-9_{extra}]{{{},{}}}$", self.min, self.max)
    }
}

/// What pass 2 produces: the parts of a runbook, before cross-step checks.
#[derive(Debug)]
pub(crate) struct Draft {
    pub meta: Option<RunbookMeta>,
    pub objectives: Objectives,
    pub params: BTreeMap<String, String>,
    pub accounts: BTreeMap<String, Account>,
    pub state: Option<StateSection>,
    pub notify: Option<NotifySection>,
    pub deadlines: Deadlines,
    pub steps: Vec<Step>,
    /// Id and `after` of every step whose id could be read, valid or not, so cross-step
    /// checks do not report a broken step's dependents as dangling.
    pub outlines: Vec<Outline>,
    /// Byte ranges of values that look like secrets; blanked before rendering.
    pub secrets: Vec<Range<usize>>,
}

/// The identity and dependencies of a step, read even when the rest of it is broken.
/// A valid step's are not copied: they are in `Draft::steps`.
#[derive(Debug)]
pub(crate) enum Outline {
    /// A fully valid step: index into `Draft::steps`.
    Valid(usize),
    /// A step whose id could be read but not all the rest.
    Broken(Box<Skeleton>),
}

/// What could be read of a broken step.
#[derive(Debug)]
pub(crate) struct Skeleton {
    pub id: StepId,
    pub spans: StepSpans,
    pub after: Vec<StepId>,
}

impl Outline {
    /// The step's id, spans and `after`, wherever they are kept.
    pub fn parts<'a>(&'a self, steps: &'a [Step]) -> (&'a StepId, &'a StepSpans, &'a [StepId]) {
        match self {
            Outline::Valid(i) => {
                let s = &steps[*i];
                (&s.id, &s.spans, &s.after)
            }
            Outline::Broken(b) => (&b.id, &b.spans, &b.after),
        }
    }
}

/// What reading one `[[step]]` gave.
// A return value, moved once into `Draft::steps`: boxing the step would only add an
// allocation per step.
#[allow(clippy::large_enum_variant)]
enum StepRead {
    /// Not even an id: nothing can refer to it.
    Unreadable,
    /// An id (and what else could be read), but not a valid step.
    Broken(Skeleton),
    /// A valid step.
    Valid(Step),
}

/// Parses and checks one file's text; problems go to `diags`.
///
/// Returns `None` when the TOML itself is broken (then only syntax errors are reported,
/// since everything after would be guesswork).
///
/// `[params]` values are replaced by `overrides` (`--param KEY=VALUE`) before any
/// template is rendered. An override must name a parameter the runbook declares: a typo
/// must not leave the runbook's own value in place unnoticed.
pub(crate) fn parse_with(
    text: &str,
    overrides: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> Option<Draft> {
    let file_span = 0..text.len().min(1);
    if text.trim().is_empty() {
        diags
            .error(file_span, "the file is empty", "expected a runbook")
            .help = Some("a runbook has a [runbook] table and at least one [[step]]".into());
        return None;
    }
    let root = reader::parse_document(text, diags)?;
    let mut w = Walker {
        src: text,
        d: diags,
        params: BTreeMap::new(),
        account_names: Vec::new(),
        secrets: Vec::new(),
    };
    let root_span = root.span();
    let mut root_map = root.into_inner();
    // The steps are taken out of the tree and each one's subtree is dropped once read,
    // so a big runbook's parsed TOML and checked model are never both whole in memory.
    let step_value = root_map.remove("step");
    let mut root = Table::new(&root_map, root_span.clone(), "the file");

    // A misspelt section (`[[steps]]`) is reported once, as an unknown key with a
    // "did you mean"; saying the real section is missing too would be noise.
    let misspelt = |want: &str| {
        root.map
            .keys()
            .any(|k| k.get_ref() != want && did_you_mean(k.get_ref(), [want]) == Some(want))
    };
    let (runbook_misspelt, step_misspelt) = (misspelt("runbook"), misspelt("step"));
    // Params first: every templated string below needs them.
    let params_span = root.map.get_key_value("params").map(|(k, _)| k.span());
    if let Some(v) = root.take("params") {
        w.params(v);
    }
    for (key, value) in overrides {
        let span = params_span.clone().unwrap_or(file_span.clone());
        if !w.params.contains_key(key) {
            let known: Vec<&str> = w.params.keys().map(String::as_str).collect();
            w.d.error(
                span,
                format!("--param {key}: the runbook has no parameter `{key}`"),
                "parameters are declared here",
            )
            .help = Some(match did_you_mean(key, known.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None if known.is_empty() => "the runbook declares no [params]".into(),
                None => format!("declared: {}", known.join(", ")),
            });
        } else if value.contains("{{") {
            w.d.error(
                span,
                format!("--param {key}: the value uses a template"),
                "parameters are plain values",
            );
        } else {
            w.params.insert(key.clone(), value.clone());
        }
    }
    // Accounts before steps, which name them.
    let accounts = match root.take("accounts") {
        Some(v) => w.accounts(v),
        None => BTreeMap::new(),
    };
    let meta = match root.take("runbook") {
        Some(v) => w.meta(v),
        None if runbook_misspelt => None,
        None => {
            w.d.error(
                file_span.clone(),
                "missing [runbook] table",
                "expected [runbook] with name and mode",
            )
            .help = Some(
                "start the file with:\n[runbook]\nname = \"region-failover\"\nmode = \"unplanned\""
                    .into(),
            );
            None
        }
    };
    let objectives = root
        .take("objectives")
        .map(|v| w.objectives(v))
        .unwrap_or_default();
    let state = root.take("state").and_then(|v| w.state(v));
    let notify = root.take("notify").and_then(|v| w.notify(v));
    let (retry, timeout, deadlines) = match root.take("defaults") {
        Some(v) => w.defaults(v),
        None => (
            RetryPolicy::default(),
            DEFAULT_TIMEOUT,
            Deadlines::default(),
        ),
    };
    let (steps, outlines) = match step_value {
        Some(v) => w.steps(v, &retry, timeout),
        None if step_misspelt => (Vec::new(), Vec::new()),
        None => {
            w.d.error(
                file_span.clone(),
                "the runbook has no steps",
                "expected at least one [[step]]",
            );
            (Vec::new(), Vec::new())
        }
    };
    w.finish(root, ROOT_KEYS);
    let secrets = w.secrets;
    Some(Draft {
        meta,
        objectives,
        params: w.params,
        accounts,
        state,
        notify,
        deadlines,
        steps,
        outlines,
        secrets,
    })
}

/// An array of step ids as read: the value (for its span) and each id with its span.
struct StepIds<'a, 'i> {
    value: &'a Val<'i>,
    ids: Vec<StepId>,
    spans: Vec<Range<usize>>,
}

struct Walker<'s, 'd> {
    src: &'s str,
    d: &'d mut Diagnostics,
    params: BTreeMap<String, String>,
    /// Every `[accounts]` name, the broken entries too, so a step naming a broken
    /// account is not also reported as naming an unknown one.
    account_names: Vec<String>,
    secrets: Vec<Range<usize>>,
}

/// `arn:aws:rds:us-west-2:111122223333:cluster:name` (any aws partition).
fn cluster_arn_problem(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.splitn(7, ':').collect();
    if parts.len() != 7 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        return Some(format!("`{s}` is not an ARN"));
    }
    if parts[2] != "rds" {
        return Some(format!("the ARN's service is `{}`, not rds", parts[2]));
    }
    if !is_region(parts[3]) {
        return Some(format!(
            "the ARN's region `{}` is not an AWS region",
            parts[3]
        ));
    }
    if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "the ARN's account `{}` is not a 12-digit account id",
            parts[4]
        ));
    }
    if parts[5] != "cluster" {
        return Some(format!(
            "the ARN names a `{}`, not a cluster (\"...:cluster:NAME\")",
            parts[5]
        ));
    }
    if parts[6].is_empty() {
        return Some("the ARN's cluster name is empty".into());
    }
    None
}

fn is_url(s: &str) -> bool {
    ["http://", "https://"].iter().any(|p| {
        s.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

/// `role_arn`: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`; returns the account.
fn role_arn_account(s: &str) -> Result<&str, String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [head, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(format!("`{s}` is not an ARN"));
    };
    let partition_ok = *partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|rest| {
            rest.split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        });
    if *head != "arn" || !partition_ok {
        return Err(format!("`{s}` is not an ARN"));
    }
    if *service != "iam" {
        return Err(format!("the ARN's service is `{service}`, not iam"));
    }
    if !region.is_empty() {
        return Err(format!(
            "the ARN has a region (`{region}`); IAM ARNs are global and have none"
        ));
    }
    if !is_account_id(account) {
        return Err(format!(
            "the ARN's account `{account}` is not a 12-digit account id"
        ));
    }
    let Some(path_name) = resource.strip_prefix("role/") else {
        return Err(format!(
            "the ARN names `{resource}`, not a role (\"...:role/NAME\")"
        ));
    };
    let (path, name) = path_name.rsplit_once('/').unwrap_or(("", path_name));
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(format!(
            "the role name `{name}` is not 1-64 letters, digits or `_+=,.@-`"
        ));
    }
    if path_name.contains('/') && (path.is_empty() || !path.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(format!("the role path `{path}/` is not a valid IAM path"));
    }
    Ok(account)
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `[params]` keys and `[accounts]` names: usable in `{{name}}` and in messages.
fn is_param_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether an account table's key would hold a credential.
fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    CREDENTIAL_HINTS.iter().any(|h| key.contains(h)) || catalogue::looks_like_secret_key(&key)
}

/// Step ids and runbook names: short, and safe in file names, lock names and DOT.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl<'s> Walker<'s, '_> {
    // ---- generic readers ----

    fn as_table<'a, 'i>(&mut self, v: &'a Val<'i>, what: &str) -> Option<Table<'a, 'i>> {
        reader::as_table(self.d, v, what)
    }

    fn missing(&mut self, t: &Table<'_, '_>, key: &str, expected: &str) {
        let header = self.header_span(&t.span);
        self.d.error(
            header,
            format!("missing `{key}` in {}", t.what),
            format!("`{key}` ({expected}) is required here"),
        );
    }

    fn header_span(&self, span: &Range<usize>) -> Range<usize> {
        reader::header_span(self.src, span)
    }

    fn wrong_type(&mut self, v: &Val<'_>, key: &str, what: &str, expected: &str) {
        reader::wrong_type(self.d, v, key, what, expected);
    }

    fn finish(&mut self, t: Table<'_, '_>, valid: &[&str]) {
        let secrets = reader::finish(self.d, t, valid, "a runbook");
        self.secrets.extend(secrets);
    }

    /// A raw (untemplated) string.
    fn raw_str(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &str,
        required: bool,
    ) -> Option<Spanned<String>> {
        let Some(v) = t.take(key) else {
            if required {
                self.missing(t, key, "a string");
            }
            return None;
        };
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                let what = t.what.clone();
                self.wrong_type(v, key, &what, "a string");
                None
            }
        }
    }

    /// A string with `{{param}}` templates resolved.
    fn text(&mut self, t: &mut Table<'_, '_>, key: &str, required: bool) -> Option<String> {
        self.spanned_text(t, key, required).map(Spanned::into_inner)
    }

    /// Like [`Self::text`], keeping the value's span for checks of the result.
    fn spanned_text(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &str,
        required: bool,
    ) -> Option<Spanned<String>> {
        let raw = self.raw_str(t, key, required)?;
        template::render(raw.get_ref(), raw.span(), self.src, &self.params, self.d)
            .map(|s| Spanned::new(raw.span(), s))
    }

    fn duration_value(&mut self, v: &Val<'_>, key: &str, what: &str) -> Option<Duration> {
        let (src, params, span) = (self.src, &self.params, v.span());
        reader::duration_value(self.d, v, key, what, |s, d| {
            template::render(s, span, src, params, d)
        })
    }

    fn duration(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Duration> {
        let v = t.take(key)?;
        let what = t.what.clone();
        self.duration_value(v, key, &what)
    }

    fn bool(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
        reader::bool(self.d, t, key)
    }

    fn int_value(&mut self, v: &Val<'_>, key: &str, what: &str, min: i64, max: i64) -> Option<i64> {
        reader::int_value(self.d, v, key, what, min, max)
    }
}

#[cfg(test)]
mod tests;
