//! The engine against the simulated world, in virtual time (`start_paused`): minutes
//! of failover take milliseconds, and every duration still means what it says.

use std::path::Path;
use std::time::Duration;

use drpilot::clock::Clock;
use drpilot::cloud::GroupSizes;
use drpilot::engine::dispatcher::Sink;
use drpilot::engine::{
    self, Approvals, Decision, Event, EventKind, Interrupt, OnFailure, Outcome, Prior, RunConfig,
    RunId,
};
use drpilot::plan::Plan;
use drpilot::runbook::{self, Runbook, StepId};
use drpilot::sim::{SimConfig, SimWorld};
use tokio::sync::mpsc;

#[derive(Default)]
struct Collect(Vec<Event>);

impl Sink for Collect {
    fn emit(&mut self, event: &Event) -> Result<(), String> {
        self.0.push(event.clone());
        Ok(())
    }
}

fn load(text: &str) -> Runbook {
    match runbook::load_str(Path::new("t.toml"), text) {
        Ok(l) => l.runbook,
        Err(e) => panic!("{}", e.render(runbook::RenderStyle::Short)),
    }
}

fn shipped(name: &str) -> Runbook {
    load(&std::fs::read_to_string(format!("runbooks/{name}.toml")).unwrap())
}

fn sim_config(text: &str) -> SimConfig {
    SimConfig::parse(Path::new("sim.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

struct Run {
    result: engine::RunResult,
    events: Vec<Event>,
    world: SimWorld,
}

impl Run {
    fn kinds(&self) -> impl Iterator<Item = &EventKind> {
        self.events.iter().map(|e| &e.kind)
    }

    fn count(&self, f: impl Fn(&EventKind) -> bool) -> usize {
        self.kinds().filter(|k| f(k)).count()
    }

    fn applied(&self, operation: &str) -> usize {
        self.world
            .op_log()
            .iter()
            .filter(|o| o.operation == operation && o.applied)
            .count()
    }
}

fn yes() -> RunConfig {
    RunConfig {
        approvals: Approvals {
            all: true,
            ..Approvals::default()
        },
        jitter_seed: Some(1),
        ..RunConfig::default()
    }
}

async fn run_in(
    rb: &Runbook,
    world: SimWorld,
    clock: Clock,
    config: &RunConfig,
    prior: Option<(Prior, Option<Decision>)>,
    interrupts: mpsc::UnboundedReceiver<Interrupt>,
) -> Run {
    let plan = Plan::new(rb);
    let cloud = world.cloud();
    // As the CLI does: every region the runbook calls is probed at the start.
    cloud
        .reach
        .probe(drpilot::actions::reach::probe_targets(rb));
    let mut sink = Collect::default();
    let result = {
        let mut sinks: [&mut dyn Sink; 1] = [&mut sink];
        let ctx = engine::RunCtx {
            runbook: rb,
            plan: &plan,
            cloud: &cloud,
            clock: &clock,
            run_id: RunId("test".into()),
            config,
            prior,
            sim_seed: Some(world.seed()),
        };
        engine::run(ctx, &mut sinks, interrupts).await
    };
    Run {
        result,
        events: sink.0,
        world,
    }
}

async fn run(rb: &Runbook, cfg: &SimConfig, config: &RunConfig) -> Run {
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(rb, cfg, 42, clock.clone()).expect("world builds");
    let (_tx, rx) = mpsc::unbounded_channel();
    run_in(rb, world, clock, config, None, rx).await
}

fn started(run: &Run) -> Vec<(String, Duration)> {
    let origin = run.events[0].at;
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepStarted { step, attempt: 1 } => Some((
                step.to_string(),
                Duration::try_from(e.at.duration_since(origin)).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_shipped_runbook_succeeds_in_its_simulated_world() {
    for name in ["region-failover", "planned-switchover", "failback"] {
        let rb = shipped(name);
        let r = run(&rb, &SimConfig::default(), &yes()).await;
        assert_eq!(
            r.result.outcome,
            Outcome::Succeeded,
            "{name}: {:?}",
            r.result.reason
        );
        assert_eq!(
            r.count(|k| matches!(k, EventKind::StepSucceeded { .. })),
            rb.steps.len(),
            "{name}"
        );
        // Every mutation was applied once.
        for log in r.world.op_log().iter().filter(|o| o.applied) {
            let same = r
                .world
                .op_log()
                .iter()
                .filter(|o| o.applied && o.operation == log.operation && o.args == log.args)
                .count();
            assert_eq!(same, 1, "{name}: {} applied {same} times", log.operation);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn independent_steps_overlap_and_the_makespan_is_the_critical_path() {
    // Two chains from a common root: 10s -> (2m | 30s -> 45s) -> 5s.
    let rb = load(
        r#"
[runbook]
name = "waits"
mode = "unplanned"
[[step]]
id = "root"
action = "wait"
duration = "10s"
[[step]]
id = "long"
action = "wait"
duration = "2m"
after = ["root"]
[[step]]
id = "short-1"
action = "wait"
duration = "30s"
after = ["root"]
[[step]]
id = "short-2"
action = "wait"
duration = "45s"
after = ["short-1"]
[[step]]
id = "end"
action = "wait"
duration = "5s"
after = ["long", "short-2"]
"#,
    );
    let r = run(&rb, &SimConfig::default(), &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    let starts = started(&r);
    let at = |id: &str| starts.iter().find(|(s, _)| s == id).unwrap().1;
    // The two branches start together, right after the root.
    assert_eq!(at("long"), at("short-1"));
    assert_eq!(at("long"), Duration::from_secs(10));
    let plan = Plan::new(&rb);
    let ratio = r.result.makespan.as_secs_f64() / plan.makespan.as_secs_f64();
    assert!(
        (1.0..=1.02).contains(&ratio),
        "makespan {:?} vs critical path {:?}",
        r.result.makespan,
        plan.makespan
    );
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_policy_and_stop_at_the_cap() {
    let rb = shipped("region-failover");
    // Two transient failures, then success: the step's policy allows 3 attempts.
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"FailoverGlobalCluster\"\ntimes = 2\nerror = \"transient\"\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    let promote = StepId::new("aurora-promote");
    let failures: Vec<(u32, bool, Option<f64>)> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::AttemptFailed {
                step,
                attempt,
                will_retry,
                retry_in_secs,
                ..
            } if *step == promote => Some((*attempt, *will_retry, *retry_in_secs)),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|(_, retry, delay)| *retry && delay.is_some())
    );
    // Delays are at least the policy's initial 10s (jitter only adds).
    assert!(
        failures.iter().all(|(_, _, d)| d.unwrap() >= 10.0),
        "{failures:?}"
    );
    assert_eq!(r.applied("FailoverGlobalCluster"), 1);

    // Forever: the cap (3 attempts) ends it, and the run rolls back.
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"FailoverGlobalCluster\"\nerror = \"transient\"\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_ne!(r.result.outcome, Outcome::Succeeded);
    let attempts =
        r.count(|k| matches!(k, EventKind::StepStarted { step, .. } if *step == promote));
    assert_eq!(attempts, 3);
    assert_eq!(r.applied("FailoverGlobalCluster"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_never_causes_a_second_failover() {
    let rb = shipped("region-failover");
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"rds\"\noperation = \"FailoverGlobalCluster\"\ntimes = 1\nerror = \"transient\"\nafter_apply = true\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.applied("FailoverGlobalCluster"), 1);
    let sent = r
        .world
        .op_log()
        .iter()
        .filter(|o| o.operation == "FailoverGlobalCluster")
        .count();
    assert_eq!(
        sent, 1,
        "the failover was sent again after its response was lost"
    );
}

/// The answer to the Valkey failover never comes: the call's deadline (a mutation's,
/// 20 s) ends it with an unknown outcome, and the step re-reads before deciding.
#[tokio::test(start_paused = true)]
async fn a_hung_call_is_cut_by_its_deadline_and_retried_after_a_re_read() {
    let rb = shipped("region-failover");
    let cfg = sim_config(
        "[[fault]]\nkind = \"hang\"\nservice = \"elasticache\"\noperation = \"FailoverGlobalReplicationGroup\"\ntimes = 1\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    let valkey = StepId::new("valkey-promote");
    let timed_out = r.count(|k| {
        matches!(k, EventKind::AttemptFailed { step, error, .. } if *step == valkey && error.contains("no answer within 20s"))
    });
    assert_eq!(timed_out, 1);
    assert!(r.applied("FailoverGlobalReplicationGroup") <= 1);
}

/// One Valkey failover whose attempts the step's timeout cuts short.
const VALKEY_ONLY: &str = r#"
[runbook]
name = "valkey-retry"
mode = "unplanned"

[params]
from = "us-east-1"
to = "us-west-2"

[[step]]
id = "valkey"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
timeout = "10s"
retry = { attempts = 30, initial = "1s", max = "2s", max_elapsed = "10m", jitter = false }
"#;

/// The step's timeout cuts an attempt whose FailoverGlobalReplicationGroup took effect
/// and never answered. The engine marks the retry `interrupted`: it waits for the
/// datastore to settle and finds the failover done, instead of sending it again (a
/// first attempt sends it whatever the datastore's status). Under both readings of the
/// API: the user guide's would accept a second promotion, the API reference's refuse it.
#[tokio::test(start_paused = true)]
async fn a_retried_valkey_failover_waits_for_its_own_call_instead_of_resending_it() {
    let rb = load(VALKEY_ONLY);
    for reading in ["refuse", "allow"] {
        let cfg = sim_config(&format!(
            "[elasticache]\nfailover_with_unreachable_members = \"{reading}\"\n\
             [[fault]]\nkind = \"hang\"\noperation = \"FailoverGlobalReplicationGroup\"\n\
             after_apply = true\ntimes = 1\n"
        ));
        let r = run(&rb, &cfg, &yes()).await;
        assert_eq!(
            r.result.outcome,
            Outcome::Succeeded,
            "{reading}: {:?}",
            r.result.reason
        );
        let retried = r.count(|k| {
            matches!(
                k,
                EventKind::AttemptFailed {
                    will_retry: true,
                    ..
                }
            )
        });
        assert!(retried >= 1, "{reading}: the first attempt was cut short");
        let sent = r
            .world
            .op_log()
            .iter()
            .filter(|o| o.operation == "FailoverGlobalReplicationGroup")
            .count();
        assert_eq!(sent, 1, "{reading}: sent again by a retry");
        assert_eq!(r.applied("FailoverGlobalReplicationGroup"), 1, "{reading}");
        let done = r.kinds().find_map(|k| match k {
            EventKind::Executed { executed, .. } => Some(executed.summary.clone()),
            _ => None,
        });
        assert_eq!(
            done.as_deref(),
            Some("already done: primary acme-sessions-usw2 in us-west-2"),
            "{reading}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_rolls_back_exactly_the_completed_changes_in_reverse_order() {
    let rb = shipped("planned-switchover");
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::RolledBack,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.result.outcome.exit_code(), 1);
    let rolled: Vec<String> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepRolledBack { step, .. } => Some(step.to_string()),
            _ => None,
        })
        .collect();
    // Both switchovers completed (level 8, file order aurora then valkey); reverse order
    // rolls back valkey first, then the capacity raised before them (the switchover and
    // the DNS step depend on it). The failed DNS step changed nothing and is not touched.
    assert_eq!(
        rolled,
        [
            "valkey-switchover",
            "aurora-switchover",
            "aurora-target-capacity",
            "target-api",
            "target-workers",
            "target-hosts"
        ]
    );
    let planned: Vec<String> = r
        .kinds()
        .find_map(|k| match k {
            EventKind::RollbackStarted { steps } => {
                Some(steps.iter().map(|s| s.to_string()).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(planned, rolled);
    assert!(
        r.kinds()
            .any(|k| matches!(k, EventKind::RollbackFinished { clean: true, .. }))
    );
    // The world is back where it started.
    let obs = r.world.cloud();
    let gc = obs
        .rds
        .describe_global_cluster("us-east-1", "acme-prod")
        .await
        .unwrap();
    assert_eq!(gc.writer().unwrap().region, "us-east-1");
    let ds = obs
        .elasticache
        .describe_global_datastore("us-east-1", "ldgnf-acme-sessions")
        .await
        .unwrap();
    assert_eq!(ds.primary().unwrap().region, "us-east-1");
}

#[tokio::test(start_paused = true)]
async fn a_change_with_no_rollback_leaves_the_run_needing_a_person() {
    // region-failover's Aurora failover cannot be undone: a later failure must say so.
    let rb = shipped("region-failover");
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::NeedsAttention,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.result.outcome.exit_code(), 3);
    let left: Vec<String> = r
        .result
        .left_changed
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(left.contains(&"aurora-promote".to_string()), "{left:?}");
    assert!(left.contains(&"valkey-promote".to_string()), "{left:?}");
    // The capacity raised for the promotion is what production runs on now: the
    // rollback keeps it, and says why.
    for step in [
        "aurora-target-capacity",
        "target-hosts",
        "target-workers",
        "target-api",
    ] {
        assert!(left.contains(&step.to_string()), "{step}: {left:?}");
        let why = r
            .kinds()
            .find_map(|k| match k {
                EventKind::RollbackFailed { step: s, error } if s.as_str() == step => {
                    Some(error.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{step}: no rollback_failed"));
        assert!(
            why.starts_with("kept: production may now run on this capacity"),
            "{why}"
        );
        assert!(why.contains("aurora-promote"), "{why}");
    }
    assert!(
        !r.kinds()
            .any(|k| matches!(k, EventKind::StepRolledBack { .. })),
        "nothing was sized down"
    );
    let obs = r.world.cloud();
    let usw2 = obs
        .rds
        .describe_cluster("arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2")
        .await
        .unwrap();
    assert_eq!(
        usw2.scaling.map(|s| s.to_string()).as_deref(),
        Some("2-64 ACUs")
    );
    assert_eq!(
        r.world
            .op_log()
            .iter()
            .filter(|o| o.applied && o.operation == "UpdateService")
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn headless_approval_without_a_flag_fails_and_nothing_changes() {
    let rb = shipped("region-failover");
    let r = run(&rb, &SimConfig::default(), &RunConfig::default()).await;
    assert_eq!(r.result.outcome, Outcome::RolledBack);
    let failed = r
        .kinds()
        .find_map(|k| match k {
            EventKind::StepFailed { step, error } => Some((step.to_string(), error.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.0, "approve-failover");
    assert!(
        failed.1.contains("--approve approve-failover or --yes"),
        "{}",
        failed.1
    );
    only_capacity_changed_and_put_back(&rb, &r).await;
}

/// The sizes the shipped runbooks change in us-west-2: the Aurora range, the ECS
/// services' desired counts, the Auto Scaling group's sizes.
async fn usw2_sizes(world: &SimWorld) -> (Option<String>, Vec<u32>, Option<GroupSizes>) {
    let cloud = world.cloud();
    let range = cloud
        .rds
        .describe_cluster("arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2")
        .await
        .unwrap()
        .scaling
        .map(|s| s.to_string());
    let mut desired = Vec::new();
    for service in ["worker", "api"] {
        let s = cloud
            .ecs
            .describe_service("us-west-2", "acme-prod", service)
            .await;
        desired.push(s.unwrap().expect("the service exists").desired_count);
    }
    let group = cloud
        .autoscaling
        .describe_group("us-west-2", "acme-prod-ecs-usw2")
        .await
        .unwrap()
        .map(|g| g.sizes);
    (range, desired, group)
}

/// The only changes a run stopped before its promotion made: the standby's capacity
/// (Aurora range, ECS services, hosts), raised while the approval was pending and put
/// back by the rollback to what a fresh world of the same seed holds.
async fn only_capacity_changed_and_put_back(rb: &Runbook, r: &Run) {
    let changes: Vec<String> = r
        .world
        .op_log()
        .iter()
        .filter(|o| o.applied && o.operation != "PutObject" && o.operation != "DeleteObject")
        .map(|o| o.operation.clone())
        .collect();
    for op in ["ModifyDBCluster", "UpdateService", "UpdateAutoScalingGroup"] {
        let n = changes.iter().filter(|c| *c == op).count();
        assert!(
            n % 2 == 0,
            "{op} x{n}, not raised then put back: {changes:?}"
        );
    }
    assert!(
        changes.iter().all(
            |c| ["ModifyDBCluster", "UpdateService", "UpdateAutoScalingGroup"]
                .contains(&c.as_str())
        ),
        "{changes:?}"
    );
    let fresh = SimWorld::from_runbook(rb, &SimConfig::default(), 42, Clock::with_speed(1.0))
        .expect("world builds");
    assert_eq!(usw2_sizes(&r.world).await, usw2_sizes(&fresh).await);
    let g = r
        .world
        .cloud()
        .rds
        .describe_global_cluster("us-west-2", "acme-prod")
        .await
        .unwrap();
    assert_eq!(g.writer().unwrap().region, "us-east-1");
}

#[tokio::test(start_paused = true)]
async fn pause_then_resume_with_retry_never_repeats_a_succeeded_step() {
    let rb = shipped("planned-switchover");
    // ARC refuses the routing-control update for the first 20 virtual minutes.
    let cfg = sim_config(
        "[[fault]]\nkind = \"error\"\nservice = \"route53-recovery-cluster\"\noperation = \"UpdateRoutingControlStates\"\nerror = \"invalid_request\"\nuntil = \"20m\"\n",
    );
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(&rb, &cfg, 7, clock.clone()).unwrap();
    let mut config = yes();
    config.on_failure = OnFailure::Pause;
    let (_tx, rx) = mpsc::unbounded_channel();
    let first = run_in(&rb, world.clone(), clock.clone(), &config, None, rx).await;
    assert_eq!(first.result.outcome, Outcome::Paused);
    let succeeded_before: Vec<StepId> = first
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepSucceeded { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect();
    assert!(!succeeded_before.is_empty());

    clock.sleep(Duration::from_secs(25 * 60)).await;
    let prior = Prior::from_events(&first.events);
    let (_tx, rx) = mpsc::unbounded_channel();
    let second = run_in(
        &rb,
        world,
        clock,
        &config,
        Some((prior, Some(Decision::Retry))),
        rx,
    )
    .await;
    assert_eq!(
        second.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        second.result.reason
    );
    for k in second.kinds() {
        if let EventKind::StepStarted { step, .. } = k {
            assert!(!succeeded_before.contains(step), "{step} ran again");
        }
    }
    assert_eq!(second.applied("SwitchoverGlobalCluster"), 1);
    // The RTO counts from the first change, which the first process made: it includes
    // the 25 minutes the run stood paused, not only the resumed process's part.
    let rto = second.result.rto.expect("a successful run has an RTO");
    assert!(rto >= Duration::from_secs(25 * 60), "{rto:?}");
    assert!(rto <= second.result.makespan, "{rto:?}");
}

#[tokio::test(start_paused = true)]
async fn a_planned_rto_starts_at_the_switchover_not_at_the_capacity_raised_before_it() {
    let rb = shipped("planned-switchover");
    let r = run(&rb, &SimConfig::default(), &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    let origin = r.events[0].at;
    let since = |at: jiff::Timestamp| Duration::try_from(at.duration_since(origin)).unwrap();
    let starts = started(&r);
    let start = |id: &str| {
        starts
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("{id} never started"))
    };
    let capacity = start("aurora-target-capacity");
    let first_disruption = start("aurora-switchover").min(start("valkey-switchover"));
    assert!(
        capacity < first_disruption,
        "{capacity:?} {first_disruption:?}"
    );
    let recovered = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepSucceeded { step, .. }
                if rb.objectives.recovered_when.contains(step) =>
            {
                Some(since(e.at))
            }
            _ => None,
        })
        .max()
        .expect("the recovery steps succeeded");
    let rto = r.result.rto.expect("a successful run has an RTO");
    // Counted from the first change that can interrupt service (the switchovers), not
    // from the capacity change that started earlier.
    assert_eq!(rto, recovered - first_disruption);
    assert!(rto < recovered - capacity, "{rto:?}");
}

#[tokio::test(start_paused = true)]
async fn a_graceful_interrupt_launches_nothing_new_then_applies_the_policy() {
    let rb = shipped("planned-switchover");
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(&rb, &SimConfig::default(), 3, clock.clone()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(Interrupt::Graceful).unwrap();
    let r = run_in(&rb, world, clock, &yes(), None, rx).await;
    // Steps already running finish (readiness, and the capacity steps that start with
    // them); nothing after them starts; the rollback puts the capacity back, cleanly.
    assert_eq!(
        r.result.outcome,
        Outcome::RolledBack,
        "{:?}",
        r.result.reason
    );
    assert!(!r.kinds().any(|k| matches!(k, EventKind::StepStarted { step, .. } if step.as_str() == "approve-switchover")));
    only_capacity_changed_and_put_back(&rb, &r).await;
}

#[tokio::test(start_paused = true)]
async fn preflight_failure_changes_nothing() {
    let rb = shipped("planned-switchover");
    // A degraded topology: a switchover must refuse before anything changes.
    let cfg = sim_config("[clusters.acme-prod-usw2]\nstatus = \"modifying\"\n");
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::PreflightFailed,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.result.outcome.exit_code(), 5);
    assert!(
        !r.kinds()
            .any(|k| matches!(k, EventKind::StepStarted { .. }))
    );
    assert_eq!(r.world.op_log().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_preflight_asks_again_instead_of_stopping_a_planned_run() {
    let rb = shipped("planned-switchover");
    // Every DescribeDBClusters is throttled three times in a row (the SDK's own
    // attempts are spent when drpilot sees it): the preflight waits and asks again.
    let cfg = sim_config(
        "[[fault]]\nkind = \"throttle\"\nservice = \"rds\"\noperation = \"DescribeDBClusters\"\ntimes = 3\n",
    );
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    // The preflight event passed on the first run (no pause, no second preflight).
    let preflights: Vec<bool> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::Preflight { ok, .. } => Some(*ok),
            _ => None,
        })
        .collect();
    assert_eq!(preflights, [true]);
}

struct Answer(bool, std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl engine::Prompter for Answer {
    async fn approve(&self, step: &StepId, message: &str) -> bool {
        self.1.lock().unwrap().push(format!("{step}: {message}"));
        self.0
    }
}

#[tokio::test(start_paused = true)]
async fn an_interactive_operator_approves_or_refuses() {
    let rb = shipped("region-failover");
    for approve in [true, false] {
        let prompter = std::sync::Arc::new(Answer(approve, Default::default()));
        let config = RunConfig {
            prompter: Some(prompter.clone()),
            jitter_seed: Some(1),
            ..RunConfig::default()
        };
        let r = run(&rb, &SimConfig::default(), &config).await;
        let asked = prompter.1.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(
            asked[0].starts_with("approve-failover: Promote us-west-2"),
            "{asked:?}"
        );
        if approve {
            assert_eq!(
                r.result.outcome,
                Outcome::Succeeded,
                "{:?}",
                r.result.reason
            );
            assert!(
                r.kinds()
                    .any(|k| matches!(k, EventKind::Approved { by, .. } if by == "operator"))
            );
        } else {
            assert_eq!(r.result.outcome, Outcome::RolledBack);
            only_capacity_changed_and_put_back(&rb, &r).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_interrupt_stops_at_once_and_the_run_is_resumable() {
    let rb = shipped("planned-switchover");
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(&rb, &SimConfig::default(), 5, clock.clone()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let stopper = {
        let clock = clock.clone();
        tokio::spawn(async move {
            // Mid-switchover: after the readiness checks and the approval.
            clock.sleep(Duration::from_secs(150)).await;
            tx.send(Interrupt::Graceful).unwrap();
            tx.send(Interrupt::Immediate).unwrap();
        })
    };
    let first = run_in(&rb, world.clone(), clock.clone(), &yes(), None, rx).await;
    stopper.await.unwrap();
    assert_eq!(
        first.result.outcome,
        Outcome::Aborted,
        "{:?}",
        first.result.reason
    );
    assert_eq!(first.result.outcome.exit_code(), 4);
    // No rollback was attempted: an immediate stop leaves things for `resume`.
    assert!(
        !first
            .kinds()
            .any(|k| matches!(k, EventKind::RollbackStarted { .. }))
    );
    let prior = Prior::from_events(&first.events);
    assert!(
        !prior.in_flight.is_empty(),
        "something was running when stopped"
    );
    let (_tx, rx) = mpsc::unbounded_channel();
    let second = run_in(&rb, world, clock, &yes(), Some((prior, None)), rx).await;
    assert_eq!(
        second.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        second.result.reason
    );
    assert_eq!(second.applied("SwitchoverGlobalCluster"), 1);
}

/// What DNS answers for the failover's names, in the run's world.
async fn answers(world: &SimWorld) -> Vec<Vec<String>> {
    use drpilot::cloud::DataPlane;
    let mut out = Vec::new();
    for (name, record_type) in [
        ("db-writer.acme.internal", "CNAME"),
        ("cache.acme.internal", "CNAME"),
        ("api.acme.example", "A"),
    ] {
        out.push(world.resolve(name, record_type, &[]).await.unwrap());
    }
    out
}

fn moved_to_usw2() -> Vec<Vec<String>> {
    vec![
        vec!["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com".to_string()],
        vec!["clustercfg.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com".to_string()],
        vec!["api-usw2.acme.example".to_string()],
    ]
}

/// Every Route 53 control-plane call goes to us-east-1. None may be needed: in an
/// outage each would fail.
fn no_route53_control_plane_call(r: &Run) {
    let logged: Vec<String> = r
        .world
        .op_log()
        .into_iter()
        .filter(|o| o.service == "route53")
        .map(|o| o.operation)
        .collect();
    assert!(logged.is_empty(), "{logged:?}");
    let failed_reads: Vec<String> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::AttemptFailed { error, .. } if error.contains("route53 endpoint") => {
                Some(error.clone())
            }
            _ => None,
        })
        .collect();
    assert!(failed_reads.is_empty(), "{failed_reads:?}");
}

#[tokio::test(start_paused = true)]
async fn in_a_us_east_1_outage_the_failover_succeeds_and_dns_moves_by_routing_controls() {
    let rb = shipped("region-failover");
    // us-east-1 is down for the whole failover and comes back 20 minutes in: the
    // snapshot of the lost writes needs the old primary's region, and it is patient.
    let cfg =
        sim_config("[regions.us-east-1]\nunreachable_from = \"0s\"\nunreachable_until = \"20m\"\n");
    let before = {
        let clock = Clock::with_speed(1.0);
        let world = SimWorld::from_runbook(&rb, &cfg, 42, clock).expect("world builds");
        answers(&world).await
    };
    assert_ne!(before, moved_to_usw2());
    let r = run(&rb, &cfg, &yes()).await;
    // Readiness that cannot reach us-east-1 is skipped with a reason, not fatal.
    let skipped: Vec<(String, String)> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepSkipped { step, reason } => Some((step.to_string(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].0, "s3-replication");
    assert!(skipped[0].1.contains("us-east-1"), "{skipped:?}");
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.result.outcome.exit_code(), 0);
    assert_eq!(r.applied("FailoverGlobalCluster"), 1);
    // DNS moved by one routing-control update, while us-east-1 was still down.
    let updates: Vec<_> = r
        .world
        .op_log()
        .into_iter()
        .filter(|o| o.operation == "UpdateRoutingControlStates" && o.applied)
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].region.as_deref(), Some("us-west-2"));
    assert!(updates[0].at < Duration::from_secs(20 * 60), "{updates:?}");
    assert_eq!(answers(&r.world).await, moved_to_usw2());
    no_route53_control_plane_call(&r);
}

/// Issue 16: the lost-writes snapshot lives in the old primary's region. While that
/// region is down the step is deferred (it is after `recovered_when`): the run ends
/// once service is back, exit 0, instead of holding itself and its lock for the
/// step's 45 minutes of retries; `drpilot resume RUN_ID` runs it later.
#[tokio::test(start_paused = true)]
async fn when_us_east_1_stays_down_the_lost_writes_snapshot_is_deferred_and_dns_stays_moved() {
    let rb = shipped("region-failover");
    let cfg = sim_config("[regions.us-east-1]\nunreachable_from = \"0s\"\n");
    let r = run(&rb, &cfg, &yes()).await;
    assert!(
        !r.kinds().any(|k| matches!(k, EventKind::StepFailed { .. })),
        "nothing failed"
    );
    let deferred: Vec<String> = r
        .kinds()
        .filter_map(|k| match k {
            EventKind::StepDeferred { step, reason } => {
                assert!(reason.contains("us-east-1 rds unreachable"), "{reason}");
                Some(step.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(deferred, ["aurora-keep-lost-writes"]);
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    assert_eq!(r.result.outcome.exit_code(), 0);
    assert_eq!(r.result.deferred, [StepId::new("aurora-keep-lost-writes")]);
    assert!(
        r.kinds()
            .any(|k| matches!(k, EventKind::RunFinished { deferred, .. } if deferred.len() == 1)),
        "run_finished lists it"
    );
    // Ended with the verification, not after the snapshot's retry budget (45 min).
    assert!(
        r.result.makespan < Duration::from_secs(10 * 60),
        "{:?}",
        r.result.makespan
    );
    // The region's outage was reported as soon as the probes ran.
    let first_down = r
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::RegionStatus { region, status: drpilot::cloud::reach::Reachability::Unreachable, .. } if region == "us-east-1"))
        .expect("us-east-1 reported unreachable");
    assert!(
        first_down.at.duration_since(r.events[0].at) <= jiff::SignedDuration::from_secs(10),
        "reported within 10 s of the start"
    );
    for id in [
        "dns-failover",
        "db-writer-resolves",
        "cache-resolves",
        "api-healthy",
    ] {
        assert!(
            r.kinds()
                .any(|k| matches!(k, EventKind::StepSucceeded { step, .. } if step.as_str() == id)),
            "{id} did not succeed"
        );
    }
    // Traffic is not rolled back towards the region that is down.
    assert!(
        !r.kinds()
            .any(|k| matches!(k, EventKind::StepRolledBack { .. }))
    );
    assert_eq!(answers(&r.world).await, moved_to_usw2());
    no_route53_control_plane_call(&r);
}

#[tokio::test(start_paused = true)]
async fn a_planned_run_never_skips_an_unreachable_check() {
    let rb = shipped("planned-switchover");
    let cfg = sim_config("[regions.us-east-1]\nunreachable_from = \"0s\"\n");
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::PreflightFailed,
        "{:?}",
        r.result.reason
    );
    assert!(
        !r.kinds()
            .any(|k| matches!(k, EventKind::StepSkipped { .. }))
    );
    assert_eq!(r.world.op_log().iter().filter(|o| o.applied).count(), 0);
}

/// When each of `ids` succeeded (or was skipped), on the run's clock from `origin`.
fn done_at(events: &[Event], origin: jiff::Timestamp, ids: &[StepId]) -> Vec<Duration> {
    ids.iter()
        .map(|id| {
            let e = events
                .iter()
                .rev()
                .find(|e| {
                    matches!(&e.kind, EventKind::StepSucceeded { step, .. }
                        | EventKind::StepSkipped { step, .. } if step == id)
                })
                .unwrap_or_else(|| panic!("{id} never ended"));
            Duration::try_from(e.at.duration_since(origin)).unwrap()
        })
        .collect()
}

/// Regression (issue 7): the RTO ran until the last step, so copying the lost writes'
/// snapshot — 20 minutes while us-east-1 is still down — made a failover whose service
/// was back in 4 minutes read "RTO 22m MISSED". It ends when `recovered_when` passed.
#[tokio::test(start_paused = true)]
async fn slow_housekeeping_after_the_verification_does_not_count_towards_the_rto() {
    // The step keeps retrying until us-east-1 is back (`retry` instead of its default,
    // `defer`): slow housekeeping, as before deferral existed.
    let rb = load(
        &std::fs::read_to_string("runbooks/region-failover.toml")
            .unwrap()
            .replacen(
                "id = \"aurora-keep-lost-writes\"\n",
                "id = \"aurora-keep-lost-writes\"\non_unreachable = \"retry\"\n",
                1,
            ),
    );
    let cfg =
        sim_config("[regions.us-east-1]\nunreachable_from = \"0s\"\nunreachable_until = \"20m\"\n");
    let r = run(&rb, &cfg, &yes()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    assert!(
        r.result.makespan >= Duration::from_secs(20 * 60),
        "the snapshot copy waits for us-east-1: {:?}",
        r.result.makespan
    );
    let rto = r.result.rto.expect("a successful run has an RTO");
    let recovered = done_at(&r.events, r.events[0].at, &rb.objectives.recovered_when)
        .into_iter()
        .max()
        .unwrap();
    // Unplanned: from the run's start until the last verification passed (event
    // times are stamped to the nanosecond, the engine's measure a moment later).
    assert!(
        rto.abs_diff(recovered) < Duration::from_millis(1),
        "{rto:?} vs {recovered:?}"
    );
    assert_eq!(r.result.recovered_at, Some(rto));
    assert!(
        rto < Duration::from_secs(15 * 60),
        "{rto:?} within the objective"
    );
    let finished = r
        .kinds()
        .find_map(|k| match k {
            EventKind::RunFinished { rto_secs, .. } => *rto_secs,
            _ => None,
        })
        .unwrap();
    assert!((finished - rto.as_secs_f64()).abs() < 0.001);
}

/// The recovery steps finished in the first process, which deferred the housekeeping
/// (us-east-1 down); a resumed one ran it much later, once the region was back: the
/// RTO still ends where service came back, and the deferred step ran exactly once.
#[tokio::test(start_paused = true)]
async fn a_resumed_run_keeps_the_recovery_time_of_the_process_that_recovered() {
    let rb = shipped("region-failover");
    let cfg =
        sim_config("[regions.us-east-1]\nunreachable_from = \"0s\"\nunreachable_until = \"2h\"\n");
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(&rb, &cfg, 3, clock.clone()).unwrap();
    let mut config = yes();
    config.on_failure = OnFailure::Pause;
    let (_tx, rx) = mpsc::unbounded_channel();
    let first = run_in(&rb, world.clone(), clock.clone(), &config, None, rx).await;
    assert_eq!(
        first.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        first.result.reason
    );
    assert_eq!(
        first.result.deferred,
        [StepId::new("aurora-keep-lost-writes")]
    );
    let p = Prior::from_events(&first.events);
    assert!(!p.is_final(), "a run with deferred steps can be resumed");
    let recovered = done_at(&first.events, clock.origin(), &rb.objectives.recovered_when)
        .into_iter()
        .max()
        .unwrap();
    clock.sleep(Duration::from_secs(2 * 3600)).await;
    let prior = Prior::from_events(&first.events);
    let (_tx, rx) = mpsc::unbounded_channel();
    // `drpilot resume RUN_ID` without a decision: nothing failed.
    let second = run_in(&rb, world, clock, &config, Some((prior, None)), rx).await;
    assert_eq!(
        second.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        second.result.reason
    );
    assert!(second.result.deferred.is_empty());
    assert_eq!(second.applied("CopyDBClusterSnapshot"), 1);
    assert!(Prior::from_events(&[first.events.clone(), second.events.clone()].concat()).is_final());
    assert!(second.result.makespan > Duration::from_secs(2 * 3600));
    let rto = second.result.rto.unwrap();
    assert!(
        rto.abs_diff(recovered) < Duration::from_millis(1),
        "{rto:?} vs {recovered:?}"
    );
}

/// Runs the planned switchover until its Valkey failover has taken effect in the world
/// while its answer never comes (a hang after the call was applied), and stops the
/// process there at once: the step is captured, its change made, nothing journaled of
/// it. Returns the world and the first process's events.
async fn killed_after_the_valkey_failover_took_effect(rb: &Runbook) -> (SimWorld, Clock, Run) {
    let cfg = sim_config(
        "[[fault]]\nkind = \"hang\"\noperation = \"FailoverGlobalReplicationGroup\"\nafter_apply = true\ntimes = 1\n",
    );
    let clock = Clock::with_speed(1.0);
    let world = SimWorld::from_runbook(rb, &cfg, 5, clock.clone()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = {
        let (world, clock) = (world.clone(), clock.clone());
        tokio::spawn(async move {
            while !world
                .op_log()
                .iter()
                .any(|o| o.operation == "FailoverGlobalReplicationGroup" && o.applied)
            {
                clock.sleep(Duration::from_millis(500)).await;
            }
            tx.send(Interrupt::Immediate).unwrap();
        })
    };
    let first = run_in(rb, world.clone(), clock.clone(), &yes(), None, rx).await;
    watcher.await.unwrap();
    assert_eq!(first.result.outcome, Outcome::Aborted);
    (world, clock, first)
}

async fn valkey_primary_region(world: &SimWorld) -> String {
    let ds = world
        .cloud()
        .elasticache
        .describe_global_datastore("us-west-2", "ldgnf-acme-sessions")
        .await
        .unwrap();
    ds.primary().unwrap().region.clone()
}

#[tokio::test(start_paused = true)]
async fn a_step_killed_after_its_call_took_effect_resumes_by_waiting_for_that_call() {
    let rb = shipped("planned-switchover");
    let (world, clock, first) = killed_after_the_valkey_failover_took_effect(&rb).await;
    let prior = Prior::from_events(&first.events);
    let step = StepId::new("valkey-switchover");
    assert!(prior.interrupted.contains(&step), "{:?}", prior.interrupted);
    assert!(!prior.executed.contains_key(&step));
    let (_tx, rx) = mpsc::unbounded_channel();
    let second = run_in(&rb, world, clock, &yes(), Some((prior, None)), rx).await;
    // The datastore was modifying with the earlier process's failover: the resumed step
    // waits for it and finds it done, instead of failing on a change that is its own.
    assert_eq!(
        second.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        second.result.reason
    );
    assert_eq!(second.applied("FailoverGlobalReplicationGroup"), 1);
    assert_eq!(valkey_primary_region(&second.world).await, "us-west-2");
}

#[tokio::test(start_paused = true)]
async fn a_step_killed_after_its_call_took_effect_is_rolled_back_though_never_journaled() {
    let rb = shipped("planned-switchover");
    let (world, clock, first) = killed_after_the_valkey_failover_took_effect(&rb).await;
    let prior = Prior::from_events(&first.events);
    let (_tx, rx) = mpsc::unbounded_channel();
    let second = run_in(
        &rb,
        world,
        clock,
        &yes(),
        Some((prior, Some(Decision::Rollback))),
        rx,
    )
    .await;
    assert_eq!(
        second.result.outcome,
        Outcome::RolledBack,
        "{:?} {:#?}",
        second.result.reason,
        second
            .events
            .iter()
            .map(|e| format!("{:?}", e.kind))
            .collect::<Vec<_>>()
    );
    // The journal never saw the failover's `executed`, yet the rollback put the primary
    // back: a killed step's change may have taken effect.
    assert!(second.count(|k| matches!(k, EventKind::StepRolledBack { step, .. } if step.as_str() == "valkey-switchover")) == 1);
    assert_eq!(valkey_primary_region(&second.world).await, "us-east-1");
    assert_eq!(second.applied("FailoverGlobalReplicationGroup"), 2);
}

#[tokio::test(start_paused = true)]
async fn at_most_max_parallel_steps_run_at_once_and_the_rest_start_in_file_order() {
    let mut text = String::from("[runbook]\nname = \"wide\"\nmode = \"unplanned\"\n");
    for i in 0..10 {
        text.push_str(&format!(
            "[[step]]\nid = \"w{i}\"\naction = \"wait\"\nduration = \"30s\"\n"
        ));
    }
    let rb = load(&text);
    let running_at_most = |r: &Run| {
        let (mut now, mut most) = (0i32, 0i32);
        for k in r.kinds() {
            match k {
                EventKind::StepStarted { attempt: 1, .. } => now += 1,
                EventKind::StepSucceeded { .. } => now -= 1,
                _ => {}
            }
            most = most.max(now);
        }
        most
    };
    // Unbounded by the default (64): all ten at once.
    let wide = run(&rb, &SimConfig::default(), &yes()).await;
    assert_eq!(wide.result.outcome, Outcome::Succeeded);
    assert_eq!(running_at_most(&wide), 10);
    assert_eq!(wide.result.makespan, Duration::from_secs(30));

    let narrow = RunConfig {
        max_parallel: Some(3),
        ..yes()
    };
    let r = run(&rb, &SimConfig::default(), &narrow).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Succeeded,
        "{:?}",
        r.result.reason
    );
    assert_eq!(running_at_most(&r), 3);
    // Four rounds of 30 s: 3 + 3 + 3 + 1.
    assert_eq!(r.result.makespan, Duration::from_secs(120));
    let order: Vec<String> = started(&r).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        order,
        (0..10).map(|i| format!("w{i}")).collect::<Vec<_>>(),
        "ready steps start in file order"
    );
}
