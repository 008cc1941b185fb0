//! What an approval puts at risk, read at the moment it is asked for: each Aurora
//! secondary's replication lag, the S3 replication backlog, and what is known of the
//! Valkey Global Datastore's replication. The person approving a promotion that loses
//! unreplicated writes sees "if you approve now, writes in the last N s may be lost",
//! with the figures it comes from, in the prompt, the `approval_needed` event (and so
//! its notification) and the report.
//!
//! Read only for an approval that unlocks (directly or not) a promotion that may lose
//! data (`aurora.failover`, `aurora.detach_promote`, `valkey.failover`); every read
//! goes through the breaker, and the whole read is bounded by [`READ_BUDGET`]: a dark
//! region makes a figure unknown, never the approval late.

use std::time::Duration;

use futures_util::future::join_all;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, MemberRole};
use crate::names::{arn_region, is_region};
use crate::runbook::catalogue::Kind;
use crate::runbook::model::FieldValue;
use crate::runbook::{Runbook, Step};

/// The longest the reads may take, all together.
pub const READ_BUDGET: Duration = Duration::from_secs(15);

/// One Aurora secondary's lag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuroraLag {
    /// The global cluster.
    pub global_cluster: String,
    /// The secondary's ARN.
    pub cluster: String,
    /// Its region.
    pub region: String,
    /// Its replication lag now; absent when unknown (then `note` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_secs: Option<f64>,
    /// Why the lag is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One bucket's replication backlog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct S3Backlog {
    /// The source bucket.
    pub bucket: String,
    /// Operations pending replication; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<u64>,
    /// Bytes pending replication; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why a figure is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One secondary member of a Valkey Global Datastore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValkeyReplication {
    /// The Global Datastore.
    pub datastore: String,
    /// The secondary replication group.
    pub member: String,
    /// Its region.
    pub region: String,
    /// Its member status (`associated`, ...), or why it could not be read.
    pub status: String,
}

/// What approving now may lose, as read when the approval was asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AtRisk {
    /// Aurora secondaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aurora: Vec<AuroraLag>,
    /// S3 replication.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3: Vec<S3Backlog>,
    /// Valkey Global Datastores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valkey: Vec<ValkeyReplication>,
    /// The window of writes that may be lost: the largest lag read (absent when no lag
    /// could be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<f64>,
    /// The same for a person: "if you approve now, writes in the last N s may be lost
    /// (...)".
    pub summary: String,
}

fn text<'a>(step: &'a Step, field: &str) -> Option<&'a str> {
    match step.fields.get(field) {
        Some(FieldValue::Str(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn short(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        format!("{secs:.0}s")
    }
}

fn bytes_text(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What `approval` (a step index of `rb`) puts at risk, read now; `None` when it
/// unlocks no promotion that may lose data.
pub async fn read(cloud: &Cloud, rb: &Runbook, approval: usize) -> Option<AtRisk> {
    let unlocked = crate::plan::Plan::new(rb).dependents_of(&[rb.steps[approval].id.clone()]);
    let steps: Vec<&Step> = rb
        .steps
        .iter()
        .filter(|s| unlocked.contains(&s.id))
        .collect();
    let lossy = |k: Kind| {
        matches!(
            k,
            Kind::AuroraFailover | Kind::AuroraDetachPromote | Kind::ValkeyFailover
        )
    };
    if !steps.iter().any(|s| lossy(s.spec.kind)) {
        return None;
    }
    let to = rb.params.get("to").filter(|r| is_region(r)).cloned();
    let read = async {
        let aurora = join_all(
            steps
                .iter()
                .filter(|s| {
                    matches!(
                        s.spec.kind,
                        Kind::AuroraFailover | Kind::AuroraDetachPromote
                    )
                })
                .filter_map(|s| {
                    let global = text(s, "global_cluster")?.to_string();
                    let region = text(s, "target")
                        .and_then(arn_region)
                        .map(str::to_string)
                        .or_else(|| to.clone())?;
                    Some((s, global, region))
                })
                .map(|(s, global, region)| {
                    aurora_lags(cloud.for_account(s.account.as_deref()), global, region)
                }),
        )
        .await
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        let valkey = join_all(
            steps
                .iter()
                .filter(|s| s.spec.kind == Kind::ValkeyFailover)
                .filter_map(|s| {
                    Some((
                        s,
                        text(s, "global_datastore")?.to_string(),
                        text(s, "target_region")?.to_string(),
                    ))
                })
                .map(|(s, id, region)| {
                    valkey_members(cloud.for_account(s.account.as_deref()), id, region)
                }),
        )
        .await
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        // Every bucket the runbook checks: a traffic switch leaves its backlog behind.
        let s3 = join_all(
            rb.steps
                .iter()
                .filter(|s| s.spec.kind == Kind::S3ReplicationCheck)
                .filter_map(|s| Some((s, text(s, "source_bucket")?.to_string())))
                .map(|(s, bucket)| s3_backlog(cloud.for_account(s.account.as_deref()), bucket)),
        )
        .await;
        (aurora, valkey, s3)
    };
    let (aurora, valkey, mut s3) = match tokio::time::timeout(READ_BUDGET, read).await {
        Ok(r) => r,
        Err(_) => {
            return Some(AtRisk {
                aurora: Vec::new(),
                s3: Vec::new(),
                valkey: Vec::new(),
                window_secs: None,
                summary: format!(
                    "what approving now may lose is unknown: the reads took over {}s",
                    READ_BUDGET.as_secs()
                ),
            });
        }
    };
    s3.dedup_by(|a, b| a.bucket == b.bucket);
    let window = aurora
        .iter()
        .filter_map(|a| a.lag_secs)
        .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
    let mut parts = Vec::new();
    for a in &aurora {
        parts.push(match (a.lag_secs, &a.note) {
            (Some(l), _) => format!("Aurora {} lag {}", name_of(&a.cluster), short(l)),
            (None, Some(n)) => format!("Aurora {} lag unknown ({n})", name_of(&a.cluster)),
            (None, None) => format!("Aurora {} lag unknown", name_of(&a.cluster)),
        });
    }
    for v in &valkey {
        parts.push(format!(
            "Valkey {} {} (its lag is not read)",
            v.member, v.status
        ));
    }
    for b in &s3 {
        parts.push(match (b.operations, b.bytes) {
            (Some(0), _) => format!("S3 {}: nothing pending replication", b.bucket),
            (Some(n), Some(bytes)) => format!(
                "S3 {}: {n} objects ({}) not yet replicated",
                b.bucket,
                bytes_text(bytes)
            ),
            (Some(n), None) => format!("S3 {}: {n} objects not yet replicated", b.bucket),
            (None, _) => format!(
                "S3 {}: backlog unknown{}",
                b.bucket,
                b.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        });
    }
    let head = match window {
        Some(w) => format!(
            "If you approve now, writes in the last {} may be lost",
            short(w)
        ),
        None if aurora.is_empty() => {
            "If you approve now, cache writes not yet replicated may be lost".to_string()
        }
        None => "If you approve now, an unknown window of writes may be lost".to_string(),
    };
    Some(AtRisk {
        summary: if parts.is_empty() {
            head
        } else {
            format!("{head}: {}", parts.join("; "))
        },
        aurora,
        s3,
        valkey,
        window_secs: window,
    })
}

/// The last part of an ARN (the cluster's name).
fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

async fn aurora_lags(cloud: &Cloud, global: String, region: String) -> Vec<AuroraLag> {
    let g = match cloud.rds.describe_global_cluster(&region, &global).await {
        Ok(g) => g,
        Err(e) => {
            return vec![AuroraLag {
                global_cluster: global,
                cluster: String::new(),
                region,
                lag_secs: None,
                note: Some(format!(
                    "the global cluster could not be read: {}",
                    e.message
                )),
            }];
        }
    };
    let secondaries: Vec<String> = g
        .members
        .iter()
        .filter(|m| !m.is_writer)
        .map(|m| m.cluster_arn.clone())
        .collect();
    join_all(secondaries.into_iter().map(|arn| {
        let global = global.clone();
        async move {
            let region = arn_region(&arn).unwrap_or_default().to_string();
            let (lag_secs, note) = match cloud.rds.replication_lag(&region, &global, &arn).await {
                Ok(Some(l)) => (Some(l.as_secs_f64()), None),
                Ok(None) => (
                    None,
                    Some("no recent lag datapoint: expected while the primary is down".into()),
                ),
                Err(e) => (None, Some(e.message)),
            };
            AuroraLag {
                global_cluster: global,
                cluster: arn,
                region,
                lag_secs,
                note,
            }
        }
    }))
    .await
}

async fn valkey_members(cloud: &Cloud, id: String, region: String) -> Vec<ValkeyReplication> {
    match cloud
        .elasticache
        .describe_global_datastore(&region, &id)
        .await
    {
        Ok(d) => d
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Secondary)
            .map(|m| ValkeyReplication {
                datastore: id.clone(),
                member: m.replication_group_id.clone(),
                region: m.region.clone(),
                status: m.status.clone(),
            })
            .collect(),
        Err(e) => vec![ValkeyReplication {
            datastore: id,
            member: String::new(),
            region,
            status: format!("unknown: {}", e.message),
        }],
    }
}

async fn s3_backlog(cloud: &Cloud, bucket: String) -> S3Backlog {
    let read = async {
        let rules = cloud.s3.replication_rules(&bucket).await?;
        cloud.s3.replication_backlog(&bucket, &rules).await
    };
    match read.await {
        Ok(Some(b)) => S3Backlog {
            bucket,
            operations: Some(b.operations),
            bytes: b.bytes,
            note: None,
        },
        Ok(None) => S3Backlog {
            bucket,
            operations: None,
            bytes: None,
            note: Some("replication metrics are not published for every rule".into()),
        },
        Err(e) => S3Backlog {
            bucket,
            operations: None,
            bytes: None,
            note: Some(e.message),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::testing::Harness;

    const FAILOVER: &str = include_str!("../../runbooks/region-failover.toml");

    fn approval(h: &Harness) -> usize {
        h.runbook
            .steps
            .iter()
            .position(|s| s.id.as_str() == "approve-failover")
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_failovers_approval_reads_the_lag_the_backlog_and_the_datastore() {
        let h = Harness::new(
            FAILOVER,
            "[clusters.acme-prod-usw2]\nlag = \"4s\"\n\
             [buckets.acme-prod-assets-use1]\nbacklog = 12\n",
        );
        let r = read(&h.cloud, &h.runbook, approval(&h))
            .await
            .expect("the approval unlocks promotions that may lose data");
        assert_eq!(r.aurora.len(), 1, "{r:#?}");
        assert!(r.aurora[0].cluster.ends_with(":cluster:acme-prod-usw2"));
        assert_eq!(r.aurora[0].lag_secs, Some(4.0));
        assert_eq!(r.window_secs, Some(4.0));
        assert_eq!(
            (r.s3[0].bucket.as_str(), r.s3[0].operations, r.s3[0].bytes),
            ("acme-prod-assets-use1", Some(12), None)
        );
        assert_eq!(r.valkey[0].member, "acme-sessions-usw2");
        assert_eq!(
            r.summary,
            "If you approve now, writes in the last 4.0s may be lost: Aurora acme-prod-usw2 \
             lag 4.0s; Valkey acme-sessions-usw2 associated (its lag is not read); S3 \
             acme-prod-assets-use1: 12 objects not yet replicated"
        );
    }

    /// With us-east-1 silent, the lag metric has stopped: the window is unknown, said so,
    /// and the read ends within its budget.
    #[tokio::test(start_paused = true)]
    async fn with_the_primary_region_dark_the_window_is_unknown_not_zero() {
        let h = Harness::new(FAILOVER, "");
        h.down("us-east-1");
        let t0 = tokio::time::Instant::now();
        let r = read(&h.cloud, &h.runbook, approval(&h)).await.unwrap();
        assert!(t0.elapsed() <= READ_BUDGET, "{:?}", t0.elapsed());
        assert_eq!(r.window_secs, None, "{r:#?}");
        assert!(
            r.summary
                .starts_with("If you approve now, an unknown window of writes may be lost"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("lag unknown"), "{}", r.summary);
    }

    #[tokio::test(start_paused = true)]
    async fn an_approval_that_unlocks_no_promotion_reads_nothing() {
        let h = Harness::new(
            "[runbook]\nname = \"x\"\nmode = \"planned\"\n[[step]]\nid = \"ok\"\n\
             action = \"approval\"\n[[step]]\nid = \"pause\"\naction = \"wait\"\n\
             duration = \"1s\"\nafter = [\"ok\"]\n",
            "",
        );
        assert_eq!(read(&h.cloud, &h.runbook, 0).await, None);
        assert!(h.calls().is_empty());
    }
}
