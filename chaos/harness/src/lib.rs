//! drpilot's test machinery, kept out of the product crate.
//!
//! The chaos suite: seeded scenarios (throttling, 5xx, latency, hung calls, region
//! blackholes, lost responses, kill -9 and resume, concurrent runs, operator choices)
//! run against the real `drpilot` binary in the simulated world or the AWS emulator, and
//! the invariants of DESIGN.md checked from the outside afterwards. `chaos/run` drives it; see
//! `chaos/README.md`.
//!
//! Also the fuzzers' checks ([`fuzzing`]): what must hold for any input to drpilot's
//! readers of untrusted bytes, shared by `fuzz/` and the corpus replay of `tests/it`.
#![warn(missing_docs)]

pub mod check;
pub mod emulator;
pub mod fuzzing;
pub mod generate;
pub mod harness;
pub mod scenario;

pub use scenario::{Blackhole, Choice, EmulatorSpec, OnFailure, Scenario, Target};
