//! The walker's top-level tables: `[params]`, `[accounts]`, `[runbook]`, `[state]`,
//! `[notify]`, `[objectives]`, `[defaults]` and retry policies.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::{
    ACCOUNT_KEYS, DEFAULT_KEYS, EXTERNAL_ID, MAX_PROBE_TIMEOUT, MAX_READ_TIMEOUT, NOTIFY_KEYS,
    OBJECTIVE_KEYS, RETRY_KEYS, RUNBOOK_KEYS, SESSION_NAME, STATE_KEYS, StepIds, Walker,
    is_account_id, is_credential_key, is_identifier, is_param_name, role_arn_account,
};
use crate::runbook::catalogue;
use crate::runbook::diag::did_you_mean;
use crate::runbook::model::{
    Account, DEFAULT_TIMEOUT, Deadlines, Mode, NotifySection, Objectives, RetryPolicy, RunbookMeta,
    StateSection, StepId,
};
use crate::runbook::reader::{Table, Val, kind_of};

impl<'s> Walker<'s, '_> {
    pub(super) fn params(&mut self, v: &Val<'_>) {
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

    pub(super) fn accounts(&mut self, v: &Val<'_>) -> BTreeMap<String, Account> {
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
    pub(super) fn account_ref(&mut self, t: &mut Table<'_, '_>, what: &str) -> Option<String> {
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

    pub(super) fn meta(&mut self, v: &Val<'_>) -> Option<RunbookMeta> {
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
    pub(super) fn state(&mut self, v: &Val<'_>) -> Option<StateSection> {
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

    /// `[notify] urls_env = ["DR_SLACK_WEBHOOK", ...]`: names of environment variables
    /// (letters, digits, `_`; not starting with a digit). A value that is a URL is
    /// refused, and blanked in the diagnostic: a webhook URL is a secret.
    pub(super) fn notify(&mut self, v: &Val<'_>) -> Option<NotifySection> {
        let mut t = self.as_table(v, "[notify]")?;
        let mut names = Vec::new();
        let mut ok = true;
        match t.take("urls_env") {
            None => {
                self.d.error(
                    v.span(),
                    "[notify] has no `urls_env`",
                    "expected urls_env = [\"DR_SLACK_WEBHOOK\", ...]",
                );
                ok = false;
            }
            Some(sv) => match sv.get_ref() {
                DeValue::Array(items) if !items.is_empty() => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) if is_env_name(s) => {
                                if !names.iter().any(|n: &String| n == s.as_ref()) {
                                    names.push(s.to_string());
                                }
                            }
                            DeValue::String(s) if looks_like_receiver(s) => {
                                self.secrets.push(item.span());
                                self.d
                                    .error(
                                        item.span(),
                                        "a notification URL in the runbook",
                                        "expected the name of an environment variable that holds the URL",
                                    )
                                    .help = Some(
                                    "a webhook URL is a secret and never goes in a runbook: put it in an \
                                     environment variable (export DR_SLACK_WEBHOOK=...) and name the variable here, \
                                     urls_env = [\"DR_SLACK_WEBHOOK\"]"
                                        .into(),
                                );
                                ok = false;
                            }
                            DeValue::String(_) => {
                                self.d.error(
                                    item.span(),
                                    "not an environment variable name",
                                    "expected letters, digits and `_`, not starting with a digit (DR_SLACK_WEBHOOK)",
                                );
                                ok = false;
                            }
                            _ => {
                                self.wrong_type(item, "urls_env", "[notify]", "a string");
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    self.wrong_type(
                        sv,
                        "urls_env",
                        "[notify]",
                        "a non-empty array of environment variable names",
                    );
                    ok = false;
                }
            },
        }
        self.finish(t, NOTIFY_KEYS);
        ok.then_some(NotifySection { urls_env: names })
    }

    pub(super) fn objectives(&mut self, v: &Val<'_>) -> Objectives {
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

    pub(super) fn defaults(&mut self, v: &Val<'_>) -> (RetryPolicy, Duration, Deadlines) {
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

    pub(super) fn positive_duration(
        &mut self,
        t: &mut Table<'_, '_>,
        key: &str,
    ) -> Option<Duration> {
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
    pub(super) fn retry(&mut self, v: &Val<'_>, base: &RetryPolicy, what: &str) -> RetryPolicy {
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
}

/// An environment variable's name as shells write it: letters, digits and `_`, not
/// starting with a digit.
fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value that is (or tries to be) a receiver's URL rather than a variable's name.
fn looks_like_receiver(s: &str) -> bool {
    s.contains("://") || s.starts_with("sns:") || s.contains('/')
}
