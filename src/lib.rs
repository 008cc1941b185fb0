//! drpilot: a disaster-recovery failover orchestrator.
//!
//! Data flows one way: a runbook file becomes a [`runbook::Runbook`] (syntax and
//! semantics checked together, every problem reported), then a [`plan::Plan`] (the
//! dependency graph with levels, critical path and rollback order). Nothing touches a
//! cloud before both exist.
#![warn(missing_docs)]

pub mod actions;
pub mod chaos;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod engine;
pub mod fuzzing;
pub mod heartbeat;
pub mod journal;
pub mod plan;
pub mod report;
pub mod runbook;
pub mod sim;
