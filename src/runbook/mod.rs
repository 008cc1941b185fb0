//! Runbooks: the TOML format, its checks, and the JSON Schema editors use.
//!
//! A file goes through three passes before anything else sees it: TOML syntax
//! ([`parse`]), structure and types against the [`catalogue`] with `{{param}}`
//! templates resolved (also [`parse`]), then cross-step rules ([`validate`]). Each pass
//! reports every problem it finds; a [`Runbook`] exists only when there were none.

pub mod catalogue;
pub mod diag;
pub mod graph;
pub mod iam;
pub mod kind;
pub mod model;
mod parse;
pub(crate) mod reader;
pub mod schema;
pub mod template;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

pub use diag::{Problem, RenderStyle, RunbookError, Severity, SourceFile};
pub use model::{Mode, Runbook, Step, StepId};

/// Runbooks larger than this are refused before parsing: a real one is a few KiB, and
/// the limit keeps a stray multi-gigabyte file from exhausting memory or a terminal.
pub const MAX_RUNBOOK_BYTES: usize = 1024 * 1024;

/// A runbook that passed every check, with the warnings it raised.
#[derive(Debug)]
pub struct Loaded {
    /// The checked runbook.
    pub runbook: Runbook,
    /// Problems that do not stop a run (shown to the user).
    pub warnings: Vec<Problem>,
    /// The file, for rendering the warnings.
    pub source: SourceFile,
}

/// Why a runbook file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read runbook {path}")]
    Read {
        /// The path given.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any runbook could reasonably be.
    #[error("runbook {path} is {size} bytes; a runbook may be at most {MAX_RUNBOOK_BYTES} bytes")]
    TooLarge {
        /// The path given.
        path: std::path::PathBuf,
        /// Its size (at least the limit plus one when the size is unknown).
        size: u64,
    },
    /// The file was read but is not a valid runbook.
    #[error(transparent)]
    Invalid(#[from] RunbookError),
}

/// Reads and checks a runbook file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with(path, &BTreeMap::new())
}

/// Reads at most one byte past the limit, so a huge file is refused without loading it.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_RUNBOOK_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Checks a runbook given as bytes (named `path` in messages).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded, LoadError> {
    if bytes.len() > MAX_RUNBOOK_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(load_str(path, text)?),
        Err(e) => {
            // The valid prefix is unchanged by the lossy conversion, and the first bad
            // sequence becomes U+FFFD (3 bytes), so the offset still points at it.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            let mut d = diag::Diagnostics::default();
            d.error(
                at..at + 3,
                "the file is not UTF-8 text",
                "invalid UTF-8 here",
            )
            .help = Some("a runbook is a UTF-8 TOML file".into());
            Err(RunbookError {
                file: SourceFile::new(path, redact(&text, &[])),
                problems: d.into_sorted(),
            }
            .into())
        }
    }
}

/// Checks a runbook given as text (named `path` in messages).
pub fn load_str(path: &Path, text: &str) -> Result<Loaded, RunbookError> {
    load_str_with(path, text, &BTreeMap::new())
}

/// Like [`load`], with `[params]` values overridden (`--param KEY=VALUE`).
pub fn load_with(path: &Path, params: &BTreeMap<String, String>) -> Result<Loaded, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // The size on disk, when there is one, so the message states it exactly; reading
    // stops one byte past the limit either way (a pipe or /proc file has no size).
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    let bytes = read_bounded(path).map_err(read_error)?;
    if bytes.len() > MAX_RUNBOOK_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: size.max(bytes.len() as u64),
        });
    }
    if params.is_empty() {
        return load_bytes(path, &bytes);
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(load_str_with(path, text, params)?),
        // Let the plain path report the encoding error with its position.
        Err(_) => load_bytes(path, &bytes),
    }
}

/// Like [`load_str`], with `[params]` values overridden.
pub fn load_str_with(
    path: &Path,
    text: &str,
    params: &BTreeMap<String, String>,
) -> Result<Loaded, RunbookError> {
    let mut d = diag::Diagnostics::default();
    let draft = parse::parse_with(text, params, &mut d);
    let mut secrets = Vec::new();
    let runbook = draft.and_then(|mut draft| {
        let mode = draft.meta.as_ref().map(|m| m.mode);
        validate::check(
            text,
            &draft.outlines,
            &mut draft.steps,
            mode,
            &draft.objectives,
            &mut d,
        );
        secrets = std::mem::take(&mut draft.secrets);
        draft.meta.map(|meta| Runbook {
            runbook: meta,
            objectives: draft.objectives,
            params: draft.params,
            accounts: draft.accounts,
            state: draft.state,
            notify: draft.notify,
            deadlines: draft.deadlines,
            steps: draft.steps,
        })
    });
    let source = SourceFile::new(path, redact(text, &secrets));
    let has_errors = d.has_errors();
    let problems = d.into_sorted();
    match runbook {
        Some(runbook) if !has_errors => Ok(Loaded {
            runbook,
            warnings: problems,
            source,
        }),
        _ => Err(RunbookError {
            file: source,
            problems,
        }),
    }
}

/// Blanks values that look like secrets so no rendering of the file can show them:
/// the values the parser saw under secret-looking keys, and, because a file with a
/// syntax error is never walked, any `key = value` line whose key looks secret.
fn redact(text: &str, secrets: &[std::ops::Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut blank = |r: std::ops::Range<usize>| {
        for b in bytes.iter_mut().take(r.end).skip(r.start) {
            if !matches!(*b, b'"' | b'\'' | b' ' | b'\t' | b'\r' | b'\n') {
                *b = b'*';
            }
        }
    };
    for r in secrets {
        blank(r.clone());
    }
    // The line scan: `key = value`, where a value opening a multi-line string or an
    // array is blanked up to its closing delimiter (or the end of the file).
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim().trim_matches(|c| c == '"' || c == '\'');
            if catalogue::looks_like_secret_key(&key.to_ascii_lowercase()) {
                let start = offset + eq + 1;
                let value = line[eq + 1..].trim_start();
                let close = ["\"\"\"", "\'\'\'", "["]
                    .into_iter()
                    .find(|open| value.starts_with(open))
                    .map(|open| if open == "[" { "]" } else { open });
                let end = match close {
                    Some(close) => {
                        let body = start + (line.len() - (eq + 1) - value.len()) + close.len();
                        text.get(body..)
                            .and_then(|rest| rest.find(close))
                            .map_or(text.len(), |i| body + i + close.len())
                    }
                    None => offset + line.len(),
                };
                blank(start..end);
            }
        }
        offset += line.len();
    }
    // Only ASCII bytes of whole values were replaced; the lossy conversion can only
    // blank more, never reveal anything.
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_rendered_error() {
        let cases = [
            // Valid TOML: the walker finds the key.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\npassword = \"hunter2\"\n",
            // Broken TOML: only the line scan can.
            "[runbook\nDB_PASSWORD = 'hunter2'\n",
            // A multi-line array under a secret key, in valid TOML.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\npassword = [\n  \"hunter2\",\n]\n",
            // A multi-line string under a secret key, in broken TOML.
            "[runbook]\npassword = \"\"\"\nhunter2 \\q\n\"\"\"\n[oops\n",
            // A secret-looking parameter, and a template using it.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[params]\napi_token = \"hunter2\"\n[[step]]\nid = \"a\"\naction = \"aurora.writer_in_region\"\nglobal_cluster = \"g\"\nregion = \"{{api_token}}\"\n",
            // Inline table.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"postgres.check\"\nhost = \"h\"\nuser = \"u\"\nexpect = \"writer\"\nretry = { attempts = 1, token = \"hunter2\" }\n",
            // AWS credentials in an account table, whatever the key is called.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[accounts.dns]\nid = \"444455556666\"\naws_access_key_id = \"hunter2\"\nsecret_access_key = \"hunter2\"\nSessionToken = \"hunter2\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\naccount = \"dns\"\n",
            // A password in a URL field, in a gate, and in a parameter a URL field uses.
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"http.check\"\nurl = \"https://probe:hunter2@api.example/healthz\"\n",
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\n[step.gate]\ncheck = \"http.check\"\nurl = \"https://hunter2@api.example/\"\n",
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[params]\napi = \"https://u:hunter2@api.example/\"\n[[step]]\nid = \"a\"\naction = \"http.check\"\nurl = \"{{api}}\"\n",
        ];
        for text in cases {
            let err = load_str(Path::new("x.toml"), text).unwrap_err();
            for style in [
                RenderStyle::Short,
                RenderStyle::Fancy {
                    color: false,
                    width: 80,
                },
            ] {
                let out = err.render(style);
                assert!(!out.contains("hunter2"), "{out}");
                assert!(!err.file.text.contains("hunter2"));
            }
        }
    }
}

#[cfg(test)]
mod state_section_tests {
    use super::*;

    const HEAD: &str = "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\n";

    fn load(state: &str) -> Result<Loaded, RunbookError> {
        load_str(Path::new("rb.toml"), &format!("{HEAD}{state}"))
    }

    #[test]
    fn a_state_section_names_the_team_stores_and_bad_ones_are_runbook_errors() {
        let rb = load(
            "[state]\nstores = [\"s3://team-use1/drp?region=us-east-1\", \"s3://team-usw2/drp\"]\n",
        )
        .unwrap()
        .runbook;
        assert_eq!(rb.state.unwrap().stores.len(), 2);
        assert!(load("").unwrap().runbook.state.is_none());
        for (bad, says) in [
            (
                "[state]\nstores = [\"s3://Bad_Name/x\"]\n",
                "not a bucket name",
            ),
            ("[state]\nstores = []\n", "non-empty array"),
            ("[state]\n", "has no `stores`"),
            (
                "[state]\nstores = [\"s3://team-a/x\"]\nlease = \"1s\"\n",
                "lease",
            ),
            (
                "[state]\nstores = [\"/tmp/x\", \"s3://team-a/x\"]\n",
                "must all be s3://",
            ),
        ] {
            let err = load(bad).unwrap_err();
            let text = err.render(RenderStyle::Short);
            assert!(text.contains(says), "{bad}: {text}");
            assert!(text.contains("rb.toml:"), "names the file and line: {text}");
        }
    }
}
