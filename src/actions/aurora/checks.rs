//! The Aurora checks: `aurora.writer_in_region`, `lag_below`, `cluster_available`.

use super::{AVAILABLE, describe_global, max_lag, state_text, writer_text};
use crate::actions::support::{arn_name, short};
use crate::actions::{ActionError, Observation, StepContext, fields as f};
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
        return Ok(Observation {
            passed: false,
            observed: format!("{id} has no secondary"),
        });
    }
    let mut parts = Vec::new();
    let mut passed = true;
    for arn in &secondaries {
        let region = f::region_of("cluster", arn)?;
        let lag = ctx.cloud.rds.replication_lag(region, id, arn).await?;
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
    Ok(Observation {
        passed,
        observed: parts.join(", "),
    })
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
