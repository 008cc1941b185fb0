//! The walker's catalogue fields: each action's and check's fields, typed by their spec.

use std::ops::Range;

use toml::de::DeValue;

use super::{Walker, cluster_arn_problem, is_url};
use crate::runbook::catalogue::{self, FieldKind, FieldSpec, is_region};
use crate::runbook::diag::did_you_mean;
use crate::runbook::model::{FieldValue, Fields};
use crate::runbook::reader::{self, Table, Val};
use crate::runbook::template;

impl<'s> Walker<'s, '_> {
    /// Reads every field of `specs` from `t`; `None` if any is missing or wrong (all are
    /// still checked and reported).
    pub(super) fn fields(&mut self, t: &mut Table<'_, '_>, specs: &[FieldSpec]) -> Option<Fields> {
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
            FieldKind::Acu { min, max } => {
                reader::acu_value(self.d, v, key, what, min, max).map(FieldValue::Acu)
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
