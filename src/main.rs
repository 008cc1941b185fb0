use std::process::ExitCode;

fn main() -> ExitCode {
    drpilot::cli::main()
}
