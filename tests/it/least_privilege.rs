//! `drpilot iam-policy` proven least-privilege against the emulator with IAM enforced
//! (`chaos/emulator/start --enforce-iam`: every request authorized against the caller's
//! policies with AWS's evaluation rules, SimulatePrincipalPolicy answered from the same
//! evaluation).
//!
//! The shipped failover, failback and switchover run with credentials that hold exactly
//! the policy `drpilot iam-policy` prints for them, their state in S3. With any single
//! action taken out of a policy, preflight exits 5 naming that action and nothing in
//! the emulator changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::emulator::{
    Emulator, RunOutput, params_for, primary_region, run_drpilot_as, state_dir, writer_region,
};
use crate::text;

/// The emulator's administrator (README "IAM enforcement"): the account's root user.
const ADMIN_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

const STATE_BUCKET: &str = "drpilot-state-usw2";
const STATE: &str = "s3://drpilot-state-usw2/drpilot";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One raw S3 request as the administrator.
fn admin_s3(emu: &Emulator, method: &str, path: &str, region: &str, body: &str) -> (u16, String) {
    crate::emulator::raw_s3(emu, ADMIN_KEY, method, path, region, body)
}

/// An emulator enforcing IAM, seeded, with the state bucket in us-west-2 (the region
/// every shipped runbook can reach).
fn enforcing() -> Emulator {
    let emu = Emulator::start_with(&["--enforce-iam"]);
    let body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                <LocationConstraint>us-west-2</LocationConstraint></CreateBucketConfiguration>";
    let (status, answer) = admin_s3(&emu, "PUT", &format!("/{STATE_BUCKET}"), "us-west-2", body);
    assert_eq!(status, 200, "CreateBucket: {answer}");
    emu
}

/// What `drpilot iam-policy FILE --state STATE` prints for the seeded stack.
fn generated_policy(emu: &Emulator, file: &str) -> Value {
    let mut cmd = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_drpilot")));
    cmd.current_dir(root())
        .args(["iam-policy", file, "--state", STATE])
        .env_remove("DRPILOT_STATE");
    for (k, v) in params_for(emu, file) {
        cmd.args(["--param", &format!("{k}={v}")]);
    }
    let out = cmd.output().expect("drpilot iam-policy runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON policy");
    assert_eq!(
        doc["Version"], "2012-10-17",
        "one account, one document: {doc}"
    );
    doc
}

/// Creates IAM user `name` holding `policy` (`chaos/emulator/seed --iam-user`, with
/// the administrator's credentials); its access key id and secret.
fn install(emu: &Emulator, name: &str, policy: &Value) -> (String, String) {
    let dir = state_dir(&format!("policy-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.json");
    std::fs::write(&file, serde_json::to_string_pretty(policy).unwrap()).unwrap();
    let out = Command::new(root().join("chaos/emulator/seed"))
        .args(["--endpoint", &emu.url, "--iam-user"])
        .arg(format!("{name}={}", file.display()))
        .output()
        .expect("seed runs");
    assert!(
        out.status.success(),
        "seed --iam-user: {}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("seed prints JSON");
    let user = &v["iam_users"][name];
    (
        user["access_key_id"]
            .as_str()
            .expect("access_key_id")
            .to_string(),
        user["secret_access_key"]
            .as_str()
            .expect("secret_access_key")
            .to_string(),
    )
}

fn as_user(emu: &Emulator, creds: &(String, String), file: &str, command: &[&str]) -> RunOutput {
    let mut args = vec![command[0], file];
    args.extend_from_slice(&command[1..]);
    run_drpilot_as(
        emu,
        (&creds.0, &creds.1),
        Path::new(STATE),
        &args,
        &params_for(emu, file),
    )
}

/// Every action of a policy document.
fn actions(policy: &Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// The policy without `action` (a statement left with no action goes).
fn without(policy: &Value, action: &str) -> Value {
    let mut p = policy.clone();
    let statements: Vec<Value> = p["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let mut s = s.clone();
            let kept: Vec<Value> = s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a.as_str() != Some(action))
                .cloned()
                .collect();
            (!kept.is_empty()).then(|| {
                s["Action"] = json!(kept);
                s
            })
        })
        .collect();
    p["Statement"] = json!(statements);
    p
}

/// What the stack looks like from outside drpilot: everything a run could change.
fn observed(emu: &Emulator) -> Value {
    let mut state = emu.call("GET", "/_drpilot/state", None);
    if let Some(o) = state.as_object_mut() {
        o.remove("clock");
    }
    json!({
        "writer": writer_region(emu),
        "cache_primary": primary_region(emu),
        "state": state,
    })
}

#[test]
fn the_shipped_runbooks_run_with_exactly_the_generated_policy_and_state_in_s3() {
    let emu = enforcing();
    // Unplanned failover away from us-east-1, failback, then a planned switchover:
    // each as its own user holding exactly its runbook's generated policy.
    let sequence = [
        ("runbooks/region-failover.toml", "us-west-2"),
        ("runbooks/failback.toml", "us-east-1"),
        ("runbooks/planned-switchover.toml", "us-west-2"),
    ];
    for (i, (file, writer_after)) in sequence.iter().enumerate() {
        let policy = generated_policy(&emu, file);
        let creds = install(&emu, &format!("drpilot-run-{i}"), &policy);
        let out = as_user(&emu, &creds, file, &["run", "--yes"]);
        assert_eq!(
            out.code, 0,
            "{file} with its generated policy: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("AccessDenied") && !out.stderr.contains("IAM denies"),
            "{file}: {}",
            out.stderr
        );
        assert_eq!(&writer_region(&emu), writer_after, "{file}");
    }
    // The runs' journals are in the state bucket.
    let (status, listing) = admin_s3(
        &emu,
        "GET",
        &format!("/{STATE_BUCKET}?list-type=2&prefix=drpilot/runs/"),
        "us-west-2",
        "",
    );
    assert_eq!(status, 200, "{listing}");
    assert!(listing.contains("/journal/"), "{listing}");
}

#[test]
fn without_any_single_action_of_the_generated_policy_preflight_exits_5_naming_it() {
    let emu = enforcing();
    for file in [
        "runbooks/region-failover.toml",
        "runbooks/planned-switchover.toml",
        "runbooks/failback.toml",
    ] {
        let policy = generated_policy(&emu, file);
        let all = actions(&policy);
        assert!(all.len() > 5, "{file}: {all:?}");
        // The whole policy passes preflight: what follows is the one missing action.
        let creds = install(&emu, &format!("full-{}", short(file)), &policy);
        let out = as_user(&emu, &creds, file, &["preflight", "--output", "json"]);
        assert_eq!(
            out.code, 0,
            "{file} with its whole policy: {}{}",
            out.stdout, out.stderr
        );
        let before = observed(&emu);
        for (n, action) in all.iter().enumerate() {
            let creds = install(
                &emu,
                &format!("less-{}-{n}", short(file)),
                &without(&policy, action),
            );
            let out = as_user(&emu, &creds, file, &["preflight", "--output", "json"]);
            assert_eq!(
                out.code, 5,
                "{file} without {action}: preflight must fail: {}",
                out.stderr
            );
            let named = out.stdout.contains(&format!("IAM denies {action}"));
            assert!(
                named,
                "{file} without {action}: not named:\n{}{}",
                out.stdout, out.stderr
            );
        }
        assert_eq!(
            observed(&emu),
            before,
            "{file}: preflight changed the stack"
        );
    }
}

fn short(file: &str) -> &str {
    file.trim_start_matches("runbooks/")
        .trim_end_matches(".toml")
}

/// `aurora.serverless_capacity` runs with exactly its generated policy (the cluster's
/// ModifyDBCluster, the region's DescribeDBInstances, the global cluster and the
/// primary's capacity metric), and without any one action of it preflight exits 5
/// naming it and nothing changes.
#[test]
fn a_capacity_step_needs_exactly_its_generated_policy() {
    let emu = enforcing();
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    let dir = state_dir("lp-capacity");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scale.toml");
    std::fs::write(
        &path,
        format!(
            "[runbook]\nname = \"scale-standby\"\nmode = \"unplanned\"\n\
             [params]\naccount = \"111122223333\"\n\n\
             [[step]]\nid = \"scale-usw2\"\naction = \"aurora.serverless_capacity\"\n\
             cluster = \"{arn}\"\nmin_acu = 2\nmax_acu = 64\n[step.rollback]\n"
        ),
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let policy = generated_policy(&emu, file);
    let all = actions(&policy);
    for needed in [
        "rds:ModifyDBCluster",
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "rds:DescribeGlobalClusters",
        "cloudwatch:GetMetricData",
    ] {
        assert!(all.contains(needed), "{needed}: {policy}");
    }
    // What the step could change (the seed's Route 53 changes go INSYNC meanwhile).
    let rds = |emu: &Emulator| observed(emu)["state"]["rds"].clone();
    let before = rds(&emu);
    for (n, action) in all.iter().enumerate() {
        let creds = install(&emu, &format!("acu-less-{n}"), &without(&policy, action));
        let out = as_user(&emu, &creds, file, &["preflight", "--output", "json"]);
        assert_eq!(out.code, 5, "without {action}: {}", out.stderr);
        assert!(
            out.stdout.contains(&format!("IAM denies {action}")),
            "without {action}: not named:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    assert_eq!(rds(&emu), before, "preflight changed the stack");
    let creds = install(&emu, "acu-whole", &policy);
    let out = as_user(&emu, &creds, file, &["run", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scaling = &emu.call("GET", "/_drpilot/state", None)["rds"]["serverless"][&arn]["scaling"];
    assert_eq!(*scaling, json!({"MinCapacity": 2.0, "MaxCapacity": 64.0}));
}
