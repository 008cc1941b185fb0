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

use super::catalogue::{self, FieldKind, FieldSpec, Spec, Usage, is_region};
use super::diag::{Diagnostics, did_you_mean};
use super::model::{
    Account, DEFAULT_GATE_INTERVAL, DEFAULT_TIMEOUT, Deadlines, FieldValue, Fields, Gate, Mode,
    Objectives, OnUnreachable, RetryPolicy, Rollback, RunbookMeta, StateSection, Step, StepId,
    StepSpans,
};
use super::reader::{self, Table, Val, kind_of};
use super::template;

const ROOT_KEYS: &[&str] = &[
    "runbook",
    "objectives",
    "params",
    "accounts",
    "defaults",
    "state",
    "step",
];
const STATE_KEYS: &[&str] = &["stores"];
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

    // ---- sections ----

    fn params(&mut self, v: &Val<'_>) {
        let Some(mut t) = self.as_table(v, "[params]") else {
            return;
        };
        for (k, v) in t.map.iter() {
            let key: &str = k.get_ref().as_ref();
            t.taken.push(key);
            if !is_param_name(key) {
                self.d.error(
                    k.span(),
                    format!("parameter name `{key}` is not usable in templates"),
                    "expected letters, digits, `_` or `-`",
                );
                continue;
            }
            if catalogue::looks_like_secret_key(&key.to_ascii_lowercase()) {
                self.secrets.push(v.span());
                self.d
                    .error(
                        k.span(),
                        format!("parameter `{key}` looks like a secret"),
                        "secrets never go in a runbook",
                    )
                    .help = Some(
                    "keep secrets in the environment and name the variable in a field such as password_env"
                        .into(),
                );
                continue;
            }
            let value = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => i.to_string(),
                DeValue::Boolean(b) => b.to_string(),
                other => {
                    self.d.error(
                        v.span(),
                        format!(
                            "parameter `{key}` must be a string, integer or boolean, found {}",
                            kind_of(other)
                        ),
                        "expected a string",
                    );
                    continue;
                }
            };
            if value.contains("{{") {
                self.d.error(
                    v.span(),
                    format!("parameter `{key}` uses a template"),
                    "parameters are plain values",
                );
                continue;
            }
            if catalogue::url_credential(&value).is_some() {
                self.secrets.push(v.span());
                self.d
                    .error(
                        v.span(),
                        format!(
                            "parameter `{key}` is a URL carrying a credential (`user:password@`)"
                        ),
                        "secrets never go in a runbook",
                    )
                    .help = Some("remove the `user:password@` part".into());
                continue;
            }
            self.params.insert(key.to_string(), value);
        }
        self.finish(t, &[]);
    }

    fn accounts(&mut self, v: &Val<'_>) -> BTreeMap<String, Account> {
        let mut out = BTreeMap::new();
        let Some(mut t) = self.as_table(v, "[accounts]") else {
            return out;
        };
        for (k, v) in t.map.iter() {
            let name: &str = k.get_ref().as_ref();
            t.taken.push(name);
            if !is_param_name(name) {
                self.d.error(
                    k.span(),
                    format!("account name `{name}` is not a plain name"),
                    "expected letters, digits, `_` or `-`",
                );
                continue;
            }
            self.account_names.push(name.to_string());
            if let Some(account) = self.account(v, name) {
                out.insert(name.to_string(), account);
            }
        }
        self.finish(t, &[]);
        out
    }

    fn account(&mut self, v: &Val<'_>, name: &str) -> Option<Account> {
        let what = format!("[accounts.{name}]");
        let Some(mut t) = self.as_table(v, &what) else {
            if let Some(p) = self.d.last_mut() {
                p.help = Some(format!(
                    "each account is a table: [accounts.{name}] with id = \"111122223333\""
                ));
            }
            return None;
        };
        // Before `finish`, whose help for a secret-looking key suggests an `_env` key:
        // an account has none, since it never takes credentials at all.
        let credentials: Vec<_> = t
            .map
            .iter()
            .filter(|(k, _)| {
                !ACCOUNT_KEYS.contains(&k.get_ref().as_ref())
                    && is_credential_key(k.get_ref().as_ref())
            })
            .collect();
        for (k, v) in credentials {
            let key: &str = k.get_ref().as_ref();
            t.taken.push(key);
            self.secrets.push(v.span());
            self.d
                .error(
                    k.span(),
                    format!("`{key}` in {what} would be a credential"),
                    "credentials never go in a runbook",
                )
                .help = Some(
                "drpilot never takes credentials from a runbook; use a role or the environment: \
                 role_arn is assumed with the caller's credentials (environment, profile, SSO or \
                 instance role), and without role_arn the caller's own are used"
                    .into(),
            );
        }
        let id_is_int = matches!(
            t.map.get("id").map(|v| v.get_ref()),
            Some(DeValue::Integer(_))
        );
        let id = self.spanned_text(&mut t, "id", true);
        if id_is_int && let Some(p) = self.d.last_mut() {
            p.help = Some("quote the id: account ids are strings of 12 digits".into());
        }
        let given = |key: &str| t.map.contains_key(key);
        let (has_role, has_external_id, has_session_name) = (
            given("role_arn"),
            given("external_id"),
            given("session_name"),
        );
        let role_arn = self.spanned_text(&mut t, "role_arn", false);
        let external_id = self.spanned_text(&mut t, "external_id", false);
        let session_name = self.spanned_text(&mut t, "session_name", false);
        self.finish(t, ACCOUNT_KEYS);

        // A value given but unreadable (wrong type, bad template) is already reported.
        let mut ok = (!has_role || role_arn.is_some())
            && (!has_external_id || external_id.is_some())
            && (!has_session_name || session_name.is_some());
        let id = id.filter(|id| {
            let valid = is_account_id(id.get_ref());
            if !valid {
                self.d.error(
                    id.span(),
                    format!(
                        "`id` in {what} is invalid: `{}` is not a 12-digit account id",
                        id.get_ref()
                    ),
                    "expected a 12-digit AWS account id",
                );
            }
            valid
        });
        if let Some(arn) = &role_arn {
            match role_arn_account(arn.get_ref()) {
                Err(why) => {
                    ok = false;
                    self.d
                        .error(
                            arn.span(),
                            format!("`role_arn` in {what} is invalid: {why}"),
                            "expected an IAM role ARN",
                        )
                        .help = Some("arn:aws:iam::ACCOUNT:role/NAME (or role/PATH/NAME)".into());
                }
                Ok(in_account) => {
                    if let Some(id) = id.as_ref().filter(|id| id.get_ref() != in_account) {
                        ok = false;
                        let id = id.get_ref();
                        self.d
                            .error(
                                arn.span(),
                                format!(
                                    "`role_arn` in {what} is a role in account {in_account}, \
                                     but the account's id is {id}"
                                ),
                                "the role must be in the account it is for",
                            )
                            .help = Some(format!(
                            "drpilot assumes the role to act in account {id}: name a role in \
                             that account (arn:aws:iam::{id}:role/...), or correct `id`"
                        ));
                    }
                }
            }
        }
        for (key, value, charset) in [
            ("external_id", &external_id, &EXTERNAL_ID),
            ("session_name", &session_name, &SESSION_NAME),
        ] {
            let Some(value) = value else { continue };
            if !has_role {
                ok = false;
                self.d
                    .error(
                        value.span(),
                        format!("`{key}` in {what} is set without `role_arn`"),
                        "only used when assuming a role",
                    )
                    .help = Some(format!(
                    "`{key}` goes into the sts:AssumeRole call for role_arn: add the role to \
                     assume, or remove `{key}`"
                ));
            } else if let Some(why) = charset.problem(value.get_ref()) {
                ok = false;
                self.d.error(
                    value.span(),
                    format!("`{key}` in {what} is invalid: {why}"),
                    format!("expected {}", charset.expected()),
                );
            }
        }
        let id = id?;
        ok.then(|| Account {
            id: id.into_inner(),
            role_arn: role_arn.map(Spanned::into_inner),
            external_id: external_id.map(Spanned::into_inner),
            session_name: session_name.map(Spanned::into_inner),
        })
    }

    /// A step's `account`: the name of an `[accounts]` entry.
    fn account_ref(&mut self, t: &mut Table<'_, '_>, what: &str) -> Option<String> {
        let name = self.raw_str(t, "account", false)?;
        let n = name.get_ref();
        if self.account_names.contains(n) {
            return Some(name.into_inner());
        }
        let declared: Vec<&str> = self.account_names.iter().map(String::as_str).collect();
        let help = match did_you_mean(n, declared.iter().copied()) {
            Some(near) => format!("did you mean `{near}`? declared: {}", declared.join(", ")),
            None if declared.is_empty() => "the runbook declares no [accounts]".into(),
            None => format!("declared accounts: {}", declared.join(", ")),
        };
        self.d
            .error(
                name.span(),
                format!("{what} uses account `{n}`, which is not declared"),
                "not in [accounts]",
            )
            .help = Some(help);
        None
    }

    fn meta(&mut self, v: &Val<'_>) -> Option<RunbookMeta> {
        let mut t = self.as_table(v, "[runbook]")?;
        let name = self.raw_str(&mut t, "name", true);
        if let Some(n) = &name
            && !is_identifier(n.get_ref())
        {
            self.d
                .error(
                    n.span(),
                    format!("runbook name `{}` is not a plain identifier", n.get_ref()),
                    "expected 1-64 letters, digits, `-`, `_` or `.`",
                )
                .help = Some("the name is used for the run's lock and state files".into());
        }
        let description = self.text(&mut t, "description", false);
        let mode = self
            .raw_str(&mut t, "mode", true)
            .and_then(|m| match m.get_ref().as_str() {
                "planned" => Some(Mode::Planned),
                "unplanned" => Some(Mode::Unplanned),
                other => {
                    self.d
                        .error(
                            m.span(),
                            format!("unknown mode `{other}`"),
                            "expected \"planned\" or \"unplanned\"",
                        )
                        .help = Some(
                        "planned = switchover with no data loss, every region healthy; \
                         unplanned = failover during an outage"
                            .into(),
                    );
                    None
                }
            });
        self.finish(t, RUNBOOK_KEYS);
        let name = name.filter(|n| is_identifier(n.get_ref()))?.into_inner();
        Some(RunbookMeta {
            name,
            description,
            mode: mode?,
        })
    }

    /// `[state] stores = ["s3://bucket/prefix", ...]`: each an `s3://` URL (checked
    /// here, so a typo is a runbook error with its line), or a single directory.
    fn state(&mut self, v: &Val<'_>) -> Option<StateSection> {
        let mut t = self.as_table(v, "[state]")?;
        let mut stores = Vec::new();
        let mut ok = true;
        match t.take("stores") {
            None => {
                self.d.error(
                    v.span(),
                    "[state] has no `stores`",
                    "expected stores = [\"s3://bucket/prefix\", ...]",
                );
                ok = false;
            }
            Some(sv) => match sv.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) if s.starts_with("s3://") => {
                                match crate::names::S3Location::parse(s) {
                                    Ok(_) => stores.push(s.to_string()),
                                    Err(e) => {
                                        self.d.error(
                                            item.span(),
                                            format!("bad state location `{s}`"),
                                            e.to_string(),
                                        );
                                        ok = false;
                                    }
                                }
                            }
                            DeValue::String(s) if !s.is_empty() => stores.push(s.to_string()),
                            _ => {
                                self.wrong_type(item, "stores", "[state]", "a non-empty string");
                                ok = false;
                            }
                        }
                    }
                    if stores.len() > 1 && stores.iter().any(|s| !s.starts_with("s3://")) {
                        self.d.error(
                            sv.span(),
                            "several state locations must all be s3:// buckets",
                            "expected one directory, or s3:// URLs only",
                        );
                        ok = false;
                    }
                }
                _ => {
                    self.wrong_type(sv, "stores", "[state]", "a non-empty array of strings");
                    ok = false;
                }
            },
        }
        self.finish(t, STATE_KEYS);
        ok.then_some(StateSection { stores })
    }

    fn objectives(&mut self, v: &Val<'_>) -> Objectives {
        let Some(mut t) = self.as_table(v, "[objectives]") else {
            return Objectives::default();
        };
        let rto = self.duration(&mut t, "rto");
        let rpo = self.duration(&mut t, "rpo");
        let (recovered_when, recovered_when_spans) = self.recovered_when(&mut t);
        self.finish(t, OBJECTIVE_KEYS);
        Objectives {
            rto,
            rpo,
            recovered_when,
            recovered_when_spans,
        }
    }

    /// `recovered_when = ["step-id", ...]`: an array of step ids, not empty when given
    /// (an empty list would leave the RTO with no end). Whether the ids exist is
    /// checked with the other cross-step rules in `validate`.
    fn recovered_when(&mut self, t: &mut Table<'_, '_>) -> (Vec<StepId>, Vec<Range<usize>>) {
        let Some(StepIds {
            value: v,
            ids,
            spans,
        }) = self.step_ids(t, "recovered_when")
        else {
            return (Vec::new(), Vec::new());
        };
        if let DeValue::Array(items) = v.get_ref()
            && items.is_empty()
        {
            self.d
                .error(
                    v.span(),
                    "`recovered_when` in [objectives] is empty",
                    "expected at least one step id",
                )
                .help = Some(
                "name the steps whose success means service is restored (the verification \
                 checks), or remove the key to measure the RTO until the last step"
                    .into(),
            );
        }
        (ids, spans)
    }

    fn defaults(&mut self, v: &Val<'_>) -> (RetryPolicy, Duration, Deadlines) {
        let Some(mut t) = self.as_table(v, "[defaults]") else {
            return (
                RetryPolicy::default(),
                DEFAULT_TIMEOUT,
                Deadlines::default(),
            );
        };
        let retry = match t.take("retry") {
            Some(v) => self.retry(v, &RetryPolicy::default(), "[defaults].retry"),
            None => RetryPolicy::default(),
        };
        let timeout = self
            .positive_duration(&mut t, "timeout")
            .unwrap_or(DEFAULT_TIMEOUT);
        let read = t.map.get("read_timeout").map(|v| v.span());
        let probe = t.map.get("probe_timeout").map(|v| v.span());
        let deadlines = Deadlines {
            read_timeout: self
                .positive_duration(&mut t, "read_timeout")
                .filter(|d| self.at_most(read.clone(), "read_timeout", *d, MAX_READ_TIMEOUT)),
            probe_timeout: self
                .positive_duration(&mut t, "probe_timeout")
                .filter(|d| self.at_most(probe.clone(), "probe_timeout", *d, MAX_PROBE_TIMEOUT)),
        };
        if let (Some(r), Some(p), Some(span)) =
            (deadlines.read_timeout, deadlines.probe_timeout, probe)
            && p > r
        {
            self.d.error(
                span,
                "`probe_timeout` in [defaults] is longer than `read_timeout`",
                "a read would give up before the probe that tells whether its region is down",
            );
        }
        self.finish(t, DEFAULT_KEYS);
        (retry, timeout, deadlines)
    }

    /// Whether `d` (the value of `key` at `span`) is at most `max`; an error otherwise.
    fn at_most(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        d: Duration,
        max: Duration,
    ) -> bool {
        if d <= max {
            return true;
        }
        if let Some(span) = span {
            self.d.error(
                span,
                format!(
                    "`{key}` in [defaults] is longer than {}",
                    humantime::format_duration(max)
                ),
                format!("expected at most {}", humantime::format_duration(max)),
            );
        }
        false
    }

    fn positive_duration(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Duration> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let d = self.duration_value(v, key, &what)?;
        if d.is_zero() {
            self.d.error(
                v.span(),
                format!("`{key}` in {what} must be longer than zero"),
                "expected a positive duration",
            );
            return None;
        }
        Some(d)
    }

    /// A retry table; keys not given inherit from `base`.
    fn retry(&mut self, v: &Val<'_>, base: &RetryPolicy, what: &str) -> RetryPolicy {
        let Some(mut t) = self.as_table(v, what) else {
            return base.clone();
        };
        let mut p = base.clone();
        if let Some(a) = t.take("attempts")
            && let Some(n) = self.int_value(a, "attempts", what, 1, 100)
        {
            p.attempts = n as u32;
        }
        let mut bad = false;
        for (key, slot) in [
            ("initial", &mut p.initial),
            ("max", &mut p.max),
            ("max_elapsed", &mut p.max_elapsed),
        ] {
            if let Some(v) = t.take(key) {
                match self.duration_value(v, key, what) {
                    Some(d) => *slot = d,
                    None => bad = true,
                }
            }
        }
        if let Some(j) = self.bool(&mut t, "jitter") {
            p.jitter = j;
        }
        if !bad {
            let problem = if p.attempts > 1 && p.initial.is_zero() {
                Some("`initial` must be longer than zero when retrying, or retries hammer the API")
            } else if p.initial > p.max {
                Some("`initial` is longer than `max`")
            } else if p.attempts > 1 && p.max_elapsed < p.initial {
                Some("`max_elapsed` is shorter than `initial`, so no retry could ever start")
            } else {
                None
            };
            if let Some(msg) = problem {
                let header = self.header_span(&t.span);
                self.d.error(
                    header,
                    format!("retry policy in {what} is not sane: {msg}"),
                    format!(
                        "attempts = {}, initial = {}, max = {}, max_elapsed = {}",
                        p.attempts,
                        humantime::format_duration(p.initial),
                        humantime::format_duration(p.max),
                        humantime::format_duration(p.max_elapsed)
                    ),
                );
            }
        }
        self.finish(t, RETRY_KEYS);
        p
    }

    /// Reads the `[[step]]` array, consuming it: each step's TOML is dropped as soon as
    /// it has been read.
    fn steps(
        &mut self,
        v: Val<'_>,
        retry: &RetryPolicy,
        timeout: Duration,
    ) -> (Vec<Step>, Vec<Outline>) {
        let span = v.span();
        let items = match v.into_inner() {
            DeValue::Array(items) => items,
            other => {
                self.d
                    .error(
                        span,
                        format!(
                            "`step` must be an array of tables, found {}",
                            kind_of(&other)
                        ),
                        "expected [[step]]",
                    )
                    .help = Some("write each step as [[step]] (double brackets)".into());
                return (Vec::new(), Vec::new());
            }
        };
        if items.is_empty() {
            self.d.error(
                span,
                "the runbook has no steps",
                "expected at least one [[step]]",
            );
        }
        let mut steps = Vec::with_capacity(items.len());
        let mut outlines = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match self.step(i, &item, retry, timeout) {
                StepRead::Unreadable => {}
                StepRead::Broken(skeleton) => outlines.push(Outline::Broken(Box::new(skeleton))),
                StepRead::Valid(step) => {
                    outlines.push(Outline::Valid(steps.len()));
                    steps.push(step);
                }
            }
        }
        (steps, outlines)
    }

    fn step(
        &mut self,
        index: usize,
        v: &Val<'_>,
        default_retry: &RetryPolicy,
        default_timeout: Duration,
    ) -> StepRead {
        let Some(mut t) = self.as_table(v, &format!("step #{}", index + 1)) else {
            return StepRead::Unreadable;
        };
        let id = self.raw_str(&mut t, "id", true);
        if let Some(id) = &id {
            if is_identifier(id.get_ref()) {
                t.what = format!("step `{}`", id.get_ref());
            } else {
                self.d.error(
                    id.span(),
                    format!("step id `{}` is not a plain identifier", id.get_ref()),
                    "expected 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
                );
            }
        }
        let what = t.what.clone();
        let action = self.raw_str(&mut t, "action", true);
        let action_span = action.as_ref().map_or(0..0, |a| a.span());
        let spec = action.and_then(|a| self.lookup(&a, Usage::Action, "action"));
        let description = self.text(&mut t, "description", false);
        let (after, after_spans) = self.after(&mut t);
        let account = self.account_ref(&mut t, &what);
        let approval = self.bool(&mut t, "approval").unwrap_or(false)
            || spec.is_some_and(|s| s.name == "approval");
        let timeout = self
            .positive_duration(&mut t, "timeout")
            .unwrap_or(default_timeout);
        let retry = match t.take("retry") {
            Some(v) => self.retry(v, default_retry, &format!("{what}.retry")),
            None => default_retry.clone(),
        };
        let expected = self.duration(&mut t, "expected");
        let on_unreachable = self.on_unreachable(&mut t, spec);
        let gate = t.take("gate").and_then(|v| self.gate(v, &what, timeout));
        let rollback = t
            .take("rollback")
            .and_then(|v| self.rollback(v, &what, spec));

        // Keys are interned to the catalogue's names; an unknown key is reported below
        // and makes the step invalid, so nothing later needs its span.
        let field_spans: Vec<(&'static str, Range<usize>)> = t
            .map
            .iter()
            .filter_map(|(k, v)| {
                let k: &str = k.get_ref().as_ref();
                STEP_KEYS
                    .iter()
                    .copied()
                    .chain(
                        spec.into_iter()
                            .flat_map(|s| s.fields.iter().map(|f| f.name)),
                    )
                    .find(|name| *name == k)
                    .map(|name| (name, v.span()))
            })
            .collect();
        let fields = match spec {
            Some(spec) => {
                let fields = self.fields(&mut t, spec.fields);
                let mut valid: Vec<&str> = STEP_KEYS.to_vec();
                valid.extend(spec.fields.iter().map(|f| f.name));
                self.finish(t, &valid);
                fields
            }
            // With an unknown action, which keys are unknown cannot be said.
            None => None,
        };

        let Some(id) = id else {
            return StepRead::Unreadable;
        };
        let spans = StepSpans {
            id: id.span(),
            action: action_span,
            after: after_spans,
            fields: field_spans,
        };
        // Even a step with an invalid id or body is a step its dependents may name.
        let (Some(spec), Some(fields), true) = (spec, fields, is_identifier(id.get_ref())) else {
            return StepRead::Broken(Skeleton {
                id: StepId::new(id.into_inner()),
                spans,
                after,
            });
        };
        let expected = expected.unwrap_or_else(|| {
            spec.expected(&fields)
                + gate
                    .as_ref()
                    .map_or(Duration::ZERO, |g| g.spec.expected(&g.fields))
        });
        let step = Step {
            spans,
            id: StepId::new(id.into_inner()),
            spec,
            description,
            after,
            fields,
            account,
            gate,
            rollback,
            retry,
            timeout,
            approval,
            on_unreachable,
            expected,
        };
        StepRead::Valid(step)
    }

    /// `on_unreachable`, checked against the step's action: a step that changes
    /// something cannot be skipped (whether its change happened would be unknown).
    fn on_unreachable(
        &mut self,
        t: &mut Table<'_, '_>,
        spec: Option<&'static Spec>,
    ) -> Option<OnUnreachable> {
        let raw = self.raw_str(t, "on_unreachable", false)?;
        let Some(v) = OnUnreachable::parse(raw.get_ref()) else {
            self.d
                .error(
                    raw.span(),
                    format!("unknown on_unreachable `{}`", raw.get_ref()),
                    format!("expected one of: {}", OnUnreachable::NAMES.join(", ")),
                )
                .help = did_you_mean(raw.get_ref(), OnUnreachable::NAMES.iter().copied())
                .map(|near| format!("did you mean `{near}`?"));
            return None;
        };
        if v == OnUnreachable::Skip
            && let Some(spec) = spec
            && (spec.is_mutating() || spec.name == "approval")
        {
            self.d
                .error(
                    raw.span(),
                    format!("`{}` cannot be skipped when its region is unreachable", spec.name),
                    "only a read-only step may be skipped",
                )
                .help = Some(
                "a step that changes something uses `retry` (the default), `fail`, or `defer` for housekeeping after recovery"
                    .into(),
            );
            return None;
        }
        Some(v)
    }

    fn lookup(&mut self, name: &Spanned<String>, usage: Usage, key: &str) -> Option<&'static Spec> {
        let n = name.get_ref().as_str();
        match catalogue::lookup(n) {
            Some(spec) if usage == Usage::Action || spec.usage == Usage::Check => Some(spec),
            Some(_) => {
                self.d
                    .error(
                        name.span(),
                        format!("`{n}` is an action, not a check"),
                        "expected a gate check",
                    )
                    .help = Some(format!(
                    "gate checks: {}",
                    catalogue::check_names().collect::<Vec<_>>().join(", ")
                ));
                None
            }
            None => {
                let names: Vec<&str> = match usage {
                    Usage::Action => catalogue::action_names().collect(),
                    Usage::Check => catalogue::check_names().collect(),
                };
                let p = self.d.error(
                    name.span(),
                    format!("unknown {key} `{n}`"),
                    format!("not in the catalogue of {key}s"),
                );
                p.help = Some(match did_you_mean(n, names.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("known {key}s: {}", names.join(", ")),
                });
                None
            }
        }
    }

    fn after(&mut self, t: &mut Table<'_, '_>) -> (Vec<StepId>, Vec<Range<usize>>) {
        self.step_ids(t, "after")
            .map(|s| (s.ids, s.spans))
            .unwrap_or_default()
    }

    /// An array of step ids under `key` (`after`, `recovered_when`): the ids with their
    /// spans, and the value itself for the caller's own checks. A string instead of an
    /// array, or an item that is not a string, is reported here.
    fn step_ids<'a, 'i>(&mut self, t: &mut Table<'a, 'i>, key: &str) -> Option<StepIds<'a, 'i>> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, key, &what, "an array of step ids");
            if matches!(v.get_ref(), DeValue::String(_))
                && let Some(p) = self.d.last_mut()
            {
                p.help = Some(format!("write {key} = [\"step-id\"], even for one step"));
            }
            return None;
        };
        let mut ids = Vec::new();
        let mut spans = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => {
                    ids.push(StepId::new(s.to_string()));
                    spans.push(item.span());
                }
                _ => self.wrong_type(item, key, &what, "a step id string"),
            }
        }
        Some(StepIds {
            value: v,
            ids,
            spans,
        })
    }

    fn gate(&mut self, v: &Val<'_>, step: &str, step_timeout: Duration) -> Option<Gate> {
        let mut t = self.as_table(v, &format!("{step}.gate"))?;
        let spec = self
            .raw_str(&mut t, "check", true)
            .and_then(|c| self.lookup(&c, Usage::Check, "check"));
        let timeout = self
            .positive_duration(&mut t, "timeout")
            .unwrap_or(step_timeout);
        let interval_v = t.map.get("interval").map(|v| v.span());
        let interval = self
            .positive_duration(&mut t, "interval")
            .unwrap_or(DEFAULT_GATE_INTERVAL);
        if interval >= timeout {
            let span = interval_v.unwrap_or_else(|| self.header_span(&t.span));
            self.d.error(
                span,
                format!(
                    "gate of {step} polls every {} but times out after {}",
                    humantime::format_duration(interval),
                    humantime::format_duration(timeout)
                ),
                "expected an interval shorter than the timeout",
            );
        }
        let spec = spec?;
        let fields = self.fields(&mut t, spec.fields);
        let mut valid = GATE_KEYS.to_vec();
        valid.extend(spec.fields.iter().map(|f| f.name));
        self.finish(t, &valid);
        Some(Gate {
            spec,
            fields: fields?,
            timeout,
            interval,
        })
    }

    fn rollback(
        &mut self,
        v: &Val<'_>,
        step: &str,
        step_spec: Option<&'static Spec>,
    ) -> Option<Rollback> {
        let mut t = self.as_table(v, &format!("{step}.rollback"))?;
        let action = self.raw_str(&mut t, "action", false);
        let Some(action) = action else {
            // No action: the step action's own inverse.
            let header = self.header_span(&t.span);
            self.finish(t, ROLLBACK_KEYS);
            let step_spec = step_spec?;
            return match step_spec.inverse {
                Some(inverse) => Some(Rollback {
                    spec: None,
                    fields: Fields::new(),
                    describe: inverse.to_string(),
                }),
                None => {
                    self.d
                        .error(
                            header,
                            format!("{step} has a rollback without an action"),
                            format!("`{}` has no built-in inverse", step_spec.name),
                        )
                        .help =
                        Some("name the compensation: action = \"...\" with its fields".into());
                    None
                }
            };
        };
        let spec = self.lookup(&action, Usage::Action, "action")?;
        if !spec.is_mutating() {
            self.d.error(
                action.span(),
                format!("rollback action `{}` changes nothing", spec.name),
                "expected an action that undoes the step",
            );
            self.finish(t, &[]);
            return None;
        }
        let fields = self.fields(&mut t, spec.fields);
        let mut valid = ROLLBACK_KEYS.to_vec();
        valid.extend(spec.fields.iter().map(|f| f.name));
        self.finish(t, &valid);
        let fields = fields?;
        let describe = match spec.effect(&fields) {
            Some(e) => format!("{} on {} in {}", e.call, e.resource, e.region),
            None => spec.name.to_string(),
        };
        Some(Rollback {
            spec: Some(spec),
            fields,
            describe,
        })
    }

    // ---- catalogue fields ----

    /// Reads every field of `specs` from `t`; `None` if any is missing or wrong (all are
    /// still checked and reported).
    fn fields(&mut self, t: &mut Table<'_, '_>, specs: &[FieldSpec]) -> Option<Fields> {
        let mut out = Fields::new();
        let mut ok = true;
        for f in specs {
            match t.take(f.name) {
                None if f.required => {
                    self.missing(t, f.name, &f.kind.expected());
                    ok = false;
                }
                None => {}
                Some(v) => {
                    let what = t.what.clone();
                    match self.field(v, f, &what) {
                        Some(value) => {
                            out.insert(f.name.to_string(), value);
                        }
                        None => ok = false,
                    }
                }
            }
        }
        ok.then_some(out)
    }

    fn field(&mut self, v: &Val<'_>, f: &FieldSpec, what: &str) -> Option<FieldValue> {
        let key = f.name;
        let string = |w: &mut Self| -> Option<String> {
            match v.get_ref() {
                DeValue::String(s) => {
                    let s = template::render(s, v.span(), w.src, &w.params, w.d)?;
                    if s.trim().is_empty() {
                        w.d.error(
                            v.span(),
                            format!("`{key}` in {what} is empty"),
                            format!("expected {}", f.kind.expected()),
                        );
                        return None;
                    }
                    Some(s)
                }
                _ => {
                    w.wrong_type(v, key, what, &f.kind.expected());
                    None
                }
            }
        };
        let bad = |w: &mut Self, why: String| {
            w.d.error(
                v.span(),
                format!("`{key}` in {what} is invalid: {why}"),
                format!("expected {}", f.kind.expected()),
            );
            None
        };
        match f.kind {
            FieldKind::Str => string(self).map(FieldValue::Str),
            FieldKind::Region => {
                let s = string(self)?;
                if is_region(&s) {
                    Some(FieldValue::Str(s))
                } else {
                    bad(self, format!("`{s}` is not an AWS region"))
                }
            }
            FieldKind::ClusterArn | FieldKind::ClusterArnOrAuto => {
                let s = string(self)?;
                if matches!(f.kind, FieldKind::ClusterArnOrAuto) && s == "auto" {
                    return Some(FieldValue::Str(s));
                }
                match cluster_arn_problem(&s) {
                    None => Some(FieldValue::Str(s)),
                    Some(why) => bad(self, why),
                }
            }
            FieldKind::Url => {
                let s = string(self)?;
                if catalogue::url_credential(&s).is_some() {
                    // The value is blanked wherever the file is shown, and the message
                    // never repeats it.
                    self.secrets.push(v.span());
                    self.d
                        .error(
                            v.span(),
                            format!("`{key}` in {what} carries a credential (`user:password@`)"),
                            "secrets never go in a runbook",
                        )
                        .help = Some(
                        "remove the `user:password@` part: the URL is journaled, logged and shown in events"
                            .into(),
                    );
                    return None;
                }
                if is_url(&s) {
                    Some(FieldValue::Str(s))
                } else {
                    bad(self, format!("`{s}` is not an http(s) URL"))
                }
            }
            FieldKind::Enum(values) => {
                let s = string(self)?;
                if values.contains(&s.as_str()) {
                    return Some(FieldValue::Str(s));
                }
                let near = did_you_mean(&s, values.iter().copied());
                let p = self.d.error(
                    v.span(),
                    format!("`{key}` in {what} cannot be `{s}`"),
                    format!("expected {}", f.kind.expected()),
                );
                p.help = near.map(|n| format!("did you mean \"{n}\"?"));
                None
            }
            FieldKind::Duration => self.duration_value(v, key, what).map(FieldValue::Duration),
            FieldKind::Bool => match v.get_ref() {
                DeValue::Boolean(b) => Some(FieldValue::Bool(*b)),
                _ => {
                    self.wrong_type(v, key, what, "true or false");
                    None
                }
            },
            FieldKind::Int { min, max } => {
                self.int_value(v, key, what, min, max).map(FieldValue::Int)
            }
            FieldKind::StrList => {
                let DeValue::Array(items) = v.get_ref() else {
                    self.wrong_type(v, key, what, "an array of strings");
                    return None;
                };
                if items.is_empty() {
                    return bad(self, "the array is empty".into());
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => {
                            match template::render(s, item.span(), self.src, &self.params, self.d) {
                                Some(s) => out.push(s),
                                None => ok = false,
                            }
                        }
                        _ => {
                            self.wrong_type(item, key, what, "a string");
                            ok = false;
                        }
                    }
                }
                ok.then_some(FieldValue::List(out))
            }
            FieldKind::TableList(sub) => {
                let DeValue::Array(items) = v.get_ref() else {
                    self.wrong_type(v, key, what, "an array of tables");
                    return None;
                };
                if items.is_empty() {
                    return bad(self, "the array is empty".into());
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let Some(mut t) = self.as_table(item, &format!("{what}.{key}[{i}]")) else {
                        ok = false;
                        continue;
                    };
                    let fields = self.fields(&mut t, sub);
                    let valid: Vec<&str> = sub.iter().map(|f| f.name).collect();
                    let span = t.span.clone();
                    let entry_what = t.what.clone();
                    self.finish(t, &valid);
                    match fields {
                        Some(fields) => {
                            if key == "records"
                                && !self.record_is_coherent(&fields, span, &entry_what)
                            {
                                ok = false;
                            }
                            out.push(fields);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(FieldValue::Tables(out))
            }
        }
    }

    /// A Route 53 record set is either plain (values + ttl) or an alias; never both.
    fn record_is_coherent(&mut self, r: &Fields, span: Range<usize>, what: &str) -> bool {
        let values = r.contains_key("values");
        let alias = r.contains_key("alias_dns_name");
        let problem = match (values, alias) {
            (true, true) => Some("has both `values` and `alias_dns_name`"),
            (false, false) => Some("needs `values` or `alias_dns_name`"),
            (false, true) if !r.contains_key("alias_zone_id") => {
                Some("is an alias without `alias_zone_id`")
            }
            (false, true) if r.contains_key("ttl") => Some("is an alias and cannot have a `ttl`"),
            (true, false) if !r.contains_key("ttl") => Some("needs a `ttl` with `values`"),
            _ => None,
        };
        if let Some(p) = problem {
            let header = self.header_span(&span);
            self.d.error(
                header,
                format!("record set {what} {p}"),
                "incoherent record set",
            );
        }
        problem.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "us-west-2",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-2",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-0",
            "us-east-1a",
            "x-y-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn cluster_arns() {
        assert_eq!(
            cluster_arn_problem("arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2"),
            None
        );
        let cases = [
            ("acme-prod", "not an ARN"),
            (
                "arn:aws:s3:us-west-2:111122223333:cluster:x",
                "service is `s3`",
            ),
            (
                "arn:aws:rds:mars-1:111122223333:cluster:x",
                "not an AWS region",
            ),
            ("arn:aws:rds:us-west-2:1111:cluster:x", "12-digit"),
            ("arn:aws:rds:us-west-2:111122223333:db:x", "not a cluster"),
            ("arn:aws:rds:us-west-2:111122223333:cluster:", "empty"),
        ];
        for (arn, want) in cases {
            let got = cluster_arn_problem(arn).unwrap_or_default();
            assert!(got.contains(want), "{arn}: {got}");
        }
    }

    #[test]
    fn urls_and_identifiers() {
        assert!(is_url("https://api.example.com/health"));
        assert!(is_url("http://127.0.0.1:8080"));
        assert!(!is_url("ftp://x") && !is_url("https://") && !is_url("https:///x"));
        assert!(is_identifier("aurora-promote") && is_identifier("s3.check_1"));
        assert!(!is_identifier("-x") && !is_identifier("a b") && !is_identifier(""));
        assert!(!is_identifier(&"a".repeat(65)));
    }

    #[test]
    fn role_arns() {
        for (arn, account) in [
            ("arn:aws:iam::111122223333:role/drpilot", "111122223333"),
            (
                "arn:aws-us-gov:iam::444455556666:role/dr/ops/drpilot",
                "444455556666",
            ),
            (
                "arn:aws-cn:iam::444455556666:role/a+=,.@_-b",
                "444455556666",
            ),
        ] {
            assert_eq!(role_arn_account(arn), Ok(account), "{arn}");
        }
        let cases = [
            ("drpilot", "not an ARN"),
            ("arn:azure:iam::111122223333:role/x", "not an ARN"),
            ("arn:aws-:iam::111122223333:role/x", "not an ARN"),
            ("arn:aws:sts::111122223333:role/x", "service is `sts`"),
            ("arn:aws:iam:us-east-1:111122223333:role/x", "has a region"),
            ("arn:aws:iam::1111:role/x", "12-digit"),
            ("arn:aws:iam::111122223333:user/x", "not a role"),
            ("arn:aws:iam::111122223333:role/", "role name ``"),
            ("arn:aws:iam::111122223333:role/dr/", "role name ``"),
            ("arn:aws:iam::111122223333:role/a b", "role name `a b`"),
            ("arn:aws:iam::111122223333:role//x", "role path `/`"),
        ];
        for (arn, want) in cases {
            let got = role_arn_account(arn).unwrap_err();
            assert!(got.contains(want), "{arn}: {got}");
        }
        let long = format!("arn:aws:iam::111122223333:role/{}", "r".repeat(65));
        assert!(role_arn_account(&long).is_err());
    }

    #[test]
    fn assume_role_charsets() {
        assert_eq!(EXTERNAL_ID.problem("acme-dr-7f3a"), None);
        assert_eq!(EXTERNAL_ID.problem("a:b/c@d.e,f=g+h_i"), None);
        assert_eq!(SESSION_NAME.problem("drpilot-planned-switchover"), None);
        for (set, value, want) in [
            (&EXTERNAL_ID, "x", "1 characters long"),
            (&EXTERNAL_ID, "a b", "` ` is not accepted"),
            (&SESSION_NAME, "a:b", "`:` is not accepted"),
            (&SESSION_NAME, "café", "`é` is not accepted"),
        ] {
            let got = set.problem(value).unwrap_or_default();
            assert!(got.contains(want), "{value}: {got}");
        }
        assert!(EXTERNAL_ID.problem(&"e".repeat(1224)).is_none());
        assert!(EXTERNAL_ID.problem(&"e".repeat(1225)).is_some());
        assert!(SESSION_NAME.problem(&"s".repeat(65)).is_some());
        assert_eq!(SESSION_NAME.pattern(), r"^[A-Za-z0-9_+=,.@\-]{2,64}$");
    }

    #[test]
    fn account_keys_are_not_taken_for_secrets() {
        // An external id is not a secret (AWS says so): none of these keys may trip the
        // secret heuristics, whose help would send the user to a `_env` key.
        for key in ACCOUNT_KEYS {
            assert!(!catalogue::looks_like_secret_key(key), "{key}");
            assert!(!is_credential_key(key), "{key}");
        }
        for key in [
            "access_key_id",
            "aws_access_key_id",
            "secret_access_key",
            "session_token",
            "SessionToken",
            "credentials",
            "secret_access_key_env",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
    }

    const HEAD: &str = "[runbook]\nname = \"rb\"\nmode = \"planned\"\n";
    const STEP: &str = "[[step]]\nid = \"dns\"\naction = \"wait\"\nduration = \"1s\"\n";

    fn load(text: &str) -> Result<crate::runbook::Runbook, Vec<String>> {
        match crate::runbook::load_str(std::path::Path::new("a.toml"), text) {
            Ok(l) => Ok(l.runbook),
            Err(e) => Err(e.problems.into_iter().map(|p| p.message).collect()),
        }
    }

    #[test]
    fn accounts_are_read_with_templates_and_steps_name_them() {
        let text = format!(
            "{HEAD}[params]\ndns_account = \"444455556666\"\n\
             [accounts.prod]\nid = \"111122223333\"\n\
             [accounts.dns]\nid = \"{{{{dns_account}}}}\"\n\
             role_arn = \"arn:aws:iam::{{{{dns_account}}}}:role/drpilot-dns\"\n\
             external_id = \"acme-dr-7f3a\"\nsession_name = \"drpilot-failover\"\n\
             {STEP}account = \"dns\"\n"
        );
        let rb = load(&text).unwrap();
        assert_eq!(rb.steps[0].account.as_deref(), Some("dns"));
        assert_eq!(
            rb.accounts["dns"],
            Account {
                id: "444455556666".into(),
                role_arn: Some("arn:aws:iam::444455556666:role/drpilot-dns".into()),
                external_id: Some("acme-dr-7f3a".into()),
                session_name: Some("drpilot-failover".into()),
            }
        );
        assert_eq!(
            rb.accounts["prod"],
            Account {
                id: "111122223333".into(),
                role_arn: None,
                external_id: None,
                session_name: None,
            }
        );
        // No [accounts], no `account`: the caller's credentials, as before.
        let rb = load(&format!("{HEAD}{STEP}")).unwrap();
        assert!(rb.accounts.is_empty() && rb.steps[0].account.is_none());
    }

    #[test]
    fn account_problems() {
        let acct = |body: &str| format!("{HEAD}[accounts.dns]\n{body}\n{STEP}");
        let cases = [
            (
                acct("id = \"4444\""),
                "`id` in [accounts.dns] is invalid: `4444` is not a 12-digit account id",
            ),
            (
                acct("id = 444455556666"),
                "`id` in [accounts.dns] must be a string, found an integer",
            ),
            (
                acct("role_arn = \"arn:aws:iam::444455556666:role/x\""),
                "missing `id` in [accounts.dns]",
            ),
            (
                acct("id = \"444455556666\"\nrole_arn = \"arn:aws:iam::111122223333:role/x\""),
                "`role_arn` in [accounts.dns] is a role in account 111122223333, but the account's id is 444455556666",
            ),
            (
                acct("id = \"444455556666\"\nrole_arn = \"arn:aws:iam::444455556666:user/x\""),
                "`role_arn` in [accounts.dns] is invalid: the ARN names `user/x`, not a role",
            ),
            (
                acct("id = \"444455556666\"\nexternal_id = \"acme\""),
                "`external_id` in [accounts.dns] is set without `role_arn`",
            ),
            (
                acct("id = \"444455556666\"\nsession_name = \"dr\""),
                "`session_name` in [accounts.dns] is set without `role_arn`",
            ),
            (
                acct(
                    "id = \"444455556666\"\nrole_arn = \"arn:aws:iam::444455556666:role/x\"\nsession_name = \"a b\"",
                ),
                "`session_name` in [accounts.dns] is invalid: ` ` is not accepted",
            ),
            (
                acct("id = \"444455556666\"\nsecret_access_key = \"x\""),
                "`secret_access_key` in [accounts.dns] would be a credential",
            ),
            (
                acct("id = \"444455556666\"\nrole_arn = 1\nexternal_id = \"acme\""),
                "`role_arn` in [accounts.dns] must be a string, found an integer",
            ),
            (
                acct("id = \"444455556666\"\nrole = \"x\""),
                "unknown key `role` in [accounts.dns]",
            ),
            (acct("id = \"{{nope}}\""), "unknown parameter `nope`"),
            (
                format!("{HEAD}[accounts]\n\"dns prod\" = {{ id = \"444455556666\" }}\n{STEP}"),
                "account name `dns prod` is not a plain name",
            ),
            (
                format!("{HEAD}[accounts]\ndns = \"444455556666\"\n{STEP}"),
                "[accounts.dns] must be a table, found a string",
            ),
            (
                format!("{HEAD}{STEP}account = \"dns\"\n"),
                "step `dns` uses account `dns`, which is not declared",
            ),
        ];
        for (text, want) in cases {
            let got = load(&text).expect_err(&text);
            assert!(
                got.iter().any(|m| m.contains(want)),
                "{text}\nwanted: {want}\ngot: {got:#?}"
            );
            assert_eq!(got.len(), 1, "{text}\none problem each: {got:#?}");
        }
    }

    #[test]
    fn an_unknown_account_gets_a_hint() {
        let problems = |text: &str| {
            crate::runbook::load_str(std::path::Path::new("a.toml"), text)
                .unwrap_err()
                .problems
        };
        let declared =
            "[accounts.dns]\nid = \"444455556666\"\n[accounts.prod]\nid = \"111122223333\"\n";
        let p = problems(&format!("{HEAD}{declared}{STEP}account = \"dnss\"\n"));
        assert_eq!(
            p[0].help.as_deref(),
            Some("did you mean `dns`? declared: dns, prod")
        );
        let p = problems(&format!("{HEAD}{declared}{STEP}account = \"network\"\n"));
        assert_eq!(p[0].help.as_deref(), Some("declared accounts: dns, prod"));
        let p = problems(&format!("{HEAD}{STEP}account = \"dns\"\n"));
        assert_eq!(
            p[0].help.as_deref(),
            Some("the runbook declares no [accounts]")
        );
        // A broken account is still declared: its steps are not reported too.
        let p = problems(&format!(
            "{HEAD}[accounts.dns]\nid = \"4444\"\n{STEP}account = \"dns\"\n"
        ));
        assert_eq!(p.len(), 1, "{p:#?}");
    }
}
