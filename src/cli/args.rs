//! Command-line definitions. Names and flags follow the CLI contract in DESIGN.md.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::exit;

/// Disaster-recovery failover orchestrator for an AWS stack.
///
/// A runbook (TOML) is a dependency graph of steps: Aurora Global Database, ElastiCache
/// (Valkey) Global Datastore, S3 replication and Route 53 actions, gated by health
/// checks. drpilot validates and plans it before anything changes.
#[derive(Debug, Parser)]
#[command(name = "drpilot", version, after_help = exit::TABLE, max_term_width = 100)]
pub struct Cli {
    /// When to use colours (NO_COLOR in the environment also turns them off).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colours when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks: syntax, fields, templates, dependencies. Reports every problem.
    ///
    /// Exits 0 when every file is valid (warnings allowed), 2 otherwise.
    Validate {
        /// Runbook files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// How problems are printed: `human` shows the offending line, `short` is one
        /// `file:line:col: severity: message` line each, `json` one object per line.
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        format: MessageFormat,
    },
    /// Show what a runbook would do: levels, critical path, predicted RTO, approvals,
    /// what each step mutates where, and the rollback order. Changes nothing.
    Plan {
        /// Runbook file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Print the runbook JSON Schema, for editors that validate TOML against it.
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How `validate` prints problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Each problem with the offending line.
    Human,
    /// One line per problem.
    Short,
    /// One JSON object per problem, one per line.
    Json,
}

/// `plan --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Text,
    /// Stable JSON for tools.
    Json,
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// A self-contained HTML page.
    Html,
}
