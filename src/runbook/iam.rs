//! The IAM permissions a runbook needs: `drpilot iam-policy` and the preflight's
//! permission check (which itself needs `iam:SimulatePrincipalPolicy`:
//! [`check_needs`]; a run's S3 state store: [`state_needs`]).
//!
//! Each catalogue entry maps to the IAM actions its implementation calls (reads, polls,
//! the mutation and its rollback) on the resources the step names. The mapping lives
//! beside the catalogue, and a test requires an arm for every entry, so a new action
//! cannot ship without saying what it needs. Resources are as narrow as the step allows:
//! ARNs built from the step's fields; `*` only where AWS offers no resource-level
//! permission (CloudWatch `GetMetricData`, which also reads Route 53's health-check
//! status) or the resource's name is only known at run time (the snapshot AWS names
//! after a failover).
//!
//! IAM action names follow the Service Authorization Reference; several differ from
//! the API operation (GetBucketReplication is `s3:GetReplicationConfiguration`,
//! HeadObject is `s3:GetObject`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::catalogue::{Kind, arn_region};
use super::model::{FieldValue, Fields, Runbook, StepId};
use crate::names::ecs_name;

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
    /// `aws`, `aws-cn`, `aws-us-gov`...: where the runbook's regions are.
    partition: &'a str,
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
                &format!("arn:{}:rds::{acc}:global-cluster:{id}", self.partition),
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
        let wildcard = format!("arn:{}:rds:*:{acc}:cluster:*", self.partition);
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
                &format!(
                    "arn:{}:elasticache::{acc}:globalreplicationgroup:{id}",
                    self.partition
                ),
            );
        }
    }

    fn zone(&mut self, f: &Fields, actions: &[&str]) {
        if let Some(z) = s(f, "hosted_zone_id") {
            let z = z.trim_start_matches("/hostedzone/");
            let arn = format!("arn:{}:route53:::hostedzone/{z}", self.partition);
            self.add(None, actions, &arn);
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
                        &format!("arn:{}:rds:{region}:{a}:cluster-snapshot:*", self.partition),
                    );
                }
            }
            Kind::AuroraServerlessCapacity => {
                if let Some(arn) = s(f, "cluster") {
                    let acc = arn_account(arn);
                    let a = acc.unwrap_or(self.default_account).to_string();
                    let region = arn_region(arn).unwrap_or("*");
                    // The change, its rollback and the polls that wait for it.
                    self.cluster(arn, &["rds:ModifyDBCluster", "rds:DescribeDBClusters"]);
                    // DescribeDBInstances with a db-cluster-id filter authorises on the
                    // account's instances in the region (their ids are found by it).
                    self.add(
                        acc,
                        &["rds:DescribeDBInstances"],
                        &format!("arn:{}:rds:{region}:{a}:db:*", self.partition),
                    );
                    // The global database the cluster belongs to is found at run time
                    // (DBCluster.GlobalClusterIdentifier); its primary's
                    // ServerlessDatabaseCapacity is read from CloudWatch.
                    self.add(
                        acc,
                        &["rds:DescribeGlobalClusters"],
                        &format!("arn:{}:rds::{a}:global-cluster:*", self.partition),
                    );
                    self.metrics(acc);
                }
            }
            Kind::AuroraWriterInRegion | Kind::AuroraLagBelow => {
                self.global_cluster(f, None);
                if kind == Kind::AuroraLagBelow {
                    self.metrics(None);
                }
            }
            Kind::AuroraGlobalEndpoint => {
                // The writer, whose cluster endpoint the global endpoint must name, is
                // found at run time.
                self.global_cluster(f, None);
                self.clusters_of_global(f, &[], false);
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
                // Both calls also authorise on the member replication groups, and the
                // preflight reads each member's shape (found at run time, so any of
                // the account's replication groups).
                let acc = self.default_account.to_string();
                let mut member = actions.clone();
                member.retain(|a| !a.starts_with("elasticache:Describe"));
                member.push("elasticache:DescribeReplicationGroups");
                self.add(
                    None,
                    &member,
                    &format!(
                        "arn:{}:elasticache:*:{acc}:replicationgroup:*",
                        self.partition
                    ),
                );
            }
            Kind::ValkeyPrimaryInRegion | Kind::ValkeyAvailable => {
                self.datastore(f, &["elasticache:DescribeGlobalReplicationGroups"]);
            }
            Kind::S3ReplicationCheck | Kind::S3CanaryReplicated => {
                // A canary is written unless `s3.replication_check` says `canary = false`.
                let canary = kind == Kind::S3CanaryReplicated
                    || !matches!(f.get("canary"), Some(FieldValue::Bool(false)));
                for key in ["source_bucket", "destination_bucket"] {
                    if let Some(b) = s(f, key) {
                        let bucket = format!("arn:{}:s3:::{b}", self.partition);
                        self.add(
                            None,
                            &[
                                "s3:GetBucketLocation",
                                "s3:GetReplicationConfiguration",
                                "s3:GetBucketVersioning",
                            ],
                            &bucket,
                        );
                        if !canary {
                            continue;
                        }
                        // Without s3:ListBucket, HeadObject of a canary that has not
                        // replicated yet is 403 instead of 404; the clean-up lists the
                        // canary's versions (s3:ListBucketVersions) and deletes them.
                        self.add(None, &["s3:ListBucket", "s3:ListBucketVersions"], &bucket);
                        // Canary objects: written at the source, read at both ends,
                        // then deleted with every version.
                        let prefix = s(f, "key_prefix").unwrap_or("drpilot-canary/");
                        self.add(
                            None,
                            &[
                                "s3:PutObject",
                                "s3:GetObject",
                                "s3:DeleteObject",
                                "s3:DeleteObjectVersion",
                            ],
                            &format!("{bucket}/{prefix}*"),
                        );
                    }
                }
                self.metrics(None);
            }
            Kind::Route53Cutover => {
                // GetHostedZoneLimit: the preflight checks the zone's record quota.
                self.zone(
                    f,
                    &[
                        "route53:ListResourceRecordSets",
                        "route53:ChangeResourceRecordSets",
                        "route53:GetHostedZoneLimit",
                    ],
                );
                self.change();
            }
            Kind::Route53ChangeInsync => {
                self.change();
            }
            Kind::Route53RecordPointsTo => {
                self.zone(f, &["route53:ListResourceRecordSets"]);
            }
            Kind::Route53HealthCheckFlip => {
                for id in list(f, "health_checks") {
                    self.add(
                        None,
                        &["route53:GetHealthCheck", "route53:UpdateHealthCheck"],
                        &format!("arn:{}:route53:::healthcheck/{id}", self.partition),
                    );
                }
            }
            Kind::Route53HealthCheckHealthy => {
                // Read from CloudWatch's HealthCheckStatus (in us-east-1), not
                // GetHealthCheckStatus (AWS: not for production use).
                self.metrics(None);
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
            Kind::EcsScaleService => {
                // DescribeServices and UpdateService authorise on the service's ARN
                // (`service/CLUSTER/NAME`, the cluster's name in it).
                if let Some(arn) = self.ecs_service_arn(f) {
                    self.add(
                        arn_account(&arn),
                        &["ecs:DescribeServices", "ecs:UpdateService"],
                        &arn,
                    );
                }
            }
            Kind::AutoscalingSetCapacity => {
                // UpdateAutoScalingGroup authorises on the group's ARN, whose id part
                // (a UUID AWS assigns) the runbook does not know; the Describe actions of
                // Auto Scaling have no resource-level permissions.
                if let Some(name) = s(f, "group") {
                    let region = s(f, "region").unwrap_or("*");
                    self.add(
                        None,
                        &["autoscaling:UpdateAutoScalingGroup"],
                        &format!(
                            "arn:{}:autoscaling:{region}:{}:autoScalingGroup:*:autoScalingGroupName/{name}",
                            self.partition, self.default_account
                        ),
                    );
                    self.add(None, &["autoscaling:DescribeAutoScalingGroups"], "*");
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

    /// The ARN of the ECS service a step names: its `service` if that is an ARN, else
    /// `arn:PARTITION:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE` from the cluster's
    /// name (the end of its ARN) and account (its ARN's, else the runbook's).
    fn ecs_service_arn(&self, f: &Fields) -> Option<String> {
        let service = s(f, "service")?;
        if service.starts_with("arn:") {
            return Some(service.to_string());
        }
        let cluster = s(f, "cluster")?;
        let (cluster_name, account) = if cluster.starts_with("arn:") {
            (ecs_name(cluster), arn_account(cluster))
        } else {
            (cluster, None)
        };
        let region = s(f, "region").unwrap_or("*");
        let account = account.unwrap_or(self.default_account);
        Some(format!(
            "arn:{}:ecs:{region}:{account}:service/{cluster_name}/{service}",
            self.partition
        ))
    }

    /// Polling a Route 53 change (`GetChange`).
    fn change(&mut self) {
        let arn = format!("arn:{}:route53:::change/*", self.partition);
        self.add(None, &["route53:GetChange"], &arn);
    }

    /// A global-cluster-level action on the global cluster's ARN.
    fn add_global(&mut self, f: &Fields, account: Option<&str>, actions: &[&str]) {
        if let Some(id) = s(f, "global_cluster") {
            let acc = account.unwrap_or(self.default_account).to_string();
            self.add(
                account,
                actions,
                &format!("arn:{}:rds::{acc}:global-cluster:{id}", self.partition),
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
    let partition = partition(rb);
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
            partition: &partition,
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

/// What preflight's own permission check needs: `iam:SimulatePrincipalPolicy` on the
/// identity that acts, in the caller's account (a user or a role) and in each
/// `[accounts]` entry a step uses (the role drpilot assumes there). The caller's ARN is
/// not known when the policy is written, so the resource is every user and role of the
/// account: simulation reads permissions and changes nothing. Without it preflight
/// cannot prove the runbook's permissions (`drpilot preflight` fails; a run warns).
pub fn check_needs(rb: &Runbook) -> BTreeSet<Need> {
    let partition = partition(rb);
    let caller = rb.params.get("account").map(String::as_str).unwrap_or("*");
    let mut out = BTreeSet::new();
    let mut add = |account: &str, kinds: &[&str]| {
        for kind in kinds {
            out.insert(Need {
                account: account.to_string(),
                action: "iam:SimulatePrincipalPolicy".to_string(),
                resource: format!("arn:{partition}:iam::{account}:{kind}/*"),
            });
        }
    };
    if rb.steps.iter().any(|s| s.account.is_none()) {
        add(caller, &["user", "role"]);
    }
    for step in &rb.steps {
        if let Some(a) = step.account.as_deref().and_then(|a| rb.accounts.get(a)) {
            // Without role_arn the caller's own credentials act there.
            let kinds: &[&str] = if a.role_arn.is_some() {
                &["role"]
            } else {
                &["user", "role"]
            };
            add(&a.id, kinds);
        }
    }
    out
}

/// The partition of the runbook's resources: that of its regions (`params`), else of
/// the first ARN a step names, else `aws`.
pub fn partition(rb: &Runbook) -> String {
    if let Some(r) = rb.params.values().find(|v| crate::names::is_region(v)) {
        return crate::names::partition_of_region(r).to_string();
    }
    rb.steps
        .iter()
        .flat_map(|step| step.fields.values())
        .find_map(|v| match v {
            FieldValue::Str(v) => crate::names::arn_partition(v),
            _ => None,
        })
        .unwrap_or("aws")
        .to_string()
}

/// What a run needs of its S3 state store (`--state s3://BUCKET/PREFIX`): the journal,
/// lock and approvals are objects under the prefix, written with conditional puts and
/// listed by prefix; the bucket's region is looked up. In `account` (the state's own,
/// usually the runbook's).
pub fn state_needs(
    stores: &[crate::names::S3Location],
    partition: &str,
    account: &str,
) -> BTreeSet<Need> {
    let mut out = BTreeSet::new();
    let mut add = |actions: &[&str], resource: String| {
        for a in actions {
            out.insert(Need {
                account: account.to_string(),
                action: (*a).to_string(),
                resource: resource.clone(),
            });
        }
    };
    for loc in stores {
        let bucket = format!("arn:{partition}:s3:::{}", loc.bucket);
        // s3:ListBucket also makes a read of a missing object a 404, not a 403.
        add(&["s3:GetBucketLocation", "s3:ListBucket"], bucket.clone());
        let objects = if loc.prefix.is_empty() {
            format!("{bucket}/*")
        } else {
            format!("{bucket}/{}/*", loc.prefix)
        };
        add(&["s3:GetObject", "s3:PutObject"], objects);
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

    fn runbook(text: &str) -> Runbook {
        match crate::runbook::load_str(std::path::Path::new("t.toml"), text) {
            Ok(l) => l.runbook,
            Err(e) => panic!("{}", e.render(crate::runbook::RenderStyle::Short)),
        }
    }

    fn has(needs: &BTreeSet<Need>, action: &str, resource: &str) -> bool {
        needs
            .iter()
            .any(|n| n.action == action && n.resource == resource)
    }

    #[test]
    fn a_health_check_gate_reads_cloudwatch_not_get_health_check_status() {
        let rb = runbook(
            r#"
[runbook]
name = "t"
mode = "planned"
[params]
from = "us-east-1"
to = "us-west-2"
account = "111122223333"
[[step]]
id = "flip"
action = "route53.health_check_flip"
health_checks = ["hc-1"]
invert = true
[step.gate]
check = "route53.health_check_healthy"
health_check_id = "hc-1"
healthy = false
"#,
        );
        let n = needs(&rb);
        assert!(has(&n, "cloudwatch:GetMetricData", "*"), "{n:?}");
        assert!(
            !n.iter().any(|x| x.action == "route53:GetHealthCheckStatus"),
            "{n:?}"
        );
    }

    const S3_STEPS: &str = r#"
[runbook]
name = "t"
mode = "planned"
[params]
from = "REGION1"
to = "REGION2"
account = "111122223333"
[[step]]
id = "with-canary"
action = "s3.replication_check"
source_bucket = "src"
destination_bucket = "dst"
[[step]]
id = "no-canary"
action = "s3.replication_check"
source_bucket = "quiet-src"
destination_bucket = "quiet-dst"
canary = false
[[step]]
id = "cutover"
action = "route53.cutover"
hosted_zone_id = "Z0731524T4AKBG1PJWH9"
[[step.records]]
name = "db.acme.internal."
type = "CNAME"
ttl = 30
values = ["db.REGION2.example"]
"#;

    #[test]
    fn a_canary_can_read_a_missing_key_as_404_and_clean_up_its_versions() {
        let rb = runbook(
            &S3_STEPS
                .replace("REGION1", "us-east-1")
                .replace("REGION2", "us-west-2"),
        );
        let n = needs(&rb);
        for b in ["src", "dst"] {
            let bucket = format!("arn:aws:s3:::{b}");
            assert!(has(&n, "s3:ListBucket", &bucket), "{b}");
            assert!(has(&n, "s3:ListBucketVersions", &bucket), "{b}");
            assert!(has(
                &n,
                "s3:GetObject",
                &format!("{bucket}/drpilot-canary/*")
            ));
        }
        // Without a canary nothing is listed, read or written.
        for b in ["quiet-src", "quiet-dst"] {
            let bucket = format!("arn:aws:s3:::{b}");
            assert!(has(&n, "s3:GetReplicationConfiguration", &bucket));
            assert!(
                !n.iter()
                    .any(|x| x.resource == bucket && x.action.starts_with("s3:List"))
            );
            assert!(
                !n.iter()
                    .any(|x| x.resource.starts_with(&format!("{bucket}/")))
            );
        }
        // The cutover's preflight reads the zone's record quota.
        assert!(has(
            &n,
            "route53:GetHostedZoneLimit",
            "arn:aws:route53:::hostedzone/Z0731524T4AKBG1PJWH9"
        ));
    }

    #[test]
    fn arns_follow_the_partition_of_the_runbooks_regions() {
        let rb = runbook(
            &S3_STEPS
                .replace("REGION1", "cn-north-1")
                .replace("REGION2", "cn-northwest-1"),
        );
        assert_eq!(partition(&rb), "aws-cn");
        let n = needs(&rb);
        assert!(
            n.iter()
                .all(|x| x.resource == "*" || x.resource.starts_with("arn:aws-cn:")),
            "{n:?}"
        );
        assert!(has(
            &n,
            "route53:GetChange",
            "arn:aws-cn:route53:::change/*"
        ));
        let gov = runbook(
            &S3_STEPS
                .replace("REGION1", "us-gov-west-1")
                .replace("REGION2", "us-gov-east-1"),
        );
        assert!(
            needs(&gov)
                .iter()
                .all(|x| x.resource == "*" || x.resource.starts_with("arn:aws-us-gov:"))
        );
    }

    #[test]
    fn the_permission_check_may_simulate_the_identities_that_act_and_nothing_else() {
        let rb = runbook(
            r#"
[runbook]
name = "t"
mode = "planned"
[accounts.dns]
id = "444455556666"
role_arn = "arn:aws:iam::444455556666:role/drpilot-dns"
[params]
account = "111122223333"
[[step]]
id = "a"
action = "aurora.cluster_available"
cluster = "arn:aws:rds:us-west-2:111122223333:cluster:c"
[[step]]
id = "b"
action = "aurora.cluster_available"
account = "dns"
cluster = "arn:aws:rds:us-west-2:111122223333:cluster:c"
"#,
        );
        let n = check_needs(&rb);
        assert!(n.iter().all(|x| x.action == "iam:SimulatePrincipalPolicy"));
        assert!(has(
            &n,
            "iam:SimulatePrincipalPolicy",
            "arn:aws:iam::111122223333:user/*"
        ));
        assert!(has(
            &n,
            "iam:SimulatePrincipalPolicy",
            "arn:aws:iam::111122223333:role/*"
        ));
        // In the other account drpilot acts as the role it assumes: never a user.
        assert!(has(
            &n,
            "iam:SimulatePrincipalPolicy",
            "arn:aws:iam::444455556666:role/*"
        ));
        assert!(
            !n.iter()
                .any(|x| x.resource == "arn:aws:iam::444455556666:user/*")
        );
        assert_eq!(n.len(), 3);
        // A runbook whose every step acts in another account needs no check as the caller.
        let only_dns = runbook(
            r#"
[runbook]
name = "t"
mode = "planned"
[accounts.dns]
id = "444455556666"
role_arn = "arn:aws:iam::444455556666:role/drpilot-dns"
[[step]]
id = "b"
action = "aurora.cluster_available"
account = "dns"
cluster = "arn:aws:rds:us-west-2:111122223333:cluster:c"
"#,
        );
        assert_eq!(check_needs(&only_dns).len(), 1);
    }

    #[test]
    fn an_s3_state_store_needs_its_objects_and_bucket_listing() {
        let loc = |u: &str| crate::names::S3Location::parse(u).unwrap();
        let n = state_needs(
            &[
                loc("s3://team-state/drpilot/prod"),
                loc("s3://team-state-usw2"),
            ],
            "aws",
            "111122223333",
        );
        assert!(has(&n, "s3:ListBucket", "arn:aws:s3:::team-state"));
        assert!(has(&n, "s3:GetBucketLocation", "arn:aws:s3:::team-state"));
        assert!(has(
            &n,
            "s3:PutObject",
            "arn:aws:s3:::team-state/drpilot/prod/*"
        ));
        assert!(has(
            &n,
            "s3:GetObject",
            "arn:aws:s3:::team-state/drpilot/prod/*"
        ));
        assert!(has(&n, "s3:PutObject", "arn:aws:s3:::team-state-usw2/*"));
        assert!(n.iter().all(|x| x.account == "111122223333"));
        assert_eq!(n.len(), 8);
    }
}
