//! A command's input, checked before anything is created: the runbook (every problem
//! rendered with its span), `--approve` and `--skip-step` names against it, the
//! simulated world's config, and the new run's id.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use super::error::AppError;
use super::settings::Exec;
use crate::engine::{Approvals, RunId};
use crate::runbook::{self, Runbook, StepId};
use crate::sim::SimConfig;

/// Loads and checks a runbook with `--param` overrides; its exact text too (the
/// digest and the run's copy). Exit 2 with every problem rendered when it is invalid.
pub fn load_runbook(
    path: &Path,
    params: &BTreeMap<String, String>,
) -> Result<(runbook::Loaded, String), AppError> {
    let loaded = match runbook::load_with(path, params) {
        Ok(l) => l,
        Err(runbook::LoadError::Invalid(e)) => {
            let detail = e.render(runbook::RenderStyle::Fancy {
                color: std::io::stderr().is_terminal(),
                width: 100,
            });
            return Err(AppError::usage(e).with_detail(detail));
        }
        Err(e) => return Err(AppError::usage(e)),
    };
    // Re-read the exact bytes for the digest and the run's copy.
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::usage(format!("failed to read {}: {e}", path.display())))?;
    Ok((loaded, text))
}

/// Checks `--approve` names against the runbook: a typo must not silently leave a step
/// unapproved (or approve nothing).
pub fn approvals(exec: &Exec, rb: &Runbook) -> Result<Approvals, String> {
    let mut a = Approvals {
        all: exec.yes,
        ..Approvals::default()
    };
    for name in &exec.approve {
        match rb.steps.iter().find(|s| s.id.as_str() == name) {
            Some(s) if s.approval => {
                a.steps.insert(s.id.clone());
            }
            Some(_) => {
                return Err(format!(
                    "--approve {name}: step `{name}` does not need approval"
                ));
            }
            None => {
                let ids: Vec<&str> = rb
                    .steps
                    .iter()
                    .filter(|s| s.approval)
                    .map(|s| s.id.as_str())
                    .collect();
                return Err(format!(
                    "--approve {name}: no such step (approval steps: {})",
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids.join(", ")
                    }
                ));
            }
        }
    }
    Ok(a)
}

/// Checks `--skip-step` names against the runbook.
pub fn skips(names: &[String], rb: &Runbook) -> Result<std::collections::BTreeSet<StepId>, String> {
    let mut out = std::collections::BTreeSet::new();
    for name in names {
        match rb.steps.iter().find(|s| s.id.as_str() == name) {
            Some(s) => {
                out.insert(s.id.clone());
            }
            None => {
                let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.as_str()).collect();
                let hint = crate::runbook::diag::did_you_mean(name, ids.iter().copied())
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                return Err(format!("--skip-step {name}: no such step{hint}"));
            }
        }
    }
    Ok(out)
}

/// Reads `--sim-config`, rendering its problems.
pub fn load_sim_config(path: Option<&Path>) -> Result<SimConfig, AppError> {
    let Some(p) = path else {
        return Ok(SimConfig::default());
    };
    SimConfig::load(p).map_err(|e| {
        let detail = e.render(runbook::RenderStyle::Fancy {
            color: std::io::stderr().is_terminal(),
            width: 100,
        });
        AppError::usage("the --sim-config file is invalid; nothing was run").with_detail(detail)
    })
}

/// A new run's id: the runbook's name, the UTC time, and a salt against collisions.
pub fn new_run_id(runbook: &str) -> RunId {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    let salt =
        (u64::from(std::process::id()) << 20) ^ u64::from(now.subsec_nanosecond().unsigned_abs());
    RunId(format!("{runbook}-{stamp}-{:04x}", salt & 0xffff))
}

/// A seed for the simulated world when none is given (the run records it).
pub fn random_seed() -> u64 {
    let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
    // SplitMix64 finaliser: spreads the time's low bits over the whole seed.
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
