//! Events: the only contract between the engine and everything that reports on it.
//!
//! The terminal view, `--output json`, the journal and (later) drill reports are sinks
//! of this stream and never read engine state. The JSON form of an [`Event`] is a
//! documented, versioned schema (`docs/events.md`): every event has `"event"`,
//! `"run_id"` and `"at"` (RFC 3339 on the run's clock); step events add `"step"`.
//! Fields are only ever added within an [`EVENT_VERSION`].

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::actions::{Captured, Executed, Finding};
use crate::runbook::StepId;

/// Version of the event schema, carried by `run_started`.
pub const EVENT_VERSION: u32 = 1;

/// Where the published schema of an event line is: the `$id` of [`event_schema`],
/// versioned with [`EVENT_VERSION`] so a consumer can tell which contract it validates.
pub fn event_schema_id() -> String {
    format!("urn:drpilot:events:v{EVENT_VERSION}")
}

/// The JSON Schema (draft 2020-12) of one event line, as `--output json` prints it and
/// the journal stores it (`drpilot schema --events`, `docs/events.schema.json`).
///
/// Derived from the Rust types with the serializer's view (a field skipped when empty
/// is not required), so it cannot disagree with what drpilot emits. On top of the
/// derived `oneOf` (one branch per event) the root repeats what every event has — the
/// `event` name among the known ones, `run_id` and `at` — so a consumer reading only
/// the root still sees the common contract.
pub fn event_schema() -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let derived = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Event>()
        .to_value();
    let Value::Object(mut derived) = derived else {
        unreachable!("a struct's schema is an object")
    };
    let names: Vec<Value> = derived
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|branch| branch.pointer("/properties/event/const").cloned())
        .collect();
    let mut root = Map::new();
    for key in ["$schema"] {
        if let Some(v) = derived.remove(key) {
            root.insert(key.into(), v);
        }
    }
    root.insert("$id".into(), json!(event_schema_id()));
    root.insert("title".into(), json!("drpilot event"));
    root.insert(
        "description".into(),
        json!(format!(
            "One line of `drpilot run --output json` and of a run's journal (event version {EVENT_VERSION}; see docs/events.md). \
             Within a version fields are only added: consumers must ignore fields they do not know."
        )),
    );
    derived.remove("title");
    derived.remove("description");
    for (k, v) in derived {
        match (k.as_str(), v) {
            ("properties", Value::Object(props)) => {
                let mut all = Map::new();
                all.insert(
                    "event".into(),
                    json!({"description": "The event's name; the fields that follow depend on it.", "enum": names}),
                );
                all.extend(props);
                root.insert(k, Value::Object(all));
            }
            ("required", Value::Array(req)) => {
                let mut all = vec![json!("event")];
                all.extend(req.into_iter().filter(|r| r != "event"));
                root.insert(k, Value::Array(all));
            }
            (_, v) => {
                root.insert(k, v);
            }
        }
    }
    Value::Object(root)
}

fn timestamp_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}

/// A run's id: `<runbook>-<UTC time>-<4 hex>`, unique per state store.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One person's approval or denial of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Approver {
    /// Who (`--as NAME`, else the OS user): two approvals by one name count once.
    pub name: String,
    /// How it was given: `operator` (the run's prompt), `flag` (--approve), `yes`
    /// (--yes) or `store` (`drpilot approve` / `deny`, from any machine).
    pub via: String,
    /// The OS user of the process that gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// Its host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The AWS caller identity (an ARN) it had, when the state store is S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_identity: Option<String>,
    /// When (UTC).
    #[schemars(with = "String")]
    pub at: jiff::Timestamp,
}

impl Approver {
    /// The key two approvals are told apart by: the name, case-insensitively.
    pub fn person(&self) -> String {
        self.name.trim().to_lowercase()
    }
}

fn one() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// How a run ended. Ordered by severity so the worst of several can be taken.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded (or was skipped by the operator).
    Succeeded,
    /// A step failed and every change was rolled back: all resources at their original state.
    RolledBack,
    /// Preflight found a problem; nothing changed.
    PreflightFailed,
    /// Stopped by the operator, resumable.
    Aborted,
    /// Paused after a failure, awaiting `drpilot resume RUN_ID --retry|--skip|--rollback|--abort`.
    Paused,
    /// A failure left resources changed: rollback failed, was incomplete, or not possible.
    NeedsAttention,
}

impl Outcome {
    /// The documented exit code (README, `cli::exit`).
    pub fn exit_code(self) -> u8 {
        use crate::exit;
        match self {
            Outcome::Succeeded => exit::SUCCESS,
            Outcome::RolledBack => exit::ROLLED_BACK,
            Outcome::PreflightFailed => exit::PREFLIGHT_FAILED,
            Outcome::Aborted => exit::ABORTED,
            Outcome::Paused | Outcome::NeedsAttention => exit::NEEDS_PERSON,
        }
    }
}

/// One preflight finding, attributed to its step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepFinding {
    /// The step checked.
    pub step: StepId,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// What happened. Serialized with the tag `"event"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run (or a resumption of it) started.
    RunStarted {
        /// Schema version of the events.
        event_version: u32,
        /// The runbook's name.
        runbook: String,
        /// The runbook's mode: `planned` (switchover, no data loss) or `unplanned`.
        mode: crate::runbook::Mode,
        /// Against the simulated world.
        sim: bool,
        /// The world's seed (sim only), to replay the same run.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        seed: Option<u64>,
        /// A resumption of an earlier process's run.
        resumed: bool,
    },
    /// The plan the run follows.
    Plan {
        /// Step ids by level: the steps of a level depend only on earlier levels.
        levels: Vec<Vec<StepId>>,
        /// The longest chain of expected durations, first step first: what bounds the RTO.
        critical_path: Vec<StepId>,
        /// Predicted RTO in seconds (the critical path's expected duration).
        predicted_rto_secs: f64,
    },
    /// What is known of one service in one region changed: its probe at the run's
    /// start answered (or did not), a call found it silent, or a half-open probe found
    /// it back. While it is `unreachable` every call to it is refused at once.
    RegionStatus {
        /// The region.
        region: String,
        /// The service, by its signing name (`rds`, `elasticache`, `s3`, `monitoring`,
        /// `route53`, `route53-recovery-cluster`, `iam`, `sts`, `ecs`, `autoscaling`).
        service: String,
        /// `reachable`, `slow` (answers, but slower than 2 s) or `unreachable`.
        status: crate::cloud::reach::Reachability,
        /// How long the answer that decided it took, milliseconds; absent when nothing
        /// answered.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "u64")]
        latency_ms: Option<u64>,
        /// How it was decided, for people: which probe or call, and what it saw.
        decided_by: String,
    },
    /// Readiness checks before anything changes.
    Preflight {
        /// Whether the run may go ahead: no finding blocks it.
        ok: bool,
        /// Every finding, blocking (`ok: false`) or not.
        findings: Vec<StepFinding>,
    },
    /// A step is waiting for an operator's approval.
    ApprovalNeeded {
        /// The step.
        step: StepId,
        /// What the approver agrees to (the step's description).
        message: String,
        /// How many distinct people must approve (absent: 1).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        approvers: u32,
        /// What approving now may lose, read when the approval was asked for: Aurora
        /// lag, S3 backlog, Valkey replication (absent for an approval that unlocks no
        /// promotion that may lose data).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_risk: Option<crate::actions::at_risk::AtRisk>,
        /// The command that approves it from any machine with access to the run's
        /// state store (`drpilot approve RUN_ID STEP [--state ...]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approve_with: Option<String>,
    },
    /// A step was approved.
    Approved {
        /// The step.
        step: StepId,
        /// How the run's own operator approved: `flag` (--approve), `yes` (--yes) or
        /// `operator` (a prompt); `store` when only others did (`drpilot approve`).
        by: String,
        /// Everyone who approved, each counted once (absent in journals written
        /// before approvals could come from elsewhere).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<Approver>,
    },
    /// Someone refused a step (`drpilot deny`): it fails.
    ApprovalDenied {
        /// The step.
        step: StepId,
        /// Who.
        by: Approver,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An attempt of a step started.
    StepStarted {
        /// The step.
        step: StepId,
        /// 1-based attempt number.
        attempt: u32,
    },
    /// The state a step's rollback would restore, recorded before any change.
    Captured {
        /// The step.
        step: StepId,
        /// The captured state.
        captured: Captured,
    },
    /// The step's action ran: what it did, and what later calls need.
    Executed {
        /// The step.
        step: StepId,
        /// Its result.
        executed: Executed,
    },
    /// An attempt failed.
    AttemptFailed {
        /// The step.
        step: StepId,
        /// Which attempt.
        attempt: u32,
        /// Why the attempt failed, for people.
        error: String,
        /// Whether another attempt follows (after `retry_in_secs`).
        will_retry: bool,
        /// Delay before the next attempt, seconds; absent when no attempt follows.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "f64")]
        retry_in_secs: Option<f64>,
    },
    /// One poll of the action's completion (`check` is `verify`) or of the step's gate.
    GateObserved {
        /// The step.
        step: StepId,
        /// The check's name, or `verify` for the action's own completion.
        check: String,
        /// Whether it holds.
        passed: bool,
        /// What was seen, for people ("writer in us-west-2").
        observed: String,
    },
    /// A step finished successfully.
    StepSucceeded {
        /// The step.
        step: StepId,
        /// What it did, in one line.
        summary: String,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step: StepId,
        /// Why, for people: the last attempt's error or the reason no attempt was made.
        error: String,
    },
    /// A step was skipped: by the operator after a failure, or by `--skip-step`.
    StepSkipped {
        /// The step.
        step: StepId,
        /// Why it was skipped (`--skip-step`, `resume --skip`).
        reason: String,
    },
    /// A step was left for later: a region it needs is unreachable and the run's
    /// recovery does not depend on it (`on_unreachable = "defer"`). The run ends without
    /// it; `drpilot resume RUN_ID` runs it (and the steps after it) once the region is
    /// back.
    StepDeferred {
        /// The step.
        step: StepId,
        /// Why: the region and what the breaker knows of it, or the deferred step it
        /// runs after.
        reason: String,
    },
    /// Rolling back started.
    RollbackStarted {
        /// Steps to roll back, in the order they will be (reverse dependency order).
        steps: Vec<StepId>,
    },
    /// A step was rolled back.
    StepRolledBack {
        /// The step.
        step: StepId,
        /// What the rollback did, in one line.
        summary: String,
    },
    /// A step's rollback failed (reported, and the rollback carries on).
    RollbackFailed {
        /// The step.
        step: StepId,
        /// Why, including "no rollback defined" for a changed step without one.
        error: String,
    },
    /// Rolling back ended.
    RollbackFinished {
        /// Whether every resource is back at its original state.
        clean: bool,
        /// Steps whose changes remain (no rollback defined, or it failed).
        left_changed: Vec<StepId>,
    },
    /// A notification reached its receiver (`--notify`, `DRPILOT_NOTIFY`, the runbook's
    /// `[notify]`). Delivered off the run's path: recorded with the run's next event, or
    /// after `run_finished` for the last ones.
    NotificationSent {
        /// The receiver, never its URL (a webhook URL is a secret): `webhook HOST`,
        /// `slack HOST` or `sns TOPIC_ARN`.
        receiver: String,
        /// The event the notification was about (`run_started`, `approval_needed`, ...).
        about: String,
        /// Attempts it took (1-based).
        attempts: u32,
    },
    /// A notification did not reach its receiver: every attempt failed, it was dropped
    /// because the receiver's queue was full, or it was still pending when the run
    /// ended and the wait for it ran out. The run is not affected.
    NotificationFailed {
        /// The receiver, never its URL (see `notification_sent`).
        receiver: String,
        /// The event the notification was about.
        about: String,
        /// Why, for people, with the receiver's URL left out.
        error: String,
        /// Attempts made (0 when none was).
        attempts: u32,
    },
    /// The run ended (this process's part of it, for paused and aborted runs).
    RunFinished {
        /// How the run ended.
        outcome: Outcome,
        /// The exit code drpilot returns: follows from `outcome` (docs/events.md).
        exit_code: u8,
        /// Time on the run's clock from start to end, seconds (virtual in a `--sim-speed max` run).
        makespan_secs: f64,
        /// Measured RTO (until the last verification passed), seconds; successful runs only.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "f64")]
        rto_secs: Option<f64>,
        /// Measured RPO, seconds, when a data-loss window is known.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "f64")]
        rpo_secs: Option<f64>,
        /// Why the run did not succeed, in words: the failure that stopped it, preflight,
        /// the operator's choice. Absent on success.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        #[schemars(with = "String")]
        reason: Option<String>,
        /// Steps left for later because a region they need is unreachable (see
        /// `step_deferred`): the run succeeded without them and `drpilot resume RUN_ID`
        /// runs them. Absent when none.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        deferred: Vec<StepId>,
    },
}

impl EventKind {
    /// The event's name, as serialized in `"event"`: for logs and metrics that key on
    /// it without serializing the whole event.
    pub fn name(&self) -> &'static str {
        use EventKind::*;
        match self {
            RunStarted { .. } => "run_started",
            Plan { .. } => "plan",
            Preflight { .. } => "preflight",
            ApprovalNeeded { .. } => "approval_needed",
            Approved { .. } => "approved",
            ApprovalDenied { .. } => "approval_denied",
            StepStarted { .. } => "step_started",
            Captured { .. } => "captured",
            Executed { .. } => "executed",
            AttemptFailed { .. } => "attempt_failed",
            GateObserved { .. } => "gate_observed",
            StepSucceeded { .. } => "step_succeeded",
            StepFailed { .. } => "step_failed",
            StepSkipped { .. } => "step_skipped",
            RegionStatus { .. } => "region_status",
            StepDeferred { .. } => "step_deferred",
            RollbackStarted { .. } => "rollback_started",
            StepRolledBack { .. } => "step_rolled_back",
            RollbackFailed { .. } => "rollback_failed",
            RollbackFinished { .. } => "rollback_finished",
            NotificationSent { .. } => "notification_sent",
            NotificationFailed { .. } => "notification_failed",
            RunFinished { .. } => "run_finished",
        }
    }

    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&StepId> {
        use EventKind::*;
        match self {
            ApprovalNeeded { step, .. }
            | Approved { step, .. }
            | ApprovalDenied { step, .. }
            | StepStarted { step, .. }
            | Captured { step, .. }
            | Executed { step, .. }
            | AttemptFailed { step, .. }
            | GateObserved { step, .. }
            | StepSucceeded { step, .. }
            | StepFailed { step, .. }
            | StepSkipped { step, .. }
            | StepDeferred { step, .. }
            | StepRolledBack { step, .. }
            | RollbackFailed { step, .. } => Some(step),
            _ => None,
        }
    }
}

/// What a run's journal measured of each step: the time from its first start to its
/// success within one process (a pause and a resume in between would count the pause
/// as work, so a step cut by a new process restarts its clock; one that failed or was
/// skipped gives nothing). The samples `plan::history` predicts from.
pub fn step_durations(events: &[Event]) -> Vec<(StepId, std::time::Duration)> {
    let mut started: std::collections::HashMap<&StepId, jiff::Timestamp> = Default::default();
    let mut out = Vec::new();
    for e in events {
        match &e.kind {
            // A new process: what was in flight was interrupted, not working.
            EventKind::RunStarted { .. } => started.clear(),
            EventKind::StepStarted { step, .. } => {
                started.entry(step).or_insert(e.at);
            }
            EventKind::StepSucceeded { step, .. } => {
                if let Some(at) = started.remove(step)
                    && let Ok(d) = std::time::Duration::try_from(e.at.duration_since(at))
                {
                    out.push((step.clone(), d));
                }
            }
            EventKind::StepFailed { step, .. } | EventKind::StepSkipped { step, .. } => {
                started.remove(step);
            }
            _ => {}
        }
    }
    out
}

/// An event with its run and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// The run.
    pub run_id: RunId,
    /// When, on the run's clock (RFC 3339, UTC).
    #[schemars(schema_with = "timestamp_schema")]
    pub at: jiff::Timestamp,
    /// What happened; flattened, so `event` and its fields sit beside `run_id` and `at`.
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_process_does_not_count_the_pause_as_work() {
        let ev = |secs: i64, kind: EventKind| Event {
            run_id: RunId("r".into()),
            at: jiff::Timestamp::from_second(1_000 + secs).unwrap(),
            kind,
        };
        let started = |resumed| EventKind::RunStarted {
            event_version: 1,
            runbook: "t".into(),
            mode: crate::runbook::Mode::Unplanned,
            sim: true,
            seed: None,
            resumed,
        };
        let step = |s: &str| StepId::new(s);
        let samples = step_durations(&[
            ev(0, started(false)),
            ev(
                0,
                EventKind::StepStarted {
                    step: step("change"),
                    attempt: 1,
                },
            ),
            ev(
                0,
                EventKind::StepStarted {
                    step: step("refused"),
                    attempt: 1,
                },
            ),
            ev(
                5,
                EventKind::StepFailed {
                    step: step("refused"),
                    error: "no".into(),
                },
            ),
            ev(5000, started(true)),
            ev(
                5000,
                EventKind::StepStarted {
                    step: step("change"),
                    attempt: 1,
                },
            ),
            ev(
                5060,
                EventKind::StepSucceeded {
                    step: step("change"),
                    summary: String::new(),
                },
            ),
        ]);
        assert_eq!(
            samples,
            [(step("change"), std::time::Duration::from_secs(60))]
        );
    }

    #[test]
    fn json_shape_has_event_run_id_at_and_step() {
        let e = Event {
            run_id: RunId("rb-1".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind: EventKind::StepStarted {
                step: StepId::new("a"),
                attempt: 1,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "step_started");
        assert_eq!(v["run_id"], "rb-1");
        assert_eq!(v["at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["step"], "a");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    /// One event of every kind. The schema test checks this list against the variants
    /// the derived schema knows, so a new event cannot be forgotten here.
    fn one_of_each() -> Vec<EventKind> {
        let step = || StepId::new("a");
        let all = vec![
            EventKind::RunStarted {
                event_version: EVENT_VERSION,
                runbook: "rb".into(),
                mode: crate::runbook::Mode::Planned,
                sim: true,
                seed: Some(1),
                resumed: false,
            },
            EventKind::Plan {
                levels: vec![vec![step()]],
                critical_path: vec![step()],
                predicted_rto_secs: 1.0,
            },
            EventKind::RegionStatus {
                region: "us-east-1".into(),
                service: "rds".into(),
                status: crate::cloud::reach::Reachability::Unreachable,
                latency_ms: None,
                decided_by: "probe: no answer within 3.0s".into(),
            },
            EventKind::Preflight {
                ok: true,
                findings: vec![StepFinding {
                    step: step(),
                    finding: Finding::ok("fine"),
                }],
            },
            EventKind::ApprovalNeeded {
                step: step(),
                message: "go?".into(),
                approvers: 2,
                at_risk: Some(crate::actions::at_risk::AtRisk {
                    aurora: vec![crate::actions::at_risk::AuroraLag {
                        global_cluster: "acme-prod".into(),
                        cluster: "arn:aws:rds:us-west-2:123456789012:cluster:acme-prod-usw2".into(),
                        region: "us-west-2".into(),
                        lag_secs: Some(1.5),
                        note: None,
                    }],
                    s3: Vec::new(),
                    valkey: Vec::new(),
                    window_secs: Some(1.5),
                    summary: "If you approve now, writes in the last 1.5s may be lost".into(),
                }),
                approve_with: Some("drpilot approve rb-1 a".into()),
            },
            EventKind::Approved {
                step: step(),
                by: "flag".into(),
                approvers: vec![Approver {
                    name: "alice".into(),
                    via: "store".into(),
                    os_user: Some("alice".into()),
                    host: Some("bastion".into()),
                    aws_identity: Some(
                        "arn:aws:sts::123456789012:assumed-role/oncall/alice".into(),
                    ),
                    at: jiff::Timestamp::from_second(1_000).unwrap(),
                }],
            },
            EventKind::ApprovalDenied {
                step: step(),
                by: Approver {
                    name: "bob".into(),
                    via: "store".into(),
                    os_user: None,
                    host: None,
                    aws_identity: None,
                    at: jiff::Timestamp::from_second(1_001).unwrap(),
                },
                reason: Some("replica lag too high".into()),
            },
            EventKind::StepStarted {
                step: step(),
                attempt: 1,
            },
            EventKind::Captured {
                step: step(),
                captured: Captured(serde_json::json!({"writer": "us-east-1"})),
            },
            EventKind::Executed {
                step: step(),
                executed: Executed {
                    summary: "sent".into(),
                    output: serde_json::json!({"change_id": "/change/C1"}),
                },
            },
            EventKind::AttemptFailed {
                step: step(),
                attempt: 1,
                error: "503".into(),
                will_retry: true,
                retry_in_secs: Some(1.5),
            },
            EventKind::GateObserved {
                step: step(),
                check: "verify".into(),
                passed: false,
                observed: "pending".into(),
            },
            EventKind::StepSucceeded {
                step: step(),
                summary: "done".into(),
            },
            EventKind::StepFailed {
                step: step(),
                error: "no".into(),
            },
            EventKind::StepSkipped {
                step: step(),
                reason: "--skip-step".into(),
            },
            EventKind::StepDeferred {
                step: step(),
                reason: "us-east-1 rds unreachable".into(),
            },
            EventKind::RollbackStarted {
                steps: vec![step()],
            },
            EventKind::StepRolledBack {
                step: step(),
                summary: "restored".into(),
            },
            EventKind::RollbackFailed {
                step: step(),
                error: "no rollback defined".into(),
            },
            EventKind::RollbackFinished {
                clean: false,
                left_changed: vec![step()],
            },
            EventKind::NotificationSent {
                receiver: "webhook hooks.example.com".into(),
                about: "run_started".into(),
                attempts: 1,
            },
            EventKind::NotificationFailed {
                receiver: "sns arn:aws:sns:us-west-2:111122223333:dr".into(),
                about: "run_finished".into(),
                error: "no answer within 5s".into(),
                attempts: 3,
            },
            EventKind::RunFinished {
                outcome: Outcome::Succeeded,
                exit_code: 0,
                makespan_secs: 2.0,
                rto_secs: Some(2.0),
                rpo_secs: Some(0.0),
                reason: None,
                deferred: vec![step()],
            },
        ];
        all
    }

    #[test]
    fn names_are_the_serialized_tags_and_the_schemas_enum() {
        let kinds = one_of_each();
        let mut names = Vec::new();
        for k in &kinds {
            let v = serde_json::to_value(k).unwrap();
            assert_eq!(v["event"], k.name());
            names.push(serde_json::Value::from(k.name()));
        }
        let schema = event_schema();
        assert_eq!(
            schema["properties"]["event"]["enum"],
            serde_json::Value::from(names)
        );
        assert_eq!(
            schema["required"],
            serde_json::json!(["event", "run_id", "at"])
        );
        assert_eq!(
            schema["$id"],
            format!("urn:drpilot:events:v{EVENT_VERSION}")
        );
    }

    #[test]
    fn step_events_require_their_step_and_optional_fields_are_not_required() {
        let schema = event_schema();
        let branches = schema["oneOf"].as_array().unwrap();
        for k in one_of_each() {
            let branch = branches
                .iter()
                .find(|b| b["properties"]["event"]["const"] == k.name())
                .unwrap_or_else(|| panic!("no branch for {}", k.name()));
            let required: Vec<&str> = branch["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            assert!(required.contains(&"event"), "{}", k.name());
            assert_eq!(
                required.contains(&"step"),
                k.step().is_some(),
                "{}: {required:?}",
                k.name()
            );
            for optional in ["seed", "retry_in_secs", "rto_secs", "rpo_secs"] {
                assert!(!required.contains(&optional), "{}: {optional}", k.name());
            }
        }
    }

    #[test]
    fn docs_events_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.schema.json");
        let want = format!(
            "{}\n",
            serde_json::to_string_pretty(&event_schema()).expect("a JSON value serializes")
        );
        if std::env::var_os("DRPILOT_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/events.schema.json differs from the event types: regenerate it with \
             `DRPILOT_UPDATE_DOCS=1 cargo test --lib docs_events` (or `drpilot schema --events > docs/events.schema.json`) \
             and, if a field was removed or renamed, bump EVENT_VERSION"
        );
    }

    #[test]
    fn outcomes_map_to_the_documented_exit_codes() {
        assert_eq!(Outcome::Succeeded.exit_code(), 0);
        assert_eq!(Outcome::RolledBack.exit_code(), 1);
        assert_eq!(Outcome::NeedsAttention.exit_code(), 3);
        assert_eq!(Outcome::Paused.exit_code(), 3);
        assert_eq!(Outcome::Aborted.exit_code(), 4);
        assert_eq!(Outcome::PreflightFailed.exit_code(), 5);
    }
}
