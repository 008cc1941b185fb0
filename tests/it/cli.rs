//! The command line: help, exit codes, completions, and usage errors.

use crate::{drpilot, text};

#[test]
fn help_reads_well_and_documents_the_exit_codes() {
    let out = drpilot(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("help", text(&out.stdout));
    let out = drpilot(&["plan", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("plan-help", text(&out.stdout));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["plan"][..],
        &["nope"],
        &["plan", "x.toml", "--format", "png"],
        &["validate"],
    ] {
        let out = drpilot(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = drpilot(&["validate", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: failed to read runbook does/not/exist.toml: "),
        "{stderr}"
    );
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = drpilot(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        for cmd in ["validate", "plan", "schema", "completions"] {
            assert!(script.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
}

#[test]
fn bash_completions_load_in_bash() {
    let out = drpilot(&["completions", "bash"]);
    let status = std::process::Command::new("bash")
        .args(["-c", "source /dev/stdin && complete -p drpilot"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&out.stdout)?;
            child.wait_with_output()
        })
        .expect("bash runs");
    assert!(status.status.success());
    assert!(text(&status.stdout).contains("drpilot"));
}

#[test]
fn validate_warns_but_passes() {
    // A detach-and-promote without approval is allowed, with a warning that says why.
    let dir = std::env::temp_dir().join(format!("drpilot-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warn.toml");
    std::fs::write(
        &path,
        "[runbook]\nname = \"w\"\nmode = \"unplanned\"\n[[step]]\nid = \"detach\"\naction = \"aurora.detach_promote\"\nglobal_cluster = \"g\"\ntarget = \"arn:aws:rds:us-west-2:111122223333:cluster:c\"\n",
    )
    .unwrap();
    let out = drpilot(&["validate", "--format", "short", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(":5:6: warning: step `detach` detaches a cluster"),
        "{stderr}"
    );
    assert!(stderr.contains("(1 step, 1 warning)"), "{stderr}");
}

/// Whether an IAM policy document has a statement allowing `action` on `resource`.
fn policy_allows(policy: &serde_json::Value, action: &str, resource: &str) -> bool {
    let statements = policy["Statement"].as_array().expect("statements");
    statements.iter().any(|s| {
        s["Action"].as_array().unwrap().iter().any(|a| a == action)
            && s["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == resource)
    })
}

#[test]
fn iam_policy_names_every_call_of_the_shipped_failover_on_its_resources() {
    let out = drpilot(&["iam-policy", "runbooks/region-failover.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let allowed = |action: &str, resource: &str| policy_allows(&policy, action, resource);
    assert!(allowed(
        "rds:FailoverGlobalCluster",
        "arn:aws:rds::111122223333:global-cluster:acme-prod"
    ));
    assert!(allowed(
        "rds:FailoverGlobalCluster",
        "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2"
    ));
    assert!(allowed(
        "elasticache:DisassociateGlobalReplicationGroup",
        "arn:aws:elasticache::111122223333:globalreplicationgroup:ldgnf-acme-sessions"
    ));
    assert!(allowed(
        "route53-recovery-cluster:UpdateRoutingControlStates",
        "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/c3a85f1d7e2b9460"
    ));
    assert!(allowed(
        "s3:GetReplicationConfiguration",
        "arn:aws:s3:::acme-prod-assets-use1"
    ));
    // Least privilege: the failover's mutation is on the named clusters only.
    assert!(!allowed(
        "rds:FailoverGlobalCluster",
        "arn:aws:rds:*:111122223333:cluster:*"
    ));
    // An unplanned failover never switches over or changes records.
    let all = text(&out.stdout);
    for never in [
        "rds:SwitchoverGlobalCluster",
        "route53:ChangeResourceRecordSets",
        "rds:RemoveFromGlobalCluster",
    ] {
        assert!(!all.contains(never), "{never} in {all}");
    }
    insta::assert_snapshot!("iam-policy-region-failover", all);
}

#[test]
fn iam_policy_covers_an_s3_state_store_and_refuses_a_bad_one() {
    let out = drpilot(&[
        "iam-policy",
        "runbooks/region-failover.toml",
        "--state",
        "s3://team-state/drpilot/prod?region=us-west-2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = text(&out.stdout);
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for (action, resource) in [
        ("s3:PutObject", "arn:aws:s3:::team-state/drpilot/prod/*"),
        ("s3:GetObject", "arn:aws:s3:::team-state/drpilot/prod/*"),
        ("s3:ListBucket", "arn:aws:s3:::team-state"),
    ] {
        assert!(
            policy_allows(&policy, action, resource),
            "{action} on {resource} missing from {all}"
        );
    }
    // A local directory needs no IAM; a bad location is a usage error.
    let local = drpilot(&[
        "iam-policy",
        "runbooks/region-failover.toml",
        "--state",
        "/tmp/x",
    ]);
    assert_eq!(local.status.code(), Some(0));
    assert!(!text(&local.stdout).contains("team-state"));
    let bad = drpilot(&[
        "iam-policy",
        "runbooks/region-failover.toml",
        "--state",
        "s3://A_B",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("is not a bucket name"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn preflight_in_the_simulated_world_reports_a_table_or_json_and_changes_nothing() {
    let out = drpilot(&[
        "preflight",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.starts_with("preflight of planned-switchover (Planned)"),
        "{table}"
    );
    assert!(table.contains("ready:"), "{table}");
    let out = drpilot(&[
        "preflight",
        "runbooks/region-failover.toml",
        "--sim",
        "--seed",
        "7",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true);
    assert!(doc["findings"].as_array().is_some_and(|f| !f.is_empty()));
}

#[test]
fn a_blocking_preflight_finding_exits_5() {
    // A planned switchover needs every region: with us-west-2 down it must not start.
    let cfg = std::env::temp_dir().join(format!("drpilot-preflight-{}.toml", std::process::id()));
    std::fs::write(&cfg, "[regions.us-west-2]\nunreachable_from = \"0s\"\n").unwrap();
    let out = drpilot(&[
        "preflight",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--sim-config",
        cfg.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&cfg);
    let code = out.status.code();
    let table = text(&out.stdout);
    assert_eq!(code, Some(5), "{table}{}", text(&out.stderr));
    assert!(table.contains("FAIL"), "{table}");
    assert!(table.contains("NOT READY"), "{table}");
}

#[test]
fn params_can_be_overridden_and_a_typo_is_refused() {
    let out = drpilot(&[
        "iam-policy",
        "runbooks/region-failover.toml",
        "--param",
        "account=444455556666",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("arn:aws:rds:us-west-2:444455556666:cluster:acme-prod-usw2")
    );
    let out = drpilot(&[
        "iam-policy",
        "runbooks/region-failover.toml",
        "--param",
        "acount=444455556666",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--param acount: the runbook has no parameter `acount`"),
        "{err}"
    );
    assert!(err.contains("did you mean `account`?"), "{err}");
}

#[test]
fn preflight_says_when_another_run_holds_the_lock() {
    use drpilot::engine::RunId;
    use drpilot::journal::{Lock, StateDir};
    let dir = std::env::temp_dir().join(format!("drpilot-preflight-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = StateDir::at(&dir);
    let lock = Lock::acquire(
        &state,
        "planned-switchover",
        &RunId("planned-switchover-held".into()),
        false,
    )
    .expect("lock");
    let out = drpilot(&[
        "preflight",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--state",
        dir.to_str().unwrap(),
    ]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{table}");
    assert!(
        table.contains("the runbook's lock is held by run planned-switchover-held"),
        "{table}"
    );
    lock.release();
    let out = drpilot(&[
        "preflight",
        "runbooks/planned-switchover.toml",
        "--sim",
        "--seed",
        "7",
        "--state",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
