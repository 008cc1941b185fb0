//! The catalogue as a Markdown reference (`docs/catalogue.md`).

use super::{CATALOGUE, FieldKind, FieldSpec, Usage};

/// The catalogue as a Markdown reference (`docs/catalogue.md` is this, checked by a
/// test so the document cannot drift from the code).
pub fn markdown() -> String {
    let mut o = String::from(
        "# Action and check catalogue\n\n\
         Generated from `src/runbook/catalogue.rs`; a test keeps this file current \
         (`DRPILOT_UPDATE_DOCS=1 cargo test docs_` rewrites it).\n\n\
         Every check can also be a step `action`: it is then evaluated once (retried by the \
         step's retry policy) and fails when false. Strings may use `{{param}}` templates.\n",
    );
    for (title, usage) in [("Actions", Usage::Action), ("Checks", Usage::Check)] {
        o.push_str(&format!("\n## {title}\n"));
        for spec in CATALOGUE.iter().filter(|s| s.usage == usage) {
            o.push_str(&format!("\n### `{}`\n\n{}\n\n", spec.name, spec.doc));
            let expected = match spec.expected {
                Some(d) => humantime::format_duration(d).to_string(),
                None => "its `duration`".into(),
            };
            o.push_str(&format!("- expected duration: {expected}\n"));
            o.push_str(&format!(
                "- mutates: {}\n",
                if spec.is_mutating() {
                    "yes"
                } else {
                    "no (read-only)"
                }
            ));
            if let Some(inv) = spec.inverse {
                o.push_str(&format!(
                    "- built-in rollback (`[step.rollback]` without `action`): {inv}\n"
                ));
            }
            o.push_str("\n| field | type | required | meaning |\n|---|---|---|---|\n");
            for f in spec.fields {
                o.push_str(&field_row(f, ""));
                if let FieldKind::TableList(sub) = f.kind {
                    for s in sub {
                        o.push_str(&field_row(s, &format!("{}[].", f.name)));
                    }
                }
            }
        }
    }
    o
}

fn field_row(f: &FieldSpec, prefix: &str) -> String {
    format!(
        "| `{prefix}{}` | {} | {} | {} |\n",
        f.name,
        f.kind.expected().replace('|', "\\|"),
        if f.required { "yes" } else { "no" },
        f.doc.replace('|', "\\|")
    )
}
