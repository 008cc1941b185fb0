//! The application: settings in, a composed run out.
//!
//! The CLI parses flags and prints; this layer turns what a command asks for into a
//! target (the simulated world or AWS), a state store and its lock, the sinks of the
//! event stream, and an engine run, the same way for `run`, `resume` and each phase
//! of `drill`. Failures carry their exit code as a type ([`AppError`]).

pub mod approvals;
pub mod drill;
pub mod error;
pub mod execute;
pub mod guided;
pub mod input;
pub mod notify;
pub mod preflight;
pub mod readiness;
pub mod run;
pub mod serve;
pub mod settings;
pub mod sinks;
pub mod store;
pub mod target;
pub mod window;

pub use error::AppError;
pub use notify::{NOTIFY_ENV, Notify};
pub use settings::{Exec, Output, SimSpeed, Ui};
