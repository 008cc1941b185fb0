//! `--sim-config FILE`: the world's initial state and its faults, in TOML.
//!
//! Parsed with the same care as a runbook: every problem is reported at once, with its
//! line and column, unknown keys are errors with a "did you mean", and nothing is
//! built until the whole file is valid. Resource names are checked against the world
//! when it is built ([`super::SimWorld::from_runbook`]), still pointing into the file.
//!
//! ```toml
//! [timing]                         # any operation's duration: "90s" or ["60s", "120s"]
//! aurora_failover = ["60s", "120s"]
//!
//! [regions.us-east-1]              # a whole region
//! unreachable_from = "2m"          # virtual time since the run started
//! unreachable_until = "1h"         # default: for good
//! outage = "hold"                  # hold: calls get no answer until the caller's deadline
//!                                  # (default, as real outages); reset: refused at once
//! services = ["s3"]                # only these services go down (default: the whole
//!                                  # region, its databases and caches included)
//! latency = "20s"                  # every call to the region answers this much later
//! app_healthy = true               # the application behind its endpoints (HTTP model)
//!
//! [global_clusters.acme-prod]
//! primary = "us-west-2"            # the writer is elsewhere
//! [clusters.acme-prod-usw2]        # identifier or ARN
//! lag = "45s"                      # also: status, instances, engine_version, missing
//! [datastores.ldgnf-acme-sessions]
//! primary = "us-west-2"            # also: status, missing
//! [replication_groups.acme-sessions-usw2]
//! status = "associating"           # also: missing
//! [buckets.acme-prod-assets-use1]
//! backlog = 1500                   # also: backlog_clears, versioning, replication_enabled, missing
//! [zones.Z0731524T4AKBG1PJWH9]
//! missing = true
//! [health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]
//! inverted = true                  # also: disabled, region, missing
//! [routing_controls."arn:aws:route53-recovery-control::111122223333:controlpanel/…/routingcontrol/…"]
//! state = "On"                     # also: missing
//!
//! [[fault]]
//! kind = "error"                   # throttle | error | latency | hang
//! service = "rds"                  # rds, elasticache, s3, cloudwatch, route53,
//!                                  # route53-recovery-cluster, dataplane
//! operation = "FailoverGlobalCluster"
//! region = "us-west-2"
//! rate = 1.0                       # probability per matching call
//! times = 2                        # at most N times (default: forever)
//! from = "0s"                      # active window, virtual time
//! until = "10m"
//! error = "transient"              # kind = "error": the class of error
//! code = "InternalFailure"
//! after_apply = true               # mutations: applied, then the answer is lost
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use super::faults::{FaultKind, FaultSpec, OPERATIONS, known_operation};
use super::names::is_region;
use super::rng::Between;
use super::state::Timing;
use crate::cloud::{CloudErrorKind, RoutingControlState};
use crate::runbook::catalogue::ROUTING_CONTROL_STATES;
use crate::runbook::diag::{
    Diagnostics, Problem, RenderStyle, SourceFile, did_you_mean, render_problems,
};
use crate::runbook::reader::{self, Table, Val};

/// Sim configs larger than this are refused before parsing (as runbooks are).
pub const MAX_SIM_CONFIG_BYTES: usize = 1024 * 1024;

/// `[regions.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionOverride {
    /// The region.
    pub name: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Unreachable from this virtual time.
    pub unreachable_from: Option<Duration>,
    /// Reachable again at this virtual time.
    pub unreachable_until: Option<Duration>,
    /// Whether the application in it is healthy.
    pub app_healthy: Option<bool>,
    /// `outage = "reset"`: calls into the outage are refused at once instead of held.
    pub outage_reset: Option<bool>,
    /// `services`: the services the outage takes down (their signing names).
    pub services: Option<Vec<String>>,
    /// `latency`: every call to the region answers this much later.
    pub latency: Option<Duration>,
}

/// `local = { host = "127.0.0.1", port = 5433, ... }` in `[clusters.ID]` or
/// `[replication_groups.ID]`: the member's data plane is a real server on this machine.
/// Probes and heartbeats reaching the member go to it, and the simulated control plane
/// acts on it: a promotion runs `pg_promote()` / `REPLICAOF NO ONE`, an old primary is
/// fenced read-only (PostgreSQL) or made to follow the new one (`REPLICAOF`, or the
/// `follow` command for PostgreSQL). Loopback only: a simulation never promotes a
/// server on another machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalServer {
    /// A loopback address or `localhost`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User (default: the step's).
    pub user: Option<String>,
    /// Variable holding the password (default: the step's `password_env`).
    pub password_env: Option<String>,
    /// Database (PostgreSQL; default: the step's).
    pub database: Option<String>,
    /// Command (program and arguments) that rebuilds this PostgreSQL server as a
    /// streaming replica of the new primary, run when a failover demotes it; it gets
    /// `DRPILOT_LAB_PRIMARY_HOST` / `_PORT` and `DRPILOT_LAB_HOST` / `_PORT`.
    /// Without it a demoted server stays fenced read-only and cannot be promoted again.
    pub follow: Vec<String>,
}

/// `[global_clusters.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalClusterOverride {
    /// Global cluster identifier.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Region of the writer.
    pub primary: Option<String>,
    /// Its engine version (and its members', unless they set their own).
    pub engine_version: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[clusters.ID]` (identifier or ARN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterOverride {
    /// Cluster identifier or ARN.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Replication lag while a secondary.
    pub lag: Option<Duration>,
    /// Status (e.g. `modifying`, `inaccessible-encryption-credentials`).
    pub status: Option<String>,
    /// Number of DB instances.
    pub instances: Option<u32>,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Its data plane is a real PostgreSQL server.
    pub local: Option<LocalServer>,
    /// It does not exist.
    pub missing: bool,
}

/// `[datastores.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatastoreOverride {
    /// Global replication group id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Region of the primary member.
    pub primary: Option<String>,
    /// Status (e.g. `modifying`).
    pub status: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[replication_groups.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationGroupOverride {
    /// Replication group id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Membership status (e.g. `associating`).
    pub status: Option<String>,
    /// Its data plane is a real Valkey / redis server.
    pub local: Option<LocalServer>,
    /// It does not exist.
    pub missing: bool,
}

/// `[buckets.NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketOverride {
    /// Bucket name.
    pub name: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Versioning enabled.
    pub versioning: Option<bool>,
    /// Its replication rules' `Status`.
    pub replication_enabled: Option<bool>,
    /// Operations pending replication at the start.
    pub backlog: Option<u64>,
    /// When that backlog has drained (default: never).
    pub backlog_clears: Option<Duration>,
    /// It does not exist.
    pub missing: bool,
}

/// `[zones.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneOverride {
    /// Hosted zone id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// It does not exist.
    pub missing: bool,
}

/// `[health_checks.ID]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheckOverride {
    /// Health check id.
    pub id: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// `Inverted`.
    pub inverted: Option<bool>,
    /// `Disabled`.
    pub disabled: Option<bool>,
    /// The region whose application it monitors.
    pub region: Option<String>,
    /// It does not exist.
    pub missing: bool,
}

/// `[routing_controls.ARN]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingControlOverride {
    /// Routing control ARN.
    pub arn: String,
    /// Where its key is in the file.
    pub span: Range<usize>,
    /// Its state before the run (what its health checks see too).
    pub state: Option<RoutingControlState>,
    /// It does not exist.
    pub missing: bool,
}

/// A parsed `--sim-config`: how the world differs from the runbook's "before" state,
/// and what goes wrong in it. `SimConfig::default()` is a healthy world with no faults.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    /// The file, for errors found when the world is built.
    pub source: Option<SourceFile>,
    /// Operation durations.
    pub timing: Timing,
    /// Region outages and application health.
    pub regions: Vec<RegionOverride>,
    /// Aurora global clusters.
    pub global_clusters: Vec<GlobalClusterOverride>,
    /// Aurora clusters.
    pub clusters: Vec<ClusterOverride>,
    /// Valkey global datastores.
    pub datastores: Vec<DatastoreOverride>,
    /// Valkey replication groups.
    pub replication_groups: Vec<ReplicationGroupOverride>,
    /// S3 buckets.
    pub buckets: Vec<BucketOverride>,
    /// Route 53 hosted zones.
    pub zones: Vec<ZoneOverride>,
    /// Route 53 health checks.
    pub health_checks: Vec<HealthCheckOverride>,
    /// Route 53 ARC routing controls.
    pub routing_controls: Vec<RoutingControlOverride>,
    /// Faults, in the order they are rolled.
    pub faults: Vec<FaultSpec>,
}

/// Why a sim config could not be used.
#[derive(Debug)]
pub enum SimConfigError {
    /// The file could not be read.
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any sim config could reasonably be.
    TooLarge {
        /// The path given.
        path: PathBuf,
    },
    /// The file (or the world built from it) has problems.
    Invalid {
        /// The file.
        file: SourceFile,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

impl SimConfigError {
    /// Renders every problem (the short form is `file:line:col: error: message`).
    pub fn render(&self, style: RenderStyle) -> String {
        match self {
            SimConfigError::Invalid { file, problems } => render_problems(file, problems, style),
            other => format!("{other}\n"),
        }
    }
}

impl fmt::Display for SimConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimConfigError::Read { path, source } => {
                write!(f, "failed to read sim config {}: {source}", path.display())
            }
            SimConfigError::TooLarge { path } => write!(
                f,
                "sim config {} is larger than {MAX_SIM_CONFIG_BYTES} bytes",
                path.display()
            ),
            SimConfigError::Invalid { file, problems } => {
                let n = problems.len();
                writeln!(
                    f,
                    "sim config {} has {n} error{}:",
                    file.path.display(),
                    if n == 1 { "" } else { "s" }
                )?;
                f.write_str(render_problems(file, problems, RenderStyle::Short).trim_end())
            }
        }
    }
}

impl std::error::Error for SimConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl SimConfig {
    /// Reads and checks a sim config file.
    pub fn load(path: &Path) -> Result<SimConfig, SimConfigError> {
        use std::io::Read;
        let read_error = |source| SimConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(MAX_SIM_CONFIG_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(read_error)?;
        if bytes.len() > MAX_SIM_CONFIG_BYTES {
            return Err(SimConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(e) = std::str::from_utf8(&bytes) {
            let at = e.valid_up_to();
            let mut d = Diagnostics::default();
            d.error(
                at..at + 3,
                "the file is not UTF-8 text",
                "invalid UTF-8 here",
            );
            return Err(SimConfigError::Invalid {
                file: SourceFile::new(path, text),
                problems: d.into_sorted(),
            });
        }
        Self::parse(path, &text)
    }

    /// Checks a sim config given as text (named `path` in messages).
    pub fn parse(path: &Path, text: &str) -> Result<SimConfig, SimConfigError> {
        let file = SourceFile::new(path, text);
        let mut p = Parser {
            src: text,
            d: Diagnostics::default(),
        };
        let config = p.document(text);
        let problems = p.d.into_sorted();
        match config {
            Some(mut c) if problems.is_empty() => {
                c.source = Some(file);
                Ok(c)
            }
            _ => Err(SimConfigError::Invalid { file, problems }),
        }
    }

    /// An error about this config's file, for problems found when the world is built.
    pub(crate) fn error(&self, problems: Vec<Problem>) -> SimConfigError {
        SimConfigError::Invalid {
            file: self
                .source
                .clone()
                .unwrap_or_else(|| SourceFile::new("<sim config>", "")),
            problems,
        }
    }
}

const ROOT_KEYS: &[&str] = &[
    "timing",
    "regions",
    "global_clusters",
    "clusters",
    "datastores",
    "replication_groups",
    "buckets",
    "zones",
    "health_checks",
    "routing_controls",
    "fault",
];
const TIMING_KEYS: &[&str] = &[
    "aurora_pending",
    "aurora_failover",
    "aurora_switchover",
    "aurora_detach",
    "snapshot_create",
    "snapshot_copy",
    "replication_lag",
    "valkey_failover",
    "valkey_disassociate",
    "route53_insync",
    "health_check_update",
    "health_check_detect",
    "s3_replication",
    "http_latency",
    "routing_control_propagation",
];
const REGION_KEYS: &[&str] = &[
    "unreachable_from",
    "unreachable_until",
    "outage",
    "services",
    "latency",
    "app_healthy",
];
const GLOBAL_KEYS: &[&str] = &["primary", "engine_version", "missing"];
const CLUSTER_KEYS: &[&str] = &[
    "lag",
    "status",
    "instances",
    "engine_version",
    "local",
    "missing",
];
const DATASTORE_KEYS: &[&str] = &["primary", "status", "missing"];
const RG_KEYS: &[&str] = &["status", "local", "missing"];
const PG_LOCAL_KEYS: &[&str] = &["host", "port", "user", "password_env", "database", "follow"];
const VALKEY_LOCAL_KEYS: &[&str] = &["host", "port", "user", "password_env"];
const BUCKET_KEYS: &[&str] = &[
    "versioning",
    "replication_enabled",
    "backlog",
    "backlog_clears",
    "missing",
];
const ZONE_KEYS: &[&str] = &["missing"];
const HC_KEYS: &[&str] = &["inverted", "disabled", "region", "missing"];
const RC_KEYS: &[&str] = &["state", "missing"];
const FAULT_KEYS: &[&str] = &[
    "kind",
    "service",
    "operation",
    "region",
    "rate",
    "times",
    "from",
    "until",
    "latency",
    "error",
    "code",
    "after_apply",
];
const FAULT_KINDS: &[&str] = &["throttle", "error", "latency", "hang"];
const ERROR_KINDS: &[&str] = &[
    "transient",
    "throttling",
    "unreachable",
    "not_found",
    "invalid_state",
    "access_denied",
    "invalid_request",
];

struct Parser<'s> {
    src: &'s str,
    d: Diagnostics,
}

impl Parser<'_> {
    fn document(&mut self, text: &str) -> Option<SimConfig> {
        let root = reader::parse_document(text, &mut self.d)?;
        let mut root = Table::new(root.get_ref(), root.span(), "the sim config");
        let mut c = SimConfig::default();
        if let Some(v) = root.take("timing") {
            self.timing(v, &mut c.timing);
        }
        self.named(&mut root, "regions", REGION_KEYS, |p, name, span, t| {
            if !is_region(name) {
                p.d.error(
                    span.clone(),
                    format!("`{name}` is not an AWS region"),
                    "expected a region such as \"us-east-1\"",
                );
            }
            let o = RegionOverride {
                name: name.to_string(),
                span,
                unreachable_from: p.duration(t, "unreachable_from"),
                unreachable_until: p.duration(t, "unreachable_until"),
                app_healthy: p.bool(t, "app_healthy"),
                outage_reset: p.outage(t, "outage"),
                services: p.services(t, "services"),
                latency: p.duration(t, "latency"),
            };
            if let (Some(from), Some(until)) = (o.unreachable_from, o.unreachable_until)
                && until <= from
            {
                p.d.error(
                    o.span.clone(),
                    format!("in [regions.{name}], unreachable_until is not after unreachable_from"),
                    "an empty outage",
                );
            }
            if o.unreachable_until.is_some() && o.unreachable_from.is_none() {
                p.d.error(
                    o.span.clone(),
                    format!("[regions.{name}] sets unreachable_until without unreachable_from"),
                    "say when the outage starts",
                )
                .help = Some("unreachable_from = \"0s\" starts it with the run".into());
            }
            c.regions.push(o);
        });
        self.named(
            &mut root,
            "global_clusters",
            GLOBAL_KEYS,
            |p, id, span, t| {
                c.global_clusters.push(GlobalClusterOverride {
                    id: id.to_string(),
                    span,
                    primary: p.region(t, "primary"),
                    engine_version: p.string(t, "engine_version"),
                    missing: p.bool(t, "missing").unwrap_or(false),
                });
            },
        );
        self.named(&mut root, "clusters", CLUSTER_KEYS, |p, id, span, t| {
            c.clusters.push(ClusterOverride {
                id: id.to_string(),
                span,
                lag: p.duration(t, "lag"),
                status: p.string(t, "status"),
                instances: p
                    .int(t, "instances", 0, 16)
                    .and_then(|n| u32::try_from(n).ok()),
                engine_version: p.string(t, "engine_version"),
                local: p.local(t, true),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "datastores", DATASTORE_KEYS, |p, id, span, t| {
            c.datastores.push(DatastoreOverride {
                id: id.to_string(),
                span,
                primary: p.region(t, "primary"),
                status: p.string(t, "status"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(
            &mut root,
            "replication_groups",
            RG_KEYS,
            |p, id, span, t| {
                c.replication_groups.push(ReplicationGroupOverride {
                    id: id.to_string(),
                    span,
                    status: p.string(t, "status"),
                    local: p.local(t, false),
                    missing: p.bool(t, "missing").unwrap_or(false),
                });
            },
        );
        self.named(&mut root, "buckets", BUCKET_KEYS, |p, name, span, t| {
            c.buckets.push(BucketOverride {
                name: name.to_string(),
                span,
                versioning: p.bool(t, "versioning"),
                replication_enabled: p.bool(t, "replication_enabled"),
                backlog: p
                    .int(t, "backlog", 0, i64::MAX)
                    .and_then(|n| u64::try_from(n).ok()),
                backlog_clears: p.duration(t, "backlog_clears"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "zones", ZONE_KEYS, |p, id, span, t| {
            c.zones.push(ZoneOverride {
                id: id.to_string(),
                span,
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "health_checks", HC_KEYS, |p, id, span, t| {
            c.health_checks.push(HealthCheckOverride {
                id: id.to_string(),
                span,
                inverted: p.bool(t, "inverted"),
                disabled: p.bool(t, "disabled"),
                region: p.region(t, "region"),
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        self.named(&mut root, "routing_controls", RC_KEYS, |p, arn, span, t| {
            let state = p
                .choice(t, "state", ROUTING_CONTROL_STATES)
                .map(|s| match s.as_str() {
                    "On" => RoutingControlState::On,
                    _ => RoutingControlState::Off,
                });
            c.routing_controls.push(RoutingControlOverride {
                arn: arn.to_string(),
                span,
                state,
                missing: p.bool(t, "missing").unwrap_or(false),
            });
        });
        if let Some(v) = root.take("fault") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(f) = self.fault(item, i + 1) {
                            c.faults.push(f);
                        }
                    }
                }
                other => {
                    self.d
                        .error(
                            v.span(),
                            format!(
                                "`fault` must be an array of tables, found {}",
                                reader::kind_of(other)
                            ),
                            "expected [[fault]] tables",
                        )
                        .help = Some("write each fault as a [[fault]] table".into());
                }
            }
        }
        self.finish(root, ROOT_KEYS);
        Some(c)
    }

    // ---- generic readers ----

    fn table<'a, 'i>(&mut self, v: &'a Val<'i>, what: &str) -> Option<Table<'a, 'i>> {
        reader::as_table(&mut self.d, v, what)
    }

    /// A table of named tables (`[clusters.NAME]`), each read by `read`.
    fn named<'a, 'i>(
        &mut self,
        root: &mut Table<'a, 'i>,
        section: &str,
        keys: &[&str],
        mut read: impl FnMut(&mut Self, &str, Range<usize>, &mut Table<'a, 'i>),
    ) {
        let Some(v) = root.take(section) else {
            return;
        };
        let Some(t) = self.table(v, &format!("[{section}]")) else {
            return;
        };
        for (k, v) in t.map.iter() {
            let name: &str = k.get_ref().as_ref();
            let what = format!("[{section}.{name}]");
            if let Some(mut inner) = self.table(v, &what) {
                read(self, name, k.span(), &mut inner);
                self.finish(inner, keys);
            }
        }
    }

    fn finish(&mut self, t: Table<'_, '_>, valid: &[&str]) {
        // A sim config has no secret to blank: nothing renders it but these errors,
        // and a secret-looking key is still refused as unknown.
        reader::finish(&mut self.d, t, valid, "a sim config");
    }

    fn wrong_type(&mut self, v: &Val<'_>, key: &str, what: &str, expected: &str) {
        reader::wrong_type(&mut self.d, v, key, what, expected);
    }

    fn string(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<String> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                let what = t.what.clone();
                self.wrong_type(v, key, &what, "a string");
                None
            }
        }
    }

    fn bool(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
        reader::bool(&mut self.d, t, key)
    }

    /// `"hold"` or `"reset"`: whether calls into an outage are refused at once.
    fn outage(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<bool> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "hold" => Some(false),
            DeValue::String(s) if s.as_ref() == "reset" => Some(true),
            _ => {
                let what = t.what.clone();
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} must be \"hold\" or \"reset\""),
                    "hold: no answer until the caller's deadline; reset: refused at once",
                );
                None
            }
        }
    }

    /// A list of service signing names, as `reach::Service` knows them.
    fn services(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Vec<String>> {
        use crate::cloud::reach::Service;
        let v = t.take(key)?;
        let what = t.what.clone();
        let known = || {
            Service::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, key, &what, "a list of service names");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(name) => {
                    match Service::parse(name) {
                        Some(s) => out.push(s.as_str().to_string()),
                        None => {
                            self.d
                            .error(
                                item.span(),
                                format!("`{name}` in `{key}` of {what} is not a service drpilot calls"),
                                "expected a service's signing name",
                            )
                            .help = Some(format!("one of: {}", known()));
                            return None;
                        }
                    }
                }
                _ => {
                    self.wrong_type(item, key, &what, "a service name");
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.d.error(
                v.span(),
                format!("`{key}` in {what} is empty"),
                "leave it out for the whole region",
            );
            return None;
        }
        Some(out)
    }

    fn int(&mut self, t: &mut Table<'_, '_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = t.take(key)?;
        reader::int_value(&mut self.d, v, key, &t.what, min, max)
    }

    fn rate(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<f64> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let n = match v.get_ref() {
            DeValue::Float(f) => f
                .as_str()
                .chars()
                .filter(|c| *c != '_')
                .collect::<String>()
                .parse::<f64>()
                .ok(),
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(v, key, &what, "a number from 0 to 1");
                return None;
            }
        };
        match n {
            Some(n) if (0.0..=1.0).contains(&n) => Some(n),
            _ => {
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} must be a probability"),
                    "expected a number from 0 to 1",
                );
                None
            }
        }
    }

    fn duration_value(&mut self, v: &Val<'_>, key: &str, what: &str) -> Option<Duration> {
        let d = reader::duration_value(&mut self.d, v, key, what, |s, _| Some(s.to_string()))?;
        // The world's clock scales durations; a bound keeps that arithmetic finite.
        if d > Duration::from_secs(10 * 365 * 86_400) {
            self.d.error(
                v.span(),
                format!("`{key}` in {what} is longer than ten years"),
                "expected a shorter duration",
            );
            return None;
        }
        Some(d)
    }

    fn duration(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Duration> {
        let v = t.take(key)?;
        let what = t.what.clone();
        self.duration_value(v, key, &what)
    }

    /// `"90s"` (exactly) or `["60s", "120s"]` (drawn from the range).
    fn between(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<Between> {
        let v = t.take(key)?;
        let what = t.what.clone();
        match v.get_ref() {
            DeValue::Array(items) => {
                let items: Vec<&Val<'_>> = items.iter().collect();
                let [lo, hi] = items.as_slice() else {
                    self.d.error(
                        v.span(),
                        format!("`{key}` in {what} must be one duration or [min, max]"),
                        format!("expected two durations, found {}", items.len()),
                    );
                    return None;
                };
                let (lo, hi) = (
                    self.duration_value(lo, key, &what),
                    self.duration_value(hi, key, &what),
                );
                let (lo, hi) = (lo?, hi?);
                if lo > hi {
                    self.d.error(
                        v.span(),
                        format!("`{key}` in {what} has its minimum above its maximum"),
                        "expected [min, max]",
                    );
                    return None;
                }
                Some(Between { min: lo, max: hi })
            }
            _ => self
                .duration_value(v, key, &what)
                .map(|d| Between { min: d, max: d }),
        }
    }

    fn region(&mut self, t: &mut Table<'_, '_>, key: &str) -> Option<String> {
        let v = t.take(key)?;
        let what = t.what.clone();
        match v.get_ref() {
            DeValue::String(s) if is_region(s) => Some(s.to_string()),
            DeValue::String(s) => {
                self.d.error(
                    v.span(),
                    format!("`{key}` in {what} is not an AWS region: \"{s}\""),
                    "expected a region such as \"us-west-2\"",
                );
                None
            }
            _ => {
                self.wrong_type(v, key, &what, "a region such as \"us-west-2\"");
                None
            }
        }
    }

    fn choice(&mut self, t: &mut Table<'_, '_>, key: &str, values: &[&str]) -> Option<String> {
        let v = t.take(key)?;
        let what = t.what.clone();
        let expected = crate::runbook::catalogue::quoted_list(values);
        match v.get_ref() {
            DeValue::String(s) if values.contains(&s.as_ref()) => Some(s.to_string()),
            DeValue::String(s) => {
                let p = self.d.error(
                    v.span(),
                    format!("`{key}` in {what} is not a known value: \"{s}\""),
                    format!("expected {expected}"),
                );
                if let Some(near) = did_you_mean(s, values.iter().copied()) {
                    p.help = Some(format!("did you mean \"{near}\"?"));
                }
                None
            }
            _ => {
                self.wrong_type(v, key, &what, &format!("one of {expected}"));
                None
            }
        }
    }

    /// `local = { ... }` (see [`LocalServer`]).
    fn local(&mut self, t: &mut Table<'_, '_>, postgres: bool) -> Option<LocalServer> {
        let v = t.take("local")?;
        let what = format!("`local` in {}", t.what);
        let mut lt = self.table(v, &what)?;
        let has = |k: &str| lt.map.contains_key(k);
        let (has_host, has_port, has_user) = (has("host"), has("port"), has("user"));
        let host = self.string(&mut lt, "host");
        let port = self
            .int(&mut lt, "port", 1, 65_535)
            .and_then(|n| u16::try_from(n).ok());
        let user = self.string(&mut lt, "user");
        let password_env = self.string(&mut lt, "password_env");
        let database = if postgres {
            self.string(&mut lt, "database")
        } else {
            None
        };
        let follow = if postgres {
            match lt.take("follow") {
                None => Vec::new(),
                Some(f) => {
                    let items: Option<Vec<String>> = match f.get_ref() {
                        DeValue::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|i| match i.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                    match items {
                        Some(items) => items,
                        None => {
                            self.wrong_type(
                                f,
                                "follow",
                                &what,
                                "a command: an array of strings, program first",
                            );
                            Vec::new()
                        }
                    }
                }
            }
        } else {
            Vec::new()
        };
        let loopback = |h: &str| {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let mut ok = true;
        match &host {
            Some(h) if !loopback(h) => {
                self.d
                    .error(
                        lt.span.clone(),
                        format!("{what}: host \"{h}\" is not on this machine"),
                        "a simulation only drives servers on loopback",
                    )
                    .help = Some(
                    "use 127.0.0.1, ::1 or localhost: a simulated promotion runs pg_promote() \
                     / REPLICAOF NO ONE on the server it is bound to"
                        .into(),
                );
                ok = false;
            }
            Some(_) => {}
            None if has_host => ok = false,
            None => {
                self.d.error(
                    lt.span.clone(),
                    format!("{what} has no host"),
                    "`host` is required",
                );
                ok = false;
            }
        }
        if postgres && user.is_none() && !has_user {
            self.d
                .error(
                    lt.span.clone(),
                    format!("{what} has no user"),
                    "`user` is required for PostgreSQL",
                )
                .help =
                Some("the lab logs in as it to promote and fence the server: a superuser".into());
            ok = false;
        }
        if port.is_none() && !has_port {
            self.d.error(
                lt.span.clone(),
                format!("{what} has no port"),
                "`port` is required",
            );
            ok = false;
        }
        let keys = if postgres {
            PG_LOCAL_KEYS
        } else {
            VALKEY_LOCAL_KEYS
        };
        self.finish(lt, keys);
        Some(LocalServer {
            host: host?,
            port: port?,
            user,
            password_env,
            database,
            follow,
        })
        .filter(|_| ok)
    }

    // ---- sections ----

    fn timing(&mut self, v: &Val<'_>, timing: &mut Timing) {
        let Some(mut t) = self.table(v, "[timing]") else {
            return;
        };
        let fields: [(&str, &mut Between); 14] = [
            ("aurora_pending", &mut timing.aurora_pending),
            ("aurora_failover", &mut timing.aurora_failover),
            ("aurora_switchover", &mut timing.aurora_switchover),
            ("aurora_detach", &mut timing.aurora_detach),
            ("snapshot_create", &mut timing.snapshot_create),
            ("snapshot_copy", &mut timing.snapshot_copy),
            ("replication_lag", &mut timing.replication_lag),
            ("valkey_failover", &mut timing.valkey_failover),
            ("valkey_disassociate", &mut timing.valkey_disassociate),
            ("route53_insync", &mut timing.route53_insync),
            ("health_check_update", &mut timing.health_check_update),
            ("s3_replication", &mut timing.s3_replication),
            ("http_latency", &mut timing.http_latency),
            (
                "routing_control_propagation",
                &mut timing.routing_control_propagation,
            ),
        ];
        for (key, slot) in fields {
            if let Some(b) = self.between(&mut t, key) {
                *slot = b;
            }
        }
        if let Some(d) = self.duration(&mut t, "health_check_detect") {
            timing.health_check_detect = d;
        }
        self.finish(t, TIMING_KEYS);
    }

    fn fault(&mut self, v: &Val<'_>, n: usize) -> Option<FaultSpec> {
        let what = format!("[[fault]] #{n}");
        let mut t = self.table(v, &what)?;
        let header = self.header(&t.span);
        let mut ok = true;
        let kind = match self.choice(&mut t, "kind", FAULT_KINDS).as_deref() {
            Some("throttle") => Some(FaultKind::Throttle),
            Some("error") => Some(FaultKind::Error),
            Some("latency") => Some(FaultKind::Latency),
            Some("hang") => Some(FaultKind::Hang),
            _ => None,
        };
        if kind.is_none() && !t.map.contains_key("kind") {
            self.d.error(
                header.clone(),
                format!("missing `kind` in {what}"),
                format!(
                    "`kind` ({}) is required here",
                    crate::runbook::catalogue::quoted_list(FAULT_KINDS)
                ),
            );
        }
        let services: Vec<&str> = OPERATIONS.iter().map(|(s, _)| *s).collect();
        let service = self.choice(&mut t, "service", &services);
        if t.map.contains_key("service") && service.is_none() {
            ok = false;
        }
        let operation = match t.take("operation") {
            Some(v) => match v.get_ref() {
                DeValue::String(s) if known_operation(service.as_deref(), s) => Some(s.to_string()),
                DeValue::String(s) => {
                    let all: Vec<&str> = OPERATIONS
                        .iter()
                        .filter(|(svc, _)| service.as_deref().is_none_or(|want| want == *svc))
                        .flat_map(|(_, ops)| ops.iter().copied())
                        .collect();
                    let p = self.d.error(
                        v.span(),
                        match &service {
                            Some(svc) => format!("`operation` in {what}: {svc} has no operation \"{s}\""),
                            None => format!("`operation` in {what} is not an operation the world serves: \"{s}\""),
                        },
                        "unknown operation",
                    );
                    p.help = Some(match did_you_mean(s, all.iter().copied()) {
                        Some(near) => format!("did you mean \"{near}\"?"),
                        None => format!("operations: {}", all.join(", ")),
                    });
                    ok = false;
                    None
                }
                _ => {
                    self.wrong_type(v, "operation", &what, "an API operation name");
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let region = self.region(&mut t, "region");
        let rate = self.rate(&mut t, "rate");
        let times = self
            .int(&mut t, "times", 1, i64::MAX)
            .and_then(|n| u64::try_from(n).ok());
        let from = self.duration(&mut t, "from");
        let until = self.duration(&mut t, "until");
        if let (Some(f), Some(u)) = (from, until)
            && u <= f
        {
            self.d.error(
                header.clone(),
                format!("in {what}, `until` is not after `from`"),
                "an empty window",
            );
            ok = false;
        }
        let latency_value = t.map.get("latency").map(|v| v.span());
        let latency = self.duration(&mut t, "latency");
        let error_span = t.map.get("error").map(|v| v.span());
        let error = self.choice(&mut t, "error", ERROR_KINDS);
        let code = self.string(&mut t, "code");
        let after_span = t.map.get("after_apply").map(|v| v.span());
        let after_apply = self.bool(&mut t, "after_apply").unwrap_or(false);
        match kind {
            Some(FaultKind::Latency) if latency.is_none() && latency_value.is_none() => {
                self.d.error(
                    header.clone(),
                    format!("missing `latency` in {what}"),
                    "kind = \"latency\" needs `latency` (a duration)",
                );
                ok = false;
            }
            Some(k) if k != FaultKind::Latency && latency_value.is_some() => {
                self.d.error(
                    latency_value.clone().unwrap_or_default(),
                    format!("`latency` in {what} only applies to kind = \"latency\""),
                    "not used by this kind",
                );
                ok = false;
            }
            _ => {}
        }
        if let (Some(k), Some(span)) = (kind, error_span)
            && k != FaultKind::Error
        {
            self.d.error(
                span,
                format!("`error` in {what} only applies to kind = \"error\""),
                "not used by this kind",
            );
            ok = false;
        }
        if let (Some(FaultKind::Latency | FaultKind::Throttle), Some(span)) = (kind, after_span) {
            self.d.error(
                span,
                format!("`after_apply` in {what} only applies to kinds \"error\" and \"hang\""),
                "not used by this kind",
            );
            ok = false;
        }
        self.finish(t, FAULT_KEYS);
        let kind = kind?;
        ok.then(|| FaultSpec {
            kind,
            service,
            operation,
            region,
            rate: rate.unwrap_or(1.0),
            times,
            from: from.unwrap_or_default(),
            until,
            latency: latency.unwrap_or_default(),
            error: match error.as_deref() {
                Some("throttling") => CloudErrorKind::Throttling,
                Some("unreachable") => CloudErrorKind::Unreachable,
                Some("not_found") => CloudErrorKind::NotFound,
                Some("invalid_state") => CloudErrorKind::InvalidState,
                Some("access_denied") => CloudErrorKind::AccessDenied,
                Some("invalid_request") => CloudErrorKind::InvalidRequest,
                _ => CloudErrorKind::Transient,
            },
            code,
            after_apply,
        })
    }

    fn header(&self, span: &Range<usize>) -> Range<usize> {
        reader::header_span(self.src, span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        match SimConfig::parse(Path::new("sim.toml"), text) {
            Ok(_) => panic!("expected errors in:\n{text}"),
            Err(e) => e.render(RenderStyle::Short),
        }
    }

    #[test]
    fn a_full_config_parses() {
        let text = r#"
[timing]
aurora_failover = ["60s", "90s"]
route53_insync = "20s"
health_check_detect = "10s"

[regions.us-east-1]
unreachable_from = "2m"
unreachable_until = "1h"

[regions.us-west-2]
app_healthy = false

[global_clusters.acme-prod]
primary = "us-west-2"

[clusters.acme-prod-usw2]
lag = "45s"
instances = 0

[datastores.ldgnf-acme-sessions]
status = "modifying"

[replication_groups.acme-sessions-usw2]
missing = true

[buckets.acme-prod-assets-use1]
backlog = 1_500
backlog_clears = "5m"

[zones.Z0731524T4AKBG1PJWH9]
missing = false

[health_checks.8f4b6d2e-3c1a-4e5f-9a7b-0c2d4e6f8a1b]
inverted = true

[[fault]]
kind = "throttle"
service = "route53"
rate = 0.25

[[fault]]
kind = "error"
operation = "FailoverGlobalCluster"
times = 2
after_apply = true

[[fault]]
kind = "latency"
service = "dataplane"
latency = "3s"
from = "1m"
until = "2m"

[[fault]]
kind = "hang"
service = "elasticache"
operation = "FailoverGlobalReplicationGroup"
region = "us-west-2"
"#;
        let c = SimConfig::parse(Path::new("sim.toml"), text).unwrap();
        assert_eq!(c.timing.aurora_failover, Between::secs(60, 90));
        assert_eq!(c.timing.route53_insync, Between::secs(20, 20));
        assert_eq!(c.timing.health_check_detect, Duration::from_secs(10));
        assert_eq!(c.regions.len(), 2);
        assert_eq!(
            c.regions[0].unreachable_from,
            Some(Duration::from_secs(120))
        );
        assert_eq!(c.regions[1].app_healthy, Some(false));
        assert_eq!(c.global_clusters[0].primary.as_deref(), Some("us-west-2"));
        assert_eq!(c.clusters[0].lag, Some(Duration::from_secs(45)));
        assert_eq!(c.clusters[0].instances, Some(0));
        assert_eq!(c.buckets[0].backlog, Some(1500));
        assert!(c.replication_groups[0].missing);
        assert_eq!(c.health_checks[0].inverted, Some(true));
        assert_eq!(c.faults.len(), 4);
        assert_eq!(c.faults[0].kind, FaultKind::Throttle);
        assert_eq!(c.faults[0].rate, 0.25);
        assert_eq!(c.faults[1].times, Some(2));
        assert!(c.faults[1].after_apply);
        assert_eq!(c.faults[2].latency, Duration::from_secs(3));
        assert_eq!(c.faults[2].until, Some(Duration::from_secs(120)));
        assert_eq!(c.faults[3].region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn unknown_keys_are_reported_with_line_and_column() {
        let out = errors(
            "[clusters.acme-prod-usw2]\nlagg = \"4s\"\n\n[timing]\n  aurora_failovr = \"1m\"\n",
        );
        assert!(
            out.contains("sim.toml:2:1: error: unknown key `lagg` in [clusters.acme-prod-usw2]"),
            "{out}"
        );
        assert!(out.contains("did you mean `lag`?"), "{out}");
        assert!(
            out.contains("sim.toml:5:3: error: unknown key `aurora_failovr` in [timing]"),
            "{out}"
        );
        assert!(out.contains("did you mean `aurora_failover`?"), "{out}");
        let out = errors("seed = 3\n");
        assert!(
            out.contains("sim.toml:1:1: error: unknown key `seed` in the sim config"),
            "{out}"
        );
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once() {
        let text = "[regions.mars-1]\nunreachable_from = 30\n\n[[fault]]\nkind = \"eror\"\nrate = 1.5\n\n[[fault]]\nkind = \"error\"\noperation = \"FailoverGlobalClster\"\nlatency = \"1s\"\n\n[[fault]]\nkind = \"latency\"\n\n[buckets.b]\nbacklog = -1\n";
        let out = errors(text);
        for want in [
            "sim.toml:1:10: error: `mars-1` is not an AWS region",
            "sim.toml:2:20: error: `unreachable_from` in [regions.mars-1] must be a duration string",
            "sim.toml:5:8: error: `kind` in [[fault]] #1 is not a known value: \"eror\"",
            "did you mean \"error\"?",
            "sim.toml:6:8: error: `rate` in [[fault]] #1 must be a probability",
            "sim.toml:10:13: error: `operation` in [[fault]] #2 is not an operation the world serves",
            "did you mean \"FailoverGlobalCluster\"?",
            "sim.toml:11:11: error: `latency` in [[fault]] #2 only applies to kind = \"latency\"",
            "sim.toml:13:1: error: missing `latency` in [[fault]] #3",
            "sim.toml:17:11: error: `backlog` in [buckets.b] is out of range",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
    }

    #[test]
    fn syntax_errors_and_odd_input_never_panic() {
        for text in [
            "[timing\n",
            "fault = 3\n",
            "[[fault]]\n",
            "[timing]\naurora_failover = [\"2m\", \"1m\"]\n",
            "[timing]\naurora_failover = [\"1m\"]\n",
            "[timing]\naurora_failover = \"1000000000000h\"\n",
            "[clusters]\nx = 1\n",
            "[regions.us-east-1]\nunreachable_until = \"1m\"\n",
            "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"PutObject\"\n",
            "[[fault]]\nkind = \"hang\"\nfrom = \"5m\"\nuntil = \"1m\"\n",
            "[[fault]]\nkind = \"latency\"\nlatency = \"1s\"\nafter_apply = true\n",
            "[[fault]]\nkind = \"throttle\"\nrate = nan\n",
            "[[fault]]\nkind = \"throttle\"\ntimes = 0\n",
            "[health_checks.x]\nregion = \"nowhere\"\n",
        ] {
            let _ = errors(text);
        }
        assert!(SimConfig::parse(Path::new("e.toml"), "").is_ok());
        let out =
            errors("[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"PutObject\"\n");
        assert!(out.contains("rds has no operation \"PutObject\""), "{out}");
    }

    #[test]
    fn display_names_the_file_and_each_problem() {
        let err =
            SimConfig::parse(Path::new("bad.toml"), "[zones.Z1]\nmising = true\n").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("sim config bad.toml has 1 error:\n"),
            "{shown}"
        );
        assert!(
            shown.contains("bad.toml:2:1: error: unknown key `mising`"),
            "{shown}"
        );
    }
}
