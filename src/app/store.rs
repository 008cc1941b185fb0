//! Where a run's state lives: the store (a directory or S3 buckets), its lock, and
//! the preflight's warnings about where that is.

use super::error::AppError;
use super::target::region_hints;
use crate::engine;
use crate::exit;
use crate::journal::{Connection, LockError, StateStore};
use crate::runbook::Runbook;

/// The state store from `--state`/`DRPILOT_STATE` (else the runbook's `[state]`),
/// reached with the run's AWS profile and endpoint. Exit 2 on a bad location.
pub fn state_store(
    flags: &[String],
    rb: Option<&Runbook>,
    exec_profile: Option<&str>,
    exec_endpoint: Option<&str>,
) -> Result<StateStore, AppError> {
    let from_runbook: Vec<String> = rb
        .and_then(|rb| rb.state.as_ref())
        .map(|s| s.stores.clone())
        .unwrap_or_default();
    let conn = Connection {
        profile: exec_profile.map(str::to_string),
        endpoint_url: exec_endpoint.map(str::to_string),
        region_hints: rb.map(region_hints).unwrap_or_default(),
    };
    StateStore::resolve(flags, &from_runbook, &conn).map_err(AppError::usage)
}

/// What the run's S3 state store needs of IAM (nothing for a directory), in the
/// account of the runbook's `params.account`, for the preflight's permission check.
pub fn state_iam_needs(
    rb: &Runbook,
    state: &StateStore,
) -> std::collections::BTreeSet<crate::runbook::iam::Need> {
    let StateStore::S3(s3) = state else {
        return Default::default();
    };
    let account = rb.params.get("account").map(String::as_str).unwrap_or("*");
    crate::runbook::iam::state_needs(s3.stores(), &crate::runbook::iam::partition(rb), account)
}

/// Preflight warnings about where the run's own state lives: the journal and lock
/// must not live only in the region the runbook fails away from (`params.from`), or
/// the outage that starts the failover also takes the run's record and lock.
pub fn state_findings(rb: &Runbook, state: &StateStore) -> Vec<engine::events::StepFinding> {
    let StateStore::S3(s3) = state else {
        return Vec::new();
    };
    let Some(first) = rb.steps.first().map(|s| s.id.clone()) else {
        return Vec::new();
    };
    let warn = |message: String| engine::events::StepFinding {
        step: first.clone(),
        finding: crate::actions::Finding::warn(message),
    };
    let mut out = Vec::new();
    let mut regions = Vec::new();
    for (bucket, region) in s3.bucket_regions() {
        match region {
            Ok(r) => regions.push((bucket, r)),
            Err(e) => out.push(warn(format!(
                "the region of state bucket {bucket} is unknown ({e})"
            ))),
        }
    }
    if let Some(from) = rb.params.get("from")
        && !regions.is_empty()
        && out.is_empty()
        && regions.iter().all(|(_, r)| r == from)
    {
        let names: Vec<String> = regions.iter().map(|(b, _)| format!("s3://{b}")).collect();
        out.push(warn(format!(
            "the run's state ({}) is only in {from}, the region this runbook fails away from; add a state bucket in another region (repeat --state, or [state] stores)",
            names.join(", ")
        )));
    }
    out
}

/// A lock that could not be taken: exit 6 when another run holds it (with how to take
/// over a stale one), exit 2 when the store failed.
pub fn lock_error(e: LockError, run_hint: &str) -> AppError {
    match &e {
        LockError::Held {
            stale: true,
            holder,
            ..
        } => AppError::new(exit::LOCK_HELD, &e).with_help(format!(
            "resume it with `drpilot resume {}`, or {run_hint} with --break-stale-lock",
            holder.run_id
        )),
        LockError::Held { .. } => AppError::new(exit::LOCK_HELD, e),
        LockError::Io { .. } | LockError::Remote { .. } => AppError::usage(e),
    }
}
