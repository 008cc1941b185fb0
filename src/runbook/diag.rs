//! Problems found in a runbook, with their place in the file.
//!
//! Validation never stops at the first problem: every pass pushes [`Problem`]s into a
//! [`Diagnostics`] sink and carries on, so an operator fixing a runbook at 3 a.m. sees
//! everything that is wrong in one go. A [`RunbookError`] owns the source text so it can
//! render each problem with the offending line (through miette) or as a one-line
//! `file:line:col: error: message` for tools.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// How bad a problem is: errors stop the run, warnings are shown and allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Shown, but the runbook is still valid.
    Warning,
    /// The runbook is invalid; nothing may run.
    Error,
}

/// One thing wrong (or suspicious) in a runbook, anchored to a byte range of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Byte range of the offending text in the file.
    pub span: Range<usize>,
    /// What is wrong, as a sentence fragment ("unknown key `tagret` in step `x`").
    pub message: String,
    /// Short text shown under the offending text: usually what was expected.
    pub label: String,
    /// How to fix it, when we can say.
    pub help: Option<String>,
}

impl Problem {
    /// Adds a hint on how to fix the problem.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Collects problems while the passes run.
#[derive(Debug, Default)]
pub struct Diagnostics {
    problems: Vec<Problem>,
}

impl Diagnostics {
    /// Records an error; returns it so the caller can attach help.
    pub fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Problem {
        self.push(Severity::Error, span, message.into(), label.into())
    }

    /// Records a warning; returns it so the caller can attach help.
    pub fn warning(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Problem {
        self.push(Severity::Warning, span, message.into(), label.into())
    }

    fn push(
        &mut self,
        severity: Severity,
        span: Range<usize>,
        message: String,
        label: String,
    ) -> &mut Problem {
        self.problems.push(Problem {
            severity,
            span,
            message,
            label,
            help: None,
        });
        self.problems.last_mut().expect("just pushed")
    }

    /// The problem recorded last, to attach help to it.
    pub fn last_mut(&mut self) -> Option<&mut Problem> {
        self.problems.last_mut()
    }

    /// Whether any error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The problems in file order (stable for equal positions).
    pub fn into_sorted(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| (p.span.start, p.span.end));
        self.problems
    }
}

/// The text of a runbook file and its name, shared by every problem rendered from it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user gave it (shown in messages).
    pub path: PathBuf,
    /// The whole file. Invalid UTF-8 is replaced, so a problem can still be shown.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wraps a file's text.
    pub fn new(path: impl AsRef<Path>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A runbook that failed to load or validate: every problem found, with the file.
#[derive(Debug, thiserror::Error)]
pub struct RunbookError {
    /// The file the problems are in.
    pub file: SourceFile,
    /// All problems, errors and warnings, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.error_count();
        write!(
            f,
            "runbook {} has {} error{}",
            self.file.path.display(),
            errors,
            if errors == 1 { "" } else { "s" }
        )
    }
}

/// How problems are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderStyle {
    /// miette's graphical report with the offending line; colours when `color` is set.
    Fancy {
        /// Use ANSI colours.
        color: bool,
        /// Wrap width.
        width: usize,
    },
    /// One line per problem: `file:line:col: error: message (expected ...)`.
    Short,
}

impl RunbookError {
    /// Number of problems that are errors.
    pub fn error_count(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// Renders every problem.
    pub fn render(&self, style: RenderStyle) -> String {
        render_problems(&self.file, &self.problems, style)
    }
}

/// Renders problems of one file (used for errors and for warnings of a valid runbook).
pub fn render_problems(source: &SourceFile, problems: &[Problem], style: RenderStyle) -> String {
    let mut out = String::new();
    match style {
        RenderStyle::Short => {
            for p in problems {
                let (line, col) = source.line_col(p.span.start);
                let sev = match p.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                // One line per problem, whatever the texts contain: tools split on lines.
                let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                out.push_str(&format!(
                    "{}:{line}:{col}: {sev}: {} ({})",
                    source.path.display(),
                    one_line(&p.message),
                    one_line(&p.label)
                ));
                if let Some(help) = &p.help {
                    out.push_str(&format!("; help: {}", one_line(help)));
                }
                out.push('\n');
            }
        }
        RenderStyle::Fancy { color, width } => {
            let theme = if color {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let handler = GraphicalReportHandler::new_themed(theme)
                .with_width(width)
                .with_links(false)
                .with_context_lines(1);
            let named = NamedSource::new(source.path.display().to_string(), source.text.clone());
            for p in problems {
                let report = ProblemReport {
                    source: &named,
                    problem: p,
                };
                // Rendering into a String cannot fail for lack of space; a formatter error
                // here would be a bug in miette, so fall back to the short form.
                if handler.render_report(&mut out, &report).is_err() {
                    out.push_str(&render_problems(
                        source,
                        std::slice::from_ref(p),
                        RenderStyle::Short,
                    ));
                }
                out.push('\n');
            }
        }
    }
    out
}

struct ProblemReport<'a> {
    source: &'a NamedSource<Arc<str>>,
    problem: &'a Problem,
}

impl fmt::Debug for ProblemReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.problem, f)
    }
}

impl fmt::Display for ProblemReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemReport<'_> {}

impl Diagnostic for ProblemReport<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = &self.problem.span;
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(
                Some(self.problem.label.clone()),
                span.start..span.end,
            ),
        )))
    }
}

/// Edit distance, for "did you mean" hints on misspelt keys and names.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = SourceFile::new("x.toml", "a = 1\nné = \"x\"\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // "né = " is 6 bytes, 5 characters.
        assert_eq!(src.line_col(12), (2, 6));
        // Past the end and inside a multi-byte character never panic.
        assert_eq!(src.line_col(1000).0, 3);
        assert_eq!(src.line_col(8), (2, 2));
    }

    #[test]
    fn did_you_mean_finds_close_names_only() {
        let keys = ["target", "global_cluster", "allow_data_loss"];
        assert_eq!(did_you_mean("tagret", keys), Some("target"));
        assert_eq!(did_you_mean("global_clustr", keys), Some("global_cluster"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn short_render_names_file_line_and_column() {
        let src = SourceFile::new("rb.toml", "[runbook]\nnme = 1\n");
        let mut d = Diagnostics::default();
        d.error(
            10..13,
            "unknown key `nme` in [runbook]",
            "not a key of [runbook]",
        )
        .help = Some("did you mean `name`?".into());
        let out = render_problems(&src, &d.into_sorted(), RenderStyle::Short);
        assert_eq!(
            out,
            "rb.toml:2:1: error: unknown key `nme` in [runbook] (not a key of [runbook]); help: did you mean `name`?\n"
        );
    }
}
