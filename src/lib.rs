//! drpilot: a disaster-recovery failover orchestrator.
//!
//! Data flows one way: a runbook file becomes a [`runbook::Runbook`] (syntax and
//! semantics checked together, every problem reported), then a [`plan::Plan`] (the
//! dependency graph with levels, critical path and rollback order). Nothing touches a
//! cloud before both exist.
//!
//! Modules are layered and import down only (docs/architecture.md, checked by
//! `tests/it/layers.rs`): leaves (`clock`, `exit`, `names`, `heartbeat`), `runbook`,
//! `plan` and `cloud`, `sim` and `actions`, `engine`, `journal`, `report` and `notify`, `app`, `cli`. The test
//! machinery (the chaos harness, the fuzzers' checks) is another crate, `chaos/harness`.
#![warn(missing_docs)]

pub mod actions;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod engine;
pub mod exit;
pub mod heartbeat;
pub mod journal;
pub mod names;
pub mod notify;
pub mod plan;
pub mod report;
pub mod runbook;
pub mod sim;
