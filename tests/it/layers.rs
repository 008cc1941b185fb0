//! The layering of `src/` (docs/architecture.md), proven from the source: every path
//! from one top-level module into another (`crate::x`, `use crate::{x, y}`, and
//! `super::` paths that climb out of a module) points to a lower layer. A new import
//! that points up, or sideways within a layer, fails here naming the file and line.
//! Test code (`#[cfg(test)]` items, `tests.rs` and `testing.rs` test modules) may reach
//! anywhere and is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    // Leaves: values and pure functions every layer may use.
    &["clock", "exit", "names", "heartbeat"],
    // The runbook: syntax, semantics, catalogue, graph algorithms.
    &["runbook"],
    // Built on the runbook alone: the plan, and the seam to the cloud.
    &["plan", "cloud"],
    // Behind or on top of the seam: the simulated world, the actions.
    &["sim", "actions"],
    &["engine"],
    // What a run leaves: the journal and lock, then reports read from it.
    &["journal"],
    // Sinks of the event stream: reports, and the notifications sent off the run's path.
    &["report", "notify"],
    // Settings in, a composed run out: target, store, sinks, engine.
    &["app"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Source with `#[cfg(test)]` items removed (a module with braces, or one line).
fn without_tests(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its first `;` before any `{`, or at the matching `}`.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => after.len(),
        };
        // Keep the line count, for line numbers.
        out.extend(after[..end].chars().filter(|c| *c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a path starting at `at` names: `x` of `crate::x::...`, each
/// name of `crate::{x, y::z}`, and `x` of a `super::...` path that leaves the file's
/// top-level module (`depth`: how many modules deep the file is below its top one).
fn targets(line: &str, depth: usize) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = line[i..].find("crate::") {
        let start = i + off;
        // `drpilot::crate::` cannot occur; make sure it is not part of a longer word.
        let before = line[..start].chars().last();
        i = start + "crate::".len();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &line[i..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            out.extend(inner.split(',').map(|p| ident(p.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    // `super::super::x` from a file `depth` modules below its top module: `depth + 1`
    // supers reach the crate root.
    let mut j = 0;
    while let Some(off) = line[j..].find("super::") {
        let start = j + off;
        let before = line[..start].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            j = start + 1;
            continue;
        }
        let mut n = 0;
        let mut k = start;
        while line[k..].starts_with("super::") {
            n += 1;
            k += "super::".len();
        }
        j = k;
        if n == depth + 1 {
            out.push(ident(&line[k..]));
        }
    }
    out.retain(|t| !t.is_empty());
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every edge between top-level modules: (from, to) -> where.
fn edges() -> BTreeMap<(String, String), Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let top = parts[0].trim_end_matches(".rs").to_string();
        if matches!(top.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        let name = parts.last().unwrap().as_str();
        if matches!(name, "tests.rs" | "testing.rs") {
            continue;
        }
        // How many modules below its top module the file's own module is.
        let depth = match name {
            "mod.rs" => parts.len() - 2,
            _ if parts.len() == 1 => 0,
            _ => parts.len() - 1,
        };
        let text = without_tests(&std::fs::read_to_string(&f).unwrap());
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for t in targets(code, depth) {
                if t != top && layer_of(&t).is_some() {
                    out.entry((top.clone(), t)).or_default().push(format!(
                        "src/{}:{}",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_module_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(name.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        if layer_of(&name).is_none() {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "top-level modules in no layer of tests/it/layers.rs (and docs/architecture.md): {missing:?}"
    );
}

#[test]
fn imports_point_down_only() {
    let all = edges();
    assert!(
        all.len() > 20,
        "the scan found only {} edges: it is not reading the source",
        all.len()
    );
    let mut wrong: Vec<String> = Vec::new();
    for ((from, to), at) in &all {
        let (a, b) = (layer_of(from).unwrap(), layer_of(to).unwrap());
        if b >= a {
            wrong.push(format!(
                "{from} (layer {a}) uses {to} (layer {b}) at {}",
                at.join(", ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways (docs/architecture.md):\n{}",
        wrong.join("\n")
    );
    // And so no cycle: every edge goes down a strict order.
    let modules: BTreeSet<&String> = all.keys().flat_map(|(a, b)| [a, b]).collect();
    assert!(modules.len() >= 10, "{modules:?}");
}

#[test]
fn the_scan_sees_every_kind_of_path() {
    assert_eq!(targets("use crate::engine::events::Event;", 0), ["engine"]);
    assert_eq!(
        targets("use crate::{cloud::Cloud, runbook, sim::SimWorld};", 1),
        ["cloud", "runbook", "sim"]
    );
    assert_eq!(targets("let x = crate::plan::Plan::new(&rb);", 2), ["plan"]);
    // From src/engine/mod.rs (depth 0), `super::` is the crate root.
    assert_eq!(targets("use super::cli::exit;", 0), ["cli"]);
    // From src/engine/executor.rs (depth 1), `super::` stays in engine.
    assert!(targets("use super::events::EventKind;", 1).is_empty());
    assert_eq!(targets("use super::super::cli::exit;", 1), ["cli"]);
    assert!(targets("let s = my_crate::engine;", 0).is_empty());
    let stripped = without_tests(
        "use crate::a;\n#[cfg(test)]\nmod tests {\n use crate::b;\n}\nuse crate::c;\n",
    );
    assert!(stripped.contains("crate::a") && stripped.contains("crate::c"));
    assert!(!stripped.contains("crate::b"));
    assert_eq!(stripped.lines().count(), 6, "line numbers stay right");
}
