//! Reporters: sinks of the event stream. They never read engine state.
//!
//! [`ndjson`] prints one JSON event per line on stdout (`--output json`); [`human`]
//! prints a line per transition on stderr. The rich live terminal view and the drill
//! reports come later and consume the same events.

pub mod human;
pub mod ndjson;
