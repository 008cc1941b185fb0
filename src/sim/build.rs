//! Building the "before" world from a runbook.
//!
//! Every field of every step, gate and rollback is scanned for the resources it names
//! (global clusters, cluster ARNs and endpoints, datastores and replication groups,
//! buckets, zones and records, health checks, URLs, DNS names). Each becomes a healthy,
//! existing resource in the state the runbook expects to start from:
//!
//! - **Regions.** `params.from` and `params.to`. Without them: `from` is the region of
//!   the cluster whose lost writes are kept (the old primary), else of the first
//!   cluster that is not a promotion target, else us-east-1; `to` is the region of the
//!   first promotion target (Aurora or Valkey), else of the first region named that
//!   is not `from`, else us-west-2 (us-east-1 when `from` is us-west-2).
//! - **Aurora.** A global cluster's members are the ARNs steps give with it; other ARNs
//!   join the global cluster whose id prefixes their name, else the only one. Every
//!   global cluster gets a member in `from` (the writer) and one in `to`; a missing one
//!   is derived from a named member by swapping the region in its ARN and name
//!   (`acme-prod-use1` -> `acme-prod-usw2`). Endpoints come from `postgres.check` hosts
//!   whose first label is the cluster's name, else the same swap of another member's,
//!   else `NAME.cluster-HASH.REGION.rds.amazonaws.com`.
//! - **Valkey.** Likewise: the target replication group in `target_region`, groups named
//!   by `valkey.check` hosts (`master.ID.…`), and a primary member in `from` derived by
//!   swapping regions (or `STEM-CODE` from the datastore id without its AWS prefix).
//! - **S3.** Each source/destination pair: versioned buckets, an enabled rule from source
//!   to destination; a bucket's region is the one in its name, else `from` for a source
//!   and `to` for a destination.
//! - **Route 53.** Zones from `hosted_zone_id` fields and zone-id-looking params; a
//!   zone's name is the common suffix of its records' names. A record a step writes
//!   (cutover, `record_points_to`, `dns.check`) exists "before" with its values swapped
//!   from `to` to `from`. A health check's settings are the opposite of what a flip sets
//!   (a step that inverts it finds it not inverted). Each `http.check` URL whose host
//!   names no region gets failover CNAMEs in the zone containing it (or a zone without
//!   records, else a new one): one to `HOST-CODE(from)` and one to `HOST-CODE(to)`,
//!   with a health check (the runbook's, in order) on the PRIMARY. The PRIMARY is in
//!   the region that makes traffic go to `from` before the run: `from`, unless the check
//!   starts inverted (a failback un-inverts it), then `to`.
//! - **Route 53 ARC.** Routing-control ARNs named by `route53.routing_control` steps and
//!   `route53.routing_control_state` checks become the routing controls of one cluster
//!   whose endpoints are the ones the steps list (an endpoint is down while its region
//!   is). Before the run each control is in the opposite of the state the first step
//!   setting it sets; a control only checked is in the state its check expects. The
//!   first control the runbook turns On is the `to` cell, the first it turns Off the
//!   `from` cell; every control gets a RECOVERY_CONTROL health check (healthy exactly
//!   when the control is On). With two controls or more the cluster has the usual
//!   assertion safety rule "at least one control On"; its ARN is the first one a step
//!   overrides, else one in the first control's control panel. In a runbook with cells
//!   the records that checks expect to point at `to` (`dns.check`,
//!   `route53.record_points_to`) are pre-created failover pairs, not plain records: the
//!   PRIMARY holds the `from` value and is bound to the `from` cell's health check, the
//!   SECONDARY holds the `to` value (with the check's set identifier, if it names one)
//!   and is bound to the `to` cell's, so flipping the controls really moves the answer.
//!   Records a cutover writes stay plain, and a pair never replaces them. Likewise each
//!   `http.check` URL's failover CNAMEs are bound to the cells' health checks when the
//!   runbook flips no health check (a flip is then what moves them, as above).
//! - **Compute.** Each ECS service a step scales exists, ACTIVE on Fargate in the
//!   step's region, in its cluster (name or ARN; an ARN's account, else
//!   111122223333), with every task RUNNING and a desired count short of the one the
//!   first step naming it sets: a quarter of it (rounded down), or 2 when that step
//!   scales it to 0 (a pilot-light standby, or a region being drained). Each Auto
//!   Scaling group a step sizes exists in the step's region with every instance
//!   InService: a minimum of 0, a desired capacity short of the one the step sets in
//!   the same way, and a maximum that holds every size the step names.
//! - **Companions** ([`SimWorld::from_runbooks`](super::SimWorld::from_runbooks)): runbooks
//!   run later against the same world (a drill's failback) add what they name and the
//!   runbook alone would make up: `postgres.check` hosts (the endpoints above), bucket
//!   pairs (a reverse replication rule), application URLs, and the values their
//!   `dns.check`/`route53.record_points_to` steps expect when those name `from`, which
//!   replace the swapped `from` value of the record (real endpoint names differ across
//!   regions in more than the region). The runbook itself decides regions and states.

use super::config::SimConfig;
use super::config::SimConfigError;
use super::faults::FaultSpec;
use super::names::{encode, fnv1a, is_region, short_code, swap_region};
use super::state::{FaultState, State};
use crate::runbook::{Runbook, catalogue::arn_region};
use scan::{Scan, Use, push};

mod arc;
mod compute;
mod data;
mod overrides;
mod route53;
mod scan;

/// `from` and `to`, by the rules in the module docs.
fn regions(rb: &Runbook, scan: &Scan) -> (String, String) {
    let param = |k: &str| rb.params.get(k).filter(|v| is_region(v)).cloned();
    let from = param("from")
        .or_else(|| {
            scan.clusters
                .iter()
                .find(|c| c.2 == Use::OldPrimary)
                .and_then(|c| arn_region(&c.0).map(str::to_string))
        })
        .or_else(|| {
            scan.clusters
                .iter()
                .find(|c| c.2 != Use::Target)
                .and_then(|c| arn_region(&c.0).map(str::to_string))
        })
        .unwrap_or_else(|| "us-east-1".to_string());
    let to = param("to")
        .or_else(|| scan.promote_regions.iter().find(|r| **r != from).cloned())
        .or_else(|| scan.regions.iter().find(|r| **r != from).cloned())
        .unwrap_or_else(|| {
            if from == "us-west-2" {
                "us-east-1".into()
            } else {
                "us-west-2".into()
            }
        });
    (from, to)
}

/// A name for the counterpart of `name` in `to` (its region swapped, else suffixed).
fn counterpart(name: &str, region: &str, to: &str) -> String {
    let swapped = swap_region(name, region, to);
    if swapped != name {
        swapped
    } else {
        format!("{name}-{}", short_code(to))
    }
}

/// The ARN of the counterpart of cluster `arn` in region `to`.
fn counterpart_arn(arn: &str, to: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let [arn_, partition, service, region, account, kind, name] = parts.as_slice() else {
        return None;
    };
    let name = counterpart(name, region, to);
    Some(format!(
        "{arn_}:{partition}:{service}:{to}:{account}:{kind}:{name}"
    ))
}

pub(super) fn uuid_like(seed: &str) -> String {
    let hex = encode(fnv1a(seed), 32, b"0123456789abcdef");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The RECOVERY_CONTROL health checks of the two cells: the first routing control the
/// runbook turns Off (`from`) and the first it turns On (`to`).
#[derive(Debug, Default)]
struct Cells {
    from: Option<String>,
    to: Option<String>,
}

impl Cells {
    fn any(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }
}

struct Builder<'a> {
    state: State,
    scan: Scan,
    extra: Vec<String>,
    cfg: &'a SimConfig,
}

/// Builds the world's starting state for a runbook; errors point into the config.
pub(crate) fn build(
    rb: &Runbook,
    companions: &[&Runbook],
    cfg: &SimConfig,
    seed: u64,
    origin: jiff::Timestamp,
) -> Result<State, SimConfigError> {
    let mut scan = Scan::of(rb);
    for c in companions {
        scan.companion(c);
    }
    let (from, to) = regions(rb, &scan);
    let mut extra = scan.regions.clone();
    push(&mut extra, from.clone());
    push(&mut extra, to.clone());
    let mut b = Builder {
        state: State::new(seed, cfg.timing.clone(), &from, &to, origin),
        scan,
        extra,
        cfg,
    };
    b.state.failover_with_unreachable_members = cfg.failover_with_unreachable_members;
    b.aurora();
    b.valkey();
    b.buckets();
    b.compute();
    let hc_primary = b.health_checks();
    let cells = b.routing_controls();
    b.zones(&hc_primary, &cells);
    for r in b.extra.clone() {
        b.state.regions.entry(r).or_default();
    }
    let regions: Vec<String> = b
        .state
        .clusters
        .values()
        .map(|c| c.region.clone())
        .chain(
            b.state
                .replication_groups
                .values()
                .map(|r| r.region.clone()),
        )
        .chain(b.state.buckets.values().map(|b| b.region.clone()))
        .chain(b.state.ecs_clusters.values().cloned())
        .chain(b.state.asgs.values().map(|g| g.region.clone()))
        .collect();
    for r in regions {
        b.state.regions.entry(r).or_default();
    }
    b.overrides()?;
    b.state.faults = cfg
        .faults
        .iter()
        .cloned()
        .map(|spec: FaultSpec| FaultState { spec, injected: 0 })
        .collect();
    Ok(b.state)
}

impl Builder<'_> {
    fn from(&self) -> String {
        self.state.from.clone()
    }

    fn to(&self) -> String {
        self.state.to.clone()
    }
}
