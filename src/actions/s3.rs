//! S3 cross-region replication: the readiness check and the canary check.
//!
//! CRR copies new objects only, so configuration alone proves little: the check reads
//! the rules and the destination's versioning, then (optionally) writes a canary at the
//! source and waits for it to arrive as a `REPLICA`, and reads the backlog metric.
//!
//! The canary's key is derived from the runbook, the step and the run's start time:
//! unique per run, yet the same on every poll and attempt of one step, so a retry
//! checks the canary already written instead of writing another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::support::short;
use super::{
    ActionError, Executed, Fact, Finding, Journaled, Observation, StepContext, fields as f,
};
use crate::cloud::{CloudErrorKind, ReplicationBacklog, ReplicationRule, ReplicationStatus};
use crate::runbook::model::Fields;

const DEFAULT_PREFIX: &str = "drpilot-canary/";
const DEFAULT_CANARY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest pause between two reads of the canary at the destination.
const CANARY_POLL: Duration = Duration::from_secs(5);

/// The canary's key for this run and step.
fn canary_key(ctx: &StepContext<'_>, prefix: &str) -> String {
    format!(
        "{prefix}{}/{}/{}",
        ctx.runbook.runbook.name,
        ctx.step.id,
        ctx.clock.origin().as_second()
    )
}

/// The configuration facts: rules towards the destination enabled, one of them
/// replicating the canary's key (`canary`, when one will be written), destination
/// versioning on. Each is a finding; a failed one explains what is wrong. The source's
/// rules come back too: the backlog is summed over them.
async fn configuration(
    ctx: &StepContext<'_>,
    source: &str,
    destination: &str,
    canary: Option<&str>,
) -> Result<(Vec<Finding>, Vec<ReplicationRule>), ActionError> {
    let rules = ctx.cloud.s3.replication_rules(source).await?;
    let towards: Vec<_> = rules
        .iter()
        .filter(|r| r.destination_bucket == destination)
        .collect();
    let mut out = Vec::new();
    if towards.is_empty() {
        out.push(Finding::block(format!(
            "no replication rule of {source} points at {destination}"
        )));
    } else if towards.iter().any(|r| r.enabled) {
        let enabled: Vec<&str> = towards
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.id.as_str())
            .collect();
        out.push(Finding::ok(format!(
            "{source} -> {destination}: rule(s) {} enabled",
            enabled.join(", ")
        )));
        // A canary no rule replicates would only ever time out.
        if let Some(key) = canary
            && !towards.iter().any(|r| r.replicates_untagged(key))
        {
            let filters: Vec<String> = towards
                .iter()
                .filter(|r| r.enabled)
                .map(|r| match &r.prefix {
                    Some(p) => format!("{} replicates prefix {p:?}", r.id),
                    None => format!("{} replicates tagged objects only", r.id),
                })
                .collect();
            out.push(Finding::block(format!(
                "no enabled rule of {source} towards {destination} replicates the canary \
                 {key} ({}): set key_prefix to a replicated prefix, or canary = false",
                filters.join("; ")
            )));
        }
    } else {
        out.push(Finding::block(format!(
            "the replication rule(s) of {source} towards {destination} are disabled"
        )));
    }
    let versioning = ctx.cloud.s3.versioning_enabled(destination).await?;
    out.push(Finding::ok_if(
        versioning,
        if versioning {
            format!("versioning is enabled on {destination}")
        } else {
            format!("versioning is not enabled on {destination}: replication cannot deliver")
        },
    ));
    Ok((out, rules))
}

/// The backlog against the limit. An unknown backlog (a rule without replication
/// metrics, or none published lately) is a warning: it is not "no backlog".
async fn backlog(
    ctx: &StepContext<'_>,
    source: &str,
    rules: &[ReplicationRule],
    max: u64,
) -> Result<Finding, ActionError> {
    let fact = |b: ReplicationBacklog| Fact::S3Backlog {
        bucket: source.to_string(),
        operations: b.operations,
        bytes: b.bytes,
    };
    Ok(
        match ctx.cloud.s3.replication_backlog(source, rules).await? {
            Some(b) if b.operations <= max => {
                Finding::ok(format!("backlog {} <= {max}", b.operations)).with_fact(fact(b))
            }
            Some(b) => Finding::block(format!(
                "backlog {} operations pending replication > {max}",
                b.operations
            ))
            .with_fact(fact(b)),
            None => Finding::warn(
                "backlog unknown: OperationsPendingReplication is not published for every \
                 enabled rule (turn on S3 Replication metrics for them to measure it)",
            ),
        },
    )
}

/// One step of the canary: writes it at the source if it is not there yet, then reads
/// it at the destination.
async fn canary_once(
    ctx: &StepContext<'_>,
    source: &str,
    destination: &str,
    key: &str,
) -> Result<Observation, ActionError> {
    match ctx.cloud.s3.replication_status(source, key).await {
        Ok(Some(ReplicationStatus::Failed)) => {
            return Ok(Observation {
                passed: false,
                observed: format!("canary {key}: replication FAILED at {source}"),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind == CloudErrorKind::NotFound => {
            let body = format!("drpilot replication canary for {}", ctx.step.id);
            ctx.cloud
                .s3
                .put_object(source, key, body.as_bytes())
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    match ctx.cloud.s3.replication_status(destination, key).await {
        Ok(Some(ReplicationStatus::Replica)) => Ok(Observation {
            passed: true,
            observed: format!("canary {key} is a REPLICA at {destination}"),
        }),
        Ok(other) => Ok(Observation {
            passed: false,
            observed: format!(
                "canary {key} at {destination} has status {}",
                other.map_or("none".to_string(), |s| format!("{s:?}").to_uppercase())
            ),
        }),
        Err(e) if e.kind == CloudErrorKind::NotFound => Ok(Observation {
            passed: false,
            observed: format!("canary {key} not yet at {destination}"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the canary at both ends once it has done its job. A failure to clean up is
/// reported in the step's summary, never a failed check: replication was proven.
async fn clean_up(ctx: &StepContext<'_>, source: &str, destination: &str, key: &str) -> String {
    let mut left = Vec::new();
    for bucket in [source, destination] {
        if let Err(e) = ctx.cloud.s3.delete_object(bucket, key).await {
            left.push(format!("{bucket} ({e})"));
        }
    }
    if left.is_empty() {
        "canary deleted".into()
    } else {
        format!("canary left in {}", left.join(", "))
    }
}

/// `s3.replication_check`: read-only apart from its canary object, which it deletes
/// at both ends once replication is proven.
pub async fn replication_check(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Executed, ActionError> {
    let source = f::str(fields, "source_bucket")?;
    let destination = f::str(fields, "destination_bucket")?;
    let canary = f::bool_or(fields, "canary", true)?;
    let timeout = f::duration_or(fields, "canary_timeout", DEFAULT_CANARY_TIMEOUT)?;
    let max = u64::try_from(f::int_or(fields, "max_backlog", 0)?).unwrap_or(0);

    let key = canary.then(|| canary_key(ctx, DEFAULT_PREFIX));
    let (config, rules) = configuration(ctx, source, destination, key.as_deref()).await?;
    let wrong: Vec<&str> = config
        .iter()
        .filter(|x| !x.allows())
        .map(|x| x.message.as_str())
        .collect();
    if !wrong.is_empty() {
        // Configuration does not fix itself between retries.
        return Err(ActionError::permanent(wrong.join("; ")));
    }
    let mut parts: Vec<String> = config.into_iter().map(|x| x.message).collect();
    // The backlog is read before the canary is written: the canary is pending for a
    // few seconds itself, and replication metrics are per minute, so reading after it
    // would count drpilot's own object as data at risk.
    let b = backlog(ctx, source, &rules, max).await?;
    if !b.allows() {
        return Err(ActionError::retryable(b.message));
    }
    let mut output = ReplicationOutput::default();
    if let Some(key) = key {
        let started = ctx.clock.elapsed();
        let poll = CANARY_POLL
            .min(timeout / 10)
            .max(Duration::from_millis(100));
        loop {
            let o = canary_once(ctx, source, destination, &key).await?;
            let took = ctx.clock.elapsed().saturating_sub(started);
            if o.passed {
                parts.push(format!("canary replicated in {}", short(took)));
                parts.push(clean_up(ctx, source, destination, &key).await);
                break;
            }
            if took >= timeout {
                return Err(ActionError::retryable(format!(
                    "{} after {} (canary_timeout {})",
                    o.observed,
                    short(took),
                    short(timeout)
                )));
            }
            ctx.clock.sleep(poll).await;
        }
        output.canary_key = Some(key);
    }
    parts.push(b.message);
    Ok(output.executed(parts.join("; ")))
}

/// What `s3.replication_check` reports, typed: the canary it wrote (and removed), if
/// it wrote one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ReplicationOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    canary_key: Option<String>,
}

impl Journaled for ReplicationOutput {}

/// Preflight of `s3.replication_check`: the configuration and the backlog (the canary
/// is left for the run: it writes an object).
pub async fn preflight(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let source = f::str(fields, "source_bucket")?;
    let destination = f::str(fields, "destination_bucket")?;
    let max = u64::try_from(f::int_or(fields, "max_backlog", 0)?).unwrap_or(0);
    let key = f::bool_or(fields, "canary", true)?.then(|| canary_key(ctx, DEFAULT_PREFIX));
    let (mut out, rules) = configuration(ctx, source, destination, key.as_deref()).await?;
    out.push(backlog(ctx, source, &rules, max).await?);
    Ok(out)
}

/// Preflight of `s3.canary_replicated`: the configuration only (the canary is written
/// when the step runs).
pub async fn preflight_canary(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Vec<Finding>, ActionError> {
    let source = f::str(fields, "source_bucket")?;
    let destination = f::str(fields, "destination_bucket")?;
    let key = canary_key(ctx, f::str_or(fields, "key_prefix", DEFAULT_PREFIX)?);
    Ok(configuration(ctx, source, destination, Some(&key)).await?.0)
}

/// `s3.canary_replicated`: one poll of the step's canary (written on the first poll).
pub async fn canary_replicated(
    ctx: &StepContext<'_>,
    fields: &Fields,
) -> Result<Observation, ActionError> {
    let source = f::str(fields, "source_bucket")?;
    let destination = f::str(fields, "destination_bucket")?;
    let prefix = f::str_or(fields, "key_prefix", DEFAULT_PREFIX)?;
    let key = canary_key(ctx, prefix);
    canary_once(ctx, source, destination, &key).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{Harness, RUNBOOK};
    use super::super::{ActionErrorKind, check, execute, preflight};
    use crate::runbook::catalogue::lookup;

    /// The world's S3 replication of one object takes exactly `t`.
    fn replication_takes(t: &str) -> String {
        format!("[timing]\ns3_replication = \"{t}\"\n")
    }

    /// The buckets each `DeleteObject` call named, in order.
    fn deleted_from(h: &Harness) -> Vec<String> {
        h.world
            .op_log()
            .into_iter()
            .filter(|r| r.operation == "DeleteObject")
            .map(|r| r.args["bucket"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_check_waits_for_the_canary_to_arrive_as_a_replica() {
        // Replication takes 15s: the canary is not at the destination on the reads at
        // 0s, 5s and 10s, and is a REPLICA on the one at 15s.
        let h = Harness::new(RUNBOOK, &replication_takes("15s"));
        let ctx = h.ctx("s3");
        let done = execute(&ctx, None).await.unwrap();
        assert_eq!(
            done.summary,
            "acme-prod-assets-use1 -> acme-prod-assets-usw2: rule(s) \
             crr-to-acme-prod-assets-usw2 enabled; \
             versioning is enabled on acme-prod-assets-usw2; canary replicated in 15s; \
             canary deleted; backlog 0 <= 10"
        );
        assert_eq!(h.calls_of("PutObject").len(), 1);
        let key = done.output["canary_key"].as_str().unwrap();
        assert!(key.starts_with("drpilot-canary/actions-test/s3/"), "{key}");
        assert!(h.clock.elapsed() >= Duration::from_secs(15));
        // Nothing is left behind at either end: each bucket was asked, in its own
        // region, and holds no object under the canary's key.
        assert_eq!(
            deleted_from(&h),
            ["acme-prod-assets-use1", "acme-prod-assets-usw2"]
        );
        assert_eq!(h.regions_of("DeleteObject"), ["us-east-1", "us-west-2"]);
        assert!(
            h.world
                .with_state(|s| s.buckets.values().all(|b| !b.objects.contains_key(key)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_canary_no_rule_replicates_is_refused_before_it_is_written() {
        // The only rule replicates `logs/`: a canary under `drpilot-canary/` would
        // never arrive, and the step would wait out its canary_timeout for nothing.
        let h = Harness::new(
            RUNBOOK,
            "[buckets.acme-prod-assets-use1]\nreplication_prefix = \"logs/\"\n",
        );
        let findings = preflight(&h.ctx("s3")).await.unwrap();
        let blocked: Vec<_> = findings.iter().filter(|f| !f.allows()).collect();
        assert_eq!(blocked.len(), 1, "{findings:?}");
        assert!(
            blocked[0].message.contains(
                "no enabled rule of acme-prod-assets-use1 towards acme-prod-assets-usw2 \
                 replicates the canary drpilot-canary/"
            ) && blocked[0]
                .message
                .contains("crr-to-acme-prod-assets-usw2 replicates prefix \"logs/\""),
            "{}",
            blocked[0].message
        );
        let e = execute(&h.ctx("s3"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent, "{}", e.message);
        assert!(h.calls_of("PutObject").is_empty(), "no canary written");
        // A rule that replicates the canary's prefix (or everything) passes.
        let h = Harness::new(
            RUNBOOK,
            "[buckets.acme-prod-assets-use1]\nreplication_prefix = \"drpilot-canary/\"\n",
        );
        let findings = preflight(&h.ctx("s3")).await.unwrap();
        assert!(findings.iter().all(|f| f.allows()), "{findings:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_canary_a_backlog_and_a_bad_configuration_fail_differently() {
        // Replication takes far longer than the step's canary_timeout (1m).
        let h = Harness::new(RUNBOOK, &replication_takes("1h"));
        let e = execute(&h.ctx("s3"), None).await.unwrap_err();
        assert!(e.is_retryable());
        assert!(
            e.message
                .contains("not yet at acme-prod-assets-usw2 after 1m"),
            "{}",
            e.message
        );
        // A retry reuses the canary already written.
        let _ = execute(&h.ctx("s3"), None).await;
        assert_eq!(h.calls_of("PutObject").len(), 1);

        let h = Harness::new(
            RUNBOOK,
            r#"
[buckets.acme-prod-assets-use1]
backlog = 11
"#,
        );
        let e = execute(&h.ctx("s3"), None).await.unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (
                ActionErrorKind::Retryable,
                "backlog 11 operations pending replication > 10"
            )
        );

        let h = Harness::new(
            RUNBOOK,
            r#"
[buckets.acme-prod-assets-use1]
replication_enabled = false
[buckets.acme-prod-assets-usw2]
versioning = false
"#,
        );
        let e = execute(&h.ctx("s3"), None).await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent);
        assert_eq!(
            e.message,
            "the replication rule(s) of acme-prod-assets-use1 towards acme-prod-assets-usw2 are \
             disabled; versioning is not enabled on acme-prod-assets-usw2: replication cannot deliver"
        );
        let findings = preflight(&h.ctx("s3")).await.unwrap();
        assert_eq!(findings.iter().filter(|f| !f.allows()).count(), 2);
        assert_eq!(h.calls_of("PutObject").len(), 0, "preflight writes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_source_does_not_block_preflight_of_a_read_only_step() {
        let h = Harness::prod();
        // The source bucket's region stops answering.
        h.down("us-east-1");
        let findings = preflight(&h.ctx("s3")).await.unwrap();
        assert_eq!(findings.len(), 1);
        assert!(findings[0].allows());
        assert!(
            findings[0].message.starts_with("not checked now"),
            "{}",
            findings[0].message
        );
        assert_eq!(h.regions_of("GetBucketReplication"), ["us-east-1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_canary_check_writes_once_and_polls() {
        let h = Harness::new(RUNBOOK, &replication_takes("15s"));
        let ctx = h.ctx("canary");
        let spec = lookup("s3.canary_replicated").unwrap();
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert!(!o.passed);
        assert!(
            o.observed.contains("not yet at acme-prod-assets-usw2"),
            "{}",
            o.observed
        );
        // The engine polls again later; by then replication has delivered it.
        h.wait(Duration::from_secs(15)).await;
        let o = check(&ctx, spec, &ctx.step.fields, None).await.unwrap();
        assert!(o.passed, "{}", o.observed);
        assert!(
            o.observed
                .ends_with("is a REPLICA at acme-prod-assets-usw2"),
            "{}",
            o.observed
        );
        assert_eq!(h.calls_of("PutObject").len(), 1);
    }
}
