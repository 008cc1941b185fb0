//! `{{param}}` templating of string values.
//!
//! Templates are resolved once, at validation, against `[params]`: a runbook that names
//! an unknown parameter is invalid before anything runs. Each placeholder's position in
//! the file is recovered when the string is written without escapes, so the error
//! points at the placeholder itself rather than the whole string.

use std::collections::BTreeMap;
use std::ops::Range;

use super::diag::{Diagnostics, did_you_mean};

/// Resolves every `{{name}}` in `value` (whose TOML text occupies `span` of `src`).
///
/// Returns `None` after recording an error when a placeholder is unclosed, empty or
/// names no parameter.
pub fn render(
    value: &str,
    span: Range<usize>,
    src: &str,
    params: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> Option<String> {
    if !value.contains("{{") {
        return Some(value.to_string());
    }
    let origin = content_offset(value, &span, src);
    let locate = |from: usize, to: usize| match origin {
        Some(o) => o + from..o + to,
        None => span.clone(),
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut consumed = 0;
    let mut ok = true;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            diags
                .error(
                    locate(consumed + open, value.len()),
                    "unclosed `{{` in a templated string",
                    "expected `}}` after the parameter name",
                )
                .help = Some("write {{name}} to insert the parameter `name`".into());
            return None;
        };
        let name = after_open[..close].trim();
        let at = locate(consumed + open, consumed + open + 2 + close + 2);
        match params.get(name) {
            Some(v) => out.push_str(v),
            None if name.is_empty() => {
                diags.error(at, "empty `{{}}` placeholder", "expected a parameter name");
                ok = false;
            }
            None => {
                let p = diags.error(
                    at,
                    format!("unknown parameter `{name}`"),
                    "not defined in [params]",
                );
                p.help = Some(
                    match did_you_mean(name, params.keys().map(String::as_str)) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None if params.is_empty() => {
                            format!("add `{name} = \"...\"` to a [params] table")
                        }
                        None => format!(
                            "defined parameters: {}",
                            params.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
                ok = false;
            }
        }
        let advance = open + 2 + close + 2;
        consumed += advance;
        rest = &rest[advance..];
    }
    out.push_str(rest);
    ok.then_some(out)
}

/// Byte offset in `src` where the string's content starts, when the TOML text is the
/// content verbatim (no escapes) inside its quotes.
fn content_offset(value: &str, span: &Range<usize>, src: &str) -> Option<usize> {
    let raw = src.get(span.clone())?;
    // "x", 'x', """x""", '''x''' (a newline right after the opening quotes is trimmed).
    [1usize, 3, 4, 5]
        .into_iter()
        .find(|&skip| raw.get(skip..).is_some_and(|r| r.starts_with(value)))
        .map(|skip| span.start + skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, String> {
        [("to", "us-west-2"), ("from", "us-east-1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(src: &str) -> (Option<String>, Vec<super::super::diag::Problem>) {
        let start = src.find('"').unwrap();
        let end = src.rfind('"').unwrap() + 1;
        let value = &src[start + 1..end - 1];
        let mut d = Diagnostics::default();
        let out = render(value, start..end, src, &params(), &mut d);
        (out, d.into_sorted())
    }

    #[test]
    fn table_of_cases() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"a = "plain""#, Some("plain")),
            (
                r#"a = "arn:aws:rds:{{to}}:1:cluster:x""#,
                Some("arn:aws:rds:us-west-2:1:cluster:x"),
            ),
            (r#"a = "{{ from }}->{{to}}""#, Some("us-east-1->us-west-2")),
            (r#"a = "{{nope}}""#, None),
            (r#"a = "{{}}""#, None),
            (r#"a = "{{to""#, None),
            (r#"a = "}}{{to}}}}""#, Some("}}us-west-2}}")),
        ];
        for (src, want) in cases {
            let (got, _) = run(src);
            assert_eq!(got.as_deref(), *want, "{src}");
        }
    }

    #[test]
    fn unknown_parameter_points_at_the_placeholder() {
        let src = r#"target = "arn:{{too}}:x""#;
        let (out, problems) = run(src);
        assert!(out.is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(&src[problems[0].span.clone()], "{{too}}");
        assert_eq!(problems[0].help.as_deref(), Some("did you mean `to`?"));
    }

    #[test]
    fn every_unknown_parameter_is_reported() {
        let (_, problems) = run(r#"a = "{{x}}{{y}}""#);
        assert_eq!(problems.len(), 2);
    }
}
