//! `drpilot preflight`, composed: the runbook and `--skip-step` checked, the state
//! store read for a live lock holder, the target built (the simulated world or AWS,
//! with its probes), every step's read-only checks run, IAM asked (against AWS), and
//! the runbook-wide warnings added. It changes nothing; the CLI prints the result.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::AppError;
use super::input::{load_runbook, load_sim_config, random_seed, skips};
use super::store::{state_findings, state_store};
use super::target::{accounts_cloud, connect_aws, watch_regions};
use crate::clock::Clock;
use crate::cloud::reach::RegionStatus;
use crate::engine::events::StepFinding;
use crate::engine::preflight;
use crate::journal::AwsHeader;
use crate::runbook::{self, Runbook};
use crate::sim::SimWorld;

/// What `drpilot preflight` asks for.
#[derive(Clone, Debug, Default)]
pub struct PreflightRequest {
    /// The runbook file.
    pub file: PathBuf,
    /// `--param` overrides.
    pub params: Vec<(String, String)>,
    /// Steps not checked.
    pub skip_step: Vec<String>,
    /// `--state` locations.
    pub state: Vec<String>,
    /// AWS profile.
    pub profile: Option<String>,
    /// Send every AWS call here (an emulator).
    pub endpoint_url: Option<String>,
    /// Against the simulated world instead of AWS.
    pub sim: bool,
    /// The simulated world's config file.
    pub sim_config: Option<PathBuf>,
    /// The simulated world's seed.
    pub seed: Option<u64>,
}

/// What the preflight found.
#[derive(Debug)]
pub struct Readiness {
    /// The checked runbook.
    pub runbook: Runbook,
    /// Every finding, in step order, then the runbook-wide ones.
    pub findings: Vec<StepFinding>,
    /// What the probes found of each region and service the runbook calls.
    pub regions: Vec<RegionStatus>,
    /// A live run holds the runbook's lock: a run now would be refused (exit 6).
    pub lock: Option<String>,
    /// What the checks went through (the breaker's verdicts stay in it), for more
    /// calls of the same round (`drpilot readiness --cloudwatch`).
    pub cloud: crate::cloud::Cloud,
    /// The simulated world checked (`--sim`).
    pub world: Option<std::sync::Arc<SimWorld>>,
    /// The state store read.
    pub state: crate::journal::StateStore,
}

impl Readiness {
    /// Whether a run could start now: no blocking finding, no live lock holder.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.finding.allows()) && self.lock.is_none()
    }
}

/// Runs the read-only preflight of one runbook.
pub fn preflight(req: &PreflightRequest) -> Result<Readiness, AppError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::usage(format!("failed to start the runtime: {e}")))?;
    rt.block_on(check(req))
}

/// [`preflight`] on the caller's runtime (`drpilot readiness` runs one per runbook and
/// round on its own).
pub async fn check(req: &PreflightRequest) -> Result<Readiness, AppError> {
    let params: BTreeMap<String, String> = req.params.iter().cloned().collect();
    let (loaded, _text) = load_runbook(&req.file, &params)?;
    let rb = loaded.runbook;
    let skip = skips(&req.skip_step, &rb).map_err(AppError::usage)?;
    let state = state_store(
        &req.state,
        Some(&rb),
        req.profile.as_deref(),
        req.endpoint_url.as_deref(),
    )?;
    // A live holder of the runbook's lock means a run would be refused (exit 6).
    let lock = state
        .holder(&rb.runbook.name)
        .ok()
        .flatten()
        .filter(|(_, stale)| !stale)
        .map(|(h, _)| {
            format!(
                "the runbook's lock is held by run {} (pid {} on {}): a run now would be refused",
                h.run_id, h.pid, h.host
            )
        });
    let sim_config = if req.sim {
        Some(load_sim_config(req.sim_config.as_deref())?)
    } else {
        None
    };
    let mut state_warnings = state_findings(&rb, &state);
    // The runbook's `[notify]` variables, as a run would read them here; a bad
    // `DRPILOT_NOTIFY` is the usage error a run would stop at.
    state_warnings.extend(super::notify::Notify::resolve(&[], &rb)?.findings(&rb));
    let clock = Clock::with_speed(1.0);
    let mut findings;
    let regions;
    let cloud;
    let mut world = None;
    match sim_config {
        Some(config) => {
            let seed = req.seed.unwrap_or_else(random_seed);
            let w = SimWorld::from_runbook(&rb, &config, seed, clock.clone()).map_err(|e| {
                let detail = e.render(runbook::RenderStyle::Fancy {
                    color: false,
                    width: 100,
                });
                AppError::usage(
                    "the simulated world cannot be built from this runbook and --sim-config",
                )
                .with_detail(detail)
            })?;
            cloud = w.cloud();
            world = Some(std::sync::Arc::new(w));
            watch_regions(&cloud, &rb, false);
            findings = preflight::steps(
                &rb,
                &cloud,
                &clock,
                &skip,
                crate::engine::DEFAULT_MAX_PARALLEL,
            )
            .await;
            regions = cloud.reach.verdicts().await;
        }
        None => {
            let aws = connect_aws(
                &AwsHeader {
                    profile: req.profile.clone(),
                    endpoint_url: req.endpoint_url.clone(),
                },
                &rb,
            )
            .await;
            let (c, accounts) = accounts_cloud(&aws, &rb).await;
            cloud = c;
            watch_regions(&cloud, &rb, true);
            findings = preflight::steps(
                &rb,
                &cloud,
                &clock,
                &skip,
                crate::engine::DEFAULT_MAX_PARALLEL,
            )
            .await;
            let state_needs = super::store::state_iam_needs(&rb, &state);
            findings.extend(
                preflight::iam_findings(&aws, &accounts, &rb, &skip, &state_needs, true).await,
            );
            regions = cloud.reach.verdicts().await;
        }
    }
    findings.extend(preflight::control_plane_warnings(&rb));
    findings.extend(state_warnings);
    Ok(Readiness {
        runbook: rb,
        findings,
        regions,
        lock,
        cloud,
        world,
        state,
    })
}
