//! The IAM permissions a runbook needs: `drpilot iam-policy` and the preflight's
//! permission check.
//!
//! Each catalogue entry maps to the IAM actions its implementation calls (reads, polls,
//! the mutation and its rollback) on the resources the step names. The mapping lives
//! beside the catalogue, and a test requires an arm for every entry, so a new action
//! cannot ship without saying what it needs. Resources are as narrow as the step allows:
//! ARNs built from the step's fields; `*` only where AWS offers no resource-level
//! permission (CloudWatch `GetMetricData`, Route 53 `GetHealthCheckStatus`) or the
//! resource's name is only known at run time (the snapshot AWS names after a failover).
//!
//! IAM action names follow the Service Authorization Reference; several differ from
//! the API operation (GetBucketReplication is `s3:GetReplicationConfiguration`,
//! HeadObject is `s3:GetObject`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::catalogue::{Kind, arn_region};
use super::model::{FieldValue, Fields, Runbook, StepId};

/// One permission: an IAM action on a resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Need {
    /// The account the resource is in (`*` when the runbook does not say).
    pub account: String,
    /// E.g. `rds:FailoverGlobalCluster`.
    pub action: String,
    /// Resource ARN or pattern.
    pub resource: String,
}

fn s<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    match f.get(k) {
        Some(FieldValue::Str(v)) => Some(v),
        _ => None,
    }
}

fn list<'a>(f: &'a Fields, k: &str) -> &'a [String] {
    match f.get(k) {
        Some(FieldValue::List(v)) => v,
        _ => &[],
    }
}

fn tables<'a>(f: &'a Fields, k: &str) -> &'a [Fields] {
    match f.get(k) {
        Some(FieldValue::Tables(v)) => v,
        _ => &[],
    }
}

/// The account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
fn arn_account(arn: &str) -> Option<&str> {
    let acc = arn.split(':').nth(4)?;
    (!acc.is_empty()).then_some(acc)
}

/// Collects the needs of one runbook.
struct Collector<'a> {
    default_account: &'a str,
    out: BTreeSet<Need>,
}

impl Collector<'_> {
    fn add(&mut self, account: Option<&str>, actions: &[&str], resource: &str) {
        let account = account.unwrap_or(self.default_account).to_string();
        for a in actions {
            self.out.insert(Need {
                account: account.clone(),
                action: (*a).to_string(),
                resource: resource.to_string(),
            });
        }
    }

    /// The account of the first ARN among the fields, else the default.
    fn account_of<'f>(&self, f: &'f Fields, keys: &[&str]) -> Option<&'f str> {
        keys.iter().filter_map(|k| s(f, k)).find_map(arn_account)
    }

    fn global_cluster(&mut self, f: &Fields, account: Option<&str>) {
        if let Some(id) = s(f, "global_cluster") {
            let acc = account.unwrap_or(self.default_account).to_string();
            self.add(
                account,
                &["rds:DescribeGlobalClusters"],
                &format!("arn:aws:rds::{acc}:global-cluster:{id}"),
            );
        }
    }

    fn cluster(&mut self, arn: &str, actions: &[&str]) {
        let account = arn_account(arn).map(str::to_string);
        self.add(account.as_deref(), actions, arn);
    }

    /// The clusters a global-cluster operation acts on: the ARNs the step names. Reads
    /// (`rds:DescribeDBClusters`) also cover every cluster of the account, since the
    /// members a preflight compares are found at run time; a mutation is widened to
    /// them only when its other end is too (`auto` targets, a switchover's rollback to
    /// whichever cluster was the writer).
    fn clusters_of_global(&mut self, f: &Fields, actions: &[&str], any_cluster: bool) {
        let account = self.account_of(f, &["target", "cluster"]);
        let acc = account.unwrap_or(self.default_account).to_string();
        let wildcard = format!("arn:aws:rds:*:{acc}:cluster:*");
        let mut named = false;
        for key in ["target", "cluster"] {
            if let Some(arn) = s(f, key).filter(|a| a.starts_with("arn:")) {
                self.cluster(arn, actions);
                named = true;
            }
        }
        self.add(account, &["rds:DescribeDBClusters"], &wildcard);
        if any_cluster || !named {
            self.add(account, actions, &wildcard);
        }
    }

    fn metrics(&mut self, account: Option<&str>) {
        self.add(account, &["cloudwatch:GetMetricData"], "*");
    }

    fn datastore(&mut self, f: &Fields, actions: &[&str]) {
        if let Some(id) = s(f, "global_datastore") {
            let acc = self.default_account.to_string();
            self.add(
                None,
                actions,
                &format!("arn:aws:elasticache::{acc}:globalreplicationgroup:{id}"),
            );
        }
    }

    fn zone(&mut self, f: &Fields, actions: &[&str]) {
        if let Some(z) = s(f, "hosted_zone_id") {
            let z = z.trim_start_matches("/hostedzone/");
            self.add(None, actions, &format!("arn:aws:route53:::hostedzone/{z}"));
        }
    }

    fn entry(&mut self, kind: Kind, f: &Fields) {
        match kind {
            Kind::AuroraSwitchover => {
                let acc = self.account_of(f, &["target"]);
                self.global_cluster(f, acc);
                self.add_global(f, acc, &["rds:SwitchoverGlobalCluster"]);
                self.clusters_of_global(f, &["rds:SwitchoverGlobalCluster"], true);
            }
            Kind::AuroraFailover => {
                let acc = self.account_of(f, &["target"]);
                self.global_cluster(f, acc);
                self.add_global(f, acc, &["rds:FailoverGlobalCluster"]);
                self.clusters_of_global(f, &["rds:FailoverGlobalCluster"], false);
                self.metrics(acc);
            }
            Kind::AuroraDetachPromote => {
                let acc = self.account_of(f, &["target"]);
                self.global_cluster(f, acc);
                self.add_global(f, acc, &["rds:RemoveFromGlobalCluster"]);
                self.clusters_of_global(f, &["rds:RemoveFromGlobalCluster"], false);
            }
            Kind::AuroraSnapshotLostWrites => {
                let acc = self.account_of(f, &["cluster"]);
                self.global_cluster(f, acc);
                if let Some(arn) = s(f, "cluster") {
                    self.cluster(arn, &["rds:DescribeDBClusterSnapshots"]);
                    let region = arn_region(arn).unwrap_or("*");
                    let a = acc.unwrap_or(self.default_account).to_string();
                    // The source is AWS's automated snapshot, named at failover time.
                    self.add(
                        acc,
                        &[
                            "rds:DescribeDBClusterSnapshots",
                            "rds:CopyDBClusterSnapshot",
                        ],
                        &format!("arn:aws:rds:{region}:{a}:cluster-snapshot:*"),
                    );
                }
            }
            Kind::AuroraWriterInRegion | Kind::AuroraLagBelow => {
                self.global_cluster(f, None);
                if kind == Kind::AuroraLagBelow {
                    self.metrics(None);
                }
            }
            Kind::AuroraClusterAvailable => {
                if let Some(arn) = s(f, "cluster") {
                    self.cluster(arn, &["rds:DescribeDBClusters"]);
                }
            }
            Kind::ValkeyFailover => {
                let mut actions = vec![
                    "elasticache:DescribeGlobalReplicationGroups",
                    "elasticache:FailoverGlobalReplicationGroup",
                ];
                if matches!(f.get("allow_disassociate"), Some(FieldValue::Bool(true))) {
                    actions.push("elasticache:DisassociateGlobalReplicationGroup");
                }
                self.datastore(f, &actions);
                // Both calls also authorise on the member replication groups.
                let acc = self.default_account.to_string();
                let mut member = actions.clone();
                member.retain(|a| !a.starts_with("elasticache:Describe"));
                self.add(
                    None,
                    &member,
                    &format!("arn:aws:elasticache:*:{acc}:replicationgroup:*"),
                );
            }
            Kind::ValkeyPrimaryInRegion | Kind::ValkeyAvailable => {
                self.datastore(f, &["elasticache:DescribeGlobalReplicationGroups"]);
            }
            Kind::S3ReplicationCheck | Kind::S3CanaryReplicated => {
                for key in ["source_bucket", "destination_bucket"] {
                    if let Some(b) = s(f, key) {
                        self.add(
                            None,
                            &[
                                "s3:GetBucketLocation",
                                "s3:GetReplicationConfiguration",
                                "s3:GetBucketVersioning",
                            ],
                            &format!("arn:aws:s3:::{b}"),
                        );
                        // Canary objects: written at the source, read at both ends,
                        // then deleted.
                        let prefix = s(f, "key_prefix").unwrap_or("drpilot-canary/");
                        self.add(
                            None,
                            &[
                                "s3:PutObject",
                                "s3:GetObject",
                                "s3:DeleteObject",
                                "s3:DeleteObjectVersion",
                            ],
                            &format!("arn:aws:s3:::{b}/{prefix}*"),
                        );
                    }
                }
                self.metrics(None);
            }
            Kind::Route53Cutover => {
                self.zone(
                    f,
                    &[
                        "route53:ListResourceRecordSets",
                        "route53:ChangeResourceRecordSets",
                    ],
                );
                self.add(None, &["route53:GetChange"], "arn:aws:route53:::change/*");
            }
            Kind::Route53ChangeInsync => {
                self.add(None, &["route53:GetChange"], "arn:aws:route53:::change/*");
            }
            Kind::Route53RecordPointsTo => {
                self.zone(f, &["route53:ListResourceRecordSets"]);
            }
            Kind::Route53HealthCheckFlip => {
                for id in list(f, "health_checks") {
                    self.add(
                        None,
                        &["route53:GetHealthCheck", "route53:UpdateHealthCheck"],
                        &format!("arn:aws:route53:::healthcheck/{id}"),
                    );
                }
            }
            Kind::Route53HealthCheckHealthy => {
                // GetHealthCheckStatus has no resource-level permission.
                self.add(None, &["route53:GetHealthCheckStatus"], "*");
            }
            Kind::Route53RoutingControl => {
                for t in tables(f, "states") {
                    if let Some(arn) = s(t, "routing_control_arn") {
                        self.add(
                            arn_account(arn),
                            &[
                                "route53-recovery-cluster:GetRoutingControlState",
                                "route53-recovery-cluster:UpdateRoutingControlStates",
                            ],
                            arn,
                        );
                    }
                }
            }
            Kind::Route53RoutingControlState => {
                if let Some(arn) = s(f, "routing_control_arn") {
                    self.add(
                        arn_account(arn),
                        &["route53-recovery-cluster:GetRoutingControlState"],
                        arn,
                    );
                }
            }
            // Data planes, waits and approvals call no AWS API.
            Kind::Approval
            | Kind::Wait
            | Kind::HttpCheck
            | Kind::PostgresCheck
            | Kind::ValkeyCheck
            | Kind::DnsCheck
            | Kind::PostgresHeartbeat
            | Kind::ValkeyHeartbeat => {}
        }
    }

    /// A global-cluster-level action on the global cluster's ARN.
    fn add_global(&mut self, f: &Fields, account: Option<&str>, actions: &[&str]) {
        if let Some(id) = s(f, "global_cluster") {
            let acc = account.unwrap_or(self.default_account).to_string();
            self.add(
                account,
                actions,
                &format!("arn:aws:rds::{acc}:global-cluster:{id}"),
            );
        }
    }
}

/// Every permission the runbook needs: each step's action, gate and rollback.
///
/// Every catalogue entry has a mapping: `Collector::entry` matches on [`Kind`] without
/// a wildcard, so an entry added without saying what it needs does not compile.
pub fn needs(rb: &Runbook) -> BTreeSet<Need> {
    needs_by_step(rb).into_iter().flat_map(|(_, n)| n).collect()
}

/// [`needs`], per step (in file order).
pub fn needs_by_step(rb: &Runbook) -> Vec<(StepId, BTreeSet<Need>)> {
    let runbook_account = rb.params.get("account").map(String::as_str).unwrap_or("*");
    let mut out = Vec::new();
    for step in &rb.steps {
        // A resource named without an ARN is in the step's `[accounts]` entry, else in
        // the account `params.account` names.
        let default_account = step
            .account
            .as_deref()
            .and_then(|a| rb.accounts.get(a))
            .map_or(runbook_account, |a| a.id.as_str());
        let mut c = Collector {
            default_account,
            out: BTreeSet::new(),
        };
        c.entry(step.spec.kind, &step.fields);
        if let Some(g) = &step.gate {
            c.entry(g.spec.kind, &g.fields);
        }
        if let Some(r) = &step.rollback {
            // A built-in inverse calls the action's own API (already counted); an
            // explicit rollback action has fields of its own.
            if let Some(spec) = r.spec {
                let fields = if r.fields.is_empty() {
                    &step.fields
                } else {
                    &r.fields
                };
                c.entry(spec.kind, fields);
            }
        }
        out.push((step.id.clone(), c.out));
    }
    out
}

/// IAM policy documents, one per account, as `drpilot iam-policy` prints them: one
/// statement per set of actions that share the same resources.
pub fn policies(needs: &BTreeSet<Need>) -> BTreeMap<String, serde_json::Value> {
    let mut by_account: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for n in needs {
        by_account
            .entry(&n.account)
            .or_default()
            .entry(&n.action)
            .or_default()
            .insert(&n.resource);
    }
    let mut out = BTreeMap::new();
    for (account, actions) in by_account {
        // Group actions by their exact resource set.
        let mut groups: BTreeMap<Vec<&str>, Vec<&str>> = BTreeMap::new();
        for (action, resources) in actions {
            groups
                .entry(resources.into_iter().collect())
                .or_default()
                .push(action);
        }
        let mut statements: Vec<(Vec<&str>, Vec<&str>)> = groups
            .into_iter()
            .map(|(resources, actions)| (actions, resources))
            .collect();
        statements.sort();
        let statements: Vec<serde_json::Value> = statements
            .into_iter()
            .enumerate()
            .map(|(i, (actions, resources))| {
                serde_json::json!({
                    "Sid": format!("Drpilot{}", i + 1),
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": resources,
                })
            })
            .collect();
        out.insert(
            account.to_string(),
            serde_json::json!({"Version": "2012-10-17", "Statement": statements}),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_their_account() {
        assert_eq!(
            arn_account("arn:aws:rds:us-west-2:111122223333:cluster:x"),
            Some("111122223333")
        );
        assert_eq!(arn_account("arn:aws:s3:::bucket"), None);
    }
}
