//! The data-plane checks: what applications see, which no control plane can tell.
//!
//! An endpoint that does not answer is an observation ("connection refused"), not an
//! error: the gate keeps polling, and the live view says why it has not passed. Errors
//! that polling cannot fix (access denied, a malformed request) are returned. Passwords
//! are only ever named by `password_env`; any message from a driver is scrubbed of the
//! variable's value before it is shown.

use std::collections::BTreeSet;
use std::time::Duration;

use super::support::{redact_env, redact_url, short};
use super::{ActionError, Observation, StepContext, fields as f};
use crate::cloud::{CloudError, Endpoint, HttpProbe};
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fake::Harness;
    use super::super::{ActionErrorKind, check};
    use crate::cloud::{
        CloudError, CloudErrorKind, HttpObservation, PostgresObservation, ValkeyObservation,
    };
    use crate::runbook::catalogue::lookup;

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
}
