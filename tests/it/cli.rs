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
