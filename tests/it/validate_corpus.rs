//! A corpus of broken runbooks and snapshots of what `drpilot` says about them.
//!
//! Every file in `tests/runbooks/broken/` is broken in one or two named ways (its leading
//! `#` comment says how). The test loads each one through the library and snapshots
//! both renderings a person or a tool sees: miette's report (no colour, 100 columns)
//! and the one-line `file:line:col` form. A change to any message, span or help text
//! shows up as a snapshot diff to review.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test validate_corpus`, then read
//! every changed snapshot: each error must point at the right line and column, say what
//! was expected, and not drag in follow-on errors.
//!
//! Paths are relative (cargo runs integration tests from the crate root) so snapshots
//! do not depend on where the checkout lives.

use std::path::{Path, PathBuf};

use drpilot::runbook::{self, LoadError, RenderStyle, Severity};

use crate::{drpilot, text};

pub const BROKEN: &str = "tests/runbooks/broken";
const VALID: &str = "tests/runbooks/valid";

/// The `.toml` files of a corpus directory, sorted, as relative paths.
pub fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_broken_runbook_is_rejected_with_stable_diagnostics() {
    let files = corpus(BROKEN);
    assert!(files.len() >= 20, "the corpus shrank: {files:?}");
    for path in &files {
        let name = stem(path);
        let bytes = std::fs::read(path).unwrap();
        // The corpus convention: say what is wrong in a leading comment (the empty
        // file is the one file that cannot).
        assert!(
            bytes.is_empty() || bytes.starts_with(b"# "),
            "{name}: start the file with a `# what is wrong` comment"
        );

        let err = match runbook::load(path) {
            Err(LoadError::Invalid(err)) => err,
            Err(other) => panic!("{name}: expected an invalid runbook, got {other:?}"),
            Ok(loaded) => panic!(
                "{name}: loaded as valid ({} steps, warnings: {:?})",
                loaded.runbook.steps.len(),
                loaded.warnings
            ),
        };
        assert!(err.error_count() >= 1, "{name}: rejected without an error");
        assert_eq!(err.file.path, *path, "{name}: the error names another file");
        let errors = err
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        assert_eq!(errors, err.error_count());

        let fancy = err.render(RenderStyle::Fancy {
            color: false,
            width: 100,
        });
        let short = err.render(RenderStyle::Short);
        if name.contains("secret") {
            for out in [&fancy, &short] {
                assert!(!out.contains("hunter2"), "{name}: secret shown:\n{out}");
            }
        }
        // The file's leading comment (what is wrong) heads the snapshot, so a reviewer
        // can judge the output without opening the runbook.
        let head = String::from_utf8_lossy(&bytes);
        let mut what: Vec<&str> = head.lines().map_while(|l| l.strip_prefix("# ")).collect();
        if bytes.is_empty() {
            what.push("The file is empty (0 bytes).");
        }
        insta::with_settings!({
            input_file => path,
            description => what.join(" "),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, format!("{fancy}---- short ----\n{short}"));
        });
    }
}

#[test]
fn every_valid_runbook_loads_without_warnings() {
    let files = corpus(VALID);
    assert!(!files.is_empty());
    for path in &files {
        match runbook::load(path) {
            Ok(loaded) => assert!(
                loaded.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                loaded.warnings
            ),
            Err(LoadError::Invalid(err)) => {
                panic!("{}:\n{}", path.display(), err.render(RenderStyle::Short))
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn cli_short_format_prints_file_line_col_and_exits_2() {
    let file = "tests/runbooks/broken/17-after-missing-step.toml";
    let out = drpilot(&["validate", "--format", "short", file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "diagnostics go to stderr");
    assert!(
        stderr.starts_with(&format!(
            "{file}:17:10: error: step `aurora-promote` runs after `aurora-lag`, which is not a step"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `aurora-lag-ok`?"), "{stderr}");
    assert!(
        stderr.ends_with(&format!("error: runbook {file} has 1 error\n")),
        "{stderr}"
    );
}

#[test]
fn cli_json_format_prints_one_object_per_problem() {
    let file = "tests/runbooks/broken/29-many-problems.toml";
    let out = drpilot(&["validate", "--format", "json", file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "diagnostics go to stderr");

    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Same count as the library reports: nothing extra (no summary line) in JSON mode.
    let Err(LoadError::Invalid(err)) = runbook::load(Path::new(file)) else {
        panic!("{file} must be invalid");
    };
    assert_eq!(lines.len(), err.problems.len(), "{stderr}");
    assert!(lines.len() >= 5, "the file has many problems: {stderr}");
    for v in &lines {
        let obj = v.as_object().expect("each line is a JSON object");
        assert_eq!(obj["file"], file);
        assert!(obj["line"].as_u64().is_some_and(|n| n >= 1), "{v}");
        assert!(obj["column"].as_u64().is_some_and(|n| n >= 1), "{v}");
        assert!(
            matches!(obj["severity"].as_str(), Some("error" | "warning")),
            "{v}"
        );
        assert!(
            obj["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    // Positions agree with the short format.
    let first = &lines[0];
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(7), Some(8)),
        "{first}"
    );
    assert_eq!(first["severity"], "error");
    assert_eq!(first["message"], "unknown mode `unplaned`");
}

#[test]
fn cli_valid_runbook_exits_0() {
    let file = "tests/runbooks/valid/minimal.toml";
    let out = drpilot(&["validate", file]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, format!("ok: {file} (2 steps)\n"));
}

#[test]
fn cli_one_broken_file_fails_the_batch_but_the_valid_ones_still_pass() {
    let broken = "tests/runbooks/broken/16-duplicate-step-ids.toml";
    let valid: Vec<String> = corpus(VALID)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(valid.len() >= 2, "{valid:?}");
    // The broken file in the middle: files after it are still checked.
    let mut args = vec!["validate", "--format", "short", valid[0].as_str(), broken];
    args.extend(valid[1..].iter().map(String::as_str));
    let out = drpilot(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for v in &valid {
        assert!(
            stderr.contains(&format!("ok: {v} (")),
            "{v} not ok:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("{broken}:12:6: error: duplicate step id `soak`")),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ok: ").count(), valid.len(), "{stderr}");
}

/// Regression: secrets that once reached a rendering (multi-line values under a secret
/// key, in valid and in broken TOML, and secret-looking parameters).
#[test]
fn secrets_never_reach_any_output() {
    let head = "[runbook]\nname = \"rb\"\nmode = \"unplanned\"\n";
    let cases = [
        // Valid TOML, secret key whose value is a multi-line array: only the first line
        // is blanked, the next (shown as context) holds the secret.
        format!(
            "{head}[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\npassword = [\n  \"hunter2\",\n]\n"
        ),
        // Broken TOML inside a multi-line secret string: only the line scan runs.
        format!(
            "{head}[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\npassword = \"\"\"\nhunter2 \\q\n\"\"\"\n"
        ),
        // A secret-looking parameter is accepted, then expanded into a message.
        format!(
            "{head}[params]\napi_token = \"hunter2\"\n[[step]]\nid = \"a\"\naction = \"aurora.writer_in_region\"\nglobal_cluster = \"g\"\nregion = \"{{{{api_token}}}}\"\n"
        ),
    ];
    let mut leaks = Vec::new();
    for (i, text) in cases.iter().enumerate() {
        let err = runbook::load_str(Path::new("x.toml"), text).unwrap_err();
        for style in [
            RenderStyle::Short,
            RenderStyle::Fancy {
                color: false,
                width: 100,
            },
        ] {
            let out = err.render(style);
            if out.contains("hunter2") {
                leaks.push(format!("case {i}:\n{out}"));
            }
        }
    }
    // A secret-looking parameter in a valid runbook is not even an error.
    let text = format!(
        "{head}[params]\ndb_password = \"hunter2\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\n"
    );
    if runbook::load_str(Path::new("x.toml"), &text).is_ok() {
        leaks.push("[params] db_password = \"hunter2\" is accepted".into());
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}
