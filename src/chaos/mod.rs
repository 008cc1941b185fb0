//! The chaos suite: seeded scenarios (throttling, 5xx, latency, hung calls, region
//! blackholes, lost responses, kill -9 and resume, concurrent runs, operator choices)
//! run against the real `drpilot` binary in the simulated world or the AWS emulator, and
//! the invariants of DESIGN.md checked from the outside afterwards. `chaos/run` drives it; see
//! `chaos/README.md`.

pub mod check;
pub mod emulator;
pub mod generate;
pub mod harness;
pub mod scenario;

pub use scenario::{Blackhole, Choice, EmulatorSpec, OnFailure, Scenario, Target};
