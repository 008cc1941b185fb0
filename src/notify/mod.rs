//! Notifications: a sink of the event stream that tells people what a run does, off
//! the engine's path.
//!
//! A receiver is named by a URL (`--notify`, `DRPILOT_NOTIFY`, or an environment
//! variable the runbook's `[notify] urls_env` names): `http(s)://` a JSON webhook,
//! `slack+https://` a Slack incoming webhook, `sns:arn:aws:sns:...` an SNS topic
//! ([`Receiver`]). Only the events a person acts on are sent ([`compose`]), each to
//! every receiver, in the run's order per receiver. Delivery runs on a thread of its
//! own with its own runtime ([`Notifier`]): a bounded queue per receiver, a deadline
//! and a few attempts per notification, so a slow or dead receiver costs the run
//! nothing, and on a virtual clock (`--sim-speed max`) a deadline is still real time.
//! What came of each delivery returns as an event (`notification_sent`,
//! `notification_failed`) naming the receiver without its URL, which is a secret.

mod deliver;
mod message;
mod receiver;

pub use deliver::{ATTEMPT_TIMEOUT, ATTEMPTS, Notifier, QUEUE};
pub use message::{Context, Notice, RETRIED_NOTICE_AFTER, compose, retried_notice_at};
pub use receiver::{Receiver, split_list};
