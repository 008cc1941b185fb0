//! `drpilot readiness FILE...`: the read-only preflight of each runbook, as a monitoring
//! system reads it.
//!
//! Every runbook (and `--skip-step`, `--sim-config`, `--state`) is checked before the
//! first round, with no side effect: a bad one is exit 2 and nothing is checked. A round
//! runs [`super::preflight::check`] for every runbook at once (the same checks `run`
//! makes before changing anything, through the same breaker, so a region that does not
//! answer is known within its probe timeout and costs no more), and folds each result
//! into a [`RunbookReadiness`]: the verdict, findings by severity, the facts the checks
//! measured (Aurora lag, S3 backlog), the plan's predicted RTO, and the last successful
//! drill from the state store. A check that cannot run at all is a runbook that is not
//! ready, never a crash: a loop (`--every`) goes on. [`figures`] is the one list of
//! numbers both the Prometheus text and the CloudWatch metrics are made from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::AppError;
use super::input::{load_runbook, load_sim_config, skips};
use super::preflight::{PreflightRequest, Readiness, check};
use super::store::state_store;
use crate::actions::{Fact, Severity};
use crate::cloud::reach::Reachability;
use crate::cloud::{MetricDatum, MetricUnit};
use crate::engine::RunId;
use crate::engine::events::Outcome;
use crate::journal::StateStore;
use crate::plan::Plan;
use crate::report::prometheus::{Exposition, MetricType};
use crate::sim::SimWorld;

/// Version of the JSON document's shape (docs/readiness.md): fields are only added.
pub const READINESS_VERSION: u32 = 1;

/// The longest one runbook's check may take before it counts as not ready. A backstop
/// only: the breaker gives up on a region that does not answer within its probe
/// timeout (seconds), and every read has its own deadline.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(300);

/// Where `--cloudwatch` puts the figures.
#[derive(Clone, Debug)]
pub struct CloudWatchTarget {
    /// The namespace.
    pub namespace: String,
    /// The region; `None`: each runbook's first region (`params.to`, then
    /// `params.from`, then any region its parameters name; us-east-1 without one).
    pub region: Option<String>,
}

/// What `drpilot readiness` asks for.
#[derive(Clone, Debug)]
pub struct ReadinessRequest {
    /// One preflight per runbook file, with the shared flags.
    pub checks: Vec<PreflightRequest>,
    /// `--cloudwatch`.
    pub cloudwatch: Option<CloudWatchTarget>,
}

/// A runbook's readiness, as one round found it.
#[derive(Clone, Debug)]
pub struct RunbookReadiness {
    /// The file.
    pub file: PathBuf,
    /// The runbook's name.
    pub runbook: String,
    /// A run could start now: no blocking finding, no live lock holder, and the check
    /// itself ran.
    pub ready: bool,
    /// Why the check could not run (the runbook is then not ready).
    pub check_error: Option<String>,
    /// The lock holder that would refuse a run.
    pub lock: Option<String>,
    /// How many findings of each severity.
    pub findings: BTreeMap<Severity, usize>,
    /// The messages of the blocking findings, `step: message`.
    pub blocking: Vec<String>,
    /// The messages of the warnings, `step: message`.
    pub warnings: Vec<String>,
    /// The measurements the checks made, in step order.
    pub facts: Vec<Fact>,
    /// (region, service, reachable) of every target the check probed.
    pub reach: Vec<(String, String, bool)>,
    /// The plan's predicted RTO.
    pub predicted_rto: Duration,
    /// The runbook's RTO objective.
    pub rto_objective: Option<Duration>,
    /// The newest drill phase of this runbook that succeeded (its run, and when it
    /// started), against the same kind of target (`--sim` counts simulated drills
    /// only, AWS real ones only).
    pub last_drill: Option<(RunId, jiff::Timestamp)>,
    /// When the check started.
    pub checked_at: jiff::Timestamp,
    /// How long it took.
    pub took: Duration,
    /// What `--cloudwatch` did: how many datums went where, or why none did.
    pub published: Option<Result<String, String>>,
    /// The simulated world checked (`--sim`): what it recorded (the metrics put to
    /// it) stays readable after the round.
    pub world: Option<Arc<SimWorld>>,
}

impl RunbookReadiness {
    /// Age of the last successful drill at the time of the check.
    pub fn drill_age(&self) -> Option<Duration> {
        self.last_drill.as_ref().map(|(_, at)| {
            let secs = self.checked_at.duration_since(*at).as_secs_f64().max(0.0);
            Duration::from_secs_f64(secs)
        })
    }
}

/// One round: every runbook, checked at once.
#[derive(Clone, Debug)]
pub struct Round {
    /// When the round started.
    pub at: jiff::Timestamp,
    /// Each runbook, in the order of the files.
    pub runbooks: Vec<RunbookReadiness>,
}

impl Round {
    /// Every runbook is ready.
    pub fn ready(&self) -> bool {
        self.runbooks.iter().all(|r| r.ready)
    }
}

/// What the first check of every file needs, read once with no side effect: the
/// runbook (syntax, semantics, `--param`s), `--skip-step`, `--sim-config` and the state
/// store's location. Exit 2 on the first bad one.
pub fn validate(req: &ReadinessRequest) -> Result<(), AppError> {
    if req.checks.is_empty() {
        return Err(AppError::usage("no runbook given"));
    }
    for c in &req.checks {
        let params: BTreeMap<String, String> = c.params.iter().cloned().collect();
        let (loaded, _) = load_runbook(&c.file, &params)?;
        skips(&c.skip_step, &loaded.runbook).map_err(AppError::usage)?;
        if c.sim {
            load_sim_config(c.sim_config.as_deref())?;
        }
        state_store(
            &c.state,
            Some(&loaded.runbook),
            c.profile.as_deref(),
            c.endpoint_url.as_deref(),
        )?;
    }
    if let Some(cw) = &req.cloudwatch {
        if cw.namespace.trim().is_empty() || cw.namespace.starts_with("AWS/") {
            return Err(AppError::usage(format!(
                "--cloudwatch {:?}: a namespace of your own, not empty and not AWS/...",
                cw.namespace
            )));
        }
        if let Some(r) = cw.region.as_deref().filter(|r| !crate::names::is_region(r)) {
            return Err(AppError::usage(format!(
                "--cloudwatch-region {r:?} is not a region name"
            )));
        }
    }
    Ok(())
}

/// Checks every runbook at once.
pub async fn round(req: &ReadinessRequest) -> Round {
    let at = jiff::Timestamp::now();
    let runbooks =
        futures_util::future::join_all(req.checks.iter().map(|c| one(c, req.cloudwatch.as_ref())))
            .await;
    Round { at, runbooks }
}

/// One runbook's check, folded; with `--cloudwatch`, its figures put through the
/// cloud the check used (its breaker: a region found dark refuses at once).
pub async fn one(c: &PreflightRequest, cloudwatch: Option<&CloudWatchTarget>) -> RunbookReadiness {
    let checked_at = jiff::Timestamp::now();
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(CHECK_DEADLINE, check(c)).await {
        Ok(r) => r,
        Err(_) => Err(AppError::new(
            crate::exit::PREFLIGHT_FAILED,
            format!(
                "the check did not finish within {}",
                humantime::format_duration(CHECK_DEADLINE)
            ),
        )),
    };
    let took = started.elapsed();
    match result {
        Ok(r) => {
            let mut out = fold(c, &r, checked_at, took);
            if let Some(cw) = cloudwatch {
                let region = cw
                    .region
                    .clone()
                    .unwrap_or_else(|| default_region(&r.runbook));
                let data = datums(&out);
                let n = data.len();
                out.published = Some(
                    match tokio::time::timeout(
                        CHECK_DEADLINE,
                        r.cloud
                            .metrics
                            .put_metric_data(&region, &cw.namespace, &data),
                    )
                    .await
                    {
                        Ok(Ok(())) => Ok(format!(
                            "{n} metric(s) put to CloudWatch namespace {} in {region}",
                            cw.namespace
                        )),
                        Ok(Err(e)) => Err(format!(
                            "failed to put metrics to CloudWatch in {region}: {e}"
                        )),
                        Err(_) => Err(format!(
                            "failed to put metrics to CloudWatch in {region}: no answer"
                        )),
                    },
                );
            }
            out
        }
        Err(e) => {
            let mut out = failed(c, &e, checked_at, took);
            if cloudwatch.is_some() {
                out.published = Some(Err(
                    "nothing put to CloudWatch: the check did not run".to_string()
                ));
            }
            out
        }
    }
}

/// The region `--cloudwatch` uses without `--cloudwatch-region`: the runbook's first
/// (`params.to`, then `params.from`, then any its parameters name), else us-east-1.
pub fn default_region(rb: &crate::runbook::Runbook) -> String {
    super::target::region_hints(rb)
        .into_iter()
        .next()
        .unwrap_or_else(|| "us-east-1".to_string())
}

fn fold(
    c: &PreflightRequest,
    r: &Readiness,
    checked_at: jiff::Timestamp,
    took: Duration,
) -> RunbookReadiness {
    let mut findings = no_findings();
    let (mut blocking, mut warnings, mut facts) = (Vec::new(), Vec::new(), Vec::new());
    for f in &r.findings {
        *findings.entry(f.finding.severity).or_default() += 1;
        match f.finding.severity {
            Severity::Block => blocking.push(format!("{}: {}", f.step, f.finding.message)),
            Severity::Warn => warnings.push(format!("{}: {}", f.step, f.finding.message)),
            Severity::Ok => {}
        }
        facts.extend(f.finding.facts.iter().cloned());
    }
    let plan = Plan::new(&r.runbook);
    RunbookReadiness {
        file: c.file.clone(),
        runbook: r.runbook.runbook.name.clone(),
        ready: r.ok(),
        check_error: None,
        lock: r.lock.clone(),
        findings,
        blocking,
        warnings,
        facts,
        reach: r
            .regions
            .iter()
            .map(|s| {
                (
                    s.region.clone(),
                    s.service.clone(),
                    s.status != Reachability::Unreachable,
                )
            })
            .collect(),
        predicted_rto: plan.predicted_rto,
        rto_objective: r.runbook.objectives.rto,
        last_drill: last_drill(&r.state, &r.runbook.runbook.name, c.sim),
        checked_at,
        took,
        published: None,
        world: r.world.clone(),
    }
}

fn no_findings() -> BTreeMap<Severity, usize> {
    [Severity::Ok, Severity::Warn, Severity::Block]
        .into_iter()
        .map(|s| (s, 0))
        .collect()
}

/// A check that could not run: not ready, with why. The runbook was valid before the
/// first round; its name and plan are read again if it still is.
fn failed(
    c: &PreflightRequest,
    e: &AppError,
    checked_at: jiff::Timestamp,
    took: Duration,
) -> RunbookReadiness {
    let params: BTreeMap<String, String> = c.params.iter().cloned().collect();
    let loaded = load_runbook(&c.file, &params).ok().map(|(l, _)| l.runbook);
    let runbook = loaded
        .as_ref()
        .map(|rb| rb.runbook.name.clone())
        .unwrap_or_else(|| c.file.display().to_string());
    RunbookReadiness {
        file: c.file.clone(),
        runbook,
        ready: false,
        check_error: Some(e.message.clone()),
        lock: None,
        findings: no_findings(),
        blocking: Vec::new(),
        warnings: Vec::new(),
        facts: Vec::new(),
        reach: Vec::new(),
        predicted_rto: loaded
            .as_ref()
            .map(|rb| Plan::new(rb).predicted_rto)
            .unwrap_or_default(),
        rto_objective: loaded.as_ref().and_then(|rb| rb.objectives.rto),
        last_drill: None,
        checked_at,
        took,
        published: None,
        world: None,
    }
}

/// The newest run of `runbook` that was a drill's phase and succeeded, against the
/// same kind of target: a practice drill in the simulated world says nothing about AWS.
/// A store that cannot be read has none to offer (the check says nothing of it).
pub fn last_drill(
    state: &StateStore,
    runbook: &str,
    sim: bool,
) -> Option<(RunId, jiff::Timestamp)> {
    let runs = state.runs().ok()?;
    newest_drill(runs.iter().map(|r| (&r.header, r.outcome())), runbook, sim)
}

/// [`last_drill`] over (journal header, outcome) pairs.
fn newest_drill<'a>(
    runs: impl Iterator<Item = (&'a crate::journal::Header, Option<Outcome>)>,
    runbook: &str,
    sim: bool,
) -> Option<(RunId, jiff::Timestamp)> {
    runs.filter(|(h, outcome)| {
        h.runbook == runbook
            && h.drill.is_some()
            && h.sim.is_some() == sim
            && *outcome == Some(Outcome::Succeeded)
    })
    .map(|(h, _)| (h.run_id.clone(), h.created_at))
    .max_by_key(|(_, at)| *at)
}

/// One number of a runbook's readiness, named for both Prometheus and CloudWatch.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Prometheus' name (`drpilot_` prefix, unit in the name).
    pub prometheus: &'static str,
    /// CloudWatch's metric name.
    pub cloudwatch: &'static str,
    /// What it is.
    pub help: &'static str,
    /// Its CloudWatch unit.
    pub unit: MetricUnit,
    /// Labels beyond `runbook`: (Prometheus label, CloudWatch dimension, value).
    pub labels: Vec<(&'static str, &'static str, String)>,
    /// The value.
    pub value: f64,
}

const READY: (&str, &str, &str, MetricUnit) = (
    "drpilot_ready",
    "Ready",
    "1 when a run of the runbook could start now (no blocking preflight finding, no live lock holder), 0 otherwise.",
    MetricUnit::None,
);
const CHECK_OK: (&str, &str, &str, MetricUnit) = (
    "drpilot_readiness_check_ok",
    "ReadinessCheckOk",
    "1 when the preflight ran to the end, 0 when it could not run (see drpilot_ready).",
    MetricUnit::None,
);
const FINDINGS: (&str, &str, &str, MetricUnit) = (
    "drpilot_preflight_findings",
    "PreflightFindings",
    "Preflight findings by severity: ok, warn (allows a run), block (stops a run).",
    MetricUnit::Count,
);
const LAG: (&str, &str, &str, MetricUnit) = (
    "drpilot_aurora_replication_lag_seconds",
    "AuroraReplicationLag",
    "Replication lag of an Aurora secondary as the preflight read it (no sample when unknown).",
    MetricUnit::Seconds,
);
const BACKLOG: (&str, &str, &str, MetricUnit) = (
    "drpilot_s3_replication_backlog_operations",
    "S3ReplicationBacklogOperations",
    "S3 OperationsPendingReplication of a source bucket as the preflight read it (no sample when unknown).",
    MetricUnit::Count,
);
const BACKLOG_BYTES: (&str, &str, &str, MetricUnit) = (
    "drpilot_s3_replication_backlog_bytes",
    "S3ReplicationBacklogBytes",
    "S3 BytesPendingReplication of a source bucket as the preflight read it (no sample when unknown).",
    MetricUnit::Bytes,
);
const RTO: (&str, &str, &str, MetricUnit) = (
    "drpilot_predicted_rto_seconds",
    "PredictedRto",
    "The plan's predicted RTO (drpilot plan).",
    MetricUnit::Seconds,
);
const RTO_OBJECTIVE: (&str, &str, &str, MetricUnit) = (
    "drpilot_rto_objective_seconds",
    "RtoObjective",
    "The runbook's RTO objective.",
    MetricUnit::Seconds,
);
const DRILL_AGE: (&str, &str, &str, MetricUnit) = (
    "drpilot_last_successful_drill_age_seconds",
    "SecondsSinceLastSuccessfulDrill",
    "Seconds from the start of the newest successful drill phase of the runbook to the check (no sample when there is none).",
    MetricUnit::Seconds,
);
const DRILL_AT: (&str, &str, &str, MetricUnit) = (
    "drpilot_last_successful_drill_timestamp_seconds",
    "LastSuccessfulDrillTimestamp",
    "Unix time of the start of the newest successful drill phase of the runbook (no sample when there is none).",
    MetricUnit::Seconds,
);
const REACHABLE: (&str, &str, &str, MetricUnit) = (
    "drpilot_region_reachable",
    "RegionReachable",
    "1 when a region's service answered the preflight's probe (slow included), 0 when it did not.",
    MetricUnit::None,
);
const CHECKED_AT: (&str, &str, &str, MetricUnit) = (
    "drpilot_readiness_timestamp_seconds",
    "ReadinessTimestamp",
    "Unix time the check started.",
    MetricUnit::Seconds,
);
const TOOK: (&str, &str, &str, MetricUnit) = (
    "drpilot_readiness_check_duration_seconds",
    "ReadinessCheckDuration",
    "How long the check took.",
    MetricUnit::Seconds,
);

fn figure(
    def: (&'static str, &'static str, &'static str, MetricUnit),
    labels: Vec<(&'static str, &'static str, String)>,
    value: f64,
) -> Figure {
    Figure {
        prometheus: def.0,
        cloudwatch: def.1,
        help: def.2,
        unit: def.3,
        labels,
        value,
    }
}

/// Every figure of one runbook's readiness, in a stable order. A value that is not
/// known (a lag that could not be read, no drill) has no figure: absent, never a
/// made-up number.
pub fn figures(r: &RunbookReadiness) -> Vec<Figure> {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = vec![
        figure(READY, vec![], flag(r.ready)),
        figure(CHECK_OK, vec![], flag(r.check_error.is_none())),
    ];
    for (severity, n) in &r.findings {
        out.push(figure(
            FINDINGS,
            vec![("severity", "Severity", severity_name(*severity).to_string())],
            *n as f64,
        ));
    }
    for f in &r.facts {
        match f {
            Fact::AuroraLag {
                global_cluster,
                cluster,
                region,
                lag,
            } => out.push(figure(
                LAG,
                vec![
                    ("global_cluster", "GlobalCluster", global_cluster.clone()),
                    ("cluster", "Cluster", short_name(cluster).to_string()),
                    ("region", "Region", region.clone()),
                ],
                lag.as_secs_f64(),
            )),
            Fact::S3Backlog {
                bucket,
                operations,
                bytes,
            } => {
                out.push(figure(
                    BACKLOG,
                    vec![("bucket", "Bucket", bucket.clone())],
                    *operations as f64,
                ));
                if let Some(b) = bytes {
                    out.push(figure(
                        BACKLOG_BYTES,
                        vec![("bucket", "Bucket", bucket.clone())],
                        *b as f64,
                    ));
                }
            }
        }
    }
    out.push(figure(RTO, vec![], r.predicted_rto.as_secs_f64()));
    if let Some(o) = r.rto_objective {
        out.push(figure(RTO_OBJECTIVE, vec![], o.as_secs_f64()));
    }
    if let (Some(age), Some((_, at))) = (r.drill_age(), &r.last_drill) {
        out.push(figure(DRILL_AGE, vec![], age.as_secs_f64().round()));
        out.push(figure(DRILL_AT, vec![], at.as_second() as f64));
    }
    for (region, service, up) in &r.reach {
        out.push(figure(
            REACHABLE,
            vec![
                ("region", "Region", region.clone()),
                ("service", "Service", service.clone()),
            ],
            flag(*up),
        ));
    }
    out.push(figure(
        CHECKED_AT,
        vec![],
        r.checked_at.as_millisecond() as f64 / 1000.0,
    ));
    out.push(figure(TOOK, vec![], r.took.as_secs_f64()));
    dedup(out)
}

/// A figure twice with the same labels (two steps reading one secondary's lag, one
/// bucket's backlog) is one sample: the first read.
fn dedup(figures: Vec<Figure>) -> Vec<Figure> {
    let mut seen = std::collections::BTreeSet::new();
    figures
        .into_iter()
        .filter(|f| seen.insert((f.prometheus, f.labels.clone())))
        .collect()
}

/// The severity's label value: the names the code gives them.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "ok",
        Severity::Warn => "warn",
        Severity::Block => "block",
    }
}

/// A cluster ARN's last part (`...:cluster:acme-prod-usw2` -> `acme-prod-usw2`).
fn short_name(arn: &str) -> &str {
    arn.rsplit([':', '/']).next().unwrap_or(arn)
}

/// The Prometheus text of a round: every family declared once (HELP, TYPE), every
/// runbook's samples labelled `runbook`.
pub fn exposition(round: &Round) -> Exposition {
    let mut e = Exposition::new();
    // Every family is declared, in a stable order, even without a sample this round.
    for def in [
        READY,
        CHECK_OK,
        FINDINGS,
        LAG,
        BACKLOG,
        BACKLOG_BYTES,
        RTO,
        RTO_OBJECTIVE,
        DRILL_AGE,
        DRILL_AT,
        REACHABLE,
        CHECKED_AT,
        TOOK,
    ] {
        e.family(def.0, def.2, MetricType::Gauge);
    }
    for r in &round.runbooks {
        for f in figures(r) {
            let mut labels: Vec<(&str, &str)> = vec![("runbook", r.runbook.as_str())];
            labels.extend(f.labels.iter().map(|(k, _, v)| (*k, v.as_str())));
            e.sample(f.prometheus, f.help, MetricType::Gauge, &labels, f.value);
        }
    }
    e
}

/// The CloudWatch datums of one runbook: the same figures, dimension `Runbook` first,
/// stamped with the check's time.
pub fn datums(r: &RunbookReadiness) -> Vec<MetricDatum> {
    let at = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(r.checked_at.as_millisecond()).unwrap_or(0));
    figures(r)
        .into_iter()
        // The time of the check is the datum's timestamp already.
        .filter(|f| f.prometheus != CHECKED_AT.0)
        .map(|f| {
            let mut dimensions = vec![("Runbook".to_string(), r.runbook.clone())];
            dimensions.extend(f.labels.into_iter().map(|(_, d, v)| (d.to_string(), v)));
            MetricDatum {
                name: f.cloudwatch.to_string(),
                dimensions,
                value: f.value,
                unit: f.unit,
                at,
            }
        })
        .collect()
}

/// The JSON document of a round (docs/readiness.md).
pub fn json(round: &Round) -> serde_json::Value {
    let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    serde_json::json!({
        "version": READINESS_VERSION,
        "checked_at": round.at.to_string(),
        "ready": round.ready(),
        "runbooks": round.runbooks.iter().map(|r| {
            let (lags, backlogs): (Vec<&Fact>, Vec<&Fact>) =
                r.facts.iter().partition(|f| matches!(f, Fact::AuroraLag { .. }));
            serde_json::json!({
                "file": r.file.display().to_string(),
                "runbook": r.runbook,
                "ready": r.ready,
                "check_error": r.check_error,
                "lock": r.lock,
                "findings": r.findings.iter()
                    .map(|(s, n)| (severity_name(*s).to_string(), serde_json::json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
                "blocking": r.blocking,
                "warnings": r.warnings,
                "aurora_lag": lags.iter().filter_map(|f| match f {
                    Fact::AuroraLag { global_cluster, cluster, region, lag } => Some(serde_json::json!({
                        "global_cluster": global_cluster,
                        "cluster": cluster,
                        "region": region,
                        "seconds": secs(*lag),
                    })),
                    Fact::S3Backlog { .. } => None,
                }).collect::<Vec<_>>(),
                "s3_backlog": backlogs.iter().filter_map(|f| match f {
                    Fact::S3Backlog { bucket, operations, bytes } => Some(serde_json::json!({
                        "bucket": bucket,
                        "operations": operations,
                        "bytes": bytes,
                    })),
                    Fact::AuroraLag { .. } => None,
                }).collect::<Vec<_>>(),
                "unreachable": r.reach.iter().filter(|(_, _, up)| !up)
                    .map(|(region, service, _)| serde_json::json!({"region": region, "service": service}))
                    .collect::<Vec<_>>(),
                "predicted_rto_seconds": secs(r.predicted_rto),
                "rto_objective_seconds": r.rto_objective.map(secs),
                "last_successful_drill": r.last_drill.as_ref().map(|(id, at)| serde_json::json!({
                    "run_id": id,
                    "started_at": at.to_string(),
                    "age_seconds": r.drill_age().map(|d| d.as_secs()),
                })),
                "checked_at": r.checked_at.to_string(),
                "check_seconds": secs(r.took),
                "cloudwatch": r.published.as_ref().map(|p| match p {
                    Ok(m) => serde_json::json!({"ok": true, "message": m}),
                    Err(m) => serde_json::json!({"ok": false, "message": m}),
                }),
            })
        }).collect::<Vec<_>>(),
    })
}

/// The table for people.
pub fn human(round: &Round) -> String {
    use std::fmt::Write as _;
    let short =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    let mut out = String::new();
    for r in &round.runbooks {
        let _ = writeln!(
            out,
            "{} ({}): {}",
            r.runbook,
            r.file.display(),
            if r.ready { "READY" } else { "NOT READY" }
        );
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "  {k:<24} {v}");
        };
        if let Some(e) = &r.check_error {
            row("check failed", e.clone());
        }
        row(
            "findings",
            format!(
                "{} ok, {} warn, {} block",
                r.findings.get(&Severity::Ok).unwrap_or(&0),
                r.findings.get(&Severity::Warn).unwrap_or(&0),
                r.findings.get(&Severity::Block).unwrap_or(&0)
            ),
        );
        for b in &r.blocking {
            row("blocking", b.clone());
        }
        if let Some(l) = &r.lock {
            row("blocking", l.clone());
        }
        for w in &r.warnings {
            row("warning", w.clone());
        }
        for f in &r.facts {
            match f {
                Fact::AuroraLag {
                    cluster,
                    region,
                    lag,
                    ..
                } => row(
                    "aurora lag",
                    format!(
                        "{} ({region}) {:.1}s",
                        short_name(cluster),
                        lag.as_secs_f64()
                    ),
                ),
                Fact::S3Backlog {
                    bucket,
                    operations,
                    bytes,
                } => row(
                    "s3 backlog",
                    match bytes {
                        Some(b) => format!("{bucket}: {operations} operation(s), {b} byte(s)"),
                        None => format!("{bucket}: {operations} operation(s)"),
                    },
                ),
            }
        }
        for (region, service, up) in &r.reach {
            if !up {
                row("unreachable", format!("{service} in {region}"));
            }
        }
        row(
            "predicted rto",
            match r.rto_objective {
                Some(o) => format!("{} (objective {})", short(r.predicted_rto), short(o)),
                None => short(r.predicted_rto),
            },
        );
        row(
            "last successful drill",
            match (&r.last_drill, r.drill_age()) {
                (Some((id, _)), Some(age)) => format!("{} ago ({id})", short(age)),
                _ => "none recorded".to_string(),
            },
        );
        if let Some(p) = &r.published {
            row(
                "cloudwatch",
                match p {
                    Ok(m) => m.clone(),
                    Err(m) => m.clone(),
                },
            );
        }
        row(
            "checked",
            format!("{} ({:.1}s)", r.checked_at, r.took.as_secs_f64()),
        );
    }
    out
}

/// Writes `text` to `path` so that a reader sees the old file or the new one, never a
/// part: a temporary file in the same directory (not ending in `.prom`, so
/// node_exporter's textfile collector skips it), flushed to disk, then renamed over
/// `path`.
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "readiness".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Rounds every `every` until `shutdown` resolves, each handed to `emit` as it ends.
/// A shutdown during a round ends it unfinished (nothing is emitted for it), so the
/// last complete round's output stays as it was. Returns the last complete round.
pub async fn watch(
    req: &ReadinessRequest,
    every: Duration,
    mut emit: impl FnMut(&Round),
    shutdown: impl std::future::Future<Output = ()>,
) -> Option<Round> {
    tokio::pin!(shutdown);
    let mut last = None;
    loop {
        let next = tokio::time::Instant::now() + every;
        tokio::select! {
            r = round(req) => {
                emit(&r);
                last = Some(r);
            }
            () = &mut shutdown => return last,
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = &mut shutdown => return last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &std::path::Path) -> PreflightRequest {
        PreflightRequest {
            file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runbooks/region-failover.toml"),
            state: vec![dir.display().to_string()],
            sim: true,
            seed: Some(7),
            ..PreflightRequest::default()
        }
    }

    #[tokio::test]
    async fn cloudwatch_in_the_simulated_world_records_the_same_figures() {
        let dir = std::env::temp_dir().join(format!("drpilot-readiness-cw-{}", std::process::id()));
        let cw = CloudWatchTarget {
            namespace: "Drpilot/Readiness".into(),
            region: None,
        };
        let r = one(&request(&dir), Some(&cw)).await;
        assert!(r.ready, "{r:?}");
        assert!(matches!(r.published, Some(Ok(_))), "{:?}", r.published);
        let world = r.world.clone().expect("the simulated world");
        let put = world.metric_data();
        assert_eq!(put.len(), 1, "{put:?}");
        // The runbook's first region: params.to.
        assert_eq!(put[0].region, "us-west-2");
        assert_eq!(put[0].namespace, "Drpilot/Readiness");
        let ready = put[0]
            .data
            .iter()
            .find(|d| d.name == "Ready")
            .expect("Ready");
        assert_eq!(ready.value, 1.0);
        assert_eq!(
            ready.dimensions,
            vec![("Runbook".to_string(), "region-failover".to_string())]
        );
        let lag = put[0]
            .data
            .iter()
            .find(|d| d.name == "AuroraReplicationLag")
            .expect("the lag");
        assert_eq!(lag.unit, MetricUnit::Seconds);
        assert!(
            lag.dimensions
                .contains(&("Cluster".to_string(), "acme-prod-usw2".to_string())),
            "{lag:?}"
        );
        // The same figures as the Prometheus text, less the check's time (the datum's
        // timestamp), no drill (no figure at all).
        assert_eq!(put[0].data.len(), figures(&r).len() - 1);
        assert!(!put[0].data.iter().any(|d| d.name.contains("Drill")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_dark_cloudwatch_region_is_said_and_the_round_ends() {
        let dir =
            std::env::temp_dir().join(format!("drpilot-readiness-dark-{}", std::process::id()));
        let cfg = dir.join("sim.toml");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&cfg, "[regions.eu-central-1]\nunreachable_from = \"0s\"\n").unwrap();
        let mut req = request(&dir);
        req.sim_config = Some(cfg);
        let cw = CloudWatchTarget {
            namespace: "Drpilot/Readiness".into(),
            region: Some("eu-central-1".into()),
        };
        let started = std::time::Instant::now();
        let r = one(&req, Some(&cw)).await;
        assert!(matches!(r.published, Some(Err(_))), "{:?}", r.published);
        assert!(
            started.elapsed() < CHECK_DEADLINE,
            "{:?}",
            started.elapsed()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_last_drill_is_the_newest_succeeded_drill_phase_on_the_same_kind_of_target() {
        use crate::journal::{Header, JOURNAL_VERSION, SimHeader};
        let header = |id: &str, runbook: &str, at: i64, drill: bool, sim: bool| Header {
            journal_version: JOURNAL_VERSION,
            run_id: RunId(id.into()),
            runbook: runbook.into(),
            runbook_path: "rb.toml".into(),
            runbook_sha256: String::new(),
            created_at: jiff::Timestamp::from_second(at).unwrap(),
            clock_origin: jiff::Timestamp::from_second(at).unwrap(),
            sim: sim.then_some(SimHeader {
                seed: 1,
                speed: None,
                config: None,
            }),
            aws: None,
            params: BTreeMap::new(),
            drill: drill.then(|| RunId("drill-rb-1".into())),
        };
        let ok = Some(Outcome::Succeeded);
        let runs = [
            (header("old", "rb", 100, true, false), ok),
            (header("new", "rb", 300, true, false), ok),
            // Newer, but: failed; a plain run; another runbook; simulated.
            (
                header("failed", "rb", 400, true, false),
                Some(Outcome::RolledBack),
            ),
            (header("unfinished", "rb", 450, true, false), None),
            (header("plain", "rb", 500, false, false), ok),
            (header("other", "other", 600, true, false), ok),
            (header("practice", "rb", 700, true, true), ok),
        ];
        let pick = |sim| newest_drill(runs.iter().map(|(h, o)| (h, *o)), "rb", sim);
        assert_eq!(
            pick(false),
            Some((
                RunId("new".into()),
                jiff::Timestamp::from_second(300).unwrap()
            ))
        );
        assert_eq!(pick(true).map(|(id, _)| id), Some(RunId("practice".into())));
        assert_eq!(
            newest_drill(runs.iter().map(|(h, o)| (h, *o)), "none", false),
            None
        );
    }

    #[test]
    fn a_round_has_each_family_once_and_no_sample_twice() {
        let r = RunbookReadiness {
            file: "rb.toml".into(),
            runbook: "rb".into(),
            ready: true,
            check_error: None,
            lock: None,
            findings: no_findings(),
            blocking: Vec::new(),
            warnings: Vec::new(),
            facts: vec![
                Fact::S3Backlog {
                    bucket: "b".into(),
                    operations: 3,
                    bytes: Some(30),
                },
                // The same bucket read by a second step: one sample.
                Fact::S3Backlog {
                    bucket: "b".into(),
                    operations: 4,
                    bytes: None,
                },
            ],
            reach: Vec::new(),
            predicted_rto: Duration::from_secs(60),
            rto_objective: None,
            last_drill: Some((
                RunId("rb-1".into()),
                jiff::Timestamp::from_second(1_000).unwrap(),
            )),
            checked_at: jiff::Timestamp::from_second(1_060).unwrap(),
            took: Duration::from_millis(5),
            published: None,
            world: None,
        };
        let round = Round {
            at: r.checked_at,
            runbooks: vec![
                r.clone(),
                RunbookReadiness {
                    runbook: "other".into(),
                    ..r
                },
            ],
        };
        let e = exposition(&round);
        let names: Vec<&str> = e.families().iter().map(|f| f.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "{names:?}");
        let backlog = e.families().iter().find(|f| f.name == BACKLOG.0).unwrap();
        assert_eq!(backlog.samples.len(), 2, "one per runbook");
        assert_eq!(backlog.samples[0].value, 3.0);
        let age = e.families().iter().find(|f| f.name == DRILL_AGE.0).unwrap();
        assert_eq!(age.samples[0].value, 60.0);
    }
}
