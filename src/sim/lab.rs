//! The local lab: simulated control planes, real data planes.
//!
//! A sim config may bind an Aurora cluster or an ElastiCache replication group to a
//! real server on this machine (`local = { host, port, ... }`, see
//! [`super::config::LocalServer`]). Probes and heartbeats that reach a bound member go
//! to its server, and what the simulated control plane does to the member happens to
//! the server too, when the simulated operation does it:
//!
//! - a failover or switchover is accepted: the old PostgreSQL primary is fenced
//!   (`default_transaction_read_only`), because Aurora's old writer stops taking writes
//!   then; writes it acknowledged that its replica had not received are lost, for real;
//! - the operation completes: the new primary is promoted (`pg_promote()` after it has
//!   replayed everything for a switchover; `REPLICAOF NO ONE` for Valkey), and the
//!   other members follow it (`REPLICAOF host port` for Valkey; for PostgreSQL the
//!   binding's `follow` command rebuilds the server as a replica, or it stays fenced);
//! - a switchover cancelled by an outage lifts the fence again.
//!
//! The actions are queued in the world's state when the simulated state changes and run
//! in order, outside the state's lock, by the call that made the change (so a saved
//! world holds what a crashed run had not done yet). A failed action is logged and
//! dropped: the real server's answers then show it (a gate waiting for a writer keeps
//! failing), which is the truth a lab is for.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::LocalServer;
use super::state::State;
use super::world::SimWorld;
use crate::cloud::Endpoint;
use crate::cloud::live::LiveDataPlane;

mod cluster;

/// How long a switchover's target may take to replay the old primary's WAL.
const CATCH_UP: Duration = Duration::from_secs(60);
/// How long a `follow` command may run.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(180);

/// What a bound server must be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum LabAction {
    /// Stop taking writes (PostgreSQL: read-only by default).
    Fence { store: String },
    /// Become the primary; for a switchover, first replay everything `catch_up_from`
    /// (the old primary) has written.
    Promote {
        store: String,
        catch_up_from: Option<String>,
    },
    /// Replicate from `primary`.
    Follow { store: String, primary: String },
    /// Leave the global database or datastore: become a primary of its own.
    Detach { store: String },
}

impl LabAction {
    fn store(&self) -> &str {
        match self {
            Self::Fence { store }
            | Self::Promote { store, .. }
            | Self::Follow { store, .. }
            | Self::Detach { store } => store,
        }
    }
}

impl State {
    /// Queues `a` if its member is bound to a local server.
    pub(crate) fn lab_push(&mut self, a: LabAction) {
        if self.bindings.contains_key(a.store()) {
            self.lab.push(a);
        }
    }
}

/// Where a bound server is reached: its address, and the binding's credentials, else
/// the probing step's.
pub(crate) fn endpoint_of(
    b: &LocalServer,
    user: Option<&str>,
    password_env: Option<&str>,
) -> Endpoint {
    Endpoint {
        host: b.host.clone(),
        port: b.port,
        user: b.user.clone().or_else(|| user.map(str::to_string)),
        password_env: b
            .password_env
            .clone()
            .or_else(|| password_env.map(str::to_string)),
        tls: crate::cloud::Tls::Off,
    }
}

fn is_postgres(store: &str) -> bool {
    store.starts_with("cluster:")
}

fn database(b: &LocalServer) -> &str {
    b.database.as_deref().unwrap_or("postgres")
}

impl SimWorld {
    /// Runs the queued lab actions, in order, one at a time. They run in a task of
    /// their own: a caller that gives up (a timed-out probe, a cancelled step) must not
    /// stop a server half-way through being rebuilt.
    pub(crate) async fn run_lab(&self) {
        if self.with_state(|s| s.lab.is_empty()) {
            return;
        }
        let world = self.clone();
        let _ = tokio::spawn(async move { world.drain_lab().await }).await;
    }

    async fn drain_lab(&self) {
        let _one_at_a_time = self.lab_lock().lock().await;
        loop {
            // Taken off the queue only once done: a world saved meanwhile (a crash)
            // still holds it, and the resumed run does it again (each is idempotent).
            let next = self.with_state(|s| s.lab.first().cloned().map(|a| (a, s.bindings.clone())));
            let Some((action, bindings)) = next else {
                return;
            };
            let result = execute(self.live(), &action, &bindings).await;
            self.with_state(|s| {
                if s.lab.first() == Some(&action) {
                    s.lab.remove(0);
                }
                match (&result, &action) {
                    (Ok(_), LabAction::Fence { store }) => {
                        s.fenced.insert(store.clone());
                    }
                    (
                        Ok(done),
                        LabAction::Promote { store, .. }
                        | LabAction::Follow { store, .. }
                        | LabAction::Detach { store },
                    ) if !done.contains("stays fenced") => {
                        s.fenced.remove(store);
                    }
                    _ => {}
                }
            });
            match result {
                Ok(done) => tracing::info!(target: "drpilot::lab", "{done}"),
                Err(why) => tracing::warn!(target: "drpilot::lab", "local lab: {why}"),
            }
        }
    }
}

fn bound<'a>(
    bindings: &'a BTreeMap<String, LocalServer>,
    store: &str,
) -> Result<&'a LocalServer, String> {
    bindings
        .get(store)
        .ok_or_else(|| format!("{store} is not bound to a local server"))
}

async fn execute(
    live: &LiveDataPlane,
    action: &LabAction,
    bindings: &BTreeMap<String, LocalServer>,
) -> Result<String, String> {
    let store = action.store();
    let b = bound(bindings, store)?;
    let at = format!("{store} ({}:{})", b.host, b.port);
    if !b.nodes.is_empty() {
        return cluster::execute(live, action, b, &at).await;
    }
    let ep = endpoint_of(b, None, None);
    let fail = |what: &str, e: crate::cloud::CloudError| format!("{what} {at}: {}", e.message);
    match action {
        LabAction::Fence { .. } if is_postgres(store) => {
            live.admin_sql(
                &ep,
                database(b),
                &[
                    "ALTER SYSTEM SET default_transaction_read_only = on",
                    "SELECT pg_reload_conf()",
                ],
            )
            .await
            .map_err(|e| fail("could not fence", e))?;
            Ok(format!("fenced {at} read-only"))
        }
        LabAction::Fence { .. } => Ok(format!("{at}: nothing to fence")),
        // Outside a cluster, leaving is being promoted, with nothing to catch up on.
        LabAction::Promote { .. } | LabAction::Detach { .. } if is_postgres(store) => {
            if let LabAction::Promote {
                catch_up_from: Some(old),
                ..
            } = action
                && let Ok(ob) = bound(bindings, old)
            {
                catch_up(live, b, ob, &at).await?;
            }
            let in_recovery = live
                .admin_sql(&ep, database(b), &["SELECT pg_is_in_recovery()"])
                .await
                .map_err(|e| fail("could not reach", e))?;
            if in_recovery.first() == Some(&Some("t".into())) {
                let promoted = live
                    .admin_sql(&ep, database(b), &["SELECT pg_promote(true, 60)"])
                    .await
                    .map_err(|e| fail("pg_promote() failed on", e))?;
                if promoted.first() != Some(&Some("t".into())) {
                    return Err(format!("pg_promote() did not complete on {at} within 60s"));
                }
            }
            live.admin_sql(
                &ep,
                database(b),
                &[
                    "ALTER SYSTEM RESET default_transaction_read_only",
                    "SELECT pg_reload_conf()",
                ],
            )
            .await
            .map_err(|e| fail("could not lift the fence of", e))?;
            Ok(format!("promoted {at}"))
        }
        LabAction::Promote { .. } | LabAction::Detach { .. } => {
            live.admin_redis(&ep, &["REPLICAOF", "NO", "ONE"])
                .await
                .map_err(|e| fail("REPLICAOF NO ONE failed on", e))?;
            Ok(format!("promoted {at} (REPLICAOF NO ONE)"))
        }
        LabAction::Follow { primary, .. } => {
            let p = bound(bindings, primary)
                .map_err(|_| format!("{at} cannot follow {primary}: it is simulated, not bound"))?;
            if !is_postgres(store) {
                let port = p.port.to_string();
                live.admin_redis(&ep, &["REPLICAOF", &p.host, &port])
                    .await
                    .map_err(|e| fail("REPLICAOF failed on", e))?;
                return Ok(format!("{at} follows {}:{}", p.host, p.port));
            }
            if b.follow.is_empty() {
                return Ok(format!(
                    "{at} stays fenced read-only (no `follow` command to rebuild it as a \
                     replica of {}:{})",
                    p.host, p.port
                ));
            }
            follow(b, p, &at).await
        }
    }
}

/// Waits until `target` has replayed everything `old` (fenced) has written.
async fn catch_up(
    live: &LiveDataPlane,
    target: &LocalServer,
    old: &LocalServer,
    at: &str,
) -> Result<(), String> {
    let (tep, oep) = (
        endpoint_of(target, None, None),
        endpoint_of(old, None, None),
    );
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let lsn = live
            .admin_sql(&oep, database(old), &["SELECT pg_current_wal_lsn()"])
            .await;
        // An old primary that is itself in recovery (or gone) has nothing to wait for.
        let Ok(lsn) = lsn else { return Ok(()) };
        let Some(Some(lsn)) = lsn.first().cloned() else {
            return Ok(());
        };
        if !lsn.chars().all(|c| c.is_ascii_hexdigit() || c == '/') {
            return Err(format!("unexpected WAL position {lsn:?}"));
        }
        let caught = live
            .admin_sql(
                &tep,
                database(target),
                &[&format!(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn, true)"
                )],
            )
            .await
            .map_err(|e| format!("could not read the replay position of {at}: {}", e.message))?;
        if caught.first() == Some(&Some("t".into())) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{at} had not replayed the old primary's WAL (up to {lsn}) after {}s: not promoted",
                CATCH_UP.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the binding's `follow` command for `b`, which must rebuild it as a replica of
/// `primary`.
async fn follow(b: &LocalServer, primary: &LocalServer, at: &str) -> Result<String, String> {
    let (program, args) = b
        .follow
        .split_first()
        .ok_or_else(|| format!("{at} has no follow command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("DRPILOT_LAB_PRIMARY_HOST", &primary.host)
        .env("DRPILOT_LAB_PRIMARY_PORT", primary.port.to_string())
        .env("DRPILOT_LAB_HOST", &b.host)
        .env("DRPILOT_LAB_PORT", b.port.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(FOLLOW_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            format!(
                "follow command of {at} ran longer than {}s",
                FOLLOW_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("follow command of {at} ({program}) could not start: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "follow command of {at} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(format!(
        "{at} rebuilt as a replica of {}:{}",
        primary.host, primary.port
    ))
}
