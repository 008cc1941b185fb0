//! Integration tests, in one binary so they share one link step.

mod approvals;
mod browser;
mod chaos;
mod cli;
mod dataplane;
mod dataplane_cluster;
mod drill;
mod emulator;
mod emulator_valkey;
mod engine;
mod events;
mod guided;
mod lab;
mod layers;
mod least_privilege;
mod local_servers;
mod notify;
mod plan;
mod properties;
mod readiness;
mod report;
mod run_cli;
mod schema;
mod secrets;
mod serve;
mod state_s3;
mod validate_corpus;

use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;

/// Runs the built `drpilot` without colours and with a fixed terminal width.
pub fn drpilot(args: &[&str]) -> Output {
    cargo_bin_cmd!("drpilot")
        .args(["--color", "never"])
        .args(args)
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .output()
        .expect("drpilot runs")
}

/// Output as text; drpilot only writes UTF-8.
pub fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("drpilot writes UTF-8")
}

/// The shipped runbooks, sorted.
pub fn shipped() -> Vec<std::path::PathBuf> {
    let files = validate_corpus::corpus("runbooks");
    assert!(files.len() >= 3, "{files:?}");
    files
}
