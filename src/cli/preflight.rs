//! `drpilot preflight` and `drpilot iam-policy`.
//!
//! The preflight is the engine's own (the same checks `drpilot run` makes before
//! changing anything), plus, against AWS, whether IAM lets the caller do what the
//! runbook needs. It never changes anything.

use std::collections::BTreeMap;
use std::path::Path;

use super::args::{Output, PreflightArgs};
use super::exit;
use crate::app::input::load_runbook;
use crate::report::preflight::{regions_table, table};
use crate::runbook::iam;

/// `drpilot preflight FILE`.
pub fn preflight(args: PreflightArgs) -> u8 {
    let req = args.check.request(args.file);
    let r = match crate::app::preflight::preflight(&req) {
        Ok(r) => r,
        Err(e) => return e.report(),
    };
    let ok = r.ok();
    let text = match args.output {
        Output::Json => format!(
            "{}\n",
            serde_json::json!({
                "runbook": r.runbook.runbook.name,
                "mode": r.runbook.runbook.mode,
                "ok": ok,
                "lock": r.lock,
                "findings": r.findings,
                "regions": r.regions,
            })
        ),
        Output::Human => {
            let mut t = table(&r.runbook, &r.findings, ok);
            let regions = regions_table(&r.regions);
            if !regions.is_empty() {
                t.push_str(&format!("\nregions\n{regions}"));
            }
            if let Some(l) = &r.lock {
                t.push_str(&format!("blocking: {l}\n"));
            }
            t
        }
    };
    let code = super::print_stdout(&text);
    if code != exit::SUCCESS {
        return code;
    }
    if ok {
        exit::SUCCESS
    } else {
        exit::PREFLIGHT_FAILED
    }
}

/// `drpilot iam-policy FILE`.
pub fn iam_policy(file: &Path, params: Vec<(String, String)>, state: &[String]) -> u8 {
    let params: BTreeMap<String, String> = params.into_iter().collect();
    let (loaded, _text) = match load_runbook(file, &params) {
        Ok(x) => x,
        Err(e) => return e.report(),
    };
    let rb = &loaded.runbook;
    let mut needs = iam::needs(rb);
    needs.extend(iam::check_needs(rb));
    // The state store as a run picks it (the flag or DRPILOT_STATE, else the runbook's
    // `[state] stores`), with the same errors. Directories need no IAM.
    let from_runbook = rb
        .state
        .as_ref()
        .map(|s| s.stores.clone())
        .unwrap_or_default();
    let stores = match crate::journal::StateStore::locations(state, &from_runbook) {
        Ok(crate::journal::Locations::S3(stores)) => stores,
        Ok(crate::journal::Locations::Dir(_)) => Vec::new(),
        Err(e) => return crate::app::error::AppError::usage(e).report(),
    };
    let account = rb.params.get("account").map(String::as_str).unwrap_or("*");
    needs.extend(iam::state_needs(&stores, &iam::partition(rb), account));
    let policies = iam::policies(&needs);
    // One account: the policy document itself, ready for `aws iam put-role-policy`.
    // Several: an object keyed by account.
    let doc = if policies.len() == 1 {
        policies.into_values().next().unwrap_or_default()
    } else {
        serde_json::to_value(&policies).unwrap_or_default()
    };
    super::print_stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    ))
}
