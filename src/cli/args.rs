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

    /// Log lines on stderr: `text` for people, `json` (one object per line, with
    /// `level`, `target` and `fields`) for log pipelines. Which lines: DRPILOT_LOG
    /// (e.g. `debug`, `drpilot::events=debug`); default `warn`, `info` for drpilot's own
    /// lines with --output json.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

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

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per log event, for people.
    Text,
    /// One JSON object per log event.
    Json,
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
        /// Also predict the RTO from earlier runs of this runbook in the state
        /// directory: each step at its measured median and 90th percentile (text and
        /// json formats).
        #[arg(long)]
        history: bool,
        /// Where runs are kept (for --history).
        #[command(flatten)]
        state: StateArgs,
    },
    /// Read-only readiness report: resources exist and are in the expected state,
    /// versions match, lag vs the RPO, replication, health checks, routing controls,
    /// IAM permissions, control-plane dependencies. Changes nothing.
    ///
    /// Exits 0 when nothing blocks a run, 5 when a blocking check fails.
    Preflight(PreflightArgs),
    /// Readiness of runbooks for monitoring: each one's read-only preflight as a table,
    /// JSON or Prometheus metrics, once or every --every. Changes nothing.
    ///
    /// With the verdict: findings by severity, Aurora replication lag, S3 replication
    /// backlog, the predicted RTO and the time since the last successful drill.
    /// `--every 1m --output-file DIR/drpilot.prom` feeds node_exporter's textfile
    /// collector; `--cloudwatch NAMESPACE` puts the same figures to CloudWatch
    /// (docs/readiness.md).
    ///
    /// Exits 0 when every runbook is ready, 5 when one is not, 2 on a bad runbook or flag.
    Readiness(ReadinessArgs),
    /// Print the minimal IAM policy (actions and resource ARNs) the runbook needs, one
    /// document per account.
    IamPolicy {
        /// Runbook file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Override one of the runbook's [params] (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Where the run will keep its state: an `s3://` store adds what the journal,
        /// lock and approvals need of its buckets (a directory needs nothing).
        #[command(flatten)]
        state: StateArgs,
    },
    /// Run a runbook: preflight, then the steps, with retries, gates, approvals and
    /// rollback. `--sim` runs it against the simulated world (no AWS account needed).
    Run(RunArgs),
    /// Continue a run that crashed, was aborted, or paused after a failure.
    Resume(ResumeArgs),
    /// A game-day drill: fail over, verify, soak, fail back, verify; measure each
    /// phase's RTO and RPO against its runbook's objectives and write reports.
    /// `--sim` practises both phases against one simulated world.
    ///
    /// Exits 0 when both phases succeeded within their objectives, 7 when one missed an
    /// objective, 2 outside the --window, 6 when another drill of the runbook runs, and
    /// a failed phase's own code (the failback does not run after a failed failover).
    Drill(DrillArgs),
    /// Write heartbeats for a runbook's `postgres.heartbeat` / `valkey.heartbeat` steps
    /// (every `interval`, through the endpoints they name) so they can measure the RPO.
    /// Start it before a failover; a drill runs its own. Stops on Ctrl-C or SIGTERM.
    Heartbeat(HeartbeatArgs),
    /// Report on one run from its journal: outcome, RTO/RPO against the objectives,
    /// timeline, retries, gate observations, approvals and rollback.
    ///
    /// Writes the report on stdout (Markdown by default; HTML, JUnit XML or JSON) and
    /// exits 0; 2 when the run is unknown or its journal unreadable.
    Report(ReportArgs),
    /// Show runs, or one run's steps.
    Status {
        /// The run to show; all runs when omitted.
        run_id: Option<String>,
        /// Where runs are kept.
        #[command(flatten)]
        state: StateArgs,
        /// How an S3 state store is reached.
        #[command(flatten)]
        aws: StoreAwsArgs,
        /// human or json.
        #[arg(long, value_enum, default_value_t = Output::Human)]
        output: Output,
    },
    /// Approve an approval step of a run from any machine with access to its state
    /// store (local or S3). Shows what the step unlocks and asks to type the step id
    /// unless --yes. A guided run picks the approval up within seconds; a headless one
    /// when started with --await-approvals.
    ///
    /// Exits 0 when recorded, 2 on a bad run, step or flag, 4 when not confirmed.
    Approve {
        /// The run (see `drpilot status`).
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// The approval step.
        #[arg(value_name = "STEP")]
        step: String,
        /// Who approves (default: the OS user). Approvals count once per name.
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Do not ask to type the step id.
        #[arg(long)]
        yes: bool,
        /// Where runs are kept.
        #[command(flatten)]
        state: StateArgs,
        /// How an S3 state store is reached.
        #[command(flatten)]
        aws: StoreAwsArgs,
    },
    /// Refuse an approval step of a run: the run fails the step, with the reason, and
    /// follows its failure policy.
    ///
    /// Exits 0 when recorded, 2 on a bad run, step or flag.
    Deny {
        /// The run (see `drpilot status`).
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// The approval step.
        #[arg(value_name = "STEP")]
        step: String,
        /// Why: shown to the run's operator and in its report.
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Who refuses (default: the OS user).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Where runs are kept.
        #[command(flatten)]
        state: StateArgs,
        /// How an S3 state store is reached.
        #[command(flatten)]
        aws: StoreAwsArgs,
    },
    /// Serve a read-only live status page of the runs in a state store: each run's
    /// steps, RTO clock, pending approvals (and the command that gives them) and
    /// regions, updating itself, plus the same as JSON (`/api/runs`, `/api/runs/RUN_ID`,
    /// `/api/runs/RUN_ID/events`). Nothing can be changed from it.
    ///
    /// Runs until interrupted; exits 0, or 2 on a bad flag or address.
    Serve {
        /// Where runs are kept.
        #[command(flatten)]
        state: StateArgs,
        /// How an S3 state store is reached.
        #[command(flatten)]
        aws: StoreAwsArgs,
        /// Address to listen on (port 0: any free port, printed at start). Loopback by
        /// default; anything else is reachable by others.
        #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Print the runbook JSON Schema, or with --events the event schema.
    ///
    /// The runbook schema is for editors that validate TOML against it; the event schema
    /// (docs/events.schema.json) describes each line of `--output json` and the journal.
    Schema {
        /// Print the event schema (docs/events.schema.json) instead of the runbook's.
        #[arg(long)]
        events: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The `--output` of commands that have one: with `json`, stdout belongs to the
    /// machine-readable stream and the logs on stderr are a person's only progress.
    pub fn output(&self) -> Option<Output> {
        match self {
            Command::Run(a) => Some(a.exec.output),
            Command::Resume(a) => Some(a.exec.output),
            Command::Drill(a) => Some(a.exec.output),
            Command::Preflight(a) => Some(a.output),
            Command::Status { output, .. } => Some(*output),
            _ => None,
        }
    }

    /// The `--notify` URLs given (secrets: the logs blank them).
    pub fn notify(&self) -> &[String] {
        match self {
            Command::Run(a) => &a.exec.notify,
            Command::Resume(a) => &a.exec.notify,
            Command::Drill(a) => &a.exec.notify,
            _ => &[],
        }
    }
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

/// `--output`: for people (stderr) or one JSON event per line (stdout). The type is
/// the application's; the flag's values are defined here.
pub use crate::app::settings::{Output, SimSpeed};

impl ValueEnum for Output {
    fn value_variants<'a>() -> &'a [Self] {
        &[Output::Human, Output::Json]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Output::Human => PossibleValue::new("human").help("Progress for people on stderr"),
            Output::Json => PossibleValue::new("json")
                .help("One JSON event per line on stdout (docs/events.md); logs on stderr"),
        })
    }
}

/// Where runs and locks are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// State directory, or S3 bucket(s) shared by a team: `s3://BUCKET/PREFIX`
    /// (`?region=R` to name the bucket's region); repeat for one bucket per region
    /// (docs/state.md). Precedence: this flag, then DRPILOT_STATE, then the runbook's
    /// `[state] stores`, then $XDG_STATE_HOME/drpilot (~/.local/state/drpilot).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX", env = "DRPILOT_STATE")]
    pub state: Vec<String>,
}

impl StateArgs {
    /// The one directory given, for commands that only use a local store; an S3 URL
    /// is passed through and refused with a clear error.
    pub fn single(&self) -> Option<&str> {
        self.state.first().map(String::as_str)
    }
}

/// Options shared by `run` and `resume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Approve every approval step (headless runs never prompt).
    #[arg(long)]
    pub yes: bool,
    /// Approve one approval step; repeat for several.
    #[arg(long, value_name = "STEP")]
    pub approve: Vec<String>,
    /// human (progress on stderr) or json (events on stdout).
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Where runs and locks are kept.
    #[command(flatten)]
    pub state: StateArgs,
    /// Take over the runbook's lock when its holder's process is gone, or (S3 state) its
    /// lease expired (recorded in the journal).
    #[arg(long)]
    pub break_stale_lock: bool,
    /// Simulated world speed: N times real time, or `max` for virtual time.
    #[arg(long, value_name = "N|max", value_parser = parse_speed)]
    pub sim_speed: Option<SimSpeed>,
    /// Stop (and apply --on-failure) when the whole run takes longer than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// AWS profile (for runs against AWS).
    #[arg(long, value_name = "P", env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL", value_parser = EndpointUrl)]
    pub endpoint_url: Option<String>,
    /// Do not run this step: it is recorded as skipped (with this reason) and its
    /// dependents go on. For a step that cannot work from where drpilot runs (a
    /// VPC-only DNS name, a data-plane check without network access). Repeatable.
    #[arg(long = "skip-step", value_name = "STEP")]
    pub skip_step: Vec<String>,
    /// At most N steps run at once (default 64); ready steps beyond it start in file
    /// order as running ones end.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_parallel: Option<u32>,
    /// Notify a receiver of the run's start, approvals needed, failures, rollback and
    /// end (repeatable): https://... a JSON webhook, slack+https://... a Slack webhook,
    /// sns:arn:aws:sns:REGION:ACCOUNT:TOPIC an SNS topic. Also DRPILOT_NOTIFY (URLs
    /// separated by whitespace or commas) and the runbook's [notify] urls_env. Delivery
    /// never holds or fails the run.
    #[arg(long, value_name = "URL")]
    pub notify: Vec<String>,
    /// Headless: an approval step not approved by flag waits up to this long for
    /// `drpilot approve RUN_ID STEP` from anyone with access to the state store (then
    /// fails as without it). Without it such a step fails at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub await_approvals: Option<std::time::Duration>,
}

impl ExecArgs {
    /// The application's execution settings these flags ask for.
    pub fn settings(&self) -> crate::app::Exec {
        crate::app::Exec {
            yes: self.yes,
            approve: self.approve.clone(),
            output: self.output,
            state: self.state.state.clone(),
            break_stale_lock: self.break_stale_lock,
            sim_speed: self.sim_speed,
            timeout: self.timeout,
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            skip_step: self.skip_step.clone(),
            max_parallel: self.max_parallel,
            notify: self.notify.clone(),
            await_approvals: self.await_approvals,
        }
    }
}

/// `drpilot run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Runbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Run against the simulated world instead of AWS.
    #[arg(long)]
    pub sim: bool,
    /// Shape the simulated world: initial state and faults (TOML).
    #[arg(long, value_name = "FILE", requires = "sim")]
    pub sim_config: Option<PathBuf>,
    /// Seed of the simulated world (printed at the start; same seed, same run).
    #[arg(long, value_name = "N", requires = "sim")]
    pub seed: Option<u64>,
    /// Override one of the runbook's [params] (repeatable), e.g. the hosted zone ids a
    /// test environment generated. A resumed run applies the same overrides.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// What to do when a step fails. Default: roll back; in guided mode (a terminal,
    /// no --yes) the operator is asked: retry, skip, roll back or abort.
    #[arg(long, value_enum)]
    pub on_failure: Option<OnFailureArg>,
    /// Options shared with resume.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `drpilot drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// The failover runbook (phase 1).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The failback runbook (phase 2), run once the failover succeeded and soaked.
    #[arg(long, value_name = "FILE", required = true)]
    pub failback: PathBuf,
    /// Write each phase's report (Markdown, HTML, JUnit XML, JSON) and the drill's
    /// summary (drill.md, drill.json) here; created if missing.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Refuse to start outside this window: DAYS HH:MM-HH:MM ZONE, e.g.
    /// "Tue 14:00-16:00 Europe/Berlin", "Mon-Fri 09:00-17:00 UTC".
    #[arg(long, value_name = "SPEC")]
    pub window: Option<String>,
    /// How long the failed-over stack runs before the failback, on the run clock (no
    /// time at all with --sim-speed max).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub soak: std::time::Duration,
    /// Practise against one simulated world: the failback sees what the failover left.
    #[arg(long)]
    pub sim: bool,
    /// Shape the simulated world (TOML).
    #[arg(long, value_name = "FILE", requires = "sim")]
    pub sim_config: Option<PathBuf>,
    /// Seed of the simulated world.
    #[arg(long, value_name = "N", requires = "sim")]
    pub seed: Option<u64>,
    /// Override a [params] value (repeatable); applied to each runbook that declares it.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Options shared with run.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// `drpilot heartbeat`.
#[derive(Debug, Clone, clap::Args)]
pub struct HeartbeatArgs {
    /// Runbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only the heartbeats of this step (repeatable); all of them by default.
    #[arg(long, value_name = "STEP")]
    pub step: Vec<String>,
    /// Stop after this long (default: until Ctrl-C or SIGTERM).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Override one of the runbook's [params] (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

/// `drpilot preflight`.
#[derive(Debug, Clone, clap::Args)]
pub struct PreflightArgs {
    /// Runbook file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// human (a table on stdout) or json (one document on stdout).
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// What is checked, and where.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// What a read-only check (`preflight`, `readiness`) runs against: the simulated world
/// or AWS, with the runbook's parameters, the state store and the steps left out.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Check against the simulated world instead of AWS.
    #[arg(long)]
    pub sim: bool,
    /// Shape the simulated world (TOML).
    #[arg(long, value_name = "FILE", requires = "sim")]
    pub sim_config: Option<PathBuf>,
    /// Seed of the simulated world.
    #[arg(long, value_name = "N", requires = "sim")]
    pub seed: Option<u64>,
    /// Override one of the runbook's [params] (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Where runs and locks are kept: the check reports whether another run holds the
    /// runbook's lock (a run would then exit 6).
    #[command(flatten)]
    pub state: StateArgs,
    /// AWS profile.
    #[arg(long, value_name = "P", env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL", value_parser = EndpointUrl)]
    pub endpoint_url: Option<String>,
    /// Do not check this step (as `run --skip-step`). Repeatable.
    #[arg(long = "skip-step", value_name = "STEP")]
    pub skip_step: Vec<String>,
}

impl CheckArgs {
    /// The application's preflight request for `file`.
    pub fn request(&self, file: PathBuf) -> crate::app::preflight::PreflightRequest {
        crate::app::preflight::PreflightRequest {
            file,
            params: self.params.clone(),
            skip_step: self.skip_step.clone(),
            state: self.state.state.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            sim: self.sim,
            sim_config: self.sim_config.clone(),
            seed: self.seed,
        }
    }
}

/// `readiness --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadinessFormat {
    /// A short table per runbook.
    Human,
    /// One JSON document (docs/readiness.md).
    Json,
    /// Prometheus' text exposition format 0.0.4 (node_exporter's textfile collector).
    Prometheus,
}

/// `drpilot readiness`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadinessArgs {
    /// Runbook files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReadinessFormat::Human)]
    pub format: ReadinessFormat,
    /// Check again at this interval until SIGINT or SIGTERM (e.g. "5m"); one round
    /// without it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<std::time::Duration>,
    /// Write each round here (atomically: a temporary file in the same directory, then
    /// renamed) instead of stdout; for node_exporter's textfile collector, a `*.prom`
    /// file in its directory.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// Also put the figures to CloudWatch under this namespace (PutMetricData), in the
    /// region --cloudwatch-region names, else each runbook's first region (its
    /// `params.to`, then `params.from`).
    #[arg(long, value_name = "NAMESPACE")]
    pub cloudwatch: Option<String>,
    /// The region the CloudWatch metrics go to (with --cloudwatch).
    #[arg(long, value_name = "REGION", requires = "cloudwatch")]
    pub cloudwatch_region: Option<String>,
    /// What is checked, and where.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// `--on-failure`: the engine's [`OnFailure`](crate::engine::OnFailure) as a flag (the
/// engine knows nothing of the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnFailureArg {
    /// Roll back the completed steps in reverse dependency order (the default).
    Rollback,
    /// Stop and leave everything as it is for `drpilot resume RUN_ID --retry|--skip|--rollback|--abort`.
    Pause,
    /// Stop and leave everything as it is; exit as aborted (resumable).
    Abort,
}

impl From<OnFailureArg> for crate::engine::OnFailure {
    fn from(a: OnFailureArg) -> Self {
        match a {
            OnFailureArg::Rollback => crate::engine::OnFailure::Rollback,
            OnFailureArg::Pause => crate::engine::OnFailure::Pause,
            OnFailureArg::Abort => crate::engine::OnFailure::Abort,
        }
    }
}

/// `report --format`: the report layer's formats, with the flag's values here.
pub use crate::report::Format as ReportFormat;

impl ValueEnum for ReportFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ReportFormat::Md,
            ReportFormat::Html,
            ReportFormat::Junit,
            ReportFormat::Json,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            ReportFormat::Md => PossibleValue::new("md")
                .help("GitHub-flavoured Markdown, for tickets and post-mortems"),
            ReportFormat::Html => PossibleValue::new("html")
                .help("One self-contained HTML page with a timeline chart"),
            ReportFormat::Junit => PossibleValue::new("junit")
                .help("JUnit XML, so CI shows each step (and missed objectives) as a test"),
            ReportFormat::Json => PossibleValue::new("json")
                .help("The report model as one JSON document (docs/report.md)"),
        })
    }
}

/// `drpilot report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The run to report on.
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Where runs are kept.
    #[command(flatten)]
    pub state: StateArgs,
    /// How an S3 state store is reached.
    #[command(flatten)]
    pub aws: StoreAwsArgs,
}

/// `--profile` and `--endpoint-url` for commands that only read runs (`status`,
/// `report`): they matter only for an S3 state store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreAwsArgs {
    /// AWS profile (for an s3:// state store).
    #[arg(long, value_name = "P", env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Send S3 calls to this endpoint (an emulator).
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL", value_parser = EndpointUrl)]
    pub endpoint_url: Option<String>,
}

/// `drpilot resume`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// The run to continue.
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// Run the failed steps again.
    #[arg(long, group = "decision")]
    pub retry: bool,
    /// Skip the failed steps and go on (their dependents run).
    #[arg(long, group = "decision")]
    pub skip: bool,
    /// Roll back every completed change.
    #[arg(long, group = "decision")]
    pub rollback: bool,
    /// Leave everything as it is and end the run as aborted.
    #[arg(long, group = "decision")]
    pub abort: bool,
    /// What to do if a step fails after resuming. Default as for `run`.
    #[arg(long, value_enum)]
    pub on_failure: Option<OnFailureArg>,
    /// Options shared with run.
    #[command(flatten)]
    pub exec: ExecArgs,
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

/// `--endpoint-url`: refused when it carries a `user:password@` part. The URL is
/// journaled (a resumed run goes to the same endpoint) and the SDK logs it, and AWS
/// requests are signed with AWS credentials anyway. The error does not repeat the
/// value, as clap's own message would.
#[derive(Clone, Copy, Debug)]
struct EndpointUrl;

impl clap::builder::TypedValueParser for EndpointUrl {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let raw = |kind, msg: &str| clap::Error::raw(kind, format!("{msg}\n")).with_cmd(cmd);
        let Some(s) = value.to_str() else {
            return Err(raw(
                clap::error::ErrorKind::InvalidUtf8,
                "--endpoint-url (AWS_ENDPOINT_URL) is not UTF-8",
            ));
        };
        if crate::runbook::catalogue::url_credential(s).is_some() {
            return Err(raw(
                clap::error::ErrorKind::ValueValidation,
                "--endpoint-url (AWS_ENDPOINT_URL) carries a credential (`user:password@`); \
                 remove it: requests are signed with your AWS credentials, and the URL is \
                 journaled and logged",
            ));
        }
        Ok(s.to_string())
    }
}

fn parse_speed(s: &str) -> Result<SimSpeed, String> {
    if s == "max" {
        return Ok(SimSpeed::Max);
    }
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 1_000_000.0 => Ok(SimSpeed::Times(n)),
        _ => Err(format!("expected a positive number or `max`, got `{s}`")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. \"30m\""))
}
