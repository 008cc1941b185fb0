//! The data-plane checks: what applications see, which no control plane can tell.
//!
//! An endpoint that does not answer is an observation ("connection refused"), not an
//! error: the gate keeps polling, and the live view says why it has not passed. Errors
//! that polling cannot fix (access denied, a malformed request) are returned. Passwords
//! are only ever named by `password_env`; any message from a driver is scrubbed of the
//! variable's value before it is shown.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::support::{redact_env, redact_url, short};
use super::{ActionError, Executed, Observation, StepContext, fields as f};
use crate::cloud::{
    CloudError, ClusterMode, ClusterObservation, Endpoint, HeartbeatStore, HeartbeatTarget,
    HttpProbe, ShardBeats, Tls,
};
use crate::runbook::catalogue::Kind;
use crate::runbook::model::Fields;

/// How long an HTTP probe may take when the step sets no `max_latency`.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Turns "the endpoint did not answer" into a failed observation, naming the endpoint
/// (unless the message already does). `redact` blanks the probe's secret (a password
/// variable's value, a URL's credential) in every message.
fn unreachable_is_observation(
    e: CloudError,
    what: &str,
    redact: impl Fn(&str) -> String,
) -> Result<Observation, ActionError> {
    if e.is_retryable() {
        let observed = if e.message.contains(what) {
            e.message
        } else {
            format!("{what}: {}", e.message)
        };
        Ok(Observation {
            passed: false,
            observed: redact(&observed),
        })
    } else {
        let mut err = ActionError::from(e);
        err.message = redact(&err.message);
        if let Some(c) = err.cloud.as_mut() {
            c.message = redact(&c.message);
        }
        Err(err)
    }
}

/// `http.check`.
pub async fn http(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let url = f::str(fields, "url")?;
    let method = f::str_or(fields, "method", "GET")?;
    let expect = f::int_or(fields, "expect_status", 200)?;
    let body_contains = f::opt_str(fields, "body_contains")?;
    let max_latency = f::opt_duration(fields, "max_latency")?;
    let probe = HttpProbe {
        url: url.to_string(),
        method: method.to_string(),
        timeout: max_latency.map_or(HTTP_TIMEOUT, |l| l.max(HTTP_TIMEOUT)),
    };
    let o = match ctx.cloud.data.http(&probe).await {
        Ok(o) => o,
        Err(e) => return unreachable_is_observation(e, url, |t| redact_url(t, url)),
    };
    let mut problems = Vec::new();
    if i64::from(o.status) != expect {
        problems.push(format!("expected {expect}"));
    }
    if let Some(text) = body_contains
        && !o.body.contains(text)
    {
        problems.push(format!("body lacks {text}"));
    }
    if let Some(max) = max_latency
        && o.latency > max
    {
        problems.push(format!("slower than {}", short(max)));
    }
    let seen = format!("{} in {}", o.status, short(o.latency));
    Ok(Observation {
        passed: problems.is_empty(),
        observed: if problems.is_empty() {
            match body_contains {
                Some(text) => format!("{seen}, body has {text}"),
                None => seen,
            }
        } else {
            format!("{seen} ({})", problems.join(", "))
        },
    })
}

/// `postgres.check`: a writer is not in recovery, a reader is; a canary row
/// round-trips when asked (writers only).
pub async fn postgres(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let password_env = f::opt_str(fields, "password_env")?;
    let endpoint = Endpoint {
        host: f::str(fields, "host")?.to_string(),
        port: f::port_or(fields, "port", 5432)?,
        user: Some(f::str(fields, "user")?.to_string()),
        password_env: password_env.map(str::to_string),
        tls: Tls::from_sslmode(f::str_or(fields, "sslmode", "prefer")?),
    };
    let database = f::str_or(fields, "database", "postgres")?;
    let writer = f::str(fields, "expect")? == "writer";
    let canary = writer && f::bool_or(fields, "canary", false)?;
    let o = match ctx.cloud.data.postgres(&endpoint, database, canary).await {
        Ok(o) => o,
        Err(e) => {
            return unreachable_is_observation(e, &endpoint.host, |t| redact_env(t, password_env));
        }
    };
    let role = if o.in_recovery {
        "reader (in recovery)"
    } else {
        "writer (not in recovery)"
    };
    let role_ok = o.in_recovery != writer;
    let canary_ok = !canary || o.canary_ok == Some(true);
    let mut observed = format!("{} is a {role}", endpoint.host);
    if !role_ok {
        observed.push_str(&format!(
            ", expected a {}",
            if writer { "writer" } else { "reader" }
        ));
    }
    if canary {
        observed.push_str(if o.canary_ok == Some(true) {
            ", canary row ok"
        } else {
            ", canary row failed"
        });
    }
    Ok(Observation {
        passed: role_ok && canary_ok,
        observed,
    })
}

/// `valkey.check`: ROLE is master (primary) or slave (replica); a canary key
/// round-trips when asked (primaries only). A cluster (detected, or `cluster = true`)
/// passes only when every shard's primary has the expected role (and the canary
/// round-trips in every shard) and every slot is served.
pub async fn valkey(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let password_env = f::opt_str(fields, "password_env")?;
    let endpoint = Endpoint {
        host: f::str(fields, "host")?.to_string(),
        port: f::port_or(fields, "port", 6379)?,
        user: f::opt_str(fields, "username")?.map(str::to_string),
        password_env: password_env.map(str::to_string),
        tls: Tls::required(f::bool_or(fields, "tls", false)?),
    };
    let primary = f::str(fields, "expect")? == "primary";
    let canary = primary && f::bool_or(fields, "canary", false)?;
    let mode = ClusterMode::from_field(f::opt_bool(fields, "cluster")?);
    let o = match ctx.cloud.data.valkey(&endpoint, mode, canary).await {
        Ok(o) => o,
        Err(e) => {
            return unreachable_is_observation(e, &endpoint.host, |t| redact_env(t, password_env));
        }
    };
    if let Some(c) = &o.cluster {
        let seen = cluster_seen(&endpoint.host, c, primary, canary);
        return Ok(Observation {
            passed: seen.passed,
            observed: redact_env(&seen.observed, password_env),
        });
    }
    let role_ok = role_is(&o.role, primary);
    let canary_ok = !canary || o.canary_ok == Some(true);
    let mut observed = format!("{} role {}", endpoint.host, o.role);
    if !role_ok {
        observed.push_str(&format!(
            ", expected {}",
            if primary { "primary" } else { "replica" }
        ));
    }
    if canary {
        observed.push_str(if o.canary_ok == Some(true) {
            ", canary key ok"
        } else {
            ", canary key failed"
        });
    }
    Ok(Observation {
        passed: role_ok && canary_ok,
        observed: redact_env(&observed, password_env),
    })
}

/// Whether a `ROLE` answer is a primary's (`primary`) or a replica's.
fn role_is(role: &str, primary: bool) -> bool {
    if primary {
        matches!(role, "master" | "primary")
    } else {
        matches!(role, "slave" | "replica")
    }
}

/// A cluster as `valkey.check` judges it: each shard's primary answers with the
/// expected role (and its canary round-trips, when asked), and every slot is served.
/// Every shard is listed with its primary, and every problem names its shard.
fn cluster_seen(host: &str, c: &ClusterObservation, primary: bool, canary: bool) -> Observation {
    let expected = if primary { "primary" } else { "replica" };
    let mut listed = Vec::new();
    let mut problems = Vec::new();
    for s in &c.shards {
        let at = s.primary.as_deref().unwrap_or("no primary");
        listed.push(format!(
            "{} at {at} {}",
            s.slots,
            s.role.as_deref().unwrap_or("unreachable")
        ));
        if let Some(p) = &s.problem {
            problems.push(format!("shard {}: {p}", s.slots));
            continue;
        }
        match s.role.as_deref() {
            Some(role) if role_is(role, primary) => {}
            Some(role) => problems.push(format!(
                "shard {}: its primary {at} has role {role}, expected {expected}",
                s.slots
            )),
            None => problems.push(format!("shard {}: no role from {at}", s.slots)),
        }
        if canary
            && s.role.as_deref().is_some_and(|r| role_is(r, true))
            && s.canary_ok != Some(true)
        {
            problems.push(format!("shard {}: canary key failed", s.slots));
        }
    }
    if c.shards.is_empty() {
        problems.push("no shard serves any slot".into());
    }
    if c.unserved_slots > 0 {
        problems.push(format!(
            "{} slot{} served by no shard",
            c.unserved_slots,
            if c.unserved_slots == 1 { "" } else { "s" }
        ));
    }
    let n = c.shards.len();
    let mut observed = format!(
        "{host}: cluster of {n} shard{} ({})",
        if n == 1 { "" } else { "s" },
        listed.join(", ")
    );
    if problems.is_empty() {
        if canary {
            observed.push_str(", canary key ok in every shard");
        }
    } else {
        observed.push_str("; ");
        observed.push_str(&problems.join("; "));
    }
    Observation {
        passed: problems.is_empty(),
        observed,
    }
}

/// A resolved name for comparison: lower case, no trailing dot.
fn dns_form(v: &str) -> String {
    v.trim_end_matches('.').to_ascii_lowercase()
}

/// `dns.check`: the answer equals `expect` as a set.
pub async fn dns(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let name = f::str(fields, "name")?;
    let record_type = f::str_or(fields, "type", "A")?;
    let expect = f::list(fields, "expect")?;
    let resolvers = f::list_or_empty(fields, "resolvers")?;
    let got = match ctx.cloud.data.resolve(name, record_type, resolvers).await {
        Ok(v) => v,
        Err(e) if e.kind == crate::cloud::CloudErrorKind::NotFound => {
            return Ok(Observation {
                passed: false,
                observed: format!("{name} {record_type} does not resolve ({})", e.message),
            });
        }
        Err(e) => return unreachable_is_observation(e, name, str::to_string),
    };
    let have: BTreeSet<String> = got.iter().map(|v| dns_form(v)).collect();
    let want: BTreeSet<String> = expect.iter().map(|v| dns_form(v)).collect();
    let shown = if got.is_empty() {
        "nothing".to_string()
    } else {
        got.join(", ")
    };
    Ok(Observation {
        passed: have == want,
        observed: if have == want {
            format!("{name} {record_type} -> {shown}")
        } else {
            format!(
                "{name} {record_type} -> {shown} (expected {})",
                expect.join(", ")
            )
        },
    })
}

/// The store a `postgres.heartbeat` / `valkey.heartbeat` step measures, and the
/// interval its writer uses. `drpilot heartbeat` and drills write to the same target.
pub fn heartbeat_target(
    action: Kind,
    fields: &Fields,
) -> Result<(HeartbeatTarget, Duration), ActionError> {
    let password_env = f::opt_str(fields, "password_env")?.map(str::to_string);
    let host = f::str(fields, "host")?.to_string();
    let (endpoint, store) = if action == Kind::PostgresHeartbeat {
        let table = f::str_or(fields, "table", "drpilot_heartbeat")?;
        crate::heartbeat::quoted_table(table).map_err(ActionError::permanent)?;
        (
            Endpoint {
                host,
                port: f::port_or(fields, "port", 5432)?,
                user: Some(f::str(fields, "user")?.to_string()),
                password_env,
                tls: Tls::from_sslmode(f::str_or(fields, "sslmode", "prefer")?),
            },
            HeartbeatStore::Postgres {
                database: f::str_or(fields, "database", "postgres")?.to_string(),
                table: table.to_string(),
            },
        )
    } else {
        (
            Endpoint {
                host,
                port: f::port_or(fields, "port", 6379)?,
                user: f::opt_str(fields, "username")?.map(str::to_string),
                password_env,
                tls: Tls::required(f::bool_or(fields, "tls", false)?),
            },
            HeartbeatStore::Valkey {
                key: f::str_or(fields, "key", "drpilot:heartbeat")?.to_string(),
                cluster: ClusterMode::from_field(f::opt_bool(fields, "cluster")?),
            },
        )
    };
    let interval = f::duration_or(fields, "interval", crate::heartbeat::DEFAULT_INTERVAL)?
        .max(Duration::from_millis(100));
    Ok((HeartbeatTarget { endpoint, store }, interval))
}

/// How old the newest heartbeat may be for writes to count as flowing: three
/// intervals, and never less than 5 s (a writer connects afresh each time).
fn fresh_within(interval: Duration) -> Duration {
    (interval * 3).max(Duration::from_secs(5))
}

fn ms_between(later: i64, earlier: i64) -> Duration {
    Duration::from_millis(u64::try_from(later.saturating_sub(earlier)).unwrap_or(0))
}

/// A heartbeat step as a check (a gate, or preflight): are heartbeats flowing through
/// the endpoint now? Measures nothing.
pub async fn heartbeat_flowing(
    ctx: &StepContext<'_>,
    action: Kind,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let (target, interval) = heartbeat_target(action, fields)?;
    let password_env = target.endpoint.password_env.clone();
    let now_ms = ctx.clock.now().as_millisecond();
    let window = fresh_within(interval);
    let since = crate::heartbeat::before(now_ms, window);
    let host = target.endpoint.host.clone();
    let read = match ctx.cloud.data.heartbeat_read(&target, since).await {
        Ok(b) => b,
        Err(e) => {
            return unreachable_is_observation(e, &host, |t| {
                redact_env(t, password_env.as_deref())
            });
        }
    };
    // The newest heartbeat of every stream: a shard without one holds the check back.
    let newest: Vec<(String, Option<i64>)> = read
        .iter()
        .map(|s| (s.shard.label(), s.beats.iter().map(|b| b.at_ms).max()))
        .collect();
    let silent: Vec<&str> = newest
        .iter()
        .filter(|(_, n)| n.is_none())
        .map(|(label, _)| label.as_str())
        .collect();
    let stalest = newest.iter().filter_map(|(_, n)| *n).min();
    let cluster = read.iter().any(|s| s.shard.slots.is_some());
    let passed = silent.is_empty() && stalest.is_some();
    let observed = match (cluster, passed, stalest) {
        (false, true, Some(at)) => format!(
            "heartbeats flowing at {host} (newest {} ago)",
            short(ms_between(now_ms, at))
        ),
        (true, true, Some(at)) => format!(
            "heartbeats flowing at {host} in all {} shards (the stalest shard's newest {} ago)",
            read.len(),
            short(ms_between(now_ms, at))
        ),
        (true, _, _) if !silent.is_empty() && silent.len() < read.len() => format!(
            "no heartbeat at {host} in the last {} in {} (is `drpilot heartbeat` running, and \
             can it reach every shard?)",
            short(window),
            silent.join(", ")
        ),
        _ => format!(
            "no heartbeat at {host} in the last {} (is `drpilot heartbeat` running?)",
            short(window)
        ),
    };
    Ok(Observation { passed, observed })
}

/// What a heartbeat step reports: its journaled output, typed. The engine reads the
/// run's RPO from it ([`HeartbeatOutput::of`]), never from a string key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatOutput {
    /// What was seen, for people.
    pub observed: String,
    /// The measured data-loss window; `None` (null) when it could not be measured.
    pub rpo_secs: Option<f64>,
    /// How it was measured, when it was.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// How a heartbeat step measured the RPO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Acknowledged heartbeats missing after the failover (in every shard together).
    pub lost_heartbeats: u64,
    /// The writer whose heartbeats were read (the worst shard's).
    pub writer: String,
    /// The writer's interval: the measurement's resolution.
    pub resolution_secs: f64,
    /// A cluster's shards, each measured on its own (absent for a store that is not a
    /// cluster). The step's RPO is the worst of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardMeasured>,
    /// The slots of the shard whose window is the RPO (absent when not a cluster, or
    /// when no shard lost anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_shard: Option<String>,
}

/// One shard's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardMeasured {
    /// Its slots, e.g. `10923-16383`.
    pub slots: String,
    /// Its data-loss window.
    pub rpo_secs: f64,
    /// Its acknowledged heartbeats missing.
    pub lost_heartbeats: u64,
}

impl HeartbeatOutput {
    fn executed(self) -> Executed {
        Executed {
            summary: self.observed.clone(),
            output: serde_json::to_value(&self).unwrap_or_default(),
        }
    }

    /// The typed output of a heartbeat step's result (`None` for another output).
    pub fn of(executed: &Executed) -> Option<Self> {
        Self::deserialize(&executed.output).ok()
    }

    /// The measured RPO, if there is one.
    pub fn rpo(&self) -> Option<Duration> {
        self.rpo_secs
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}

/// A heartbeat step as a step: waits (up to `wait`) until a heartbeat written after
/// the step started is visible through the endpoint — the writer has reached the new
/// primary — then measures the data-loss window of this run (gaps closed since the
/// run started). Without any heartbeat, or when the heartbeats cannot be read, it
/// passes, saying why the RPO was not measured.
pub async fn heartbeat_measure(
    ctx: &StepContext<'_>,
    action: Kind,
    fields: &Fields,
) -> Result<Executed, ActionError> {
    let (target, interval) = heartbeat_target(action, fields)?;
    let wait = f::duration_or(fields, "wait", Duration::from_secs(30))?;
    let password_env = target.endpoint.password_env.clone();
    let redact = |t: &str| redact_env(t, password_env.as_deref());
    let host = target.endpoint.host.clone();
    let run_start = ctx.clock.origin().as_millisecond();
    let started = ctx.clock.elapsed();
    let started_ms = ctx.clock.now().as_millisecond();
    loop {
        let last = ctx.clock.elapsed().saturating_sub(started) >= wait;
        // The measurement comes after the failover is verified: failing it would roll
        // back a failover that worked. A store it cannot read is reported, not fatal.
        let read = match ctx
            .cloud
            .data
            .heartbeat_read(
                &target,
                crate::heartbeat::before(run_start, crate::heartbeat::KEEP),
            )
            .await
        {
            Ok(b) => Some(b),
            Err(e) if e.is_retryable() && !last => None,
            Err(e) => {
                return Ok(HeartbeatOutput::not_measured(redact(&format!(
                    "heartbeats unreadable at {host}: {}",
                    e.message
                )))
                .executed());
            }
        };
        if let Some(read) = read
            && let Some(out) = judge(&read, run_start, started_ms, last, &host, interval)
        {
            return Ok(out.executed());
        }
        let left = wait.saturating_sub(ctx.clock.elapsed().saturating_sub(started));
        ctx.clock
            .sleep(interval.min(left).max(Duration::from_millis(100)))
            .await;
    }
}

impl HeartbeatOutput {
    fn not_measured(why: String) -> Self {
        HeartbeatOutput {
            observed: format!("RPO not measured: {why}"),
            rpo_secs: None,
            measured: None,
        }
    }
}

/// What the heartbeats read from every stream (the whole store, or each shard of a
/// cluster) say, or `None` to read again (not `last`): a stream's newest heartbeat is
/// still older than the step (`started_ms`), so the writer has not reached its new
/// primary yet. Each shard is measured on its own; the RPO is the worst shard's.
fn judge(
    read: &[ShardBeats],
    run_start: i64,
    started_ms: i64,
    last: bool,
    host: &str,
    interval: Duration,
) -> Option<HeartbeatOutput> {
    use crate::heartbeat::{Measurement, measure};
    let at = |label: &str| {
        if label.is_empty() {
            host.to_string()
        } else {
            format!("{host} in {label}")
        }
    };
    let measured: Vec<(String, Option<Measurement>)> = read
        .iter()
        .map(|s| (s.shard.label(), measure(&s.beats, run_start)))
        .collect();
    if measured.iter().all(|(_, m)| m.is_none()) {
        return Some(HeartbeatOutput::not_measured(format!(
            "no heartbeat at {host} (start `drpilot heartbeat` before the failover)"
        )));
    }
    for (label, m) in &measured {
        if let Some(m) = m
            && m.lost_before_first > 0
        {
            return Some(HeartbeatOutput::not_measured(format!(
                "writes were lost, but how many is unknown: the writer's first {} acknowledged \
                 heartbeat(s) are all missing at {} (replication was already behind when it \
                 started; start it well before the failover)",
                m.lost_before_first,
                at(label)
            )));
        }
    }
    // Every stream must show a heartbeat written after the step started: the writer has
    // reached the new primary of each.
    let stale = measured
        .iter()
        .find(|(_, m)| m.as_ref().is_none_or(|m| m.newest_at_ms < started_ms));
    if let Some((label, m)) = stale {
        if !last {
            return None;
        }
        return Some(HeartbeatOutput::not_measured(match m {
            Some(m) => format!(
                "the newest heartbeat at {} is {} older than this step (is the writer still \
                 running, and can it reach the new primary?)",
                at(label),
                short(ms_between(started_ms, m.newest_at_ms))
            ),
            None => format!(
                "no heartbeat at {} while the other shards have some (is the writer still \
                 running, and can it reach every shard's new primary?)",
                at(label)
            ),
        }));
    }
    let shards: Vec<(String, Measurement)> = measured
        .into_iter()
        .filter_map(|(label, m)| Some((label, m?)))
        .collect();
    let (worst_label, worst) = shards.iter().max_by_key(|(_, m)| (m.rpo(), m.lost()))?;
    let rpo = worst.rpo();
    let lost: u64 = shards.iter().map(|(_, m)| m.lost()).sum();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let cluster = read.iter().any(|s| s.shard.slots.is_some());
    let observed = if !cluster {
        if lost == 0 {
            format!(
                "RPO 0s: no heartbeat lost at {host} (resolution {})",
                short(interval)
            )
        } else {
            format!(
                "RPO {}: {lost} acknowledged heartbeat{} missing at {host} (resolution {})",
                short(rpo),
                plural(lost),
                short(interval)
            )
        }
    } else if lost == 0 {
        format!(
            "RPO 0s: no heartbeat lost at {host} in any of its {} shards (resolution {})",
            shards.len(),
            short(interval)
        )
    } else {
        let per: Vec<String> = shards
            .iter()
            .map(|(label, m)| {
                let slots = label.trim_start_matches("shard ");
                if m.lost() == 0 {
                    format!("{slots} 0s")
                } else {
                    format!("{slots} {} ({} lost)", short(m.rpo()), m.lost())
                }
            })
            .collect();
        format!(
            "RPO {} in {worst_label}, the worst of {}: {lost} acknowledged heartbeat{} missing \
             at {host} (per shard: {}; resolution {})",
            short(rpo),
            shards.len(),
            plural(lost),
            per.join(", "),
            short(interval)
        )
    };
    let slots_of = |label: &str| label.trim_start_matches("shard ").to_string();
    Some(HeartbeatOutput {
        observed,
        rpo_secs: Some(rpo.as_secs_f64()),
        measured: Some(Measured {
            lost_heartbeats: lost,
            writer: worst.writer.clone(),
            resolution_secs: interval.as_secs_f64(),
            shards: if cluster {
                shards
                    .iter()
                    .map(|(label, m)| ShardMeasured {
                        slots: slots_of(label),
                        rpo_secs: m.rpo().as_secs_f64(),
                        lost_heartbeats: m.lost(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            worst_shard: (cluster && lost > 0).then(|| slots_of(worst_label)),
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{DATASTORE, HEALTH_CHECK, Harness, USW2, ZONE};
    use super::super::{ActionErrorKind, check};
    use crate::cloud::{ChangeAction, CloudErrorKind, RecordChange, RecordSet};
    use crate::runbook::catalogue::lookup;
    use crate::runbook::model::FieldValue;
    use crate::sim::{FaultKind, FaultSpec};

    #[test]
    fn a_heartbeat_output_is_journaled_as_it_always_was() {
        use super::{Executed, HeartbeatOutput, Measured};
        let measured = HeartbeatOutput {
            observed: "RPO 5s".into(),
            rpo_secs: Some(5.0),
            measured: Some(Measured {
                lost_heartbeats: 5,
                writer: "w1".into(),
                resolution_secs: 1.0,
                shards: Vec::new(),
                worst_shard: None,
            }),
        };
        let wire = serde_json::json!({
            "observed": "RPO 5s", "rpo_secs": 5.0, "lost_heartbeats": 5, "writer": "w1",
            "resolution_secs": 1.0,
        });
        assert_eq!(measured.clone().executed().output, wire);
        let none = serde_json::json!({"observed": "RPO not measured: x", "rpo_secs": null});
        let parsed = HeartbeatOutput::of(&Executed {
            summary: String::new(),
            output: none,
        })
        .unwrap();
        assert_eq!(parsed.rpo(), None);
        let back = HeartbeatOutput::of(&measured.executed()).unwrap();
        assert_eq!(back.rpo(), Some(Duration::from_secs(5)));
        assert_eq!(back.measured.map(|m| m.lost_heartbeats), Some(5));
    }

    /// Long enough for any operation of the world to complete.
    const SETTLE: Duration = Duration::from_secs(600);

    async fn observe(h: &Harness, step: &str) -> (bool, String) {
        observe_with(h, step, &[]).await
    }

    /// A step's check with some of its fields replaced.
    async fn observe_with(h: &Harness, step: &str, set: &[(&str, FieldValue)]) -> (bool, String) {
        let ctx = h.ctx(step);
        let mut fields = ctx.step.fields.clone();
        for (k, v) in set {
            fields.insert((*k).to_string(), v.clone());
        }
        let o = check(&ctx, ctx.step.spec, &fields, None).await.unwrap();
        (o.passed, o.observed)
    }

    fn text(v: &str) -> FieldValue {
        FieldValue::Str(v.into())
    }

    /// UPSERTs a record of the test zone and waits until it is INSYNC.
    async fn upsert(h: &Harness, name: &str, record_type: &str, values: &[&str]) {
        let change = RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.into(),
                record_type: record_type.into(),
                set_identifier: None,
                ttl: Some(30),
                values: values.iter().map(|v| v.to_string()).collect(),
                alias: None,
                weight: None,
                failover: None,
                health_check_id: None,
                routing: Default::default(),
            },
        };
        h.cloud
            .route53
            .change_record_sets(ZONE, &[change])
            .await
            .unwrap();
        h.wait(SETTLE).await;
    }

    #[tokio::test(start_paused = true)]
    async fn http_checks_status_body_and_latency() {
        // Traffic goes to us-west-2 (the failover record's PRIMARY, us-east-1, has its
        // health check inverted), whose application answers in 120 ms.
        let h = Harness::new(
            super::super::testing::RUNBOOK,
            &format!(
                "[timing]\nhttp_latency = \"120ms\"\n[health_checks.{HEALTH_CHECK}]\ninverted = true\n"
            ),
        );
        // No answer: an observation naming the URL, not an error.
        h.fail("Http", CloudErrorKind::Unreachable, None, 1);
        assert_eq!(
            observe(&h, "http").await,
            (
                false,
                "https://api.acme.example/healthz: connection timed out (injected fault)".into()
            )
        );
        assert_eq!(
            observe(&h, "http").await,
            (
                true,
                "200 in 120ms, body has \"region\":\"us-west-2\"".into()
            )
        );
        // us-west-2's application fails, and answers 3 s late.
        h.world.set_app_healthy("us-west-2", false);
        h.world.inject(FaultSpec {
            kind: FaultKind::Latency,
            operation: Some("Http".into()),
            latency: Duration::from_secs(3),
            times: Some(1),
            from: h.clock.elapsed(),
            ..FaultSpec::default()
        });
        assert_eq!(
            observe(&h, "http").await,
            (
                false,
                "503 in 3.2s (expected 200, body lacks \"region\":\"us-west-2\", slower than 2s)"
                    .into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn postgres_and_valkey_roles_and_canaries() {
        let h = Harness::prod();
        assert_eq!(
            observe(&h, "pg").await,
            (
                true,
                "db-writer.acme.internal is a writer (not in recovery), canary row ok".into()
            )
        );
        assert_eq!(
            observe(&h, "vk").await,
            (true, "cache.acme.internal role master".into())
        );
        // The primaries move to us-west-2; both names still lead to us-east-1, whose
        // database and cache are now replicas.
        h.cloud
            .rds
            .switchover_global_cluster("us-east-1", "acme-prod", USW2)
            .await
            .unwrap();
        h.cloud
            .elasticache
            .failover_global_datastore("us-west-2", DATASTORE, "us-west-2", "acme-sessions-usw2")
            .await
            .unwrap();
        h.wait(SETTLE).await;
        assert_eq!(
            observe(&h, "pg").await,
            (
                false,
                "db-writer.acme.internal is a reader (in recovery), expected a writer, canary \
                 row failed"
                    .into()
            )
        );
        assert_eq!(
            observe(&h, "vk").await,
            (
                false,
                "cache.acme.internal role slave, expected primary".into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dns_compares_the_answer_as_a_set() {
        let h = Harness::prod();
        // Before the cutover the name leads to us-east-1's cluster.
        assert_eq!(
            observe(&h, "dns").await,
            (
                false,
                "db-writer.acme.internal CNAME -> \
                 acme-prod-use1.cluster-c8x1dzk0ab12.us-east-1.rds.amazonaws.com (expected \
                 acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com)"
                    .into()
            )
        );
        // Case and a trailing dot do not matter.
        upsert(
            &h,
            "db-writer.acme.internal.",
            "CNAME",
            &["ACME-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com."],
        )
        .await;
        assert!(observe(&h, "dns").await.0);
        // Neither does order; a value more in the answer does.
        let a = |expect: &[&str]| {
            [
                ("name", text("new.acme.internal")),
                ("type", text("A")),
                (
                    "expect",
                    FieldValue::List(expect.iter().map(|v| v.to_string()).collect()),
                ),
            ]
        };
        assert!(
            observe_with(&h, "dns", &a(&["10.0.0.1", "10.0.0.2"]))
                .await
                .0
        );
        let (passed, observed) = observe_with(&h, "dns", &a(&["10.0.0.2"])).await;
        assert!(!passed);
        assert_eq!(
            observed,
            "new.acme.internal A -> 10.0.0.2, 10.0.0.1 (expected 10.0.0.2)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_secret_reaches_an_error_or_observation() {
        // The `pg` step names PATH as its password variable: its value stands in for a
        // password that a driver might echo. The world's drivers echo the host they
        // were given, so the secret goes there.
        let Ok(secret) = std::env::var("PATH") else {
            return;
        };
        let h = Harness::prod();
        let ctx = h.ctx("pg");
        let spec = lookup("postgres.check").unwrap();
        let with_host = |host: String| {
            let mut fields = ctx.step.fields.clone();
            fields.insert("host".into(), FieldValue::Str(host));
            fields
        };
        // Unreachable (us-east-1's database times out): an observation, scrubbed.
        h.down("us-east-1");
        let fields = with_host(format!("acme-prod-use1.{secret}"));
        let o = check(&ctx, spec, &fields, None).await.unwrap();
        assert!(!o.passed && !o.observed.contains(&secret), "{}", o.observed);
        assert!(o.observed.contains("****"), "{}", o.observed);
        assert!(o.observed.contains("timed out"), "{}", o.observed);
        // A name that does not resolve: an error, scrubbed too.
        let fields = with_host(format!("{secret}.invalid"));
        let e = check(&ctx, spec, &fields, None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent);
        assert!(!e.message.contains(&secret), "{}", e.message);
        assert!(e.message.contains("****"), "{}", e.message);
        assert!(!e.cloud.unwrap().message.contains(&secret));
    }

    #[tokio::test(start_paused = true)]
    async fn a_urls_password_never_reaches_an_observation_or_error() {
        // Validation refuses such a URL in a runbook; the probe still must not echo one
        // that arrives another way.
        let h = Harness::prod();
        let ctx = h.ctx("http");
        let spec = lookup("http.check").unwrap();
        let with_url = |url: &str| {
            let mut fields = ctx.step.fields.clone();
            fields.insert("url".into(), FieldValue::Str(url.into()));
            fields
        };
        // The application answers too late: the timeout names the URL.
        h.world.inject(FaultSpec {
            kind: FaultKind::Latency,
            operation: Some("Http".into()),
            latency: Duration::from_secs(20),
            times: Some(1),
            from: h.clock.elapsed(),
            ..FaultSpec::default()
        });
        let fields = with_url("https://probe:UrlCanary42@api.acme.example/healthz");
        let o = check(&ctx, spec, &fields, None).await.unwrap();
        assert!(!o.passed);
        assert!(!o.observed.contains("UrlCanary42"), "{}", o.observed);
        assert!(
            o.observed.contains("probe:***@api.acme.example"),
            "{}",
            o.observed
        );
        // A URL the client refuses: an error that names it.
        let fields = with_url("ftp://probe:UrlCanary42@api.acme.example/healthz");
        let e = check(&ctx, spec, &fields, None).await.unwrap_err();
        assert!(!e.message.contains("UrlCanary42"), "{}", e.message);
        assert!(e.message.contains("probe:***@api"), "{}", e.message);
        assert!(!e.cloud.unwrap().message.contains("UrlCanary42"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_step_without_heartbeats_says_the_rpo_was_not_measured() {
        let h = Harness::prod();
        let ctx = h.ctx("pgbeat");
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        assert!(
            e.summary.starts_with("RPO not measured: no heartbeat"),
            "{}",
            e.summary
        );
        assert!(e.output["rpo_secs"].is_null());
        // As a gate: nothing flows.
        let (passed, seen) = observe(&h, "pgbeat").await;
        assert!(!passed);
        assert!(seen.contains("is `drpilot heartbeat` running?"), "{seen}");
    }

    fn beat(
        writer: &str,
        seq: u64,
        at_ms: i64,
        prev_at_ms: Option<i64>,
    ) -> crate::cloud::Heartbeat {
        crate::cloud::Heartbeat {
            writer: writer.into(),
            seq,
            at_ms,
            prev_at_ms,
        }
    }

    /// The world in which us-west-2's cluster replicates 5 s behind the writer.
    fn lagging() -> Harness {
        Harness::new(
            super::super::testing::RUNBOOK,
            "[clusters.acme-prod-usw2]\nlag = \"5s\"\n",
        )
    }

    /// `drpilot heartbeat`'s writer `w1` writes heartbeat `seq` now, through the
    /// `pgbeat` step's endpoint, carrying the time of the one before; returns its time.
    async fn write_beat(h: &Harness, seq: u64, prev_at_ms: Option<i64>) -> i64 {
        let ctx = h.ctx("pgbeat");
        let (target, _) =
            super::heartbeat_target(super::Kind::PostgresHeartbeat, &ctx.step.fields).unwrap();
        let at_ms = h.clock.now().as_millisecond();
        h.cloud
            .data
            .heartbeat_write(
                &target,
                &crate::cloud::HeartbeatShard::whole(),
                &beat("w1", seq, at_ms, prev_at_ms),
                crate::heartbeat::KEEP,
            )
            .await
            .unwrap();
        at_ms
    }

    /// The writer writes heartbeats `1..=last`, one a second; returns the last's time.
    async fn write_beats(h: &Harness, last: u64) -> i64 {
        let mut prev = None;
        for seq in 1..=last {
            h.wait(Duration::from_secs(1)).await;
            prev = Some(write_beat(h, seq, prev).await);
        }
        prev.unwrap()
    }

    /// An unplanned Aurora failover to us-west-2 now (what had not replicated yet is
    /// lost), then the writer's name moved to the new primary.
    async fn fail_over_to_usw2(h: &Harness) {
        h.cloud
            .rds
            .failover_global_cluster("us-west-2", "acme-prod", USW2, true)
            .await
            .unwrap();
        h.wait(SETTLE).await;
        upsert(
            h,
            "db-writer.acme.internal.",
            "CNAME",
            &["acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com"],
        )
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_step_measures_the_gap_closed_after_the_run_started() {
        let h = lagging();
        // 1..=8 acknowledged by us-east-1, one a second; the failover comes right after
        // 8, when 4..=8 had not reached us-west-2 yet (5 s behind): they are lost.
        let eighth = write_beats(&h, 8).await;
        fail_over_to_usw2(&h).await;
        // 9 reaches the new primary once the step has started (it carries 8's time).
        let ctx = h.ctx("pgbeat");
        let (e, ()) = tokio::join!(
            super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields),
            async {
                h.wait(Duration::from_secs(2)).await;
                write_beat(&h, 9, Some(eighth)).await;
            }
        );
        let e = e.unwrap();
        // Survived: 3 at 3 s; last lost: 8 at 8 s.
        assert_eq!(e.output["rpo_secs"].as_f64(), Some(5.0), "{e:?}");
        assert_eq!(e.output["lost_heartbeats"].as_u64(), Some(5));
        assert!(
            e.summary
                .starts_with("RPO 5s: 5 acknowledged heartbeats missing"),
            "{}",
            e.summary
        );
    }

    /// Replication already broken when the writer started: none of its heartbeats from
    /// before the failover reached the new primary. That is data loss of unknown size,
    /// never "RPO 0s".
    #[tokio::test(start_paused = true)]
    async fn a_writer_whose_whole_beginning_was_lost_measures_nothing_rather_than_zero() {
        let h = lagging();
        // 1..=5 written in the 5 s before the failover: none had reached us-west-2.
        let fifth = write_beats(&h, 5).await;
        fail_over_to_usw2(&h).await;
        write_beat(&h, 6, Some(fifth)).await;
        let ctx = h.ctx("pgbeat");
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        assert!(e.output["rpo_secs"].is_null(), "{e:?}");
        assert!(
            e.summary
                .contains("first 5 acknowledged heartbeat(s) are all missing"),
            "{}",
            e.summary
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_step_waits_for_the_writer_then_gives_up_without_failing() {
        let h = Harness::prod();
        // The writer wrote once, 5 s before the step, and stopped.
        write_beat(&h, 1, None).await;
        h.wait(Duration::from_secs(5)).await;
        let ctx = h.ctx("pgbeat");
        let before = h.clock.elapsed();
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        // The step's wait is 10s: it polled that long for a fresh heartbeat.
        assert!(h.clock.elapsed() - before >= Duration::from_secs(10));
        assert!(e.summary.contains("older than this step"), "{}", e.summary);
        assert!(e.output["rpo_secs"].is_null());
        // A store that cannot be read is reported the same way, never as a failure.
        h.fail("HeartbeatRead", CloudErrorKind::AccessDenied, None, 1);
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        assert!(e.summary.contains("unreadable"), "{}", e.summary);
        assert!(e.output["rpo_secs"].is_null());
    }

    /// `drpilot heartbeat` writes one round (a heartbeat per shard) through the
    /// `vkbeat` step's endpoint now; the round's time.
    async fn write_round(h: &Harness, writer: &mut crate::heartbeat::Writer) -> i64 {
        let ctx = h.ctx("vkbeat");
        let (target, _) =
            super::heartbeat_target(super::Kind::ValkeyHeartbeat, &ctx.step.fields).unwrap();
        let written =
            crate::actions::heartbeats::beat(writer, h.cloud.data.as_ref(), &target, &h.clock)
                .await
                .unwrap();
        written[0].at_ms
    }

    /// A 3-shard cluster in a Global Datastore whose us-west-2 member's second shard
    /// stops receiving at 3 s: after the failover, the step measures each shard on its
    /// own, and the RPO is the second shard's, named as the worst.
    #[tokio::test(start_paused = true)]
    async fn a_valkey_cluster_is_measured_shard_by_shard_and_the_worst_shard_is_the_rpo() {
        let h = Harness::new(
            super::super::testing::RUNBOOK,
            "[datastores.ldgnf-acme-sessions]\nshards = 3\n\
             [replication_groups.acme-sessions-usw2]\ncut_shards = [2]\ncut_from = \"3s\"\n",
        );
        // The check sees every shard's primary.
        let (passed, seen) = observe_with(&h, "vk", &[("canary", FieldValue::Bool(true))]).await;
        assert!(passed, "{seen}");
        assert!(
            seen.starts_with("cache.acme.internal: cluster of 3 shards (0-5460 at "),
            "{seen}"
        );
        assert!(seen.ends_with(", canary key ok in every shard"), "{seen}");
        // Rounds at 1..=6 s: shard 2's of 3..=6 s never reach us-west-2.
        let mut w = crate::heartbeat::Writer::with_id("w1");
        let mut at = Vec::new();
        for _ in 0..6 {
            h.wait(Duration::from_secs(1)).await;
            at.push(write_round(&h, &mut w).await);
        }
        h.cloud
            .elasticache
            .failover_global_datastore("us-west-2", DATASTORE, "us-west-2", "acme-sessions-usw2")
            .await
            .unwrap();
        h.wait(SETTLE).await;
        upsert(
            &h,
            "cache.acme.internal.",
            "CNAME",
            &["master.acme-sessions-usw2.x1y2z3.usw2.cache.amazonaws.com"],
        )
        .await;
        let ctx = h.ctx("vkbeat");
        let (e, ()) = tokio::join!(
            super::heartbeat_measure(&ctx, super::Kind::ValkeyHeartbeat, &ctx.step.fields),
            async {
                h.wait(Duration::from_secs(2)).await;
                write_round(&h, &mut w).await;
            }
        );
        let out = super::HeartbeatOutput::of(&e.unwrap()).unwrap();
        // Survived: 2 s; last lost: 6 s.
        assert_eq!(
            out.rpo(),
            Some(Duration::from_millis((at[5] - at[1]) as u64))
        );
        assert_eq!(out.rpo(), Some(Duration::from_secs(4)));
        assert_eq!(
            out.observed,
            "RPO 4s in shard 5461-10922, the worst of 3: 4 acknowledged heartbeats missing at \
             cache.acme.internal (per shard: 0-5460 0s, 5461-10922 4s (4 lost), 10923-16383 0s; \
             resolution 1s)"
        );
        // As the journal keeps it (the engine reads the run's RPO back from it).
        let wire = serde_json::to_value(&out).unwrap();
        assert_eq!(wire["rpo_secs"], 4.0);
        assert_eq!(wire["worst_shard"], "5461-10922");
        assert_eq!(wire["shards"][1]["lost_heartbeats"], 4);
        let m = out.measured.unwrap();
        assert_eq!(m.worst_shard.as_deref(), Some("5461-10922"));
        assert_eq!(
            m.shards
                .iter()
                .map(|s| (s.slots.as_str(), s.lost_heartbeats, s.rpo_secs))
                .collect::<Vec<_>>(),
            [
                ("0-5460", 0, 0.0),
                ("5461-10922", 4, 4.0),
                ("10923-16383", 0, 0.0)
            ]
        );
    }
}
