//! The command line: argument parsing, output, and the mapping to exit codes.
//!
//! Every command validates its input completely before doing anything, and every
//! expected failure becomes one of the documented codes in [`exit`]. Results go to
//! stdout; diagnostics and logs go to stderr so stdout stays machine-readable.

pub mod args;
// The exit codes live below the engine (it maps outcomes to them); `cli::exit` is
// where the CLI's code has always found them.
pub use crate::exit;
pub mod heartbeat;
pub mod logging;
pub mod preflight;
pub mod readiness;
pub mod report;
pub mod run;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::app::approvals::DecideRequest;
use crate::engine::approvals::Verdict;
use crate::plan::{Plan, render};
use crate::runbook::{self, LoadError, Problem, RenderStyle, Severity, SourceFile};
use args::{Cli, ColorChoice, Command, MessageFormat, PlanFormat};

/// Parses the process arguments, runs the command, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    logging::init(
        cli.log_format,
        use_color(cli.color),
        cli.command.output() == Some(args::Output::Json),
        cli.command.notify(),
    );
    ExitCode::from(run(cli))
}

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let color = use_color(cli.color);
    match cli.command {
        Command::Validate { files, format } => validate(&files, format, color),
        Command::Plan {
            file,
            format,
            history,
            state,
        } => plan(&file, format, history.then_some(state), color),
        Command::Preflight(args) => preflight::preflight(args),
        Command::Readiness(args) => readiness::readiness(args),
        Command::IamPolicy {
            file,
            params,
            state,
        } => preflight::iam_policy(&file, params, &state.state),
        Command::Run(args) => run::run(args, color),
        Command::Resume(args) => run::resume(args, color),
        Command::Drill(args) => run::drill(args, color),
        Command::Heartbeat(args) => heartbeat::heartbeat(args),
        Command::Status {
            run_id,
            state,
            aws,
            output,
        } => run::status(run_id, &state.state, &aws, output),
        Command::Report(args) => report::report(args),
        Command::Serve { state, aws, listen } => {
            crate::app::serve::serve(&crate::app::serve::ServeRequest {
                state: state.state,
                profile: aws.profile,
                endpoint_url: aws.endpoint_url,
                listen,
            })
            .unwrap_or_else(|e| e.report())
        }
        Command::Approve {
            run_id,
            step,
            as_name,
            yes,
            state,
            aws,
        } => decide(DecideRequest {
            run_id,
            step,
            verdict: Verdict::Approve,
            as_name,
            reason: None,
            yes,
            state: state.state,
            profile: aws.profile,
            endpoint_url: aws.endpoint_url,
        }),
        Command::Deny {
            run_id,
            step,
            reason,
            as_name,
            state,
            aws,
        } => decide(DecideRequest {
            run_id,
            step,
            verdict: Verdict::Deny,
            as_name,
            reason: Some(reason),
            yes: true,
            state: state.state,
            profile: aws.profile,
            endpoint_url: aws.endpoint_url,
        }),
        Command::Schema { events } => {
            let schema = if events {
                crate::engine::events::event_schema()
            } else {
                runbook::schema::runbook_schema()
            };
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&schema).expect("a JSON value always serializes")
            ))
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "drpilot", &mut out);
            print_stdout(&String::from_utf8_lossy(&out))
        }
    }
}

/// `approve` / `deny`: the exit code, the error said on stderr.
fn decide(req: DecideRequest) -> u8 {
    crate::app::approvals::decide(&req).unwrap_or_else(|e| e.report())
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&w: &usize| w >= 40)
        .unwrap_or(100)
}

/// Writes to stdout; a closed pipe (`drpilot plan x | head`) is not an error.
fn print_stdout(s: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(e) => {
            eprintln!("error: failed to write to stdout: {e}");
            exit::USAGE
        }
    }
}

fn problems_text(
    source: &SourceFile,
    problems: &[Problem],
    format: MessageFormat,
    color: bool,
) -> String {
    match format {
        MessageFormat::Human => runbook::diag::render_problems(
            source,
            problems,
            RenderStyle::Fancy {
                color,
                width: terminal_width(),
            },
        ),
        MessageFormat::Short => {
            runbook::diag::render_problems(source, problems, RenderStyle::Short)
        }
        MessageFormat::Json => problems
            .iter()
            .map(|p| {
                let (line, column) = source.line_col(p.span.start);
                let v = serde_json::json!({
                    "file": source.path.display().to_string(),
                    "line": line,
                    "column": column,
                    "severity": p.severity,
                    "message": p.message,
                    "label": p.label,
                    "help": p.help,
                });
                format!("{v}\n")
            })
            .collect(),
    }
}

fn validate(files: &[std::path::PathBuf], format: MessageFormat, color: bool) -> u8 {
    let mut failed = 0;
    for path in files {
        match runbook::load(path) {
            Ok(loaded) => {
                eprint!(
                    "{}",
                    problems_text(&loaded.source, &loaded.warnings, format, color)
                );
                if format != MessageFormat::Json {
                    let count = |n: usize, what: &str| match n {
                        1 => format!("1 {what}"),
                        n => format!("{n} {what}s"),
                    };
                    let mut summary = count(loaded.runbook.steps.len(), "step");
                    if !loaded.warnings.is_empty() {
                        summary.push_str(&format!(", {}", count(loaded.warnings.len(), "warning")));
                    }
                    eprintln!("ok: {} ({summary})", path.display());
                }
            }
            Err(e) => {
                failed += 1;
                report_load_error(&e, format, color);
            }
        }
    }
    if failed == 0 {
        exit::SUCCESS
    } else {
        exit::USAGE
    }
}

fn report_load_error(e: &LoadError, format: MessageFormat, color: bool) {
    match e {
        LoadError::Invalid(err) => {
            eprint!("{}", problems_text(&err.file, &err.problems, format, color));
            if format != MessageFormat::Json {
                eprintln!("error: {err}");
            }
        }
        // Unreadable or oversized: no source to show, one line says it all.
        LoadError::Read { path, .. } | LoadError::TooLarge { path, .. } => {
            let message = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            if format == MessageFormat::Json {
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "file": path.display().to_string(),
                        "severity": Severity::Error,
                        "message": message,
                    })
                );
            } else {
                eprintln!("error: {message}");
            }
        }
    }
}

fn plan(path: &Path, format: PlanFormat, history: Option<args::StateArgs>, color: bool) -> u8 {
    if history.is_some() && !matches!(format, PlanFormat::Text | PlanFormat::Json) {
        eprintln!("error: --history applies to --format text or json");
        return exit::USAGE;
    }
    let loaded = match runbook::load(path) {
        Ok(l) => l,
        Err(e) => {
            report_load_error(&e, MessageFormat::Human, color);
            return exit::USAGE;
        }
    };
    eprint!(
        "{}",
        problems_text(
            &loaded.source,
            &loaded.warnings,
            MessageFormat::Human,
            color
        )
    );
    let plan = Plan::new(&loaded.runbook);
    let history = match history {
        Some(state) => {
            match crate::app::store::state_store(&state.state, Some(&loaded.runbook), None, None) {
                Ok(store) => Some(store.history(&loaded.runbook.runbook.name, |_| true)),
                Err(e) => return e.report(),
            }
        }
        None => None,
    };
    let out = match format {
        PlanFormat::Text => {
            let mut text = render::text(&plan);
            if let Some(h) = &history {
                text.push_str(&render::history_text(&plan, h));
            }
            text
        }
        PlanFormat::Json => {
            let mut doc = render::json(&plan);
            if let Some(h) = &history {
                doc["history"] = render::history_json(&plan, h);
            }
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).expect("a JSON value always serializes")
            )
        }
        PlanFormat::Dot => render::dot(&plan),
        PlanFormat::Mermaid => render::mermaid(&plan),
        PlanFormat::Html => render::html(&plan),
    };
    print_stdout(&out)
}
