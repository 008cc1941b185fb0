//! `valkey.failover` against the AWS emulator under both readings of
//! FailoverGlobalReplicationGroup (issue 18, H1): the datastore is `modifying` (a third
//! member is being added) when us-east-1, the primary's region, goes dark.
//!
//! - `"allow"` (the user guide's reading): the promotion is accepted while another
//!   modification runs and the old primary's region is down; drpilot must send it, and
//!   must not disassociate.
//! - `"refuse"` (the API reference's reading, the emulator's default): the promotion is
//!   refused; drpilot sends it first all the same, then falls back to
//!   DisassociateGlobalReplicationGroup (`allow_disassociate = true`), once the other
//!   operation no longer blocks it.
//!
//! Each case starts its own emulator (see `emulator.rs`), stopped by its pid.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::emulator::{Emulator, RunOutput, run_drpilot};

const DATASTORE: &str = "ldgnf-acme-sessions";

/// One step, retried while the datastore is busy (the default policy gives up after a
/// few seconds; the other operation takes longer).
const RUNBOOK: &str = r#"
[runbook]
name = "valkey-h1"
mode = "unplanned"

[params]
from = "us-east-1"
to = "us-west-2"

[[step]]
id = "valkey-promote"
action = "valkey.failover"
global_datastore = "ldgnf-acme-sessions"
target_region = "{{to}}"
target_replication_group = "acme-sessions-usw2"
allow_disassociate = true
timeout = "3m"
retry = { attempts = 40, initial = "1s", max = "2s", max_elapsed = "3m", jitter = false }
[step.gate]
check = "valkey.primary_in_region"
global_datastore = "ldgnf-acme-sessions"
region = "{{to}}"
timeout = "3m"
interval = "1s"
"#;

fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-emu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("state dir");
    d
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// An SDK configuration for `region`, pointed at the emulator.
async fn sdk_config(emu: &Emulator, region: &str) -> aws_config::SdkConfig {
    use aws_credential_types::Credentials;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        ))
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(&emu.url)
        .load()
        .await
}

/// A third member in eu-west-1: the datastore is `modifying` while it associates. Of
/// the datastore's node type, as the seed creates its members (a Global Datastore
/// needs them all alike, which drpilot's preflight checks).
fn add_a_member_in_eu_west_1(emu: &Emulator) {
    block_on(async {
        let ec = aws_sdk_elasticache::Client::new(&sdk_config(emu, "eu-west-1").await);
        ec.create_replication_group()
            .replication_group_id("acme-sessions-euw1")
            .replication_group_description("a third member")
            .global_replication_group_id(DATASTORE)
            .engine("valkey")
            .cache_node_type("cache.r7g.large")
            .send()
            .await
            .expect("CreateReplicationGroup with GlobalReplicationGroupId");
    });
}

/// The datastore as drpilot's own SDK code reads it, from us-west-2.
fn datastore(emu: &Emulator) -> drpilot::cloud::GlobalDatastore {
    block_on(async {
        let aws = drpilot::cloud::aws::AwsCloud::from_sdk_config(
            sdk_config(emu, "us-east-1").await,
            Default::default(),
        );
        drpilot::cloud::ElastiCache::describe_global_datastore(&aws, "us-west-2", DATASTORE)
            .await
            .expect("DescribeGlobalReplicationGroups")
    })
}

/// Sets the reading, makes the datastore busy, takes us-east-1 down, and runs the
/// one-step runbook.
fn run_with_the_primary_region_dark(reading: &str) -> (Emulator, RunOutput) {
    let emu = Emulator::start();
    // The association takes 10 s (real, at the emulator's clock speed), the failover
    // and the disassociation about a second.
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"elasticache": {
            "failover_with_unreachable_members": reading,
            "associate_seconds": 600,
            "failover_seconds": 60,
            "disassociate_seconds": 30,
        }})),
    );
    add_a_member_in_eu_west_1(&emu);
    let before = datastore(&emu);
    assert_eq!(before.status, "modifying", "{before:?}");
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(json!({"region": "us-east-1", "mode": "reset"})),
    );
    let state = state_dir(&format!("valkey-h1-{reading}"));
    let file = state.join("valkey-h1.toml");
    std::fs::write(&file, RUNBOOK).expect("runbook written");
    let out = run_drpilot(
        &emu,
        &state.join("state"),
        &["run", file.to_str().expect("UTF-8 path"), "--yes"],
        &[],
    );
    (emu, out)
}

fn calls(out: &RunOutput, op: &str) -> u64 {
    out.api_calls
        .get(&format!("elasticache:{op}"))
        .copied()
        .unwrap_or(0)
}

fn history(emu: &Emulator) -> Vec<Value> {
    emu.call("GET", "/_drpilot/elasticache", None)["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..120 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{what}: not in time");
}

#[test]
fn the_user_guides_reading_promotes_a_busy_datastore_with_its_primary_region_dark() {
    let (emu, out) = run_with_the_primary_region_dark("allow");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        calls(&out, "FailoverGlobalReplicationGroup"),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        calls(&out, "DisassociateGlobalReplicationGroup"),
        0,
        "{}",
        out.stderr
    );
    let d = datastore(&emu);
    assert!(
        d.primary()
            .is_some_and(|m| m.replication_group_id == "acme-sessions-usw2"),
        "{d:?}"
    );
    // The old primary, in the dark region, stays a member, as a secondary.
    assert!(
        d.members
            .iter()
            .any(|m| m.replication_group_id == "acme-sessions-use1"
                && m.role == drpilot::cloud::MemberRole::Secondary),
        "{d:?}"
    );
    let kinds: Vec<Value> = history(&emu).iter().map(|h| h["kind"].clone()).collect();
    assert_eq!(kinds, [json!("failover")]);
}

#[test]
fn the_api_references_reading_refuses_and_drpilot_disassociates_after_trying_the_failover() {
    let (emu, out) = run_with_the_primary_region_dark("refuse");
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Tried first, and again once the other operation ended: refused each time.
    assert!(
        calls(&out, "FailoverGlobalReplicationGroup") >= 2,
        "{}",
        out.stderr
    );
    // Refused while the datastore was modifying, then accepted: never sent once it was.
    assert!(
        calls(&out, "DisassociateGlobalReplicationGroup") >= 2,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("stands alone as a primary"),
        "{}",
        out.stderr
    );
    wait_until("the disassociation completes", || {
        !datastore(&emu)
            .members
            .iter()
            .any(|m| m.replication_group_id == "acme-sessions-usw2")
    });
    let h = history(&emu);
    let kinds: Vec<&str> = h.iter().filter_map(|x| x["kind"].as_str()).collect();
    assert_eq!(kinds, ["disassociate"], "{h:?}");
    assert_eq!(h[0]["member"], "acme-sessions-usw2", "{h:?}");
}
