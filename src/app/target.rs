//! Where a run's calls go: the simulated world (`--sim`, built from the runbook and its
//! config) or AWS (with a set of clients per `[accounts]` entry), the runtime and clock
//! that fit it, and the probes that start as soon as the target exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::AppError;
use super::input::{load_sim_config, random_seed};
use super::settings::{Exec, SimSpeed};
use crate::clock::Clock;
use crate::cloud::aws::{AwsCloud, AwsOptions};
use crate::cloud::live::LiveDataPlane;
use crate::cloud::reach::{ProbeTarget, ReachSettings, Service};
use crate::engine::RunConfig;
use crate::exit;
use crate::journal::{AwsHeader, SimHeader};
use crate::runbook::{self, Runbook};
use crate::sim::{SimConfig, SimWorld};

/// Default `--sim-speed`: the shipped failover (about 6 virtual minutes) takes seconds.
pub const DEFAULT_SIM_SPEED: f64 = 30.0;

/// The run's runtime: one thread; paused (virtual time) for `--sim-speed max`.
pub fn runtime(speed: SimSpeed) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if speed == SimSpeed::Max {
        // Virtual time: the clock jumps whenever every task waits on a timer.
        b.start_paused(true);
    }
    b.build()
}

/// The clock's speed for a sim speed (virtual time runs at 1, jumping when idle).
pub fn clock_speed(speed: SimSpeed) -> f64 {
    match speed {
        SimSpeed::Times(n) => n,
        SimSpeed::Max => 1.0,
    }
}

/// Where a run's cloud calls go.
pub enum Target {
    /// The simulated world.
    Sim {
        /// The world's seed.
        seed: u64,
        /// Its speed.
        speed: SimSpeed,
        /// Its config (`--sim-config`).
        config: Box<SimConfig>,
        /// The config's file, for the journal.
        config_path: Option<PathBuf>,
    },
    /// AWS, or an emulator through `--endpoint-url`.
    Aws(AwsHeader),
}

impl Target {
    /// From the command line: the simulated world (`--sim`, its config read and
    /// checked here) or AWS. Exit 2 on a bad `--sim-config` or `--sim-speed` without
    /// `--sim`.
    pub fn from_args(
        sim: bool,
        sim_config: Option<&Path>,
        seed: Option<u64>,
        exec: &Exec,
    ) -> Result<Target, AppError> {
        if !sim {
            if exec.sim_speed.is_some() {
                return Err(AppError::new(exit::USAGE, "--sim-speed needs --sim"));
            }
            return Ok(Target::Aws(AwsHeader {
                profile: exec.profile.clone(),
                endpoint_url: exec.endpoint_url.clone(),
            }));
        }
        let config = load_sim_config(sim_config)?;
        // Real servers run at real time: a sped-up clock would measure their RPO and
        // promotions in virtual seconds that never happened.
        let lab = config.clusters.iter().any(|c| c.local.is_some())
            || config.replication_groups.iter().any(|r| r.local.is_some());
        let speed = match exec.sim_speed {
            Some(SimSpeed::Times(n)) if lab && n != 1.0 => {
                return Err(AppError::new(
                    exit::USAGE,
                    "--sim-speed: the sim config binds local servers (`local = ...`), which run at \
                     real time; use --sim-speed 1 or leave it out",
                ));
            }
            Some(SimSpeed::Max) if lab => {
                return Err(AppError::new(
                    exit::USAGE,
                    "--sim-speed max: the sim config binds local servers (`local = ...`), which \
                     run at real time; use --sim-speed 1 or leave it out",
                ));
            }
            Some(s) => s,
            None if lab => SimSpeed::Times(1.0),
            None => SimSpeed::Times(DEFAULT_SIM_SPEED),
        };
        Ok(Target::Sim {
            seed: seed.unwrap_or_else(random_seed),
            speed,
            config: Box::new(config),
            config_path: sim_config.map(Path::to_path_buf),
        })
    }

    /// How fast the run's clock goes: AWS is real time.
    pub fn speed(&self) -> SimSpeed {
        match self {
            Target::Sim { speed, .. } => *speed,
            Target::Aws(_) => SimSpeed::Times(1.0),
        }
    }
}

/// The regions a runbook's parameters name (`to`, `from` first), to find buckets
/// without depending on one region: the region the failover leaves may be down.
pub(super) fn region_hints(rb: &Runbook) -> Vec<String> {
    crate::actions::reach::param_regions(rb)
}

/// The breaker settings a runbook asks for (`[defaults]` `read_timeout`,
/// `probe_timeout`), drpilot's defaults otherwise.
pub fn reach_settings(rb: &Runbook) -> ReachSettings {
    let mut s = ReachSettings::default();
    if let Some(d) = rb.deadlines.read_timeout {
        s.read_timeout = d;
    }
    if let Some(d) = rb.deadlines.probe_timeout {
        s.probe_timeout = d;
    }
    s
}

/// Starts probing, all at once, every region and service the runbook calls (IAM and
/// STS too against AWS, for the permission check), with the runbook's deadlines: a
/// region that does not answer is known within the probe timeout, and the run reports
/// it (`region_status`) and stops waiting on it.
pub fn watch_regions(cloud: &crate::cloud::Cloud, rb: &Runbook, aws: bool) {
    cloud.reach.configure(reach_settings(rb));
    let mut targets = crate::actions::reach::probe_targets(rb);
    if aws {
        targets.push(ProbeTarget {
            region: "us-east-1".into(),
            service: Service::Iam,
            endpoint: None,
        });
        if let Some(r) = region_hints(rb).first() {
            targets.push(ProbeTarget {
                region: r.clone(),
                service: Service::Sts,
                endpoint: None,
            });
        }
    }
    cloud.reach.probe(targets);
}

/// Connects to AWS as the header says (credentials come from the environment and the
/// profile, never from the journal).
pub async fn connect_aws(aws: &AwsHeader, rb: &Runbook) -> AwsCloud {
    AwsCloud::connect(AwsOptions {
        profile: aws.profile.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        region_hints: region_hints(rb),
        reach: None,
    })
    .await
}

/// AWS behind every trait, with a set of clients per `[accounts]` entry (its role
/// assumed on first use).
pub async fn accounts_cloud(
    aws: &AwsCloud,
    rb: &Runbook,
) -> (crate::cloud::Cloud, BTreeMap<String, AwsCloud>) {
    let mut cloud = aws.cloud(Arc::new(LiveDataPlane::new()));
    let session = format!("drpilot-{}", rb.runbook.name);
    let mut clouds = BTreeMap::new();
    let mut by_name = BTreeMap::new();
    for (name, account) in &rb.accounts {
        let a = aws.for_account(account, &session).await;
        by_name.insert(name.clone(), a.cloud(Arc::new(LiveDataPlane::new())));
        clouds.insert(name.clone(), a);
    }
    cloud.accounts = Arc::new(by_name);
    (cloud, clouds)
}

/// The run's options; against AWS, with the IAM permission findings added to the
/// engine's preflight (the caller's identity and each account's).
pub async fn with_iam_preflight(
    config: &RunConfig,
    aws: Option<&(AwsCloud, BTreeMap<String, AwsCloud>)>,
    rb: &Runbook,
    state: &crate::journal::StateStore,
) -> RunConfig {
    let mut config = config.clone();
    if let Some((aws, accounts)) = aws {
        let state = super::store::state_iam_needs(rb, state);
        config.extra_preflight =
            crate::engine::preflight::iam_findings(aws, accounts, rb, &config.skip, &state, false)
                .await;
    }
    config
}

/// What a run's cloud calls go to, built for one clock.
pub struct Built {
    /// Every service, behind its trait.
    pub cloud: crate::cloud::Cloud,
    /// The simulated world (`--sim`), saved beside the journal after every event.
    pub world: Option<Arc<SimWorld>>,
    /// The simulated world's journal header.
    pub sim_header: Option<SimHeader>,
    /// The AWS connection's journal header (no credentials).
    pub aws_header: Option<AwsHeader>,
    /// The AWS clients, and one set per `[accounts]` entry (for the IAM check).
    pub aws: Option<(AwsCloud, BTreeMap<String, AwsCloud>)>,
}

impl Built {
    /// The same simulated world for the next runbook of a drill (its failback sees the
    /// state the failover left); `None` against AWS, where each runbook connects with
    /// its own region hints and accounts.
    pub fn same_world(&self) -> Option<Built> {
        let world = self.world.clone()?;
        Some(Built {
            cloud: world.cloud(),
            world: Some(world),
            sim_header: self.sim_header.clone(),
            aws_header: None,
            aws: None,
        })
    }
}

/// Builds the simulated world on `clock` (holding what `companions`, run later against
/// it, need too), or connects to AWS.
pub async fn build(
    target: &Target,
    rb: &Runbook,
    companions: &[&Runbook],
    clock: &Clock,
) -> Result<Built, AppError> {
    match target {
        Target::Sim {
            seed,
            speed,
            config,
            config_path,
        } => {
            let world = match SimWorld::from_runbooks(rb, companions, config, *seed, clock.clone())
            {
                Ok(w) => Arc::new(w),
                Err(e) => {
                    eprint!(
                        "{}",
                        e.render(runbook::RenderStyle::Fancy {
                            color: false,
                            width: 100
                        })
                    );
                    return Err(AppError::new(
                        exit::USAGE,
                        "the simulated world cannot be built from this runbook and --sim-config",
                    ));
                }
            };
            let header = SimHeader {
                seed: *seed,
                speed: match speed {
                    SimSpeed::Times(n) => Some(*n),
                    SimSpeed::Max => None,
                },
                config: config_path.clone(),
            };
            watch_regions(&world.cloud(), rb, false);
            Ok(Built {
                cloud: world.cloud(),
                world: Some(world),
                sim_header: Some(header),
                aws_header: None,
                aws: None,
            })
        }
        Target::Aws(h) => {
            let aws = connect_aws(h, rb).await;
            let (cloud, accounts) = accounts_cloud(&aws, rb).await;
            watch_regions(&cloud, rb, true);
            Ok(Built {
                cloud,
                world: None,
                sim_header: None,
                aws_header: Some(h.clone()),
                aws: Some((aws, accounts)),
            })
        }
    }
}
