//! The Aurora checks: `aurora.writer_in_region`, `lag_below`, `cluster_available`,
//! `global_endpoint`.

use super::{AVAILABLE, describe_global, max_lag, state_text, writer_text};
use crate::actions::support::{arn_name, short};
use crate::actions::{ActionError, Fact, Observation, StepContext, fields as f};
use crate::runbook::model::Fields;

/// `aurora.writer_in_region`.
pub async fn writer_in_region(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let region = f::str(fields, "region")?;
    let g = describe_global(ctx, id, &[region]).await?;
    let in_region = g.writer().is_some_and(|w| w.region == region);
    Ok(match &g.failover_state {
        Some(fs) => Observation {
            passed: false,
            observed: format!("{} ({} in progress)", writer_text(&g), state_text(fs)),
        },
        None => Observation {
            passed: in_region,
            observed: writer_text(&g),
        },
    })
}

/// `aurora.lag_below`: every secondary (or the one named) lags at most `max_lag`. An
/// unknown lag does not pass: nothing shows the data is there.
pub async fn lag_below(ctx: &StepContext<'_>, fields: &Fields) -> Result<Observation, ActionError> {
    lag_below_facts(ctx, fields).await.map(|(o, _)| o)
}

/// [`lag_below`], with each lag it read as a [`Fact`] (the preflight's, for
/// `drpilot readiness`).
pub async fn lag_below_facts(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<(Observation, Vec<Fact>), ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let Some(max) = max_lag(ctx, fields)? else {
        return Err(ActionError::permanent(
            "no max_lag and no objectives.rpo to compare the lag with",
        ));
    };
    let secondaries: Vec<String> = match f::opt_str(fields, "cluster")? {
        Some(c) => vec![c.to_string()],
        None => {
            let g = describe_global(ctx, id, &[]).await?;
            g.members
                .iter()
                .filter(|m| !m.is_writer)
                .map(|m| m.cluster_arn.clone())
                .collect()
        }
    };
    if secondaries.is_empty() {
        return Ok((
            Observation {
                passed: false,
                observed: format!("{id} has no secondary"),
            },
            Vec::new(),
        ));
    }
    let mut facts = Vec::new();
    let mut parts = Vec::new();
    let mut passed = true;
    for arn in &secondaries {
        let region = f::region_of("cluster", arn)?;
        let lag = ctx.cloud.rds.replication_lag(region, id, arn).await?;
        if let Some(l) = lag {
            facts.push(Fact::AuroraLag {
                global_cluster: id.to_string(),
                cluster: arn.clone(),
                region: region.to_string(),
                lag: l,
            });
        }
        let (ok, text) = match lag {
            Some(l) if l <= max => (true, format!("lag {} <= {}", short(l), short(max))),
            Some(l) => (false, format!("lag {} > {}", short(l), short(max))),
            None => (false, "lag unknown (no recent datapoint)".to_string()),
        };
        passed &= ok;
        parts.push(if secondaries.len() == 1 {
            text
        } else {
            format!("{} {text}", arn_name(arn))
        });
    }
    Ok((
        Observation {
            passed,
            observed: parts.join(", "),
        },
        facts,
    ))
}

/// `aurora.cluster_available`.
pub async fn cluster_available(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let arn = f::str(fields, "cluster")?;
    let c = ctx.cloud.rds.describe_cluster(arn).await?;
    Ok(Observation {
        passed: c.status == AVAILABLE,
        observed: format!(
            "{} is {} ({} instance(s))",
            arn_name(arn),
            c.status,
            c.instances
        ),
    })
}

/// `aurora.global_endpoint`: the global writer endpoint resolves (CNAME, through the
/// step's resolvers) to the current writer's cluster endpoint, the writer being in
/// `region` when given. Aurora moves that CNAME when a managed failover or switchover
/// completes; until then (or after a detach, which leaves it behind) applications that
/// connect through it reach the old primary, so a gate on it waits.
pub async fn global_endpoint(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let id = f::str(fields, "global_cluster")?;
    let region = f::opt_str(fields, "region")?;
    let resolvers = f::list_or_empty(fields, "resolvers")?;
    let preferred: Vec<&str> = region.into_iter().collect();
    let g = describe_global(ctx, id, &preferred).await?;
    let Some(endpoint) = g.endpoint.as_deref() else {
        return Err(ActionError::permanent(format!(
            "global cluster {id} has no writer endpoint (GlobalCluster.Endpoint is empty: \
             the engine version does not provide one)"
        )));
    };
    if let Some(fs) = &g.failover_state {
        return Ok(Observation {
            passed: false,
            observed: format!("{endpoint}: {} in progress", state_text(fs)),
        });
    }
    let Some(writer) = g.writer() else {
        return Ok(Observation {
            passed: false,
            observed: format!(
                "{endpoint}: {id} has no single writer ({})",
                writer_text(&g)
            ),
        });
    };
    if let Some(r) = region.filter(|r| *r != writer.region) {
        return Ok(Observation {
            passed: false,
            observed: format!("{endpoint}: the writer is in {}, not {r}", writer.region),
        });
    }
    let cluster = ctx.cloud.rds.describe_cluster(&writer.cluster_arn).await?;
    let answer = match ctx.cloud.data.resolve(endpoint, "CNAME", resolvers).await {
        Ok(v) => v,
        Err(e) if e.kind == crate::cloud::CloudErrorKind::NotFound => {
            return Ok(Observation {
                passed: false,
                observed: format!("{endpoint} does not resolve ({})", e.message),
            });
        }
        Err(e) if e.is_retryable() => {
            return Ok(Observation {
                passed: false,
                observed: format!("{endpoint}: {}", e.message),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let dns = |v: &str| v.trim_end_matches('.').to_ascii_lowercase();
    let want = dns(&cluster.endpoint);
    let passed = answer.iter().any(|v| dns(v) == want);
    let shown = if answer.is_empty() {
        "nothing".to_string()
    } else {
        answer.join(", ")
    };
    Ok(Observation {
        passed,
        observed: if passed {
            format!(
                "{endpoint} -> {shown} (writer {})",
                arn_name(&writer.cluster_arn)
            )
        } else {
            format!(
                "{endpoint} -> {shown}, not the writer {}'s {}",
                arn_name(&writer.cluster_arn),
                cluster.endpoint
            )
        },
    })
}
