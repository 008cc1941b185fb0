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
use crate::cloud::{CloudError, Endpoint, HeartbeatStore, HeartbeatTarget, HttpProbe};
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
        tls: f::str_or(fields, "sslmode", "prefer")? == "require",
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
/// round-trips when asked (primaries only).
pub async fn valkey(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    let password_env = f::opt_str(fields, "password_env")?;
    let endpoint = Endpoint {
        host: f::str(fields, "host")?.to_string(),
        port: f::port_or(fields, "port", 6379)?,
        user: f::opt_str(fields, "username")?.map(str::to_string),
        password_env: password_env.map(str::to_string),
        tls: f::bool_or(fields, "tls", false)?,
    };
    let primary = f::str(fields, "expect")? == "primary";
    let canary = primary && f::bool_or(fields, "canary", false)?;
    let o = match ctx.cloud.data.valkey(&endpoint, canary).await {
        Ok(o) => o,
        Err(e) => {
            return unreachable_is_observation(e, &endpoint.host, |t| redact_env(t, password_env));
        }
    };
    let is_primary = matches!(o.role.as_str(), "master" | "primary");
    let is_replica = matches!(o.role.as_str(), "slave" | "replica");
    let role_ok = if primary { is_primary } else { is_replica };
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
                tls: f::str_or(fields, "sslmode", "prefer")? == "require",
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
                tls: f::bool_or(fields, "tls", false)?,
            },
            HeartbeatStore::Valkey {
                key: f::str_or(fields, "key", "drpilot:heartbeat")?.to_string(),
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
    let beats = match ctx.cloud.data.heartbeat_read(&target, since).await {
        Ok(b) => b,
        Err(e) => {
            let host = target.endpoint.host.clone();
            return unreachable_is_observation(e, &host, |t| {
                redact_env(t, password_env.as_deref())
            });
        }
    };
    let newest = beats.iter().map(|b| b.at_ms).max();
    Ok(Observation {
        passed: newest.is_some(),
        observed: match newest {
            Some(at) => format!(
                "heartbeats flowing at {} (newest {} ago)",
                target.endpoint.host,
                short(ms_between(now_ms, at))
            ),
            None => format!(
                "no heartbeat at {} in the last {} (is `drpilot heartbeat` running?)",
                target.endpoint.host,
                short(window)
            ),
        },
    })
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
    /// Acknowledged heartbeats missing after the failover.
    pub lost_heartbeats: u64,
    /// The writer whose heartbeats were read.
    pub writer: String,
    /// The writer's interval: the measurement's resolution.
    pub resolution_secs: f64,
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
    let not_measured = |why: String| {
        let observed = format!("RPO not measured: {why}");
        HeartbeatOutput {
            observed,
            rpo_secs: None,
            measured: None,
        }
        .executed()
    };
    loop {
        let last = ctx.clock.elapsed().saturating_sub(started) >= wait;
        // The measurement comes after the failover is verified: failing it would roll
        // back a failover that worked. A store it cannot read is reported, not fatal.
        let beats = match ctx
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
                return Ok(not_measured(redact(&format!(
                    "heartbeats unreadable at {host}: {}",
                    e.message
                ))));
            }
        };
        if let Some(beats) = beats {
            let Some(m) = crate::heartbeat::measure(&beats, run_start) else {
                return Ok(not_measured(format!(
                    "no heartbeat at {host} (start `drpilot heartbeat` before the failover)"
                )));
            };
            if m.lost_before_first > 0 {
                return Ok(not_measured(format!(
                    "writes were lost, but how many is unknown: the writer's first {} \
                     acknowledged heartbeat(s) are all missing at {host} (replication was \
                     already behind when it started; start it well before the failover)",
                    m.lost_before_first
                )));
            }
            if m.newest_at_ms >= started_ms {
                let rpo = m.rpo();
                let observed = if m.gaps.is_empty() {
                    format!(
                        "RPO 0s: no heartbeat lost at {host} (resolution {})",
                        short(interval)
                    )
                } else {
                    format!(
                        "RPO {}: {} acknowledged heartbeat{} missing at {host} (resolution {})",
                        short(rpo),
                        m.lost(),
                        if m.lost() == 1 { "" } else { "s" },
                        short(interval)
                    )
                };
                return Ok(HeartbeatOutput {
                    observed,
                    rpo_secs: Some(rpo.as_secs_f64()),
                    measured: Some(Measured {
                        lost_heartbeats: m.lost(),
                        writer: m.writer,
                        resolution_secs: interval.as_secs_f64(),
                    }),
                }
                .executed());
            }
            if last {
                return Ok(not_measured(format!(
                    "the newest heartbeat at {host} is {} older than this step (is the writer \
                     still running, and can it reach the new primary?)",
                    short(ms_between(started_ms, m.newest_at_ms))
                )));
            }
        }
        let left = wait.saturating_sub(ctx.clock.elapsed().saturating_sub(started));
        ctx.clock
            .sleep(interval.min(left).max(Duration::from_millis(100)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fake::Harness;
    use super::super::{ActionErrorKind, check};
    use crate::cloud::{
        CloudError, CloudErrorKind, HttpObservation, PostgresObservation, ValkeyObservation,
    };
    use crate::runbook::catalogue::lookup;

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

    async fn observe(h: &Harness, step: &str) -> (bool, String) {
        let ctx = h.ctx(step);
        let o = check(&ctx, ctx.step.spec, &ctx.step.fields, None)
            .await
            .unwrap();
        (o.passed, o.observed)
    }

    #[tokio::test(start_paused = true)]
    async fn http_checks_status_body_and_latency() {
        let h = Harness::prod();
        assert_eq!(
            observe(&h, "http").await,
            (
                false,
                "https://api.acme.example/healthz: connection refused".into()
            )
        );
        let ok = HttpObservation {
            status: 200,
            body: "{\"region\":\"us-west-2\"}".into(),
            latency: Duration::from_millis(120),
        };
        h.fake.world().http = Some(Ok(ok.clone()));
        assert_eq!(
            observe(&h, "http").await,
            (
                true,
                "200 in 120ms, body has \"region\":\"us-west-2\"".into()
            )
        );
        h.fake.world().http = Some(Ok(HttpObservation {
            status: 503,
            body: "{\"region\":\"us-east-1\"}".into(),
            latency: Duration::from_secs(3),
        }));
        assert_eq!(
            observe(&h, "http").await,
            (
                false,
                "503 in 3s (expected 200, body lacks \"region\":\"us-west-2\", slower than 2s)"
                    .into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn postgres_and_valkey_roles_and_canaries() {
        let h = Harness::prod();
        h.fake.world().postgres = Some(PostgresObservation {
            in_recovery: false,
            canary_ok: Some(true),
        });
        assert_eq!(
            observe(&h, "pg").await,
            (
                true,
                "db.example is a writer (not in recovery), canary row ok".into()
            )
        );
        h.fake.world().postgres = Some(PostgresObservation {
            in_recovery: true,
            canary_ok: Some(false),
        });
        assert_eq!(
            observe(&h, "pg").await,
            (
                false,
                "db.example is a reader (in recovery), expected a writer, canary row failed".into()
            )
        );
        h.fake.world().valkey = Some(ValkeyObservation {
            role: "master".into(),
            canary_ok: None,
        });
        assert_eq!(
            observe(&h, "vk").await,
            (true, "cache.example role master".into())
        );
        h.fake.world().valkey = Some(ValkeyObservation {
            role: "slave".into(),
            canary_ok: None,
        });
        assert_eq!(
            observe(&h, "vk").await,
            (false, "cache.example role slave, expected primary".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dns_compares_the_answer_as_a_set() {
        let h = Harness::prod();
        assert!(!observe(&h, "dns").await.0);
        h.fake.world().dns.insert(
            "db-writer.acme.internal".into(),
            vec!["ACME-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com.".into()],
        );
        assert!(observe(&h, "dns").await.0);
        h.fake.world().dns.insert(
            "db-writer.acme.internal".into(),
            vec![
                "acme-prod-usw2.cluster-c8x1dzk0ab12.us-west-2.rds.amazonaws.com".into(),
                "other.example".into(),
            ],
        );
        let (passed, observed) = observe(&h, "dns").await;
        assert!(!passed);
        assert!(observed.contains("(expected acme-prod-usw2"), "{observed}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_secret_reaches_an_error_or_observation() {
        // The `pg` step names PATH as its password variable: its value stands in for a
        // password that a driver might echo.
        let Ok(secret) = std::env::var("PATH") else {
            return;
        };
        let h = Harness::prod();
        h.fake.world().postgres = None;
        let ctx = h.ctx("pg");
        let spec = lookup("postgres.check").unwrap();
        // Unreachable: an observation, scrubbed.
        h.fake.world().fail.insert(
            "postgres",
            vec![
                CloudError::new(
                    CloudErrorKind::Unreachable,
                    "connect",
                    None,
                    format!("dial postgres://u:{secret}@db failed"),
                ),
                CloudError::new(
                    CloudErrorKind::AccessDenied,
                    "connect",
                    None,
                    format!("password {secret} rejected"),
                ),
            ],
        );
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert!(!o.passed && !o.observed.contains(&secret), "{}", o.observed);
        assert!(o.observed.contains("****"));
        // Access denied: an error, scrubbed too.
        let e = check(&ctx, spec, &ctx.step.fields, None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent);
        assert!(!e.message.contains(&secret));
        assert!(!e.cloud.unwrap().message.contains(&secret));
    }

    #[tokio::test(start_paused = true)]
    async fn a_urls_password_never_reaches_an_observation_or_error() {
        // Validation refuses such a URL in a runbook; the probe still must not echo one
        // that arrives another way.
        let h = Harness::prod();
        let ctx = h.ctx("http");
        let mut fields = ctx.step.fields.clone();
        let url = "https://probe:UrlCanary42@api.acme.example/healthz";
        fields.insert(
            "url".into(),
            crate::runbook::model::FieldValue::Str(url.into()),
        );
        let spec = lookup("http.check").unwrap();
        h.fake.world().fail.insert(
            "http",
            vec![
                CloudError::new(
                    CloudErrorKind::Unreachable,
                    "Http",
                    None,
                    format!("{url} timed out"),
                ),
                CloudError::new(
                    CloudErrorKind::AccessDenied,
                    "Http",
                    None,
                    format!("{url} refused"),
                ),
            ],
        );
        let o = check(&ctx, spec, &fields, None).await.unwrap();
        assert!(!o.passed);
        assert!(!o.observed.contains("UrlCanary42"), "{}", o.observed);
        assert!(
            o.observed.contains("probe:***@api.acme.example"),
            "{}",
            o.observed
        );
        let e = check(&ctx, spec, &fields, None).await.unwrap_err();
        assert!(!e.message.contains("UrlCanary42"), "{}", e.message);
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

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_step_measures_the_gap_closed_after_the_run_started() {
        let h = Harness::prod();
        let start = h.clock.origin().as_millisecond();
        // 1..=3 before the run; 4..=8 acknowledged by the old primary and lost; 9 on the
        // new primary, written after the step starts (it carries 8's time).
        {
            let mut w = h.fake.world();
            for s in 1..=3 {
                w.heartbeats
                    .push(beat("w1", s, start - 10_000 + s as i64 * 1000, None));
            }
            w.heartbeats
                .push(beat("w1", 9, start + 60_000, Some(start - 2_000)));
        }
        let ctx = h.ctx("pgbeat");
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        // Survived: 3 at start-7s; last lost: 8 at start-2s.
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
        let h = Harness::prod();
        let start = h.clock.origin().as_millisecond();
        h.fake
            .world()
            .heartbeats
            .push(beat("w1", 6, start + 60_000, Some(start + 4_000)));
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
        let start = h.clock.origin().as_millisecond();
        h.fake
            .world()
            .heartbeats
            .push(beat("w1", 1, start - 5_000, None));
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
        h.fake.world().fail.insert(
            "heartbeat_read",
            vec![CloudError::new(CloudErrorKind::AccessDenied, "Postgres", None, "denied"); 1],
        );
        let e = super::heartbeat_measure(&ctx, super::Kind::PostgresHeartbeat, &ctx.step.fields)
            .await
            .unwrap();
        assert!(e.summary.contains("unreadable"), "{}", e.summary);
    }
}
