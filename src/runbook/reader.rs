//! Reading toml's spanned tree with diagnostics: the pieces every TOML format of
//! drpilot shares (runbooks, `--sim-config`).
//!
//! A [`Table`] remembers which keys a reader consumed, so [`finish`] can report every
//! other key as unknown with a "did you mean"; typed readers record a problem at the
//! value's span and return `None` instead of stopping, so one pass reports everything.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::catalogue;
use super::diag::{Diagnostics, did_you_mean};

/// Parses a whole TOML document. On syntax errors, records them and returns `None`:
/// what follows a broken document would be guesswork. The parser's recovery can
/// report several errors for one mistake on the same line; the first is the one that
/// names the mistake, so one per line is kept.
pub(crate) fn parse_document<'i>(
    text: &'i str,
    d: &mut Diagnostics,
) -> Option<Spanned<DeTable<'i>>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Some(root);
    }
    let mut lines_seen = Vec::new();
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let line = text
            .get(..span.start)
            .map_or(0, |before| before.matches('\n').count());
        if lines_seen.contains(&line) {
            continue;
        }
        lines_seen.push(line);
        d.error(
            span,
            format!("invalid TOML: {}", e.message().trim_end()),
            "TOML syntax error here",
        );
    }
    None
}

/// A value with its span.
pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

/// A table being read: remembers which keys were consumed so the rest are reported.
pub(crate) struct Table<'a, 'i> {
    /// The entries.
    pub map: &'a DeTable<'i>,
    /// The table's span (its header first).
    pub span: Range<usize>,
    /// How messages name it ("step `x`", "[clusters.y]").
    pub what: String,
    /// Keys consumed so far.
    pub taken: Vec<&'a str>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Wraps a table.
    pub fn new(map: &'a DeTable<'i>, span: Range<usize>, what: impl Into<String>) -> Self {
        Self {
            map,
            span,
            what: what.into(),
            taken: Vec::new(),
        }
    }

    /// Consumes a key.
    pub fn take(&mut self, key: &str) -> Option<&'a Val<'i>> {
        let (k, v) = self.map.get_key_value(key)?;
        self.taken.push(k.get_ref().as_ref());
        Some(v)
    }
}

/// "a string", "an integer", ...: what a value is, for "found ..." messages.
pub(crate) fn kind_of(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The value as a table to read, or a problem.
pub(crate) fn as_table<'a, 'i>(
    d: &mut Diagnostics,
    v: &'a Val<'i>,
    what: &str,
) -> Option<Table<'a, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, v.span(), what)),
        other => {
            d.error(
                v.span(),
                format!("{what} must be a table, found {}", kind_of(other)),
                "expected a table",
            );
            None
        }
    }
}

/// The first line of a table's span: its `[header]`, not its whole body.
pub(crate) fn header_span(src: &str, span: &Range<usize>) -> Range<usize> {
    let text = src.get(span.clone()).unwrap_or("");
    let end = text.find('\n').map_or(span.end, |i| span.start + i);
    span.start..end.max(span.start)
}

/// Records that `key` holds the wrong kind of value.
pub(crate) fn wrong_type(d: &mut Diagnostics, v: &Val<'_>, key: &str, what: &str, expected: &str) {
    d.error(
        v.span(),
        format!(
            "`{key}` in {what} must be {expected}, found {}",
            kind_of(v.get_ref())
        ),
        format!("expected {expected}"),
    );
}

/// Reports every key of `t` no reader consumed. Returns the spans of values under
/// secret-looking keys, which the caller blanks before anything renders the file;
/// `file` names the format in the help ("a runbook").
pub(crate) fn finish(
    d: &mut Diagnostics,
    t: Table<'_, '_>,
    valid: &[&str],
    file: &str,
) -> Vec<Range<usize>> {
    let mut secrets = Vec::new();
    for (k, v) in t.map.iter() {
        let key: &str = k.get_ref().as_ref();
        if t.taken.contains(&key) {
            continue;
        }
        let p = d.error(
            k.span(),
            format!("unknown key `{key}` in {}", t.what),
            "unknown key",
        );
        let secret = catalogue::looks_like_secret_key(&key.to_ascii_lowercase());
        p.help = if secret {
            Some(format!(
                "secrets never go in {file}: put it in an environment variable and \
                 name the variable with `{key}_env`"
            ))
        } else if let Some(near) = did_you_mean(key, valid.iter().copied()) {
            Some(format!("did you mean `{near}`?"))
        } else if valid.is_empty() {
            Some("this table takes no keys".into())
        } else {
            Some(format!("valid keys here: {}", valid.join(", ")))
        };
        if secret {
            secrets.push(v.span());
        }
    }
    secrets
}

/// An optional boolean.
pub(crate) fn bool(d: &mut Diagnostics, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
    let v = t.take(key)?;
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            wrong_type(d, v, key, &t.what, "true or false");
            None
        }
    }
}

/// An integer within `min..=max`.
pub(crate) fn int_value(
    d: &mut Diagnostics,
    v: &Val<'_>,
    key: &str,
    what: &str,
    min: i64,
    max: i64,
) -> Option<i64> {
    let DeValue::Integer(i) = v.get_ref() else {
        wrong_type(d, v, key, what, &format!("an integer from {min} to {max}"));
        return None;
    };
    let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
    match i64::from_str_radix(&digits, i.radix()) {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            d.error(
                v.span(),
                format!("`{key}` in {what} is out of range"),
                format!("expected an integer from {min} to {max}"),
            );
            None
        }
    }
}

/// A capacity in Aurora capacity units within `min..=max`: a TOML integer or float in
/// half steps (`8`, `0.5`, `40.5`), as AWS takes it.
pub(crate) fn acu_value(
    d: &mut Diagnostics,
    v: &Val<'_>,
    key: &str,
    what: &str,
    min: crate::names::Acu,
    max: crate::names::Acu,
) -> Option<crate::names::Acu> {
    let expected = format!("a number of ACUs from {min} to {max} in steps of 0.5");
    let text: String = match v.get_ref() {
        DeValue::Integer(i) if i.radix() == 10 => {
            i.as_str().chars().filter(|c| *c != '_').collect()
        }
        DeValue::Float(f) => f.as_str().chars().filter(|c| *c != '_').collect(),
        _ => {
            wrong_type(d, v, key, what, &expected);
            if matches!(v.get_ref(), DeValue::String(_))
                && let Some(p) = d.last_mut()
            {
                p.help = Some(format!("write the number without quotes: {key} = 8"));
            }
            return None;
        }
    };
    let problem = match text.parse::<f64>() {
        Ok(n) => match crate::names::Acu::from_f64(n) {
            Some(acu) if (min..=max).contains(&acu) => return Some(acu),
            Some(_) => format!("{text} ACUs is outside {min} to {max}"),
            None if n.is_finite() && (0.0..=crate::names::Acu::LARGEST.as_f64()).contains(&n) => {
                format!("{text} is not a multiple of 0.5 (ACUs go in half steps: 8, 8.5, 9)")
            }
            None => format!("{text} ACUs is outside {min} to {max}"),
        },
        Err(_) => format!("{text} is not a number"),
    };
    d.error(
        v.span(),
        format!("`{key}` in {what} is invalid: {problem}"),
        format!("expected {expected}"),
    );
    None
}

/// A humantime duration string. `expand` turns the raw string into the text to parse
/// (runbooks resolve `{{param}}` templates there; it records its own problems).
pub(crate) fn duration_value(
    d: &mut Diagnostics,
    v: &Val<'_>,
    key: &str,
    what: &str,
    expand: impl FnOnce(&str, &mut Diagnostics) -> Option<String>,
) -> Option<Duration> {
    let DeValue::String(s) = v.get_ref() else {
        wrong_type(d, v, key, what, "a duration string such as \"90s\"");
        if matches!(v.get_ref(), DeValue::Integer(_) | DeValue::Float(_))
            && let Some(p) = d.last_mut()
        {
            p.help = Some("durations carry their unit: write \"30s\", \"5m\" or \"1h\"".into());
        }
        return None;
    };
    let s = expand(s, d)?;
    match humantime::parse_duration(s.trim()) {
        Ok(duration) => Some(duration),
        Err(_) => {
            d.error(
                v.span(),
                format!("`{key}` in {what} is not a duration: \"{s}\""),
                "expected a duration such as \"90s\", \"5m\" or \"1h 30m\"",
            )
            .help = Some("write numbers with units: ms, s (sec), m (min), h (hr), d (days)".into());
            None
        }
    }
}
