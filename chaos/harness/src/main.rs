//! `drpilot-chaos`: the chaos harness (`chaos/run` builds and runs it).

use clap::Parser;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(drpilot_chaos::harness::main(
        drpilot_chaos::harness::Args::parse(),
    ))
}
