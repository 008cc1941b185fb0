//! `drpilot-chaos`: the chaos harness (`chaos/run` builds and runs it).

use clap::Parser;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(drpilot::chaos::harness::main(
        drpilot::chaos::harness::Args::parse(),
    ))
}
