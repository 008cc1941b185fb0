//! `drpilot report RUN_ID [--format md|html|junit|json]`.
//!
//! Reads the run's journal and its runbook copy, and nothing else: not the environment,
//! not the cloud, not the runbook file as it is now (it may have changed since). A run
//! that cannot be found or whose journal cannot be read is a usage error (exit 2) and
//! nothing is written on stdout; a runbook copy that does not parse only costs the
//! objectives and action names, and the report says so.

use super::args::ReportArgs;
use super::exit;
use super::run::fail;
use crate::engine::RunId;
use crate::report::{load, render};

/// `drpilot report`.
pub fn report(args: ReportArgs) -> u8 {
    let state = match crate::app::store::state_store(
        &args.state.state,
        None,
        args.aws.profile.as_deref(),
        args.aws.endpoint_url.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => return e.report(),
    };
    match load(&state, &RunId(args.run_id)) {
        Ok(report) => super::print_stdout(&render(&report, args.format)),
        Err(why) => fail(exit::USAGE, why),
    }
}
