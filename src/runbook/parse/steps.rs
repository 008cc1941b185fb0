//! The walker's `[[step]]` array: each step, its dependencies, gates and rollback.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::{
    GATE_KEYS, Outline, ROLLBACK_KEYS, STEP_KEYS, Skeleton, StepIds, StepRead, Walker,
    is_identifier,
};
use crate::runbook::catalogue::{self, Kind, Spec, Usage};
use crate::runbook::diag::did_you_mean;
use crate::runbook::model::{
    DEFAULT_GATE_INTERVAL, Fields, Gate, MAX_APPROVERS, OnUnreachable, RetryPolicy, Rollback, Step,
    StepId, StepSpans,
};
use crate::runbook::reader::{Table, Val, kind_of};

impl<'s> Walker<'s, '_> {
    /// Reads the `[[step]]` array, consuming it: each step's TOML is dropped as soon as
    /// it has been read.
    pub(super) fn steps(
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
            || spec.is_some_and(|s| s.kind == Kind::Approval);
        let approvers = match t.take("approvers") {
            None => 1,
            Some(v) => {
                let n = self.int_value(v, "approvers", &what, 1, i64::from(MAX_APPROVERS));
                if !approval {
                    self.d
                        .error(
                            v.span(),
                            format!("{what}: `approvers` on a step that needs no approval"),
                            "only an approval step counts approvers",
                        )
                        .help = Some(
                        "use action = \"approval\", or set approval = true on the step".into(),
                    );
                }
                n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1)
            }
        };
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
            approvers,
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
            && (spec.is_mutating() || spec.kind == Kind::Approval)
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
    pub(super) fn step_ids<'a, 'i>(
        &mut self,
        t: &mut Table<'a, 'i>,
        key: &str,
    ) -> Option<StepIds<'a, 'i>> {
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
}
